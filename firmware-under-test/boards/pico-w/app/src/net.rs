//! Wi-Fi: the CYW43439 over PIO SPI (cyw43 + cyw43-pio), embassy-net with DHCP.
//!
//! The SSID and password are compiled in from `OTARIG_WIFI_SSID` / `OTARIG_WIFI_PASSWORD`
//! (empty by default, so CI builds without secrets; such a build keeps trying and says why).

use cyw43::{JoinError, JoinOptions};
use cyw43_pio::{DEFAULT_CLOCK_DIVIDER, PioSpi};
use embassy_executor::Spawner;
use embassy_net::{Stack, StackResources};
use embassy_rp::Peri;
use embassy_rp::clocks::RoscRng;
use embassy_rp::gpio::{Level, Output};
use embassy_rp::peripherals::{DMA_CH0, PIN_23, PIN_24, PIN_25, PIN_29, PIO0};
use embassy_rp::pio::Pio;
use embassy_rp::{bind_interrupts, dma, pio};
use embassy_time::{Duration, Timer, with_timeout};
use static_cell::StaticCell;

use otarig_board::net;
use otarig_pico::console::Uart0;
use otarig_pico::say;

use crate::watchdog;

const WIFI_SSID: &str = match option_env!("OTARIG_WIFI_SSID") {
    Some(s) => s,
    None => "",
};
const WIFI_PASSWORD: &str = match option_env!("OTARIG_WIFI_PASSWORD") {
    Some(s) => s,
    None => "",
};

/// One join attempt (scan, authenticate, associate) may take this long.
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Link up and a DHCP lease after a join.
const DHCP_TIMEOUT: Duration = Duration::from_secs(20);
const RETRY: Duration = Duration::from_secs(1);

bind_interrupts!(struct Irqs {
    PIO0_IRQ_0 => pio::InterruptHandler<PIO0>;
    DMA_IRQ_0 => dma::InterruptHandler<DMA_CH0>;
});

/// The Pico W's wiring to its radio: power on GP23, chip select on GP25, data on GP24, clock on
/// GP29, driven by PIO0 with one DMA channel.
pub struct Radio {
    pub pwr: Peri<'static, PIN_23>,
    pub cs: Peri<'static, PIN_25>,
    pub dio: Peri<'static, PIN_24>,
    pub clk: Peri<'static, PIN_29>,
    pub pio: Peri<'static, PIO0>,
    pub dma: Peri<'static, DMA_CH0>,
}

type Spi = cyw43::SpiBus<Output<'static>, PioSpi<'static, PIO0, 0>>;

#[embassy_executor::task]
async fn radio_task(runner: cyw43::Runner<'static, Spi>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, cyw43::NetDriver<'static>>) -> ! {
    runner.run().await
}

/// The radio's firmware blobs, from the `cyw43-firmware` crate, copied into 4-byte aligned
/// statics at compile time as the driver requires.
static FIRMWARE: &cyw43::Aligned<cyw43::A4, [u8]> = &cyw43::Aligned(*cyw43_firmware::CYW43_43439A0);
static CLM: &[u8] = cyw43_firmware::CYW43_43439A0_CLM;

/// The network is up: the stack has an address.
pub struct Net {
    pub stack: Stack<'static>,
    /// The radio's control channel (join, leave, power management).
    _control: cyw43::Control<'static>,
}

/// Powers the radio up, joins the configured network and waits for a DHCP lease. Retries
/// until it succeeds (a trial image that cannot get there is reset by its trial window).
pub async fn up(spawner: &Spawner, radio: Radio) -> Net {
    let pwr = Output::new(radio.pwr, Level::Low);
    let cs = Output::new(radio.cs, Level::High);
    let mut pio = Pio::new(radio.pio, Irqs);
    let spi = PioSpi::new(
        &mut pio.common,
        pio.sm0,
        DEFAULT_CLOCK_DIVIDER,
        pio.irq0,
        cs,
        radio.dio,
        radio.clk,
        dma::Channel::new(radio.dma, Irqs),
    );
    static STATE: StaticCell<cyw43::State> = StaticCell::new();
    let state = STATE.init(cyw43::State::new());
    watchdog::FEEDING.pet();
    let (device, mut control, runner) =
        cyw43::new(state, pwr, spi, FIRMWARE, crate::nvram::NVRAM).await;
    match radio_task(runner) {
        Ok(t) => spawner.spawn(t),
        Err(_) => panic!("radio task spawned twice"),
    }
    control.init(CLM).await;
    // Full power: predictable latency matters more than current draw on a test bench.
    control
        .set_power_management(cyw43::PowerManagementMode::None)
        .await;

    static RESOURCES: StaticCell<StackResources<3>> = StaticCell::new();
    let seed = RoscRng.next_u64();
    let (stack, runner) = net::dhcp_stack(device, RESOURCES.init(StackResources::new()), seed);
    match net_task(runner) {
        Ok(t) => spawner.spawn(t),
        Err(_) => panic!("network task spawned twice"),
    }

    if WIFI_SSID.is_empty() {
        say!(
            "net: no Wi-Fi network compiled in (build with OTARIG_WIFI_SSID and OTARIG_WIFI_PASSWORD)"
        );
    }
    loop {
        watchdog::FEEDING.pet();
        let options = if WIFI_PASSWORD.is_empty() {
            JoinOptions::new_open()
        } else {
            JoinOptions::new(WIFI_PASSWORD.as_bytes())
        };
        match with_timeout(JOIN_TIMEOUT, control.join(WIFI_SSID, options)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let why = match e {
                    JoinError::NetworkNotFound => "network-not-found",
                    JoinError::AuthenticationFailure => "authentication",
                    JoinError::JoinFailure(_) => "join-failure",
                };
                say!(
                    "net: join ssid={WIFI_SSID} failed reason={why} retry in={}ms",
                    RETRY.as_millis()
                );
                Timer::after(RETRY).await;
                continue;
            }
            Err(_) => {
                say!(
                    "net: join ssid={WIFI_SSID} failed reason=timeout retry in={}ms",
                    RETRY.as_millis()
                );
                continue;
            }
        }
        watchdog::FEEDING.pet();
        if net::lease::<Uart0>(stack, DHCP_TIMEOUT).await {
            return Net {
                stack,
                _control: control,
            };
        }
        say!("net: no DHCP lease reason=timeout, joining again");
        control.leave().await;
    }
}
