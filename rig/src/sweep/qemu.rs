//! `--replay=qemu`: breakpoint power cuts on the compiled QEMU firmware
//! (`firmware-under-test/boards/qemu-mps2`), compared point by point with the in-memory engine.
//!
//! The in-memory twin runs the same update as the QEMU board: v1 → v2 with image bodies of the
//! QEMU app's length, the same layout, chunk size and starting flash (v1 confirmed in slot A,
//! the factory state record), so its flash operations are the firmware's (the same
//! `ota_core::device::Device` code writes them). A sample of its operations into the state
//! records and into the inactive slot is chosen; each one is named as "the n-th program (or
//! erase) at flash offset A", and on QEMU the cut is a breakpoint on the firmware's
//! `otarig_flash_write` (`otarig_flash_erase`) in both stages whose hits are counted only when
//! the offset argument (r1) is A: at the n-th, the length argument is checked against the
//! in-memory operation's and QEMU is killed with the core halted there. Power comes back, the
//! board settles, and its console says where it ended (`app: v2 confirmed`, `boot: FATAL`, or
//! a check-in on v1 answered `none`: reverted or unchanged); that must be the in-memory
//! engine's outcome for the same cut.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ota_core::layout::Layout;
use ota_core::nor::{Cut, OpKind};
use ota_core::sweep::{End, PhasedOp, Script, Setup, clean_run, run_point};
use serde::Serialize;

use crate::backend::emulated::EmulatedMachine;
use crate::backend::gdb_remote::GdbRemote;
use crate::backend::qemu::{MacAddr, QemuMachine, QemuSpec};
use crate::backend::serial::SerialConsole;
use crate::board::console::ConsolePort;
use crate::board::probe::{Probe, run_to_matching_breakpoint};
use crate::scenario::{Drill, ImageDef, Scenario};
use crate::timeline::{BoardLane, Timeline};

/// How to run the QEMU replay.
#[derive(Debug, Clone)]
pub struct QemuReplay {
    /// What `tools/build-drills.sh` wrote: `bootloader.elf`, `app.bin`, `app.elf`.
    pub firmware: PathBuf,
    /// Points to cut (at least 1).
    pub points: usize,
    /// The gdbstub's loopback port (below the ephemeral range).
    pub gdb_port: u16,
    pub binary: PathBuf,
}

/// One point cut on QEMU.
#[derive(Debug, Clone, Serialize)]
pub struct QemuPoint {
    /// Index of the operation in the in-memory clean run.
    pub op: u64,
    pub kind: &'static str,
    pub addr: u32,
    pub len: u32,
    /// `state` or `inactive-slot`.
    pub region: &'static str,
    /// Which operation of this kind at this offset (1 = the first).
    pub nth: u32,
    pub memory: &'static str,
    pub qemu: String,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub console_tail: Vec<String>,
}

/// What the QEMU replay found.
#[derive(Debug, Clone, Serialize)]
pub struct QemuSummary {
    pub firmware: String,
    pub image_bytes: usize,
    /// Operations of the in-memory clean run into the state records or the inactive slot.
    pub candidates: usize,
    pub points: Vec<QemuPoint>,
    pub bricked: usize,
    pub disagreements: Vec<String>,
    pub seconds: f64,
}

/// Why the QEMU replay cannot start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the QEMU replay covers the update script only (this scenario's path is {0}); sweep an update scenario such as scenarios/happy-path.yaml"
    )]
    Script(&'static str),
    #[error("QEMU firmware: {0}")]
    Firmware(String),
    #[error("cannot prepare the QEMU replay: {0}")]
    Prepare(String),
}

fn prepare(e: impl std::fmt::Display) -> Error {
    Error::Prepare(e.to_string())
}

/// Where an operation lands, for sampling; `None`: neither a state record nor the slot the
/// update writes.
fn region(layout: &Layout, addr: u32) -> Option<&'static str> {
    let state = layout
        .state
        .iter()
        .any(|&s| (s..s + layout.sector).contains(&addr));
    if state {
        Some("state")
    } else if layout.slot_of(addr) == Some(1) {
        Some("inactive-slot")
    } else {
        None
    }
}

