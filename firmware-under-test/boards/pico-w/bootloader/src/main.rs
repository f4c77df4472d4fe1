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
//! Steps 2 to 5 are the boards' shared bootloader flow (`otarig_board::bootloader`) over the
//! Pico's watchdog, button and execute-in-place jump.
//!
//! The watchdog runs from the first instruction on (8 s, covering the hashes and the signature
//! check) and is left running for the app, which takes it over with its own period.
#![no_std]
#![no_main]

use core::panic::PanicInfo;

use embassy_rp::flash::Flash;
use embassy_rp::gpio::{Input, Pull};
use embassy_rp::peripherals::PIN_15;
use embassy_rp::watchdog::Watchdog;
use embassy_time::Duration;
use ota_core::console::Console;
use ota_core::device::Device;
use otarig_board::boot::{Jump, Stop};
use otarig_board::bootloader::{self, FlashFailed, Loader};
use otarig_board::console::LineOut;
#[cfg(not(feature = "quirk-skip-signature"))]
use otarig_pico::boot::select;
use otarig_pico::console::{self, Uart0};
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

/// The Pico W under its bootloader: the watchdog and the recovery button (GP15).
struct Pico {
    wd: Watchdog,
    button: Option<embassy_rp::Peri<'static, PIN_15>>,
}

impl Loader for Pico {
    type Flash = BoardFlash;
    type Out = Uart0;

    fn start_watchdog(&mut self) {
        self.wd.start(BOOT_WATCHDOG);
    }

    fn stop_watchdog(&mut self) {
        self.wd.stop();
    }

    fn reset_now(&mut self, why: Reset) -> ! {
        reset::reset_now(why)
    }

    /// The recovery button (GP15, pin 20, to ground; internal pull-up) is held.
    fn factory_reset_requested(&mut self) -> bool {
        let Some(pin) = self.button.take() else {
            return false;
        };
        let button = Input::new(pin, Pull::Up);
        // Let the pull-up charge the line (a few microseconds) before sampling.
        cortex_m::asm::delay(10_000);
        button.is_low()
    }

    fn select(dev: &mut Device<'_, BoardFlash>, out: &mut dyn Console) -> Result<Jump, Stop> {
        select(dev, out)
    }

    fn enter(&mut self, _dev: &mut Device<'_, BoardFlash>, jump: Jump) -> FlashFailed {
        // A full watchdog period for the app to take it over.
        self.wd.feed(BOOT_WATCHDOG);
        Uart0::flush();
        // SAFETY: `select` checked (`check_entry`) that `vector_table` is this slot's vector
        // table, inside a signed and hash-checked image linked for this address, with a RAM
        // stack pointer and a Thumb reset vector inside the image.
        unsafe { bootloader::jump(jump.vector_table) }
    }
}

#[cortex_m_rt::entry]
fn main() -> ! {
    let p = embassy_rp::init(Default::default());
    let mut wd = Watchdog::new(p.WATCHDOG);
    let why = reset::take(&mut wd);
    wd.start(BOOT_WATCHDOG);
    console::init(p.UART0, p.PIN_0);
    let mut flash: BoardFlash = Flash::new_blocking(p.FLASH);
    let id = otarig_pico::device_id(&mut flash);
    bootloader::announce::<Uart0>(otarig_pico::BOARD, &id, why);
    let mut board = Pico {
        wd,
        button: Some(p.PIN_15),
    };
    let Some(key) = otarig_pico::read_trusted_key(&mut flash) else {
        say!(
            "boot: FATAL no trusted key in the key region at 0x{:08x} (provision the board)",
            otarig_pico::XIP_BASE + otarig_pico::LAYOUT.otp
        );
        bootloader::halt(&mut board);
    };
    let dev = Device::new(flash, otarig_pico::config(key));
    bootloader::run(board, dev, why)
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    Uart0::panic_line(format_args!("boot: FATAL panic: {}", info.message()));
    reset::reset_now(Reset::Panic)
}
