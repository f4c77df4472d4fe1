//! The sim board's flash: ota-core's simulated NOR core, persisted to a file after every
//! operation (so a SIGKILL at any moment leaves exactly what a real chip would hold), with an
//! optional per-operation log and an exact power cut that stops the process dead. The cut is
//! reported as one typed line on stderr ([`PowerCutEvent`]) before the process exits with
//! [`CUT_EXIT_CODE`].
//!
//! A torn cut lands the way ota-core's NOR model says ([`ota_core::nor::Tear`]: a prefix, half,
//! bits between old and new, optionally unstable bits). Unstable bits outlive the process in a
//! side file (`<flash>.unstable`, one `<hex addr> <hex mask>` line each) until an erase
//! settles them, so the next power-on reads them as noise too.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
use ota_core::nor::{Cut, FlashError, NorCore, Op, OpKind, Tear};

/// Exit code of a process stopped by `--cut-at-flash-op`.
pub const CUT_EXIT_CODE: i32 = 86;

/// The power cut a sim board took, printed as one line on its stderr just before it exits with
/// [`CUT_EXIT_CODE`], and read back by whoever supplied its power (the rig):
///
/// `otarig-event power-cut op=<n> kind=<erase|program> addr=0x<8 hex digits> len=<n> torn=<true|false>`
///
/// `parse(&event.to_string()) == Some(event)`; anything else on stderr is not an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerCutEvent {
    /// The operation that never completed (0-based since the process started).
    pub op: u64,
    pub kind: OpKind,
    pub addr: u32,
    pub len: u32,
    /// The operation was left half done.
    pub torn: bool,
}

impl PowerCutEvent {
    const PREFIX: &'static str = "otarig-event power-cut ";

    /// Reads the stderr line (one trailing `\r` is ignored); `None` for any other line.
    pub fn parse(line: &str) -> Option<Self> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut words = line.strip_prefix(Self::PREFIX)?.split(' ');
        let mut field = |key: &str| {
            words
                .next()?
                .strip_prefix(key)?
                .strip_prefix('=')
                .filter(|v| !v.is_empty())
        };
        let op = number(field("op")?)?;
        let kind = match field("kind")? {
            "erase" => OpKind::Erase,
            "program" => OpKind::Program,
            _ => return None,
        };
        let addr = field("addr")?.strip_prefix("0x")?;
        if addr.len() != 8 || !addr.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let addr = u32::from_str_radix(addr, 16).ok()?;
        let len = number(field("len")?)?;
        let torn = match field("torn")? {
            "true" => true,
            "false" => false,
            _ => return None,
        };
        if words.next().is_some() {
            return None;
        }
        Some(Self {
            op,
            kind,
            addr,
            len,
            torn,
        })
    }
}

/// A canonical decimal number: digits only, no sign, no leading zero.
fn number<T: std::str::FromStr>(s: &str) -> Option<T> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

impl fmt::Display for PowerCutEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}op={} kind={} addr=0x{:08x} len={} torn={}",
            Self::PREFIX,
            self.op,
            self.kind.as_str(),
            self.addr,
            self.len,
            self.torn
        )
    }
}

pub struct FileFlash {
    core: NorCore,
    file: File,
    log: Option<File>,
    slot_cut: Option<SlotCut>,
    /// How the scheduled cut tears its operation (`None`: a clean cut).
    torn: Option<Tear>,
    /// Where unstable bits persist across power cycles.
    unstable_file: PathBuf,
}

/// A cut at the first program into a slot at or beyond `offset` bytes of it (resolved to an
/// exact operation the moment that program is issued).
#[derive(Debug, Clone, Copy)]
pub struct SlotCut {
    pub slots: [(u32, u32); 2],
    pub offset: u32,
    pub torn: Option<Tear>,
}

impl SlotCut {
    fn hits(&self, addr: u32) -> bool {
        self.slots
            .iter()
            .any(|&(base, len)| addr >= base && addr < base + len && addr - base >= self.offset)
    }
}

impl FileFlash {
    /// Opens an existing flash file.
    pub fn open(path: &Path, cut: Option<Cut>, log: Option<&Path>) -> std::io::Result<Self> {
        let mem = std::fs::read(path)?;
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        let mut core = NorCore::from_bytes(mem, 4096, 256);
        core.set_cut(cut);
        let torn = cut.and_then(|c| c.torn);
        let unstable_file = unstable_path(path);
        match std::fs::read_to_string(&unstable_file) {
            Ok(text) => core.set_unstable_bits(parse_unstable(&text).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: not an unstable-bits file", unstable_file.display()),
                )
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let log = match log {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            ),
            None => None,
        };
        Ok(Self {
            core,
            file,
            log,
            slot_cut: None,
            torn,
            unstable_file,
        })
    }

