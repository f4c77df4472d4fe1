//! The hardware watchdog, fed on behalf of the main loop.
//!
//! A small task feeds the RP2040 watchdog every quarter period, but only while
//! - the main loop has shown progress recently ([`pet`]: every step, every received packet),
//! - the app has not stopped it on purpose ([`stop`], the hang drill), and
//! - a trial image is still inside its trial window ([`arm_trial`]) or has confirmed.
//!
//! When any of these fails the watchdog runs out, the chip resets, and the bootloader prints
//! `watchdog: expired` and `reset=watchdog` (the simulated board prints the same two lines when
//! its trial window expires or its app hangs). A hang that blocks the whole executor stops the
//! feeding task too, so it is caught the same way.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use embassy_executor::Spawner;
use embassy_rp::peripherals::WATCHDOG;
use embassy_rp::watchdog::Watchdog;
use embassy_time::{Duration, Instant, Timer};

use crate::config;

/// The main loop must show progress at least this often. Every wait it does is bounded by
/// the network timeout or the Wi-Fi join timeout, and it pets between them.
const LOOP_BUDGET_MS: u32 = 30_000 + 2 * config::NET_TIMEOUT_MS as u32;

static ALIVE_UNTIL: AtomicU32 = AtomicU32::new(LOOP_BUDGET_MS);
/// End of the trial window in ms since boot; 0 = not on trial (or confirmed).
static TRIAL_END: AtomicU32 = AtomicU32::new(0);
static STOPPED: AtomicBool = AtomicBool::new(false);

fn now_ms() -> u32 {
    // Wraps after 49 days; every comparison below is on wrapping differences.
    Instant::now().as_millis() as u32
}

/// `a` is at or before `b`, on a wrapping millisecond clock.
fn not_after(a: u32, b: u32) -> bool {
    b.wrapping_sub(a) < u32::MAX / 2
}

/// Takes the watchdog over from the bootloader (which left it running) and starts feeding it.
pub fn start(spawner: &Spawner, wd: Watchdog) {
    pet();
    match feeder(wd) {
        Ok(token) => spawner.spawn(token),
        Err(_) => panic!("watchdog task spawned twice"),
    }
}

/// The main loop made progress.
pub fn pet() {
    ALIVE_UNTIL.store(now_ms().wrapping_add(LOOP_BUDGET_MS), Ordering::Relaxed);
}

/// This image is on trial: stop feeding `window_ms` from now unless [`confirmed`] is called.
pub fn arm_trial(window_ms: u32) {
    TRIAL_END.store(now_ms().wrapping_add(window_ms).max(1), Ordering::Relaxed);
}

/// The trial image confirmed itself: no trial deadline any more.
pub fn confirmed() {
    TRIAL_END.store(0, Ordering::Relaxed);
}

/// Longest period the RP2040 watchdog can count (0xFFFFFF / 2 µs, erratum RP2040-E1).
const HOLD_OFF: Duration = Duration::from_millis(8000);

/// Long synchronous work ahead (hashing a slot, erasing a large chunk), during which the feeding
/// task cannot run: gives the watchdog its longest period once, if feeding is allowed now. The
/// next regular feed restores the normal period.
pub fn hold_off() {
    if may_feed() {
        // SAFETY: feeding writes the LOAD register only. The feeding task does the same, and
        // both run in thread mode on the one core the app uses, so never at the same time.
        let mut wd = Watchdog::new(unsafe { WATCHDOG::steal() });
        wd.feed(HOLD_OFF);
    }
}

/// Stops feeding: the watchdog resets the board one period from the last feed.
pub fn stop() {
    STOPPED.store(true, Ordering::Relaxed);
}

fn may_feed() -> bool {
    let now = now_ms();
    let trial_end = TRIAL_END.load(Ordering::Relaxed);
    !STOPPED.load(Ordering::Relaxed)
        && not_after(now, ALIVE_UNTIL.load(Ordering::Relaxed))
        && (trial_end == 0 || not_after(now, trial_end))
}

#[embassy_executor::task]
async fn feeder(mut wd: Watchdog) -> ! {
    let period = Duration::from_millis(config::WATCHDOG_MS);
    wd.start(period);
    loop {
        if may_feed() {
            wd.feed(period);
        }
        Timer::after(period / 4).await;
    }
}
