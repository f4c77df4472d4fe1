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

use crate::events::EventKind;
use crate::faults::adapters::{BoxedBody, RawSocket, Sink};
use crate::faults::plan::{Plan, Source, Window};
use crate::shared::Shared;
use sink::RequestSink;

mod checkin;
mod control;
mod images;
mod sink;

/// A handler's answer before faults: status, headers and the whole body.
type Plain = Response<Bytes>;

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

/// Serves HTTP/1.1 on one connection: a TCP stream, or an in-memory pipe
/// ([`crate::InProcess`], `raw: None`).
pub(crate) async fn connection<I>(stream: I, shared: Arc<Shared>, raw: Option<RawSocket>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
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

pub(super) fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Plain {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

pub(super) fn text(status: StatusCode, msg: &str) -> Plain {
    full(status, "text/plain; charset=utf-8", format!("{msg}\n"))
}

pub(super) fn json<T: serde::Serialize>(value: &T) -> Plain {
    match serde_json::to_vec_pretty(value) {
        Ok(v) => full(StatusCode::OK, "application/json", v),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// A control API refusal: `{"error": "..."}`.
pub(super) fn json_error(status: StatusCode, msg: &str) -> Plain {
    let mut r = json(&serde_json::json!({ "error": msg }));
    *r.status_mut() = status;
    r
}

/// Decodes `%XX` escapes; `None` on a malformed escape or non-UTF-8 result.
pub(super) fn percent_decode(s: &str) -> Option<String> {
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

pub(super) async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, Plain> {
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body larger than {limit} bytes"),
        )),
        Err(e) => Err(text(StatusCode::BAD_REQUEST, &format!("request body: {e}"))),
    }
}

pub(super) fn header_str<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
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
            Method::GET | Method::HEAD => images::image(shared, &req, name, plan, sink).await,
            _ => not_allowed("GET, HEAD"),
        };
    }
    if let Some(name) = path.strip_prefix("/v1/manifest/") {
        return match method {
            Method::GET => images::manifest(shared, name, &req, plan, sink),
            _ => not_allowed("GET"),
        };
    }
    if path.starts_with("/_control/") {
        return control::control(req, shared).await;
    }
    match (method, path.as_str()) {
        (Method::POST, "/v1/checkin") => checkin::checkin(req, shared).await,
        (_, "/v1/checkin") => not_allowed("POST"),
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

pub(super) fn not_allowed(allow: &'static str) -> Plain {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// The length a HEAD response declares (its body is empty).
#[derive(Clone, Copy)]
pub(super) struct HeadLen(pub(super) u64);

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
    shared.emit_with(|| EventKind::Request {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("%2e%2e"), Some("..".into()));
        assert_eq!(percent_decode("a%2Fb"), Some("a/b".into()));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%"), None);
    }
}
