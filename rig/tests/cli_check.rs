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

/// A malformed scenario file: `GOOD` with `edit.0` replaced by `edit.1`. Its error must be
/// reported on a line containing `file:line:` (just `file:` where `line` is `None`), and the
/// errors must say `says`, if given.
struct Bad {
    file: &'static str,
    edit: (&'static str, &'static str),
    line: Option<u32>,
    says: Option<&'static str>,
}

/// Writes the `bad` files into `dir`, runs `rig` (whose arguments name `dir`) and checks that it
/// refuses them: exit 2, and each file's error located and saying what it must.
#[track_caller]
fn assert_refused(dir: &Path, bad: &[Bad], rig: &mut Command) {
    for b in bad {
        write(dir, b.file, &GOOD.replace(b.edit.0, b.edit.1));
    }
    let out = rig.output().expect("run rig");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for b in bad {
        let located = match b.line {
            Some(line) => format!("{}:{line}:", b.file),
            None => format!("{}:", b.file),
        };
        assert!(
            stderr.lines().any(|l| l.contains(&located)),
            "{}: expected a line containing `{located}` in:\n{stderr}",
            b.file
        );
    }
    for says in bad.iter().filter_map(|b| b.says) {
        assert!(stderr.contains(says), "{stderr}");
    }
}

#[test]
fn check_reports_each_malformed_file_with_its_location() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = [
        Bad {
            file: "indent.yaml",
            edit: ("  - power: on", "    - power: on\n  - power: on"),
            line: None,
            says: None,
        },
        Bad {
            file: "unknown-key.yaml",
            edit: ("within: 5s", "within: 5s, colour: red"),
            line: Some(6),
            says: Some("colour"),
        },
        Bad {
            file: "wrong-type.yaml",
            edit: ("within: 5s", "within: [5]"),
            line: Some(6),
            says: None,
        },
        Bad {
            file: "unknown-trigger.yaml",
            edit: ("  - power: on", "  - cut: { when: { moon: full } }"),
            line: Some(5),
            says: Some("moon"),
        },
        Bad {
            file: "bad-regex.yaml",
            edit: ("'^app: v2'", "'^app: (v2'"),
            line: Some(6),
            says: Some("bad regular expression"),
        },
    ];
    assert_refused(dir.path(), &bad, rig().arg("check").arg(dir.path()));
}

#[test]
fn run_refuses_to_start_with_an_invalid_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "good.yaml", GOOD);
    let bad = Bad {
        file: "bad.yaml",
        edit: ("outcome: updated", "outcome: exploded"),
        line: Some(7),
        says: None,
    };
    let reports = dir.path().join("reports");
    let mut run = rig();
    run.arg("run")
        .arg(dir.path())
        .arg("--reports")
        .arg(&reports);
    assert_refused(dir.path(), &[bad], &mut run);
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
