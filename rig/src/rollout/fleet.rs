//! One simulated fleet device: ota-core's real bootloader and update decisions over a sparse
//! in-memory flash, an app that plays its image's drill, and the troubles of its [`Trouble`]
//! (bad Wi-Fi, power cuts, a hardware revision, time offline). Time is simulated: a device is
//! woken at a point of simulated time, does what a board would do then, and says when it next
//! wants to be woken.

use ota_core::Reason;
use ota_core::checkin::{CheckinRequest, CheckinResponse};
use ota_core::device::{self, Boot, Config, Device, Error, Next};
use ota_core::layout::SIM;
use ota_core::nor::FlashError;
use ota_core::state::Mode;

use super::flash::{FactoryImage, SparseFlash};
use super::net::{Client, Request};
use super::runbook::Trouble;

const MINUTE: u64 = 60_000;
/// Trial boots before the bootloader reverts (the sim board's default).
const MAX_ATTEMPTS: u8 = 3;
/// Download retries per offer before waiting for the next check-in.
const MAX_RETRIES: u32 = 8;

/// What every device of a run shares.
pub struct Shared {
    pub client: Client,
    pub key: [u8; 32],
    pub checkin_ms: u64,
    pub trial_ms: u64,
    /// `(from, to, share)` in simulated milliseconds: the network is down for devices whose
    /// outage draw is below `share`.
    pub outages: Vec<(u64, u64, f64)>,
    /// Version string of the release under test.
    pub release_version: String,
}

/// A small deterministic generator (SplitMix64) per device: the run is reproducible under a
/// seed whatever order devices are woken in.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo)
    }
}

/// Is the board running, and what?
enum Power {
    /// Powered off (or between resets) until then.
    Off { until: u64 },
    /// The app is running the booted image since `started`.
    On {
        boot: Box<Boot>,
        started: u64,
        network: bool,
    },
    /// The bootloader found nothing valid to boot.
    Bricked,
}

/// What the report needs from a device.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// First time the release was offered (simulated ms), and whether the rollout was paused
    /// at that moment.
    pub offered_at: Option<u64>,
    pub offered_while_paused: bool,
    /// The release ever ran on this device.
    pub ran_release: bool,
    pub power_cuts: u32,
    /// The bootloader reverted a failed trial image on this device.
    pub reverted: bool,
    pub forced_rollbacks: u32,
}

/// One device.
pub struct SimDevice {
    pub id: String,
    pub trouble: Option<Trouble>,
    hw_rev: char,
    rng: Rng,
    dev: Device<'static, SparseFlash>,
    power: Power,
    boots: u32,
    /// Below the outage share: this device is in the outage.
    outage_draw: f64,
    offline: Option<(u64, u64)>,
    /// A power-cut device loses power once, at a random moment of its first update.
    cut_pending: bool,
    pub tally: Tally,
}

/// What a device runs right now, for the rollout chart.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Running {
    Version(String),
    Off,
    Bricked,
}

struct NoConsole;

impl device::Console for NoConsole {
    fn line(&mut self, _args: core::fmt::Arguments<'_>) {}
}

impl SimDevice {
    /// A device fresh from the factory, powered off until `first_wake`.
    pub fn new(
        id: String,
        trouble: Option<Trouble>,
        factory: &FactoryImage,
        key: [u8; 32],
        seed: u64,
        first_wake: u64,
        horizon_ms: u64,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let offline = (trouble == Some(Trouble::Offline)).then(|| {
            let start = rng.range(0, horizon_ms.max(1));
            (start, start + 12 * 60 * MINUTE)
        });
        Self {
            id,
            trouble,
            hw_rev: if trouble == Some(Trouble::RevB) {
                'b'
            } else {
                'a'
            },
            outage_draw: rng.unit(),
            offline,
            cut_pending: trouble == Some(Trouble::PowerCut),
            rng,
            dev: Device::new(
                SparseFlash::new(factory),
                Config {
                    layout: SIM,
                    public_key: key,
                    board: "sim",
                    max_attempts: MAX_ATTEMPTS,
                    quirks: device::Quirks::default(),
                },
            ),
            power: Power::Off { until: first_wake },
            boots: 0,
            tally: Tally::default(),
        }
    }

