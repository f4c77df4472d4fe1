//! A QEMU board (`kind: qemu` in bench.yaml): the compiled firmware for the `mps2-an385`
//! machine (`firmware-under-test/boards/qemu-mps2`, whose README has the command line and the
//! flash-file layout) executing in `qemu-system-arm`, driven as emulated hardware.
//!
//! - Power: the emulated relay line starts QEMU (a new process per power-on, the bootloader
//!   ELF loaded by `-kernel`, the app from the flash file) and SIGKILLs it (an exact power
//!   cut: the flash file holds what the firmware got to write, nothing is cached). QEMU dies
//!   with the rig: it is spawned from one long-lived thread per board with
//!   `PR_SET_PDEATHSIG = SIGKILL`.
//! - Console: one pseudo-terminal per board for the run; QEMU's serial port writes to its
//!   master (`-serial stdio`, stdout = the master), the rig reads the slave through the serial
//!   backend, so no boot output is lost across power cycles.
//! - Network: `-nic user,model=lan9118,restrict=on` with a `guestfwd` of the firmware's server
//!   address (10.0.2.100:80) to the board's update server on 127.0.0.1, relayed by `socat`:
//!   the guest reaches nothing else.
//! - Probe ([`QemuProbe`]): QEMU's gdbstub (`-gdb tcp:127.0.0.1:PORT`) through [`GdbRemote`],
//!   reconnected to each new process; flashing writes the flash file.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

use crate::backend::emulated::{EmulatedMachine, Shared, lock, program_flash_file};
use crate::backend::gdb_remote::GdbRemote;
use crate::board::power;
use crate::board::probe::{Error, FlashEvent, FlashReport, FlashRequest, Halted, Probe};
use crate::timeline::{BoardLane, EventKind};

/// The firmware's update server inside QEMU's user network (its `OTARIG_SERVER` default).
pub const GUEST_SERVER: &str = "10.0.2.100:80";

/// An Ethernet MAC address, written `52:54:00:12:34:56`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl std::str::FromStr for MacAddr {
    type Err = String;

    /// ```
    /// use rig::backend::qemu::MacAddr;
    /// let mac: MacAddr = "52:54:00:12:34:0a".parse().unwrap();
    /// assert_eq!(mac.device_id(), "qemu-52540012340a");
    /// assert!("52:54:00:12:34".parse::<MacAddr>().is_err());
    /// assert!("01:54:00:12:34:56".parse::<MacAddr>().is_err(), "multicast");
    /// ```
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a MAC address (six hex bytes: 52:54:00:12:34:56)");
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut out {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *b = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        if out[0] & 1 == 1 {
            return Err(format!(
                "`{s}` is a multicast address (the first byte must be even): a NIC needs a unicast one"
            ));
        }
        Ok(Self(out))
    }
}

impl std::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl<'de> serde::Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl MacAddr {
    /// The id the firmware reports: `qemu-` and the MAC address in hex.
    pub fn device_id(&self) -> String {
        let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
        format!("qemu-{hex}")
    }
}

/// How to start one QEMU board.
#[derive(Debug, Clone)]
pub struct QemuSpec {
    /// `qemu-system-arm` (or a path to it).
    pub binary: PathBuf,
    /// The bootloader ELF (`-kernel`).
    pub bootloader: PathBuf,
    /// The board's 2 MiB flash file (absolute; it goes on the semihosting command line).
    pub flash: PathBuf,
    pub mac: MacAddr,
    /// The board's update server on this machine's loopback.
    pub server_port: u16,
    /// The gdbstub's loopback port.
    pub gdb_port: u16,
}

