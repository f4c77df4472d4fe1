//! `rig run --bench` on QEMU boards (`kind: qemu`): the compiled firmware executing in
//! `qemu-system-arm -M mps2-an385`. Needs `qemu-system-arm`, `socat` and the firmware builds
//! (`firmware-under-test/boards/qemu-mps2/tools/build-drills.sh DIR`, DIR given in
//! `OTARIG_QEMU_FIRMWARE`, default `target/qemu-mps2-drills`). Without them the tests say why
//! and pass, unless `OTARIG_QEMU_REQUIRED=1` (CI), where a missing prerequisite fails them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The firmware directory, or `None` (with the reason printed) when this machine cannot run
/// QEMU boards and they are not required.
fn firmware() -> Option<PathBuf> {
    let dir = std::env::var_os("OTARIG_QEMU_FIRMWARE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/qemu-mps2-drills"));
    let on_path = |p: &str| {
        std::env::var_os("PATH")
            .is_some_and(|v| std::env::split_paths(&v).any(|d| d.join(p).is_file()))
    };
    let missing = if !on_path("qemu-system-arm") {
        Some("qemu-system-arm is not installed".to_string())
    } else if !on_path("socat") {
        Some("socat is not installed".to_string())
    } else if !dir.join("bootloader.elf").is_file() || !dir.join("app.elf").is_file() {
        Some(format!("no firmware builds in {}", dir.display()))
    } else {
        None
    };
    match missing {
        None => Some(std::path::absolute(&dir).expect("absolute path")),
        Some(why) if std::env::var_os("OTARIG_QEMU_REQUIRED").is_some_and(|v| v == "1") => {
            panic!("OTARIG_QEMU_REQUIRED=1 but {why}")
        }
        Some(why) => {
            eprintln!("skipped: {why} (set OTARIG_QEMU_REQUIRED=1 to make this a failure)");
            None
        }
    }
}

/// A one-board QEMU bench with its own gdbstub port.
fn bench(dir: &Path, firmware: &Path, gdb_port: u16) -> PathBuf {
    let path = dir.join("bench.yaml");
    std::fs::write(
        &path,
        format!(
            "boards:\n  qemu-t{gdb_port}:\n    kind: qemu\n    emulated: true\n    power: {{ relay: {{ gpio: 5, min_off: 100ms }} }}\n    console: {{ sim_pty: {{}} }}\n    probe: {{ gdb: {{ port: {gdb_port} }} }}\n    qemu: {{ firmware: {}, mac: \"52:54:00:0b:00:{:02x}\" }}\n    time_scale: 4\n",
            firmware.display(),
            gdb_port % 256
        ),
    )
    .expect("write bench");
    path
}

fn rig(dir: &Path, bench: &Path, scenarios: &[PathBuf]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rig"));
    cmd.current_dir(root())
        .env("OTARIG_LOCK_DIR", dir.join("locks"))
        .arg("run")
        .args(scenarios)
        .arg("--bench")
        .arg(bench)
        .arg("--reports")
        .arg(dir.join("reports"))
        .stdin(Stdio::null());
    cmd
}

/// Process ids of QEMU processes whose command line has `needle`.
fn qemus_with(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c).replace('\0', " ");
                c.contains("qemu-system-arm") && c.contains(needle)
            })
        })
        .collect()
}

#[test]
fn happy_path_and_a_breakpoint_cut_pass_on_qemu() {
    let Some(fw) = firmware() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let bench = bench(dir.path(), &fw, 23391);
    let out = rig(
        dir.path(),
        &bench,
        &[
            root().join("scenarios/happy-path.yaml"),
            root().join("scenarios/qemu/breakpoint-cut-flash-write.yaml"),
        ],
    )
    .output()
    .expect("run rig");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("2 passed, 0 failed, 0 infra errors"),
        "{stdout}\n{stderr}"
    );
    let report =
        std::fs::read_to_string(dir.path().join("reports/latest/report.json")).expect("report");
    // The firmware, not a sim board, ran: its boot line names the board and the MAC's device.
    let boot = format!("board=qemu-mps2 device=qemu-5254000b00{:02x}", 23391 % 256);
    assert!(
        report.contains(&boot),
        "no `{boot}` boot line in the report"
    );
    assert!(
        report.contains("at breakpoint `otarig_flash_write` (hit 90"),
        "the cut did not halt at the breakpoint"
    );
    assert!(
        qemus_with("tcp:127.0.0.1:23391").is_empty(),
        "QEMU left running"
    );
}

#[test]
fn a_killed_rig_takes_its_qemu_board_with_it() {
    let Some(fw) = firmware() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let bench = bench(dir.path(), &fw, 23392);
    let scenario = dir.path().join("long.yaml");
    std::fs::write(
        &scenario,
        "about: waits long enough for the test to kill the rig\ngiven: { firmware: v1 }\nsteps:\n  - power: on\n  - expect: { console: '^never printed', within: 60s }\noutcome: unchanged\n",
    )
    .expect("write scenario");
    let mut child = rig(dir.path(), &bench, &[scenario])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rig");
    let needle = "tcp:127.0.0.1:23392";
    let deadline = Instant::now() + Duration::from_secs(30);
    let qemus = loop {
        let found = qemus_with(needle);
        if !found.is_empty() || Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!qemus.is_empty(), "the rig never started QEMU");
    // Let the board run (the scenario's expectation is waiting).
    std::thread::sleep(Duration::from_millis(500));
    child.kill().expect("SIGKILL the rig");
    child.wait().expect("reap the rig");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !qemus_with(needle).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        qemus_with(needle).is_empty(),
        "QEMU outlived the rig that started it"
    );
}

#[test]
fn a_slot_write_cut_halts_at_the_first_program_past_it_on_the_probe_lane() {
    let Some(fw) = firmware() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let bench = bench(dir.path(), &fw, 23393);
    let out = rig(
        dir.path(),
        &bench,
        &[root().join("scenarios/power-cut-writing-inactive-slot.yaml")],
    )
    .output()
    .expect("run rig");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed, 0 failed, 0 infra errors"),
        "{stdout}\n{stderr}"
    );
    let report =
        std::fs::read_to_string(dir.path().join("reports/latest/report.json")).expect("report");
    // A probe event (the timeline's probe lane) says where the core halted.
    assert!(
        report.contains(
            "\"detail\":\"halted during the slot write at 60%: `otarig_flash_write` at flash offset"
        ),
        "no probe-lane halt in the report"
    );
    assert!(
        qemus_with("tcp:127.0.0.1:23393").is_empty(),
        "QEMU left running"
    );
}

#[test]
fn the_qemu_sweep_agrees_with_the_in_memory_engine() {
    let Some(fw) = firmware() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_rig"))
        .current_dir(root())
        .args([
            "sweep",
            "power-cut",
            "--scenario",
            "scenarios/happy-path.yaml",
        ])
        .args([
            "--replay",
            "qemu",
            "--qemu-points",
            "4",
            "--qemu-gdb-port",
            "23394",
        ])
        .arg("--qemu-firmware")
        .arg(&fw)
        .arg("--reports")
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run rig");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success()
            && stdout.contains("qemu replay: 4 points cut on the QEMU firmware")
            && stdout.contains(", 0 bricked, 0 disagreement(s)"),
        "{stdout}\n{stderr}"
    );
    assert!(
        qemus_with("tcp:127.0.0.1:23394").is_empty(),
        "QEMU left running"
    );
}
