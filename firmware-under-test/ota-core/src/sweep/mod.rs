//! The power-cut sweep's fast engine (feature `sim-flash`): a whole update path — download,
//! slot write, stage, trial boot, confirm or revert, rollback — driven in memory by the same
//! device logic the boards run, with power cut at any flash operation (clean or torn, and
//! again during recovery), then restored and driven to the end. No processes, no network:
//! the "server" is the image and its manifest in memory, and it answers check-ins as the
//! [`Script`] says: it offers the release, refuses nothing, fails a trial's check-ins, commands
//! a rollback, or offers nothing at all.
//!
//! A torn cut lands the way [`crate::nor`] tears an operation (a prefix, half, bits between
//! old and new, unstable bits); [`crate::nor::tears_for`] lists the shapes of each operation.
//!
//! Every point is deterministic: a failing point replays exactly from its cut list.

use std::cell::Cell;
use std::rc::Rc;

use crate::device::{Config, Console, DEFAULT_MAX_ATTEMPTS, Device, Error, Quirks, Reset};
use crate::image::{ImageSpec, board_kind};
use crate::keys::SigningKey;
use crate::layout::{Layout, SIM};
use crate::manifest::Manifest;
use crate::nor::{Cut, FlashError, Op, OpKind, TestFlash};
use crate::payload::{self, Drill};
use crate::state::{BootState, Mode};
use crate::updater::{
    Action, Identity, Input, Io, Policy, SIM_POLICY, Updater, VecBuffers, no_board_check,
};
use crate::{Reason, Version};

mod board;
mod server;

pub use board::Counted;
use board::SweepConsole;
pub use server::{MemServer, ServerFaults};

/// What the device is asked to go through ("v1" is the image it starts on, "v2" the release).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// v1 → v2, confirmed after a healthy check-in. Expected end: updated.
    Update,
    /// v1 → v2 whose trial never confirms (it cannot reach the server). Expected: rolled back.
    FailedTrial,
    /// v1 → v2 confirmed, then a server rollback command. Expected: rolled back.
    Rollback,
    /// v2 is offered and the device must refuse it, before the download (an anti-rollback
    /// counter below its floor, too large), after it (a corrupt image), or give up on it (every
    /// copy damaged in transit, [`ServerFaults::corrupt`]). Like the real server, the offer
    /// stops once a check-in reports the failure. Expected: unchanged.
    Refused,
    /// A rollback command to a board that holds no previous image: refused. Expected:
    /// unchanged.
    RollbackRefused,
    /// Nothing is offered (no release, one not newer than v1, a paused rollout). Expected:
    /// unchanged.
    NoOp,
}

impl Script {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Update => "update",
            Self::FailedTrial => "failed-trial",
            Self::Rollback => "rollback",
            Self::Refused => "refused",
            Self::RollbackRefused => "rollback-refused",
            Self::NoOp => "no-op",
        }
    }

    pub fn expected(self) -> End {
        match self {
            Self::Update => End::Updated,
            Self::FailedTrial | Self::Rollback => End::RolledBack,
            Self::Refused | Self::RollbackRefused | Self::NoOp => End::Unchanged,
        }
    }
}

/// How a point ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Updated,
    RolledBack,
    Unchanged,
    Bricked,
    /// Ended somewhere valid but not where the script must end, or broke an invariant.
    InvariantBroken,
}

impl End {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Updated => "updated",
            Self::RolledBack => "rolled-back",
            Self::Unchanged => "unchanged",
            Self::Bricked => "bricked",
            Self::InvariantBroken => "invariant-broken",
        }
    }
}

/// Phase of the update an operation belongs to (for the survival map).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Download,
    SlotWrite,
    Stage,
    Trial,
    Confirm,
    Revert,
    Rollback,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Download => "download",
            Self::SlotWrite => "slot-write",
            Self::Stage => "stage",
            Self::Trial => "trial",
            Self::Confirm => "confirm",
            Self::Revert => "revert",
            Self::Rollback => "rollback",
        }
    }
}

/// A logged operation of the clean run and the phase it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhasedOp {
    pub op: Op,
    pub phase: Phase,
}

/// The fixed inputs of a sweep.
pub struct Setup {
    pub key: SigningKey,
    pub v1: Vec<u8>,
    pub v2: Vec<u8>,
    pub manifest: Vec<u8>,
    pub max_attempts: u8,
    pub quirks: Quirks,
    pub layout: Layout,
    /// The boards' timing (the clock is simulated: only the order of events matters).
    pub policy: Policy,
    /// Faults the in-memory server plays on every point.
    pub faults: ServerFaults,
}

impl Setup {
    /// Builds v1 and v2 sim images of `body` bytes and v2's manifest, signed with a fresh key.
    pub fn new(body: usize, chunk_size: u32) -> Self {
        let key = crate::keys::generate();
        let build = |v: Version| {
            let spec = ImageSpec {
                version: v,
                rollback_counter: 1,
                board: board_kind("sim").unwrap_or([0; 16]),
                load_addr: payload::SIM_LOAD_ADDR,
                entry_offset: 0,
            };
            crate::image::build(&spec, &payload::build(v, Drill::None, body), &key)
        };
        let v1 = build(Version::new(1, 0, 0));
        let v2 = build(Version::new(2, 0, 0));
        Self::with_images(key, v1, v2, chunk_size)
    }

