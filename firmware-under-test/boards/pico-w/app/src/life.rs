//! The application's life: the boards' shared loop (`otarig_board::life`: ota-core's update
//! machine, the same code the simulated board, the fleet and the sweeps run, driven by
//! embassy) over the Pico W's hooks: the Wi-Fi stack, the ROM flash and the watchdog. Every
//! decision is the machine's.
//!
//! Differences forced by the hardware, and only those:
//! - the trial window and the hang drill are also enforced by the hardware watchdog
//!   ([`crate::watchdog`]); the bootloader prints `watchdog: expired` after such a reset;
//! - an image runs in place, so a release is published in two variants, one linked for each
//!   slot (the machine's `slot_variants` policy asks for the one of its inactive slot), and
//!   the staged image must be linked for the slot it was written to (`otarig_pico::check_entry`).

use embassy_executor::Spawner;
use embassy_net::Stack;
use ota_core::Reason;
use ota_core::device::{Boot, Device};
use ota_core::image::ImageHeader;
use otarig_board::feeding::Feeding;
pub use otarig_board::life::Buffers;
use otarig_board::life::{self, Board, Settings, Start};
use otarig_pico::BoardFlash;
use otarig_pico::console::Uart0;
use otarig_pico::reset::{Reset, reset_now};

use crate::net::{self, Radio};
use crate::{config, watchdog};

/// The board's timing, server and drill, from the build configuration. An image runs in
/// place, so a release comes in one variant per slot.
const SETTINGS: Settings = otarig_board::settings_from_config!(config, slot_variants: true);

struct Pico {
    spawner: Spawner,
    radio: Option<Radio>,
    /// Kept for the whole life of the app: it owns the radio's control channel.
    net: Option<net::Net>,
}

impl Board for Pico {
    type Flash = BoardFlash;
    type Out = Uart0;

    async fn network_up(&mut self) -> Stack<'static> {
        let Some(radio) = self.radio.take() else {
            panic!("the network was started twice");
        };
        self.net.insert(net::up(&self.spawner, radio).await).stack
    }

    fn feeding() -> &'static Feeding {
        &watchdog::FEEDING
    }

    fn hold_off() {
        watchdog::hold_off();
    }

    fn reset_now(&mut self, why: Reset) -> ! {
        reset_now(why)
    }

    /// Execute in place: a staged image must also be linked for the slot it now sits in.
    fn entry_check(flash: &mut BoardFlash, slot: u8, h: &ImageHeader) -> Result<(), Reason> {
        otarig_pico::check_entry(flash, slot, h).map(|_| ())
    }
}

/// Runs the app forever; returns only through a reset.
pub async fn run(
    spawner: Spawner,
    dev: Device<'static, BoardFlash>,
    boot: Boot,
    device: heapless::String<24>,
    boots: u32,
    radio: Radio,
    bufs: &'static mut Buffers,
) -> ! {
    let board = Pico {
        spawner,
        radio: Some(radio),
        net: None,
    };
    let start = Start {
        boot,
        device,
        boots,
    };
    life::run(board, dev, start, SETTINGS, bufs).await
}
