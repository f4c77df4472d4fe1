//! What the otarig QEMU MPS2 (AN385) bootloader and application share.
//!
//! The board is QEMU's `mps2-an385` (Cortex-M3; the firmware is built for thumbv6m-none-eabi,
//! the Pico W's code generation). Its memory map, as this firmware uses it:
//!
//! | address        | size     | what                                                        |
//! |---------------:|---------:|-------------------------------------------------------------|
//! | `0x0000_0000`  | 1 MiB    | bootloader (ELF loaded by QEMU's `-kernel`, SSRAM1)          |
//! | `0x0010_0000`  | 512 KiB  | the app, copied here from its slot by the bootloader ([`APP_BASE`]) |
//! | `0x2000_0000`  | 4 MiB − 256 | RAM of either stage (SSRAM2/3): data, bss, stack          |
//! | `0x203F_FF00`  | 256 B    | kept across resets: reset reason, boot count ([`reset`])     |
//! | `0x4000_4000`  |          | CMSDK UART0: the console ([`uart`])                          |
//! | `0x4000_8000`  |          | CMSDK watchdog ([`watchdog`]), interrupt on the NMI           |
//! | `0x4020_0000`  |          | LAN9118 Ethernet (IRQ 13)                                    |
//!
//! The flash is a host file read and written through semihosting ([`flash`]), with ota-core's
//! layout (`ota_core::layout::SIM`, 2 MiB): key region at 0x10000, state records at 0x11000 and
//! 0x12000, slot A at 0x20000, slot B at 0xA0000, factory image at 0x120000. The first 64 KiB
//! (the bootloader's region on the Pico W) are unused: QEMU loads the bootloader itself.
//!
//! Both slots hold images linked for the same address, [`APP_BASE`] in RAM: the bootloader
//! copies the body there, so one build of a release runs from either slot (no `-a`/`-b`
//! variants, unlike the execute-in-place Pico W).
#![no_std]

pub mod flash;
pub mod reset;
pub mod semihosting;
pub mod uart;
pub mod watchdog;

use embedded_storage::nor_flash::ReadNorFlash;
use ota_core::Reason;
use ota_core::device::{Config, Quirks};
use ota_core::image::{HEADER_LEN, ImageHeader};
use ota_core::layout::{Layout, SIM};

pub use uart::Console;

/// Board kind written in image headers and printed at boot.
pub const BOARD: &str = "qemu-mps2";
/// The flash map (shared with the simulated board and the Pico W).
pub const LAYOUT: Layout = SIM;
/// Where every app is linked and where the bootloader copies it: its vector table.
pub const APP_BASE: u32 = 0x0010_0000;
/// Largest app body (a slot less the image header).
pub const APP_MAX: u32 = SIM.slot_size - HEADER_LEN as u32;
/// Marker in front of the trusted key in the key region.
pub use otarig_board::provision::KEY_MAGIC;
/// Flash file used when the command line names none.
pub const DEFAULT_FLASH_FILE: &str = "otarig-flash.bin";
/// RAM an initial stack pointer must point into (or at the end of).
const RAM: core::ops::RangeInclusive<u32> = 0x2000_0000..=reset::KEEP_BASE as u32;

/// The flash driver both stages use.
pub type BoardFlash = flash::SemiFlash;

/// ota-core settings for this board.
pub fn config(public_key: [u8; 32]) -> Config<'static> {
    Config {
        layout: LAYOUT,
        public_key,
        board: BOARD,
        max_attempts: ota_core::device::DEFAULT_MAX_ATTEMPTS,
        quirks: QUIRKS,
    }
}

/// The deliberate defects this build carries: none, unless built with a `quirk-*` feature
/// (tools/quirk-check.sh proves the rig's scenarios fail on such a firmware).
pub const QUIRKS: Quirks = Quirks {
    state_before_data: cfg!(feature = "quirk-state-before-data"),
    skip_body_hash: cfg!(feature = "quirk-skip-body-hash"),
    early_confirm: false,
    skip_state_crc: false,
    revert_in_ram: false,
};

/// The settings QEMU passes on the semihosting command line (`-append "flash=F ..."`).
pub struct Cmdline {
    buf: [u8; 256],
}

impl Cmdline {
    /// Reads the command line from the host.
    pub fn read() -> Self {
        let mut me = Self { buf: [0; 256] };
        let n = semihosting::cmdline(&mut me.buf).len();
        me.buf[n..].fill(0);
        me
    }

    fn text(&self) -> &str {
        let n = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.buf.len());
        core::str::from_utf8(&self.buf[..n]).unwrap_or("")
    }

    /// The value of `key=value` on the command line.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.text()
            .split_ascii_whitespace()
            .find_map(|w| w.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }

    /// The flash file: `flash=PATH`, else [`DEFAULT_FLASH_FILE`] in QEMU's working directory.
    pub fn flash_file(&self) -> &str {
        self.get("flash").unwrap_or(DEFAULT_FLASH_FILE)
    }
}

/// Opens the board's flash as the command line says.
pub fn open_flash(cmd: &Cmdline) -> Option<BoardFlash> {
    flash::SemiFlash::open(cmd.flash_file(), LAYOUT.flash_size)
}

/// Reads the trusted release key from the key region (written when the flash file is made).
/// `None` when the region holds no key.
pub fn read_trusted_key<F: ReadNorFlash>(flash: &mut F) -> Option<[u8; 32]> {
    otarig_board::provision::read_trusted_key(flash, &LAYOUT)
}

/// The device id reported at check-in: `qemu-` and the NIC's MAC address in hex (QEMU's
/// `-nic ...,mac=52:54:00:12:34:56`, so two boards on one bench differ by their MAC).
pub fn device_id() -> heapless::String<24> {
    otarig_board::provision::hex_id("qemu-", &mac_address())
}

/// The LAN9118's MAC address (from its EEPROM, which QEMU fills from `-nic mac=`).
pub fn mac_address() -> [u8; 6] {
    const BASE: usize = 0x4020_0000;
    const MAC_CSR_CMD: usize = BASE + 0xA4;
    const MAC_CSR_DATA: usize = BASE + 0xA8;
    let mac_read = |reg: u32| -> u32 {
        // SAFETY: LAN9118 registers on this board's memory map; reading MAC registers has no
        // side effect on the NIC's state.
        unsafe {
            core::ptr::write_volatile(MAC_CSR_CMD as *mut u32, 0xC000_0000 | reg);
            while core::ptr::read_volatile(MAC_CSR_CMD as *const u32) & 0x8000_0000 != 0 {}
            core::ptr::read_volatile(MAC_CSR_DATA as *const u32)
        }
    };
    let lo = mac_read(3).to_le_bytes();
    let hi = mac_read(2).to_le_bytes();
    [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1]]
}

/// Can the image in `slot` (described by `header`) run? It must be linked for [`APP_BASE`],
/// fit there, and start with a vector table holding a stack pointer in RAM and a Thumb reset
/// vector inside the body equal to the header's entry point. Returns the address of the
/// vector table to jump to once the body is copied there.
pub fn check_entry<F: ReadNorFlash>(
    flash: &mut F,
    slot: u8,
    header: &ImageHeader,
) -> Result<u32, Reason> {
    if header.load_addr != APP_BASE || header.body_len > APP_MAX || header.body_len < 8 {
        return Err(Reason::MissingEntryPoint);
    }
    otarig_board::boot::check_vector_table(
        flash,
        LAYOUT.slot(slot) + HEADER_LEN as u32,
        APP_BASE,
        header,
        RAM,
    )
}
