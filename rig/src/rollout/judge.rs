//! The release manager's judgement of a native runbook's phase, from the server's telemetry
//! only (what a person watching the rollout would see).

use tracing::info;

use super::device_id;
use super::runbook::Runbook;

/// The verdict on a phase at the end of its soak.
#[derive(Debug, Clone, Default)]
pub struct PhaseVerdict {
    pub passes: bool,
    pub offered: u32,
    pub silent: u32,
    pub updated_in_time: u32,
    pub eligible: u32,
    pub note: String,
}

/// How many devices of a fleet of `devices` each phase adds (its engineering list, or the
/// cohorts between the previous phase's percentage and its own): a phase whose band holds no
/// device has nothing to wait for; one whose devices were never reached must not pass.
pub(super) fn phase_members(rollout: &fake_server::Rollout, devices: u32) -> Vec<u32> {
    let mut members = vec![0u32; rollout.percents.len()];
    for i in 0..devices {
        let id = device_id(i);
        let phase = if rollout.engineering.contains(&id) {
            Some(0)
        } else {
            let c = fake_server::cohort(&id);
            rollout.percents.iter().position(|p| c < u32::from(*p))
        };
        if let Some(m) = phase.and_then(|p| members.get_mut(p)) {
            *m += 1;
        }
    }
    members
}

/// The last phase passed: the rollout completes only if the devices reached over the whole
/// rollout meet the success criterion too (otherwise the last phase stays held).
pub(super) fn judge_reached(
    rb: &Runbook,
    server: &fake_server::ServerHandle,
    mut v: PhaseVerdict,
) -> PhaseVerdict {
    let (reached, updated) = server.with_devices(|devices| {
        let (mut reached, mut updated) = (0u32, 0u32);
        for r in devices {
            if r.offered.contains(&rb.to) {
                reached += 1;
                updated += u32::from(r.updated_at_us.is_some());
            }
        }
        (reached, updated)
    });
    let share = f64::from(updated) / f64::from(reached.max(1));
    if reached == 0 || share < rb.success.updated.0 {
        v.passes = false;
        v.note = format!(
            "held: {updated} of {reached} device(s) reached over the rollout run the release ({:.0}% < {})",
            share * 100.0,
            rb.success.updated
        );
    }
    v
}

/// Judges a phase from the server's telemetry only (what a release manager would see):
/// silent devices hold it, too few updates in time hold it, a phase whose devices were never
/// reached (or not yet given time to update) is held, otherwise it passes.
pub(super) fn judge_phase(
    rb: &Runbook,
    server: &fake_server::ServerHandle,
    phase: usize,
    members: u32,
    now: u64,
    checkin_ms: u64,
) -> PhaseVerdict {
    let now_us = now * 1000;
    let within_us = rb.success.within.0.as_micros() as u64;
    let silent_after_us = 2 * checkin_ms * 1000;
    let mut v = PhaseVerdict::default();
    server.with_devices(|devices| {
        for r in devices {
            if r.offered_in_phase != Some(phase as u8) || !r.offered.contains(&rb.to) {
                continue;
            }
            v.offered += 1;
            let silent = now_us.saturating_sub(r.last_checkin_us) > silent_after_us;
            if silent {
                v.silent += 1;
                continue;
            }
            let offered_at = r.offered_at_us.unwrap_or(now_us);
            if offered_at + within_us <= now_us {
                v.eligible += 1;
                if r.updated_at_us.is_some_and(|u| u <= offered_at + within_us) {
                    v.updated_in_time += 1;
                }
            } else if r.updated_at_us.is_some() {
                // Offered recently and already done: counts for the phase.
                v.eligible += 1;
                v.updated_in_time += 1;
            }
        }
    });
    let silent_share = f64::from(v.silent) / f64::from(v.offered.max(1));
    let updated_share = if v.eligible == 0 {
        1.0
    } else {
        f64::from(v.updated_in_time) / f64::from(v.eligible)
    };
    if members > 0 && v.offered == 0 {
        v.note = format!("held: none of the phase's {members} device(s) reached yet");
    } else if members > 0 && v.eligible == 0 {
        v.note = format!(
            "held: none of the {} device(s) offered has had {} to update yet",
            v.offered, rb.success.within
        );
    } else if silent_share > rb.halt.missing_checkins.0 {
        v.note = format!(
            "held: {} of {} offered device(s) silent ({:.0}% > {}), not blamed on the release",
            v.silent,
            v.offered,
            silent_share * 100.0,
            rb.halt.missing_checkins
        );
    } else if updated_share < rb.success.updated.0 {
        v.note = format!(
            "held: {} of {} device(s) updated within {} ({:.0}% < {})",
            v.updated_in_time,
            v.eligible,
            rb.success.within,
            updated_share * 100.0,
            rb.success.updated
        );
    } else {
        v.passes = true;
        v.note = format!(
            "passed: {} of {} updated within {}, {} silent",
            v.updated_in_time, v.eligible, rb.success.within, v.silent
        );
    }
    info!(phase, note = %v.note, "phase judged");
    v
}
