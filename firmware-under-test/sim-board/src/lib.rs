//! # sim-board
//!
//! The simulated otarig board: ota-core's bootloader and application logic in one host process,
//! with NOR flash in a file (it survives a SIGKILL, which is a power cut), a console on stdout
//! (the lines of `firmware-under-test/CONSOLE.md`), HTTP to the update server, a watchdog, and
//! an exact power cut at any flash operation (`--cut-at-flash-op N [--torn | --tear-shape SHAPE]`,
//! torn as ota-core's NOR model tears: [`ota_core::nor::Tear`]).
//!
//! RAM is lost on every boot: a reset (update, rollback, watchdog, panic) restarts the
//! bootloader stage with fresh state; only the flash file persists.

mod app;
pub mod flash;
mod http;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

pub use flash::CUT_EXIT_CODE;

/// The simulated otarig board.
#[derive(Debug, Parser)]
#[command(name = "sim-board", version, about)]
pub struct Args {
    /// Flash file (created from --factory when missing).
    #[arg(long)]
    pub flash: PathBuf,
    /// Update server, `http://host:port`.
    #[arg(long)]
    pub server: String,
    /// Device id reported at check-in.
    #[arg(long)]
    pub device: String,
    /// Factory image written to slot A when the flash file is created.
    #[arg(long)]
    pub factory: Option<PathBuf>,
    /// Trusted public key (release.pub) burned into the OTP region when the flash is created.
    #[arg(long)]
    pub trust_key: Option<PathBuf>,
    /// Stop dead at this flash operation (0-based since start): a power cut.
    #[arg(long)]
    pub cut_at_flash_op: Option<u64>,
    /// Stop dead at the first program into a slot at or beyond this byte offset of the slot
    /// (only the inactive slot is ever programmed): a power cut during the slot write.
    #[arg(long, conflicts_with = "cut_at_flash_op")]
    pub cut_at_slot_offset: Option<u32>,
    /// With a cut: tear that operation instead of stopping before it. `--torn` leaves it half
    /// done (torn write or erase); `--torn=SHAPE` lands it as SHAPE (see --tear-shape).
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "half",
        value_name = "SHAPE"
    )]
    pub torn: Option<ota_core::nor::Tear>,
    /// With a cut: how the torn operation lands (implies --torn). `half`; `prefix:N`, its
    /// first N bytes; `bits`, each bit it changes may or may not have (an erase leaves every
    /// byte between old and 0xFF). Append `+unstable` for unstable bits: a seeded set of the
    /// bits it was changing reads back differently on every read until the sector is erased.
    #[arg(long, value_name = "SHAPE")]
    pub tear_shape: Option<ota_core::nor::Tear>,
    /// Hardware revision of this board (`a`, `b`, ...); some drills depend on it.
    #[arg(long, default_value = "a")]
    pub hw_rev: char,
    /// Append one line per flash operation: `<index> <erase|program> 0x<addr> <len>`.
    #[arg(long)]
    pub flash_log: Option<PathBuf>,
    /// Time between check-ins.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub checkin_interval: Duration,
    /// A trial image that has not confirmed within this time is reset.
    #[arg(long, default_value = "800ms", value_parser = parse_duration)]
    pub trial_window: Duration,
    /// Watchdog period (a hung app is reset after it).
    #[arg(long, default_value = "300ms", value_parser = parse_duration)]
    pub watchdog: Duration,
    /// Network timeout for every wait (connect, head, body).
    #[arg(long, default_value = "700ms", value_parser = parse_duration)]
    pub net_timeout: Duration,
    /// Trial boots before the bootloader reverts.
    #[arg(long, default_value_t = ota_core::device::DEFAULT_MAX_ATTEMPTS)]
    pub max_attempts: u8,
    /// The recovery button is held at power-on: the bootloader runs the factory-reset drill
    /// (factory image back into slot A) before it boots.
    #[arg(long)]
    pub factory_reset: bool,
    /// TEST ONLY: make the firmware deliberately wrong, to prove the rig catches it.
    /// `skip-body-hash`: accept a body that does not match its signed hash;
    /// `early-confirm`: confirm a trial image at boot, before any successful check-in;
    /// `state-before-data`: stage before the image is written;
    /// `revert-in-ram`: revert without writing the record (the failed slot stays active);
    /// `skip-state-crc`: trust a state record without checking its CRC.
    #[arg(long = "quirk", value_parser = ["skip-body-hash", "early-confirm", "state-before-data", "revert-in-ram", "skip-state-crc"])]
    pub quirks: Vec<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(format!("`{s}`: give a unit, e.g. 100ms or 2s"));
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration"))?;
    if !(0.0..=3600.0).contains(&(v * mult)) {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

/// Runs the board with `args` (without the program name). Returns only on a usage error or a
/// fatal host problem; a power cut exits the process from inside the flash layer.
/// The process that started the board is its power supply: when it goes away (the rig was
/// killed, even with SIGKILL), the board loses power too instead of running on as an orphan.
fn lose_power_with_parent() {
    #[cfg(unix)]
    {
        // The supply the rig names (it may already be gone by the time this runs), else
        // whoever started the board.
        let parent = std::env::var("OTARIG_SUPPLY_PID")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(std::os::unix::process::parent_id);
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_millis(50));
                if std::os::unix::process::parent_id() != parent {
                    std::process::exit(137);
                }
            }
        });
    }
}

pub fn main_with_args<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    let mut args =
        match Args::try_parse_from(std::iter::once(OsString::from("sim-board")).chain(args)) {
            Ok(a) => a,
            Err(e) => {
                let _ = e.print();
                return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
            }
        };
    if args.tear_shape.is_some() {
        args.torn = args.tear_shape;
    }
    lose_power_with_parent();
    match app::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sim-board: {e}");
            ExitCode::from(2)
        }
    }
}
