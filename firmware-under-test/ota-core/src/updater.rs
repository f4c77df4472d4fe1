//! The device's whole life after the bootloader, as one sans-IO state machine: app start and
//! drills, check-in cadence, the check-in answer, manifest fetch, download with retries,
//! backoff and `Retry-After`, an ignored `Range`, verification, staging, the trial window and
//! the watchdog. Every board runs this same code — the simulated board process, the Pico W app,
//! each device of the simulated fleet and the power-cut sweep's replay — and differs only in
//! the driver loop around it (STYLE.md §5, after quinn-proto).
//!
//! The machine owns no I/O, no clock and no allocation. Time is an argument (`now`, in
//! milliseconds on any monotonic clock the host has: a real one or a simulated one). Flash
//! writes go through [`Device`] (its write ordering is what the power-cut sweeps test), console
//! lines through [`Console`], and large buffers (the manifest, one chunk) are the host's
//! ([`Buffers`]), so the machine itself stays small: the fleet holds ten thousand of them.
//!
//! # Call order
//! ```text
//! let mut up = Updater::start(&mut io, boot, app, &info, policy, now)?;
//! loop {
//!     while let Some(action) = up.poll_action() { host.perform(action) }  // may feed inputs
//!     // sleep until up.next_deadline() or until the network has something, then:
//!     up.handle(&mut io, Input::Timeout, now)?;
//! }
//! ```
//! Performing [`Action::Fetch`] or [`Action::SendCheckin`] means: send the request, then hand
//! the machine [`Input::ResponseHead`], the body in any number of [`Input::BodyBytes`] while
//! [`Updater::wants_body`] says so, and [`Input::BodyEnd`] at the end of the body (or
//! [`Input::NetError`] when the exchange failed at any point). A flash error returned by
//! [`Updater::handle`] means the board must reset (on the simulated flash: the power was cut).
//! [`Action::Reset`] is final: the host resets the board and, after the bootloader, starts a new
//! machine — RAM does not survive a reset.

use embedded_storage::nor_flash::NorFlash;

use crate::checkin::{CheckinRequest, CheckinResponse, MAX_URL_LEN};
use crate::console::{CheckinFailure, Console, Line, Why};
use crate::device::{Boot, Device, Error, Next, Reset};
use crate::download::{Download, Retry};
use crate::http::ResponseHead;
use crate::image::ImageHeader;
use crate::manifest::{self, Manifest};
use crate::payload::{Drill, PayloadError};
use crate::state::Mode;
use crate::{Reason, Version};

/// Longest check-in answer body accepted.
pub const MAX_CHECKIN_BODY: usize = 4096;

/// Longest URL the machine fetches: a manifest URL with a slot suffix, or an image URL.
pub const MAX_FETCH_URL: usize = MAX_URL_LEN + 2;

/// Downloads of one offered release that may fail (retries exhausted) before the device stops
/// fetching it until the server offers something else (or the board restarts).
pub const MAX_OFFER_ATTEMPTS: u8 = 3;

/// An offered release whose downloads failed: reported at every check-in (`last_error`),
/// with the check-ins spaced out, and declined once it failed [`MAX_OFFER_ATTEMPTS`] times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Trouble {
    /// FNV-1a of the offered manifest URL.
    offer: u32,
    version: Version,
    attempts: u8,
    /// The failure that ended the last attempt.
    cause: Reason,
}

/// FNV-1a, 32 bits: tells offered URLs apart without keeping them.
fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811C_9DC5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Timing and board policy: every wait the device does is derived from these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Time between check-ins.
    pub checkin_interval_ms: u64,
    /// A trial image that has not confirmed within this time after app start is reset by the
    /// watchdog.
    pub trial_window_ms: u64,
    /// Watchdog period: a hung app is reset after it.
    pub watchdog_ms: u64,
    /// A request with no progress for this long has timed out.
    pub net_timeout_ms: u64,
    /// Hardware revision (some drills crash only on one).
    pub hw_rev: char,
    /// Execute-in-place boards: a release is published in two variants, one linked for each
    /// slot, and the board asks for `<manifest url>-a` or `-b` for its inactive slot.
    pub slot_variants: bool,
    /// Spread check-in waits by ±10 % with this seed (a fleet must not check in in lockstep);
    /// `None`: exact waits.
    pub jitter_seed: Option<u64>,
}

/// The defaults the simulated board ships with.
pub const SIM_POLICY: Policy = Policy {
    checkin_interval_ms: 100,
    trial_window_ms: 800,
    watchdog_ms: 300,
    net_timeout_ms: 700,
    hw_rev: 'a',
    slot_variants: false,
    jitter_seed: None,
};

/// What the machine needs from the host's RAM.
pub trait Buffers {
    /// `len` bytes to receive a manifest into, kept unchanged until the update ends; `None`
    /// when the host cannot hold that much.
    fn manifest_room(&mut self, len: usize) -> Option<&mut [u8]>;
    /// The first `len` bytes of the room given by the last [`Buffers::manifest_room`].
    fn manifest(&self, len: usize) -> &[u8];
    /// `len` bytes for one chunk (or one check-in answer), kept only within one response.
    fn chunk_room(&mut self, len: usize) -> Option<&mut [u8]>;
    /// The first `len` bytes of the chunk room.
    fn chunk(&self, len: usize) -> &[u8];
}

/// Buffers in two fixed slices (a board's static RAM).
pub struct SliceBuffers<'b> {
    pub manifest: &'b mut [u8],
    pub chunk: &'b mut [u8],
}

impl Buffers for SliceBuffers<'_> {
    fn manifest_room(&mut self, len: usize) -> Option<&mut [u8]> {
        self.manifest.get_mut(..len)
    }

    fn manifest(&self, len: usize) -> &[u8] {
        self.manifest.get(..len).unwrap_or_default()
    }

    fn chunk_room(&mut self, len: usize) -> Option<&mut [u8]> {
        self.chunk.get_mut(..len)
    }

    fn chunk(&self, len: usize) -> &[u8] {
        self.chunk.get(..len).unwrap_or_default()
    }
}

/// Buffers that grow on demand and can be given back between updates (host drivers).
#[cfg(any(feature = "std", test))]
#[derive(Debug, Default)]
pub struct VecBuffers {
    manifest: Vec<u8>,
    chunk: Vec<u8>,
}

#[cfg(any(feature = "std", test))]
impl VecBuffers {
    /// Frees both buffers (the fleet does this while its device is not updating).
    pub fn release(&mut self) {
        self.manifest = Vec::new();
        self.chunk = Vec::new();
    }

    /// Bytes held.
    pub fn held(&self) -> usize {
        self.manifest.capacity() + self.chunk.capacity()
    }
}

#[cfg(any(feature = "std", test))]
impl Buffers for VecBuffers {
    fn manifest_room(&mut self, len: usize) -> Option<&mut [u8]> {
        if len > manifest::MAX_LEN {
            return None;
        }
        if self.manifest.len() != len {
            self.manifest.clear();
            self.manifest.resize(len, 0);
        }
        Some(&mut self.manifest)
    }

