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
//! A reset with `ALIVE` but no reason (QMP `system_reset`, a debugger) reads as `reboot`.

/// First byte of the preserved words (the last 256 bytes of SSRAM2/3).
pub const KEEP_BASE: usize = 0x203F_FF00;
const REASON: usize = KEEP_BASE;
const ALIVE: usize = KEEP_BASE + 4;
const BOOTS: usize = KEEP_BASE + 8;
const TAG: u32 = 0x07A1_6000;
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

/// Bootloader: why this boot happened. Clears the recorded reason and counts the boot.
pub fn take() -> Reset {
    let word = read(REASON);
    let reason = if read(ALIVE) != ALIVE_MAGIC {
        Reset::PowerOn
    } else if word & !0xFF == TAG {
        from_code(word & 0xFF)
    } else {
        Reset::Reboot
    };
    write(REASON, 0);
    write(ALIVE, ALIVE_MAGIC);
    let boots = if reason == Reset::PowerOn {
        1
    } else {
        read(BOOTS).saturating_add(1)
    };
    write(BOOTS, boots);
    reason
}

/// Boots since power-on, this one included (counted by the bootloader).
pub fn boots() -> u32 {
    read(BOOTS).max(1)
}

/// Records `why` unless a reason is recorded already (the first cause wins: a watchdog NMI
/// during a deliberate reset does not rename it).
pub fn record(why: Reset) {
    if read(REASON) & !0xFF != TAG {
        write(REASON, TAG | code(why));
    }
}

/// Flushes the console and resets the whole board (SYSRESETREQ), recording `why`.
pub fn reset_now(why: Reset) -> ! {
    record(why);
    crate::uart::flush();
    cortex_m::peripheral::SCB::sys_reset()
}
