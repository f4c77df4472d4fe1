//! The application's life, ported from the simulated board's driver loop
//! (`firmware-under-test/sim-board/src/app.rs`) to embassy: the same decisions, the same
//! console lines, the same retry limits and backoffs. Every decision is ota-core's; this file
//! does the I/O around it.
//!
//! Differences forced by the hardware, and only those:
//! - the trial window and the hang drill are enforced by the hardware watchdog
//!   ([`crate::watchdog`]); the bootloader prints `watchdog: expired` after the reset;
//! - an image runs in place, so a release is published in two variants, one linked for each
//!   slot, and the board asks for the variant of its inactive slot
//!   (`otarig_pico::http::variant_url`); the
//!   staged image must be linked for the slot it was written to (`otarig_pico::check_entry`).

use embassy_executor::Spawner;
use embassy_time::{Duration, Timer};
use ota_core::checkin::CheckinResponse;
use ota_core::device::{Boot, Device, Error, Next};
use ota_core::download::{Download, Retry};
use ota_core::manifest::Manifest;
use ota_core::payload::Drill;
use ota_core::state::Mode;
use ota_core::{Reason, Version};
use otarig_pico::reset::Reset;
use otarig_pico::{BoardFlash, say};

use crate::http::{self, Client, Response};
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

/// What a check-in or an update asks of the board.
type Outcome = Option<Reset>;

struct App {
    dev: Device<'static, BoardFlash>,
    boot: Boot,
    device: heapless::String<24>,
    boots: u32,
    chunk: &'static mut [u8],
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
    let v = boot.header.version;
    let drill = drill();
    say!("app: v{v} starting drill={}", drill.as_str());
    if boot.state.mode == Mode::Trial {
        watchdog::arm_trial(config::TRIAL_WINDOW_MS as u32);
    }
    if drill.crashes_on(config::HW_REV) {
        say!("app: v{v} crash in init (drill)");
        crate::crash_drill();
    }
    match drill {
        Drill::Hang => {
            say!("app: v{v} hang (drill)");
            otarig_pico::console::flush();
            watchdog::stop();
            // A real hang: the executor never runs again, the watchdog resets the chip.
            loop {
                cortex_m::asm::nop();
            }
        }
        Drill::SlowBoot => {
            let mut left = config::TRIAL_WINDOW_MS / 2;
            while left > 0 {
                watchdog::pet();
                let step = left.min(1000);
                Timer::after(Duration::from_millis(step)).await;
                left -= step;
            }
        }
        Drill::NoNetwork => say!("app: v{v} network disabled (drill)"),
        _ => {}
    }
    let Buffers {
        manifest,
        chunk,
        http: http_bufs,
    } = bufs;
    let mut app = App {
        dev,
        boot,
        device,
        boots,
        chunk,
    };
    // Kept for the whole life of the app: it owns the radio's control channel.
    let net = if drill != Drill::NoNetwork {
        let net = net::up(&spawner, radio).await;
        say!("app: v{v} network up");
        Some(net)
    } else {
        None
    };
    let mut client = net
        .as_ref()
        .map(|n| Client::new(n.stack, http_bufs, &app.device, v));
    say!("app: v{v} running");
    let interval = Duration::from_millis(config::CHECKIN_INTERVAL_MS);
    loop {
        watchdog::pet();
        if let Some(client) = client.as_mut()
            && let Some(reset) = app.checkin_once(client, manifest).await
        {
            otarig_pico::reset::reset_now(reset);
        }
        Timer::after(interval).await;
    }
}

impl App {
    fn version(&self) -> Version {
        self.boot.header.version
    }

    /// One check-in and whatever it asks for. `Some(reset)` when the board must reset.
    async fn checkin_once(&mut self, client: &mut Client, manifest_buf: &mut [u8]) -> Outcome {
        let v = self.version();
        let req = self.boot.checkin_request(&self.device, self.boots);
        let mut buf = [0u8; ota_core::checkin::MAX_REQUEST_LEN];
        let n = req.encode(&mut buf).ok()?;
        let mut resp = match client
            .request("POST", "/v1/checkin", None, Some(&buf[..n]))
            .await
        {
            Ok(r) if r.status == 200 => r,
            Ok(r) => {
                say!("checkin: failed reason=status-{}", r.status);
                r.end(false).await;
                return None;
            }
            Err(r) => {
                say!("checkin: failed reason={r}");
                return None;
            }
        };
        let mut body = [0u8; 4096];
        let body = match resp.body(&mut body).await {
            Ok(b) => {
                resp.end(true).await;
                b
            }
            Err(r) => {
                resp.end(false).await;
                say!("checkin: failed reason={r}");
                return None;
            }
        };
        let Ok(answer) = CheckinResponse::decode(body) else {
            say!("checkin: failed reason=malformed");
            return None;
        };
        say!(
            "checkin: version={v} state={} -> command={}",
            self.boot.checkin_state().as_str(),
            answer.command.as_str()
        );
        let answered =
            match self
                .dev
                .answer(&mut self.boot, &answer, &mut otarig_pico::console::Console)
            {
                Ok(a) => a,
                Err(_) => return Some(Reset::Panic),
            };
        if answered.confirmed {
            watchdog::confirmed();
        }
        match answered.next {
            Next::CheckInLater => None,
            Next::ResetForRollback => Some(Reset::Rollback),
            Next::Update => {
                let url = answer.manifest_url.unwrap_or_default();
                self.update(client, manifest_buf, &url).await
            }
        }
    }

