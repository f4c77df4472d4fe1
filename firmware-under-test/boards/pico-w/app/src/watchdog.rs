//! The hardware watchdog, fed on behalf of the main loop by the boards' shared policy
//! (`otarig_board::feeding`: only while the loop shows progress, the hang drill has not stopped
//! it and a trial image is inside its window or confirmed) on the RP2040 watchdog.

use embassy_executor::Spawner;
use embassy_rp::peripherals::WATCHDOG;
use embassy_time::Duration;
use otarig_board::feeding::{self, Feeding};

use crate::config;

/// The main loop must show progress at least this often. Every wait it does is bounded by
/// the network timeout or the Wi-Fi join timeout, and it pets between them.
const LOOP_BUDGET_MS: u32 = 30_000 + 2 * config::NET_TIMEOUT_MS as u32;

/// When the watchdog may be fed.
pub static FEEDING: Feeding = Feeding::new(LOOP_BUDGET_MS);

/// The RP2040 watchdog as the feeding policy drives it.
pub struct Watchdog(pub embassy_rp::watchdog::Watchdog);

impl feeding::Watchdog for Watchdog {
    /// Longest period the RP2040 watchdog can count (0xFFFFFF / 2 µs, erratum RP2040-E1).
    const LONGEST_MS: u32 = 8000;

    fn feed(&mut self, ms: u32) {
        self.0.feed(Duration::from_millis(u64::from(ms)));
    }
}

/// Takes the watchdog over from the bootloader (which left it running) and starts feeding it.
pub fn start(spawner: &Spawner, wd: embassy_rp::watchdog::Watchdog) {
    FEEDING.pet();
    match feeder(Watchdog(wd)) {
        Ok(token) => spawner.spawn(token),
        Err(_) => panic!("watchdog task spawned twice"),
    }
}

/// Long synchronous work ahead (hashing a slot, erasing a large chunk; flash work can take
/// seconds with interrupts masked), during which the feeding task cannot run: gives the
/// watchdog its longest period once, if feeding is allowed now.
pub fn hold_off() {
    // SAFETY: feeding writes the LOAD register only. The feeding task does the same, and both
    // run in thread mode on the one core the app uses, so never at the same time.
    let mut wd = Watchdog(embassy_rp::watchdog::Watchdog::new(unsafe {
        WATCHDOG::steal()
    }));
    FEEDING.hold_off(&mut wd);
}

#[embassy_executor::task]
async fn feeder(mut wd: Watchdog) -> ! {
    let period = config::WATCHDOG_MS as u32;
    wd.0.start(Duration::from_millis(u64::from(period)));
    FEEDING.feed_forever(wd, period).await
}
