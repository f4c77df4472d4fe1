//! `rig sweep power-cut` end to end: a clean sweep passes with a survival map; the process
//! replay agrees with the in-memory one; a deliberately broken write ordering is caught with
//! bricked points and exit 101.

use std::path::Path;
use std::process::Command;

fn sweep(args: &[&str]) -> (Option<i32>, String, tempfile::TempDir) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let reports = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_rig"))
        .current_dir(&root)
        .args([
            "sweep",
            "power-cut",
            "--scenario",
            "scenarios/happy-path.yaml",
        ])
        .args(args)
        .arg("--reports")
        .arg(reports.path())
        .output()
        .expect("run rig");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        reports,
    )
}

fn sweep_json(reports: &Path) -> serde_json::Value {
    let dir = std::fs::read_dir(reports)
        .expect("reports")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().contains("sweep"))
        .expect("a sweep run directory");
    let text = std::fs::read_to_string(dir.path().join("sweep.json")).expect("sweep.json");
    assert!(dir.path().join("sweep.html").is_file());
    serde_json::from_str(&text).expect("json")
}

#[test]
fn clean_and_torn_sweep_passes_and_process_replay_agrees() {
    let (code, stdout, reports) = sweep(&[
        "--torn",
        "--from",
        "0",
        "--to",
        "80",
        "--replay",
        "process",
        "--process-every",
        "40",
    ]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains(" 0 bricked"), "{stdout}");
    assert!(stdout.contains("0 disagreement(s)"), "{stdout}");
    let v = sweep_json(reports.path());
    assert_eq!(v["bricked"], 0);
    let points = v["points"].as_array().expect("points");
    assert_eq!(points.len(), 2 * 81, "every op 0..=80, clean and torn");
    assert!(points.iter().all(|p| p["outcome"] == "updated"));
    assert!(v["process_checked"].as_u64().is_some_and(|n| n >= 2));
}

#[test]
fn a_broken_write_ordering_is_caught() {
    let (code, stdout, reports) =
        sweep(&["--quirk", "state-before-data", "--from", "0", "--to", "120"]);
    assert_eq!(code, Some(101), "{stdout}");
    let v = sweep_json(reports.path());
    assert!(v["bricked"].as_u64().is_some_and(|n| n > 0), "{stdout}");
    assert!(
        stdout.contains("replay: cargo run"),
        "failing points print their replay: {stdout}"
    );
}
