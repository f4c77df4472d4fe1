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

/// Issue 15 item 5: values no one should be able to write are refused by `rig check`, each at
/// its `file:line:`, saying why (all were accepted before).
#[test]
fn check_refuses_values_that_make_no_sense() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = [
        Bad {
            file: "state.yaml",
            edit: ("console: '^app: v2'", "device: { state: booting }"),
            line: Some(6),
            says: Some("not one a device reports"),
        },
        Bad {
            file: "status.yaml",
            edit: ("console: '^app: v2'", "http: { status: 999 }"),
            line: Some(6),
            says: Some("not an HTTP status code"),
        },
        Bad {
            file: "request.yaml",
            edit: (
                "  - power: on",
                "  - cut: { when: { http: { request: 0 } } }",
            ),
            line: Some(5),
            says: Some("counted from 1"),
        },
        Bad {
            file: "phase.yaml",
            edit: ("release: v2", "release: v2\nrollout: { phase: 7 }"),
            line: Some(4),
            says: Some("past the percentage table"),
        },
        Bad {
            file: "timeout.yaml",
            edit: ("outcome: updated", "outcome: updated\ntimeout: 0s"),
            line: Some(8),
            says: Some("no time at all"),
        },
        Bad {
            file: "repeat.yaml",
            edit: ("outcome: updated", "outcome: updated\nrepeat: 0"),
            line: Some(8),
            says: Some("0 would run nothing"),
        },
        Bad {
            file: "name.yaml",
            edit: ("about: ok", "name: ''\nabout: ok"),
            line: Some(1),
            says: Some("must not be empty"),
        },
        Bad {
            file: "about.yaml",
            edit: ("about: ok", "about: ''"),
            line: Some(1),
            says: None,
        },
        Bad {
            file: "withdraw.yaml",
            edit: ("  - power: on", "  - withdraw: false\n  - power: on"),
            line: Some(5),
            says: Some("withdraw: false would still withdraw"),
        },
        Bad {
            file: "size.yaml",
            edit: (
                "release: v2",
                "release: v2\nimages:\n  v2: { version: 2.0.0, size: 4294967295 }",
            ),
            line: Some(5),
            says: Some("does not fit a slot"),
        },
    ];
    assert_refused(dir.path(), &bad, rig().arg("check").arg(dir.path()));
}

/// Runbooks are checked too (a `runbooks` folder), with the same located errors.
#[test]
fn check_refuses_bad_runbook_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let books = dir.path().join("runbooks");
    std::fs::create_dir(&books).expect("mkdir");
    let base = "release: { from: v1, to: v2 }\nexpect: { outcome: completed }\n";
    for (file, extra, at, says) in [
        (
            "interval.yaml",
            "fleet: { checkin_interval: 0s }\n",
            3,
            "too short",
        ),
        (
            "size.yaml",
            "fleet: { image_size: 16777217 }\n",
            3,
            "does not fit a slot",
        ),
        (
            "phases.yaml",
            "phases:\n  - { name: a, devices: 5, soak: 1h }\n  - { name: a, percent: 100, soak: 1h }\n",
            5,
            "comes earlier",
        ),
    ] {
        write(&books, file, &format!("{base}{extra}"));
        let out = rig()
            .arg("check")
            .arg(books.join(file))
            .output()
            .expect("run rig");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(
            stderr.contains(&format!("{file}:{at}:")),
            "{file}: {stderr}"
        );
        assert!(stderr.contains(says), "{file}: {stderr}");
    }
    // A good one passes, and says it is a runbook.
    write(&books, "good.yaml", base);
    let out = rig()
        .arg("check")
        .arg(books.join("good.yaml"))
        .output()
        .expect("run rig");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("runbook good"), "{stdout}");
}

/// A runbook whose image does not fit a slot is a configuration error (2), not an
/// infrastructure error (3) found while building images.
#[test]
fn rollout_refuses_an_oversized_image_as_usage() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "big.yaml",
        "release: { from: v1, to: v2 }\nfleet: { image_size: 4294967295 }\nexpect: { outcome: completed }\n",
    );
    let out = rig()
        .args(["rollout", "--fleet", "10", "--runbook"])
        .arg(dir.path().join("big.yaml"))
        .arg("--reports")
        .arg(dir.path().join("reports"))
        .output()
        .expect("run rig");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("big.yaml:2:"), "{stderr}");
}

/// A 10 MB regular expression and `/dev/zero` are refused fast, and the error stays short.
#[test]
fn check_bounds_what_it_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let huge = "a".repeat(10 * 1024 * 1024);
    write(dir.path(), "regex.yaml", &GOOD.replace("^app: v2", &huge));
    let started = std::time::Instant::now();
    let out = rig()
        .arg("check")
        .arg(dir.path().join("regex.yaml"))
        .output()
        .expect("run rig");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.len() < 4096, "{} bytes of error", stderr.len());
    // 10 MB is more than a YAML file may hold.
    assert!(stderr.contains("larger than"), "{stderr}");
    // Under the file limit, the pattern limit refuses it.
    let long = "a".repeat(1024 * 1024);
    write(dir.path(), "regex.yaml", &GOOD.replace("^app: v2", &long));
    let out = rig()
        .arg("check")
        .arg(dir.path().join("regex.yaml"))
        .output()
        .expect("run rig");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.len() < 4096, "{} bytes of error", stderr.len());
    assert!(stderr.contains("regex.yaml:6:"), "{stderr}");
    assert!(stderr.contains("4096-byte limit"), "{stderr}");
    #[cfg(unix)]
    {
        let out = rig()
            .args(["check", "/dev/zero"])
            .output()
            .expect("run rig");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("/dev/zero: larger than"), "{stderr}");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

/// `rig run --repeat 0` is a usage error, as `repeat: 0` is in a file.
#[test]
fn run_refuses_repeat_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "good.yaml", GOOD);
    let out = rig()
        .args(["run", "--repeat", "0", "--reports"])
        .arg(dir.path().join("reports"))
        .arg(dir.path().join("good.yaml"))
        .output()
        .expect("run rig");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--repeat"), "{stderr}");
    assert!(!dir.path().join("reports").exists());
}

/// Issue 15 item 6: a `--sim-arg` the board refuses is a usage error (2) before anything runs,
/// never a firmware failure (101) after the board exits at power-on.
#[test]
fn run_refuses_a_bad_sim_arg() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "good.yaml", GOOD);
    for (arg, says) in [
        ("--sim-arg=--trial-window=soon", "trial-window"),
        ("--sim-arg=--no-such-flag", "--no-such-flag"),
        ("--sim-arg=--flash=/tmp/other.bin", "sets `--flash` itself"),
    ] {
        let reports = dir.path().join("reports");
        let out = rig()
            .args(["run", arg, "--reports"])
            .arg(&reports)
            .arg(dir.path().join("good.yaml"))
            .output()
            .expect("run rig");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{arg}: {stderr}");
        assert!(stderr.contains("--sim-arg"), "{arg}: {stderr}");
        assert!(stderr.contains(says), "{arg}: {stderr}");
        assert!(!reports.exists(), "{arg}: nothing may run");
    }
}
