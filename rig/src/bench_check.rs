//! `rig bench-check`: probe the hardware of a bench before trusting it with scenarios —
//! click each relay, check each console says something after power-on, look for probes.
//! Every problem is an infrastructure problem with what to fix.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::backend::relay::{RelayConfig, RelaySwitch, SafeState};
use crate::bench::{Bench, ConsoleConfig, PowerConfig};
use crate::board::{ConsolePort, PowerSwitch};

/// What the check found.
#[derive(Debug, Default)]
pub struct CheckSummary {
    pub boards: usize,
    pub problems: Vec<String>,
}

/// Checks every board of `bench`, reporting to `out`.
pub fn run(bench: &Bench, out: &mut dyn Write) -> std::io::Result<CheckSummary> {
    let mut summary = CheckSummary::default();
    // `bench::parse` refuses such a bench; one built in code must not pass as checked either.
    if bench.boards.is_empty() {
        summary
            .problems
            .push("the bench has no boards: nothing was checked".into());
    }
    // Listed once, on the first board with a probe.
    let mut probes = ProbeList::default();
    for (name, board) in &bench.boards {
        summary.boards += 1;
        writeln!(out, "{name} ({}):", board.kind)?;
        if board.emulated {
            writeln!(
                out,
                "  emulated by a simulated board: relay line, console and probe need no check"
            )?;
            continue;
        }
        let mut power: Option<Box<dyn PowerSwitch>> = None;
        match &board.power {
            PowerConfig::Relay {
                gpio,
                active_low,
                min_off,
                safe,
            } => {
                let cfg = RelayConfig {
                    active_low: *active_low,
                    min_off: min_off.map_or(Duration::from_millis(500), |d| d.0),
                    safe: safe.unwrap_or(SafeState::Off),
                };
                match open_relay(*gpio, cfg) {
                    Ok(mut r) => {
                        let started = Instant::now();
                        let res = r.off().and_then(|()| r.on());
                        match res {
                            Ok(()) => writeln!(
                                out,
                                "  power: relay on GPIO {gpio} clicked off/on ({} ms incl. min_off)",
                                started.elapsed().as_millis()
                            )?,
                            Err(e) => summary.problems.push(format!("{name}: power: {e}")),
                        }
                        power = Some(Box::new(r));
                    }
                    Err(e) => summary.problems.push(format!("{name}: power: {e}")),
                }
            }
            PowerConfig::Sim {} => writeln!(out, "  power: simulated")?,
        }
        match &board.console {
            ConsoleConfig::Serial { port, baud } => {
                match crate::backend::serial::SerialConsole::open(port, *baud) {
                    Ok(mut c) => {
                        let mut buf = [0u8; 256];
                        let deadline = Instant::now() + Duration::from_secs(3);
                        let mut got = 0;
                        while got == 0 && Instant::now() < deadline {
                            got = c.read(&mut buf, Duration::from_millis(100)).unwrap_or(0);
                        }
                        if got > 0 {
                            writeln!(out, "  console: {port} answered ({got} bytes)")?;
                        } else {
                            summary.problems.push(format!(
                            "{name}: console {port} opened but said nothing within 3 s of power-on (check baud {baud}, TX/RX wiring)"
                        ));
                        }
                    }
                    Err(e) => summary.problems.push(format!("{name}: console: {e}")),
                }
            }
            ConsoleConfig::Sim {} | ConsoleConfig::SimPty {} => {
                writeln!(out, "  console: simulated")?
            }
        }
        if let Some(crate::bench::ProbeConfig::ProbeRs { selector, chip }) = &board.probe {
            match check_probe(name, selector, chip, &mut probes) {
                Ok(found) => {
                    for line in found {
                        writeln!(out, "  probe: {line}")?;
                    }
                }
                Err(e) => summary
                    .problems
                    .push(format!("{name}: probe {selector} ({chip}): {e}")),
            }
        }
        drop(power);
    }
    for p in &summary.problems {
        writeln!(out, "problem: {p}")?;
    }
    writeln!(
        out,
        "{} board(s), {} problem(s)",
        summary.boards,
        summary.problems.len()
    )?;
    Ok(summary)
}

/// The connected probes, listed on first use (USB enumeration only: no chip registry).
#[derive(Debug, Default)]
struct ProbeList {
    #[cfg(feature = "probe")]
    listed: Option<Vec<crate::backend::probe_rs::ProbeInfo>>,
}

