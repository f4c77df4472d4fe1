//! # rig
//!
//! The otarig harness as a library: seams to boards ([`board`]) and their implementations
//! ([`backend`]), the run's [`timeline`], console line handling ([`console`]), scenario files
//! ([`scenario`]), the [`engine`] that runs them, verdicts ([`verdict`]) and reports
//! ([`report`]). The `rig` binary is a thin CLI ([`cli`]) over it.

pub mod backend;
pub mod bench;
pub mod bench_check;
pub mod board;
pub mod cli;
pub mod console;
pub mod engine;
pub mod lock;
pub mod report;
pub mod rollout;
pub mod rss;
pub mod scenario;
pub mod sweep;
pub mod timeline;
pub mod verdict;
