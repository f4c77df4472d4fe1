//! `rig keygen` and `rig image build|sign|corrupt|inspect`.
//!
//! Exit codes: 2 for what the user got wrong (arguments, unreadable files or keys, a size no
//! slot holds); `inspect` exits 101 when the image it reads is defective (the code of a failed
//! check), 0 when it verifies.

use std::path::Path;

use ota_core::Version;
use ota_core::image::{HEADER_LEN, ImageHeader};

use super::args::{CorruptMode, ImageCommand};
use crate::Error;
use crate::images::write_atomic;
use crate::scenario::{Corruption, Drill, ImageDef, VersionField};

fn usage(e: impl std::fmt::Display) -> Error {
    Error::Usage(e.to_string())
}

/// `inspect` found a defective image: say why once, exit 101.
fn defective(input: &Path, why: &str) -> Error {
    eprintln!("error: {}: {why}", input.display());
    Error::ScenariosFailed { failed: 1 }
}

/// Reads an image file: at most a header plus the largest body a header can declare.
fn read(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let limit = (HEADER_LEN as u64) + u64::from(ota_core::image::MAX_BODY_LEN);
    let failed = |e: std::io::Error| usage(format!("{}: {e}", path.display()));
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .map_err(failed)?;
    if bytes.len() as u64 > limit {
        return Err(usage(format!(
            "{}: larger than {limit} bytes, more than any image (a header plus at most {} body bytes)",
            path.display(),
            ota_core::image::MAX_BODY_LEN
        )));
    }
    Ok(bytes)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_atomic(path, bytes).map_err(|e| Error::infra_msg(e.to_string()))?;
    println!("wrote {} ({} bytes)", path.display(), bytes.len());
    Ok(())
}

/// `rig keygen --out DIR`.
pub fn keygen(out: &Path) -> Result<(), Error> {
    let (key, public) = ota_core::tools::write_keypair(out).map_err(usage)?;
    println!(
        "private key: {} (keep it offline; mode 0600)",
        key.display()
    );
    println!(
        "public key:  {} (compile it into the firmware / provision it)",
        public.display()
    );
    Ok(())
}

/// The image a `rig image build|pico` command describes, and the signing key.
fn release_def(
    version: &str,
    drill: Drill,
    size: Option<u32>,
    rollback_counter: u32,
    key: &Path,
) -> Result<(ImageDef, ota_core::keys::SigningKey), Error> {
    let version: Version = version
        .parse()
        .map_err(|e| usage(format!("--version {version}: {e}")))?;
    if let Some(n) = size {
        crate::scenario::values::check_image_size("--size", n).map_err(usage)?;
    }
    let key = ota_core::tools::read_signing_key(key).map_err(usage)?;
    let def = ImageDef {
        version: VersionField(version),
        drill,
        corrupt: None,
        size,
        rollback_counter: Some(rollback_counter),
    };
    Ok((def, key))
}

