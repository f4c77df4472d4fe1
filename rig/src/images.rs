//! Builds the images scenarios use (good releases, drills, deliberately broken ones), once per
//! run, signed with the run's release key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ota_core::keys::SigningKey;

use crate::scenario::{Corruption, ImageDef};

pub mod pico;
pub mod qemu;

/// Default body size of sim images.
pub const DEFAULT_BODY: u32 = 192 * 1024;

/// Which firmware a store builds images of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Firmware {
    /// The simulated board: images built here from a synthetic body that names its drill.
    Sim,
    /// A Raspberry Pi Pico W: app binaries built by `firmware-under-test/boards/pico-w/ci.sh`
    /// (and `tools/build-drills.sh` for the drills) in `dir`, one per slot because the RP2040
    /// runs the app where it lies. See [`pico`].
    PicoW { dir: PathBuf },
    /// A QEMU `mps2-an385` board: `bootloader.elf`, `app.bin` and `app-<drill>.bin` (with
    /// their ELF files) as `firmware-under-test/boards/qemu-mps2/tools/build-drills.sh` writes
    /// them in `dir`; one image serves either slot (the app runs from RAM). See [`qemu`].
    Qemu { dir: PathBuf },
}

/// The run's release key and every image built so far.
pub struct ImageStore {
    dir: PathBuf,
    firmware: Firmware,
    key: SigningKey,
    untrusted: SigningKey,
    public_key_file: PathBuf,
    built: Mutex<HashMap<String, PathBuf>>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write image {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot build image `{name}`: {reason}")]
    Build { name: String, reason: String },
}

impl ImageStore {
    /// Creates the store in `dir` with a fresh release key (never written in clear outside the
    /// run directory) and writes the public key the boards trust.
    pub fn create(dir: &Path) -> Result<Self, Error> {
        Self::create_for(dir, Firmware::Sim)
    }

