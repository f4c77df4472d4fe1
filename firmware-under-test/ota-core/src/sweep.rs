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

use std::borrow::Cow;
use std::cell::Cell;
use std::rc::Rc;

use embedded_storage::nor_flash::NorFlash;

use crate::device::{Config, Console, DEFAULT_MAX_ATTEMPTS, Device, Error, Quirks, Reset};
use crate::http::ResponseHead;
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

/// The test flash, telling the console how many operations happened so far (so that each
/// console line can name the phase of the operations before it).
pub struct Counted {
    pub flash: TestFlash,
    seen: Rc<Cell<u64>>,
}

impl embedded_storage::nor_flash::ErrorType for Counted {
    type Error = FlashError;
}

impl embedded_storage::nor_flash::ReadNorFlash for Counted {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        self.flash.read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.flash.capacity()
    }
}

impl NorFlash for Counted {
    const WRITE_SIZE: usize = 1;
    const ERASE_SIZE: usize = 4096;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        let r = self.flash.erase(from, to);
        self.seen.set(self.flash.core.ops());
        r
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let r = self.flash.write(offset, bytes);
        self.seen.set(self.flash.core.ops());
        r
    }
}

/// The console of a point: the last lines, and where each phase of the update ended.
struct SweepConsole {
    tail: Vec<String>,
    seen: Rc<Cell<u64>>,
    /// `(operations before the line, phase of those operations)`.
    marks: Vec<(u64, Phase)>,
}

impl SweepConsole {
    /// The phase a line closes: the operations before it belong to that phase.
    fn phase_of(line: &str) -> Option<Phase> {
        let p = |prefix: &str| line.starts_with(prefix);
        Some(if p("download: start") || p("download: resume") {
            Phase::Download
        } else if p("download: progress") || p("download: complete") || p("verify: ") {
            Phase::SlotWrite
        } else if p("update: staged") || p("update: refused") {
            Phase::Stage
        } else if p("app: ") && line.ends_with(" confirmed") {
            Phase::Confirm
        } else if p("rollback: command received") {
            Phase::Rollback
        } else if p("boot: trial") || line.contains("state=trial") {
            Phase::Trial
        } else if p("boot: revert") || p("boot: slot=") {
            Phase::Revert
        } else {
            return None;
        })
    }

    /// The phase of operation `index`: that of the first line printed after it.
    fn phase_at(&self, index: u64) -> Phase {
        self.marks
            .iter()
            .find(|(ops, _)| *ops > index)
            .or(self.marks.last())
            .map_or(Phase::Download, |(_, p)| *p)
    }
}

impl Console for SweepConsole {
    fn line(&mut self, line: &crate::console::Line<'_>) {
        let line = line.to_string();
        if let Some(phase) = Self::phase_of(&line) {
            self.marks.push((self.seen.get(), phase));
        }
        if self.tail.len() >= 40 {
            self.tail.remove(0);
        }
        self.tail.push(line);
    }
}

/// Faults the in-memory server plays on image requests (the updater's own tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerFaults {
    /// Answer ranged image requests with the full body (200).
    pub ignore_range: bool,
    /// Answer this many image requests with 503, `Retry-After: retry_after_s` when given.
    pub unavailable: u32,
    pub retry_after_s: Option<u64>,
    /// Give no answer at all to this many image requests (the host's wait runs out).
    pub stalls: u32,
    /// Cut the body of this many image requests after `cut_after` bytes.
    pub truncations: u32,
    pub cut_after: usize,
    /// Damage every image response: flip the bytes at image offsets `start..start + len`
    /// (they never match their chunk hash, however often they are fetched).
    pub corrupt: Option<(u32, u32)>,
}

/// An in-memory update server and the clock of one simulated board: it answers check-ins
/// by the script, serves the manifest and the image, and plays [`ServerFaults`].
pub struct MemServer<'s> {
    pub setup: &'s Setup,
    pub script: Script,
    pub faults: ServerFaults,
    /// Image requests seen: when (simulated ms) and their ranges.
    pub image_requests: Vec<(u64, Option<(u32, u32)>)>,
    /// The simulated clock at the request being answered.
    now: u64,
    rollback_sent: bool,
    /// The release's version (as its manifest says).
    release: Version,
    /// The device fetched the release's manifest.
    manifest_fetched: bool,
    /// A check-in reported a failure that blames the release (a refusal, bytes that never
    /// matched their hash), after fetching it: like the real server, never offer it to this
    /// device again.
    failed: bool,
    /// Stop offering a release a device reported failing (as the real server does); `false`
    /// plays a server that ignores such reports.
    pub heed_reports: bool,
    /// The last check-in was answered `none`: the device has nothing left to do.
    pub quiet: bool,
}

