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
use crate::device::Reset;
use crate::layout::slot_name;
use crate::payload::Drill;
use crate::{Reason, Version};

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

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BootBanner {
                board,
                device,
                reset,
            } => write!(
                f,
                "boot: otarig-boot board={board} device={device} reset={}",
                reset.as_str()
            ),
            Self::BootTrial {
                version,
                attempt,
                max,
            } => write!(f, "boot: trial version={version} attempt={attempt}/{max}"),
            Self::BootRevert { to, reason } => {
                write!(f, "boot: revert to={to} reason={}", reason.as_str())
            }
            Self::BootSlot {
                slot,
                version,
                state,
            } => write!(
                f,
                "boot: slot={} version={version} state={}",
                slot_name(slot),
                state.as_str()
            ),
            Self::BootRefuse { slot, reason } => {
                write!(f, "boot: refuse slot={} reason={reason}", slot_name(slot))
            }
            Self::BootFatal { why } => write!(f, "boot: FATAL {}", why.as_str()),
            Self::FactoryReset { version } => write!(f, "boot: factory reset version={version}"),
            Self::FactoryResetFailed { reason } => {
                write!(f, "boot: factory reset failed reason={reason}")
            }
            Self::AppStarting { version, drill } => {
                write!(f, "app: v{version} starting drill={}", drill.as_str())
            }
            Self::AppNetworkUp { version } => write!(f, "app: v{version} network up"),
            Self::AppRunning { version } => write!(f, "app: v{version} running"),
            Self::AppConfirmed { version } => write!(f, "app: v{version} confirmed"),
            Self::AppCrashInInit { version } => write!(f, "app: v{version} crash in init (drill)"),
            Self::AppCrash { version, why } => write!(f, "app: v{version} crash: {why}"),
            Self::AppNetworkDisabled { version } => {
                write!(f, "app: v{version} network disabled (drill)")
            }
            Self::AppHang { version } => write!(f, "app: v{version} hang (drill)"),
            Self::Checkin {
                version,
                state,
                command,
            } => write!(
                f,
                "checkin: version={version} state={} -> command={}",
                state.as_str(),
                command.as_str()
            ),
            Self::CheckinFailed { why } => write!(f, "checkin: failed reason={why}"),
            Self::UpdateOffered { manifest } => write!(f, "update: offered manifest={manifest}"),
            Self::UpdateManifest {
                version,
                size,
                chunks,
                chunk_size,
            } => write!(
                f,
                "update: manifest version={version} size={size} chunks={chunks} chunk_size={chunk_size}"
            ),
            Self::UpdateRefused {
                version: Some(version),
                reason,
            } => write!(f, "update: refused version={version} reason={reason}"),
            Self::UpdateRefused {
                version: None,
                reason,
            } => write!(f, "update: refused version=unknown reason={reason}"),
            Self::DownloadStart { total } => write!(f, "download: start offset=0 total={total}"),
            Self::DownloadResume {
                offset,
                chunk,
                chunks,
            } => write!(f, "download: resume offset={offset} chunk={chunk}/{chunks}"),
            Self::DownloadProgress { chunk, chunks } => {
                write!(f, "download: progress {chunk}/{chunks}")
            }
            Self::DownloadError {
                why,
                retry,
                max,
                in_ms,
            } => write!(
                f,
                "download: error reason={why} retry={retry}/{max} in={in_ms}ms"
            ),
            Self::DownloadComplete { bytes } => write!(f, "download: complete bytes={bytes}"),
            Self::VerifyOk { version } => write!(f, "verify: ok version={version}"),
            Self::VerifyFailed { reason } => write!(f, "verify: failed reason={reason}"),
            Self::UpdateStaged { version } => write!(f, "update: staged version={version}"),
            Self::ManifestUnavailable { why } => {
                write!(f, "update: manifest unavailable reason={why}")
            }
            Self::UpdateGaveUp => f.write_str("update: failed reason=retries-exhausted"),
            Self::RollbackRefused { reason } => write!(f, "rollback: refused reason={reason}"),
            Self::RollbackReceived { to } => write!(f, "rollback: command received to={to}"),
            Self::WatchdogExpired => f.write_str("watchdog: expired"),
        }
    }
}

