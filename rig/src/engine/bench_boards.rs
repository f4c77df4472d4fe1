//! The hardware boards of a bench, opened for one run: locked, powered to their safe state,
//! their consoles read from before the first power-on, and lent to one scenario at a time.
//!
//! A board outlives attempts (its flash keeps whatever the last scenario left), so each attempt
//! provisions it first (probe flash of the golden image, or a check that it runs the starting
//! firmware) and, after a bricked or infra-error outcome, restores it (see the engine). A board
//! whose restore fails is taken out of the run with the reason; the others go on.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::backend::button::RecoveryButton;
use crate::backend::emulated::{EmulatedButton, EmulatedLine, EmulatedProbe};
use crate::backend::relay::{DigitalOutput, RelayConfig, RelaySwitch, SafeState};
use crate::backend::sim::{SimPower, SimSpec};
use crate::bench::{Bench, BoardClass, BoardConfig, ConsoleConfig, PowerConfig, ProbeConfig};
use crate::board::{PowerSwitch, Probe};
use crate::console::ConsoleReader;
use crate::lock::BoardLock;
use crate::timeline::BoardLane;

/// A power switch shared between the engine's blocking calls.
pub type SharedPower = Arc<Mutex<Box<dyn PowerSwitch>>>;
/// A probe shared between the engine's blocking calls.
pub type SharedProbe = Arc<Mutex<Box<dyn Probe>>>;

/// One hardware (or emulated hardware) board, open for the run.
pub struct BenchBoard {
    pub name: Arc<str>,
    pub kind: String,
    pub device_id: String,
    pub emulated: bool,
    /// Where the board's console reader, relay and (emulated) flash report.
    pub lane: BoardLane,
    pub power: SharedPower,
    pub probe: Option<SharedProbe>,
    /// The board's recovery button (the factory-reset drill), if wired.
    pub button: Option<RecoveryButton>,
    /// The update server's socket, bound once for the run (the firmware's server address is
    /// fixed); every attempt serves on a clone of it.
    pub listener: std::net::TcpListener,
    /// The board's own images (a Pico W: built from its firmware directory, whose builds
    /// carry its server address), or `None` for the run's sim images.
    pub images: Option<crate::images::ImageStore>,
    /// Set when the board could not be restored: why it takes no more scenarios.
    pub out_of_run: Option<String>,
    /// The bench's factor on scenario time limits for this board (`time_scale:`).
    pub time_scale: f64,
    /// The file that is the board's flash, when the rig has it (a QEMU board): `tamper`
    /// steps change it while the board is off.
    pub flash_file: Option<PathBuf>,
    // Dropped in this order: the console reader stops, then the lock is released. The power
    // switch goes to its safe state when the last `SharedPower` is dropped.
    _console: ConsoleReader,
    _lock: BoardLock,
}

impl BenchBoard {
    /// The address the update server listens on.
    pub fn server_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }
}

impl super::AttemptRun<'_> {
    /// A scenario time limit on this attempt's board: scaled by its bench's `time_scale:`.
    pub(super) fn scaled(&self, limit: Duration) -> Duration {
        match &self.kind {
            super::strategy::BoardKind::Bench(b) => limit.mul_f64(b.time_scale),
            super::strategy::BoardKind::Sim => limit,
        }
    }
}

/// What opening a board needs from the run.
pub struct OpenOptions<'a> {
    pub bench_file: &'a Path,
    /// Scratch space: emulated boards keep their flash files here.
    pub work_dir: &'a Path,
    /// Where board locks live (shared by every rig process on the machine).
    pub lock_dir: &'a Path,
    /// How to start a sim board (`rig __sim-board`), for emulated boards.
    pub sim_program: &'a [std::ffi::OsString],
    pub sim_args: &'a [String],
    /// The run's sim images (an emulated board's `factory_firmware`).
    pub images: &'a crate::images::ImageStore,
}

