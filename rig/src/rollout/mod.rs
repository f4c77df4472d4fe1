//! Runbook validation: a staged rollout of the release under test, driven phase by phase the
//! way a release manager would (soak, judge, advance; hold when devices go quiet), against the
//! real fake-server on loopback and a simulated fleet running ota-core's real update logic.
//!
//! Time is simulated: the server runs on a manual clock, every device is woken at the moments
//! it acts (check-ins, reboots, power returning), and hours of soak pass in milliseconds. Runs
//! are deterministic under a seed (device troubles, timings and faults come from per-device
//! generators; the server's answers depend only on what devices send).
//!
//! The runbook's `faults:` are installed on the server before the first device wakes and stay
//! for the whole drill. Their durations (`latency`, `stall_after ... for`, `slow_headers`) are
//! wall-clock time, not simulated time. Use `share` rather than `probability`, `every`, `times`
//! or `nth` to hit a part of the fleet: those count requests in arrival order, which depends on
//! how concurrent devices interleave, while `share` depends only on each device's own requests.

pub mod bench;
pub mod flash;
pub mod fleet;
pub mod net;
pub mod report;
pub mod runbook;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use tracing::{info, info_span};

use self::fleet::{Running, Shared, SimDevice};
use self::report::{Check, FaultReport, HaltReport, PhaseReport, RolloutReport, Sample};
use self::runbook::{RolloutOutcome, Runbook, Trouble};
use crate::engine::images::ImageStore;

const HOUR: u64 = 3_600_000;
/// Devices woken within this window of simulated time are served together.
const QUANTUM: u64 = 60_000;
/// Samples for the chart.
const SAMPLE_EVERY: u64 = HOUR;

/// How to run a runbook against a simulated fleet.
pub struct FleetOptions {
    pub devices: u32,
    pub seed: u64,
    /// Overrides the runbook's device mix.
    pub mix: Option<BTreeMap<Trouble, runbook::Percent>>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Where images are built (a run directory).
    pub work_dir: std::path::PathBuf,
}

/// The id of fleet device `i`.
pub fn device_id(i: u32) -> String {
    format!("fleet-{i:05}")
}

