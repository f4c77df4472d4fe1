//! Mender phased deployments: every device belongs to one batch (`phases[].batch_size`, a
//! percentage of the deployment's devices), a batch starts at its `start_ts`, at most
//! `max_devices` devices take part, and a failed device is offered the artifact again up to
//! `retries` times. Mender itself never stops a deployment on failures: the only halt here is
//! the release manager's abort (`PUT /deployments/{id}/status: aborted`), when configured.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{FailureKind, HaltPolicy, PhaseStats, PolicyStatus, RolloutPolicy};

/// One Mender phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// `phase N` (Mender's phases have no names).
    pub name: String,
    /// `start_ts` on the server's clock, microseconds.
    pub start_us: u64,
    /// `batch_size` (percent of the deployment's devices).
    pub batch_size: u8,
}

/// A Mender deployment as the server plays it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchesConfig {
    pub batches: Vec<Batch>,
    /// Device id → batch index.
    pub assignment: BTreeMap<String, u8>,
    /// `max_devices`: no more devices than this are offered the artifact.
    #[serde(default)]
    pub max_devices: Option<u32>,
    /// `retries`: offers again after a failure.
    #[serde(default)]
    pub retries: u32,
    /// The release manager's abort rule (not a Mender feature: what the person watching the
    /// deployment does by hand).
    #[serde(default)]
    pub abort: Option<HaltPolicy>,
}

impl BatchesConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.batches.is_empty() || self.batches.len() > usize::from(u8::MAX) {
            return Err(format!(
                "batches: 1 to 255 batches, not {}",
                self.batches.len()
            ));
        }
        if let Some(w) = self
            .batches
            .windows(2)
            .position(|w| w[1].start_us < w[0].start_us)
        {
            return Err(format!(
                "batches[{}].start_us is before batches[{w}].start_us",
                w + 1
            ));
        }
        if let Some(a) = &self.abort {
            a.validate("abort")?;
        }
        Ok(())
    }
}

/// The policy of a [`BatchesConfig`].
#[derive(Debug)]
pub struct Batches {
    cfg: BatchesConfig,
    offered: u32,
}

impl Batches {
    pub fn new(cfg: BatchesConfig) -> Self {
        Self { cfg, offered: 0 }
    }

    fn open(&self, now_us: u64) -> usize {
        self.cfg
            .batches
            .iter()
            .take_while(|b| b.start_us <= now_us)
            .count()
    }
}

impl RolloutPolicy for Batches {
    fn admit(&mut self, device: &str, again: bool, now_us: u64) -> Option<u8> {
        let b = *self.cfg.assignment.get(device)?;
        if usize::from(b) >= self.open(now_us) {
            return None;
        }
        if again {
            return Some(b);
        }
        if self.cfg.max_devices.is_some_and(|m| self.offered >= m) {
            return None;
        }
        self.offered += 1;
        Some(b)
    }

    fn judge(&mut self, wave: u8, stats: &[PhaseStats], _now_us: u64) -> Option<String> {
        let abort = self.cfg.abort.as_ref()?;
        let why = abort.crossed(stats.get(usize::from(wave))?)?;
        Some(format!(
            "release manager aborted the deployment ({why}; Mender itself has no failure threshold)"
        ))
    }

    fn status(&self, now_us: u64) -> PolicyStatus {
        let open = self.open(now_us);
        let capped = self.cfg.max_devices.is_some_and(|m| self.offered >= m);
        PolicyStatus {
            model: "mender-batches".into(),
            wave: open.saturating_sub(1) as u8,
            all_open: open >= self.cfg.batches.len() || capped,
            detail: format!(
                "{open} of {} phase(s) started, {} device(s) offered{}",
                self.cfg.batches.len(),
                self.offered,
                match self.cfg.max_devices {
                    Some(m) if capped => format!(", max_devices {m} reached"),
                    Some(m) => format!(" of max_devices {m}"),
                    None => String::new(),
                }
            ),
        }
    }

    fn retries(&self, kind: FailureKind) -> u32 {
        match kind {
            FailureKind::Rejected | FailureKind::Failed => self.cfg.retries,
            FailureKind::TimedOut => 0,
        }
    }
}
