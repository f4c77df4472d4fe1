//! Connection handling and routing. Handlers only route and build plain responses; the fault
//! plan (`faults::plan`) decides delays, status and range lies, and wraps every body in the
//! fault adapters (`faults::adapters`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::faults::adapters::{BoxedBody, RawSocket, Sink};
use crate::faults::plan::{Plan, Source, Window};
use crate::{DownloadOf, EventKind, RequestSink, Shared};
use ota_core::checkin::{CheckinRequest, CheckinResponse, Command};

/// A handler's answer before faults: status, headers and the whole body.
type Plain = Response<Bytes>;

/// Largest check-in body.
const MAX_CHECKIN_BODY: usize = 4 * 1024;
/// Largest control API body.
const MAX_CONTROL_BODY: usize = 64 * 1024;
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
                let (stream, _peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let Some((stream, raw)) = with_duplicate(stream) else { continue };
                conns.spawn(connection(stream, Arc::clone(&shared), raw));
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

/// Splits off a duplicate of the socket so that a fault can reset the connection or write past
/// HTTP framing; a socket that cannot be duplicated is served without those abilities.
fn with_duplicate(
    stream: tokio::net::TcpStream,
) -> Option<(tokio::net::TcpStream, Option<RawSocket>)> {
    let std_stream = stream.into_std().ok()?;
    let dup = std_stream.try_clone().ok().map(Arc::new);
    Some((tokio::net::TcpStream::from_std(std_stream).ok()?, dup))
}

async fn connection(stream: tokio::net::TcpStream, shared: Arc<Shared>, raw: Option<RawSocket>) {
    let io = TokioIo::new(stream);
    let service = hyper::service::service_fn(move |req| {
        let shared = Arc::clone(&shared);
        let raw = raw.clone();
        async move { Ok::<_, Infallible>(route(req, shared, raw).await) }
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

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Plain {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

fn text(status: StatusCode, msg: &str) -> Plain {
    full(status, "text/plain; charset=utf-8", format!("{msg}\n"))
}

fn json<T: serde::Serialize>(value: &T) -> Plain {
    match serde_json::to_vec_pretty(value) {
        Ok(v) => full(StatusCode::OK, "application/json", v),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// A control API refusal: `{"error": "..."}`.
fn json_error(status: StatusCode, msg: &str) -> Plain {
    let mut r = json(&serde_json::json!({ "error": msg }));
    *r.status_mut() = status;
    r
}

/// The methods each control API resource answers (`Allow` of its 405).
const CONTROL_METHODS: &[(&str, &str)] = &[
    ("faults", "GET, PUT"),
    ("releases", "GET, POST"),
    ("rollout", "GET, PUT"),
    ("commands", "POST"),
    ("kill-switch", "POST"),
    ("devices", "GET"),
    ("events", "GET"),
];

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

async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, Plain> {
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body larger than {limit} bytes"),
        )),
        Err(e) => Err(text(StatusCode::BAD_REQUEST, &format!("request body: {e}"))),
    }
}

fn header_str<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// What `finish` needs to know about the request after the handler consumed it.
struct Seen {
    id: u64,
    method: Method,
    path: String,
    device: Option<String>,
    range: Option<String>,
}

async fn route(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    raw: Option<RawSocket>,
) -> Response<BoxedBody> {
    let seen = Seen {
        id: shared.next_id(),
        method: req.method().clone(),
        path: req.uri().path().to_string(),
        device: header_str(&req, "x-otarig-device").map(str::to_string),
        range: header_str(&req, "range").map(str::to_string),
    };
    let sink: Sink = Arc::new(RequestSink::new(Arc::clone(&shared), seen.id));
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADERS {
        let r = text(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers too large",
        );
        return finish(&shared, &seen, r, &Plan::default(), &sink, raw.as_ref());
    }
    // Fault rules never apply to the control API.
    let plan = if seen.path.starts_with("/_control/") {
        Plan::default()
    } else {
        let fired = shared.fire_rules(&crate::faults::RequestInfo {
            method: seen.method.as_str(),
            path: &seen.path,
            device: seen.device.as_deref(),
            version: header_str(&req, "x-otarig-version"),
        });
        Plan::new(fired, seen.id)
    };
    for (tag, delay) in &plan.delays {
        sink.fault(tag, 0);
        tokio::time::sleep(*delay).await;
    }
    let response = if let Some((tag, code, retry_after)) = &plan.status {
        sink.fault(tag, 0);
        let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let mut r = text(status, "fault injected");
        if let Some(s) = retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    } else {
        dispatch(req, &shared, &plan, &sink).await
    };
    finish(&shared, &seen, response, &plan, &sink, raw.as_ref())
}

/// Routes on (method, path).
async fn dispatch(req: Request<Incoming>, shared: &Arc<Shared>, plan: &Plan, sink: &Sink) -> Plain {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if let Some(name) = path.strip_prefix("/v1/images/") {
        return match method {
            Method::GET | Method::HEAD => image(shared, &req, name, plan, sink).await,
            _ => not_allowed("GET, HEAD"),
        };
    }
    if let Some(name) = path.strip_prefix("/v1/manifest/") {
        return match method {
            Method::GET => manifest(shared, name, &req),
            _ => not_allowed("GET"),
        };
    }
    if path.starts_with("/_control/") {
        return control(req, shared).await;
    }
    match (method, path.as_str()) {
        (Method::POST, "/v1/checkin") => checkin(req, shared).await,
        (_, "/v1/checkin") => not_allowed("POST"),
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

fn not_allowed(allow: &'static str) -> Plain {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// The length a HEAD response declares (its body is empty).
#[derive(Clone, Copy)]
struct HeadLen(u64);

/// Declares the length, wraps the body in the plan's faults and emits the `request` event.
fn finish(
    shared: &Shared,
    seen: &Seen,
    response: Plain,
    plan: &Plan,
    sink: &Sink,
    raw: Option<&RawSocket>,
) -> Response<BoxedBody> {
    let (mut parts, data) = response.into_parts();
    let window = parts
        .extensions
        .get::<Window>()
        .copied()
        .unwrap_or_default();
    let head_len = parts.extensions.get::<HeadLen>().map(|h| h.0);
    // Images put their source in an extension; other handlers answer with the body itself.
    let source = parts
        .extensions
        .remove::<Source>()
        .unwrap_or(Source::Memory(data));
    let real = head_len.unwrap_or(source.len());
    let declared = plan.declared_len(real);
    if let Ok(v) = HeaderValue::from_str(&declared.to_string()) {
        parts.headers.insert(header::CONTENT_LENGTH, v);
    }
    shared.emit(EventKind::Request {
        id: seen.id,
        method: seen.method.to_string(),
        path: seen.path.clone(),
        device: seen.device.clone(),
        range: seen.range.clone(),
        status: parts.status.as_u16(),
        declared_len: Some(declared),
    });
    let body = if head_len.is_some() {
        Plan::default().wrap(Source::Memory(Bytes::new()), window, sink, None)
    } else {
        plan.wrap(source, window, sink, raw)
    };
    Response::from_parts(parts, body)
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
            // A suffix of an empty image selects nothing (RFC 9110 §14.1.2).
            Some(0) => Err(()),
            Some(_) if size == 0 => Err(()),
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
    plan: &Plan,
    sink: &Sink,
) -> Plain {
    let Some(name) = percent_decode(name) else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    let served = match &plan.serve {
        Some((tag, other)) => {
            sink.fault(tag, 0);
            other.clone()
        }
        None => name.clone(),
    };
    let Some(path) = shared.image_path(&served).await else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    if let Some(device) = header_str(req, "x-otarig-device")
        && req.method() == Method::GET
    {
        shared.note_download(device, DownloadOf::File(&name));
    }
    let file = match shared.load(&path).await {
        Ok(f) => f,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let size = file.size;
    let if_range_ok = header_str(req, "if-range").is_none_or(|v| v == file.etag);
    let mut range = if if_range_ok {
        match parse_range(header_str(req, "range"), size) {
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
    if let (Some(tag), Some(_)) = (&plan.ignore_range, range) {
        sink.fault(tag, 0);
        range = None;
    }
    let (start, end) = range.unwrap_or((0, size.saturating_sub(1)));
    let len = if size == 0 { 0 } else { end + 1 - start };
    let source = match file.content {
        // A slice of the cached file: shares its memory.
        Source::Memory(data) if len > 0 => {
            Source::Memory(data.slice(start as usize..=end as usize))
        }
        Source::Memory(_) => Source::Memory(Bytes::new()),
        Source::Disk { path, .. } => Source::Disk { path, start, len },
    };
    let mut status = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut content_range = range.map(|(s, e)| format!("bytes {s}-{e}/{size}"));
    if let Some(tag) = &plan.bad_content_range {
        sink.fault(tag, 0);
        status = StatusCode::PARTIAL_CONTENT;
        content_range = Some(format!("bytes {}-{}/{size}", start + 1, end + 1));
    }
    let mut r = Response::new(Bytes::new());
    if req.method() == Method::HEAD {
        r.extensions_mut().insert(HeadLen(len));
    } else {
        r.extensions_mut().insert(source);
    }
    *r.status_mut() = status;
    r.extensions_mut().insert(Window { start });
    let h = r.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&file.etag) {
        h.insert(header::ETAG, v);
    }
    if let Some(cr) = content_range
        && let Ok(v) = HeaderValue::from_str(&cr)
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    r
}

fn manifest(shared: &Shared, name: &str, req: &Request<Incoming>) -> Plain {
    // Validated after decoding: `%2e%2e` is `..`, which no release is called.
    let Some(name) = percent_decode(name).filter(|n| crate::check_release_name(n).is_ok()) else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    let name = name.as_str();
    if let Some(device) = header_str(req, "x-otarig-device") {
        shared.note_download(device, DownloadOf::Release(name));
    }
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

/// The stats slot of `release` in `phase`, growing the table as needed.
fn phase_slot<'a>(
    stats: &'a mut std::collections::BTreeMap<String, Vec<crate::PhaseStats>>,
    release: &str,
    phase: Option<u8>,
) -> Option<&'a mut crate::PhaseStats> {
    let phase = usize::from(phase?);
    let v = stats.entry(release.to_string()).or_default();
    if v.len() <= phase {
        v.resize(phase + 1, crate::PhaseStats::default());
    }
    v.get_mut(phase)
}

async fn checkin(req: Request<Incoming>, shared: &Shared) -> Plain {
    let body = match read_body(req, MAX_CHECKIN_BODY).await {
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
    let now_us = shared.now_us();
    let mut judged: Option<(String, u8)> = None;
    let mut halted = None;
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
        rec.last_checkin_us = now_us;
        let running: Option<ota_core::Version> = version.parse().ok();
        let phase = st.rollout.phase;
        // A device that was offered a release and now reports a revert, or refuses it (or gave
        // up on it) for a reason that blames the release, while still below it has failed that
        // release: never offer it again (like hawkBit's failed action). Network trouble is not
        // a failure.
        for offered in rec.offered.clone() {
            let reverted = ci.state == ota_core::checkin::DeviceState::Reverted;
            let blames_release = last_error
                .as_deref()
                .and_then(ota_core::Reason::from_name)
                .is_some_and(ota_core::Reason::blames_release);
            let errored = blames_release && rec.downloaded.contains(&offered);
            if let Some(rel) = st.releases.get(&offered)
                && running.is_some_and(|v| v < rel.version)
                && (reverted || errored)
                && !rec.failed.contains(&offered)
            {
                rec.failed.push(offered.clone());
                if let Some(s) = phase_slot(&mut st.stats, &offered, rec.offered_in_phase) {
                    s.failed += 1;
                    if reverted {
                        s.rolled_back += 1;
                    }
                    judged = rec.offered_in_phase.map(|p| (offered.clone(), p));
                }
            }
        }
        // Running the offered release, confirmed: updated.
        if let Some(name) = &st.offered
            && let Some(rel) = st.releases.get(name)
            && running.is_some_and(|v| v == rel.version)
            && ci.state == ota_core::checkin::DeviceState::Confirmed
            && rec.offered.contains(name)
            && !rec.counted_updated
        {
            rec.counted_updated = true;
            rec.updated_at_us = Some(now_us);
            if let Some(s) = phase_slot(&mut st.stats, name, rec.offered_in_phase) {
                s.updated += 1;
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
                        rec.offered_in_phase = Some(phase);
                        rec.offered_at_us = Some(now_us);
                        rec.updated_at_us = None;
                        rec.counted_updated = false;
                        if let Some(s) = phase_slot(&mut st.stats, name, Some(phase)) {
                            s.offered += 1;
                        }
                        // A phase that already has failures may cross the threshold once it
                        // has enough devices to judge.
                        judged = Some((name.clone(), phase));
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
        if let Some((release, phase)) = &judged {
            halted = crate::check_halt(st, release, *phase, now_us);
        }
        command
    };
    if let Some(h) = halted {
        tracing::warn!(release = %h.release, phase = h.phase, reason = %h.reason, "rollout halted");
        shared.emit(EventKind::Halt {
            release: h.release,
            phase: h.phase,
            reason: h.reason,
            failed: h.failed,
            offered: h.offered,
        });
    }
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

async fn control(req: Request<Incoming>, shared: &Arc<Shared>) -> Plain {
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
            let body = match read_body(req, MAX_CONTROL_BODY).await {
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
                Err(e) => json_error(StatusCode::BAD_REQUEST, &e.to_string()),
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
            let body = match read_body(req, MAX_CONTROL_BODY).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            match serde_json::from_slice::<Publish>(&body) {
                Ok(p) => match shared.publish(&p.name, &p.file, true) {
                    Ok(info) => json(&info),
                    Err(e) => json_error(StatusCode::BAD_REQUEST, &e.to_string()),
                },
                Err(e) => json_error(StatusCode::BAD_REQUEST, &format!("request body: {e}")),
            }
        }
        (Method::GET, "rollout") => json(&shared.state().rollout),
        (Method::PUT, "rollout") => {
            let body = match read_body(req, MAX_CONTROL_BODY).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            match serde_json::from_slice::<crate::Rollout>(&body) {
                Ok(r) if r.validate().is_err() => {
                    let why = r.validate().err().unwrap_or_default();
                    json_error(StatusCode::BAD_REQUEST, &format!("rollout: {why}"))
                }
                Ok(r) => {
                    shared.state().rollout = r.clone();
                    shared.emit(EventKind::Control {
                        detail: format!("rollout set: {r:?}"),
                    });
                    json(&r)
                }
                Err(e) => json_error(StatusCode::BAD_REQUEST, &format!("request body: {e}")),
            }
        }
        (Method::POST, "commands") => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Cmd {
                device: String,
                command: Command,
            }
            let body = match read_body(req, MAX_CONTROL_BODY).await {
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
                Err(e) => json_error(StatusCode::BAD_REQUEST, &format!("request body: {e}")),
            }
        }
        (Method::POST, "kill-switch") => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Kill {
                release: String,
            }
            let body = match read_body(req, MAX_CONTROL_BODY).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            match serde_json::from_slice::<Kill>(&body) {
                Ok(k) => match crate::kill_switch(shared, &k.release) {
                    Ok(told) => json(&serde_json::json!({ "rollback_queued": told })),
                    Err(e) => json_error(StatusCode::BAD_REQUEST, &e.to_string()),
                },
                Err(e) => json_error(StatusCode::BAD_REQUEST, &format!("request body: {e}")),
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
        (_, resource) => match CONTROL_METHODS.iter().find(|(r, _)| *r == resource) {
            Some((_, allow)) => not_allowed(allow),
            None => text(StatusCode::NOT_FOUND, "not found"),
        },
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
        // An empty image: no range is satisfiable (once `0-18446744073709551615/0`).
        assert_eq!(parse_range(Some("bytes=-1"), 0), Err(()));
        assert_eq!(parse_range(Some("bytes=-500"), 0), Err(()));
        assert_eq!(parse_range(Some("bytes=0-"), 0), Err(()));
        assert_eq!(parse_range(Some("bytes=-5"), 3), Ok(Some((0, 2))));
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
