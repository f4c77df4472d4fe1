//! The update server's events for one attempt, kept structured (the timeline gets a readable
//! copy), so triggers and expectations can match on request fields and check-ins.

use std::sync::{Arc, Mutex};

use fake_server::{EventKind as ServerKind, ServerEvent};
use tokio::sync::Notify;

use crate::timeline::{EventKind, Timeline};

/// Structured server events with a wake-up for waiters.
#[derive(Default)]
pub struct ServerLog {
    events: Mutex<Vec<ServerEvent>>,
    changed: Notify,
}

impl ServerLog {
    pub fn push(&self, e: ServerEvent) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(e);
        self.changed.notify_waiters();
    }

    pub fn cursor(&self) -> usize {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn snapshot(&self) -> Vec<ServerEvent> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits for an event at or after `from` satisfying `pred`; `None` at the deadline.
    pub async fn wait_for(
        &self,
        from: usize,
        deadline: tokio::time::Instant,
        mut pred: impl FnMut(&ServerEvent) -> bool,
    ) -> Option<(usize, ServerEvent)> {
        let mut scanned = from;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
                while scanned < events.len() {
                    if pred(&events[scanned]) {
                        return Some((scanned, events[scanned].clone()));
                    }
                    scanned += 1;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

/// A request whose response head was sent: method, path, device, range, status, fault.
type OpenRequest = (
    String,
    String,
    Option<String>,
    Option<String>,
    u16,
    Option<String>,
);

/// Forwards server events into the log and a readable form into the timeline until the
/// server's event stream closes.
pub fn spawn_forwarder(
    mut rx: tokio::sync::broadcast::Receiver<ServerEvent>,
    log: Arc<ServerLog>,
    timeline: Arc<Timeline>,
    board: Arc<str>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Request heads, kept until their body completes, to write one HTTP event per request.
        let mut open: std::collections::HashMap<u64, OpenRequest> =
            std::collections::HashMap::new();
        loop {
            let event = match rx.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    timeline.push(
                        Some(&board),
                        EventKind::Rig {
                            detail: format!("rig lost {n} server events (slow consumer)"),
                        },
                    );
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            let t = event.at.saturating_duration_since(timeline.origin());
            match &event.kind {
                ServerKind::Request {
                    id,
                    method,
                    path,
                    device,
                    range,
                    status,
                    ..
                } => {
                    open.insert(
                        *id,
                        (
                            method.clone(),
                            path.clone(),
                            device.clone(),
                            range.clone(),
                            *status,
                            None,
                        ),
                    );
                }
                ServerKind::Fault {
                    id,
                    action,
                    bytes_sent,
                    ..
                } => {
                    if let Some(o) = open.get_mut(id) {
                        o.5 = Some(action.clone());
                    }
                    timeline.push_at(
                        t,
                        Some(&board),
                        EventKind::Rig {
                            detail: format!("server fault {action} after {bytes_sent} body bytes"),
                        },
                    );
                }
                ServerKind::Complete {
                    id,
                    bytes_sent,
                    aborted,
                } => {
                    if let Some((method, path, device, range, status, fault)) = open.remove(id) {
                        let fault = match (fault, aborted) {
                            (Some(f), _) => Some(f),
                            (None, true) => Some("aborted".to_string()),
                            (None, false) => None,
                        };
                        timeline.push_at(
                            t,
                            Some(&board),
                            EventKind::Http {
                                method,
                                path,
                                device,
                                range,
                                status,
                                bytes_sent: *bytes_sent,
                                fault,
                            },
                        );
                    }
                }
                ServerKind::Checkin {
                    device,
                    version,
                    state,
                    last_error,
                    command,
                    ..
                } => {
                    let err = last_error
                        .as_deref()
                        .map(|e| format!(" last_error={e}"))
                        .unwrap_or_default();
                    timeline.push_at(
                        t,
                        Some(&board),
                        EventKind::Rig {
                            detail: format!(
                                "server: check-in device={device} version={version} state={}{err} -> {}",
                                state.as_str(),
                                command.as_str()
                            ),
                        },
                    );
                }
                ServerKind::Control { detail } => {
                    timeline.push_at(
                        t,
                        Some(&board),
                        EventKind::Rig {
                            detail: format!("server: {detail}"),
                        },
                    );
                }
                ServerKind::Halt {
                    release,
                    phase,
                    reason,
                    ..
                } => {
                    timeline.push_at(
                        t,
                        Some(&board),
                        EventKind::Rig {
                            detail: format!(
                                "server: rollout of {release} halted in phase {phase}: {reason}"
                            ),
                        },
                    );
                }
            }
            log.push(event);
        }
    })
}
