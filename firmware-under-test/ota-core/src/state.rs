//! The persisted boot state: which slot runs, whether it is on trial, the anti-rollback floor,
//! and the last error.
//!
//! Two copies live in two sectors. Every change writes a whole new record with the next
//! sequence number into the sector *not* holding the current one: erase, then program one
//! page. Reading takes the valid record (magic + CRC-32) with the highest sequence number. So a
//! power cut anywhere in a write — a torn erase leaving garbage or bytes half-way to 0xFF, a
//! torn program leaving any prefix of the record or unstable bits — leaves the previous record
//! in charge: every state change is atomic. The CRC is what makes it so: a prefix of 10 bytes
//! or more carries the magic and the new sequence number, and only the CRC tells it apart.
//!
//! Record layout (little-endian, 96 bytes, padded with 0xFF to a page):
//!
//! | offset | size | field                                                  |
//! |-------:|-----:|--------------------------------------------------------|
//! |      0 |    4 | magic `OTAS`                                           |
//! |      4 |    4 | sequence number                                        |
//! |      8 |    1 | active slot (0 = A, 1 = B)                             |
//! |      9 |    1 | mode (0 confirmed, 1 trial)                            |
//! |     10 |    1 | trial boots so far                                     |
//! |     11 |    1 | previous slot (0, 1, or 0xFF: none / not intact)       |
//! |     12 |    1 | flags (bit 0: running image was reverted to)           |
//! |     13 |    1 | last error code ([`crate::Reason`], 0 = none)          |
//! |     14 |    6 | rejected version (never install again)                 |
//! |     20 |    4 | anti-rollback floor                                    |
//! |     24 |   32 | digest of the manifest being downloaded (0 = none)     |
//! |     56 |    1 | slot being downloaded into (0xFF = none)               |
//! |     57 |   35 | reserved (0)                                           |
//! |     92 |    4 | CRC-32 of bytes 0..92                                  |

use embedded_storage::nor_flash::NorFlash;

use crate::layout::Layout;
use crate::{Digest, Reason, Version};

const MAGIC: [u8; 4] = *b"OTAS";
/// Encoded record length.
pub const RECORD_LEN: usize = 96;
const NONE: u8 = 0xFF;

/// Whether the running image is confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Confirmed,
    Trial,
}

/// The boot state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootState {
    pub seq: u32,
    pub active: u8,
    pub mode: Mode,
    pub attempts: u8,
    /// The slot holding the previous confirmed image, while it is intact.
    pub previous: Option<u8>,
    /// The running image is the one the board reverted to.
    pub reverted: bool,
    pub last_error: Option<Reason>,
    pub rejected: Option<Version>,
    pub floor: u32,
    /// Manifest digest and slot of a download in progress.
    pub download: Option<(Digest, u8)>,
}

impl BootState {
    /// A factory state: `active` confirmed, nothing else.
    pub fn factory(active: u8, floor: u32) -> Self {
        Self {
            seq: 0,
            active,
            mode: Mode::Confirmed,
            attempts: 0,
            previous: None,
            reverted: false,
            last_error: None,
            rejected: None,
            floor,
            download: None,
        }
    }

    pub fn inactive(&self) -> u8 {
        self.active ^ 1
    }

