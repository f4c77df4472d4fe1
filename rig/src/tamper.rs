//! Flash tampering for `tamper` steps: what bit rot or a physical attack does to a powered-off
//! board's flash, applied to its flash image in memory. The firmware must then fall back to an
//! intact image (the other slot, the factory image) or an intact state record, never boot a
//! tampered image, and never brick while a valid image exists.

use ota_core::image::{HEADER_LEN, ImageHeader};
use ota_core::layout::{Layout, slot_name};
use ota_core::state::{BootState, RECORD_LEN};

use crate::scenario::{FlashRegion, ImagePart, Tamper};

/// Why a tamper step cannot be applied (a scenario that asks for the impossible).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the flash image is {got} bytes, the layout needs {need}")]
    FlashSize { got: usize, need: u32 },
    #[error("no valid state record: which slot is {0} is unknown")]
    NoState(&'static str),
    #[error("only one valid state record (seq {0}): there is no older one to rewind to")]
    NothingToRewind(u32),
    #[error("{0} holds no image header, so it has no {1}")]
    NoImage(String, &'static str),
}

/// Applies `t` to `flash` (the whole flash, laid out as `layout`), choosing bit positions from
/// `seed`; returns what was changed, for the timeline.
pub fn apply(flash: &mut [u8], layout: &Layout, t: &Tamper, seed: u64) -> Result<String, Error> {
    if flash.len() < layout.flash_size as usize {
        return Err(Error::FlashSize {
            got: flash.len(),
            need: layout.flash_size,
        });
    }
    match t {
        Tamper::RewindState => rewind_state(flash, layout),
        Tamper::FlipBits { region, part, bits } => {
            let ranges = ranges(flash, layout, *region, *part)?;
            let mut rng = SplitMix(seed);
            let mut flipped = Vec::new();
            // Every range gets its own bits: "both state copies" damages both.
            for range in &ranges {
                let one = std::slice::from_ref(range);
                let total = u64::from(range.1) * 8;
                let bits = u64::from(*bits).min(total);
                let mut chosen: Vec<u64> = Vec::with_capacity(bits as usize);
                while (chosen.len() as u64) < bits {
                    let b = rng.next() % total;
                    if !chosen.contains(&b) {
                        chosen.push(b);
                    }
                }
                chosen.sort_unstable();
                for b in chosen {
                    let (addr, bit) = locate(one, b);
                    flash[addr as usize] ^= 1 << bit;
                    flipped.push(format!("0x{addr:06x}.{bit}"));
                }
            }
            let names: Vec<&str> = ranges.iter().map(|(_, _, n)| n.as_str()).collect();
            let shown = flipped
                .iter()
                .take(8)
                .cloned()
                .collect::<Vec<_>>()
                .join(" ");
            let more = if flipped.len() > 8 {
                format!(" and {} more", flipped.len() - 8)
            } else {
                String::new()
            };
            Ok(format!(
                "flipped {} bit(s) in {}: {shown}{more}",
                flipped.len(),
                names.join(" and ")
            ))
        }
    }
}

/// The valid state records: (address, record), newest first.
fn records(flash: &[u8], layout: &Layout) -> Vec<(u32, BootState)> {
    let mut found: Vec<(u32, BootState)> = layout
        .state
        .iter()
        .filter_map(|&at| {
            let bytes = flash.get(at as usize..at as usize + RECORD_LEN)?;
            BootState::decode(bytes).map(|s| (at, s))
        })
        .collect();
    found.sort_by_key(|(_, s)| std::cmp::Reverse(s.seq));
    found
}

fn rewind_state(flash: &mut [u8], layout: &Layout) -> Result<String, Error> {
    let found = records(flash, layout);
    match found.as_slice() {
        [] => Err(Error::NoState("newest")),
        [(_, only)] => Err(Error::NothingToRewind(only.seq)),
        [(new_at, new), (old_at, old), ..] => {
            let (new_at, old_at) = (*new_at as usize, *old_at as usize);
            let older = flash[old_at..old_at + RECORD_LEN].to_vec();
            flash[new_at..new_at + RECORD_LEN].copy_from_slice(&older);
            Ok(format!(
                "state record seq {} (slot {} {:?}) at 0x{new_at:06x} replaced by the older seq {} (slot {} {:?})",
                new.seq,
                slot_name(new.active),
                new.mode,
                old.seq,
                slot_name(old.active),
                old.mode
            ))
        }
    }
}

/// The byte ranges a region and part cover: (start, length, description).
fn ranges(
    flash: &[u8],
    layout: &Layout,
    region: FlashRegion,
    part: ImagePart,
) -> Result<Vec<(u32, u32, String)>, Error> {
    let state = |which: usize| -> Result<(u32, u32, String), Error> {
        let found = records(flash, layout);
        let (at, st) =
            found
                .get(which)
                .ok_or(Error::NoState(if which == 0 { "newest" } else { "older" }))?;
        Ok((
            *at,
            RECORD_LEN as u32,
            format!("state record seq {}", st.seq),
        ))
    };
    let slot = |index: u8| (layout.slot(index), format!("slot {}", slot_name(index)));
    let active = || -> Result<u8, Error> {
        records(flash, layout)
            .first()
            .map(|(_, s)| s.active)
            .ok_or(Error::NoState("active"))
    };
    let (start, name) = match region {
        FlashRegion::StateNewest => return Ok(vec![state(0)?]),
        FlashRegion::StateOlder => return Ok(vec![state(1)?]),
        FlashRegion::StateBoth => {
            return Ok(layout
                .state
                .iter()
                .map(|&at| (at, RECORD_LEN as u32, format!("state copy at 0x{at:06x}")))
                .collect());
        }
        FlashRegion::SlotA => slot(0),
        FlashRegion::SlotB => slot(1),
        FlashRegion::Active => slot(active()?),
        FlashRegion::Inactive => slot(active()? ^ 1),
        FlashRegion::Factory => (layout.factory, "the factory image".to_string()),
    };
    let header = &flash[start as usize..start as usize + HEADER_LEN];
    let body_len = ImageHeader::parse(header)
        .ok()
        .map(|h| h.image_len().min(layout.slot_size) - HEADER_LEN as u32);
    let header_range = (start, HEADER_LEN as u32, format!("{name}'s header"));
    Ok(match (part, body_len) {
        (ImagePart::Header, _) | (ImagePart::Anywhere, None | Some(0)) => vec![header_range],
        (ImagePart::Body, None | Some(0)) => return Err(Error::NoImage(name, "body")),
        (ImagePart::Body, Some(n)) => {
            vec![(start + HEADER_LEN as u32, n, format!("{name}'s body"))]
        }
        (ImagePart::Anywhere, Some(n)) => {
            vec![(start, HEADER_LEN as u32 + n, format!("{name}'s image"))]
        }
    })
}

/// The flash address and bit of the `n`-th bit across `ranges`.
fn locate(ranges: &[(u32, u32, String)], mut n: u64) -> (u32, u8) {
    for (start, len, _) in ranges {
        let bits = u64::from(*len) * 8;
        if n < bits {
            return (start + (n / 8) as u32, (n % 8) as u8);
        }
        n -= bits;
    }
    // `n` is drawn below the total, so the loop always returns; stay in range regardless.
    ranges.last().map_or((0, 0), |(s, l, _)| (s + l - 1, 7))
}

/// A small deterministic generator (SplitMix64): the same seed flips the same bits.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_core::layout::SIM;
    use ota_core::state::Mode;

    fn flash_with_states(states: &[(usize, BootState)]) -> Vec<u8> {
        let mut flash = vec![0xFF; SIM.flash_size as usize];
        for (copy, st) in states {
            let at = SIM.state[*copy] as usize;
            flash[at..at + RECORD_LEN].copy_from_slice(&st.encode());
        }
        flash
    }

    fn state(seq: u32, active: u8, mode: Mode) -> BootState {
        BootState {
            seq,
            mode,
            ..BootState::factory(active, 1)
        }
    }

    fn diff(a: &[u8], b: &[u8]) -> u32 {
        a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
    }

    #[test]
    fn flips_exactly_the_asked_bits_in_the_region_only() {
        let before = flash_with_states(&[(0, state(3, 1, Mode::Confirmed))]);
        let mut flash = before.clone();
        let t = Tamper::FlipBits {
            region: FlashRegion::Active,
            part: ImagePart::Header,
            bits: 5,
        };
        let said = apply(&mut flash, &SIM, &t, 7).expect("applied");
        assert_eq!(diff(&before, &flash), 5, "{said}");
        let slot_b = SIM.slot(1) as usize..SIM.slot(1) as usize + HEADER_LEN;
        assert_eq!(diff(&before[slot_b.clone()], &flash[slot_b]), 5);
        assert!(said.contains("slot b's header"), "{said}");
        // The same seed flips the same bits; another seed, others.
        let mut again = before.clone();
        apply(&mut again, &SIM, &t, 7).expect("applied");
        assert_eq!(again, flash);
        let mut other = before.clone();
        apply(&mut other, &SIM, &t, 8).expect("applied");
        assert_ne!(other, flash);
    }

    #[test]
    fn state_copies_are_chosen_by_sequence_number() {
        let before = flash_with_states(&[
            (0, state(4, 1, Mode::Confirmed)),
            (1, state(3, 1, Mode::Trial)),
        ]);
        let mut flash = before.clone();
        let t = Tamper::FlipBits {
            region: FlashRegion::StateNewest,
            part: ImagePart::Anywhere,
            bits: 1,
        };
        apply(&mut flash, &SIM, &t, 1).expect("applied");
        let copy0 = SIM.state[0] as usize..SIM.state[0] as usize + RECORD_LEN;
        assert_eq!(diff(&before[copy0.clone()], &flash[copy0]), 1);
        // The newest copy no longer decodes: the older one is in charge.
        assert_eq!(records(&flash, &SIM).first().map(|(_, s)| s.seq), Some(3));
    }

    #[test]
    fn both_state_copies_are_damaged() {
        for seed in 0..20 {
            let mut flash = flash_with_states(&[
                (0, state(4, 1, Mode::Confirmed)),
                (1, state(3, 1, Mode::Trial)),
            ]);
            let t = Tamper::FlipBits {
                region: FlashRegion::StateBoth,
                part: ImagePart::Anywhere,
                bits: 1,
            };
            apply(&mut flash, &SIM, &t, seed).expect("applied");
            assert!(records(&flash, &SIM).is_empty(), "seed {seed}");
        }
    }

    #[test]
    fn rewinding_puts_the_older_record_in_charge() {
        let mut flash = flash_with_states(&[
            (0, state(4, 1, Mode::Confirmed)),
            (1, state(3, 1, Mode::Trial)),
        ]);
        apply(&mut flash, &SIM, &Tamper::RewindState, 0).expect("rewound");
        let now = records(&flash, &SIM);
        assert!(now.iter().all(|(_, s)| s.seq == 3 && s.mode == Mode::Trial));
        let mut single = flash_with_states(&[(0, state(4, 1, Mode::Confirmed))]);
        assert_eq!(
            apply(&mut single, &SIM, &Tamper::RewindState, 0),
            Err(Error::NothingToRewind(4))
        );
    }

    #[test]
    fn impossible_requests_are_refused() {
        let mut blank = vec![0xFF; SIM.flash_size as usize];
        let active = Tamper::FlipBits {
            region: FlashRegion::Active,
            part: ImagePart::Body,
            bits: 1,
        };
        assert_eq!(
            apply(&mut blank, &SIM, &active, 0),
            Err(Error::NoState("active"))
        );
        let body = Tamper::FlipBits {
            region: FlashRegion::SlotA,
            part: ImagePart::Body,
            bits: 1,
        };
        assert!(matches!(
            apply(&mut blank, &SIM, &body, 0),
            Err(Error::NoImage(..))
        ));
        assert!(matches!(
            apply(&mut [0u8; 16], &SIM, &body, 0),
            Err(Error::FlashSize { .. })
        ));
    }
}