    pub fn running(&self) -> Running {
        match &self.power {
            Power::On { boot, .. } => Running::Version(boot.header.version.to_string()),
            Power::Off { .. } => Running::Off,
            Power::Bricked => Running::Bricked,
        }
    }

    /// The version in the slot the bootloader would boot (what the device "has", on or off).
    pub fn installed(&self) -> Option<String> {
        match &self.power {
            Power::On { boot, .. } => Some(boot.header.version.to_string()),
            _ => None,
        }
    }

    pub fn is_bricked(&self) -> bool {
        matches!(self.power, Power::Bricked)
    }

    pub fn private_flash_bytes(&self, factory: &FactoryImage) -> usize {
        self.dev.flash.private_bytes(factory)
    }

    fn network_up(&self, now: u64, shared: &Shared) -> bool {
        if self.offline.is_some_and(|(a, b)| (a..b).contains(&now)) {
            return false;
        }
        !shared
            .outages
            .iter()
            .any(|&(a, b, share)| (a..b).contains(&now) && self.outage_draw < share)
    }

    /// Wakes the device at `now` (simulated ms, `paused`: the rollout's pause flag as the
    /// release manager set it). Returns when it next wants to be woken (`u64::MAX`: never).
    pub async fn wake(&mut self, now: u64, paused: bool, shared: &Shared) -> u64 {
        // A wake does at most a few things (boot, check in, update, reboot, check in).
        for _ in 0..6 {
            match &self.power {
                Power::Bricked => return u64::MAX,
                Power::Off { until } if *until > now => return *until,
                Power::Off { .. } => self.boot(now),
                Power::On { .. } => match self.run_app(now, paused, shared).await {
                    Some(next) => return next,
                    None => continue,
                },
            }
        }
        now + MINUTE
    }

    /// Power on or reset: the bootloader runs, then the app starts (or crashes and the board
    /// resets, until the bootloader gives up on the trial image).
    fn boot(&mut self, now: u64) {
        self.dev.flash.power_on();
        for _ in 0..=MAX_ATTEMPTS + 1 {
            self.boots += 1;
            let boot = match self.dev.boot(&mut NoConsole) {
                Ok(b) => b,
                Err(Error::Bricked) => {
                    self.power = Power::Bricked;
                    return;
                }
                Err(_) => {
                    // The power failed again during boot.
                    self.power_cut(now);
                    return;
                }
            };
            if boot.state.reverted && boot.state.last_error == Some(Reason::TrialExhausted) {
                self.tally.reverted = true;
            }
            let mut entry = [0u8; 256];
            let at = SIM.slot(boot.slot) + ota_core::image::HEADER_LEN as u32;
            use embedded_storage::nor_flash::ReadNorFlash;
            let drill = match self.dev.flash.read(at, &mut entry) {
                Ok(()) => ota_core::payload::parse(&entry).map(|a| a.drill),
                Err(_) => Err(ota_core::payload::PayloadError::NoEntry),
            };
            match drill {
                Ok(d) if d.crashes_on(self.hw_rev) => continue,
                Ok(ota_core::payload::Drill::Hang) => continue,
                Ok(d) => {
                    self.power = Power::On {
                        network: d != ota_core::payload::Drill::NoNetwork,
                        boot: Box::new(boot),
                        started: now,
                    };
                    return;
                }
                Err(_) => continue,
            }
        }
        // Still crashing after every attempt: leave it off for a while and try again.
        self.power = Power::Off {
            until: now + 10 * MINUTE,
        };
    }

