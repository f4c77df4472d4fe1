//! The simulated board: power is the `sim-board` process (SIGKILL is a power cut: no cleanup
//! runs), the console is its stdout, and its flash log becomes flash events on the timeline.
//!
//! The process is the rig binary itself re-executed as `rig __sim-board ...` (or any program
//! given in [`SimSpec::program`]), so `cargo run -p rig` needs no other binary.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::board::console::{self, ConsolePort};
use crate::board::power::{self, PowerState, PowerSwitch};
use crate::timeline::{BoardLane, EventKind};

/// Exit code of a sim-board stopped by `--cut-at-flash-op`.
pub const CUT_EXIT_CODE: i32 = sim_board::CUT_EXIT_CODE;

pub use sim_board::flash::PowerCutEvent;

/// How a line of the board's stderr is put on the timeline (a rig note).
const STDERR: &str = "sim-board stderr: ";

/// The power cut a sim board reported, if `kind` is that report (its stderr line, as
/// [`SimPower`] puts it on the timeline).
pub fn power_cut(kind: &EventKind) -> Option<PowerCutEvent> {
    match kind {
        EventKind::Rig { detail } => PowerCutEvent::parse(detail.strip_prefix(STDERR)?),
        _ => None,
    }
}

/// How to start one simulated board.
#[derive(Debug, Clone)]
pub struct SimSpec {
    /// Program and leading arguments, e.g. `[/path/to/rig, __sim-board]`.
    pub program: Vec<std::ffi::OsString>,
    pub flash: PathBuf,
    pub flash_log: PathBuf,
    pub server_url: String,
    pub device_id: String,
    /// Image and key to provision a missing flash file with. `None`: a board whose flash
    /// file is missing is blank (it prints why and stops), like a board fresh from the factory
    /// line; the rig must flash it first (an emulated board's probe does).
    pub factory: Option<PathBuf>,
    pub trust_key: Option<PathBuf>,
    /// Extra arguments (timing knobs).
    pub extra_args: Vec<String>,
}

pub use crate::board::power::{CutPoint, ExactCut};

struct Running {
    child: Child,
    readers: Vec<JoinHandle<()>>,
}

/// Where the board's stdout goes.
enum ConsoleWire {
    /// A pipe per process, forwarded to [`SimConsole`].
    Pipe(Sender<Vec<u8>>),
    /// The master side of a pseudo-terminal that outlives every process (like a USB-UART
    /// adapter that stays plugged in); the rig reads the slave side through the serial backend.
    Pty(std::os::fd::OwnedFd),
}

/// Power switch of a simulated board.
pub struct SimPower {
    spec: SimSpec,
    lane: BoardLane,
    console: ConsoleWire,
    running: Option<Running>,
    next_cut: Option<ExactCut>,
    behind_relay: bool,
    /// The board's recovery button is held (sampled at power-on).
    recovery_button: bool,
    /// The power line (on/off calls), apart from whether the process runs.
    powered: bool,
    /// Set when the process ended by itself (exact cut or crash).
    exited: Arc<Mutex<Option<i32>>>,
    tail: FlashTail,
}

impl SimPower {
    /// Creates the switch (off) and the console that follows every process it starts.
    pub fn new(spec: SimSpec, lane: BoardLane) -> (Self, SimConsole) {
        let (tx, rx) = channel();
        let console = SimConsole {
            rx,
            pending: Vec::new(),
            name: format!("{}:stdout", spec.device_id),
        };
        (
            Self::with_console(spec, lane, ConsoleWire::Pipe(tx)),
            console,
        )
    }

    /// A switch, off, whose board's stdout goes to `console`.
    fn with_console(spec: SimSpec, lane: BoardLane, console: ConsoleWire) -> Self {
        let tail = FlashTail::start(spec.flash_log.clone(), lane.clone());
        Self {
            spec,
            lane,
            console,
            running: None,
            next_cut: None,
            behind_relay: false,
            recovery_button: false,
            powered: false,
            exited: Arc::new(Mutex::new(None)),
            tail,
        }
    }

