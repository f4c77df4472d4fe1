//! The drill's expectations (`expect:`) checked against what happened.

use super::HOUR;
use super::fleet::SimDevice;
use super::report::{Check, HaltReport, PhaseReport};
use super::runbook::{RolloutOutcome, Runbook};

/// What the checks look at.
pub struct Facts<'a> {
    pub outcome: RolloutOutcome,
    pub bricked: u32,
    pub failed: u32,
    pub halt: Option<&'a HaltReport>,
    pub fleet: &'a [&'a SimDevice],
    pub phases: &'a [PhaseReport],
    /// Pause windows (simulated ms).
    pub pauses: &'a [(u64, u64)],
}

pub fn evaluate(rb: &Runbook, f: &Facts<'_>) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut check = |name: &str, passed: bool, detail: String| {
        checks.push(Check {
            name: name.to_string(),
            passed,
            detail,
        })
    };
    check(
        "outcome",
        f.outcome == rb.expect.outcome,
        format!("expected {:?}, got {:?}", rb.expect.outcome, f.outcome),
    );
    check(
        "bricked",
        f.bricked <= rb.expect.bricked,
        format!(
            "{} bricked device(s), at most {} allowed",
            f.bricked, rb.expect.bricked
        ),
    );
    if let Some(max) = rb.expect.failed {
        check(
            "failed",
            f.failed <= max,
            format!(
                "{} device(s) failed the release (server telemetry), at most {max} allowed",
                f.failed
            ),
        );
    }
    if !rb.expect.halted_in.is_empty() {
        let phase = f.halt.map(|h| h.phase.clone());
        check(
            "halted_in",
            phase
                .as_ref()
                .is_some_and(|p| rb.expect.halted_in.contains(p)),
            format!(
                "halt fired in {}, expected one of {:?}",
                phase.as_deref().unwrap_or("no phase"),
                rb.expect.halted_in
            ),
        );
    }
    if rb.expect.affected_restored {
        let from_version = rb.images[&rb.from].version.0.to_string();
        let affected: Vec<&&SimDevice> = f
            .fleet
            .iter()
            .filter(|d| d.tally.offered_at.is_some())
            .collect();
        let off_version: Vec<&str> = affected
            .iter()
            .filter(|d| d.installed().as_deref() != Some(from_version.as_str()))
            .map(|d| d.id.as_str())
            .collect();
        check(
            "affected_restored",
            off_version.is_empty() && !affected.is_empty(),
            format!(
                "{} of {} device(s) offered {} run {} again{}",
                affected.len() - off_version.len(),
                affected.len(),
                rb.to,
                from_version,
                if off_version.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; not restored: {}",
                        off_version
                            .iter()
                            .take(10)
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
        );
    }
    if rb.expect.held {
        let held: Vec<&str> = f
            .phases
            .iter()
            .filter(|p| p.held_for_h > 0.0)
            .map(|p| p.name.as_str())
            .collect();
        check(
            "held",
            !held.is_empty() && f.halt.is_none(),
            format!(
                "phases held for missing check-ins: {held:?}; halts: {}",
                u8::from(f.halt.is_some())
            ),
        );
    }
    if rb.expect.no_offers_while_paused {
        let while_paused = f
            .fleet
            .iter()
            .filter(|d| d.tally.offered_while_paused)
            .count();
        let late = f
            .fleet
            .iter()
            .filter(|d| {
                d.tally
                    .offered_at
                    .is_some_and(|t| f.pauses.iter().any(|&(a, b)| t > a && t < b))
            })
            .count();
        check(
            "no_offers_while_paused",
            while_paused + late == 0 && !f.pauses.is_empty(),
            format!(
                "{} offer(s) while paused (pause windows: {:?} h)",
                while_paused + late,
                f.pauses
                    .iter()
                    .map(|(a, b)| (*a as f64 / HOUR as f64, *b as f64 / HOUR as f64))
                    .collect::<Vec<_>>()
            ),
        );
    }
    checks
}