/// Up to `n` indices of `len`, evenly spread, first and last included.
fn spread(len: usize, n: usize) -> Vec<usize> {
    if n == 0 || len == 0 {
        return Vec::new();
    }
    if n >= len {
        return (0..len).collect();
    }
    if n == 1 {
        return vec![0];
    }
    let mut out: Vec<usize> = (0..n).map(|i| i * (len - 1) / (n - 1)).collect();
    out.dedup();
    out
}

/// A point to cut: the in-memory operation and how QEMU finds it.
#[derive(Debug, Clone, Copy)]
struct Target {
    p: PhasedOp,
    region: &'static str,
    nth: u32,
}

/// The sample: up to half the points from the state-record operations (all of them if they
/// fit), the rest spread over the slot writes.
fn sample(log: &[PhasedOp], layout: &Layout, points: usize) -> (usize, Vec<Target>) {
    let mut candidates = Vec::new();
    for (i, p) in log.iter().enumerate() {
        let Some(region) = region(layout, p.op.addr) else {
            continue;
        };
        let nth = log[..=i]
            .iter()
            .filter(|q| q.op.kind == p.op.kind && q.op.addr == p.op.addr)
            .count();
        candidates.push(Target {
            p: *p,
            region,
            nth: u32::try_from(nth).unwrap_or(u32::MAX),
        });
    }
    let (state, slot): (Vec<Target>, Vec<Target>) =
        candidates.iter().partition(|t| t.region == "state");
    let from_state = state.len().min(points.div_ceil(2));
    let from_slot = points.saturating_sub(from_state).min(slot.len());
    let mut chosen: Vec<Target> = spread(state.len(), from_state)
        .into_iter()
        .map(|i| state[i])
        .chain(spread(slot.len(), from_slot).into_iter().map(|i| slot[i]))
        .collect();
    chosen.sort_by_key(|t| t.p.op.index);
    (candidates.len(), chosen)
}

/// The images: QEMU's (app.bin with the scenario's versions, signed) and the in-memory twin's
/// (sim images with bodies of the same length), with one key.
struct Images {
    qemu_v1: Vec<u8>,
    qemu_v2: Vec<u8>,
    setup: Setup,
}

fn images(sc: &Scenario, firmware: &Path) -> Result<Images, Error> {
    let plain = |d: &ImageDef| ImageDef {
        drill: Drill::None,
        ..d.clone()
    };
    let given = sc
        .images
        .get(&sc.given.firmware)
        .map(plain)
        .unwrap_or_else(|| ImageDef::good(ota_core::Version::new(1, 0, 0)));
    let release = sc
        .release
        .as_ref()
        .and_then(|r| sc.images.get(r))
        .map(plain)
        .unwrap_or_else(|| ImageDef::good(ota_core::Version::new(2, 0, 0)));
    let app = crate::images::qemu::app_binary(firmware, Drill::None).map_err(Error::Firmware)?;
    let key = ota_core::keys::generate();
    let untrusted = ota_core::keys::generate();
    let qemu_v1 = crate::images::qemu::image(&given, &app, &key).map_err(Error::Firmware)?;
    let qemu_v2 = crate::images::qemu::image(&release, &app, &key).map_err(Error::Firmware)?;
    let body = u32::try_from(app.len()).map_err(prepare)?;
    let sized = |d: &ImageDef| ImageDef {
        size: Some(body),
        ..d.clone()
    };
    let v1 = crate::images::build(&sized(&given), &key, &untrusted).map_err(prepare)?;
    let v2 = crate::images::build(&sized(&release), &key, &untrusted).map_err(prepare)?;
    if (v1.len(), v2.len()) != (qemu_v1.len(), qemu_v2.len()) {
        return Err(Error::Prepare(format!(
            "the in-memory twin's images ({} and {} bytes) are not the QEMU images' length ({} and {})",
            v1.len(),
            v2.len(),
            qemu_v1.len(),
            qemu_v2.len()
        )));
    }
    let setup = Setup::with_images(key, v1, v2, fake_server::Config::new(".").chunk_size);
    Ok(Images {
        qemu_v1,
        qemu_v2,
        setup,
    })
}

