//! A deliberately broken bootloader, for proving that the emulator check catches one
//! (`emu/check.sh --self-test`). Built only with the `quirk-skip-signature` feature, which no
//! shipped build enables (`ci.sh` builds the default features).
//!
//! The defect: a staged (trial) image is trusted because "the app verified it before staging
//! it". Its header is parsed and its vector table checked, but its signature and body hash are
//! never verified, so a badly signed image in slot B runs.

use ota_core::console::{Console, Line, SlotState};
use ota_core::device::Device;
use ota_core::state::{self, Mode};
use otarig_pico::BoardFlash;
use otarig_pico::boot::{self, Jump, Stop};

/// `boot::select`, except that a trial image is booted without its signature check.
pub fn select(dev: &mut Device<'_, BoardFlash>, out: &mut dyn Console) -> Result<Jump, Stop> {
    let layout = dev.cfg.layout;
    if let Ok(Some(mut st)) = state::load(&mut dev.flash, &layout)
        && st.mode == Mode::Trial
        && st.attempts < dev.cfg.max_attempts
        && let Ok(header) = dev.header(st.active)
        && let Ok(vector_table) = otarig_pico::check_entry(&mut dev.flash, st.active, &header)
    {
        st.attempts += 1;
        state::store(&mut dev.flash, &layout, &mut st).map_err(|_| Stop::Flash)?;
        out.line(&Line::BootTrial {
            version: header.version,
            attempt: u32::from(st.attempts),
            max: u32::from(dev.cfg.max_attempts),
        });
        out.line(&Line::BootSlot {
            slot: st.active,
            version: header.version,
            state: SlotState::Trial,
        });
        return Ok(Jump {
            slot: st.active,
            vector_table,
        });
    }
    boot::select(dev, out)
}
