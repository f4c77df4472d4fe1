//! The sim board's flash: ota-core's simulated NOR core, persisted to a file after every
//! operation (so a SIGKILL at any moment leaves exactly what a real chip would hold), with an
//! optional per-operation log and an exact power cut that stops the process dead.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
use ota_core::nor::{Cut, FlashError, NorCore, Op};

/// Exit code of a process stopped by `--cut-at-flash-op`.
pub const CUT_EXIT_CODE: i32 = 86;

pub struct FileFlash {
    core: NorCore,
    file: File,
    log: Option<File>,
    slot_cut: Option<SlotCut>,
}

/// A cut at the first program into a slot at or beyond `offset` bytes of it (resolved to an
/// exact operation the moment that program is issued).
#[derive(Debug, Clone, Copy)]
pub struct SlotCut {
    pub slots: [(u32, u32); 2],
    pub offset: u32,
    pub torn: bool,
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
        })
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
        kind: ota_core::nor::OpKind,
        addr: u32,
        len: u32,
    ) -> Result<(), FlashError> {
        match res {
            Ok(op) => {
                self.persist(addr, len);
                self.logged(&op);
                Ok(())
            }
            Err(FlashError::PowerCut) => {
                // Whatever the torn operation left is what the chip holds now.
                self.persist(addr, len);
                let op = Op {
                    index: self.core.ops() - 1,
                    kind,
                    addr,
                    len,
                };
                eprintln!(
                    "sim-board: power cut at flash op {} ({} 0x{:08x} {})",
                    op.index,
                    kind.as_str(),
                    addr,
                    len
                );
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
        let res = self.core.erase(from, to);
        self.finish(
            res,
            ota_core::nor::OpKind::Erase,
            from,
            to.saturating_sub(from),
        )
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        if let Some(c) = self.slot_cut
            && c.hits(offset)
        {
            self.slot_cut = None;
            self.core.set_cut(Some(Cut {
                at: self.core.ops(),
                torn: c.torn,
            }));
        }
        let res = self.core.program(offset, bytes);
        self.finish(
            res,
            ota_core::nor::OpKind::Program,
            offset,
            bytes.len() as u32,
        )
    }
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
