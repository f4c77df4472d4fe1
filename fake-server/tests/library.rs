//! The library API as the rig uses it: in-process server, releases, rollout, commands, events.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fake_server::{Config, EventKind, Rollout, ServerHandle};
use ota_core::checkin::Command;

use common::{checkin, get};

const UPDATE_V2: &str = r#"{"command":"update","manifest_url":"/v1/manifest/v2"}"#;
const NONE: &str = r#"{"command":"none","manifest_url":null}"#;

struct Env {
    _dir: tempfile::TempDir,
    server: ServerHandle,
    addr: String,
}

async fn env() -> Env {
    let (dir, server) =
        common::library_server(&[("v2.bin", (2, 0, 0), 10_000), ("v3.bin", (3, 0, 0), 3_000)])
            .await;
    let addr = server.addr().to_string();
    Env {
        _dir: dir,
        server,
        addr,
    }
}

/// Runs blocking client code off the runtime's threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("client thread")
}

/// A device id whose cohort is in `range`.
fn device_in(range: std::ops::Range<u32>) -> String {
    (0..10_000)
        .map(|i| format!("dev-{i}"))
        .find(|d| range.contains(&fake_server::cohort(d)))
        .expect("some id lands in the range")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_offer_and_rollout_phases() {
    let e = env().await;
    assert_eq!(e.server.url(), format!("http://{}", e.addr));
    assert!(e.server.addr().ip().is_loopback());
    assert!(e.server.publish("v9", "missing.bin").is_err());
    let info = e.server.publish("v2", "v2.bin").expect("publish");
    assert_eq!(
        (info.version.as_str(), info.file.as_str()),
        ("2.0.0", "v2.bin")
    );
    assert_eq!(info.chunk_size, 4096);
    assert_eq!(e.server.rollout(), Rollout::default());
    assert_eq!(e.server.rollout().phase, 4);

    let low = device_in(0..1);
    let mid = device_in(5..10);
    let high = device_in(60..100);
    let addr = e.addr.clone();
    let (l, m, h) = (low.clone(), mid.clone(), high.clone());
    let check = move |expect: [&'static str; 3]| {
        let addr = addr.clone();
        let (l, m, h) = (l.clone(), m.clone(), h.clone());
        async move {
            blocking(move || {
                for (d, want) in [l, m, h].iter().zip(expect) {
                    assert_eq!(checkin(&addr, d, "1.0.0", "confirmed", None), want, "{d}");
                }
            })
            .await
        }
    };
    for (phase, expect) in [
        (0, [NONE, NONE, NONE]),
        (1, [UPDATE_V2, NONE, NONE]),
        (2, [UPDATE_V2, UPDATE_V2, NONE]),
        (3, [UPDATE_V2, UPDATE_V2, NONE]),
        (4, [UPDATE_V2, UPDATE_V2, UPDATE_V2]),
    ] {
        e.server.set_rollout(Rollout {
            phase,
            ..Rollout::default()
        });
        check(expect).await;
    }
    // The engineering list is in every phase; the pause stops everyone.
    e.server.set_rollout(Rollout {
        phase: 0,
        engineering: vec![high.clone()],
        ..Rollout::default()
    });
    check([NONE, NONE, UPDATE_V2]).await;
    e.server.set_rollout(Rollout {
        paused: true,
        ..Rollout::default()
    });
    check([NONE, NONE, NONE]).await;
    e.server.set_rollout(Rollout::default());
    // offer(None) offers nothing; an unknown release is an error.
    e.server.offer(None).expect("offer none");
    check([NONE, NONE, NONE]).await;
    assert!(e.server.offer(Some("v7")).is_err());
    e.server.offer(Some("v2")).expect("offer v2");
    // Up to date devices get nothing.
    let addr = e.addr.clone();
    let r = blocking(move || checkin(&addr, "x", "2.0.0", "confirmed", None)).await;
    assert_eq!(r, NONE);
    // The newest published release is offered.
    e.server.publish("v3", "v3.bin").expect("v3");
    assert_eq!(e.server.offered().map(|r| r.name), Some("v3".into()));
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_commands_and_failed_releases() {
    let e = env().await;
    e.server.publish("v2", "v2.bin").expect("publish");
    e.server.command("d1", Command::Rollback);
    let addr = e.addr.clone();
    let answers = blocking(move || {
        let mut out = Vec::new();
        out.push(checkin(&addr, "d1", "1.0.0", "confirmed", None));
        // It rolled back (reverted): the command was acted on, the offer comes next.
        out.push(checkin(&addr, "d1", "1.0.0", "reverted", None));
        // An error before any download is not a failure of the release...
        out.push(checkin(&addr, "d1", "1.0.0", "updating", Some("timeout")));
        // ...an error after downloading is.
        let r = get(&addr, "/v1/images/v2.bin", "X-Otarig-Device: d1\r\n");
        assert_eq!(r.status, 200);
        out.push(checkin(&addr, "d1", "1.0.0", "confirmed", Some("bad-hash")));
        out.push(checkin(&addr, "d1", "1.0.0", "confirmed", None));
        // d2 reverts: failed without any download noted.
        out.push(checkin(&addr, "d2", "1.0.0", "confirmed", None));
        out.push(checkin(&addr, "d2", "1.0.0", "reverted", None));
        // d3 refuses the release after reading its manifest: failed too.
        out.push(checkin(&addr, "d3", "1.0.0", "confirmed", None));
        let r = get(&addr, "/v1/manifest/v2", "X-Otarig-Device: d3\r\n");
        assert_eq!(r.status, 200);
        out.push(checkin(
            &addr,
            "d3",
            "1.0.0",
            "confirmed",
            Some("rollback-counter"),
        ));
        out
    })
    .await;
    assert_eq!(
        answers,
        [
            r#"{"command":"rollback","manifest_url":null}"#,
            UPDATE_V2,
            UPDATE_V2,
            NONE,
            NONE,
            UPDATE_V2,
            NONE,
            UPDATE_V2,
            NONE
        ]
    );
    assert_eq!(e.server.device("d3").expect("d3").failed, ["v2"]);
    let d1 = e.server.device("d1").expect("d1");
    assert_eq!(d1.failed, ["v2"]);
    assert_eq!(d1.downloaded, ["v2"]);
    assert_eq!(d1.checkins, 5);
    assert_eq!(d1.last_error, None);
    assert_eq!(e.server.device("d2").expect("d2").failed, ["v2"]);
    assert_eq!(e.server.devices().len(), 3);
    assert!(e.server.device("nobody").is_none());
    let checkins: Vec<String> = e
        .server
        .events()
        .into_iter()
        .filter_map(|ev| match ev.kind {
            EventKind::Checkin {
                device, command, ..
            } => Some(format!("{device}:{}", command.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(checkins[0], "d1:rollback");
    assert_eq!(checkins.len(), 9);
    e.server.shutdown().await;
}

/// The rig cuts power when the stall event arrives: the event must come when exactly N bytes
/// are out and the silence has started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_event_arrives_when_the_stall_starts() {
    let e = env().await;
    let rules = fake_server::faults::parse_faults_yaml(
        "faults:\n  - { match: { path: /v1/images/* }, stall_after: 4000, for: 1s }\n",
        "test",
    )
    .expect("rules");
    e.server.set_faults(rules.clone());
    assert_eq!(e.server.faults(), rules);
    let mut events = e.server.subscribe();
    let addr = e.addr.clone();
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(b"GET /v1/images/v2.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut got = Vec::new();
        let mut arrivals = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    arrivals.push((got.len(), Instant::now()));
                }
            }
        }
        (got, arrivals)
    });
    let fault = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.recv().await {
                Ok(ev) if matches!(ev.kind, EventKind::Fault { .. }) => return ev,
                Ok(_) => {}
                Err(e) => panic!("event stream: {e}"),
            }
        }
    })
    .await
    .expect("fault event within 5 s");
    let (got, arrivals) = client.join().expect("client");
    let EventKind::Fault {
        bytes_sent, rule, ..
    } = &fault.kind
    else {
        unreachable!()
    };
    assert_eq!((*bytes_sent, *rule), (4000, 0));
    let head = got.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    assert_eq!(got.len() - head, 10_000 + ota_core::image::HEADER_LEN);
    // The first byte after the stall arrives about 1 s after the event...
    let after = arrivals
        .iter()
        .find(|(n, _)| *n > head + 4000)
        .expect("bytes after the stall")
        .1;
    let gap = after.saturating_duration_since(fault.at);
    assert!(
        (Duration::from_millis(900)..Duration::from_millis(1500)).contains(&gap),
        "{gap:?}"
    );
    // ...and the 4000 bytes before it were all there by the event (plus the flush).
    let before = arrivals
        .iter()
        .find(|(n, _)| *n >= head + 4000)
        .expect("4000 bytes")
        .1;
    assert!(before <= fault.at + Duration::from_millis(100));
    let complete = e.server.events().into_iter().find_map(|ev| match ev.kind {
        EventKind::Complete {
            bytes_sent,
            aborted,
            ..
        } => Some((bytes_sent, aborted)),
        _ => None,
    });
    assert_eq!(
        complete,
        Some(((10_000 + ota_core::image::HEADER_LEN) as u64, false))
    );
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_serialize_with_microseconds_and_shutdown_frees_the_port() {
    let e = env().await;
    let addr = e.addr.clone();
    let r = blocking(move || get(&addr, "/v1/images/v3.bin", "Range: bytes=0-99\r\n")).await;
    assert_eq!((r.status, r.body.len()), (206, 100));
    let events = e.server.events();
    let request = events
        .iter()
        .find(|ev| matches!(ev.kind, EventKind::Request { .. }))
        .expect("request event");
    let v = serde_json::to_value(request).expect("json");
    assert!(v["at"].is_u64(), "{v}");
    assert_eq!(v["event"], "request");
    assert_eq!(v["status"], 206);
    assert_eq!(v["range"], "bytes=0-99");
    assert_eq!(v["declared_len"], 100);
    let addr = e.server.addr();
    e.server.shutdown().await;
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(),
        "nothing listens after shutdown"
    );
}

