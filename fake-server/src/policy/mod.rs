//! Rollout policies: which device is offered the release when, and when the server halts the
//! rollout by itself. One trait, [`RolloutPolicy`], and one implementation per backend model:
//!
//! | policy | backend model | offers | halts |
//! |---|---|---|---|
//! | [`Phases`] (config [`Rollout`]) | otarig runbooks | a percentage table by stable cohort, the release manager moves the phase | error rate / rollbacks of a phase ([`HaltPolicy`]) |
//! | [`Groups`] | hawkBit rollout groups | its group, once the group has started; a group starts when the previous one met its success condition | a group's error condition (`errorAction: PAUSE`) |
//! | [`RateLimited`] | AWS IoT Jobs | whoever checks in while the minute's notification budget lasts (constant or exponential rate) | `abortConfig` criteria (`CANCEL`) |
//! | [`Batches`] | Mender phased deployments | its batch, once the batch's `start_ts` has passed, up to `max_devices` | only the release manager's abort (Mender has no failure threshold) |
//!
//! Policies are pure: time comes in as `now_us` (the server's clock), and they never see a
//! request. The [`crate::registry::Registry`] owns the accounting and calls them.
//!
//! Failures are counted the way AWS IoT Jobs names them ([`FailureKind`]): a device that
//! refused the release for a reason that blames it (signature, hash, header, anti-rollback...)
//! *rejected* it; one that booted it and came back reverted *failed* it; one offered it that
//! neither updated nor failed within the policy's in-progress timeout *timed out*. Network
//! trouble is never a failure.

mod batches;
mod groups;
mod phases;
mod rate;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use batches::{Batch, Batches, BatchesConfig};
pub use groups::{Group, Groups, GroupsConfig};
pub use phases::{HaltPolicy, Phases, Rollout, cohort};
pub use rate::{AbortCriterion, ExponentialRate, FailureType, RateConfig, RateLimited};

/// How a device failed a release, in AWS IoT Jobs' terms (`failureType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureKind {
    /// Refused before running it: a reason that blames the release (bad signature, bad hash,
    /// bad header, anti-rollback...), reported after the device downloaded it.
    Rejected,
    /// Ran it and came back on the previous image (trial failed, reverted).
    Failed,
    /// Offered it, and neither updated nor failed within the in-progress timeout (silent, or
    /// stuck downloading).
    TimedOut,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "REJECTED",
            Self::Failed => "FAILED",
            Self::TimedOut => "TIMED_OUT",
        }
    }
}

/// What happened to one release in one wave (a phase, a hawkBit group, a Mender batch; a rate
/// limiter has a single wave, the job), as the server saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseStats {
    /// Devices first offered the release during this wave.
    pub offered: u32,
    /// Of those, devices that checked in running it, confirmed.
    pub updated: u32,
    /// Of those, devices that failed it for good (rejected it, or reverted), after retries.
    pub failed: u32,
    /// Of the failed, those whose trial boot failed and reverted by themselves.
    pub rolled_back: u32,
    /// Of the failed, those that refused it ([`FailureKind::Rejected`]).
    #[serde(default)]
    pub rejected: u32,
    /// Devices whose execution timed out ([`FailureKind::TimedOut`]; not in `failed`: the
    /// device may still finish).
    #[serde(default)]
    pub timed_out: u32,
    /// Failures that were retried (the device was offered the release again).
    #[serde(default)]
    pub retried: u32,
}

impl PhaseStats {
    /// Failures of `kind` (`None`: all of them, AWS's `ALL`).
    pub fn failures(&self, kind: Option<FailureKind>) -> u32 {
        match kind {
            Some(FailureKind::Rejected) => self.rejected,
            Some(FailureKind::Failed) => self.failed - self.rejected,
            Some(FailureKind::TimedOut) => self.timed_out,
            None => self.failed + self.timed_out,
        }
    }

