//! `rig check` and `rig run` on malformed scenario files: `file:line:col` errors, exit 2,
//! nothing run.

use std::path::Path;
use std::process::Command;

fn rig() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rig"))
}

const GOOD: &str = "about: ok\ngiven: { firmware: v1 }\nrelease: v2\nsteps:\n  - power: on\n  - expect: { console: '^app: v2', within: 5s }\noutcome: updated\n";

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write scenario");
}

#[test]
fn check_accepts_the_shipped_scenarios() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let out = rig().arg("check").arg(&root).output().expect("run rig");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("scenario file(s) valid"), "{stdout}");
}

#[test]
fn check_reports_each_malformed_file_with_its_location() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "indent.yaml",
            GOOD.replace("  - power: on", "    - power: on\n  - power: on"),
            "indent.yaml:",
        ),
        (
            "unknown-key.yaml",
            GOOD.replace("within: 5s", "within: 5s, colour: red"),
            "unknown-key.yaml:6:",
        ),
        (
            "wrong-type.yaml",
            GOOD.replace("within: 5s", "within: [5]"),
            "wrong-type.yaml:6:",
        ),
        (
            "unknown-trigger.yaml",
            GOOD.replace("  - power: on", "  - cut: { when: { moon: full } }"),
            "unknown-trigger.yaml:5:",
        ),
        (
            "bad-regex.yaml",
            GOOD.replace("'^app: v2'", "'^app: (v2'"),
            "bad-regex.yaml:6:",
        ),
    ];
    for (name, text, _) in &cases {
        write(dir.path(), name, text);
    }
    let out = rig()
        .arg("check")
        .arg(dir.path())
        .output()
        .expect("run rig");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for (name, _, located) in &cases {
        assert!(
            stderr.lines().any(|l| l.contains(located)),
            "{name}: expected a line containing `{located}` in:\n{stderr}"
        );
    }
    assert!(stderr.contains("bad regular expression"), "{stderr}");
    assert!(stderr.contains("colour"), "{stderr}");
    assert!(stderr.contains("moon"), "{stderr}");
}

#[test]
fn run_refuses_to_start_with_an_invalid_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "good.yaml", GOOD);
    write(
        dir.path(),
        "bad.yaml",
        &GOOD.replace("outcome: updated", "outcome: exploded"),
    );
    let reports = dir.path().join("reports");
    let out = rig()
        .arg("run")
        .arg(dir.path())
        .arg("--reports")
        .arg(&reports)
        .output()
        .expect("run rig");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.yaml:7:"), "{stderr}");
    assert!(
        !reports.exists(),
        "nothing may run (no report) when a file is invalid"
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let out = rig()
        .arg("run")
        .arg("--jobs")
        .arg("many")
        .output()
        .expect("run rig");
    assert_eq!(out.status.code(), Some(2));
    let out = rig().arg("--help").output().expect("run rig");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("check"));
}
