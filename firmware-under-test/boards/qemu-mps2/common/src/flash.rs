//! The board's flash: a host file (QEMU's working directory, or the path given on the command
//! line) read and written through semihosting, with NOR semantics:
//! - erase sets whole 4 KiB sectors to 0xFF;
//! - a program can only clear bits (the file gets `old & new`), in 4-byte words;
//! - nothing is cached: every write is in the file when the call returns, so killing QEMU at
//!   any instruction leaves the flash exactly as far as the firmware got (a cut between two
//!   calls, never inside one).
//!
//! Every erase and every program goes through one unmangled, never-inlined function,
//! [`otarig_flash_erase`] and [`otarig_flash_write`]: a debugger (QEMU's `-gdb`) that stops at
//! the N-th entry of one of them and then kills QEMU cuts the power exactly before the N-th
//! erase or program, nothing of it done.
//!
//! Offsets are ota-core's layout (`ota_core::layout::SIM`); the file is `LAYOUT.flash_size`
//! (2 MiB) long.

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash, check_erase, check_read,
    check_write,
};

use crate::semihosting::File;

/// Why a flash operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Out of bounds or misaligned.
    Bounds(NorFlashErrorKind),
    /// The host file could not be read or written.
    Host,
}

impl NorFlashError for Error {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::Bounds(k) => *k,
            Self::Host => NorFlashErrorKind::Other,
        }
    }
}

/// Program unit.
pub const WRITE_SIZE: usize = 4;
/// Erase unit (ota-core's sector).
pub const ERASE_SIZE: usize = 4096;

/// NOR flash over a semihosting file.
pub struct SemiFlash {
    file: File,
    size: u32,
}

impl SemiFlash {
    /// Opens the flash file; it must exist and be at least `size` bytes long.
    pub fn open(path: &str, size: u32) -> Option<Self> {
        let file = File::open(path).ok()?;
        if file.size().ok()? < size {
            return None;
        }
        Some(Self { file, size })
    }
}

impl ErrorType for SemiFlash {
    type Error = Error;
}

impl ReadNorFlash for SemiFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Error> {
        check_read(self, offset, bytes.len()).map_err(Error::Bounds)?;
        if bytes.is_empty() {
            return Ok(());
        }
        self.file.read_at(offset, bytes).map_err(|_| Error::Host)
    }

    fn capacity(&self) -> usize {
        self.size as usize
    }
}

impl NorFlash for SemiFlash {
    const WRITE_SIZE: usize = WRITE_SIZE;
    const ERASE_SIZE: usize = ERASE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Error> {
        check_erase(self, from, to).map_err(Error::Bounds)?;
        otarig_flash_erase(self, from, to)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
        check_write(self, offset, bytes.len()).map_err(Error::Bounds)?;
        otarig_flash_write(self, offset, bytes)
    }
}

/// Erases the sectors `from..to` (checked by the caller): one breakpoint for every erase.
#[unsafe(no_mangle)]
#[inline(never)]
pub fn otarig_flash_erase(flash: &mut SemiFlash, from: u32, to: u32) -> Result<(), Error> {
    let ones = [0xFFu8; ERASE_SIZE];
    let mut at = from;
    while at < to {
        flash.file.write_at(at, &ones).map_err(|_| Error::Host)?;
        at += ERASE_SIZE as u32;
    }
    Ok(())
}

/// Programs `bytes` at `offset` (checked by the caller): one breakpoint for every program.
/// Programming clears bits only: what lands is the old contents AND the new ones.
#[unsafe(no_mangle)]
#[inline(never)]
pub fn otarig_flash_write(flash: &mut SemiFlash, offset: u32, bytes: &[u8]) -> Result<(), Error> {
    let mut buf = [0u8; 1024];
    let mut done = 0usize;
    while done < bytes.len() {
        let n = (bytes.len() - done).min(buf.len());
        let at = offset + done as u32;
        flash
            .file
            .read_at(at, &mut buf[..n])
            .map_err(|_| Error::Host)?;
        for (old, new) in buf[..n].iter_mut().zip(&bytes[done..done + n]) {
            *old &= *new;
        }
        flash
            .file
            .write_at(at, &buf[..n])
            .map_err(|_| Error::Host)?;
        done += n;
    }
    Ok(())
}
