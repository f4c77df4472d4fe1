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
//! never a run-time surprise. So is every bench that cannot work: no boards, a board name
//! that is not a plain file name (names become lock and work-directory paths), a combination
//! of backends that makes no sense, or two boards sharing one GPIO line, serial port or probe.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use crate::backend::probe_rs::select::ProbeSelector;
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
    /// The id the firmware reports at check-in (a Pico W prints it in its first boot line:
    /// `device=pico-<flash uid>`). Required for hardware boards.
    #[serde(default)]
    pub device_id: Option<String>,
    /// Where the board's firmware looks for the update server (a Pico W's `OTARIG_SERVER`,
    /// fixed at build time): the rig serves every scenario of this board there. Required for
    /// hardware boards.
    #[serde(default)]
    pub server: Option<ServerConfig>,
    /// The board's relay line, serial port and probe are emulated by a simulated board on this
    /// machine: the rig drives it exactly like hardware (relay switch with `min_off` and safe
    /// state, serial console, probe flashing, no exact flash cuts), which proves the hardware
    /// path without hardware. Only with `kind: sim`, relay power and a `sim_pty` console.
    #[serde(default)]
    pub emulated: bool,
    /// A Pico W board's firmware builds (`bootloader.bin`, `app-a.bin`, `app-b.bin`,
    /// `app-<drill>-<slot>.bin`), relative to the bench file: built with this board's Wi-Fi and
    /// server settings by `firmware-under-test/boards/pico-w/tools/build-drills.sh`.
    #[serde(default)]
    pub firmware: Option<PathBuf>,
    /// A GPIO line that holds the board's recovery button: held at power-on, the bootloader
    /// runs the factory-reset drill (the restore of a board without a probe).
    #[serde(default)]
    pub recovery_button: Option<ButtonConfig>,
    /// (Emulated boards) the firmware version the board left the factory with, in slot A and
    /// its factory region; without it an emulated board starts blank, for its probe to flash.
    #[serde(default)]
    pub factory_firmware: Option<crate::scenario::VersionField>,
    /// A QEMU board's machine (`kind: qemu`, `emulated: true`): its firmware builds, QEMU and
    /// its NIC's MAC address (which names the device).
    #[serde(default)]
    pub qemu: Option<QemuConfig>,
    /// A factor on every time limit of a scenario run on this board (`within:` of
    /// expectations and cut triggers, the settle time), for boards slower than the simulated
    /// one the scenarios are written for (a QEMU board's watchdog and trial window are the
    /// firmware's, seconds where the sim's are fractions). 1 to 20; default 1.
    #[serde(default)]
    pub time_scale: Option<f64>,
}

/// How the rig runs a QEMU board (`firmware-under-test/boards/qemu-mps2`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuConfig {
    /// The firmware builds (`bootloader.elf`, `app.bin`, `app-<drill>.bin` and their ELF
    /// files), relative to the bench file, as `tools/build-drills.sh OUT` writes them.
    pub firmware: PathBuf,
    /// The QEMU binary (default `qemu-system-arm` on the `PATH`).
    #[serde(default)]
    pub binary: Option<PathBuf>,
    /// The NIC's MAC address: the device id is `qemu-` and its hex digits.
    pub mac: crate::backend::qemu::MacAddr,
}

/// A recovery button's GPIO line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonConfig {
    pub gpio: u8,
    /// The button is pressed while the line is low.
    #[serde(default)]
    pub active_low: bool,
}

