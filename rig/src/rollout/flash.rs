//! The flash of a simulated fleet device: NOR semantics (erase to 0xFF, program only clears
//! bits, 4 KiB sectors) like the sim board's, but sparse and copy-on-write so that a hundred
//! thousand devices fit in memory. Erased sectors take no memory; sectors nobody has written
//! since the factory (the factory image, the key region) are shared by every device; and
//! sectors a device wrote are content-addressed when it goes back to sleep
//! ([`SparseFlash::settle`]): every device that wrote the same release holds the same
//! [`SectorPool`] sectors, and a write to one copies it first.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
use ota_core::nor::FlashError;

const SECTOR: usize = 4096;

type Sector = Arc<[u8; SECTOR]>;

/// Factory content shared by every device of a fleet.
#[derive(Clone, Default)]
pub struct FactoryImage {
    size: usize,
    sectors: BTreeMap<u32, Sector>,
}

impl FactoryImage {
    /// Splits a provisioned flash image into shared sectors (all-0xFF sectors are dropped).
    pub fn from_bytes(mem: &[u8]) -> Self {
        let sectors = mem
            .chunks(SECTOR)
            .enumerate()
            .filter(|(_, s)| s.iter().any(|&b| b != 0xFF))
            .map(|(i, s)| {
                let mut sector = [0xFF; SECTOR];
                sector[..s.len()].copy_from_slice(s);
                (i as u32, Arc::new(sector))
            })
            .collect();
        Self {
            size: mem.len(),
            sectors,
        }
    }
}

/// Written sectors shared between the devices of one run, by content.
#[derive(Default)]
pub struct SectorPool {
    by_hash: Mutex<HashMap<u64, Sector>>,
}

impl SectorPool {
    /// The pool's copy of `sector`'s content (`sector` itself if it is the first such).
    fn intern(&self, sector: &Sector) -> Sector {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        sector[..].hash(&mut h);
        let key = h.finish();
        let mut pool = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        match pool.get(&key) {
            Some(p) if p[..] == sector[..] => Arc::clone(p),
            // A hash collision keeps the sector private.
            Some(_) => Arc::clone(sector),
            None => {
                pool.insert(key, Arc::clone(sector));
                Arc::clone(sector)
            }
        }
    }

    /// Bytes held by the pool.
    pub fn bytes(&self) -> usize {
        self.by_hash.lock().unwrap_or_else(|e| e.into_inner()).len() * SECTOR
    }
}

/// One device's flash.
#[derive(Clone)]
pub struct SparseFlash {
    size: usize,
    sectors: BTreeMap<u32, Sector>,
    pool: Arc<SectorPool>,
    /// Sectors written since the last [`SparseFlash::settle`].
    dirty: Vec<u32>,
    ops: u64,
    /// The operation (counted from now on) that never completes: a power cut.
    cut_at: Option<u64>,
    dead: bool,
}

impl SparseFlash {
    pub fn new(factory: &FactoryImage, pool: Arc<SectorPool>) -> Self {
        Self {
            size: factory.size,
            sectors: factory.sectors.clone(),
            pool,
            dirty: Vec::new(),
            ops: 0,
            cut_at: None,
            dead: false,
        }
    }

    /// Cuts the power `after` operations from now (0: the next one never completes).
    pub fn arm_cut(&mut self, after: u64) {
        self.cut_at = Some(self.ops + after);
    }

    /// Did a cut happen since the last [`SparseFlash::power_on`]?
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Power returns: operations work again and no cut is pending.
    pub fn power_on(&mut self) {
        self.dead = false;
        self.cut_at = None;
    }

    /// Shares the sectors written since the last call through the pool (all-0xFF ones are
    /// dropped): call it when the device goes to sleep.
    pub fn settle(&mut self) {
        for k in std::mem::take(&mut self.dirty) {
            let Some(s) = self.sectors.get(&k) else {
                continue;
            };
            if s.iter().all(|&b| b == 0xFF) {
                self.sectors.remove(&k);
            } else if Arc::strong_count(s) == 1 {
                let shared = self.pool.intern(s);
                self.sectors.insert(k, shared);
            }
        }
    }

