//! The bootloader's choice of image: ota-core's `Device::boot`, plus the one check a real
//! board adds (can the image run where it will run?), over any `NorFlash`.
//!
//! `Device::boot` makes every decision the simulated board makes (trial counting, revert after
//! the last attempt or on a bad image, full verification of the image to run). On top of it, an
//! image must pass the board's [`EntryCheck`] (the Pico W: linked for the slot it sits in; the
//! QEMU board: linked for the RAM address it is copied to, with a valid vector table): that is
//! checked *before* `Device::boot`, so that `boot: slot=` stays the last bootloader line, and
//! again after it, since a state record rebuilt from the slots may name such an image. The
//! fallback is ota-core's own: a rollback to the previous intact image (which
//! `Device::rollback` checks in full), with the refused image recorded as rejected.
//!
//! Tested on the host through the Pico W's wrapper (`boards/pico-w/common/src/boot.rs`).

use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use ota_core::console::{Console, Fatal, Line, RevertReason};
use ota_core::device::{Device, Error};
use ota_core::image::ImageHeader;
use ota_core::state::{self, BootState, Mode};
use ota_core::{Reason, Version};

/// The board's entry check: can the image `header` describes, stored in `slot`, run? The address
/// of its vector table if so; `Reason::Flash` when the flash failed; any other reason refuses it.
pub type EntryCheck<F> = fn(&mut F, u8, &ImageHeader) -> Result<u32, Reason>;

/// The entry check both boards share: the image's body, read at flash offset `body`, starts with
/// a Cortex-M vector table for a program linked at `linked_at`: an initial stack pointer in
/// `ram` (word-aligned), and a Thumb reset vector inside the body that is the header's entry
/// point. The vector table's address (`linked_at`) if so; [`Reason::Flash`] when the flash
/// fails; otherwise [`Reason::MissingEntryPoint`].
pub fn check_vector_table<F: ReadNorFlash>(
    flash: &mut F,
    body: u32,
    linked_at: u32,
    header: &ImageHeader,
    ram: core::ops::RangeInclusive<u32>,
) -> Result<u32, Reason> {
    let mut words = [0u8; 8];
    flash.read(body, &mut words).map_err(|_| Reason::Flash)?;
    let sp = u32::from_le_bytes([words[0], words[1], words[2], words[3]]);
    let reset = u32::from_le_bytes([words[4], words[5], words[6], words[7]]);
    let body_end = u64::from(linked_at) + u64::from(header.body_len);
    let stack_ok = ram.contains(&sp) && sp % 4 == 0;
    let reset_ok = reset & 1 == 1
        && reset == header.entry_point
        && reset > linked_at
        && u64::from(reset) < body_end;
    if stack_ok && reset_ok {
        Ok(linked_at)
    } else {
        Err(Reason::MissingEntryPoint)
    }
}

/// Why the bootloader does not jump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Nothing valid to boot (reported on the console): the board stays in the bootloader.
    Bricked,
    /// The flash failed under the bootloader: worth a reset.
    Flash,
}

/// What to run: the slot and the address of its vector table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jump {
    pub slot: u8,
    pub vector_table: u32,
}

/// Picks the image to run.
pub fn select<F: NorFlash>(
    dev: &mut Device<'_, F>,
    out: &mut dyn Console,
    check_entry: EntryCheck<F>,
) -> Result<Jump, Stop> {
    // Each round either ends in a jump or falls back to the previous image, which clears
    // `previous`: a third round can only end in a refusal without a fallback.
    for _ in 0..3 {
        precheck(dev, out, check_entry)?;
        let boot = match dev.boot(out) {
            Ok(b) => b,
            Err(Error::Bricked) => return Err(Stop::Bricked),
            Err(Error::Flash(_)) => return Err(Stop::Flash),
            // Device::boot refuses only through Bricked; kept for completeness.
            Err(Error::Refused(_)) => {
                out.line(&Line::BootFatal {
                    why: Fatal::NoBootableImage,
                });
                return Err(Stop::Bricked);
            }
        };
        let mut st = boot.state;
        if let Some(vector_table) =
            runnable_or_fall_back(dev, &mut st, boot.slot, &boot.header, out, check_entry)?
        {
            return Ok(Jump {
                slot: boot.slot,
                vector_table,
            });
        }
    }
    out.line(&Line::BootFatal {
        why: Fatal::NoBootableImage,
    });
    Err(Stop::Bricked)
}