    /// Writes the unstable bits to their side file (removes it when there are none).
    fn persist_unstable(&self) {
        let bits = self.core.unstable_bits();
        let res = if bits.is_empty() {
            match std::fs::remove_file(&self.unstable_file) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        } else {
            let text: String = bits
                .iter()
                .map(|(a, m)| format!("{a:08x} {m:02x}\n"))
                .collect();
            let tmp = self.unstable_file.with_extension("unstable-tmp");
            std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &self.unstable_file))
        };
        if let Err(e) = res {
            eprintln!(
                "sim-board: cannot write {}: {e}",
                self.unstable_file.display()
            );
            std::process::exit(1);
        }
    }

    /// Schedules a cut at the first program into a slot at or beyond an offset.
    pub fn set_slot_cut(&mut self, cut: Option<SlotCut>) {
        self.slot_cut = cut;
    }

    fn persist(&mut self, addr: u32, len: u32) {
        let range = addr as usize..(addr + len) as usize;
        if let Err(e) = self
            .file
            .write_all_at(&self.core.mem[range], u64::from(addr))
        {
            eprintln!("sim-board: cannot write the flash file: {e}");
            std::process::exit(1);
        }
    }

    fn logged(&mut self, op: &Op) {
        if let Some(log) = &mut self.log {
            // One write per line so a reader tailing the log sees whole lines.
            let line = format!(
                "{} {} 0x{:08x} {}\n",
                op.index,
                op.kind.as_str(),
                op.addr,
                op.len
            );
            let _ = log.write_all(line.as_bytes());
        }
    }

    /// Applies an op result: persist, log, or die at the scheduled cut.
    fn finish(
        &mut self,
        res: Result<Op, FlashError>,
        kind: OpKind,
        addr: u32,
        len: u32,
        unstable_before: usize,
    ) -> Result<(), FlashError> {
        match res {
            Ok(op) => {
                self.persist(addr, len);
                if unstable_before != self.core.unstable_bits().len() {
                    self.persist_unstable();
                }
                self.logged(&op);
                Ok(())
            }
            Err(FlashError::PowerCut) => {
                // Whatever the torn operation left is what the chip holds now.
                self.persist(addr, len);
                if unstable_before != self.core.unstable_bits().len() {
                    self.persist_unstable();
                }
                let event = PowerCutEvent {
                    op: self.core.ops() - 1,
                    kind,
                    addr,
                    len,
                    torn: self.torn.is_some(),
                };
                eprintln!("{event}");
                std::process::exit(CUT_EXIT_CODE);
            }
            Err(e) => Err(e),
        }
    }
}

impl ErrorType for FileFlash {
    type Error = FlashError;
}

impl ReadNorFlash for FileFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        self.core.read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.core.mem.len()
    }
}

impl NorFlash for FileFlash {
    const WRITE_SIZE: usize = 1;
    const ERASE_SIZE: usize = 4096;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        let before = self.core.unstable_bits().len();
        let res = self.core.erase(from, to);
        self.finish(res, OpKind::Erase, from, to.saturating_sub(from), before)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        if let Some(c) = self.slot_cut
            && c.hits(offset)
        {
            self.slot_cut = None;
            self.torn = c.torn;
            self.core.set_cut(Some(Cut {
                at: self.core.ops(),
                torn: c.torn,
            }));
        }
        let before = self.core.unstable_bits().len();
        let res = self.core.program(offset, bytes);
        self.finish(res, OpKind::Program, offset, bytes.len() as u32, before)
    }
}

/// The side file of a flash file's unstable bits.
pub fn unstable_path(flash: &Path) -> PathBuf {
    let mut name = flash.as_os_str().to_os_string();
    name.push(".unstable");
    PathBuf::from(name)
}

/// Reads an unstable-bits file: `<8 hex digits> <2 hex digits>` per line.
fn parse_unstable(text: &str) -> Option<BTreeMap<u32, u8>> {
    text.lines()
        .map(|line| {
            let (a, m) = line.split_once(' ')?;
            Some((
                u32::from_str_radix(a, 16).ok()?,
                u8::from_str_radix(m, 16).ok()?,
            ))
        })
        .collect()
}

/// Creates a provisioned flash file atomically: factory image confirmed in slot A and kept in
/// the factory region, trusted key in the OTP region, initial state record. (A factory step, not a field operation: it is not
/// logged and cannot be cut.)
pub fn provision(
    path: &Path,
    factory: &[u8],
    public_key: &[u8; 32],
) -> Result<ota_core::Version, String> {
    let (mem, version) = provisioned(factory, public_key)?;
    // A new chip has no unstable bits.
    let _ = std::fs::remove_file(unstable_path(path));
    let tmp = path.with_extension("provisioning");
    std::fs::write(&tmp, &mem)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(version)
}