    /// Bytes of flash this device owns alone (shared with neither the factory image nor the
    /// pool).
    pub fn private_bytes(&self, factory: &FactoryImage) -> usize {
        self.sectors
            .iter()
            .filter(|(k, v)| {
                Arc::strong_count(v) == 1
                    && factory.sectors.get(k).is_none_or(|f| !Arc::ptr_eq(f, v))
            })
            .count()
            * SECTOR
    }

    fn touch(&mut self, sector: u32) {
        if !self.dirty.contains(&sector) {
            self.dirty.push(sector);
        }
    }

    fn begin(&mut self, end: usize) -> Result<bool, FlashError> {
        if self.dead {
            return Err(FlashError::PowerCut);
        }
        if end > self.size {
            return Err(FlashError::OutOfBounds);
        }
        let cut = self.cut_at == Some(self.ops);
        self.ops += 1;
        if cut {
            self.dead = true;
        }
        Ok(cut)
    }
}

impl ErrorType for SparseFlash {
    type Error = FlashError;
}

impl ReadNorFlash for SparseFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let start = offset as usize;
        if start + bytes.len() > self.size {
            return Err(FlashError::OutOfBounds);
        }
        let mut at = start;
        for out in bytes.chunks_mut(SECTOR) {
            // Split on sector boundaries.
            let mut done = 0;
            while done < out.len() {
                let sector = (at / SECTOR) as u32;
                let within = at % SECTOR;
                let n = (SECTOR - within).min(out.len() - done);
                match self.sectors.get(&sector) {
                    Some(s) => out[done..done + n].copy_from_slice(&s[within..within + n]),
                    None => out[done..done + n].fill(0xFF),
                }
                done += n;
                at += n;
            }
        }
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.size
    }
}