/// Reads one console line (without its `\n`; one trailing `\r` is ignored). `None` for any
/// line that is not exactly one of CONSOLE.md's lines.
pub fn parse(line: &str) -> Option<Line<'_>> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    // Console lines are printable text: a control character (another CR, a NUL from a noisy
    // UART) makes the line no event, so free text can never smuggle a line ending through.
    if line.bytes().any(|b| b < 0x20 || b == 0x7F) {
        return None;
    }
    let (stage, rest) = line.split_once(": ")?;
    let mut w = Words::new(rest);
    let parsed = match stage {
        "boot" => boot(&mut w)?,
        "app" => app(&mut w)?,
        "checkin" => checkin(&mut w)?,
        "update" => update(&mut w)?,
        "download" => download(&mut w)?,
        "verify" => match w.word()? {
            "ok" => Line::VerifyOk {
                version: w.field("version", version)?,
            },
            "failed" => Line::VerifyFailed {
                reason: w.field("reason", Reason::from_name)?,
            },
            _ => return None,
        },
        "rollback" => match w.word()? {
            "refused" => Line::RollbackRefused {
                reason: w.field("reason", Reason::from_name)?,
            },
            "command" => {
                w.expect("received")?;
                Line::RollbackReceived {
                    to: w.field("to", version)?,
                }
            }
            _ => return None,
        },
        "watchdog" => {
            w.expect("expired")?;
            Line::WatchdogExpired
        }
        _ => return None,
    };
    w.end()?;
    Some(parsed)
}

fn boot<'a>(w: &mut Words<'a>) -> Option<Line<'a>> {
    let first = w.word()?;
    if let Some(s) = first.strip_prefix("slot=") {
        return Some(Line::BootSlot {
            slot: slot(s)?,
            version: w.field("version", version)?,
            state: w.field("state", SlotState::from_name)?,
        });
    }
    Some(match first {
        "otarig-boot" => Line::BootBanner {
            board: w.field("board", Some)?,
            device: w.field("device", Some)?,
            reset: w.field("reset", reset)?,
        },
        "trial" => {
            let version = w.field("version", version)?;
            let (attempt, max) = w.field("attempt", ratio)?;
            Line::BootTrial {
                version,
                attempt,
                max,
            }
        }
        "revert" => Line::BootRevert {
            to: w.field("to", version)?,
            reason: w.field("reason", RevertReason::from_name)?,
        },
        "refuse" => Line::BootRefuse {
            slot: w.field("slot", slot)?,
            reason: w.field("reason", Reason::from_name)?,
        },
        "FATAL" => Line::BootFatal {
            why: match w.tail()? {
                Fatal::NO_BOOTABLE_IMAGE => Fatal::NoBootableImage,
                other => Fatal::Other(other),
            },
        },
        "factory" => {
            w.expect("reset")?;
            if w.peek_is("failed") {
                w.expect("failed")?;
                Line::FactoryResetFailed {
                    reason: w.field("reason", Reason::from_name)?,
                }
            } else {
                Line::FactoryReset {
                    version: w.field("version", version)?,
                }
            }
        }
        _ => return None,
    })
}

fn app<'a>(w: &mut Words<'a>) -> Option<Line<'a>> {
    let v = version(w.word()?.strip_prefix('v')?)?;
    Some(match w.word()? {
        "starting" => Line::AppStarting {
            version: v,
            drill: w.field("drill", Drill::from_name)?,
        },
        "network" => match w.word()? {
            "up" => Line::AppNetworkUp { version: v },
            "disabled" => {
                w.expect("(drill)")?;
                Line::AppNetworkDisabled { version: v }
            }
            _ => return None,
        },
        "running" => Line::AppRunning { version: v },
        "confirmed" => Line::AppConfirmed { version: v },
        "crash" => {
            for word in ["in", "init", "(drill)"] {
                w.expect(word)?;
            }
            Line::AppCrashInInit { version: v }
        }
        "crash:" => Line::AppCrash {
            version: v,
            why: w.tail()?,
        },
        "hang" => {
            w.expect("(drill)")?;
            Line::AppHang { version: v }
        }
        _ => return None,
    })
}

fn checkin<'a>(w: &mut Words<'a>) -> Option<Line<'a>> {
    if w.peek_is("failed") {
        w.expect("failed")?;
        return Some(Line::CheckinFailed {
            why: w.field("reason", CheckinFailure::parse)?,
        });
    }
    let version = w.field("version", version)?;
    let state = w.field("state", device_state)?;
    w.expect("->")?;
    Some(Line::Checkin {
        version,
        state,
        command: w.field("command", command)?,
    })
}