const MANIFEST_URL: &str = "/v1/manifest/v2";

impl<'s> MemServer<'s> {
    pub fn new(setup: &'s Setup, script: Script) -> Self {
        Self {
            setup,
            script,
            faults: setup.faults,
            image_requests: Vec::new(),
            now: 0,
            rollback_sent: false,
            release: setup.versions().1,
            manifest_fetched: false,
            failed: false,
            heed_reports: true,
            quiet: false,
        }
    }

    fn head(status: u16, fields: &str) -> ResponseHead {
        let text = format!("HTTP/1.1 {status} X\r\n{fields}\r\n");
        crate::http::parse_head(text.as_bytes()).unwrap_or_default()
    }

    /// Plays one action of a board running `running` with state record `st` against this
    /// server.
    fn respond(
        &mut self,
        action: &Action<'_>,
        dev: &Device<'_, Counted>,
        running: Version,
        st: &BootState,
    ) -> Reply<'s> {
        let ok = |body: Cow<'s, [u8]>| Reply::Response {
            head: Self::head(200, &format!("Content-Length: {}\r\n", body.len())),
            body,
            cut: false,
        };
        match action {
            Action::SendCheckin(req) => {
                let v2 = self.release;
                if self.script == Script::FailedTrial
                    && running == v2
                    && req.state == crate::checkin::DeviceState::Trial
                {
                    // The new image never reaches the server.
                    return Reply::Failed(Reason::Connect);
                }
                if self.manifest_fetched
                    && self.heed_reports
                    && req
                        .last_error
                        .as_deref()
                        .and_then(Reason::from_name)
                        .is_some_and(Reason::blames_release)
                {
                    self.failed = true;
                }
                let offer = match self.script {
                    Script::Update | Script::FailedTrial | Script::Rollback => {
                        Manifest::parse(&self.setup.manifest)
                            .is_ok_and(|m| running < v2 && dev.plan(st, running, &m).is_ok())
                    }
                    // Offered as a real server offers it, whether the device wants it or not.
                    Script::Refused => running < v2 && !self.failed,
                    Script::RollbackRefused | Script::NoOp => false,
                };
                // Like a real server, a rollback is commanded until the device reports the
                // older image (a cut may undo a command the device had received).
                let command = if (self.script == Script::Rollback && running == v2)
                    || (self.script == Script::RollbackRefused && !self.rollback_sent)
                {
                    self.rollback_sent = true;
                    r#"{"command":"rollback"}"#.to_string()
                } else if offer && !(self.script == Script::Rollback && self.rollback_sent) {
                    format!(r#"{{"command":"update","manifest_url":"{MANIFEST_URL}"}}"#)
                } else {
                    self.quiet = true;
                    r#"{"command":"none"}"#.to_string()
                };
                ok(command.into_bytes().into())
            }
            Action::Fetch { url, .. } if *url == MANIFEST_URL => {
                self.manifest_fetched = true;
                ok(self.setup.manifest.as_slice().into())
            }
            Action::Fetch { range, .. } => {
                self.image_requests.push((self.now, *range));
                let f = &mut self.faults;
                if f.stalls > 0 {
                    f.stalls -= 1;
                    return Reply::Silence;
                }
                if f.unavailable > 0 {
                    f.unavailable -= 1;
                    let ra = f
                        .retry_after_s
                        .map(|s| format!("Retry-After: {s}\r\n"))
                        .unwrap_or_default();
                    return Reply::Response {
                        head: Self::head(503, &format!("Content-Length: 0\r\n{ra}")),
                        body: Cow::Borrowed(&[]),
                        cut: false,
                    };
                }
                let image: &'s [u8] = &self.setup.v2;
                let total = image.len();
                let (status, from, to) = match range {
                    Some((a, b)) if !f.ignore_range => (206, *a as usize, *b as usize + 1),
                    _ => (200, 0, total),
                };
                let body = image.get(from..to.min(total)).unwrap_or_default();
                let mut fields = format!("Content-Length: {}\r\n", body.len());
                if status == 206 {
                    fields.push_str(&format!(
                        "Content-Range: bytes {from}-{}/{total}\r\n",
                        to - 1
                    ));
                }
                let cut = f.truncations > 0;
                let body = if cut {
                    f.truncations -= 1;
                    &body[..f.cut_after.min(body.len())]
                } else {
                    body
                };
                let body = match f.corrupt {
                    Some((start, len)) => {
                        let mut damaged = body.to_vec();
                        let (start, end) = (start as usize, start as usize + len as usize);
                        for (i, b) in damaged.iter_mut().enumerate() {
                            if (start..end).contains(&(from + i)) {
                                *b ^= 0xA5;
                            }
                        }
                        Cow::Owned(damaged)
                    }
                    None => Cow::Borrowed(body),
                };
                Reply::Response {
                    head: Self::head(status, &fields),
                    body,
                    cut,
                }
            }
            _ => Reply::Silence,
        }
    }
}

