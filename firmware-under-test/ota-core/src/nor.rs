//! Simulated NOR flash with real semantics (feature `sim-flash`): erase sets a sector to 0xFF,
//! program is a bitwise AND (it can only clear bits; re-programming never panics), every
//! operation is counted, and a power cut can be scheduled at an exact operation, optionally
//! tearing it (half applied).
//!
//! [`NorCore`] holds the bytes and the rules; [`TestFlash`] wraps it as an in-memory
//! `NorFlash` for tests; the sim board persists it to a file.

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// What kind of flash operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Erase,
    Program,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Erase => "erase",
            Self::Program => "program",
        }
    }
}

/// One logged flash operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    pub index: u64,
    pub kind: OpKind,
    pub addr: u32,
    pub len: u32,
}

/// A scheduled power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// The operation index (0-based since this flash was opened) that never completes.
    pub at: u64,
    /// Apply the first half of that operation (a torn write or erase).
    pub torn: bool,
}

/// Flash errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashError {
    /// Power was cut: this and every later operation has no effect.
    PowerCut,
    OutOfBounds,
    NotAligned,
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::PowerCut => NorFlashErrorKind::Other,
            Self::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            Self::NotAligned => NorFlashErrorKind::NotAligned,
        }
    }
}

/// Flash bytes plus the rules.
#[derive(Debug, Clone)]
pub struct NorCore {
    pub mem: Vec<u8>,
    pub sector: u32,
    pub page: u32,
    ops: u64,
    cut: Option<Cut>,
    dead: bool,
    pub log: Vec<Op>,
    pub keep_log: bool,
}

impl NorCore {
    /// An erased flash of `size` bytes.
    pub fn new(size: usize, sector: u32, page: u32) -> Self {
        Self::from_bytes(vec![0xFF; size], sector, page)
    }

    pub fn from_bytes(mem: Vec<u8>, sector: u32, page: u32) -> Self {
        Self {
            mem,
            sector,
            page,
            ops: 0,
            cut: None,
            dead: false,
            log: Vec::new(),
            keep_log: false,
        }
    }

    pub fn set_cut(&mut self, cut: Option<Cut>) {
        self.cut = cut;
    }

    /// Operations performed (or attempted) so far.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Power comes back: operations work again, with `next` as the next scheduled cut.
    pub fn restore_power(&mut self, next: Option<Cut>) {
        self.dead = false;
        self.cut = next;
    }

    /// True once the scheduled cut happened.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    fn begin(&mut self, kind: OpKind, addr: u32, len: u32) -> Result<(Op, bool), FlashError> {
        if self.dead {
            return Err(FlashError::PowerCut);
        }
        let end = addr as usize + len as usize;
        if end > self.mem.len() {
            return Err(FlashError::OutOfBounds);
        }
        let op = Op {
            index: self.ops,
            kind,
            addr,
            len,
        };
        self.ops += 1;
        if self.keep_log {
            self.log.push(op);
        }
        let cut_here = self.cut.is_some_and(|c| c.at == op.index);
        Ok((op, cut_here))
    }

    /// Reads flash (reads are not operations: they change nothing and are never cut).
    pub fn read(&self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let start = offset as usize;
        let src = self
            .mem
            .get(start..start + bytes.len())
            .ok_or(FlashError::OutOfBounds)?;
        bytes.copy_from_slice(src);
        Ok(())
    }

    /// Erases `[from, to)`; returns the op, or `PowerCut` (after tearing it if asked).
    pub fn erase(&mut self, from: u32, to: u32) -> Result<Op, FlashError> {
        if from % self.sector != 0 || to % self.sector != 0 || to < from {
            return Err(FlashError::NotAligned);
        }
        let (op, cut_here) = self.begin(OpKind::Erase, from, to - from)?;
        let range = from as usize..to as usize;
        if cut_here {
            self.dead = true;
            if self.cut.is_some_and(|c| c.torn) {
                // A torn erase: the first half is erased, the rest is left as garbage
                // (neither the old bytes nor 0xFF).
                let mid = range.start + range.len() / 2;
                self.mem[range.start..mid].fill(0xFF);
                for (i, b) in self.mem[mid..range.end].iter_mut().enumerate() {
                    *b ^= 0x5A ^ (i as u8);
                }
            }
            return Err(FlashError::PowerCut);
        }
        self.mem[range].fill(0xFF);
        Ok(op)
    }

    /// Programs `data` at `addr` (bits can only be cleared).
    pub fn program(&mut self, addr: u32, data: &[u8]) -> Result<Op, FlashError> {
        let (op, cut_here) = self.begin(OpKind::Program, addr, data.len() as u32)?;
        let start = addr as usize;
        let n = if cut_here {
            self.dead = true;
            if self.cut.is_some_and(|c| c.torn) {
                data.len() / 2
            } else {
                0
            }
        } else {
            data.len()
        };
        for (m, d) in self.mem[start..start + n].iter_mut().zip(data) {
            *m &= *d;
        }
        if cut_here {
            return Err(FlashError::PowerCut);
        }
        Ok(op)
    }
}

/// In-memory NOR flash for tests.
#[derive(Debug, Clone)]
pub struct TestFlash {
    pub core: NorCore,
}

impl TestFlash {
    pub fn new(size: usize) -> Self {
        Self {
            core: NorCore::new(size, 4096, 256),
        }
    }
}

impl ErrorType for TestFlash {
    type Error = FlashError;
}

impl ReadNorFlash for TestFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        self.core.read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.core.mem.len()
    }
}

impl NorFlash for TestFlash {
    const WRITE_SIZE: usize = 1;
    const ERASE_SIZE: usize = 4096;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        self.core.erase(from, to).map(|_| ())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        self.core.program(offset, bytes).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nor_semantics() {
        let mut f = NorCore::new(8192, 4096, 256);
        f.program(0, &[0x0F, 0xF0]).expect("program");
        f.program(0, &[0xFF, 0x3C])
            .expect("re-program clears more bits, never panics");
        assert_eq!(&f.mem[..2], &[0x0F, 0x30]);
        f.erase(0, 4096).expect("erase");
        assert_eq!(f.mem[0], 0xFF);
        assert_eq!(f.erase(1, 4096), Err(FlashError::NotAligned));
        assert_eq!(f.ops(), 3);
    }

    #[test]
    fn cuts_stop_everything_and_tear_on_request() {
        let mut f = NorCore::new(8192, 4096, 256);
        f.set_cut(Some(Cut { at: 1, torn: true }));
        f.program(0, &[0u8; 4]).expect("op 0");
        assert_eq!(f.program(256, &[0u8; 4]), Err(FlashError::PowerCut));
        assert_eq!(
            &f.mem[256..260],
            &[0, 0, 0xFF, 0xFF],
            "half of the torn program landed"
        );
        assert_eq!(f.program(512, &[0u8; 4]), Err(FlashError::PowerCut));
        assert_eq!(f.mem[512], 0xFF, "nothing after the cut persists");
    }
}
