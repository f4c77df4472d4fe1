//! Printing a [`Line`]: the exact text of each CONSOLE.md line.

use core::fmt;

use super::*;

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