/// The QEMU flash file the in-memory twin starts from: the golden file (key region, v1 in
/// slot A and the factory region) with the state records of [`Setup::fresh_flash`].
fn starting_flash(images: &Images) -> Result<Vec<u8>, Error> {
    let public = images.setup.key.verifying_key().to_bytes();
    let mut flash =
        crate::images::qemu::golden(&images.qemu_v1, &public).map_err(Error::Firmware)?;
    let fresh = images.setup.fresh_flash();
    let layout = images.setup.layout;
    for s in layout.state {
        let r = s as usize..(s + layout.sector) as usize;
        let (Some(to), Some(from)) = (flash.get_mut(r.clone()), fresh.core.mem.get(r)) else {
            return Err(Error::Prepare(
                "the state records lie outside the flash".into(),
            ));
        };
        to.copy_from_slice(from);
    }
    Ok(flash)
}

/// Addresses of `symbol` in the bootloader and the app (the two stages write flash).
fn both_stages(firmware: &Path, symbol: &str) -> Result<Vec<u64>, Error> {
    let elfs = [
        crate::images::qemu::bootloader(firmware),
        crate::images::qemu::app_elf(firmware, Drill::None),
    ];
    elfs.iter()
        .map(|e| {
            crate::elf::symbol_address_in(e, symbol).map_err(|x| Error::Firmware(x.to_string()))
        })
        .collect()
}

