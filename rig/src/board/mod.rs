//! The seams between the rig and a board: small traits, each with a simulated and a real
//! implementation (`crate::backend`).
//!
//! A [`Board`] is power + console + optional probe + identity. Engine code only sees these
//! traits, so a scenario runs unchanged on the simulated board and on a real one.

pub mod console;
pub mod power;
pub mod probe;

use std::sync::Arc;

pub use console::ConsolePort;
pub use power::{PowerState, PowerSwitch};
pub use probe::Probe;

/// Who a board is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Unique name on the bench (`pico-1`, `sim-0`).
    pub name: Arc<str>,
    /// Board kind (`sim`, `pico-w`): selects which images it can run.
    pub kind: String,
    /// Free-form labels used by `--board LABEL`.
    pub labels: Vec<String>,
    /// Device id the firmware reports at check-in.
    pub device_id: String,
}

/// A board the rig can drive.
pub struct Board {
    pub identity: Identity,
    pub power: Box<dyn PowerSwitch>,
    pub probe: Option<Box<dyn Probe>>,
}