#[tokio::test]
async fn refuses_non_loopback_without_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::new(dir.path());
    cfg.listen = "0.0.0.0:0".parse().expect("addr");
    match fake_server::start(cfg).await {
        Err(e) => assert!(e.to_string().contains("token"), "{e}"),
        Ok(_) => panic!("must refuse"),
    }
    let mut cfg = Config::new(dir.path().join("missing"));
    cfg.token = None;
    assert!(fake_server::start(cfg).await.is_err(), "missing image dir");
}

/// Failed devices of a phase past the error threshold halt the rollout on the server's own
/// account (an event says why); devices that merely went quiet do not; the kill switch queues
/// a rollback for every device running the release and withdraws it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_halt_on_error_rate_and_kill_switch() {
    let e = env().await;
    e.server.publish("v2", "v2.bin").expect("publish");
    e.server.set_rollout(Rollout {
        phase: 4,
        halt: Some(fake_server::HaltPolicy {
            error_rate: 0.2,
            min_sample: 5,
            max_rollbacks: None,
        }),
        ..Rollout::default()
    });
    let addr = e.addr.clone();
    blocking(move || {
        // Ten devices are offered v2; five update fine, one fails with a network reason (not
        // the release's fault), and then two come back reverted.
        for i in 0..10 {
            let d = format!("d{i}");
            assert_eq!(checkin(&addr, &d, "1.0.0", "confirmed", None), UPDATE_V2);
            get(
                &addr,
                "/v1/manifest/v2",
                &format!("X-Otarig-Device: {d}\r\n"),
            );
        }
        for i in 0..5 {
            checkin(&addr, &format!("d{i}"), "2.0.0", "confirmed", None);
        }
        checkin(&addr, "d5", "1.0.0", "confirmed", Some("retries-exhausted"));
        checkin(&addr, "d6", "1.0.0", "reverted", Some("trial-exhausted"));
    })
    .await;
    let stats = e.server.phase_stats("v2");
    assert_eq!(
        stats[4],
        fake_server::PhaseStats {
            offered: 10,
            updated: 5,
            failed: 1,
            rolled_back: 1,
            ..fake_server::PhaseStats::default()
        }
    );
    assert!(e.server.rollout().halted.is_none(), "10% is below 20%");
    let addr = e.addr.clone();
    let after = blocking(move || {
        checkin(&addr, "d7", "1.0.0", "reverted", Some("trial-exhausted"));
        // Halted: nobody new is offered anything.
        checkin(&addr, "fresh", "1.0.0", "confirmed", None)
    })
    .await;
    assert_eq!(after, NONE);
    let halt = e.server.rollout().halted.expect("halted at 2 of 10");
    assert_eq!((halt.phase, halt.failed, halt.offered), (4, 2, 10));
    assert!(halt.reason.contains("error rate 20.0%"), "{}", halt.reason);
    assert!(e.server.rollout().paused);
    assert!(
        e.server
            .events()
            .iter()
            .any(|ev| matches!(&ev.kind, EventKind::Halt { failed: 2, .. }))
    );
    // Kill switch: the five devices on v2 are told to roll back; v2 is never offered again.
    let told = e.server.kill_switch("v2").expect("kill switch");
    assert_eq!(told.len(), 5, "{told:?}");
    let mut rollout = e.server.rollout();
    rollout.paused = false;
    e.server.set_rollout(rollout);
    let addr = e.addr.clone();
    let (rolled, reoffer) = blocking(move || {
        (
            checkin(&addr, "d0", "2.0.0", "confirmed", None),
            checkin(&addr, "d8", "1.0.0", "confirmed", None),
        )
    })
    .await;
    assert_eq!(rolled, r#"{"command":"rollback","manifest_url":null}"#);
    assert_eq!(reoffer, NONE, "a killed release is not offered again");
}