    /// Like [`SimPower::new`], but the board's console is a pseudo-terminal read through the
    /// serial backend, exactly as a real board's USB-UART would be.
    pub fn new_pty(
        spec: SimSpec,
        lane: BoardLane,
    ) -> Result<(Self, crate::backend::serial::SerialConsole), power::Error> {
        let (master, console) =
            crate::backend::serial::SerialConsole::pty().map_err(power::Error::Other)?;
        Ok((
            Self::with_console(spec, lane, ConsoleWire::Pty(master)),
            console,
        ))
    }

    /// The exit code if the process ended by itself since the last power-on.
    pub fn exit_status(&mut self) -> Option<i32> {
        if let Some(run) = &mut self.running
            && let Ok(Some(status)) = run.child.try_wait()
        {
            let code = status.code().unwrap_or(-1);
            *self.exited.lock().unwrap_or_else(|e| e.into_inner()) = Some(code);
        }
        *self.exited.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Flash operations seen in the log since the last power-on.
    pub fn flash_ops_since_power_on(&self) -> u64 {
        self.tail.ops_since_reset()
    }

    fn spawn(&mut self) -> Result<Running, power::Error> {
        let Some((program, lead)) = self.spec.program.split_first() else {
            return Err(power::Error::Other(
                "no sim-board program configured".into(),
            ));
        };
        let mut cmd = Command::new(program);
        cmd.args(lead)
            .arg("--flash")
            .arg(&self.spec.flash)
            .arg("--server")
            .arg(&self.spec.server_url)
            .arg("--device")
            .arg(&self.spec.device_id)
            .arg("--flash-log")
            .arg(&self.spec.flash_log)
            .args(&self.spec.extra_args)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            // The board powers off when this process goes away, however it goes.
            .env("OTARIG_SUPPLY_PID", std::process::id().to_string());
        if let Some(factory) = &self.spec.factory {
            cmd.arg("--factory").arg(factory);
        }
        if let Some(key) = &self.spec.trust_key {
            cmd.arg("--trust-key").arg(key);
        }
        match &self.console {
            ConsoleWire::Pipe(_) => {
                cmd.stdout(Stdio::piped());
            }
            ConsoleWire::Pty(master) => {
                let fd = master.try_clone().map_err(power::Error::Spawn)?;
                cmd.stdout(Stdio::from(fd));
            }
        }
        if self.recovery_button {
            cmd.arg("--factory-reset");
        }
        if let Some(cut) = self.next_cut.take() {
            match cut.at {
                CutPoint::FlashOp(op) => cmd.arg("--cut-at-flash-op").arg(op.to_string()),
                CutPoint::SlotOffset(off) => cmd.arg("--cut-at-slot-offset").arg(off.to_string()),
            };
            if cut.torn {
                cmd.arg("--torn");
            }
        }
        let mut child = cmd.spawn().map_err(power::Error::Spawn)?;
        let mut readers = Vec::new();
        if let (Some(mut out), ConsoleWire::Pipe(tx)) = (child.stdout.take(), &self.console) {
            let tx = tx.clone();
            readers.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 8192];
                while let Ok(n) = out.read(&mut buf) {
                    if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }));
        }
        if let Some(err) = child.stderr.take() {
            let lane = self.lane.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    lane.push(EventKind::Rig {
                        detail: format!("{STDERR}{line}"),
                    });
                }
            }));
        }
        Ok(Running { child, readers })
    }
}

impl crate::board::power::ExactCuts for SimPower {
    fn arm_cut(&mut self, cut: Option<ExactCut>) {
        self.next_cut = cut;
    }

    fn stopped(&mut self) -> Option<i32> {
        self.exit_status()
    }
}

impl PowerSwitch for SimPower {
    fn exact_cuts(&mut self) -> Option<&mut dyn crate::board::power::ExactCuts> {
        Some(self)
    }

