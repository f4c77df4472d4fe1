//! The app's start, as every board plays it: the drills an image can carry (slow init, a
//! hang, a crash in init, no network) and the watchdog and trial window that end them. The
//! rig's scenarios rely on these timings; here they are pinned to the policy.

use super::bench::{Board, Lines, image, record, v};
use crate::device::{Device, Reset};
use crate::keys;
use crate::nor::TestFlash;
use crate::payload::Drill;
use crate::state::Mode;
use crate::updater::{
    Action, Identity, Input, Io, SIM_POLICY, Updater, VecBuffers, no_board_check,
};

struct App {
    key: keys::SigningKey,
    dev: Device<'static, TestFlash>,
    bufs: VecBuffers,
    out: Lines,
    up: Updater,
}

impl App {
    /// v1 booted from slot A (on trial when `trial`), its app started at `now` with `drill`.
    fn start(drill: Drill, trial: bool, now: u64) -> Self {
        let key = keys::generate();
        let mut b = Board::new(&key);
        b.put_slot(0, &image(&key, v(1), 1));
        b.put_slot(1, &image(&key, v(2), 1));
        let mut st = record(5, 0, 1);
        if trial {
            st.mode = Mode::Trial;
            st.previous = Some(1);
        }
        b.put_record(1, &st);
        let mut dev = b.device();
        let mut out = Lines::default();
        let boot = dev.boot(&mut out).expect("boots");
        let mut bufs = VecBuffers::default();
        let mut io = Io {
            dev: &mut dev,
            bufs: &mut bufs,
            out: &mut out,
            board_check: no_board_check,
        };
        let who = Identity {
            device: "proof",
            boots: 1,
        };
        let up = Updater::start(&mut io, boot, Ok(drill), &who, SIM_POLICY, now).expect("start");
        Self {
            key,
            dev,
            bufs,
            out,
            up,
        }
    }

    fn feed(&mut self, input: Input<'_>, now: u64) {
        let mut io = Io {
            dev: &mut self.dev,
            bufs: &mut self.bufs,
            out: &mut self.out,
            board_check: no_board_check,
        };
        self.up.handle(&mut io, input, now).expect("flash");
    }

    /// A whole 200 response with `body`, at `now`.
    fn respond(&mut self, body: &[u8], now: u64) {
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        let head = crate::http::parse_head(head.as_bytes()).expect("head");
        self.feed(Input::ResponseHead(head), now);
        self.feed(Input::BodyBytes(body), now);
        self.feed(Input::BodyEnd, now);
    }

    fn said(&self, line: &str) -> bool {
        self.out.has(line)
    }

    fn next(&mut self) -> Option<String> {
        self.up.poll_action().map(|a| match a {
            Action::Fetch { url, .. } => format!("fetch {url}"),
            Action::SendCheckin(_) => "checkin".into(),
            other => format!("{other:?}"),
        })
    }
}

#[test]
fn a_slow_init_takes_half_the_trial_window_then_the_network_starts() {
    let t0 = 1000;
    let ready = t0 + SIM_POLICY.trial_window_ms / 2;
    let mut app = App::start(Drill::SlowBoot, false, t0);
    assert_eq!(app.up.next_deadline(), Some(ready));
    assert_eq!(app.next(), Some(format!("Wait {{ until: {ready} }}")));
    app.feed(Input::Timeout, ready - 1);
    assert_eq!(app.next(), None, "still initialising");
    app.feed(Input::Timeout, ready);
    assert_eq!(app.next().as_deref(), Some("StartNetwork"));
    // On trial, the slow init still ends inside the window: the image gets to prove itself.
    let app = App::start(Drill::SlowBoot, true, t0);
    assert_eq!(app.up.next_deadline(), Some(ready));
}

#[test]
fn a_hung_app_is_reset_by_the_watchdog_after_its_period() {
    let t0 = 500;
    let fires = t0 + SIM_POLICY.watchdog_ms;
    let mut app = App::start(Drill::Hang, true, t0);
    assert_eq!(app.next().as_deref(), Some("Hang"));
    assert_eq!(
        app.up.next_deadline(),
        Some(fires),
        "the watchdog, not the trial window"
    );
    app.feed(Input::Timeout, fires - 1);
    assert_eq!(app.up.reset(), None);
    app.feed(Input::Timeout, fires);
    assert_eq!(app.up.reset(), Some(Reset::Watchdog));
    assert!(app.out.has("watchdog: expired"), "{:?}", app.out.0);
}

