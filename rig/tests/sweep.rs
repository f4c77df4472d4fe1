//! `rig sweep power-cut` end to end: a clean sweep passes with a survival map; the process
//! replay agrees with the in-memory one, torn points included; a deliberately broken write
//! ordering is caught with bricked points and exit 101, and a firmware that trusts a state
//! record without its CRC is caught by the torn sweep (only by it); the swept path follows the
//! scenario and is judged against its outcome; an empty range is exit 2; SIGTERM is exit 130
//! with the partial survival map.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Sweeps `scenario` with `args`: exit code, stdout (stderr appended), the reports directory.
fn sweep_scenario(scenario: &str, args: &[&str]) -> (Option<i32>, String, tempfile::TempDir) {
    let reports = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_rig"))
        .current_dir(root())
        .args(["sweep", "power-cut", "--scenario", scenario])
        .args(args)
        .arg("--reports")
        .arg(reports.path())
        .output()
        .expect("run rig");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        reports,
    )
}

fn sweep(args: &[&str]) -> (Option<i32>, String, tempfile::TempDir) {
    sweep_scenario("scenarios/happy-path.yaml", args)
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
        "--torn-shapes",
        "half",
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
    assert_eq!(
        points.len(),
        2 * 81,
        "every op 0..=80, clean and torn in half"
    );
    assert!(points.iter().all(|p| p["outcome"] == "updated"));
    assert!(v["process_checked"].as_u64().is_some_and(|n| n >= 2));
}

#[test]
fn every_tear_shape_is_swept_shown_and_replayed_by_the_process() {
    // Ops 0..=3: the download's state record (erase, program) and the first slot page.
    let (code, stdout, reports) = sweep(&[
        "--torn",
        "--from",
        "0",
        "--to",
        "3",
        "--replay",
        "process",
        "--process-every",
        "6",
    ]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("0 disagreement(s)"), "{stdout}");
    let v = sweep_json(reports.path());
    let points = v["points"].as_array().expect("points");
    let shapes: std::collections::BTreeSet<&str> =
        points.iter().filter_map(|p| p["shape"].as_str()).collect();
    for s in [
        "clean",
        "byte",
        "words",
        "half",
        "all-but-one",
        "erase-prefix",
        "erase-bits",
    ] {
        assert!(shapes.contains(s), "{s} missing from {shapes:?}");
    }
    // The 96-byte state record is torn at 1 byte, every word boundary, half, and 95 bytes.
    let record: Vec<&str> = points
        .iter()
        .filter(|p| p["op"] == 1 && p["torn"] == true)
        .filter_map(|p| p["tear"].as_str())
        .collect();
    assert_eq!(record.len(), 1 + 23 + 1 + 1, "{record:?}");
    assert!(record.contains(&"prefix:12") && record.contains(&"prefix:95"));
    assert_eq!(points.len(), 4 + 27 + 4 + 4);
    assert!(points.iter().all(|p| p["outcome"] == "updated"));
    assert!(v["process_checked"].as_u64().is_some_and(|n| n >= 5), "{v}");
    let dir = std::fs::read_dir(reports.path())
        .expect("reports")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().contains("sweep"))
        .expect("run dir");
    let html = std::fs::read_to_string(dir.path().join("sweep.html")).expect("html");
    assert!(
        html.contains("download (torn: words)"),
        "the map names shapes"
    );
    assert!(html.contains("torn prefix:12"), "a cell names its tear");
}

#[test]
fn a_firmware_that_skips_the_state_crc_is_caught_by_the_torn_sweep_only() {
    let crc = ["--quirk", "skip-state-crc", "--from", "0", "--to", "1"];
    let (code, stdout, reports) = sweep(&[&crc[..], &["--torn"]].concat());
    assert_eq!(code, Some(101), "{stdout}");
    let v = sweep_json(reports.path());
    let caught: Vec<&serde_json::Value> = v["points"]
        .as_array()
        .expect("points")
        .iter()
        .filter(|p| p["outcome"] == "bricked" || p["outcome"] == "invariant-broken")
        .collect();
    assert!(!caught.is_empty(), "{stdout}");
    assert!(
        caught
            .iter()
            .all(|p| p["shape"] == "words" || p["shape"] == "all-but-one"),
        "torn records inside the 96 bytes catch it: {caught:?}"
    );
    assert!(stdout.contains("torn prefix:"), "{stdout}");
    // The clean sweep and the old half-page tear never tear the record: they miss it.
    let (code, stdout, _r) = sweep(&crc);
    assert_eq!(code, Some(0), "{stdout}");
    let (code, stdout, _r) = sweep(&[&crc[..], &["--torn-shapes", "half"]].concat());
    assert_eq!(code, Some(0), "{stdout}");
    // The correct firmware survives every tear of the record.
    let (code, stdout, _r) = sweep(&["--torn", "--unstable-bits", "--from", "0", "--to", "1"]);
    assert_eq!(code, Some(0), "{stdout}");
}

