//! The rule as written in YAML/JSON ([`RawRule`]), its checked conversion into a
//! [`FaultRule`] (one action, one schedule) and back, and fault files.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::values::{Amount, LengthLie, Share, parse_amount, parse_duration, parse_rate};
use super::{Action, FaultRule, ManifestField, Matcher, Schedule};

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
    pub tamper_manifest: Option<ManifestField>,
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
        if let Some(field) = r.tamper_manifest {
            actions.push(Action::TamperManifest(field));
        }
        let action = match actions.len() {
            1 => actions.remove(0),
            0 => {
                return Err("no action: give exactly one of truncate_at, content_length, drop_after, stall_after, throttle, latency, corrupt, status, ignore_range, bad_content_range, slow_headers, serve, tamper_manifest".into());
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
            Action::TamperManifest(field) => r.tamper_manifest = Some(field),
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