impl NorFlash for SparseFlash {
    const WRITE_SIZE: usize = 1;
    const ERASE_SIZE: usize = SECTOR;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        if !(from as usize).is_multiple_of(SECTOR)
            || !(to as usize).is_multiple_of(SECTOR)
            || to < from
        {
            return Err(FlashError::NotAligned);
        }
        if self.begin(to as usize)? {
            // A cut erase leaves the sector half erased: treat it as garbage the state
            // record's CRC and the image hash will reject (the first half erased).
            let first = from / SECTOR as u32;
            if let Some(s) = self.sectors.get_mut(&first) {
                Arc::make_mut(s)[..SECTOR / 2].fill(0xFF);
                self.touch(first);
            }
            return Err(FlashError::PowerCut);
        }
        for sector in from / SECTOR as u32..to / SECTOR as u32 {
            self.sectors.remove(&sector);
        }
        self.dirty
            .retain(|d| !(from / SECTOR as u32..to / SECTOR as u32).contains(d));
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let start = offset as usize;
        // A cut program leaves nothing written (the torn variants are the sweep's business).
        if self.begin(start + bytes.len())? {
            return Err(FlashError::PowerCut);
        }
        let mut at = start;
        let mut rest = bytes;
        while !rest.is_empty() {
            let sector = (at / SECTOR) as u32;
            let within = at % SECTOR;
            let n = (SECTOR - within).min(rest.len());
            let s = self
                .sectors
                .entry(sector)
                .or_insert_with(|| Arc::new([0xFF; SECTOR]));
            for (m, d) in Arc::make_mut(s)[within..within + n]
                .iter_mut()
                .zip(&rest[..n])
            {
                *m &= *d;
            }
            self.touch(sector);
            rest = &rest[n..];
            at += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nor_semantics_sharing_and_cuts() {
        let mut mem = vec![0xFF; 4 * SECTOR];
        mem[SECTOR..SECTOR + 4].copy_from_slice(b"KEY!");
        let factory = FactoryImage::from_bytes(&mem);
        assert_eq!(factory.sectors.len(), 1, "erased sectors take no memory");
        let pool = Arc::new(SectorPool::default());
        let mut a = SparseFlash::new(&factory, Arc::clone(&pool));
        let b = SparseFlash::new(&factory, Arc::clone(&pool));
        assert_eq!(a.private_bytes(&factory), 0);
        // Program across a sector boundary; bits only clear.
        a.write(SECTOR as u32 - 2, &[0x0F, 0xF0, 0x00, 0xAA])
            .expect("program");
        a.write(SECTOR as u32 - 2, &[0xFF, 0x3C]).expect("again");
        let mut out = [0u8; 6];
        a.read(SECTOR as u32 - 2, &mut out).expect("read");
        // 0x00 & 'K' and 0xAA & 'E' (0x45): programming only ever clears bits.
        assert_eq!(out, [0x0F, 0x30, 0x00, 0xAA & b'E', b'Y', b'!']);
        assert_eq!(a.private_bytes(&factory), 2 * SECTOR, "copy on write");
        let mut key = [0u8; 4];
        let mut b = b;
        b.read(SECTOR as u32, &mut key).expect("read");
        assert_eq!(
            &key, b"KEY!",
            "the other device still sees the factory sector"
        );
        // Erase frees; a cut stops this and every later operation until power returns.
        a.erase(0, 2 * SECTOR as u32).expect("erase");
        a.read(SECTOR as u32, &mut key).expect("read");
        assert_eq!(key, [0xFF; 4]);
        a.arm_cut(1);
        a.write(0, &[0]).expect("op 0 completes");
        assert_eq!(a.write(1, &[0]), Err(FlashError::PowerCut));
        assert_eq!(a.write(2, &[0]), Err(FlashError::PowerCut));
        assert!(a.is_dead());
        a.power_on();
        a.write(2, &[0]).expect("power is back");
        assert_eq!(a.erase(1, 4096), Err(FlashError::NotAligned));
        assert_eq!(
            a.write(4 * SECTOR as u32, &[0]),
            Err(FlashError::OutOfBounds)
        );
    }

    /// Two devices that wrote the same bytes share one sector after settling; a later write to
    /// it copies it first, so the other device never sees it.
    #[test]
    fn identical_writes_share_sectors_until_written_again() {
        let factory = FactoryImage::from_bytes(&vec![0xFF; 4 * SECTOR]);
        let pool = Arc::new(SectorPool::default());
        let mut a = SparseFlash::new(&factory, Arc::clone(&pool));
        let mut b = SparseFlash::new(&factory, Arc::clone(&pool));
        for f in [&mut a, &mut b] {
            f.write(SECTOR as u32, &[0x12; 300]).expect("write");
            f.write(2 * SECTOR as u32, &[0x00; 8]).expect("write");
        }
        assert_eq!(a.private_bytes(&factory), 2 * SECTOR);
        a.settle();
        b.settle();
        assert_eq!(pool.bytes(), 2 * SECTOR, "two distinct contents");
        assert_eq!(a.private_bytes(&factory) + b.private_bytes(&factory), 0);
        assert!(Arc::ptr_eq(&a.sectors[&1], &b.sectors[&1]));
        // Copy on write: b's next write leaves a's sector alone.
        b.write(SECTOR as u32 + 1, &[0x02]).expect("write");
        let (mut x, mut y) = ([0u8; 2], [0u8; 2]);
        a.read(SECTOR as u32, &mut x).expect("read");
        b.read(SECTOR as u32, &mut y).expect("read");
        assert_eq!((x, y), ([0x12, 0x12], [0x12, 0x02]));
        assert_eq!(b.private_bytes(&factory), SECTOR);
        // A sector erased back to 0xFF takes nothing.
        b.erase(SECTOR as u32, 2 * SECTOR as u32).expect("erase");
        b.write(SECTOR as u32, &[0xFF; 4]).expect("write");
        b.settle();
        assert!(!b.sectors.contains_key(&1));
    }
}
