//! The `rig` command line: argument parsing (clap) into a plan, then the library.
//!
//! `main.rs` only calls [`main_impl`]. Every expected error is a [`crate::Error`] whose
//! [`crate::Error::exit_code`] alone decides the process exit code.

mod args;
mod check;
mod image;
mod rollout;
pub(crate) mod run;

use std::process::ExitCode;

use clap::Parser;

pub use args::{Args, Command};

use crate::Error;
use crate::error::exit;

/// The rig runs many small threads (console readers, flash-log tails, libtest workers); glibc
/// would give most of them their own malloc arena and the resident size would grow with the
/// thread count. Two arenas keep a full suite run under 30 MiB (measured: 34 → 29 MiB).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called before any other thread
    // exists and has no memory-safety preconditions.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// The whole program, minus the process exit.
pub fn main_impl() -> ExitCode {
    limit_malloc_arenas();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The simulated board runs as a hidden subcommand of the rig itself.
    if argv.get(1).is_some_and(|a| a == "__sim-board") {
        return sim_board::main_with_args(argv.into_iter().skip(2));
    }
    let args = match Args::try_parse_from(&argv) {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_tracing();
    match dispatch(args) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(Error::ScenariosFailed { .. }) => ExitCode::from(exit::SCENARIO_FAILED),
        Err(e) => {
            eprintln!("{}", e.chain());
            ExitCode::from(e.exit_code())
        }
    }
}

/// `rig bench-check`.
fn bench_check(path: &std::path::Path) -> Result<(), Error> {
    let bench = crate::bench::load(path)?;
    let summary = crate::bench_check::run(&bench, &mut std::io::stdout().lock())
        .map_err(|e| Error::infra_msg(e.to_string()))?;
    if summary.problems.is_empty() {
        Ok(())
    } else {
        Err(Error::infra_msg(format!(
            "{} bench problem(s)",
            summary.problems.len()
        )))
    }
}

/// `rig sweep power-cut`.
fn sweep(a: &args::SweepArgs) -> Result<(), Error> {
    if let (Some(from), Some(to)) = (a.from, a.to)
        && from > to
    {
        return Err(Error::Usage(format!(
            "--from {from} is after --to {to}: the range is empty"
        )));
    }
    let scenario = crate::scenario::load(&a.scenario)?;
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let tears = if !a.torn_shapes.is_empty() {
        let mut t = a.torn_shapes.clone();
        t.sort();
        t.dedup();
        t
    } else if a.torn || a.unstable_bits {
        ota_core::nor::TearFamily::ALL.to_vec()
    } else {
        Vec::new()
    };
    let plan = crate::sweep::SweepPlan {
        scenario,
        tears,
        unstable: a.unstable_bits,
        nested: a.nested,
        jobs,
        from: a.from,
        to: a.to,
        process_sample: (a.replay == args::Replay::Process).then_some(a.process_every),
        qemu: (a.replay == args::Replay::Qemu).then(|| crate::sweep::qemu::QemuReplay {
            firmware: a.qemu_firmware.clone(),
            points: a.qemu_points,
            gdb_port: a.qemu_gdb_port,
            binary: a.qemu_binary.clone(),
        }),
        quirks: a.quirk.map(args::SweepQuirk::quirks).unwrap_or_default(),
    };
    let stop = sweep_stop_on_signals();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} cut points {per_sec} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let result = crate::sweep::run(
        &plan,
        &|done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
        &stop.flag,
    );
    bar.finish_and_clear();
    let mut report = result.map_err(|e| Error::Usage(e.to_string()))?;
    let signal = *stop.signal.lock().unwrap_or_else(|e| e.into_inner());
    report.interrupted = signal.map(|s| format!("stopped by {s}"));
    let (stamp, _) = run::utc_stamp(std::time::SystemTime::now());
    let run_id = format!("{stamp}-sweep-{}", report.scenario);
    let dir = crate::sweep::write(&report, &a.reports, &run_id)
        .map_err(|e| Error::infra("cannot write the sweep report", e))?;
    if let Some(signal) = signal {
        eprintln!(
            "interrupted by {signal}: partial survival map of {} of {} cut points in {}",
            report.points.len(),
            report.planned_points,
            dir.join("sweep.html").display()
        );
        return Err(Error::Interrupted { signal });
    }
    // A closed stdout (`| head`) is not an error: the report is written, the exit code stands.
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    macro_rules! outln {
        ($($arg:tt)*) => {{
            let _ = writeln!(stdout, $($arg)*);
        }};
    }
    let shapes = if report.tear_shapes.is_empty() {
        String::new()
    } else {
        format!(
            ", torn: {}{}",
            report.tear_shapes.join(","),
            if report.unstable_bits {
                " +unstable"
            } else {
                ""
            }
        )
    };
    outln!(
        "{} cut points, {} bricked, {} rolled-back, {} updated, {} unchanged, {:.0} points/s ({} script, expected {}, {} ops in the clean run{shapes}, {:.2}s)",
        report.points.len(),
        report.bricked,
        report.rolled_back,
        report.updated,
        report.unchanged,
        report.points_per_second,
        report.script,
        report.expected,
        report.clean_ops,
        report.seconds
    );
    if a.replay == args::Replay::Process {
        outln!(
            "process replay: {} points re-run with the real sim-board, {} disagreement(s)",
            report.process_checked,
            report.process_disagreements.len()
        );
        for d in &report.process_disagreements {
            outln!("  {d}");
        }
    }
    let qemu_failed = report.qemu.as_ref().map_or(0, |q| {
        outln!(
            "qemu replay: {} points cut on the QEMU firmware ({} of {} state-record and inactive-slot operations), {} bricked, {} disagreement(s) with the in-memory engine, {:.1}s wall",
            q.points.len(),
            q.points.len(),
            q.candidates,
            q.bricked,
            q.disagreements.len(),
            q.seconds
        );
        for d in &q.disagreements {
            outln!("  {d}");
        }
        q.bricked + q.disagreements.len()
    });
    outln!("survival map: {}", dir.join("sweep.html").display());
    let failed = crate::sweep::failures(&report);
    if failed > 0 || !report.process_disagreements.is_empty() || qemu_failed > 0 {
        outln!(
            "the {} script ({}) must end {} (the scenario's outcome)",
            report.script,
            report.script_reason,
            report.expected
        );
        if report.clean_outcome != report.expected {
            outln!(
                "  the clean run (no cut) ends {}, not {}",
                report.clean_outcome,
                report.expected
            );
        }
        for p in report
            .points
            .iter()
            .filter(|p| p.outcome != report.expected)
            .take(10)
        {
            outln!(
                "  op {} {} ({}{}): {} — {}\n    replay: {}",
                p.op,
                p.kind,
                p.phase,
                p.tear
                    .as_deref()
                    .map_or(String::new(), |t| format!(", torn {t}")),
                p.outcome,
                p.detail,
                p.replay
            );
        }
        return Err(Error::ScenariosFailed {
            failed: failed.max(1),
        });
    }
    Ok(())
}

