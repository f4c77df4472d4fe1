//! The machine fed by hand, one input at a time: the paths the in-memory server never
//! takes (bad answers, stalls, second heads), the buffers and the timing policy.
use super::*;
use crate::device::Lines;
use crate::manifest;
use crate::nor::TestFlash;
use crate::sweep::Setup;

/// A v1 board with its machine started and its network up.
struct Bench {
    dev: Device<'static, TestFlash>,
    bufs: VecBuffers,
    out: Lines,
    up: Updater,
    now: u64,
}

impl Bench {
    fn new(setup: &Setup, policy: Policy) -> Self {
        Self::with(setup, policy, |_, _| {})
    }

    /// A bench whose device and boot `prepare` changes before the app starts.
    fn with(
        setup: &Setup,
        policy: Policy,
        prepare: impl FnOnce(&mut Device<'static, TestFlash>, &mut Boot),
    ) -> Self {
        let mut dev = Device::new(setup.fresh_flash(), setup.config());
        let mut out = Lines(Vec::new());
        let mut boot = dev.boot(&mut out).expect("boot");
        prepare(&mut dev, &mut boot);
        let mut bufs = VecBuffers::default();
        let mut io = Io {
            dev: &mut dev,
            bufs: &mut bufs,
            out: &mut out,
            board_check: no_board_check,
        };
        let who = Identity {
            device: "bench-1",
            boots: 1,
        };
        let up = Updater::start(&mut io, boot, Ok(Drill::None), &who, policy, 0).expect("start");
        let mut b = Self {
            dev,
            bufs,
            out,
            up,
            now: 0,
        };
        assert_eq!(b.next(), "start-network");
        b.feed(Input::NetworkUp);
        b
    }

    fn feed(&mut self, input: Input<'_>) {
        let mut io = Io {
            dev: &mut self.dev,
            bufs: &mut self.bufs,
            out: &mut self.out,
            board_check: no_board_check,
        };
        self.up.handle(&mut io, input, self.now).expect("flash");
    }

    /// The next action, as text.
    fn next(&mut self) -> String {
        match self.up.poll_action() {
            None => "none".into(),
            Some(Action::StartNetwork) => "start-network".into(),
            Some(Action::SendCheckin(r)) => {
                format!("checkin last_error={:?}", r.last_error.as_deref())
            }
            Some(Action::Fetch { url, range }) => format!("fetch {url} {range:?}"),
            Some(Action::Wait { until }) => format!("wait {until}"),
            Some(Action::CrashDrill) => "crash".into(),
            Some(Action::Hang) => "hang".into(),
            Some(Action::Reset(r)) => format!("reset {}", r.as_str()),
        }
    }

    /// A whole response: head, body in one piece, end.
    fn respond(&mut self, status: u16, fields: &str, body: &[u8]) {
        let text = format!("HTTP/1.1 {status} X\r\n{fields}\r\n");
        let head = crate::http::parse_head(text.as_bytes()).expect("head");
        self.feed(Input::ResponseHead(head));
        if !body.is_empty() {
            self.feed(Input::BodyBytes(body));
        }
        self.feed(Input::BodyEnd);
    }

    fn answer(&mut self, json: &str) {
        let cl = format!("Content-Length: {}\r\n", json.len());
        self.respond(200, &cl, json.as_bytes());
    }

    fn last_line(&self) -> &str {
        self.out.0.last().map_or("", String::as_str)
    }

    /// Advances the clock to the machine's deadline and says so.
    fn wait(&mut self) {
        self.now = self.up.next_deadline().expect("a deadline");
        self.feed(Input::Timeout);
    }
}

const OFFER: &str = r#"{"command":"update","manifest_url":"/v1/manifest/v2"}"#;

#[test]
fn failed_check_ins_say_why_and_come_back_after_the_interval() {
    let setup = Setup::new(16 * 1024, 4096);
    let mut b = Bench::new(&setup, SIM_POLICY);
    assert_eq!(b.next(), "checkin last_error=None");
    b.respond(500, "Content-Length: 0\r\n", b"");
    assert_eq!(b.last_line(), "checkin: failed reason=status-500");
    assert_eq!(b.next(), "wait 100");
    b.wait();
    assert_eq!(b.next(), "checkin last_error=None");
    b.answer("{not json");
    assert_eq!(b.last_line(), "checkin: failed reason=malformed");
    b.wait();
    assert_eq!(b.next(), "checkin last_error=None");
    // A body shorter than its Content-Length.
    b.respond(200, "Content-Length: 40\r\n", br#"{"command":"none"}"#);
    assert_eq!(b.last_line(), "checkin: failed reason=short-body");
    b.wait();
    assert_eq!(b.next(), "checkin last_error=None");
    // No Content-Length, or one past the limit: refused before any body.
    b.respond(200, "", b"");
    assert_eq!(b.last_line(), "checkin: failed reason=bad-content-length");
    b.wait();
    let _ = b.next();
    b.respond(200, "Content-Length: 5000\r\n", b"");
    assert_eq!(b.last_line(), "checkin: failed reason=bad-content-length");
    b.wait();
    let _ = b.next();
    // More body than announced.
    b.feed(Input::ResponseHead(
        crate::http::parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n").expect("h"),
    ));
    b.feed(Input::BodyBytes(b"{}{}"));
    assert_eq!(b.last_line(), "checkin: failed reason=long-body");
    // A stall: the machine's own deadline ends the request.
    b.wait();
    assert_eq!(b.next(), "checkin last_error=None");
    let sent = b.now;
    b.wait();
    assert_eq!(b.now, sent + SIM_POLICY.net_timeout_ms);
    assert_eq!(b.last_line(), "checkin: failed reason=timeout");
}

#[test]
fn a_manifest_that_cannot_be_fetched_is_retried_at_the_next_check_in() {
    let setup = Setup::new(16 * 1024, 4096);
    let mut b = Bench::new(&setup, SIM_POLICY);
    let _ = b.next();
    b.answer(OFFER);
    assert_eq!(b.next(), "fetch /v1/manifest/v2 None");
    assert!(b.up.is_updating());
    b.respond(404, "Content-Length: 0\r\n", b"");
    assert_eq!(
        b.last_line(),
        "update: manifest unavailable reason=status-404"
    );
    assert!(!b.up.is_updating());
    b.wait();
    let _ = b.next();
    b.answer(OFFER);
    let _ = b.next();
    let m = &setup.manifest;
    let cl = format!("Content-Length: {}\r\n", m.len() + 10);
    b.respond(200, &cl, m);
    assert_eq!(
        b.last_line(),
        "update: manifest unavailable reason=short-body"
    );
    b.wait();
    let _ = b.next();
    b.answer(OFFER);
    let _ = b.next();
    let cl = format!("Content-Length: {}\r\n", manifest::MAX_LEN + 1);
    b.respond(200, &cl, b"");
    assert_eq!(
        b.last_line(),
        "update: manifest unavailable reason=bad-content-length"
    );
    // And a good one starts the download.
    b.wait();
    let _ = b.next();
    b.answer(OFFER);
    let _ = b.next();
    let cl = format!("Content-Length: {}\r\n", m.len());
    b.respond(200, &cl, m);
    let total = setup.v2.len() as u32;
    assert_eq!(
        b.next(),
        format!("fetch /v1/images/v2.bin Some((0, {}))", total - 1)
    );
    assert!(!b.up.wants_body(), "no head yet");
    // A second head, or bytes before any head, change nothing.
    let partial = format!(
        "HTTP/1.1 206 P\r\nContent-Length: {total}\r\nContent-Range: bytes 0-{}/{total}\r\n\r\n",
        total - 1
    );
    b.feed(Input::BodyBytes(&setup.v2[..10]));
    let head = crate::http::parse_head(partial.as_bytes()).expect("head");
    b.feed(Input::ResponseHead(head));
    assert!(b.up.wants_body());
    let bogus = crate::http::parse_head(b"HTTP/1.1 503 X\r\n\r\n").expect("head");
    b.feed(Input::ResponseHead(bogus));
    assert!(b.up.wants_body(), "a second head is ignored");
    b.feed(Input::BodyBytes(&setup.v2));
    assert_eq!(b.next(), "reset update");
    assert_eq!(b.up.reset(), Some(Reset::Update));
    assert_eq!(b.last_line(), "update: staged version=2.0.0");
}

#[test]
fn an_execute_in_place_board_asks_for_the_variant_of_its_inactive_slot() {
    let setup = Setup::new(16 * 1024, 4096);
    let policy = Policy {
        slot_variants: true,
        ..SIM_POLICY
    };
    let mut b = Bench::new(&setup, policy);
    let _ = b.next();
    b.answer(OFFER);
    // Running from slot A: the image for slot B.
    assert_eq!(b.next(), "fetch /v1/manifest/v2-b None");
    // Running from slot B: the image for slot A.
    let mut b = Bench::with(&setup, policy, |_, boot| boot.state.active = 1);
    let _ = b.next();
    b.answer(OFFER);
    assert_eq!(b.next(), "fetch /v1/manifest/v2-a None");
}

#[test]
fn a_trial_image_retries_its_check_in_inside_its_window() {
    let mut setup = Setup::new(16 * 1024, 4096);
    setup.policy.checkin_interval_ms = 1000;
    setup.policy.trial_window_ms = 800;
    let mut b = Bench::new(&setup, setup.policy);
    // Confirmed image: a failed check-in waits the whole interval.
    let _ = b.next();
    b.feed(Input::NetError(Reason::Connect));
    assert_eq!(b.next(), "wait 1000");
    // The same board on trial (its app started at 1000) retries within its window, every
    // eighth of it.
    b.now = 1000;
    b.up.boot.state.mode = Mode::Trial;
    b.up.started = b.now;
    b.feed(Input::Timeout);
    assert_eq!(b.next(), "checkin last_error=None");
    b.feed(Input::NetError(Reason::Connect));
    assert_eq!(b.next(), format!("wait {}", b.now + 100));
    // ... until the watchdog ends the trial (bounded: a machine that never resets fails).
    for _ in 0..100 {
        if b.up.reset().is_some() {
            break;
        }
        b.wait();
        let _ = b.next();
        if b.up.reset().is_none() {
            b.feed(Input::NetError(Reason::Connect));
        }
    }
    assert_eq!(b.up.reset(), Some(Reset::Watchdog));
    assert_eq!(b.now, 1000 + 800);
}

#[test]
fn jitter_spreads_waits_by_a_tenth_and_replays_under_its_seed() {
    let setup = Setup::new(16 * 1024, 4096);
    let policy = Policy {
        checkin_interval_ms: 10_000,
        jitter_seed: Some(42),
        ..SIM_POLICY
    };
    let waits = |policy| {
        let mut b = Bench::new(&setup, policy);
        let mut out = Vec::new();
        for _ in 0..40 {
            let _ = b.next();
            let before = b.now;
            b.answer(r#"{"command":"none"}"#);
            let next = b.up.next_deadline().expect("deadline");
            out.push(next - before);
            b.wait();
        }
        out
    };
    let a = waits(policy);
    assert_eq!(a, waits(policy), "same seed, same waits");
    assert!(a.iter().all(|w| (9_000..=11_000).contains(w)), "{a:?}");
    assert!(
        a.iter().any(|w| *w < 9_900) && a.iter().any(|w| *w > 10_100),
        "{a:?}"
    );
    let other = waits(Policy {
        jitter_seed: Some(43),
        ..policy
    });
    assert_ne!(a, other);
    let exact = waits(Policy {
        jitter_seed: None,
        ..policy
    });
    assert!(exact.iter().all(|w| *w == 10_000), "{exact:?}");
}

#[test]
fn buffers_hold_what_they_are_given() {
    let (mut m, mut c) = ([0u8; 8], [0u8; 4]);
    let mut s = SliceBuffers {
        manifest: &mut m,
        chunk: &mut c,
    };
    assert!(s.manifest_room(9).is_none());
    s.manifest_room(8)
        .expect("fits")
        .copy_from_slice(b"manifest");
    assert_eq!(s.manifest(3), b"man");
    assert_eq!(s.manifest(8), b"manifest");
    assert!(s.chunk_room(5).is_none());
    s.chunk_room(4).expect("fits").copy_from_slice(b"abcd");
    assert_eq!(s.chunk(2), b"ab");
    let mut v = VecBuffers::default();
    assert_eq!(v.held(), 0);
    assert!(v.manifest_room(manifest::MAX_LEN + 1).is_none());
    assert!(v.manifest_room(manifest::MAX_LEN).is_some());
    v.manifest_room(4).expect("fits").copy_from_slice(b"wxyz");
    // The same room again keeps what it holds (a body in several pieces).
    assert_eq!(
        v.manifest_room(4).map(|r| r.to_vec()),
        Some(b"wxyz".to_vec())
    );
    v.chunk_room(3).expect("fits").copy_from_slice(b"123");
    assert_eq!(v.chunk_room(3).map(|r| r.to_vec()), Some(b"123".to_vec()));
    assert_eq!(v.chunk(3), b"123");
    assert!(v.held() >= 7);
    v.chunk_room(4096).expect("grows");
    let held = v.held();
    assert!(
        (4096 + manifest::MAX_LEN..2 * (4096 + manifest::MAX_LEN)).contains(&held),
        "both buffers: {held}"
    );
    v.release();
    assert_eq!(v.held(), 0);
}

#[test]
fn the_early_confirm_quirk_confirms_a_trial_before_any_check_in() {
    let setup = Setup::new(16 * 1024, 4096);
    for quirk in [false, true] {
        let b = Bench::with(&setup, SIM_POLICY, |dev, boot| {
            dev.cfg.quirks.early_confirm = quirk;
            boot.state.mode = Mode::Trial;
        });
        let confirmed = b.out.0.iter().any(|l| l == "app: v1.0.0 confirmed");
        assert_eq!(confirmed, quirk, "{:?}", b.out.0);
        assert_eq!(b.up.boot().state.mode == Mode::Confirmed, quirk);
    }
}

#[test]
fn a_give_up_is_reported_at_the_next_check_in() {
    let setup = Setup::new(16 * 1024, 4096);
    let mut b = Bench::new(&setup, SIM_POLICY);
    b.up.gave_up(Reason::ChunkHash);
    assert_eq!(b.next(), "checkin last_error=Some(\"chunk-hash\")");
}

#[test]
fn offers_are_told_apart_by_their_url() {
    // FNV-1a, 32 bits: the published test values.
    assert_eq!(fnv1a(""), 0x811C_9DC5);
    assert_eq!(fnv1a("a"), 0xE40C_292C);
    assert_eq!(fnv1a("foobar"), 0xBF9C_F968);
    assert_ne!(fnv1a("/v1/manifest/v2"), fnv1a("/v1/manifest/v3"));
}

#[test]
fn a_manifest_that_is_not_the_releases_is_declined_without_a_fetch_until_another_is_offered() {
    // A forged manifest (signed by another key) or a garbled one: refused once, reported at
    // every check-in, and not fetched again while the server keeps offering it; the check-in
    // cadence does not change. A different offer is fetched.
    let setup = Setup::new(16 * 1024, 4096);
    let forged = manifest::build(
        &setup.v2,
        4096,
        "/v1/images/v2.bin",
        &crate::keys::generate(),
    )
    .expect("manifest");
    let mut garbled = setup.manifest.clone();
    garbled[0] ^= 0xFF;
    for (raw, reason) in [
        (forged, "bad-manifest-signature"),
        (garbled, "bad-manifest"),
    ] {
        let refused = format!("update: refused version=unknown reason={reason}");
        let mut b = Bench::new(&setup, SIM_POLICY);
        assert_eq!(b.next(), "checkin last_error=None");
        b.answer(OFFER);
        assert_eq!(b.next(), "fetch /v1/manifest/v2 None");
        b.respond(200, &format!("Content-Length: {}\r\n", raw.len()), &raw);
        assert_eq!(b.last_line(), refused);
        for _ in 0..3 {
            let at = b.now;
            assert_eq!(
                b.next(),
                format!("wait {}", at + SIM_POLICY.checkin_interval_ms)
            );
            b.wait();
            assert_eq!(b.next(), format!("checkin last_error=Some({reason:?})"));
            b.answer(OFFER);
            assert_eq!(b.last_line(), refused, "{:?}", b.out.0);
            assert!(!b.up.is_updating());
        }
        // Another offer (the server published a fixed manifest) is fetched and downloaded.
        b.wait();
        let _ = b.next();
        b.answer(r#"{"command":"update","manifest_url":"/v1/manifest/v2-fixed"}"#);
        assert_eq!(b.next(), "fetch /v1/manifest/v2-fixed None");
        let m = &setup.manifest;
        b.respond(200, &format!("Content-Length: {}\r\n", m.len()), m);
        assert!(
            b.next().starts_with("fetch /v1/images/v2.bin"),
            "{:?}",
            b.out.0
        );
    }
}

#[test]
fn downloads_that_gave_up_count_against_their_own_offer_only() {
    let setup = Setup::new(16 * 1024, 4096);
    let mut b = Bench::new(&setup, SIM_POLICY);
    let v2 = Version::new(2, 0, 0);
    b.up.offer = (fnv1a("/v1/manifest/v2"), Some(v2));
    for _ in 0..MAX_OFFER_ATTEMPTS {
        b.up.gave_up(Reason::Timeout);
    }
    let _ = b.next();
    b.answer(OFFER);
    assert_eq!(
        b.last_line(),
        "update: refused version=2.0.0 reason=timeout",
        "declined"
    );
    // Another release whose download gave up once is still fetched.
    b.up.offer = (fnv1a("/v1/manifest/v3"), Some(Version::new(3, 0, 0)));
    b.up.gave_up(Reason::Timeout);
    b.wait();
    let _ = b.next();
    b.answer(r#"{"command":"update","manifest_url":"/v1/manifest/v3"}"#);
    assert_eq!(b.next(), "fetch /v1/manifest/v3 None");
}

#[test]
fn jitter_is_splitmix64_of_its_seed() {
    // SplitMix64 seeded with 0: its published first outputs, spread over ±10 % of 10 s.
    let setup = Setup::new(16 * 1024, 4096);
    let policy = Policy {
        jitter_seed: Some(0),
        ..SIM_POLICY
    };
    let mut b = Bench::new(&setup, policy);
    for z in [
        0xE220_A839_7B1D_CDAF_u64,
        0x6E78_9E6A_A1B9_65F4,
        0x06C4_5D18_8009_454F,
    ] {
        assert_eq!(b.up.jitter(10_000), 9_000 + z % 2_001);
    }
}

#[test]
fn a_release_that_keeps_failing_spaces_the_check_ins_out() {
    let setup = Setup::new(16 * 1024, 4096);
    let mut b = Bench::new(&setup, SIM_POLICY);
    b.up.offer = (fnv1a("/v1/manifest/v2"), Some(Version::new(2, 0, 0)));
    let interval = SIM_POLICY.checkin_interval_ms;
    for (failed, factor) in [(1, 2), (2, 4), (3, 8)] {
        b.up.gave_up(Reason::Timeout);
        let _ = b.next();
        let at = b.now;
        b.answer(r#"{"command":"none"}"#);
        assert_eq!(
            b.next(),
            format!("wait {}", at + factor * interval),
            "{failed}"
        );
        b.wait();
    }
}

#[test]
fn stray_heads_and_ends_change_nothing() {
    let setup = Setup::new(16 * 1024, 4096);
    let mut b = Bench::new(&setup, SIM_POLICY);
    assert_eq!(b.next(), "checkin last_error=None");
    let lines = b.out.0.len();
    // An end before any head, during the check-in.
    b.feed(Input::BodyEnd);
    assert_eq!(b.out.0.len(), lines, "{:?}", b.out.0);
    // A second head during the check-in, then during the manifest fetch.
    let json = br#"{"command":"update","manifest_url":"/v1/manifest/v2"}"#;
    let head = |t: &str| crate::http::parse_head(t.as_bytes()).expect("head");
    let ok = |n: usize| head(&format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n"));
    let bad = head("HTTP/1.1 503 X\r\nContent-Length: 0\r\n\r\n");
    b.feed(Input::ResponseHead(ok(json.len())));
    b.feed(Input::ResponseHead(bad));
    b.feed(Input::BodyBytes(json));
    b.feed(Input::BodyEnd);
    assert_eq!(b.next(), "fetch /v1/manifest/v2 None", "{:?}", b.out.0);
    let lines = b.out.0.len();
    b.feed(Input::BodyEnd);
    assert_eq!(b.out.0.len(), lines, "an end before the manifest's head");
    let m = setup.manifest.clone();
    b.feed(Input::ResponseHead(ok(m.len())));
    b.feed(Input::ResponseHead(bad));
    b.feed(Input::BodyBytes(&m));
    b.feed(Input::BodyEnd);
    assert!(
        b.next().starts_with("fetch /v1/images/v2.bin"),
        "{:?}",
        b.out.0
    );
    // An end before the image's head.
    let lines = b.out.0.len();
    b.feed(Input::BodyEnd);
    assert_eq!(b.out.0.len(), lines, "an end before the image's head");
    assert!(b.up.is_updating());
}

#[test]
fn an_image_body_in_pieces_with_bytes_past_its_end_is_staged_and_a_short_one_is_not() {
    let setup = Setup::new(16 * 1024, 4096);
    let total = setup.v2.len();
    let start = |b: &mut Bench| {
        let _ = b.next();
        b.answer(OFFER);
        let _ = b.next();
        let m = setup.manifest.clone();
        b.respond(200, &format!("Content-Length: {}\r\n", m.len()), &m);
        assert!(b.next().starts_with("fetch /v1/images/v2.bin"));
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n");
        let head = crate::http::parse_head(head.as_bytes()).expect("head");
        b.feed(Input::ResponseHead(head));
    };
    // In 1000-byte pieces (chunks of 4096 span several), and bytes past the end.
    let mut b = Bench::new(&setup, SIM_POLICY);
    start(&mut b);
    let mut body = setup.v2.clone();
    body.extend_from_slice(&[0xAA; 10]);
    for piece in body.chunks(1000) {
        b.feed(Input::BodyBytes(piece));
    }
    assert_eq!(b.next(), "reset update", "{:?}", b.out.0);
    // A body that ends early is a short body, retried.
    let mut b = Bench::new(&setup, SIM_POLICY);
    start(&mut b);
    b.feed(Input::BodyBytes(&setup.v2[..5000]));
    b.feed(Input::BodyEnd);
    assert!(
        b.last_line()
            .starts_with("download: error reason=short-body retry=1/8"),
        "{:?}",
        b.out.0
    );
}

#[test]
fn a_check_in_answer_up_to_its_limit_is_read() {
    let setup = Setup::new(16 * 1024, 4096);
    let mut b = Bench::new(&setup, SIM_POLICY);
    let _ = b.next();
    let mut json = br#"{"command":"none"}"#.to_vec();
    json.resize(MAX_CHECKIN_BODY, b' ');
    b.answer(core::str::from_utf8(&json).expect("ascii"));
    assert_eq!(
        b.last_line(),
        "checkin: version=1.0.0 state=confirmed -> command=none"
    );
}
