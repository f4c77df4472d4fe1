//! A board's console: where it prints one `\n`-terminated line per event
//! (`firmware-under-test/CONSOLE.md`), and ota-core's typed [`Console`] on top of it.

use core::fmt;
use core::marker::PhantomData;

use ota_core::console::{Console, Line};

/// The board's console output (a UART on both real boards).
pub trait LineOut {
    /// Prints one line (the `\n` is added).
    fn line(args: fmt::Arguments<'_>);
    /// Waits until every byte written so far has left (before a reset or a jump).
    fn flush();
    /// Prints one line from a panic handler (whatever state the console is in), flushed.
    fn panic_line(args: fmt::Arguments<'_>);
}

/// ota-core's [`Console`] on a board's [`LineOut`]: typed lines, printed.
pub struct Typed<O>(PhantomData<O>);

impl<O> Typed<O> {
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<O> Default for Typed<O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<O: LineOut> Console for Typed<O> {
    fn line(&mut self, l: &Line<'_>) {
        O::line(format_args!("{l}"));
    }
}
