//! Fault rules: how the server misbehaves on purpose.
//!
//! A rule is a matcher (`path` glob, `method`, `device`, `nth`), exactly one action, and an
//! optional schedule (`times`, `every`, `probability` + `seed`, or `share` + `seed`). The same
//! YAML format is read from `--faults FILE`, from `PUT /_control/faults`, and from the rig's
//! scenario and runbook files:
//!
//! ```yaml
//! faults:
//!   - match: { path: "/v1/images/*", method: GET }
//!     truncate_at: 1000
//!     times: 1
//! ```
//!
//! | action | extra keys | effect |
//! |---|---|---|
//! | `truncate_at: N \| "P%"` | | send exactly N body bytes (or P% of the body), then close; headers promise the full length |
//! | `content_length: "+N" \| "-N" \| N` | | declare a wrong Content-Length, send the real body (past the declared length straight to the socket), then close |
//! | `drop_after: N` | `reset: bool` | send N body bytes, then drop the connection (RST with `reset: true`, else FIN) |
//! | `stall_after: N` | `for: 5s` | send N body bytes, go silent for the duration, then continue |
//! | `throttle: "64KiB/s"` | | limit the body rate |
//! | `latency: 200ms` | `jitter: 50ms` | delay the response |
//! | `corrupt: { offset: N, len: M }` | | flip every bit of image bytes `N..N+M` |
//! | `status: 503` | `retry_after: 2` | answer with that status and no body |
//! | `ignore_range: true` | | answer 200 with the full body even to a Range request |
//! | `bad_content_range: true` | | answer 206 with a Content-Range that does not match the bytes |
//! | `slow_headers: 2s` | | wait before sending the response head |
//! | `serve: FILE` | | serve another file from the image directory |
//! | `tamper_manifest: FIELD` | | serve the release's manifest with `version`, `rollback_counter`, `size` or `sha256` changed after signing, the old signature kept (the image itself stays valid) |
//!
//! | schedule | effect |
//! |---|---|
//! | (none) | every matching request |
//! | `times: N` | the first N matching requests |
//! | `every: N` | every N-th matching request |
//! | `probability: 0.3` (+ `seed: 7`) | each matching request with that chance, drawn in arrival order |
//! | `share: "20%"` (+ `seed: 7`) | about that share of each device's matching requests, chosen by a hash of (seed, device, the device's own request count): the same requests whatever order devices' requests arrive in |
//!
//! `probability` draws from one sequence per rule, so which request gets the action depends on
//! the order requests arrive in; `share` depends only on each device's own requests, so a fleet
//! of concurrent devices sees the same faults on every run.
//!
//! Byte counts are exact. Every applied fault is an event with the rule's index, emitted at the
//! moment the fault takes effect.
//!
//! [`plan::Plan`] turns the rules that fired for a request into response changes and body
//! adapters ([`adapters`]: `Truncate`/`DropAfter` = [`adapters::Cut`], [`adapters::StallAfter`],
//! [`adapters::Throttle`], [`adapters::Corrupt`], [`adapters::Spill`]); handlers only route.

pub mod adapters;
pub mod plan;
mod raw;
mod tamper;
mod values;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use raw::{CorruptRange, FaultFile, RawRule, Scalar, parse_faults_yaml, yaml_error_text};
pub use tamper::{ManifestField, tamper};
pub use values::{
    Amount, LengthLie, Share, glob_match, parse_amount, parse_duration, parse_rate, share_selects,
};

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawRule", into = "RawRule")]
pub struct FaultRule {
    pub matcher: Matcher,
    pub action: Action,
    pub schedule: Schedule,
}

