//! Outcomes and results: what a scenario run concluded, consumed by every report writer.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ota_core::Version;
use ota_core::console::{self, Line, SlotState};
use serde::Serialize;

use crate::timeline::Event;

/// How a board ended a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Ends confirmed on the offered release.
    Updated,
    /// Tried the new release (or was told to roll back) and ended confirmed on the previous one.
    RolledBack,
    /// Never activated anything new; ends confirmed on the image it started with.
    Unchanged,
    /// Boots nothing valid, or breaks an invariant: a firmware failure.
    Bricked,
    /// The rig, a port, a relay or the server failed: not the firmware's fault.
    InfraError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Updated => "updated",
            Self::RolledBack => "rolled-back",
            Self::Unchanged => "unchanged",
            Self::Bricked => "bricked",
            Self::InfraError => "infra-error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a board's console says about a scenario, for its verdict: each line is read once with
/// [`ota_core::console::parse`] and decided on by its variant, never by a substring. Lines that
/// are not CONSOLE.md lines (noise, debug prints, a crash text that quotes another line) say
/// nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleFacts {
    /// Every image the board started (`boot: slot=`), in order.
    pub boots: Vec<(Version, SlotState)>,
    /// The first `boot: FATAL` line: the board stays in its bootloader, nothing to run.
    pub fatal: Option<String>,
    /// The bootloader went back to the previous image (`boot: revert`).
    pub reverted: bool,
    /// The board obeyed a server rollback (`rollback: command received`). A refused one
    /// (`rollback: refused`) changes nothing and is not a rollback.
    pub rollback_obeyed: bool,
}

impl ConsoleFacts {
    /// Reads a board's console lines (in order).
    pub fn read<'a>(lines: impl IntoIterator<Item = &'a str>) -> Self {
        let mut facts = Self::default();
        for text in lines {
            let Some(line) = console::parse(text) else {
                continue;
            };
            match line {
                Line::BootSlot { version, state, .. } => facts.boots.push((version, state)),
                Line::BootFatal { .. } => {
                    if facts.fatal.is_none() {
                        facts.fatal = Some(line.to_string());
                    }
                }
                Line::BootRevert { .. } => facts.reverted = true,
                Line::RollbackReceived { .. } => facts.rollback_obeyed = true,
                // Listed rather than `_`: a new console line must be judged here.
                Line::BootBanner { .. }
                | Line::BootTrial { .. }
                | Line::BootRefuse { .. }
                | Line::FactoryReset { .. }
                | Line::FactoryResetFailed { .. }
                | Line::AppStarting { .. }
                | Line::AppNetworkUp { .. }
                | Line::AppRunning { .. }
                | Line::AppConfirmed { .. }
                | Line::AppCrashInInit { .. }
                | Line::AppCrash { .. }
                | Line::AppNetworkDisabled { .. }
                | Line::AppHang { .. }
                | Line::Checkin { .. }
                | Line::CheckinFailed { .. }
                | Line::UpdateOffered { .. }
                | Line::UpdateManifest { .. }
                | Line::UpdateRefused { .. }
                | Line::DownloadStart { .. }
                | Line::DownloadResume { .. }
                | Line::DownloadProgress { .. }
                | Line::DownloadError { .. }
                | Line::DownloadComplete { .. }
                | Line::VerifyOk { .. }
                | Line::VerifyFailed { .. }
                | Line::UpdateStaged { .. }
                | Line::ManifestUnavailable { .. }
                | Line::UpdateGaveUp
                | Line::RollbackRefused { .. }
                | Line::WatchdogExpired => {}
            }
        }
        facts
    }

    /// A firmware failure the console alone proves, whatever the board settled on: a FATAL
    /// boot (bricked), or a boot of an image in `forbidden` (unsigned or corrupt) or below
    /// `given` (a downgrade).
    pub fn broken(&self, given: Version, forbidden: &[Version]) -> Option<String> {
        if let Some(line) = &self.fatal {
            return Some(format!("bricked: `{line}`"));
        }
        self.boots.iter().find_map(|&(v, _)| {
            if forbidden.contains(&v) {
                Some(format!(
                    "invariant broken: the board ran {v}, an image it must refuse (unsigned or corrupt)"
                ))
            } else if v < given {
                Some(format!(
                    "invariant broken: the board ran {v}, below its starting version {given} (downgrade)"
                ))
            } else {
                None
            }
        })
    }

    /// Did the board leave `given` at some point: boot a trial image or another version, get
    /// reverted by its bootloader, or obey a rollback command?
    pub fn left(&self, given: Version) -> bool {
        self.reverted
            || self.rollback_obeyed
            || self
                .boots
                .iter()
                .any(|&(v, state)| v != given || state == SlotState::Trial)
    }

    /// The outcome of a board that started on `given` and settled, confirmed, on `settled`.
    pub fn outcome(&self, given: Version, settled: Version) -> Outcome {
        if settled > given {
            Outcome::Updated
        } else if settled < given {
            Outcome::Bricked
        } else if self.left(given) {
            Outcome::RolledBack
        } else {
            Outcome::Unchanged
        }
    }
}

