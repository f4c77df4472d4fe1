//! Why the board reset, carried across the reset in the watchdog's scratch registers.
//!
//! Every deliberate reset (update, rollback, panic) is a forced watchdog reset with the reason
//! in `SCRATCH0`; a watchdog timeout is recorded by the hardware itself (`WATCHDOG.REASON`);
//! anything else (power on, the RUN pin, a debugger) reads as `power-on`. The scratch registers
//! survive a watchdog reset and are cleared by a power-on reset, so `SCRATCH1` counts the boots
//! since power-on (the check-in's `boot_count`). `SCRATCH4..7` belong to the boot ROM and are
//! never touched.

use embassy_rp::peripherals::WATCHDOG;
use embassy_rp::watchdog::{ResetReason, Watchdog};

/// Tag in the top 24 bits of `SCRATCH0`; the reason code is the low byte.
const TAG: u32 = 0x07A1_6000;
const REASON: usize = 0;
const BOOTS: usize = 1;

/// Why the board (re)started: ota-core's reasons, shared with the simulated board.
pub use ota_core::device::Reset;

/// A reason's code in `SCRATCH0`.
fn code(r: Reset) -> u32 {
    match r {
        Reset::PowerOn => 1,
        Reset::Watchdog => 2,
        Reset::Panic => 3,
        Reset::Update => 4,
        Reset::Rollback => 5,
        Reset::Reboot => 6,
    }
}

fn from_code(code: u32) -> Reset {
    match code {
        1 => Reset::PowerOn,
        2 => Reset::Watchdog,
        3 => Reset::Panic,
        4 => Reset::Update,
        5 => Reset::Rollback,
        _ => Reset::Reboot,
    }
}

/// Bootloader: why this boot happened. Clears the recorded reason (so a later unexplained
/// reset is not mistaken for it) and counts the boot.
pub fn take(wd: &mut Watchdog) -> Reset {
    let reason = match wd.reset_reason() {
        None => Reset::PowerOn,
        Some(ResetReason::TimedOut) => Reset::Watchdog,
        Some(ResetReason::Forced) => {
            let word = wd.get_scratch(REASON);
            if word & !0xFF == TAG {
                from_code(word & 0xFF)
            } else {
                Reset::Reboot
            }
        }
    };
    wd.set_scratch(REASON, 0);
    let boots = if reason == Reset::PowerOn {
        1
    } else {
        wd.get_scratch(BOOTS).saturating_add(1)
    };
    wd.set_scratch(BOOTS, boots);
    reason
}

/// Boots since power-on, this one included (counted by the bootloader).
pub fn boots(wd: &mut Watchdog) -> u32 {
    wd.get_scratch(BOOTS).max(1)
}

/// Flushes the console and resets the whole chip, recording `why` for the bootloader.
pub fn reset_now(why: Reset) -> ! {
    crate::console::flush();
    // SAFETY: the reset below ends every other user of the watchdog; until it happens, only
    // the scratch register and the trigger are written, which no other code relies on.
    let mut wd = Watchdog::new(unsafe { WATCHDOG::steal() });
    wd.set_scratch(REASON, TAG | code(why));
    wd.trigger_reset();
    loop {
        cortex_m::asm::nop();
    }
}
