//! `rig run`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libtest_mimic::{Arguments, Failed, FormatSetting, Trial};

use super::args::{OutputFormat, RunArgs};
use crate::Error;
use crate::engine::{self, RunContext};
use crate::scenario::{self, Scenario};
use crate::verdict::{RunReport, ScenarioResult, Status};

/// The options the rig gives every sim board itself: a `--sim-arg` may not give them again.
const RIG_SIM_ARGS: [&str; 10] = [
    "--flash",
    "--server",
    "--device",
    "--flash-log",
    "--factory",
    "--trust-key",
    "--factory-reset",
    "--cut-at-flash-op",
    "--cut-at-slot-offset",
    "--torn",
];

/// Checks `--sim-arg`s as the board will parse them, before any board starts: a board that
/// refuses its arguments exits at power-on, which would look like a firmware failure.
fn check_sim_args(extra: &[String]) -> Result<(), Error> {
    use clap::Parser;
    if extra.is_empty() {
        return Ok(());
    }
    let given = extra.join(" ");
    if let Some(taken) = extra.iter().find_map(|a| {
        RIG_SIM_ARGS
            .iter()
            .find(|o| a == *o || a.strip_prefix(*o).is_some_and(|r| r.starts_with('=')))
    }) {
        return Err(Error::Usage(format!(
            "--sim-arg {given}: the rig sets `{taken}` itself (it gives every board {})",
            RIG_SIM_ARGS.join(", ")
        )));
    }
    // What the rig passes (placeholders: nothing is opened), then the extra arguments.
    let argv = [
        "sim-board",
        "--flash",
        "flash.bin",
        "--server",
        "http://127.0.0.1:1",
        "--device",
        "dry-run",
        "--flash-log",
        "flash.log",
    ]
    .into_iter()
    .map(String::from)
    .chain(extra.iter().cloned());
    sim_board::Args::try_parse_from(argv)
        .map(drop)
        .map_err(|e| {
            use clap::error::ErrorKind;
            let why = match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    "the board would print its help or version and exit instead of running".into()
                }
                _ => {
                    let rendered = e.to_string();
                    let first = rendered.lines().next().unwrap_or_default();
                    let why = first.strip_prefix("error: ").unwrap_or(first);
                    format!("the sim board refuses it: {why}")
                }
            };
            Error::Usage(format!("--sim-arg {given}: {why}"))
        })
}

pub(super) fn default_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from("scenarios")]
    } else {
        paths.to_vec()
    }
}

/// The validated plan of a `rig run`.
struct RunPlan {
    boards: Boards,
    scenarios: Vec<Scenario>,
    /// Scenarios the selected boards cannot run, with why (reported as skipped).
    unsupported: Vec<(Scenario, String)>,
    jobs: usize,
    repeat: Option<u32>,
    seed: u64,
}

/// Which boards a run uses.
enum Boards {
    /// A simulated board per attempt (the built-in `sim`, or a sim board of a bench file).
    Sim {
        console: engine::ConsoleMode,
        name: String,
    },
    /// Hardware boards of a bench file (real, or emulated by sim boards), by name.
    Bench {
        file: PathBuf,
        bench: crate::bench::Bench,
        names: Vec<String>,
    },
}

