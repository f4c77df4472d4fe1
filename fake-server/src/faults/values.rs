//! Values in fault rules: shares, byte amounts, length lies, durations, rates, globs, and how
//! an action reads back (`Display`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Action;
use super::raw::Scalar;

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
            Self::TamperManifest(field) => write!(f, "tamper_manifest={field}"),
        }
    }
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
    // Faults run, and the control API shows them, in whole milliseconds: a finer duration
    // would run as one value and read back as another.
    let ms = secs * 1000.0;
    let whole = ms.round();
    if (ms - whole).abs() > 1e-6 {
        return Err(format!(
            "duration `{s}` is finer than a millisecond (fault durations are whole ms)"
        ));
    }
    Ok(Duration::from_millis(whole as u64))
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
