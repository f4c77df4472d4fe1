//! A runbook's engineering phase on the bench's boards, in real time: the boards are the
//! engineering devices, the real fake-server offers them the release through the same rollout
//! machinery (phase 0, engineering list, halt policy), and the phase is judged as soon as every
//! board has updated or failed, or the rollout halted and no board is still installing the
//! release (at the latest when its soak ends).
//!
//! Simulated boards (`power: { sim: {} }`) run as sim-board processes; a board labelled `rev-b`
//! is hardware revision B. Hardware boards are refused with a message that says why: each one's
//! firmware carries its own server address (`rig run --bench` serves each board on its own
//! socket), while a rollout needs one server, with one set of telemetry, for every device.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::error::{Error, Result};
use super::runbook::Runbook;
use crate::backend::sim::{SimPower, SimSpec};
use crate::bench::{Bench, PowerConfig};
use crate::board::power::PowerSwitch;
use crate::images::ImageStore;
use crate::timeline::{BoardLane, Timeline};

/// What one board did.
#[derive(Debug, Clone, Serialize)]
pub struct BoardResult {
    pub board: String,
    pub device: String,
    pub version: String,
    pub state: String,
    pub last_error: Option<String>,
    pub updated: bool,
    pub failed: bool,
    pub checkins: u64,
}

/// The engineering phase on the bench.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRollout {
    pub runbook: String,
    pub release: String,
    pub boards: Vec<BoardResult>,
    pub halted: Option<String>,
    /// Every board updated and nothing halted: the rollout may go on to the fleet's phases.
    pub passed: bool,
    pub seconds: f64,
}

/// Runs the engineering phase of `rb` on the boards of `bench`.
pub async fn run(
    rb: &Runbook,
    bench: &Bench,
    program: Vec<std::ffi::OsString>,
    work_dir: &std::path::Path,
) -> Result<BenchRollout> {
    let started = Instant::now();
    for (name, b) in &bench.boards {
        if !matches!(b.power, PowerConfig::Sim {}) {
            return Err(Error::Board {
                board: name.clone(),
                why: "a hardware board: a bench rollout serves every device from one update server, but each hardware board's firmware has its own server address (one server listening on every board's address is not implemented yet); use `rig run --bench` for hardware boards, or simulated boards (`power: { sim: {} }`) here".into(),
            });
        }
    }
    let store = ImageStore::create(&work_dir.join("images"))?;
    let from = store.get(&rb.from, &rb.images[&rb.from])?;
    let to = store.get(&rb.to, &rb.images[&rb.to])?;
    let server = fake_server::start(fake_server::Config {
        signing_key: Some(store.signing_key().clone()),
        ..fake_server::Config::new(store.dir())
    })
    .await?;
    let release = server.publish(&rb.to, &to)?;
    let devices: BTreeMap<String, String> = bench
        .boards
        .keys()
        .map(|n| (n.clone(), format!("bench-{n}")))
        .collect();
    server.set_rollout(fake_server::Rollout {
        phase: 0,
        percents: rb.phases.iter().map(|p| p.percent.unwrap_or(0)).collect(),
        paused: false,
        engineering: devices.values().cloned().collect(),
        halt: Some(fake_server::HaltPolicy {
            error_rate: rb.halt.error_rate.0,
            min_sample: rb.halt.min_sample.min(devices.len() as u32).max(1),
            max_rollbacks: rb.halt.rollbacks,
        }),
        halted: None,
    });
    server.set_faults(rb.faults.clone());
    let timeline = Timeline::new();
    let mut powers = Vec::new();
    for (name, b) in &bench.boards {
        let mut extra = Vec::new();
        if b.labels.iter().any(|l| l == "rev-b") {
            extra.extend(["--hw-rev".to_string(), "b".to_string()]);
        }
        let spec = SimSpec {
            program: program.clone(),
            flash: work_dir.join(format!("{name}.flash")),
            flash_log: work_dir.join(format!("{name}.flash.log")),
            server_url: server.url(),
            device_id: devices[name].clone(),
            factory: Some(store.dir().join(&from)),
            trust_key: Some(store.public_key_file().to_path_buf()),
            extra_args: extra,
        };
        let lane = BoardLane::fixed(Arc::clone(&timeline), Arc::from(name.as_str()));
        let (mut power, _console) = SimPower::new(spec, lane);
        power.on().map_err(|source| Error::Power {
            board: name.clone(),
            source,
        })?;
        powers.push(power);
    }
    let soak = rb
        .phases
        .first()
        .map_or(Duration::from_secs(60), |p| p.soak.0);
    let deadline = Instant::now() + soak.min(rb.success.within.0);
    let done =
        |r: &fake_server::DeviceRecord| r.updated_at_us.is_some() || r.failed.contains(&rb.to);
    // A halt stops new offers, but a board that already fetched the release goes on installing
    // it (no backend recalls an image mid-trial): the phase is judged once those have settled.
    let in_flight = |r: &fake_server::DeviceRecord| r.downloaded.contains(&rb.to) && !done(r);
    loop {
        let records = server.devices();
        let settled = devices
            .values()
            .all(|d| records.iter().any(|r| &r.device == d && done(r)));
        let installing = records
            .iter()
            .any(|r| in_flight(r) && devices.values().any(|d| d == &r.device));
        let halted_and_quiet = server.rollout().halted.is_some() && !installing;
        if settled || halted_and_quiet || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for p in &mut powers {
        let _ = p.off();
    }
    drop(powers);
    // The flash files (2 MiB each) are not worth keeping; their operation logs are.
    for name in bench.boards.keys() {
        let _ = std::fs::remove_file(work_dir.join(format!("{name}.flash")));
    }
    let records = server.devices();
    let halted = server.rollout().halted.map(|h| h.reason);
    server.shutdown().await;
    let boards: Vec<BoardResult> = devices
        .iter()
        .map(|(board, device)| {
            let r = records.iter().find(|r| &r.device == device);
            BoardResult {
                board: board.clone(),
                device: device.clone(),
                version: r.map(|r| r.version.clone()).unwrap_or_default(),
                state: r.map_or_else(|| "silent".to_string(), |r| r.state.as_str().to_string()),
                last_error: r.and_then(|r| r.last_error.clone()),
                updated: r
                    .is_some_and(|r| r.updated_at_us.is_some() && r.version == release.version),
                failed: r.is_some_and(|r| r.failed.contains(&rb.to)),
                checkins: r.map_or(0, |r| r.checkins),
            }
        })
        .collect();
    let passed = halted.is_none() && boards.iter().all(|b| b.updated);
    Ok(BenchRollout {
        runbook: rb.name.clone(),
        release: rb.to.clone(),
        boards,
        halted,
        passed,
        seconds: started.elapsed().as_secs_f64(),
    })
}
