//! `rig sweep power-cut`: cut power at every flash operation of a scenario's update path
//! (and, with `--torn`, tear every one of them), restore it, let the board recover, and
//! classify where it ends. The fast engine replays the update in memory with the same device
//! logic (`ota_core::sweep`); `--replay=process` re-runs the real sim-board process for a
//! sample of points to cross-check it.

mod html;
mod process;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use ota_core::nor::Cut;
use ota_core::sweep::{PhasedOp, Script, Setup, run_point};
use serde::Serialize;

use crate::scenario::{Action, Drill, Scenario};

/// What to sweep.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    pub scenario: Scenario,
    pub torn: bool,
    pub nested: u32,
    pub jobs: usize,
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub process_sample: Option<usize>,
    /// Deliberate firmware defects (test only).
    pub quirks: ota_core::device::Quirks,
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
    pub expected: &'static str,
    pub image_bytes: usize,
    pub clean_ops: usize,
    pub points: Vec<Point>,
    pub bricked: usize,
    pub rolled_back: usize,
    pub updated: usize,
    pub other: usize,
    pub seconds: f64,
    pub points_per_second: f64,
    /// `--replay=process` cross-check: points re-run with the real process, and disagreements.
    pub process_checked: usize,
    pub process_disagreements: Vec<String>,
}

/// Which script a scenario exercises.
pub fn script_for(sc: &Scenario) -> Script {
    let release = sc.release.as_deref().and_then(|r| sc.images.get(r));
    if sc
        .steps
        .iter()
        .any(|s| matches!(s.action, Action::Command(_)))
    {
        Script::Rollback
    } else if release
        .is_some_and(|d| matches!(d.drill, Drill::NoNetwork | Drill::CrashInInit | Drill::Hang))
    {
        Script::FailedTrial
    } else {
        Script::Update
    }
}

/// Runs the sweep; `progress` is called with (done, total).
pub fn run(plan: &SweepPlan, progress: &(dyn Fn(usize, usize) + Sync)) -> SweepReport {
    let script = script_for(&plan.scenario);
    let body = plan
        .scenario
        .release
        .as_deref()
        .and_then(|r| plan.scenario.images.get(r))
        .and_then(|d| d.size)
        .unwrap_or(crate::engine::images::DEFAULT_BODY) as usize;
    let mut setup = Setup::new(body, 4096);
    setup.quirks = plan.quirks;
    let (_, log) = ota_core::sweep::clean_run(&setup, script);
    let selected: Vec<PhasedOp> = log
        .iter()
        .copied()
        .filter(|p| {
            plan.from.is_none_or(|f| p.op.index >= f) && plan.to.is_none_or(|t| p.op.index <= t)
        })
        .collect();
    // Every point: each op, clean and (with --torn) torn, plus nested cuts.
    let mut jobs: Vec<(PhasedOp, bool, Option<u64>)> = Vec::new();
    for p in &selected {
        jobs.push((*p, false, None));
        if plan.torn {
            jobs.push((*p, true, None));
        }
        for k in 1..=plan.nested {
            // Deterministic spread of second cuts into the recovery.
            jobs.push((
                *p,
                plan.torn,
                Some(p.op.index + u64::from(k) * 7 + u64::from(k * k)),
            ));
        }
    }
    let total = jobs.len();
    let started = Instant::now();
    let done = AtomicUsize::new(0);
    let mut points: Vec<Point> = Vec::with_capacity(total);
    let workers = plan.jobs.max(1);
    let chunk = total.div_ceil(workers).max(1);
    let name = plan.scenario.file.display().to_string();
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                let setup = &setup;
                let done = &done;
                let name = &name;
                s.spawn(move || {
                    part.iter()
                        .map(|(p, torn, nested)| {
                            let mut cuts = vec![Cut { at: p.op.index, torn: *torn }];
                            if let Some(n) = nested {
                                cuts.push(Cut { at: *n, torn: *torn });
                            }
                            let r = run_point(setup, script, &cuts, None);
                            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                            if n % 64 == 0 || n == total {
                                progress(n, total);
                            }
                            let ok = r.end == script.expected();
                            Point {
                                op: p.op.index,
                                kind: p.op.kind.as_str(),
                                addr: p.op.addr,
                                len: p.op.len,
                                phase: p.phase.as_str(),
                                torn: *torn,
                                nested: *nested,
                                outcome: r.end.as_str(),
                                boots: r.boots,
                                detail: r.detail,
                                log_tail: if ok { Vec::new() } else { r.console_tail },
                                replay: format!(
                                    "cargo run --release -p rig -- sweep power-cut --scenario {name} --from {op} --to {op}{}",
                                    if *torn { " --torn" } else { "" },
                                    op = p.op.index
                                ),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            if let Ok(mut part) = h.join() {
                points.append(&mut part);
            }
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let count = |o: &str| points.iter().filter(|p| p.outcome == o).count();
    let (bricked, rolled_back, updated) =
        (count("bricked"), count("rolled-back"), count("updated"));
    let (process_checked, process_disagreements) = match plan.process_sample {
        Some(every) => process::cross_check(&plan.scenario, &setup, script, &points, every.max(1)),
        None => (0, Vec::new()),
    };
    SweepReport {
        scenario: plan.scenario.name.clone(),
        script: script.as_str(),
        expected: script.expected().as_str(),
        image_bytes: setup.v2.len(),
        clean_ops: log.len(),
        other: points.len() - bricked - rolled_back - updated,
        bricked,
        rolled_back,
        updated,
        points_per_second: points.len() as f64 / seconds.max(1e-9),
        seconds,
        points,
        process_checked,
        process_disagreements,
    }
}

/// Points that did not end where the script must end.
pub fn failures(r: &SweepReport) -> usize {
    r.points.iter().filter(|p| p.outcome != r.expected).count()
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
