//! `rig sweep power-cut`: cut power at every flash operation of the path a scenario takes
//! (and, with `--torn`, tear every one of them in every tear shape), restore it, let the board
//! recover, and judge where it ends against the scenario's `outcome:`. The fast engine replays
//! the path in memory with the same device logic (`ota_core::sweep`); `--replay=process`
//! re-runs the real sim-board process for a sample of points to cross-check it.
//!
//! The swept path is derived from the scenario ([`script_for`]): an update, a failed trial
//! (revert), a commanded rollback, a refused release, a refused rollback, or nothing at all.

mod html;
mod process;
pub mod qemu;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use ota_core::Version;
use ota_core::nor::{Cut, Tear, TearFamily, tears_for};
use ota_core::sweep::{End, PhasedOp, Script, ServerFaults, Setup, run_point};
use serde::Serialize;

use crate::scenario::{Action, CommandName, Drill, ImageDef, RolloutDef, Scenario};
use crate::verdict::Outcome;

/// What to sweep.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    pub scenario: Scenario,
    /// Tear shapes tried at every operation besides the clean cut (empty: clean cuts only).
    pub tears: Vec<TearFamily>,
    /// Torn operations also leave unstable bits.
    pub unstable: bool,
    pub nested: u32,
    pub jobs: usize,
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub process_sample: Option<usize>,
    /// `--replay=qemu`: breakpoint cuts on the QEMU firmware, compared with the in-memory
    /// engine.
    pub qemu: Option<qemu::QemuReplay>,
    /// Deliberate firmware defects (test only).
    pub quirks: ota_core::device::Quirks,
}

/// Why a sweep cannot run (all usage errors: the plan asks for nothing that can be swept).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{file}:{line}: a tamper step changes flash between power cycles, which a power-cut sweep of the update cannot replay; sweep a scenario without one (its update path is the same as happy-path.yaml's)"
    )]
    Tampers { file: String, line: u64 },
    #[error("--from {from} is after --to {to}: the range is empty")]
    InvertedRange { from: u64, to: u64 },
    #[error(
        "no flash operation of the {script} path lies in the range {range} (its clean run has {ops} \
         operations, 0..={last})",
        last = ops.saturating_sub(1)
    )]
    EmptyRange {
        script: &'static str,
        range: String,
        ops: usize,
    },
    #[error(
        "nothing to sweep: the {script} path of this scenario ({why}) writes nothing to flash, so \
         no power cut can land in it (its clean run ends {end})"
    )]
    NothingToSweep {
        script: &'static str,
        why: String,
        end: &'static str,
    },
    #[error(
        "cannot sweep a scenario whose expected outcome is `{0}`: a sweep proves updated, rolled-back or unchanged"
    )]
    Outcome(Outcome),
    #[error("cannot build the scenario's images: {0}")]
    Images(String),
    #[error(transparent)]
    Qemu(#[from] qemu::Error),
}

/// One swept point.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub op: u64,
    pub kind: &'static str,
    pub addr: u32,
    pub len: u32,
    pub phase: &'static str,
    pub torn: bool,
    /// The tear shape family (`--torn-shapes` name), or `clean` for a clean cut.
    pub shape: &'static str,
    /// Exactly how the cut operation landed (`prefix:12`, `half`, `bits`, `+unstable`), or
    /// `null` for a clean cut.
    pub tear: Option<String>,
    /// Op index of a second cut during recovery (`--nested`).
    pub nested: Option<u64>,
    pub outcome: &'static str,
    pub boots: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Console tail for anything that did not end as expected.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
    pub replay: String,
}

