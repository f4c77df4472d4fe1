//! The power-cut sweep's fast engine (feature `sim-flash`): a whole update path — download,
//! slot write, stage, trial boot, confirm or revert, rollback — driven in memory by the same
//! device logic the boards run, with power cut at any flash operation (clean or torn, and
//! again during recovery), then restored and driven to the end. No processes, no network:
//! the "server" is the image and its manifest in memory, and it keeps offering the release.
//!
//! Every point is deterministic: a failing point replays exactly from its cut list.

use crate::device::{Config, Console, Device, Error, Quirks};
use crate::image::{ImageSpec, board_kind};
use crate::keys::SigningKey;
use crate::layout::{Layout, SIM};
use crate::manifest::Manifest;
use crate::nor::{Cut, FlashError, Op, OpKind, TestFlash};
use crate::payload::{self, Drill};
use crate::state::{BootState, Mode};
use crate::{Reason, Version};

/// What the device is asked to go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// v1 → v2, confirmed after a healthy check-in. Expected end: updated.
    Update,
    /// v1 → v2 whose trial never confirms (it cannot reach the server). Expected: rolled back.
    FailedTrial,
    /// v1 → v2 confirmed, then a server rollback command. Expected: rolled back.
    Rollback,
}

impl Script {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Update => "update",
            Self::FailedTrial => "failed-trial",
            Self::Rollback => "rollback",
        }
    }

    pub fn expected(self) -> End {
        match self {
            Self::Update => End::Updated,
            Self::FailedTrial | Self::Rollback => End::RolledBack,
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
        let manifest =
            crate::manifest::build(&v2, chunk_size, "/v1/images/v2.bin", &key).unwrap_or_default();
        Self {
            key,
            v1,
            v2,
            manifest,
            max_attempts: 3,
            quirks: Quirks::default(),
            layout: SIM,
        }
    }

    /// A factory-provisioned flash: v1 confirmed in slot A.
    pub fn fresh_flash(&self) -> TestFlash {
        let mut f = TestFlash::new(self.layout.flash_size as usize);
        let a = self.layout.slot(0) as usize;
        f.core.mem[a..a + self.v1.len()].copy_from_slice(&self.v1);
        let mut st = BootState::factory(0, 1);
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

struct Lines(Vec<String>);

impl Console for Lines {
    fn line(&mut self, args: core::fmt::Arguments<'_>) {
        if self.0.len() >= 40 {
            self.0.remove(0);
        }
        self.0.push(args.to_string());
    }
}

/// Runs `script` on a fresh flash with power cut at each of `cuts` (ascending absolute op
/// indices), restoring power after each, until the device settles. With `log`, records the
/// clean run's operations and their phases.
pub fn run_point(
    setup: &Setup,
    script: Script,
    cuts: &[Cut],
    mut log: Option<&mut Vec<PhasedOp>>,
) -> PointResult {
    let mut dev = Device::new(setup.fresh_flash(), setup.config());
    dev.flash.core.keep_log = log.is_some();
    let mut pending = cuts.iter().copied();
    dev.flash.core.set_cut(pending.next());
    let mut out = Lines(Vec::new());
    let manifest =
        match Manifest::parse_verified(&setup.manifest, &setup.key.verifying_key().to_bytes()) {
            Ok(m) => m,
            Err(_) => {
                return PointResult {
                    end: End::InvariantBroken,
                    ops: 0,
                    boots: 0,
                    detail: "sweep setup: bad manifest".into(),
                    console_tail: Vec::new(),
                };
            }
        };
    let v2 = manifest.version();
    let mut rollback_done = false;
    let mut boots = 0u32;
    let mut phase = Phase::Download;
    let tag = |dev: &Device<'_, TestFlash>, phase: Phase, log: &mut Option<&mut Vec<PhasedOp>>| {
        if let Some(l) = log.as_deref_mut() {
            for op in &dev.flash.core.log[l.len()..] {
                l.push(PhasedOp { op: *op, phase });
            }
        }
    };
    let end = 'run: loop {
        boots += 1;
        if boots > 40 {
            break 'run Err("did not settle within 40 boots (livelock)".to_string());
        }
        let step = (|| -> Result<Option<End>, Error<FlashError>> {
            let boot = dev.boot(&mut out)?;
            tag(
                &dev,
                if boot.state.mode == Mode::Trial {
                    Phase::Trial
                } else {
                    phase
                },
                &mut log,
            );
            if boot.state.rejected == Some(boot.header.version) {
                return Ok(Some(End::InvariantBroken));
            }
            let mut st = boot.state.clone();
            let running = boot.header.version;
            if st.mode == Mode::Trial {
                if script == Script::FailedTrial {
                    // The new image never reaches the server: no confirm, the watchdog resets.
                    return Ok(None);
                }
                dev.confirm(&mut st, &boot.header)?;
                tag(&dev, Phase::Confirm, &mut log);
            }
            if script == Script::Rollback && running == v2 && !rollback_done {
                phase = Phase::Rollback;
                match dev.rollback(&mut st, running) {
                    Ok(_) => {
                        tag(&dev, Phase::Rollback, &mut log);
                        rollback_done = true;
                        return Ok(None);
                    }
                    Err(Error::Refused(_)) => rollback_done = true,
                    Err(e) => return Err(e),
                }
            }
            if running < v2
                && dev.plan(&st, running, &manifest).is_ok()
                && !(script == Script::Rollback && rollback_done)
            {
                phase = Phase::Download;
                let mut next = dev.begin_download(&mut st, &manifest)?;
                tag(&dev, Phase::Download, &mut log);
                let slot = st.inactive();
                while next < manifest.chunk_count() {
                    let (s, e) = manifest.chunk_range(next).unwrap_or((0, 0));
                    let data = setup.v2.get(s as usize..e as usize).unwrap_or_default();
                    dev.write_chunk(slot, &manifest, next, data)?;
                    tag(&dev, Phase::SlotWrite, &mut log);
                    next += 1;
                }
                match dev.verify_staged(&st, &manifest, running) {
                    Ok(_) => {}
                    Err(Error::Refused(r)) => {
                        dev.reject(&mut st, v2, r)?;
                        return Ok(Some(End::InvariantBroken));
                    }
                    Err(e) => return Err(e),
                }
                dev.stage(&mut st)?;
                tag(&dev, Phase::Stage, &mut log);
                phase = Phase::Revert;
                return Ok(None);
            }
            // Settled: nothing more to do.
            Ok(Some(if running == v2 {
                End::Updated
            } else if st.reverted || st.rejected == Some(v2) {
                End::RolledBack
            } else {
                End::Unchanged
            }))
        })();
        match step {
            Ok(Some(end)) => break 'run Ok(end),
            Ok(None) => {}
            Err(Error::Bricked) => break 'run Ok(End::Bricked),
            Err(Error::Flash(FlashError::PowerCut)) => {
                // Power restored: RAM is gone, flash is whatever the cut left.
                dev.flash.core.restore_power(pending.next());
            }
            Err(Error::Flash(e)) => break 'run Err(format!("flash error {e:?}")),
            Err(Error::Refused(r)) => break 'run Err(format!("device refused: {r}")),
        }
    };
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
        ops: dev.flash.core.ops(),
        boots,
        detail,
        console_tail: out.0,
    }
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

    fn sweep(setup: &Setup, script: Script, torn: bool) -> (usize, Vec<(u64, End, String)>) {
        let (clean, log) = clean_run(setup, script);
        assert_eq!(clean.end, script.expected(), "clean run: {}", clean.detail);
        let mut bad = Vec::new();
        for p in &log {
            let r = run_point(
                setup,
                script,
                &[Cut {
                    at: p.op.index,
                    torn,
                }],
                None,
            );
            if r.end != script.expected() {
                bad.push((p.op.index, r.end, r.detail));
            }
        }
        (log.len(), bad)
    }

    #[test]
    fn every_cut_of_every_path_survives_clean_and_torn() {
        let setup = Setup::new(16 * 1024, 4096);
        let mut points = 0;
        for script in [Script::Update, Script::FailedTrial, Script::Rollback] {
            for torn in [false, true] {
                let (n, bad) = sweep(&setup, script, torn);
                points += n;
                assert!(bad.is_empty(), "{} torn={torn}: {bad:?}", script.as_str());
            }
        }
        println!("in-memory sweep: {points} cut points, 0 bricked");
        assert!(points > 200, "{points}");
    }

    #[test]
    fn nested_cuts_during_recovery_survive() {
        let setup = Setup::new(8 * 1024, 4096);
        let (_, log) = clean_run(&setup, Script::Update);
        let mut tried = 0;
        for p in log.iter().step_by(3) {
            let first = run_point(
                &setup,
                Script::Update,
                &[Cut {
                    at: p.op.index,
                    torn: true,
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
                            torn: true,
                        },
                        Cut {
                            at: second,
                            torn: true,
                        },
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
                        torn: false,
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
