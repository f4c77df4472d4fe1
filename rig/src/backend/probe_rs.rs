//! The probe-rs debug-probe backend: not written yet (issue 6).
//!
//! Plan: a `ProbeWorker` thread owns the blocking `probe_rs::Session` (attached by
//! [`crate::bench::ProbeSelector`] + chip name); a handle implementing
//! [`crate::board::Probe`] sends it commands over a channel and waits with a timeout; flash
//! progress becomes timeline events; the chip registry is loaded only when a bench board has a
//! probe. The dependency is behind the non-default `probe` feature until then, and
//! `rig bench-check` reports configured probes as an infrastructure problem.