    fn power_cut(&mut self, now: u64) {
        self.tally.power_cuts += 1;
        let off = self.rng.range(10 * MINUTE, 90 * MINUTE);
        self.power = Power::Off { until: now + off };
    }

    /// Handles a device error: a power cut turns the board off; anything else is reported.
    fn flash_failed(&mut self, now: u64, e: &Error<FlashError>) -> Option<u64> {
        match e {
            Error::Flash(FlashError::PowerCut) => {
                self.power_cut(now);
                None
            }
            _ => Some(now + self.jitter(MINUTE)),
        }
    }

    fn jitter(&mut self, base: u64) -> u64 {
        base - base / 10 + self.rng.range(0, base / 5 + 1)
    }

    /// One app cycle: watchdog, check-in, and what the server says. `None`: the board reset
    /// (wake it again now), `Some(t)`: sleep until `t`.
    async fn run_app(&mut self, now: u64, paused: bool, shared: &Shared) -> Option<u64> {
        let Power::On {
            boot,
            started,
            network,
        } = &self.power
        else {
            return Some(now);
        };
        let (trial, started, network) = (boot.state.mode == Mode::Trial, *started, *network);
        if boot.header.version.to_string() == shared.release_version {
            self.tally.ran_release = true;
        }
        if trial && now.saturating_sub(started) >= shared.trial_ms {
            // The watchdog resets a trial image that never proved itself.
            self.power = Power::Off { until: now };
            return None;
        }
        let retry = if trial { MINUTE } else { shared.checkin_ms };
        if !network || !self.network_up(now, shared) {
            let next = now + self.jitter(retry);
            return Some(if trial {
                next.min(started + shared.trial_ms)
            } else {
                next
            });
        }
        let answer = match self.checkin(shared).await {
            Ok(a) => a,
            Err(_) => return Some(now + self.jitter(retry)),
        };
        let Power::On { boot, .. } = &mut self.power else {
            return Some(now);
        };
        let answered = match self.dev.answer(boot, &answer, &mut NoConsole) {
            Ok(a) => a,
            Err(e) => return self.flash_failed(now, &e),
        };
        match answered.next {
            Next::CheckInLater => Some(now + self.jitter(shared.checkin_ms)),
            Next::ResetForRollback => {
                self.tally.forced_rollbacks += 1;
                self.power = Power::Off { until: now };
                None
            }
            Next::Update => {
                if self.tally.offered_at.is_none() {
                    self.tally.offered_at = Some(now);
                    self.tally.offered_while_paused = paused;
                }
                if self.cut_pending {
                    self.cut_pending = false;
                    let at = self.rng.range(0, 60);
                    self.dev.flash.arm_cut(at);
                }
                let url = answer
                    .manifest_url
                    .as_deref()
                    .unwrap_or_default()
                    .to_string();
                self.update(now, &url, shared).await
            }
        }
    }

    fn checkin_request(&self) -> Option<CheckinRequest> {
        let Power::On { boot, .. } = &self.power else {
            return None;
        };
        Some(boot.checkin_request(&self.id, self.boots))
    }

    fn version(&self) -> String {
        self.installed().unwrap_or_default()
    }

    /// Bad Wi-Fi loses a third of its requests before they reach the server.
    fn lossy(&mut self) -> bool {
        self.trouble == Some(Trouble::BadWifi) && self.rng.unit() < 1.0 / 3.0
    }

    async fn checkin(&mut self, shared: &Shared) -> Result<CheckinResponse, Reason> {
        let req = self.checkin_request().ok_or(Reason::Status)?;
        let mut buf = [0u8; ota_core::checkin::MAX_REQUEST_LEN];
        let n = req.encode(&mut buf).map_err(|_| Reason::Status)?;
        if self.lossy() {
            return Err(Reason::Timeout);
        }
        let version = self.version();
        let resp = shared
            .client
            .send(&Request {
                method: "POST",
                path: "/v1/checkin",
                device: &self.id,
                version: &version,
                range: None,
                body: Some(&buf[..n]),
                max_body: 4096,
                drop_after: None,
            })
            .await?;
        if resp.status != 200 {
            return Err(Reason::Status);
        }
        CheckinResponse::decode(&resp.body).map_err(|_| Reason::Status)
    }

