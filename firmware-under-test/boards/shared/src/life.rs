//! An app's life on a real board: ota-core's update machine ([`ota_core::updater`], the same
//! code the simulated board, the fleet and the sweeps run) driven by embassy: a network stack,
//! the HTTP client ([`crate::http`]), the clock, the board's flash and its watchdog. Every
//! decision is the machine's; this module only does the I/O it asks for, through the board's
//! [`Board`] hooks. The watchdog is fed by the shared policy ([`crate::feeding`]); the crash
//! drill and the panic line are [`crate::crash`]'s.
//!
//! Used by the Pico W (`pico-w/app/src/life.rs`: Wi-Fi, execute-in-place entry check) and the
//! QEMU MPS2 board (`qemu-mps2/app/src/main.rs`: LAN9118, RAM-copied images).

use embassy_net::Stack;
use embassy_time::{Duration, Instant, Timer};
use embedded_storage::nor_flash::NorFlash;
use ota_core::Reason;
use ota_core::device::{Boot, Device, Reset};
use ota_core::image::ImageHeader;
use ota_core::payload::Drill;
use ota_core::state::Mode;
pub use ota_core::updater::Policy;
use ota_core::updater::{Action, Identity, Input, Io, SliceBuffers, Updater};

use crate::console::{LineOut, Typed};
use crate::crash;
use crate::feeding::Feeding;
use crate::http::{self, Client, Server};

/// What the loop needs from the board.
#[allow(async_fn_in_trait)]
pub trait Board {
    type Flash: NorFlash;
    /// The console the machine prints on.
    type Out: LineOut;

    /// Brings the network up (retrying until it is); the stack has an address.
    async fn network_up(&mut self) -> Stack<'static>;
    /// The app's watchdog feeding policy ([`crate::feeding`]).
    fn feeding() -> &'static Feeding;
    /// Long synchronous work ahead: the longest watchdog period once ([`Feeding::hold_off`]).
    fn hold_off();
    /// Flushes the console and resets the board for `why`.
    fn reset_now(&mut self, why: Reset) -> !;
    /// The board's check on a staged image (can it run where it will run?).
    fn entry_check(flash: &mut Self::Flash, slot: u8, h: &ImageHeader) -> Result<(), Reason>;
}

/// The hang drill: stop feeding the watchdog and never return (a real hang: the executor never
/// runs again, the watchdog resets the board).
fn hang<B: Board>() -> ! {
    B::Out::flush();
    B::feeding().stop();
    loop {
        cortex_m::asm::nop();
    }
}

/// Buffers too large for a task's future: a whole manifest, one chunk, the HTTP buffers.
pub struct Buffers {
    pub manifest: [u8; ota_core::manifest::MAX_LEN],
    pub chunk: [u8; ota_core::manifest::MAX_CHUNK as usize],
    pub http: http::Buffers,
}

impl Buffers {
    pub const fn new() -> Self {
        Self {
            manifest: [0; ota_core::manifest::MAX_LEN],
            chunk: [0; ota_core::manifest::MAX_CHUNK as usize],
            http: http::Buffers::new(),
        }
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Self::new()
    }
}

/// The build's settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub policy: Policy,
    pub server: Server,
    /// The failure drill compiled in, by ota-core's names.
    pub drill: &'static str,
}

/// The build's [`Settings`] from the app's `config` module (the constants `otarig-board-build`
/// writes to `config.rs`): `settings_from_config!(config, slot_variants: true)`.
#[macro_export]
macro_rules! settings_from_config {
    ($config:ident, slot_variants: $slot_variants:expr) => {
        $crate::life::Settings {
            policy: $crate::life::Policy {
                checkin_interval_ms: $config::CHECKIN_INTERVAL_MS,
                trial_window_ms: $config::TRIAL_WINDOW_MS,
                watchdog_ms: $config::WATCHDOG_MS,
                net_timeout_ms: $config::NET_TIMEOUT_MS,
                hw_rev: $config::HW_REV,
                slot_variants: $slot_variants,
                jitter_seed: None,
            },
            server: $crate::http::Server {
                ip: $config::SERVER_IP,
                port: $config::SERVER_PORT,
                host: $config::SERVER,
            },
            drill: $config::DRILL,
        }
    };
}

fn now_ms() -> u64 {
    Instant::now().as_millis()
}

/// Who is running and what the bootloader decided.
pub struct Start {
    pub boot: Boot,
    pub device: heapless::String<24>,
    pub boots: u32,
}

