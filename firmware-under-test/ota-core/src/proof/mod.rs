//! Every verification in ota-core, proven by itself: for each check a test feeds the one input
//! it exists to refuse, and says which guard refused it (the console line's reason), so that
//! removing or weakening any single check fails here. Checks guarded twice against different
//! faults are proven once per fault: a flash damaged or tampered with while the board is off
//! (`boot`), and a server that serves what it should not (`server`). Sampled power-cut sweeps
//! of the update, failed-trial and rollback paths (`sweeps`) run here too.
//!
//! Written against the public API only, as an integration test would be, but compiled into
//! the unit-test binary: it is stage 1 of the mutation-testing oracle (`.ci/mutants.sh`),
//! where every mutant costs one compile of this crate's tests, not three. Keep it fast.

mod app;
mod bench;
mod boot;
mod buffers;
mod checkin;
mod download;
mod formats;
mod server;
mod sweeps;
