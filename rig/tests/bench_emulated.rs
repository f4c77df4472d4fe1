//! The hardware path of `rig run --bench`, on boards emulated by sim boards (relay line,
//! serial console over a pty, probe writing the flash file): restore after a bad outcome,
//! a board taken out of the run when it cannot be restored, and two rig processes contending
//! for one board.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

const NEVER_SEEN: &str = "about: expects a console line the firmware never prints, so the attempt fails without an outcome\ngiven: { firmware: v1 }\nsteps:\n  - power: on\n  - expect: { console: '^this line never appears', within: 1s }\noutcome: unchanged\n";

fn bench(dir: &Path, probe: bool) -> PathBuf {
    bench_with(
        dir,
        if probe {
            "    probe: { emulated: {} }\n"
        } else {
            ""
        },
    )
}

fn bench_with(dir: &Path, probe: &str) -> PathBuf {
    let path = dir.join("bench.yaml");
    std::fs::write(
        &path,
        format!(
            "boards:\n  emu-t:\n    kind: sim\n    emulated: true\n    power: {{ relay: {{ gpio: 5, active_low: true, min_off: 100ms }} }}\n    console: {{ sim_pty: {{}} }}\n{probe}"
        ),
    )
    .expect("write bench");
    path
}

fn rig(dir: &Path, bench: &Path, scenarios: &[&Path], reports: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rig"));
    cmd.current_dir(root())
        .env("OTARIG_LOCK_DIR", dir.join("locks"))
        .arg("run")
        .args(scenarios)
        .arg("--bench")
        .arg(bench)
        .arg("--settle-secs=5")
        .arg("--reports")
        .arg(dir.join(reports))
        .stdin(Stdio::null());
    cmd
}

fn report(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("reports/latest/report.json")).expect("report");
    serde_json::from_str(&text).expect("json")
}

/// The details of every rig event of `scenario`'s first attempt.
fn rig_notes(report: &serde_json::Value, scenario: &str) -> Vec<String> {
    let sc = report["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .find(|s| s["name"] == scenario)
        .unwrap_or_else(|| panic!("no scenario {scenario}"));
    sc["attempts"][0]["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["source"] == "rig")
        .filter_map(|e| e["detail"].as_str().map(str::to_string))
        .collect()
}

/// The status of every scenario's first attempt, in report order.
fn first_statuses(report: &serde_json::Value) -> Vec<String> {
    report["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .map(|s| {
            s["attempts"][0]["status"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        })
        .collect()
}

/// Runs `scenarios` one at a time on the bench's board; checks the exit code and returns the
/// output and the JSON report.
fn run_one_board(
    dir: &Path,
    bench: &Path,
    scenarios: &[&Path],
    code: i32,
) -> (String, serde_json::Value) {
    let out = rig(dir, bench, scenarios, "reports")
        .arg("--jobs=1")
        .output()
        .expect("run rig");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(code), "exit code:\n{all}");
    (all, report(dir))
}

/// Some note satisfies `pred` (else the notes are printed).
fn assert_any(notes: &[String], pred: impl Fn(&String) -> bool) {
    assert!(notes.iter().any(pred), "{notes:#?}");
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_bad_outcome_is_followed_by_a_probe_restore_and_the_board_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let failing = dir.path().join("a-never-seen.yaml");
    std::fs::write(&failing, NEVER_SEEN).expect("write scenario");
    let happy = root().join("scenarios/happy-path.yaml");
    let bench = bench(dir.path(), true);
    let (all, r) = run_one_board(dir.path(), &bench, &[&failing, &happy], 101);
    let notes = rig_notes(&r, "a-never-seen");
    assert_any(&notes, |n| n.starts_with("restore: board emu-t"));
    assert_any(&notes, |n| {
        n == "restored: board emu-t checks in on 1.0.0 (confirmed)"
    });
    // The restored board runs the next scenario, provisioned again by its probe.
    let happy_notes = rig_notes(&r, "happy-path");
    assert_any(&happy_notes, |n| n.contains("provisioned by its probe"));
    assert_eq!(
        r["scenarios"][1]["attempts"][0]["status"], "passed",
        "happy-path passes on the restored board:\n{all}"
    );
    assert!(
        !dir.path().join("locks/emu-t.lock").exists(),
        "the board lock is released at the end"
    );
}

#[test]
fn a_board_that_cannot_be_restored_is_taken_out_of_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let happy = root().join("scenarios/happy-path.yaml");
    let ignores = root().join("scenarios/server-ignores-range.yaml");
    // No probe and a blank flash: nothing can bring this board to v1.
    let bench = bench(dir.path(), false);
    let (all, r) = run_one_board(dir.path(), &bench, &[&happy, &ignores], 3);
    assert!(
        all.contains("board emu-t was taken out of the run: restore failed"),
        "{all}"
    );
    let statuses = first_statuses(&r);
    assert_eq!(statuses, ["infra-error", "infra-error"], "{all}");
    let first = rig_notes(&r, "happy-path");
    assert_any(&first, |n| {
        n.contains("taken out of the run: restore failed")
    });
    let second = r["scenarios"][1]["attempts"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        second.contains("every board of the bench is out of the run"),
        "{second}"
    );
    let junit =
        std::fs::read_to_string(dir.path().join("reports/latest/junit.xml")).expect("junit");
    assert_eq!(junit.matches("<error").count(), 2, "{junit}");
}

