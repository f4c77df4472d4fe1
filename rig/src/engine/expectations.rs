//! Expectations: something must (or must not) appear on the console or in the server's log
//! within a time.

use std::sync::Arc;

use fake_server::EventKind as ServerKind;
use fake_server::faults::glob_match;
use ota_core::Version;

use super::{AttemptRun, StepError, StepResult};
use crate::scenario::{DeviceExpect, Expectation, Expected, HttpExpect, RefusalExpect};
use crate::timeline::{Cursor, EventKind};

impl AttemptRun<'_> {
    /// Waits for a server event: any since the start when it must be present (it may already
    /// have happened), only new ones when it must be absent.
    pub(super) async fn wait_server(
        &self,
        present: bool,
        deadline: tokio::time::Instant,
        pred: impl FnMut(&fake_server::ServerEvent) -> bool,
    ) -> bool {
        let from = if present {
            self.log_from
        } else {
            self.log.cursor()
        };
        self.log.wait_for(from, deadline, pred).await.is_some()
    }

    /// Waits for a console line of the board: any since the last power-on (or the previous
    /// console match) when it must be present, so output printed before the step began
    /// counts; only new ones when it must be absent. A match moves the start of later console
    /// expectations past it, so steps match in order.
    async fn wait_console(
        &mut self,
        present: bool,
        deadline: tokio::time::Instant,
        matches: impl Fn(&str) -> bool,
    ) -> bool {
        let board = Arc::clone(&self.board);
        let from = if present {
            self.last_power_on
        } else {
            self.timeline.cursor()
        };
        let found = self
            .timeline
            .wait_for(from, deadline, |ev| {
                ev.board.as_deref() == Some(&*board)
                    && matches!(&ev.kind, EventKind::Console { line } if matches(line))
            })
            .await;
        if let Some((c, _)) = found {
            self.last_power_on = Cursor(c.0 + 1);
        }
        found.is_some()
    }

    pub(super) async fn expect(&mut self, e: &Expectation, present: bool) -> StepResult<()> {
        let limit = self.scaled(e.within.0);
        let deadline = tokio::time::Instant::now() + limit;
        let found = match &e.what {
            Expected::Console(p) => {
                self.wait_console(present, deadline, |line| p.regex.is_match(line))
                    .await
            }
            Expected::Refused(r) => {
                self.wait_console(present, deadline, |line| refusal_matches(r, line))
                    .await
            }
            Expected::Http(h) => {
                self.wait_server(present, deadline, |ev| http_matches(h, ev))
                    .await
            }
            Expected::Device(d) => {
                self.wait_server(present, deadline, |ev| device_matches(d, ev))
                    .await
            }
        };
        let what = &e.what;
        let scaled = if limit == e.within.0 {
            String::new()
        } else {
            format!(" ({limit:?} with the board's time_scale)")
        };
        match (present, found) {
            (true, true) | (false, false) => Ok(()),
            (true, false) => Err(StepError::Firmware(format!(
                "expected {what} within {}{scaled}, not seen",
                e.within
            ))),
            (false, true) => Err(StepError::Firmware(format!(
                "{what} happened within {}{scaled} but must not",
                e.within
            ))),
        }
    }
}