/// Which boards a run uses: the built-in sim board, or boards of a bench file.
fn boards(a: &RunArgs) -> Result<Boards, Error> {
    let Some(path) = &a.bench else {
        if a.board != "sim" {
            return Err(Error::Usage(format!(
                "unknown board `{}`: without --bench the rig drives `sim`",
                a.board
            )));
        }
        return Ok(Boards::Sim {
            console: engine::ConsoleMode::Stdout,
            name: "sim".into(),
        });
    };
    let bench = crate::bench::load(path).map_err(|e| match e {
        crate::bench::Error::Invalid(inner) => Error::Scenario(inner),
        other => Error::Usage(other.to_string()),
    })?;
    let selected = if a.board == "sim" && !bench.boards.contains_key("sim") {
        bench.boards.iter().map(|(n, b)| (n.as_str(), b)).collect()
    } else {
        bench.select(&a.board)
    };
    if selected.is_empty() {
        return Err(Error::Usage(format!(
            "{}: no board matches `{}` (boards: {})",
            path.display(),
            a.board,
            bench.boards.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    use crate::bench::BoardClass;
    let mut sims = Vec::new();
    let mut hardware = Vec::new();
    for (name, board) in &selected {
        match board.class() {
            Ok(BoardClass::Sim { pty }) => sims.push((name.to_string(), pty)),
            Ok(BoardClass::Hardware { .. }) => {
                board.runnable().map_err(|why| {
                    Error::Usage(format!("{}: board `{name}`: {why}", path.display()))
                })?;
                hardware.push(name.to_string());
            }
            Err(why) => {
                return Err(Error::Usage(format!(
                    "{}: board `{name}`: {why}",
                    path.display()
                )));
            }
        }
    }
    match (sims.first(), hardware.is_empty()) {
        (Some(_), false) => Err(Error::Usage(format!(
            "{}: `--board {}` selects simulated boards ({}) and hardware boards ({}): pick one kind with a name or a label",
            path.display(),
            a.board,
            sims.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            hardware.join(", ")
        ))),
        (Some((name, pty)), true) => Ok(Boards::Sim {
            console: if *pty {
                engine::ConsoleMode::Pty
            } else {
                engine::ConsoleMode::Stdout
            },
            name: name.clone(),
        }),
        (None, _) => Ok(Boards::Bench {
            file: path.clone(),
            bench,
            names: hardware,
        }),
    }
}

/// Why the selected boards cannot run `sc`, if they cannot: exact flash cuts need the
/// simulated board; breakpoint cuts need hardware boards with a debug probe (probe-rs or a
/// QEMU gdbstub).
fn unsupported(sc: &Scenario, boards: &Boards) -> Option<String> {
    let probes = match boards {
        Boards::Sim { .. } => false,
        Boards::Bench { bench, names, .. } => names.iter().all(|n| {
            matches!(
                bench.boards.get(n).and_then(|b| b.probe.as_ref()),
                Some(
                    crate::bench::ProbeConfig::ProbeRs { .. }
                        | crate::bench::ProbeConfig::Gdb { .. }
                )
            )
        }),
    };
    let hardware = matches!(boards, Boards::Bench { .. });
    // A QEMU board's flash is a file the rig holds: tamper steps change it while it is off.
    let flash_files = match boards {
        Boards::Sim { .. } => true,
        Boards::Bench { bench, names, .. } => names
            .iter()
            .all(|n| bench.boards.get(n).is_some_and(|b| b.qemu.is_some())),
    };
    sc.steps.iter().find_map(|s| {
        let at = format!("{}:{}", sc.file.display(), s.line);
        if matches!(s.action, crate::scenario::Action::Tamper(_)) && !flash_files {
            return Some(format!(
                "{at}: a tamper step changes the board's flash file directly, which only the simulated board and QEMU boards have"
            ));
        }
        let crate::scenario::Action::Cut(c) = &s.action else {
            return None;
        };
        if c.when.on.is_flash() && hardware && flash_files {
            // QEMU boards: a slot write is a filtered breakpoint on the firmware's flash
            // program function; an operation index is not comparable across the firmwares.
            match c.when.on {
                crate::scenario::TriggerOn::SlotWrite(_) => None,
                _ => Some(format!(
                    "{at}: `flash: {{ op: N }}` counts the simulated board's flash operations from its own provisioning; a QEMU board starts from a golden flash file with erased state records that its bootloader rebuilds first, and its app image has another size, so its N-th operation is a different one (cut with `flash: {{ slot_write: P% }}` or a breakpoint on `otarig_flash_write`/`otarig_flash_erase` instead)"
                )),
            }
        } else if c.when.on.is_flash() && hardware {
            Some(format!(
                "{at}: an exact flash-operation cut needs the simulated board (a relay cannot know where the firmware is in its flash work); on hardware cut at a breakpoint, on a console line or at an HTTP byte count"
            ))
        } else if matches!(c.when.on, crate::scenario::TriggerOn::Breakpoint(_)) && !probes {
            Some(format!(
                "{at}: a breakpoint cut needs hardware boards with a debug probe (probe-rs, or a QEMU board's gdbstub; on the simulated board, cut at an exact flash operation)"
            ))
        } else {
            None
        }
    })
}

fn plan(a: &RunArgs) -> Result<RunPlan, Error> {
    check_sim_args(&a.sim_args)?;
    let boards = boards(a)?;
    let (mut paths, mut filters) = (Vec::new(), Vec::new());
    for item in &a.items {
        if Path::new(item).exists() {
            paths.push(PathBuf::from(item));
        } else if item.ends_with(".yaml") || item.ends_with(".yml") || item.contains('/') {
            return Err(Error::Usage(format!(
                "{item}: no such scenario file or directory"
            )));
        } else {
            filters.push(item.clone());
        }
    }
    let files = scenario::discover(&default_paths(&paths))?;
    let mut scenarios = Vec::new();
    let mut errors = Vec::new();
    for f in &files {
        match scenario::load(f) {
            Ok(s) => scenarios.push(s),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(Error::Usage(format!(
            "invalid scenario file(s); nothing was run:\n{}",
            errors.join("\n")
        )));
    }
    let mut names = std::collections::HashSet::new();
    for s in &scenarios {
        if !names.insert(s.name.clone()) {
            return Err(Error::Usage(format!(
                "{}: scenario name `{}` is used twice",
                s.file.display(),
                s.name
            )));
        }
    }
    scenarios.retain(|s| {
        filters.is_empty()
            || filters.iter().any(|f| {
                if a.exact {
                    s.name == *f
                } else {
                    s.name.contains(f.as_str())
                }
            })
    });
    if a.ignored {
        scenarios.retain(|s| s.ignore);
    }
    // Before boards can skip any: each scenario is run, ignored or skipped in exactly one part.
    if let Some(part) = a.partition {
        let mut names: Vec<String> = scenarios.iter().map(|s| s.name.clone()).collect();
        names.sort_unstable();
        scenarios.retain(|s| names.binary_search(&s.name).is_ok_and(|i| part.contains(i)));
    }
    let (runnable, not): (Vec<_>, Vec<_>) = scenarios
        .into_iter()
        .map(|s| {
            let why = unsupported(&s, &boards);
            (s, why)
        })
        .partition(|(_, why)| why.is_none());
    scenarios = runnable.into_iter().map(|(s, _)| s).collect();
    let unsupported: Vec<(Scenario, String)> = not
        .into_iter()
        .filter_map(|(s, why)| Some((s, why?)))
        .collect();
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let jobs = match &boards {
        // One scenario per board at a time.
        Boards::Bench { names, .. } => a.jobs.unwrap_or(names.len()).clamp(1, names.len()),
        Boards::Sim { .. } => a.jobs.unwrap_or((cpus * 2).clamp(2, 8)).max(1),
    };
    let seed = a.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id())
    });
    Ok(RunPlan {
        boards,
        scenarios,
        unsupported,
        jobs,
        repeat: a.repeat,
        seed,
    })
}

/// `rig run`.
pub fn run(a: RunArgs) -> Result<(), Error> {
    let plan = plan(&a)?;
    let trials_args = Arguments {
        list: a.list,
        exact: a.exact,
        include_ignored: a.include_ignored || a.ignored,
        test_threads: Some(plan.jobs),
        format: Some(match a.format {
            OutputFormat::Terse => FormatSetting::Terse,
            OutputFormat::Pretty => FormatSetting::Pretty,
        }),
        ..Arguments::default()
    };
    if a.list {
        let trials = plan
            .scenarios
            .iter()
            .map(|s| Trial::test(s.name.clone(), || Ok(())).with_ignored_flag(s.ignore))
            .collect();
        let _listed = libtest_mimic::run(&trials_args, trials);
        return Ok(());
    }

    let started_at = SystemTime::now();
    let started = Instant::now();
    let (stamp, rfc3339) = utc_stamp(started_at);
    let run_id = format!("{stamp}-{:04x}", plan.seed as u16);
    let work_dir = std::env::temp_dir().join(format!("otarig-{run_id}"));
    let _cleanup = RemoveOnDrop(work_dir.clone());
    let images = crate::images::ImageStore::create(&work_dir.join("images"))
        .map_err(|e| Error::infra_msg(e.to_string()))?;
    let exe = std::env::current_exe().map_err(|e| Error::infra("cannot find the rig binary", e))?;
    let ctx = Arc::new(RunContext {
        work_dir: work_dir.join("boards"),
        images,
        sim_program: vec![exe.into_os_string(), OsString::from("__sim-board")],
        sim_args: a.sim_args.clone(),
        seed: plan.seed,
        settle: Duration::from_secs(a.settle_secs),
        replay_prefix: "cargo run --release -p rig --".into(),
        replay_suffix: match &a.bench {
            Some(b) => format!(" --bench {} --board {}", b.display(), a.board),
            None => String::new(),
        },
        console: match &plan.boards {
            Boards::Sim { console, .. } => *console,
            Boards::Bench { .. } => engine::ConsoleMode::Pty,
        },
    });
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::infra("cannot start the async runtime", e))?,
    );
    // Hardware boards are opened (locked, safe state, console reader) for the whole run and
    // lent to one scenario at a time; dropping the pool powers them to their safe state.
    let pool = match &plan.boards {
        Boards::Sim { .. } => None,
        Boards::Bench { file, bench, names } => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let opts = engine::bench_boards::OpenOptions {
                bench_file: file,
                work_dir: &ctx.work_dir,
                lock_dir: &engine::bench_boards::default_lock_dir(),
                sim_program: &ctx.sim_program,
                sim_args: &ctx.sim_args,
                images: &ctx.images,
            };
            let pool = engine::bench_boards::BoardPool::open(bench, &names, &opts)
                .map_err(Error::infra_msg)?;
            println!("boards: {}", names.join(", "));
            Some(Arc::new(pool))
        }
    };
    let board_label = match &plan.boards {
        Boards::Sim { name, .. } => name.clone(),
        Boards::Bench { names, .. } => names.join(","),
    };
    let results: Arc<Mutex<Vec<ScenarioResult>>> = Arc::new(Mutex::new(Vec::new()));
    let new_report = {
        let (run_id, started_at, seed) = (run_id.clone(), rfc3339.clone(), plan.seed);
        move |scenarios: Vec<ScenarioResult>| RunReport {
            schema: RunReport::SCHEMA,
            run_id: run_id.clone(),
            started: started_at.clone(),
            duration: started.elapsed(),
            rig_version: env!("CARGO_PKG_VERSION").into(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            seed,
            scenarios,
            interrupted: None,
        }
    };
    {
        // Ctrl-C / SIGTERM (a CI timeout): relays to their safe state (sim boards power off by
        // themselves when the rig goes), and the scenarios finished so far are reported.
        let (results, new_report, reports) =
            (Arc::clone(&results), new_report.clone(), a.reports.clone());
        let _guard = runtime.enter();
        crate::backend::relay::SafeStates::on_signals(move |signal| {
            let mut scenarios = results.lock().unwrap_or_else(|e| e.into_inner()).clone();
            scenarios.sort_by(|a, b| a.name.cmp(&b.name));
            let mut report = new_report(scenarios);
            report.interrupted = Some(format!("stopped by {signal}"));
            match crate::report::write_all(&mut report, &reports) {
                Ok(dir) => eprintln!(
                    "interrupted by {signal}: report of the {} finished scenario(s) in {}",
                    report.scenarios.len(),
                    dir.display()
                ),
                Err(e) => eprintln!("interrupted by {signal}; cannot write the report: {e}"),
            }
            super::exit_interrupted(signal);
        });
    }
    for (sc, why) in &plan.unsupported {
        println!("skipped {}: {why}", sc.name);
        results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ScenarioResult {
                name: sc.name.clone(),
                about: sc.about.clone(),
                file: sc.file.clone(),
                board: board_label.clone(),
                expected: sc.outcome,
                attempts: Vec::new(),
                skipped: Some(why.clone()),
            });
    }
    println!(
        "otarig run {run_id} (seed {}), {} scenario(s){}, {} at a time",
        plan.seed,
        plan.scenarios.len(),
        a.partition
            .map_or(String::new(), |p| format!(" (partition {p})")),
        plan.jobs
    );
    let trials = plan
        .scenarios
        .iter()
        .map(|sc| {
            let sc = sc.clone();
            let ctx = Arc::clone(&ctx);
            let runtime = Arc::clone(&runtime);
            let results = Arc::clone(&results);
            let repeat = plan.repeat.unwrap_or(sc.repeat);
            let board_label = board_label.clone();
            let pool = pool.clone();
            let ignore = sc.ignore;
            Trial::test(sc.name.clone(), move || {
                let mut attempts = Vec::new();
                let mut board_name = board_label;
                match &pool {
                    None => {
                        for i in 1..=repeat {
                            attempts
                                .push(runtime.block_on(engine::run_attempt(&ctx, &sc, i, None)));
                        }
                    }
                    Some(pool) => match pool.take() {
                        Ok(mut board) => {
                            board_name = board.name.to_string();
                            for i in 1..=repeat {
                                attempts.push(runtime.block_on(engine::run_attempt(
                                    &ctx,
                                    &sc,
                                    i,
                                    Some(&mut board),
                                )));
                            }
                            pool.give(board);
                        }
                        Err(why) => attempts.push(engine::not_run(&sc, &why)),
                    },
                }
                let result = ScenarioResult {
                    name: sc.name.clone(),
                    about: sc.about.clone(),
                    file: sc.file.clone(),
                    board: board_name,
                    expected: sc.outcome,
                    attempts,
                    skipped: None,
                };
                let verdict = trial_verdict(&result);
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(result);
                verdict
            })
            .with_ignored_flag(ignore)
        })
        .collect();
    let conclusion = libtest_mimic::run(&trials_args, trials);
    if let Some(pool) = &pool {
        for (board, why) in pool.out_of_run() {
            eprintln!("board {board} was taken out of the run: {why}");
        }
    }
    // Every board to its safe state before the report is written.
    drop(pool);

    let mut scenarios = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    scenarios.sort_by(|a, b| a.name.cmp(&b.name));
    let mut report = new_report(scenarios);
    let dir = crate::report::write_all(&mut report, &a.reports)
        .map_err(|e| Error::infra("cannot write the report", e))?;
    let (passed, failed, infra, _) = report.counts();
    let rss = crate::rss::peak_rss_kib().map_or(String::new(), |k| {
        format!(", rig peak RSS {:.1} MiB", k as f64 / 1024.0)
    });
    println!(
        "{passed} passed, {failed} failed, {infra} infra errors in {:.1}s{rss}",
        report.duration.as_secs_f64()
    );
    println!("report: {}", dir.join("report.html").display());
    if failed > 0 || (conclusion.has_failed() && infra == 0) {
        Err(Error::ScenariosFailed { failed })
    } else if infra > 0 {
        Err(Error::infra_msg(format!(
            "{infra} scenario(s) hit an infrastructure error (see the report)"
        )))
    } else {
        Ok(())
    }
}

