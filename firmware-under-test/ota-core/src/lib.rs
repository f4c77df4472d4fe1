//! # ota-core
//!
//! Every decision an otarig board makes about firmware updates, in one `no_std` crate that runs
//! on a real board (Raspberry Pi Pico W), in the simulated board process, in the power-cut
//! sweep's replay and in the in-process fleet simulation.
//!
//! This crate holds:
//! - [`version`]: the `major.minor.patch` release version used everywhere.
//! - [`image`]: the signed image header (what the bootloader and updater verify).
//! - [`manifest`]: the signed release manifest (size, SHA-256, per-chunk hashes, URL).
//! - [`checkin`]: the device ↔ server check-in messages (small JSON).
//!
//! Parsers never panic: every function that takes bytes from the outside returns a `Result`.
//! With the `std` feature, [`image::build`] and [`manifest::build`] create and sign artifacts
//! for host tools (the rig, the fake server and tests).
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![forbid(unsafe_code)]

pub mod checkin;
pub mod console;
pub mod device;
pub mod download;
pub mod http;
pub mod image;
pub mod layout;
pub mod manifest;
#[cfg(any(feature = "sim-flash", test))]
pub mod nor;
pub mod payload;
#[cfg(test)]
mod proof;
mod reason;
pub mod reset;
pub mod state;
#[cfg(any(feature = "sim-flash", test))]
pub mod sweep;
#[cfg(any(feature = "std", test))]
pub mod tools;
pub mod updater;
pub mod version;

pub use reason::Reason;
pub use version::Version;

/// Length of an ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of a SHA-256 digest.
pub const DIGEST_LEN: usize = 32;

/// A SHA-256 digest.
pub type Digest = [u8; DIGEST_LEN];

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// Verifies an ed25519 `signature` of `message` with the trusted `public_key`.
pub fn verify_signature(
    public_key: &[u8; PUBLIC_KEY_LEN],
    message: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let signature = ed25519_dalek::Signature::from_bytes(signature);
    key.verify_strict(message, &signature).is_ok()
}

/// Host-side signing key helpers (feature `std`).
#[cfg(any(feature = "std", test))]
pub mod keys {
    pub use ed25519_dalek::{SigningKey, VerifyingKey};

    /// A fresh signing key from the operating system's random source.
    pub fn generate() -> SigningKey {
        SigningKey::generate(&mut rand_core::OsRng)
    }

    /// Signs `message`.
    pub fn sign(key: &SigningKey, message: &[u8]) -> [u8; super::SIGNATURE_LEN] {
        use ed25519_dalek::Signer as _;
        key.sign(message).to_bytes()
    }
}

pub(crate) fn le_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

pub(crate) fn le_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}
