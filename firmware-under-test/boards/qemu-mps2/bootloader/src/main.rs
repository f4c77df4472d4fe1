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
#![no_std]
#![no_main]

use core::panic::PanicInfo;

use cortex_m_rt::exception;
use embedded_storage::nor_flash::ReadNorFlash;
use ota_core::console::{Console as _, Line};
use ota_core::device::Device;
use ota_core::image::HEADER_LEN;
use otarig_board::boot::{self, Jump, Stop};
use otarig_qemu::reset::{self, Reset};
use otarig_qemu::{BoardFlash, Cmdline, Console, LAYOUT, say, uart, watchdog};

/// Watchdog period while the bootloader runs and until the app takes the watchdog over.
const BOOT_WATCHDOG_MS: u32 = 8000;

#[cortex_m_rt::entry]
fn main() -> ! {
    let why = reset::take();
    watchdog::start(BOOT_WATCHDOG_MS);
    uart::init();
    if why == Reset::Watchdog {
        Console.line(&Line::WatchdogExpired);
    }
    let id = otarig_qemu::device_id();
    Console.line(&Line::BootBanner {
        board: otarig_qemu::BOARD,
        device: &id,
        reset: why,
    });
    let cmd = Cmdline::read();
    let Some(mut flash) = otarig_qemu::open_flash(&cmd) else {
        say!(
            "boot: FATAL no flash file {} of {} bytes (give flash=PATH on the semihosting command line)",
            cmd.flash_file(),
            LAYOUT.flash_size
        );
        halt();
    };
    let Some(key) = otarig_qemu::read_trusted_key(&mut flash) else {
        say!(
            "boot: FATAL no trusted key in the key region at 0x{:05x} (provision the flash file)",
            LAYOUT.otp
        );
        halt();
    };
    let mut dev = Device::new(flash, otarig_qemu::config(key));
    if why == Reset::PowerOn && cmd.get("recovery") == Some("1") {
        // The factory-reset drill: bounded flash work, so the watchdog waits for it.
        watchdog::stop();
        let reset = dev.factory_reset(&mut Console);
        watchdog::start(BOOT_WATCHDOG_MS);
        if let Err(ota_core::device::Error::Flash(_)) = reset {
            say!("boot: FATAL flash error");
            reset::reset_now(Reset::Reboot);
        }
    }
    match boot::select(
        &mut dev,
        &mut Console,
        otarig_qemu::check_entry::<BoardFlash>,
    ) {
        Ok(Jump { slot, vector_table }) => {
            let Ok(header) = dev.header(slot) else {
                say!("boot: FATAL flash error");
                reset::reset_now(Reset::Reboot);
            };
            if load_app(&mut dev.flash, slot, vector_table, header.body_len).is_err() {
                say!("boot: FATAL flash error");
                reset::reset_now(Reset::Reboot);
            }
            // A full watchdog period for the app to take it over.
            watchdog::feed(BOOT_WATCHDOG_MS);
            uart::flush();
            // SAFETY: `boot::select` checked the image (signature, hash, `check_entry`: linked
            // for `vector_table`, a RAM stack pointer and a Thumb reset vector inside the body),
            // and `load_app` just copied its body there.
            unsafe { otarig_boot_jump(vector_table) }
        }
        Err(Stop::Bricked) => halt(),
        Err(Stop::Flash) => {
            say!("boot: FATAL flash error");
            reset::reset_now(Reset::Reboot);
        }
    }
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

/// Bricked (or unprovisioned): stays in the bootloader until the power goes, with the
/// watchdog stopped so the board does not reset in a loop.
fn halt() -> ! {
    uart::flush();
    watchdog::stop();
    loop {
        cortex_m::asm::wfi();
    }
}

/// Enters the app whose vector table is at `table` (a breakpoint here sees every jump).
///
/// # Safety
/// `table` must be the address of a valid Cortex-M vector table (initial stack pointer, then a
/// Thumb reset vector) of a program linked to run from there.
#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn otarig_boot_jump(table: u32) -> ! {
    cortex_m::interrupt::disable();
    // SAFETY: plain register writes on the core's own peripherals; nothing else runs.
    unsafe {
        let nvic = &*cortex_m::peripheral::NVIC::PTR;
        nvic.icer[0].write(0xFFFF_FFFF);
        nvic.icpr[0].write(0xFFFF_FFFF);
        let syst = &*cortex_m::peripheral::SYST::PTR;
        syst.csr.write(0);
        let scb = &*cortex_m::peripheral::SCB::PTR;
        scb.vtor.write(table);
        cortex_m::asm::dsb();
        cortex_m::asm::isb();
        cortex_m::interrupt::enable();
        cortex_m::asm::bootload(table as *const u32)
    }
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
    uart::panic_line(format_args!("boot: FATAL panic: {}", info.message()));
    reset::reset_now(Reset::Panic)
}