/// Ends the process after SIGINT/SIGTERM, once what the run had is written.
pub(crate) fn exit_interrupted(signal: &'static str) -> ! {
    std::process::exit(i32::from(Error::Interrupted { signal }.exit_code()))
}

/// Ctrl-C / SIGTERM during a sweep: no new point starts, and the sweep's partial report is
/// written before the rig exits 130 (as `rig run` does).
struct SweepStop {
    flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
    signal: std::sync::Arc<std::sync::Mutex<Option<&'static str>>>,
}

/// Listens for SIGINT and SIGTERM on a thread of its own (the sweep's workers are plain
/// threads); returns once the handlers are installed.
fn sweep_stop_on_signals() -> SweepStop {
    use std::sync::atomic::Ordering;
    let stop = SweepStop {
        flag: Default::default(),
        signal: Default::default(),
    };
    let (flag, signal) = (stop.flag.clone(), stop.signal.clone());
    let (ready, installed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            let _ = ready.send(());
            return;
        };
        rt.block_on(async move {
            use tokio::signal::unix::{SignalKind, signal as unix_signal};
            let (Ok(mut int), Ok(mut term)) = (
                unix_signal(SignalKind::interrupt()),
                unix_signal(SignalKind::terminate()),
            ) else {
                let _ = ready.send(());
                return;
            };
            let _ = ready.send(());
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            *signal.lock().unwrap_or_else(|e| e.into_inner()) = Some(name);
            flag.store(true, Ordering::Relaxed);
        });
    });
    let _ = installed.recv_timeout(std::time::Duration::from_secs(5));
    stop
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn dispatch(args: Args) -> Result<(), Error> {
    match args.command {
        Command::Run(r) => run::run(r),
        Command::Check(c) => check::check(&c.paths),
        Command::Keygen(k) => image::keygen(&k.out),
        Command::Image(i) => image::image(i),
        Command::Sweep(args::SweepCommand::PowerCut(s)) => sweep(&s),
        Command::Rollout(r) => rollout::rollout(&r),
        Command::BenchCheck { bench } => bench_check(&bench),
    }
}
