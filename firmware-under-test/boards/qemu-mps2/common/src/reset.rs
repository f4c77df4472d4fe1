//! Why the board reset, carried across the reset in RAM that no linked section covers.
//!
//! QEMU keeps RAM contents across a system reset (it only reloads the bootloader's ELF
//! segments), and a new QEMU process (power-on) starts with zeroed RAM. So three words at
//! [`KEEP_BASE`], outside every linked section of both stages (`memory.x` ends RAM below it):
//! - `REASON`: `TAG | code` written just before a deliberate reset (update, rollback, panic) or
//!   by the watchdog's NMI handler; cleared by the bootloader;
//! - `ALIVE`: a magic word the bootloader writes at every boot: without it, this is a power-on;
//! - `BOOTS`: boots since power-on (the check-in's `boot_count`).
//!
//! A reset with `ALIVE` but no reason (QMP `system_reset`, a debugger) reads as `reboot`. The
//! codes and the decision are the boards' shared ones (`otarig_board::reset`).

use otarig_board::console::LineOut;
use otarig_board::reset::{Cause, KeptWords};

/// First byte of the preserved words (the last 256 bytes of SSRAM2/3).
pub const KEEP_BASE: usize = 0x203F_FF00;
const REASON: usize = KEEP_BASE;
const ALIVE: usize = KEEP_BASE + 4;
const BOOTS: usize = KEEP_BASE + 8;
const ALIVE_MAGIC: u32 = 0x0A11_7E57;

/// Why the board (re)started: ota-core's reasons, shared with the simulated board.
pub use ota_core::device::Reset;

fn read(addr: usize) -> u32 {
    // SAFETY: a word of RAM reserved for this module by both stages' memory.x.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

fn write(addr: usize, v: u32) {
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}

/// The preserved RAM words as the boards' shared reset words (`otarig_board::reset`).
struct KeptRam;

impl KeptWords for KeptRam {
    fn reason_word(&mut self) -> u32 {
        read(REASON)
    }

    fn set_reason_word(&mut self, word: u32) {
        write(REASON, word);
    }

    fn boots_word(&mut self) -> u32 {
        read(BOOTS)
    }

    fn set_boots_word(&mut self, boots: u32) {
        write(BOOTS, boots);
    }
}

/// Bootloader: why this boot happened. Clears the recorded reason and counts the boot.
pub fn take() -> Reset {
    let cause = if read(ALIVE) != ALIVE_MAGIC {
        Cause::PowerOn
    } else {
        Cause::Recorded
    };
    write(ALIVE, ALIVE_MAGIC);
    otarig_board::reset::take(&mut KeptRam, cause)
}

/// Boots since power-on, this one included (counted by the bootloader).
pub fn boots() -> u32 {
    otarig_board::reset::boots(&mut KeptRam)
}

/// Records `why` unless a reason is recorded already (the first cause wins: a watchdog NMI
/// during a deliberate reset does not rename it).
pub fn record(why: Reset) {
    if !otarig_board::reset::is_recorded(read(REASON)) {
        write(REASON, otarig_board::reset::word(why));
    }
}

/// Flushes the console and resets the whole board (SYSRESETREQ), recording `why`.
pub fn reset_now(why: Reset) -> ! {
    record(why);
    crate::uart::Uart0::flush();
    cortex_m::peripheral::SCB::sys_reset()
}
