//! One simulated fleet device: ota-core's real bootloader and update machine
//! ([`ota_core::updater`], the same code every board runs) over a sparse in-memory flash, and
//! the troubles of its [`Trouble`] (bad Wi-Fi, power cuts, a hardware revision, time offline).
//! Time is simulated: a device is woken at a point of simulated time, drives its machine with
//! whatever the network answers, and says when it next wants to be woken. This file is only
//! the driver: the network, the clock and the troubles.

use ota_core::Reason;
use ota_core::device::{self, Config, DEFAULT_MAX_ATTEMPTS, Device, Error, Reset};
use ota_core::layout::SIM;
use ota_core::nor::FlashError;
use ota_core::updater::{Action, Identity, Input, Io, Policy, Updater, VecBuffers, no_board_check};

use super::flash::{FactoryImage, SparseFlash};
use super::net::{Client, Request};
use super::runbook::Trouble;

const MINUTE: u64 = 60_000;
/// Machine steps in one wake before the device is put back to sleep (a livelock guard: a
/// wake normally takes a handful).
const MAX_STEPS_PER_WAKE: u32 = 256;

/// What every device of a run shares (each fleet thread has its own [`Client`]).
pub struct Shared {
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
    /// The app runs the booted image.
    On(Box<Updater>),
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
    /// The manifest and chunk buffers, held only while an update is in progress.
    bufs: VecBuffers,
    power: Power,
    boots: u32,
    reset: Reset,
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
    Version(ota_core::Version),
    Off,
    Bricked,
}

struct NoConsole;

impl ota_core::console::Console for NoConsole {
    fn line(&mut self, _line: &ota_core::console::Line<'_>) {}
}

/// A request the machine asked for, owned (the machine takes the answer's inputs).
enum Todo {
    Request {
        method: &'static str,
        path: String,
        range: Option<(u64, u64)>,
        body: Option<Vec<u8>>,
        image: bool,
    },
    Input(Input<'static>),
    Sleep(u64),
    Reset(Reset),
    Nothing,
}

impl SimDevice {
    /// A device fresh from the factory, powered off until `first_wake`.
    pub fn new(
        id: String,
        trouble: Option<Trouble>,
        flash: SparseFlash,
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
                flash,
                Config {
                    layout: SIM,
                    public_key: key,
                    board: "sim",
                    max_attempts: DEFAULT_MAX_ATTEMPTS,
                    quirks: device::Quirks::default(),
                },
            ),
            bufs: VecBuffers::default(),
            power: Power::Off { until: first_wake },
            boots: 0,
            reset: Reset::PowerOn,
            tally: Tally::default(),
        }
    }

    pub fn running(&self) -> Running {
        match &self.power {
            Power::On(up) => Running::Version(up.version()),
            Power::Off { .. } => Running::Off,
            Power::Bricked => Running::Bricked,
        }
    }

    /// The version in the slot the bootloader would boot (what the device "has", on or off).
    pub fn installed(&self) -> Option<String> {
        match &self.power {
            Power::On(up) => Some(up.version().to_string()),
            _ => None,
        }
    }

    pub fn is_bricked(&self) -> bool {
        matches!(self.power, Power::Bricked)
    }

