//! What the real otarig boards (the Pico W, the QEMU MPS2 board) share on top of ota-core.
//!
//! Without features, only board-independent code: it builds for the host too, and the boards
//! test it against ota-core's simulated NOR flash. The features add what runs on a Cortex-M
//! under embassy: `bootloader` (the bootloader's flow and jump), `watchdog` (the apps' feeding
//! policy), `net` (the HTTP client) and `life` (the app loop, its crash drill and panic line).
#![cfg_attr(not(test), no_std)]

pub mod boot;
#[cfg(feature = "bootloader")]
pub mod bootloader;
pub mod console;
#[cfg(feature = "life")]
pub mod crash;
#[cfg(feature = "watchdog")]
pub mod feeding;
#[cfg(feature = "net")]
pub mod http;
#[cfg(feature = "life")]
pub mod life;
#[cfg(feature = "net")]
pub mod net;
pub mod provision;
pub mod reset;