/// The default lock directory: one per machine, so two rig processes see each other.
pub fn default_lock_dir() -> PathBuf {
    std::env::var_os("OTARIG_LOCK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("otarig-locks"))
}

/// Boards lent to scenarios, one scenario per board at a time.
pub struct BoardPool {
    free: Mutex<Vec<BenchBoard>>,
    returned: Condvar,
    size: usize,
}

impl BoardPool {
    /// Opens `names` of `bench`: every board or none (a board that fails to open is an error
    /// naming it, and the ones opened so far go back to their safe state).
    pub fn open(bench: &Bench, names: &[&str], opts: &OpenOptions<'_>) -> Result<Self, String> {
        let mut boards = Vec::new();
        for name in names {
            let cfg = bench
                .boards
                .get(*name)
                .ok_or_else(|| format!("no board `{name}`"))?;
            let board = open_board(name, cfg, opts)
                .map_err(|e| format!("{}: board `{name}`: {e}", opts.bench_file.display()))?;
            boards.push(board);
        }
        let size = boards.len();
        Ok(Self {
            free: Mutex::new(boards),
            returned: Condvar::new(),
            size,
        })
    }

    pub fn size(&self) -> usize {
        self.size
    }

    fn lock(&self) -> MutexGuard<'_, Vec<BenchBoard>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a board that is still in the run. `Err` with the reasons when every board is
    /// out of the run.
    pub fn take(&self) -> Result<BenchBoard, String> {
        let mut free = self.lock();
        loop {
            if let Some(i) = free.iter().position(|b| b.out_of_run.is_none()) {
                return Ok(free.swap_remove(i));
            }
            if free.len() == self.size {
                let why: Vec<String> = free
                    .iter()
                    .map(|b| format!("{}: {}", b.name, b.out_of_run.as_deref().unwrap_or("?")))
                    .collect();
                return Err(format!(
                    "every board of the bench is out of the run ({})",
                    why.join("; ")
                ));
            }
            free = self
                .returned
                .wait_timeout(free, Duration::from_millis(500))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Gives a board back after a scenario.
    pub fn give(&self, board: BenchBoard) {
        self.lock().push(board);
        self.returned.notify_all();
    }

    /// Boards taken out of the run, with why.
    pub fn out_of_run(&self) -> Vec<(String, String)> {
        self.lock()
            .iter()
            .filter_map(|b| Some((b.name.to_string(), b.out_of_run.clone()?)))
            .collect()
    }
}

fn relay_config(power: &PowerConfig) -> Option<(u8, RelayConfig)> {
    match power {
        PowerConfig::Relay {
            gpio,
            active_low,
            min_off,
            safe,
        } => Some((
            *gpio,
            RelayConfig {
                active_low: *active_low,
                min_off: min_off.map_or(Duration::from_millis(500), |d| d.0),
                safe: safe.unwrap_or(SafeState::Off),
            },
        )),
        PowerConfig::Sim {} => None,
    }
}

fn open_board(name: &str, cfg: &BoardConfig, opts: &OpenOptions<'_>) -> Result<BenchBoard, String> {
    let Ok(BoardClass::Hardware { emulated }) = cfg.class() else {
        return Err("not a hardware board".into());
    };
    cfg.runnable()?;
    let (gpio, relay) =
        relay_config(&cfg.power).ok_or("a hardware board needs relay power".to_string())?;
    let images = match cfg.kind.as_str() {
        "sim" => None,
        "pico-w" => {
            let dir = cfg
                .firmware
                .as_ref()
                .map(|d| opts.bench_file.parent().unwrap_or(Path::new(".")).join(d))
                .ok_or("a pico-w board needs `firmware: DIR` (its app and bootloader builds)")?;
            let firmware = crate::images::Firmware::PicoW { dir };
            let store_dir = opts.work_dir.join(name).join("images");
            Some(
                crate::images::ImageStore::create_for(&store_dir, firmware)
                    .map_err(|e| e.to_string())?,
            )
        }
        "qemu" => {
            let q = cfg
                .qemu
                .as_ref()
                .ok_or("a qemu board needs a `qemu:` block")?;
            let dir = opts
                .bench_file
                .parent()
                .unwrap_or(Path::new("."))
                .join(&q.firmware);
            let boot = crate::images::qemu::bootloader(&dir);
            if !boot.is_file() {
                return Err(format!(
                    "qemu.firmware: no {} (build the firmware with firmware-under-test/boards/qemu-mps2/tools/build-drills.sh {})",
                    boot.display(),
                    dir.display()
                ));
            }
            let store_dir = opts.work_dir.join(name).join("images");
            Some(
                crate::images::ImageStore::create_for(
                    &store_dir,
                    crate::images::Firmware::Qemu { dir },
                )
                .map_err(|e| e.to_string())?,
            )
        }
        other => return Err(format!("no images for board kind `{other}`")),
    };
    // Lock first: nothing is touched on a board another rig drives.
    let lock = BoardLock::acquire(opts.lock_dir, name).map_err(|e| e.to_string())?;
    let lane = BoardLane::default();
    let listen = match (&cfg.server, emulated) {
        (Some(s), _) => s.listen,
        (None, true) => SocketAddr::from(([127, 0, 0, 1], 0)),
        (None, false) => return Err("no `server:`".into()),
    };
    let listener = std::net::TcpListener::bind(listen).map_err(|e| {
        format!("cannot listen on {listen} for the board's update server: {e} (is another server using the port?)")
    })?;
    let (line, console, probe, button, device_id): BoardParts = if let Some(q) = &cfg.qemu {
        let store = images.as_ref().ok_or("a qemu board has its own images")?;
        open_qemu(
            name,
            cfg,
            q,
            store,
            &listener,
            &lane,
            relay.active_low,
            opts,
        )?
    } else if emulated {
        let dir = opts.work_dir.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let flash = dir.join("flash.bin");
        // A board fresh from the factory line: blank until its probe flashes it, or with the
        // firmware its factory flashed.
        let _ = std::fs::remove_file(&flash);
        if let Some(v) = cfg.factory_firmware {
            let def = crate::scenario::ImageDef::good(v.0);
            let file = opts
                .images
                .get(&format!("factory-{}", v.0), &def)
                .map_err(|e| e.to_string())?;
            let (golden, _) = opts.images.golden(&file).map_err(|e| e.to_string())?;
            std::fs::copy(&golden, &flash).map_err(|e| format!("{}: {e}", flash.display()))?;
        }
        let device_id = cfg.device_id.clone().unwrap_or_else(|| name.to_string());
        let addr = listener
            .local_addr()
            .map_err(|e| format!("server socket: {e}"))?;
        let spec = SimSpec {
            program: opts.sim_program.to_vec(),
            flash: flash.clone(),
            flash_log: dir.join("flash.log"),
            server_url: format!("http://{addr}"),
            device_id: device_id.clone(),
            factory: None,
            trust_key: None,
            extra_args: opts.sim_args.to_vec(),
        };
        let (sim, console) = SimPower::new_pty(spec, lane.clone()).map_err(|e| e.to_string())?;
        let sim = Arc::new(Mutex::new(sim.behind_relay()));
        let probe: Option<Box<dyn Probe>> = match cfg.probe {
            Some(ProbeConfig::Emulated {}) => {
                Some(Box::new(EmulatedProbe::new(Arc::clone(&sim), flash)))
            }
            _ => None,
        };
        let button: Option<Box<dyn DigitalOutput>> = cfg.recovery_button.as_ref().map(|b| {
            Box::new(EmulatedButton::new(Arc::clone(&sim), b.active_low)) as Box<dyn DigitalOutput>
        });
        (
            Box::new(EmulatedLine::new(sim, relay.active_low)),
            Box::new(console),
            probe,
            button,
            device_id,
        )
    } else {
        let line = gpio_line(gpio)?;
        let ConsoleConfig::Serial { port, baud } = &cfg.console else {
            return Err("a hardware board needs a serial console".into());
        };
        let console =
            crate::backend::serial::SerialConsole::open(port, *baud).map_err(|e| e.to_string())?;
        let probe = match &cfg.probe {
            Some(ProbeConfig::ProbeRs { selector, chip }) => {
                Some(attach_probe(name, selector, chip)?)
            }
            _ => None,
        };
        let button = match &cfg.recovery_button {
            Some(b) => Some(gpio_line(b.gpio)?),
            None => None,
        };
        (
            line,
            Box::new(console),
            probe,
            button,
            cfg.device_id.clone().unwrap_or_default(),
        )
    };
    let button = match (button, &cfg.recovery_button) {
        (Some(out), Some(b)) => {
            Some(RecoveryButton::new(out, b.active_low).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    let relay = RelaySwitch::new(line, relay)
        .map_err(|e| e.to_string())?
        .with_lane(lane.clone());
    let console = crate::console::spawn_reader(console, lane.clone());
    Ok(BenchBoard {
        name: Arc::from(name),
        kind: cfg.kind.clone(),
        device_id,
        emulated,
        lane,
        power: Arc::new(Mutex::new(Box::new(relay))),
        probe: probe.map(|p| Arc::new(Mutex::new(p))),
        button,
        listener,
        images,
        out_of_run: None,
        time_scale: cfg.time_scale(),
        flash_file: cfg
            .qemu
            .as_ref()
            .map(|_| opts.work_dir.join(name).join("flash.bin")),
        _console: console,
        _lock: lock,
    })
}

/// The emulated parts of a QEMU board: QEMU started and killed by its relay line, its
/// console a pty, its probe the gdbstub, its flash file provisioned from `store`.
#[allow(clippy::too_many_arguments)]
fn open_qemu(
    name: &str,
    cfg: &BoardConfig,
    q: &crate::bench::QemuConfig,
    store: &crate::images::ImageStore,
    listener: &std::net::TcpListener,
    lane: &BoardLane,
    active_low: bool,
    opts: &OpenOptions<'_>,
) -> Result<BoardParts, String> {
    use crate::backend::qemu::{QemuMachine, QemuProbe, QemuSpec};
    let dir = std::path::absolute(opts.work_dir.join(name))
        .map_err(|e| format!("{}: {e}", opts.work_dir.display()))?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let flash = dir.join("flash.bin");
    if flash.to_string_lossy().contains(char::is_whitespace) {
        return Err(format!(
            "{}: QEMU's semihosting command line cannot carry a path with spaces (use another work directory)",
            flash.display()
        ));
    }
    // Blank until the probe flashes it (QEMU's bootloader says `no flash file` meanwhile), or
    // what its factory flashed.
    let _ = std::fs::remove_file(&flash);
    if let Some(v) = cfg.factory_firmware {
        let def = crate::scenario::ImageDef::good(v.0);
        let file = store
            .get(&format!("factory-{}", v.0), &def)
            .map_err(|e| e.to_string())?;
        let (golden, _) = store.golden(&file).map_err(|e| e.to_string())?;
        std::fs::copy(&golden, &flash).map_err(|e| format!("{}: {e}", flash.display()))?;
    }
    if find_in_path("socat").is_none() {
        return Err("QEMU relays the board's network with `socat`, which is not on the PATH (apt-get install socat)".into());
    }
    let binary = q
        .binary
        .clone()
        .unwrap_or_else(|| PathBuf::from("qemu-system-arm"));
    if binary.components().count() == 1 && find_in_path(&binary).is_none() {
        return Err(format!(
            "qemu.binary: `{}` is not on the PATH (apt-get install qemu-system-arm)",
            binary.display()
        ));
    }
    let gdb_port = match cfg.probe {
        Some(ProbeConfig::Gdb { port }) => port,
        _ => return Err("a qemu board needs `probe: { gdb: { port: PORT } }`".into()),
    };
    if let Some((lo, hi)) = ephemeral_ports()
        && (lo..=hi).contains(&gdb_port)
    {
        return Err(format!(
            "probe.gdb.port {gdb_port} is in this machine's ephemeral port range {lo}-{hi} (/proc/sys/net/ipv4/ip_local_port_range): an outgoing connection can take it and QEMU then cannot listen there; pick a port below {lo}"
        ));
    }
    let firmware_dir = store_firmware_dir(store)?;
    let spec = QemuSpec {
        binary,
        bootloader: std::path::absolute(crate::images::qemu::bootloader(&firmware_dir))
            .map_err(|e| e.to_string())?,
        flash,
        mac: q.mac,
        server_port: listener
            .local_addr()
            .map_err(|e| format!("server socket: {e}"))?
            .port(),
        gdb_port,
    };
    let (machine, console) = QemuMachine::new_pty(spec, lane.clone()).map_err(|e| e.to_string())?;
    let machine = Arc::new(Mutex::new(machine));
    let probe: Option<Box<dyn Probe>> = Some(Box::new(QemuProbe::new(Arc::clone(&machine))));
    let button: Option<Box<dyn DigitalOutput>> = cfg.recovery_button.as_ref().map(|b| {
        Box::new(EmulatedButton::new(Arc::clone(&machine), b.active_low)) as Box<dyn DigitalOutput>
    });
    Ok((
        Box::new(EmulatedLine::new(machine, active_low)),
        Box::new(console),
        probe,
        button,
        q.mac.device_id(),
    ))
}

fn store_firmware_dir(store: &crate::images::ImageStore) -> Result<PathBuf, String> {
    match store.firmware() {
        crate::images::Firmware::Qemu { dir } => Ok(dir.clone()),
        _ => Err("not a qemu image store".into()),
    }
}

/// The ports the kernel hands to outgoing connections (Linux), if it says.
fn ephemeral_ports() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|p| p.parse::<u16>().ok());
    Some((it.next()??, it.next()??))
}

/// `program` as found on the `PATH`.
fn find_in_path(program: impl AsRef<Path>) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program.as_ref()))
            .find(|p| p.is_file())
    })
}