/// libtest's view of a scenario: failed with a readable reason, or ok.
fn trial_verdict(r: &ScenarioResult) -> Result<(), Failed> {
    let (passed, total) = r.pass_rate();
    let bad = r.attempts.iter().find(|a| a.status != Status::Passed);
    match (r.status(), bad) {
        (Status::Passed | Status::Skipped, _) => Ok(()),
        (status, Some(a)) => {
            let label = if status == Status::InfraError {
                "infra-error"
            } else {
                "failed"
            };
            let tail: Vec<String> = a
                .events
                .iter()
                .rev()
                .take(15)
                .rev()
                .map(|e| {
                    format!(
                        "    {:>9.3}s {}",
                        e.t.as_secs_f64(),
                        crate::report::event_text(&e.kind)
                    )
                })
                .collect();
            Err(Failed::from(format!(
                "{label} ({passed}/{total} attempts passed): {}\n  replay: {}\n  resolved: {}\n  timeline tail:\n{}",
                a.reason.as_deref().unwrap_or("no reason recorded"),
                a.replay,
                if a.resolved.is_empty() {
                    "-".into()
                } else {
                    a.resolved.join("; ")
                },
                tail.join("\n")
            )))
        }
        (_, None) => Ok(()),
    }
}

/// `(20261125T021502Z, 2026-11-25T02:15:02Z)` for a system time.
pub fn utc_stamp(t: SystemTime) -> (String, String) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    (
        format!("{y:04}{mo:02}{d:02}T{h:02}{m:02}{s:02}Z"),
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z"),
    )
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if std::env::var_os("OTARIG_KEEP_WORK").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_args_are_checked_as_the_board_parses_them() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for good in [
            args(&[]),
            args(&["--trial-window=2s"]),
            args(&["--quirk=skip-body-hash", "--max-attempts", "3"]),
            args(&["--checkin-interval", "50ms", "--hw-rev=b"]),
        ] {
            check_sim_args(&good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
        }
        for (bad, says) in [
            (args(&["--trial-window=soon"]), "trial-window"),
            (args(&["--bogus"]), "--bogus"),
            (args(&["--quirk=everything"]), "everything"),
            (args(&["--max-attempts"]), "max-attempts"),
            (args(&["--flash=/tmp/x"]), "the rig sets `--flash` itself"),
            (args(&["--torn"]), "the rig sets `--torn` itself"),
            (args(&["--help"]), "print its help"),
        ] {
            let e = check_sim_args(&bad).expect_err("refused").to_string();
            assert!(e.starts_with("--sim-arg "), "{e}");
            assert!(e.contains(says), "{bad:?}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn utc_stamps() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_918_502);
        let (compact, full) = utc_stamp(t);
        assert_eq!(full, "2026-11-29T02:15:02Z");
        assert_eq!(compact, "20261129T021502Z");
        assert_eq!(utc_stamp(UNIX_EPOCH).1, "1970-01-01T00:00:00Z");
    }
}