#[test]
fn the_sweep_follows_the_scenario_and_judges_its_outcome() {
    for (scenario, script, ops) in [
        ("scenarios/bad-signature.yaml", "refused", "0"),
        ("scenarios/downgrade-refused.yaml", "refused", "0"),
        (
            "scenarios/checkin-timeout-rollback.yaml",
            "failed-trial",
            "0",
        ),
    ] {
        let (code, stdout, reports) = sweep_scenario(scenario, &["--from", ops, "--to", "5"]);
        assert_eq!(code, Some(0), "{scenario}: {stdout}");
        let v = sweep_json(reports.path());
        assert_eq!(v["script"], script, "{scenario}");
        assert_eq!(v["clean_outcome"], v["expected"], "{scenario}");
        assert_eq!(v["updated"], 0, "{scenario}: nothing updates");
    }
    // A scenario whose path writes nothing (no release offered, a refused rollback): nothing
    // to sweep is a usage error, never a pass.
    for scenario in [
        "scenarios/rollout-paused.yaml",
        "scenarios/rollback-refused-on-factory.yaml",
    ] {
        let (code, out, _r) = sweep_scenario(scenario, &[]);
        assert_eq!(code, Some(2), "{scenario}: {out}");
        assert!(out.contains("nothing to sweep"), "{out}");
    }
    // Empty and inverted ranges.
    for range in [
        ["--from", "10", "--to", "5"],
        ["--from", "99999", "--to", "100000"],
    ] {
        let (code, out, _r) = sweep(&range);
        assert_eq!(code, Some(2), "{range:?}: {out}");
    }
    // A scenario that expects the wrong end: every point is off it (exit 101).
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(root().join("scenarios/happy-path.yaml")).expect("read");
    let wrong = dir.path().join("expects-unchanged.yaml");
    std::fs::write(
        &wrong,
        text.replace("outcome: updated", "outcome: unchanged"),
    )
    .expect("write");
    let (code, out, _r) = sweep_scenario(
        wrong.to_str().expect("utf-8 path"),
        &["--from", "0", "--to", "2"],
    );
    assert_eq!(code, Some(101), "{out}");
    assert!(out.contains("the clean run (no cut) ends updated"), "{out}");
}

#[test]
fn sigterm_stops_a_sweep_with_its_partial_survival_map_and_exit_130() {
    let reports = tempfile::tempdir().expect("tempdir");
    let child = Command::new(env!("CARGO_BIN_EXE_rig"))
        .current_dir(root())
        .args([
            "sweep",
            "power-cut",
            "--scenario",
            "scenarios/happy-path.yaml",
            "--torn",
            "--nested",
            "4",
            "-j",
            "1",
            "--reports",
        ])
        .arg(reports.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rig");
    std::thread::sleep(Duration::from_millis(2500));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted by SIGTERM: partial survival map"),
        "{stderr}"
    );
    let v = sweep_json(reports.path());
    assert_eq!(v["interrupted"], "stopped by SIGTERM");
    let (done, planned) = (
        v["points"].as_array().expect("points").len() as u64,
        v["planned_points"].as_u64().expect("planned"),
    );
    assert!(done > 0 && done < planned, "{done} of {planned}");
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

#[test]
fn the_sim_board_tears_its_flash_as_the_in_memory_model_does() {
    use ota_core::layout::SIM;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = ota_core::keys::generate();
    let spec = ota_core::image::ImageSpec {
        version: ota_core::Version::new(1, 0, 0),
        rollback_counter: 1,
        board: ota_core::image::board_kind("sim").expect("sim"),
        load_addr: ota_core::payload::SIM_LOAD_ADDR,
        entry_offset: 0,
    };
    let body = ota_core::payload::build(spec.version, ota_core::payload::Drill::None, 8192);
    let image = ota_core::image::build(&spec, &body, &key);
    let slot_a = SIM.slot(0) as usize;
    for (tear, unstable) in [("prefix:100", false), ("bits+unstable", true)] {
        let flash = dir.path().join(format!("{tear}.bin"));
        sim_board::flash::provision(&flash, &image, &key.verifying_key().to_bytes())
            .expect("provision");
        // The factory-reset drill's first operation erases slot A: tear it.
        let out = Command::new(env!("CARGO_BIN_EXE_rig"))
            .args(["__sim-board", "--flash"])
            .arg(&flash)
            .args(["--server", "http://127.0.0.1:9", "--device", "tear"])
            .args([
                "--factory-reset",
                "--cut-at-flash-op",
                "0",
                "--tear-shape",
                tear,
            ])
            .output()
            .expect("run the board");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(sim_board::CUT_EXIT_CODE),
            "{stderr}"
        );
        assert!(
            stderr.contains("kind=erase") && stderr.contains("torn=true"),
            "{stderr}"
        );
        let mem = std::fs::read(&flash).expect("flash");
        let slot = &mem[slot_a..slot_a + image.len()];
        if tear == "prefix:100" {
            assert!(
                slot[..100].iter().all(|b| *b == 0xFF),
                "the prefix is erased"
            );
            assert_eq!(&slot[100..], &image[100..], "the rest is untouched");
        } else {
            assert!(slot.iter().zip(&image).all(|(now, was)| now | was == *now));
            assert!(slot.iter().zip(&image).any(|(now, was)| now != was));
            assert_ne!(slot, &image[..]);
        }
        assert_eq!(
            sim_board::flash::unstable_path(&flash).exists(),
            unstable,
            "unstable bits outlive the process"
        );
    }
}