/// A board's relay line, console port, probe, recovery button line and device id.
type BoardParts = (
    Box<dyn DigitalOutput>,
    Box<dyn crate::board::ConsolePort>,
    Option<Box<dyn Probe>>,
    Option<Box<dyn DigitalOutput>>,
    String,
);

#[cfg(feature = "hardware")]
fn gpio_line(gpio: u8) -> Result<Box<dyn DigitalOutput>, String> {
    crate::backend::relay::GpioOutput::open(gpio)
        .map(|o| Box::new(o) as Box<dyn DigitalOutput>)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "hardware"))]
fn gpio_line(gpio: u8) -> Result<Box<dyn DigitalOutput>, String> {
    Err(format!(
        "cannot open GPIO {gpio}: this rig was built without the `hardware` feature (rppal)"
    ))
}

#[cfg(feature = "probe")]
fn attach_probe(
    name: &str,
    selector: &crate::backend::probe_rs::select::ProbeSelector,
    chip: &str,
) -> Result<Box<dyn Probe>, String> {
    use crate::backend::probe_rs::{ProbeSpec, ProbeWorker, Timeouts};
    ProbeWorker::attach(ProbeSpec::new(name, selector, chip), Timeouts::default())
        .map(|h| Box::new(h) as Box<dyn Probe>)
        .map_err(|e| format!("probe {selector} ({chip}): {e}"))
}

#[cfg(not(feature = "probe"))]
fn attach_probe(
    _name: &str,
    selector: &crate::backend::probe_rs::select::ProbeSelector,
    chip: &str,
) -> Result<Box<dyn Probe>, String> {
    Err(format!(
        "probe {selector} ({chip}): this rig was built without the probe-rs backend (feature `probe`); build with `--features probe` or remove `probe:`"
    ))
}
