//! Connection handling and routing. Handlers only route and build responses; faults come from
//! the rules (`faults`) and are applied by the body adapter (`body`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::body::{BodyFault, FaultBody, Resetter};
use crate::faults::Action;
use crate::{EventKind, Shared};
use ota_core::checkin::{CheckinRequest, CheckinResponse, Command};

type Body = Either<Full<Bytes>, FaultBody>;

/// Largest request body accepted (check-in, control API).
const MAX_BODY: usize = 64 * 1024;
/// Largest total size of request headers.
const MAX_HEADERS: usize = 16 * 1024;

/// Accepts connections until told to stop.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let Some((stream, dup)) = with_duplicate(stream) else { continue };
                conns.spawn(connection(stream, Arc::clone(&shared), dup));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    // Graceful: give open connections a moment, then drop them.
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
}

/// Splits off a duplicate of the socket so that a fault can close it with RST; a socket that
/// cannot be duplicated is served without that ability.
fn with_duplicate(stream: tokio::net::TcpStream) -> Option<(tokio::net::TcpStream, Resetter)> {
    let std_stream = stream.into_std().ok()?;
    let dup = std_stream.try_clone().ok().map(Arc::new);
    Some((tokio::net::TcpStream::from_std(std_stream).ok()?, dup))
}

