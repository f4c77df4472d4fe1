//! Images and golden flash files for the QEMU `mps2-an385` firmware
//! (`firmware-under-test/boards/qemu-mps2`; its README has the flash map).
//!
//! The bootloader copies the chosen slot's body to RAM at 0x0010_0000 and runs it there, so
//! one app build serves either slot: a release is one image. A firmware directory holds the
//! builds as `tools/build-drills.sh OUT` writes them: `bootloader.elf` (loaded by QEMU's
//! `-kernel`, not from flash), `app.bin` (no drill) and `app-<drill>.bin`, each with its ELF
//! beside it (symbols for breakpoint cuts). The version and the anti-rollback counter come from
//! the header the rig writes, so one build serves every version a scenario needs.

use std::path::{Path, PathBuf};

use ota_core::keys::SigningKey;
use ota_core::payload::Drill;

use crate::scenario::ImageDef;

/// Where every app is linked (and copied to by the bootloader).
pub const APP_BASE: u32 = 0x0010_0000;
/// The board kind in image headers.
pub const BOARD: &str = "qemu-mps2";
/// RAM of either stage: an initial stack pointer must point inside it (or at its end).
const RAM: std::ops::RangeInclusive<u32> = 0x2000_0000..=0x2040_0000;

fn app_name(drill: Drill, ext: &str) -> String {
    match drill {
        Drill::None => format!("app.{ext}"),
        d => format!("app-{}.{ext}", d.as_str()),
    }
}

/// The ELF of the app build for `drill` (its symbols), in the firmware directory.
pub fn app_elf(dir: &Path, drill: Drill) -> PathBuf {
    dir.join(app_name(drill, "elf"))
}

/// The bootloader ELF QEMU loads with `-kernel`.
pub fn bootloader(dir: &Path) -> PathBuf {
    dir.join("bootloader.elf")
}

/// The app binary for `drill`, from the firmware directory.
pub fn app_binary(dir: &Path, drill: Drill) -> Result<Vec<u8>, String> {
    let path = dir.join(app_name(drill, "bin"));
    std::fs::read(&path).map_err(|e| {
        format!(
            "{}: {e}; firmware-under-test/boards/qemu-mps2/tools/build-drills.sh OUT builds every drill (`{}`)",
            path.display(),
            drill.as_str()
        )
    })
}

/// A signed QEMU image of `app` with the version and counter of `def`.
pub fn image(def: &ImageDef, app: &[u8], key: &SigningKey) -> Result<Vec<u8>, String> {
    let target = super::AppTarget {
        board: BOARD,
        load_addr: APP_BASE,
        ram: RAM,
        linked_for: format!("0x{APP_BASE:08x} (the QEMU app's RAM address)"),
    };
    super::app_image(def, app, &target, key)
}

/// The factory flash file of a QEMU board (2 MiB, from offset 0): the key region holding
/// `public_key`, erased state records, `factory` in slot A and in the factory region, the
/// rest erased. The bootloader is not in flash (QEMU loads its ELF).
pub fn golden(factory: &[u8], public_key: &[u8; 32]) -> Result<Vec<u8>, String> {
    let header =
        ota_core::image::ImageHeader::parse(factory).map_err(|e| format!("factory image: {e}"))?;
    if header.board_kind() != BOARD {
        return Err(format!(
            "the factory image is for board `{}`, not `{BOARD}`",
            header.board_kind()
        ));
    }
    let mut flash = vec![0xFF; ota_core::layout::SIM.flash_size as usize];
    super::lay_out_factory(&mut flash, factory, public_key)?;
    Ok(flash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_core::Version;

    /// A fake app linked at [`APP_BASE`]: a vector table and some code.
    fn app(len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        b[..4].copy_from_slice(&0x203F_FF00u32.to_le_bytes());
        b[4..8].copy_from_slice(&(APP_BASE + 0x101).to_le_bytes());
        b
    }

    fn def(version: &str) -> ImageDef {
        ImageDef::good(version.parse::<Version>().expect("version"))
    }

    #[test]
    fn images_are_linked_at_the_ram_address_and_verify() {
        let key = ota_core::keys::generate();
        let img = image(&def("2.0.0"), &app(1000), &key).expect("image");
        let h = ota_core::image::ImageHeader::parse(&img).expect("header");
        assert_eq!(h.load_addr, APP_BASE);
        assert_eq!(h.entry_point, APP_BASE + 0x101);
        assert_eq!(h.board_kind(), BOARD);
        assert!(h.verify_signature(&key.verifying_key().to_bytes()));
        // A Pico W app (linked in XIP flash) is refused.
        let mut pico = app(1000);
        pico[4..8].copy_from_slice(&0x1002_0201u32.to_le_bytes());
        let e = image(&def("2.0.0"), &pico, &key).expect_err("wrong link address");
        assert!(e.contains("0x00100000"), "{e}");
    }

    #[test]
    fn golden_lays_out_key_slot_a_and_factory_in_2_mib() {
        let key = ota_core::keys::generate();
        let public = key.verifying_key().to_bytes();
        let factory = image(&def("1.0.0"), &app(5000), &key).expect("image");
        let flash = golden(&factory, &public).expect("golden");
        let l = ota_core::layout::SIM;
        assert_eq!(flash.len(), 2 * 1024 * 1024);
        assert!(flash[..l.otp as usize].iter().all(|b| *b == 0xFF));
        assert_eq!(&flash[l.otp as usize..l.otp as usize + 4], b"OTPK");
        assert_eq!(&flash[l.otp as usize + 4..l.otp as usize + 36], &public);
        assert!(
            flash[l.state[0] as usize..l.slots[0] as usize]
                .iter()
                .all(|b| *b == 0xFF),
            "state records erased"
        );
        let a = l.slots[0] as usize;
        assert_eq!(&flash[a..a + factory.len()], &factory[..]);
        assert!(
            flash[l.slots[1] as usize..l.factory as usize]
                .iter()
                .all(|b| *b == 0xFF),
            "slot B erased"
        );
        let f = l.factory as usize;
        assert_eq!(&flash[f..f + factory.len()], &factory[..]);
        let sim = crate::images::build(&def("1.0.0"), &key, &key).expect("sim image");
        assert!(golden(&sim, &public).is_err(), "a sim image is refused");
    }

    #[test]
    fn drill_builds_are_named_by_drill() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("app.bin"), b"n").expect("write");
        std::fs::write(dir.path().join("app-hang.bin"), b"h").expect("write");
        assert_eq!(app_binary(dir.path(), Drill::None).expect("app"), b"n");
        assert_eq!(app_binary(dir.path(), Drill::Hang).expect("hang"), b"h");
        assert_eq!(
            app_elf(dir.path(), Drill::CrashInInit),
            dir.path().join("app-crash-in-init.elf")
        );
        let e = app_binary(dir.path(), Drill::NoNetwork).expect_err("missing");
        assert!(e.contains("build-drills.sh"), "{e}");
    }
}