    fn on(&mut self) -> Result<(), power::Error> {
        self.powered = true;
        if self.running.is_some() && self.exit_status().is_none() {
            return Ok(());
        }
        self.reap();
        *self.exited.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.tail.reset_count();
        let cut = self.next_cut;
        let run = self.spawn()?;
        let detail = match cut {
            Some(c) => format!(
                "power on (exact cut armed at {}{})",
                c.at,
                if c.torn { ", torn" } else { "" }
            ),
            None => "power on".into(),
        };
        self.report_power(true, detail);
        self.running = Some(run);
        Ok(())
    }

    fn off(&mut self) -> Result<(), power::Error> {
        self.powered = false;
        let Some(run) = &mut self.running else {
            return Ok(());
        };
        let already = run.child.try_wait().ok().flatten();
        let detail = match already {
            Some(s) if s.code() == Some(CUT_EXIT_CODE) => {
                "power off (board stopped at its exact flash cut)".to_string()
            }
            Some(s) => format!("power off (board process had exited: {s})"),
            None => {
                run.child.kill().map_err(power::Error::Kill)?;
                "power off (SIGKILL)".to_string()
            }
        };
        self.reap();
        self.report_power(false, detail);
        Ok(())
    }

    fn state(&self) -> PowerState {
        if self.running.is_some() {
            PowerState::On
        } else {
            PowerState::Off
        }
    }
}

impl SimPower {
    /// For a board behind an emulated relay: the relay reports power; this process's starts
    /// and ends become rig notes.
    pub fn behind_relay(mut self) -> Self {
        self.behind_relay = true;
        self
    }

    fn report_power(&self, on: bool, detail: String) {
        if self.behind_relay {
            self.lane.push(EventKind::Rig {
                detail: format!("emulated board: {detail}"),
            });
        } else {
            self.lane.push(EventKind::Power { on, detail });
        }
    }

    /// Holds (or releases) the board's recovery button; the bootloader samples it at power-on.
    pub fn hold_recovery_button(&mut self, held: bool) {
        self.recovery_button = held;
    }

    /// Whether the (emulated) power line is on, whatever the process does.
    pub fn line_powered(&self) -> bool {
        self.powered
    }

    /// Stops the board's process while its power stays on (a probe halting the core).
    pub fn halt_process(&mut self) -> Result<(), power::Error> {
        if let Some(run) = &mut self.running {
            if run.child.try_wait().ok().flatten().is_none() {
                run.child.kill().map_err(power::Error::Kill)?;
            }
            self.reap();
            self.lane.push(EventKind::Rig {
                detail: "emulated board: core halted by the probe".into(),
            });
        }
        Ok(())
    }

    fn reap(&mut self) {
        if let Some(mut run) = self.running.take() {
            let _ = run.child.kill();
            if let Ok(status) = run.child.wait() {
                *self.exited.lock().unwrap_or_else(|e| e.into_inner()) = status.code();
            }
            for r in run.readers.drain(..) {
                let _ = r.join();
            }
            // Let the tail catch up with the last operations the process logged.
            self.tail.flush();
        }
    }
}

impl Drop for SimPower {
    fn drop(&mut self) {
        self.reap();
        self.tail.stop();
    }
}

/// The console of a simulated board: bytes from whichever process is running.
pub struct SimConsole {
    rx: Receiver<Vec<u8>>,
    pending: Vec<u8>,
    name: String,
}

