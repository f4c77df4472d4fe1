//! Raw byte I/O to a board's console. Line splitting, timestamps and expectations live once, in
//! `crate::console`, not in backends.

use std::time::Duration;

/// Errors from a console port.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open console {port}: {source} ({hint})")]
    Open {
        port: String,
        #[source]
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("console {port} read failed: {source}")]
    Read {
        port: String,
        #[source]
        source: std::io::Error,
    },
    /// The port vanished (USB-CDC reset); the reader may reopen it.
    #[error("console {port} disconnected")]
    Disconnected { port: String },
}

/// A byte source for a board's console.
///
/// Blocking: the rig reads it on a dedicated thread, started before the board is powered.
pub trait ConsolePort: Send {
    /// Reads available bytes into `buf`, waiting at most `timeout`. `Ok(0)` means nothing
    /// arrived in time (not end of stream).
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, Error>;
    /// Writes bytes to the board (e.g. a shell command). Optional.
    fn write(&mut self, _bytes: &[u8]) -> Result<(), Error> {
        Ok(())
    }
    /// Human-readable port name for messages.
    fn name(&self) -> &str;
}
