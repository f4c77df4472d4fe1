//! `scenarios/runbooks/cdn-faults.yaml` on a smaller fleet: the runbook's `faults:` reach the
//! fake-server (its counters show ranges ignored and 503s served), the report lists them, and
//! the drill passes (0 failed, 0 bricked, completed).
//!
//! The drill's own expectations hold only once fleet devices honour Retry-After and accept the
//! whole body from a server that ignores Range (the runbook's bad-Wi-Fi devices resume dropped
//! downloads with Range); the fault plumbing is checked separately, so it stays green either way.

use std::path::Path;
use std::sync::OnceLock;

use fake_server::faults::{Action, Schedule};
use rig::rollout::report::{FaultReport, RolloutReport};
use rig::rollout::runbook::{self, RolloutOutcome};
use rig::rollout::{FleetOptions, FleetTransport, run_fleet};

const DEVICES: u32 = 300;

fn runbook() -> runbook::Runbook {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/runbooks/cdn-faults.yaml");
    runbook::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// One run of `rb` on `devices` devices, its report in `dir`.
fn run_in(
    rb: &runbook::Runbook,
    devices: u32,
    seed: u64,
    transport: FleetTransport,
    dir: &Path,
) -> rig::rollout::Result<RolloutReport> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let opts = FleetOptions {
        devices,
        seed,
        mix: None,
        concurrency: 32,
        work_dir: dir.to_path_buf(),
        transport,
    };
    rt.block_on(run_fleet(rb, &opts))
}

/// One run of the drill on `DEVICES` devices, shared by the tests below, and the report
/// directory it was written to.
fn drill() -> &'static (RolloutReport, tempfile::TempDir) {
    static RUN: OnceLock<(RolloutReport, tempfile::TempDir)> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let report = run_in(&runbook(), DEVICES, 7, FleetTransport::Auto, dir.path()).expect("run");
        rig::rollout::report::write(&report, dir.path()).expect("report");
        (report, dir)
    })
}

fn rule(r: &RolloutReport, what: impl Fn(&Action) -> bool) -> &FaultReport {
    r.faults
        .iter()
        .find(|f| what(&f.rule.action))
        .unwrap_or_else(|| panic!("fault not in the report: {:?}", r.faults))
}

#[test]
fn the_runbook_carries_the_cdn_faults() {
    let rb = runbook();
    assert_eq!(rb.fleet.devices, Some(10_000));
    assert_eq!(rb.expect.outcome, RolloutOutcome::Completed);
    assert_eq!((rb.expect.bricked, rb.expect.failed), (0, Some(0)));
    assert_eq!(rb.faults.len(), 2);
    let images = |f: &fake_server::faults::FaultRule| {
        f.matcher.path.as_deref() == Some("/v1/images/*")
            && f.matcher.method.as_deref() == Some("GET")
            && f.matcher.nth.is_none()
    };
    assert!(rb.faults.iter().all(images), "{:?}", rb.faults);
    assert_eq!(rb.faults[0].action, Action::IgnoreRange);
    assert_eq!(rb.faults[0].schedule, Schedule::Always);
    assert_eq!(
        rb.faults[1].action,
        Action::Status {
            code: 503,
            retry_after: Some(1)
        }
    );
    assert!(
        matches!(rb.faults[1].schedule, Schedule::Share { percent, .. } if percent == 20.0),
        "{:?}",
        rb.faults[1].schedule
    );
}

/// The server played both faults against the fleet, and every report form lists them.
#[test]
fn the_faults_reach_the_server_and_the_report() {
    let (r, dir) = drill();
    let summary = rig::rollout::report::summary(r);
    assert_eq!(r.faults.len(), 2, "{summary}");

    let ignored = rule(r, |a| *a == Action::IgnoreRange);
    assert!(ignored.counts.matched > 0, "{summary}");
    assert!(
        ignored.counts.took_effect > 0,
        "no Range request was answered with the whole body: {summary}"
    );
    let unavailable = rule(r, |a| matches!(a, Action::Status { code: 503, .. }));
    let c = unavailable.counts;
    assert_eq!(c.applied, c.took_effect, "every 503 picked is served");
    assert!(
        c.matched >= 100,
        "too few image requests to judge: {summary}"
    );
    let share = c.took_effect as f64 / c.matched as f64;
    assert!(
        (0.12..0.28).contains(&share),
        "503 on {:.1}% of {} image requests, wanted about 20%: {summary}",
        share * 100.0,
        c.matched
    );

    // Text.
    assert!(
        summary.contains("server fault #0 GET /v1/images/*: ignore_range"),
        "{summary}"
    );
    assert!(
        summary.contains("status=503 retry_after=1, 20% of each device's requests"),
        "{summary}"
    );
    // JSON: the rules in the runbook's format, with the counters.
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("rollout.json")).expect("rollout.json"),
    )
    .expect("json");
    let faults = json["faults"].as_array().expect("faults array");
    assert_eq!(faults.len(), 2);
    assert_eq!(faults[0]["rule"]["ignore_range"], true);
    assert_eq!(faults[0]["rule"]["match"]["path"], "/v1/images/*");
    assert_eq!(faults[1]["rule"]["status"], 503);
    assert_eq!(faults[1]["rule"]["retry_after"], 1);
    assert_eq!(faults[1]["rule"]["share"], "20%");
    assert_eq!(faults[1]["took_effect"], c.took_effect);
    assert_eq!(faults[0]["took_effect"], ignored.counts.took_effect);
    // HTML.
    let html = std::fs::read_to_string(dir.path().join("rollout.html")).expect("rollout.html");
    assert!(html.contains("<h2>Server faults</h2>"), "html");
    assert!(html.contains("ignore_range") && html.contains("status=503"));
}

