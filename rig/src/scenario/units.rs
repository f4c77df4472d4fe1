//! Small value types used in scenario files: durations (`300ms`, `1.5s`, `2m`), byte counts or
//! percentages (`1000`, `50%`), comparisons (`>0`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written with a unit: `250ms`, `2s`, `1.5s`, `1m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        fake_server::faults::parse_duration(s).map(Self)
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms >= 3_600_000 && ms.is_multiple_of(3_600_000) {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms >= 60_000 && ms.is_multiple_of(60_000) {
            write!(f, "{}m", ms / 60_000)
        } else if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An amount of bytes, absolute or relative to a total: `1000` or `50%` (the fault rules' type).
pub use fake_server::faults::Amount;

/// A numeric comparison: `0`, `>0`, `>=4096`, `<100`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    Eq(u64),
    Gt(u64),
    Ge(u64),
    Lt(u64),
}

impl Compare {
    pub fn matches(self, v: u64) -> bool {
        match self {
            Self::Eq(n) => v == n,
            Self::Gt(n) => v > n,
            Self::Ge(n) => v >= n,
            Self::Lt(n) => v < n,
        }
    }
}

impl FromStr for Compare {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (ctor, rest): (fn(u64) -> Self, &str) = if let Some(r) = s.strip_prefix(">=") {
            (Self::Ge, r)
        } else if let Some(r) = s.strip_prefix('>') {
            (Self::Gt, r)
        } else if let Some(r) = s.strip_prefix('<') {
            (Self::Lt, r)
        } else {
            (Self::Eq, s.strip_prefix("==").unwrap_or(s))
        };
        rest.trim()
            .parse()
            .map(ctor)
            .map_err(|_| format!("`{s}` is not a comparison like 0, >0, >=4096 or <100"))
    }
}

impl<'de> Deserialize<'de> for Compare {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use fake_server::faults::Scalar;
        match Scalar::deserialize(d)? {
            Scalar::Int(n) => Ok(Self::Eq(n)),
            Scalar::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            "300ms".parse::<Dur>().map(|d| d.0),
            Ok(Duration::from_millis(300))
        );
        assert_eq!(
            "1.5s".parse::<Dur>().map(|d| d.0),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(
            "2m".parse::<Dur>().map(|d| d.0),
            Ok(Duration::from_secs(120))
        );
        assert!("10".parse::<Dur>().is_err());
        assert!("10 parsecs".parse::<Dur>().is_err());
        assert_eq!(Dur(Duration::from_millis(1500)).to_string(), "1500ms");
    }

    #[test]
    fn amounts_and_comparisons() {
        assert_eq!("50%".parse::<Amount>().map(|a| a.resolve(1000)), Ok(500));
        assert_eq!(
            "1000".parse::<Amount>().map(|a| a.resolve(10_000)),
            Ok(1000)
        );
        assert!("150%".parse::<Amount>().is_err());
        assert!(
            ">0".parse::<Compare>()
                .is_ok_and(|c| c.matches(1) && !c.matches(0))
        );
        assert!(">=4".parse::<Compare>().is_ok_and(|c| c.matches(4)));
        assert!("0".parse::<Compare>().is_ok_and(|c| c.matches(0)));
        assert!("x".parse::<Compare>().is_err());
    }
}
