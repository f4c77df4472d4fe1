//! Switching a board's power.

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

    /// The board's own exact power cuts, if it has them (the simulated board stops itself at
    /// an exact flash operation; a relay cannot know where the firmware is).
    fn exact_cuts(&mut self) -> Option<&mut dyn ExactCuts> {
        None
    }
}

/// A power switch that can cut at an exact point of the firmware's flash work.
pub trait ExactCuts {
    /// Arms (or clears) the cut for the next power-on.
    fn arm_cut(&mut self, cut: Option<ExactCut>);
    /// The exit code if the board stopped by itself since the last power-on (at its cut:
    /// `backend::sim::CUT_EXIT_CODE`).
    fn stopped(&mut self) -> Option<i32>;
}

/// A pending exact cut for the next power-on, carried out by the sim board itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactCut {
    pub at: CutPoint,
    pub torn: bool,
}

/// Where an exact cut happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutPoint {
    /// At this flash operation (`--cut-at-flash-op N`).
    FlashOp(u64),
    /// At the first program this many bytes or more into the inactive slot
    /// (`--cut-at-slot-offset N`).
    SlotOffset(u32),
}

impl std::fmt::Display for CutPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FlashOp(op) => write!(f, "flash op {op}"),
            Self::SlotOffset(off) => write!(f, "the first slot program at offset >= {off}"),
        }
    }
}