async fn connection(stream: tokio::net::TcpStream, shared: Arc<Shared>, reset: Resetter) {
    let io = TokioIo::new(stream);
    let service = hyper::service::service_fn(move |req| {
        let shared = Arc::clone(&shared);
        let reset = reset.clone();
        async move { Ok::<_, Infallible>(route(req, shared, reset).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .max_buf_size(64 * 1024)
        .header_read_timeout(Some(Duration::from_secs(10)))
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(io, service);
    if let Err(e) = conn.await {
        tracing::debug!("connection ended: {e}");
    }
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Either::Left(Full::new(body.into())));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

fn text(status: StatusCode, msg: &str) -> Response<Body> {
    full(status, "text/plain; charset=utf-8", format!("{msg}\n"))
}

fn json<T: serde::Serialize>(value: &T) -> Response<Body> {
    match serde_json::to_vec_pretty(value) {
        Ok(v) => full(StatusCode::OK, "application/json", v),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// Decodes `%XX` escapes; `None` on a malformed escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, Response<Body>> {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(_) => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        )),
    }
}

async fn route(req: Request<Incoming>, shared: Arc<Shared>, reset: Resetter) -> Response<Body> {
    let id = shared.next_id();
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADERS {
        return text(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers too large",
        );
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let device = req
        .headers()
        .get("x-otarig-device")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let version = req
        .headers()
        .get("x-otarig-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    // Response-level faults: decided once per request, in rule order.
    let fired = fire_rules(
        &shared,
        &crate::faults::RequestInfo {
            method: method.as_str(),
            path: &path,
            device: device.as_deref(),
            version: version.as_deref(),
        },
    );
    let mut body_faults_src: Vec<(usize, Action)> = Vec::new();
    let mut opts = ImageOpts::default();
    for (rule, action) in &fired {
        let label = action.to_string();
        match action {
            Action::Latency { base, jitter } => {
                let extra = if jitter.is_zero() {
                    Duration::ZERO
                } else {
                    Duration::from_nanos(
                        (id.wrapping_mul(0x9E37_79B9) % jitter.as_nanos().max(1) as u64).max(1),
                    )
                };
                shared.fault_event(id, *rule, &label, 0);
                tokio::time::sleep(*base + extra).await;
            }
            Action::SlowHeaders(d) => {
                shared.fault_event(id, *rule, &label, 0);
                tokio::time::sleep(*d).await;
            }
            Action::Status { code, retry_after } => {
                shared.fault_event(id, *rule, &label, 0);
                let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let mut r = text(status, "fault injected");
                if let Some(s) = retry_after
                    && let Ok(v) = HeaderValue::from_str(&s.to_string())
                {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return finish(&shared, id, &method, &path, device, range, r);
            }
            Action::IgnoreRange => opts.ignore_range = Some(*rule),
            Action::BadContentRange => opts.bad_content_range = Some(*rule),
            Action::ContentLength(lie) => opts.length_lie = Some((*rule, *lie)),
            Action::Serve(file) => opts.serve = Some((*rule, file.clone())),
            other => body_faults_src.push((*rule, other.clone())),
        }
    }

    let response = match (&method, path.as_str()) {
        (&Method::POST, "/v1/checkin") => checkin(req, &shared).await,
        (&Method::GET, p) if p.starts_with("/v1/manifest/") => {
            manifest(&shared, &p["/v1/manifest/".len()..], &req)
        }
        (&Method::GET | &Method::HEAD, p) if p.starts_with("/v1/images/") => {
            let name = p["/v1/images/".len()..].to_string();
            image(&shared, &req, &name, id, opts, body_faults_src, reset).await
        }
        (_, p) if p.starts_with("/_control/") => control(req, &shared).await,
        (_, "/v1/checkin") => text(StatusCode::METHOD_NOT_ALLOWED, "use POST"),
        (_, p) if p.starts_with("/v1/") => text(StatusCode::METHOD_NOT_ALLOWED, "use GET"),
        _ => text(StatusCode::NOT_FOUND, "not found"),
    };
    finish(&shared, id, &method, &path, device, range, response)
}

fn finish(
    shared: &Shared,
    id: u64,
    method: &Method,
    path: &str,
    device: Option<String>,
    range: Option<String>,
    response: Response<Body>,
) -> Response<Body> {
    let declared_len = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    shared.emit(EventKind::Request {
        id,
        method: method.to_string(),
        path: path.to_string(),
        device,
        range,
        status: response.status().as_u16(),
        declared_len,
    });
    if let Either::Left(body) = response.body() {
        // Small in-memory bodies complete as soon as they are handed over.
        use hyper::body::Body as _;
        shared.complete_event(id, body.size_hint().exact().unwrap_or(0), false);
    }
    response
}

fn fire_rules(shared: &Shared, req: &crate::faults::RequestInfo<'_>) -> Vec<(usize, Action)> {
    if req.path.starts_with("/_control/") {
        return Vec::new();
    }
    let mut st = shared.state();
    let st = &mut *st;
    let mut fired = Vec::new();
    for (i, (rule, rs)) in st.faults.iter().zip(st.rule_states.iter_mut()).enumerate() {
        if rule.matches(req) && rule.fire(rs) {
            fired.push((i, rule.action.clone()));
        }
    }
    fired
}

#[derive(Default)]
struct ImageOpts {
    ignore_range: Option<usize>,
    bad_content_range: Option<usize>,
    length_lie: Option<(usize, crate::faults::LengthLie)>,
    serve: Option<(usize, String)>,
}

/// Parses a single `bytes=` range against `size`: `Ok(None)` = serve everything (no header,
/// malformed, or several ranges: RFC 9110 lets a server ignore them), `Err(())` = 416.
fn parse_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ok(None),
        (true, false) => match num(b) {
            None => Ok(None),
            Some(0) => Err(()),
            Some(n) => Ok(Some((size.saturating_sub(n), size - 1))),
        },
        (false, _) => {
            let Some(start) = num(a) else { return Ok(None) };
            let end = if b.is_empty() {
                size.saturating_sub(1)
            } else {
                match num(b) {
                    Some(e) if e >= start => e.min(size.saturating_sub(1)),
                    _ => return Ok(None),
                }
            };
            if start >= size {
                Err(())
            } else {
                Ok(Some((start, end)))
            }
        }
    }
}

async fn image(
    shared: &Arc<Shared>,
    req: &Request<Incoming>,
    name: &str,
    id: u64,
    opts: ImageOpts,
    body_faults: Vec<(usize, Action)>,
    reset: Resetter,
) -> Response<Body> {
    let name = match percent_decode(name) {
        Some(n) => n,
        None => return text(StatusCode::NOT_FOUND, "not found"),
    };
    let served = match &opts.serve {
        Some((rule, other)) => {
            shared.fault_event(id, *rule, &format!("serve={other}"), 0);
            other.clone()
        }
        None => name,
    };
    let Some(path) = shared.image_path(&served) else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    let file = match shared.load(&path).await {
        Ok(f) => f,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let size = file.data.len() as u64;
    let if_range_ok = req
        .headers()
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v == file.etag);
    let range_header = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let mut range = if if_range_ok {
        match parse_range(range_header, size) {
            Ok(r) => r,
            Err(()) => {
                let mut r = text(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return r;
            }
        }
    } else {
        None
    };
    if let (Some(rule), Some(_)) = (opts.ignore_range, range) {
        shared.fault_event(id, rule, "ignore_range", 0);
        range = None;
    }
    let (start, end) = range.unwrap_or((0, size.saturating_sub(1)));
    let data = if size == 0 {
        Bytes::new()
    } else {
        file.data.slice(start as usize..=end as usize)
    };
    let real_len = data.len() as u64;
    let mut status = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut content_range = range.map(|(s, e)| format!("bytes {s}-{e}/{size}"));
    if let Some(rule) = opts.bad_content_range {
        shared.fault_event(id, rule, "bad_content_range", 0);
        status = StatusCode::PARTIAL_CONTENT;
        content_range = Some(format!("bytes {}-{}/{size}", start + 1, end + 1));
    }
    let mut declared = real_len;
    let mut data = data;
    if let Some((rule, lie)) = opts.length_lie {
        declared = lie.apply(real_len);
        shared.fault_event(
            id,
            rule,
            &crate::faults::Action::ContentLength(lie).to_string(),
            0,
        );
        if declared < real_len {
            // HTTP/1.1 framing cannot carry more than the declared length: the client gets
            // exactly `declared` bytes, then the connection closes.
            data = data.slice(..declared as usize);
        }
    }
    // Resolve body faults to body-relative positions.
    let mut faults = Vec::new();
    for (rule, action) in body_faults {
        let label = action.to_string();
        match action {
            Action::TruncateAt(amount) => faults.push(BodyFault::Cut {
                at: amount.resolve(real_len),
                rule,
                label,
                reset: false,
            }),
            Action::DropAfter { bytes, reset } => faults.push(BodyFault::Cut {
                at: bytes.min(real_len),
                rule,
                label,
                reset,
            }),
            Action::StallAfter { bytes, pause } => faults.push(BodyFault::Stall {
                at: bytes.min(real_len),
                pause,
                rule,
                label,
            }),
            Action::Throttle { bytes_per_sec } => faults.push(BodyFault::Throttle {
                bytes_per_sec,
                rule,
                label,
            }),
            Action::Corrupt { offset, len } => {
                // `offset` is an image offset; map it into this response's window.
                let (s, e) = (offset.max(start), (offset + len).min(end + 1));
                if s < e {
                    faults.push(BodyFault::Flip {
                        start: s - start,
                        end: e - start,
                        rule,
                        label,
                    });
                }
            }
            _ => {}
        }
    }
    let mut response = if req.method() == Method::HEAD {
        let mut r = Response::new(Either::Left(Full::new(Bytes::new())));
        *r.status_mut() = status;
        r
    } else if faults.is_empty() && declared == real_len {
        // Clean path: one zero-copy frame.
        let mut r = Response::new(Either::Right(FaultBody::new(
            data,
            Vec::new(),
            id,
            Arc::clone(shared),
            None,
            declared,
        )));
        *r.status_mut() = status;
        r
    } else {
        let mut r = Response::new(Either::Right(FaultBody::new(
            data,
            faults,
            id,
            Arc::clone(shared),
            reset,
            declared,
        )));
        *r.status_mut() = status;
        r
    };
    let h = response.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&file.etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&declared.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if let Some(cr) = content_range
        && let Ok(v) = HeaderValue::from_str(&cr)
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    response
}

fn manifest(shared: &Shared, name: &str, req: &Request<Incoming>) -> Response<Body> {
    let st = shared.state();
    let Some(rel) = st.releases.get(name) else {
        return text(StatusCode::NOT_FOUND, &format!("no release {name}"));
    };
    let wants_json = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "format=json"))
        || req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        let m = ota_core::manifest::Manifest::parse(&rel.manifest);
        let chunks: Vec<String> = m
            .map(|m| {
                (0..m.chunk_count())
                    .filter_map(|i| m.chunk_hash(i))
                    .map(hex::encode)
                    .collect()
            })
            .unwrap_or_default();
        let sig = rel
            .manifest
            .len()
            .checked_sub(64)
            .map(|s| hex::encode(&rel.manifest[s..]));
        return json(&serde_json::json!({
            "release": rel.info.name, "version": rel.info.version, "size": rel.info.size,
            "sha256": rel.info.sha256, "chunk_size": rel.info.chunk_size, "chunks": chunks,
            "url": format!("/v1/images/{}", rel.info.file), "rollback_counter": rel.info.rollback_counter,
            "signature": sig,
        }));
    }
    full(
        StatusCode::OK,
        ota_core::manifest::CONTENT_TYPE,
        rel.manifest.clone(),
    )
}

async fn checkin(req: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Ok(ci) = CheckinRequest::decode(&body) else {
        return text(StatusCode::BAD_REQUEST, "malformed check-in JSON");
    };
    let device = ci.device.as_str().to_string();
    let version = ci.version.as_str().to_string();
    let state = serde_json::to_value(ci.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let last_error = ci.last_error.as_ref().map(|e| e.as_str().to_string());
    let response = {
        let mut st = shared.state();
        let st = &mut *st;
        let rec = st
            .devices
            .entry(device.clone())
            .or_insert_with(|| crate::DeviceRecord {
                device: device.clone(),
                ..Default::default()
            });
        rec.version = version.clone();
        rec.slot = serde_json::to_value(ci.slot)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        rec.state = state.clone();
        rec.boot_count = ci.boot_count;
        rec.last_error = last_error.clone();
        rec.checkins += 1;
        let running: Option<ota_core::Version> = version.parse().ok();
        // A device that was offered a release and now reports a revert or an error while still
        // below it has failed that release: never offer it again (like hawkBit's failed action).
        for offered in rec.offered.clone() {
            if let Some(rel) = st.releases.get(&offered)
                && running.is_some_and(|v| v < rel.version)
                && (ci.state == ota_core::checkin::DeviceState::Reverted || last_error.is_some())
                && !rec.failed.contains(&offered)
            {
                rec.failed.push(offered);
            }
        }
        let command = if let Some(cmd) = st.commands.remove(&device) {
            CheckinResponse {
                command: cmd,
                manifest_url: None,
            }
        } else if st.rollout.paused {
            CheckinResponse::NONE
        } else {
            let offer = st
                .offered
                .as_ref()
                .and_then(|name| st.releases.get(name).map(|r| (name, r)));
            match offer {
                Some((name, rel))
                    if running.is_some_and(|v| v < rel.version)
                        && st.rollout.includes(&device)
                        && !rec.failed.contains(name) =>
                {
                    if !rec.offered.contains(name) {
                        rec.offered.push(name.clone());
                    }
                    CheckinResponse {
                        command: Command::Update,
                        manifest_url: heapless::String::try_from(
                            format!("/v1/manifest/{name}").as_str(),
                        )
                        .ok(),
                    }
                }
                _ => CheckinResponse::NONE,
            }
        };
        rec.last_command = format!("{:?}", command.command).to_lowercase();
        command
    };
    shared.emit(EventKind::Checkin {
        device,
        version,
        state,
        boot_count: ci.boot_count,
        last_error,
        command: format!("{:?}", response.command).to_lowercase(),
    });
    let mut buf = [0u8; 512];
    match response.encode(&mut buf) {
        Ok(n) => full(
            StatusCode::OK,
            "application/json",
            Bytes::copy_from_slice(&buf[..n]),
        ),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn control(req: Request<Incoming>, shared: &Arc<Shared>) -> Response<Body> {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !shared.authorized(auth) {
        let mut r = text(
            StatusCode::UNAUTHORIZED,
            "control API needs Authorization: Bearer <token>",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    let method = req.method().clone();
    let path = req
        .uri()
        .path()
        .trim_start_matches("/_control/")
        .to_string();
    match (method, path.as_str()) {
        (Method::GET, "faults") => {
            let rules: Vec<crate::faults::RawRule> = shared
                .state()
                .faults
                .iter()
                .cloned()
                .map(Into::into)
                .collect();
            json(&serde_json::json!({ "faults": rules }))
        }
        (Method::PUT, "faults") => {
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let text_body = String::from_utf8_lossy(&body);
            match crate::faults::parse_faults_yaml(&text_body, "request body") {
                Ok(rules) => {
                    let n = rules.len();
                    shared.set_faults(rules);
                    json(&serde_json::json!({ "installed": n }))
                }
                Err(e) => text(StatusCode::BAD_REQUEST, &e.to_string()),
            }
        }
        (Method::GET, "releases") => {
            let list: Vec<crate::ReleaseInfo> = shared
                .state()
                .releases
                .values()
                .map(|r| r.info.clone())
                .collect();
            json(&list)
        }
        (Method::POST, "releases") => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Publish {
                name: String,
                file: String,
            }
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            match serde_json::from_slice::<Publish>(&body) {
                Ok(p) => match shared.publish(&p.name, &p.file) {
                    Ok(info) => json(&info),
                    Err(e) => text(StatusCode::BAD_REQUEST, &e.to_string()),
                },
                Err(e) => text(StatusCode::BAD_REQUEST, &format!("request body: {e}")),
            }
        }
        (Method::GET, "rollout") => json(&shared.state().rollout),
        (Method::PUT, "rollout") => {
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            match serde_json::from_slice::<crate::Rollout>(&body) {
                Ok(r) => {
                    shared.state().rollout = r.clone();
                    shared.emit(EventKind::Control {
                        detail: format!("rollout set: {r:?}"),
                    });
                    json(&r)
                }
                Err(e) => text(StatusCode::BAD_REQUEST, &format!("request body: {e}")),
            }
        }
        (Method::POST, "commands") => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Cmd {
                device: String,
                command: Command,
            }
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            match serde_json::from_slice::<Cmd>(&body) {
                Ok(c) => {
                    shared.state().commands.insert(c.device.clone(), c.command);
                    shared.emit(EventKind::Control {
                        detail: format!("command {:?} queued for {}", c.command, c.device)
                            .to_lowercase(),
                    });
                    json(&serde_json::json!({ "queued": true }))
                }
                Err(e) => text(StatusCode::BAD_REQUEST, &format!("request body: {e}")),
            }
        }
        (Method::GET, "devices") => {
            let list: Vec<crate::DeviceRecord> = shared.state().devices.values().cloned().collect();
            json(&list)
        }
        (Method::GET, "events") => {
            let events = shared
                .events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let mut out = Vec::new();
            for e in &events {
                if let Ok(line) = serde_json::to_vec(e) {
                    out.extend_from_slice(&line);
                    out.push(b'\n');
                }
            }
            full(StatusCode::OK, "application/x-ndjson", out)
        }
        (_, "faults" | "releases" | "rollout" | "commands" | "devices" | "events") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Ok(Some((0, 9))));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=50-500"), 100), Ok(Some((50, 99))));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=-0"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=x-1"), 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=5-1"), 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(parse_range(Some("items=0-1"), 100), Ok(None));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("%2e%2e"), Some("..".into()));
        assert_eq!(percent_decode("a%2Fb"), Some("a/b".into()));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%"), None);
    }
}