/// The drill itself: the rollout completes with no device failed and none bricked. Until fleet
/// devices take the whole body of a server that ignores Range (work in progress in
/// `rollout::fleet`), a device whose download dropped gives up on every resume, its phase is
/// held below the runbook's 98% and the rollout stalls.
#[test]
fn the_fleet_survives_the_cdn() {
    let (r, _) = drill();
    let summary = rig::rollout::report::summary(r);
    assert_eq!(r.bricked, 0, "{summary}");
    assert_eq!(r.failed, 0, "{summary}");
    assert_eq!(r.outcome, RolloutOutcome::Completed, "{summary}");
    // Nobody gave up on the CDN: (almost) the whole fleet runs the release at the end.
    assert!(
        r.updated_final * 100 >= DEVICES * 99,
        "{} of {DEVICES} devices on v2 at the end: {summary}",
        r.updated_final
    );
    let failed: Vec<_> = r.checks.iter().filter(|c| !c.passed).collect();
    assert!(failed.is_empty(), "{failed:?}\n{summary}");
}

/// `share` keeps the drill reproducible: the same seed gives the same faults on the same
/// requests, however the concurrent devices' requests interleave on the server.
#[test]
fn a_seed_replays_the_same_faults() {
    let rb = runbook();
    let run = || {
        let r = run_with(&rb, FleetTransport::Auto).expect("run");
        let counts: Vec<_> = r.faults.iter().map(|f| f.counts).collect();
        assert!(counts.iter().all(|c| c.took_effect > 0), "{counts:?}");
        serde_json::to_value((counts, &r.phases, &r.samples)).expect("json")
    };
    assert_eq!(run(), run());
}

fn run_with(
    rb: &runbook::Runbook,
    transport: FleetTransport,
) -> rig::rollout::Result<RolloutReport> {
    let dir = tempfile::tempdir().expect("tempdir");
    run_in(rb, 100, 5, transport, dir.path())
}

/// In-process pipes and loopback TCP play the same drill: the same faults on the same
/// requests, the same phases, the same devices on each version over time.
#[test]
fn in_process_and_tcp_play_the_same_drill() {
    let rb = runbook();
    let facts = |t| {
        let r = run_with(&rb, t).expect("run");
        assert_eq!(r.transport, t);
        let counts: Vec<_> = r.faults.iter().map(|f| f.counts).collect();
        serde_json::to_value((counts, &r.phases, &r.samples, r.wakes)).expect("json")
    };
    assert_eq!(facts(FleetTransport::InProcess), facts(FleetTransport::Tcp));
}

/// A rule that acts on the socket (an RST) sends the fleet over TCP, where it means what it
/// says; asked for in-process pipes, the drill is refused (exit 2), never run without it.
#[test]
fn socket_faults_take_tcp_or_are_refused() {
    let mut rb = runbook();
    rb.faults = fake_server::faults::parse_faults_yaml(
        "faults:\n  - match: { path: \"/v1/images/*\" }\n    drop_after: 1000\n    reset: true\n    share: 10%\n    seed: 3\n",
        "test",
    )
    .expect("rules");
    let r = run_with(&rb, FleetTransport::Auto).expect("run");
    assert_eq!(r.transport, FleetTransport::Tcp);
    assert!(
        r.faults[0].counts.took_effect > 0,
        "{:?}",
        r.faults[0].counts
    );
    let e = run_with(&rb, FleetTransport::InProcess).expect_err("refused");
    assert!(e.is_bad_input(), "{e}");
    assert!(e.to_string().contains("socket"), "{e}");
}