/// Which requests a rule looks at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    /// Path glob (`*` matches any run of characters). Default: any path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Device id (`X-Otarig-Device` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Firmware version the device runs (`X-Otarig-Version` header), e.g. `2.0.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Only the n-th matching request (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nth: Option<u64>,
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    TruncateAt(Amount),
    ContentLength(LengthLie),
    DropAfter {
        bytes: u64,
        reset: bool,
    },
    StallAfter {
        bytes: u64,
        pause: Duration,
    },
    Throttle {
        bytes_per_sec: u64,
    },
    Latency {
        base: Duration,
        jitter: Duration,
    },
    Corrupt {
        offset: u64,
        len: u64,
    },
    Status {
        code: u16,
        retry_after: Option<u64>,
    },
    IgnoreRange,
    BadContentRange,
    SlowHeaders(Duration),
    Serve(String),
    /// Serve the release's manifest with this field changed after signing.
    TamperManifest(ManifestField),
}

/// When a matching request gets the action.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Schedule {
    #[default]
    Always,
    Times(u64),
    Every(u64),
    Probability {
        p: f64,
        seed: u64,
    },
    /// About `percent`% of each device's matching requests, chosen by
    /// [`share_selects`]`(seed, device, n)` for the device's n-th matching request.
    Share {
        percent: f64,
        seed: u64,
    },
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Always => f.write_str("every request"),
            Self::Times(n) => write!(f, "the first {n}"),
            Self::Every(n) => write!(f, "every {n}th"),
            Self::Probability { p, seed } => write!(f, "probability {p} (seed {seed})"),
            Self::Share { percent, seed } => {
                write!(
                    f,
                    "{} of each device's requests (seed {seed})",
                    Share(*percent)
                )
            }
        }
    }
}

/// What a matcher looks at in a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub device: Option<&'a str>,
    pub version: Option<&'a str>,
}

/// Per-rule counters, kept by the server beside the rules.
#[derive(Debug, Clone, Default)]
pub struct RuleState {
    /// Requests that matched the matcher.
    pub seen: u64,
    /// Times the action was applied.
    pub applied: u64,
    /// Times the action took effect (a `fault` event: an `ignore_range` applied to a request
    /// without Range, or a body fault on a body too short to reach it, does not count).
    pub took_effect: u64,
    rng: u64,
    /// `share`: matching requests per device (`""`: requests without a device id).
    per_device: HashMap<String, u64>,
}

impl RuleState {
    pub fn counts(&self) -> RuleCounts {
        RuleCounts {
            matched: self.seen,
            applied: self.applied,
            took_effect: self.took_effect,
        }
    }
}

/// What one rule did so far (`GET /_control/faults` rules, in the same order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCounts {
    /// Requests that matched the rule's matcher.
    pub matched: u64,
    /// Requests its schedule picked (the action was applied).
    pub applied: u64,
    /// Times the action took effect (fault events).
    pub took_effect: u64,
}

impl fmt::Display for FaultRule {
    /// `GET /v1/images/* device=pico-1 nth=2: status=503 retry_after=1, 20% of each device's
    /// requests (seed 0)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.matcher;
        let mut head = Vec::new();
        if let Some(x) = &m.method {
            head.push(x.clone());
        }
        head.push(m.path.clone().unwrap_or_else(|| "*".into()));
        if let Some(d) = &m.device {
            head.push(format!("device={d}"));
        }
        if let Some(v) = &m.version {
            head.push(format!("version={v}"));
        }
        if let Some(n) = m.nth {
            head.push(format!("nth={n}"));
        }
        write!(f, "{}: {}", head.join(" "), self.action)?;
        if let Action::Status {
            retry_after: Some(s),
            ..
        } = self.action
        {
            write!(f, " retry_after={s}")?;
        }
        write!(f, ", {}", self.schedule)
    }
}

impl FaultRule {
    /// Does the action need the connection's real socket? A reset (`drop_after` with
    /// `reset: true`: RST) and a shortened Content-Length (`content_length` below the real
    /// length: the rest of the body is written past HTTP framing, straight to the socket) act
    /// on the socket itself; an in-process connection ([`crate::InProcess`]) cannot express
    /// them.
    pub fn needs_socket(&self) -> bool {
        match &self.action {
            Action::DropAfter { reset, .. } => *reset,
            Action::ContentLength(lie) => !matches!(lie, LengthLie::Plus(_)),
            _ => false,
        }
    }