/// The bytes of a freshly provisioned flash (see [`provision`]) and the factory version.
pub fn provisioned(
    factory: &[u8],
    public_key: &[u8; 32],
) -> Result<(Vec<u8>, ota_core::Version), String> {
    use ota_core::layout::SIM;
    let header =
        ota_core::image::ImageHeader::parse(factory).map_err(|e| format!("factory image: {e}"))?;
    if factory.len() as u32 > SIM.slot_size {
        return Err("factory image is larger than a slot".into());
    }
    let mut mem = vec![0xFF; SIM.flash_size as usize];
    let otp = SIM.otp as usize;
    mem[otp..otp + 4].copy_from_slice(b"OTPK");
    mem[otp + 4..otp + 36].copy_from_slice(public_key);
    let a = SIM.slot(0) as usize;
    mem[a..a + factory.len()].copy_from_slice(factory);
    let f = SIM.factory as usize;
    mem[f..f + factory.len()].copy_from_slice(factory);
    let mut state = ota_core::state::BootState::factory(0, header.rollback_counter);
    state.seq = 1;
    let s = SIM.state[1] as usize;
    mem[s..s + ota_core::state::RECORD_LEN].copy_from_slice(&state.encode());
    Ok((mem, header.version))
}

/// The trusted key in a flash's OTP region ("fuses"), if it was provisioned.
pub fn trusted_key<F: ReadNorFlash>(flash: &mut F) -> Option<[u8; 32]> {
    let mut buf = [0u8; 36];
    flash.read(ota_core::layout::SIM.otp, &mut buf).ok()?;
    if &buf[..4] != b"OTPK" {
        return None;
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&buf[4..]);
    Some(key)
}

/// Reads the trusted key from the OTP region ("fuses").
pub fn read_trusted_key(flash: &mut FileFlash) -> Option<[u8; 32]> {
    trusted_key(flash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_cut_events_round_trip() {
        let e = PowerCutEvent {
            op: 212,
            kind: OpKind::Program,
            addr: 0x0003_0100,
            len: 256,
            torn: false,
        };
        let line = e.to_string();
        assert_eq!(
            line,
            "otarig-event power-cut op=212 kind=program addr=0x00030100 len=256 torn=false"
        );
        assert_eq!(PowerCutEvent::parse(&line), Some(e));
        let torn = PowerCutEvent {
            op: 0,
            kind: OpKind::Erase,
            addr: 0x0002_0000,
            len: 4096,
            torn: true,
        };
        assert_eq!(PowerCutEvent::parse(&torn.to_string()), Some(torn));
        assert_eq!(PowerCutEvent::parse(&format!("{torn}\r")), Some(torn));
    }

    #[test]
    fn unstable_bits_survive_a_power_cycle_until_erased() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("flash.bin");
        std::fs::write(&path, vec![0u8; 8192]).expect("flash");
        std::fs::write(unstable_path(&path), "00000010 ff\n00000011 0f\n").expect("side file");
        let mut f = FileFlash::open(&path, None, None).expect("open");
        let reads: Vec<[u8; 32]> = (0..6)
            .map(|_| {
                let mut b = [0u8; 32];
                f.read(0, &mut b).expect("read");
                b
            })
            .collect();
        assert!(
            reads.windows(2).any(|w| w[0] != w[1]),
            "noise on every read"
        );
        assert!(
            reads
                .iter()
                .all(|r| r[..16] == [0; 16] && r[17] & 0xF0 == 0)
        );
        f.erase(0, 4096).expect("erase");
        assert!(!unstable_path(&path).exists(), "the erase settled them");
        let mut b = [0u8; 32];
        f.read(0, &mut b).expect("read");
        assert_eq!(b, [0xFF; 32]);
        std::fs::write(unstable_path(&path), "zz\n").expect("side file");
        assert!(
            FileFlash::open(&path, None, None).is_err(),
            "a bad side file"
        );
    }

    #[test]
    fn other_stderr_lines_are_not_events() {
        for line in [
            "",
            "sim-board: power cut at flash op 212 (program 0x00030100 256)",
            "sim-board: cannot write the flash file: disk full",
            "otarig-event power-cut op=212 kind=program addr=0x00030100 len=256",
            "otarig-event power-cut op=212 kind=program addr=0x00030100 len=256 torn=false x",
            "otarig-event power-cut op=212 kind=read addr=0x00030100 len=256 torn=false",
            "otarig-event power-cut op=-1 kind=program addr=0x00030100 len=256 torn=false",
            "otarig-event power-cut op=212 kind=program addr=0x30100 len=256 torn=false",
            "otarig-event power-cut op=212 kind=program addr=0x0003010G len=256 torn=false",
            "otarig-event power-cut op=212 kind=program addr=0x00030100 len=256 torn=yes",
            "otarig-event power-cut op=212  kind=program addr=0x00030100 len=256 torn=false",
        ] {
            assert_eq!(PowerCutEvent::parse(line), None, "`{line}`");
        }
    }
}
