//! Runbook validation: a staged rollout of the release under test, driven phase by phase the
//! way a release manager would (soak, judge, advance; hold when devices go quiet), against the
//! real fake-server on loopback and a simulated fleet running ota-core's real update logic.
//!
//! Time is simulated: the server runs on a manual clock, every device is woken at the moments
//! it acts (check-ins, reboots, power returning), and hours of soak pass in milliseconds. Runs
//! are deterministic under a seed (device troubles, timings and faults come from per-device
//! generators; the server's answers depend only on what devices send).
//!
//! The runbook's `faults:` are installed on the server before the first device wakes and stay
//! for the whole drill. Their durations (`latency`, `stall_after ... for`, `slow_headers`) are
//! wall-clock time, not simulated time. Use `share` rather than `probability`, `every`, `times`
//! or `nth` to hit a part of the fleet: those count requests in arrival order, which depends on
//! how concurrent devices interleave, while `share` depends only on each device's own requests.

pub mod bench;
mod calendar;
mod checks;
mod drill;
pub mod error;
pub mod flash;
pub mod fleet;
pub mod import;
mod judge;
pub mod net;
pub mod report;
pub mod runbook;
mod threads;

use std::collections::BTreeMap;

pub use error::{Error, Result};
pub use judge::PhaseVerdict;

use self::report::RolloutReport;
use self::runbook::{Runbook, Trouble};

const HOUR: u64 = 3_600_000;

/// How to run a runbook against a simulated fleet.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    pub devices: u32,
    pub seed: u64,
    /// Overrides the runbook's device mix.
    pub mix: Option<BTreeMap<Trouble, runbook::Percent>>,
    /// Requests in flight at once (over all fleet threads).
    pub concurrency: usize,
    /// Where images are built (a run directory).
    pub work_dir: std::path::PathBuf,
    /// How the fleet reaches the server.
    pub transport: FleetTransport,
}

/// How the fleet's devices reach the fake-server (`--transport`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FleetTransport {
    /// In process unless a fault rule acts on the socket itself (an RST, bytes past HTTP
    /// framing): then loopback TCP.
    #[default]
    Auto,
    /// Loopback TCP: every fault rule means what it says.
    Tcp,
    /// In-memory pipes to the same server (hyper, routes, policies, body faults), served on
    /// the fleet threads; refuses a runbook with a rule that acts on the socket.
    InProcess,
}

/// The id of fleet device `i`.
pub fn device_id(i: u32) -> String {
    format!("fleet-{i:05}")
}

/// Runs the runbook; the report says what happened and which expectations held.
///
/// The drill runs on threads of its own (the fleet's control loop, the fleet's workers and
/// the server each on a single-threaded runtime, see [`threads`]); this future only waits.
pub async fn run_fleet(rb: &Runbook, opts: &FleetOptions) -> Result<RolloutReport> {
    let (rb, opts) = (rb.clone(), opts.clone());
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::runtime("fleet runtime", e))?;
        rt.block_on(drill::run(&rb, &opts))
    })
    .await
    .map_err(|e| Error::runtime("fleet thread", e))?
}
