//! What the real otarig boards (the Pico W, the QEMU MPS2 board) share on top of ota-core.
//!
//! Only board-independent code lives here: it builds for the host too, and the boards test it
//! against ota-core's simulated NOR flash.
#![no_std]

pub mod boot;
#[cfg(feature = "net")]
pub mod http;
#[cfg(feature = "life")]
pub mod life;
