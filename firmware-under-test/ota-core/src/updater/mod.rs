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

use crate::checkin::{CheckinRequest, MAX_URL_LEN};
use crate::console::{Console, Line};
use crate::device::{Boot, Device, Error, Reset};
use crate::download::Download;
use crate::http::ResponseHead;
use crate::image::ImageHeader;
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

mod buffers;
mod exchange;
mod offer;
mod policy;

#[cfg(any(feature = "std", test))]
pub use buffers::VecBuffers;
pub use buffers::{Buffers, SliceBuffers};
pub use policy::{Policy, SIM_POLICY};

use exchange::Exchange;
use offer::Trouble;
#[cfg(test)]
use offer::fnv1a;

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
mod machine_tests;
#[cfg(test)]
mod tests;
