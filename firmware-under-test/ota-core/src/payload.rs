//! The simulated board's application payload: the body of a sim image.
//!
//! A real board's body is machine code; the sim board's "CPU" reads this text header instead
//! and plays the app it describes, including its failure drill:
//!
//! ```text
//! OTARIG-APP 1\n
//! version=2.0.0\n
//! drill=crash-in-init\n
//! \n
//! <deterministic filler up to the body size>
//! ```
//!
//! The entry point of a sim image is the start of its body (`SIM_LOAD_ADDR`), where the
//! `OTARIG-APP` marker must be.

use core::fmt;

use crate::Version;

/// The marker at the entry point.
pub const MARKER: &[u8] = b"OTARIG-APP 1\n";
/// Load address of a sim image body (the sim's flash is mapped from 0x1000_0000 like the RP2040
/// XIP window; the body starts after the 256-byte header).
pub const SIM_LOAD_ADDR: u32 = 0x1000_0100;
/// Longest text header parsed.
const MAX_HEADER: usize = 256;

/// A failure the app plays on purpose (chosen when the image is built).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Drill {
    #[default]
    None,
    /// Panics during init, every boot.
    CrashInInit,
    /// Never brings its network up, so it never checks in.
    NoNetwork,
    /// Stops feeding the watchdog.
    Hang,
    /// Takes a while before it is running.
    SlowBoot,
    /// Panics during init on hardware revision B boards only (a release that works on the
    /// bench and fails on part of the fleet).
    CrashOnRevB,
}

impl Drill {
    /// Does the app crash in init on a board of hardware revision `rev` (`'a'`, `'b'`, ...)?
    pub fn crashes_on(self, rev: char) -> bool {
        match self {
            Self::CrashInInit => true,
            Self::CrashOnRevB => rev.eq_ignore_ascii_case(&'b'),
            _ => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::CrashInInit => "crash-in-init",
            Self::NoNetwork => "no-network",
            Self::Hang => "hang",
            Self::SlowBoot => "slow-boot",
            Self::CrashOnRevB => "crash-on-rev-b",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Self::None,
            "crash-in-init" => Self::CrashInInit,
            "no-network" => Self::NoNetwork,
            "hang" => Self::Hang,
            "slow-boot" => Self::SlowBoot,
            "crash-on-rev-b" => Self::CrashOnRevB,
            _ => return None,
        })
    }
}

/// What the app in a payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppInfo {
    pub version: Version,
    pub drill: Drill,
}

/// Why a payload is not a runnable app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadError {
    /// No `OTARIG-APP` marker at the entry point: nothing to run.
    NoEntry,
    BadField,
}

impl PayloadError {
    /// What the console says (`app: v<ver> crash: <why>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoEntry => "no app at the entry point",
            Self::BadField => "malformed app header",
        }
    }
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses the app header at the start of `body` (the entry point).
pub fn parse(body: &[u8]) -> Result<AppInfo, PayloadError> {
    let rest = body.strip_prefix(MARKER).ok_or(PayloadError::NoEntry)?;
    let text = &rest[..rest.len().min(MAX_HEADER)];
    let mut version = None;
    let mut drill = Drill::None;
    for line in text.split(|&b| b == b'\n') {
        if line.is_empty() {
            break;
        }
        let line = core::str::from_utf8(line).map_err(|_| PayloadError::BadField)?;
        match line.split_once('=') {
            Some(("version", v)) => version = Some(v.parse().map_err(|_| PayloadError::BadField)?),
            Some(("drill", d)) => drill = Drill::from_name(d).ok_or(PayloadError::BadField)?,
            _ => return Err(PayloadError::BadField),
        }
    }
    Ok(AppInfo {
        version: version.ok_or(PayloadError::BadField)?,
        drill,
    })
}

