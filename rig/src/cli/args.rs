//! Command-line arguments (stage one: what the user typed). `run::plan` turns them into a
//! validated plan (stage two).

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{Parser, Subcommand, ValueEnum};
use ota_core::payload::Drill;

use crate::scenario::Corruption;

/// otarig: prove that an over-the-air firmware update cannot brick a device.
#[derive(Debug, Parser)]
#[command(name = "rig", version, about, long_about = None)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenarios (default: every scenario in scenarios/) on the simulated board.
    Run(RunArgs),
    /// Validate scenario files without running them.
    Check(CheckArgs),
    /// Generate a release signing key pair (release.key, release.pub).
    Keygen(KeygenArgs),
    /// Build, sign, break and inspect firmware images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Cut power at every flash operation of an update and check the board always recovers.
    #[command(subcommand)]
    Sweep(SweepCommand),
    /// Rehearse a staged-rollout runbook: a simulated fleet (`--fleet N`) or the bench's boards
    /// as the engineering phase (`--bench FILE`).
    Rollout(RolloutArgs),
    /// Probe a bench's hardware: click each relay, check each console answers, find probes.
    BenchCheck {
        /// The bench file (see scenarios/bench.example.yaml).
        #[arg(long)]
        bench: std::path::PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct RolloutArgs {
    /// The runbook (scenarios/runbooks/*.yaml); several may be given, or a directory.
    #[arg(long = "runbook", required_unless_present = "from")]
    pub runbooks: Vec<std::path::PathBuf>,
    /// A backend's own rollout definition instead: `--from hawkbit|aws-iot-job|mender
    /// FILE.json` (its drills come from FILE.rig.yaml beside it).
    #[arg(long, num_args = 2, value_names = ["BACKEND", "FILE"], conflicts_with = "runbooks")]
    pub from: Option<Vec<String>>,
    /// Simulated fleet size (default: the runbook's `fleet.devices`).
    #[arg(long, conflicts_with = "bench")]
    pub fleet: Option<u32>,
    /// Run the runbook's engineering phase on the boards of this bench file, in real time.
    #[arg(long)]
    pub bench: Option<std::path::PathBuf>,
    /// Device mix, overriding the runbook's: `bad-wifi=10%,power-cut=5%,rev-b=5%,offline=2%`.
    #[arg(long)]
    pub mix: Option<String>,
    /// Seed (default: fixed, so a run is reproducible; the report prints it).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How the simulated fleet reaches the fake-server: `in-process` pipes (same HTTP,
    /// routes and body faults, no kernel TCP), `tcp` on loopback, or `auto` (in process
    /// unless a fault rule acts on the socket itself: an RST, bytes past HTTP framing).
    #[arg(long, value_enum, default_value_t = crate::rollout::FleetTransport::Auto)]
    pub transport: crate::rollout::FleetTransport,
    /// Where the reports go.
    #[arg(long, default_value = "reports")]
    pub reports: std::path::PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum SweepCommand {
    /// Every flash operation of the path the scenario takes (download, slot write, stage,
    /// trial, confirm / revert / rollback / refusal), cut and (with --torn) torn in every tear
    /// shape; every point must end at the scenario's `outcome:`. Survival map. Exit 0 all
    /// points ended there, 101 some did not, 2 nothing to sweep (an empty or inverted range, a
    /// path that writes nothing), 130 interrupted (the partial map is written).
    PowerCut(SweepArgs),
}

#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// The scenario whose path is swept: its release, faults, rollout and commands decide
    /// update, failed trial, rollback, refusal or no-op, and its `outcome:` is what every
    /// point must end as.
    #[arg(long)]
    pub scenario: std::path::PathBuf,
    /// Also tear every operation, in every tear shape (see --torn-shapes).
    #[arg(long)]
    pub torn: bool,
    /// Tear shapes to try at every operation (implies --torn; default with --torn: all):
    /// `byte` (a program lands 1 byte), `words` (a small program, ≤ 128 bytes that matter,
    /// lands up to each 4-byte boundary), `half` (half a program; half an erase, the rest
    /// garbage), `all-but-one` (a program lands all but its last byte), `erase-prefix` (an
    /// erase stops after a prefix), `erase-bits` (an erase leaves bytes between old and 0xFF).
    #[arg(long, value_delimiter = ',', value_name = "SHAPE,...")]
    pub torn_shapes: Vec<ota_core::nor::TearFamily>,
    /// Torn operations also leave unstable bits: a seeded set of the bits they were changing
    /// reads back differently on every read until the sector is erased (implies --torn).
    #[arg(long)]
    pub unstable_bits: bool,
    /// Also cut again at K points during each recovery.
    #[arg(long, default_value_t = 0)]
    pub nested: u32,
    /// Worker threads (default: number of CPUs).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// First operation index to sweep.
    #[arg(long)]
    pub from: Option<u64>,
    /// Last operation index to sweep.
    #[arg(long)]
    pub to: Option<u64>,
    /// `memory` (fast, the default), `process` (also re-run a sample of points with the real
    /// sim-board process and check both agree) or `qemu` (also cut a sample of points on the
    /// compiled QEMU firmware, with breakpoints, and check both agree).
    #[arg(long, value_enum, default_value_t = Replay::Memory)]
    pub replay: Replay,
    /// With --replay=process: re-run every N-th point.
    #[arg(long, default_value_t = 25)]
    pub process_every: usize,
    /// With --replay=qemu: how many points to cut on QEMU (state-record and slot writes).
    #[arg(long, default_value_t = 50)]
    pub qemu_points: usize,
    /// With --replay=qemu: the QEMU firmware directory (what
    /// firmware-under-test/boards/qemu-mps2/tools/build-drills.sh writes).
    #[arg(long, default_value = "target/qemu-mps2-drills")]
    pub qemu_firmware: std::path::PathBuf,
    /// With --replay=qemu: the gdbstub's loopback port (below the ephemeral port range).
    #[arg(long, default_value_t = 23340)]
    pub qemu_gdb_port: u16,
    /// With --replay=qemu: the emulator.
    #[arg(long, default_value = "qemu-system-arm")]
    pub qemu_binary: std::path::PathBuf,
    /// Where the sweep report goes.
    #[arg(long, default_value = "reports")]
    pub reports: std::path::PathBuf,
    /// TEST ONLY: sweep a deliberately broken firmware (`state-before-data`,
    /// `skip-state-crc`, ...), to prove the sweep catches it.
    #[arg(long, hide = true, value_enum)]
    pub quirk: Option<SweepQuirk>,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario files or directories, and test-name filters (anything that is not an
    /// existing path is a filter, as in `cargo test FILTER`).
    pub items: Vec<String>,
    /// Scenarios run in parallel (one simulated board each). Default: number of CPUs, max 4.
    #[arg(long, short = 'j', alias = "test-threads")]
    pub jobs: Option<usize>,
    /// Run every scenario N times (1 or more) and report the pass rate.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: Option<u32>,
    /// Seed for everything random in the run (printed in every replay command).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Filters match scenario names exactly.
    #[arg(long)]
    pub exact: bool,
    /// List scenarios instead of running them.
    #[arg(long)]
    pub list: bool,
    /// Run only part K of N of the selected scenarios (`K/N` or `count:K/N`, as cargo-nextest
    /// spells it): in name order, the i-th scenario belongs to part (i mod N) + 1. N runners
    /// given 1/N .. N/N run every scenario exactly once.
    #[arg(long, value_name = "K/N")]
    pub partition: Option<Partition>,
    /// Run only scenarios marked `ignore: true`.
    #[arg(long)]
    pub ignored: bool,
    /// Run ignored scenarios too.
    #[arg(long)]
    pub include_ignored: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Pretty)]
    pub format: OutputFormat,
    /// Where run reports go.
    #[arg(long, default_value = "reports")]
    pub reports: PathBuf,
    /// Board(s) to run on: `sim` (the default), or a board name, kind or label from --bench
    /// (every matching board, in parallel).
    #[arg(long, default_value = "sim")]
    pub board: String,
    /// Bench file describing the boards (see scenarios/bench.example.yaml).
    #[arg(long)]
    pub bench: Option<PathBuf>,
    /// Extra argument passed to every sim board (repeatable), e.g. `--sim-arg=--trial-window=2s`.
    /// Checked against the board's own arguments before anything runs (exit 2 if refused).
    #[arg(long = "sim-arg", allow_hyphen_values = true)]
    pub sim_args: Vec<String>,
    /// Seconds a board may take to settle on a confirmed image after the last step.
    #[arg(long, default_value_t = 15)]
    pub settle_secs: u64,
}

