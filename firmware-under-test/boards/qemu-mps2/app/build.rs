//! Build-time settings of the app, all from the environment:
//!
//! | variable                      | default          | meaning                                   |
//! |-------------------------------|------------------|-------------------------------------------|
//! | `OTARIG_SERVER`               | `10.0.2.100:80`  | update server, IPv4 `host:port` (QEMU user networking: the rig relays it with `guestfwd`) |
//! | `OTARIG_DRILL`                | `none`           | failure drill (ota-core's drill names)    |
//! | `OTARIG_HW_REV`               | `a`              | hardware revision some drills depend on   |
//! | `OTARIG_CHECKIN_INTERVAL_MS`  | `1000`           | time between check-ins                    |
//! | `OTARIG_TRIAL_WINDOW_MS`      | `15000`          | a trial image must confirm within this    |
//! | `OTARIG_WATCHDOG_MS`          | `3000`           | watchdog period                           |
//! | `OTARIG_NET_TIMEOUT_MS`       | `3000`           | every network wait (connect, head, body)  |
//!
//! Writes `memory.x` (the app is linked for its RAM copy at 0x0010_0000, whichever slot it is
//! stored in) and `config.rs` with the checked values; a bad value fails the build. The reading and
//! checking is the boards' shared build support (`otarig-board-build`).

use otarig_board_build::{AppDefaults, AppSettings, Bounds};

const MEMORY_X: &str = "\
MEMORY
{
    /* The app's copy in SSRAM1, made by the bootloader from its slot (less the header). */
    FLASH : ORIGIN = 0x00100000, LENGTH = 512K - 256
    /* SSRAM2/3, less the last 256 bytes kept across resets (otarig_qemu::reset). */
    RAM   : ORIGIN = 0x20000000, LENGTH = 4M - 256
}
";

const DEFAULTS: AppDefaults = AppDefaults {
    server: "10.0.2.100:80",
    trial_window_ms: Bounds::new(15_000, 500..=3_600_000),
    watchdog_ms: Bounds::new(3000, 100..=60_000),
    net_timeout_ms: Bounds::new(3000, 100..=60_000),
};

fn main() {
    let settings = AppSettings::from_env(&DEFAULTS);
    let out = otarig_board_build::out_dir();
    otarig_board_build::write(&out, "config.rs", &settings.config_rs());
    otarig_board_build::link(&out, MEMORY_X, &[]);
}