impl BoardConfig {
    /// What running scenarios on this hardware board needs beyond `rig bench-check`.
    pub fn runnable(&self) -> Result<(), String> {
        match (self.kind.as_str(), &self.firmware) {
            ("sim", None) | ("pico-w", Some(_)) | ("qemu", None) => {}
            ("qemu", Some(_)) => {
                return Err(
                    "a qemu board names its builds in `qemu: { firmware: DIR }`, not `firmware:`"
                        .into(),
                );
            }
            ("sim", Some(_)) => {
                return Err(
                    "`firmware:` is for pico-w boards; the rig builds sim images itself".into(),
                );
            }
            ("pico-w", None) => {
                return Err("a pico-w board needs `firmware: DIR`, its builds (firmware-under-test/boards/pico-w/tools/build-drills.sh)".into());
            }
            (other, _) => {
                return Err(format!(
                    "the rig builds images for `sim`, `pico-w` and `qemu` boards, not `{other}`"
                ));
            }
        }
        if self.factory_firmware.is_some() && !self.emulated {
            return Err("`factory_firmware:` is for emulated boards (a real board has what its factory flashed)".into());
        }
        if self.emulated {
            return Ok(());
        }
        if self.device_id.is_none() {
            return Err("running scenarios on a hardware board needs `device_id:` (the id its firmware reports at check-in, printed in its first boot line)".into());
        }
        if self.server.is_none() {
            return Err("running scenarios on a hardware board needs `server: { listen: ADDR }` (the update server address its firmware was built with)".into());
        }
        Ok(())
    }
}

/// The update server of a hardware board.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on, e.g. `0.0.0.0:8080` (a non-loopback address gets a random control
    /// token: the rig drives its server in-process and needs no control API).
    pub listen: std::net::SocketAddr,
}

/// How the rig reaches a board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardClass {
    /// A simulated board process started afresh for every attempt.
    Sim { pty: bool },
    /// A board that outlives attempts: real hardware, or hardware emulated by a sim board.
    Hardware { emulated: bool },
}

impl BoardConfig {
    /// How the rig drives this board, or why the combination makes no sense.
    pub fn class(&self) -> Result<BoardClass, String> {
        match (&self.power, &self.console, self.emulated) {
            (PowerConfig::Sim {}, ConsoleConfig::Sim {}, false) => Ok(BoardClass::Sim { pty: false }),
            (PowerConfig::Sim {}, ConsoleConfig::SimPty {}, false) => {
                Ok(BoardClass::Sim { pty: true })
            }
            (PowerConfig::Relay { .. }, ConsoleConfig::SimPty {}, true)
                if self.kind == "sim" || self.kind == "qemu" =>
            {
                Ok(BoardClass::Hardware { emulated: true })
            }
            (_, _, true) => Err(
                "`emulated: true` needs `kind: sim` or `kind: qemu`, relay power and a `sim_pty` console".into(),
            ),
            (PowerConfig::Relay { .. }, ConsoleConfig::Serial { .. }, false) => {
                Ok(BoardClass::Hardware { emulated: false })
            }
            (PowerConfig::Sim {}, ConsoleConfig::Serial { .. }, _) => Err(
                "a simulated board has no serial port: use `console: { sim: {} }` or `{ sim_pty: {} }`".into(),
            ),
            (PowerConfig::Relay { .. }, _, false) => Err(
                "a relay-powered board needs `console: { serial: { port: ... } }` (or `emulated: true` for a sim board)".into(),
            ),
        }
        .and_then(|class| self.check_qemu(class))
        .and_then(|class| match (&self.probe, class) {
            (Some(ProbeConfig::Gdb { .. }), _) if self.kind != "qemu" => {
                Err("`probe: { gdb: ... }` is a QEMU board's gdbstub: it needs `kind: qemu`".into())
            }
            (Some(ProbeConfig::Emulated {}), _) if self.kind == "qemu" => Err(
                "a qemu board's probe is its gdbstub: `probe: { gdb: { port: PORT } }`".into(),
            ),
            (Some(ProbeConfig::Gdb { port: 0 }), _) => Err(
                "`probe: { gdb: { port: 0 } }`: give the gdbstub a fixed loopback port".into(),
            ),
            (Some(ProbeConfig::Gdb { .. }), BoardClass::Hardware { emulated: true }) => Ok(class),
            (Some(ProbeConfig::Emulated {}), BoardClass::Hardware { emulated: true })
            | (Some(ProbeConfig::ProbeRs { .. }), BoardClass::Hardware { emulated: false })
            | (None, _) => Ok(class),
            (Some(ProbeConfig::Emulated {}), _) => {
                Err("`probe: { emulated: {} }` needs `emulated: true`".into())
            }
            (Some(ProbeConfig::Gdb { .. }), _) => Err("`probe: { gdb: ... }` needs `emulated: true`".into()),
            (Some(ProbeConfig::ProbeRs { .. }), _) => {
                Err("a probe-rs probe needs a hardware board (relay power, serial console)".into())
            }
        })
    }
}