/// `--partition K/N`: part K (1-based) of N, split by count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub part: usize,
    pub of: usize,
}

impl Partition {
    /// Whether the item at `index` (0-based, in the sorted order) is in this part.
    pub fn contains(self, index: usize) -> bool {
        index % self.of == self.part - 1
    }
}

impl std::str::FromStr for Partition {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let spec = s.strip_prefix("count:").unwrap_or(s);
        let (k, n) = spec
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected K/N or count:K/N, e.g. 1/3"))?;
        let number = |x: &str| {
            x.parse::<usize>()
                .map_err(|_| format!("`{s}`: `{x}` is not a whole number (expected K/N, e.g. 1/3)"))
        };
        let (part, of) = (number(k)?, number(n)?);
        if of == 0 || part == 0 || part > of {
            return Err(format!(
                "`{s}`: K must be between 1 and N, and N at least 1"
            ));
        }
        Ok(Self { part, of })
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.part, self.of)
    }
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Scenario files or directories (default: scenarios/).
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Directory for release.key (private, mode 0600) and release.pub.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build a signed sim image.
    Build {
        #[arg(long)]
        version: String,
        /// The drill compiled into the image.
        #[arg(long, value_enum, default_value_t = DrillArg(Drill::None))]
        drill: DrillArg,
        /// Body size in bytes (at most 524032: a 512 KiB slot minus the 256-byte header).
        #[arg(
            long,
            default_value_t = 196_608,
            value_parser = clap::value_parser!(u32).range(..=i64::from(crate::scenario::values::MAX_IMAGE_BODY))
        )]
        size: u32,
        #[arg(long, default_value_t = 1)]
        rollback_counter: u32,
        /// Signing key (release.key).
        #[arg(long)]
        key: PathBuf,
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Re-sign an image's header with a key.
    Sign {
        #[arg(long)]
        key: PathBuf,
        #[arg(short, long)]
        out: PathBuf,
        input: PathBuf,
    },
    /// Break an image on purpose: header, entry, signature, body or truncate:N.
    Corrupt {
        #[arg(long)]
        mode: CorruptMode,
        /// Key used to re-sign where the mode needs it (entry).
        #[arg(long)]
        key: Option<PathBuf>,
        #[arg(short, long)]
        out: PathBuf,
        input: PathBuf,
    },
    /// Print an image's header and whether it verifies: exit 0 when it does, 101 when the image
    /// is defective (header invalid, body hash MISMATCH, or with --key a signature INVALID),
    /// 2 when the file or the key cannot be read.
    Inspect {
        /// Public key to verify with (release.pub).
        #[arg(long)]
        key: Option<PathBuf>,
        input: PathBuf,
    },
    /// Build a Pico W release from firmware builds: a signed image per slot
    /// (`v<VERSION>-a.img`, `v<VERSION>-b.img`, publish them as NAME-a / NAME-b), and with
    /// --golden the factory flash for a probe (bootloader, trusted key, this release in slot A).
    Pico {
        /// Directory of the builds: bootloader.bin, app-a.bin, app-b.bin, app-<drill>-<slot>.bin.
        #[arg(long)]
        firmware: PathBuf,
        #[arg(long)]
        version: String,
        /// The drill compiled into the app builds to use.
        #[arg(long, value_enum, default_value_t = DrillArg(Drill::None))]
        drill: DrillArg,
        #[arg(long, default_value_t = 1)]
        rollback_counter: u32,
        /// Signing key (release.key); the golden image trusts its public half.
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        out_dir: PathBuf,
        /// Also write golden-v<VERSION>.bin, the whole flash from 0x10000000.
        #[arg(long)]
        golden: bool,
    },
}