/// Body bytes the in-memory server hands over in one piece (a network delivers smaller ones;
/// the machine takes any split, and fewer pieces keep the sweep fast).
const PIECE: usize = 16 * 1024;

/// What the in-memory server did with a request.
enum Reply<'s> {
    /// A response; `cut`: the connection dropped after `body`.
    Response {
        head: ResponseHead,
        body: Cow<'s, [u8]>,
        cut: bool,
    },
    /// The request failed before any response.
    Failed(Reason),
    /// No answer at all.
    Silence,
}

impl Reply<'_> {
    /// The inputs a board's network stack hands the machine for this reply (the body in
    /// pieces, as a network delivers it).
    fn inputs(&self) -> Vec<Input<'_>> {
        match self {
            Self::Response { head, body, cut } => {
                let mut inputs = vec![Input::ResponseHead(*head)];
                inputs.extend(body.chunks(PIECE).map(Input::BodyBytes));
                inputs.push(if *cut {
                    Input::NetError(Reason::ShortBody)
                } else {
                    Input::BodyEnd
                });
                inputs
            }
            Self::Failed(r) => vec![Input::NetError(*r)],
            Self::Silence => Vec::new(),
        }
    }
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
mod tests {
    use super::*;
    use crate::nor::{Tear, TearFamily, tears_for};

    /// Every cut of `script`'s clean run: clean, and torn in every shape of `families` (with
    /// unstable bits if asked). Returns the points tried and those that ended off the script.
    fn sweep(
        setup: &Setup,
        script: Script,
        families: &[TearFamily],
        unstable: bool,
    ) -> (usize, Vec<(u64, String, End, String)>) {
        let (clean, log) = clean_run(setup, script);
        assert_eq!(clean.end, script.expected(), "clean run: {}", clean.detail);
        let mut bad = Vec::new();
        let mut points = 0;
        for p in &log {
            let mut cuts = vec![None];
            for (_, shape) in tears_for(&p.op, families, setup.layout.sector) {
                cuts.push(Some(Tear { shape, unstable }));
            }
            for torn in cuts {
                points += 1;
                let at = p.op.index;
                let r = run_point(setup, script, &[Cut { at, torn }], None);
                if r.end != script.expected() {
                    let how = torn.map_or("clean".into(), |t| t.to_string());
                    bad.push((at, how, r.end, r.detail));
                }
            }
        }
        (points, bad)
    }

    /// A sim image of `body` bytes.
    fn image(key: &SigningKey, version: Version, counter: u32, body: usize) -> Vec<u8> {
        let spec = ImageSpec {
            version,
            rollback_counter: counter,
            board: board_kind("sim").unwrap_or([0; 16]),
            load_addr: payload::SIM_LOAD_ADDR,
            entry_offset: 0,
        };
        crate::image::build(&spec, &payload::build(version, Drill::None, body), key)
    }

    #[test]
    fn every_cut_of_every_path_survives_clean_and_torn_in_every_shape() {
        let setup = Setup::new(8 * 1024, 4096);
        let mut points = 0;
        for script in [Script::Update, Script::FailedTrial, Script::Rollback] {
            let (n, bad) = sweep(&setup, script, &TearFamily::ALL, false);
            points += n;
            assert!(bad.is_empty(), "{}: {bad:?}", script.as_str());
        }
        println!("in-memory sweep: {points} cut points, 0 bricked");
        assert!(points > 600, "{points}");
    }

    #[test]
    fn unstable_bits_in_every_tear_are_survived() {
        let setup = Setup::new(4 * 1024, 4096);
        let (n, bad) = sweep(&setup, Script::Update, &TearFamily::ALL, true);
        assert!(bad.is_empty(), "{bad:?}");
        assert!(n > 100, "{n}");
    }

