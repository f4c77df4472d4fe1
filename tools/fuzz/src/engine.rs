//! The fuzz loop: seeds first, then mutations of the seeds (and of mutants the parser
//! accepted) until the budget is spent. Every input runs under `catch_unwind`; a panic, a
//! broken property or an input slower than the timeout is a failure, written to the crashes
//! folder (after shrinking). A watchdog thread writes an input that never returns and exits
//! the process (exit code [`HANG_EXIT`]).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::mutate::{Mutator, harvest};
use crate::targets::{Target, Verdict};

/// Exit code of a process whose watchdog caught an input that never returned.
pub const HANG_EXIT: i32 = 3;
/// Mutants the parser accepted are kept for more mutation, up to this many.
const MAX_POOL: usize = 512;
/// Failure files written per target (more failures are counted, not written).
const MAX_FILES: usize = 20;

/// How long and how to run one target.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stop after this long (the seeds always run).
    pub seconds: Option<f64>,
    /// Stop after this many executions.
    pub execs: Option<u64>,
    /// The run is a function of this seed and the corpus.
    pub seed: u64,
    /// An input slower than this is a failure.
    pub timeout: Duration,
    /// An input still running after this is a hang: the watchdog writes it and exits.
    pub hang: Duration,
    /// `corpus/<target>/*` are the seeds.
    pub corpus: PathBuf,
    /// Failures go to `crashes/<target>/`; `None`: not written.
    pub crashes: Option<PathBuf>,
    /// Write every input to this file before running it (to catch an input that aborts the
    /// process: the supervisor replays a run with this set).
    pub record: Option<PathBuf>,
}

/// The kinds of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Panic,
    Property,
    Slow,
    Hang,
    Abort,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Panic => "panic",
            Self::Property => "property",
            Self::Slow => "slow",
            Self::Hang => "hang",
            Self::Abort => "abort",
        }
    }
}

/// One distinct failure (same kind and message): the first input, shrunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
    /// The (shrunk) input, hex.
    pub input_hex: String,
    /// Where it was written, if it was.
    pub file: Option<PathBuf>,
    /// How many inputs failed this way.
    pub count: u64,
}

/// A target's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    pub target: String,
    pub seeds: usize,
    pub execs: u64,
    pub seconds: f64,
    /// Inputs the parser accepted.
    pub accepted: u64,
    /// Inputs that hit a known, reported problem: per problem, how many and the first one.
    pub known: BTreeMap<String, KnownHit>,
    /// The slowest input, in microseconds.
    pub slowest_us: u64,
    pub failures: Vec<Failure>,
}

/// Inputs that hit one known problem ([`Verdict::Known`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KnownHit {
    pub count: u64,
    /// The first such input, hex.
    pub example_hex: String,
}

impl Stats {
    pub fn execs_per_sec(&self) -> f64 {
        self.execs as f64 / self.seconds.max(1e-9)
    }

    /// Failing inputs, all kinds.
    pub fn crashes(&self) -> u64 {
        self.failures.iter().map(|f| f.count).sum()
    }
}

/// Reads `corpus/<target>/*` (sorted by name, cut to the target's size limit).
pub fn load_seeds(target: &Target, corpus: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let dir = corpus.join(target.name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut seeds = Vec::with_capacity(files.len());
    for f in files {
        let mut bytes = std::fs::read(&f)?;
        bytes.truncate(target.max_len);
        seeds.push(bytes);
    }
    if seeds.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no seeds in {} (otarig-fuzz --seed-corpus)", dir.display()),
        ));
    }
    Ok(seeds)
}

// The panic hook is process-wide; the message of a panic on a fuzz thread goes to that
// thread's slot (other threads' panics go to the previous hook).
thread_local! {
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    static FUZZING: RefCell<bool> = const { RefCell::new(false) };
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if FUZZING.with(|f| *f.borrow()) {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let payload = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                PANIC.with(|p| *p.borrow_mut() = Some(format!("panicked at {at}\n{payload}")));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `target` once on `input`: its verdict, or the failure.
pub fn exec(target: &Target, input: &[u8]) -> Result<Verdict, (Kind, String)> {
    install_panic_hook();
    FUZZING.with(|f| *f.borrow_mut() = true);
    let result = catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    FUZZING.with(|f| *f.borrow_mut() = false);
    match result {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(message)) => Err((Kind::Property, message)),
        Err(_) => Err((
            Kind::Panic,
            PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| "panicked".into()),
        )),
    }
}

/// What the watchdog sees of the running input.
struct Watch {
    /// When the current input started, in ns since `epoch` (+1; 0: none running).
    started: AtomicU64,
    input: Mutex<Vec<u8>>,
    done: AtomicBool,
    epoch: Instant,
}

