//! The watchdog, fed on behalf of the main loop by the boards' shared policy
//! (`otarig_board::feeding`: only while the loop shows progress, the hang drill has not stopped
//! it and a trial image is inside its window or confirmed) on the CMSDK watchdog. When it runs
//! out, its NMI records `reset=watchdog` and resets the board, and the bootloader prints
//! `watchdog: expired`.

use embassy_executor::Spawner;
use otarig_board::feeding::{self, Feeding};
use otarig_qemu::watchdog;

use crate::config;

/// The main loop must show progress at least this often (every wait it does is bounded by
/// the network timeout or the DHCP wait, and it pets between them).
const LOOP_BUDGET_MS: u32 = 20_000 + 2 * config::NET_TIMEOUT_MS as u32;

/// When the watchdog may be fed.
pub static FEEDING: Feeding = Feeding::new(LOOP_BUDGET_MS);

/// The CMSDK watchdog as the feeding policy drives it.
pub struct Cmsdk;

impl feeding::Watchdog for Cmsdk {
    /// Long synchronous work ahead (hashing a slot, erasing a large chunk).
    const LONGEST_MS: u32 = 8000;

    fn feed(&mut self, ms: u32) {
        watchdog::feed(ms);
    }
}

/// Takes the watchdog over from the bootloader (which left it running) and starts feeding it.
pub fn start(spawner: &Spawner) {
    FEEDING.pet();
    watchdog::start(config::WATCHDOG_MS as u32);
    match feeder() {
        Ok(token) => spawner.spawn(token),
        Err(_) => panic!("watchdog task spawned twice"),
    }
}

/// Gives the watchdog its longest period once, if feeding is allowed now.
pub fn hold_off() {
    FEEDING.hold_off(&mut Cmsdk);
}

#[embassy_executor::task]
async fn feeder() -> ! {
    FEEDING
        .feed_forever(Cmsdk, config::WATCHDOG_MS as u32)
        .await
}
