//! The otarig application for the QEMU MPS2 AN385 board.
//!
//! Entered by the bootloader, which copied it from its slot to 0x0010_0000 (where it is
//! linked, whichever slot it came from). It reads what the bootloader decided back from flash
//! (the state record, its own header), then lives the simulated board's app life through the
//! boards' shared loop (`otarig_board::life`): drills, DHCP over the LAN9118, check-ins,
//! confirm, updates, rollback. Console lines: `firmware-under-test/CONSOLE.md`, on UART0.
#![no_std]
#![no_main]

mod lan9118;
mod net;
mod time;
mod wd;

/// Build-time settings (see build.rs).
mod config {
    include!(concat!(env!("OUT_DIR"), "/config.rs"));
}

use core::panic::PanicInfo;

use cortex_m_rt::exception;
use embassy_executor::Spawner;
use embassy_net::Stack;
use ota_core::device::{Boot, Device};
use ota_core::image::ImageHeader;
use ota_core::{Reason, state};
use otarig_board::crash;
use otarig_board::feeding::Feeding;
use otarig_board::life::{self, Board, Buffers, Settings, Start};
use otarig_qemu::reset::{self, Reset};
use otarig_qemu::uart::{self, Uart0};
use otarig_qemu::{BoardFlash, Cmdline, watchdog};
use static_cell::ConstStaticCell;

/// The board's timing and server, from the build configuration. Images run from RAM: one
/// build runs from either slot.
const SETTINGS: Settings = otarig_board::settings_from_config!(config, slot_variants: false);

/// The LAN9118's free-running counter (25 MHz of QEMU's clock): a seed that differs per boot.
pub fn free_run() -> u32 {
    // SAFETY: reading FREE_RUN has no side effect.
    unsafe { core::ptr::read_volatile(0x4020_009C as *const u32) }
}

struct Qemu {
    spawner: Spawner,
}

impl Board for Qemu {
    type Flash = BoardFlash;
    type Out = Uart0;

    async fn network_up(&mut self) -> Stack<'static> {
        net::up(&self.spawner).await
    }

    fn feeding() -> &'static Feeding {
        &wd::FEEDING
    }

    fn hold_off() {
        wd::hold_off();
    }

    fn reset_now(&mut self, why: Reset) -> ! {
        reset::reset_now(why)
    }

    fn entry_check(flash: &mut BoardFlash, slot: u8, h: &ImageHeader) -> Result<(), Reason> {
        otarig_qemu::check_entry(flash, slot, h).map(|_| ())
    }
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let Some(cp) = cortex_m::Peripherals::take() else {
        panic!("core peripherals taken twice");
    };
    time::init(cp.SYST);
    uart::init();
    // The bootloader left the watchdog running: take it over first.
    wd::start(&spawner);
    let cmd = Cmdline::read();
    let Some(mut flash) = otarig_qemu::open_flash(&cmd) else {
        panic!("no flash file {}", cmd.flash_file());
    };
    let Some(key) = otarig_qemu::read_trusted_key(&mut flash) else {
        panic!("no trusted key in the key region");
    };
    let mut dev = Device::new(flash, otarig_qemu::config(key));
    // What the bootloader decided, read back from flash: it verified the image in the active
    // slot, wrote the state record naming it and copied it here.
    let layout = dev.cfg.layout;
    let state = match state::load(&mut dev.flash, &layout) {
        Ok(Some(st)) => st,
        _ => panic!("no state record"),
    };
    let slot = state.active;
    let Ok(header) = dev.header(slot) else {
        panic!("no valid image header in the active slot");
    };
    crash::set_version(header.version);
    let boot = Boot {
        slot,
        header,
        state,
    };
    // Zero-initialised at link time (.bss): the buffers never pass through the stack.
    static BUFFERS: ConstStaticCell<Buffers> = ConstStaticCell::new(Buffers::new());
    let start = Start {
        boot,
        device: otarig_qemu::device_id(),
        boots: reset::boots(),
    };
    life::run(Qemu { spawner }, dev, start, SETTINGS, BUFFERS.take()).await
}

/// Device interrupts (no PAC: cortex-m-rt routes them all here): only the LAN9118's is used.
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == lan9118::IRQ as i16 {
        lan9118::on_interrupt();
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
    crash::report::<Uart0>(info);
    reset::reset_now(Reset::Panic)
}