/// Runs the sample on QEMU. Usage problems (no firmware, not an update) are errors; what
/// happens to a point (never reached, bricked, another end) is in the summary.
pub fn cross_check(
    sc: &Scenario,
    script: Script,
    replay: &QemuReplay,
    stop: &AtomicBool,
) -> Result<QemuSummary, Error> {
    if script != Script::Update {
        return Err(Error::Script(script.as_str()));
    }
    let started = Instant::now();
    let images = images(sc, &replay.firmware)?;
    let (clean, log) = clean_run(&images.setup, script);
    if clean.end != End::Updated {
        return Err(Error::Prepare(format!(
            "the in-memory twin's clean run ends {}, not updated: {}",
            clean.end.as_str(),
            clean.detail
        )));
    }
    let (candidates, targets) = sample(&log, &images.setup.layout, replay.points.max(1));
    let write_at = both_stages(&replay.firmware, "otarig_flash_write")?;
    let erase_at = both_stages(&replay.firmware, "otarig_flash_erase")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(prepare)?;
    let dir = WorkDir::create()?;
    std::fs::write(dir.path().join("v2.img"), &images.qemu_v2).map_err(prepare)?;
    let mut cfg = fake_server::Config::new(dir.path());
    cfg.signing_key = Some(images.setup.key.clone());
    let server = runtime.block_on(fake_server::start(cfg)).map_err(prepare)?;
    server.publish("v2", "v2.img").map_err(prepare)?;
    let flash_file = dir.path().join("flash.bin");
    let starting = starting_flash(&images)?;
    let mac: MacAddr = "52:54:00:0a:00:5e".parse().map_err(Error::Prepare)?;
    let spec = QemuSpec {
        binary: replay.binary.clone(),
        bootloader: std::path::absolute(crate::images::qemu::bootloader(&replay.firmware))
            .map_err(prepare)?,
        flash: flash_file.clone(),
        mac,
        server_port: server.addr().port(),
        gdb_port: replay.gdb_port,
    };
    let lane = BoardLane::fixed(Timeline::new(), Arc::from("qemu-sweep"));
    let (machine, console) = QemuMachine::new_pty(spec, lane).map_err(prepare)?;
    let mut board = Board {
        machine,
        console,
        flash: flash_file,
        gdb_addr: std::net::SocketAddr::from(([127, 0, 0, 1], replay.gdb_port)),
        pending: String::new(),
    };
    let (v1, v2) = images.setup.versions();
    let mut points = Vec::new();
    let mut disagreements = Vec::new();
    for t in &targets {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let _span = tracing::info_span!(
            "qemu point",
            op = t.p.op.index,
            addr = t.p.op.addr,
            nth = t.nth
        )
        .entered();
        let point_started = Instant::now();
        let memory = run_point(
            &images.setup,
            script,
            &[Cut {
                at: t.p.op.index,
                torn: None,
            }],
            None,
        )
        .end
        .as_str();
        std::fs::write(&board.flash, &starting).map_err(prepare)?;
        let breakpoints = match t.p.op.kind {
            OpKind::Program => &write_at,
            OpKind::Erase => &erase_at,
        };
        let (qemu, tail) = match board.cut_at(t, breakpoints) {
            Ok(()) => board.settle(v1, v2),
            Err(why) => (format!("not cut: {why}"), Vec::new()),
        };
        let _ = board.machine.off();
        let at = format!(
            "op {} ({} #{} at 0x{:06x}, {} bytes, {})",
            t.p.op.index,
            t.p.op.kind.as_str(),
            t.nth,
            t.p.op.addr,
            t.p.op.len,
            t.region
        );
        tracing::info!(point = %at, memory, qemu = %qemu, "qemu point done");
        eprintln!(
            "qemu replay {}/{}: {at}: in-memory {memory}, QEMU {qemu} ({:.1}s)",
            points.len() + 1,
            targets.len(),
            point_started.elapsed().as_secs_f64()
        );
        if qemu != memory {
            disagreements.push(format!("{at}: in-memory {memory}, QEMU {qemu}"));
        }
        points.push(QemuPoint {
            op: t.p.op.index,
            kind: t.p.op.kind.as_str(),
            addr: t.p.op.addr,
            len: t.p.op.len,
            region: t.region,
            nth: t.nth,
            memory,
            console_tail: if qemu == memory { Vec::new() } else { tail },
            qemu,
            seconds: point_started.elapsed().as_secs_f64(),
        });
    }
    drop(board);
    runtime.block_on(server.shutdown());
    let bricked = points.iter().filter(|p| p.qemu == "bricked").count();
    Ok(QemuSummary {
        firmware: replay.firmware.display().to_string(),
        image_bytes: images.qemu_v2.len(),
        candidates,
        points,
        bricked,
        disagreements,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A scratch directory for the flash file and the release, removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> Result<Self, Error> {
        let dir = std::env::temp_dir().join(format!("otarig-qemu-sweep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(prepare)?;
        Ok(Self(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The one QEMU board the replay drives.
struct Board {
    machine: QemuMachine,
    console: SerialConsole,
    flash: PathBuf,
    gdb_addr: std::net::SocketAddr,
    /// Console bytes after the last complete line.
    pending: String,
}

/// How long one life may take to reach its cut, and the board to settle after it (a healthy
/// point takes 2-3 s on 2 shared cores).
const LIFE: Duration = Duration::from_secs(45);

impl Board {
    /// First life: starts QEMU halted, runs it to the target operation's breakpoint (hits
    /// counted only at its offset) and kills it there.
    fn cut_at(&mut self, t: &Target, breakpoints: &[u64]) -> Result<(), String> {
        self.drain();
        self.machine.set_start_paused(true);
        self.machine.on().map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut gdb = loop {
            match GdbRemote::connect(self.gdb_addr, self.flash.clone(), Duration::from_secs(5)) {
                Ok(g) => break g,
                Err(e) if Instant::now() >= deadline => return Err(e.to_string()),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let (addr, len, kind) = (t.p.op.addr, t.p.op.len, t.p.op.kind);
        let mut mismatch = None;
        let reached = run_to_matching_breakpoint(
            &mut gdb,
            breakpoints,
            t.nth,
            Instant::now() + LIFE,
            &mut |probe: &mut dyn Probe, _| {
                if probe.read_register(1)? != addr {
                    return Ok(false);
                }
                // write(flash, offset, bytes: ptr r2, len r3); erase(flash, from r1, to r2)
                let qemu_len = match kind {
                    OpKind::Program => probe.read_register(3)?,
                    OpKind::Erase => probe.read_register(2)?.wrapping_sub(addr),
                };
                if qemu_len != len && mismatch.is_none() {
                    mismatch = Some(qemu_len);
                }
                Ok(true)
            },
        )
        .map_err(|e| e.to_string());
        // The core sits on the breakpoint: SIGKILL is the power cut.
        self.machine.off().map_err(|e| e.to_string())?;
        drop(gdb);
        let reached = reached?;
        if let Some(l) = mismatch {
            return Err(format!(
                "QEMU's {} at 0x{addr:06x} is {l} bytes, the in-memory one {len}",
                kind.as_str()
            ));
        }
        match reached {
            Some(_) => Ok(()),
            None => Err(format!(
                "the firmware never made {} #{} at 0x{addr:06x} within {LIFE:?}",
                kind.as_str(),
                t.nth
            )),
        }
    }

    /// Second life: power back on, read the console until the board ends somewhere.
    fn settle(&mut self, v1: ota_core::Version, v2: ota_core::Version) -> (String, Vec<String>) {
        std::thread::sleep(Duration::from_millis(100));
        self.drain();
        self.machine.set_start_paused(false);
        if let Err(e) = self.machine.on() {
            return (format!("not powered on: {e}"), Vec::new());
        }
        let confirmed = format!("app: v{v2} confirmed");
        let old = format!("app: v{v1} running");
        // A check-in on v1 reporting a revert, or answered with nothing to do: settled there
        // (as the in-memory engine settles once a check-in is answered `none`).
        let old_checkin = format!("checkin: version={v1} state=");
        let deadline = Instant::now() + LIFE;
        let mut tail: Vec<String> = Vec::new();
        let (mut reverted, mut on_old) = (false, false);
        while Instant::now() < deadline {
            for line in self.lines(Duration::from_millis(100)) {
                if line.starts_with(&confirmed) {
                    return ("updated".into(), tail);
                }
                if line.starts_with("boot: FATAL") {
                    tail.push(line);
                    return ("bricked".into(), tail);
                }
                if let Some(rest) = line.strip_prefix(&old_checkin) {
                    // Back on v1 after a revert: v2 is rejected for good on this board.
                    let end = if rest.starts_with("reverted") {
                        Some("rolled-back")
                    } else if line.ends_with("-> command=none") {
                        Some("unchanged")
                    } else {
                        None
                    };
                    if let Some(end) = end {
                        tail.push(line);
                        return (end.into(), tail);
                    }
                }
                reverted |= line.starts_with("boot: revert");
                on_old |= line.starts_with(&old);
                tail.push(line);
                if tail.len() > 20 {
                    tail.remove(0);
                }
            }
        }
        let end = if reverted {
            "rolled-back"
        } else if on_old {
            "unchanged"
        } else {
            "no end within the time limit"
        };
        (end.into(), tail)
    }

    /// Complete console lines read within `wait`.
    fn lines(&mut self, wait: Duration) -> Vec<String> {
        let mut buf = [0u8; 4096];
        if let Ok(n) = self.console.read(&mut buf, wait) {
            self.pending.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let mut out = Vec::new();
        while let Some(i) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=i).collect();
            out.push(line.trim_end().to_string());
        }
        out
    }

    /// Drops what the console holds (the previous life's output).
    fn drain(&mut self) {
        while !self.lines(Duration::from_millis(20)).is_empty() {}
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_core::nor::Op;

    fn op(index: u64, kind: OpKind, addr: u32) -> PhasedOp {
        PhasedOp {
            op: Op {
                index,
                kind,
                addr,
                len: 256,
                effective: 256,
            },
            phase: ota_core::sweep::Phase::SlotWrite,
        }
    }

    #[test]
    fn spread_takes_the_ends_and_evenly_between() {
        assert_eq!(spread(10, 3), [0, 4, 9]);
        assert_eq!(spread(3, 5), [0, 1, 2]);
        assert_eq!(spread(5, 1), [0]);
        assert!(spread(0, 4).is_empty());
    }

    #[test]
    fn the_sample_names_each_cut_by_its_offset_and_occurrence() {
        let l = ota_core::layout::SIM;
        let (s0, b) = (l.state[0], l.slot(1));
        let log = vec![
            op(0, OpKind::Erase, s0),
            op(1, OpKind::Program, s0),
            op(2, OpKind::Program, b),
            op(3, OpKind::Program, b + 256),
            op(4, OpKind::Program, l.slot(0)),
            op(5, OpKind::Erase, s0),
            op(6, OpKind::Program, s0),
        ];
        let (candidates, t) = sample(&log, &l, 10);
        assert_eq!(candidates, 6, "slot A is neither region");
        let named: Vec<(u64, &str, u32)> =
            t.iter().map(|t| (t.p.op.index, t.region, t.nth)).collect();
        assert_eq!(
            named,
            [
                (0, "state", 1),
                (1, "state", 1),
                (2, "inactive-slot", 1),
                (3, "inactive-slot", 1),
                (5, "state", 2),
                (6, "state", 2),
            ]
        );
        let (_, two) = sample(&log, &l, 2);
        assert_eq!(two.len(), 2);
        assert_eq!((two[0].region, two[1].region), ("state", "inactive-slot"));
    }
}
