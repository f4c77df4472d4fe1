//! The CMSDK APB watchdog of the MPS2 AN385 at 0x4000_8000 (25 MHz WDOGCLK).
//!
//! The counter runs down from `LOAD`; at zero it raises its interrupt (wired to the NMI on this
//! board) and reloads; at the second zero with the interrupt still pending it resets the board.
//! The NMI handlers of both stages ([`on_nmi`]) record `reset=watchdog` and reset at once, so
//! the board resets one period after the last feed; the hardware reset one period later is the
//! backstop.

const BASE: usize = 0x4000_8000;
const LOAD: usize = BASE;
const CONTROL: usize = BASE + 0x08;
const INTCLR: usize = BASE + 0x0C;
const LOCK: usize = BASE + 0xC00;
const UNLOCK_KEY: u32 = 0x1ACC_E551;
const INTEN: u32 = 1;
const RESEN: u32 = 2;
/// WDOGCLK ticks per millisecond.
const TICKS_PER_MS: u32 = 25_000;

fn write(addr: usize, v: u32) {
    // SAFETY: a CMSDK watchdog register on this board's memory map.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}

fn load(ms: u32) -> u32 {
    ms.clamp(1, u32::MAX / TICKS_PER_MS) * TICKS_PER_MS
}

/// Starts (or restarts) the watchdog with a period of `ms`.
pub fn start(ms: u32) {
    write(LOCK, UNLOCK_KEY);
    write(LOAD, load(ms));
    write(INTCLR, 1);
    write(CONTROL, INTEN | RESEN);
    write(LOCK, 0);
}

/// Feeds the watchdog: a full period of `ms` from now.
pub fn feed(ms: u32) {
    write(LOCK, UNLOCK_KEY);
    write(LOAD, load(ms));
    write(INTCLR, 1);
    write(LOCK, 0);
}

/// Stops the watchdog (a bricked bootloader waits without resetting).
pub fn stop() {
    write(LOCK, UNLOCK_KEY);
    write(CONTROL, 0);
    write(INTCLR, 1);
    write(LOCK, 0);
}

/// What both stages' NMI handlers do: the only NMI source on this board is the watchdog.
pub fn on_nmi() -> ! {
    crate::reset::reset_now(crate::reset::Reset::Watchdog)
}
