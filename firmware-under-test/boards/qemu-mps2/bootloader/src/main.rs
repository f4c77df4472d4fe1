//! The otarig bootloader for the QEMU MPS2 AN385 board.
//!
//! QEMU loads it (`-kernel`) at address 0 and it runs at every power-on and reset:
//! 1. reads why the board reset (`otarig_qemu::reset`: a RAM word kept across resets), starts
//!    the watchdog and prints the first console line;
//! 2. opens the flash file named on the semihosting command line (`flash=PATH`);
//! 3. with `recovery=1` on the command line at power-on, runs ota-core's factory-reset drill
//!    (the Pico W's recovery button);
//! 4. runs ota-core's `Device::boot` and the entry check (`otarig_board::boot::select` with
//!    `otarig_qemu::check_entry`): exactly the simulated board's decisions and lines;
//! 5. copies the chosen image's body from its slot to its link address in RAM
//!    (`otarig_qemu::APP_BASE`), then enters it: VTOR, stack pointer, reset vector.
//!
//! Steps 3 to 5 are the boards' shared bootloader flow (`otarig_board::bootloader`) over this
//! board's watchdog, command line and copy-then-jump.
#![no_std]
#![no_main]

use core::panic::PanicInfo;

use cortex_m_rt::exception;
use embedded_storage::nor_flash::ReadNorFlash;
use ota_core::console::Console;
use ota_core::device::Device;
use ota_core::image::HEADER_LEN;
use otarig_board::boot::{self, Jump, Stop};
use otarig_board::bootloader::{self, FlashFailed, Loader};
use otarig_board::console::LineOut;
use otarig_qemu::reset::{self, Reset};
use otarig_qemu::uart::Uart0;
use otarig_qemu::{BoardFlash, Cmdline, LAYOUT, say, uart, watchdog};

/// Watchdog period while the bootloader runs and until the app takes the watchdog over.
const BOOT_WATCHDOG_MS: u32 = 8000;

/// The QEMU board under its bootloader: its semihosting command line (`recovery=1`).
struct Qemu {
    cmd: Cmdline,
}

impl Loader for Qemu {
    type Flash = BoardFlash;
    type Out = Uart0;

    fn start_watchdog(&mut self) {
        watchdog::start(BOOT_WATCHDOG_MS);
    }

    fn stop_watchdog(&mut self) {
        watchdog::stop();
    }

    fn reset_now(&mut self, why: Reset) -> ! {
        reset::reset_now(why)
    }

    fn factory_reset_requested(&mut self) -> bool {
        self.cmd.get("recovery") == Some("1")
    }

    fn select(dev: &mut Device<'_, BoardFlash>, out: &mut dyn Console) -> Result<Jump, Stop> {
        boot::select(dev, out, otarig_qemu::check_entry::<BoardFlash>)
    }

    fn enter(&mut self, dev: &mut Device<'_, BoardFlash>, jump: Jump) -> FlashFailed {
        let Jump { slot, vector_table } = jump;
        let Ok(header) = dev.header(slot) else {
            return FlashFailed;
        };
        if load_app(&mut dev.flash, slot, vector_table, header.body_len).is_err() {
            return FlashFailed;
        }
        // A full watchdog period for the app to take it over.
        watchdog::feed(BOOT_WATCHDOG_MS);
        Uart0::flush();
        // SAFETY: `boot::select` checked the image (signature, hash, `check_entry`: linked for
        // `vector_table`, a RAM stack pointer and a Thumb reset vector inside the body), and
        // `load_app` just copied its body there.
        unsafe { otarig_boot_jump(vector_table) }
    }
}

#[cortex_m_rt::entry]
fn main() -> ! {
    let why = reset::take();
    watchdog::start(BOOT_WATCHDOG_MS);
    uart::init();
    let id = otarig_qemu::device_id();
    bootloader::announce::<Uart0>(otarig_qemu::BOARD, &id, why);
    let mut board = Qemu {
        cmd: Cmdline::read(),
    };
    let Some(mut flash) = otarig_qemu::open_flash(&board.cmd) else {
        say!(
            "boot: FATAL no flash file {} of {} bytes (give flash=PATH on the semihosting command line)",
            board.cmd.flash_file(),
            LAYOUT.flash_size
        );
        bootloader::halt(&mut board);
    };
    let Some(key) = otarig_qemu::read_trusted_key(&mut flash) else {
        say!(
            "boot: FATAL no trusted key in the key region at 0x{:05x} (provision the flash file)",
            LAYOUT.otp
        );
        bootloader::halt(&mut board);
    };
    let dev = Device::new(flash, otarig_qemu::config(key));
    bootloader::run(board, dev, why)
}

/// Copies the body of the image in `slot` (`len` bytes after its header) to `to`.
fn load_app(
    flash: &mut BoardFlash,
    slot: u8,
    to: u32,
    len: u32,
) -> Result<(), otarig_qemu::flash::Error> {
    // SAFETY: `to` is APP_BASE (checked by `check_entry`) and `len` at most APP_MAX: the
    // region 0x0010_0000..0x0018_0000 of SSRAM1, which no part of the bootloader uses.
    let dest = unsafe { core::slice::from_raw_parts_mut(to as *mut u8, len as usize) };
    flash.read(LAYOUT.slot(slot) + HEADER_LEN as u32, dest)
}

/// Enters the app whose vector table is at `table` (a breakpoint here sees every jump).
///
/// # Safety
/// `table` must be the address of a valid Cortex-M vector table (initial stack pointer, then a
/// Thumb reset vector) of a program linked to run from there.
#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn otarig_boot_jump(table: u32) -> ! {
    // SAFETY: as this function's own contract.
    unsafe { bootloader::jump(table) }
}

/// The watchdog's interrupt (its only source on this board).
///
/// # Safety
/// Entered by the hardware only; it never returns (the board resets).
#[exception]
unsafe fn NonMaskableInt() {
    watchdog::on_nmi()
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    Uart0::panic_line(format_args!("boot: FATAL panic: {}", info.message()));
    reset::reset_now(Reset::Panic)
}
