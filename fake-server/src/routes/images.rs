//! Images (ranged, fault-planned) and manifests.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::{HeadLen, Plain, full, header_str, json, percent_decode, text};
use crate::faults::adapters::Sink;
use crate::faults::plan::{Plan, Source, Window};
use crate::registry::DownloadOf;
use crate::shared::Shared;

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

pub(super) async fn image(
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
        shared
            .registry()
            .note_download(device, DownloadOf::File(&name));
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

pub(super) fn manifest(
    shared: &Shared,
    name: &str,
    req: &Request<Incoming>,
    plan: &Plan,
    sink: &Sink,
) -> Plain {
    // Validated after decoding: `%2e%2e` is `..`, which no release is called.
    let Some(name) = percent_decode(name).filter(|n| crate::check_release_name(n).is_ok()) else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    let name = name.as_str();
    if let Some(device) = header_str(req, "x-otarig-device") {
        shared
            .registry()
            .note_download(device, DownloadOf::Release(name));
    }
    let reg = shared.registry();
    let Some(rel) = reg.release(name) else {
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
    let body = match &plan.tamper {
        Some((tag, field)) => match crate::faults::tamper(&rel.manifest, *field) {
            Some(bad) => {
                sink.fault(tag, 0);
                bad
            }
            None => rel.manifest.clone(),
        },
        None => rel.manifest.clone(),
    };
    full(StatusCode::OK, ota_core::manifest::CONTENT_TYPE, body)
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
}
