//! The console: UART0 TX on GP0, 115200 8N1, one `\n`-terminated line per event
//! (`firmware-under-test/CONSOLE.md`).
//!
//! Writes are blocking (a line takes about 7 ms at 115200 baud). The UART is taken out of its
//! cell for the duration of a line, so interrupts stay enabled while it is written; the panic
//! handler, which may run while a line is being written, re-creates the UART if it must.

use core::cell::RefCell;
use core::fmt::{self, Write};

use critical_section::Mutex;
use embassy_rp::Peri;
use embassy_rp::peripherals::{PIN_0, UART0};
use embassy_rp::uart::{self, Blocking, UartTx};
use otarig_board::console::{LineOut, Typed};

/// Console baud rate.
pub const BAUD: u32 = 115_200;

static TX: Mutex<RefCell<Option<UartTx<'static, Blocking>>>> = Mutex::new(RefCell::new(None));

/// Starts the console on UART0, TX on GP0.
pub fn init(uart: Peri<'static, UART0>, tx: Peri<'static, PIN_0>) {
    let mut cfg = uart::Config::default();
    cfg.baudrate = BAUD;
    let tx = UartTx::new_blocking(uart, tx, cfg);
    critical_section::with(|cs| *TX.borrow_ref_mut(cs) = Some(tx));
}

struct Writer<'a>(&'a mut UartTx<'static, Blocking>);

impl Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.blocking_write(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

fn take() -> Option<UartTx<'static, Blocking>> {
    critical_section::with(|cs| TX.borrow_ref_mut(cs).take())
}

fn put(tx: UartTx<'static, Blocking>) {
    critical_section::with(|cs| *TX.borrow_ref_mut(cs) = Some(tx));
}

/// Prints one console line. Does nothing before [`init`].
pub fn line(args: fmt::Arguments<'_>) {
    if let Some(mut tx) = take() {
        let mut w = Writer(&mut tx);
        let _ = w.write_fmt(args);
        let _ = w.write_str("\n");
        put(tx);
    }
}

/// UART0 as the board's console output (`otarig_board::console`).
pub struct Uart0;

impl LineOut for Uart0 {
    fn line(args: fmt::Arguments<'_>) {
        line(args);
    }

    /// Waits until every byte written so far has left the UART (before a reset or a jump).
    fn flush() {
        if let Some(mut tx) = take() {
            let _ = tx.blocking_flush();
            while tx.busy() {}
            put(tx);
        }
    }

    /// Prints a line from a panic handler: with the console if it is free, otherwise (the panic
    /// interrupted a line, or came before [`init`]) on a freshly configured UART0. Flushed.
    fn panic_line(args: fmt::Arguments<'_>) {
        let mut tx = match take() {
            Some(tx) => tx,
            None => {
                // SAFETY: this runs in the panic handler, which never returns: the console that
                // owned these peripherals (if any) is not in its cell, so it is not being used
                // by anyone else, and no other code runs after this except the reset.
                let (uart, pin) = unsafe { (UART0::steal(), PIN_0::steal()) };
                let mut cfg = uart::Config::default();
                cfg.baudrate = BAUD;
                let mut tx = UartTx::new_blocking(uart, pin, cfg);
                // Start on a fresh line in case the panic cut one short.
                let _ = tx.blocking_write(b"\n");
                tx
            }
        };
        let mut w = Writer(&mut tx);
        let _ = w.write_fmt(args);
        let _ = w.write_str("\n");
        let _ = tx.blocking_flush();
        while tx.busy() {}
    }
}

/// An [`ota_core::console::Console`] on this UART: typed lines, printed.
pub type Console = Typed<Uart0>;

/// Prints a console line: `say!("app: v{v} running")`.
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => { $crate::console::line(format_args!($($t)*)) };
}