impl QemuSpec {
    /// QEMU's arguments; `recovery`: the recovery button held at this power-on.
    pub fn args(&self, recovery: bool) -> Vec<String> {
        let mut append = format!("flash={}", self.flash.display());
        if recovery {
            append.push_str(" recovery=1");
        }
        [
            "-M",
            "mps2-an385",
            "-nographic",
            "-monitor",
            "none",
            "-semihosting-config",
            "enable=on,target=native",
            "-kernel",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([
            self.bootloader.display().to_string(),
            "-append".into(),
            append,
            "-nic".into(),
            format!(
                "user,model=lan9118,restrict=on,mac={},guestfwd=tcp:{GUEST_SERVER}-cmd:socat - TCP:127.0.0.1:{}",
                self.mac, self.server_port
            ),
            "-serial".into(),
            "stdio".into(),
            "-gdb".into(),
            format!("tcp:127.0.0.1:{}", self.gdb_port),
        ])
        .collect()
    }

    /// The gdbstub's address.
    pub fn gdb_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.gdb_port))
    }
}

/// What the spawner thread is asked: a command to start, and where the child goes.
type SpawnRequest = (Command, Sender<std::io::Result<Child>>);

/// Starts children from one thread that lives as long as the board: `PR_SET_PDEATHSIG` fires
/// when the *thread* that forked a child ends, so the thread must outlive every child it
/// starts, and it ends with the rig.
struct Spawner {
    tx: Option<Sender<SpawnRequest>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spawner {
    fn start() -> Self {
        let (tx, rx) = channel::<SpawnRequest>();
        let thread = std::thread::spawn(move || {
            for (mut cmd, reply) in rx {
                let _ = reply.send(spawn_dying_with_parent(&mut cmd));
            }
        });
        Self {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    fn spawn(&self, cmd: Command) -> std::io::Result<Child> {
        let gone = || std::io::Error::other("the spawner thread is gone");
        let (reply, rx) = channel();
        self.tx
            .as_ref()
            .ok_or_else(gone)?
            .send((cmd, reply))
            .map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Spawns `cmd` so that it gets SIGKILL when the calling thread (or the whole rig) ends.
fn spawn_dying_with_parent(cmd: &mut Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // async-signal-safe functions (prctl, getppid), touching no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The rig died before the death signal was armed.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::other("the rig is gone"));
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// A QEMU board's power: its process.
pub struct QemuMachine {
    spec: QemuSpec,
    lane: BoardLane,
    /// The console pty's master, QEMU's stdout in every process.
    console: std::os::fd::OwnedFd,
    running: Option<Child>,
    /// Counts processes started: a probe session belongs to one.
    generation: u64,
    powered: bool,
    recovery_button: bool,
    /// Start each process with its core stopped (`-S`) until a debugger lets it run.
    start_paused: bool,
    spawner: Spawner,
}

impl QemuMachine {
    /// The board (off) and its console: a pseudo-terminal read through the serial backend.
    pub fn new_pty(
        spec: QemuSpec,
        lane: BoardLane,
    ) -> Result<(Self, crate::backend::serial::SerialConsole), power::Error> {
        let (master, console) =
            crate::backend::serial::SerialConsole::pty().map_err(power::Error::Other)?;
        Ok((
            Self {
                spec,
                lane,
                console: master,
                running: None,
                generation: 0,
                powered: false,
                recovery_button: false,
                start_paused: false,
                spawner: Spawner::start(),
            },
            console,
        ))
    }

    /// From the next power-on, whether the core waits stopped (`-S`) for a debugger's
    /// continue: nothing runs before breakpoints are in place (exact counts from reset).
    pub fn set_start_paused(&mut self, paused: bool) {
        self.start_paused = paused;
    }

    pub fn spec(&self) -> &QemuSpec {
        &self.spec
    }

    /// The running process's generation (a new one per power-on), if one runs.
    pub fn running_generation(&mut self) -> Option<u64> {
        let alive = self
            .running
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        alive.then_some(self.generation)
    }

    /// The running QEMU's process id (for tests).
    pub fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(Child::id)
    }

    fn note(&self, detail: String) {
        self.lane.push(EventKind::Rig {
            detail: format!("qemu board: {detail}"),
        });
    }

    fn spawn(&mut self) -> Result<Child, power::Error> {
        let out = self.console.try_clone().map_err(power::Error::Spawn)?;
        let mut cmd = Command::new(&self.spec.binary);
        cmd.args(self.spec.args(self.recovery_button));
        if self.start_paused {
            cmd.arg("-S");
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::piped());
        let mut child = self.spawner.spawn(cmd).map_err(|e| {
            power::Error::Other(format!(
                "cannot start {}: {e} (apt-get install qemu-system-arm)",
                self.spec.binary.display()
            ))
        })?;
        if let Some(err) = child.stderr.take() {
            let lane = self.lane.clone();
            // Not joined: QEMU's relays (socat) inherit the pipe and may outlive it briefly.
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    lane.push(EventKind::Rig {
                        detail: format!("qemu stderr: {line}"),
                    });
                }
            });
        }
        Ok(child)
    }

    /// Kills the process (if any) and waits for it: `what` it was, for the timeline.
    fn kill(&mut self) -> Result<Option<String>, power::Error> {
        let Some(mut child) = self.running.take() else {
            return Ok(None);
        };
        let what = match child.try_wait() {
            Ok(Some(status)) => format!("process had exited: {status}"),
            _ => {
                child.kill().map_err(power::Error::Kill)?;
                "SIGKILL".to_string()
            }
        };
        child.wait().map_err(power::Error::Kill)?;
        Ok(Some(what))
    }
}

impl EmulatedMachine for QemuMachine {
    fn on(&mut self) -> Result<(), power::Error> {
        self.powered = true;
        if self.running_generation().is_some() {
            return Ok(());
        }
        self.kill()?;
        let child = self.spawn()?;
        self.generation += 1;
        self.note(format!(
            "power on (pid {}{})",
            child.id(),
            if self.recovery_button {
                ", recovery button held"
            } else {
                ""
            }
        ));
        self.running = Some(child);
        Ok(())
    }

    fn off(&mut self) -> Result<(), power::Error> {
        self.powered = false;
        if let Some(what) = self.kill()? {
            self.note(format!("power off ({what})"));
        }
        Ok(())
    }

    fn halt_process(&mut self) -> Result<(), power::Error> {
        if let Some(what) = self.kill()? {
            self.note(format!("process stopped by the probe ({what})"));
        }
        Ok(())
    }

    fn line_powered(&self) -> bool {
        self.powered
    }

    fn hold_recovery_button(&mut self, held: bool) {
        self.recovery_button = held;
    }
}

impl Drop for QemuMachine {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// The debug probe of a QEMU board: a [`GdbRemote`] session with the running process's
/// gdbstub, opened when first needed after each power-on (connecting halts the core).
pub struct QemuProbe {
    machine: Shared<QemuMachine>,
    flash: PathBuf,
    gdb_addr: SocketAddr,
    session: Option<(u64, GdbRemote)>,
    timeout: Duration,
}

fn failed(op: &'static str, detail: impl std::fmt::Display) -> Error {
    Error::Failed {
        op,
        detail: detail.to_string(),
    }
}

impl QemuProbe {
    pub fn new(machine: Shared<QemuMachine>) -> Self {
        let (flash, gdb_addr) = {
            let m = lock(&machine);
            (m.spec.flash.clone(), m.spec.gdb_addr())
        };
        Self {
            machine,
            flash,
            gdb_addr,
            session: None,
            timeout: Duration::from_secs(5),
        }
    }

    /// The session with the running process, connected if needed; `None` when no process
    /// runs (the board is off).
    fn gdb(&mut self) -> Result<Option<&mut GdbRemote>, Error> {
        let Some(generation) = lock(&self.machine).running_generation() else {
            self.session = None;
            return Ok(None);
        };
        if self.session.as_ref().map(|(g, _)| *g) != Some(generation) {
            self.session = None;
            // QEMU opens its gdbstub port shortly after it starts.
            let deadline = Instant::now() + self.timeout;
            let gdb = loop {
                match GdbRemote::connect(self.gdb_addr, self.flash.clone(), self.timeout) {
                    Ok(g) => break g,
                    Err(e) if Instant::now() >= deadline => return Err(e),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            };
            self.session = Some((generation, gdb));
        }
        Ok(self.session.as_mut().map(|(_, g)| g))
    }

    fn need_gdb(&mut self, op: &'static str) -> Result<&mut GdbRemote, Error> {
        self.gdb()?
            .ok_or_else(|| failed(op, "the board is off (no QEMU process runs)"))
    }
}

impl Probe for QemuProbe {
    fn flash(
        &mut self,
        request: &FlashRequest,
        progress: &mut dyn FnMut(&FlashEvent),
    ) -> Result<FlashReport, Error> {
        // The core stays out of its flash while the file is rewritten.
        if let Some(gdb) = self.gdb()? {
            gdb.halt()?;
        }
        program_flash_file(&self.flash, request, progress)
    }

    /// A power-on reset: the process restarts (its flash file read afresh) if the line is on.
    fn reset(&mut self) -> Result<(), Error> {
        self.session = None;
        let mut m = lock(&self.machine);
        m.halt_process().map_err(|e| failed("reset", e))?;
        if m.line_powered() {
            m.on().map_err(|e| failed("reset", e))?;
        }
        Ok(())
    }

    fn reset_and_halt(&mut self) -> Result<Halted, Error> {
        self.need_gdb("reset_and_halt")?.reset_and_halt()
    }

    fn halt(&mut self) -> Result<Halted, Error> {
        self.need_gdb("halt")?.halt()
    }

    fn resume(&mut self) -> Result<(), Error> {
        self.need_gdb("resume")?.resume()
    }

    fn read_memory(&mut self, range: Range<u64>) -> Result<Vec<u8>, Error> {
        self.need_gdb("read_memory")?.read_memory(range)
    }

    fn set_breakpoint(&mut self, addr: u64) -> Result<(), Error> {
        self.need_gdb("set_breakpoint")?.set_breakpoint(addr)
    }

    fn clear_breakpoint(&mut self, addr: u64) -> Result<(), Error> {
        match self.gdb()? {
            Some(gdb) => gdb.clear_breakpoint(addr),
            // A new process has no breakpoints.
            None => Ok(()),
        }
    }

    fn read_register(&mut self, n: u8) -> Result<u32, Error> {
        self.need_gdb("read_register")?.read_register(n)
    }

    fn wait_halted(&mut self, timeout: Duration) -> Result<Option<Halted>, Error> {
        match self.gdb()? {
            Some(gdb) => gdb.wait_halted(timeout),
            // Off: nothing runs to halt (a breakpoint may still come after the next power-on).
            None => {
                std::thread::sleep(timeout.min(Duration::from_millis(100)));
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_wires_flash_network_console_and_gdbstub() {
        let spec = QemuSpec {
            binary: "qemu-system-arm".into(),
            bootloader: "/fw/bootloader.elf".into(),
            flash: "/w/flash.bin".into(),
            mac: "52:54:00:0a:00:01".parse().expect("mac"),
            server_port: 4321,
            gdb_port: 23301,
        };
        let args = spec.args(false).join(" ");
        assert!(args.contains("-M mps2-an385"), "{args}");
        assert!(
            args.contains("-kernel /fw/bootloader.elf -append flash=/w/flash.bin -nic"),
            "{args}"
        );
        assert!(
            args.contains("restrict=on,mac=52:54:00:0a:00:01,guestfwd=tcp:10.0.2.100:80-cmd:socat - TCP:127.0.0.1:4321"),
            "{args}"
        );
        assert!(
            args.ends_with("-serial stdio -gdb tcp:127.0.0.1:23301"),
            "{args}"
        );
        let held = spec.args(true);
        assert!(
            held.contains(&"flash=/w/flash.bin recovery=1".to_string()),
            "{held:?}"
        );
    }

    #[test]
    fn children_die_with_the_thread_that_spawned_them() {
        let spawner = Spawner::start();
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let mut child = spawner.spawn(cmd).expect("spawn sleep");
        // The spawner's thread ends: its children get SIGKILL (as when the rig dies).
        drop(spawner);
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break Some(s);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.and_then(|s| s.signal()),
            Some(libc::SIGKILL),
            "the child outlived its spawner"
        );
    }
}
