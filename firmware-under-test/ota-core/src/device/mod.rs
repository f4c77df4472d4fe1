//! The device's decisions, over any `NorFlash`: what the bootloader boots, when an update may
//! start, where a download resumes, whether a staged image may be activated, and every state
//! change (stage, confirm, revert, rollback). The host (sim-board process, Pico W firmware, test
//! harness) does the I/O around these calls and prints the console lines they return.
//!
//! Write ordering, and why every cut point is safe:
//! 1. A download first persists "previous slot: none, downloading manifest D into slot X" —
//!    one atomic state record — *then* erases slot X. So the state never points at a slot
//!    that is being rewritten.
//! 2. Chunks are programmed one by one; progress is not persisted: on resume the slot's
//!    chunks are hashed against the manifest, and the first mismatch is where it resumes
//!    (a torn chunk fails its hash; at most one chunk is lost).
//! 3. The staged image is fully verified (header, board, signature, body hash, manifest hash,
//!    version and anti-rollback floor) before one record switches `active` to it in trial
//!    mode with the old slot as `previous`.
//! 4. The bootloader counts trial boots in the record *before* running the image; past the
//!    limit it switches back to `previous` in one record. Confirm is one record too. So the
//!    image that runs is always the one the newest valid record names: there is no state in
//!    which a reverted image runs, nor a confirmed one is reverted.
//! 5. Every boot verifies the image it is about to run; an invalid active image falls back to
//!    an intact previous one, and only with no valid image anywhere is the board bricked.

use core::fmt;

use embedded_storage::nor_flash::NorFlash;

pub use crate::console::Console;
use crate::console::{Fatal, Line, RevertReason, SlotState};

use crate::image::{HEADER_LEN, ImageHeader};
use crate::layout::Layout;
use crate::manifest::Manifest;
use crate::state::{self, BootState, Mode};
use crate::{Digest, Reason, Version};

mod boot;
mod update;

pub use update::check_response;

/// Device errors: a flash failure (on the sim, also a power cut) or a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    Flash(E),
    Refused(Reason),
    /// Nothing valid to boot.
    Bricked,
}

impl<E> From<Reason> for Error<E> {
    fn from(r: Reason) -> Self {
        Self::Refused(r)
    }
}

/// Settings a board compiles in.
#[derive(Debug, Clone, Copy)]
pub struct Config<'a> {
    pub layout: Layout,
    /// Trusted release key (from the OTP region on the sim).
    pub public_key: [u8; 32],
    /// Board kind images must be built for.
    pub board: &'a str,
    /// Trial boots before reverting.
    pub max_attempts: u8,
    /// Deliberate defects, for proving that the rig catches a broken firmware. Always
    /// `Quirks::default()` (none) in a real build.
    pub quirks: Quirks,
}

/// Deliberate firmware defects (test only). Each one must make some rig scenario or the
/// power-cut sweep fail; `rig/tests/broken_firmware.rs` checks that it does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    /// Skip the body hash check: a body that does not match its signed header is accepted.
    pub skip_body_hash: bool,
    /// Write the "staged" record before the image data it describes (the classic ordering bug).
    pub state_before_data: bool,
    /// Confirm a trial image as soon as the app starts, before any successful check-in.
    pub early_confirm: bool,
    /// Trust a state record without checking its CRC (a torn record passes for a valid one).
    pub skip_state_crc: bool,
    /// Revert in RAM only: boot the previous image but never write the record that makes it
    /// the active one (the failed slot stays active in flash).
    pub revert_in_ram: bool,
}

/// Trial boots before the bootloader reverts, on every board unless a test says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u8 = 3;

pub use crate::reset::Reset;

/// What the bootloader decided to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    pub slot: u8,
    pub header: ImageHeader,
    pub state: BootState,
}

impl Boot {
    /// The state to report at check-in.
    pub fn checkin_state(&self) -> crate::checkin::DeviceState {
        use crate::checkin::DeviceState;
        match (self.state.mode, self.state.reverted) {
            (Mode::Trial, _) => DeviceState::Trial,
            (Mode::Confirmed, true) => DeviceState::Reverted,
            (Mode::Confirmed, false) => DeviceState::Confirmed,
        }
    }

    /// The check-in a board running this boot sends: `device` (cut to the protocol's limit)
    /// and, outside a trial, `boots` (boots since power-on) as the boot count; during a trial
    /// the count is the trial attempt.
    pub fn checkin_request(&self, device: &str, boots: u32) -> crate::checkin::CheckinRequest {
        use crate::checkin::{Slot, bounded};
        let mut version = heapless::String::new();
        let _ = fmt::Write::write_fmt(&mut version, format_args!("{}", self.header.version));
        crate::checkin::CheckinRequest {
            device: bounded(device),
            version,
            slot: if self.slot == 0 { Slot::A } else { Slot::B },
            state: self.checkin_state(),
            boot_count: if self.state.mode == Mode::Trial {
                u32::from(self.state.attempts)
            } else {
                boots
            },
            last_error: self.state.last_error.map(|r| bounded(r.as_str())),
        }
    }
}