    /// Fetches, checks, downloads, verifies and stages a release.
    async fn update(
        &mut self,
        client: &mut Client,
        manifest_buf: &mut [u8],
        offered: &str,
    ) -> Outcome {
        let running = self.version();
        let url = otarig_pico::http::variant_url(offered, self.boot.state.inactive());
        let raw = match fetch_manifest(client, &url, manifest_buf).await {
            Ok(b) => b,
            Err(r) => {
                say!("update: manifest unavailable reason={r}");
                return None;
            }
        };
        let m = match self.dev.accept_manifest(
            &mut self.boot.state,
            running,
            raw,
            &mut otarig_pico::console::Console,
        ) {
            Ok(m) => m,
            Err(Error::Refused(_)) => return None,
            Err(_) => return Some(Reset::Panic),
        };
        watchdog::pet();
        // Resuming re-hashes what the slot already holds: long, but bounded by the slot size.
        watchdog::hold_off();
        let mut download = match self.dev.begin_download(&mut self.boot.state, &m) {
            Ok(next) => Download::start(&m, next, &mut otarig_pico::console::Console),
            Err(_) => return Some(Reset::Panic),
        };
        while !download.done() {
            watchdog::pet();
            if let Err((reason, (retry_after, status))) =
                self.fetch_from(client, &m, &mut download).await
            {
                match download.failed(
                    reason,
                    retry_after,
                    status,
                    &mut otarig_pico::console::Console,
                ) {
                    Retry::GiveUp => return None,
                    Retry::After(ms) => Timer::after(Duration::from_millis(ms)).await,
                }
                download.resumed(&mut otarig_pico::console::Console);
            }
        }
        download.complete(&mut otarig_pico::console::Console);
        watchdog::pet();
        watchdog::hold_off();
        // Execute in place: the image must also be linked for the slot it now sits in.
        let entry = |flash: &mut BoardFlash, slot: u8, h: &ota_core::image::ImageHeader| {
            otarig_pico::check_entry(flash, slot, h).map(|_| ())
        };
        match self.dev.finish_update(
            &mut self.boot.state,
            &m,
            running,
            entry,
            &mut otarig_pico::console::Console,
        ) {
            Ok(true) => Some(Reset::Update),
            Ok(false) => None,
            Err(_) => Some(Reset::Panic),
        }
    }

    /// One ranged request from chunk `next` to the end; advances `next` per verified chunk.
    /// On failure: the reason and (Retry-After, status).
    async fn fetch_from(
        &mut self,
        client: &mut Client,
        m: &Manifest<'_>,
        download: &mut Download,
    ) -> Result<(), (Reason, (Option<u64>, u16))> {
        let start = download.offset();
        let total = m.size();
        let mut resp = client
            .request("GET", m.url(), Some((start, total - 1)), None)
            .await
            .map_err(|r| (r, (None, 0)))?;
        let meta = (resp.retry_after, resp.status);
        let result = self
            .receive(&mut resp, m, download)
            .await
            .map_err(|r| (r, meta));
        resp.end(result.is_ok()).await;
        result
    }

    /// Checks a response head and writes the chunks of its body.
    async fn receive(
        &mut self,
        resp: &mut Response<'_>,
        m: &Manifest<'_>,
        download: &mut Download,
    ) -> Result<(), Reason> {
        let skip = download.check_head(
            m,
            resp.status,
            resp.content_length,
            resp.content_range.as_deref(),
        )?;
        resp.skip(skip).await?;
        let slot = self.boot.state.inactive();
        while !download.done() {
            let (s, e) = m.chunk_range(download.next()).ok_or(Reason::BadManifest)?;
            let chunk = &mut self.chunk[..(e - s) as usize];
            resp.read_exact(chunk).await?;
            // Erasing a large chunk can take seconds with interrupts masked.
            watchdog::hold_off();
            match self.dev.write_chunk(slot, m, download.next(), chunk) {
                Ok(()) => {}
                Err(Error::Refused(r)) => return Err(r),
                Err(_) => return Err(Reason::Flash),
            }
            watchdog::pet();
            download.chunk_written(&mut otarig_pico::console::Console);
        }
        Ok(())
    }
}

/// Fetches the signed manifest at `url` into `buf` (status 200, exactly Content-Length bytes).
async fn fetch_manifest<'b>(
    client: &mut Client,
    url: &str,
    buf: &'b mut [u8],
) -> Result<&'b [u8], Reason> {
    let mut resp = client.request("GET", url, None, None).await?;
    if resp.status != 200 {
        resp.end(false).await;
        return Err(Reason::Status);
    }
    match resp.body(buf).await {
        Ok(b) => {
            resp.end(true).await;
            Ok(b)
        }
        Err(r) => {
            resp.end(false).await;
            Err(r)
        }
    }
}
