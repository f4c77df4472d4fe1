//! The `otarig-fuzz` binary: its figures, and how it reports each kind of failure (through
//! the hidden `selftest` target, which aborts, hangs or panics on demand).

use std::path::Path;
use std::process::{Command, Output};

fn fuzz(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_otarig-fuzz"))
        .args(args)
        .output()
        .expect("run otarig-fuzz")
}

/// A corpus holding one `selftest` seed, and a crashes folder, in a fresh temp folder.
fn setup(name: &str, seed: &[u8]) -> (std::path::PathBuf, String, String) {
    let dir = std::env::temp_dir().join(format!("otarig-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("corpus/selftest")).expect("corpus");
    std::fs::write(dir.join("corpus/selftest/seed"), seed).expect("seed");
    let corpus = dir.join("corpus").display().to_string();
    let crashes = dir.join("crashes").display().to_string();
    (dir, corpus, crashes)
}

/// Runs the `selftest` target on a corpus of one `seed`: its output (stdout as text) and the
/// temp folder (corpus and crashes).
fn selftest(name: &str, seed: &[u8], extra: &[&str]) -> (std::path::PathBuf, Output, String) {
    let (dir, corpus, crashes) = setup(name, seed);
    let mut args = vec!["selftest", "--execs", "50"];
    args.extend_from_slice(extra);
    args.extend(["--corpus", &corpus, "--crashes", &crashes]);
    let out = fuzz(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (dir, out, stdout)
}

fn files(dir: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    let n = p.file_name().unwrap_or_default().to_string_lossy();
                    n.starts_with(prefix) && !n.ends_with(".txt")
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_clean_run_prints_its_figures_and_exits_0() {
    let out = fuzz(&["http-head", "console-line", "--execs", "300"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("execs/s"), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("http-head"))
        .expect("a row per target");
    assert!(row.split_whitespace().any(|w| w == "300"), "{row}");
    let total = stdout
        .lines()
        .find(|l| l.starts_with("total"))
        .expect("total");
    assert!(total.split_whitespace().any(|w| w == "600"), "{total}");
    assert!(total.trim_end().ends_with(" 0"), "no failures: {total}");
}

#[test]
fn unknown_targets_and_bad_usage_exit_2() {
    assert_eq!(fuzz(&["no-such-target"]).status.code(), Some(2));
    assert_eq!(
        fuzz(&["http-head", "manifest", "--replay", "x"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn a_panic_is_written_with_its_input_and_the_run_exits_1() {
    let (dir, out, stdout) = selftest("panic", b"xxPANICxx", &[]);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAILURE selftest: panic"), "{stdout}");
    assert!(stdout.contains("self-test panic"), "{stdout}");
    // Shrunk to the word itself.
    assert!(stdout.contains(&hex::encode(b"PANIC")), "{stdout}");
    let written = files(&dir.join("crashes/selftest"), "panic-");
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(std::fs::read(&written[0]).expect("read"), b"PANIC");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_input_that_aborts_the_process_is_found_by_replay() {
    let (dir, out, stdout) = selftest("abort", b"..ABORT..", &[]);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAILURE selftest: abort"), "{stdout}");
    assert!(stdout.contains(&hex::encode(b"..ABORT..")), "{stdout}");
    let written = files(&dir.join("crashes/selftest"), "abort-");
    assert_eq!(written.len(), 1, "{written:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_input_that_never_returns_is_written_by_the_watchdog() {
    let (dir, out, stdout) = selftest("hang", b"HANG", &["--timeout-ms", "100"]);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAILURE selftest: hang"), "{stdout}");
    assert!(stdout.contains(&hex::encode(b"HANG")), "{stdout}");
    assert_eq!(files(&dir.join("crashes/selftest"), "hang-").len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