    pub fn private_flash_bytes(&self, factory: &FactoryImage) -> usize {
        self.dev.flash.private_bytes(factory) + self.bufs.held()
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
    pub async fn wake(&mut self, now: u64, paused: bool, shared: &Shared, client: &Client) -> u64 {
        let next = self.run_until_asleep(now, paused, shared, client).await;
        self.dev.flash.settle();
        next
    }

    async fn run_until_asleep(
        &mut self,
        now: u64,
        paused: bool,
        shared: &Shared,
        client: &Client,
    ) -> u64 {
        for _ in 0..MAX_STEPS_PER_WAKE {
            match &self.power {
                Power::Bricked => return u64::MAX,
                Power::Off { until } if *until > now => return *until,
                Power::Off { .. } => self.boot(now, shared),
                Power::On(_) => {
                    if let Some(next) = self.step(now, paused, shared, client).await {
                        return next;
                    }
                }
            }
        }
        now + MINUTE
    }

    /// Power on or reset: the bootloader runs, then the app's machine starts.
    fn boot(&mut self, now: u64, shared: &Shared) {
        self.dev.flash.power_on();
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
        if boot.header.version.to_string() == shared.release_version {
            self.tally.ran_release = true;
        }
        let app = self.dev.app(boot.slot);
        let policy = Policy {
            checkin_interval_ms: shared.checkin_ms,
            trial_window_ms: shared.trial_ms,
            watchdog_ms: 10_000,
            net_timeout_ms: 10_000,
            hw_rev: self.hw_rev,
            slot_variants: false,
            jitter_seed: Some(self.rng.next_u64()),
        };
        let who = Identity {
            device: &self.id,
            boots: self.boots,
        };
        let mut io = Io {
            dev: &mut self.dev,
            bufs: &mut self.bufs,
            out: &mut NoConsole,
            board_check: no_board_check,
        };
        match Updater::start(&mut io, boot, app, &who, policy, now) {
            Ok(up) => self.power = Power::On(Box::new(up)),
            Err(_) => self.power_cut(now),
        }
        self.reset = Reset::PowerOn;
    }

    fn power_cut(&mut self, now: u64) {
        self.tally.power_cuts += 1;
        self.bufs.release();
        let off = self.rng.range(10 * MINUTE, 90 * MINUTE);
        self.power = Power::Off { until: now + off };
    }

    /// Bad Wi-Fi loses a third of its requests before they reach the server.
    fn lossy(&mut self) -> bool {
        self.trouble == Some(Trouble::BadWifi) && self.rng.unit() < 1.0 / 3.0
    }

    /// One action of the running machine and its answer. `Some(t)`: sleep until `t`;
    /// `None`: go on now.
    async fn step(
        &mut self,
        now: u64,
        paused: bool,
        shared: &Shared,
        client: &Client,
    ) -> Option<u64> {
        let Power::On(up) = &mut self.power else {
            return Some(now);
        };
        let todo = match up.poll_action() {
            Some(Action::Reset(r)) => Todo::Reset(r),
            Some(Action::StartNetwork) => Todo::Input(Input::NetworkUp),
            Some(Action::SendCheckin(req)) => match req.to_vec() {
                Ok(body) => Todo::Request {
                    method: "POST",
                    path: ota_core::checkin::CHECKIN_PATH.into(),
                    range: None,
                    body: Some(body),
                    image: false,
                },
                Err(_) => Todo::Reset(Reset::Panic),
            },
            Some(Action::Fetch { url, range }) => Todo::Request {
                method: "GET",
                path: url.to_string(),
                range: range.map(|(a, b)| (u64::from(a), u64::from(b))),
                body: None,
                image: range.is_some(),
            },
            Some(Action::Wait { .. } | Action::Hang | Action::CrashDrill) => Todo::Nothing,
            None => match up.next_deadline() {
                Some(t) if t > now => Todo::Sleep(t),
                Some(_) => Todo::Input(Input::Timeout),
                None => Todo::Sleep(u64::MAX),
            },
        };
        let was_updating = up.is_updating();
        let fed = match todo {
            Todo::Sleep(t) => {
                if !up.is_updating() {
                    self.bufs.release();
                }
                return Some(t);
            }
            Todo::Nothing => Ok(()),
            Todo::Reset(r) => {
                if r == Reset::Rollback {
                    self.tally.forced_rollbacks += 1;
                }
                self.reset = r;
                self.bufs.release();
                self.power = Power::Off { until: now };
                return None;
            }
            Todo::Input(input) => self.feed(&[input], now),
            Todo::Request {
                method,
                path,
                range,
                body,
                image,
            } => {
                let inputs = self
                    .request(
                        method,
                        &path,
                        range,
                        body.as_deref(),
                        image,
                        now,
                        shared,
                        client,
                    )
                    .await;
                self.feed_response(inputs, now)
            }
        };
        if let Err(e) = fed {
            return match e {
                FlashError::PowerCut => {
                    self.power_cut(now);
                    None
                }
                // Any other flash failure: the board resets.
                _ => {
                    self.power = Power::Off { until: now };
                    None
                }
            };
        }
        if let Power::On(up) = &self.power
            && !was_updating
            && up.is_updating()
        {
            // The server offered the release.
            if self.tally.offered_at.is_none() {
                self.tally.offered_at = Some(now);
                self.tally.offered_while_paused = paused;
            }
            if self.cut_pending {
                self.cut_pending = false;
                let at = self.rng.range(0, 60);
                self.dev.flash.arm_cut(at);
            }
        }
        None
    }

    fn feed(&mut self, inputs: &[Input<'_>], now: u64) -> Result<(), FlashError> {
        let Power::On(up) = &mut self.power else {
            return Ok(());
        };
        let mut io = Io {
            dev: &mut self.dev,
            bufs: &mut self.bufs,
            out: &mut NoConsole,
            board_check: no_board_check,
        };
        for input in inputs {
            up.handle(&mut io, input.clone(), now)?;
        }
        Ok(())
    }

    fn feed_response(&mut self, answer: Answer, now: u64) -> Result<(), FlashError> {
        match answer {
            Answer::Failed(r) => self.feed(&[Input::NetError(r)], now),
            Answer::Response(resp) => {
                let mut inputs = vec![Input::ResponseHead(resp.head)];
                if !resp.body.is_empty() {
                    inputs.push(Input::BodyBytes(&resp.body));
                }
                inputs.push(if resp.dropped {
                    Input::NetError(Reason::ShortBody)
                } else {
                    Input::BodyEnd
                });
                self.feed(&inputs, now)
            }
        }
    }

    /// Sends one request through the shared pool, with this device's troubles.
    #[allow(clippy::too_many_arguments)]
    async fn request(
        &mut self,
        method: &'static str,
        path: &str,
        range: Option<(u64, u64)>,
        body: Option<&[u8]>,
        image: bool,
        now: u64,
        shared: &Shared,
        client: &Client,
    ) -> Answer {
        if !self.network_up(now, shared) {
            return Answer::Failed(Reason::Connect);
        }
        if self.lossy() {
            return Answer::Failed(Reason::Timeout);
        }
        let want = range.map_or(0, |(a, b)| b + 1 - a);
        let drop_after = (image && self.trouble == Some(Trouble::BadWifi) && self.rng.unit() < 0.5)
            .then(|| self.rng.range(0, want.max(1)) as usize);
        let version = self.installed().unwrap_or_default();
        let sent = client
            .send(&Request {
                method,
                path,
                device: &self.id,
                version: &version,
                range,
                body,
                max_body: if image {
                    SIM.slot_size as usize
                } else {
                    ota_core::manifest::MAX_LEN
                },
                drop_after,
            })
            .await;
        match sent {
            Ok(resp) => Answer::Response(resp),
            Err(r) => Answer::Failed(r),
        }
    }
}

/// What the network did with a request.
enum Answer {
    Response(super::net::Response),
    Failed(Reason),
}
