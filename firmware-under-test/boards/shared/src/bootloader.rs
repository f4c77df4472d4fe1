//! The bootloader's flow on a real board, from an opened flash with a trusted key to the jump:
//! the factory-reset drill when it is asked for at power-on, the image selection
//! ([`crate::boot`]), then entering the chosen image; a bricked board halts, a failing flash
//! resets it. The board does the I/O ([`Loader`]): its watchdog, how it is asked for a factory
//! reset, how an image is entered (in place on the Pico W, copied to RAM on the QEMU board).

use embedded_storage::nor_flash::NorFlash;
use ota_core::console::{Console, Fatal, Line};
use ota_core::device::{self, Device, Reset};

use crate::boot::{Jump, Stop};
use crate::console::{LineOut, Typed};

/// The flash failed while an image was being entered: the bootloader resets the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlashFailed;

/// What the bootloader's flow needs from the board.
pub trait Loader {
    type Flash: NorFlash;
    type Out: LineOut;

    /// (Re)starts the watchdog with the bootloader's period.
    fn start_watchdog(&mut self);
    /// Stops the watchdog (before bounded flash work longer than a period, or a halt).
    fn stop_watchdog(&mut self);
    /// Resets the board now, recording `why` for the next boot.
    fn reset_now(&mut self, why: Reset) -> !;
    /// At power-on: is the factory-reset drill asked for (a button held, a command line)?
    fn factory_reset_requested(&mut self) -> bool;
    /// Picks the image to run: [`crate::boot::select`] with the board's entry check.
    fn select(dev: &mut Device<'_, Self::Flash>, out: &mut dyn Console) -> Result<Jump, Stop>;
    /// Enters the image `jump` names (after giving the app a full watchdog period and flushing
    /// the console); returns only when the flash failed on the way.
    fn enter(&mut self, dev: &mut Device<'_, Self::Flash>, jump: Jump) -> FlashFailed;
}

/// The bootloader's first lines: `watchdog: expired` after a watchdog reset, then the banner.
pub fn announce<O: LineOut>(board: &str, device: &str, why: Reset) {
    let mut out = Typed::<O>::new();
    if why == Reset::Watchdog {
        out.line(&Line::WatchdogExpired);
    }
    out.line(&Line::BootBanner {
        board,
        device,
        reset: why,
    });
}

/// Runs the rest of the bootloader over `dev` for a boot caused by `why`; never returns.
pub fn run<L: Loader>(mut board: L, mut dev: Device<'_, L::Flash>, why: Reset) -> ! {
    let mut out = Typed::<L::Out>::new();
    if why == Reset::PowerOn && board.factory_reset_requested() {
        // The factory-reset drill: bounded flash work (erase and copy of one image) that can
        // outlast a watchdog period, so the watchdog waits for it.
        board.stop_watchdog();
        let reset = dev.factory_reset(&mut out);
        board.start_watchdog();
        if let Err(device::Error::Flash(_)) = reset {
            flash_error(&mut board);
        }
    }
    match L::select(&mut dev, &mut out) {
        Ok(jump) => {
            let FlashFailed = board.enter(&mut dev, jump);
            flash_error(&mut board)
        }
        Err(Stop::Bricked) => halt(&mut board),
        Err(Stop::Flash) => flash_error(&mut board),
    }
}

/// `boot: FATAL flash error`, then a reset (`reset=reboot`).
fn flash_error<L: Loader>(board: &mut L) -> ! {
    Typed::<L::Out>::new().line(&Line::BootFatal {
        why: Fatal::Other("flash error"),
    });
    board.reset_now(Reset::Reboot)
}

/// Bricked (or unprovisioned): stays in the bootloader until the power goes, with the watchdog
/// stopped so the board does not reset in a loop.
pub fn halt<L: Loader>(board: &mut L) -> ! {
    L::Out::flush();
    board.stop_watchdog();
    loop {
        cortex_m::asm::wfi();
    }
}

/// Enters the program whose Cortex-M vector table is at `table`: every interrupt the
/// bootloader's drivers may have armed masked and cleared, SysTick stopped, VTOR set, then the
/// stack pointer and reset vector from the table. The program starts like after a reset:
/// interrupts enabled at the core (none in the NVIC), its own stack and vector table.
///
/// # Safety
/// `table` must be the address of a valid Cortex-M vector table (initial stack pointer, then a
/// Thumb reset vector) of a program linked to run from there.
pub unsafe fn jump(table: u32) -> ! {
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