/// The sweep's result (`sweep.json`).
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    pub scenario: String,
    pub script: &'static str,
    /// Why the scenario sweeps that script.
    pub script_reason: String,
    /// The scenario's `outcome:`; every point must end there.
    pub expected: &'static str,
    /// Where the clean run (no cut) ended.
    pub clean_outcome: &'static str,
    pub image_bytes: usize,
    pub clean_ops: usize,
    /// Tear shape families tried (empty: clean cuts only).
    pub tear_shapes: Vec<&'static str>,
    pub unstable_bits: bool,
    /// Points the plan had; fewer were swept when it was interrupted.
    pub planned_points: usize,
    pub points: Vec<Point>,
    pub bricked: usize,
    pub rolled_back: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub other: usize,
    pub seconds: f64,
    pub points_per_second: f64,
    /// `--replay=process` cross-check: points re-run with the real process, and disagreements.
    pub process_checked: usize,
    pub process_disagreements: Vec<String>,
    /// `--replay=qemu`: the points cut on the QEMU firmware.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qemu: Option<qemu::QemuSummary>,
    /// Set when a signal stopped the sweep: the points are those finished before it.
    pub interrupted: Option<String>,
}

/// The path a scenario takes, as the sweep replays it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub script: Script,
    /// Why, in words (for the report).
    pub why: String,
    /// Faults the in-memory server plays on every point (those that decide where the path
    /// ends; passing network trouble does not).
    pub faults: ServerFaults,
}

/// Whether a rollout lets this board be offered the release: not paused, and past the
/// engineering-only phase 0 unless the board is on the engineering list.
fn open(paused: bool, phase: Option<u8>, engineering: &[String]) -> bool {
    !paused && (phase != Some(0) || engineering.iter().any(|d| d == "$device"))
}

/// Is the release ever offered to the board: the initial rollout or a later `rollout:` step
/// lets it through.
fn ever_offered(sc: &Scenario) -> bool {
    let (mut paused, mut phase, mut eng) = (false, None, Vec::new());
    let mut apply = |r: &RolloutDef| {
        if let Some(p) = r.paused {
            paused = p;
        }
        if r.phase.is_some() {
            phase = r.phase;
        }
        if let Some(e) = &r.engineering {
            eng = e.clone();
        }
        open(paused, phase, &eng)
    };
    let mut offered = sc.rollout.as_ref().is_none_or(&mut apply);
    for s in &sc.steps {
        if let Action::Rollout(r) = &s.action {
            offered |= apply(r);
        }
    }
    offered
}

/// Does a fault rule fail every check-in the release sends (so its trial can never confirm)?
fn fails_release_checkins(sc: &Scenario, release: Version) -> bool {
    use fake_server::faults::{Action as Fault, Schedule};
    sc.faults.iter().any(|r| {
        let m = &r.matcher;
        m.path
            .as_deref()
            .is_none_or(|p| fake_server::faults::glob_match(p, "/v1/checkin"))
            && m.method
                .as_deref()
                .is_none_or(|x| x.eq_ignore_ascii_case("POST"))
            && m.device.is_none()
            && m.nth.is_none()
            && m.version
                .as_deref()
                .is_none_or(|v| v == release.to_string())
            && r.schedule == Schedule::Always
            && match &r.action {
                Fault::Status { code, .. } => !(200..300).contains(code),
                Fault::DropAfter { .. } => true,
                _ => false,
            }
    })
}

/// A fault rule that damages the same image bytes in every image response, for good: where
/// (body offset, length).
fn damages_every_image(sc: &Scenario) -> Option<(u32, u32)> {
    use fake_server::faults::{Action as Fault, Schedule};
    sc.faults.iter().find_map(|r| {
        let m = &r.matcher;
        let every = m
            .path
            .as_deref()
            .is_none_or(|p| fake_server::faults::glob_match(p, "/v1/images/v2.bin"))
            && m.device.is_none()
            && m.nth.is_none()
            && m.version.is_none()
            && r.schedule == Schedule::Always;
        match r.action {
            Fault::Corrupt { offset, len } if every && len > 0 => Some((
                u32::try_from(offset).ok()?,
                u32::try_from(len).unwrap_or(u32::MAX),
            )),
            _ => None,
        }
    })
}

