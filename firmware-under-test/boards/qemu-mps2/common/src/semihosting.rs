//! ARM semihosting (the `BKPT 0xAB` calls QEMU answers with `-semihosting-config enable=on`):
//! just the file operations the flash needs and the command line.
//!
//! Each call passes a block of words in r1 and gets its result in r0. On a board without a
//! debugger or emulator behind it, `BKPT` would halt the core: this firmware exists only for
//! QEMU.

use core::arch::asm;

const SYS_OPEN: u32 = 0x01;
const SYS_WRITE: u32 = 0x05;
const SYS_READ: u32 = 0x06;
const SYS_SEEK: u32 = 0x0A;
const SYS_FLEN: u32 = 0x0C;
const SYS_GET_CMDLINE: u32 = 0x15;

/// `fopen` mode "r+b": read and write an existing file, never create or truncate it.
const MODE_READ_WRITE: u32 = 3;

/// A semihosting call failed (the host returned an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error;

fn call(op: u32, block: &mut [u32]) -> i32 {
    let result: i32;
    // SAFETY: the semihosting ABI: r0 = operation, r1 = parameter block; the host (QEMU) reads
    // and writes only the block and the buffers it points to, all valid for the call.
    unsafe {
        asm!("bkpt #0xab", inout("r0") op => result, in("r1") block.as_mut_ptr(), options(nostack));
    }
    result
}

/// An open host file.
#[derive(Debug)]
pub struct File(u32);

impl File {
    /// Opens an existing host file for reading and writing (`path` without a NUL).
    pub fn open(path: &str) -> Result<Self, Error> {
        let mut name: heapless::Vec<u8, 256> = heapless::Vec::new();
        name.extend_from_slice(path.as_bytes()).map_err(|_| Error)?;
        name.push(0).map_err(|_| Error)?;
        let mut block = [name.as_ptr() as u32, MODE_READ_WRITE, path.len() as u32];
        match call(SYS_OPEN, &mut block) {
            -1 => Err(Error),
            h => Ok(Self(h as u32)),
        }
    }

    /// Length of the file in bytes.
    pub fn size(&self) -> Result<u32, Error> {
        let mut block = [self.0];
        match call(SYS_FLEN, &mut block) {
            n if n < 0 => Err(Error),
            n => Ok(n as u32),
        }
    }

    fn seek(&self, pos: u32) -> Result<(), Error> {
        let mut block = [self.0, pos];
        if call(SYS_SEEK, &mut block) == 0 {
            Ok(())
        } else {
            Err(Error)
        }
    }

    /// Reads exactly `buf.len()` bytes at `pos`.
    pub fn read_at(&self, pos: u32, buf: &mut [u8]) -> Result<(), Error> {
        self.seek(pos)?;
        let mut block = [self.0, buf.as_mut_ptr() as u32, buf.len() as u32];
        // The result is the number of bytes NOT read.
        if call(SYS_READ, &mut block) == 0 {
            Ok(())
        } else {
            Err(Error)
        }
    }

    /// Writes all of `buf` at `pos`.
    pub fn write_at(&self, pos: u32, buf: &[u8]) -> Result<(), Error> {
        self.seek(pos)?;
        let mut block = [self.0, buf.as_ptr() as u32, buf.len() as u32];
        // The result is the number of bytes NOT written.
        if call(SYS_WRITE, &mut block) == 0 {
            Ok(())
        } else {
            Err(Error)
        }
    }
}

/// The semihosting command line: QEMU's `-kernel` file name, a space, then `-append`'s text
/// (or the `arg=` values of `-semihosting-config`). Empty if the host gives none.
pub fn cmdline(buf: &mut [u8]) -> &str {
    let mut block = [buf.as_mut_ptr() as u32, buf.len() as u32];
    if call(SYS_GET_CMDLINE, &mut block) != 0 {
        return "";
    }
    let n = (block[1] as usize).min(buf.len());
    core::str::from_utf8(&buf[..n]).unwrap_or("")
}