/// `share` picks the same requests of each device whatever the interleaving, and
/// `fault_counts` tells matched, applied and took-effect apart (an `ignore_range` applied to a
/// request without Range takes no effect).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_schedule_and_fault_counts() {
    let e = env().await;
    let rules = fake_server::faults::parse_faults_yaml(
        "faults:\n  - { match: { path: /v1/images/*, method: GET }, ignore_range: true }\n  - { match: { path: /v1/images/*, method: GET }, status: 503, retry_after: 1, share: 30%, seed: 5 }\n",
        "t.yaml",
    )
    .expect("rules");
    e.server.set_faults(rules);
    let full = std::fs::metadata(e._dir.path().join("v2.bin"))
        .expect("v2")
        .len() as usize;
    let addr = e.addr.clone();
    let statuses = blocking(move || {
        let mut out: Vec<(String, u16)> = Vec::new();
        // Device b first for three requests, then alternate: the order must not matter.
        let order = ["b", "b", "b", "a", "b", "a", "a", "a", "b", "a", "a", "b"];
        for d in order {
            let r = get(
                &addr,
                "/v1/images/v2.bin",
                &format!("X-Otarig-Device: {d}\r\nRange: bytes=100-\r\n"),
            );
            if r.status == 503 {
                assert_eq!(r.header("retry-after"), Some("1"));
            } else {
                assert_eq!((r.status, r.body.len()), (200, full), "range ignored");
            }
            out.push((d.to_string(), r.status));
        }
        // No Range: the ignore_range rule applies but has nothing to ignore.
        let r = get(&addr, "/v1/images/v2.bin", "X-Otarig-Device: c\r\n");
        out.push(("c".into(), r.status));
        out
    })
    .await;
    let mut n = std::collections::HashMap::<&str, u64>::new();
    let mut unavailable = 0;
    for (d, status) in &statuses {
        let k = n.entry(d.as_str()).or_default();
        *k += 1;
        let picked = fake_server::faults::share_selects(30.0, 5, d, *k);
        assert_eq!(*status == 503, picked, "{d} request {k}");
        unavailable += u64::from(picked);
    }
    assert!(unavailable > 0, "{statuses:?}");
    let no_range = u64::from(statuses.last().is_some_and(|(_, s)| *s != 503));
    let counts = e.server.fault_counts();
    assert_eq!(counts.len(), 2);
    assert_eq!((counts[0].matched, counts[0].applied), (13, 13));
    assert_eq!(counts[0].took_effect, 13 - unavailable - no_range);
    assert_eq!(
        (counts[1].matched, counts[1].applied, counts[1].took_effect),
        (13, unavailable, unavailable)
    );
    e.server.shutdown().await;
}