    #[test]
    fn a_torn_state_record_is_caught_without_its_crc_check() {
        let mut setup = Setup::new(4 * 1024, 4096);
        let (n, bad) = sweep(&setup, Script::Update, &[TearFamily::Words], false);
        assert!(bad.is_empty(), "the correct firmware survives: {bad:?}");
        setup.quirks.skip_state_crc = true;
        let (m, bad) = sweep(&setup, Script::Update, &[TearFamily::Words], false);
        assert_eq!(n, m);
        assert!(
            bad.iter()
                .any(|(_, _, e, _)| matches!(e, End::Bricked | End::InvariantBroken)),
            "the torn sweep must catch a firmware that trusts a torn record: {bad:?}"
        );
        assert!(
            bad.iter().all(|(_, how, _, _)| how.starts_with("prefix:")),
            "only torn records, never clean cuts: {bad:?}"
        );
        println!(
            "skip-state-crc: {} of {m} points caught, e.g. {:?}",
            bad.len(),
            bad[0]
        );
        // The old tear model (half a page) never tore the 96-byte record: it missed this.
        let (_, half) = sweep(&setup, Script::Update, &[TearFamily::Half], false);
        assert!(half.is_empty(), "{half:?}");
    }

    #[test]
    fn refusals_and_no_ops_end_unchanged_at_every_cut() {
        let key = crate::keys::generate();
        let untrusted = crate::keys::generate();
        let body = 4 * 1024;
        let v = |major| Version::new(major, 0, 0);
        let good = image(&key, v(2), 1, body);
        let cases = [
            (
                "corrupt body",
                image(&key, v(1), 1, body),
                crate::tools::corrupt(&good, crate::tools::Corruption::Body, &key, &untrusted)
                    .expect("corrupt"),
                Script::Refused,
            ),
            (
                "counter below the floor",
                image(&key, v(2), 2, body),
                image(&key, v(3), 1, body),
                Script::Refused,
            ),
            (
                "same version",
                image(&key, v(1), 1, body),
                image(&key, v(1), 1, body),
                Script::NoOp,
            ),
            (
                "rollback with nothing to go back to",
                image(&key, v(1), 1, body),
                good.clone(),
                Script::RollbackRefused,
            ),
            (
                "every copy damaged in transit",
                image(&key, v(1), 1, body),
                good.clone(),
                Script::Refused,
            ),
        ];
        for (what, v1, v2, script) in cases {
            let mut setup = Setup::with_images(key.clone(), v1, v2, 4096);
            if what.contains("transit") {
                setup.faults.corrupt = Some((1000, 8));
            }
            let (clean, log) = clean_run(&setup, script);
            assert_eq!(clean.end, End::Unchanged, "{what}: {}", clean.detail);
            let (n, bad) = sweep(&setup, script, &TearFamily::ALL, false);
            assert!(bad.is_empty(), "{what}: {bad:?}");
            if script == Script::Refused {
                assert!(n > 0 && !log.is_empty(), "{what}: the refusal is recorded");
            } else {
                assert!(log.is_empty(), "{what}: a no-op writes nothing: {log:?}");
            }
            // Offered as if it were a good update, the device still refuses it: the device,
            // not the server, decides.
            if script == Script::Refused && setup.faults.corrupt.is_none() {
                let up = run_point(&setup, Script::Update, &[], None);
                assert_eq!(up.end, End::Unchanged, "{what}: never offered when refused");
            }
        }
    }

    #[test]
    fn nested_cuts_during_recovery_survive() {
        let setup = Setup::new(8 * 1024, 4096);
        let (_, log) = clean_run(&setup, Script::Update);
        let torn = Some(Tear::HALF);
        let mut tried = 0;
        for p in log.iter().step_by(3) {
            let first = run_point(
                &setup,
                Script::Update,
                &[Cut {
                    at: p.op.index,
                    torn,
                }],
                None,
            );
            for j in [1u64, 3, 7, 20] {
                let second = p.op.index + j;
                if second >= first.ops {
                    continue;
                }
                let r = run_point(
                    &setup,
                    Script::Update,
                    &[
                        Cut {
                            at: p.op.index,
                            torn,
                        },
                        Cut { at: second, torn },
                    ],
                    None,
                );
                tried += 1;
                assert_eq!(
                    r.end,
                    End::Updated,
                    "cuts at {} and {second}: {}",
                    p.op.index,
                    r.detail
                );
            }
        }
        assert!(tried > 20, "{tried}");
    }

    #[test]
    fn a_broken_ordering_is_caught_as_bricked() {
        let mut setup = Setup::new(8 * 1024, 4096);
        setup.quirks.state_before_data = true;
        let (_, log) = clean_run(&setup, Script::Update);
        let bricked = log
            .iter()
            .filter(|p| {
                run_point(
                    &setup,
                    Script::Update,
                    &[Cut {
                        at: p.op.index,
                        torn: None,
                    }],
                    None,
                )
                .end == End::Bricked
            })
            .count();
        assert!(
            bricked > 0,
            "the sweep must catch the state-before-data ordering"
        );
    }
}