/// What a board does after the server answered its check-in ([`Device::answer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing: check in again later.
    CheckInLater,
    /// A commanded rollback is staged: reset into the previous image.
    ResetForRollback,
    /// An update is offered: fetch the manifest at the answer's `manifest_url`.
    Update,
}

/// A check-in answer, handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// The trial image was confirmed by this check-in.
    pub confirmed: bool,
    pub next: Next,
}

/// The device logic bound to one flash.
pub struct Device<'a, F> {
    pub flash: F,
    pub cfg: Config<'a>,
}

fn flash_err<E>(e: E) -> Error<E> {
    Error::Flash(e)
}

impl<'a, F: NorFlash> Device<'a, F> {
    pub fn new(flash: F, cfg: Config<'a>) -> Self {
        Self { flash, cfg }
    }

    fn store(&mut self, st: &mut BootState) -> Result<(), Error<F::Error>> {
        state::store(&mut self.flash, &self.cfg.layout, st).map_err(flash_err)
    }

    /// Reads the header of the image in `slot`, structurally checked.
    pub fn header(&mut self, slot: u8) -> Result<ImageHeader, Error<F::Error>> {
        self.header_at(self.cfg.layout.slot(slot))
    }

    fn header_at(&mut self, addr: u32) -> Result<ImageHeader, Error<F::Error>> {
        let mut buf = [0u8; HEADER_LEN];
        self.flash.read(addr, &mut buf).map_err(flash_err)?;
        ImageHeader::parse(&buf).map_err(|e| {
            Error::Refused(match e {
                crate::image::HeaderError::MissingEntryPoint => Reason::MissingEntryPoint,
                _ => Reason::BadHeader,
            })
        })
    }

    /// What the CPU finds at the entry point of the image in `slot`: the app and the drill it
    /// plays, or why nothing runnable is there.
    pub fn app(&mut self, slot: u8) -> Result<crate::payload::Drill, crate::payload::PayloadError> {
        let mut entry = [0u8; 512];
        let at = self.cfg.layout.slot(slot) + HEADER_LEN as u32;
        match self.flash.read(at, &mut entry) {
            Ok(()) => crate::payload::parse(&entry).map(|a| a.drill),
            Err(_) => Err(crate::payload::PayloadError::NoEntry),
        }
    }

    /// SHA-256 of `len` bytes of flash at `addr`.
    fn hash(&mut self, addr: u32, len: u32) -> Result<Digest, Error<F::Error>> {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        let mut buf = [0u8; 256];
        let mut done = 0u32;
        while done < len {
            let n = (len - done).min(buf.len() as u32) as usize;
            self.flash
                .read(addr + done, &mut buf[..n])
                .map_err(flash_err)?;
            h.update(&buf[..n]);
            done += n as u32;
        }
        Ok(h.finalize().into())
    }

    /// Full check of the image in `slot`: header, board, signature, body hash, floor.
    pub fn check_image(&mut self, slot: u8, floor: u32) -> Result<ImageHeader, Error<F::Error>> {
        self.check_at(self.cfg.layout.slot(slot), floor)
    }

    /// Full check of the image at `addr` (a slot or the factory region).
    fn check_at(&mut self, addr: u32, floor: u32) -> Result<ImageHeader, Error<F::Error>> {
        let h = self.header_at(addr)?;
        if h.image_len() > self.cfg.layout.slot_size {
            return Err(Reason::TooLarge.into());
        }
        if h.board_kind() != self.cfg.board {
            return Err(Reason::WrongBoard.into());
        }
        if !h.verify_signature(&self.cfg.public_key) {
            return Err(Reason::BadSignature.into());
        }
        let body = self.hash(addr + HEADER_LEN as u32, h.body_len)?;
        if body != h.body_sha256 && !self.cfg.quirks.skip_body_hash {
            return Err(Reason::BadHash.into());
        }
        if h.rollback_counter < floor {
            return Err(Reason::RollbackCounter.into());
        }
        Ok(h)
    }
}

/// A console that keeps every line (host tests).
#[cfg(test)]
pub(crate) struct Lines(pub(crate) Vec<String>);

#[cfg(test)]
impl Console for Lines {
    fn line(&mut self, line: &Line<'_>) {
        self.0.push(line.to_string());
    }
}

#[cfg(test)]
mod tests;
