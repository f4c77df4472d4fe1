//! `rig run --partition K/N`: the parts of a split list every selected scenario exactly once,
//! and a bad K/N is a usage error (exit 2) that names the flag. Nothing is run (`--list`).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

fn rig_run(args: &[&str]) -> Output {
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    Command::new(env!("CARGO_BIN_EXE_rig"))
        .arg("run")
        .arg(&scenarios)
        .args(args)
        .output()
        .expect("run rig")
}

/// The scenario names `rig run --list` prints (libtest's `name: test` lines).
fn listed(args: &[&str]) -> Vec<String> {
    let out = rig_run(&[&["--list"], args].concat());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn three_parts_list_every_scenario_exactly_once() {
    let all = listed(&[]);
    assert!(all.len() >= 6, "too few scenarios to split: {all:?}");
    let parts: Vec<Vec<String>> = ["1/3", "count:2/3", "3/3"]
        .iter()
        .map(|p| listed(&["--partition", p]))
        .collect();
    let mut seen = BTreeSet::new();
    for (i, part) in parts.iter().enumerate() {
        assert!(!part.is_empty(), "part {} is empty", i + 1);
        for name in part {
            assert!(seen.insert(name.clone()), "{name} is in two parts");
        }
    }
    assert_eq!(seen, all.iter().cloned().collect::<BTreeSet<_>>());
    // Count split, in name order: the i-th name goes to part (i % 3) + 1.
    let mut sorted = all.clone();
    sorted.sort();
    for (i, name) in sorted.iter().enumerate() {
        assert!(
            parts[i % 3].contains(name),
            "{name} (#{i}) not in part {}",
            i % 3 + 1
        );
    }
    // Deterministic, and 1/1 is everything.
    assert_eq!(listed(&["--partition", "2/3"]), parts[1]);
    assert_eq!(listed(&["--partition", "1/1"]), all);
}

#[test]
fn partitions_split_what_the_filters_selected() {
    let filtered = listed(&["power-cut"]);
    assert!(filtered.len() >= 2, "{filtered:?}");
    let mut union: Vec<String> = ["1/2", "2/2"]
        .iter()
        .flat_map(|p| listed(&["power-cut", "--partition", p]))
        .collect();
    union.sort();
    let mut expected = filtered;
    expected.sort();
    assert_eq!(union, expected);
}

#[test]
fn bad_partitions_are_usage_errors() {
    for bad in ["0/3", "4/3", "1/0", "3", "x/3", "hash:1/3", ""] {
        let out = rig_run(&["--list", "--partition", bad]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("--partition"), "{bad}: {stderr}");
        assert!(out.stdout.is_empty(), "{bad}: listed anyway");
    }
}
