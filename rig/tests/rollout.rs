//! The runbook drills of `scenarios/runbooks/` on a small simulated fleet, and proof that
//! their checks can fail.

use std::path::Path;

use rig::rollout::runbook::{self, RolloutOutcome};
use rig::rollout::{FleetOptions, run_fleet};

fn opts(devices: u32, dir: &Path) -> FleetOptions {
    FleetOptions {
        devices,
        seed: 7,
        mix: None,
        concurrency: 32,
        work_dir: dir.to_path_buf(),
        transport: rig::rollout::FleetTransport::Auto,
    }
}

fn runbook(name: &str) -> runbook::Runbook {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/runbooks")
        .join(format!("{name}.yaml"));
    runbook::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn every_runbook_drill_passes() {
    let rt = rt();
    for name in [
        "good-release",
        "crash-on-rev-b",
        "network-outage",
        "pause-stops-offers",
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let report = rt
            .block_on(run_fleet(&runbook(name), &opts(400, dir.path())))
            .expect("run");
        let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
        assert!(
            failed.is_empty(),
            "{name}: {failed:?}\n{}",
            rig::rollout::report::summary(&report)
        );
        assert_eq!(report.bricked, 0, "{name}");
        let html = rig::rollout::report::write(&report, dir.path()).expect("report");
        let text = std::fs::read_to_string(html).expect("html");
        assert!(
            text.contains("<svg") && text.contains("polyline"),
            "{name}: chart"
        );
    }
}

/// The same seed gives the same rollout.
#[test]
fn a_seed_replays_the_same_rollout() {
    let rt = rt();
    let rb = runbook("crash-on-rev-b");
    let run = |seed| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut o = opts(300, dir.path());
        o.seed = seed;
        let r = rt.block_on(run_fleet(&rb, &o)).expect("run");
        serde_json::to_value((&r.phases, &r.halt, &r.samples, r.power_cuts)).expect("json")
    };
    assert_eq!(run(3), run(3));
}

/// The checks are not decorative: a bad release without the kill switch leaves the devices
/// on it, and the same bad release judged as a good one fails.
#[test]
fn drills_fail_when_the_runbook_is_wrong() {
    let rt = rt();
    let mut rb = runbook("crash-on-rev-b");
    rb.on_halt.kill_switch = false;
    let dir = tempfile::tempdir().expect("tempdir");
    let r = rt
        .block_on(run_fleet(&rb, &opts(400, dir.path())))
        .expect("run");
    assert_eq!(r.outcome, RolloutOutcome::Halted);
    let restored = r
        .checks
        .iter()
        .find(|c| c.name == "affected_restored")
        .expect("check");
    assert!(!restored.passed, "{restored:?}");

    // No halt threshold worth the name: the bad release reaches everyone and rev-B devices
    // revert by themselves; "completed" was expected of a release that should have halted.
    let mut rb = runbook("crash-on-rev-b");
    rb.halt.error_rate = runbook::Percent(1.0);
    let r = rt
        .block_on(run_fleet(&rb, &opts(400, dir.path())))
        .expect("run");
    assert_ne!(
        r.outcome,
        RolloutOutcome::Halted,
        "{}",
        rig::rollout::report::summary(&r)
    );
    assert!(!r.passed());
    assert!(r.reverted > 0, "rev-B devices reverted by themselves");
    assert_eq!(r.bricked, 0);
}

/// `rig rollout --bench`: the bench's boards (sim-board processes here) are the engineering
/// phase, in real time. The crashing release fails on the rev-B board and the server halts;
/// the good release passes on every board.
#[test]
fn engineering_phase_on_the_bench() {
    let rt = rt();
    let bench = rig::bench::parse(
        "boards:\n  a:\n    kind: sim\n    power: { sim: {} }\n    console: { sim: {} }\n  b:\n    kind: sim\n    labels: [rev-b]\n    power: { sim: {} }\n    console: { sim: {} }\n",
        Path::new("bench.yaml"),
    )
    .expect("bench");
    let program = vec![
        std::ffi::OsString::from(env!("CARGO_BIN_EXE_rig")),
        std::ffi::OsString::from("__sim-board"),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = rt
        .block_on(rig::rollout::bench::run(
            &runbook("crash-on-rev-b"),
            &bench,
            program.clone(),
            &dir.path().join("bad"),
        ))
        .expect("bench rollout");
    assert!(!bad.passed);
    assert!(bad.halted.is_some(), "{bad:?}");
    let b = bad.boards.iter().find(|b| b.board == "b").expect("board b");
    assert!(b.failed && b.version == "1.0.0", "{b:?}");
    let a = bad.boards.iter().find(|b| b.board == "a").expect("board a");
    assert!(a.updated, "{a:?}");

    let good = rt
        .block_on(rig::rollout::bench::run(
            &runbook("good-release"),
            &bench,
            program,
            &dir.path().join("good"),
        ))
        .expect("bench rollout");
    assert!(good.passed, "{good:?}");
}

#[test]
fn a_fleet_that_is_never_reached_does_not_complete() {
    // Every device offline for a week from the start: no phase may pass as "0 of 0", and the
    // rollout must not be judged completed with the fleet still on v1.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("offline.yaml");
    std::fs::write(
        &path,
        "about: every device offline for a week\n\
         release: { from: v1, to: v2 }\n\
         success: { updated: 90%, within: 6h }\n\
         halt: { error_rate: 2%, min_sample: 10, missing_checkins: 20% }\n\
         fleet: { checkin_interval: 1h }\n\
         events:\n\
         \x20 - { at: 0s, outage: { for: 168h, devices: 100% } }\n\
         expect: { outcome: stalled, bricked: 0 }\n",
    )
    .expect("write runbook");
    let rb = runbook::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let report = rt()
        .block_on(run_fleet(&rb, &opts(20, dir.path())))
        .expect("run");
    let summary = rig::rollout::report::summary(&report);
    assert_eq!(report.outcome, RolloutOutcome::Stalled, "{summary}");
    assert_eq!(report.never_reached, 20, "{summary}");
    assert!(summary.contains("never reached 20"), "{summary}");
    assert!(
        report.phases.iter().any(|p| p.note.contains("reached yet")),
        "{summary}"
    );
}