/// Runs `target` for the budget in `opts`, on a thread of its own (with a large stack, so a
/// debug build's deep recursion is not mistaken for a crash).
pub fn run(target: &'static Target, opts: &Options) -> std::io::Result<Stats> {
    let seeds = load_seeds(target, &opts.corpus)?;
    let opts = opts.clone();
    std::thread::Builder::new()
        .name(format!("fuzz-{}", target.name))
        .stack_size(256 << 20)
        .spawn(move || fuzz(target, &opts, seeds))?
        .join()
        .map_err(|_| std::io::Error::other("the fuzz thread panicked outside a target"))?
}

fn fuzz(target: &'static Target, opts: &Options, seeds: Vec<Vec<u8>>) -> std::io::Result<Stats> {
    let start = Instant::now();
    let watch = Arc::new(Watch {
        started: AtomicU64::new(0),
        input: Mutex::new(Vec::new()),
        done: AtomicBool::new(false),
        epoch: start,
    });
    let dog = {
        let watch = Arc::clone(&watch);
        let (hang, crashes) = (opts.hang, opts.crashes.clone());
        std::thread::spawn(move || watchdog(target, &watch, hang, crashes.as_deref()))
    };

    let mut dict: Vec<Vec<u8>> = target.dict.iter().map(|t| t.to_vec()).collect();
    if target.text {
        dict.extend(harvest(&seeds));
    }
    let mutator = Mutator {
        dict: &dict,
        max_len: target.max_len,
        text: target.text,
    };
    let mut rng = StdRng::seed_from_u64(opts.seed ^ fnv(target.name.as_bytes()));
    let n_seeds = seeds.len();
    let mut pool = seeds;
    let mut failures: BTreeMap<(Kind, String), Failure> = BTreeMap::new();
    let mut stats = Stats {
        target: target.name.into(),
        seeds: n_seeds,
        execs: 0,
        seconds: 0.0,
        accepted: 0,
        known: BTreeMap::new(),
        slowest_us: 0,
        failures: Vec::new(),
    };
    let deadline = opts.seconds.map(|s| start + Duration::from_secs_f64(s));
    let mut input = Vec::new();
    loop {
        if opts.execs.is_some_and(|n| stats.execs >= n) {
            break;
        }
        let seeding = (stats.execs as usize) < n_seeds;
        if !seeding && deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if seeding {
            input.clone_from(&pool[stats.execs as usize]);
        } else {
            let i = rng.gen_range(0..pool.len());
            input.clone_from(&pool[i]);
            let other = &pool[rng.gen_range(0..pool.len())];
            mutator.mutate(&mut rng, &mut input, other);
            if let Some(fix) = target.fixup
                && rng.gen_bool(0.5)
            {
                fix(&mut input);
            }
        }
        if let Some(path) = &opts.record {
            std::fs::write(path, &input)?;
        }
        watch.input.lock().expect("watch").clone_from(&input);
        let t0 = Instant::now();
        watch.started.store(
            t0.duration_since(watch.epoch).as_nanos() as u64 + 1,
            Ordering::SeqCst,
        );
        let result = exec(target, &input);
        watch.started.store(0, Ordering::SeqCst);
        let took = t0.elapsed();
        stats.execs += 1;
        stats.slowest_us = stats.slowest_us.max(took.as_micros() as u64);
        if let Ok(Verdict::Known(problem)) = result {
            stats
                .known
                .entry(problem.into())
                .or_insert_with(|| {
                    let same = |c: &[u8]| exec(target, c) == Ok(Verdict::Known(problem));
                    KnownHit {
                        count: 0,
                        example_hex: hex::encode(shrink(&input, same)),
                    }
                })
                .count += 1;
        }
        let failure = match result {
            Ok(Verdict::Accepted) => {
                stats.accepted += 1;
                if !seeding && !pool.contains(&input) {
                    if pool.len() < n_seeds + MAX_POOL {
                        pool.push(input.clone());
                    } else {
                        let at = rng.gen_range(n_seeds..pool.len());
                        pool[at].clone_from(&input);
                    }
                }
                None
            }
            Ok(Verdict::Rejected | Verdict::Known(_)) => None,
            Err(f) => Some(f),
        };
        let failure = failure.or_else(|| {
            // A slow input is run twice more: only the fastest of the three counts, so a
            // busy machine's pause is not reported as a slow parser.
            (took > opts.timeout)
                .then(|| fastest_of_two(target, &input).min(took))
                .filter(|fastest| *fastest > opts.timeout)
                .map(|fastest| {
                    (
                        Kind::Slow,
                        format!(
                            "slower than the {:?} timeout\ntook {took:?}, then {fastest:?} at best",
                            opts.timeout
                        ),
                    )
                })
        });
        if let Some((kind, message)) = failure {
            note(target, opts, &mut failures, kind, message, &input)?;
        }
    }
    watch.done.store(true, Ordering::SeqCst);
    dog.join().ok();
    stats.seconds = start.elapsed().as_secs_f64();
    stats.failures = failures.into_values().collect();
    Ok(stats)
}

