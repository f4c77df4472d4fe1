//! Host-side tools (feature `std`): key files and deliberately broken images.

use std::path::{Path, PathBuf};

use crate::image::{HEADER_LEN, ImageHeader};
use crate::keys::SigningKey;

/// Errors from the host tools, naming the file involved.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("cannot corrupt the image: {0}")]
    BadImage(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ToolError + '_ {
    move |source| ToolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a new key pair into `dir`: `release.key` (hex seed, mode 0600) and `release.pub`.
/// Refuses to overwrite an existing private key.
pub fn write_keypair(dir: &Path) -> Result<(PathBuf, PathBuf), ToolError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let key = crate::keys::generate();
    let private = dir.join("release.key");
    let public = dir.join("release.pub");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&private).map_err(io(&private))?;
    std::io::Write::write_all(&mut f, format!("{}\n", hex(&key.to_bytes())).as_bytes())
        .map_err(io(&private))?;
    std::fs::write(
        &public,
        format!("{}\n", hex(key.verifying_key().as_bytes())),
    )
    .map_err(io(&public))?;
    Ok((private, public))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_hex32(path: &Path) -> Result<[u8; 32], ToolError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let t = text.trim();
    let bad = |reason: &str| ToolError::BadKey {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if t.len() != 64 {
        return Err(bad("expected 64 hex characters (a 32-byte key)"));
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|_| bad("not hexadecimal"))?;
    }
    Ok(out)
}

/// Reads `release.key`.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, ToolError> {
    Ok(SigningKey::from_bytes(&read_hex32(path)?))
}

/// Reads `release.pub`.
pub fn read_public_key(path: &Path) -> Result<[u8; 32], ToolError> {
    let bytes = read_hex32(path)?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| ToolError::BadKey {
        path: path.to_path_buf(),
        reason: "not a valid ed25519 public key".into(),
    })?;
    Ok(bytes)
}

/// How to break an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// Break the header magic.
    Header,
    /// Entry point outside the body, re-signed with `key` so only the entry check fails.
    Entry,
    /// Re-signed with `untrusted`.
    Signature,
    /// Flip body bytes: the header's body hash no longer matches.
    Body,
}

/// Returns a broken copy of `image`.
pub fn corrupt(
    image: &[u8],
    mode: Corruption,
    key: &SigningKey,
    untrusted: &SigningKey,
) -> Result<Vec<u8>, ToolError> {
    let mut out = image.to_vec();
    let header = ImageHeader::parse(image).map_err(|e| ToolError::BadImage(e.to_string()));
    match mode {
        Corruption::Header => {
            out.get_mut(..4)
                .ok_or_else(|| ToolError::BadImage("shorter than a header".into()))?
                .copy_from_slice(b"XXXX");
        }
        Corruption::Entry => {
            let mut h = header?;
            h.entry_point = h.load_addr.wrapping_add(h.body_len).wrapping_add(0x1000);
            crate::image::resign(&mut h, key);
            out[..HEADER_LEN].copy_from_slice(&h.to_bytes());
        }
        Corruption::Signature => {
            let mut h = header?;
            crate::image::resign(&mut h, untrusted);
            out[..HEADER_LEN].copy_from_slice(&h.to_bytes());
        }
        Corruption::Body => {
            let h = header?;
            let mid = HEADER_LEN + (h.body_len as usize) / 2;
            let end = (mid + 16).min(out.len());
            out.get_mut(mid..end)
                .ok_or_else(|| ToolError::BadImage("body too short".into()))?
                .iter_mut()
                .for_each(|b| *b ^= 0xFF);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Version;
    use crate::image::{ImageSpec, board_kind};

    fn image(key: &SigningKey) -> Vec<u8> {
        let spec = ImageSpec {
            version: Version::new(2, 0, 0),
            rollback_counter: 1,
            board: board_kind("sim").expect("kind"),
            load_addr: crate::payload::SIM_LOAD_ADDR,
            entry_offset: 0,
        };
        crate::image::build(
            &spec,
            &crate::payload::build(Version::new(2, 0, 0), crate::payload::Drill::None, 2048),
            key,
        )
    }

    #[test]
    fn each_corruption_breaks_exactly_its_check() {
        let key = crate::keys::generate();
        let other = crate::keys::generate();
        let pk = key.verifying_key().to_bytes();
        let good = image(&key);
        let h = ImageHeader::parse(&good).expect("valid");
        assert!(h.verify_signature(&pk));

        let bad = corrupt(&good, Corruption::Header, &key, &other).expect("corrupt");
        assert!(ImageHeader::parse(&bad).is_err());

        let bad = corrupt(&good, Corruption::Entry, &key, &other).expect("corrupt");
        assert_eq!(
            ImageHeader::parse(&bad),
            Err(crate::image::HeaderError::MissingEntryPoint)
        );

        let bad = corrupt(&good, Corruption::Signature, &key, &other).expect("corrupt");
        let hb = ImageHeader::parse(&bad).expect("structurally fine");
        assert!(!hb.verify_signature(&pk));

        let bad = corrupt(&good, Corruption::Body, &key, &other).expect("corrupt");
        let hb = ImageHeader::parse(&bad).expect("header intact");
        assert!(hb.verify_signature(&pk));
        assert_ne!(crate::sha256(&bad[HEADER_LEN..]), hb.body_sha256);
    }

    #[test]
    fn key_files_round_trip_and_refuse_overwrite() {
        let dir = std::env::temp_dir().join(format!("ota-core-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (private, public) = write_keypair(&dir).expect("write");
        let key = read_signing_key(&private).expect("read key");
        assert_eq!(
            read_public_key(&public).expect("read pub"),
            key.verifying_key().to_bytes()
        );
        assert!(
            write_keypair(&dir).is_err(),
            "must not overwrite a private key"
        );
        std::fs::write(&public, "zz").expect("write");
        assert!(matches!(
            read_public_key(&public),
            Err(ToolError::BadKey { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
