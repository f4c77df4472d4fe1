//! How long the machine waits: the board's timing policy, check-in spacing and jitter.

use super::{State, Updater};
use crate::state::Mode;

/// Timing and board policy: every wait the device does is derived from these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Time between check-ins.
    pub checkin_interval_ms: u64,
    /// A trial image that has not confirmed within this time after app start is reset by the
    /// watchdog.
    pub trial_window_ms: u64,
    /// Watchdog period: a hung app is reset after it.
    pub watchdog_ms: u64,
    /// A request with no progress for this long has timed out.
    pub net_timeout_ms: u64,
    /// Hardware revision (some drills crash only on one).
    pub hw_rev: char,
    /// Execute-in-place boards: a release is published in two variants, one linked for each
    /// slot, and the board asks for `<manifest url>-a` or `-b` for its inactive slot.
    pub slot_variants: bool,
    /// Spread check-in waits by ±10 % with this seed (a fleet must not check in in lockstep);
    /// `None`: exact waits.
    pub jitter_seed: Option<u64>,
}

/// The defaults the simulated board ships with.
pub const SIM_POLICY: Policy = Policy {
    checkin_interval_ms: 100,
    trial_window_ms: 800,
    watchdog_ms: 300,
    net_timeout_ms: 700,
    hw_rev: 'a',
    slot_variants: false,
    jitter_seed: None,
};

impl Updater {
    /// `base` ms, spread by ±10 % when the policy asks for jitter (SplitMix64).
    pub(super) fn jitter(&mut self, base: u64) -> u64 {
        if self.policy.jitter_seed.is_none() {
            return base;
        }
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        base - base / 10 + z % (base / 5 + 1)
    }

    /// When to check in again after a check-in at `now` that changed nothing (`failed`: it
    /// got no answer; a trial image then retries sooner, inside its window).
    pub(super) fn checkin_later(&mut self, now: u64, failed: bool) -> State {
        let mut wait = self.policy.checkin_interval_ms;
        if failed && self.boot.state.mode == Mode::Trial {
            wait = wait.min(self.policy.trial_window_ms / 8).max(1);
        }
        if let Some(t) = self.trouble {
            // Back off while an offered release keeps failing: 2x, 4x, 8x the interval.
            wait = wait.saturating_mul(1 << t.attempts.min(3));
        }
        State::Idle {
            checkin_at: now.saturating_add(self.jitter(wait)),
        }
    }
}
