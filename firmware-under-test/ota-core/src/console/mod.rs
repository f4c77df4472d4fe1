//! Console lines as typed events: one [`Line`] variant per line of
//! `firmware-under-test/CONSOLE.md`.
//!
//! A board prints a [`Line`] with its `Display` impl; the rig reads one back with [`parse`]
//! and decides on variants, not on substrings. The two are exact inverses:
//!
//! - `parse(&line.to_string()) == Some(line)` for every line a board can print (slots 0 or 1,
//!   free text without line breaks, `Why::status` 0 unless the reason is `Reason::Status`);
//! - `parse(s) == Some(l)` implies `l.to_string() == s` (less one trailing `\r`): the parser is
//!   strict. Numbers are canonical decimal, versions are exactly `major.minor.patch`, fields
//!   are separated by one space, and any other line is `None`.
//!
//! Free text (device id, board kind, manifest URL, crash text, FATAL detail) is borrowed from
//! the parsed line. Nothing here allocates.
//!
//! The tests read `CONSOLE.md` itself: a line added to its tables without a variant here fails
//! them.

use core::fmt;

use crate::checkin::{Command, DeviceState};
use crate::layout::slot_name;
use crate::payload::Drill;
use crate::reset::Reset;
use crate::{Reason, Version};

mod parse;
mod print;

use parse::number;
pub use parse::parse;

/// Where a board's console lines go: the host prints them (with `Display`), a test keeps them.
pub trait Console {
    fn line(&mut self, line: &Line<'_>);
}

/// One console line (see `firmware-under-test/CONSOLE.md` for when each is printed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    // Bootloader.
    /// `boot: otarig-boot board=<kind> device=<id> reset=<reset>`
    BootBanner {
        board: &'a str,
        device: &'a str,
        reset: Reset,
    },
    /// `boot: trial version=<ver> attempt=<n>/<max>`
    BootTrial {
        version: Version,
        attempt: u32,
        max: u32,
    },
    /// `boot: revert to=<ver> reason=<trial-exhausted|bad-image>`
    BootRevert { to: Version, reason: RevertReason },
    /// `boot: slot=<a|b> version=<ver> state=<confirmed|trial>`
    BootSlot {
        slot: u8,
        version: Version,
        state: SlotState,
    },
    /// `boot: refuse slot=<a|b> reason=<why>`
    BootRefuse { slot: u8, reason: Reason },
    /// `boot: FATAL no bootable image` (and a board's other FATAL texts): bricked.
    BootFatal { why: Fatal<'a> },
    /// `boot: factory reset version=<ver>`
    FactoryReset { version: Version },
    /// `boot: factory reset failed reason=<why>`
    FactoryResetFailed { reason: Reason },

    // Application.
    /// `app: v<ver> starting drill=<drill>`
    AppStarting { version: Version, drill: Drill },
    /// `app: v<ver> network up`
    AppNetworkUp { version: Version },
    /// `app: v<ver> running`
    AppRunning { version: Version },
    /// `app: v<ver> confirmed`
    AppConfirmed { version: Version },
    /// `app: v<ver> crash in init (drill)`
    AppCrashInInit { version: Version },
    /// `app: v<ver> crash: <why>`
    AppCrash { version: Version, why: &'a str },
    /// `app: v<ver> network disabled (drill)`
    AppNetworkDisabled { version: Version },
    /// `app: v<ver> hang (drill)`
    AppHang { version: Version },
    /// `checkin: version=<ver> state=<state> -> command=<command>`
    Checkin {
        version: Version,
        state: DeviceState,
        command: Command,
    },
    /// `checkin: failed reason=<why>`
    CheckinFailed { why: CheckinFailure },
    /// `update: offered manifest=<url>`
    UpdateOffered { manifest: &'a str },
    /// `update: manifest version=<ver> size=<bytes> chunks=<n> chunk_size=<bytes>`
    UpdateManifest {
        version: Version,
        size: u32,
        chunks: u32,
        chunk_size: u32,
    },
    /// `update: refused version=<ver> reason=<why>`; the version is `unknown` (`None`) when
    /// the manifest itself could not be read.
    UpdateRefused {
        version: Option<Version>,
        reason: Reason,
    },
    /// `download: start offset=0 total=<bytes>`
    DownloadStart { total: u32 },
    /// `download: resume offset=<bytes> chunk=<k>/<n>`
    DownloadResume {
        offset: u32,
        chunk: u32,
        chunks: u32,
    },
    /// `download: progress <k>/<n>`
    DownloadProgress { chunk: u32, chunks: u32 },
    /// `download: error reason=<why> retry=<k>/<max> in=<ms>ms`
    DownloadError {
        why: Why,
        retry: u32,
        max: u32,
        in_ms: u64,
    },
    /// `download: complete bytes=<n>`
    DownloadComplete { bytes: u32 },
    /// `verify: ok version=<ver>`
    VerifyOk { version: Version },
    /// `verify: failed reason=<why>`
    VerifyFailed { reason: Reason },
    /// `update: staged version=<ver>`
    UpdateStaged { version: Version },
    /// `update: manifest unavailable reason=<why>`
    ManifestUnavailable { why: Why },
    /// `update: failed reason=retries-exhausted`
    UpdateGaveUp,
    /// `rollback: refused reason=<why>`: the rollback is *not* done.
    RollbackRefused { reason: Reason },
    /// `rollback: command received to=<ver>`: the board resets into `to`.
    RollbackReceived { to: Version },
    /// `watchdog: expired`
    WatchdogExpired,
}

/// Why the bootloader went back to the previous image (`boot: revert ... reason=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevertReason {
    /// The trial image did not confirm within its boot attempts.
    TrialExhausted,
    /// The active image failed the boot checks.
    BadImage,
}

impl RevertReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TrialExhausted => "trial-exhausted",
            Self::BadImage => "bad-image",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        [Self::TrialExhausted, Self::BadImage]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// The state of the image about to run (`boot: slot=... state=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    Confirmed,
    Trial,
}

impl SlotState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Trial => "trial",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        [Self::Confirmed, Self::Trial]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// What a `boot: FATAL` line says. CONSOLE.md documents `no bootable image`; a board may say
/// more specific things (the Pico W bootloader: `flash error`, `panic: ...`): any FATAL line
/// means the board stays in its bootloader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fatal<'a> {
    /// `no bootable image`
    NoBootableImage,
    /// Any other (non-empty) text.
    Other(&'a str),
}

impl Fatal<'_> {
    const NO_BOOTABLE_IMAGE: &'static str = "no bootable image";

