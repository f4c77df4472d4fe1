//! The control API (`/_control/...`): faults, releases, rollout policy, commands, kill switch,
//! devices, events. Bearer-token protected when the server has a token.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use ota_core::checkin::Command;

use super::{MAX_CONTROL_BODY, Plain, full, json, json_error, not_allowed, read_body, text};
use crate::events::EventKind;
use crate::shared::Shared;

/// The methods each control API resource answers (`Allow` of its 405).
const CONTROL_METHODS: &[(&str, &str)] = &[
    ("faults", "GET, PUT"),
    ("releases", "GET, POST"),
    ("rollout", "GET, PUT"),
    ("policy", "GET, PUT"),
    ("commands", "POST"),
    ("kill-switch", "POST"),
    ("devices", "GET"),
    ("events", "GET"),
];

pub(super) async fn control(req: Request<Incoming>, shared: &Arc<Shared>) -> Plain {
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
                .faults()
                .rules
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
                .registry()
                .releases()
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
        (Method::GET, "rollout") => json(&shared.registry().rollout()),
        (Method::GET, "policy") => {
            let now = shared.now_us();
            let reg = shared.registry();
            json(&serde_json::json!({ "policy": reg.policy(), "status": reg.policy_status(now) }))
        }
        (Method::PUT, "policy") => {
            let body = match read_body(req, MAX_CONTROL_BODY).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            match serde_json::from_slice::<crate::PolicyConfig>(&body) {
                Ok(p) => match p.validate() {
                    Err(why) => json_error(StatusCode::BAD_REQUEST, &format!("policy: {why}")),
                    Ok(()) => {
                        shared.registry().set_policy(p.clone());
                        shared.emit(EventKind::Control {
                            detail: "rollout policy set".into(),
                        });
                        json(&p)
                    }
                },
                Err(e) => json_error(StatusCode::BAD_REQUEST, &format!("request body: {e}")),
            }
        }
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
                    shared
                        .registry()
                        .set_policy(crate::PolicyConfig::Phases(r.clone()));
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
                    shared.registry().queue(&c.device, c.command);
                    shared.emit(EventKind::Control {
                        detail: format!("command {} queued for {}", c.command.as_str(), c.device),
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
                Ok(k) => match shared.kill_switch(&k.release) {
                    Ok(told) => json(&serde_json::json!({ "rollback_queued": told })),
                    Err(e) => json_error(StatusCode::BAD_REQUEST, &e.to_string()),
                },
                Err(e) => json_error(StatusCode::BAD_REQUEST, &format!("request body: {e}")),
            }
        }
        (Method::GET, "devices") => {
            let list: Vec<crate::DeviceRecord> = shared.registry().devices().cloned().collect();
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
