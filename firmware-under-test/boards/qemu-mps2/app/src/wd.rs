//! The watchdog, fed on behalf of the main loop (the Pico W's policy on the CMSDK watchdog).
//!
//! A small task feeds it every quarter period, but only while
//! - the main loop has shown progress recently ([`pet`]),
//! - the app has not stopped it on purpose ([`stop`], the hang drill), and
//! - a trial image is still inside its trial window ([`arm_trial`]) or has confirmed.
//!
//! When any of these fails the watchdog runs out, its NMI records `reset=watchdog` and resets
//! the board, and the bootloader prints `watchdog: expired`.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use embassy_executor::Spawner;
use embassy_time::{Duration, Instant, Timer};
use otarig_qemu::watchdog;

use crate::config;

/// The main loop must show progress at least this often (every wait it does is bounded by
/// the network timeout or the DHCP wait, and it pets between them).
const LOOP_BUDGET_MS: u32 = 20_000 + 2 * config::NET_TIMEOUT_MS as u32;
/// Long synchronous work ahead (hashing a slot, erasing a large chunk).
const HOLD_OFF_MS: u32 = 8000;

static ALIVE_UNTIL: AtomicU32 = AtomicU32::new(LOOP_BUDGET_MS);
/// End of the trial window in ms since boot; 0 = not on trial (or confirmed).
static TRIAL_END: AtomicU32 = AtomicU32::new(0);
static STOPPED: AtomicBool = AtomicBool::new(false);

fn now_ms() -> u32 {
    Instant::now().as_millis() as u32
}

/// `a` is at or before `b`, on a wrapping millisecond clock.
fn not_after(a: u32, b: u32) -> bool {
    b.wrapping_sub(a) < u32::MAX / 2
}

/// Takes the watchdog over from the bootloader (which left it running) and starts feeding it.
pub fn start(spawner: &Spawner) {
    pet();
    watchdog::start(config::WATCHDOG_MS as u32);
    match feeder() {
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

/// The trial image confirmed itself.
pub fn confirmed() {
    TRIAL_END.store(0, Ordering::Relaxed);
}

/// Gives the watchdog its longest period once, if feeding is allowed now.
pub fn hold_off() {
    if may_feed() {
        watchdog::feed(HOLD_OFF_MS);
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
async fn feeder() -> ! {
    let period = config::WATCHDOG_MS as u32;
    loop {
        if may_feed() {
            watchdog::feed(period);
        }
        Timer::after(Duration::from_millis(u64::from(period / 4))).await;
    }
}
