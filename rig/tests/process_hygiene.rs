//! A rig that dies (SIGKILL: no cleanup at all) leaves no simulated board running: each board
//! treats its parent as its power supply.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Child pids of `pid` (Linux: /proc/PID/task/*/children).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    // A zombie is dead: its status line says so.
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        !s.lines()
            .any(|l| l.starts_with("State:") && l.contains("Z"))
    })
}

#[test]
fn a_killed_rig_leaves_no_board_running() {
    if !Path::new("/proc/self/task").exists() {
        eprintln!("skipped: needs Linux /proc");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let reports = tempfile::tempdir().expect("tempdir");
    let mut rig = Command::new(env!("CARGO_BIN_EXE_rig"))
        .current_dir(&root)
        .args(["run", "scenarios/hang-watchdog-reverts.yaml", "--reports"])
        .arg(reports.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rig");
    let deadline = Instant::now() + Duration::from_secs(30);
    let boards = loop {
        let kids = children(rig.id());
        if !kids.is_empty() || Instant::now() > deadline {
            break kids;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(!boards.is_empty(), "the rig started a sim board");
    rig.kill().expect("SIGKILL the rig");
    rig.wait().expect("reap");
    let deadline = Instant::now() + Duration::from_secs(5);
    while boards.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<u32> = boards.into_iter().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "sim boards still running: {left:?}");
}

#[test]
fn sigterm_writes_the_finished_scenarios_and_exits_130() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let reports = tempfile::tempdir().expect("tempdir");
    // happy-path finishes in well under a second; hang-watchdog-reverts takes longer.
    let rig = Command::new(env!("CARGO_BIN_EXE_rig"))
        .current_dir(&root)
        .args([
            "run",
            "scenarios/happy-path.yaml",
            "scenarios/hang-watchdog-reverts.yaml",
            "--jobs=1",
            "--reports",
        ])
        .arg(reports.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rig");
    // Wait until the first scenario is done and the second one's board started. A sim board
    // is one process per power-on: happy-path powers its board on twice (its run, then the
    // final power cycle), so the third board process belongs to the second scenario.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = std::collections::HashSet::new();
    while Instant::now() < deadline {
        seen.extend(children(rig.id()));
        if seen.len() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(seen.len() >= 3, "the second scenario started");
    nix_kill_term(rig.id());
    let out = rig.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    let json = std::fs::read_to_string(reports.path().join("latest/report.json")).expect("report");
    let report: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(report["interrupted"], "stopped by SIGTERM");
    let names: Vec<&str> = report["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["happy-path"], "only the finished scenario");
    assert!(reports.path().join("latest/junit.xml").exists());
}

fn nix_kill_term(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}