/// Refuses the image the state record names if it cannot run from its slot.
fn precheck<F: NorFlash>(
    dev: &mut Device<'_, F>,
    out: &mut dyn Console,
    check_entry: EntryCheck<F>,
) -> Result<(), Stop> {
    let layout = dev.cfg.layout;
    let Some(mut st) = state::load(&mut dev.flash, &layout).map_err(|_| Stop::Flash)? else {
        // No state record: Device::boot rebuilds one; the image is checked after it.
        return Ok(());
    };
    let Ok(header) = dev.header(st.active) else {
        // A broken header: Device::boot refuses it itself.
        return Ok(());
    };
    let slot = st.active;
    runnable_or_fall_back(dev, &mut st, slot, &header, out, check_entry).map(|_| ())
}

/// Checks that the image `header` describes can run from `slot` (`check_entry`): if so, the
/// address of its vector table; if not, refuses it, falls back from `st` ([`fall_back`]) and
/// gives `None`.
fn runnable_or_fall_back<F: NorFlash>(
    dev: &mut Device<'_, F>,
    st: &mut BootState,
    slot: u8,
    header: &ImageHeader,
    out: &mut dyn Console,
    check_entry: EntryCheck<F>,
) -> Result<Option<u32>, Stop> {
    match check_entry(&mut dev.flash, slot, header) {
        Ok(vector_table) => Ok(Some(vector_table)),
        Err(Reason::Flash) => Err(Stop::Flash),
        Err(reason) => {
            out.line(&Line::BootRefuse { slot, reason });
            fall_back(dev, st, header.version, reason, out, check_entry)?;
            Ok(None)
        }
    }
}

/// Reverts to the previous image, then records the refused one as rejected with `reason`.
/// Two atomic state records; a cut between them leaves the previous image running, only
/// without the error recorded.
///
/// Without a previous image (a state record rebuilt from the slots, or a factory mistake),
/// the other slot is used if it holds an image that passes every check, ota-core's and the
/// entry check: the board is bricked only when no slot can run.
fn fall_back<F: NorFlash>(
    dev: &mut Device<'_, F>,
    st: &mut BootState,
    refused: Version,
    reason: Reason,
    out: &mut dyn Console,
    check_entry: EntryCheck<F>,
) -> Result<(), Stop> {
    match dev.rollback(st, refused) {
        Ok(to) => {
            dev.reject(st, refused, reason).map_err(|_| Stop::Flash)?;
            out.line(&Line::BootRevert {
                to,
                reason: RevertReason::BadImage,
            });
            Ok(())
        }
        Err(Error::Flash(_)) => Err(Stop::Flash),
        Err(Error::Refused(Reason::NoPrevious)) => {
            let other = st.inactive();
            let to = match dev.check_image(other, st.floor) {
                Ok(h) => match check_entry(&mut dev.flash, other, &h) {
                    Ok(_) => Some(h.version),
                    Err(Reason::Flash) => return Err(Stop::Flash),
                    Err(_) => None,
                },
                Err(Error::Flash(_)) => return Err(Stop::Flash),
                Err(_) => None,
            };
            let Some(to) = to else {
                out.line(&Line::BootFatal {
                    why: Fatal::NoBootableImage,
                });
                return Err(Stop::Bricked);
            };
            st.active = other;
            st.mode = Mode::Confirmed;
            st.attempts = 0;
            st.previous = None;
            st.reverted = true;
            st.rejected = Some(refused);
            st.last_error = Some(reason);
            st.download = None;
            let layout = dev.cfg.layout;
            state::store(&mut dev.flash, &layout, st).map_err(|_| Stop::Flash)?;
            out.line(&Line::BootRevert {
                to,
                reason: RevertReason::BadImage,
            });
            Ok(())
        }
        Err(e) => {
            if let Error::Refused(r) = e
                && let Some(prev) = st.previous
            {
                out.line(&Line::BootRefuse {
                    slot: prev,
                    reason: r,
                });
            }
            out.line(&Line::BootFatal {
                why: Fatal::NoBootableImage,
            });
            Err(Stop::Bricked)
        }
    }
}