    /// A setup from built images: `v1`, the image the board starts on (its rollback counter is
    /// the board's floor), and `v2`, the release (any image, even a broken one: its manifest
    /// describes it as served, with the version and counter its header claims), trusting `key`.
    pub fn with_images(key: SigningKey, v1: Vec<u8>, v2: Vec<u8>, chunk_size: u32) -> Self {
        let manifest =
            crate::manifest::build(&v2, chunk_size, "/v1/images/v2.bin", &key).unwrap_or_default();
        Self {
            key,
            v1,
            v2,
            manifest,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            quirks: Quirks::default(),
            layout: SIM,
            policy: SIM_POLICY,
            faults: ServerFaults::default(),
        }
    }

    /// The version the board starts on and the release's (as its manifest says).
    pub fn versions(&self) -> (Version, Version) {
        let v1 =
            crate::image::ImageHeader::parse(&self.v1).map_or(Version::new(1, 0, 0), |h| h.version);
        let v2 = Manifest::parse(&self.manifest).map_or(Version::new(2, 0, 0), |m| m.version());
        (v1, v2)
    }

    /// A factory-provisioned flash: v1 confirmed in slot A, its rollback counter the floor.
    pub fn fresh_flash(&self) -> TestFlash {
        let mut f = TestFlash::new(self.layout.flash_size as usize);
        let a = self.layout.slot(0) as usize;
        f.core.mem[a..a + self.v1.len()].copy_from_slice(&self.v1);
        let floor = crate::image::ImageHeader::parse(&self.v1).map_or(1, |h| h.rollback_counter);
        let mut st = BootState::factory(0, floor);
        st.seq = 1;
        let s = self.layout.state[1] as usize;
        f.core.mem[s..s + crate::state::RECORD_LEN].copy_from_slice(&st.encode());
        f
    }

    pub(crate) fn config(&self) -> Config<'static> {
        Config {
            layout: self.layout,
            public_key: self.key.verifying_key().to_bytes(),
            board: "sim",
            max_attempts: self.max_attempts,
            quirks: self.quirks,
        }
    }
}

/// The result of one point.
#[derive(Debug, Clone)]
pub struct PointResult {
    pub end: End,
    /// Total flash operations, the cut ones included.
    pub ops: u64,
    /// Boots it took to settle.
    pub boots: u32,
    /// Why the point did not end as expected, and the last console lines.
    pub detail: String,
    pub console_tail: Vec<String>,
}

/// Longest a point may run, in machine steps: a livelock is reported, not waited out.
const MAX_STEPS: u32 = 20_000;