#[test]
fn two_rig_processes_never_drive_one_board() {
    let dir = tempfile::tempdir().expect("tempdir");
    let happy = root().join("scenarios/happy-path.yaml");
    let bench = bench(dir.path(), true);
    let mut first = rig(dir.path(), &bench, &[&happy], "reports")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the first rig");
    let lock = dir.path().join("locks/emu-t.lock");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !lock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(lock.exists(), "the first rig locks the board");
    let second = rig(dir.path(), &bench, &[&happy], "reports-2")
        .output()
        .expect("run the second rig");
    let all = text(&second);
    assert_eq!(second.status.code(), Some(3), "{all}");
    assert!(
        all.contains(&format!("board emu-t is in use by process {}", first.id())),
        "{all}"
    );
    let status = first.wait().expect("first rig");
    assert!(status.success(), "the first rig is undisturbed: {status:?}");
    assert!(!lock.exists());
}

#[test]
fn what_a_board_did_before_provisioning_is_not_evidence() {
    // The first scenario leaves the board on a confirmed v2.0.0; the next one must refuse a
    // badly signed v2.0.0. The board boots its old v2.0.0 while its probe provisions it: those
    // boot lines and check-ins must not count as the scenario running v2.0.0.
    let dir = tempfile::tempdir().expect("tempdir");
    let update = dir.path().join("a-update.yaml");
    std::fs::copy(root().join("scenarios/happy-path.yaml"), &update).expect("copy");
    let bad = root().join("scenarios/bad-signature.yaml");
    let bench = bench(dir.path(), true);
    let (_, r) = run_one_board(dir.path(), &bench, &[&update, &bad], 0);
    let events = r["scenarios"][1]["attempts"][0]["events"]
        .as_array()
        .expect("events")
        .clone();
    let provisioned = events
        .iter()
        .position(|e| {
            e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("provisioned by its probe"))
        })
        .expect("provisioned");
    assert!(
        events[..provisioned].iter().any(|e| e["line"]
            .as_str()
            .is_some_and(|l| l.contains("version=2.0.0"))),
        "the old firmware did boot during provisioning (else this test proves nothing)"
    );
}

#[test]
fn without_a_probe_the_factory_reset_drill_restores_and_provisions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let failing = dir.path().join("a-never-seen.yaml");
    std::fs::write(&failing, NEVER_SEEN).expect("write scenario");
    let update = dir.path().join("b-update.yaml");
    std::fs::copy(root().join("scenarios/happy-path.yaml"), &update).expect("copy");
    let bad = root().join("scenarios/bad-signature.yaml");
    // Shipped with v1 in slot A and the factory region; a recovery button, no probe.
    let bench = bench_with(
        dir.path(),
        "    recovery_button: { gpio: 6, active_low: true }\n    factory_firmware: 1.0.0\n",
    );
    let (all, r) = run_one_board(dir.path(), &bench, &[&failing, &update, &bad], 101);
    let notes = rig_notes(&r, "a-never-seen");
    assert_any(&notes, |n| {
        n == "restore: board emu-t after a bad outcome (factory-reset drill)"
    });
    assert_any(&notes, |n| {
        n == "restored: board emu-t checks in on 1.0.0 (confirmed)"
    });
    let statuses = first_statuses(&r);
    assert_eq!(statuses, ["failed", "passed", "passed"], "{all}");
    // b-update left the board on v2.0.0: bad-signature's provisioning took it back to v1.
    let bad_notes = rig_notes(&r, "bad-signature");
    assert_any(&bad_notes, |n| {
        n.starts_with("provision: factory-reset drill")
    });
    let events = r["scenarios"][2]["attempts"][0]["events"]
        .as_array()
        .expect("events");
    assert!(
        events
            .iter()
            .any(|e| e["line"] == "boot: factory reset version=1.0.0"),
        "the bootloader ran the drill"
    );
}