impl BoardConfig {
    /// `time_scale:` is a factor from 1 to 20, for boards that outlive attempts.
    fn check_time_scale(&self, class: BoardClass) -> Result<(), String> {
        match (self.time_scale, class) {
            (None, _) => Ok(()),
            (Some(_), BoardClass::Sim { .. }) => Err("`time_scale:` is for bench boards (emulated or real hardware); the simulated board keeps the scenarios' times".into()),
            (Some(f), _) if (1.0..=20.0).contains(&f) => Ok(()),
            (Some(f), _) => Err(format!("`time_scale: {f}`: a factor from 1 to 20 on the scenarios' time limits")),
        }
    }

    /// The factor on scenario time limits for this board.
    pub fn time_scale(&self) -> f64 {
        self.time_scale.unwrap_or(1.0)
    }

    /// A `qemu:` block goes with `kind: qemu` and `emulated: true`, and the other way round.
    fn check_qemu(&self, class: BoardClass) -> Result<BoardClass, String> {
        match (self.kind == "qemu", &self.qemu, class) {
            (true, Some(_), BoardClass::Hardware { emulated: true }) => Ok(class),
            (true, Some(_), _) => Err("a qemu board is emulated hardware: `emulated: true`, relay power, `console: { sim_pty: {} }`".into()),
            (true, None, _) => Err("a qemu board needs `qemu: { firmware: DIR, mac: 52:54:00:xx:xx:xx }` (DIR as firmware-under-test/boards/qemu-mps2/tools/build-drills.sh writes it)".into()),
            (false, Some(_), _) => Err(format!("`qemu:` is for `kind: qemu` boards, not `kind: {}`", self.kind)),
            (false, None, _) => Ok(class),
        }
    }
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
    /// An emulated board's probe: flashes and reads its flash file.
    Emulated {},
    /// A QEMU board's gdbstub on `127.0.0.1:port`: breakpoints, halts, memory; flashing
    /// writes the board's flash file.
    Gdb { port: u16 },
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
    /// Any problem in the file, at its `file:line:col`.
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

/// Longest board name.
pub const MAX_BOARD_NAME: usize = 64;

/// Checks a board name: 1 to [`MAX_BOARD_NAME`] of `A-Z a-z 0-9 . _ -`, not starting with a
/// dot. Board names name lock files and work directories, so they must be plain file names.
///
/// ```
/// assert!(rig::bench::check_board_name("pico-1.rev_b").is_ok());
/// assert!(rig::bench::check_board_name("../../x").is_err());
/// assert!(rig::bench::check_board_name(".hidden").is_err());
/// ```
pub fn check_board_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("a board name cannot be empty".into())
    } else if name.len() > MAX_BOARD_NAME {
        Err(format!(
            "a board name is at most {MAX_BOARD_NAME} characters (this one has {})",
            name.len()
        ))
    } else if name.starts_with('.') {
        Err("a board name cannot start with a dot".into())
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Err(format!(
            "{c:?} cannot be in a board name (names become file names: use A-Z a-z 0-9 . _ -)"
        ))
    } else {
        Ok(())
    }
}

/// A board's name with where it is written; ordered by the name alone.
#[derive(Debug)]
struct BoardKey(Spanned<String>);

impl PartialEq for BoardKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.value == other.0.value
    }
}

impl Eq for BoardKey {}

