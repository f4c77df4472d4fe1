//! `POST /v1/checkin`: decode, let the [`crate::registry::Registry`] decide, encode.

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use ota_core::checkin::CheckinRequest;

use super::{Plain, full, read_body, text};
use crate::events::EventKind;
use crate::shared::Shared;

/// Largest check-in body.
const MAX_CHECKIN_BODY: usize = 4 * 1024;

pub(super) async fn checkin(req: Request<Incoming>, shared: &Shared) -> Plain {
    let body = match read_body(req, MAX_CHECKIN_BODY).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Ok(ci) = CheckinRequest::decode(&body) else {
        return text(StatusCode::BAD_REQUEST, "malformed check-in JSON");
    };
    let now_us = shared.now_us();
    let answered = shared.registry().checkin(&ci, now_us);
    if let Some(h) = answered.halt {
        shared.halted(h);
    }
    let response = answered.response;
    shared.emit_with(|| EventKind::Checkin {
        device: ci.device.as_str().to_string(),
        version: ci.version.as_str().to_string(),
        state: ci.state,
        boot_count: ci.boot_count,
        last_error: ci.last_error.as_ref().map(|e| e.as_str().to_string()),
        command: response.command,
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
