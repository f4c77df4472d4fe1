//! `--replay=process`: re-runs a sample of points with the real sim-board process (the rig
//! re-executed as `rig __sim-board`, `--cut-at-flash-op N [--tear-shape SHAPE]`) against the
//! real update server, then restarts it with power restored and reads where it settles. Its
//! outcome must agree with the in-memory engine's. Torn points tear the same way in both: the
//! sim board's flash is ota-core's NOR model.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ota_core::sweep::{Script, Setup};

use super::Point;

/// Checks every `every`-th point that is not nested (clean or torn), until `stop` is set.
/// Returns (checked, disagreements).
pub fn cross_check(
    setup: &Setup,
    script: Script,
    points: &[Point],
    every: usize,
    stop: &AtomicBool,
) -> (usize, Vec<String>) {
    if script != Script::Update {
        return (
            0,
            vec![format!(
                "process replay covers the update script only (this is {})",
                script.as_str()
            )],
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return (0, vec![format!("cannot start a runtime: {e}")]),
    };
    let dir = std::env::temp_dir().join(format!("otarig-sweep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("v1.bin"), &setup.v1))
        .and_then(|()| std::fs::write(dir.join("v2.bin"), &setup.v2))
        .and_then(|()| {
            std::fs::write(
                dir.join("release.pub"),
                hex::encode(setup.key.verifying_key().as_bytes()),
            )
        })
    {
        return (0, vec![format!("cannot prepare {}: {e}", dir.display())]);
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return (0, vec![format!("cannot find the rig binary: {e}")]),
    };
    let sample: Vec<&Point> = points
        .iter()
        .filter(|p| p.nested.is_none())
        .step_by(every)
        .collect();
    let mut disagreements = Vec::new();
    let mut checked = 0;
    for (i, p) in sample.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let tear = p.tear.as_deref();
        let outcome = runtime.block_on(one_point(&dir, &exe, setup, p.op, tear, i));
        checked += 1;
        let at = match tear {
            Some(t) => format!("op {} torn {t}", p.op),
            None => format!("op {}", p.op),
        };
        match outcome {
            Ok(o) if o == p.outcome => {}
            Ok(o) => disagreements.push(format!("{at}: in-memory {}, process {o}", p.outcome)),
            Err(e) => disagreements.push(format!("{at}: process run failed: {e}")),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    (checked, disagreements)
}

async fn one_point(
    dir: &std::path::Path,
    exe: &std::path::Path,
    setup: &Setup,
    op: u64,
    tear: Option<&str>,
    i: usize,
) -> Result<&'static str, String> {
    let mut cfg = fake_server::Config::new(dir);
    cfg.signing_key = Some(setup.key.clone());
    let server = fake_server::start(cfg).await.map_err(|e| e.to_string())?;
    server.publish("v2", "v2.bin").map_err(|e| e.to_string())?;
    let device = format!("sweep-{i}");
    let flash = dir.join(format!("flash-{i}.bin"));
    let run = |cut: Option<u64>| {
        let mut cmd = Command::new(exe);
        cmd.arg("__sim-board")
            .arg("--flash")
            .arg(&flash)
            .args(["--server", &server.url(), "--device", &device])
            .arg("--factory")
            .arg(dir.join("v1.bin"))
            .arg("--trust-key")
            .arg(dir.join("release.pub"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(c) = cut {
            cmd.args(["--cut-at-flash-op", &c.to_string()]);
            if let Some(t) = tear {
                cmd.args(["--tear-shape", t]);
            }
        }
        cmd.spawn()
    };
    // First life: runs until the flash layer cuts the power at `op`.
    let mut child = run(Some(op)).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the board never reached flash op {op}"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Power restored: let it settle.
    let mut child = run(None).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let release = setup.versions().1.to_string();
    let outcome = loop {
        if let Some(d) = server.device(&device)
            && d.state == ota_core::checkin::DeviceState::Confirmed
            && d.version == release
        {
            break Ok("updated");
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Err(format!("the board exited: {status}"));
        }
        if Instant::now() > deadline {
            let d = server.device(&device);
            break Ok(match d {
                Some(d) if d.state == ota_core::checkin::DeviceState::Reverted => "rolled-back",
                Some(_) => "unchanged",
                None => "bricked",
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    server.shutdown().await;
    let _ = std::fs::remove_file(&flash);
    outcome
}