/// The path the scenario takes: its release, how the board and server treat it, and the
/// commands it sends. Passing network trouble (a truncated, stalled or refused response that
/// a retry gets past) does not change where a path ends, so the sweep plays none of it; bytes
/// damaged on every fetch do. (Releases published by later steps are not swept: the first
/// release is.)
pub fn script_for(sc: &Scenario) -> Derived {
    let given = sc.images.get(&sc.given.firmware);
    let release = sc
        .release
        .as_ref()
        .and_then(|r| sc.images.get(r).map(|d| (r, d)));
    let rollback = sc
        .steps
        .iter()
        .any(|s| matches!(s.action, Action::Command(CommandName::Rollback)));
    let derived = |script, why: String| Derived {
        script,
        why,
        faults: ServerFaults::default(),
    };
    let Some((name, rel)) = release else {
        return if rollback {
            derived(
                Script::RollbackRefused,
                "no release; a rollback command to a board with no previous image".into(),
            )
        } else {
            derived(Script::NoOp, "no release is offered".into())
        };
    };
    let (g_version, g_counter) = given.map_or((Version::new(1, 0, 0), 1), |g| {
        (g.version.0, g.rollback_counter.unwrap_or(1))
    });
    let version = rel.version.0;
    if version <= g_version {
        return derived(
            Script::NoOp,
            format!(
                "release {name} ({version}) is not newer than the board's {g_version}: never offered"
            ),
        );
    }
    if !ever_offered(sc) {
        return derived(
            Script::NoOp,
            format!("the rollout never lets release {name} through to this board"),
        );
    }
    if let Some(c) = rel.corrupt {
        return derived(
            Script::Refused,
            format!(
                "release {name} is corrupt ({}): the board must refuse it",
                c.as_str()
            ),
        );
    }
    let counter = rel.rollback_counter.unwrap_or(1);
    if counter < g_counter {
        return derived(
            Script::Refused,
            format!(
                "release {name}'s anti-rollback counter {counter} is below the board's floor {g_counter}"
            ),
        );
    }
    if let Some(corrupt) = damages_every_image(sc) {
        return Derived {
            faults: ServerFaults {
                corrupt: Some(corrupt),
                ..ServerFaults::default()
            },
            ..derived(
                Script::Refused,
                format!(
                    "every copy of release {name} is damaged in transit (bytes {}..{}): the board \
                     must give up on it",
                    corrupt.0,
                    corrupt.0.saturating_add(corrupt.1)
                ),
            )
        };
    }
    if rollback {
        return derived(
            Script::Rollback,
            format!("release {name} is confirmed, then a rollback is commanded"),
        );
    }
    if matches!(
        rel.drill,
        Drill::NoNetwork | Drill::CrashInInit | Drill::Hang
    ) {
        return derived(
            Script::FailedTrial,
            format!(
                "release {name} ({}) never confirms its trial",
                rel.drill.as_str()
            ),
        );
    }
    if fails_release_checkins(sc, version) {
        return derived(
            Script::FailedTrial,
            format!("the server fails every check-in of release {name}: its trial never confirms"),
        );
    }
    derived(
        Script::Update,
        format!("release {name} is installed and confirmed"),
    )
}

/// The end every point must reach: the scenario's `outcome:`.
fn expected_end(o: Outcome) -> Result<End, Error> {
    match o {
        Outcome::Updated => Ok(End::Updated),
        Outcome::RolledBack => Ok(End::RolledBack),
        Outcome::Unchanged => Ok(End::Unchanged),
        other => Err(Error::Outcome(other)),
    }
}

/// Builds the images the sweep replays: the board's image and the release, as the scenario
/// defines them (drills are the server's to play in memory, so the images carry none).
fn setup_for(sc: &Scenario) -> Result<Setup, Error> {
    let key = ota_core::keys::generate();
    let untrusted = ota_core::keys::generate();
    let plain = |d: &ImageDef| ImageDef {
        drill: Drill::None,
        ..d.clone()
    };
    let given = sc
        .images
        .get(&sc.given.firmware)
        .map(plain)
        .unwrap_or_else(|| ImageDef::good(Version::new(1, 0, 0)));
    let release = sc
        .release
        .as_ref()
        .and_then(|r| sc.images.get(r))
        .map(plain)
        .unwrap_or_else(|| ImageDef::good(Version::new(2, 0, 0)));
    let build = |d: &ImageDef| crate::images::build(d, &key, &untrusted).map_err(Error::Images);
    let (v1, v2) = (build(&given)?, build(&release)?);
    Ok(Setup::with_images(key, v1, v2, 4096))
}