fn update<'a>(w: &mut Words<'a>) -> Option<Line<'a>> {
    Some(match w.word()? {
        "offered" => Line::UpdateOffered {
            manifest: w.field("manifest", Some)?,
        },
        "manifest" if w.peek_is("unavailable") => {
            w.expect("unavailable")?;
            Line::ManifestUnavailable {
                why: w.field("reason", Why::parse)?,
            }
        }
        "manifest" => Line::UpdateManifest {
            version: w.field("version", version)?,
            size: w.field("size", number)?,
            chunks: w.field("chunks", number)?,
            chunk_size: w.field("chunk_size", number)?,
        },
        "refused" => Line::UpdateRefused {
            version: w.field("version", |s| match s {
                "unknown" => Some(None),
                s => version(s).map(Some),
            })?,
            reason: w.field("reason", Reason::from_name)?,
        },
        "staged" => Line::UpdateStaged {
            version: w.field("version", version)?,
        },
        "failed" => {
            w.expect("reason=retries-exhausted")?;
            Line::UpdateGaveUp
        }
        _ => return None,
    })
}

fn download<'a>(w: &mut Words<'a>) -> Option<Line<'a>> {
    Some(match w.word()? {
        "start" => {
            w.expect("offset=0")?;
            Line::DownloadStart {
                total: w.field("total", number)?,
            }
        }
        "resume" => {
            let offset = w.field("offset", number)?;
            let (chunk, chunks) = w.field("chunk", ratio)?;
            Line::DownloadResume {
                offset,
                chunk,
                chunks,
            }
        }
        "progress" => {
            let (chunk, chunks) = ratio(w.word()?)?;
            Line::DownloadProgress { chunk, chunks }
        }
        "error" => {
            let why = w.field("reason", Why::parse)?;
            let (retry, max) = w.field("retry", ratio)?;
            let in_ms = w.field("in", |s| number(s.strip_suffix("ms")?))?;
            Line::DownloadError {
                why,
                retry,
                max,
                in_ms,
            }
        }
        "complete" => Line::DownloadComplete {
            bytes: w.field("bytes", number)?,
        },
        _ => return None,
    })
}

/// The words of a line after its stage, separated by exactly one space.
struct Words<'a> {
    /// `None` once the last word was taken.
    rest: Option<&'a str>,
}

impl<'a> Words<'a> {
    fn new(rest: &'a str) -> Self {
        Self { rest: Some(rest) }
    }

    /// The next word (never empty).
    fn word(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let word = match s.split_once(' ') {
            Some((word, rest)) => {
                self.rest = Some(rest);
                word
            }
            None => {
                self.rest = None;
                s
            }
        };
        (!word.is_empty()).then_some(word)
    }

    fn peek_is(&self, word: &str) -> bool {
        self.rest.is_some_and(|s| s.split(' ').next() == Some(word))
    }

    fn expect(&mut self, word: &str) -> Option<()> {
        (self.word()? == word).then_some(())
    }

    /// The next word as `key=<value>`, the value read with `read`.
    fn field<T>(&mut self, key: &str, read: impl FnOnce(&'a str) -> Option<T>) -> Option<T> {
        let value = self.word()?.strip_prefix(key)?.strip_prefix('=')?;
        if value.is_empty() {
            return None;
        }
        read(value)
    }

    /// Everything left (free text, never empty).
    fn tail(&mut self) -> Option<&'a str> {
        self.rest.take().filter(|s| !s.is_empty())
    }

    fn end(&self) -> Option<()> {
        self.rest.is_none().then_some(())
    }
}

/// A canonical decimal number: digits only, no sign, no leading zero.
fn number<T: core::str::FromStr>(s: &str) -> Option<T> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

/// `<k>/<n>`.
fn ratio(s: &str) -> Option<(u32, u32)> {
    let (k, n) = s.split_once('/')?;
    Some((number(k)?, number(n)?))
}

/// Exactly `major.minor.patch`.
fn version(s: &str) -> Option<Version> {
    let mut parts = s.split('.');
    let v = Version::new(
        number(parts.next()?)?,
        number(parts.next()?)?,
        number(parts.next()?)?,
    );
    parts.next().is_none().then_some(v)
}

fn slot(s: &str) -> Option<u8> {
    (0..2u8).find(|&i| slot_name(i) == s)
}

// The reverse of `as_str` for closed sets defined elsewhere. Beside each list, an exhaustive
// match: a new variant there stops this file compiling, as a reminder to list it.

