//! Server settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::faults::FaultRule;

/// Server settings.
pub struct Config {
    /// Directory the images are served from (nothing outside it is ever served).
    pub images: PathBuf,
    /// Default `127.0.0.1:0` (ephemeral port).
    pub listen: SocketAddr,
    /// Bearer token for the control API; required when `listen` is not loopback.
    pub token: Option<String>,
    pub faults: Vec<FaultRule>,
    /// Signs manifests of published releases.
    pub signing_key: Option<ota_core::keys::SigningKey>,
    /// Chunk size in manifests.
    pub chunk_size: u32,
    /// Where event times come from: the wall clock (default) or a simulation's clock.
    pub clock: Clock,
    /// Most events kept for [`ServerHandle::events`] (the oldest are dropped first); every
    /// event still goes to subscribers.
    pub event_history: usize,
    /// Check image files (resolve the name, stat the file) on the connection's own thread
    /// instead of Tokio's blocking pool: the same checks on every request, without two
    /// thread hand-offs each. For a caller whose connections run on threads that may block
    /// for a local file system call (a simulated fleet's in-process connections).
    pub inline_file_checks: bool,
    /// Judge the rollout policy only at [`crate::ServerHandle::judge_pending`] (a simulation's
    /// clock tick), not within each check-in: see [`crate::registry::Registry::defer_judging`].
    pub judge_at_ticks: bool,
}

/// The server's idea of "now", in microseconds.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// Time since the server started.
    #[default]
    Wall,
    /// A simulated clock the caller advances (a fleet simulation's hours run in seconds).
    Manual(Arc<AtomicU64>),
}

impl Config {
    pub fn new(images: impl Into<PathBuf>) -> Self {
        Self {
            images: images.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
            faults: Vec::new(),
            signing_key: None,
            chunk_size: 4096,
            clock: Clock::Wall,
            event_history: usize::MAX,
            inline_file_checks: false,
            judge_at_ticks: false,
        }
    }
}
