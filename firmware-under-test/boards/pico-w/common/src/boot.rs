//! The bootloader's choice of image on the Pico W: the boards' shared selection
//! (`otarig_board::boot`, ota-core's `Device::boot` plus an entry check) with the check an
//! execute-in-place board needs: an image must be linked for the slot it sits in
//! ([`crate::check_entry`]). Tested here, on the host, against ota-core's simulated flash.

use embedded_storage::nor_flash::NorFlash;
use ota_core::console::Console;
use ota_core::device::Device;
pub use otarig_board::boot::{Jump, Stop};

/// Picks the image to run.
pub fn select<F: NorFlash>(dev: &mut Device<'_, F>, out: &mut dyn Console) -> Result<Jump, Stop> {
    otarig_board::boot::select(dev, out, crate::check_entry::<F>)
}

#[cfg(test)]
mod tests {
    use std::string::{String, ToString};
    use std::vec::Vec;

    use ota_core::image::{self, HEADER_LEN, ImageSpec};
    use ota_core::keys::SigningKey;
    use ota_core::nor::TestFlash;
    use ota_core::state::{BootState, Mode};

    use ota_core::console::Line;
    use ota_core::state;
    use ota_core::{Reason, Version};

    use super::*;
    use crate::{LAYOUT, XIP_BASE, check_entry, config, vector_table};

    struct Lines(Vec<String>);

    impl Console for Lines {
        fn line(&mut self, line: &Line<'_>) {
            self.0.push(line.to_string());
        }
    }

    /// An app body as the linker lays it out for `linked_for`: vector table (stack pointer at
    /// the top of RAM, reset vector a little further in), then code.
    fn body(linked_for: u8, len: usize) -> Vec<u8> {
        let base = vector_table(linked_for);
        let mut b = vec![0x5Au8; len];
        b[0..4].copy_from_slice(&0x2004_0000u32.to_le_bytes());
        b[4..8].copy_from_slice(&(base + 0xC1).to_le_bytes());
        b
    }

    /// A signed image of an app linked for slot `linked_for` (wherever it is then written).
    fn image(key: &SigningKey, major: u16, linked_for: u8) -> Vec<u8> {
        let body = body(linked_for, 4096);
        let spec = ImageSpec {
            version: Version::new(major, 0, 0),
            rollback_counter: 1,
            board: image::board_kind("pico-w").expect("kind"),
            load_addr: vector_table(linked_for),
            entry_offset: 0xC1,
        };
        image::build(&spec, &body, key)
    }

    /// A provisioned flash: key region, `images` in their slots, and `state` if given.
    fn flash(key: &SigningKey, images: &[(u8, Vec<u8>)], state: Option<BootState>) -> TestFlash {
        let mut f = TestFlash::new(LAYOUT.flash_size as usize);
        let otp = LAYOUT.otp as usize;
        f.core.mem[otp..otp + 4].copy_from_slice(b"OTPK");
        f.core.mem[otp + 4..otp + 36].copy_from_slice(key.verifying_key().as_bytes());
        for (slot, img) in images {
            let at = LAYOUT.slot(*slot) as usize;
            f.core.mem[at..at + img.len()].copy_from_slice(img);
        }
        if let Some(mut st) = state {
            st.seq = 1;
            let at = LAYOUT.state[1] as usize;
            f.core.mem[at..at + state::RECORD_LEN].copy_from_slice(&st.encode());
        }
        f
    }

