//! What the otarig Pico W bootloader and application share.
//!
//! The flash map is ota-core's [`SIM`] layout (the simulated board copies the Pico's flash), read
//! through embassy-rp's blocking flash driver, whose offsets start at the beginning of the flash
//! chip (`0x1000_0000` in the XIP window):
//!
//! | XIP address   | size          | region                                            |
//! |--------------:|--------------:|---------------------------------------------------|
//! | `0x1000_0000` | 256 B         | boot2 (stage-2 loader, part of the bootloader)    |
//! | `0x1000_0100` | 64 KiB − 256  | bootloader                                        |
//! | `0x1001_0000` | 4 KiB         | key region: `OTPK` + trusted ed25519 public key   |
//! | `0x1001_1000` | 4 KiB         | state record copy 0                               |
//! | `0x1001_2000` | 4 KiB         | state record copy 1                               |
//! | `0x1002_0000` | 512 KiB       | slot A: 256-byte image header, then the app       |
//! | `0x100A_0000` | 512 KiB       | slot B: 256-byte image header, then the app       |
//! | `0x1012_0000` | 512 KiB       | factory image (for the factory-reset drill)       |
//! | `0x101A_0000` | 384 KiB       | unused                                            |
//!
//! The RP2040 executes in place, so an app is linked for the slot it runs from: its vector
//! table sits right after the header ([`vector_table`]), and [`check_entry`] refuses an image
//! linked anywhere else.
//!
//! Everything but [`console`], [`reset`] and the flash driver is board-independent and is
//! tested on the host (`cargo test --target <host triple>`).
#![cfg_attr(not(test), no_std)]

pub mod boot;
#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod reset;

use embedded_storage::nor_flash::ReadNorFlash;
use ota_core::Reason;
use ota_core::device::{Config, Quirks};
use ota_core::image::{HEADER_LEN, ImageHeader};
use ota_core::layout::{Layout, SIM};

/// Board kind written in image headers and printed at boot.
pub const BOARD: &str = "pico-w";
/// The flash map (shared with the simulated board).
pub const LAYOUT: Layout = SIM;
/// Where the flash appears in the address space (execute in place).
pub const XIP_BASE: u32 = 0x1000_0000;
/// Size of the Pico W's flash chip (W25Q16JV).
pub const FLASH_SIZE: usize = 2 * 1024 * 1024;
/// Marker in front of the trusted key in the key region.
pub use otarig_board::provision::KEY_MAGIC;
/// Main SRAM: an initial stack pointer must point inside it (or at its end).
const RAM: core::ops::RangeInclusive<u32> = 0x2000_0000..=0x2004_2000;

/// The flash driver both stages use.
#[cfg(target_os = "none")]
pub type BoardFlash = embassy_rp::flash::Flash<
    'static,
    embassy_rp::peripherals::FLASH,
    embassy_rp::flash::Blocking,
    FLASH_SIZE,
>;

/// ota-core settings for this board.
pub fn config(public_key: [u8; 32]) -> Config<'static> {
    Config {
        layout: LAYOUT,
        public_key,
        board: BOARD,
        max_attempts: ota_core::device::DEFAULT_MAX_ATTEMPTS,
        quirks: Quirks::default(),
    }
}

/// Reads the trusted release key from the key region (written once when the board is
/// provisioned; see README.md). `None` when the region holds no key.
pub fn read_trusted_key<F: ReadNorFlash>(flash: &mut F) -> Option<[u8; 32]> {
    otarig_board::provision::read_trusted_key(flash, &LAYOUT)
}

/// The device id reported at check-in: `pico-` and the flash chip's 64-bit unique id in hex.
#[cfg(target_os = "none")]
pub fn device_id(flash: &mut BoardFlash) -> heapless::String<24> {
    let mut uid = [0u8; 8];
    if flash.blocking_unique_id(&mut uid).is_err() {
        return otarig_board::provision::hex_id("pico-unknown", &[]);
    }
    otarig_board::provision::hex_id("pico-", &uid)
}

/// XIP address of the app's vector table in `slot`: the body, right after the header. An image
/// for `slot` must be linked there (`load_addr` in its header).
pub const fn vector_table(slot: u8) -> u32 {
    let base = if slot & 1 == 0 {
        SIM.slots[0]
    } else {
        SIM.slots[1]
    };
    XIP_BASE + base + HEADER_LEN as u32
}

/// Can the image in `slot` (described by `header`) run from there? Checks that it is linked for
/// this slot (`load_addr`), that its vector table holds a stack pointer in RAM and a Thumb reset
/// vector, and that the reset vector is the header's entry point. Returns the vector table
/// address to jump to.
///
/// An image linked for the other slot fails here: it is the "missing entry point" class of
/// failure, because its code would jump into the wrong slot.
pub fn check_entry<F: ReadNorFlash>(
    flash: &mut F,
    slot: u8,
    header: &ImageHeader,
) -> Result<u32, Reason> {
    let table = vector_table(slot);
    if header.load_addr != table {
        return Err(Reason::MissingEntryPoint);
    }
    otarig_board::boot::check_vector_table(flash, table - XIP_BASE, table, header, RAM)
}
