//! Release versions: `major.minor.patch`, each a `u16`.

use core::fmt;
use core::str::FromStr;

/// A release version. Ordering is numeric, field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
    pub patch: u16,
}

impl Version {
    pub const fn new(major: u16, minor: u16, patch: u16) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Encodes as 6 little-endian bytes.
    pub fn to_le_bytes(self) -> [u8; 6] {
        let [a, b] = self.major.to_le_bytes();
        let [c, d] = self.minor.to_le_bytes();
        let [e, f] = self.patch.to_le_bytes();
        [a, b, c, d, e, f]
    }

    /// Decodes 6 little-endian bytes.
    pub fn from_le_bytes(b: [u8; 6]) -> Self {
        Self {
            major: u16::from_le_bytes([b[0], b[1]]),
            minor: u16::from_le_bytes([b[2], b[3]]),
            patch: u16::from_le_bytes([b[4], b[5]]),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Why a version string was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseVersionError {
    Empty,
    /// More than three dot-separated parts.
    TooManyParts,
    /// A part is not a number in `0..=65535`.
    BadNumber,
}

impl fmt::Display for ParseVersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty version",
            Self::TooManyParts => "a version has at most three parts: major.minor.patch",
            Self::BadNumber => "each version part must be a number from 0 to 65535",
        })
    }
}

impl FromStr for Version {
    type Err = ParseVersionError;

    /// Accepts `1`, `1.2`, `1.2.3`, optionally prefixed with `v` (`v2` is `2.0.0`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.strip_prefix('v').unwrap_or(s);
        if s.is_empty() {
            return Err(ParseVersionError::Empty);
        }
        let mut parts = [0u16; 3];
        for (i, part) in s.split('.').enumerate() {
            if i >= 3 {
                return Err(ParseVersionError::TooManyParts);
            }
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseVersionError::BadNumber);
            }
            parts[i] = part.parse().map_err(|_| ParseVersionError::BadNumber)?;
        }
        Ok(Self::new(parts[0], parts[1], parts[2]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_short_and_prefixed_forms() {
        assert_eq!("v2".parse(), Ok(Version::new(2, 0, 0)));
        assert_eq!("1.2".parse(), Ok(Version::new(1, 2, 0)));
        assert_eq!("1.2.3".parse(), Ok(Version::new(1, 2, 3)));
        assert_eq!("".parse::<Version>(), Err(ParseVersionError::Empty));
        assert_eq!(
            "1.2.3.4".parse::<Version>(),
            Err(ParseVersionError::TooManyParts)
        );
        assert_eq!("1.x".parse::<Version>(), Err(ParseVersionError::BadNumber));
        assert_eq!(
            "70000".parse::<Version>(),
            Err(ParseVersionError::BadNumber)
        );
        assert_eq!("+1".parse::<Version>(), Err(ParseVersionError::BadNumber));
    }

    #[test]
    fn orders_numerically_and_round_trips() {
        assert!(Version::new(1, 10, 0) > Version::new(1, 9, 9));
        let v = Version::new(3, 4, 65535);
        assert_eq!(Version::from_le_bytes(v.to_le_bytes()), v);
        assert_eq!(v.to_string(), "3.4.65535");
    }
}