    /// Does the matcher accept this request (before counting)?
    pub fn matches(&self, req: &RequestInfo<'_>) -> bool {
        let m = &self.matcher;
        m.path.as_deref().is_none_or(|g| glob_match(g, req.path))
            && m.method
                .as_deref()
                .is_none_or(|x| x.eq_ignore_ascii_case(req.method))
            && m.device.as_deref().is_none_or(|d| Some(d) == req.device)
            && m.version.as_deref().is_none_or(|v| Some(v) == req.version)
    }

    /// Counts a matching request and decides whether the action applies to it.
    pub fn fire(&self, req: &RequestInfo<'_>, st: &mut RuleState) -> bool {
        st.seen += 1;
        if self.matcher.nth.is_some_and(|n| n != st.seen) {
            return false;
        }
        let go = match self.schedule {
            Schedule::Always => true,
            Schedule::Times(n) => st.applied < n,
            Schedule::Every(n) => st.seen.is_multiple_of(n),
            Schedule::Probability { p, seed } => {
                if st.rng == 0 {
                    st.rng = seed ^ 0x9E37_79B9_7F4A_7C15;
                }
                // xorshift64*: deterministic per rule and seed.
                st.rng ^= st.rng >> 12;
                st.rng ^= st.rng << 25;
                st.rng ^= st.rng >> 27;
                let x = st.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
                ((x >> 11) as f64 / (1u64 << 53) as f64) < p
            }
            Schedule::Share { percent, seed } => {
                let device = req.device.unwrap_or("");
                let n = match st.per_device.get_mut(device) {
                    Some(n) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        st.per_device.insert(device.to_string(), 1);
                        1
                    }
                };
                share_selects(percent, seed, device, n)
            }
        };
        if go {
            st.applied += 1;
        }
        go
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<FaultRule>, String> {
        parse_faults_yaml(text, "f.yaml").map_err(|e| e.to_string())
    }

    #[test]
    fn parses_every_action() {
        let rules = parse(
            r#"
faults:
  - { match: { path: "/v1/images/*" }, truncate_at: 1000, times: 1 }
  - { truncate_at: "50%" }
  - { content_length: "+100" }
  - { content_length: "-5" }
  - { drop_after: 10, reset: true }
  - { stall_after: 5, for: 2s }
  - { throttle: "64KiB/s" }
  - { latency: 200ms, jitter: 50ms }
  - { corrupt: { offset: 3, len: 2 }, every: 2 }
  - { status: 503, retry_after: 2 }
  - { ignore_range: true }
  - { bad_content_range: true }
  - { slow_headers: 1s }
  - { serve: other.bin, probability: 0.5, seed: 7 }
  - { status: 503, retry_after: 1, share: 20%, seed: 4 }
  - { ignore_range: true, share: "12.5%" }
"#,
        )
        .expect("valid");
        assert_eq!(rules.len(), 16);
        assert_eq!(
            rules[14].schedule,
            Schedule::Share {
                percent: 20.0,
                seed: 4
            }
        );
        assert_eq!(
            rules[15].schedule,
            Schedule::Share {
                percent: 12.5,
                seed: 0
            }
        );
        assert_eq!(rules[0].action, Action::TruncateAt(Amount::Bytes(1000)));
        assert_eq!(rules[0].schedule, Schedule::Times(1));
        assert_eq!(
            rules[6].action,
            Action::Throttle {
                bytes_per_sec: 65536
            }
        );
        assert_eq!(
            rules[13].schedule,
            Schedule::Probability { p: 0.5, seed: 7 }
        );
        // Round trip through the raw form.
        let raw: Vec<RawRule> = rules.iter().cloned().map(RawRule::from).collect();
        let back: Vec<FaultRule> = raw
            .into_iter()
            .map(FaultRule::try_from)
            .collect::<Result<_, _>>()
            .expect("round trip");
        assert_eq!(back, rules);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = parse("faults:\n  - match: { path: /x }\n    truncate_at: 10\n    stall_after: 5\n    for: 1s\n")
            .expect_err("two actions");
        assert!(e.starts_with("f.yaml:2:"), "{e}");
        assert!(e.contains("exactly one action"), "{e}");
        let e = parse("faults:\n  - { truncate_at: \"150%\" }\n").expect_err("bad value");
        assert!(e.starts_with("f.yaml:2:"), "{e}");
        assert!(e.contains("150%"), "{e}");
        let e = parse("faults:\n  - { throttle: fast }\n").expect_err("bad rate");
        assert!(e.contains("fast"), "{e}");
        let e = parse("faults:\n  - { truncate_at: 1, colour: red }\n").expect_err("unknown key");
        assert!(e.starts_with("f.yaml:2:"), "{e}");
        assert!(e.contains("colour"), "{e}");
        let e = parse("faults:\n  - { match: { path: /x } }\n").expect_err("no action");
        assert!(e.contains("no action"), "{e}");
    }