    pub fn as_str(&self) -> &str {
        match self {
            Self::NoBootableImage => Self::NO_BOOTABLE_IMAGE,
            Self::Other(s) => s,
        }
    }
}

/// A reason that may be an HTTP status (`status-<code>`): checkin failed, download error,
/// manifest unavailable. `status` is meaningful for [`Reason::Status`] only and is 0 otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Why {
    pub reason: Reason,
    pub status: u16,
}

impl Why {
    /// A reason that is not an HTTP status.
    pub const fn new(reason: Reason) -> Self {
        Self { reason, status: 0 }
    }

    /// An HTTP status reason (`status-<code>`).
    pub const fn status(code: u16) -> Self {
        Self {
            reason: Reason::Status,
            status: code,
        }
    }

    /// `status-<code>` or a reason name other than the bare `status`.
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(code) = s.strip_prefix("status-") {
            return number(code).map(Self::status);
        }
        match Reason::from_name(s)? {
            Reason::Status => None,
            r => Some(Self::new(r)),
        }
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            Reason::Status => write!(f, "status-{}", self.status),
            r => f.write_str(r.as_str()),
        }
    }
}

/// Why a check-in failed: a [`Why`], or an answer that is not a check-in response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckinFailure {
    /// `malformed`: the server answered, but not with a valid check-in response.
    Malformed,
    Why(Why),
}

impl CheckinFailure {
    fn parse(s: &str) -> Option<Self> {
        if s == "malformed" {
            Some(Self::Malformed)
        } else {
            Why::parse(s).map(Self::Why)
        }
    }
}

impl fmt::Display for CheckinFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed"),
            Self::Why(w) => w.fmt(f),
        }
    }
}

impl Line<'_> {
    /// The stage word the line starts with: `boot`, `app`, `checkin`, `update`, `download`,
    /// `verify`, `rollback` or `watchdog`.
    pub fn stage(&self) -> &'static str {
        match self {
            Self::BootBanner { .. }
            | Self::BootTrial { .. }
            | Self::BootRevert { .. }
            | Self::BootSlot { .. }
            | Self::BootRefuse { .. }
            | Self::BootFatal { .. }
            | Self::FactoryReset { .. }
            | Self::FactoryResetFailed { .. } => "boot",
            Self::AppStarting { .. }
            | Self::AppNetworkUp { .. }
            | Self::AppRunning { .. }
            | Self::AppConfirmed { .. }
            | Self::AppCrashInInit { .. }
            | Self::AppCrash { .. }
            | Self::AppNetworkDisabled { .. }
            | Self::AppHang { .. } => "app",
            Self::Checkin { .. } | Self::CheckinFailed { .. } => "checkin",
            Self::UpdateOffered { .. }
            | Self::UpdateManifest { .. }
            | Self::UpdateRefused { .. }
            | Self::UpdateStaged { .. }
            | Self::ManifestUnavailable { .. }
            | Self::UpdateGaveUp => "update",
            Self::DownloadStart { .. }
            | Self::DownloadResume { .. }
            | Self::DownloadProgress { .. }
            | Self::DownloadError { .. }
            | Self::DownloadComplete { .. } => "download",
            Self::VerifyOk { .. } | Self::VerifyFailed { .. } => "verify",
            Self::RollbackRefused { .. } | Self::RollbackReceived { .. } => "rollback",
            Self::WatchdogExpired => "watchdog",
        }
    }
}

#[cfg(test)]
mod tests;