/// How `rig run` prints progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One line per scenario with its result.
    Pretty,
    /// One character per scenario.
    Terse,
}

/// How a power-cut sweep replays its points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Replay {
    /// In memory only (fast).
    Memory,
    /// Also re-run a sample of points with the real sim-board process and compare.
    Process,
    /// Also cut a sample of points on the compiled QEMU firmware (breakpoints on its flash
    /// writes) and compare each with the in-memory engine's outcome for the same cut.
    Qemu,
}

/// A deliberately broken firmware for a sweep (tests only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SweepQuirk {
    StateBeforeData,
    SkipBodyHash,
    EarlyConfirm,
    SkipStateCrc,
}

impl SweepQuirk {
    /// The firmware's quirk switches with this one on.
    pub fn quirks(self) -> ota_core::device::Quirks {
        ota_core::device::Quirks {
            state_before_data: self == Self::StateBeforeData,
            skip_body_hash: self == Self::SkipBodyHash,
            early_confirm: self == Self::EarlyConfirm,
            skip_state_crc: self == Self::SkipStateCrc,
            ..ota_core::device::Quirks::default()
        }
    }
}

/// A firmware drill on the command line (`--drill crash-in-init`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrillArg(pub Drill);

impl ValueEnum for DrillArg {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            Self(Drill::None),
            Self(Drill::CrashInInit),
            Self(Drill::NoNetwork),
            Self(Drill::Hang),
            Self(Drill::SlowBoot),
            Self(Drill::CrashOnRevB),
        ]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.as_str()))
    }
}

