//! The application's life: ota-core's update machine ([`ota_core::updater`], the same code the
//! simulated board, the fleet and the sweeps run) driven by embassy: the Wi-Fi stack, the
//! HTTP client, the clock, the ROM flash and the watchdog. Every decision is the machine's;
//! this file only does the I/O it asks for.
//!
//! Differences forced by the hardware, and only those:
//! - the trial window and the hang drill are also enforced by the hardware watchdog
//!   ([`crate::watchdog`]); the bootloader prints `watchdog: expired` after such a reset;
//! - an image runs in place, so a release is published in two variants, one linked for each
//!   slot (the machine's `slot_variants` policy asks for the one of its inactive slot), and
//!   the staged image must be linked for the slot it was written to (`otarig_pico::check_entry`).

use embassy_executor::Spawner;
use embassy_time::{Duration, Instant, Timer};
use ota_core::Reason;
use ota_core::device::{Boot, Device};
use ota_core::payload::Drill;
use ota_core::state::Mode;
use ota_core::updater::{Action, Identity, Input, Io, Policy, SliceBuffers, Updater};
use otarig_board::http::{self, Client, Server};
use otarig_pico::BoardFlash;
use otarig_pico::reset::{Reset, reset_now};

use crate::net::{self, Radio};
use crate::{config, watchdog};

/// Buffers too large for a task's future: a whole manifest and one chunk.
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

/// The failure drill compiled in (`OTARIG_DRILL`), by ota-core's names.
fn drill() -> Drill {
    match Drill::from_name(config::DRILL) {
        Some(d) => d,
        None => panic!("unknown drill OTARIG_DRILL={}", config::DRILL),
    }
}

/// The board's timing, from the build configuration.
const POLICY: Policy = Policy {
    checkin_interval_ms: config::CHECKIN_INTERVAL_MS,
    trial_window_ms: config::TRIAL_WINDOW_MS,
    watchdog_ms: config::WATCHDOG_MS,
    net_timeout_ms: config::NET_TIMEOUT_MS,
    hw_rev: config::HW_REV,
    slot_variants: true,
    jitter_seed: None,
};

/// The update server, from the build configuration.
const SERVER: Server = Server {
    ip: config::SERVER_IP,
    port: config::SERVER_PORT,
    host: config::SERVER,
};

/// Execute in place: a staged image must also be linked for the slot it now sits in.
fn entry_check(
    flash: &mut BoardFlash,
    slot: u8,
    h: &ota_core::image::ImageHeader,
) -> Result<(), Reason> {
    otarig_pico::check_entry(flash, slot, h).map(|_| ())
}

fn now_ms() -> u64 {
    Instant::now().as_millis()
}

/// Runs the app forever; returns only through a reset.
pub async fn run(
    spawner: Spawner,
    mut dev: Device<'static, BoardFlash>,
    boot: Boot,
    device: heapless::String<24>,
    boots: u32,
    radio: Radio,
    bufs: &'static mut Buffers,
) -> ! {
    let v = boot.header.version;
    if boot.state.mode == Mode::Trial {
        watchdog::arm_trial(config::TRIAL_WINDOW_MS as u32);
    }
    let Buffers {
        manifest,
        chunk,
        http: http_bufs,
    } = bufs;
    let mut ram = SliceBuffers { manifest, chunk };
    let mut out = otarig_pico::console::Console;
    let mut io = Io {
        dev: &mut dev,
        bufs: &mut ram,
        out: &mut out,
        board_check: entry_check,
    };
    let who = Identity {
        device: &device,
        boots,
    };
    let Ok(mut up) = Updater::start(&mut io, boot, Ok(drill()), &who, POLICY, now_ms()) else {
        reset_now(Reset::Panic)
    };
    let mut radio = Some(radio);
    // Kept for the whole life of the app: it owns the radio's control channel.
    let mut net = None;
    let mut client: Option<Client> = None;
    let mut http_bufs = Some(http_bufs);
    loop {
        watchdog::pet();
        // Flash work (re-hashing a slot on resume, erasing a large chunk) can take seconds
        // with interrupts masked.
        watchdog::hold_off();
        let fed = match up.poll_action() {
            Some(Action::Reset(r)) => reset_now(r),
            Some(Action::CrashDrill) => crate::crash_drill(),
            Some(Action::Hang) => {
                otarig_pico::console::flush();
                watchdog::stop();
                // A real hang: the executor never runs again, the watchdog resets the chip.
                loop {
                    cortex_m::asm::nop();
                }
            }
            Some(Action::StartNetwork) => {
                if let (Some(radio), Some(bufs)) = (radio.take(), http_bufs.take()) {
                    let up_net = net.insert(net::up(&spawner, radio).await);
                    client = Some(Client::new(
                        up_net.stack,
                        bufs,
                        &device,
                        v,
                        SERVER,
                        config::NET_TIMEOUT_MS,
                        watchdog::pet,
                    ));
                }
                up.handle(&mut io, Input::NetworkUp, now_ms())
            }
            Some(Action::SendCheckin(req)) => {
                let mut body = [0u8; ota_core::checkin::MAX_REQUEST_LEN];
                match (req.encode(&mut body), client.as_mut()) {
                    (Ok(n), Some(c)) => {
                        exchange(
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
                    Some(c) => exchange(&mut up, &mut io, c, "GET", &path, range, None).await,
                    None => up.handle(&mut io, Input::NetError(Reason::Connect), now_ms()),
                }
            }
            Some(Action::Wait { .. }) => Ok(()),
            None => {
                // Sleep until the machine's next deadline, petting the watchdog at least
                // every second.
                let wait = up
                    .next_deadline()
                    .map_or(1000, |t| t.saturating_sub(now_ms()).min(1000));
                Timer::after(Duration::from_millis(wait)).await;
                up.handle(&mut io, Input::Timeout, now_ms())
            }
        };
        if fed.is_err() {
            reset_now(Reset::Panic);
        }
        if up.boot().state.mode == Mode::Confirmed {
            watchdog::confirmed();
        }
    }
}

/// One HTTP exchange: the request, then the response head and body handed to the machine as
/// they arrive, until it wants no more.
async fn exchange(
    up: &mut Updater,
    io: &mut Io<'_, '_, BoardFlash>,
    client: &mut Client,
    method: &str,
    path: &str,
    range: Option<(u32, u32)>,
    body: Option<&[u8]>,
) -> Result<(), embassy_rp::flash::Error> {
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
                watchdog::hold_off();
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