/// Builds a payload of exactly `size` bytes (at least the header).
#[cfg(any(feature = "std", test))]
pub fn build(version: Version, drill: Drill, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(MARKER);
    out.extend_from_slice(format!("version={version}\ndrill={}\n\n", drill.as_str()).as_bytes());
    // Deterministic filler (xorshift), different per version: realistic, incompressible.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D
        ^ (u64::from(version.major) << 32
            | u64::from(version.minor) << 16
            | u64::from(version.patch));
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes()[..(size - out.len()).min(8)]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rev_b_drill_crashes_on_rev_b_boards_only() {
        assert!(Drill::CrashOnRevB.crashes_on('b') && Drill::CrashOnRevB.crashes_on('B'));
        assert!(!Drill::CrashOnRevB.crashes_on('a') && !Drill::CrashOnRevB.crashes_on('c'));
        assert!(Drill::CrashInInit.crashes_on('a') && Drill::CrashInInit.crashes_on('b'));
        for d in [Drill::None, Drill::NoNetwork, Drill::Hang, Drill::SlowBoot] {
            assert!(!d.crashes_on('a') && !d.crashes_on('b'), "{d:?}");
        }
    }

    #[test]
    fn why_an_app_cannot_run_is_said_in_words() {
        // The `app: v<ver> crash: <why>` line (CONSOLE.md).
        assert_eq!(parse(b"\x00\x01 no marker"), Err(PayloadError::NoEntry));
        assert_eq!(
            PayloadError::NoEntry.to_string(),
            "no app at the entry point"
        );
        let mut bad = MARKER.to_vec();
        bad.extend_from_slice(b"version=one\n\n");
        assert_eq!(parse(&bad), Err(PayloadError::BadField));
        assert_eq!(PayloadError::BadField.to_string(), "malformed app header");
    }

    /// The filler after the app header of a 4 KiB payload of `version`.
    fn filler(version: Version) -> Vec<u8> {
        let body = build(version, Drill::None, 4096);
        let at = body
            .windows(2)
            .position(|w| w == b"\n\n")
            .expect("header end")
            + 2;
        body[at..].to_vec()
    }

    #[test]
    fn the_filler_is_reproducible_incompressible_and_differs_per_version() {
        // The same release builds the same bytes on every machine and in every rig version
        // (xorshift64 13/7/17 seeded with the version): pinned by its hash.
        let body = build(Version::new(1, 0, 0), Drill::None, 4099);
        assert_eq!(body.len(), 4099);
        assert_eq!(
            crate::sha256(&body)[..8],
            [0xC8, 0x6B, 0x7C, 0x14, 0x45, 0x16, 0x8F, 0x73]
        );
        // Incompressible: every byte value, none much more often than the others.
        let f = filler(Version::new(1, 0, 0));
        let mut counts = [0usize; 256];
        for b in &f {
            counts[usize::from(*b)] += 1;
        }
        assert!(
            counts.iter().all(|&c| c > 0 && c < f.len() / 64),
            "{counts:?}"
        );
        // Each part of the version changes (almost) every byte.
        for other in [(1, 0, 1), (1, 1, 0), (2, 0, 0)] {
            let g = filler(Version::new(other.0, other.1, other.2));
            let same = f.iter().zip(&g).filter(|(a, b)| a == b).count();
            assert!(same < f.len() / 64, "{other:?}: {same} bytes alike");
        }
    }

    #[test]
    fn round_trip() {
        let body = build(Version::new(2, 1, 0), Drill::Hang, 4096);
        assert_eq!(body.len(), 4096);
        assert_eq!(
            parse(&body),
            Ok(AppInfo {
                version: Version::new(2, 1, 0),
                drill: Drill::Hang
            })
        );
        assert_eq!(parse(&body[1..]), Err(PayloadError::NoEntry));
        assert_ne!(
            build(Version::new(1, 0, 0), Drill::None, 100),
            build(Version::new(2, 0, 0), Drill::None, 100)
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let mut body = MARKER.to_vec();
            body.extend_from_slice(&tail);
            let _ = parse(&body);
            let _ = parse(&tail);
        }
    }
}
