//! The console: the CMSDK APB UART0 of the MPS2 AN385 at 0x4000_4000 (QEMU's `-serial`), one
//! `\n`-terminated line per event (`firmware-under-test/CONSOLE.md`). Transmit only, polled.

use core::fmt::{self, Write};

use otarig_board::console::{LineOut, Typed};

const BASE: usize = 0x4000_4000;
const DATA: usize = BASE;
const STATE: usize = BASE + 0x04;
const CTRL: usize = BASE + 0x08;
const BAUDDIV: usize = BASE + 0x10;
const STATE_TX_FULL: u32 = 1;
const CTRL_TX_EN: u32 = 1;
/// 25 MHz system clock / 115200 baud.
const DIVISOR: u32 = 25_000_000 / 115_200;

fn write_reg(addr: usize, v: u32) {
    // SAFETY: a CMSDK UART register on this board's memory map.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}

fn read_reg(addr: usize) -> u32 {
    // SAFETY: as above.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// Enables the transmitter (idempotent: also used by the panic handlers).
pub fn init() {
    write_reg(BAUDDIV, DIVISOR);
    write_reg(CTRL, CTRL_TX_EN);
}

fn put(b: u8) {
    while read_reg(STATE) & STATE_TX_FULL != 0 {}
    write_reg(DATA, u32::from(b));
}

struct Tx;

impl Write for Tx {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(put);
        Ok(())
    }
}

/// Prints one console line. The whole line is written under a critical section, so lines from
/// interrupt handlers (none today) could never interleave with the main loop's.
pub fn line(args: fmt::Arguments<'_>) {
    critical_section::with(|_| {
        let _ = Tx.write_fmt(args);
        put(b'\n');
    });
}

/// UART0 as the board's console output (`otarig_board::console`).
pub struct Uart0;

impl LineOut for Uart0 {
    fn line(args: fmt::Arguments<'_>) {
        line(args);
    }

    /// Waits until the last byte has left (the model sends at once; kept for symmetry with real
    /// hardware before a reset or a jump).
    fn flush() {
        while read_reg(STATE) & STATE_TX_FULL != 0 {}
    }

    /// Prints a line from a panic handler (the UART may not be set up yet).
    fn panic_line(args: fmt::Arguments<'_>) {
        init();
        line(args);
    }
}

/// An [`ota_core::console::Console`] on this UART: typed lines, printed.
pub type Console = Typed<Uart0>;

/// Prints a console line: `say!("net: address={a}")`.
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => { $crate::uart::line(format_args!($($t)*)) };
}
