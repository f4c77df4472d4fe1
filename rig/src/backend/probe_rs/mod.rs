//! The probe-rs debug-probe backend: [`crate::board::Probe`] over an SWD probe.
//!
//! probe-rs is blocking, so a [`ProbeWorker`] thread owns the `probe_rs::Session` (attached by
//! [`select::ProbeSelector`] + chip name) and a [`ProbeHandle`] implementing
//! [`crate::board::Probe`] sends it commands over a channel and waits with a timeout: a hung
//! probe is an [`Error::Timeout`](crate::board::probe::Error::Timeout), not a hung rig.
//!
//! | part                 | what                                             | needs `probe` |
//! |----------------------|--------------------------------------------------|---------------|
//! | [`worker`]           | the thread, the handle, timeouts, cut-point pause | no           |
//! | [`select`]           | which listed probe a `VID:PID[:SERIAL]` means     | no           |
//! | [`elf`]              | symbol → address (breakpoint cut triggers)        | no           |
//! | `session`            | the probe-rs driver, `list_probes`                | yes          |
//! | `errors`             | probe-rs errors → rig errors with what to fix     | yes          |
//!
//! The chip registry (≈21 MB of RSS) is loaded only when a board's probe is attached, on its
//! thread. Without the `probe` feature the rig still builds; `rig bench-check` then reports
//! configured probes as an infrastructure problem.

pub mod select;
pub mod worker;

#[cfg(feature = "probe")]
mod errors;
#[cfg(feature = "probe")]
mod session;

pub use select::ProbeInfo;
#[cfg(feature = "probe")]
pub use session::{ProbeRsDriver, ProbeSpec, find_probe, list_probes};
pub use worker::{Driver, ProbeHandle, ProbeWorker, Timeouts};
