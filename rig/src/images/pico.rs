//! Images and golden flash images for the Raspberry Pi Pico W firmware
//! (`firmware-under-test/boards/pico-w`; its README has the flash map).
//!
//! The RP2040 executes the app in place, so an app binary runs only from the slot it was
//! linked for: every release is two images, one per slot. A firmware directory holds the app
//! binaries as `pico-w/ci.sh` and `tools/build-drills.sh` write them:
//! `app-a.bin`, `app-b.bin` (no drill) and `app-<drill>-a.bin`, `app-<drill>-b.bin`, plus
//! `bootloader.bin` (boot2 + bootloader, from 0x10000000). The drill is compiled in
//! (`OTARIG_DRILL`); the version and the anti-rollback counter come from the image header the
//! rig writes here, so one build serves every version a scenario needs.

use std::path::Path;

use ota_core::keys::SigningKey;
use ota_core::payload::Drill;

use crate::scenario::ImageDef;

/// Where the flash is mapped (execute in place).
pub const XIP_BASE: u64 = 0x1000_0000;
/// Flash offset of the key region (`OTPK` + the trusted public key).
#[cfg(test)]
const KEY_REGION: usize = 0x1_0000;
/// Slot offsets and size.
const SLOT_A: usize = 0x2_0000;
const SLOT_B: usize = 0xA_0000;
const SLOT_LEN: usize = 512 * 1024;
/// The factory region: a copy of the factory image for the factory-reset drill.
const FACTORY: usize = 0x12_0000;
/// The bootloader partition (boot2 included).
const BOOTLOADER_LEN: usize = 0x1_0000;
/// Main SRAM: an initial stack pointer must point inside it (or at its end).
const RAM: std::ops::RangeInclusive<u32> = 0x2000_0000..=0x2004_2000;

/// One of the two app slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn letter(self) -> char {
        match self {
            Self::A => 'a',
            Self::B => 'b',
        }
    }

    fn offset(self) -> usize {
        match self {
            Self::A => SLOT_A,
            Self::B => SLOT_B,
        }
    }

    /// The XIP address the app body of this slot is linked at (after the 256-byte header).
    pub fn load_addr(self) -> u32 {
        (XIP_BASE as usize + self.offset() + ota_core::image::HEADER_LEN) as u32
    }
}

fn app_name(drill: Drill, slot: Slot, ext: &str) -> String {
    match drill {
        Drill::None => format!("app-{}.{ext}", slot.letter()),
        d => format!("app-{}-{}.{ext}", d.as_str(), slot.letter()),
    }
}

/// The ELF of the app build for `drill` linked for `slot` (its symbols), in the firmware
/// directory.
pub fn app_elf(dir: &Path, drill: Drill, slot: Slot) -> std::path::PathBuf {
    dir.join(app_name(drill, slot, "elf"))
}

/// The app binary for `drill` linked for `slot`, from the firmware directory.
pub fn app_binary(dir: &Path, drill: Drill, slot: Slot) -> Result<Vec<u8>, String> {
    let path = dir.join(app_name(drill, slot, "bin"));
    std::fs::read(&path).map_err(|e| {
        format!(
            "{}: {e}; build it with `OTARIG_DRILL={} OTARIG_SLOT={}` (firmware-under-test/boards/pico-w/tools/build-drills.sh builds every drill)",
            path.display(),
            drill.as_str(),
            slot.letter()
        )
    })
}

/// A signed Pico W image of `app` (linked for `slot`) with the version and counter of `def`.
/// The app's vector table must be that of an app linked for `slot`.
pub fn image(def: &ImageDef, app: &[u8], slot: Slot, key: &SigningKey) -> Result<Vec<u8>, String> {
    let target = super::AppTarget {
        board: "pico-w",
        load_addr: slot.load_addr(),
        ram: RAM,
        linked_for: format!("slot {} at 0x{:08x}", slot.letter(), slot.load_addr()),
    };
    super::app_image(def, app, &target, key)
}

