//! A debug probe attached to a board (optional). The probe-rs backend runs on its own thread;
//! this trait is the channel-facing handle.

use std::ops::Range;
use std::path::Path;

/// Errors from a probe.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no debug probe found matching {selector}")]
    NotFound { selector: String },
    #[error("probe did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("probe error: {0}")]
    Other(String),
}

/// What the rig can do with a probe.
pub trait Probe: Send {
    /// Writes an image (ELF or raw binary at `base`) to the board's flash.
    fn flash(&mut self, image: &Path, base: Option<u32>) -> Result<(), Error>;
    /// Resets the core and lets it run.
    fn reset(&mut self) -> Result<(), Error>;
    /// Reads target memory.
    fn read_memory(&mut self, range: Range<u32>) -> Result<Vec<u8>, Error>;
}
