//! The suite must not pass a broken firmware: run scenarios against a sim board made wrong on
//! purpose (`sim-board --quirk ...`) and check that the right scenarios fail, with a readable
//! reason, as firmware failures (exit 101, JUnit `<failure>`), never as passes.

use std::path::Path;
use std::process::Command;

fn run_with_quirk(quirk: &str, scenarios: &[&str]) -> (i32, String, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let reports = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rig"));
    cmd.current_dir(&root).arg("run");
    for s in scenarios {
        cmd.arg(format!("scenarios/{s}.yaml"));
    }
    let out = cmd
        .arg(format!("--sim-arg=--quirk={quirk}"))
        .arg("--settle-secs=4")
        .arg("--reports")
        .arg(reports.path())
        .output()
        .expect("run rig");
    let junit =
        std::fs::read_to_string(reports.path().join("latest/junit.xml")).unwrap_or_default();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        junit,
    )
}

/// The libtest line of `name` says `verdict` (names are padded to a column).
fn line_says(stdout: &str, name: &str, verdict: &str) -> bool {
    stdout.lines().any(|l| {
        l.strip_prefix("test ")
            .and_then(|rest| rest.split_once(" ..."))
            .is_some_and(|(n, v)| n.trim() == name && v.trim() == verdict)
    })
}

#[test]
fn skipping_the_body_hash_is_caught() {
    let (code, stdout, junit) = run_with_quirk("skip-body-hash", &["corrupt-body", "happy-path"]);
    assert_eq!(code, 101, "{stdout}");
    assert!(line_says(&stdout, "corrupt-body", "FAILED"), "{stdout}");
    assert!(
        line_says(&stdout, "happy-path", "ok"),
        "a healthy path still passes:\n{stdout}"
    );
    // The reason names what went wrong: the corrupt image ran or was activated.
    assert!(
        stdout.contains("verify: failed reason=bad-hash/ within 10s, not seen"),
        "{stdout}"
    );
    assert!(
        stdout.contains("version=2.0.0 state=confirmed"),
        "the corrupt image ran:\n{stdout}"
    );
    assert_eq!(junit.matches("<failure").count(), 1, "{junit}");
    assert_eq!(junit.matches("<error").count(), 0, "{junit}");
}

#[test]
fn confirming_before_a_checkin_is_caught() {
    let (code, stdout, _) = run_with_quirk(
        "early-confirm",
        &["no-network-reverts", "checkin-timeout-rollback"],
    );
    assert_eq!(code, 101, "{stdout}");
    assert!(
        line_says(&stdout, "no-network-reverts", "FAILED"),
        "{stdout}"
    );
    assert!(
        line_says(&stdout, "checkin-timeout-rollback", "FAILED"),
        "{stdout}"
    );
}

#[test]
fn staging_before_the_data_is_caught() {
    let (code, stdout, _) = run_with_quirk("state-before-data", &["power-cut-during-download"]);
    assert_eq!(code, 101, "{stdout}");
    assert!(
        line_says(&stdout, "power-cut-during-download", "FAILED"),
        "{stdout}"
    );
    // Staged before its data, the half-written image is activated by the cut: the board
    // never resumes, and ends up back on the factory image (the bootloader's fall-back) or
    // bricked, either way without the update.
    assert!(
        stdout.contains("download: resume offset=[1-9][0-9]* chunk=/ within 10s, not seen"),
        "{stdout}"
    );
    assert!(
        stdout.contains("state=reverted") || stdout.contains("FATAL"),
        "{stdout}"
    );
}

#[test]
fn a_revert_kept_only_in_ram_is_caught_by_the_final_power_cycle() {
    // The board reverts (so every step of these scenarios passes) but never writes the record
    // that makes the old image active: only the power cycle after settling shows it.
    let (code, stdout, junit) = run_with_quirk(
        "revert-in-ram",
        &["crash-in-init-reverts", "no-network-reverts", "happy-path"],
    );
    assert_eq!(code, 101, "{stdout}");
    for reverting in ["crash-in-init-reverts", "no-network-reverts"] {
        assert!(line_says(&stdout, reverting, "FAILED"), "{stdout}");
    }
    assert!(
        line_says(&stdout, "happy-path", "ok"),
        "a path without a revert still passes:\n{stdout}"
    );
    assert!(
        stdout.contains("final power cycle: the settled state did not survive a power cycle: `boot: revert to=1.0.0"),
        "{stdout}"
    );
    assert_eq!(junit.matches("<failure").count(), 2, "{junit}");
}

#[test]
fn a_bootloader_that_skips_the_body_hash_runs_a_tampered_image_and_is_caught() {
    let (code, stdout, junit) = run_with_quirk("skip-body-hash", &["tamper-active-image"]);
    assert_eq!(code, 101, "{stdout}");
    assert!(
        line_says(&stdout, "tamper-active-image", "FAILED"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("expected a refusal at the boot stage (reason bad-hash) within 5s, not seen"),
        "{stdout}"
    );
    assert_eq!(junit.matches("<failure").count(), 1, "{junit}");
}
