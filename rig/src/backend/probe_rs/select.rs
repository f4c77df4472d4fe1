//! Which connected probe a bench selector (`VID:PID[:SERIAL]`) means: a pure function over a
//! plain probe list, so the rules are tested without hardware.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::board::probe::Error;

/// A connected debug probe, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeInfo {
    pub vid: u16,
    pub pid: u16,
    pub serial: Option<String>,
    /// The probe's product name (`Debugprobe on Pico (CMSIS-DAP)`).
    pub identifier: String,
    /// Whether this user may open its USB device (false: a udev rule is missing).
    pub accessible: bool,
}

impl fmt::Display for ProbeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({:04x}:{:04x} serial {})",
            self.identifier,
            self.vid,
            self.pid,
            self.serial.as_deref().unwrap_or("none")
        )?;
        if !self.accessible {
            f.write_str(", no access")?;
        }
        Ok(())
    }
}

/// Whether `probe` is one `selector` means: same VID and PID, and the same serial number
/// (ignoring ASCII case: serials are usually hex) when the selector names one.
pub fn matches(selector: &ProbeSelector, probe: &ProbeInfo) -> bool {
    selector.vid == probe.vid
        && selector.pid == probe.pid
        && selector.serial.as_deref().is_none_or(|want| {
            probe
                .serial
                .as_deref()
                .is_some_and(|have| have.eq_ignore_ascii_case(want))
        })
}

/// The index in `probes` of the one probe `selector` means.
///
/// A probe listed twice with the same serial (several drivers or interfaces) counts once;
/// probes without a serial number never merge. No match is [`Error::NotFound`] (listing the
/// probes seen), several are [`Error::Ambiguous`] (naming the candidates), one that this user
/// cannot open is [`Error::PermissionDenied`].
pub fn select(selector: &ProbeSelector, probes: &[ProbeInfo]) -> Result<usize, Error> {
    let mut hits: Vec<usize> = Vec::new();
    for (i, p) in probes.iter().enumerate() {
        if !matches(selector, p) {
            continue;
        }
        let duplicate = p.serial.is_some()
            && hits
                .iter()
                .any(|&h| probes[h].serial == p.serial && probes[h].identifier == p.identifier);
        if !duplicate {
            hits.push(i);
        }
    }
    match hits.as_slice() {
        [] => Err(Error::NotFound {
            selector: selector.to_string(),
            vid: selector.vid,
            pid: selector.pid,
            seen: if probes.is_empty() {
                "; no probes connected".into()
            } else {
                format!("; probes seen: {}", join(probes.iter()))
            },
        }),
        [one] => {
            let p = &probes[*one];
            if p.accessible {
                Ok(*one)
            } else {
                Err(Error::PermissionDenied {
                    selector: selector.to_string(),
                    vid: p.vid,
                    pid: p.pid,
                    detail: format!("found {p}"),
                })
            }
        }
        many => Err(Error::Ambiguous {
            selector: selector.to_string(),
            count: many.len(),
            candidates: join(many.iter().map(|&i| &probes[i])),
        }),
    }
}

fn join<'a>(probes: impl Iterator<Item = &'a ProbeInfo>) -> String {
    probes
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A debug probe selector: `VID:PID[:SERIAL]`, hexadecimal ids.
///
/// ```
/// use rig::backend::probe_rs::select::ProbeSelector;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(vid: u16, pid: u16, serial: Option<&str>) -> ProbeInfo {
        ProbeInfo {
            vid,
            pid,
            serial: serial.map(str::to_string),
            identifier: "Debugprobe on Pico (CMSIS-DAP)".into(),
            accessible: true,
        }
    }

    fn sel(s: &str) -> ProbeSelector {
        s.parse().expect("valid selector")
    }

    #[test]
    fn vid_pid_match_without_serial() {
        let probes = [
            probe(0x0483, 0x374b, Some("X")),
            probe(0x2e8a, 0x000c, Some("E661")),
        ];
        assert_eq!(select(&sel("2e8a:000c"), &probes).ok(), Some(1));
        assert!(!matches(&sel("2e8a:000d"), &probes[1]));
        assert!(!matches(&sel("2e8b:000c"), &probes[1]));
    }

    #[test]
    fn serial_match_and_mismatch() {
        let probes = [
            probe(0x2e8a, 0x000c, Some("E6614103E7")),
            probe(0x2e8a, 0x000c, Some("E6614103AA")),
        ];
        assert_eq!(select(&sel("2e8a:000c:E6614103AA"), &probes).ok(), Some(1));
        let e = select(&sel("2e8a:000c:0000"), &probes).expect_err("no such serial");
        assert!(matches!(e, Error::NotFound { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("E6614103E7") && text.contains("E6614103AA"),
            "{text}"
        );
        // A selector with a serial never matches a probe without one.
        assert!(!matches(
            &sel("2e8a:000c:E661"),
            &probe(0x2e8a, 0x000c, None)
        ));
    }

    #[test]
    fn hex_and_serials_ignore_case() {
        let probes = [probe(0x2e8a, 0x000c, Some("e6614103e7"))];
        assert_eq!(select(&sel("2E8A:000C:E6614103E7"), &probes).ok(), Some(0));
    }

    #[test]
    fn several_probes_are_ambiguous_and_named() {
        let probes = [
            probe(0x2e8a, 0x000c, Some("AAA")),
            probe(0x0483, 0x374b, Some("ST")),
            probe(0x2e8a, 0x000c, Some("BBB")),
        ];
        let e = select(&sel("2e8a:000c"), &probes).expect_err("two match");
        let text = e.to_string();
        assert!(matches!(e, Error::Ambiguous { count: 2, .. }), "{text}");
        assert!(
            text.contains("serial AAA") && text.contains("serial BBB"),
            "{text}"
        );
        assert!(!text.contains("serial ST"), "{text}");
        assert!(text.contains("VID:PID:SERIAL"), "{text}");
    }

    #[test]
    fn the_same_probe_listed_twice_counts_once_but_serialless_twins_do_not() {
        let twice = [
            probe(0x2e8a, 0x000c, Some("AAA")),
            probe(0x2e8a, 0x000c, Some("AAA")),
        ];
        assert_eq!(select(&sel("2e8a:000c"), &twice).ok(), Some(0));
        let twins = [probe(0x2e8a, 0x000c, None), probe(0x2e8a, 0x000c, None)];
        assert!(matches!(
            select(&sel("2e8a:000c"), &twins),
            Err(Error::Ambiguous { count: 2, .. })
        ));
    }

    #[test]
    fn nothing_connected_says_what_to_check() {
        let e = select(&sel("2e8a:000c"), &[]).expect_err("nothing");
        let text = e.to_string();
        assert!(
            text.starts_with("no debug probe found matching 2e8a:000c: is it plugged in"),
            "{text}"
        );
        assert!(text.contains("udev rule for 2e8a:000c") && text.contains("no probes connected"));
    }

    #[test]
    fn an_inaccessible_probe_is_a_permission_problem() {
        let mut p = probe(0x2e8a, 0x000c, Some("AAA"));
        p.accessible = false;
        let e = select(&sel("2e8a:000c"), &[p]).expect_err("no access");
        let text = e.to_string();
        assert!(matches!(e, Error::PermissionDenied { .. }), "{text}");
        assert!(
            text.contains("udev rule for 2e8a:000c") && text.contains("plugdev"),
            "{text}"
        );
    }
}
