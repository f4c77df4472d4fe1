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

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

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
    DropAfter { bytes: u64, reset: bool },
    StallAfter { bytes: u64, pause: Duration },
    Throttle { bytes_per_sec: u64 },
    Latency { base: Duration, jitter: Duration },
    Corrupt { offset: u64, len: u64 },
    Status { code: u16, retry_after: Option<u64> },
    IgnoreRange,
    BadContentRange,
    SlowHeaders(Duration),
    Serve(String),
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

/// A share of requests, written `20%` (`percent` is 0..=100).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share(pub f64);

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl Serialize for Share {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Share {
    /// `"20%"` or `12.5%`; a bare number is refused (is `0.2` a fifth or 0.2%?).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Share;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a percentage like 20%")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Share, E> {
                s.trim()
                    .strip_suffix('%')
                    .and_then(|n| n.trim().parse::<f64>().ok())
                    .filter(|n| (0.0..=100.0).contains(n))
                    .map(Share)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "share: `{s}` is not a percentage between 0% and 100% (e.g. 20%)"
                        ))
                    })
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Share, E> {
                Err(E::custom(format!(
                    "share: `{n}` needs a % sign (e.g. {n}%)"
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Share, E> {
                Err(E::custom(format!(
                    "share: `{n}` is not a percentage between 0% and 100% (e.g. 20%)"
                )))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Share, E> {
                Err(E::custom(format!(
                    "share: `{n}` needs a % sign (e.g. 20% for a fifth of the requests)"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// Does a `share` rule select a device's `n`-th matching request (1-based)? A hash of
/// (seed, device, n) below `percent`% of the hash range: stable across runs, platforms and
/// Rust versions, and independent of how different devices' requests interleave.
pub fn share_selects(percent: f64, seed: u64, device: &str, n: u64) -> bool {
    // FNV-1a over the device id, then splitmix64 finalisers to mix in seed and n.
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in device.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    let x = mix64(mix64(h ^ seed) ^ n);
    let limit = (percent.clamp(0.0, 100.0) / 100.0 * (1u64 << 53) as f64) as u64;
    (x >> 11) < limit
}

fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Bytes or a percentage of the body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    Bytes(u64),
    Percent(f64),
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes(n) => write!(f, "{n}"),
            Self::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl std::str::FromStr for Amount {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_amount(s)
    }
}

impl<'de> Deserialize<'de> for Amount {
    /// `1000` or `"50%"`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Scalar::deserialize(d)? {
            Scalar::Int(n) => Ok(Self::Bytes(n)),
            Scalar::Text(t) => parse_amount(&t).map_err(serde::de::Error::custom),
        }
    }
}

impl Amount {
    /// Bytes out of `total` (a byte count is capped at `total`).
    pub fn resolve(self, total: u64) -> u64 {
        match self {
            Self::Bytes(n) => n.min(total),
            Self::Percent(p) => ((total as f64) * p / 100.0).floor() as u64,
        }
    }
}

/// A wrong Content-Length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LengthLie {
    Plus(u64),
    Minus(u64),
    Exactly(u64),
}

impl LengthLie {
    pub fn apply(self, real: u64) -> u64 {
        match self {
            Self::Plus(n) => real.saturating_add(n),
            Self::Minus(n) => real.saturating_sub(n),
            Self::Exactly(n) => n,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TruncateAt(Amount::Bytes(n)) => write!(f, "truncate_at={n}"),
            Self::TruncateAt(Amount::Percent(p)) => write!(f, "truncate_at={p}%"),
            Self::ContentLength(LengthLie::Plus(n)) => write!(f, "content_length=+{n}"),
            Self::ContentLength(LengthLie::Minus(n)) => write!(f, "content_length=-{n}"),
            Self::ContentLength(LengthLie::Exactly(n)) => write!(f, "content_length={n}"),
            Self::DropAfter { bytes, reset } => {
                write!(
                    f,
                    "drop_after={bytes}{}",
                    if *reset { " (RST)" } else { "" }
                )
            }
            Self::StallAfter { bytes, pause } => write!(f, "stall_after={bytes} for {pause:?}"),
            Self::Throttle { bytes_per_sec } => write!(f, "throttle={bytes_per_sec}B/s"),
            Self::Latency { base, jitter } => write!(f, "latency={base:?}±{jitter:?}"),
            Self::Corrupt { offset, len } => write!(f, "corrupt={offset}+{len}"),
            Self::Status { code, .. } => write!(f, "status={code}"),
            Self::IgnoreRange => f.write_str("ignore_range"),
            Self::BadContentRange => f.write_str("bad_content_range"),
            Self::SlowHeaders(d) => write!(f, "slow_headers={d:?}"),
            Self::Serve(file) => write!(f, "serve={file}"),
        }
    }
}

/// The rule as written in YAML/JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(rename = "match", default)]
    pub matcher: Matcher,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate_at: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_length: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_after: Option<u64>,
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<CorruptRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_range: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_content_range: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_headers: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serve: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<Share>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// A number or a string in YAML (`1000`, `"50%"`, `"+100"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Int(u64),
    Text(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(n) => write!(f, "{n}"),
            Self::Text(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorruptRange {
    pub offset: u64,
    pub len: u64,
}

/// Parses `500ms`, `2s`, `1.5s`, `1m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("duration `{s}` needs a unit: ms, s or m (e.g. 500ms, 2s)"))?;
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 500ms, 2s, 1.5s, 1m)"))?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` (use ms, s, m or h)"
            ));
        }
    };
    if !secs.is_finite() || !(0.0..=604_800.0).contains(&secs) {
        return Err(format!("duration `{s}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `1000` or `50%`.
pub fn parse_amount(s: &str) -> Result<Amount, String> {
    let s = s.trim();
    if let Some(p) = s.strip_suffix('%') {
        let p: f64 = p
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a percentage"))?;
        if !(0.0..=100.0).contains(&p) {
            return Err(format!("percentage `{s}` must be between 0% and 100%"));
        }
        Ok(Amount::Percent(p))
    } else {
        s.parse()
            .map(Amount::Bytes)
            .map_err(|_| format!("`{s}` is neither a byte count nor a percentage like 50%"))
    }
}

/// Parses `64KiB/s`, `1MiB/s`, `500B/s`, `1000/s`.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let body = t
        .strip_suffix("/s")
        .ok_or_else(|| format!("rate `{t}` must end in /s (e.g. 64KiB/s)"))?;
    let split = body
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(body.len());
    let (num, unit) = body.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("rate `{t}` needs a number (e.g. 64KiB/s)"))?;
    let mult = match unit {
        "" | "B" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        "kB" | "KB" => 1000,
        "MB" => 1_000_000,
        other => {
            return Err(format!(
                "unknown rate unit `{other}` (use B, KiB, MiB, kB, MB)"
            ));
        }
    };
    match n.checked_mul(mult) {
        Some(0) | None => Err(format!("rate `{t}` must be above zero")),
        Some(r) => Ok(r),
    }
}

impl TryFrom<RawRule> for FaultRule {
    type Error = String;

    fn try_from(r: RawRule) -> Result<Self, String> {
        let dur = |field: &str, v: &Option<String>| -> Result<Option<Duration>, String> {
            v.as_deref()
                .map(|s| parse_duration(s).map_err(|e| format!("{field}: {e}")))
                .transpose()
        };
        let mut actions: Vec<Action> = Vec::new();
        if let Some(v) = &r.truncate_at {
            let a = match v {
                Scalar::Int(n) => Amount::Bytes(*n),
                Scalar::Text(s) => parse_amount(s).map_err(|e| format!("truncate_at: {e}"))?,
            };
            actions.push(Action::TruncateAt(a));
        }
        if let Some(v) = &r.content_length {
            let lie = match v {
                Scalar::Int(n) => LengthLie::Exactly(*n),
                Scalar::Text(s) => {
                    let s = s.trim();
                    let num = |t: &str| {
                        t.trim().parse::<u64>().map_err(|_| {
                            format!("content_length: `{s}` must be \"+N\", \"-N\" or a byte count")
                        })
                    };
                    if let Some(t) = s.strip_prefix('+') {
                        LengthLie::Plus(num(t)?)
                    } else if let Some(t) = s.strip_prefix('-') {
                        LengthLie::Minus(num(t)?)
                    } else {
                        LengthLie::Exactly(num(s)?)
                    }
                }
            };
            actions.push(Action::ContentLength(lie));
        }
        if let Some(bytes) = r.drop_after {
            actions.push(Action::DropAfter {
                bytes,
                reset: r.reset.unwrap_or(false),
            });
        } else if r.reset.is_some() {
            return Err("reset: only goes with drop_after".into());
        }
        if let Some(bytes) = r.stall_after {
            let pause = dur("for", &r.for_)?.ok_or("stall_after: needs `for: DURATION`")?;
            actions.push(Action::StallAfter { bytes, pause });
        } else if r.for_.is_some() {
            return Err("for: only goes with stall_after".into());
        }
        if let Some(t) = &r.throttle {
            actions.push(Action::Throttle {
                bytes_per_sec: parse_rate(t).map_err(|e| format!("throttle: {e}"))?,
            });
        }
        if let Some(base) = dur("latency", &r.latency)? {
            actions.push(Action::Latency {
                base,
                jitter: dur("jitter", &r.jitter)?.unwrap_or_default(),
            });
        } else if r.jitter.is_some() {
            return Err("jitter: only goes with latency".into());
        }
        if let Some(c) = r.corrupt {
            if c.len == 0 {
                return Err("corrupt: len must be at least 1".into());
            }
            actions.push(Action::Corrupt {
                offset: c.offset,
                len: c.len,
            });
        }
        if let Some(code) = r.status {
            if !(100..=599).contains(&code) {
                return Err(format!("status: {code} is not an HTTP status"));
            }
            actions.push(Action::Status {
                code,
                retry_after: r.retry_after,
            });
        } else if r.retry_after.is_some() {
            return Err("retry_after: only goes with status".into());
        }
        match r.ignore_range {
            Some(true) => actions.push(Action::IgnoreRange),
            Some(false) => return Err("ignore_range: write `true` or leave it out".into()),
            None => {}
        }
        match r.bad_content_range {
            Some(true) => actions.push(Action::BadContentRange),
            Some(false) => return Err("bad_content_range: write `true` or leave it out".into()),
            None => {}
        }
        if let Some(d) = dur("slow_headers", &r.slow_headers)? {
            actions.push(Action::SlowHeaders(d));
        }
        if let Some(file) = &r.serve {
            if file.is_empty() || file.contains('/') || file.contains("..") {
                return Err(format!(
                    "serve: `{file}` must be a file name in the image directory"
                ));
            }
            actions.push(Action::Serve(file.clone()));
        }
        let action = match actions.len() {
            1 => actions.remove(0),
            0 => {
                return Err("no action: give exactly one of truncate_at, content_length, drop_after, stall_after, throttle, latency, corrupt, status, ignore_range, bad_content_range, slow_headers, serve".into());
            }
            n => {
                let names: Vec<String> = actions.iter().map(|a| a.to_string()).collect();
                return Err(format!(
                    "{n} actions in one rule ({}): a rule has exactly one action; write one rule per action",
                    names.join(", ")
                ));
            }
        };
        let schedule = match (r.times, r.every, r.probability, r.share) {
            (None, None, None, None) => {
                if r.seed.is_some() {
                    return Err("seed: only goes with probability or share".into());
                }
                Schedule::Always
            }
            (Some(0), None, None, None) => return Err("times: must be at least 1".into()),
            (Some(n), None, None, None) => Schedule::Times(n),
            (None, Some(0), None, None) => return Err("every: must be at least 1".into()),
            (None, Some(n), None, None) => Schedule::Every(n),
            (None, None, Some(p), None) if (0.0..=1.0).contains(&p) => Schedule::Probability {
                p,
                seed: r.seed.unwrap_or(0),
            },
            (None, None, Some(p), None) => {
                return Err(format!("probability: {p} is not in 0..=1"));
            }
            (None, None, None, Some(Share(percent))) => Schedule::Share {
                percent,
                seed: r.seed.unwrap_or(0),
            },
            _ => return Err("give at most one of times, every, probability, share".into()),
        };
        if r.matcher.nth == Some(0) {
            return Err("match.nth: counts from 1".into());
        }
        Ok(Self {
            matcher: r.matcher,
            action,
            schedule,
        })
    }
}

impl From<FaultRule> for RawRule {
    fn from(f: FaultRule) -> Self {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let mut r = RawRule {
            matcher: f.matcher,
            ..RawRule::default()
        };
        match f.action {
            Action::TruncateAt(Amount::Bytes(n)) => r.truncate_at = Some(Scalar::Int(n)),
            Action::TruncateAt(Amount::Percent(p)) => {
                r.truncate_at = Some(Scalar::Text(format!("{p}%")))
            }
            Action::ContentLength(LengthLie::Plus(n)) => {
                r.content_length = Some(Scalar::Text(format!("+{n}")))
            }
            Action::ContentLength(LengthLie::Minus(n)) => {
                r.content_length = Some(Scalar::Text(format!("-{n}")))
            }
            Action::ContentLength(LengthLie::Exactly(n)) => r.content_length = Some(Scalar::Int(n)),
            Action::DropAfter { bytes, reset } => {
                r.drop_after = Some(bytes);
                r.reset = Some(reset);
            }
            Action::StallAfter { bytes, pause } => {
                r.stall_after = Some(bytes);
                r.for_ = Some(ms(pause));
            }
            Action::Throttle { bytes_per_sec } => r.throttle = Some(format!("{bytes_per_sec}B/s")),
            Action::Latency { base, jitter } => {
                r.latency = Some(ms(base));
                r.jitter = Some(ms(jitter));
            }
            Action::Corrupt { offset, len } => r.corrupt = Some(CorruptRange { offset, len }),
            Action::Status { code, retry_after } => {
                r.status = Some(code);
                r.retry_after = retry_after;
            }
            Action::IgnoreRange => r.ignore_range = Some(true),
            Action::BadContentRange => r.bad_content_range = Some(true),
            Action::SlowHeaders(d) => r.slow_headers = Some(ms(d)),
            Action::Serve(file) => r.serve = Some(file),
        }
        match f.schedule {
            Schedule::Always => {}
            Schedule::Times(n) => r.times = Some(n),
            Schedule::Every(n) => r.every = Some(n),
            Schedule::Probability { p, seed } => {
                r.probability = Some(p);
                r.seed = Some(seed);
            }
            Schedule::Share { percent, seed } => {
                r.share = Some(Share(percent));
                r.seed = Some(seed);
            }
        }
        r
    }
}

/// The `--faults` file: `faults: [rules]`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultFile {
    #[serde(default)]
    pub faults: Vec<FaultRule>,
}

/// Parses a fault file's text; `origin` names it in errors (`file:line:col: message`).
pub fn parse_faults_yaml(text: &str, origin: &str) -> Result<Vec<FaultRule>, crate::Error> {
    serde_saphyr::from_str::<FaultFile>(text)
        .map(|f| f.faults)
        .map_err(|e| crate::Error::Faults(yaml_error_text(&e, origin)))
}

/// `origin:line:col: message` plus serde-saphyr's snippet.
pub fn yaml_error_text(e: &serde_saphyr::Error, origin: &str) -> String {
    let (line, col) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    let rendered = e.to_string();
    let mut lines = rendered.lines();
    let first = lines.next().unwrap_or_default();
    let message = first
        .split_once(": ")
        .and_then(|(_, rest)| rest.split_once(": ").map(|(_, m)| m))
        .unwrap_or(first);
    let rest: Vec<&str> = lines.collect();
    format!(
        "{origin}:{line}:{col}: {}\n{}",
        clip(message),
        clip(&rest.join("\n").replace("<input>", origin))
    )
}

/// Longest part of an error message that echoes the input.
const MAX_ECHO: usize = 400;

/// `s`, cut at a character boundary to [`MAX_ECHO`] bytes (an error never echoes a huge input
/// whole).
fn clip(s: &str) -> String {
    if s.len() <= MAX_ECHO {
        return s.to_string();
    }
    let mut end = MAX_ECHO;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes more)", &s[..end], s.len() - end)
}

/// Glob with `*` wildcards.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti, mut star, mut mark) = (0usize, 0usize, None, 0usize);
    while ti < t.len() {
        if pi < p.len() && p[pi] != b'*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
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
}
