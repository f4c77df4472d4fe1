//! What the server keeps per device and per release.

use bytes::Bytes;
use ota_core::Version;
use ota_core::checkin::{Command, DeviceState, Slot};
use serde::Serialize;

/// What the server knows about a device.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceRecord {
    pub device: String,
    pub version: String,
    /// Until its first check-in (a device known only from a download): `a`.
    pub slot: Slot,
    /// Until its first check-in: `updating`.
    pub state: DeviceState,
    pub boot_count: u32,
    pub last_error: Option<String>,
    pub checkins: u64,
    pub last_command: Command,
    /// Releases offered to this device.
    pub offered: Vec<String>,
    /// Releases whose manifest or image this device fetched (`X-Otarig-Device` header).
    pub downloaded: Vec<String>,
    /// Releases this device failed for good (came back `reverted`, or reported an error that
    /// blames the release after downloading it, with no retry left); never offered again.
    pub failed: Vec<String>,
    /// The rollout wave (phase, group, batch) in which the current release was first offered
    /// to this device.
    pub offered_in_phase: Option<u8>,
    /// Counted as updated to the current release already.
    #[serde(skip)]
    pub counted_updated: bool,
    /// Its execution of the current release timed out (counted once).
    pub timed_out: bool,
    /// Retries used on the current release.
    pub retries: u32,
    /// A failure was retried: the next failure counts only after the device fetched the
    /// release again.
    #[serde(skip)]
    pub awaiting_retry: bool,
    /// Server clock (microseconds) of the last check-in.
    pub last_checkin_us: u64,
    /// Server clock when the current release was first offered to this device.
    pub offered_at_us: Option<u64>,
    /// Server clock when the device first checked in running it, confirmed.
    pub updated_at_us: Option<u64>,
}

impl DeviceRecord {
    /// A device the server has not heard from yet.
    pub fn new(device: &str) -> Self {
        Self {
            device: device.to_string(),
            version: String::new(),
            slot: Slot::A,
            state: DeviceState::Updating,
            boot_count: 0,
            last_error: None,
            checkins: 0,
            last_command: Command::None,
            offered: Vec::new(),
            downloaded: Vec::new(),
            failed: Vec::new(),
            offered_in_phase: None,
            counted_updated: false,
            timed_out: false,
            retries: 0,
            awaiting_retry: false,
            last_checkin_us: 0,
            offered_at_us: None,
            updated_at_us: None,
        }
    }
}

/// A published release.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseInfo {
    pub name: String,
    pub file: String,
    pub version: String,
    pub rollback_counter: u32,
    /// Image size in bytes.
    pub size: u64,
    pub sha256: String,
    pub chunk_size: u32,
    pub chunks: u32,
}

/// A release as served: its info, parsed version and signed manifest bytes.
#[derive(Debug, Clone)]
pub struct Release {
    pub info: ReleaseInfo,
    pub version: Version,
    pub manifest: Bytes,
}
