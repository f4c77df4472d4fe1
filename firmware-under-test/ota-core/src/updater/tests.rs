//! The machine alone, against the in-memory server of [`crate::sweep`] on a simulated
//! clock: no sockets, no sleeps.
use crate::sweep::{End, MemServer, PointResult, Script, ServerFaults, Setup, drive};

fn run(setup: &Setup, script: Script, faults: ServerFaults) -> (PointResult, MemServer<'_>) {
    let mut server = MemServer::new(setup, script);
    server.faults = faults;
    let r = drive(&mut server, &[], None);
    (r, server)
}

fn has(r: &PointResult, needle: &str) -> bool {
    r.console_tail.iter().any(|l| l.contains(needle))
}

fn setup() -> Setup {
    Setup::new(16 * 1024, 4096)
}

#[test]
fn a_clean_update_is_one_image_request_and_ends_confirmed() {
    let setup = setup();
    let (r, server) = run(&setup, Script::Update, ServerFaults::default());
    assert_eq!(r.end, End::Updated, "{}: {:?}", r.detail, r.console_tail);
    assert_eq!(server.image_requests.len(), 1);
    assert!(has(&r, "app: v2.0.0 confirmed"), "{:?}", r.console_tail);
}

#[test]
fn retry_after_is_honoured() {
    let setup = setup();
    let faults = ServerFaults {
        unavailable: 2,
        retry_after_s: Some(1),
        ..ServerFaults::default()
    };
    let (r, server) = run(&setup, Script::Update, faults);
    assert_eq!(r.end, End::Updated, "{}", r.detail);
    let times: Vec<u64> = server.image_requests.iter().map(|(t, _)| *t).collect();
    assert_eq!(times.len(), 3, "{times:?}");
    assert!(
        times[1] - times[0] >= 1000 && times[2] - times[1] >= 1000,
        "{times:?}"
    );
    assert!(has(
        &r,
        "download: error reason=status-503 retry=1/8 in=1000ms"
    ));
    // Without Retry-After the backoff doubles from 50 ms.
    let faults = ServerFaults {
        unavailable: 3,
        ..ServerFaults::default()
    };
    let (r, server) = run(&setup, Script::Update, faults);
    assert_eq!(r.end, End::Updated, "{}", r.detail);
    let gaps: Vec<u64> = server
        .image_requests
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .collect();
    assert_eq!(gaps, [50, 100, 200]);
}

#[test]
fn retries_run_out_then_a_later_check_in_completes_the_update() {
    let setup = setup();
    let faults = ServerFaults {
        unavailable: crate::download::MAX_RETRIES + 1,
        ..ServerFaults::default()
    };
    let (r, server) = run(&setup, Script::Update, faults);
    assert_eq!(r.end, End::Updated, "{}", r.detail);
    assert_eq!(
        server.image_requests.len() as u32,
        crate::download::MAX_RETRIES + 2
    );
    assert!(
        has(&r, "update: failed reason=retries-exhausted"),
        "{:?}",
        r.console_tail
    );
}

#[test]
fn an_ignored_range_restarts_from_zero_and_completes() {
    let setup = setup();
    let faults = ServerFaults {
        ignore_range: true,
        truncations: 1,
        cut_after: 9000,
        ..ServerFaults::default()
    };
    let (r, server) = run(&setup, Script::Update, faults);
    assert_eq!(r.end, End::Updated, "{}: {:?}", r.detail, r.console_tail);
    assert!(has(&r, "download: error reason=ignored-range"));
    // Cut after two chunks: the resumed requests ask from chunk 2, the server sends all.
    let ranges: Vec<_> = server.image_requests.iter().map(|(_, r)| *r).collect();
    let total = setup.v2.len() as u32;
    assert_eq!(ranges.first(), Some(&Some((0, total - 1))));
    assert!(
        ranges[1..].iter().all(|r| *r == Some((8192, total - 1))),
        "{ranges:?}"
    );
    assert_eq!(ranges.len(), 3, "{ranges:?}");
}

