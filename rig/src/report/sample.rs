//! A small report used by the writers' tests.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::timeline::{Event, EventKind};
use crate::verdict::{Attempt, Outcome, RunReport, ScenarioResult, Status};

fn attempt(status: Status, observed: Option<Outcome>, reason: Option<&str>) -> Attempt {
    let board: Arc<str> = Arc::from("sim-1");
    let ev = |ms: u64, kind| Event {
        t: Duration::from_millis(ms),
        board: Some(Arc::clone(&board)),
        kind,
    };
    let mut events = vec![
        ev(
            0,
            EventKind::Power {
                on: true,
                detail: "power on".into(),
            },
        ),
        ev(
            5,
            EventKind::Console {
                line: "boot: slot=a version=1.0.0 state=confirmed".into(),
            },
        ),
        ev(
            9,
            EventKind::Console {
                line: "<script>alert(1)</script>".into(),
            },
        ),
        ev(
            40,
            EventKind::Http {
                method: "GET".into(),
                path: "/v1/images/v2.bin".into(),
                device: Some("sim-1".into()),
                range: Some("bytes=0-".into()),
                status: 206,
                bytes_sent: 98_304,
                fault: Some("truncate_at=40%".into()),
            },
        ),
        ev(
            300,
            EventKind::Rig {
                detail: "cut: at exactly 98304 bytes".into(),
            },
        ),
        ev(
            301,
            EventKind::Power {
                on: false,
                detail: "power off (SIGKILL)".into(),
            },
        ),
    ];
    for i in 0..2000u64 {
        events.push(ev(
            50 + i / 10,
            EventKind::Flash {
                op: i,
                kind: if i % 17 == 0 { "erase" } else { "program" }.into(),
                addr: 0x20000 + (i as u32) * 256,
                len: 256,
            },
        ));
    }
    events.sort_by_key(|e| e.t);
    Attempt {
        index: 1,
        status,
        observed,
        reason: reason.map(str::to_string),
        duration: Duration::from_millis(1234),
        seed: 42,
        resolved: vec!["step 3: at exactly 98304 bytes".into()],
        replay: "cargo run --release -p rig -- run scenarios/x.yaml --exact x --seed 42".into(),
        events,
        logs: Vec::new(),
    }
}

pub fn report() -> RunReport {
    let sc = |name: &str, a: Attempt| ScenarioResult {
        name: name.into(),
        about: format!("about {name} <b>escaped</b>"),
        file: PathBuf::from(format!("scenarios/{name}.yaml")),
        board: "sim".into(),
        expected: Outcome::Updated,
        attempts: vec![a],
        skipped: None,
    };
    RunReport {
        interrupted: None,
        schema: RunReport::SCHEMA,
        run_id: "20261125T000000Z-abcd".into(),
        started: "2026-11-25T00:00:00Z".into(),
        duration: Duration::from_secs(3),
        rig_version: "0.1.0".into(),
        command: "rig run".into(),
        seed: 42,
        scenarios: vec![
            sc(
                "happy-path",
                attempt(Status::Passed, Some(Outcome::Updated), None),
            ),
            sc(
                "bad-one",
                attempt(
                    Status::Failed,
                    Some(Outcome::RolledBack),
                    Some("expected outcome updated, observed rolled-back"),
                ),
            ),
            sc(
                "infra-one",
                attempt(
                    Status::InfraError,
                    Some(Outcome::InfraError),
                    Some("cannot start the simulated board"),
                ),
            ),
        ],
    }
}
