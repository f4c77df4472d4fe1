//! `tamper_manifest`: the release's manifest with one field changed after it was signed, the
//! old signature kept. The image stays valid; a device must refuse the manifest (its
//! signature no longer matches) and never ask for the image.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The manifest field a `tamper_manifest` rule changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestField {
    /// The patch number goes up by one (a downgrade dressed as an upgrade, or a relabel).
    Version,
    /// The anti-rollback counter goes up by one.
    RollbackCounter,
    /// The image size changes by one byte (within the same chunk count, so the manifest still
    /// parses).
    Size,
    /// The first byte of the image's SHA-256 is inverted.
    Sha256,
}

impl ManifestField {
    pub const ALL: [Self; 4] = [
        Self::Version,
        Self::RollbackCounter,
        Self::Size,
        Self::Sha256,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Version => "version",
            Self::RollbackCounter => "rollback_counter",
            Self::Size => "size",
            Self::Sha256 => "sha256",
        }
    }
}

impl fmt::Display for ManifestField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// Offsets of the manifest layout (ota_core::manifest).
const VERSION_PATCH: usize = 12;
const ROLLBACK: usize = 16;
const SIZE: usize = 20;
const CHUNK_SIZE: usize = 24;
const SHA256: usize = 32;
const FIXED_LEN: usize = 68;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// `manifest` with `field` changed and the signature left as it was. A body too short to be a
/// manifest is returned unchanged (`None`).
pub fn tamper(manifest: &[u8], field: ManifestField) -> Option<Bytes> {
    if manifest.len() < FIXED_LEN {
        return None;
    }
    let mut m = manifest.to_vec();
    match field {
        ManifestField::Version => {
            let patch = u16::from_le_bytes([m[VERSION_PATCH], m[VERSION_PATCH + 1]]);
            m[VERSION_PATCH..VERSION_PATCH + 2]
                .copy_from_slice(&patch.wrapping_add(1).to_le_bytes());
        }
        ManifestField::RollbackCounter => {
            let c = u32_at(&m, ROLLBACK).wrapping_add(1);
            m[ROLLBACK..ROLLBACK + 4].copy_from_slice(&c.to_le_bytes());
        }
        ManifestField::Size => {
            let size = u32_at(&m, SIZE);
            let chunk = u32_at(&m, CHUNK_SIZE).max(1);
            let chunks = |s: u32| s.div_ceil(chunk);
            let new = if size > 1 && chunks(size - 1) == chunks(size) {
                size - 1
            } else {
                size.wrapping_add(1)
            };
            m[SIZE..SIZE + 4].copy_from_slice(&new.to_le_bytes());
        }
        ManifestField::Sha256 => m[SHA256] ^= 0xFF,
    }
    Some(Bytes::from(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_core::manifest::Manifest;

    #[test]
    fn every_field_changes_and_the_signature_no_longer_matches() {
        let key = ota_core::keys::SigningKey::from_bytes(&[7; 32]);
        let public = key.verifying_key().to_bytes();
        let spec = ota_core::image::ImageSpec {
            version: ota_core::Version::new(2, 0, 0),
            rollback_counter: 1,
            board: ota_core::image::board_kind("sim").expect("board kind"),
            load_addr: 0x1000_0000,
            entry_offset: 0,
        };
        let image = ota_core::image::build(&spec, &[0xA5; 5000], &key);
        let signed =
            ota_core::manifest::build(&image, 1024, "/v1/images/v2.bin", &key).expect("manifest");
        let good = Manifest::parse(&signed).expect("parses");
        assert!(good.verify_signature(&public));
        for field in ManifestField::ALL {
            let bad = tamper(&signed, field).expect("long enough");
            assert_eq!(bad.len(), signed.len(), "{field}");
            let m = Manifest::parse(&bad).unwrap_or_else(|e| panic!("{field}: still parses: {e}"));
            assert!(
                !m.verify_signature(&public),
                "{field}: signature must not match"
            );
            let changed = match field {
                ManifestField::Version => m.version() != good.version(),
                ManifestField::RollbackCounter => m.rollback_counter() != good.rollback_counter(),
                ManifestField::Size => {
                    m.size() != good.size() && m.chunk_count() == good.chunk_count()
                }
                ManifestField::Sha256 => m.sha256() != good.sha256(),
            };
            assert!(changed, "{field}");
            assert_eq!(
                &bad[bad.len() - 64..],
                &signed[signed.len() - 64..],
                "{field}: old signature kept"
            );
        }
        assert!(tamper(b"short", ManifestField::Version).is_none());
    }
}