impl PartialOrd for BoardKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BoardKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.value.cmp(&other.0.value)
    }
}

impl<'de> Deserialize<'de> for BoardKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Spanned::deserialize(d).map(Self)
    }
}

/// The file as written, with locations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBench {
    boards: Spanned<BTreeMap<BoardKey, BoardConfig>>,
}

pub fn parse(text: &str, path: &Path) -> Result<Bench, Error> {
    let raw = serde_saphyr::from_str::<RawBench>(text)
        .map_err(|e| Error::Invalid(crate::scenario::yaml_error(&e, text, path)))?;
    let invalid = |loc: Location, message: String| {
        Error::Invalid(crate::scenario::Error::Invalid {
            file: path.to_path_buf(),
            line: loc.line(),
            column: loc.column(),
            snippet: crate::scenario::snippet(text, loc.line(), loc.column()),
            message,
        })
    };
    if raw.boards.value.is_empty() {
        return Err(invalid(
            raw.boards.referenced,
            "boards: a bench needs at least one board".into(),
        ));
    }
    // In file order, so that a clash is reported on the board written second.
    let mut boards: Vec<(&Spanned<String>, &BoardConfig)> =
        raw.boards.value.iter().map(|(k, b)| (&k.0, b)).collect();
    boards.sort_by_key(|(k, _)| (k.referenced.line(), k.referenced.column()));
    let mut claims = Claims::default();
    for (name, board) in boards {
        // A hostile name is echoed shortened.
        let mut shown: String = name.value.chars().take(MAX_BOARD_NAME).collect();
        if shown.len() < name.value.len() {
            shown.push('…');
        }
        let at = |reason: String| invalid(name.referenced, format!("board `{shown}`: {reason}"));
        check_board_name(&name.value).map_err(at)?;
        let class = board.class().map_err(at)?;
        board.check_time_scale(class).map_err(at)?;
        claims.claim(&name.value, board).map_err(at)?;
    }
    Ok(Bench {
        boards: raw
            .boards
            .value
            .into_iter()
            .map(|(k, b)| (k.0.value, b))
            .collect(),
    })
}

