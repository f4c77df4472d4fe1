//! One drill on the simulated fleet: build the images and the fleet, start the server with the
//! runbook's policy (otarig phases, or an imported backend's), then advance simulated time:
//! wake the devices due, play the runbook's events, judge phases (native runbooks) or watch
//! the backend's policy move on (imported ones), and notice a halt. Ends with the report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tracing::{info, info_span};

use super::calendar::Calendar;
use super::checks::{self, Facts};
use super::error::{Error, Result};
use super::fleet::{self, Running, Shared, SimDevice};
use super::import::{Built, FleetDevice};
use super::judge::{PhaseVerdict, judge_phase, judge_reached, phase_members};
use super::net::Transport;
use super::report::{BackendReport, FaultReport, HaltReport, PhaseReport, RolloutReport, Sample};
use super::runbook::{RolloutOutcome, Runbook};
use super::threads::{ServerThread, Workers};
use super::{FleetOptions, FleetTransport, HOUR, device_id, flash};
use crate::images::ImageStore;

/// Devices woken within this window of simulated time are served together.
const QUANTUM: u64 = 60_000;
/// Samples for the chart.
const SAMPLE_EVERY: u64 = HOUR;
/// Fleet worker threads (this machine class has two cores; the server has a thread too).
const WORKERS: usize = 2;

fn hours(ms: u64) -> f64 {
    ms as f64 / HOUR as f64
}

