//! Outcomes and results: what a scenario run concluded, consumed by every report writer.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

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