/// The faster of two more runs of `input`.
fn fastest_of_two(target: &Target, input: &[u8]) -> Duration {
    (0..2)
        .map(|_| {
            let t0 = Instant::now();
            let _ = exec(target, input);
            t0.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Records a failure: the first input of each (kind, message) is shrunk and written.
fn note(
    target: &Target,
    opts: &Options,
    failures: &mut BTreeMap<(Kind, String), Failure>,
    kind: Kind,
    message: String,
    input: &[u8],
) -> std::io::Result<()> {
    let key = (kind, first_line(&message));
    if let Some(f) = failures.get_mut(&key) {
        f.count += 1;
        return Ok(());
    }
    let shrunk = match kind {
        Kind::Panic | Kind::Property => shrink(
            input,
            |c| matches!(exec(target, c), Err((k, m)) if k == kind && first_line(&m) == key.1),
        ),
        _ => input.to_vec(),
    };
    let file = match &opts.crashes {
        Some(dir) if failures.len() < MAX_FILES => {
            Some(write_failure(dir, target.name, kind, &message, &shrunk)?)
        }
        _ => None,
    };
    eprintln!(
        "otarig-fuzz: {}: {} on a {}-byte input ({}): {}",
        target.name,
        kind.as_str(),
        shrunk.len(),
        file.as_ref()
            .map_or("not written".into(), |f| f.display().to_string()),
        first_line(&message)
    );
    failures.insert(
        key,
        Failure {
            kind,
            message,
            input_hex: hex::encode(&shrunk),
            file,
            count: 1,
        },
    );
    Ok(())
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_string()
}

/// A smaller input for which `same` still holds: deletes ever smaller chunks (at most a few
/// thousand tries).
fn shrink(input: &[u8], same: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut best = input.to_vec();
    let mut tries = 0;
    let mut chunk = best.len().div_ceil(2).max(1);
    while tries < 4000 {
        let mut at = 0;
        let mut progress = false;
        while at < best.len() && tries < 4000 {
            let end = (at + chunk).min(best.len());
            let mut candidate = best[..at].to_vec();
            candidate.extend_from_slice(&best[end..]);
            tries += 1;
            if same(&candidate) {
                best = candidate;
                progress = true;
            } else {
                at += chunk;
            }
        }
        if !progress {
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
    }
    best
}

/// Writes `crashes/<target>/<kind>-<hash>` (the input) and `.txt` (what happened, hex).
pub fn write_failure(
    dir: &Path,
    target: &str,
    kind: Kind,
    message: &str,
    input: &[u8],
) -> std::io::Result<PathBuf> {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(format!("{}-{:016x}", kind.as_str(), fnv(input)));
    std::fs::write(&file, input)?;
    std::fs::write(
        file.with_extension("txt"),
        format!(
            "target: {target}\nkind: {}\nmessage: {message}\nlength: {}\nhex: {}\n\
             replay: otarig-fuzz {target} --replay {}\n",
            kind.as_str(),
            input.len(),
            hex::encode(input),
            file.display()
        ),
    )?;
    Ok(file)
}

fn watchdog(target: &Target, watch: &Watch, hang: Duration, crashes: Option<&Path>) {
    while !watch.done.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
        let started = watch.started.load(Ordering::SeqCst);
        if started == 0 {
            continue;
        }
        let running = watch
            .epoch
            .elapsed()
            .saturating_sub(Duration::from_nanos(started - 1));
        if running < hang {
            continue;
        }
        let input = watch.input.lock().map(|i| i.clone()).unwrap_or_default();
        let message = format!("still running after {running:?}");
        let file = crashes.map(|dir| write_failure(dir, target.name, Kind::Hang, &message, &input));
        eprintln!(
            "otarig-fuzz: {}: hang: {message} on a {}-byte input ({}): {}",
            target.name,
            input.len(),
            match file {
                Some(Ok(f)) => f.display().to_string(),
                Some(Err(e)) => format!("not written: {e}"),
                None => "not written".into(),
            },
            hex::encode(&input[..input.len().min(512)])
        );
        std::process::exit(HANG_EXIT);
    }
}

/// FNV-1a, 64 bits: names failure files and mixes the target into the seed.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