    fn manifest(&self, len: usize) -> &[u8] {
        self.manifest.get(..len).unwrap_or_default()
    }

    fn chunk_room(&mut self, len: usize) -> Option<&mut [u8]> {
        if len > self.chunk.len() {
            self.chunk.resize(len, 0);
        }
        self.chunk.get_mut(..len)
    }

    fn chunk(&self, len: usize) -> &[u8] {
        self.chunk.get(..len).unwrap_or_default()
    }
}

/// A board's extra check of a staged image before it is activated (e.g. an execute-in-place
/// board checks that the image is linked for the slot it sits in).
pub type BoardCheck<F> = fn(&mut F, u8, &ImageHeader) -> Result<(), Reason>;

/// A board check that adds nothing.
pub fn no_board_check<F>(_: &mut F, _: u8, _: &ImageHeader) -> Result<(), Reason> {
    Ok(())
}

/// What the machine works with during one call: the device over its flash, the host's buffers
/// and its console.
pub struct Io<'a, 'c, F> {
    pub dev: &'a mut Device<'c, F>,
    pub bufs: &'a mut dyn Buffers,
    pub out: &'a mut dyn Console,
    pub board_check: BoardCheck<F>,
}

/// Who this device is, for its check-ins.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    pub device: &'a str,
    /// Boots since power-on (reported at check-in outside a trial).
    pub boots: u32,
}

/// Something that happened, handed to [`Updater::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<'a> {
    /// The network the host was asked to bring up ([`Action::StartNetwork`]) is up.
    NetworkUp,
    /// The head of the response to the request in flight.
    ResponseHead(ResponseHead),
    /// Body bytes of that response, in order.
    BodyBytes(&'a [u8]),
    /// The body ended (Content-Length reached, or the server closed the connection).
    BodyEnd,
    /// The request in flight failed (no connection, a timeout, a dropped connection).
    NetError(Reason),
    /// Time passed (the host woke at [`Updater::next_deadline`], or for any other reason).
    Timeout,
}

/// What the host must do next, from [`Updater::poll_action`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Action<'a> {
    /// Bring the network up, then hand [`Input::NetworkUp`].
    StartNetwork,
    /// POST this check-in to `/v1/checkin`.
    SendCheckin(CheckinRequest),
    /// GET `url`, with `Range: bytes=from-to` when given.
    Fetch {
        url: &'a str,
        range: Option<(u32, u32)>,
    },
    /// Nothing to do before `until` (or before the network delivers something).
    Wait { until: u64 },
    /// The crash-in-init drill: crash the app for real (a board panics), then reset with
    /// [`Reset::Panic`].
    CrashDrill,
    /// The hang drill: the app stops feeding the watchdog. A board with a hardware watchdog
    /// hangs here; others keep handing [`Input::Timeout`] until the machine's watchdog resets.
    Hang,
    /// Reset the board for this reason. Final.
    Reset(Reset),
}

/// A request in flight and what has arrived of its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Exchange {
    /// No progress by then: the request timed out.
    deadline: u64,
    head: Option<ResponseHead>,
    /// Body bytes received.
    received: u64,
    /// Body bytes to drop before the data wanted (a full body after an ignored Range).
    skip: u64,
    /// Bytes of the chunk (or check-in answer) being assembled.
    fill: usize,
}

impl Exchange {
    fn new(now: u64, policy: &Policy) -> Self {
        Self {
            deadline: now.saturating_add(policy.net_timeout_ms),
            head: None,
            received: 0,
            skip: 0,
            fill: 0,
        }
    }

    fn status(&self) -> u16 {
        self.head.map_or(0, |h| h.status)
    }

