//! AWS IoT Jobs: no phases. The job notifies target things at a rate (`maximumPerMinute`, or
//! an exponential rate that starts at `baseRatePerMinute` and is multiplied by
//! `incrementFactor` each time another `numberOfNotifiedThings` were notified or
//! `numberOfSucceededThings` succeeded, up to `maximumPerMinute`), and cancels itself when an
//! `abortConfig` criterion is met: at least `minNumberOfExecutedThings` notified and failures
//! of the criterion's `failureType` at or above `thresholdPercentage` of them.
//!
//! Here a notification is an offer made at a check-in: a device that checks in while the
//! current minute's budget is spent is not notified, and hears of the job at a later check-in.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{FailureKind, PhaseStats, PolicyStatus, RolloutPolicy, share};

const MINUTE_US: u64 = 60_000_000;

/// `failureType`: one kind of failure, or `ALL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureType {
    All,
    Failed,
    Rejected,
    TimedOut,
}

impl FailureType {
    pub fn kind(self) -> Option<FailureKind> {
        match self {
            Self::All => None,
            Self::Failed => Some(FailureKind::Failed),
            Self::Rejected => Some(FailureKind::Rejected),
            Self::TimedOut => Some(FailureKind::TimedOut),
        }
    }

    pub fn covers(self, kind: FailureKind) -> bool {
        self.kind().is_none_or(|k| k == kind)
    }

    pub fn as_str(self) -> &'static str {
        self.kind().map_or("ALL", FailureKind::as_str)
    }
}

/// `exponentialRate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExponentialRate {
    pub base_per_minute: u32,
    pub increment_factor: f64,
    /// `rateIncreaseCriteria.numberOfNotifiedThings`.
    #[serde(default)]
    pub notified: Option<u32>,
    /// `rateIncreaseCriteria.numberOfSucceededThings`.
    #[serde(default)]
    pub succeeded: Option<u32>,
}

/// One `abortConfig.criteriaList` entry (`action` is always `CANCEL`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbortCriterion {
    pub failure_type: FailureType,
    pub min_executed: u32,
    /// Percent, 0..=100.
    pub threshold_percent: f64,
}

/// An AWS IoT job's rollout as the server plays it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// `jobExecutionsRolloutConfig.maximumPerMinute` (AWS's default: 1000).
    pub maximum_per_minute: u32,
    #[serde(default)]
    pub exponential: Option<ExponentialRate>,
    #[serde(default)]
    pub abort: Vec<AbortCriterion>,
    /// `timeoutConfig.inProgressTimeoutInMinutes`, in microseconds.
    #[serde(default)]
    pub in_progress_timeout_us: Option<u64>,
    /// `jobExecutionsRetryConfig.criteriaList`: (failure type, numberOfRetries).
    #[serde(default)]
    pub retries: Vec<(FailureType, u32)>,
    /// The job's targets (`None`: every device that checks in).
    #[serde(default)]
    pub targets: Option<BTreeSet<String>>,
}

impl RateConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.maximum_per_minute == 0 {
            return Err("maximum_per_minute: at least 1".into());
        }
        if let Some(e) = &self.exponential {
            if e.base_per_minute == 0 {
                return Err("exponential.base_per_minute: at least 1".into());
            }
            if !(1.0..=5.0).contains(&e.increment_factor) {
                return Err(format!(
                    "exponential.increment_factor: {} is not between 1 and 5",
                    e.increment_factor
                ));
            }
            if e.notified.is_some() == e.succeeded.is_some() {
                return Err(
                    "exponential: exactly one of notified or succeeded (rateIncreaseCriteria)"
                        .into(),
                );
            }
        }
        for (i, a) in self.abort.iter().enumerate() {
            if !(0.0..=100.0).contains(&a.threshold_percent) || a.min_executed == 0 {
                return Err(format!(
                    "abort[{i}]: threshold_percent 0..=100 and min_executed at least 1"
                ));
            }
        }
        Ok(())
    }
}