/// `tamper_manifest`: the manifest a device gets has the field changed and the old signature,
/// so it no longer verifies; the image the manifest points at is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_manifest_keeps_the_old_signature_and_a_valid_image() {
    let e = env().await;
    e.server.publish("v2", "v2.bin").expect("publish");
    let key = e.server.releases()[0].sha256.clone();
    let addr = e.addr.clone();
    let clean = blocking(move || get(&addr, "/v1/manifest/v2", "")).await;
    let good = ota_core::manifest::Manifest::parse(&clean.body).expect("clean manifest");
    for field in fake_server::faults::ManifestField::ALL {
        let rules = fake_server::faults::parse_faults_yaml(
            &format!(
                "faults:\n  - {{ match: {{ path: /v1/manifest/* }}, tamper_manifest: {field} }}\n"
            ),
            "t.yaml",
        )
        .expect("rule");
        e.server.set_faults(rules);
        let addr = e.addr.clone();
        let (bad, image) = blocking(move || {
            (
                get(&addr, "/v1/manifest/v2", "X-Otarig-Device: d1\r\n"),
                get(&addr, "/v1/images/v2.bin", ""),
            )
        })
        .await;
        assert_eq!(bad.status, 200, "{field}");
        assert_eq!(bad.body.len(), clean.body.len(), "{field}");
        assert_ne!(bad.body, clean.body, "{field}: the field changed");
        assert_eq!(
            bad.body[bad.body.len() - 64..],
            clean.body[clean.body.len() - 64..],
            "{field}: the old signature"
        );
        let m = ota_core::manifest::Manifest::parse(&bad.body).expect("still parses");
        assert_ne!(
            (m.version(), m.rollback_counter(), m.size(), m.sha256()),
            (
                good.version(),
                good.rollback_counter(),
                good.size(),
                good.sha256()
            ),
            "{field}"
        );
        // The image is valid: its hash is the one the release was published with.
        assert_eq!(hex::encode(ota_core::sha256(&image.body)), key, "{field}");
        assert_eq!(e.server.fault_counts()[0].took_effect, 1, "{field}");
    }
    let bad = fake_server::faults::parse_faults_yaml(
        "faults:\n  - { tamper_manifest: signature }\n",
        "t.yaml",
    )
    .expect_err("unknown field");
    assert!(bad.to_string().starts_with("t.yaml:2:"), "{bad}");
}