fn reset(s: &str) -> Option<Reset> {
    const ALL: [Reset; 6] = [
        Reset::PowerOn,
        Reset::Watchdog,
        Reset::Panic,
        Reset::Update,
        Reset::Rollback,
        Reset::Reboot,
    ];
    let _listed = |r: Reset| match r {
        Reset::PowerOn
        | Reset::Watchdog
        | Reset::Panic
        | Reset::Update
        | Reset::Rollback
        | Reset::Reboot => (),
    };
    ALL.into_iter().find(|r| r.as_str() == s)
}

fn device_state(s: &str) -> Option<DeviceState> {
    const ALL: [DeviceState; 4] = [
        DeviceState::Confirmed,
        DeviceState::Trial,
        DeviceState::Updating,
        DeviceState::Reverted,
    ];
    let _listed = |d: DeviceState| match d {
        DeviceState::Confirmed
        | DeviceState::Trial
        | DeviceState::Updating
        | DeviceState::Reverted => (),
    };
    ALL.into_iter().find(|d| d.as_str() == s)
}

fn command(s: &str) -> Option<Command> {
    const ALL: [Command; 3] = [Command::None, Command::Update, Command::Rollback];
    let _listed = |c: Command| match c {
        Command::None | Command::Update | Command::Rollback => (),
    };
    ALL.into_iter().find(|c| c.as_str() == s)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const V1: Version = Version::new(1, 0, 0);
    const V2: Version = Version::new(2, 0, 0);

    /// Exact text → variant → the same text.
    fn check(text: &str, line: Line<'_>) {
        assert_eq!(parse(text), Some(line), "parse of `{text}`");
        assert_eq!(line.to_string(), text);
    }

    #[test]
    fn boot_banner() {
        check(
            "boot: otarig-boot board=sim device=dev-1 reset=power-on",
            Line::BootBanner {
                board: "sim",
                device: "dev-1",
                reset: Reset::PowerOn,
            },
        );
        check(
            "boot: otarig-boot board=pico-w device=e6614103e7 reset=watchdog",
            Line::BootBanner {
                board: "pico-w",
                device: "e6614103e7",
                reset: Reset::Watchdog,
            },
        );
    }

    #[test]
    fn boot_trial() {
        check(
            "boot: trial version=2.0.0 attempt=1/3",
            Line::BootTrial {
                version: V2,
                attempt: 1,
                max: 3,
            },
        );
    }

    #[test]
    fn boot_revert() {
        check(
            "boot: revert to=1.0.0 reason=trial-exhausted",
            Line::BootRevert {
                to: V1,
                reason: RevertReason::TrialExhausted,
            },
        );
        check(
            "boot: revert to=1.0.0 reason=bad-image",
            Line::BootRevert {
                to: V1,
                reason: RevertReason::BadImage,
            },
        );
    }

    #[test]
    fn boot_slot() {
        check(
            "boot: slot=a version=1.0.0 state=confirmed",
            Line::BootSlot {
                slot: 0,
                version: V1,
                state: SlotState::Confirmed,
            },
        );
        check(
            "boot: slot=b version=2.0.0 state=trial",
            Line::BootSlot {
                slot: 1,
                version: V2,
                state: SlotState::Trial,
            },
        );
    }

    #[test]
    fn boot_refuse() {
        check(
            "boot: refuse slot=b reason=missing-entry-point",
            Line::BootRefuse {
                slot: 1,
                reason: Reason::MissingEntryPoint,
            },
        );
    }

    #[test]
    fn boot_fatal() {
        check(
            "boot: FATAL no bootable image",
            Line::BootFatal {
                why: Fatal::NoBootableImage,
            },
        );
        // The Pico W bootloader's own FATAL texts are FATAL too.
        check(
            "boot: FATAL flash error",
            Line::BootFatal {
                why: Fatal::Other("flash error"),
            },
        );
        assert_eq!(parse("boot: FATAL"), None);
        assert_eq!(parse("boot: FATAL "), None);
    }

    #[test]
    fn factory_reset() {
        check(
            "boot: factory reset version=1.0.0",
            Line::FactoryReset { version: V1 },
        );
    }

    #[test]
    fn factory_reset_failed() {
        check(
            "boot: factory reset failed reason=bad-header",
            Line::FactoryResetFailed {
                reason: Reason::BadHeader,
            },
        );
    }

    #[test]
    fn app_starting() {
        check(
            "app: v2.0.0 starting drill=none",
            Line::AppStarting {
                version: V2,
                drill: Drill::None,
            },
        );
        check(
            "app: v2.0.0 starting drill=slow-boot",
            Line::AppStarting {
                version: V2,
                drill: Drill::SlowBoot,
            },
        );
    }

    #[test]
    fn app_network_up() {
        check("app: v2.0.0 network up", Line::AppNetworkUp { version: V2 });
    }

    #[test]
    fn app_running() {
        check("app: v1.0.0 running", Line::AppRunning { version: V1 });
    }

    #[test]
    fn app_confirmed() {
        check("app: v2.0.0 confirmed", Line::AppConfirmed { version: V2 });
    }

    #[test]
    fn app_crash_in_init() {
        check(
            "app: v2.0.0 crash in init (drill)",
            Line::AppCrashInInit { version: V2 },
        );
    }

    #[test]
    fn app_crash() {
        check(
            "app: v2.0.0 crash: no app at the entry point",
            Line::AppCrash {
                version: V2,
                why: "no app at the entry point",
            },
        );
    }

    #[test]
    fn app_network_disabled() {
        check(
            "app: v2.0.0 network disabled (drill)",
            Line::AppNetworkDisabled { version: V2 },
        );
    }

    #[test]
    fn app_hang() {
        check("app: v2.0.0 hang (drill)", Line::AppHang { version: V2 });
    }

    #[test]
    fn checkin_answered() {
        check(
            "checkin: version=2.0.0 state=trial -> command=none",
            Line::Checkin {
                version: V2,
                state: DeviceState::Trial,
                command: Command::None,
            },
        );
        check(
            "checkin: version=1.0.0 state=confirmed -> command=rollback",
            Line::Checkin {
                version: V1,
                state: DeviceState::Confirmed,
                command: Command::Rollback,
            },
        );
    }

    #[test]
    fn checkin_failed() {
        check(
            "checkin: failed reason=status-503",
            Line::CheckinFailed {
                why: CheckinFailure::Why(Why::status(503)),
            },
        );
        check(
            "checkin: failed reason=timeout",
            Line::CheckinFailed {
                why: CheckinFailure::Why(Why::new(Reason::Timeout)),
            },
        );
        check(
            "checkin: failed reason=malformed",
            Line::CheckinFailed {
                why: CheckinFailure::Malformed,
            },
        );
    }

    #[test]
    fn update_offered() {
        check(
            "update: offered manifest=/v1/manifest/2.0.0",
            Line::UpdateOffered {
                manifest: "/v1/manifest/2.0.0",
            },
        );
    }

    #[test]
    fn update_manifest() {
        check(
            "update: manifest version=2.0.0 size=131328 chunks=33 chunk_size=4096",
            Line::UpdateManifest {
                version: V2,
                size: 131_328,
                chunks: 33,
                chunk_size: 4096,
            },
        );
    }

    #[test]
    fn update_refused() {
        check(
            "update: refused version=3.0.0 reason=rollback-counter",
            Line::UpdateRefused {
                version: Some(Version::new(3, 0, 0)),
                reason: Reason::RollbackCounter,
            },
        );
        check(
            "update: refused version=unknown reason=bad-manifest-signature",
            Line::UpdateRefused {
                version: None,
                reason: Reason::BadManifestSignature,
            },
        );
    }

    #[test]
    fn download_start() {
        check(
            "download: start offset=0 total=131328",
            Line::DownloadStart { total: 131_328 },
        );
        assert_eq!(parse("download: start offset=5 total=131328"), None);
    }

    #[test]
    fn download_resume() {
        check(
            "download: resume offset=5120 chunk=5/10",
            Line::DownloadResume {
                offset: 5120,
                chunk: 5,
                chunks: 10,
            },
        );
    }

    #[test]
    fn download_progress() {
        check(
            "download: progress 3/10",
            Line::DownloadProgress {
                chunk: 3,
                chunks: 10,
            },
        );
    }

    #[test]
    fn download_error() {
        check(
            "download: error reason=status-503 retry=1/8 in=2000ms",
            Line::DownloadError {
                why: Why::status(503),
                retry: 1,
                max: 8,
                in_ms: 2000,
            },
        );
        check(
            "download: error reason=ignored-range retry=3/8 in=200ms",
            Line::DownloadError {
                why: Why::new(Reason::IgnoredRange),
                retry: 3,
                max: 8,
                in_ms: 200,
            },
        );
    }

    #[test]
    fn download_complete() {
        check(
            "download: complete bytes=131328",
            Line::DownloadComplete { bytes: 131_328 },
        );
    }

    #[test]
    fn verify_ok() {
        check("verify: ok version=2.0.0", Line::VerifyOk { version: V2 });
    }

    #[test]
    fn verify_failed() {
        check(
            "verify: failed reason=bad-signature",
            Line::VerifyFailed {
                reason: Reason::BadSignature,
            },
        );
    }

    #[test]
    fn update_staged() {
        check(
            "update: staged version=2.0.0",
            Line::UpdateStaged { version: V2 },
        );
    }

    #[test]
    fn manifest_unavailable() {
        check(
            "update: manifest unavailable reason=status-404",
            Line::ManifestUnavailable {
                why: Why::status(404),
            },
        );
        check(
            "update: manifest unavailable reason=connect",
            Line::ManifestUnavailable {
                why: Why::new(Reason::Connect),
            },
        );
    }

    #[test]
    fn update_gave_up() {
        check(
            "update: failed reason=retries-exhausted",
            Line::UpdateGaveUp,
        );
        assert_eq!(parse("update: failed reason=timeout"), None);
    }

    #[test]
    fn rollback_refused() {
        check(
            "rollback: refused reason=no-previous",
            Line::RollbackRefused {
                reason: Reason::NoPrevious,
            },
        );
    }

    #[test]
    fn rollback_received() {
        check(
            "rollback: command received to=1.0.0",
            Line::RollbackReceived { to: V1 },
        );
    }

    #[test]
    fn watchdog_expired() {
        check("watchdog: expired", Line::WatchdogExpired);
    }

    #[test]
    fn stages() {
        for line in samples(V2, 3, 8, 250, 1, "x") {
            assert!(
                line.to_string().starts_with(&format!("{}: ", line.stage())),
                "{line}"
            );
        }
    }

    #[test]
    fn strict() {
        for bad in [
            "",
            "boot:",
            // Control characters: free text cannot carry a line ending or noise.
            "boot: FATAL x\r\r",
            "boot: FATAL x\0y",
            "app: v1.0.0 crash: a\u{7f}",
            "boot: slot=c version=1.0.0 state=trial",
            "boot: slot=a version=1.0 state=trial",
            "boot: slot=a version=01.0.0 state=trial",
            "boot: slot=a version=1.0.0 state=trial ",
            "boot: slot=a  version=1.0.0 state=trial",
            "boot: slot=a version=1.0.0 state=trial extra",
            "boot: slot=a version=1.0.0",
            "boot: otarig-boot board= device=x reset=power-on",
            "boot: otarig-boot board=sim device=x reset=brownout",
            "app: 2.0.0 running",
            "app: v2.0.0 runnin",
            "app: v2.0.0 crash: ",
            "checkin: failed reason=status",
            "checkin: failed reason=status-+5",
            "checkin: failed reason=status-70000",
            "download: progress +3/10",
            "download: error reason=timeout retry=1/8 in=20",
            "rollback: command received",
            "rollback: refused reason=whatever",
            "watchdog: expired!",
            "Boot: slot=a version=1.0.0 state=trial",
            "sim-board: power cut at flash op 3",
        ] {
            assert_eq!(parse(bad), None, "`{bad}` must not parse");
        }
        // One trailing carriage return is tolerated.
        assert_eq!(
            parse("app: v1.0.0 running\r"),
            Some(Line::AppRunning { version: V1 })
        );
    }

    #[test]
    fn why_round_trips() {
        assert_eq!(Why::status(503).to_string(), "status-503");
        assert_eq!(Why::new(Reason::Timeout).to_string(), "timeout");
        assert_eq!(Why::parse("status"), None);
        assert_eq!(Why::parse("status-0"), Some(Why::status(0)));
    }

    /// A variant's position, by an exhaustive match: a new variant must be added here, which
    /// the coverage tests then ask for in `samples` and in CONSOLE.md.
    fn variant(line: &Line<'_>) -> usize {
        match line {
            Line::BootBanner { .. } => 0,
            Line::BootTrial { .. } => 1,
            Line::BootRevert { .. } => 2,
            Line::BootSlot { .. } => 3,
            Line::BootRefuse { .. } => 4,
            Line::BootFatal { .. } => 5,
            Line::FactoryReset { .. } => 6,
            Line::FactoryResetFailed { .. } => 7,
            Line::AppStarting { .. } => 8,
            Line::AppNetworkUp { .. } => 9,
            Line::AppRunning { .. } => 10,
            Line::AppConfirmed { .. } => 11,
            Line::AppCrashInInit { .. } => 12,
            Line::AppCrash { .. } => 13,
            Line::AppNetworkDisabled { .. } => 14,
            Line::AppHang { .. } => 15,
            Line::Checkin { .. } => 16,
            Line::CheckinFailed { .. } => 17,
            Line::UpdateOffered { .. } => 18,
            Line::UpdateManifest { .. } => 19,
            Line::UpdateRefused { .. } => 20,
            Line::DownloadStart { .. } => 21,
            Line::DownloadResume { .. } => 22,
            Line::DownloadProgress { .. } => 23,
            Line::DownloadError { .. } => 24,
            Line::DownloadComplete { .. } => 25,
            Line::VerifyOk { .. } => 26,
            Line::VerifyFailed { .. } => 27,
            Line::UpdateStaged { .. } => 28,
            Line::ManifestUnavailable { .. } => 29,
            Line::UpdateGaveUp => 30,
            Line::RollbackRefused { .. } => 31,
            Line::RollbackReceived { .. } => 32,
            Line::WatchdogExpired => 33,
        }
    }
    const VARIANTS: usize = 34;

    /// One line of every variant, built from the given values.
    fn samples<'a>(v: Version, k: u32, n: u32, ms: u64, slot: u8, text: &'a str) -> Vec<Line<'a>> {
        let why = if k.is_multiple_of(2) {
            Why::status(n as u16)
        } else {
            Why::new(Reason::ChunkHash)
        };
        vec![
            Line::BootBanner {
                board: text,
                device: text,
                reset: Reset::Rollback,
            },
            Line::BootTrial {
                version: v,
                attempt: k,
                max: n,
            },
            Line::BootRevert {
                to: v,
                reason: RevertReason::BadImage,
            },
            Line::BootSlot {
                slot,
                version: v,
                state: SlotState::Trial,
            },
            Line::BootRefuse {
                slot,
                reason: Reason::BadHash,
            },
            Line::BootFatal {
                why: Fatal::Other(text),
            },
            Line::FactoryReset { version: v },
            Line::FactoryResetFailed {
                reason: Reason::BadHeader,
            },
            Line::AppStarting {
                version: v,
                drill: Drill::CrashOnRevB,
            },
            Line::AppNetworkUp { version: v },
            Line::AppRunning { version: v },
            Line::AppConfirmed { version: v },
            Line::AppCrashInInit { version: v },
            Line::AppCrash {
                version: v,
                why: text,
            },
            Line::AppNetworkDisabled { version: v },
            Line::AppHang { version: v },
            Line::Checkin {
                version: v,
                state: DeviceState::Updating,
                command: Command::Update,
            },
            Line::CheckinFailed {
                why: CheckinFailure::Why(why),
            },
            Line::UpdateOffered { manifest: text },
            Line::UpdateManifest {
                version: v,
                size: k,
                chunks: n,
                chunk_size: k,
            },
            Line::UpdateRefused {
                version: Some(v),
                reason: Reason::Downgrade,
            },
            Line::DownloadStart { total: n },
            Line::DownloadResume {
                offset: k,
                chunk: k,
                chunks: n,
            },
            Line::DownloadProgress {
                chunk: k,
                chunks: n,
            },
            Line::DownloadError {
                why,
                retry: k,
                max: n,
                in_ms: ms,
            },
            Line::DownloadComplete { bytes: n },
            Line::VerifyOk { version: v },
            Line::VerifyFailed {
                reason: Reason::WrongBoard,
            },
            Line::UpdateStaged { version: v },
            Line::ManifestUnavailable { why },
            Line::UpdateGaveUp,
            Line::RollbackRefused {
                reason: Reason::Flash,
            },
            Line::RollbackReceived { to: v },
            Line::WatchdogExpired,
        ]
    }

    #[test]
    fn samples_cover_every_variant() {
        let seen: BTreeSet<usize> = samples(V1, 1, 2, 3, 0, "x").iter().map(variant).collect();
        assert_eq!(seen, (0..VARIANTS).collect());
    }

    /// The backticked line patterns of CONSOLE.md's two tables (`\|` unescaped).
    fn documented_patterns() -> Vec<String> {
        let doc = include_str!("../../CONSOLE.md");
        let mut patterns = Vec::new();
        let mut in_tables = false;
        for row in doc.lines() {
            if row.starts_with("## ") {
                in_tables = row.starts_with("## Bootloader") || row.starts_with("## Application");
                continue;
            }
            let Some(cell) = row.strip_prefix("| `").filter(|_| in_tables) else {
                continue;
            };
            let end = cell.find("` |").expect("a backticked first cell");
            patterns.push(cell[..end].replace("\\|", "|"));
        }
        patterns
    }

    /// Sample text for a placeholder: one per choice of a closed set (`<a|b>`), else one value.
    fn fill(name: &str) -> Vec<String> {
        if name.contains('|') {
            return name
                .split('|')
                .filter(|c| *c != "...")
                .map(String::from)
                .collect();
        }
        let sample = match name {
            "kind" => "sim",
            "id" => "dev-7",
            "ver" => "2.1.3",
            "n" | "k" | "max" => "3",
            "bytes" => "4096",
            "ms" => "250",
            "url" => "/v1/manifest/2.1.3",
            "why" => "bad-header",
            "code" => "503",
            other => panic!("CONSOLE.md has a new placeholder <{other}>: give it a sample here"),
        };
        vec![sample.to_string()]
    }

    /// Every line a pattern stands for (each choice of every closed set).
    fn instances(pattern: &str) -> Vec<String> {
        let Some(open) = pattern.find('<') else {
            return vec![pattern.to_string()];
        };
        let close = open + pattern[open..].find('>').expect("a closed placeholder");
        let mut out = Vec::new();
        for value in fill(&pattern[open + 1..close]) {
            for rest in instances(&pattern[close + 1..]) {
                out.push(format!("{}{value}{rest}", &pattern[..open]));
            }
        }
        out
    }

    #[test]
    fn every_documented_line_has_a_variant() {
        let patterns = documented_patterns();
        assert_eq!(
            patterns.len(),
            VARIANTS,
            "CONSOLE.md table rows: {patterns:#?}"
        );
        let mut seen = BTreeSet::new();
        for pattern in &patterns {
            let mut kinds = BTreeSet::new();
            for text in instances(pattern) {
                let line = parse(&text)
                    .unwrap_or_else(|| panic!("`{text}` (CONSOLE.md `{pattern}`) has no variant"));
                assert_eq!(line.to_string(), text);
                kinds.insert(variant(&line));
            }
            assert_eq!(kinds.len(), 1, "`{pattern}` parses as several variants");
            assert!(
                seen.insert(kinds.into_iter().next().unwrap_or_default()),
                "`{pattern}` parses as the variant of another row"
            );
        }
        assert_eq!(
            seen,
            (0..VARIANTS).collect(),
            "a variant without a CONSOLE.md row"
        );
    }

    #[test]
    fn every_documented_reason_parses() {
        let doc = include_str!("../../CONSOLE.md");
        let list = doc
            .split_once("Reasons used in")
            .expect("the reasons paragraph")
            .1
            .split_once(":\n")
            .expect("the reasons list")
            .1
            .split("\n\n")
            .next()
            .unwrap_or_default();
        let names: Vec<&str> = list.split('`').skip(1).step_by(2).collect();
        assert!(names.len() > 20, "{names:?}");
        for name in names {
            for text in instances(name) {
                assert!(Why::parse(&text).is_some(), "reason `{text}`");
                let line = format!("download: error reason={text} retry=1/8 in=25ms");
                assert!(parse(&line).is_some(), "{line}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }

        /// Line-shaped noise: whatever parses displays as exactly its input.
        #[test]
        fn whatever_parses_displays_as_its_input(
            s in "(boot|app|checkin|update|download|verify|rollback|watchdog): [a-z0-9v=./>:() -]{0,60}\r?"
        ) {
            if let Some(line) = parse(&s) {
                proptest::prop_assert_eq!(line.to_string(), s.strip_suffix('\r').unwrap_or(&s));
            }
        }

        #[test]
        fn every_variant_round_trips(
            (major, minor, patch) in proptest::arbitrary::any::<(u16, u16, u16)>(),
            k in proptest::arbitrary::any::<u32>(),
            n in proptest::arbitrary::any::<u32>(),
            ms in proptest::arbitrary::any::<u64>(),
            slot in 0u8..2,
            text in "[!-~]{1,20}",
        ) {
            let v = Version::new(major, minor, patch);
            for line in samples(v, k, n, ms, slot, &text) {
                let printed = line.to_string();
                proptest::prop_assert_eq!(parse(&printed), Some(line));
            }
        }
    }
}