/// Finds the board's probe among the connected ones and attaches to its chip (which loads the
/// chip registry: only benches with probes pay for it). The lines to print, or the problem.
#[cfg(feature = "probe")]
fn check_probe(
    name: &str,
    selector: &crate::backend::probe_rs::select::ProbeSelector,
    chip: &str,
    listed: &mut ProbeList,
) -> Result<Vec<String>, crate::board::probe::Error> {
    use crate::backend::probe_rs::{ProbeSpec, ProbeWorker, Timeouts, find_probe, list_probes};
    let _span = tracing::info_span!("bench_check_probe", board = name, %selector, chip).entered();
    let probes = listed.listed.get_or_insert_with(list_probes);
    let found = &probes[find_probe(selector, probes)?];
    let mut lines = vec![format!(
        "found {} serial {}",
        found.identifier,
        found.serial.as_deref().unwrap_or("(none)")
    )];
    let handle = ProbeWorker::attach(ProbeSpec::new(name, selector, chip), Timeouts::default())?;
    lines.push(format!("attached to the {chip} ({})", handle.description()));
    Ok(lines)
}

/// Without the probe-rs backend a configured probe cannot be checked: always a problem.
#[cfg(not(feature = "probe"))]
fn check_probe(
    _name: &str,
    _selector: &crate::backend::probe_rs::select::ProbeSelector,
    _chip: &str,
    _listed: &mut ProbeList,
) -> Result<Vec<String>, &'static str> {
    Err("no debug probe found — this rig was built without the probe-rs backend (feature `probe`)")
}

#[cfg(feature = "hardware")]
fn open_relay(gpio: u8, cfg: RelayConfig) -> Result<RelaySwitch, crate::board::power::Error> {
    let out = crate::backend::relay::GpioOutput::open(gpio)?;
    RelaySwitch::new(Box::new(out), cfg)
}

#[cfg(not(feature = "hardware"))]
fn open_relay(gpio: u8, _cfg: RelayConfig) -> Result<RelaySwitch, crate::board::power::Error> {
    Err(crate::board::power::Error::Gpio {
        pin: gpio,
        reason: "built without the `hardware` feature".into(),
        hint: "build the rig with default features on the Pi",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bench_without_hardware_reports_clean_infra_problems() {
        let bench = crate::bench::parse(
            "boards:\n  pico-1:\n    kind: pico-w\n    power: { relay: { gpio: 17 } }\n    console: { serial: { port: /dev/serial/by-id/none } }\n    probe: { probe_rs: { selector: \"2e8a:000c\", chip: RP2040 } }\n",
            std::path::Path::new("b.yaml"),
        )
        .expect("valid");
        let mut out = Vec::new();
        let s = run(&bench, &mut out).expect("report");
        let text = String::from_utf8_lossy(&out);
        assert_eq!(s.boards, 1);
        assert_eq!(s.problems.len(), 3, "{text}");
        assert!(text.contains("GPIO 17") || text.contains("gpio"), "{text}");
        assert!(text.contains("no debug probe found"), "{text}");
    }

    /// On this machine no probe is connected: whatever the build, a configured probe is one
    /// infrastructure problem that says what to fix (beside the relay and port, absent here).
    #[test]
    fn a_missing_probe_is_one_clean_infra_problem() {
        let bench = crate::bench::parse(
            "boards:\n  pico-1:\n    kind: pico-w\n    power: { relay: { gpio: 17 } }\n    console: { serial: { port: /nonexistent/ttyACM9 } }\n    probe: { probe_rs: { selector: \"2e8a:000c:NOPE\", chip: RP2040 } }\n",
            std::path::Path::new("b.yaml"),
        )
        .expect("valid");
        let mut out = Vec::new();
        let s = run(&bench, &mut out).expect("report");
        let text = String::from_utf8_lossy(&out);
        let probe: Vec<&String> = s.problems.iter().filter(|p| p.contains("probe")).collect();
        assert_eq!(probe.len(), 1, "{text}");
        let p = probe[0];
        assert!(
            p.starts_with("pico-1: probe 2e8a:000c:NOPE (RP2040): no debug probe found"),
            "{p}"
        );
        if cfg!(feature = "probe") {
            assert!(
                p.contains("is it plugged in") && p.contains("udev rule for 2e8a:000c"),
                "{p}"
            );
        } else {
            assert!(p.contains("feature `probe`"), "{p}");
        }
        assert!(text.contains("1 board(s), 3 problem(s)"), "{text}");
    }

    #[test]
    fn an_empty_bench_is_never_a_clean_check() {
        let mut out = Vec::new();
        let s = run(
            &Bench {
                boards: Default::default(),
            },
            &mut out,
        )
        .expect("report");
        let text = String::from_utf8_lossy(&out);
        assert_eq!((s.boards, s.problems.len()), (0, 1), "{text}");
        assert!(text.contains("problem: the bench has no boards"), "{text}");
    }
}
