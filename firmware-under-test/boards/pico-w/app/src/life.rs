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

use core::fmt::Write as _;

use embassy_executor::Spawner;
use embassy_time::{Duration, Timer};
use ota_core::checkin::CheckinResponse;
use ota_core::device::{self, Boot, Device, Error, Next};
use ota_core::manifest::Manifest;
use ota_core::payload::Drill;
use ota_core::state::Mode;
use ota_core::{Reason, Version};
use otarig_pico::reset::Reset;
use otarig_pico::{BoardFlash, say};

use crate::http::{self, Client, Response};
use crate::net::{self, Radio};
use crate::{config, watchdog};

/// Download attempts after the first failure before giving up until a later check-in.
const MAX_RETRIES: u32 = 8;

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
        let mut next = match self.dev.begin_download(&mut self.boot.state, &m) {
            Ok(k) => k,
            Err(_) => return Some(Reset::Panic),
        };
        let n = m.chunk_count();
        if next == 0 {
            say!("download: start offset=0 total={}", m.size());
        } else {
            say!(
                "download: resume offset={} chunk={next}/{n}",
                next * m.chunk_size()
            );
        }
        let mut failures = 0u32;
        let mut ignored_range = 0u32;
        while next < n {
            watchdog::pet();
            if let Err((reason, (retry_after, status))) = self
                .fetch_from(client, &m, &mut next, ignored_range > 0)
                .await
            {
                if reason == Reason::IgnoredRange {
                    ignored_range += 1;
                }
                failures += 1;
                let mut shown: heapless::String<32> = heapless::String::new();
                match reason {
                    Reason::Status => {
                        let _ = write!(shown, "status-{status}");
                    }
                    r => {
                        let _ = shown.push_str(r.as_str());
                    }
                }
                if failures > MAX_RETRIES {
                    say!("download: error reason={shown} retry={failures}/{MAX_RETRIES} in=0ms");
                    say!("update: failed reason=retries-exhausted");
                    return None;
                }
                let backoff = retry_after
                    .map(|s| Duration::from_secs(s).min(Duration::from_secs(2)))
                    .unwrap_or_else(|| Duration::from_millis(25u64 << failures.min(5)));
                say!(
                    "download: error reason={shown} retry={failures}/{MAX_RETRIES} in={}ms",
                    backoff.as_millis()
                );
                Timer::after(backoff).await;
                if next > 0 {
                    say!(
                        "download: resume offset={} chunk={next}/{n}",
                        next * m.chunk_size()
                    );
                }
            }
        }
        say!("download: complete bytes={}", m.size());
        watchdog::pet();
        watchdog::hold_off();
        let slot = self.boot.state.inactive();
        let verified = self
            .dev
            .verify_staged(&self.boot.state, &m, running)
            .and_then(|h| {
                // Execute in place: the image must be linked for the slot it now sits in.
                otarig_pico::check_entry(&mut self.dev.flash, slot, &h)
                    .map(|_| h)
                    .map_err(Error::Refused)
            });
        match verified {
            Ok(h) => say!("verify: ok version={}", h.version),
            Err(Error::Refused(r)) => {
                say!("verify: failed reason={r}");
                return self
                    .dev
                    .reject(&mut self.boot.state, m.version(), r)
                    .err()
                    .map(|_| Reset::Panic);
            }
            Err(_) => return Some(Reset::Panic),
        }
        if self.dev.stage(&mut self.boot.state).is_err() {
            return Some(Reset::Panic);
        }
        say!("update: staged version={}", m.version());
        Some(Reset::Update)
    }

    /// One ranged request from chunk `next` to the end; advances `next` per verified chunk.
    /// On failure: the reason and (Retry-After, status).
    async fn fetch_from(
        &mut self,
        client: &mut Client,
        m: &Manifest<'_>,
        next: &mut u32,
        accept_full_body: bool,
    ) -> Result<(), (Reason, (Option<u64>, u16))> {
        let start = *next * m.chunk_size();
        let total = m.size();
        let mut resp = client
            .request("GET", m.url(), Some((start, total - 1)), None)
            .await
            .map_err(|r| (r, (None, 0)))?;
        let meta = (resp.retry_after, resp.status);
        let result = self
            .receive(&mut resp, m, next, accept_full_body)
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
        next: &mut u32,
        accept_full_body: bool,
    ) -> Result<(), Reason> {
        let start = *next * m.chunk_size();
        let total = m.size();
        match device::check_resume(
            m,
            *next,
            resp.status,
            resp.content_length,
            resp.content_range.as_deref(),
        ) {
            Ok(()) => {}
            Err(Reason::IgnoredRange)
                if accept_full_body && resp.content_length == Some(u64::from(total)) =>
            {
                // The server keeps ignoring Range: take the full body and skip what we have.
                resp.skip(u64::from(start)).await?;
            }
            Err(r) => return Err(r),
        }
        let slot = self.boot.state.inactive();
        let n = m.chunk_count();
        let quarter = n.div_ceil(4).max(1);
        while *next < n {
            let (s, e) = m.chunk_range(*next).ok_or(Reason::BadManifest)?;
            let chunk = &mut self.chunk[..(e - s) as usize];
            resp.read_exact(chunk).await?;
            // Erasing a large chunk can take seconds with interrupts masked.
            watchdog::hold_off();
            match self.dev.write_chunk(slot, m, *next, chunk) {
                Ok(()) => {}
                Err(Error::Refused(r)) => return Err(r),
                Err(_) => return Err(Reason::Flash),
            }
            watchdog::pet();
            *next += 1;
            if next.is_multiple_of(quarter) || *next == n {
                say!("download: progress {}/{n}", *next);
            }
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
