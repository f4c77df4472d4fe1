//! `rig rollout --from`: each backend's example definition with its sidecar's drills (a good
//! release completes, a bad one trips the backend's own threshold), and a definition with a
//! field the rig cannot honour refused with its JSON path (exit 2).

use std::path::{Path, PathBuf};
use std::process::Command;

use rig::rollout::import::{self, Backend};
use rig::rollout::runbook::RolloutOutcome;
use rig::rollout::{FleetOptions, run_fleet};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/runbooks/imported")
        .join(name)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs every drill of the definition on its sidecar's fleet; returns (drill, report).
fn drills(backend: Backend, file: &str) -> Vec<(String, rig::rollout::report::RolloutReport)> {
    let rt = rt();
    let books = import::load(backend, &example(file)).unwrap_or_else(|e| panic!("{e}"));
    books
        .iter()
        .map(|rb| {
            let dir = tempfile::tempdir().expect("tempdir");
            let opts = FleetOptions {
                devices: rb.fleet.devices.expect("the sidecar sizes the fleet"),
                seed: 7,
                mix: None,
                concurrency: 64,
                work_dir: dir.path().to_path_buf(),
                transport: rig::rollout::FleetTransport::Auto,
            };
            let r = rt.block_on(run_fleet(rb, &opts)).expect("drill");
            let html = rig::rollout::report::write(&r, dir.path()).expect("report");
            let text = std::fs::read_to_string(html).expect("html");
            assert!(
                text.contains("Imported from"),
                "{}: backend terms in the HTML",
                rb.name
            );
            (rb.name.clone(), r)
        })
        .collect()
}

fn assert_drills(backend: Backend, file: &str, halt_says: &str) {
    for (name, r) in drills(backend, file) {
        let summary = rig::rollout::report::summary(&r);
        assert!(
            r.passed(),
            "{name}: {:?}\n{summary}",
            r.checks.iter().filter(|c| !c.passed).collect::<Vec<_>>()
        );
        let b = r.backend.as_ref().expect("backend report");
        assert_eq!(b.backend, backend);
        assert!(summary.contains(&b.api), "{summary}");
        if name.ends_with("bad-release") {
            assert_eq!(r.outcome, RolloutOutcome::Halted, "{summary}");
            let h = r.halt.as_ref().expect("halt");
            assert!(h.reason.contains(halt_says), "{name}: {}", h.reason);
        } else {
            assert_eq!(r.outcome, RolloutOutcome::Completed, "{summary}");
            assert!(r.phases.iter().all(|p| p.started_h.is_some()), "{summary}");
        }
    }
}

#[test]
fn hawkbit_error_condition_pauses_a_bad_release_and_a_good_one_completes() {
    assert_drills(
        Backend::Hawkbit,
        "hawkbit-rollout.json",
        "errorAction PAUSE",
    );
}

#[test]
fn aws_abort_criteria_cancel_a_bad_release_and_a_good_one_completes() {
    assert_drills(Backend::AwsIotJob, "aws-iot-job.json", "-> CANCEL");
}

#[test]
fn mender_release_manager_aborts_a_bad_release_and_a_good_one_completes() {
    assert_drills(
        Backend::Mender,
        "mender-deployment.json",
        "release manager aborted",
    );
}

/// The checks are not decorative: the bad release expected to complete fails its drill.
#[test]
fn a_bad_release_expected_to_complete_fails() {
    let rt = rt();
    let mut books = import::load(Backend::Hawkbit, &example("hawkbit-rollout.json")).expect("load");
    let mut rb = books.pop().expect("bad-release drill");
    rb.expect.outcome = RolloutOutcome::Completed;
    rb.expect.halted_in.clear();
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = FleetOptions {
        devices: 600,
        seed: 3,
        mix: None,
        concurrency: 64,
        work_dir: dir.path().to_path_buf(),
        transport: rig::rollout::FleetTransport::Auto,
    };
    let r = rt.block_on(run_fleet(&rb, &opts)).expect("drill");
    assert!(!r.passed(), "{}", rig::rollout::report::summary(&r));
}

#[test]
fn an_unsupported_field_is_refused_with_its_json_path_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let def = dir.path().join("r.json");
    std::fs::write(
        &def,
        r#"{"name":"r","distributionSetId":1,"targetFilterQuery":"name==*","amountGroups":2,"startAt":1}"#,
    )
    .expect("write");
    std::fs::copy(
        example("hawkbit-rollout.rig.yaml"),
        dir.path().join("r.rig.yaml"),
    )
    .expect("sidecar");
    let out = Command::new(env!("CARGO_BIN_EXE_rig"))
        .args(["rollout", "--from", "hawkbit"])
        .arg(&def)
        .arg("--reports")
        .arg(dir.path())
        .output()
        .expect("run rig");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("r.json: $.startAt: cannot be honoured"),
        "{stderr}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_rig"))
        .args(["rollout", "--from", "bamboo"])
        .arg(&def)
        .output()
        .expect("run rig");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown backend `bamboo`"));
}