    /// Fetches the manifest and the image (resuming what the slot already holds), verifies
    /// and stages it. `None` when the board resets into the new image (or lost power).
    async fn update(&mut self, now: u64, manifest_url: &str, shared: &Shared) -> Option<u64> {
        let later = now + self.jitter(shared.checkin_ms);
        let version = self.version();
        if self.lossy() {
            return Some(later);
        }
        let Ok(resp) = shared
            .client
            .send(&Request {
                method: "GET",
                path: manifest_url,
                device: &self.id,
                version: &version,
                range: None,
                body: None,
                max_body: ota_core::manifest::MAX_LEN,
                drop_after: None,
            })
            .await
        else {
            return Some(later);
        };
        if resp.status != 200 {
            return Some(later);
        }
        let raw = resp.body;
        let Power::On { boot, .. } = &mut self.power else {
            return Some(now);
        };
        let running = boot.header.version;
        let m = match self
            .dev
            .accept_manifest(&mut boot.state, running, &raw, &mut NoConsole)
        {
            Ok(m) => m,
            Err(Error::Refused(_)) => return Some(later),
            Err(e) => return self.flash_failed(now, &e),
        };
        let mut next = match self.dev.begin_download(&mut boot.state, &m) {
            Ok(k) => k,
            Err(e) => return self.flash_failed(now, &e),
        };
        let slot = boot.state.inactive();
        let (n, chunk, total) = (m.chunk_count(), m.chunk_size(), m.size());
        let mut failures = 0;
        while next < n {
            if failures > MAX_RETRIES {
                return Some(later);
            }
            let start = next * chunk;
            let want = u64::from(total - start);
            let drop_after = (self.trouble == Some(Trouble::BadWifi) && self.rng.unit() < 0.5)
                .then(|| self.rng.range(0, want) as usize);
            if self.lossy() {
                failures += 1;
                continue;
            }
            let resp = match shared
                .client
                .send(&Request {
                    method: "GET",
                    path: m.url(),
                    device: &self.id,
                    version: &version,
                    range: Some((u64::from(start), u64::from(total) - 1)),
                    body: None,
                    max_body: SIM.slot_size as usize,
                    drop_after,
                })
                .await
            {
                Ok(r) => r,
                Err(_) => {
                    failures += 1;
                    continue;
                }
            };
            if device::check_resume(
                &m,
                next,
                resp.status,
                resp.content_length,
                resp.content_range.as_deref(),
            )
            .is_err()
            {
                failures += 1;
                continue;
            }
            let mut body = resp.body.as_slice();
            while next < n {
                let Some((s, e)) = m.chunk_range(next) else {
                    return Some(later);
                };
                let len = (e - s) as usize;
                if body.len() < len {
                    break;
                }
                if let Err(e) = self.dev.write_chunk(slot, &m, next, &body[..len]) {
                    return self.flash_failed(now, &e);
                }
                body = &body[len..];
                next += 1;
            }
            if resp.dropped {
                failures += 1;
            }
        }
        let Power::On { boot, .. } = &mut self.power else {
            return Some(now);
        };
        match self.dev.verify_staged(&boot.state, &m, running) {
            Ok(_) => {}
            Err(Error::Refused(r)) => {
                return match self.dev.reject(&mut boot.state, m.version(), r) {
                    Ok(()) => Some(later),
                    Err(e) => self.flash_failed(now, &e),
                };
            }
            Err(e) => return self.flash_failed(now, &e),
        }
        if let Err(e) = self.dev.stage(&mut boot.state) {
            return self.flash_failed(now, &e);
        }
        // Reset into the trial image.
        self.power = Power::Off { until: now };
        None
    }
}
