//! The app's watchdog feeding policy, the same on every real board: a small task feeds the
//! hardware watchdog every quarter period, but only while
//! - the main loop has shown progress recently ([`Feeding::pet`]: every step, every packet),
//! - the app has not stopped it on purpose ([`Feeding::stop`], the hang drill), and
//! - a trial image is still inside its trial window ([`Feeding::arm_trial`]) or has confirmed.
//!
//! When any of these fails the watchdog runs out, the board resets, and the bootloader prints
//! `watchdog: expired` and `reset=watchdog` (the simulated board prints the same two lines when
//! its trial window expires or its app hangs). A hang that blocks the whole executor stops the
//! feeding task too, so it is caught the same way.
//!
//! The board owns the hardware ([`Watchdog`]) and the task (an embassy task cannot be generic);
//! the task's body is [`Feeding::feed_forever`].

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use embassy_time::{Duration, Instant, Timer};

/// A board's hardware watchdog, as the feeding policy drives it.
pub trait Watchdog {
    /// The longest period the hardware can be given (once, ahead of long synchronous work).
    const LONGEST_MS: u32;
    /// Feeds it: a full period of `ms` from now.
    fn feed(&mut self, ms: u32);
}

/// When the watchdog may be fed (one per app, in a `static`).
pub struct Feeding {
    /// The main loop must show progress at least this often.
    loop_budget_ms: u32,
    alive_until: AtomicU32,
    /// End of the trial window in ms since boot; 0 = not on trial (or confirmed).
    trial_end: AtomicU32,
    stopped: AtomicBool,
}

fn now_ms() -> u32 {
    // Wraps after 49 days; every comparison below is on wrapping differences.
    Instant::now().as_millis() as u32
}

/// `a` is at or before `b`, on a wrapping millisecond clock.
fn not_after(a: u32, b: u32) -> bool {
    b.wrapping_sub(a) < u32::MAX / 2
}

impl Feeding {
    /// A policy whose main loop must pet at least every `loop_budget_ms` (every wait it does is
    /// bounded, and it pets between them).
    pub const fn new(loop_budget_ms: u32) -> Self {
        Self {
            loop_budget_ms,
            alive_until: AtomicU32::new(loop_budget_ms),
            trial_end: AtomicU32::new(0),
            stopped: AtomicBool::new(false),
        }
    }

    /// The main loop made progress.
    pub fn pet(&self) {
        self.alive_until.store(
            now_ms().wrapping_add(self.loop_budget_ms),
            Ordering::Relaxed,
        );
    }

    /// This image is on trial: stop feeding `window_ms` from now unless [`Self::confirmed`] is
    /// called.
    pub fn arm_trial(&self, window_ms: u32) {
        self.trial_end
            .store(now_ms().wrapping_add(window_ms).max(1), Ordering::Relaxed);
    }

    /// The trial image confirmed itself: no trial deadline any more.
    pub fn confirmed(&self) {
        self.trial_end.store(0, Ordering::Relaxed);
    }

    /// Stops feeding: the watchdog resets the board one period from the last feed.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Feeding is allowed now.
    pub fn may_feed(&self) -> bool {
        let now = now_ms();
        let trial_end = self.trial_end.load(Ordering::Relaxed);
        !self.stopped.load(Ordering::Relaxed)
            && not_after(now, self.alive_until.load(Ordering::Relaxed))
            && (trial_end == 0 || not_after(now, trial_end))
    }

    /// Long synchronous work ahead (hashing a slot, erasing a large chunk), during which the
    /// feeding task cannot run: gives the watchdog its longest period once, if feeding is
    /// allowed now. The next regular feed restores the normal period.
    pub fn hold_off<W: Watchdog>(&self, wd: &mut W) {
        if self.may_feed() {
            wd.feed(W::LONGEST_MS);
        }
    }

    /// The feeding task's body: feeds `wd` with `period_ms` every quarter period while
    /// allowed.
    pub async fn feed_forever<W: Watchdog>(&self, mut wd: W, period_ms: u32) -> ! {
        let quarter = Duration::from_millis(u64::from(period_ms)) / 4;
        loop {
            if self.may_feed() {
                wd.feed(period_ms);
            }
            Timer::after(quarter).await;
        }
    }
}