/// Runs the runbook; the report says what happened and which expectations held.
pub async fn run_fleet(rb: &Runbook, opts: &FleetOptions) -> Result<RolloutReport> {
    let wall = Instant::now();
    let span = info_span!("rollout", runbook = %rb.name, devices = opts.devices, seed = opts.seed);
    let _g = span.enter();
    let checkin_ms = rb.fleet.checkin_interval.0.as_millis() as u64;
    let trial_ms = rb.fleet.trial_window.0.as_millis() as u64;
    let planned: u64 = rb.phases.iter().map(|p| p.soak.0.as_millis() as u64).sum();
    let deadline = planned * 3 + 24 * HOUR;

    // Images: small bodies so that ten thousand flashes fit in memory.
    let store = ImageStore::create(&opts.work_dir.join("images")).context("image store")?;
    let sized = |name: &str| -> Result<String> {
        let mut def = rb.images[name].clone();
        def.size = Some(rb.fleet.image_size);
        store
            .get(name, &def)
            .with_context(|| format!("building image `{name}`"))
    };
    let from_file = sized(&rb.from)?;
    let to_file = sized(&rb.to)?;
    let key = store.signing_key().verifying_key().to_bytes();
    let factory_bytes = std::fs::read(store.dir().join(&from_file)).context("factory image")?;
    let (provisioned, _) = sim_board::flash::provisioned(&factory_bytes, &key)
        .map_err(|e| anyhow::anyhow!("provisioning: {e}"))?;
    let factory = flash::FactoryImage::from_bytes(&provisioned);
    drop(provisioned);

    // The server, on the simulation's clock.
    let clock = Arc::new(AtomicU64::new(0));
    let server = fake_server::start(fake_server::Config {
        signing_key: Some(store.signing_key().clone()),
        clock: fake_server::Clock::Manual(Arc::clone(&clock)),
        event_history: 1000,
        ..fake_server::Config::new(store.dir())
    })
    .await
    .context("starting fake-server")?;
    let release = server.publish(&rb.to, &to_file).context("publishing")?;
    if !rb.faults.is_empty() {
        server.set_faults(rb.faults.clone());
        info!(rules = rb.faults.len(), "fault rules installed");
    }
    let percents: Vec<u8> = rb.phases.iter().map(|p| p.percent.unwrap_or(0)).collect();
    let engineering: Vec<String> = match rb.phases.first().and_then(|p| p.devices) {
        Some(n) => (0..n.min(opts.devices)).map(device_id).collect(),
        None => Vec::new(),
    };
    let mut rollout = fake_server::Rollout {
        phase: 0,
        percents,
        paused: false,
        engineering: engineering.clone(),
        halt: Some(fake_server::HaltPolicy {
            error_rate: rb.halt.error_rate.0,
            min_sample: rb.halt.min_sample,
            max_rollbacks: rb.halt.rollbacks,
        }),
        halted: None,
    };
    server.set_rollout(rollout.clone());
    let members = phase_members(&rollout, opts.devices);

    // The fleet.
    let mix = opts.mix.clone().unwrap_or_else(|| rb.fleet.mix.clone());
    let mut seeder = fleet::Rng::new(opts.seed);
    let mut devices: Vec<Option<SimDevice>> = Vec::with_capacity(opts.devices as usize);
    let mut queue = BinaryHeap::new();
    let mut mix_counts: BTreeMap<String, u32> = BTreeMap::new();
    for i in 0..opts.devices {
        let draw = seeder.unit();
        let mut acc = 0.0;
        let mut trouble = None;
        for (t, share) in &mix {
            acc += share.0;
            if draw < acc {
                trouble = Some(*t);
                break;
            }
        }
        // Engineering devices sit on the bench: no troubles.
        if (i as usize) < engineering.len() {
            trouble = None;
        }
        *mix_counts
            .entry(trouble.map_or("good", Trouble::as_str).to_string())
            .or_default() += 1;
        let first = seeder.range(0, checkin_ms);
        let dev = SimDevice::new(
            device_id(i),
            trouble,
            &factory,
            key,
            seeder.next_u64(),
            first,
            planned,
        );
        devices.push(Some(dev));
        queue.push(Reverse((first, i)));
    }
    let shared = Arc::new(Shared {
        client: net::Client::new(server.addr()),
        key,
        checkin_ms,
        trial_ms,
        outages: rb
            .events
            .iter()
            .filter_map(|e| {
                e.outage.as_ref().map(|o| {
                    let at = e.at.0.as_millis() as u64;
                    (at, at + o.duration.0.as_millis() as u64, o.devices.0)
                })
            })
            .collect(),
        release_version: release.version.clone(),
    });

    // The runbook's timed events, in order.
    let mut timed: Vec<(u64, bool)> = rb
        .events
        .iter()
        .filter_map(|e| e.pause.map(|p| (e.at.0.as_millis() as u64, p)))
        .collect();
    timed.sort_by_key(|(t, _)| *t);
    let mut timed = timed.into_iter().peekable();
    let mut pause_windows: Vec<(u64, u64)> = Vec::new();

    let mut phase = 0usize;
    let mut phase_started = 0u64;
    let mut phase_due = rb.phases[0].soak.0.as_millis() as u64;
    let mut phases: Vec<PhaseReport> = rb
        .phases
        .iter()
        .map(|p| PhaseReport::new(&p.name, p.percent, p.devices))
        .collect();
    let mut samples: Vec<Sample> = Vec::new();
    let mut next_sample = 0u64;
    let mut outcome = None;
    let mut halt_report: Option<HaltReport> = None;
    let mut stop_at = deadline;
    let mut full_at = None;
    let mut wakes: u64 = 0;
    let mut now: u64;
    info!(devices = opts.devices, "fleet ready");

    loop {
        let next_device = queue.peek().map_or(u64::MAX, |Reverse((t, _))| *t);
        let next_timed = timed.peek().map_or(u64::MAX, |(t, _)| *t);
        let next_control = phase_due.min(next_sample).min(next_timed).min(stop_at);
        if next_control <= next_device {
            now = next_control;
            clock.store(now * 1000, Ordering::Relaxed);
            if now >= stop_at {
                break;
            }
            if now == next_sample {
                samples.push(sample(now, &devices, &server, &rb.to));
                next_sample += SAMPLE_EVERY;
            }
            if now == next_timed
                && let Some((_, pause)) = timed.next()
            {
                rollout = server.rollout();
                rollout.paused = pause;
                server.set_rollout(rollout.clone());
                if pause {
                    pause_windows.push((now, u64::MAX));
                } else if let Some(w) = pause_windows.last_mut() {
                    w.1 = now;
                }
                info!(at_h = now as f64 / HOUR as f64, pause, "runbook event");
            }
            if now == phase_due && outcome.is_none() && server.rollout().paused {
                // Paused by the release manager: the phase is not judged until resumed.
                phases[phase].note = "paused by the release manager".into();
                phase_due = now + checkin_ms;
            } else if now == phase_due && outcome.is_none() {
                let mut verdict = judge_phase(rb, &server, phase, members[phase], now, checkin_ms);
                if verdict.passes && phase + 1 == rb.phases.len() {
                    // Completing needs the success criterion on every device reached.
                    verdict = judge_reached(rb, &server, verdict);
                }
                let p = &mut phases[phase];
                p.apply(&verdict, &server.phase_stats(&rb.to), phase, now);
                if verdict.passes {
                    p.ended_h = Some(now as f64 / HOUR as f64);
                    info!(phase = %rb.phases[phase].name, at_h = now as f64 / HOUR as f64, "phase passed");
                    phase += 1;
                    if phase == rb.phases.len() {
                        outcome = Some(RolloutOutcome::Completed);
                        full_at = Some(now);
                        // Let the last devices settle for one check-in interval, then stop.
                        stop_at = now + checkin_ms * 2;
                        phase_due = u64::MAX;
                    } else {
                        rollout = server.rollout();
                        rollout.phase = phase as u8;
                        server.set_rollout(rollout.clone());
                        phase_started = now;
                        phases[phase].started_h = Some(now as f64 / HOUR as f64);
                        phase_due = now + rb.phases[phase].soak.0.as_millis() as u64;
                    }
                } else {
                    // Held: judge again after another check-in interval.
                    phase_due = now + checkin_ms;
                }
            }
            continue;
        }
        // Wake every device due in this quantum, concurrently.
        now = next_device;
        clock.store(now * 1000, Ordering::Relaxed);
        let until = (now + QUANTUM).min(next_control);
        let mut batch = Vec::new();
        while let Some(Reverse((t, i))) = queue.peek().copied() {
            if t >= until && !batch.is_empty() {
                break;
            }
            queue.pop();
            if let Some(d) = devices[i as usize].take() {
                batch.push((t.max(now), i, d));
            }
        }
        let paused = server.rollout().paused;
        wakes += batch.len() as u64;
        let results = run_batch(batch, paused, &shared, opts.concurrency).await;
        for (i, dev, next) in results {
            if next != u64::MAX {
                queue.push(Reverse((next.max(now + 1), i)));
            }
            devices[i as usize] = Some(dev);
        }
        // Did the server halt the rollout?
        if halt_report.is_none()
            && let Some(h) = server.rollout().halted
        {
            let at = h.at_us / 1000;
            let phase_name = rb
                .phases
                .get(usize::from(h.phase))
                .map_or_else(|| h.phase.to_string(), |p| p.name.clone());
            let reached = devices
                .iter()
                .flatten()
                .filter(|d| d.tally.offered_at.is_some())
                .count() as u32;
            let ran = devices
                .iter()
                .flatten()
                .filter(|d| d.tally.ran_release)
                .count() as u32;
            info!(phase = %phase_name, reason = %h.reason, "rollout halted by the server");
            let mut killed = 0;
            if rb.on_halt.kill_switch {
                killed = server.kill_switch(&rb.to).context("kill switch")?.len() as u32;
            }
            halt_report = Some(HaltReport {
                phase: phase_name,
                at_h: at as f64 / HOUR as f64,
                reason: h.reason.clone(),
                failed: h.failed,
                offered_in_phase: h.offered,
                reached,
                ran_release: ran,
                kill_switch: rb.on_halt.kill_switch,
                rollback_queued: killed,
            });
            phases[phase].apply(
                &PhaseVerdict::default(),
                &server.phase_stats(&rb.to),
                phase,
                now,
            );
            outcome = Some(RolloutOutcome::Halted);
            phase_due = u64::MAX;
            // Give every affected device time to check in and roll back.
            stop_at = now + 3 * checkin_ms + 2 * trial_ms + 6 * HOUR;
        }
        let _ = phase_started;
    }
    samples.push(sample(now, &devices, &server, &rb.to));
    let records = server.devices();
    let faults: Vec<FaultReport> = server
        .faults()
        .into_iter()
        .zip(server.fault_counts())
        .map(|(rule, counts)| FaultReport {
            summary: rule.to_string(),
            rule,
            counts,
        })
        .collect();
    let stats = server.phase_stats(&rb.to);
    for (i, p) in phases.iter_mut().enumerate() {
        if let Some(s) = stats.get(i) {
            p.offered = s.offered;
            p.updated = s.updated;
            p.failed = s.failed;
            p.rolled_back = s.rolled_back;
        }
    }
    server.shutdown().await;

    let fleet: Vec<&SimDevice> = devices.iter().flatten().collect();
    let bricked = fleet.iter().filter(|d| d.is_bricked()).count() as u32;
    let failed: u32 = phases.iter().map(|p| p.failed).sum();
    let from_version = rb.images[&rb.from].version.0.to_string();
    let outcome = outcome.unwrap_or(RolloutOutcome::Stalled);
    let mut checks = Vec::new();
    let mut check = |name: &str, passed: bool, detail: String| {
        checks.push(Check {
            name: name.to_string(),
            passed,
            detail,
        })
    };
    check(
        "outcome",
        outcome == rb.expect.outcome,
        format!("expected {:?}, got {:?}", rb.expect.outcome, outcome),
    );
    check(
        "bricked",
        bricked <= rb.expect.bricked,
        format!(
            "{bricked} bricked device(s), at most {} allowed",
            rb.expect.bricked
        ),
    );
    if let Some(max) = rb.expect.failed {
        check(
            "failed",
            failed <= max,
            format!(
                "{failed} device(s) failed the release (server telemetry), at most {max} allowed"
            ),
        );
    }
    if !rb.expect.halted_in.is_empty() {
        let phase = halt_report.as_ref().map(|h| h.phase.clone());
        check(
            "halted_in",
            phase
                .as_ref()
                .is_some_and(|p| rb.expect.halted_in.contains(p)),
            format!(
                "halt fired in {}, expected one of {:?}",
                phase.as_deref().unwrap_or("no phase"),
                rb.expect.halted_in
            ),
        );
    }
    if rb.expect.affected_restored {
        let affected: Vec<&&SimDevice> = fleet
            .iter()
            .filter(|d| d.tally.offered_at.is_some())
            .collect();
        let off_version: Vec<&str> = affected
            .iter()
            .filter(|d| d.installed().as_deref() != Some(from_version.as_str()))
            .map(|d| d.id.as_str())
            .collect();
        check(
            "affected_restored",
            off_version.is_empty() && !affected.is_empty(),
            format!(
                "{} of {} device(s) offered {} run {} again{}",
                affected.len() - off_version.len(),
                affected.len(),
                rb.to,
                from_version,
                if off_version.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; not restored: {}",
                        off_version
                            .iter()
                            .take(10)
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
        );
    }
    if rb.expect.held {
        let held: Vec<&str> = phases
            .iter()
            .filter(|p| p.held_for_h > 0.0)
            .map(|p| p.name.as_str())
            .collect();
        check(
            "held",
            !held.is_empty() && halt_report.is_none(),
            format!(
                "phases held for missing check-ins: {held:?}; halts: {}",
                if halt_report.is_some() { 1 } else { 0 }
            ),
        );
    }
    if rb.expect.no_offers_while_paused {
        let while_paused = fleet
            .iter()
            .filter(|d| d.tally.offered_while_paused)
            .count();
        let late = fleet
            .iter()
            .filter(|d| {
                d.tally
                    .offered_at
                    .is_some_and(|t| pause_windows.iter().any(|&(a, b)| t > a && t < b))
            })
            .count();
        check(
            "no_offers_while_paused",
            while_paused + late == 0 && !pause_windows.is_empty(),
            format!(
                "{} offer(s) while paused (pause windows: {:?} h)",
                while_paused + late,
                pause_windows
                    .iter()
                    .map(|(a, b)| (*a as f64 / HOUR as f64, *b as f64 / HOUR as f64))
                    .collect::<Vec<_>>()
            ),
        );
    }
    let updated_final = records
        .iter()
        .filter(|r| {
            r.version == release.version && r.state == ota_core::checkin::DeviceState::Confirmed
        })
        .count() as u32;
    let peak_rss_mib = crate::cli::peak_rss_kib().map(|k| k as f64 / 1024.0);
    Ok(RolloutReport {
        runbook: rb.name.clone(),
        file: rb.file.display().to_string(),
        release: rb.to.clone(),
        from: rb.from.clone(),
        devices: opts.devices,
        seed: opts.seed,
        mix: mix_counts,
        outcome,
        expected: rb.expect.outcome,
        halt: halt_report,
        phases,
        time_to_full_h: full_at.map(|t| t as f64 / HOUR as f64),
        simulated_h: now as f64 / HOUR as f64,
        bricked,
        failed,
        updated_final,
        never_reached: fleet
            .iter()
            .filter(|d| d.tally.offered_at.is_none())
            .count() as u32,
        power_cuts: fleet.iter().map(|d| d.tally.power_cuts).sum(),
        reverted: fleet.iter().filter(|d| d.tally.reverted).count() as u32,
        forced_rollbacks: fleet.iter().map(|d| d.tally.forced_rollbacks).sum(),
        wakes,
        faults,
        samples,
        checks,
        wall_s: wall.elapsed().as_secs_f64(),
        peak_rss_mib,
        flash_mib: fleet
            .iter()
            .map(|d| d.private_flash_bytes(&factory))
            .sum::<usize>() as f64
            / (1024.0 * 1024.0),
    })
}

/// Wakes a batch of devices with at most `concurrency` in flight; returns each device with
/// its next wake time.
async fn run_batch(
    batch: Vec<(u64, u32, SimDevice)>,
    paused: bool,
    shared: &Arc<Shared>,
    concurrency: usize,
) -> Vec<(u32, SimDevice, u64)> {
    let mut out = Vec::with_capacity(batch.len());
    let mut set = tokio::task::JoinSet::new();
    let mut pending = batch.into_iter();
    loop {
        while set.len() < concurrency.max(1) {
            let Some((t, i, mut dev)) = pending.next() else {
                break;
            };
            let shared = Arc::clone(shared);
            set.spawn(async move {
                let next = dev.wake(t, paused, &shared).await;
                (i, dev, next)
            });
        }
        match set.join_next().await {
            Some(Ok(r)) => out.push(r),
            Some(Err(e)) => tracing::error!("fleet device task failed: {e}"),
            None => break,
        }
    }
    out
}

/// The verdict on a phase at the end of its soak.
#[derive(Debug, Clone, Default)]
pub struct PhaseVerdict {
    pub passes: bool,
    pub offered: u32,
    pub silent: u32,
    pub updated_in_time: u32,
    pub eligible: u32,
    pub note: String,
}

/// How many devices of a fleet of `devices` each phase adds (its engineering list, or the
/// cohorts between the previous phase's percentage and its own): a phase whose band holds no
/// device has nothing to wait for; one whose devices were never reached must not pass.
fn phase_members(rollout: &fake_server::Rollout, devices: u32) -> Vec<u32> {
    let mut members = vec![0u32; rollout.percents.len()];
    for i in 0..devices {
        let id = device_id(i);
        let phase = if rollout.engineering.contains(&id) {
            Some(0)
        } else {
            let c = fake_server::cohort(&id);
            rollout.percents.iter().position(|p| c < u32::from(*p))
        };
        if let Some(m) = phase.and_then(|p| members.get_mut(p)) {
            *m += 1;
        }
    }
    members
}

/// The last phase passed: the rollout completes only if the devices reached over the whole
/// rollout meet the success criterion too (otherwise the last phase stays held).
fn judge_reached(
    rb: &Runbook,
    server: &fake_server::ServerHandle,
    mut v: PhaseVerdict,
) -> PhaseVerdict {
    let (mut reached, mut updated) = (0u32, 0u32);
    for r in server.devices() {
        if r.offered.contains(&rb.to) {
            reached += 1;
            updated += u32::from(r.updated_at_us.is_some());
        }
    }
    let share = f64::from(updated) / f64::from(reached.max(1));
    if reached == 0 || share < rb.success.updated.0 {
        v.passes = false;
        v.note = format!(
            "held: {updated} of {reached} device(s) reached over the rollout run the release ({:.0}% < {})",
            share * 100.0,
            rb.success.updated
        );
    }
    v
}

/// Judges a phase from the server's telemetry only (what a release manager would see):
/// silent devices hold it, too few updates in time hold it, a phase whose devices were never
/// reached (or not yet given time to update) is held, otherwise it passes.
fn judge_phase(
    rb: &Runbook,
    server: &fake_server::ServerHandle,
    phase: usize,
    members: u32,
    now: u64,
    checkin_ms: u64,
) -> PhaseVerdict {
    let now_us = now * 1000;
    let within_us = rb.success.within.0.as_micros() as u64;
    let silent_after_us = 2 * checkin_ms * 1000;
    let mut v = PhaseVerdict::default();
    for r in server.devices() {
        if r.offered_in_phase != Some(phase as u8) || !r.offered.contains(&rb.to) {
            continue;
        }
        v.offered += 1;
        let silent = now_us.saturating_sub(r.last_checkin_us) > silent_after_us;
        if silent {
            v.silent += 1;
            continue;
        }
        let offered_at = r.offered_at_us.unwrap_or(now_us);
        if offered_at + within_us <= now_us {
            v.eligible += 1;
            if r.updated_at_us.is_some_and(|u| u <= offered_at + within_us) {
                v.updated_in_time += 1;
            }
        } else if r.updated_at_us.is_some() {
            // Offered recently and already done: counts for the phase.
            v.eligible += 1;
            v.updated_in_time += 1;
        }
    }
    let silent_share = f64::from(v.silent) / f64::from(v.offered.max(1));
    let updated_share = if v.eligible == 0 {
        1.0
    } else {
        f64::from(v.updated_in_time) / f64::from(v.eligible)
    };
    if members > 0 && v.offered == 0 {
        v.note = format!("held: none of the phase's {members} device(s) reached yet");
    } else if members > 0 && v.eligible == 0 {
        v.note = format!(
            "held: none of the {} device(s) offered has had {} to update yet",
            v.offered, rb.success.within
        );
    } else if silent_share > rb.halt.missing_checkins.0 {
        v.note = format!(
            "held: {} of {} offered device(s) silent ({:.0}% > {}), not blamed on the release",
            v.silent,
            v.offered,
            silent_share * 100.0,
            rb.halt.missing_checkins
        );
    } else if updated_share < rb.success.updated.0 {
        v.note = format!(
            "held: {} of {} device(s) updated within {} ({:.0}% < {})",
            v.updated_in_time,
            v.eligible,
            rb.success.within,
            updated_share * 100.0,
            rb.success.updated
        );
    } else {
        v.passes = true;
        v.note = format!(
            "passed: {} of {} updated within {}, {} silent",
            v.updated_in_time, v.eligible, rb.success.within, v.silent
        );
    }
    info!(phase, note = %v.note, "phase judged");
    v
}

/// Who runs what, now.
fn sample(
    now: u64,
    devices: &[Option<SimDevice>],
    server: &fake_server::ServerHandle,
    release: &str,
) -> Sample {
    let mut by_version: BTreeMap<String, u32> = BTreeMap::new();
    let (mut off, mut bricked, mut offered) = (0, 0, 0);
    for d in devices.iter().flatten() {
        match d.running() {
            Running::Version(v) => *by_version.entry(v).or_default() += 1,
            Running::Off => off += 1,
            Running::Bricked => bricked += 1,
        }
        if d.tally.offered_at.is_some() {
            offered += 1;
        }
    }
    let _ = (server, release);
    Sample {
        t_h: now as f64 / HOUR as f64,
        by_version,
        off,
        bricked,
        offered,
    }
}