/// `rig image ...`.
pub fn image(cmd: ImageCommand) -> Result<(), Error> {
    match cmd {
        ImageCommand::Build {
            version,
            drill,
            size,
            rollback_counter,
            key,
            out,
        } => {
            let (def, key) = release_def(&version, drill.0, Some(size), rollback_counter, &key)?;
            let bytes = crate::images::build(&def, &key, &key).map_err(usage)?;
            write(&out, &bytes)
        }
        ImageCommand::Sign { key, out, input } => {
            let key = ota_core::tools::read_signing_key(&key).map_err(usage)?;
            let mut bytes = read(&input)?;
            let mut header = ImageHeader::parse(&bytes)
                .map_err(|e| usage(format!("{}: {e}", input.display())))?;
            ota_core::image::resign(&mut header, &key);
            bytes[..HEADER_LEN].copy_from_slice(&header.to_bytes());
            write(&out, &bytes)
        }
        ImageCommand::Corrupt {
            mode,
            key,
            out,
            input,
        } => {
            let bytes = read(&input)?;
            let signing = match &key {
                Some(k) => Some(ota_core::tools::read_signing_key(k).map_err(usage)?),
                None => None,
            };
            let broken = match mode {
                CorruptMode::Truncate(n) => bytes.get(..n).unwrap_or(&bytes).to_vec(),
                CorruptMode::Damage(which) => {
                    if which == Corruption::Entry && signing.is_none() {
                        return Err(usage(
                            "--mode entry re-signs the image: give --key release.key",
                        ));
                    }
                    let untrusted = ota_core::keys::generate();
                    let key = signing.unwrap_or_else(ota_core::keys::generate);
                    crate::images::corrupt(&bytes, which, &key, &untrusted).map_err(usage)?
                }
            };
            write(&out, &broken)
        }
        ImageCommand::Pico {
            firmware,
            version,
            drill,
            rollback_counter,
            key,
            out_dir,
            golden,
        } => {
            use crate::images::pico;
            let (def, key) = release_def(&version, drill.0, None, rollback_counter, &key)?;
            let (version, drill) = (def.version.0, def.drill);
            std::fs::create_dir_all(&out_dir)
                .map_err(|e| usage(format!("{}: {e}", out_dir.display())))?;
            let mut slot_a = Vec::new();
            for slot in [pico::Slot::A, pico::Slot::B] {
                let app = pico::app_binary(&firmware, drill, slot).map_err(usage)?;
                let image = pico::image(&def, &app, slot, &key).map_err(usage)?;
                write(
                    &out_dir.join(format!("v{version}-{}.img", slot.letter())),
                    &image,
                )?;
                if slot == pico::Slot::A {
                    slot_a = image;
                }
            }
            if golden {
                let public = key.verifying_key().to_bytes();
                let flash = pico::golden(&firmware, &slot_a, &public).map_err(usage)?;
                let path = out_dir.join(format!("golden-v{version}.bin"));
                write(&path, &flash)?;
                println!(
                    "flash it: probe-rs download --chip RP2040 --binary-format bin --base-address 0x{:08x} {}",
                    pico::XIP_BASE,
                    path.display()
                );
            }
            Ok(())
        }
        ImageCommand::Inspect { key, input } => {
            let bytes = read(&input)?;
            // Read the key first: a key that cannot be read is a usage error, whatever the image.
            let public = match &key {
                Some(k) => Some(ota_core::tools::read_public_key(k).map_err(usage)?),
                None => None,
            };
            match ImageHeader::parse(&bytes) {
                Err(e) => {
                    println!("{}: header invalid: {e}", input.display());
                    Err(defective(&input, "not a valid image (header invalid)"))
                }
                Ok(h) => {
                    println!(
                        "file:            {} ({} bytes)",
                        input.display(),
                        bytes.len()
                    );
                    println!("version:         {}", h.version);
                    println!("board:           {}", h.board_kind());
                    println!("rollback counter {}", h.rollback_counter);
                    println!(
                        "body:            {} bytes at 0x{:08x}",
                        h.body_len, h.load_addr
                    );
                    println!("entry point:     0x{:08x}", h.entry_point);
                    let body = bytes.get(HEADER_LEN..).unwrap_or_default();
                    let hash_ok = body.len() == h.body_len as usize
                        && ota_core::sha256(body) == h.body_sha256;
                    println!(
                        "body sha256:     {} ({})",
                        hex::encode(h.body_sha256),
                        if hash_ok { "matches" } else { "MISMATCH" }
                    );
                    let signature_ok = match &public {
                        Some(public) => {
                            let ok = h.verify_signature(public);
                            println!(
                                "signature:       {}",
                                if ok { "valid" } else { "INVALID for this key" }
                            );
                            ok
                        }
                        None => {
                            println!("signature:       not checked (give --key release.pub)");
                            true
                        }
                    };
                    match (hash_ok, signature_ok) {
                        (true, true) => Ok(()),
                        (false, _) => Err(defective(
                            &input,
                            "image does not verify (body sha256 MISMATCH: truncated or altered body)",
                        )),
                        (true, false) => Err(defective(
                            &input,
                            "image does not verify (signature INVALID for this key)",
                        )),
                    }
                }
            }
        }
    }
}