/// The policy of a [`RateConfig`].
#[derive(Debug)]
pub struct RateLimited {
    cfg: RateConfig,
    /// Notifications per minute now.
    rate: f64,
    minute: u64,
    in_minute: u32,
    notified: u32,
    /// Counts at the last rate increase.
    notified_mark: u32,
    succeeded_mark: u32,
}

impl RateLimited {
    pub fn new(cfg: RateConfig) -> Self {
        let rate = cfg
            .exponential
            .as_ref()
            .map_or(f64::from(cfg.maximum_per_minute), |e| {
                f64::from(e.base_per_minute.min(cfg.maximum_per_minute))
            });
        Self {
            cfg,
            rate,
            minute: u64::MAX,
            in_minute: 0,
            notified: 0,
            notified_mark: 0,
            succeeded_mark: 0,
        }
    }

    fn increase(&mut self) {
        if let Some(e) = &self.cfg.exponential {
            self.rate =
                (self.rate * e.increment_factor).min(f64::from(self.cfg.maximum_per_minute));
        }
    }

    /// Notifications per minute now.
    pub fn rate(&self) -> f64 {
        self.rate
    }
}

impl RolloutPolicy for RateLimited {
    fn admit(&mut self, device: &str, again: bool, now_us: u64) -> Option<u8> {
        if self
            .cfg
            .targets
            .as_ref()
            .is_some_and(|t| !t.contains(device))
        {
            return None;
        }
        if again {
            return Some(0);
        }
        let minute = now_us / MINUTE_US;
        if minute != self.minute {
            self.minute = minute;
            self.in_minute = 0;
        }
        if f64::from(self.in_minute) + 1.0 > self.rate.floor().max(1.0) {
            return None;
        }
        self.in_minute += 1;
        self.notified += 1;
        if let Some(n) = self.cfg.exponential.as_ref().and_then(|e| e.notified)
            && self.notified - self.notified_mark >= n
        {
            self.notified_mark = self.notified;
            self.increase();
        }
        Some(0)
    }

    fn judge(&mut self, _wave: u8, stats: &[PhaseStats], _now_us: u64) -> Option<String> {
        let job = PhaseStats::total(stats);
        if let Some(n) = self.cfg.exponential.as_ref().and_then(|e| e.succeeded)
            && job.updated.saturating_sub(self.succeeded_mark) >= n
        {
            self.succeeded_mark = job.updated;
            self.increase();
        }
        for (i, a) in self.cfg.abort.iter().enumerate() {
            let failures = job.failures(a.failure_type.kind());
            let pct = share(failures, job.offered) * 100.0;
            if job.offered >= a.min_executed && failures > 0 && pct >= a.threshold_percent {
                return Some(format!(
                    "abortConfig.criteriaList[{i}]: {} {pct:.1}% ({failures} of {} notified things) >= thresholdPercentage {} with minNumberOfExecutedThings {} -> CANCEL",
                    a.failure_type.as_str(),
                    job.offered,
                    a.threshold_percent,
                    a.min_executed
                ));
            }
        }
        None
    }

    fn status(&self, _now_us: u64) -> PolicyStatus {
        PolicyStatus {
            model: "aws-iot-rate".into(),
            wave: 0,
            all_open: true,
            detail: format!(
                "{:.0} notifications/min (maximumPerMinute {}), {} thing(s) notified",
                self.rate.floor().max(1.0),
                self.cfg.maximum_per_minute,
                self.notified
            ),
        }
    }

    fn retries(&self, kind: FailureKind) -> u32 {
        // AWS retries FAILED and TIMED_OUT executions (ALL = both); a rejection is final.
        if kind == FailureKind::Rejected {
            return 0;
        }
        self.cfg
            .retries
            .iter()
            .filter(|(t, _)| t.covers(kind))
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0)
    }

    fn timeout_us(&self) -> Option<u64> {
        self.cfg.in_progress_timeout_us
    }
}
