//! The otarig bootloader for the Raspberry Pi Pico W.
//!
//! Runs at every power-on and reset, from flash offset 0x100 (after boot2):
//! 1. reads why the board reset (watchdog registers, see `otarig_pico::reset`) and prints the
//!    first console line;
//! 2. at power-on with the recovery button (GP15) held, runs ota-core's factory-reset drill
//!    (the factory image back into slot A), as `sim-board --factory-reset` does;
//! 3. runs ota-core's `Device::boot` over the RP2040 flash, exactly as the simulated board does:
//!    trial boot counting, revert after `ota_core::device::DEFAULT_MAX_ATTEMPTS` or on a bad image, and a full check
//!    (header, board, ed25519 signature, body SHA-256, anti-rollback floor) of the image it is
//!    about to run;
//! 4. refuses an image whose vector table does not belong to its slot (linked for the other
//!    slot, or no reset vector at its entry point) and falls back to the previous image
//!    (`otarig_pico::boot`, tested on the host against ota-core's simulated flash);
//! 5. jumps to the app: VTOR and the stack pointer from the app's vector table, right after the
//!    256-byte header in the slot, then its reset vector.
//!
//! The watchdog runs from the first instruction on (8 s, covering the hashes and the signature
//! check) and is left running for the app, which takes it over with its own period.
#![no_std]
#![no_main]

use core::panic::PanicInfo;

use embassy_rp::flash::Flash;
use embassy_rp::watchdog::Watchdog;
use embassy_time::Duration;
use ota_core::console::{Console as _, Line};
use ota_core::device::Device;
#[cfg(not(feature = "quirk-skip-signature"))]
use otarig_pico::boot::select;
use otarig_pico::boot::{Jump, Stop};
use otarig_pico::console::{self, Console};
use otarig_pico::reset::{self, Reset};
use otarig_pico::{BoardFlash, say};

#[cfg(feature = "quirk-skip-signature")]
mod quirk;
#[cfg(feature = "quirk-skip-signature")]
use quirk::select;

/// The stage-2 loader the boot ROM copies to RAM and runs: sets up the QSPI flash (W25Q16JV on
/// the Pico W) for execute-in-place, then enters the vector table at 0x10000100.
#[unsafe(link_section = ".boot2")]
#[used]
static BOOT2: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

/// Watchdog period while the bootloader runs and until the app takes the watchdog over.
const BOOT_WATCHDOG: Duration = Duration::from_secs(8);

#[cortex_m_rt::entry]
fn main() -> ! {
    let p = embassy_rp::init(Default::default());
    let mut wd = Watchdog::new(p.WATCHDOG);
    let why = reset::take(&mut wd);
    wd.start(BOOT_WATCHDOG);
    console::init(p.UART0, p.PIN_0);
    if why == Reset::Watchdog {
        Console.line(&Line::WatchdogExpired);
    }
    let mut flash: BoardFlash = Flash::new_blocking(p.FLASH);
    let id = otarig_pico::device_id(&mut flash);
    Console.line(&Line::BootBanner {
        board: otarig_pico::BOARD,
        device: &id,
        reset: why,
    });
    let Some(key) = otarig_pico::read_trusted_key(&mut flash) else {
        say!(
            "boot: FATAL no trusted key in the key region at 0x{:08x} (provision the board)",
            otarig_pico::XIP_BASE + otarig_pico::LAYOUT.otp
        );
        halt(wd);
    };
    let mut dev = Device::new(flash, otarig_pico::config(key));
    if why == Reset::PowerOn && recovery_button_held(p.PIN_15) {
        // The factory-reset drill: bounded flash work (erase and copy of one image) that can
        // outlast a watchdog period, so the watchdog waits for it.
        wd.stop();
        let reset = dev.factory_reset(&mut Console);
        wd.start(BOOT_WATCHDOG);
        if let Err(ota_core::device::Error::Flash(_)) = reset {
            say!("boot: FATAL flash error");
            reset::reset_now(Reset::Reboot);
        }
    }
    match select(&mut dev, &mut Console) {
        Ok(Jump { vector_table, .. }) => {
            // A full watchdog period for the app to take it over.
            wd.feed(BOOT_WATCHDOG);
            console::flush();
            // SAFETY: `select` checked (`check_entry`) that `vector_table` is this slot's
            // vector table, inside a signed and hash-checked image linked for this address,
            // with a RAM stack pointer and a Thumb reset vector inside the image.
            unsafe { jump(vector_table) }
        }
        Err(Stop::Bricked) => halt(wd),
        Err(Stop::Flash) => {
            say!("boot: FATAL flash error");
            reset::reset_now(Reset::Reboot);
        }
    }
}

/// The recovery button (GP15, pin 20, to ground; internal pull-up) is held.
fn recovery_button_held(pin: embassy_rp::Peri<'static, embassy_rp::peripherals::PIN_15>) -> bool {
    let button = embassy_rp::gpio::Input::new(pin, embassy_rp::gpio::Pull::Up);
    // Let the pull-up charge the line (a few microseconds) before sampling.
    cortex_m::asm::delay(10_000);
    button.is_low()
}

/// Bricked: stays in the bootloader until the power goes (the watchdog is stopped so the
/// board does not reset in a loop).
fn halt(mut wd: Watchdog) -> ! {
    console::flush();
    wd.stop();
    loop {
        cortex_m::asm::wfi();
    }
}

/// Enters the app whose vector table is at `table`.
///
/// # Safety
/// `table` must be the address of a valid Cortex-M vector table (initial stack pointer, then a
/// Thumb reset vector) of a program linked to run from there.
unsafe fn jump(table: u32) -> ! {
    cortex_m::interrupt::disable();
    // SAFETY: plain register writes on the core's own peripherals; nothing else runs.
    unsafe {
        let nvic = &*cortex_m::peripheral::NVIC::PTR;
        // Mask and clear every interrupt the bootloader's drivers may have armed (timer, DMA):
        // the app sets up its own.
        nvic.icer[0].write(0xFFFF_FFFF);
        nvic.icpr[0].write(0xFFFF_FFFF);
        let syst = &*cortex_m::peripheral::SYST::PTR;
        syst.csr.write(0);
        let scb = &*cortex_m::peripheral::SCB::PTR;
        scb.vtor.write(table);
        // The app starts like after a reset: interrupts enabled at the core (none is enabled in
        // the NVIC), its own stack and vector table.
        cortex_m::interrupt::enable();
        cortex_m::asm::bootload(table as *const u32)
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    console::panic_line(format_args!("boot: FATAL panic: {}", info.message()));
    reset::reset_now(Reset::Panic)
}
