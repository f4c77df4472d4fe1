//! Why the board reset, carried across the reset in the watchdog's scratch registers.
//!
//! Every deliberate reset (update, rollback, panic) is a forced watchdog reset with the reason
//! in `SCRATCH0`; a watchdog timeout is recorded by the hardware itself (`WATCHDOG.REASON`);
//! anything else (power on, the RUN pin, a debugger) reads as `power-on`. The codes and the
//! decision are the boards' shared ones (`otarig_board::reset`). The scratch registers
//! survive a watchdog reset and are cleared by a power-on reset, so `SCRATCH1` counts the boots
//! since power-on (the check-in's `boot_count`). `SCRATCH4..7` belong to the boot ROM and are
//! never touched.

use embassy_rp::peripherals::WATCHDOG;
use embassy_rp::watchdog::{ResetReason, Watchdog};
use otarig_board::console::LineOut;
use otarig_board::reset::{Cause, KeptWords};

const REASON: usize = 0;
const BOOTS: usize = 1;

/// Why the board (re)started: ota-core's reasons, shared with the simulated board.
pub use ota_core::device::Reset;

/// The scratch registers as the boards' shared reset words (`otarig_board::reset`).
struct Scratch<'a>(&'a mut Watchdog);

impl KeptWords for Scratch<'_> {
    fn reason_word(&mut self) -> u32 {
        self.0.get_scratch(REASON)
    }

    fn set_reason_word(&mut self, word: u32) {
        self.0.set_scratch(REASON, word);
    }

    fn boots_word(&mut self) -> u32 {
        self.0.get_scratch(BOOTS)
    }

    fn set_boots_word(&mut self, boots: u32) {
        self.0.set_scratch(BOOTS, boots);
    }
}

/// Bootloader: why this boot happened. Clears the recorded reason (so a later unexplained
/// reset is not mistaken for it) and counts the boot.
pub fn take(wd: &mut Watchdog) -> Reset {
    let cause = match wd.reset_reason() {
        None => Cause::PowerOn,
        Some(ResetReason::TimedOut) => Cause::WatchdogTimeout,
        Some(ResetReason::Forced) => Cause::Recorded,
    };
    otarig_board::reset::take(&mut Scratch(wd), cause)
}

/// Boots since power-on, this one included (counted by the bootloader).
pub fn boots(wd: &mut Watchdog) -> u32 {
    otarig_board::reset::boots(&mut Scratch(wd))
}

/// Flushes the console and resets the whole chip, recording `why` for the bootloader.
pub fn reset_now(why: Reset) -> ! {
    crate::console::Uart0::flush();
    // SAFETY: the reset below ends every other user of the watchdog; until it happens, only
    // the scratch register and the trigger are written, which no other code relies on.
    let mut wd = Watchdog::new(unsafe { WATCHDOG::steal() });
    wd.set_scratch(REASON, otarig_board::reset::word(why));
    wd.trigger_reset();
    loop {
        cortex_m::asm::nop();
    }
}