/// The factory flash of a Pico W from address 0 (XIP 0x10000000): boot2 + bootloader, the
/// key region holding `public_key`, erased state records (the bootloader then adopts slot A
/// as the factory image), `factory` (a slot-A image) in slot A and in the factory region (the
/// factory-reset drill copies it back), slot B erased.
pub fn golden(dir: &Path, factory: &[u8], public_key: &[u8; 32]) -> Result<Vec<u8>, String> {
    let boot_path = dir.join("bootloader.bin");
    let bootloader =
        std::fs::read(&boot_path).map_err(|e| format!("{}: {e}", boot_path.display()))?;
    if bootloader.len() > BOOTLOADER_LEN {
        return Err(format!(
            "{}: {} bytes overflow the {BOOTLOADER_LEN}-byte bootloader partition",
            boot_path.display(),
            bootloader.len()
        ));
    }
    let header =
        ota_core::image::ImageHeader::parse(factory).map_err(|e| format!("factory image: {e}"))?;
    if header.load_addr != Slot::A.load_addr() {
        return Err("the factory image must be the variant linked for slot A".into());
    }
    let mut flash = vec![0xFF; FACTORY + SLOT_LEN];
    flash[..bootloader.len()].copy_from_slice(&bootloader);
    super::lay_out_factory(&mut flash, factory, public_key)?;
    Ok(flash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_core::Version;

    /// A fake app linked for `slot`: a vector table and some code.
    fn app(slot: Slot, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        b[..4].copy_from_slice(&0x2004_2000u32.to_le_bytes());
        b[4..8].copy_from_slice(&(slot.load_addr() + 0xC1).to_le_bytes());
        b
    }

    fn def(version: &str) -> ImageDef {
        ImageDef::good(version.parse::<Version>().expect("version"))
    }

    #[test]
    fn images_carry_the_slot_load_address_and_entry_and_verify() {
        let key = ota_core::keys::generate();
        for slot in [Slot::A, Slot::B] {
            let img = image(&def("2.0.0"), &app(slot, 1000), slot, &key).expect("image");
            let h = ota_core::image::ImageHeader::parse(&img).expect("header");
            assert_eq!(h.load_addr, slot.load_addr());
            assert_eq!(h.entry_point, slot.load_addr() + 0xC1);
            assert_eq!(h.version.to_string(), "2.0.0");
            assert_eq!(&h.board[..6], b"pico-w");
            assert!(h.verify_signature(&key.verifying_key().to_bytes()));
        }
        // An app linked for A is refused as a B image, as the bootloader would refuse it.
        let e = image(&def("2.0.0"), &app(Slot::A, 1000), Slot::B, &key).expect_err("wrong slot");
        assert!(e.contains("linked for slot b"), "{e}");
        let mut d = def("2.0.0");
        d.size = Some(10);
        assert!(image(&d, &app(Slot::A, 1000), Slot::A, &key).is_err());
    }

    #[test]
    fn golden_lays_out_bootloader_key_and_factory() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("bootloader.bin"), [0xAB; 300]).expect("write");
        let key = ota_core::keys::generate();
        let public = key.verifying_key().to_bytes();
        let factory = image(&def("1.0.0"), &app(Slot::A, 5000), Slot::A, &key).expect("image");
        let flash = golden(dir.path(), &factory, &public).expect("golden");
        assert_eq!(flash.len(), 0x1A_0000);
        assert_eq!(flash[..300], [0xAB; 300]);
        assert_eq!(flash[300], 0xFF);
        assert_eq!(&flash[KEY_REGION..KEY_REGION + 4], b"OTPK");
        assert_eq!(&flash[KEY_REGION + 4..KEY_REGION + 36], &public);
        assert!(
            flash[KEY_REGION + 36..SLOT_A].iter().all(|b| *b == 0xFF),
            "state records erased"
        );
        assert_eq!(&flash[SLOT_A..SLOT_A + factory.len()], &factory[..]);
        assert!(
            flash[SLOT_B..FACTORY].iter().all(|b| *b == 0xFF),
            "slot B erased"
        );
        assert_eq!(&flash[FACTORY..FACTORY + factory.len()], &factory[..]);
        let b_image = image(&def("1.0.0"), &app(Slot::B, 5000), Slot::B, &key).expect("image");
        assert!(
            golden(dir.path(), &b_image, &public).is_err(),
            "factory must be slot A"
        );
        let missing = tempfile::tempdir().expect("tempdir");
        let e = golden(missing.path(), &factory, &public).expect_err("no bootloader");
        assert!(e.contains("bootloader.bin"), "{e}");
    }

    #[test]
    fn drill_binaries_are_named_by_drill_and_slot() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("app-b.bin"), b"b").expect("write");
        std::fs::write(dir.path().join("app-hang-a.bin"), b"h").expect("write");
        assert_eq!(
            app_binary(dir.path(), Drill::None, Slot::B).expect("b"),
            b"b"
        );
        assert_eq!(
            app_binary(dir.path(), Drill::Hang, Slot::A).expect("hang"),
            b"h"
        );
        let e = app_binary(dir.path(), Drill::CrashInInit, Slot::A).expect_err("missing");
        assert!(
            e.contains("OTARIG_DRILL=crash-in-init OTARIG_SLOT=a"),
            "{e}"
        );
    }
}