/// One point to run: the op cut first, how it tears, and a nested second cut.
#[derive(Debug, Clone, Copy)]
struct Job {
    p: PhasedOp,
    tear: Option<(TearFamily, Tear)>,
    nested: Option<u64>,
}

/// Runs the sweep; `progress` is called with (done, total). Once `stop` is set, no new point
/// starts and the report holds the points finished so far.
pub fn run(
    plan: &SweepPlan,
    progress: &(dyn Fn(usize, usize) + Sync),
    stop: &AtomicBool,
) -> Result<SweepReport, Error> {
    if let (Some(from), Some(to)) = (plan.from, plan.to)
        && from > to
    {
        return Err(Error::InvertedRange { from, to });
    }
    if let Some(step) = plan
        .scenario
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::Tamper(_)))
    {
        return Err(Error::Tampers {
            file: plan.scenario.file.display().to_string(),
            line: step.line,
        });
    }
    let expected = expected_end(plan.scenario.outcome)?;
    let derived = script_for(&plan.scenario);
    let script = derived.script;
    let mut setup = setup_for(&plan.scenario)?;
    setup.quirks = plan.quirks;
    setup.faults = derived.faults;
    let (clean, log) = ota_core::sweep::clean_run(&setup, script);
    if log.is_empty() {
        return Err(Error::NothingToSweep {
            script: script.as_str(),
            why: derived.why,
            end: clean.end.as_str(),
        });
    }
    let selected: Vec<PhasedOp> = log
        .iter()
        .copied()
        .filter(|p| {
            plan.from.is_none_or(|f| p.op.index >= f) && plan.to.is_none_or(|t| p.op.index <= t)
        })
        .collect();
    if selected.is_empty() {
        let bound = |b: Option<u64>| b.map_or("…".to_string(), |v| v.to_string());
        return Err(Error::EmptyRange {
            script: script.as_str(),
            range: format!("{}..={}", bound(plan.from), bound(plan.to)),
            ops: log.len(),
        });
    }
    let sector = setup.layout.sector;
    let mut jobs: Vec<Job> = Vec::new();
    for p in &selected {
        jobs.push(Job {
            p: *p,
            tear: None,
            nested: None,
        });
        for (family, shape) in tears_for(&p.op, &plan.tears, sector) {
            let tear = Tear {
                shape,
                unstable: plan.unstable,
            };
            jobs.push(Job {
                p: *p,
                tear: Some((family, tear)),
                nested: None,
            });
        }
        for k in 1..=plan.nested {
            // Deterministic spread of second cuts into the recovery, torn as the first is.
            let tear = (!plan.tears.is_empty()).then_some((
                TearFamily::Half,
                Tear {
                    unstable: plan.unstable,
                    ..Tear::HALF
                },
            ));
            jobs.push(Job {
                p: *p,
                tear,
                nested: Some(p.op.index + u64::from(k) * 7 + u64::from(k * k)),
            });
        }
    }
    let total = jobs.len();
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let finished: Mutex<Vec<(usize, Point)>> = Mutex::new(Vec::with_capacity(total));
    let name = plan.scenario.file.display().to_string();
    let shapes_arg = |family: TearFamily| {
        let mut s = format!(" --torn-shapes {family}");
        if plan.unstable {
            s.push_str(" --unstable-bits");
        }
        s
    };
    std::thread::scope(|s| {
        for _ in 0..plan.jobs.max(1).min(total) {
            s.spawn(|| {
                let mut mine = Vec::new();
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let torn = job.tear.map(|(_, t)| t);
                    let mut cuts = vec![Cut {
                        at: job.p.op.index,
                        torn,
                    }];
                    if let Some(n) = job.nested {
                        cuts.push(Cut { at: n, torn });
                    }
                    let r = run_point(&setup, script, &cuts, None);
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if n.is_multiple_of(64) || n == total {
                        progress(n, total);
                    }
                    let ok = r.end == expected;
                    let op = job.p.op;
                    mine.push((
                        i,
                        Point {
                            op: op.index,
                            kind: op.kind.as_str(),
                            addr: op.addr,
                            len: op.len,
                            phase: job.p.phase.as_str(),
                            torn: torn.is_some(),
                            shape: job.tear.map_or("clean", |(f, _)| f.as_str()),
                            tear: torn.map(|t| t.to_string()),
                            nested: job.nested,
                            outcome: r.end.as_str(),
                            boots: r.boots,
                            detail: if ok || r.end != script.expected() {
                                r.detail
                            } else {
                                format!(
                                    "ended {} where the scenario's outcome is {}",
                                    r.end.as_str(),
                                    expected.as_str()
                                )
                            },
                            log_tail: if ok { Vec::new() } else { r.console_tail },
                            replay: format!(
                                "cargo run --release -p rig -- sweep power-cut --scenario {name} --from {o} --to {o}{}",
                                job.tear.map_or(String::new(), |(f, _)| shapes_arg(f)),
                                o = op.index
                            ),
                        },
                    ));
                }
                finished
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .append(&mut mine);
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut finished = finished.into_inner().unwrap_or_else(|e| e.into_inner());
    finished.sort_by_key(|(i, _)| *i);
    let points: Vec<Point> = finished.into_iter().map(|(_, p)| p).collect();
    let count = |e: End| points.iter().filter(|p| p.outcome == e.as_str()).count();
    let (bricked, rolled_back, updated, unchanged) = (
        count(End::Bricked),
        count(End::RolledBack),
        count(End::Updated),
        count(End::Unchanged),
    );
    let (process_checked, process_disagreements) = match plan.process_sample {
        Some(every) if !stop.load(Ordering::Relaxed) => {
            process::cross_check(&setup, script, &points, every.max(1), stop)
        }
        _ => (0, Vec::new()),
    };
    let qemu = match &plan.qemu {
        Some(replay) if !stop.load(Ordering::Relaxed) => {
            Some(qemu::cross_check(&plan.scenario, script, replay, stop)?)
        }
        _ => None,
    };
    Ok(SweepReport {
        scenario: plan.scenario.name.clone(),
        script: script.as_str(),
        script_reason: derived.why,
        expected: expected.as_str(),
        clean_outcome: clean.end.as_str(),
        image_bytes: setup.v2.len(),
        clean_ops: log.len(),
        tear_shapes: plan.tears.iter().map(|f| f.as_str()).collect(),
        unstable_bits: plan.unstable,
        planned_points: total,
        other: points.len() - bricked - rolled_back - updated - unchanged,
        bricked,
        rolled_back,
        updated,
        unchanged,
        points_per_second: points.len() as f64 / seconds.max(1e-9),
        seconds,
        points,
        process_checked,
        process_disagreements,
        qemu,
        interrupted: None,
    })
}

/// Points that did not end where the scenario must end, plus the clean run if it did not.
pub fn failures(r: &SweepReport) -> usize {
    r.points.iter().filter(|p| p.outcome != r.expected).count()
        + usize::from(r.clean_outcome != r.expected)
}

/// Writes `sweep.json` and `sweep.html` under `root/<run id>/` and repoints `latest`.
pub fn write(r: &SweepReport, root: &Path, run_id: &str) -> Result<PathBuf, crate::report::Error> {
    let dir = root.join(run_id);
    std::fs::create_dir_all(&dir).map_err(|source| crate::report::Error::Io {
        path: dir.clone(),
        source,
    })?;
    let json = serde_json::to_vec(r).map_err(|e| crate::report::Error::Encode {
        what: "sweep.json",
        reason: e.to_string(),
    })?;
    crate::report::write_atomic(&dir.join("sweep.json"), &json)?;
    crate::report::write_atomic(&dir.join("sweep.html"), html::render(r).as_bytes())?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(yaml: &str) -> Scenario {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, yaml).expect("write");
        crate::scenario::load(&path).expect("a valid scenario")
    }

    #[test]
    fn a_tamper_scenario_is_refused_with_its_line() {
        let sc = scenario(
            "about: a case\ngiven: { firmware: v1 }\nrelease: v2\nsteps:\n  - power: on\n  - power: off\n  - tamper: { rewind_state: true }\noutcome: updated\n",
        );
        let plan = SweepPlan {
            scenario: sc,
            tears: Vec::new(),
            unstable: false,
            nested: 0,
            jobs: 1,
            from: None,
            to: None,
            process_sample: None,
            qemu: None,
            quirks: ota_core::device::Quirks::default(),
        };
        let e = run(&plan, &|_, _| {}, &AtomicBool::new(false)).expect_err("refused");
        assert!(matches!(e, Error::Tampers { line: 7, .. }), "{e}");
    }

    #[test]
    fn every_shipped_scenario_sweeps_the_path_it_takes() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("scenarios") {
            let path = entry.expect("entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.ends_with(".yaml") || name.starts_with("bench.") {
                continue;
            }
            let sc = crate::scenario::load(&path).expect("shipped scenarios load");
            if sc
                .steps
                .iter()
                .any(|s| matches!(s.action, Action::Tamper(_)))
            {
                continue; // refused by `run` (tested below)
            }
            let script = script_for(&sc).script;
            let want = match sc.outcome {
                Outcome::Updated => End::Updated,
                Outcome::RolledBack => End::RolledBack,
                _ => End::Unchanged,
            };
            assert_eq!(script.expected(), want, "{name}: {script:?}");
            seen += 1;
        }
        assert!(seen > 20, "{seen}");
    }

    #[test]
    fn scripts_follow_the_release_the_rollout_and_the_commands() {
        let base = "about: a case\ngiven: { firmware: v1 }\nsteps:\n  - power: on\n";
        let cases = [
            ("release: v2\n", "", "updated", Script::Update),
            (
                "release: v2\nimages:\n  v2: { version: 2.0.0, corrupt: signature }\n",
                "",
                "unchanged",
                Script::Refused,
            ),
            (
                "release: v2\nimages:\n  v2: { version: 2.0.0, drill: hang }\n",
                "",
                "rolled-back",
                Script::FailedTrial,
            ),
            (
                "release: v2\nfaults:\n  - match: { path: /v1/checkin, version: 2.0.0 }\n    status: 503\n",
                "",
                "rolled-back",
                Script::FailedTrial,
            ),
            ("release: v1\n", "", "unchanged", Script::NoOp),
            ("", "", "unchanged", Script::NoOp),
            (
                "release: v2\nrollout: { paused: true }\n",
                "",
                "unchanged",
                Script::NoOp,
            ),
            (
                "release: v2\nrollout: { phase: 0, engineering: [] }\n",
                "  - rollout: { engineering: [$device] }\n",
                "updated",
                Script::Update,
            ),
            (
                "",
                "  - command: rollback\n",
                "unchanged",
                Script::RollbackRefused,
            ),
            (
                "release: v2\n",
                "  - command: rollback\n",
                "rolled-back",
                Script::Rollback,
            ),
            (
                "release: v2\nfaults:\n  - match: { path: /v1/images/* }\n    corrupt: { offset: 5000, len: 8 }\n",
                "",
                "unchanged",
                Script::Refused,
            ),
            (
                "release: v2\nfaults:\n  - match: { path: /v1/images/* }\n    truncate_at: 40%\n    times: 1\n",
                "",
                "updated",
                Script::Update,
            ),
        ];
        for (head, steps, outcome, want) in cases {
            let yaml = format!("{head}{base}{steps}outcome: {outcome}\n");
            let sc = scenario(&yaml);
            assert_eq!(script_for(&sc).script, want, "{yaml}");
        }
    }
}
