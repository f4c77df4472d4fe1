//! # fake-server
//!
//! The otarig update server: a small, correct OTA update API (check-in, signed manifests,
//! ranged image downloads, staged rollout, forced commands) that misbehaves on purpose when
//! told to by [`faults`] rules. Used in-process by the rig ([`start`] → [`ServerHandle`]) and
//! standalone (`fake-server --images DIR`) for runbook drills with real devices.
//!
//! | module | concept |
//! |---|---|
//! | [`faults`] | fault rules, the per-request plan, the streaming body adapters |
//! | [`policy`] | who is offered the release when, and when the server halts a rollout: one trait, one policy per backend model (otarig phases, hawkBit groups, AWS IoT rate + abort, Mender batches) |
//! | [`registry`] | the rollout bookkeeping with no I/O: releases, device records, counters, commands, halts |
//! | `routes` | HTTP: routing only (check-in, manifest, images, control API) |
//! | `shared`, `server` | state shared by connections; [`start`] and the [`ServerHandle`] |
//!
//! Every request, every applied fault and every finished body is a [`ServerEvent`].

mod cli;
mod config;
mod error;
mod events;
pub mod faults;
pub mod policy;
pub mod registry;
mod release;
mod routes;
mod server;
mod shared;

pub use cli::main_with_args;
pub use config::{Clock, Config};
pub use error::Error;
pub use events::{EventKind, ServerEvent};
pub use policy::{
    FailureKind, Halt, HaltPolicy, PhaseStats, PolicyConfig, PolicyStatus, Rollout, cohort,
};
pub use registry::{DeviceRecord, ReleaseInfo};
pub use release::{MAX_RELEASE_NAME, check_release_name};
pub use server::{InProcess, ServerHandle, start, start_on};

/// Largest image kept in memory; larger ones are streamed from disk in 64 KiB reads.
pub const MAX_IMAGE: u64 = 64 * 1024 * 1024;
/// Most image bytes kept in the cache at once.
pub const MAX_CACHE: u64 = 256 * 1024 * 1024;