#[test]
fn a_stall_times_out_and_the_download_resumes() {
    let setup = setup();
    let faults = ServerFaults {
        truncations: 1,
        cut_after: 5000,
        stalls: 1,
        ..ServerFaults::default()
    };
    let (r, server) = run(&setup, Script::Update, faults);
    assert_eq!(r.end, End::Updated, "{}: {:?}", r.detail, r.console_tail);
    // The first request stalls, the second is cut after one chunk.
    assert!(has(&r, "download: error reason=timeout retry=1/8"));
    assert!(has(&r, "download: error reason=short-body retry=2/8"));
    assert!(has(&r, "download: resume offset=4096 chunk=1/"));
    let times: Vec<u64> = server.image_requests.iter().map(|(t, _)| *t).collect();
    // The stalled request waited the network timeout, then the retry's backoff.
    assert_eq!(
        times[1] - times[0],
        super::SIM_POLICY.net_timeout_ms + 50,
        "{times:?}"
    );
}

#[test]
fn a_trial_that_never_checks_in_is_reset_by_the_watchdog_and_reverted() {
    let setup = setup();
    let (r, _) = run(&setup, Script::FailedTrial, ServerFaults::default());
    assert_eq!(r.end, End::RolledBack, "{}", r.detail);
    assert!(has(&r, "watchdog: expired"));
    assert!(has(
        &r,
        "boot: otarig-boot board=sim device=sweep reset=watchdog"
    ));
    assert!(has(&r, "boot: revert to=1.0.0 reason=trial-exhausted"));
}

#[test]
fn a_release_that_never_downloads_is_reported_and_then_declined() {
    let setup = setup();
    let faults = ServerFaults {
        corrupt: Some((5000, 8)),
        ..ServerFaults::default()
    };
    // A server that listens: one give-up, reported as chunk-hash, ends the offers.
    let (r, server) = run(&setup, Script::Refused, faults);
    assert_eq!(r.end, End::Unchanged, "{}: {:?}", r.detail, r.console_tail);
    let per_attempt = crate::download::MAX_RETRIES as usize + 1;
    assert_eq!(server.image_requests.len(), per_attempt);
    assert!(has(&r, "download: error reason=chunk-hash retry=1/8"));
    assert!(has(&r, "update: failed reason=retries-exhausted"));
    // A server that keeps offering it: the board stops fetching after its attempts and
    // declines the offer, naming the cause, from then on.
    let mut server = MemServer::new(&setup, Script::Refused);
    server.faults = faults;
    server.heed_reports = false;
    let r = drive(&mut server, &[], None);
    assert_eq!(
        server.image_requests.len(),
        per_attempt * usize::from(super::MAX_OFFER_ATTEMPTS),
        "{:?}",
        r.console_tail
    );
    assert!(
        has(&r, "update: refused version=2.0.0 reason=chunk-hash"),
        "{:?}",
        r.console_tail
    );
    // ... and spaces its check-ins out: 8x the interval after the third failure.
    let gaps: Vec<u64> = server
        .image_requests
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .collect();
    assert!(
        gaps.iter()
            .any(|g| *g >= 8 * super::SIM_POLICY.checkin_interval_ms),
        "{gaps:?}"
    );
}

#[test]
fn a_run_replays_exactly() {
    let setup = setup();
    let faults = ServerFaults {
        unavailable: 1,
        truncations: 1,
        cut_after: 7000,
        ..ServerFaults::default()
    };
    let (a, sa) = run(&setup, Script::Rollback, faults);
    let (b, sb) = run(&setup, Script::Rollback, faults);
    assert_eq!(a.end, End::RolledBack, "{}", a.detail);
    assert_eq!(
        (a.ops, a.boots, &a.console_tail),
        (b.ops, b.boots, &b.console_tail)
    );
    assert_eq!(sa.image_requests, sb.image_requests);
}
