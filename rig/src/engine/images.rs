//! Builds the images scenarios use (good releases, drills, deliberately broken ones), once per
//! run, signed with the run's release key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ota_core::keys::SigningKey;

use crate::scenario::{Corruption, ImageDef};

/// Default body size of sim images.
pub const DEFAULT_BODY: u32 = 192 * 1024;

/// The run's release key and every image built so far.
pub struct ImageStore {
    dir: PathBuf,
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
            key,
            untrusted: ota_core::keys::generate(),
            public_key_file,
            built: Mutex::new(HashMap::new()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    pub fn public_key_file(&self) -> &Path {
        &self.public_key_file
    }

    /// The file name (inside [`ImageStore::dir`]) of the image `name` built per `def`.
    pub fn get(&self, name: &str, def: &ImageDef) -> Result<String, Error> {
        let id = image_id(name, def);
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if built.contains_key(&id) {
            return Ok(id);
        }
        let bytes = build(def, &self.key, &self.untrusted).map_err(|reason| Error::Build {
            name: name.to_string(),
            reason,
        })?;
        let path = self.dir.join(&id);
        write_atomic(&path, &bytes)?;
        built.insert(id.clone(), path);
        Ok(id)
    }
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

impl ImageStore {
    /// The golden image of a board of `kind` whose factory firmware is the image file
    /// `factory` (in [`ImageStore::dir`]): the whole flash as the factory line leaves it, for a
    /// probe to write from address 0 (provisioning before a scenario, restore after a bad one).
    pub fn golden(&self, kind: &str, factory: &str) -> Result<PathBuf, Error> {
        let path = self.dir.join(format!("golden-{kind}-{factory}.flash"));
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        let id = format!("golden:{kind}:{factory}");
        if let Some(p) = built.get(&id) {
            return Ok(p.clone());
        }
        let failed = |reason: String| Error::Build {
            name: format!("golden image of {factory}"),
            reason,
        };
        if kind != "sim" {
            return Err(failed(format!(
                "the rig builds golden images for `sim` boards only; a `{kind}` board needs its own (see firmware-under-test/boards/{kind}/README.md)"
            )));
        }
        let image = std::fs::read(self.dir.join(factory)).map_err(|e| failed(e.to_string()))?;
        let key = self.key.verifying_key().to_bytes();
        let (flash, _) = sim_board::flash::provisioned(&image, &key).map_err(failed)?;
        write_atomic(&path, &flash)?;
        built.insert(id, path.clone());
        Ok(path)
    }
}

/// Builds a signed sim image per `def`.
pub fn build(def: &ImageDef, key: &SigningKey, untrusted: &SigningKey) -> Result<Vec<u8>, String> {
    let size = def.size.unwrap_or(DEFAULT_BODY) as usize;
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
