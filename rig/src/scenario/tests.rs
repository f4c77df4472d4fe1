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
            Action::Cut(c) => c.when.breakpoint.clone(),
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