    fn retry_after(&self) -> Option<u64> {
        self.head.and_then(|h| h.retry_after_s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// The slow-boot drill: init takes until then.
    SlowBoot { until: u64 },
    /// Waiting for the host to bring the network up.
    NetworkStarting,
    /// The app runs without a network (drill): only the watchdog can end this.
    Offline,
    /// Next check-in at that time.
    Idle { checkin_at: u64 },
    /// A check-in is in flight.
    Checkin(Exchange),
    /// The manifest is being fetched.
    Manifest(Exchange),
    /// The image is being fetched; `exchange` is `None` while waiting to retry until `retry_at`.
    Download {
        dl: Download,
        manifest_len: usize,
        exchange: Option<Exchange>,
        retry_at: u64,
    },
    /// The hang drill: the watchdog fires then.
    Hung { until: u64 },
    /// Final: the board resets.
    Resetting(Reset),
}

/// The update state machine of one running image.
pub struct Updater {
    policy: Policy,
    boot: Boot,
    boots: u32,
    device: heapless::String<{ crate::checkin::MAX_DEVICE_LEN }>,
    /// App start (the trial window runs from here).
    started: u64,
    state: State,
    /// The state's action is still to be handed out.
    pending: bool,
    /// A one-off action to hand out before the state's own (drills).
    once: Option<Action<'static>>,
    /// The URL being fetched (manifest or image).
    url: heapless::String<MAX_FETCH_URL>,
    /// The offer being worked on: FNV-1a of its manifest URL, and its version once known.
    offer: (u32, Option<Version>),
    trouble: Option<Trouble>,
    rng: u64,
}

/// `reason` as printed in `reason=`: `status-<code>` for a bad status.
fn why(reason: Reason, status: u16) -> Why {
    match reason {
        Reason::Status => Why::status(status),
        r => Why::new(r),
    }
}

impl Updater {
    /// The app starts on the image the bootloader chose. `app` is what the image's entry point
    /// holds (its drill) or why it holds nothing runnable. Prints the app's start lines and
    /// plays the drill.
    pub fn start<F: NorFlash>(
        io: &mut Io<'_, '_, F>,
        boot: Boot,
        app: Result<Drill, PayloadError>,
        who: &Identity<'_>,
        policy: Policy,
        now: u64,
    ) -> Result<Self, F::Error> {
        let mut up = Self {
            policy,
            boot,
            boots: who.boots,
            device: crate::checkin::bounded(who.device),
            started: now,
            state: State::Offline,
            pending: false,
            once: None,
            url: heapless::String::new(),
            offer: (0, None),
            trouble: None,
            rng: policy.jitter_seed.unwrap_or(0),
        };
        let v = up.version();
        let drill = match app {
            Ok(d) => d,
            Err(e) => {
                io.out.line(&Line::AppCrash {
                    version: v,
                    why: e.as_str(),
                });
                up.enter(State::Resetting(Reset::Panic));
                return Ok(up);
            }
        };
        io.out.line(&Line::AppStarting { version: v, drill });
        if drill.crashes_on(policy.hw_rev) {
            io.out.line(&Line::AppCrashInInit { version: v });
            up.once = Some(Action::CrashDrill);
            up.enter(State::Resetting(Reset::Panic));
            return Ok(up);
        }
        match drill {
            Drill::Hang => {
                io.out.line(&Line::AppHang { version: v });
                up.once = Some(Action::Hang);
                up.enter(State::Hung {
                    until: now.saturating_add(policy.watchdog_ms),
                });
                return Ok(up);
            }
            Drill::SlowBoot => {
                up.enter(State::SlowBoot {
                    until: now.saturating_add(policy.trial_window_ms / 2),
                });
                return Ok(up);
            }
            Drill::NoNetwork => {
                io.out.line(&Line::AppNetworkDisabled { version: v });
                up.early_confirm(io)?;
                io.out.line(&Line::AppRunning { version: v });
                up.enter(State::Offline);
                return Ok(up);
            }
            Drill::None | Drill::CrashInInit | Drill::CrashOnRevB => {}
        }
        up.init_done(io)?;
        Ok(up)
    }

    /// What the bootloader booted, with the state record as this machine last wrote it.
    pub fn boot(&self) -> &Boot {
        &self.boot
    }

    /// The version running.
    pub fn version(&self) -> Version {
        self.boot.header.version
    }

    /// The machine decided to reset the board, and why.
    pub fn reset(&self) -> Option<Reset> {
        match self.state {
            State::Resetting(r) => Some(r),
            _ => None,
        }
    }

    /// The response in flight still has bytes the machine wants; when `false`, the host stops
    /// reading and closes the connection.
    pub fn wants_body(&self) -> bool {
        match &self.state {
            State::Checkin(ex) | State::Manifest(ex) => ex.head.is_some(),
            State::Download { exchange, .. } => exchange.is_some_and(|ex| ex.head.is_some()),
            _ => false,
        }
    }

    /// An update is in progress: the host must keep the manifest buffer.
    pub fn is_updating(&self) -> bool {
        matches!(self.state, State::Manifest(_) | State::Download { .. })
    }

    /// When the machine next needs [`Input::Timeout`] (`None`: only an input wakes it).
    pub fn next_deadline(&self) -> Option<u64> {
        let state = match &self.state {
            State::SlowBoot { until } | State::Hung { until } => Some(*until),
            State::Idle { checkin_at } => Some(*checkin_at),
            State::Checkin(ex) | State::Manifest(ex) => Some(ex.deadline),
            State::Download {
                exchange, retry_at, ..
            } => Some(exchange.map_or(*retry_at, |ex| ex.deadline)),
            State::NetworkStarting | State::Offline | State::Resetting(_) => None,
        };
        let trial = self.trial_deadline();
        match (state, trial) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next thing for the host to do.
    pub fn poll_action(&mut self) -> Option<Action<'_>> {
        if let Some(a) = self.once.take() {
            return Some(a);
        }
        if !self.pending {
            return None;
        }
        self.pending = false;
        match &self.state {
            State::NetworkStarting => Some(Action::StartNetwork),
            State::Checkin(_) => {
                let mut req = self.boot.checkin_request(&self.device, self.boots);
                if let Some(t) = self.trouble {
                    req.last_error = Some(crate::checkin::bounded(t.cause.as_str()));
                }
                Some(Action::SendCheckin(req))
            }
            State::Manifest(_) => Some(Action::Fetch {
                url: &self.url,
                range: None,
            }),
            State::Download {
                dl,
                exchange: Some(_),
                ..
            } => Some(Action::Fetch {
                url: &self.url,
                range: Some((dl.offset(), dl.size() - 1)),
            }),
            State::Resetting(r) => Some(Action::Reset(*r)),
            _ => self.next_deadline().map(|until| Action::Wait { until }),
        }
    }

    /// Hands the machine what happened at `now`.
    pub fn handle<F: NorFlash>(
        &mut self,
        io: &mut Io<'_, '_, F>,
        input: Input<'_>,
        now: u64,
    ) -> Result<(), F::Error> {
        if matches!(self.state, State::Resetting(_)) {
            return Ok(());
        }
        if self.trial_deadline().is_some_and(|t| now >= t) {
            // The watchdog resets a trial image that never proved itself.
            io.out.line(&Line::WatchdogExpired);
            self.enter(State::Resetting(Reset::Watchdog));
            return Ok(());
        }
        match input {
            Input::Timeout => self.tick(io, now),
            Input::NetworkUp => {
                if self.state == State::NetworkStarting {
                    let v = self.version();
                    io.out.line(&Line::AppNetworkUp { version: v });
                    io.out.line(&Line::AppRunning { version: v });
                    self.enter(State::Idle { checkin_at: now });
                    self.tick(io, now)?;
                }
                Ok(())
            }
            Input::ResponseHead(head) => self.on_head(io, head, now),
            Input::BodyBytes(bytes) => self.on_body(io, bytes, now),
            Input::BodyEnd => self.on_end(io, now),
            Input::NetError(r) => self.on_failure(io, r, now),
        }
    }

    fn enter(&mut self, state: State) {
        self.state = state;
        self.pending = true;
    }

    fn trial_deadline(&self) -> Option<u64> {
        (self.boot.state.mode == Mode::Trial && !matches!(self.state, State::Hung { .. }))
            .then(|| self.started.saturating_add(self.policy.trial_window_ms))
    }

    /// `base` ms, spread by ±10 % when the policy asks for jitter (SplitMix64).
    fn jitter(&mut self, base: u64) -> u64 {
        if self.policy.jitter_seed.is_none() {
            return base;
        }
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        base - base / 10 + z % (base / 5 + 1)
    }

    /// When to check in again after a check-in at `now` that changed nothing (`failed`: it
    /// got no answer; a trial image then retries sooner, inside its window).
    fn checkin_later(&mut self, now: u64, failed: bool) -> State {
        let mut wait = self.policy.checkin_interval_ms;
        if failed && self.boot.state.mode == Mode::Trial {
            wait = wait.min(self.policy.trial_window_ms / 8).max(1);
        }
        if let Some(t) = self.trouble {
            // Back off while an offered release keeps failing: 2x, 4x, 8x the interval.
            wait = wait.saturating_mul(1 << t.attempts.min(3));
        }
        State::Idle {
            checkin_at: now.saturating_add(self.jitter(wait)),
        }
    }

    /// The early-confirm test quirk: a trial image confirms itself before proving anything.
    fn early_confirm<F: NorFlash>(&mut self, io: &mut Io<'_, '_, F>) -> Result<(), F::Error> {
        if io.dev.cfg.quirks.early_confirm && self.boot.state.mode == Mode::Trial {
            let header = self.boot.header.clone();
            let _ = split(io.dev.confirm(&mut self.boot.state, &header))?;
            io.out.line(&Line::AppConfirmed {
                version: self.version(),
            });
        }
        Ok(())
    }

    /// Init finished (after any slow-boot delay): the network comes up next.
    fn init_done<F: NorFlash>(&mut self, io: &mut Io<'_, '_, F>) -> Result<(), F::Error> {
        self.early_confirm(io)?;
        self.enter(State::NetworkStarting);
        Ok(())
    }

    fn tick<F: NorFlash>(&mut self, io: &mut Io<'_, '_, F>, now: u64) -> Result<(), F::Error> {
        match &mut self.state {
            State::SlowBoot { until } if now >= *until => self.init_done(io)?,
            State::Hung { until } if now >= *until => {
                io.out.line(&Line::WatchdogExpired);
                self.enter(State::Resetting(Reset::Watchdog));
            }
            State::Idle { checkin_at } if now >= *checkin_at => {
                self.enter(State::Checkin(Exchange::new(now, &self.policy)));
            }
            State::Checkin(ex) | State::Manifest(ex) if now >= ex.deadline => {
                self.on_failure(io, Reason::Timeout, now)?;
            }
            State::Download {
                exchange: Some(ex), ..
            } if now >= ex.deadline => self.on_failure(io, Reason::Timeout, now)?,
            State::Download {
                dl,
                exchange: exchange @ None,
                retry_at,
                ..
            } if now >= *retry_at => {
                dl.resumed(io.out);
                *exchange = Some(Exchange::new(now, &self.policy));
                self.pending = true;
            }
            _ => {}
        }
        Ok(())
    }

    fn on_head<F: NorFlash>(
        &mut self,
        io: &mut Io<'_, '_, F>,
        head: ResponseHead,
        now: u64,
    ) -> Result<(), F::Error> {
        let deadline = now.saturating_add(self.policy.net_timeout_ms);
        match &mut self.state {
            State::Checkin(ex) if ex.head.is_none() => {
                ex.head = Some(head);
                ex.deadline = deadline;
                if head.status != 200 {
                    return self.on_failure(io, Reason::Status, now);
                }
                if head
                    .content_length
                    .is_none_or(|n| n > MAX_CHECKIN_BODY as u64)
                {
                    return self.on_failure(io, Reason::BadContentLength, now);
                }
            }
            State::Manifest(ex) if ex.head.is_none() => {
                ex.head = Some(head);
                ex.deadline = deadline;
                if head.status != 200 {
                    return self.on_failure(io, Reason::Status, now);
                }
                let room = head
                    .content_length
                    .filter(|n| *n <= manifest::MAX_LEN as u64)
                    .and_then(|n| io.bufs.manifest_room(n as usize));
                if room.is_none() {
                    return self.on_failure(io, Reason::BadContentLength, now);
                }
            }
            State::Download {
                dl,
                manifest_len,
                exchange: Some(ex),
                ..
            } if ex.head.is_none() => {
                ex.head = Some(head);
                ex.deadline = deadline;
                let raw = io.bufs.manifest(*manifest_len);
                let checked = match Manifest::parse(raw) {
                    Ok(m) => dl.check_head(&m, &head),
                    Err(_) => Err(Reason::BadManifest),
                };
                match checked {
                    Ok(skip) => ex.skip = skip,
                    Err(r) => return self.on_failure(io, r, now),
                }
            }
            // A response nobody asked for (or a second head): ignored.
            _ => {}
        }
        Ok(())
    }

    fn on_body<F: NorFlash>(
        &mut self,
        io: &mut Io<'_, '_, F>,
        bytes: &[u8],
        now: u64,
    ) -> Result<(), F::Error> {
        if !self.wants_body() {
            return Ok(());
        }
        let deadline = now.saturating_add(self.policy.net_timeout_ms);
        let checkin = matches!(self.state, State::Checkin(_));
        let failed = match &mut self.state {
            State::Checkin(ex) | State::Manifest(ex) => {
                ex.deadline = deadline;
                let len = ex.head.and_then(|h| h.content_length).unwrap_or(0);
                let at = ex.received as usize;
                ex.received += bytes.len() as u64;
                if ex.received > len {
                    Some(Reason::LongBody)
                } else {
                    let room = if checkin {
                        io.bufs.chunk_room(len as usize)
                    } else {
                        io.bufs.manifest_room(len as usize)
                    };
                    if let Some(dst) = room.and_then(|r| r.get_mut(at..at + bytes.len())) {
                        dst.copy_from_slice(bytes);
                    }
                    None
                }
            }
            State::Download {
                dl,
                manifest_len,
                exchange: Some(ex),
                ..
            } => {
                ex.deadline = deadline;
                let slot = self.boot.state.inactive();
                match receive(io, dl, ex, *manifest_len, slot, bytes) {
                    Ok(()) if dl.done() => return self.finish(io, now),
                    Ok(()) => None,
                    Err(Error::Flash(e)) => return Err(e),
                    Err(Error::Refused(r)) => Some(r),
                    Err(Error::Bricked) => Some(Reason::Flash),
                }
            }
            _ => None,
        };
        match failed {
            Some(r) => self.on_failure(io, r, now),
            None => Ok(()),
        }
    }

    fn on_end<F: NorFlash>(&mut self, io: &mut Io<'_, '_, F>, now: u64) -> Result<(), F::Error> {
        match &self.state {
            State::Checkin(ex) if ex.head.is_some() => {
                let len = ex.head.and_then(|h| h.content_length).unwrap_or(0);
                if ex.received < len {
                    return self.on_failure(io, Reason::ShortBody, now);
                }
                match CheckinResponse::decode(io.bufs.chunk(len as usize)) {
                    Ok(answer) => self.on_answer(io, &answer, now),
                    _ => {
                        io.out.line(&Line::CheckinFailed {
                            why: CheckinFailure::Malformed,
                        });
                        let later = self.checkin_later(now, true);
                        self.enter(later);
                        Ok(())
                    }
                }
            }
            State::Manifest(ex) if ex.head.is_some() => {
                let len = ex.head.and_then(|h| h.content_length).unwrap_or(0);
                if ex.received < len {
                    return self.on_failure(io, Reason::ShortBody, now);
                }
                self.on_manifest(io, len as usize, now)
            }
            State::Download {
                exchange: Some(ex), ..
            } if ex.head.is_some() => self.on_failure(io, Reason::ShortBody, now),
            _ => Ok(()),
        }
    }

    /// The check-in was answered.
    fn on_answer<F: NorFlash>(
        &mut self,
        io: &mut Io<'_, '_, F>,
        answer: &CheckinResponse,
        now: u64,
    ) -> Result<(), F::Error> {
        io.out.line(&Line::Checkin {
            version: self.version(),
            state: self.boot.checkin_state(),
            command: answer.command,
        });
        let answered = match split(io.dev.answer(&mut self.boot, answer, io.out))? {
            Ok(a) => a,
            Err(r) => return self.on_failure(io, r, now),
        };
        match answered.next {
            Next::CheckInLater => {
                let later = self.checkin_later(now, false);
                self.enter(later);
            }
            Next::ResetForRollback => self.enter(State::Resetting(Reset::Rollback)),
            Next::Update => {
                let offered = answer.manifest_url.as_deref().unwrap_or_default();
                let offer = fnv1a(offered);
                if let Some(t) = self.trouble.filter(|t| t.offer == offer)
                    && t.attempts >= MAX_OFFER_ATTEMPTS
                {
                    // Given up on this release: decline it until something else is offered.
                    io.out.line(&Line::UpdateRefused {
                        version: Some(t.version),
                        reason: t.cause,
                    });
                    let later = self.checkin_later(now, false);
                    self.enter(later);
                    return Ok(());
                }
                self.offer = (offer, None);
                self.url = crate::checkin::bounded(offered);
                if self.policy.slot_variants {
                    let suffix = if self.boot.state.inactive() & 1 == 0 {
                        "-a"
                    } else {
                        "-b"
                    };
                    let _ = self.url.push_str(suffix);
                }
                self.enter(State::Manifest(Exchange::new(now, &self.policy)));
            }
        }
        Ok(())
    }

    /// The manifest arrived (`len` bytes in the host's buffer).
    fn on_manifest<F: NorFlash>(
        &mut self,
        io: &mut Io<'_, '_, F>,
        len: usize,
        now: u64,
    ) -> Result<(), F::Error> {
        let running = self.version();
        let raw = io.bufs.manifest(len);
        let m = match io
            .dev
            .accept_manifest(&mut self.boot.state, running, raw, io.out)
        {
            Ok(m) => m,
            Err(Error::Flash(e)) => return Err(e),
            Err(_) => {
                let later = self.checkin_later(now, false);
                self.enter(later);
                return Ok(());
            }
        };
        let next = match split(io.dev.begin_download(&mut self.boot.state, &m))? {
            Ok(next) => next,
            Err(r) => return self.on_failure(io, r, now),
        };
        let dl = Download::start(&m, next, io.out);
        self.url = crate::checkin::bounded(m.url());
        self.offer.1 = Some(m.version());
        let done = dl.done();
        self.enter(State::Download {
            dl,
            manifest_len: len,
            exchange: Some(Exchange::new(now, &self.policy)),
            retry_at: now,
        });
        if done {
            return self.finish(io, now);
        }
        Ok(())
    }

    /// Every chunk is in: verify and stage, or record the refusal.
    fn finish<F: NorFlash>(&mut self, io: &mut Io<'_, '_, F>, now: u64) -> Result<(), F::Error> {
        let State::Download {
            dl, manifest_len, ..
        } = &self.state
        else {
            return Ok(());
        };
        dl.complete(io.out);
        let running = self.version();
        let raw = io.bufs.manifest(*manifest_len);
        let staged = match Manifest::parse(raw) {
            Ok(m) => split(io.dev.finish_update(
                &mut self.boot.state,
                &m,
                running,
                io.board_check,
                io.out,
            ))?
            .unwrap_or(false),
            Err(_) => false,
        };
        if staged {
            self.enter(State::Resetting(Reset::Update));
        } else {
            let later = self.checkin_later(now, false);
            self.enter(later);
        }
        Ok(())
    }

    /// The exchange in flight failed for `reason`.
    fn on_failure<F: NorFlash>(
        &mut self,
        io: &mut Io<'_, '_, F>,
        reason: Reason,
        now: u64,
    ) -> Result<(), F::Error> {
        match &mut self.state {
            State::Checkin(ex) => {
                io.out.line(&Line::CheckinFailed {
                    why: CheckinFailure::Why(why(reason, ex.status())),
                });
                let later = self.checkin_later(now, true);
                self.enter(later);
            }
            State::Manifest(ex) => {
                io.out.line(&Line::ManifestUnavailable {
                    why: why(reason, ex.status()),
                });
                let later = self.checkin_later(now, false);
                self.enter(later);
            }
            State::Download {
                dl,
                exchange,
                retry_at,
                ..
            } => {
                let (retry_after, status) =
                    exchange.map_or((None, 0), |ex| (ex.retry_after(), ex.status()));
                match dl.failed(reason, retry_after, status, io.out) {
                    Retry::After(ms) => {
                        *exchange = None;
                        *retry_at = now.saturating_add(ms);
                        self.pending = true;
                    }
                    Retry::GiveUp => {
                        self.gave_up(reason);
                        let later = self.checkin_later(now, false);
                        self.enter(later);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Updater {
    /// A download of the current offer ran out of retries, the last failure being `cause`.
    fn gave_up(&mut self, cause: Reason) {
        let (offer, version) = self.offer;
        let attempts = match self.trouble {
            Some(t) if t.offer == offer => t.attempts.saturating_add(1),
            _ => 1,
        };
        self.trouble = Some(Trouble {
            offer,
            version: version.unwrap_or_default(),
            attempts,
            cause,
        });
    }
}

/// Takes body bytes of an image response: drops what the server sent before the data wanted,
/// assembles chunks in the host's chunk buffer, and verifies and writes each complete one.
fn receive<F: NorFlash>(
    io: &mut Io<'_, '_, F>,
    dl: &mut Download,
    ex: &mut Exchange,
    manifest_len: usize,
    slot: u8,
    mut bytes: &[u8],
) -> Result<(), Error<F::Error>> {
    ex.received += bytes.len() as u64;
    let skip = ex.skip.min(bytes.len() as u64);
    ex.skip -= skip;
    bytes = bytes.get(skip as usize..).unwrap_or_default();
    while !bytes.is_empty() && !dl.done() {
        let m = Manifest::parse(io.bufs.manifest(manifest_len))
            .map_err(|_| Error::Refused(Reason::BadManifest))?;
        let (s, e) = m
            .chunk_range(dl.next())
            .ok_or(Error::Refused(Reason::BadManifest))?;
        let want = (e - s) as usize;
        let chunk = io
            .bufs
            .chunk_room(want)
            .ok_or(Error::Refused(Reason::TooLarge))?;
        let n = (want - ex.fill).min(bytes.len());
        chunk[ex.fill..ex.fill + n].copy_from_slice(&bytes[..n]);
        ex.fill += n;
        bytes = &bytes[n..];
        if ex.fill < want {
            break;
        }
        ex.fill = 0;
        let m = Manifest::parse(io.bufs.manifest(manifest_len))
            .map_err(|_| Error::Refused(Reason::BadManifest))?;
        io.dev
            .write_chunk(slot, &m, dl.next(), io.bufs.chunk(want))?;
        dl.chunk_written(io.out);
    }
    Ok(())
}

/// Splits a device result: a flash failure goes to the host, anything else is a reason.
fn split<T, E>(r: Result<T, Error<E>>) -> Result<Result<T, Reason>, E> {
    match r {
        Ok(t) => Ok(Ok(t)),
        Err(Error::Flash(e)) => Err(e),
        Err(Error::Refused(r)) => Ok(Err(r)),
        Err(Error::Bricked) => Ok(Err(Reason::Flash)),
    }
}

#[cfg(test)]
mod tests {
    //! The machine alone, against the in-memory server of [`crate::sweep`] on a simulated
    //! clock: no sockets, no sleeps.
    use crate::sweep::{End, MemServer, PointResult, Script, ServerFaults, Setup, drive};

    fn run(setup: &Setup, script: Script, faults: ServerFaults) -> (PointResult, MemServer<'_>) {
        let mut server = MemServer::new(setup, script);
        server.faults = faults;
        let r = drive(&mut server, &[], None);
        (r, server)
    }

    fn has(r: &PointResult, needle: &str) -> bool {
        r.console_tail.iter().any(|l| l.contains(needle))
    }

    fn setup() -> Setup {
        Setup::new(16 * 1024, 4096)
    }

    #[test]
    fn a_clean_update_is_one_image_request_and_ends_confirmed() {
        let setup = setup();
        let (r, server) = run(&setup, Script::Update, ServerFaults::default());
        assert_eq!(r.end, End::Updated, "{}: {:?}", r.detail, r.console_tail);
        assert_eq!(server.image_requests.len(), 1);
        assert!(has(&r, "app: v2.0.0 confirmed"), "{:?}", r.console_tail);
    }

    #[test]
    fn retry_after_is_honoured() {
        let setup = setup();
        let faults = ServerFaults {
            unavailable: 2,
            retry_after_s: Some(1),
            ..ServerFaults::default()
        };
        let (r, server) = run(&setup, Script::Update, faults);
        assert_eq!(r.end, End::Updated, "{}", r.detail);
        let times: Vec<u64> = server.image_requests.iter().map(|(t, _)| *t).collect();
        assert_eq!(times.len(), 3, "{times:?}");
        assert!(
            times[1] - times[0] >= 1000 && times[2] - times[1] >= 1000,
            "{times:?}"
        );
        assert!(has(
            &r,
            "download: error reason=status-503 retry=1/8 in=1000ms"
        ));
        // Without Retry-After the backoff doubles from 50 ms.
        let faults = ServerFaults {
            unavailable: 3,
            ..ServerFaults::default()
        };
        let (r, server) = run(&setup, Script::Update, faults);
        assert_eq!(r.end, End::Updated, "{}", r.detail);
        let gaps: Vec<u64> = server
            .image_requests
            .windows(2)
            .map(|w| w[1].0 - w[0].0)
            .collect();
        assert_eq!(gaps, [50, 100, 200]);
    }

    #[test]
    fn retries_run_out_then_a_later_check_in_completes_the_update() {
        let setup = setup();
        let faults = ServerFaults {
            unavailable: crate::download::MAX_RETRIES + 1,
            ..ServerFaults::default()
        };
        let (r, server) = run(&setup, Script::Update, faults);
        assert_eq!(r.end, End::Updated, "{}", r.detail);
        assert_eq!(
            server.image_requests.len() as u32,
            crate::download::MAX_RETRIES + 2
        );
        assert!(
            has(&r, "update: failed reason=retries-exhausted"),
            "{:?}",
            r.console_tail
        );
    }

    #[test]
    fn an_ignored_range_restarts_from_zero_and_completes() {
        let setup = setup();
        let faults = ServerFaults {
            ignore_range: true,
            truncations: 1,
            cut_after: 9000,
            ..ServerFaults::default()
        };
        let (r, server) = run(&setup, Script::Update, faults);
        assert_eq!(r.end, End::Updated, "{}: {:?}", r.detail, r.console_tail);
        assert!(has(&r, "download: error reason=ignored-range"));
        // Cut after two chunks: the resumed requests ask from chunk 2, the server sends all.
        let ranges: Vec<_> = server.image_requests.iter().map(|(_, r)| *r).collect();
        let total = setup.v2.len() as u32;
        assert_eq!(ranges.first(), Some(&Some((0, total - 1))));
        assert!(
            ranges[1..].iter().all(|r| *r == Some((8192, total - 1))),
            "{ranges:?}"
        );
        assert_eq!(ranges.len(), 3, "{ranges:?}");
    }

    #[test]
    fn a_stall_times_out_and_the_download_resumes() {
        let setup = setup();
        let faults = ServerFaults {
            truncations: 1,
            cut_after: 5000,
            stalls: 1,
            ..ServerFaults::default()
        };
        let (r, server) = run(&setup, Script::Update, faults);
        assert_eq!(r.end, End::Updated, "{}: {:?}", r.detail, r.console_tail);
        // The first request stalls, the second is cut after one chunk.
        assert!(has(&r, "download: error reason=timeout retry=1/8"));
        assert!(has(&r, "download: error reason=short-body retry=2/8"));
        assert!(has(&r, "download: resume offset=4096 chunk=1/"));
        let times: Vec<u64> = server.image_requests.iter().map(|(t, _)| *t).collect();
        // The stalled request waited the network timeout, then the retry's backoff.
        assert_eq!(
            times[1] - times[0],
            super::SIM_POLICY.net_timeout_ms + 50,
            "{times:?}"
        );
    }

    #[test]
    fn a_trial_that_never_checks_in_is_reset_by_the_watchdog_and_reverted() {
        let setup = setup();
        let (r, _) = run(&setup, Script::FailedTrial, ServerFaults::default());
        assert_eq!(r.end, End::RolledBack, "{}", r.detail);
        assert!(has(&r, "watchdog: expired"));
        assert!(has(
            &r,
            "boot: otarig-boot board=sim device=sweep reset=watchdog"
        ));
        assert!(has(&r, "boot: revert to=1.0.0 reason=trial-exhausted"));
    }

    #[test]
    fn a_release_that_never_downloads_is_reported_and_then_declined() {
        let setup = setup();
        let faults = ServerFaults {
            corrupt: Some((5000, 8)),
            ..ServerFaults::default()
        };
        // A server that listens: one give-up, reported as chunk-hash, ends the offers.
        let (r, server) = run(&setup, Script::Refused, faults);
        assert_eq!(r.end, End::Unchanged, "{}: {:?}", r.detail, r.console_tail);
        let per_attempt = crate::download::MAX_RETRIES as usize + 1;
        assert_eq!(server.image_requests.len(), per_attempt);
        assert!(has(&r, "download: error reason=chunk-hash retry=1/8"));
        assert!(has(&r, "update: failed reason=retries-exhausted"));
        // A server that keeps offering it: the board stops fetching after its attempts and
        // declines the offer, naming the cause, from then on.
        let mut server = MemServer::new(&setup, Script::Refused);
        server.faults = faults;
        server.heed_reports = false;
        let r = drive(&mut server, &[], None);
        assert_eq!(
            server.image_requests.len(),
            per_attempt * usize::from(super::MAX_OFFER_ATTEMPTS),
            "{:?}",
            r.console_tail
        );
        assert!(
            has(&r, "update: refused version=2.0.0 reason=chunk-hash"),
            "{:?}",
            r.console_tail
        );
        // ... and spaces its check-ins out: 8x the interval after the third failure.
        let gaps: Vec<u64> = server
            .image_requests
            .windows(2)
            .map(|w| w[1].0 - w[0].0)
            .collect();
        assert!(
            gaps.iter()
                .any(|g| *g >= 8 * super::SIM_POLICY.checkin_interval_ms),
            "{gaps:?}"
        );
    }

    #[test]
    fn a_run_replays_exactly() {
        let setup = setup();
        let faults = ServerFaults {
            unavailable: 1,
            truncations: 1,
            cut_after: 7000,
            ..ServerFaults::default()
        };
        let (a, sa) = run(&setup, Script::Rollback, faults);
        let (b, sb) = run(&setup, Script::Rollback, faults);
        assert_eq!(a.end, End::RolledBack, "{}", a.detail);
        assert_eq!(
            (a.ops, a.boots, &a.console_tail),
            (b.ops, b.boots, &b.console_tail)
        );
        assert_eq!(sa.image_requests, sb.image_requests);
    }
}

#[cfg(test)]
mod machine_tests {
    //! The machine fed by hand, one input at a time: the paths the in-memory server never
    //! takes (bad answers, stalls, second heads), the buffers and the timing policy.
    use super::*;
    use crate::device::Lines;
    use crate::nor::TestFlash;
    use crate::sweep::Setup;

    /// A v1 board with its machine started and its network up.
    struct Bench {
        dev: Device<'static, TestFlash>,
        bufs: VecBuffers,
        out: Lines,
        up: Updater,
        now: u64,
    }

    impl Bench {
        fn new(setup: &Setup, policy: Policy) -> Self {
            Self::with(setup, policy, |_, _| {})
        }

        /// A bench whose device and boot `prepare` changes before the app starts.
        fn with(
            setup: &Setup,
            policy: Policy,
            prepare: impl FnOnce(&mut Device<'static, TestFlash>, &mut Boot),
        ) -> Self {
            let mut dev = Device::new(setup.fresh_flash(), setup.config());
            let mut out = Lines(Vec::new());
            let mut boot = dev.boot(&mut out).expect("boot");
            prepare(&mut dev, &mut boot);
            let mut bufs = VecBuffers::default();
            let mut io = Io {
                dev: &mut dev,
                bufs: &mut bufs,
                out: &mut out,
                board_check: no_board_check,
            };
            let who = Identity {
                device: "bench-1",
                boots: 1,
            };
            let up =
                Updater::start(&mut io, boot, Ok(Drill::None), &who, policy, 0).expect("start");
            let mut b = Self {
                dev,
                bufs,
                out,
                up,
                now: 0,
            };
            assert_eq!(b.next(), "start-network");
            b.feed(Input::NetworkUp);
            b
        }

        fn feed(&mut self, input: Input<'_>) {
            let mut io = Io {
                dev: &mut self.dev,
                bufs: &mut self.bufs,
                out: &mut self.out,
                board_check: no_board_check,
            };
            self.up.handle(&mut io, input, self.now).expect("flash");
        }

        /// The next action, as text.
        fn next(&mut self) -> String {
            match self.up.poll_action() {
                None => "none".into(),
                Some(Action::StartNetwork) => "start-network".into(),
                Some(Action::SendCheckin(r)) => {
                    format!("checkin last_error={:?}", r.last_error.as_deref())
                }
                Some(Action::Fetch { url, range }) => format!("fetch {url} {range:?}"),
                Some(Action::Wait { until }) => format!("wait {until}"),
                Some(Action::CrashDrill) => "crash".into(),
                Some(Action::Hang) => "hang".into(),
                Some(Action::Reset(r)) => format!("reset {}", r.as_str()),
            }
        }

        /// A whole response: head, body in one piece, end.
        fn respond(&mut self, status: u16, fields: &str, body: &[u8]) {
            let text = format!("HTTP/1.1 {status} X\r\n{fields}\r\n");
            let head = crate::http::parse_head(text.as_bytes()).expect("head");
            self.feed(Input::ResponseHead(head));
            if !body.is_empty() {
                self.feed(Input::BodyBytes(body));
            }
            self.feed(Input::BodyEnd);
        }

        fn answer(&mut self, json: &str) {
            let cl = format!("Content-Length: {}\r\n", json.len());
            self.respond(200, &cl, json.as_bytes());
        }

        fn last_line(&self) -> &str {
            self.out.0.last().map_or("", String::as_str)
        }

        /// Advances the clock to the machine's deadline and says so.
        fn wait(&mut self) {
            self.now = self.up.next_deadline().expect("a deadline");
            self.feed(Input::Timeout);
        }
    }

    const OFFER: &str = r#"{"command":"update","manifest_url":"/v1/manifest/v2"}"#;

    #[test]
    fn failed_check_ins_say_why_and_come_back_after_the_interval() {
        let setup = Setup::new(16 * 1024, 4096);
        let mut b = Bench::new(&setup, SIM_POLICY);
        assert_eq!(b.next(), "checkin last_error=None");
        b.respond(500, "Content-Length: 0\r\n", b"");
        assert_eq!(b.last_line(), "checkin: failed reason=status-500");
        assert_eq!(b.next(), "wait 100");
        b.wait();
        assert_eq!(b.next(), "checkin last_error=None");
        b.answer("{not json");
        assert_eq!(b.last_line(), "checkin: failed reason=malformed");
        b.wait();
        assert_eq!(b.next(), "checkin last_error=None");
        // A body shorter than its Content-Length.
        b.respond(200, "Content-Length: 40\r\n", br#"{"command":"none"}"#);
        assert_eq!(b.last_line(), "checkin: failed reason=short-body");
        b.wait();
        assert_eq!(b.next(), "checkin last_error=None");
        // No Content-Length, or one past the limit: refused before any body.
        b.respond(200, "", b"");
        assert_eq!(b.last_line(), "checkin: failed reason=bad-content-length");
        b.wait();
        let _ = b.next();
        b.respond(200, "Content-Length: 5000\r\n", b"");
        assert_eq!(b.last_line(), "checkin: failed reason=bad-content-length");
        b.wait();
        let _ = b.next();
        // More body than announced.
        b.feed(Input::ResponseHead(
            crate::http::parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n").expect("h"),
        ));
        b.feed(Input::BodyBytes(b"{}{}"));
        assert_eq!(b.last_line(), "checkin: failed reason=long-body");
        // A stall: the machine's own deadline ends the request.
        b.wait();
        assert_eq!(b.next(), "checkin last_error=None");
        let sent = b.now;
        b.wait();
        assert_eq!(b.now, sent + SIM_POLICY.net_timeout_ms);
        assert_eq!(b.last_line(), "checkin: failed reason=timeout");
    }

    #[test]
    fn a_manifest_that_cannot_be_fetched_is_retried_at_the_next_check_in() {
        let setup = Setup::new(16 * 1024, 4096);
        let mut b = Bench::new(&setup, SIM_POLICY);
        let _ = b.next();
        b.answer(OFFER);
        assert_eq!(b.next(), "fetch /v1/manifest/v2 None");
        assert!(b.up.is_updating());
        b.respond(404, "Content-Length: 0\r\n", b"");
        assert_eq!(
            b.last_line(),
            "update: manifest unavailable reason=status-404"
        );
        assert!(!b.up.is_updating());
        b.wait();
        let _ = b.next();
        b.answer(OFFER);
        let _ = b.next();
        let m = &setup.manifest;
        let cl = format!("Content-Length: {}\r\n", m.len() + 10);
        b.respond(200, &cl, m);
        assert_eq!(
            b.last_line(),
            "update: manifest unavailable reason=short-body"
        );
        b.wait();
        let _ = b.next();
        b.answer(OFFER);
        let _ = b.next();
        let cl = format!("Content-Length: {}\r\n", manifest::MAX_LEN + 1);
        b.respond(200, &cl, b"");
        assert_eq!(
            b.last_line(),
            "update: manifest unavailable reason=bad-content-length"
        );
        // And a good one starts the download.
        b.wait();
        let _ = b.next();
        b.answer(OFFER);
        let _ = b.next();
        let cl = format!("Content-Length: {}\r\n", m.len());
        b.respond(200, &cl, m);
        let total = setup.v2.len() as u32;
        assert_eq!(
            b.next(),
            format!("fetch /v1/images/v2.bin Some((0, {}))", total - 1)
        );
        assert!(!b.up.wants_body(), "no head yet");
        // A second head, or bytes before any head, change nothing.
        let partial = format!(
            "HTTP/1.1 206 P\r\nContent-Length: {total}\r\nContent-Range: bytes 0-{}/{total}\r\n\r\n",
            total - 1
        );
        b.feed(Input::BodyBytes(&setup.v2[..10]));
        let head = crate::http::parse_head(partial.as_bytes()).expect("head");
        b.feed(Input::ResponseHead(head));
        assert!(b.up.wants_body());
        let bogus = crate::http::parse_head(b"HTTP/1.1 503 X\r\n\r\n").expect("head");
        b.feed(Input::ResponseHead(bogus));
        assert!(b.up.wants_body(), "a second head is ignored");
        b.feed(Input::BodyBytes(&setup.v2));
        assert_eq!(b.next(), "reset update");
        assert_eq!(b.up.reset(), Some(Reset::Update));
        assert_eq!(b.last_line(), "update: staged version=2.0.0");
    }

    #[test]
    fn an_execute_in_place_board_asks_for_the_variant_of_its_inactive_slot() {
        let setup = Setup::new(16 * 1024, 4096);
        let policy = Policy {
            slot_variants: true,
            ..SIM_POLICY
        };
        let mut b = Bench::new(&setup, policy);
        let _ = b.next();
        b.answer(OFFER);
        // Running from slot A: the image for slot B.
        assert_eq!(b.next(), "fetch /v1/manifest/v2-b None");
    }

    #[test]
    fn a_trial_image_retries_its_check_in_inside_its_window() {
        let mut setup = Setup::new(16 * 1024, 4096);
        setup.policy.checkin_interval_ms = 1000;
        setup.policy.trial_window_ms = 800;
        let mut b = Bench::new(&setup, setup.policy);
        // Confirmed image: a failed check-in waits the whole interval.
        let _ = b.next();
        b.feed(Input::NetError(Reason::Connect));
        assert_eq!(b.next(), "wait 1000");
        // The same board on trial (its app started at 1000) retries within its window, every
        // eighth of it.
        b.now = 1000;
        b.up.boot.state.mode = Mode::Trial;
        b.up.started = b.now;
        b.feed(Input::Timeout);
        assert_eq!(b.next(), "checkin last_error=None");
        b.feed(Input::NetError(Reason::Connect));
        assert_eq!(b.next(), format!("wait {}", b.now + 100));
        // ... until the watchdog ends the trial (bounded: a machine that never resets fails).
        for _ in 0..100 {
            if b.up.reset().is_some() {
                break;
            }
            b.wait();
            let _ = b.next();
            if b.up.reset().is_none() {
                b.feed(Input::NetError(Reason::Connect));
            }
        }
        assert_eq!(b.up.reset(), Some(Reset::Watchdog));
        assert_eq!(b.now, 1000 + 800);
    }

    #[test]
    fn jitter_spreads_waits_by_a_tenth_and_replays_under_its_seed() {
        let setup = Setup::new(16 * 1024, 4096);
        let policy = Policy {
            checkin_interval_ms: 10_000,
            jitter_seed: Some(42),
            ..SIM_POLICY
        };
        let waits = |policy| {
            let mut b = Bench::new(&setup, policy);
            let mut out = Vec::new();
            for _ in 0..40 {
                let _ = b.next();
                let before = b.now;
                b.answer(r#"{"command":"none"}"#);
                let next = b.up.next_deadline().expect("deadline");
                out.push(next - before);
                b.wait();
            }
            out
        };
        let a = waits(policy);
        assert_eq!(a, waits(policy), "same seed, same waits");
        assert!(a.iter().all(|w| (9_000..=11_000).contains(w)), "{a:?}");
        assert!(
            a.iter().any(|w| *w < 9_900) && a.iter().any(|w| *w > 10_100),
            "{a:?}"
        );
        let other = waits(Policy {
            jitter_seed: Some(43),
            ..policy
        });
        assert_ne!(a, other);
        let exact = waits(Policy {
            jitter_seed: None,
            ..policy
        });
        assert!(exact.iter().all(|w| *w == 10_000), "{exact:?}");
    }

    #[test]
    fn buffers_hold_what_they_are_given() {
        let (mut m, mut c) = ([0u8; 8], [0u8; 4]);
        let mut s = SliceBuffers {
            manifest: &mut m,
            chunk: &mut c,
        };
        assert!(s.manifest_room(9).is_none());
        s.manifest_room(8)
            .expect("fits")
            .copy_from_slice(b"manifest");
        assert_eq!(s.manifest(3), b"man");
        assert_eq!(s.manifest(8), b"manifest");
        assert!(s.chunk_room(5).is_none());
        s.chunk_room(4).expect("fits").copy_from_slice(b"abcd");
        assert_eq!(s.chunk(2), b"ab");
        let mut v = VecBuffers::default();
        assert_eq!(v.held(), 0);
        assert!(v.manifest_room(manifest::MAX_LEN + 1).is_none());
        assert!(v.manifest_room(manifest::MAX_LEN).is_some());
        v.manifest_room(4).expect("fits").copy_from_slice(b"wxyz");
        // The same room again keeps what it holds (a body in several pieces).
        assert_eq!(
            v.manifest_room(4).map(|r| r.to_vec()),
            Some(b"wxyz".to_vec())
        );
        v.chunk_room(3).expect("fits").copy_from_slice(b"123");
        assert_eq!(v.chunk_room(3).map(|r| r.to_vec()), Some(b"123".to_vec()));
        assert_eq!(v.chunk(3), b"123");
        assert!(v.held() >= 7);
        v.release();
        assert_eq!(v.held(), 0);
    }

    #[test]
    fn the_early_confirm_quirk_confirms_a_trial_before_any_check_in() {
        let setup = Setup::new(16 * 1024, 4096);
        for quirk in [false, true] {
            let b = Bench::with(&setup, SIM_POLICY, |dev, boot| {
                dev.cfg.quirks.early_confirm = quirk;
                boot.state.mode = Mode::Trial;
            });
            let confirmed = b.out.0.iter().any(|l| l == "app: v1.0.0 confirmed");
            assert_eq!(confirmed, quirk, "{:?}", b.out.0);
            assert_eq!(b.up.boot().state.mode == Mode::Confirmed, quirk);
        }
    }

    #[test]
    fn a_give_up_is_reported_at_the_next_check_in() {
        let setup = Setup::new(16 * 1024, 4096);
        let mut b = Bench::new(&setup, SIM_POLICY);
        b.up.gave_up(Reason::ChunkHash);
        assert_eq!(b.next(), "checkin last_error=Some(\"chunk-hash\")");
    }

    #[test]
    fn offers_are_told_apart_by_their_url() {
        // FNV-1a, 32 bits: the published test values.
        assert_eq!(fnv1a(""), 0x811C_9DC5);
        assert_eq!(fnv1a("a"), 0xE40C_292C);
        assert_eq!(fnv1a("foobar"), 0xBF9C_F968);
        assert_ne!(fnv1a("/v1/manifest/v2"), fnv1a("/v1/manifest/v3"));
    }
}