/// How `rig image corrupt` breaks an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorruptMode {
    /// Damage the header, entry point, signature or body.
    Damage(Corruption),
    /// Keep only the first N bytes.
    Truncate(usize),
}

impl std::str::FromStr for CorruptMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(n) = s.strip_prefix("truncate:") {
            return n
                .parse()
                .map(Self::Truncate)
                .map_err(|_| format!("`{s}`: truncate:N needs a byte count"));
        }
        Ok(Self::Damage(match s {
            "header" => Corruption::Header,
            "entry" => Corruption::Entry,
            "signature" => Corruption::Signature,
            "body" => Corruption::Body,
            _ => {
                return Err(format!(
                    "`{s}`: use header, entry, signature, body or truncate:N"
                ));
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_parse_like_nextest_count() {
        let p = |s: &str| s.parse::<Partition>();
        assert_eq!(p("2/3"), Ok(Partition { part: 2, of: 3 }));
        assert_eq!(p("count:1/1"), Ok(Partition { part: 1, of: 1 }));
        for bad in [
            "0/3", "4/3", "1/0", "0/0", "3", "a/3", "1/b", "-1/3", "hash:1/3", "1/3/4", "",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parts_cover_every_index_once() {
        for of in 1..=5 {
            for index in 0..17 {
                let owners = (1..=of)
                    .filter(|&part| Partition { part, of }.contains(index))
                    .collect::<Vec<_>>();
                assert_eq!(owners, [index % of + 1], "index {index} of {of}");
            }
        }
    }

    #[test]
    fn every_drill_is_a_choice() {
        let names: Vec<&str> = DrillArg::value_variants()
            .iter()
            .map(|d| d.0.as_str())
            .collect();
        for name in &names {
            assert_eq!(
                Drill::from_name(name).map(DrillArg),
                DrillArg::from_str(name, false).ok()
            );
        }
        assert_eq!(
            names.len(),
            6,
            "a new drill must be offered on the command line"
        );
    }

    #[test]
    fn corrupt_modes_parse() {
        assert_eq!("body".parse(), Ok(CorruptMode::Damage(Corruption::Body)));
        assert_eq!("truncate:100".parse(), Ok(CorruptMode::Truncate(100)));
        assert!("truncate:x".parse::<CorruptMode>().is_err());
        assert!("everything".parse::<CorruptMode>().is_err());
    }
}
