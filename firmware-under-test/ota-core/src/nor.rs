//! Simulated NOR flash with real semantics (feature `sim-flash`): erase sets a sector to 0xFF,
//! program is a bitwise AND (it can only clear bits; re-programming never panics), every
//! operation is counted, and a power cut can be scheduled at an exact operation, optionally
//! tearing it.
//!
//! A torn operation lands the way real NOR fails ([`TearShape`]): a program leaves an
//! arbitrary prefix of its bytes (one byte, a word boundary, half, all but one), an erase
//! leaves a prefix erased or every byte somewhere between its old value and 0xFF. With
//! [`Tear::unstable`], a seeded set of the bits the operation was changing reads back
//! differently on each read until its sector is erased, as a cell whose charge was left
//! half-way does. Every tear is deterministic: its randomness is seeded by the operation index.
//!
//! [`NorCore`] holds the bytes and the rules; [`TestFlash`] wraps it as an in-memory
//! `NorFlash` for tests; the sim board persists it to a file.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

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
    /// Bytes that can change anything: a program up to its last byte that is not 0xFF
    /// (programming 0xFF clears no bit, so a tear beyond it lands the whole program); an
    /// erase, all of it.
    pub effective: u32,
}

/// How an operation interrupted by a power cut lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TearShape {
    /// The classic torn operation: a program lands the first half of its bytes; an erase
    /// erases its first half and leaves the rest as garbage (neither old nor 0xFF).
    Half,
    /// The first `n` bytes land (a program's data, an erase's 0xFF); the rest is untouched.
    Prefix(u32),
    /// Each bit the operation changes may or may not have changed (seeded): an erase leaves
    /// every byte somewhere between its old value and 0xFF; a program clears a subset of the
    /// bits it clears.
    Bits,
}

/// A torn operation: how it lands, and whether bits in the torn range read back unstably.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tear {
    pub shape: TearShape,
    /// A seeded set of the bits the operation was changing reads back differently on each
    /// read until its sector is erased.
    pub unstable: bool,
}

impl Tear {
    /// Half of the operation lands (what `torn: true` always meant).
    pub const HALF: Self = Self {
        shape: TearShape::Half,
        unstable: false,
    };

    pub fn new(shape: TearShape) -> Self {
        Self {
            shape,
            unstable: false,
        }
    }
}

impl fmt::Display for Tear {
    /// `half`, `prefix:N` or `bits`, then `+unstable` with unstable bits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shape {
            TearShape::Half => f.write_str("half")?,
            TearShape::Prefix(n) => write!(f, "prefix:{n}")?,
            TearShape::Bits => f.write_str("bits")?,
        }
        if self.unstable {
            f.write_str("+unstable")?;
        }
        Ok(())
    }
}

impl FromStr for Tear {
    type Err = String;

    /// Reads what [`Tear`]'s `Display` writes.
    fn from_str(s: &str) -> Result<Self, String> {
        let (shape, unstable) = match s.strip_suffix("+unstable") {
            Some(rest) => (rest, true),
            None => (s, false),
        };
        let shape = match shape {
            "half" => TearShape::Half,
            "bits" => TearShape::Bits,
            other => match other.strip_prefix("prefix:").map(str::parse::<u32>) {
                Some(Ok(n)) if n > 0 => TearShape::Prefix(n),
                _ => {
                    return Err(format!(
                        "`{s}`: a tear shape is half, prefix:N (N > 0 bytes) or bits, optionally \
                         followed by +unstable"
                    ));
                }
            },
        };
        Ok(Self { shape, unstable })
    }
}

/// The tear shapes a sweep tries, by name (`--torn-shapes`). Each family expands, per
/// operation, to the concrete shapes that land differently from a clean cut and from a
/// completed operation ([`tears_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TearFamily {
    /// A program lands one byte.
    Byte,
    /// A small program (at most [`SMALL_WRITE`] effective bytes) lands up to each 4-byte word
    /// boundary inside it.
    Words,
    /// Half of a program or erase lands ([`TearShape::Half`]).
    Half,
    /// A program lands all but its last effective byte.
    AllButOne,
    /// An erase stops after a prefix: at each sector boundary inside a multi-sector erase,
    /// half-way through a single sector.
    ErasePrefix,
    /// An erase leaves each byte between old and 0xFF ([`TearShape::Bits`]).
    EraseBits,
}