impl ConsolePort for SimConsole {
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, console::Error> {
        if self.pending.is_empty() {
            match self.rx.recv_timeout(timeout) {
                Ok(bytes) => self.pending = bytes,
                Err(RecvTimeoutError::Timeout) => return Ok(0),
                // The power switch is gone: no more output will ever come.
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(console::Error::Disconnected {
                        port: self.name.clone(),
                    });
                }
            }
        }
        let n = self.pending.len().min(buf.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// Follows the sim-board flash log and puts every operation on the timeline.
struct FlashTail {
    stop: Arc<AtomicBool>,
    count: Arc<std::sync::atomic::AtomicU64>,
    flush_req: Arc<(Mutex<u64>, std::sync::Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl FlashTail {
    fn start(path: PathBuf, lane: BoardLane) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let flush_req = Arc::new((Mutex::new(0u64), std::sync::Condvar::new()));
        let thread = {
            let stop = Arc::clone(&stop);
            let count = Arc::clone(&count);
            let flush_req = Arc::clone(&flush_req);
            std::thread::spawn(move || {
                let mut pos = 0u64;
                let mut partial = String::new();
                loop {
                    let done = stop.load(Ordering::Acquire);
                    if let Ok(mut f) = std::fs::File::open(&path)
                        && f.seek(SeekFrom::Start(pos)).is_ok()
                    {
                        let mut chunk = String::new();
                        if let Ok(n) = f.read_to_string(&mut chunk) {
                            pos += n as u64;
                            partial.push_str(&chunk);
                            while let Some(nl) = partial.find('\n') {
                                let line: String = partial.drain(..=nl).collect();
                                if let Some(kind) = parse_flash_line(line.trim_end()) {
                                    count.fetch_add(1, Ordering::AcqRel);
                                    lane.push(kind);
                                }
                            }
                        }
                    }
                    {
                        let (lock, cv) = &*flush_req;
                        let mut served = lock.lock().unwrap_or_else(|e| e.into_inner());
                        *served += 1;
                        cv.notify_all();
                    }
                    if done {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        Self {
            stop,
            count,
            flush_req,
            thread: Some(thread),
        }
    }

    fn ops_since_reset(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    fn reset_count(&self) {
        self.count.store(0, Ordering::Release);
    }

    /// Waits until the tail has read the file at least once more.
    fn flush(&self) {
        let (lock, cv) = &*self.flush_req;
        let mut served = lock.lock().unwrap_or_else(|e| e.into_inner());
        let target = *served + 2;
        while *served < target && self.thread.is_some() {
            let (g, timeout) = cv
                .wait_timeout(served, Duration::from_millis(200))
                .unwrap_or_else(|e| e.into_inner());
            served = g;
            if timeout.timed_out() {
                break;
            }
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Parses `<index> <erase|program> 0x<addr> <len>`.
pub fn parse_flash_line(line: &str) -> Option<EventKind> {
    let mut it = line.split_whitespace();
    let op = it.next()?.parse().ok()?;
    let kind = it.next()?.to_string();
    let addr = u32::from_str_radix(it.next()?.trim_start_matches("0x"), 16).ok()?;
    let len = it.next()?.parse().ok()?;
    Some(EventKind::Flash {
        op,
        kind,
        addr,
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flash_log_lines() {
        assert_eq!(
            parse_flash_line("17 program 0x00081000 256"),
            Some(EventKind::Flash {
                op: 17,
                kind: "program".into(),
                addr: 0x81000,
                len: 256
            })
        );
        assert_eq!(parse_flash_line("garbage"), None);
        assert_eq!(parse_flash_line("1 erase zz 4096"), None);
    }

    #[test]
    fn reads_power_cuts_from_stderr_notes() {
        let cut = PowerCutEvent {
            op: 212,
            kind: ota_core::nor::OpKind::Program,
            addr: 0x0003_0100,
            len: 256,
            torn: true,
        };
        let note = EventKind::Rig {
            detail: format!("{STDERR}{cut}"),
        };
        assert_eq!(power_cut(&note), Some(cut));
        let other = EventKind::Rig {
            detail: format!("{STDERR}sim-board: cannot write the flash file"),
        };
        assert_eq!(power_cut(&other), None);
        // Only the board's stderr reports cuts.
        let console = EventKind::Console {
            line: cut.to_string(),
        };
        assert_eq!(power_cut(&console), None);
    }
}
