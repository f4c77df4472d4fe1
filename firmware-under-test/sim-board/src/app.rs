//! The board's life: bootloader stage, then the application, forever (until the power goes).

use std::fmt;
use std::io::Write;
use std::time::{Duration, Instant};

use ota_core::checkin::{CheckinResponse, DeviceState};
use ota_core::device::{Boot, Config, Console, Device, Error, Next, Reset};
use ota_core::download::{Download, Retry};
use ota_core::layout::SIM;
use ota_core::manifest::Manifest;
use ota_core::payload::Drill;
use ota_core::{Reason, Version};

use crate::Args;
use crate::flash::{FileFlash, provision, read_trusted_key};
use crate::http::{self, Server};

/// Console on stdout, one flushed line per event.
struct Stdout;

impl Console for Stdout {
    fn line(&mut self, args: fmt::Arguments<'_>) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{args}");
        let _ = out.flush();
    }
}

macro_rules! say {
    ($($t:tt)*) => { Stdout.line(format_args!($($t)*)) };
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
            },
        },
    );
    let mut reset = Reset::PowerOn;
    let mut boots: u32 = 0;
    loop {
        boots += 1;
        say!(
            "boot: otarig-boot board=sim device={} reset={}",
            args.device,
            reset.as_str()
        );
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
        reset = App {
            dev: &mut dev,
            args,
            server: &server,
            boot,
            boots,
        }
        .run();
    }
}

struct App<'a, 'b> {
    dev: &'a mut Device<'b, FileFlash>,
    args: &'a Args,
    server: &'a Server,
    boot: Boot,
    boots: u32,
}

impl App<'_, '_> {
    fn version(&self) -> Version {
        self.boot.header.version
    }

    fn run(mut self) -> Reset {
        let v = self.version();
        // The "CPU" jumps to the entry point: the app's header must be there.
        let mut entry = [0u8; 512];
        let body_at = SIM.slot(self.boot.slot) + ota_core::image::HEADER_LEN as u32;
        use embedded_storage::nor_flash::ReadNorFlash;
        let app = match self.dev.flash.read(body_at, &mut entry) {
            Ok(()) => ota_core::payload::parse(&entry),
            Err(_) => Err(ota_core::payload::PayloadError::NoEntry),
        };
        let drill = match app {
            Ok(info) => info.drill,
            Err(e) => {
                say!("app: v{v} crash: {e}");
                return Reset::Panic;
            }
        };
        say!("app: v{v} starting drill={}", drill.as_str());
        let started = Instant::now();
        match drill {
            d if d.crashes_on(self.args.hw_rev) => {
                say!("app: v{v} crash in init (drill)");
                let crashed =
                    std::panic::catch_unwind(|| -> () { panic!("drill: crash in app init") });
                debug_assert!(crashed.is_err());
                return Reset::Panic;
            }
            Drill::Hang => {
                say!("app: v{v} hang (drill)");
                std::thread::sleep(self.args.watchdog);
                say!("watchdog: expired");
                return Reset::Watchdog;
            }
            Drill::SlowBoot => std::thread::sleep(self.args.trial_window / 2),
            Drill::NoNetwork => say!("app: v{v} network disabled (drill)"),
            Drill::None | Drill::CrashInInit | Drill::CrashOnRevB => {}
        }
        if self.args.quirks.iter().any(|q| q == "early-confirm")
            && self.boot.state.mode == ota_core::state::Mode::Trial
        {
            // Deliberately wrong (test quirk): confirm before proving the image healthy.
            let header = self.boot.header.clone();
            if self.dev.confirm(&mut self.boot.state, &header).is_err() {
                return Reset::Panic;
            }
            say!("app: v{v} confirmed");
        }
        let network = drill != Drill::NoNetwork;
        if network {
            say!("app: v{v} network up");
        }
        say!("app: v{v} running");
        loop {
            if self.boot.state.mode == ota_core::state::Mode::Trial
                && started.elapsed() > self.args.trial_window
            {
                say!("watchdog: expired");
                return Reset::Watchdog;
            }
            if network && let Some(reset) = self.checkin_once() {
                return reset;
            }
            std::thread::sleep(self.args.checkin_interval);
        }
    }

    fn checkin_state(&self) -> DeviceState {
        self.boot.checkin_state()
    }