    /// The bootloader goes back to `slot` (the previous image, or the factory image copied
    /// into slot A) because the running image failed for `reason`: confirmed there, nothing
    /// before it, the failed version (if its header was readable) never retried, no download
    /// in progress.
    pub fn revert_to(&mut self, slot: u8, failed: Option<Version>, reason: Reason) {
        self.active = slot;
        self.mode = Mode::Confirmed;
        self.attempts = 0;
        self.previous = None;
        self.reverted = true;
        self.rejected = failed.or(self.rejected);
        self.last_error = Some(reason);
        self.download = None;
    }

    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..8].copy_from_slice(&self.seq.to_le_bytes());
        b[8] = self.active;
        b[9] = match self.mode {
            Mode::Confirmed => 0,
            Mode::Trial => 1,
        };
        b[10] = self.attempts;
        b[11] = self.previous.unwrap_or(NONE);
        b[12] = u8::from(self.reverted);
        b[13] = self.last_error.map_or(0, |r| r as u8);
        if let Some(v) = self.rejected {
            b[14..20].copy_from_slice(&v.to_le_bytes());
        }
        b[20..24].copy_from_slice(&self.floor.to_le_bytes());
        match self.download {
            Some((digest, slot)) => {
                b[24..56].copy_from_slice(&digest);
                b[56] = slot;
            }
            None => b[56] = NONE,
        }
        let crc = crc32(&b[..92]);
        b[92..96].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a record; `None` if it is not a valid, complete record.
    pub fn decode(b: &[u8]) -> Option<Self> {
        Self::decode_checked(b, true)
    }

    /// [`BootState::decode`]; with `check_crc: false` (the `skip_state_crc` test quirk) a
    /// record is trusted on its magic and field values alone, as a firmware that forgot the
    /// CRC check would.
    pub fn decode_checked(b: &[u8], check_crc: bool) -> Option<Self> {
        let b = b.get(..RECORD_LEN)?;
        if b[0..4] != MAGIC || (check_crc && crate::le_u32(b, 92) != crc32(&b[..92])) {
            return None;
        }
        let slot = |x: u8| (x <= 1).then_some(x);
        let mut v = [0u8; 6];
        v.copy_from_slice(&b[14..20]);
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&b[24..56]);
        Some(Self {
            seq: crate::le_u32(b, 4),
            active: slot(b[8])?,
            mode: match b[9] {
                0 => Mode::Confirmed,
                1 => Mode::Trial,
                _ => return None,
            },
            attempts: b[10],
            previous: slot(b[11]),
            reverted: b[12] & 1 == 1,
            last_error: Reason::from_code(b[13]),
            rejected: (b[14..20] != [0; 6]).then(|| Version::from_le_bytes(v)),
            floor: crate::le_u32(b, 20),
            download: slot(b[56]).map(|s| (digest, s)),
        })
    }
}

/// Reads both copies and returns the newest valid record.
pub fn load<F: NorFlash>(flash: &mut F, layout: &Layout) -> Result<Option<BootState>, F::Error> {
    load_checked(flash, layout, true)
}

/// [`load`]; `check_crc: false` is the `skip_state_crc` test quirk
/// ([`BootState::decode_checked`]).
pub fn load_checked<F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    check_crc: bool,
) -> Result<Option<BootState>, F::Error> {
    let mut best: Option<BootState> = None;
    for &at in &layout.state {
        let mut buf = [0u8; RECORD_LEN];
        flash.read(at, &mut buf)?;
        if let Some(s) = BootState::decode_checked(&buf, check_crc)
            && best.as_ref().is_none_or(|b| s.seq > b.seq)
        {
            best = Some(s);
        }
    }
    Ok(best)
}

/// Writes `state` as the next record (its `seq` is set here), into the copy that does not hold
/// the current record. Erase, then one page program: a cut at either op leaves the previous
/// record in charge.
pub fn store<F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    state: &mut BootState,
) -> Result<(), F::Error> {
    state.seq = state.seq.wrapping_add(1);
    let at = layout.state[(state.seq & 1) as usize];
    flash.erase(at, at + layout.sector)?;
    let mut page = [0xFFu8; 256];
    page[..RECORD_LEN].copy_from_slice(&state.encode());
    flash.write(at, &page[..(layout.page as usize).min(256)])
}

/// CRC-32 (IEEE 802.3, reflected), bitwise: small and table-free for a bootloader.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn records_round_trip_and_reject_damage() {
        let mut s = BootState::factory(1, 7);
        s.seq = 41;
        s.mode = Mode::Trial;
        s.attempts = 2;
        s.previous = Some(0);
        s.last_error = Some(Reason::BadSignature);
        s.rejected = Some(Version::new(3, 1, 0));
        s.download = Some(([9u8; 32], 0));
        let b = s.encode();
        assert_eq!(BootState::decode(&b), Some(s));
        for i in 0..RECORD_LEN {
            let mut bad = b;
            bad[i] ^= 0x10;
            assert_eq!(BootState::decode(&bad), None, "byte {i}");
        }
        assert_eq!(BootState::decode(&[0xFF; RECORD_LEN]), None);
    }

    #[test]
    fn without_the_crc_check_a_torn_record_passes_for_a_valid_one() {
        let mut s = BootState::factory(0, 1);
        s.seq = 9;
        let mut torn = [0xFFu8; RECORD_LEN];
        torn[..12].copy_from_slice(&s.encode()[..12]);
        assert_eq!(BootState::decode(&torn), None);
        let trusted = BootState::decode_checked(&torn, false).expect("the quirk trusts it");
        assert_eq!(
            (trusted.seq, trusted.floor),
            (9, u32::MAX),
            "garbage fields"
        );
    }
}
