//! The board's life: bootloader stage, then the application, forever (until the power goes).
//! The application is ota-core's update machine ([`ota_core::updater`]); this file brings the
//! sockets, the clock, the file-backed flash and the console.

use std::io::Write;
use std::time::{Duration, Instant};

use ota_core::checkin::CHECKIN_PATH;
use ota_core::console::{Console, Line};
use ota_core::device::{Config, Device, Error, Reset};
use ota_core::layout::SIM;
use ota_core::updater::{Action, Identity, Input, Io, Policy, Updater, VecBuffers, no_board_check};

use crate::Args;
use crate::flash::{FileFlash, provision, read_trusted_key};
use crate::http::{self, Server};

/// Console on stdout, one flushed line per event.
struct Stdout;

impl Console for Stdout {
    fn line(&mut self, line: &Line<'_>) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

pub fn run(args: &Args) -> Result<(), String> {
    if !args.flash.exists() {
        let (Some(factory), Some(key)) = (&args.factory, &args.trust_key) else {
            return Err(format!(
                "{} does not exist: give --factory IMAGE and --trust-key release.pub to provision it",
                args.flash.display()
            ));
        };
        let image = std::fs::read(factory).map_err(|e| format!("{}: {e}", factory.display()))?;
        let key = ota_core::tools::read_public_key(key).map_err(|e| e.to_string())?;
        provision(&args.flash, &image, &key)?;
    }
    let cut = args.cut_at_flash_op.map(|at| ota_core::nor::Cut {
        at,
        torn: args.torn,
    });
    let mut flash = FileFlash::open(&args.flash, cut, args.flash_log.as_deref())
        .map_err(|e| format!("{}: {e}", args.flash.display()))?;
    flash.set_slot_cut(args.cut_at_slot_offset.map(|offset| crate::flash::SlotCut {
        slots: SIM.slots.map(|base| (base, SIM.slot_size)),
        offset,
        torn: args.torn,
    }));
    let public_key = read_trusted_key(&mut flash)
        .ok_or_else(|| format!("{}: no trusted key in the OTP region", args.flash.display()))?;
    let server = Server::parse(&args.server, &args.device, args.net_timeout)?;
    let mut dev = Device::new(
        flash,
        Config {
            layout: SIM,
            public_key,
            board: "sim",
            max_attempts: args.max_attempts,
            quirks: ota_core::device::Quirks {
                skip_body_hash: args.quirks.iter().any(|q| q == "skip-body-hash"),
                state_before_data: args.quirks.iter().any(|q| q == "state-before-data"),
                early_confirm: args.quirks.iter().any(|q| q == "early-confirm"),
                skip_state_crc: args.quirks.iter().any(|q| q == "skip-state-crc"),
                revert_in_ram: args.quirks.iter().any(|q| q == "revert-in-ram"),
            },
        },
    );
    let policy = Policy {
        checkin_interval_ms: millis(args.checkin_interval),
        trial_window_ms: millis(args.trial_window),
        watchdog_ms: millis(args.watchdog),
        net_timeout_ms: millis(args.net_timeout),
        hw_rev: args.hw_rev,
        slot_variants: false,
        jitter_seed: None,
    };
    let mut reset = Reset::PowerOn;
    let mut boots: u32 = 0;
    loop {
        boots += 1;
        Stdout.line(&Line::BootBanner {
            board: "sim",
            device: &args.device,
            reset,
        });
        if boots == 1 && args.factory_reset {
            // Refused: the line says why and the board boots what it has.
            if let Err(ota_core::device::Error::Flash(e)) = dev.factory_reset(&mut Stdout) {
                return Err(format!("factory reset: flash error {e:?}"));
            }
        }
        let boot = match dev.boot(&mut Stdout) {
            Ok(b) => b,
            Err(Error::Bricked) => {
                // A bricked board sits in its bootloader until the power goes.
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            Err(e) => return Err(format!("flash failure at boot: {e:?}")),
        };
        // RAM is lost: the app starts from nothing but flash.
        let mut server = server.clone();
        server.version = boot.header.version.to_string();
        let who = Identity {
            device: &args.device,
            boots,
        };
        reset = run_app(&mut dev, &server, boot, &who, policy);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A request the machine asked for, owned (so the machine can take inputs while it runs).
enum Todo {
    Request {
        method: &'static str,
        path: String,
        range: Option<(u32, u32)>,
        body: Option<Vec<u8>>,
    },
    Network,
    Crash,
    Reset(Reset),
    Nothing,
}

/// The app of one boot: ota-core's update machine, driven with real sockets and a real clock,
/// until it resets the board.
fn run_app(
    dev: &mut Device<'_, FileFlash>,
    server: &Server,
    boot: ota_core::device::Boot,
    who: &Identity<'_>,
    policy: Policy,
) -> Reset {
    let clock = Instant::now();
    let now = || millis(clock.elapsed());
    let mut bufs = VecBuffers::default();
    let app = dev.app(boot.slot);
    let mut io = Io {
        dev,
        bufs: &mut bufs,
        out: &mut Stdout,
        board_check: no_board_check,
    };
    let Ok(mut up) = Updater::start(&mut io, boot, app, who, policy, now()) else {
        return Reset::Panic;
    };
    loop {
        let todo = match up.poll_action() {
            Some(Action::Reset(r)) => Todo::Reset(r),
            Some(Action::StartNetwork) => Todo::Network,
            Some(Action::CrashDrill) => Todo::Crash,
            Some(Action::SendCheckin(req)) => match req.to_vec() {
                Ok(body) => Todo::Request {
                    method: "POST",
                    path: CHECKIN_PATH.into(),
                    range: None,
                    body: Some(body),
                },
                Err(_) => Todo::Reset(Reset::Panic),
            },
            Some(Action::Fetch { url, range }) => Todo::Request {
                method: "GET",
                path: url.to_string(),
                range,
                body: None,
            },
            Some(Action::Wait { .. } | Action::Hang) => Todo::Nothing,
            None => {
                // Sleep until the machine's next deadline, then tell it time passed.
                let wait = up
                    .next_deadline()
                    .map_or(3_600_000, |t| t.saturating_sub(now()));
                std::thread::sleep(Duration::from_millis(wait));
                if up.handle(&mut io, Input::Timeout, now()).is_err() {
                    return Reset::Panic;
                }
                continue;
            }
        };
        let fed = match todo {
            Todo::Reset(r) => return r,
            Todo::Nothing => Ok(()),
            Todo::Network => up.handle(&mut io, Input::NetworkUp, now()),
            Todo::Crash => {
                let crashed =
                    std::panic::catch_unwind(|| -> () { panic!("drill: crash in app init") });
                debug_assert!(crashed.is_err());
                Ok(())
            }
            Todo::Request {
                method,
                path,
                range,
                body,
            } => exchange(
                &mut up,
                &mut io,
                server,
                method,
                &path,
                range,
                body.as_deref(),
                &now,
            ),
        };
        if fed.is_err() {
            return Reset::Panic;
        }
    }
}

/// One HTTP exchange: the request, then the response head and body handed to the machine as
/// they arrive, until it wants no more.
#[allow(clippy::too_many_arguments)]
fn exchange(
    up: &mut Updater,
    io: &mut Io<'_, '_, FileFlash>,
    server: &Server,
    method: &str,
    path: &str,
    range: Option<(u32, u32)>,
    body: Option<&[u8]>,
    now: &dyn Fn() -> u64,
) -> Result<(), <FileFlash as embedded_storage::nor_flash::ErrorType>::Error> {
    let mut resp = match http::request(server, method, path, range, body) {
        Ok(r) => r,
        Err(r) => return up.handle(io, Input::NetError(r), now()),
    };
    up.handle(io, Input::ResponseHead(resp.head), now())?;
    let declared = resp.head.content_length;
    let mut received = 0u64;
    let mut buf = vec![0u8; 16 * 1024];
    while up.wants_body() {
        if declared.is_some_and(|n| received >= n) {
            return up.handle(io, Input::BodyEnd, now());
        }
        match resp.read_some(&mut buf) {
            Ok(0) => return up.handle(io, Input::BodyEnd, now()),
            Ok(n) => {
                received += n as u64;
                up.handle(io, Input::BodyBytes(&buf[..n]), now())?;
            }
            Err(r) => return up.handle(io, Input::NetError(r), now()),
        }
    }
    Ok(())
}