/// Pass, fail (a firmware problem) or error (an infrastructure problem).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Passed,
    Failed,
    InfraError,
    /// Not run (e.g. `--ignored` filtering).
    Skipped,
}

/// One run of one scenario on one board.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// 1-based index when the scenario is repeated.
    pub index: u32,
    pub status: Status,
    /// What the board did, when it could be determined.
    pub observed: Option<Outcome>,
    /// Why the attempt did not pass: the first failed step, expectation or invariant.
    pub reason: Option<String>,
    pub duration: Duration,
    pub seed: u64,
    /// Resolved trigger points, e.g. `step 3: cut at flash op 212` (for exact replay).
    pub resolved: Vec<String>,
    /// The command that replays this attempt exactly.
    pub replay: String,
    /// Every event of the attempt, in time order.
    pub events: Vec<Event>,
    /// Raw logs written beside the report (console, http, flash), relative to the run dir.
    pub logs: Vec<PathBuf>,
}

/// A scenario and all its attempts.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub name: String,
    pub about: String,
    pub file: PathBuf,
    pub board: String,
    pub expected: Outcome,
    pub attempts: Vec<Attempt>,
    /// Why the scenario was not run on this board (no attempts), e.g. it needs a capability
    /// the board lacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl ScenarioResult {
    /// The scenario's status: infra error if any attempt had one, else failed if any failed.
    pub fn status(&self) -> Status {
        let has = |s| self.attempts.iter().any(|a| a.status == s);
        if self.attempts.is_empty() {
            Status::Skipped
        } else if has(Status::InfraError) {
            Status::InfraError
        } else if has(Status::Failed) {
            Status::Failed
        } else {
            Status::Passed
        }
    }

    /// Passed attempts over attempts run.
    pub fn pass_rate(&self) -> (usize, usize) {
        let passed = self
            .attempts
            .iter()
            .filter(|a| a.status == Status::Passed)
            .count();
        (passed, self.attempts.len())
    }

    pub fn duration(&self) -> Duration {
        self.attempts.iter().map(|a| a.duration).sum()
    }
}

/// A whole `rig run`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Schema version of `report.json`.
    pub schema: u32,
    /// `<UTC time>-<short id>`, also the report directory's name.
    pub run_id: String,
    /// RFC 3339 UTC start time.
    pub started: String,
    pub duration: Duration,
    pub rig_version: String,
    /// The command line that started the run.
    pub command: String,
    pub seed: u64,
    pub scenarios: Vec<ScenarioResult>,
    /// Set when the run was stopped by a signal: the report holds the scenarios that had
    /// finished by then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
}

impl RunReport {
    pub const SCHEMA: u32 = 1;