    fn device(key: &SigningKey, mut f: TestFlash) -> Device<'static, TestFlash> {
        let pk = crate::read_trusted_key(&mut f).expect("provisioned key");
        assert_eq!(pk, key.verifying_key().to_bytes());
        Device::new(f, config(pk))
    }

    fn trial_of_b() -> BootState {
        let mut st = BootState::factory(1, 1);
        st.mode = Mode::Trial;
        st.previous = Some(0);
        st
    }

    /// The jump to an app in slot A.
    const JUMP_TO_A: Jump = Jump {
        slot: 0,
        vector_table: XIP_BASE + 0x2_0100,
    };

    /// A device on a flash holding `images`, each `(slot, major version, slot it is linked
    /// for)`, and `state` if given.
    fn device_with(
        images: &[(u8, u16, u8)],
        state: Option<BootState>,
    ) -> Device<'static, TestFlash> {
        let key = ota_core::keys::generate();
        let images: Vec<_> = images
            .iter()
            .map(|&(slot, major, linked_for)| (slot, image(&key, major, linked_for)))
            .collect();
        device(&key, flash(&key, &images, state))
    }

    /// The state record on the device's flash.
    fn stored(dev: &mut Device<'static, TestFlash>) -> BootState {
        state::load(&mut dev.flash, &LAYOUT)
            .expect("read")
            .expect("state")
    }

    /// What `select` picks, and the lines it prints.
    fn boot(dev: &mut Device<'static, TestFlash>) -> (Result<Jump, Stop>, Vec<String>) {
        let mut out = Lines(Vec::new());
        let jump = select(dev, &mut out);
        (jump, out.0)
    }

    #[test]
    fn a_good_image_runs_from_its_slot() {
        let mut dev = device_with(&[(0, 1, 0)], Some(BootState::factory(0, 1)));
        let (jump, out) = boot(&mut dev);
        assert_eq!(jump, Ok(JUMP_TO_A));
        assert_eq!(out, ["boot: slot=a version=1.0.0 state=confirmed"]);
    }

    #[test]
    fn a_trial_image_linked_for_the_other_slot_is_refused_and_reverted() {
        let mut dev = device_with(&[(0, 1, 0), (1, 2, 0)], Some(trial_of_b()));
        let (jump, out) = boot(&mut dev);
        assert_eq!(jump.map(|j| j.slot), Ok(0), "falls back");
        assert_eq!(
            out,
            [
                "boot: refuse slot=b reason=missing-entry-point",
                "boot: revert to=1.0.0 reason=bad-image",
                "boot: slot=a version=1.0.0 state=confirmed",
            ]
        );
        let st = stored(&mut dev);
        assert_eq!(st.active, 0);
        assert!(st.reverted);
        assert_eq!(st.rejected, Some(Version::new(2, 0, 0)));
        assert_eq!(st.last_error, Some(Reason::MissingEntryPoint));
        // Booting again runs A straight away.
        let (jump, out) = boot(&mut dev);
        assert_eq!(jump.map(|j| j.slot), Ok(0));
        assert_eq!(out, ["boot: slot=a version=1.0.0 state=confirmed"]);
    }

    #[test]
    fn without_a_previous_image_a_misplaced_one_bricks() {
        // A slot-B build flashed into slot A at the factory.
        let mut dev = device_with(&[(0, 1, 1)], Some(BootState::factory(0, 1)));
        let (jump, out) = boot(&mut dev);
        assert_eq!(jump, Err(Stop::Bricked));
        assert_eq!(
            out,
            [
                "boot: refuse slot=a reason=missing-entry-point",
                "boot: FATAL no bootable image",
            ]
        );
    }

    #[test]
    fn a_rebuilt_state_record_is_checked_too() {
        // No state record; the newest signed image (B) is linked for A.
        let mut dev = device_with(&[(0, 1, 0), (1, 2, 0)], None);
        // ota-core rebuilds a record naming B, with no previous image: the other slot runs.
        let (jump, out) = boot(&mut dev);
        assert_eq!(jump.map(|j| j.slot), Ok(0));
        assert_eq!(
            out,
            [
                "boot: slot=b version=2.0.0 state=confirmed",
                "boot: refuse slot=b reason=missing-entry-point",
                "boot: revert to=1.0.0 reason=bad-image",
                "boot: slot=a version=1.0.0 state=confirmed",
            ]
        );
        let st = stored(&mut dev);
        assert_eq!((st.active, st.rejected), (0, Some(Version::new(2, 0, 0))));
    }

    #[test]
    fn trial_counting_and_revert_are_ota_cores() {
        let mut dev = device_with(&[(0, 1, 0), (1, 2, 1)], Some(trial_of_b()));
        for attempt in 1..=3 {
            let (jump, out) = boot(&mut dev);
            assert_eq!(jump.map(|j| j.slot), Ok(1));
            assert_eq!(
                out,
                [
                    format!("boot: trial version=2.0.0 attempt={attempt}/3"),
                    "boot: slot=b version=2.0.0 state=trial".to_string(),
                ]
            );
        }
        let (jump, out) = boot(&mut dev);
        assert_eq!(jump, Ok(JUMP_TO_A));
        assert_eq!(out[0], "boot: revert to=1.0.0 reason=trial-exhausted");
    }

    #[test]
    fn entry_checks() {
        let key = ota_core::keys::generate();
        let good = image(&key, 1, 1);
        let mut f = flash(&key, &[(1, good.clone())], None);
        let h = image::ImageHeader::parse(&good).expect("header");
        assert_eq!(check_entry(&mut f, 1, &h), Ok(XIP_BASE + 0xA_0100));
        // Same image read from slot A: its load address is B's.
        assert_eq!(check_entry(&mut f, 0, &h), Err(Reason::MissingEntryPoint));
        // A stack pointer outside RAM, or an ARM-mode (even) reset vector.
        for (at, word) in [(0usize, 0x1000_0000u32), (4, 0x100A_01C0)] {
            let mut bad = good.clone();
            bad[HEADER_LEN + at..HEADER_LEN + at + 4].copy_from_slice(&word.to_le_bytes());
            let mut f = flash(&key, &[(1, bad)], None);
            assert_eq!(
                check_entry(&mut f, 1, &h),
                Err(Reason::MissingEntryPoint),
                "{at}"
            );
        }
    }
}