/// First byte of a `Range: bytes=N-...` header; 0 without one.
pub(super) fn range_start(range: Option<&str>) -> u64 {
    range
        .and_then(|r| r.trim().strip_prefix("bytes="))
        .and_then(|r| r.split('-').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether a console line is the refusal `r` names: the stage's own line, with its reason.
fn refusal_matches(r: &RefusalExpect, line: &str) -> bool {
    ota_core::console::parse(line)
        .and_then(|l| r.stage.refusal_in(&l))
        .is_some_and(|reason| r.reason.is_none_or(|want| want == reason))
}

fn http_matches(h: &HttpExpect, ev: &fake_server::ServerEvent) -> bool {
    let ServerKind::Request {
        method,
        path,
        range,
        status,
        ..
    } = &ev.kind
    else {
        return false;
    };
    h.path.as_deref().is_none_or(|g| glob_match(g, path))
        && h.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
        && h.status.is_none_or(|s| s == *status)
        && h.range_from
            .is_none_or(|c| c.matches(range_start(range.as_deref())))
}

fn device_matches(d: &DeviceExpect, ev: &fake_server::ServerEvent) -> bool {
    let ServerKind::Checkin {
        version,
        state,
        last_error,
        ..
    } = &ev.kind
    else {
        return false;
    };
    d.version
        .is_none_or(|v| version.parse::<Version>().is_ok_and(|got| got == v.0))
        && d.state.is_none_or(|s| s == *state)
        && d.last_error
            .as_ref()
            .is_none_or(|p| last_error.as_deref().is_some_and(|e| p.regex.is_match(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("/v1/images/*", "/v1/images/v2.bin"));
        assert!(glob_match("*", ""));
        assert!(glob_match("/a/*/c", "/a/b/x/c"));
        assert!(!glob_match("/v1/images/*", "/v1/manifest/v2"));
        assert!(!glob_match("/a", "/ab"));
    }

    #[test]
    fn range_starts() {
        assert_eq!(range_start(Some("bytes=4096-")), 4096);
        assert_eq!(range_start(Some("bytes=0-99")), 0);
        assert_eq!(range_start(None), 0);
        assert_eq!(range_start(Some("bytes=-500")), 0);
    }

    fn event(kind: ServerKind) -> fake_server::ServerEvent {
        fake_server::ServerEvent {
            at: std::time::Instant::now(),
            t_us: 0,
            kind,
        }
    }

    fn request(path: &str, range: Option<&str>, status: u16) -> fake_server::ServerEvent {
        event(ServerKind::Request {
            id: 1,
            method: "GET".into(),
            path: path.into(),
            device: None,
            range: range.map(str::to_string),
            status,
            declared_len: None,
        })
    }

    fn expect(yaml: &str) -> Expected {
        let e: Expectation = serde_saphyr::from_str(yaml).expect("expectation");
        e.what
    }

    #[test]
    fn http_expectations_match_path_method_status_and_range() {
        let Expected::Http(h) = expect(
            "{ http: { path: \"/v1/images/*\", status: 206, range_from: \">0\" }, within: 1s }",
        ) else {
            panic!("an http expectation");
        };
        assert!(http_matches(
            &h,
            &request("/v1/images/v2.bin", Some("bytes=100-"), 206)
        ));
        assert!(
            !http_matches(&h, &request("/v1/images/v2.bin", None, 206)),
            "range from 0"
        );
        assert!(!http_matches(
            &h,
            &request("/v1/images/v2.bin", Some("bytes=100-"), 200)
        ));
        assert!(!http_matches(
            &h,
            &request("/v1/checkin", Some("bytes=100-"), 206)
        ));
    }

    #[test]
    fn device_expectations_match_version_state_and_last_error() {
        use ota_core::checkin::DeviceState;
        let Expected::Device(d) = expect(
            "{ device: { version: 2.0.0, state: trial, last_error: \"chunk\" }, within: 1s }",
        ) else {
            panic!("a device expectation");
        };
        let checkin = |version: &str, state: DeviceState, last_error: Option<&str>| {
            event(ServerKind::Checkin {
                device: "d".into(),
                version: version.into(),
                state,
                boot_count: 1,
                last_error: last_error.map(str::to_string),
                command: ota_core::checkin::Command::None,
            })
        };
        assert!(device_matches(
            &d,
            &checkin("2.0.0", DeviceState::Trial, Some("chunk-hash"))
        ));
        assert!(!device_matches(
            &d,
            &checkin("2.0.0", DeviceState::Trial, None)
        ));
        assert!(!device_matches(
            &d,
            &checkin("1.0.0", DeviceState::Trial, Some("chunk-hash"))
        ));
        assert!(!device_matches(
            &d,
            &checkin("2.0.0", DeviceState::Confirmed, Some("chunk-hash"))
        ));
        assert!(!device_matches(&d, &request("/v1/checkin", None, 200)));
    }

    #[test]
    fn refusals_match_their_stage_and_reason() {
        let Expected::Refused(r) =
            expect("{ refused: { stage: manifest, reason: downgrade }, within: 1s }")
        else {
            panic!("a refusal expectation");
        };
        assert!(refusal_matches(
            &r,
            "update: refused version=0.9.0 reason=downgrade"
        ));
        assert!(!refusal_matches(
            &r,
            "update: refused version=0.9.0 reason=same-version"
        ));
        assert!(
            !refusal_matches(&r, "verify: failed reason=downgrade"),
            "another stage"
        );
        assert!(!refusal_matches(
            &r,
            "update: refused version=0.9.0 reason=downgrade junk"
        ));
        let Expected::Refused(any) = expect("{ refused: { stage: boot }, within: 1s }") else {
            panic!("a refusal expectation");
        };
        assert!(refusal_matches(&any, "boot: refuse slot=b reason=bad-hash"));
        let bad: Result<Expectation, _> =
            serde_saphyr::from_str("{ refused: { stage: boot, reason: sunspots }, within: 1s }");
        assert!(
            bad.expect_err("unknown reason")
                .to_string()
                .contains("sunspots")
        );
    }
}