    /// (passed, failed, infra errors, skipped) scenario counts.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let count = |s| self.scenarios.iter().filter(|r| r.status() == s).count();
        (
            count(Status::Passed),
            count(Status::Failed),
            count(Status::InfraError),
            count(Status::Skipped),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: Version = Version::new(1, 0, 0);
    const V2: Version = Version::new(2, 0, 0);

    fn facts(lines: &[&str]) -> ConsoleFacts {
        ConsoleFacts::read(lines.iter().copied())
    }

    /// The first boot of a factory-fresh board on v1.
    const FACTORY_BOOT: [&str; 5] = [
        "boot: otarig-boot board=sim device=d reset=power-on",
        "boot: slot=a version=1.0.0 state=confirmed",
        "app: v1.0.0 starting drill=none",
        "app: v1.0.0 running",
        "checkin: version=1.0.0 state=confirmed -> command=none",
    ];

    #[test]
    fn an_update_that_confirms_is_updated() {
        let mut lines = FACTORY_BOOT.to_vec();
        lines.extend([
            "update: staged version=2.0.0",
            "boot: otarig-boot board=sim device=d reset=update",
            "boot: trial version=2.0.0 attempt=1/3",
            "boot: slot=b version=2.0.0 state=trial",
            "app: v2.0.0 confirmed",
        ]);
        let f = facts(&lines);
        assert_eq!(
            f.boots,
            [(V1, SlotState::Confirmed), (V2, SlotState::Trial)]
        );
        assert_eq!(f.broken(V1, &[]), None);
        assert_eq!(f.outcome(V1, V2), Outcome::Updated);
    }

    #[test]
    fn a_bootloader_revert_is_a_rollback() {
        let mut lines = FACTORY_BOOT.to_vec();
        lines.extend([
            "boot: otarig-boot board=sim device=d reset=watchdog",
            "boot: revert to=1.0.0 reason=trial-exhausted",
            "boot: slot=a version=1.0.0 state=confirmed",
        ]);
        let f = facts(&lines);
        assert!(f.reverted && !f.rollback_obeyed);
        assert_eq!(f.outcome(V1, V1), Outcome::RolledBack);
        // A revert of a bad image, seen alone, is a rollback too.
        let f = facts(&["boot: revert to=1.0.0 reason=bad-image"]);
        assert_eq!(f.outcome(V1, V1), Outcome::RolledBack);
    }

    #[test]
    fn a_trial_boot_or_another_version_is_a_rollback_when_back_on_given() {
        let f = facts(&["boot: slot=b version=2.0.0 state=confirmed"]);
        assert_eq!(f.outcome(V1, V1), Outcome::RolledBack);
        let f = facts(&["boot: slot=a version=1.0.0 state=trial"]);
        assert_eq!(f.outcome(V1, V1), Outcome::RolledBack);
    }

    #[test]
    fn an_obeyed_rollback_command_is_a_rollback() {
        let f = facts(&[
            "checkin: version=1.0.0 state=confirmed -> command=rollback",
            "rollback: command received to=1.0.0",
        ]);
        assert!(f.rollback_obeyed);
        assert_eq!(f.outcome(V1, V1), Outcome::RolledBack);
    }

    #[test]
    fn a_refused_rollback_on_the_factory_image_is_unchanged() {
        let mut lines = FACTORY_BOOT.to_vec();
        lines.extend([
            "checkin: version=1.0.0 state=confirmed -> command=rollback",
            "rollback: refused reason=no-previous",
            "checkin: version=1.0.0 state=confirmed -> command=none",
        ]);
        let f = facts(&lines);
        assert!(!f.rollback_obeyed && !f.reverted);
        assert_eq!(f.outcome(V1, V1), Outcome::Unchanged);
    }

    #[test]
    fn nothing_new_is_unchanged_and_ending_below_given_is_bricked() {
        let f = facts(&FACTORY_BOOT);
        assert_eq!(f.outcome(V1, V1), Outcome::Unchanged);
        assert_eq!(f.outcome(V2, V1), Outcome::Bricked);
    }

    #[test]
    fn a_fatal_boot_is_bricked() {
        let f = facts(&[
            "boot: otarig-boot board=sim device=d reset=update",
            "boot: refuse slot=a reason=missing-entry-point",
            "boot: FATAL no bootable image\r",
        ]);
        assert_eq!(
            f.broken(V1, &[]).as_deref(),
            Some("bricked: `boot: FATAL no bootable image`")
        );
        // The Pico W bootloader's own FATAL texts too.
        let f = facts(&["boot: FATAL flash error"]);
        assert_eq!(
            f.broken(V1, &[]).as_deref(),
            Some("bricked: `boot: FATAL flash error`")
        );
    }

    #[test]
    fn running_a_forbidden_or_older_image_breaks_an_invariant() {
        let f = facts(&[
            "boot: slot=a version=1.0.0 state=confirmed",
            "boot: slot=b version=2.0.0 state=trial",
        ]);
        let why = f.broken(V1, &[V2]).unwrap_or_default();
        assert!(why.contains("ran 2.0.0, an image it must refuse"), "{why}");
        let why = f.broken(V2, &[]).unwrap_or_default();
        assert!(
            why.contains("ran 1.0.0, below its starting version 2.0.0"),
            "{why}"
        );
        assert_eq!(f.broken(V1, &[]), None);
    }

    #[test]
    fn lines_that_only_look_like_verdict_lines_say_nothing() {
        let f = facts(&[
            "app: v1.0.0 crash: boot: FATAL no bootable image",
            "debug: rollback: command received to=1.0.0",
            "boot: revert",
            "boot: slot=b version=2.0 state=trial",
            "rollback: command received to=1.0.0 later",
            "sim-board stderr: boot: FATAL no bootable image",
        ]);
        assert_eq!(f, ConsoleFacts::default());
        assert_eq!(f.outcome(V1, V1), Outcome::Unchanged);
    }
}