/// Runs the drill on this thread's runtime.
pub async fn run(rb: &Runbook, opts: &FleetOptions) -> Result<RolloutReport> {
    let wall = Instant::now();
    let span = info_span!("rollout", runbook = %rb.name, devices = opts.devices, seed = opts.seed);
    let _g = span.enter();
    let checkin_ms = rb.fleet.checkin_interval.0.as_millis() as u64;
    let trial_ms = rb.fleet.trial_window.0.as_millis() as u64;
    let planned: u64 = match &rb.imported {
        Some(imp) => imp.horizon_ms,
        None => rb.phases.iter().map(|p| p.soak.0.as_millis() as u64).sum(),
    };
    let deadline = match &rb.imported {
        Some(_) => planned + 24 * HOUR,
        None => planned * 3 + 24 * HOUR,
    };

    // Images: small bodies so that the flashes stay small.
    let store = ImageStore::create(&opts.work_dir.join("images"))?;
    let sized = |name: &str| -> Result<String> {
        let mut def = rb.images[name].clone();
        def.size = Some(rb.fleet.image_size);
        Ok(store.get(name, &def)?)
    };
    let from_file = sized(&rb.from)?;
    let to_file = sized(&rb.to)?;
    let key = store.signing_key().verifying_key().to_bytes();
    let factory_path = store.dir().join(&from_file);
    let factory_bytes = std::fs::read(&factory_path).map_err(|source| Error::Read {
        path: factory_path,
        source,
    })?;
    let (provisioned, _) =
        sim_board::flash::provisioned(&factory_bytes, &key).map_err(Error::Provision)?;
    let factory = flash::FactoryImage::from_bytes(&provisioned);
    drop(provisioned);
    let pool = Arc::new(flash::SectorPool::default());

    // The server, on the simulation's clock.
    let clock = Arc::new(AtomicU64::new(0));
    let server = ServerThread::start(fake_server::Config {
        signing_key: Some(store.signing_key().clone()),
        clock: fake_server::Clock::Manual(Arc::clone(&clock)),
        event_history: 0,
        // Image requests check the file on the fleet's threads: no blocking-pool hand-offs.
        inline_file_checks: true,
        // Halt thresholds are judged once per tick of the simulated clock, after its batch:
        // the batch's check-ins interleave in thread order, and a seed must replay the drill.
        judge_at_ticks: true,
        ..fake_server::Config::new(store.dir())
    })?;
    let release = server.publish(&rb.to, &to_file)?;
    if !rb.faults.is_empty() {
        server.set_faults(rb.faults.clone());
        info!(rules = rb.faults.len(), "fault rules installed");
    }

    // The fleet.
    let engineering: Vec<String> = match (&rb.imported, rb.phases.first().and_then(|p| p.devices)) {
        (None, Some(n)) => (0..n.min(opts.devices)).map(device_id).collect(),
        _ => Vec::new(),
    };
    let mix = opts.mix.clone().unwrap_or_else(|| rb.fleet.mix.clone());
    let mut seeder = fleet::Rng::new(opts.seed);
    let mut devices: Vec<Option<Box<SimDevice>>> = Vec::with_capacity(opts.devices as usize);
    let mut queue = Calendar::new(QUANTUM);
    let mut mix_counts: BTreeMap<String, u32> = BTreeMap::new();
    let mut selection: Vec<FleetDevice> = Vec::new();
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
            .entry(trouble.map_or("good", |t| t.as_str()).to_string())
            .or_default() += 1;
        let first = seeder.range(0, checkin_ms);
        let dev = Box::new(SimDevice::new(
            device_id(i),
            trouble,
            flash::SparseFlash::new(&factory, Arc::clone(&pool)),
            key,
            seeder.next_u64(),
            first,
            planned,
        ));
        if rb.imported.is_some() {
            selection.push(FleetDevice {
                id: dev.id.clone(),
                trouble,
            });
        }
        devices.push(Some(dev));
        queue.push(first, i);
    }

    // The rollout policy: the runbook's phases, or the backend's.
    let mut built: Option<Built> = None;
    let mut phases: Vec<PhaseReport>;
    let members: Vec<u32>;
    match &rb.imported {
        Some(imp) => {
            let b = imp.build(&selection)?;
            server.set_policy(b.policy.clone());
            phases = imp
                .waves
                .iter()
                .zip(&b.sizes)
                .map(|(w, size)| {
                    let mut p = PhaseReport::new(&w.name, None, Some(*size));
                    p.backend = Some(w.terms.clone());
                    p
                })
                .collect();
            phases[0].started_h = Some(0.0);
            members = b.sizes.clone();
            built = Some(b);
        }
        None => {
            let rollout = fake_server::Rollout {
                phase: 0,
                percents: rb.phases.iter().map(|p| p.percent.unwrap_or(0)).collect(),
                paused: false,
                engineering: engineering.clone(),
                halt: Some(fake_server::HaltPolicy {
                    error_rate: rb.halt.error_rate.0,
                    min_sample: rb.halt.min_sample,
                    max_rollbacks: rb.halt.rollbacks,
                }),
                halted: None,
            };
            members = phase_members(&rollout, opts.devices);
            server.set_rollout(rollout);
            phases = rb
                .phases
                .iter()
                .map(|p| PhaseReport::new(&p.name, p.percent, p.devices))
                .collect();
        }
    }
    drop(selection);
    let shared = Arc::new(Shared {
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
    let transport = transport(rb, opts.transport, &server)?;
    let workers = Workers::start(WORKERS, &transport, shared, opts.concurrency)?;

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
    let mut phase_due = match rb.imported {
        Some(_) => u64::MAX,
        None => rb.phases[0].soak.0.as_millis() as u64,
    };
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
        let next_device = queue.first().unwrap_or(u64::MAX);
        let next_timed = timed.peek().map_or(u64::MAX, |(t, _)| *t);
        let next_control = phase_due.min(next_sample).min(next_timed).min(stop_at);
        if next_control <= next_device {
            now = next_control;
            clock.store(now * 1000, Ordering::Relaxed);
            if now >= stop_at {
                break;
            }
            if now == next_sample {
                samples.push(sample(now, &devices));
                next_sample += SAMPLE_EVERY;
            }
            if now == next_timed
                && let Some((_, pause)) = timed.next()
            {
                server.pause(pause);
                if pause {
                    pause_windows.push((now, u64::MAX));
                } else if let Some(w) = pause_windows.last_mut() {
                    w.1 = now;
                }
                info!(at_h = hours(now), pause, "runbook event");
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
                    p.ended_h = Some(hours(now));
                    info!(phase = %rb.phases[phase].name, at_h = hours(now), "phase passed");
                    phase += 1;
                    if phase == rb.phases.len() {
                        outcome = Some(RolloutOutcome::Completed);
                        full_at = Some(now);
                        // Let the last devices settle for one check-in interval, then stop.
                        stop_at = now + checkin_ms * 2;
                        phase_due = u64::MAX;
                    } else {
                        let mut rollout = server.rollout();
                        rollout.phase = phase as u8;
                        server.set_rollout(rollout);
                        phases[phase].started_h = Some(hours(now));
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
        // `until > now`: the first device due is always in the batch.
        let mut batch = Vec::new();
        for (t, i) in queue.take_before(until) {
            if let Some(d) = devices[i as usize].take() {
                batch.push((t.max(now), i, d));
            }
        }
        let paused = server.rollout().paused;
        wakes += batch.len() as u64;
        for (i, dev, next) in workers.wake(batch, paused).await? {
            if next != u64::MAX {
                queue.push(next.max(now + 1), i);
            }
            devices[i as usize] = Some(dev);
        }
        // An imported rollout moves on by itself: note new waves, and completion.
        if let Some(b) = &built
            && outcome.is_none()
        {
            let status = server.policy_status();
            let open = usize::from(status.wave).min(phases.len() - 1);
            for w in 1..=open {
                if phases[w].started_h.is_none() {
                    phases[w].started_h = Some(hours(now));
                    phases[w - 1].ended_h.get_or_insert(hours(now));
                }
            }
            let updated: u32 = server.phase_stats(&rb.to).iter().map(|s| s.updated).sum();
            if status.all_open
                && b.targeted > 0
                && f64::from(updated) >= rb.success.updated.0 * f64::from(b.targeted)
                && server.halted().is_none()
            {
                info!(at_h = hours(now), updated, "imported rollout completed");
                outcome = Some(RolloutOutcome::Completed);
                full_at = Some(now);
                if let Some(last) = phases.last_mut() {
                    last.ended_h.get_or_insert(hours(now));
                }
                stop_at = now + checkin_ms * 2;
            }
        }
        // Did the server halt the rollout?
        server.judge_pending();
        if halt_report.is_none()
            && let Some(h) = server.halted()
        {
            let phase_name = phases
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
                killed = server.kill_switch(&rb.to)?.len() as u32;
            }
            halt_report = Some(HaltReport {
                phase: phase_name,
                at_h: hours(h.at_us / 1000),
                reason: h.reason.clone(),
                failed: h.failed,
                offered_in_phase: h.offered,
                reached,
                ran_release: ran,
                kill_switch: rb.on_halt.kill_switch,
                rollback_queued: killed,
            });
            if rb.imported.is_none() {
                phases[phase].apply(
                    &PhaseVerdict::default(),
                    &server.phase_stats(&rb.to),
                    phase,
                    now,
                );
            }
            outcome = Some(RolloutOutcome::Halted);
            phase_due = u64::MAX;
            // Give every affected device time to check in and roll back (an `offline` device
            // is away for 12 hours).
            stop_at = now + 3 * checkin_ms + 2 * trial_ms + 12 * HOUR;
        }
    }
    drop(workers);
    samples.push(sample(now, &devices));
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
            p.rejected = s.rejected;
            p.timed_out = s.timed_out;
        }
    }
    let updated_final = server.with_devices(|records| {
        records
            .filter(|r| {
                r.version == release.version && r.state == ota_core::checkin::DeviceState::Confirmed
            })
            .count() as u32
    });
    let backend = rb.imported.as_ref().map(|imp| BackendReport {
        backend: imp.backend,
        api: imp.backend.api().to_string(),
        definition: imp.file.display().to_string(),
        name: imp.name.clone(),
        terms: imp.terms.clone(),
        status: server.policy_status().detail,
        targeted: built.as_ref().map_or(0, |b| b.targeted),
    });
    server.shutdown().await;

    let fleet: Vec<&SimDevice> = devices.iter().flatten().map(|d| &**d).collect();
    let bricked = fleet.iter().filter(|d| d.is_bricked()).count() as u32;
    let failed: u32 = phases.iter().map(|p| p.failed).sum();
    let outcome = outcome.unwrap_or(RolloutOutcome::Stalled);
    let checks = checks::evaluate(
        rb,
        &Facts {
            outcome,
            bricked,
            failed,
            halt: halt_report.as_ref(),
            fleet: &fleet,
            phases: &phases,
            pauses: &pause_windows,
        },
    );
    let peak_rss_mib = crate::rss::peak_rss_kib().map(|k| k as f64 / 1024.0);
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
        backend,
        halt: halt_report,
        phases,
        time_to_full_h: full_at.map(hours),
        simulated_h: hours(now),
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
        transport: match transport {
            Transport::Tcp(_) => FleetTransport::Tcp,
            Transport::InProcess(_) => FleetTransport::InProcess,
        },
        flash_mib: fleet
            .iter()
            .map(|d| d.private_flash_bytes(&factory))
            .sum::<usize>() as f64
            / (1024.0 * 1024.0),
        shared_flash_mib: pool.bytes() as f64 / (1024.0 * 1024.0),
    })
}