/// The hardware the boards read so far use: a GPIO line, a serial port or a probe belongs to
/// one board (two boards on one relay line would power each other off).
#[derive(Default)]
struct Claims {
    /// GPIO line (BCM numbering, the Pi's one GPIO chip) → (board, what for).
    gpio: BTreeMap<u8, (String, &'static str)>,
    /// Serial port as resolved (a `/dev/serial/by-id` link and its `/dev/ttyACM*` are one port)
    /// → (board, as written).
    serial: Vec<(PathBuf, String, String)>,
    probes: Vec<(ProbeSelector, String)>,
    /// Loopback ports (gdbstub, update server) → (board, what for); MAC addresses → board.
    ports: BTreeMap<u16, (String, &'static str)>,
    macs: BTreeMap<crate::backend::qemu::MacAddr, String>,
}

impl Claims {
    fn claim(&mut self, name: &str, board: &BoardConfig) -> Result<(), String> {
        let mut lines = Vec::new();
        if let PowerConfig::Relay { gpio, .. } = &board.power {
            lines.push((*gpio, "relay"));
        }
        if let Some(b) = &board.recovery_button {
            lines.push((b.gpio, "recovery button"));
        }
        for (line, role) in lines {
            if let Some((other, other_role)) = self.gpio.get(&line) {
                let whose = if other == name {
                    "its own".to_string()
                } else {
                    format!("board `{other}`'s")
                };
                return Err(format!(
                    "GPIO {line} (its {role}) is already {whose} {other_role} line: give each relay and button its own GPIO line"
                ));
            }
            self.gpio.insert(line, (name.to_string(), role));
        }
        if let ConsoleConfig::Serial { port, .. } = &board.console {
            let resolved = std::fs::canonicalize(port).unwrap_or_else(|_| PathBuf::from(port));
            if let Some((_, other, written)) = self.serial.iter().find(|(p, _, _)| *p == resolved) {
                let via = if written == port {
                    String::new()
                } else {
                    format!(" (as {written})")
                };
                return Err(format!(
                    "serial port {port} is already board `{other}`'s console{via}: each board needs its own port"
                ));
            }
            self.serial.push((resolved, name.to_string(), port.clone()));
        }
        let mut ports = Vec::new();
        if let Some(ProbeConfig::Gdb { port }) = &board.probe {
            ports.push((*port, "gdbstub"));
        }
        if let Some(server) = &board.server {
            ports.push((server.listen.port(), "update server"));
        }
        for (port, role) in ports {
            if port == 0 {
                continue;
            }
            if let Some((other, other_role)) = self.ports.get(&port) {
                return Err(format!(
                    "port {port} (its {role}) is already board `{other}`'s {other_role} port: give each its own port"
                ));
            }
            self.ports.insert(port, (name.to_string(), role));
        }
        if let Some(q) = &board.qemu {
            if let Some(other) = self.macs.get(&q.mac) {
                return Err(format!(
                    "MAC address {} is already board `{other}`'s: the MAC names the device, give each board its own",
                    q.mac
                ));
            }
            self.macs.insert(q.mac, name.to_string());
        }
        if let Some(ProbeConfig::ProbeRs { selector, .. }) = &board.probe {
            if let Some((theirs, other)) = self.probes.iter().find(|(s, _)| overlap(s, selector)) {
                return Err(if theirs == selector {
                    format!(
                        "probe {selector} is already board `{other}`'s probe: each board needs its own probe"
                    )
                } else {
                    format!(
                        "probe {selector} can select the same probe as board `{other}`'s {theirs}: give both selectors the probe's serial number (VID:PID:SERIAL)"
                    )
                });
            }
            self.probes.push((selector.clone(), name.to_string()));
        }
        Ok(())
    }
}

/// Whether one connected probe can match both selectors (serials match ignoring ASCII case,
/// as probe selection does; a selector without a serial matches every serial).
fn overlap(a: &ProbeSelector, b: &ProbeSelector) -> bool {
    a.vid == b.vid
        && a.pid == b.pid
        && match (&a.serial, &b.serial) {
            (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
            _ => true,
        }
}

impl Bench {
    /// Boards whose name, kind or one of whose labels is `selector`.
    pub fn select(&self, selector: &str) -> Vec<(&str, &BoardConfig)> {
        self.boards
            .iter()
            .filter(|(name, b)| {
                *name == selector || b.kind == selector || b.labels.iter().any(|l| l == selector)
            })
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

    #[test]
    fn board_classes_and_nonsense_combinations() {
        let board = |power: &str, console: &str, extra: &str| {
            format!(
                "boards:\n  b:\n    kind: sim\n    power: {power}\n    console: {console}\n{extra}"
            )
        };
        let relay = "{ relay: { gpio: 4 } }";
        let ok = parse(
            &board(
                relay,
                "{ sim_pty: {} }",
                "    emulated: true\n    probe: { emulated: {} }\n",
            ),
            Path::new("b.yaml"),
        )
        .expect("emulated board");
        assert_eq!(
            ok.boards["b"].class(),
            Ok(BoardClass::Hardware { emulated: true })
        );
        assert!(ok.boards["b"].runnable().is_ok());
        for (text, says) in [
            (
                board("{ sim: {} }", "{ sim: {} }", "    emulated: true\n"),
                "emulated: true",
            ),
            (board(relay, "{ sim_pty: {} }", ""), "serial"),
            (
                board("{ sim: {} }", "{ serial: { port: /dev/ttyACM0 } }", ""),
                "no serial port",
            ),
            (
                board(
                    "{ sim: {} }",
                    "{ sim: {} }",
                    "    probe: { emulated: {} }\n",
                ),
                "needs `emulated: true`",
            ),
        ] {
            let e = parse(&text, Path::new("b.yaml"))
                .expect_err(&text)
                .to_string();
            assert!(
                e.starts_with("b.yaml:2:3: board `b`: ") && e.contains(says),
                "{e}"
            );
        }
        // A hardware board parses for bench-check, but running scenarios needs its id and server.
        let hw = parse(GOOD, Path::new("bench.yaml")).expect("valid");
        let e = hw.boards["pico-1"].runnable().expect_err("no firmware");
        assert!(e.contains("firmware: DIR"), "{e}");
        let mut pico = hw.boards["pico-1"].clone();
        pico.firmware = Some(PathBuf::from("fw/pico-1"));
        assert!(pico.runnable().expect_err("no id").contains("device_id"));
        pico.device_id = Some("pico-e661".into());
        assert!(pico.runnable().expect_err("no server").contains("server"));
    }

    /// A QEMU board with gdbstub `port`, MAC `mac` and `extra` lines.
    fn qemu(name: &str, gpio: u8, port: u16, mac: &str, extra: &str) -> String {
        format!(
            "  {name}:\n    kind: qemu\n    emulated: true\n    power: {{ relay: {{ gpio: {gpio} }} }}\n    console: {{ sim_pty: {{}} }}\n    probe: {{ gdb: {{ port: {port} }} }}\n    qemu: {{ firmware: fw, mac: \"{mac}\" }}\n{extra}"
        )
    }

    #[test]
    fn qemu_boards_are_validated_where_they_are_written() {
        let two = format!(
            "boards:\n{}{}",
            qemu("q1", 5, 23301, "52:54:00:0a:00:01", "    time_scale: 4\n"),
            qemu("q2", 6, 23302, "52:54:00:0a:00:02", "")
        );
        let bench = parse(&two, Path::new("bench.yaml")).expect("valid");
        let q1 = &bench.boards["q1"];
        assert_eq!(q1.class(), Ok(BoardClass::Hardware { emulated: true }));
        assert!(q1.runnable().is_ok());
        assert_eq!(q1.time_scale(), 4.0);
        assert_eq!(bench.boards["q2"].time_scale(), 1.0);
        assert_eq!(
            q1.qemu.as_ref().map(|q| q.mac.device_id()),
            Some("qemu-5254000a0001".into())
        );
        let cases = [
            (
                qemu("q2", 6, 23301, "52:54:00:0a:00:02", ""),
                "port 23301 (its gdbstub) is already board `q1`'s gdbstub port",
            ),
            (
                qemu("q2", 6, 23302, "52:54:00:0a:00:01", ""),
                "MAC address 52:54:00:0a:00:01 is already board `q1`'s",
            ),
            (
                qemu("q2", 6, 23302, "52:54:00:0a:00", ""),
                "is not a MAC address",
            ),
            (
                qemu("q2", 6, 23302, "52:54:00:0a:00:02", "    time_scale: 0.5\n"),
                "a factor from 1 to 20",
            ),
            (qemu("q2", 6, 0, "52:54:00:0a:00:02", ""), "a fixed loopback port"),
            (
                qemu("q2", 6, 23302, "52:54:00:0a:00:02", "    emulated: false\n"),
                "duplicate",
            ),
            (
                "  q2:\n    kind: qemu\n    emulated: true\n    power: { relay: { gpio: 6 } }\n    console: { sim_pty: {} }\n    probe: { gdb: { port: 23302 } }\n".into(),
                "needs `qemu: { firmware: DIR",
            ),
            (
                "  q2:\n    kind: sim\n    emulated: true\n    power: { relay: { gpio: 6 } }\n    console: { sim_pty: {} }\n    probe: { gdb: { port: 23302 } }\n".into(),
                "it needs `kind: qemu`",
            ),
            (
                "  q2:\n    kind: qemu\n    emulated: true\n    power: { relay: { gpio: 6 } }\n    console: { sim_pty: {} }\n    probe: { emulated: {} }\n    qemu: { firmware: fw, mac: \"52:54:00:0a:00:02\" }\n".into(),
                "probe is its gdbstub",
            ),
            (
                "  q2:\n    kind: sim\n    power: { sim: {} }\n    console: { sim: {} }\n    time_scale: 2\n".into(),
                "`time_scale:` is for bench boards",
            ),
        ];
        for (second, says) in cases {
            let text = format!(
                "boards:\n{}{second}",
                qemu("q1", 5, 23301, "52:54:00:0a:00:01", "")
            );
            let e = err(&text);
            assert!(e.starts_with("bench.yaml:"), "{e}");
            assert!(e.contains(says), "{says}: {e}");
        }
    }

    fn err(text: &str) -> String {
        parse(text, Path::new("bench.yaml"))
            .expect_err(text)
            .to_string()
    }

    /// A sim board named `name`.
    fn sim(name: &str) -> String {
        format!(
            "  {name}:\n    kind: sim\n    power: {{ sim: {{}} }}\n    console: {{ sim: {{}} }}\n"
        )
    }

    /// A hardware board with relay `gpio`, serial `port` and an optional probe `selector`.
    fn hw(name: &str, gpio: u8, port: &str, selector: Option<&str>) -> String {
        let probe = selector.map_or(String::new(), |s| {
            format!("    probe: {{ probe_rs: {{ selector: \"{s}\", chip: RP2040 }} }}\n")
        });
        format!(
            "  {name}:\n    kind: pico-w\n    power: {{ relay: {{ gpio: {gpio} }} }}\n    console: {{ serial: {{ port: {port} }} }}\n{probe}"
        )
    }

    #[test]
    fn board_names_are_plain_file_names() {
        for name in [
            "pico-1",
            "a",
            "rev_b.2",
            "A-Z.0_9",
            &"x".repeat(MAX_BOARD_NAME),
        ] {
            let b = parse(&format!("boards:\n{}", sim(name)), Path::new("bench.yaml"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(b.boards.contains_key(name));
        }
        for (name, says) in [
            ("../../x", "cannot start with a dot"),
            ("x/../../y", "'/' cannot be in a board name"),
            ("\"a/b\"", "'/' cannot be"),
            ("..", "cannot start with a dot"),
            (".hidden", "cannot start with a dot"),
            ("\"a b\"", "' ' cannot be"),
            ("\"pico\\\\1\"", "'\\\\' cannot be"),
            ("\"\"", "cannot be empty"),
            ("\"caf\u{e9}\"", "'\u{e9}' cannot be"),
            (
                &"x".repeat(MAX_BOARD_NAME + 1),
                "at most 64 characters (this one has 65)",
            ),
        ] {
            let e = err(&format!("boards:\n{}{}", sim("ok-1"), sim(name)));
            // The second board's name: line 6, column 3, with a snippet pointing at it.
            assert!(
                e.starts_with("bench.yaml:6:3: board `") && e.contains(says),
                "{name}: want {says:?} in {e}"
            );
            assert!(e.contains("  6 |") && e.contains("^"), "{e}");
        }
    }

    #[test]
    fn a_long_name_is_not_echoed_whole() {
        let long = "y".repeat(1_000); // YAML caps implicit keys at 1024
        let e = err(&format!("boards:\n{}", sim(&long)));
        let message = e.lines().next().expect("first line");
        assert!(
            message.len() < 300 && message.contains(&format!("board `{}…`", "y".repeat(64))),
            "{}",
            &message[..message.len().min(300)]
        );
    }

    #[test]
    fn a_bench_needs_a_board() {
        for text in ["boards: {}\n", "boards:\n  {}\n"] {
            let e = err(text);
            assert!(
                e.starts_with("bench.yaml:") && e.contains("at least one board"),
                "{e}"
            );
            assert!(!e.starts_with("bench.yaml:0:"), "located: {e}");
        }
        assert!(err("boards:\n").contains("bench.yaml:"));
    }

    #[test]
    fn two_boards_never_share_a_relay_line_serial_port_or_probe() {
        let bench = |a: String, b: String| format!("boards:\n{a}{b}");
        // Distinct hardware is fine; so are probes told apart by serial (any case).
        parse(
            &bench(
                hw("a", 17, "/dev/ttyACM0", Some("2e8a:000c:E661")),
                hw("b", 27, "/dev/ttyACM1", Some("2e8a:000c:E662")),
            ),
            Path::new("bench.yaml"),
        )
        .expect("distinct hardware");
        // The board written second is the one reported, whatever the names' order.
        for (text, says) in [
            (
                bench(
                    hw("z-first", 17, "/dev/ttyACM0", None),
                    hw("a-second", 17, "/dev/ttyACM1", None),
                ),
                "board `a-second`: GPIO 17 (its relay) is already board `z-first`'s relay line",
            ),
            (
                bench(
                    hw("z-first", 17, "/dev/ttyACM0", None),
                    hw("a-second", 27, "/dev/ttyACM0", None),
                ),
                "board `a-second`: serial port /dev/ttyACM0 is already board `z-first`'s console",
            ),
            (
                bench(
                    hw("z-first", 17, "/dev/ttyACM0", None),
                    hw("a-second", 27, "/dev//ttyACM0", None),
                ),
                "serial port /dev//ttyACM0 is already board `z-first`'s console (as /dev/ttyACM0)",
            ),
            (
                bench(
                    hw("z-first", 17, "/dev/ttyACM0", Some("2e8a:000c:E661")),
                    hw("a-second", 27, "/dev/ttyACM1", Some("2E8A:000C:e661")),
                ),
                "board `a-second`: probe 2e8a:000c:e661 can select the same probe as board `z-first`'s 2e8a:000c:E661",
            ),
            (
                bench(
                    hw("z-first", 17, "/dev/ttyACM0", Some("2e8a:000c")),
                    hw("a-second", 27, "/dev/ttyACM1", Some("2e8a:000c")),
                ),
                "board `a-second`: probe 2e8a:000c is already board `z-first`'s probe",
            ),
            (
                bench(
                    hw("z-first", 17, "/dev/ttyACM0", Some("2e8a:000c:E661")),
                    hw("a-second", 27, "/dev/ttyACM1", Some("2e8a:000c")),
                ),
                "can select the same probe as board `z-first`'s 2e8a:000c:E661: give both selectors",
            ),
            (
                bench(
                    hw("z-first", 17, "/dev/ttyACM0", None),
                    hw("a-second", 27, "/dev/ttyACM1", None)
                        + "    recovery_button: { gpio: 17 }\n",
                ),
                "GPIO 17 (its recovery button) is already board `z-first`'s relay line",
            ),
            (
                bench(
                    hw("z-first", 17, "/dev/ttyACM0", None),
                    hw("a-second", 27, "/dev/ttyACM1", None)
                        + "    recovery_button: { gpio: 27 }\n",
                ),
                "GPIO 27 (its recovery button) is already its own relay line",
            ),
        ] {
            let e = err(&text);
            assert!(e.starts_with("bench.yaml:"), "{e}");
            assert!(e.contains(says), "want {says:?} in {e}");
            let second = text
                .lines()
                .position(|l| l == "  a-second:")
                .expect("second")
                + 1;
            assert!(e.starts_with(&format!("bench.yaml:{second}:3: ")), "{e}");
        }
    }

    #[test]
    fn a_serial_port_and_a_link_to_it_are_one_port() {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = dir.path().join("ttyACM0");
        std::fs::write(&port, b"").expect("port");
        let link = dir.path().join("usb-Debug_Probe-if01");
        std::os::unix::fs::symlink(&port, &link).expect("link");
        let e = err(&format!(
            "boards:\n{}{}",
            hw("a", 17, &port.display().to_string(), None),
            hw("b", 27, &link.display().to_string(), None)
        ));
        assert!(
            e.contains("is already board `a`'s console (as ") && e.contains("ttyACM0)"),
            "{e}"
        );
    }
}
