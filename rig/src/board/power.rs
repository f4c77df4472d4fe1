//! Switching a board's power.

use std::time::Duration;

/// Whether the board is powered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerState {
    On,
    Off,
}

/// Errors from a power switch. Every variant is an infrastructure problem, never a firmware one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open GPIO {pin}: {reason} ({hint})")]
    Gpio {
        pin: u8,
        reason: String,
        hint: &'static str,
    },
    #[error("cannot start the simulated board: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("cannot stop the simulated board: {0}")]
    Kill(#[source] std::io::Error),
    #[error("power switch failed: {0}")]
    Other(String),
}

/// A power switch: a relay on a GPIO line, or the sim board's process.
///
/// Implementations are blocking (a relay may wait out its `min_off`): call them from a
/// blocking context (`tokio::task::spawn_blocking` or a dedicated thread), never from a task.
pub trait PowerSwitch: Send {
    /// Powers the board. Idempotent.
    fn on(&mut self) -> Result<(), Error>;
    /// Cuts power at once. Idempotent.
    fn off(&mut self) -> Result<(), Error>;
    fn state(&self) -> PowerState;

    /// Off, hold, on.
    fn cycle(&mut self, hold: Duration) -> Result<(), Error> {
        self.off()?;
        std::thread::sleep(hold);
        self.on()
    }
}