/// The fleet's way to the server: in process when every fault rule can be played on a pipe
/// (or when asked), else loopback TCP.
fn transport(rb: &Runbook, asked: FleetTransport, server: &ServerThread) -> Result<Transport> {
    match (asked, server.in_process()) {
        (FleetTransport::Tcp, _) => Ok(Transport::Tcp(server.addr())),
        (FleetTransport::InProcess | FleetTransport::Auto, Ok(c)) => Ok(Transport::InProcess(c)),
        (FleetTransport::InProcess, Err(source)) => Err(Error::Transport {
            runbook: rb.name.clone(),
            source,
        }),
        (FleetTransport::Auto, Err(why)) => {
            info!("fleet over loopback TCP: {why}");
            Ok(Transport::Tcp(server.addr()))
        }
    }
}

/// Who runs what, now.
fn sample(now: u64, devices: &[Option<Box<SimDevice>>]) -> Sample {
    // Counted by version value: a string per device per sample was most of the chart's cost.
    let mut counts: BTreeMap<ota_core::Version, u32> = BTreeMap::new();
    let (mut off, mut bricked, mut offered) = (0, 0, 0);
    for d in devices.iter().flatten() {
        match d.running() {
            Running::Version(v) => *counts.entry(v).or_default() += 1,
            Running::Off => off += 1,
            Running::Bricked => bricked += 1,
        }
        if d.tally.offered_at.is_some() {
            offered += 1;
        }
    }
    let mut by_version: BTreeMap<String, u32> = BTreeMap::new();
    for (v, n) in counts {
        *by_version.entry(v.to_string()).or_default() += n;
    }
    Sample {
        t_h: hours(now),
        by_version,
        off,
        bricked,
        offered,
    }
}