    /// Like [`ImageStore::create`], for boards running `firmware`.
    pub fn create_for(dir: &Path, firmware: Firmware) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let key = ota_core::keys::generate();
        let public_key_file = dir.join("release.pub");
        write_atomic(
            &public_key_file,
            hex::encode(key.verifying_key().as_bytes()).as_bytes(),
        )?;
        Ok(Self {
            dir: dir.to_path_buf(),
            firmware,
            key,
            untrusted: ota_core::keys::generate(),
            public_key_file,
            built: Mutex::new(HashMap::new()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The firmware this store builds images of.
    pub fn firmware(&self) -> &Firmware {
        &self.firmware
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    pub fn public_key_file(&self) -> &Path {
        &self.public_key_file
    }

    /// The file name (inside [`ImageStore::dir`]) of the image `name` built per `def` (for a
    /// Pico W: the variant linked for slot A).
    pub fn get(&self, name: &str, def: &ImageDef) -> Result<String, Error> {
        match &self.firmware {
            Firmware::Sim => self.build_once(image_id(name, def), || {
                build(def, &self.key, &self.untrusted)
            }),
            Firmware::PicoW { dir } => self.pico_variant(name, def, dir, pico::Slot::A),
            Firmware::Qemu { dir } => self.qemu_image(name, def, dir),
        }
    }

    /// What to publish for release `name`: `(release name, file)` pairs, the plain name last
    /// (publishing offers it). A Pico W asks for the variant of the slot it will write
    /// (`NAME-a` / `NAME-b`); the plain name only carries the offer.
    pub fn publish_set(&self, name: &str, def: &ImageDef) -> Result<Vec<(String, String)>, Error> {
        match &self.firmware {
            Firmware::Sim | Firmware::Qemu { .. } => {
                Ok(vec![(name.to_string(), self.get(name, def)?)])
            }
            Firmware::PicoW { dir } => {
                let a = self.pico_variant(name, def, dir, pico::Slot::A)?;
                let b = self.pico_variant(name, def, dir, pico::Slot::B)?;
                Ok(vec![
                    (format!("{name}-a"), a.clone()),
                    (format!("{name}-b"), b),
                    (name.to_string(), a),
                ])
            }
        }
    }

    /// The app ELFs (symbols for breakpoint triggers) of the firmware builds for `drills`, both
    /// slots, that exist; none for the simulated board.
    pub fn app_elfs(&self, drills: &[crate::scenario::Drill]) -> Vec<PathBuf> {
        match &self.firmware {
            Firmware::Sim => Vec::new(),
            Firmware::PicoW { dir } => drills
                .iter()
                .flat_map(|d| [pico::Slot::A, pico::Slot::B].map(|s| pico::app_elf(dir, *d, s)))
                .filter(|p| p.exists())
                .collect(),
            Firmware::Qemu { dir } => drills
                .iter()
                .map(|d| qemu::app_elf(dir, *d))
                .filter(|p| p.exists())
                .collect(),
        }
    }

    /// The bootloader ELF of a QEMU firmware directory (the bootloader writes flash too), if
    /// this store has one.
    pub fn bootloader_elf(&self) -> Option<PathBuf> {
        match &self.firmware {
            Firmware::Qemu { dir } => Some(qemu::bootloader(dir)).filter(|p| p.exists()),
            Firmware::Sim | Firmware::PicoW { .. } => None,
        }
    }

    fn qemu_image(&self, name: &str, def: &ImageDef, dir: &Path) -> Result<String, Error> {
        self.build_once(format!("qemu-{}", image_id(name, def)), || {
            let app = qemu::app_binary(dir, def.drill)?;
            let image = qemu::image(def, &app, &self.key)?;
            match def.corrupt {
                None => Ok(image),
                Some(mode) => corrupt(&image, mode, &self.key, &self.untrusted),
            }
        })
    }

    fn pico_variant(
        &self,
        name: &str,
        def: &ImageDef,
        dir: &Path,
        slot: pico::Slot,
    ) -> Result<String, Error> {
        let id = format!("pico-w-{}-{}", slot.letter(), image_id(name, def));
        self.build_once(id, || {
            let app = pico::app_binary(dir, def.drill, slot)?;
            let image = pico::image(def, &app, slot, &self.key)?;
            match def.corrupt {
                None => Ok(image),
                Some(mode) => corrupt(&image, mode, &self.key, &self.untrusted),
            }
        })
    }

    fn build_once(
        &self,
        id: String,
        make: impl FnOnce() -> Result<Vec<u8>, String>,
    ) -> Result<String, Error> {
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if built.contains_key(&id) {
            return Ok(id);
        }
        let bytes = make().map_err(|reason| Error::Build {
            name: id.clone(),
            reason,
        })?;
        let path = self.dir.join(&id);
        write_atomic(&path, &bytes)?;
        built.insert(id.clone(), path);
        Ok(id)
    }

    /// The golden image of a board whose factory firmware is the image file `factory` (in
    /// [`ImageStore::dir`]): the whole flash as the factory line leaves it, and the flash
    /// address it starts at, for a probe to write (provisioning before a scenario, restore
    /// after a bad one).
    pub fn golden(&self, factory: &str) -> Result<(PathBuf, u64), Error> {
        let id = format!("golden-{factory}.flash");
        let failed = |reason: String| Error::Build {
            name: format!("golden image of {factory}"),
            reason,
        };
        let image = std::fs::read(self.dir.join(factory)).map_err(|e| failed(e.to_string()))?;
        let key = self.key.verifying_key().to_bytes();
        let (file, base) = match &self.firmware {
            Firmware::Sim => (
                self.build_once(id, || {
                    sim_board::flash::provisioned(&image, &key).map(|(flash, _)| flash)
                })?,
                0,
            ),
            Firmware::PicoW { dir } => (
                self.build_once(id, || pico::golden(dir, &image, &key))?,
                pico::XIP_BASE,
            ),
            Firmware::Qemu { .. } => (self.build_once(id, || qemu::golden(&image, &key))?, 0),
        };
        Ok((self.dir.join(file), base))
    }
}

/// Where an app binary must run, for [`app_image`].
pub struct AppTarget {
    /// The board kind in the image header.
    pub board: &'static str,
    /// The address the app body is linked at.
    pub load_addr: u32,
    /// Where an initial stack pointer may point.
    pub ram: std::ops::RangeInclusive<u32>,
    /// What the app must be linked for, in errors (`slot a at 0x10020100`).
    pub linked_for: String,
}

/// A signed image of the app binary `app` (a Cortex-M vector table first) for `target`, with
/// the version and counter of `def`: the vector table must be that of an app linked there.
pub fn app_image(
    def: &ImageDef,
    app: &[u8],
    target: &AppTarget,
    key: &SigningKey,
) -> Result<Vec<u8>, String> {
    let slot_len = ota_core::layout::SIM.slot_size as usize;
    if def.size.is_some() {
        return Err(format!(
            "`size:` applies to simulated images only; a {} image is its app binary",
            target.board
        ));
    }
    if app.len() < 8 || ota_core::image::HEADER_LEN + app.len() > slot_len {
        return Err(format!(
            "an app binary of {} bytes does not fit a {slot_len}-byte slot with its header",
            app.len()
        ));
    }
    let word = |at: usize| u32::from_le_bytes([app[at], app[at + 1], app[at + 2], app[at + 3]]);
    let (sp, reset, load) = (word(0), word(4), target.load_addr);
    let end = load.saturating_add(app.len() as u32);
    if !target.ram.contains(&sp) || reset & 1 != 1 || !(load..end).contains(&reset) {
        return Err(format!(
            "vector table (sp 0x{sp:08x}, reset 0x{reset:08x}) is not that of an app linked for {}",
            target.linked_for
        ));
    }
    let spec = ota_core::image::ImageSpec {
        version: def.version.0,
        rollback_counter: def.rollback_counter.unwrap_or(1),
        board: ota_core::image::board_kind(target.board).ok_or("bad board kind")?,
        load_addr: load,
        entry_offset: reset - load,
    };
    Ok(ota_core::image::build(&spec, app, key))
}

/// Lays the factory state of ota-core's flash map (`layout::SIM`) into `flash` (erased, at
/// least up to the end of the factory region): the key region (`OTPK` + `public_key`),
/// erased state records (the bootloader adopts slot A as the factory image), `factory` in
/// slot A and in the factory region (the factory-reset drill copies it back), slot B erased.
pub fn lay_out_factory(
    flash: &mut [u8],
    factory: &[u8],
    public_key: &[u8; 32],
) -> Result<(), String> {
    let l = ota_core::layout::SIM;
    let (otp, a, fac) = (l.otp as usize, l.slots[0] as usize, l.factory as usize);
    if factory.len() > l.slot_size as usize {
        return Err("the factory image is larger than a slot".into());
    }
    if flash.len() < fac + l.slot_size as usize {
        return Err("the flash image is too short for the factory region".into());
    }
    flash[otp..otp + 4].copy_from_slice(b"OTPK");
    flash[otp + 4..otp + 36].copy_from_slice(public_key);
    flash[a..a + factory.len()].copy_from_slice(factory);
    flash[fac..fac + factory.len()].copy_from_slice(factory);
    Ok(())
}

fn image_id(name: &str, def: &ImageDef) -> String {
    let mut id = format!("{name}-{}", def.version.0);
    if def.drill != crate::scenario::Drill::None {
        id.push('-');
        id.push_str(def.drill.as_str());
    }
    if let Some(c) = def.corrupt {
        id.push_str("-corrupt-");
        id.push_str(c.as_str());
    }
    if let Some(s) = def.size {
        id.push_str(&format!("-{s}b"));
    }
    if let Some(c) = def.rollback_counter {
        id.push_str(&format!("-rc{c}"));
    }
    id.push_str(".bin");
    id
}

/// Builds a signed sim image per `def`.
pub fn build(def: &ImageDef, key: &SigningKey, untrusted: &SigningKey) -> Result<Vec<u8>, String> {
    let size = def.size.unwrap_or(DEFAULT_BODY);
    // Never allocate (or write) an image no slot can hold.
    crate::scenario::values::check_image_size("size", size)?;
    let size = size as usize;
    let body = ota_core::payload::build(def.version.0, def.drill, size);
    let spec = ota_core::image::ImageSpec {
        version: def.version.0,
        rollback_counter: def.rollback_counter.unwrap_or(1),
        board: ota_core::image::board_kind("sim").ok_or("bad board kind")?,
        load_addr: ota_core::payload::SIM_LOAD_ADDR,
        entry_offset: 0,
    };
    let image = ota_core::image::build(&spec, &body, key);
    match def.corrupt {
        None => Ok(image),
        Some(mode) => corrupt(&image, mode, key, untrusted),
    }
}

/// Breaks a built image on purpose (see [`Corruption`]).
pub fn corrupt(
    image: &[u8],
    mode: Corruption,
    key: &SigningKey,
    untrusted: &SigningKey,
) -> Result<Vec<u8>, String> {
    let mode = match mode {
        Corruption::Header => ota_core::tools::Corruption::Header,
        Corruption::Entry => ota_core::tools::Corruption::Entry,
        Corruption::Signature => ota_core::tools::Corruption::Signature,
        Corruption::Body => ota_core::tools::Corruption::Body,
    };
    ota_core::tools::corrupt(image, mode, key, untrusted).map_err(|e| e.to_string())
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
}