    /// The sum over several waves.
    pub fn total(all: &[PhaseStats]) -> PhaseStats {
        all.iter().fold(PhaseStats::default(), |a, s| PhaseStats {
            offered: a.offered + s.offered,
            updated: a.updated + s.updated,
            failed: a.failed + s.failed,
            rolled_back: a.rolled_back + s.rolled_back,
            rejected: a.rejected + s.rejected,
            timed_out: a.timed_out + s.timed_out,
            retried: a.retried + s.retried,
        })
    }
}

/// Why and when the server halted a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Halt {
    pub release: String,
    /// The wave whose counters crossed the threshold.
    pub phase: u8,
    pub reason: String,
    pub failed: u32,
    pub rolled_back: u32,
    pub offered: u32,
    /// Server clock, microseconds.
    pub at_us: u64,
}

/// Where a policy stands, in its backend's own words (for reports).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyStatus {
    /// `phases`, `hawkbit-groups`, `aws-iot-rate`, `mender-batches`.
    pub model: String,
    /// The wave new offers go to (a group or batch that has started; 0 for a rate limiter).
    pub wave: u8,
    /// Every wave has started (nothing more will open).
    pub all_open: bool,
    /// One line, e.g. `group 2 of 4 running; rate 40/min`.
    pub detail: String,
}

/// Decides offers and halts for one rollout. Call order: [`admit`](Self::admit) for each
/// eligible device at its check-in (eligible: running an older version, never failed the
/// release, rollout not paused); [`judge`](Self::judge) after a wave's counters change (an
/// offer, an update, a failure); [`status`](Self::status) whenever.
pub trait RolloutPolicy: Send + fmt::Debug {
    /// The wave `device` is offered the release in at `now_us`, or `None` (not its turn).
    /// `again`: it was offered the release before (its answer may have been lost, or it is
    /// retrying); a policy that counts offers against a budget counts only first offers.
    fn admit(&mut self, device: &str, again: bool, now_us: u64) -> Option<u8>;
    /// `stats` are every wave's counters after a change in `wave`; `Some(reason)` halts the
    /// rollout. A policy may also move on (start the next group) here.
    fn judge(&mut self, wave: u8, stats: &[PhaseStats], now_us: u64) -> Option<String>;
    /// Where it stands.
    fn status(&self, now_us: u64) -> PolicyStatus;
    /// How many times a device is offered the release again after a failure of `kind`.
    fn retries(&self, kind: FailureKind) -> u32 {
        let _ = kind;
        0
    }
    /// An offered device that has neither updated nor failed after this long timed out.
    fn timeout_us(&self) -> Option<u64> {
        None
    }
}

/// A rollout policy as data (`PUT /_control/policy`, the rig's imported runbooks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "kebab-case", deny_unknown_fields)]
pub enum PolicyConfig {
    /// otarig's own runbooks (the default: phase 4 = 100%).
    Phases(Rollout),
    /// hawkBit rollout groups.
    HawkbitGroups(GroupsConfig),
    /// AWS IoT Jobs rollout and abort configuration.
    AwsIotRate(RateConfig),
    /// Mender phased deployment.
    MenderBatches(BatchesConfig),
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self::Phases(Rollout::default())
    }
}

impl PolicyConfig {
    /// Checks the values; `Err` says which field is wrong.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Self::Phases(r) => r.validate(),
            Self::HawkbitGroups(g) => g.validate(),
            Self::AwsIotRate(r) => r.validate(),
            Self::MenderBatches(b) => b.validate(),
        }
    }

    /// The policy that acts on this configuration.
    pub fn build(&self) -> Box<dyn RolloutPolicy> {
        match self {
            Self::Phases(r) => Box::new(Phases::new(r.clone())),
            Self::HawkbitGroups(g) => Box::new(Groups::new(g.clone())),
            Self::AwsIotRate(r) => Box::new(RateLimited::new(r.clone())),
            Self::MenderBatches(b) => Box::new(Batches::new(b.clone())),
        }
    }
}

/// A share `n / of` (0 when `of` is 0).
pub(crate) fn share(n: u32, of: u32) -> f64 {
    if of == 0 {
        0.0
    } else {
        f64::from(n) / f64::from(of)
    }
}
