//! `otarig-fuzz`: runs the fuzz targets, each in a child process of its own (an input that
//! aborts the process — a stack overflow, an allocation failure — is found by replaying the
//! child's deterministic run with every input recorded), prints the figures, exits 1 if any
//! input failed. See `tools/fuzz/README.md`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use clap::Parser;
use otarig_fuzz::engine::{self, Failure, HANG_EXIT, Kind, Options, Stats};
use otarig_fuzz::targets::{TARGETS, Target, Verdict};

/// Bounded, corpus-driven fuzzing of otarig's parsers (stable Rust, no coverage).
#[derive(Debug, Parser)]
#[command(name = "otarig-fuzz", version)]
struct Cli {
    /// Targets to run (default: all; see --list).
    targets: Vec<String>,
    /// Time budget per target, in seconds (default 10 when --execs is not given either).
    #[arg(long)]
    seconds: Option<f64>,
    /// Execution budget per target (with --seconds: whichever ends first).
    #[arg(long)]
    execs: Option<u64>,
    /// The run is a function of this seed (and of the corpus).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// An input slower than this (milliseconds) is a failure.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Seed corpus folder (`<dir>/<target>/*`).
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// Where failing inputs are written (`<dir>/<target>/`).
    #[arg(long, value_name = "DIR")]
    crashes: Option<PathBuf>,
    /// List the targets and exit.
    #[arg(long)]
    list: bool,
    /// (Re)write the seed corpus from the shipped files and ota-core artifacts, then exit.
    #[arg(long)]
    seed_corpus: bool,
    /// Run one target on these files (a failing input from `crashes/`), report, exit.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    replay: Vec<PathBuf>,
    /// Run targets in this process (no isolation from aborts; for debugging).
    #[arg(long)]
    in_process: bool,
    /// Internal: run one target and print its figures as JSON (the parent's child mode).
    #[arg(long, hide = true)]
    worker: bool,
    /// Internal: write every input to FILE before running it.
    #[arg(long, hide = true, value_name = "FILE")]
    record: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(&cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("otarig-fuzz: {message}");
            ExitCode::from(2)
        }
    }
}

