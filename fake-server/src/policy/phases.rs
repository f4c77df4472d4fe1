//! otarig's own phases: a percentage table over stable cohorts (plus an engineering list), the
//! phase moved by the release manager (the rig), and hawkBit-style halting on a phase's error
//! rate or self-reverts.

use serde::{Deserialize, Serialize};

use super::{Halt, PhaseStats, PolicyStatus, RolloutPolicy, share};

/// Staged rollout state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// Index into `percents` (0 = engineering list only).
    pub phase: u8,
    #[serde(default = "default_percents")]
    pub percents: Vec<u8>,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub engineering: Vec<String>,
    /// Pause the rollout by itself when a phase crosses a threshold (hawkBit's error
    /// threshold).
    #[serde(default)]
    pub halt: Option<HaltPolicy>,
    /// Set by the server when it halted the rollout, and why.
    #[serde(default)]
    pub halted: Option<Halt>,
}

/// When the server halts a rollout on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaltPolicy {
    /// Failed devices / devices offered in the current phase at or above this (0.0..=1.0).
    pub error_rate: f64,
    /// Judge the error rate only once this many devices were offered in the phase.
    #[serde(default = "default_min_sample")]
    pub min_sample: u32,
    /// Halt when this many devices of the phase rolled back by themselves (trial failed).
    #[serde(default)]
    pub max_rollbacks: Option<u32>,
}

fn default_min_sample() -> u32 {
    10
}

fn default_percents() -> Vec<u8> {
    vec![0, 1, 10, 50, 100]
}

impl Default for Rollout {
    fn default() -> Self {
        Self {
            phase: 4,
            percents: default_percents(),
            paused: false,
            engineering: Vec::new(),
            halt: None,
            halted: None,
        }
    }
}

impl Rollout {
    /// Checks the phase against the percentage table.
    pub fn validate(&self) -> Result<(), String> {
        if usize::from(self.phase) >= self.percents.len() {
            return Err(format!(
                "phase {} is past the percentage table {:?} (phases 0..={})",
                self.phase,
                self.percents,
                self.percents.len().saturating_sub(1)
            ));
        }
        if let Some(p) = self.percents.iter().find(|&&p| p > 100) {
            return Err(format!("percentage {p} is above 100"));
        }
        if let Some(h) = &self.halt {
            h.validate("halt")?;
        }
        Ok(())
    }

    /// Is `device` in the current phase? (A phase past the table counts as 100%.)
    pub fn includes(&self, device: &str) -> bool {
        if self.engineering.iter().any(|d| d == device) {
            return true;
        }
        let pct = self
            .percents
            .get(usize::from(self.phase))
            .copied()
            .unwrap_or(100);
        cohort(device) < u32::from(pct)
    }
}

impl HaltPolicy {
    pub(crate) fn validate(&self, field: &str) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(format!(
                "{field}.error_rate {} must be a fraction between 0 and 1",
                self.error_rate
            ));
        }
        Ok(())
    }

    /// Why `s` (one wave's counters) crosses this policy, if it does.
    pub fn crossed(&self, s: &PhaseStats) -> Option<String> {
        let rate = share(s.failed, s.offered);
        if s.offered >= self.min_sample && s.failed > 0 && rate >= self.error_rate {
            Some(format!(
                "error rate {:.1}% ({} failed of {} offered) reached the threshold {:.1}%",
                rate * 100.0,
                s.failed,
                s.offered,
                self.error_rate * 100.0
            ))
        } else if let Some(max) = self.max_rollbacks
            && s.rolled_back >= max
        {
            Some(format!(
                "{} devices rolled back (threshold {max})",
                s.rolled_back
            ))
        } else {
            None
        }
    }
}

/// A device's stable cohort, 0..100 (FNV-1a of its id).
pub fn cohort(device: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in device.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % 100
}

/// The policy of a [`Rollout`].
#[derive(Debug)]
pub struct Phases {
    rollout: Rollout,
}

impl Phases {
    pub fn new(rollout: Rollout) -> Self {
        Self { rollout }
    }
}

impl RolloutPolicy for Phases {
    fn admit(&mut self, device: &str, _again: bool, _now_us: u64) -> Option<u8> {
        self.rollout.includes(device).then_some(self.rollout.phase)
    }

    fn judge(&mut self, wave: u8, stats: &[PhaseStats], _now_us: u64) -> Option<String> {
        let policy = self.rollout.halt.as_ref()?;
        policy.crossed(stats.get(usize::from(wave))?)
    }

    fn status(&self, _now_us: u64) -> PolicyStatus {
        let r = &self.rollout;
        PolicyStatus {
            model: "phases".into(),
            wave: r.phase,
            all_open: usize::from(r.phase) + 1 >= r.percents.len(),
            detail: format!(
                "phase {} ({}%)",
                r.phase,
                r.percents.get(usize::from(r.phase)).copied().unwrap_or(100)
            ),
        }
    }
}