/// Drives one board through `script` on a fresh flash against `server`, with power cut at
/// each of `cuts` (ascending absolute op indices) and restored after each, until the device
/// settles: its check-in is answered `none`, or it is bricked. With `log`, records the
/// operations and their phases.
pub fn drive(
    server: &mut MemServer<'_>,
    cuts: &[Cut],
    log: Option<&mut Vec<PhasedOp>>,
) -> PointResult {
    let setup = server.setup;
    let seen = Rc::new(Cell::new(0));
    let mut flash = Counted {
        flash: setup.fresh_flash(),
        seen: Rc::clone(&seen),
    };
    flash.flash.core.keep_log = log.is_some();
    let mut pending = cuts.iter().copied();
    flash.flash.core.set_cut(pending.next());
    let mut dev = Device::new(flash, setup.config());
    let mut out = SweepConsole {
        tail: Vec::new(),
        seen,
        marks: Vec::new(),
    };
    let mut bufs = VecBuffers::default();
    let mut now = 0u64;
    let mut boots = 0u32;
    let mut steps = 0u32;
    let mut reset = Reset::PowerOn;
    let end: Result<End, String> = 'life: loop {
        boots += 1;
        if boots > 40 {
            break 'life Err("did not settle within 40 boots (livelock)".into());
        }
        out.line(&crate::console::Line::BootBanner {
            board: "sim",
            device: "sweep",
            reset,
        });
        let boot = match dev.boot(&mut out) {
            Ok(b) => b,
            Err(Error::Bricked) => break 'life Ok(End::Bricked),
            Err(Error::Flash(FlashError::PowerCut)) => {
                dev.flash.flash.core.restore_power(pending.next());
                reset = Reset::PowerOn;
                continue;
            }
            Err(e) => break 'life Err(format!("boot: {e:?}")),
        };
        if boot.state.rejected == Some(boot.header.version) {
            break 'life Ok(End::InvariantBroken);
        }
        let app = dev.app(boot.slot);
        let who = Identity {
            device: "sweep",
            boots,
        };
        let mut io = Io {
            dev: &mut dev,
            bufs: &mut bufs,
            out: &mut out,
            board_check: no_board_check,
        };
        let mut up = match Updater::start(&mut io, boot, app, &who, setup.policy, now) {
            Ok(up) => up,
            Err(e) => {
                if let Some(r) = power_back(&mut dev, e, &mut pending) {
                    break 'life Err(r);
                }
                reset = Reset::PowerOn;
                continue;
            }
        };
        server.quiet = false;
        loop {
            steps += 1;
            if steps > MAX_STEPS {
                break 'life Err(format!("no end after {MAX_STEPS} steps (livelock)"));
            }
            let mut io = Io {
                dev: &mut dev,
                bufs: &mut bufs,
                out: &mut out,
                board_check: no_board_check,
            };
            let running = up.version();
            let st = up.boot().state.clone();
            let reply;
            let inputs = match up.poll_action() {
                Some(Action::Reset(r)) => {
                    reset = r;
                    break;
                }
                Some(Action::StartNetwork) => vec![Input::NetworkUp],
                Some(Action::Wait { until }) => {
                    now = now.max(until);
                    vec![Input::Timeout]
                }
                Some(Action::CrashDrill | Action::Hang) => Vec::new(),
                Some(action) => {
                    server.now = now;
                    reply = server.respond(&action, io.dev, running, &st);
                    let inputs = reply.inputs();
                    if inputs.is_empty() {
                        // No answer: the wait runs out.
                        now = up.next_deadline().unwrap_or(now).max(now);
                        vec![Input::Timeout]
                    } else {
                        inputs
                    }
                }
                None => match up.next_deadline() {
                    Some(t) => {
                        now = now.max(t);
                        vec![Input::Timeout]
                    }
                    None => break 'life Ok(settled(&up, setup)),
                },
            };
            let mut cut = None;
            for input in inputs {
                if let Err(e) = up.handle(&mut io, input, now) {
                    cut = Some(e);
                    break;
                }
            }
            if let Some(e) = cut {
                if let Some(r) = power_back(&mut dev, e, &mut pending) {
                    break 'life Err(r);
                }
                reset = Reset::PowerOn;
                break;
            }
            if server.quiet && up.reset().is_none() {
                break 'life Ok(settled(&up, setup));
            }
        }
    };
    if let Some(l) = log {
        for op in &dev.flash.flash.core.log {
            l.push(PhasedOp {
                op: *op,
                phase: out.phase_at(op.index),
            });
        }
    }
    let script = server.script;
    let (end, detail) = match end {
        Ok(End::InvariantBroken) => (
            End::InvariantBroken,
            "booted an image it had rejected, or refused a good release".to_string(),
        ),
        Ok(e) if e == script.expected() => (e, String::new()),
        Ok(End::Bricked) => (End::Bricked, "no bootable image".to_string()),
        Ok(e) => (
            e,
            format!(
                "ended {} where the {} script must end {}",
                e.as_str(),
                script.as_str(),
                script.expected().as_str()
            ),
        ),
        Err(why) => (End::InvariantBroken, why),
    };
    PointResult {
        end,
        ops: dev.flash.flash.core.ops(),
        boots,
        detail,
        console_tail: out.tail,
    }
}

/// A flash error during a point: power is restored after a cut (`None`); anything else ends
/// the point with why.
fn power_back(
    dev: &mut Device<'_, Counted>,
    e: FlashError,
    pending: &mut impl Iterator<Item = Cut>,
) -> Option<String> {
    match e {
        FlashError::PowerCut => {
            dev.flash.flash.core.restore_power(pending.next());
            None
        }
        e => Some(format!("flash error {e:?}")),
    }
}

/// Where a board with nothing left to do ended: on the (newer) release, confirmed; back on an
/// older image it reverted to; on trial (never a place to settle); or where it started.
fn settled(up: &Updater, setup: &Setup) -> End {
    let (v1, v2) = setup.versions();
    let st = &up.boot().state;
    if up.version() == v2 && v2 > v1 && st.mode == Mode::Confirmed {
        End::Updated
    } else if up.version() < v2 && st.reverted {
        End::RolledBack
    } else if st.mode == Mode::Trial {
        End::InvariantBroken
    } else {
        End::Unchanged
    }
}

/// Runs `script` on a fresh flash with power cut at each of `cuts` (ascending absolute op
/// indices), restoring power after each, until the device settles. With `log`, records the
/// clean run's operations and their phases.
pub fn run_point(
    setup: &Setup,
    script: Script,
    cuts: &[Cut],
    log: Option<&mut Vec<PhasedOp>>,
) -> PointResult {
    drive(&mut MemServer::new(setup, script), cuts, log)
}

/// The clean run: its operations and their phases.
pub fn clean_run(setup: &Setup, script: Script) -> (PointResult, Vec<PhasedOp>) {
    let mut log = Vec::new();
    let r = run_point(setup, script, &[], Some(&mut log));
    (r, log)
}

/// Whether a cut at this op can be torn (both kinds can).
pub fn tearable(op: &Op) -> bool {
    matches!(op.kind, OpKind::Erase | OpKind::Program)
}

/// The reason a refused release was refused, for messages.
pub fn reason_text(r: Reason) -> &'static str {
    r.as_str()
}

#[cfg(test)]
mod tests;