fn real_main(cli: &Cli) -> Result<ExitCode, String> {
    let corpus = cli
        .corpus
        .clone()
        .unwrap_or_else(|| otarig_fuzz::crate_dir().join("corpus"));
    let crashes = cli
        .crashes
        .clone()
        .unwrap_or_else(|| otarig_fuzz::crate_dir().join("crashes"));
    if cli.list {
        for t in TARGETS {
            println!("{:<18} {}", t.name, t.about);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if cli.seed_corpus {
        let root = otarig_fuzz::workspace_root();
        let written = otarig_fuzz::seeds::write_corpus(&root, &corpus)
            .map_err(|e| format!("writing the corpus: {e}"))?;
        for (target, n) in written {
            let t = otarig_fuzz::targets::find(target).expect("known target");
            let seeds = engine::load_seeds(t, &corpus).map_err(|e| e.to_string())?;
            let valid = seeds
                .iter()
                .filter(|s| engine::exec(t, s) == Ok(Verdict::Accepted))
                .count();
            println!("{target:<18} {n:>3} seeds ({valid} accepted)");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let targets: Vec<&'static Target> = if cli.targets.is_empty() {
        TARGETS.iter().collect()
    } else {
        cli.targets
            .iter()
            .map(|name| {
                otarig_fuzz::targets::find(name)
                    .ok_or_else(|| format!("no target `{name}` (--list shows them)"))
            })
            .collect::<Result<_, _>>()?
    };
    if !cli.replay.is_empty() {
        let [target] = targets[..] else {
            return Err("--replay needs exactly one target".into());
        };
        return replay(target, &cli.replay);
    }
    if cli.worker && targets.len() != 1 {
        return Err("--worker runs one target".into());
    }
    let timeout = Duration::from_millis(cli.timeout_ms);
    let opts = Options {
        seconds: cli.seconds.or(if cli.execs.is_none() {
            Some(10.0)
        } else {
            None
        }),
        execs: cli.execs,
        seed: cli.seed,
        timeout,
        hang: (timeout * 10).max(Duration::from_secs(1)),
        corpus,
        crashes: Some(crashes),
        record: cli.record.clone(),
    };
    if cli.worker {
        let stats = engine::run(targets[0], &opts).map_err(|e| e.to_string())?;
        println!(
            "RESULT {}",
            serde_json::to_string(&stats).map_err(|e| e.to_string())?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut all = Vec::new();
    println!(
        "{:<18} {:>6} {:>10} {:>8} {:>10} {:>9} {:>9} {:>8}",
        "target", "seeds", "execs", "time", "execs/s", "accepted", "slowest", "failures"
    );
    for target in targets {
        let stats = if cli.in_process {
            engine::run(target, &opts).map_err(|e| format!("{}: {e}", target.name))?
        } else {
            child(target, &opts)?
        };
        print_row(&stats);
        all.push(stats);
    }
    let execs: u64 = all.iter().map(|s| s.execs).sum();
    let seconds: f64 = all.iter().map(|s| s.seconds).sum();
    let failures: u64 = all.iter().map(Stats::crashes).sum();
    println!(
        "{:<18} {:>6} {:>10} {:>7.1}s {:>10.0} {:>9} {:>9} {:>8}",
        "total",
        all.iter().map(|s| s.seeds).sum::<usize>(),
        execs,
        seconds,
        execs as f64 / seconds.max(1e-9),
        "",
        "",
        failures
    );
    for s in &all {
        for (problem, hit) in &s.known {
            let shown = &hit.example_hex[..hit.example_hex.len().min(512)];
            println!(
                "\nKNOWN (reported, not a failure) {}: {problem} ×{}\n  first input ({} bytes) hex: {shown}",
                s.target,
                hit.count,
                hit.example_hex.len() / 2
            );
        }
    }
    for s in &all {
        for f in &s.failures {
            report_failure(&s.target, f);
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_row(s: &Stats) {
    println!(
        "{:<18} {:>6} {:>10} {:>7.1}s {:>10.0} {:>8.1}% {:>7.1}ms {:>8}",
        s.target,
        s.seeds,
        s.execs,
        s.seconds,
        s.execs_per_sec(),
        100.0 * s.accepted as f64 / (s.execs.max(1)) as f64,
        s.slowest_us as f64 / 1000.0,
        s.crashes()
    );
}

fn report_failure(target: &str, f: &Failure) {
    let shown = &f.input_hex[..f.input_hex.len().min(1024)];
    println!(
        "\nFAILURE {target}: {} ×{}: {}\n  file: {}\n  input ({} bytes) hex: {shown}{}",
        f.kind.as_str(),
        f.count,
        f.message,
        f.file
            .as_ref()
            .map_or("(not written)".into(), |p| p.display().to_string()),
        f.input_hex.len() / 2,
        if shown.len() < f.input_hex.len() {
            "…"
        } else {
            ""
        }
    );
}

/// The arguments that make a child run `target` with `opts`.
fn child_args(target: &Target, opts: &Options) -> Vec<String> {
    let mut args = vec![
        target.name.to_string(),
        "--worker".into(),
        "--seed".into(),
        opts.seed.to_string(),
        "--timeout-ms".into(),
        opts.timeout.as_millis().to_string(),
        "--corpus".into(),
        opts.corpus.display().to_string(),
    ];
    if let Some(dir) = &opts.crashes {
        args.extend(["--crashes".into(), dir.display().to_string()]);
    }
    if let Some(s) = opts.seconds {
        args.extend(["--seconds".into(), s.to_string()]);
    }
    if let Some(n) = opts.execs {
        args.extend(["--execs".into(), n.to_string()]);
    }
    if let Some(r) = &opts.record {
        args.extend(["--record".into(), r.display().to_string()]);
    }
    args
}

/// Runs one target in a child process. A child that dies (signal, abort) is replayed with
/// every input recorded, so the input that killed it can be reported.
fn child(target: &'static Target, opts: &Options) -> Result<Stats, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let (status, stats) = spawn(&exe, &child_args(target, opts))?;
    if let Some(stats) = stats {
        return Ok(stats);
    }
    let mut stats = Stats {
        target: target.name.into(),
        seeds: 0,
        execs: 0,
        seconds: 0.0,
        accepted: 0,
        known: Default::default(),
        slowest_us: 0,
        failures: Vec::new(),
    };
    let crashes = opts.crashes.clone().unwrap_or_else(std::env::temp_dir);
    if status.code() == Some(HANG_EXIT) {
        // The child's watchdog wrote the input (the newest `hang-*` file).
        let file = newest(&crashes.join(target.name), "hang-");
        let input = file
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .unwrap_or_default();
        stats.failures.push(Failure {
            kind: Kind::Hang,
            message: format!("an input did not return within {:?}", opts.hang),
            input_hex: hex::encode(input),
            file,
            count: 1,
        });
        return Ok(stats);
    }
    eprintln!(
        "otarig-fuzz: {}: the worker died ({status}); replaying its run with every input recorded",
        target.name
    );
    std::fs::create_dir_all(crashes.join(target.name)).map_err(|e| e.to_string())?;
    let record = crashes.join(target.name).join("last-input");
    let replay = Options {
        // Recording costs time: let the replay reach the same input.
        seconds: opts.seconds.map(|s| s * 5.0 + 30.0),
        record: Some(record.clone()),
        ..opts.clone()
    };
    let (again, replayed) = spawn(&exe, &child_args(target, &replay))?;
    let input = std::fs::read(&record).unwrap_or_default();
    let message = if replayed.is_some() {
        format!("the worker died ({status}); the replay did not (input: the replay's last)")
    } else {
        format!("the worker died ({status}); the replay died too ({again})")
    };
    let file = engine::write_failure(&crashes, target.name, Kind::Abort, &message, &input)
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&record);
    stats.failures.push(Failure {
        kind: Kind::Abort,
        message,
        input_hex: hex::encode(&input),
        file: Some(file),
        count: 1,
    });
    Ok(stats)
}

/// The newest file in `dir` whose name starts with `prefix` (and is not a `.txt` note).
fn newest(dir: &Path, prefix: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(prefix) && !name.ends_with(".txt")
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

/// Runs the worker; its figures if it printed them.
fn spawn(exe: &Path, args: &[String]) -> Result<(std::process::ExitStatus, Option<Stats>), String> {
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", exe.display()))?;
    let mut stats = None;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            match line.strip_prefix("RESULT ") {
                Some(json) => {
                    stats = Some(
                        serde_json::from_str(json).map_err(|e| format!("worker output: {e}"))?,
                    )
                }
                None => println!("{line}"),
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    Ok((status, stats))
}

/// `--replay`: runs `target` on each file and says what happened.
fn replay(target: &'static Target, files: &[PathBuf]) -> Result<ExitCode, String> {
    let mut failed = false;
    for f in files {
        let input = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let t0 = std::time::Instant::now();
        let result = engine::exec(target, &input);
        let took = t0.elapsed();
        match result {
            Ok(v) => println!("{}: {v:?} in {took:?}", f.display()),
            Err((kind, message)) => {
                failed = true;
                println!("{}: {} in {took:?}: {message}", f.display(), kind.as_str());
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
