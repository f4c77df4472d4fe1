//! # rig
//!
//! The otarig harness as a library: seams to boards ([`board`]), the run's [`timeline`],
//! verdicts ([`verdict`]). The `rig` binary is a thin CLI over it.

pub mod board;
pub mod timeline;
pub mod verdict;
