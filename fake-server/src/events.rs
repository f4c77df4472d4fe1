//! What the server did, as events: requests, applied faults, finished bodies, check-ins,
//! control changes and halts.

use std::time::Instant;

use ota_core::checkin::{Command, DeviceState};
use serde::Serialize;

/// One thing the server did. In JSON, `at` is microseconds since the server started:
/// `{"at":1234,"event":"fault","id":3,"rule":0,"action":"stall_after=100 for 5s","bytes_sent":100}`.
#[derive(Debug, Clone, Serialize)]
pub struct ServerEvent {
    /// When it happened (the rig maps this onto its timeline).
    #[serde(skip)]
    pub at: Instant,
    /// The same moment in microseconds since the server started.
    #[serde(rename = "at")]
    pub t_us: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventKind {
    /// A response head was sent.
    Request {
        id: u64,
        method: String,
        path: String,
        device: Option<String>,
        range: Option<String>,
        status: u16,
        declared_len: Option<u64>,
    },
    /// A fault took effect (at this body position).
    Fault {
        id: u64,
        rule: usize,
        action: String,
        bytes_sent: u64,
    },
    /// A response body ended (`aborted`: not every declared byte was sent).
    Complete {
        id: u64,
        bytes_sent: u64,
        aborted: bool,
    },
    /// A device checked in and got a command.
    Checkin {
        device: String,
        version: String,
        state: DeviceState,
        boot_count: u32,
        last_error: Option<String>,
        command: Command,
    },
    /// Something changed through the API.
    Control { detail: String },
    /// The server halted the rollout by itself.
    Halt {
        release: String,
        phase: u8,
        reason: String,
        failed: u32,
        offered: u32,
    },
}
