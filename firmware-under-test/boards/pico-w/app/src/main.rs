//! The otarig application for the Raspberry Pi Pico W.
//!
//! Entered by the bootloader (never by the boot ROM): linked to run in place from slot A or B
//! (`OTARIG_SLOT` at build time), right after its 256-byte image header. It reads what the
//! bootloader decided back from flash (its own header, the state record), then lives the
//! simulated board's app life ([`life`]): drills, Wi-Fi, check-ins, confirm, updates, rollback.
//! Console lines: `firmware-under-test/CONSOLE.md`, on UART0 (GP0) at 115200.
#![no_std]
#![no_main]

mod life;
mod net;
mod nvram;
mod watchdog;

/// Build-time settings (see build.rs).
mod config {
    include!(concat!(env!("OUT_DIR"), "/config.rs"));
}

use core::panic::PanicInfo;

use embassy_executor::Spawner;
use embassy_rp::flash::Flash;
use embassy_rp::watchdog::Watchdog;
use ota_core::device::{Boot, Device};
use ota_core::layout::slot_name;
use ota_core::state;
use otarig_board::crash;
use otarig_pico::console::Uart0;
use otarig_pico::reset::{self, Reset};
use otarig_pico::{BoardFlash, console};
use static_cell::ConstStaticCell;

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = embassy_rp::init(Default::default());
    // The bootloader left the watchdog running: take it over first.
    let mut wd = Watchdog::new(p.WATCHDOG);
    let boots = reset::boots(&mut wd);
    watchdog::start(&spawner, wd);
    console::init(p.UART0, p.PIN_0);

    let mut flash: BoardFlash = Flash::new_blocking(p.FLASH);
    let device = otarig_pico::device_id(&mut flash);
    let Some(key) = otarig_pico::read_trusted_key(&mut flash) else {
        panic!("no trusted key in the key region");
    };
    let mut dev = Device::new(flash, otarig_pico::config(key));
    let slot = config::SLOT;
    // What the bootloader decided, read back from flash: it verified this image and wrote the
    // state record naming it just before jumping here.
    let Ok(header) = dev.header(slot) else {
        panic!("no valid image header in slot {}", slot_name(slot));
    };
    crash::set_version(header.version);
    let layout = dev.cfg.layout;
    let state = match state::load(&mut dev.flash, &layout) {
        Ok(Some(st)) if st.active == slot => st,
        _ => panic!(
            "the state record does not name slot {} (linked for it)",
            slot_name(slot)
        ),
    };
    let boot = Boot {
        slot,
        header,
        state,
    };
    // Zero-initialised at link time (.bss): 100 KiB never pass through the stack.
    static BUFFERS: ConstStaticCell<life::Buffers> = ConstStaticCell::new(life::Buffers::new());
    let bufs = BUFFERS.take();
    let radio = net::Radio {
        pwr: p.PIN_23,
        cs: p.PIN_25,
        dio: p.PIN_24,
        clk: p.PIN_29,
        pio: p.PIO0,
        dma: p.DMA_CH0,
    };
    life::run(spawner, dev, boot, device, boots, radio, bufs).await
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    crash::report::<Uart0>(info);
    reset::reset_now(Reset::Panic)
}
