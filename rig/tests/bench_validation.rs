//! Bench files that cannot work are refused when they are loaded, with `file:line:col` and
//! exit 2: board names that are not plain file names (they name lock files), two boards on
//! one relay line, serial port or probe, and a bench without boards. A name never reaches the
//! lock directory, so no file outside it is taken over or deleted.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `rig bench-check` on `bench` written to `dir/bench.yaml`.
fn bench_check(dir: &Path, bench: &str) -> Output {
    let path = dir.join("bench.yaml");
    std::fs::write(&path, bench).expect("write bench");
    Command::new(env!("CARGO_BIN_EXE_rig"))
        .current_dir(dir)
        .env("OTARIG_LOCK_DIR", dir.join("locks"))
        .arg("bench-check")
        .arg("--bench")
        .arg("bench.yaml")
        .stdin(Stdio::null())
        .output()
        .expect("run rig bench-check")
}

fn refused(out: &Output, want: &[&str]) {
    let all = text(out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    for w in want {
        assert!(all.contains(w), "want {w:?} in:\n{all}");
    }
}

fn sim(name: &str) -> String {
    format!("  {name}:\n    kind: sim\n    power: {{ sim: {{}} }}\n    console: {{ sim: {{}} }}\n")
}

fn hw(name: &str, gpio: u8, port: &str, selector: &str) -> String {
    format!(
        "  {name}:\n    kind: pico-w\n    power: {{ relay: {{ gpio: {gpio} }} }}\n    console: {{ serial: {{ port: {port} }} }}\n    probe: {{ probe_rs: {{ selector: \"{selector}\", chip: RP2040 }} }}\n"
    )
}

#[test]
fn board_names_that_are_not_file_names_are_refused_at_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, says) in [
        ("../../x", "cannot start with a dot"),
        ("\"x/../../y\"", "'/' cannot be in a board name"),
        (".lock", "cannot start with a dot"),
        ("\"two words\"", "' ' cannot be in a board name"),
    ] {
        let out = bench_check(dir.path(), &format!("boards:\n{}{}", sim("ok"), sim(name)));
        refused(&out, &["bench.yaml:6:3: board `", says]);
    }
    let long = "b".repeat(65);
    let out = bench_check(dir.path(), &format!("boards:\n{}", sim(&long)));
    refused(&out, &["bench.yaml:2:3: ", "at most 64 characters"]);
}

#[test]
fn an_escaping_board_name_never_touches_a_file_outside_the_lock_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let victim = dir.path().join("victim.lock");
    std::fs::write(&victim, "precious\n").expect("victim");
    let bench = dir.path().join("bench.yaml");
    std::fs::write(
        &bench,
        "boards:\n  ../victim:\n    kind: sim\n    emulated: true\n    power: { relay: { gpio: 5, min_off: 100ms } }\n    console: { sim_pty: {} }\n    probe: { emulated: {} }\n",
    )
    .expect("bench");
    let out = Command::new(env!("CARGO_BIN_EXE_rig"))
        .current_dir(root())
        .env("OTARIG_LOCK_DIR", dir.path().join("locks"))
        .arg("run")
        .arg(root().join("scenarios/happy-path.yaml"))
        .arg("--bench")
        .arg(&bench)
        .arg("--reports")
        .arg(dir.path().join("reports"))
        .stdin(Stdio::null())
        .output()
        .expect("run rig");
    assert_eq!(
        std::fs::read_to_string(&victim).ok().as_deref(),
        Some("precious\n"),
        "the file outside the lock directory is untouched:\n{}",
        text(&out)
    );
    refused(&out, &["bench.yaml:2:3: board `../victim`"]);
}

#[test]
fn two_boards_on_one_relay_line_serial_port_or_probe_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = hw("pico-1", 17, "/dev/ttyACM0", "2e8a:000c:E661");
    for (second, says) in [
        (
            hw("pico-2", 17, "/dev/ttyACM1", "2e8a:000c:E662"),
            "board `pico-2`: GPIO 17 (its relay) is already board `pico-1`'s relay line",
        ),
        (
            hw("pico-2", 27, "/dev/ttyACM0", "2e8a:000c:E662"),
            "board `pico-2`: serial port /dev/ttyACM0 is already board `pico-1`'s console",
        ),
        (
            hw("pico-2", 27, "/dev/ttyACM1", "2e8a:000c:E661"),
            "board `pico-2`: probe 2e8a:000c:E661 is already board `pico-1`'s probe",
        ),
        (
            hw("pico-2", 27, "/dev/ttyACM1", "2e8a:000c"),
            "board `pico-2`: probe 2e8a:000c can select the same probe as board `pico-1`'s",
        ),
    ] {
        let out = bench_check(dir.path(), &format!("boards:\n{a}{second}"));
        refused(&out, &["bench.yaml:7:3: ", says]);
        assert!(
            !text(&out).contains("board(s)"),
            "no hardware is touched: {}",
            text(&out)
        );
    }
}

#[test]
fn a_bench_without_boards_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bench in ["boards: {}\n", "boards:\n  {}\n"] {
        let out = bench_check(dir.path(), bench);
        refused(&out, &["bench.yaml:", "a bench needs at least one board"]);
    }
}

#[test]
fn every_shipped_bench_still_loads() {
    let mut n = 0;
    for entry in std::fs::read_dir(root().join("scenarios")).expect("scenarios") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if name.starts_with("bench") && name.ends_with(".yaml") {
            rig::bench::load(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 4, "{n} bench files");
}