    /// One check-in and whatever it asks for. `Some(reset)` when the board must reset.
    fn checkin_once(&mut self) -> Option<Reset> {
        let v = self.version();
        let req = self.boot.checkin_request(&self.args.device, self.boots);
        let mut buf = [0u8; ota_core::checkin::MAX_REQUEST_LEN];
        let n = req.encode(&mut buf).ok()?;
        let resp = match http::request(self.server, "POST", "/v1/checkin", None, Some(&buf[..n])) {
            Ok(r) if r.status == 200 => r,
            Ok(r) => {
                say!("checkin: failed reason=status-{}", r.status);
                return None;
            }
            Err(r) => {
                say!("checkin: failed reason={r}");
                return None;
            }
        };
        let body = match resp.body(4096) {
            Ok(b) => b,
            Err(r) => {
                say!("checkin: failed reason={r}");
                return None;
            }
        };
        let Ok(answer) = CheckinResponse::decode(&body) else {
            say!("checkin: failed reason=malformed");
            return None;
        };
        say!(
            "checkin: version={v} state={} -> command={}",
            self.checkin_state().as_str(),
            answer.command.as_str()
        );
        match self.dev.answer(&mut self.boot, &answer, &mut Stdout) {
            Err(_) => Some(Reset::Panic),
            Ok(a) => match a.next {
                Next::CheckInLater => None,
                Next::ResetForRollback => Some(Reset::Rollback),
                Next::Update => self.update(answer.manifest_url.as_deref().unwrap_or_default()),
            },
        }
    }

    /// Fetches, checks, downloads, verifies and stages a release.
    fn update(&mut self, manifest_url: &str) -> Option<Reset> {
        let running = self.version();
        let raw = match http::request(self.server, "GET", manifest_url, None, None)
            .and_then(|r| {
                if r.status == 200 {
                    Ok(r)
                } else {
                    Err(Reason::Status)
                }
            })
            .and_then(|r| r.body(ota_core::manifest::MAX_LEN))
        {
            Ok(b) => b,
            Err(r) => {
                say!("update: manifest unavailable reason={r}");
                return None;
            }
        };
        let m = match self
            .dev
            .accept_manifest(&mut self.boot.state, running, &raw, &mut Stdout)
        {
            Ok(m) => m,
            Err(Error::Refused(_)) => return None,
            Err(_) => return Some(Reset::Panic),
        };
        let mut download = match self.dev.begin_download(&mut self.boot.state, &m) {
            Ok(next) => Download::start(&m, next, &mut Stdout),
            Err(_) => return Some(Reset::Panic),
        };
        while !download.done() {
            if let Err((reason, (retry_after, status))) = self.fetch_from(&m, &mut download) {
                match download.failed(reason, retry_after, status, &mut Stdout) {
                    Retry::GiveUp => return None,
                    Retry::After(ms) => std::thread::sleep(Duration::from_millis(ms)),
                }
                download.resumed(&mut Stdout);
            }
        }
        download.complete(&mut Stdout);
        match self.dev.finish_update(
            &mut self.boot.state,
            &m,
            running,
            |_, _, _| Ok(()),
            &mut Stdout,
        ) {
            Ok(true) => Some(Reset::Update),
            Ok(false) => None,
            Err(_) => Some(Reset::Panic),
        }
    }

    /// One ranged request from chunk `next` to the end; advances `next` per verified chunk.
    /// On failure: the reason and (Retry-After, status).
    #[allow(clippy::type_complexity)]
    fn fetch_from(
        &mut self,
        m: &Manifest<'_>,
        download: &mut Download,
    ) -> Result<(), (Reason, (Option<u64>, u16))> {
        let start = download.offset();
        let total = m.size();
        let mut resp = http::request(self.server, "GET", m.url(), Some((start, total - 1)), None)
            .map_err(|r| (r, (None, 0)))?;
        let meta = (resp.retry_after, resp.status);
        let skip = download
            .check_head(
                m,
                resp.status,
                resp.content_length,
                resp.content_range.as_deref(),
            )
            .map_err(|r| (r, meta))?;
        resp.skip(skip).map_err(|r| (r, meta))?;
        let slot = self.boot.state.inactive();
        let mut buf = vec![0u8; m.chunk_size() as usize];
        while !download.done() {
            let (s, e) = m
                .chunk_range(download.next())
                .ok_or((Reason::BadManifest, meta))?;
            let chunk = &mut buf[..(e - s) as usize];
            resp.read_exact(chunk).map_err(|r| (r, meta))?;
            match self.dev.write_chunk(slot, m, download.next(), chunk) {
                Ok(()) => {}
                Err(Error::Refused(r)) => return Err((r, meta)),
                Err(_) => return Err((Reason::Flash, meta)),
            }
            download.chunk_written(&mut Stdout);
        }
        Ok(())
    }
}
