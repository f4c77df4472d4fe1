//! `bench.yaml`: the boards on a bench and how to reach them (labgrid's "resources").
//!
//! ```yaml
//! boards:
//!   pico-1:
//!     kind: pico-w
//!     labels: [wifi, rp2040]
//!     power:   { relay: { gpio: 17, active_low: true, min_off: 500ms, safe: off } }
//!     console: { serial: { port: /dev/serial/by-id/usb-Raspberry_Pi_Debug_Probe-if01, baud: 115200 } }
//!     probe:   { probe_rs: { selector: "2e8a:000c", chip: RP2040 } }
//! ```
//!
//! Backends are closed enums matched exhaustively: a typo is a parse error with its location,
//! never a run-time surprise.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use crate::backend::relay::SafeState;
use crate::scenario::Dur;

/// A parsed bench file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bench {
    pub boards: BTreeMap<String, BoardConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardConfig {
    pub kind: String,
    #[serde(default)]
    pub labels: Vec<String>,
    pub power: PowerConfig,
    pub console: ConsoleConfig,
    #[serde(default)]
    pub probe: Option<ProbeConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PowerConfig {
    /// A relay on a Raspberry Pi GPIO line (BCM numbering).
    Relay {
        gpio: u8,
        #[serde(default)]
        active_low: bool,
        #[serde(default)]
        min_off: Option<Dur>,
        #[serde(default)]
        safe: Option<SafeState>,
    },
    /// The simulated board's process.
    Sim {},
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ConsoleConfig {
    Serial {
        port: String,
        #[serde(default = "default_baud")]
        baud: u32,
    },
    /// The sim board's stdout.
    Sim {},
    /// The sim board's console through a pseudo-terminal and the serial backend.
    SimPty {},
}

fn default_baud() -> u32 {
    115_200
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ProbeConfig {
    ProbeRs {
        selector: ProbeSelector,
        chip: String,
    },
}

/// A debug probe selector: `VID:PID[:SERIAL]`, hexadecimal ids.
///
/// ```
/// use rig::bench::ProbeSelector;
/// let s: ProbeSelector = "2e8a:000c:E6614103E7".parse().unwrap();
/// assert_eq!((s.vid, s.pid, s.serial.as_deref()), (0x2e8a, 0x000c, Some("E6614103E7")));
/// assert!("2e8a".parse::<ProbeSelector>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSelector {
    pub vid: u16,
    pub pid: u16,
    pub serial: Option<String>,
}

impl FromStr for ProbeSelector {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.splitn(3, ':');
        let hex = |p: Option<&str>, what: &str| {
            p.filter(|x| !x.is_empty())
                .and_then(|x| u16::from_str_radix(x, 16).ok())
                .ok_or_else(|| {
                    format!("probe selector `{s}`: {what} must be 4 hex digits (VID:PID[:SERIAL])")
                })
        };
        Ok(Self {
            vid: hex(parts.next(), "the vendor id")?,
            pid: hex(parts.next(), "the product id")?,
            serial: parts.next().filter(|x| !x.is_empty()).map(str::to_string),
        })
    }
}

impl fmt::Display for ProbeSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vid, self.pid)?;
        if let Some(s) = &self.serial {
            write!(f, ":{s}")?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for ProbeSelector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Bench file problems (a configuration error: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] crate::scenario::Error),
    #[error("{path}: no board matches `{selector}` (names: {names})")]
    NoMatch {
        path: PathBuf,
        selector: String,
        names: String,
    },
}

/// Reads and validates a bench file.
pub fn load(path: &Path) -> Result<Bench, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

pub fn parse(text: &str, path: &Path) -> Result<Bench, Error> {
    serde_saphyr::from_str::<Bench>(text)
        .map_err(|e| Error::Invalid(crate::scenario::yaml_error(&e, text, path)))
}

impl Bench {
    /// Boards whose name or one of whose labels is `selector`.
    pub fn select(&self, selector: &str) -> Vec<(&str, &BoardConfig)> {
        self.boards
            .iter()
            .filter(|(name, b)| *name == selector || b.labels.iter().any(|l| l == selector))
            .map(|(n, b)| (n.as_str(), b))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "boards:\n  pico-1:\n    kind: pico-w\n    labels: [wifi, rp2040]\n    power: { relay: { gpio: 17, active_low: true, min_off: 500ms, safe: off } }\n    console: { serial: { port: /dev/serial/by-id/x-if01 } }\n    probe: { probe_rs: { selector: \"2e8a:000c\", chip: RP2040 } }\n  sim-1:\n    kind: sim\n    power: { sim: {} }\n    console: { sim_pty: {} }\n";

    #[test]
    fn parses_and_selects() {
        let b = parse(GOOD, Path::new("bench.yaml")).expect("valid");
        assert_eq!(b.boards.len(), 2);
        assert!(matches!(
            b.boards["pico-1"].power,
            PowerConfig::Relay {
                gpio: 17,
                active_low: true,
                ..
            }
        ));
        assert!(matches!(
            &b.boards["pico-1"].console,
            ConsoleConfig::Serial { baud: 115_200, .. }
        ));
        assert_eq!(b.select("rp2040").len(), 1);
        assert_eq!(b.select("sim-1").len(), 1);
        assert!(b.select("nope").is_empty());
    }

    #[test]
    fn errors_are_located() {
        let bad = GOOD.replace("gpio: 17", "gpio: 17, colour: red");
        let e = parse(&bad, Path::new("bench.yaml"))
            .expect_err("unknown key")
            .to_string();
        assert!(e.starts_with("bench.yaml:5:"), "{e}");
        let bad = GOOD.replace("relay:", "smart_plug:");
        let e = parse(&bad, Path::new("bench.yaml"))
            .expect_err("unknown backend")
            .to_string();
        assert!(
            e.starts_with("bench.yaml:5:") && e.contains("smart_plug"),
            "{e}"
        );
        let bad = GOOD.replace("2e8a:000c", "2e8a");
        let e = parse(&bad, Path::new("bench.yaml"))
            .expect_err("bad selector")
            .to_string();
        assert!(
            e.starts_with("bench.yaml:7:") && e.contains("VID:PID"),
            "{e}"
        );
        let bad = GOOD.replace("safe: off", "safe: maybe");
        assert!(parse(&bad, Path::new("bench.yaml")).is_err());
    }
}
