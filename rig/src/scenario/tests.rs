use std::path::Path;

use super::*;

fn parse_str(text: &str) -> Result<Scenario, Error> {
    parse(text, Path::new("t.yaml"))
}

fn location(e: &Error) -> (u64, u64, String) {
    match e {
        Error::Invalid {
            line,
            column,
            message,
            ..
        } => (*line, *column, message.clone()),
        other => panic!("expected a located error, got {other}"),
    }
}

const GOOD: &str = r#"
about: test
given: { firmware: v1 }
release: v2
images:
  v2: { version: 2.0.0, drill: crash-in-init }
faults:
  - match: { path: /v1/images/*, method: GET }
    truncate_at: 40%
    times: 1
steps:
  - power: on
  - expect: { console: '^app: v1', within: 5s }
  - cut: { when: { http: { bytes_sent: 50% } }, hold: 300ms }
  - cut: { when: { flash: { op: 12 } }, torn: true }
  - expect: { http: { range_from: '>0' }, within: 10s }
  - absent: { device: { state: trial }, within: 1s }
  - publish: v3
  - command: rollback
  - wait: 100ms
outcome: rolled-back
"#;

#[test]
fn parses_a_full_scenario() {
    let sc = parse_str(GOOD).expect("valid");
    assert_eq!(sc.name, "t");
    assert_eq!(sc.steps.len(), 9);
    assert_eq!(sc.steps[0].line, 12);
    assert_eq!(sc.outcome, Outcome::RolledBack);
    assert_eq!(sc.images["v2"].drill, Drill::CrashInInit);
    assert_eq!(sc.images["v3"].version.0, Version::new(3, 0, 0));
    assert_eq!(sc.faults.len(), 1);
    assert!(matches!(&sc.steps[3].action, Action::Cut(c) if c.torn));
}

#[test]
fn unknown_key_is_located() {
    let text = GOOD.replace("hold: 300ms", "hold: 300ms, bogus: 1");
    let (line, col, msg) = location(&parse_str(&text).expect_err("must fail"));
    assert_eq!(line, 14);
    assert!(col > 40, "column {col}");
    assert!(msg.contains("bogus"), "{msg}");
}

#[test]
fn wrong_type_is_located() {
    let text = GOOD.replace("within: 5s", "within: soon");
    let (line, _, msg) = location(&parse_str(&text).expect_err("must fail"));
    assert_eq!(line, 13);
    assert!(msg.contains("soon"), "{msg}");
}

#[test]
fn bad_regex_is_located() {
    let text = GOOD.replace("'^app: v1'", "'^app: (v1'");
    let (line, _, msg) = location(&parse_str(&text).expect_err("must fail"));
    assert_eq!(line, 13);
    assert!(msg.contains("regular expression"), "{msg}");
}

#[test]
fn unknown_step_and_trigger_are_located() {
    let text = GOOD.replace("  - wait: 100ms", "  - dance: 100ms");
    let (line, _, msg) = location(&parse_str(&text).expect_err("must fail"));
    assert_eq!(line, 20);
    assert!(msg.contains("dance"), "{msg}");

    let text = GOOD.replace("http: { bytes_sent: 50% }", "radio: { bytes_sent: 50% }");
    let (line, _, msg) = location(&parse_str(&text).expect_err("must fail"));
    assert_eq!(line, 14);
    assert!(msg.contains("radio"), "{msg}");
}

#[test]
fn bad_indentation_is_located() {
    let text = GOOD.replace("  - publish: v3", "    - publish: v3");
    let (line, _, _) = location(&parse_str(&text).expect_err("must fail"));
    assert!((18..=19).contains(&line), "line {line}");
}

#[test]
fn semantic_errors_are_located() {
    let text = GOOD.replace("publish: v3", "publish: v9");
    let (line, _, msg) = location(&parse_str(&text).expect_err("must fail"));
    assert_eq!(line, 18);
    assert!(msg.contains("v9"), "{msg}");

    let text = GOOD.replace(
        "cut: { when: { flash: { op: 12 } }, torn: true }",
        "cut: { when: { flash: { op: 12 }, after: 1s } }",
    );
    let (line, _, msg) = location(&parse_str(&text).expect_err("must fail"));
    assert_eq!(line, 15);
    assert!(msg.contains("exactly one trigger"), "{msg}");

    let text = GOOD.replace("outcome: rolled-back", "outcome: bricked");
    let (_, _, msg) = location(&parse_str(&text).expect_err("must fail"));
    assert!(msg.contains("outcome"), "{msg}");
}

#[test]
fn error_display_has_file_line_col_and_snippet() {
    let text = GOOD.replace("within: 5s", "within: soon");
    let e = parse_str(&text).expect_err("must fail");
    let shown = e.to_string();
    assert!(shown.starts_with("t.yaml:13:"), "{shown}");
    assert!(shown.contains("  13 | "), "{shown}");
    assert!(shown.contains('^'), "{shown}");
}

#[test]
fn breakpoint_triggers_parse_and_are_checked() {
    let text = GOOD.replace(
        "cut: { when: { flash: { op: 12 } }, torn: true }",
        "cut: { when: { breakpoint: { symbol: \"ota_core::device::Device<F>::write_chunk\", hit: 5 } } }",
    );
    assert_ne!(text, GOOD);
    {
        let sc = parse_str(&text).expect("a breakpoint trigger");
        let found = sc.steps.iter().find_map(|s| match &s.action {
            Action::Cut(c) => match &c.when.on {
                crate::scenario::TriggerOn::Breakpoint(b) => Some(b.clone()),
                _ => None,
            },
            _ => None,
        });
        let bp = found.expect("breakpoint");
        assert_eq!(
            (bp.symbol.as_str(), bp.hit),
            ("ota_core::device::Device<F>::write_chunk", 5)
        );
        let zero = text.replace("hit: 5", "hit: 0");
        let (_, _, msg) = location(&parse_str(&zero).expect_err("hit 0"));
        assert!(msg.contains("hit count of 1 or more"), "{msg}");
    }
    // Every hardware scenario shipped in the repository is valid.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/hardware");
    for f in discover(&[dir]).expect("scenarios/hardware") {
        load(&f).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Values no one should be able to write: each refused at its own line, saying why.
#[test]
fn values_that_make_no_sense_are_located() {
    for (from, to, line, says) in [
        (
            "state: trial",
            "state: booting",
            17,
            "not one a device reports",
        ),
        (
            "range_from: '>0'",
            "status: 700",
            16,
            "not an HTTP status code",
        ),
        ("bytes_sent: 50%", "request: 0", 14, "counted from 1"),
        ("wait: 100ms", "withdraw: false", 20, "withdraw: false"),
        (
            "outcome: rolled-back",
            "outcome: rolled-back\ntimeout: 0s",
            22,
            "no time at all",
        ),
        (
            "outcome: rolled-back",
            "outcome: rolled-back\nrepeat: 0",
            22,
            "would run nothing",
        ),
        ("about: test", "about: '  '", 2, "must not be empty"),
        (
            "about: test",
            "name: ''\nabout: test",
            2,
            "must not be empty",
        ),
        ("about: test", "name: a/b\nabout: test", 2, "path separator"),
        (
            "release: v2",
            "release: v2\nrollout: { phase: 5 }",
            5,
            "past the percentage table",
        ),
        (
            "  - command: rollback",
            "  - rollout: { phase: 9 }",
            19,
            "past the percentage table",
        ),
        (
            "drill: crash-in-init }",
            "drill: crash-in-init, size: 4294967295 }",
            6,
            "does not fit a slot",
        ),
        (
            "drill: crash-in-init }",
            "drill: crash-in-init, size: 16777217 }",
            6,
            "does not fit a slot",
        ),
    ] {
        let text = GOOD.replace(from, to);
        assert_ne!(text, GOOD, "{from}");
        let (l, _, msg) = location(&parse_str(&text).expect_err(to));
        assert_eq!(l, line, "{to}: {msg}");
        assert!(msg.contains(says), "{to}: {msg}");
    }
    // The largest body a slot holds is fine; `withdraw: true` and a real phase too.
    let text = GOOD
        .replace(
            "drill: crash-in-init }",
            "drill: crash-in-init, size: 524032 }",
        )
        .replace("wait: 100ms", "withdraw: true")
        .replace("release: v2", "release: v2\nrollout: { phase: 4 }");
    let sc = parse_str(&text).expect("valid");
    assert_eq!(sc.images["v2"].size, Some(values::MAX_IMAGE_BODY));
}

/// A huge regular expression is refused fast, and neither the message nor the snippet echoes
/// it whole.
#[test]
fn huge_values_are_refused_fast_and_clipped() {
    let huge = "a".repeat(10 * 1024 * 1024);
    let text = GOOD.replace("'^app: v1'", &format!("'{huge}'"));
    let started = std::time::Instant::now();
    let e = parse_str(&text).expect_err("huge regex");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let shown = e.to_string();
    assert!(
        shown.starts_with("t.yaml:13:"),
        "{}",
        values::clip(&shown, 300)
    );
    assert!(
        shown.contains("4096-byte limit"),
        "{}",
        values::clip(&shown, 300)
    );
    assert!(shown.len() < 2000, "{} bytes", shown.len());
}

#[test]
fn snippet_windows_long_lines() {
    let line = format!("{}X{}", "a".repeat(500), "b".repeat(500));
    let s = snippet(&line, 1, 501);
    let rows: Vec<&str> = s.lines().collect();
    assert_eq!(rows.len(), 3, "{s}");
    assert!(rows[1].chars().count() < 140, "{s}");
    let caret = rows[2].chars().position(|c| c == '^').expect("caret");
    assert_eq!(rows[1].chars().nth(caret), Some('X'), "{s}");
    // Short lines are shown whole.
    assert_eq!(snippet("ab: c", 1, 5), "\n   1 | ab: c\n     |     ^");
}

#[test]
fn files_are_read_up_to_a_limit() {
    let dir = std::env::temp_dir().join(format!("otarig-read-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let big = dir.join("big.yaml");
    let f = std::fs::File::create(&big).expect("create");
    f.set_len(values::MAX_FILE_LEN + 1).expect("sparse file");
    assert!(matches!(read_text(&big), Err(Error::TooLarge { .. })));
    let ok = dir.join("ok.yaml");
    std::fs::write(&ok, GOOD).expect("write");
    assert_eq!(read_text(&ok).expect("small file"), GOOD);
    std::fs::write(&ok, b"about: \xff\n").expect("write");
    assert!(
        read_text(&ok)
            .expect_err("not UTF-8")
            .to_string()
            .contains("UTF-8")
    );
    #[cfg(unix)]
    {
        let started = std::time::Instant::now();
        assert!(matches!(
            read_text(Path::new("/dev/zero")),
            Err(Error::TooLarge { .. })
        ));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tamper_steps_parse_and_bad_ones_are_located() {
    let text = GOOD.replace(
        "  - wait: 100ms",
        "  - wait: 100ms\n  - tamper: { flip_bits: 3, in: inactive, part: header }\n  - tamper: { rewind_state: true }",
    );
    let sc = parse_str(&text).expect("tamper steps");
    let tampers: Vec<&Tamper> = sc
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Tamper(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(
        tampers,
        [
            &Tamper::FlipBits {
                region: FlashRegion::Inactive,
                part: ImagePart::Header,
                bits: 3
            },
            &Tamper::RewindState
        ]
    );
    for (bad, says) in [
        ("tamper: { flip_bits: 0, in: active }", "between 1 and"),
        (
            "tamper: { flip_bits: 2, in: state-both, part: body }",
            "no header or body",
        ),
        (
            "tamper: { flip_bits: 2 }",
            "give `flip_bits: N` with `in: REGION`",
        ),
        (
            "tamper: { rewind_state: true, in: active }",
            "or `rewind_state: true`",
        ),
        ("tamper: { flip_bits: 2, in: slot-c }", "slot-c"),
    ] {
        let text = GOOD.replace("wait: 100ms", bad);
        let (line, _, msg) = location(&parse_str(&text).expect_err(bad));
        assert_eq!(line, 20, "{bad}: {msg}");
        assert!(msg.contains(says), "{bad}: {msg}");
    }
}