/// Programs up to this many effective bytes are torn at every word boundary.
pub const SMALL_WRITE: u32 = 128;

impl TearFamily {
    pub const ALL: [Self; 6] = [
        Self::Byte,
        Self::Words,
        Self::Half,
        Self::AllButOne,
        Self::ErasePrefix,
        Self::EraseBits,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Byte => "byte",
            Self::Words => "words",
            Self::Half => "half",
            Self::AllButOne => "all-but-one",
            Self::ErasePrefix => "erase-prefix",
            Self::EraseBits => "erase-bits",
        }
    }

    /// The shapes of this family for `op` (none when the family does not apply to it), on a
    /// flash with `sector`-byte sectors.
    pub fn shapes(self, op: &Op, sector: u32) -> Vec<TearShape> {
        let e = op.effective;
        match (self, op.kind) {
            (Self::Half, _) => vec![TearShape::Half],
            (Self::Byte, OpKind::Program) if e > 1 => vec![TearShape::Prefix(1)],
            (Self::Words, OpKind::Program) if e <= SMALL_WRITE => {
                (4..e).step_by(4).map(TearShape::Prefix).collect()
            }
            (Self::AllButOne, OpKind::Program) if e > 1 => vec![TearShape::Prefix(e - 1)],
            (Self::ErasePrefix, OpKind::Erase) if sector > 0 && op.len > sector => (sector..op.len)
                .step_by(sector as usize)
                .map(TearShape::Prefix)
                .collect(),
            (Self::ErasePrefix, OpKind::Erase) if op.len > 1 => {
                vec![TearShape::Prefix(op.len / 2)]
            }
            (Self::EraseBits, OpKind::Erase) => vec![TearShape::Bits],
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for TearFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TearFamily {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|f| f.as_str()).collect();
                format!("`{s}`: tear shapes are {}", names.join(", "))
            })
    }
}

/// Every distinct tear of `op` the `families` give, each with the first family that gave it
/// (`unstable` is left off: it is a mode of the whole sweep).
pub fn tears_for(op: &Op, families: &[TearFamily], sector: u32) -> Vec<(TearFamily, TearShape)> {
    let mut out: Vec<(TearFamily, TearShape)> = Vec::new();
    for &f in families {
        for shape in f.shapes(op, sector) {
            if !out.iter().any(|(_, s)| *s == shape) {
                out.push((f, shape));
            }
        }
    }
    out
}

/// A scheduled power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// The operation index (0-based since this flash was opened) that never completes.
    pub at: u64,
    /// How that operation lands: `None`, not at all (a clean cut); `Some`, torn.
    pub torn: Option<Tear>,
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
    /// Unstable bits left by torn operations: address → mask. They read back as noise until
    /// their sector is erased.
    unstable: BTreeMap<u32, u8>,
    /// Reads so far (the noise of unstable bits changes with every read).
    reads: u64,
}