#[test]
fn a_trial_that_never_proves_itself_is_reset_at_the_end_of_its_window() {
    let t0 = 200;
    let window = t0 + SIM_POLICY.trial_window_ms;
    let mut app = App::start(Drill::NoNetwork, true, t0);
    assert!(
        app.out.has("app: v1.0.0 network disabled (drill)"),
        "{:?}",
        app.out.0
    );
    assert_eq!(app.up.next_deadline(), Some(window));
    app.feed(Input::Timeout, window - 1);
    assert_eq!(app.up.reset(), None);
    app.feed(Input::Timeout, window);
    assert_eq!(app.up.reset(), Some(Reset::Watchdog));
    // A confirmed image without a network just runs: nothing ever resets it.
    let mut app = App::start(Drill::NoNetwork, false, t0);
    assert_eq!(app.up.next_deadline(), None);
    app.feed(Input::Timeout, t0 + 100 * SIM_POLICY.trial_window_ms);
    assert_eq!(app.up.reset(), None);
}

#[test]
fn a_crash_in_init_resets_the_board_as_a_panic() {
    let mut app = App::start(Drill::CrashInInit, true, 0);
    assert_eq!(app.next().as_deref(), Some("CrashDrill"));
    assert_eq!(app.next().as_deref(), Some("Reset(Panic)"));
    assert_eq!(app.up.reset(), Some(Reset::Panic));
}

#[test]
fn check_ins_come_at_the_interval_and_not_before() {
    use crate::http::parse_head;
    let mut app = App::start(Drill::None, false, 0);
    assert_eq!(app.next().as_deref(), Some("StartNetwork"));
    app.feed(Input::NetworkUp, 10);
    assert_eq!(
        app.next().as_deref(),
        Some("checkin"),
        "the first check-in comes at once"
    );
    let body = br#"{"command":"none"}"#;
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
    app.feed(
        Input::ResponseHead(parse_head(head.as_bytes()).expect("head")),
        20,
    );
    app.feed(Input::BodyBytes(body), 20);
    app.feed(Input::BodyEnd, 20);
    let next = 20 + SIM_POLICY.checkin_interval_ms;
    assert_eq!(app.next(), Some(format!("Wait {{ until: {next} }}")));
    app.feed(Input::Timeout, next - 1);
    assert_eq!(app.next(), None, "not before the interval");
    app.feed(Input::Timeout, next);
    assert_eq!(app.next().as_deref(), Some("checkin"));
}

#[test]
fn every_request_times_out_at_its_deadline_and_not_before() {
    let timeout = SIM_POLICY.net_timeout_ms;
    let mut app = App::start(Drill::None, false, 0);
    let _ = app.next();
    app.feed(Input::NetworkUp, 0);
    assert_eq!(app.next().as_deref(), Some("checkin"));
    app.feed(Input::Timeout, timeout - 1);
    assert!(
        !app.said("checkin: failed reason=timeout"),
        "{:?}",
        app.out.0
    );
    app.feed(Input::Timeout, timeout);
    assert!(
        app.said("checkin: failed reason=timeout"),
        "{:?}",
        app.out.0
    );
    // The next check-in is offered the release; the manifest request times out.
    let mut now = app.up.next_deadline().expect("next check-in");
    app.feed(Input::Timeout, now);
    assert_eq!(app.next().as_deref(), Some("checkin"));
    app.respond(br#"{"command":"update","manifest_url":"/m"}"#, now);
    assert_eq!(app.next().as_deref(), Some("fetch /m"));
    app.feed(Input::Timeout, now + timeout - 1);
    assert!(
        !app.said("update: manifest unavailable reason=timeout"),
        "{:?}",
        app.out.0
    );
    app.feed(Input::Timeout, now + timeout);
    assert!(
        app.said("update: manifest unavailable reason=timeout"),
        "{:?}",
        app.out.0
    );
    // Offered again, the manifest arrives; the image request times out, then is retried
    // after its backoff and not before.
    now = app.up.next_deadline().expect("next check-in");
    app.feed(Input::Timeout, now);
    assert_eq!(app.next().as_deref(), Some("checkin"));
    app.respond(br#"{"command":"update","manifest_url":"/m"}"#, now);
    assert_eq!(app.next().as_deref(), Some("fetch /m"));
    let v2 = image(&app.key, v(2), 1);
    let raw = crate::manifest::build(&v2, 4096, "/img", &app.key).expect("manifest");
    app.respond(&raw, now);
    assert_eq!(app.next().as_deref(), Some("fetch /img"));
    app.feed(Input::Timeout, now + timeout - 1);
    assert!(
        !app.out.0.iter().any(|l| l.starts_with("download: error")),
        "{:?}",
        app.out.0
    );
    app.feed(Input::Timeout, now + timeout);
    assert!(
        app.said("download: error reason=timeout retry=1/8 in=50ms"),
        "{:?}",
        app.out.0
    );
    let retry_at = now + timeout + 50;
    assert_eq!(app.up.next_deadline(), Some(retry_at));
    app.feed(Input::Timeout, retry_at - 1);
    assert!(!matches!(app.next().as_deref(), Some("fetch /img")));
    app.feed(Input::Timeout, retry_at);
    assert_eq!(app.next().as_deref(), Some("fetch /img"));
}