    fn req(device: Option<&str>) -> RequestInfo<'_> {
        RequestInfo {
            method: "GET",
            path: "/v1/images/a.bin",
            device,
            version: None,
        }
    }

    #[test]
    fn schedules_are_deterministic() {
        let rule = |schedule, nth| FaultRule {
            matcher: Matcher {
                nth,
                ..Matcher::default()
            },
            action: Action::IgnoreRange,
            schedule,
        };
        let run = |r: &FaultRule, n: usize| {
            let mut st = RuleState::default();
            (0..n)
                .map(|_| r.fire(&req(None), &mut st))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            run(&rule(Schedule::Times(2), None), 4),
            [true, true, false, false]
        );
        assert_eq!(
            run(&rule(Schedule::Every(2), None), 4),
            [false, true, false, true]
        );
        assert_eq!(
            run(&rule(Schedule::Always, Some(3)), 4),
            [false, false, true, false]
        );
        let p = rule(Schedule::Probability { p: 0.5, seed: 9 }, None);
        let a = run(&p, 200);
        assert_eq!(a, run(&p, 200), "same seed, same choices");
        let hits = a.iter().filter(|&&x| x).count();
        assert!((60..140).contains(&hits), "{hits}");
    }

    /// `share_selects(50.0, 3, "fleet-00001", 1..=10)`, pinned.
    const PINNED: [bool; 10] = [
        false, false, true, true, true, false, true, true, false, true,
    ];

    #[test]
    fn share_is_per_device_and_independent_of_arrival_order() {
        let rule = FaultRule {
            matcher: Matcher::default(),
            action: Action::Status {
                code: 503,
                retry_after: Some(1),
            },
            schedule: Schedule::Share {
                percent: 20.0,
                seed: 11,
            },
        };
        let devices: Vec<String> = (0..200).map(|i| format!("fleet-{i:05}")).collect();
        // Five requests per device, device after device ...
        let mut st = RuleState::default();
        let mut by_device: HashMap<&str, Vec<bool>> = HashMap::new();
        for d in &devices {
            for _ in 0..5 {
                let hit = rule.fire(&req(Some(d)), &mut st);
                by_device.entry(d).or_default().push(hit);
            }
        }
        // ... and round-robin, in reverse: every device sees the same choices.
        let mut st2 = RuleState::default();
        let mut again: HashMap<&str, Vec<bool>> = HashMap::new();
        for _ in 0..5 {
            for d in devices.iter().rev() {
                again
                    .entry(d)
                    .or_default()
                    .push(rule.fire(&req(Some(d)), &mut st2));
            }
        }
        assert_eq!(by_device, again, "arrival order does not matter");
        assert_eq!(st.applied, st2.applied);
        assert_eq!(st.seen, 1000);
        let hits = by_device.values().flatten().filter(|&&x| x).count();
        assert!((150..250).contains(&hits), "about 20% of 1000: {hits}");
        assert_eq!(st.applied, hits as u64);
        // Another seed picks other requests; 0% and 100% are exact.
        let other: usize = devices
            .iter()
            .flat_map(|d| (1..=5).map(move |n| (d, n)))
            .filter(|(d, n)| share_selects(20.0, 11, d, *n) != share_selects(20.0, 12, d, *n))
            .count();
        assert!(other > 100, "{other}");
        assert!((1..=1000).all(|n| !share_selects(0.0, 1, "d", n)));
        assert!((1..=1000).all(|n| share_selects(100.0, 1, "d", n)));
        // Pinned: the choice is part of the format (a report from last year replays).
        let pinned: Vec<bool> = (1..=10)
            .map(|n| share_selects(50.0, 3, "fleet-00001", n))
            .collect();
        assert_eq!(pinned, PINNED);
        // Requests without a device id count as one anonymous device.
        let mut st3 = RuleState::default();
        let anon: Vec<bool> = (0..10).map(|_| rule.fire(&req(None), &mut st3)).collect();
        let direct: Vec<bool> = (1..=10).map(|n| share_selects(20.0, 11, "", n)).collect();
        assert_eq!(anon, direct);
    }

    #[test]
    fn share_is_validated_and_named() {
        let e = parse("faults:\n  - { ignore_range: true, share: 20 }\n").expect_err("bare number");
        assert!(e.starts_with("f.yaml:2:"), "{e}");
        assert!(e.contains("needs a % sign"), "{e}");
        let e = parse("faults:\n  - { ignore_range: true, share: 0.2 }\n").expect_err("fraction");
        assert!(e.contains("needs a % sign"), "{e}");
        let e = parse("faults:\n  - { ignore_range: true, share: 120% }\n").expect_err("over 100");
        assert!(e.contains("120%"), "{e}");
        let e = parse("faults:\n  - { ignore_range: true, share: 20%, times: 3 }\n")
            .expect_err("two schedules");
        assert!(e.contains("at most one of"), "{e}");
        let e = parse("faults:\n  - { ignore_range: true, seed: 3 }\n").expect_err("lone seed");
        assert!(
            e.contains("seed: only goes with probability or share"),
            "{e}"
        );
        let rules = parse(
            "faults:\n  - { match: { path: /v1/images/*, method: GET }, status: 503, retry_after: 1, share: 20%, seed: 2 }\n",
        )
        .expect("valid");
        assert_eq!(
            rules[0].to_string(),
            "GET /v1/images/*: status=503 retry_after=1, 20% of each device's requests (seed 2)"
        );
        let raw = RawRule::from(rules[0].clone());
        assert_eq!(raw.share, Some(Share(20.0)));
        let json = serde_json::to_string(&rules[0]).expect("json");
        assert!(json.contains(r#""share":"20%""#), "{json}");
        let back: FaultRule = serde_json::from_str(&json).expect("back");
        assert_eq!(back, rules[0]);
    }

    #[test]
    fn globs_and_amounts() {
        assert!(glob_match("/v1/images/*", "/v1/images/a.bin"));
        assert!(!glob_match("/v1/images/*", "/v1/manifest/a"));
        assert_eq!(Amount::Percent(50.0).resolve(1001), 500);
        assert_eq!(Amount::Bytes(5000).resolve(100), 100);
        assert_eq!(parse_rate("1MiB/s"), Ok(1 << 20));
        assert!(parse_rate("0B/s").is_err());
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn fault_durations_are_whole_milliseconds_and_read_back_as_they_run() {
        assert_eq!(parse_duration("0.001s"), Ok(Duration::from_millis(1)));
        assert_eq!(parse_duration("1.655s"), Ok(Duration::from_millis(1655)));
        assert_eq!(parse_duration("0.5m"), Ok(Duration::from_secs(30)));
        let err = parse_duration("1.65536s").unwrap_err();
        assert!(err.contains("finer than a millisecond"), "{err}");
        assert!(parse_duration("0.5ms").is_err());
    }
}