/// A 64-bit mix (splitmix64's finaliser): the seeded randomness of tears.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Seeded noise for byte `addr` of a tear of operation `op`.
fn noise(op: u64, addr: usize, salt: u64) -> u64 {
    mix(mix(op ^ salt.rotate_left(32)) ^ addr as u64)
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
            unstable: BTreeMap::new(),
            reads: 0,
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

    /// The unstable bits torn operations left (address → mask), until their sectors are erased.
    pub fn unstable_bits(&self) -> &BTreeMap<u32, u8> {
        &self.unstable
    }

    /// Restores unstable bits (a flash persisted across processes keeps them).
    pub fn set_unstable_bits(&mut self, bits: BTreeMap<u32, u8>) {
        self.unstable = bits;
    }

    fn begin(
        &mut self,
        kind: OpKind,
        addr: u32,
        len: u32,
        effective: u32,
    ) -> Result<(Op, Option<Cut>), FlashError> {
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
            effective,
        };
        self.ops += 1;
        if self.keep_log {
            self.log.push(op);
        }
        let cut_here = self.cut.filter(|c| c.at == op.index);
        if cut_here.is_some() {
            self.dead = true;
        }
        Ok((op, cut_here))
    }

    /// Reads flash (reads are not operations: they change nothing and are never cut). Unstable
    /// bits read as fresh noise on every read.
    pub fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let start = offset as usize;
        let src = self
            .mem
            .get(start..start + bytes.len())
            .ok_or(FlashError::OutOfBounds)?;
        bytes.copy_from_slice(src);
        if !self.unstable.is_empty() {
            self.reads += 1;
            let end = offset + bytes.len() as u32;
            for (&a, &mask) in self.unstable.range(offset..end) {
                let n = noise(self.reads, a as usize, 0x5EAD) as u8;
                let b = &mut bytes[(a - offset) as usize];
                *b = (*b & !mask) | (n & mask);
            }
        }
        Ok(())
    }

    /// Marks a seeded subset of `changing` bits (per byte, from `start`) unstable.
    fn mark_unstable(&mut self, op: u64, start: usize, changing: impl Iterator<Item = u8>) {
        for (i, c) in changing.enumerate() {
            let r = noise(op, start + i, 0x0B17);
            let mask = c & (r as u8) & ((r >> 8) as u8) & ((r >> 16) as u8);
            if mask != 0 {
                *self.unstable.entry((start + i) as u32).or_insert(0) |= mask;
            }
        }
    }

    /// Erases `[from, to)`; returns the op, or `PowerCut` (after tearing it if asked).
    pub fn erase(&mut self, from: u32, to: u32) -> Result<Op, FlashError> {
        if !from.is_multiple_of(self.sector) || !to.is_multiple_of(self.sector) || to < from {
            return Err(FlashError::NotAligned);
        }
        let (op, cut) = self.begin(OpKind::Erase, from, to - from, to - from)?;
        let range = from as usize..to as usize;
        let stale: Vec<u32> = self.unstable.range(from..to).map(|(a, _)| *a).collect();
        let Some(cut) = cut else {
            self.mem[range].fill(0xFF);
            for a in stale {
                self.unstable.remove(&a);
            }
            return Ok(op);
        };
        if let Some(tear) = cut.torn {
            let old: Vec<u8> = if tear.unstable {
                self.mem[range.clone()].to_vec()
            } else {
                Vec::new()
            };
            let mem = &mut self.mem[range.clone()];
            match tear.shape {
                TearShape::Half => {
                    // The first half erased, the rest left as garbage.
                    let mid = mem.len() / 2;
                    mem[..mid].fill(0xFF);
                    for (i, b) in mem[mid..].iter_mut().enumerate() {
                        *b ^= 0x5A ^ (i as u8);
                    }
                }
                TearShape::Prefix(n) => {
                    let n = (n as usize).min(mem.len());
                    mem[..n].fill(0xFF);
                }
                TearShape::Bits => {
                    for (i, b) in mem.iter_mut().enumerate() {
                        let r = noise(op.index, range.start + i, 0xE7A5);
                        *b = match r & 3 {
                            0 => *b,
                            1 => 0xFF,
                            _ => *b | (r >> 8) as u8,
                        };
                    }
                }
            }
            if tear.unstable {
                // The bits the erase was setting.
                self.mark_unstable(op.index, range.start, old.into_iter().map(|b| !b));
            }
        }
        Err(FlashError::PowerCut)
    }

    /// Programs `data` at `addr` (bits can only be cleared).
    pub fn program(&mut self, addr: u32, data: &[u8]) -> Result<Op, FlashError> {
        let effective = data.iter().rposition(|b| *b != 0xFF).map_or(0, |i| i + 1) as u32;
        let (op, cut) = self.begin(OpKind::Program, addr, data.len() as u32, effective)?;
        let start = addr as usize;
        let Some(cut) = cut else {
            for (m, d) in self.mem[start..start + data.len()].iter_mut().zip(data) {
                *m &= *d;
            }
            return Ok(op);
        };
        if let Some(tear) = cut.torn {
            let changing: Vec<u8> = if tear.unstable {
                self.mem[start..start + data.len()]
                    .iter()
                    .zip(data)
                    .map(|(m, d)| m & !d)
                    .collect()
            } else {
                Vec::new()
            };
            let mem = &mut self.mem[start..start + data.len()];
            let n = match tear.shape {
                TearShape::Half => data.len() / 2,
                TearShape::Prefix(n) => (n as usize).min(data.len()),
                TearShape::Bits => 0,
            };
            for (m, d) in mem[..n].iter_mut().zip(data) {
                *m &= *d;
            }
            if tear.shape == TearShape::Bits {
                for (i, (m, d)) in mem.iter_mut().zip(data).enumerate() {
                    let r = noise(op.index, start + i, 0xB175) as u8;
                    *m &= *d | !r;
                }
            }
            if tear.unstable {
                self.mark_unstable(op.index, start, changing.into_iter());
            }
        }
        Err(FlashError::PowerCut)
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

    fn torn(at: u64, shape: TearShape) -> Option<Cut> {
        Some(Cut {
            at,
            torn: Some(Tear::new(shape)),
        })
    }

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
        f.set_cut(Some(Cut {
            at: 1,
            torn: Some(Tear::HALF),
        }));
        f.program(0, &[0u8; 4]).expect("op 0");
        assert_eq!(f.program(256, &[0u8; 4]), Err(FlashError::PowerCut));
        assert_eq!(
            &f.mem[256..260],
            &[0, 0, 0xFF, 0xFF],
            "half of the torn program landed"
        );
        assert_eq!(f.program(512, &[0u8; 4]), Err(FlashError::PowerCut));
        assert_eq!(f.mem[512], 0xFF, "nothing after the cut persists");
        let mut clean = NorCore::new(8192, 4096, 256);
        clean.set_cut(Some(Cut { at: 0, torn: None }));
        assert_eq!(clean.program(0, &[0u8; 4]), Err(FlashError::PowerCut));
        assert_eq!(&clean.mem[..4], &[0xFF; 4], "a clean cut lands nothing");
    }

    #[test]
    fn torn_programs_land_a_prefix_or_some_bits() {
        for (n, landed) in [(1usize, 1usize), (12, 12), (95, 95), (500, 96)] {
            let mut f = NorCore::new(8192, 4096, 256);
            f.set_cut(torn(0, TearShape::Prefix(n as u32)));
            assert_eq!(f.program(0, &[0u8; 96]), Err(FlashError::PowerCut));
            assert!(f.mem[..landed].iter().all(|b| *b == 0), "prefix {n}");
            assert!(f.mem[landed..96].iter().all(|b| *b == 0xFF), "prefix {n}");
        }
        let mut f = NorCore::new(8192, 4096, 256);
        f.set_cut(torn(0, TearShape::Bits));
        assert_eq!(f.program(0, &[0x00; 64]), Err(FlashError::PowerCut));
        assert!(f.mem[..64].iter().any(|b| *b != 0 && *b != 0xFF), "bits");
    }

    #[test]
    fn torn_erases_leave_a_prefix_or_bytes_between_old_and_erased() {
        let old: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8 & 0x5F).collect();
        let mut f = NorCore::from_bytes(old.clone(), 4096, 256);
        f.set_cut(torn(0, TearShape::Prefix(100)));
        assert_eq!(f.erase(0, 4096), Err(FlashError::PowerCut));
        assert!(f.mem[..100].iter().all(|b| *b == 0xFF));
        assert_eq!(&f.mem[100..], &old[100..]);
        let mut f = NorCore::from_bytes(old.clone(), 4096, 256);
        f.set_cut(torn(0, TearShape::Bits));
        assert_eq!(f.erase(0, 4096), Err(FlashError::PowerCut));
        assert!(f.mem.iter().zip(&old).all(|(now, was)| now | was == *now));
        let kept = f.mem.iter().zip(&old).filter(|(n, o)| n == o).count();
        let erased = f.mem.iter().filter(|b| **b == 0xFF).count();
        assert!(
            kept > 500 && erased > 500 && kept + erased < 4000,
            "{kept} {erased}"
        );
    }

    #[test]
    fn unstable_bits_read_differently_until_erased() {
        let mut f = NorCore::new(8192, 4096, 256);
        f.set_cut(Some(Cut {
            at: 0,
            torn: Some(Tear {
                shape: TearShape::Prefix(32),
                unstable: true,
            }),
        }));
        assert_eq!(f.program(0, &[0u8; 64]), Err(FlashError::PowerCut));
        assert!(!f.unstable_bits().is_empty());
        f.restore_power(None);
        let reads: Vec<Vec<u8>> = (0..4)
            .map(|_| {
                let mut b = [0u8; 64];
                f.read(0, &mut b).expect("read");
                b.to_vec()
            })
            .collect();
        assert!(reads.windows(2).any(|w| w[0] != w[1]), "reads differ");
        for r in &reads {
            for (i, (got, stable)) in r.iter().zip(&f.mem[..64]).enumerate() {
                let mask = f.unstable_bits().get(&(i as u32)).copied().unwrap_or(0);
                assert_eq!(got & !mask, stable & !mask, "only unstable bits move");
            }
        }
        f.erase(0, 4096).expect("erase");
        assert!(f.unstable_bits().is_empty(), "an erase settles them");
        let mut b = [0u8; 64];
        f.read(0, &mut b).expect("read");
        assert_eq!(b, [0xFF; 64]);
    }

    #[test]
    fn tears_print_and_parse() {
        for s in [
            "half",
            "prefix:12",
            "bits",
            "prefix:1+unstable",
            "bits+unstable",
        ] {
            let t: Tear = s.parse().expect(s);
            assert_eq!(t.to_string(), s);
        }
        for bad in [
            "",
            "prefix:",
            "prefix:0",
            "prefix:x",
            "quarter",
            "half+stable",
        ] {
            assert!(bad.parse::<Tear>().is_err(), "{bad}");
        }
        for f in TearFamily::ALL {
            assert_eq!(f.as_str().parse(), Ok(f));
        }
        assert!("nibble".parse::<TearFamily>().is_err());
    }

    #[test]
    fn families_expand_to_distinct_shapes() {
        let op = |kind, len, effective| Op {
            index: 0,
            kind,
            addr: 0,
            len,
            effective,
        };
        // A 96-byte state record programmed as a 256-byte page.
        let record = tears_for(&op(OpKind::Program, 256, 96), &TearFamily::ALL, 4096);
        let prefixes: Vec<u32> = record
            .iter()
            .filter_map(|(_, s)| match s {
                TearShape::Prefix(n) => Some(*n),
                _ => None,
            })
            .collect();
        let mut want = vec![1];
        want.extend((4..96).step_by(4));
        want.push(95);
        assert_eq!(prefixes, want);
        assert!(record.contains(&(TearFamily::Half, TearShape::Half)));
        // A full data page: one byte, half, all but one.
        assert_eq!(
            tears_for(&op(OpKind::Program, 256, 256), &TearFamily::ALL, 4096).len(),
            3
        );
        // A 5-byte write: `all-but-one` (4) is already a word boundary.
        let small = tears_for(&op(OpKind::Program, 5, 5), &TearFamily::ALL, 4096);
        assert_eq!(small.len(), 3, "{small:?}");
        let erase = tears_for(&op(OpKind::Erase, 8192, 8192), &TearFamily::ALL, 4096);
        assert_eq!(
            erase,
            vec![
                (TearFamily::Half, TearShape::Half),
                (TearFamily::ErasePrefix, TearShape::Prefix(4096)),
                (TearFamily::EraseBits, TearShape::Bits),
            ]
        );
        assert!(tears_for(&op(OpKind::Erase, 4096, 4096), &[TearFamily::Byte], 4096).is_empty());
    }
}