/// Runs the app forever; returns only through a reset.
pub async fn run<B: Board>(
    mut board: B,
    mut dev: Device<'static, B::Flash>,
    start: Start,
    settings: Settings,
    bufs: &'static mut Buffers,
) -> ! {
    let Start {
        boot,
        device,
        boots,
    } = start;
    let v = boot.header.version;
    let feeding = B::feeding();
    if boot.state.mode == Mode::Trial {
        feeding.arm_trial(settings.policy.trial_window_ms as u32);
    }
    let Buffers {
        manifest,
        chunk,
        http: http_bufs,
    } = bufs;
    let mut ram = SliceBuffers { manifest, chunk };
    let mut out = Typed::<B::Out>::new();
    let mut io = Io {
        dev: &mut dev,
        bufs: &mut ram,
        out: &mut out,
        board_check: B::entry_check,
    };
    let who = Identity {
        device: &device,
        boots,
    };
    let Some(drill) = Drill::from_name(settings.drill) else {
        panic!("unknown drill {}", settings.drill)
    };
    let Ok(mut up) = Updater::start(&mut io, boot, Ok(drill), &who, settings.policy, now_ms())
    else {
        board.reset_now(Reset::Panic)
    };
    let mut client: Option<Client> = None;
    let mut http_bufs = Some(http_bufs);
    loop {
        feeding.pet();
        // Flash work (re-hashing a slot on resume, erasing a large chunk) is synchronous.
        B::hold_off();
        let fed = match up.poll_action() {
            Some(Action::Reset(r)) => board.reset_now(r),
            Some(Action::CrashDrill) => crash::drill(),
            Some(Action::Hang) => hang::<B>(),
            Some(Action::StartNetwork) => {
                if let Some(bufs) = http_bufs.take() {
                    let stack = board.network_up().await;
                    client = Some(Client::new(
                        stack,
                        bufs,
                        &device,
                        v,
                        settings.server,
                        settings.policy.net_timeout_ms,
                        || B::feeding().pet(),
                    ));
                }
                up.handle(&mut io, Input::NetworkUp, now_ms())
            }
            Some(Action::SendCheckin(req)) => {
                let mut body = [0u8; ota_core::checkin::MAX_REQUEST_LEN];
                match (req.encode(&mut body), client.as_mut()) {
                    (Ok(n), Some(c)) => {
                        exchange::<B>(
                            &mut up,
                            &mut io,
                            c,
                            "POST",
                            ota_core::checkin::CHECKIN_PATH,
                            None,
                            Some(&body[..n]),
                        )
                        .await
                    }
                    _ => up.handle(&mut io, Input::NetError(Reason::Connect), now_ms()),
                }
            }
            Some(Action::Fetch { url, range }) => {
                let mut path: heapless::String<{ ota_core::updater::MAX_FETCH_URL }> =
                    heapless::String::new();
                let _ = path.push_str(url);
                match client.as_mut() {
                    Some(c) => exchange::<B>(&mut up, &mut io, c, "GET", &path, range, None).await,
                    None => up.handle(&mut io, Input::NetError(Reason::Connect), now_ms()),
                }
            }
            Some(Action::Wait { .. }) => Ok(()),
            None => {
                // Sleep until the machine's next deadline, petting at least every second.
                let wait = up
                    .next_deadline()
                    .map_or(1000, |t| t.saturating_sub(now_ms()).min(1000));
                Timer::after(Duration::from_millis(wait)).await;
                up.handle(&mut io, Input::Timeout, now_ms())
            }
        };
        if fed.is_err() {
            board.reset_now(Reset::Panic);
        }
        if up.boot().state.mode == Mode::Confirmed {
            feeding.confirmed();
        }
    }
}

/// One HTTP exchange: the request, then the response head and body handed to the machine as
/// they arrive, until it wants no more.
#[allow(clippy::too_many_arguments)]
async fn exchange<B: Board>(
    up: &mut Updater,
    io: &mut Io<'_, '_, B::Flash>,
    client: &mut Client,
    method: &str,
    path: &str,
    range: Option<(u32, u32)>,
    body: Option<&[u8]>,
) -> Result<(), <B::Flash as embedded_storage::nor_flash::ErrorType>::Error> {
    let mut resp = match client.request(method, path, range, body).await {
        Ok(r) => r,
        Err(r) => return up.handle(io, Input::NetError(r), now_ms()),
    };
    up.handle(io, Input::ResponseHead(resp.head), now_ms())?;
    let declared = resp.head.content_length;
    let mut received = 0u64;
    let mut buf = [0u8; 1024];
    let mut complete = false;
    let fed = loop {
        if !up.wants_body() {
            complete = declared.is_some_and(|n| received >= n);
            break Ok(());
        }
        if declared.is_some_and(|n| received >= n) {
            complete = true;
            break up.handle(io, Input::BodyEnd, now_ms());
        }
        match resp.read_some(&mut buf).await {
            Ok(0) => break up.handle(io, Input::BodyEnd, now_ms()),
            Ok(n) => {
                received += n as u64;
                B::hold_off();
                if let Err(e) = up.handle(io, Input::BodyBytes(&buf[..n]), now_ms()) {
                    break Err(e);
                }
            }
            Err(r) => break up.handle(io, Input::NetError(r), now_ms()),
        }
    };
    resp.end(complete).await;
    fed
}
