//! hawkBit rollout groups: every target belongs to one group, decided when the rollout is
//! created; the first group starts with the rollout, and each next group starts when the
//! running one meets its success condition (`successAction: NEXTGROUP`). A group whose error
//! condition is met pauses the rollout (`errorAction: PAUSE`). Both conditions are hawkBit's
//! `THRESHOLD`: a percentage of the group's targets (finished successfully / in error).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{PhaseStats, PolicyStatus, RolloutPolicy, share};

/// One rollout group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    /// Targets in the group.
    pub size: u32,
    /// `successCondition THRESHOLD`: share (0..=1) of the group's targets that must have
    /// finished successfully before the next group starts.
    pub success_threshold: f64,
    /// `errorCondition THRESHOLD`: share (0..=1) of the group's targets in error that pauses
    /// the rollout (`None`: no error condition).
    #[serde(default)]
    pub error_threshold: Option<f64>,
}

/// A hawkBit rollout as the server plays it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsConfig {
    pub groups: Vec<Group>,
    /// Device id → group index (targets outside the rollout are absent).
    pub assignment: BTreeMap<String, u8>,
}

impl GroupsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.groups.is_empty() || self.groups.len() > usize::from(u8::MAX) {
            return Err(format!(
                "groups: 1 to 255 groups, not {}",
                self.groups.len()
            ));
        }
        for (i, g) in self.groups.iter().enumerate() {
            for (field, v) in [
                ("success_threshold", Some(g.success_threshold)),
                ("error_threshold", g.error_threshold),
            ] {
                if let Some(v) = v
                    && !(0.0..=1.0).contains(&v)
                {
                    return Err(format!(
                        "groups[{i}].{field}: {v} is not a share between 0 and 1"
                    ));
                }
            }
        }
        if let Some((d, g)) = self
            .assignment
            .iter()
            .find(|(_, g)| usize::from(**g) >= self.groups.len())
        {
            return Err(format!(
                "assignment: device {d} is in group {g}, past the last group"
            ));
        }
        Ok(())
    }
}

/// The policy of a [`GroupsConfig`].
#[derive(Debug)]
pub struct Groups {
    cfg: GroupsConfig,
    /// The last group started.
    running: u8,
}

impl Groups {
    pub fn new(cfg: GroupsConfig) -> Self {
        Self { cfg, running: 0 }
    }
}

impl RolloutPolicy for Groups {
    fn admit(&mut self, device: &str, _again: bool, _now_us: u64) -> Option<u8> {
        let g = *self.cfg.assignment.get(device)?;
        (g <= self.running).then_some(g)
    }

    fn judge(&mut self, wave: u8, stats: &[PhaseStats], _now_us: u64) -> Option<String> {
        let at = |i: u8| stats.get(usize::from(i)).copied().unwrap_or_default();
        if let Some(g) = self.cfg.groups.get(usize::from(wave))
            && let Some(t) = g.error_threshold
        {
            let s = at(wave);
            let errors = s.failures(None);
            if errors > 0 && share(errors, g.size) >= t {
                return Some(format!(
                    "group `{}`: errorCondition THRESHOLD {:.0}% met ({errors} of {} targets in error) -> errorAction PAUSE",
                    g.name,
                    t * 100.0,
                    g.size
                ));
            }
        }
        // successAction NEXTGROUP, possibly several times (a group with no targets is done).
        while usize::from(self.running) + 1 < self.cfg.groups.len() {
            let g = &self.cfg.groups[usize::from(self.running)];
            let done = at(self.running).updated;
            if g.size > 0 && share(done, g.size) < g.success_threshold {
                break;
            }
            self.running += 1;
        }
        None
    }

    fn status(&self, _now_us: u64) -> PolicyStatus {
        let g = &self.cfg.groups[usize::from(self.running).min(self.cfg.groups.len() - 1)];
        PolicyStatus {
            model: "hawkbit-groups".into(),
            wave: self.running,
            all_open: usize::from(self.running) + 1 >= self.cfg.groups.len(),
            detail: format!(
                "group `{}` ({} of {}) running",
                g.name,
                self.running + 1,
                self.cfg.groups.len()
            ),
        }
    }
}
