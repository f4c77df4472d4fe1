//! The signed release manifest.
//!
//! The manifest tells a device what to download and how to check every piece of it. Its wire
//! bytes *are* its canonical bytes: a fixed little-endian layout, so the signature covers
//! exactly what the device parses and there is no canonicalisation step to get wrong (the
//! classic trap of signed JSON). The fake server also renders it as JSON for people.
//!
//! | offset      | size   | field                                                  |
//! |------------:|-------:|--------------------------------------------------------|
//! |           0 |      4 | magic `OTAM`                                           |
//! |           4 |      2 | manifest format, [`FORMAT`]                            |
//! |           6 |      2 | flags (reserved, 0)                                    |
//! |           8 |      6 | version (major, minor, patch; u16 LE each)             |
//! |          14 |      2 | reserved, 0                                            |
//! |          16 |      4 | anti-rollback counter of the image                     |
//! |          20 |      4 | image size in bytes (header + body)                    |
//! |          24 |      4 | chunk size in bytes (power of two, 256..=65536)        |
//! |          28 |      4 | chunk count (= ceil(size / chunk size))                |
//! |          32 |     32 | SHA-256 of the whole image                             |
//! |          64 |      2 | URL length `U` (1..=[`MAX_URL_LEN`])                    |
//! |          66 |      2 | reserved, 0                                            |
//! |          68 |      U | image URL, ASCII (absolute path or `http://` URL)      |
//! |      68 + U | 32 × N | SHA-256 of each chunk, in order                        |
//! | 68 + U + 32N|     64 | ed25519 signature over all preceding bytes             |

use core::fmt;

use crate::{DIGEST_LEN, Digest, PUBLIC_KEY_LEN, SIGNATURE_LEN, Version, le_u16, le_u32};

/// Manifest magic.
pub const MAGIC: [u8; 4] = *b"OTAM";
/// Manifest format understood by this crate.
pub const FORMAT: u16 = 1;
/// Longest image URL.
pub const MAX_URL_LEN: usize = 200;
/// Most chunks in one manifest.
pub const MAX_CHUNKS: usize = 1024;
/// Smallest and largest chunk sizes.
pub const MIN_CHUNK: u32 = 256;
pub const MAX_CHUNK: u32 = 65536;
const FIXED_LEN: usize = 68;
/// Largest encoded manifest.
pub const MAX_LEN: usize = FIXED_LEN + MAX_URL_LEN + MAX_CHUNKS * DIGEST_LEN + SIGNATURE_LEN;
/// MIME type the server uses for the binary manifest.
pub const CONTENT_TYPE: &str = "application/vnd.otarig.manifest";

/// A parsed manifest borrowing its wire bytes. Nothing is copied; chunk hashes are read on
/// demand, so a device can keep the bytes in one buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Manifest<'a> {
    bytes: &'a [u8],
    url_len: usize,
}

/// Why a manifest was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestError {
    TooShort,
    TooLong,
    BadMagic,
    UnsupportedFormat(u16),
    ReservedNotZero,
    BadChunkSize(u32),
    /// The chunk count does not match size / chunk size, or exceeds [`MAX_CHUNKS`].
    BadChunkCount(u32),
    BadUrl,
    /// The length does not match the fields.
    LengthMismatch,
    EmptyImage,
    /// The signature does not verify with the trusted key.
    BadSignature,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => f.write_str("manifest too short"),
            Self::TooLong => write!(f, "manifest longer than {MAX_LEN} bytes"),
            Self::BadMagic => f.write_str("bad manifest magic (expected OTAM)"),
            Self::UnsupportedFormat(v) => write!(f, "unsupported manifest format {v}"),
            Self::ReservedNotZero => f.write_str("reserved manifest bytes are not zero"),
            Self::BadChunkSize(v) => write!(f, "bad chunk size {v}"),
            Self::BadChunkCount(v) => write!(f, "bad chunk count {v}"),
            Self::BadUrl => f.write_str("bad image URL"),
            Self::LengthMismatch => f.write_str("manifest length does not match its fields"),
            Self::EmptyImage => f.write_str("manifest describes an empty image"),
            Self::BadSignature => f.write_str("manifest signature does not verify"),
        }
    }
}

impl<'a> Manifest<'a> {
    /// Parses and structurally checks a manifest. Does not check the signature: use
    /// [`Manifest::parse_verified`] on a device.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_LEN {
            return Err(ManifestError::TooLong);
        }
        if bytes.len() < FIXED_LEN + SIGNATURE_LEN {
            return Err(ManifestError::TooShort);
        }
        if bytes[0..4] != MAGIC {
            return Err(ManifestError::BadMagic);
        }
        let format = le_u16(bytes, 4);
        if format != FORMAT {
            return Err(ManifestError::UnsupportedFormat(format));
        }
        if le_u16(bytes, 6) != 0 || le_u16(bytes, 14) != 0 || le_u16(bytes, 66) != 0 {
            return Err(ManifestError::ReservedNotZero);
        }
        let size = le_u32(bytes, 20);
        if size == 0 {
            return Err(ManifestError::EmptyImage);
        }
        let chunk_size = le_u32(bytes, 24);
        if !chunk_size.is_power_of_two() || !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk_size) {
            return Err(ManifestError::BadChunkSize(chunk_size));
        }
        let chunks = le_u32(bytes, 28);
        if chunks != size.div_ceil(chunk_size) || chunks as usize > MAX_CHUNKS {
            return Err(ManifestError::BadChunkCount(chunks));
        }
        let url_len = usize::from(le_u16(bytes, 64));
        if url_len == 0 || url_len > MAX_URL_LEN {
            return Err(ManifestError::BadUrl);
        }
        let expected = FIXED_LEN + url_len + chunks as usize * DIGEST_LEN + SIGNATURE_LEN;
        if bytes.len() != expected {
            return Err(ManifestError::LengthMismatch);
        }
        let url = &bytes[FIXED_LEN..FIXED_LEN + url_len];
        if !url.iter().all(|c| c.is_ascii_graphic()) {
            return Err(ManifestError::BadUrl);
        }
        Ok(Self { bytes, url_len })
    }

    /// Parses a manifest and checks its signature against the trusted `public_key`.
    pub fn parse_verified(
        bytes: &'a [u8],
        public_key: &[u8; PUBLIC_KEY_LEN],
    ) -> Result<Self, ManifestError> {
        let manifest = Self::parse(bytes)?;
        if manifest.verify_signature(public_key) {
            Ok(manifest)
        } else {
            Err(ManifestError::BadSignature)
        }
    }

    pub fn verify_signature(&self, public_key: &[u8; PUBLIC_KEY_LEN]) -> bool {
        let (signed, signature) = self.bytes.split_at(self.bytes.len() - SIGNATURE_LEN);
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(signature);
        crate::verify_signature(public_key, signed, &sig)
    }

    pub fn version(&self) -> Version {
        let mut v = [0u8; 6];
        v.copy_from_slice(&self.bytes[8..14]);
        Version::from_le_bytes(v)
    }

    pub fn rollback_counter(&self) -> u32 {
        le_u32(self.bytes, 16)
    }

    /// Image size in bytes (header + body).
    pub fn size(&self) -> u32 {
        le_u32(self.bytes, 20)
    }

    pub fn chunk_size(&self) -> u32 {
        le_u32(self.bytes, 24)
    }

    pub fn chunk_count(&self) -> u32 {
        le_u32(self.bytes, 28)
    }

    pub fn sha256(&self) -> Digest {
        let mut d = [0u8; DIGEST_LEN];
        d.copy_from_slice(&self.bytes[32..64]);
        d
    }

    pub fn url(&self) -> &'a str {
        // Checked ASCII in `parse`.
        core::str::from_utf8(&self.bytes[FIXED_LEN..FIXED_LEN + self.url_len]).unwrap_or("")
    }

    /// SHA-256 of chunk `index`, or `None` past the last chunk.
    pub fn chunk_hash(&self, index: u32) -> Option<Digest> {
        if index >= self.chunk_count() {
            return None;
        }
        let at = FIXED_LEN + self.url_len + index as usize * DIGEST_LEN;
        let mut d = [0u8; DIGEST_LEN];
        d.copy_from_slice(&self.bytes[at..at + DIGEST_LEN]);
        Some(d)
    }

    /// Byte range `start..end` of chunk `index` within the image.
    pub fn chunk_range(&self, index: u32) -> Option<(u32, u32)> {
        if index >= self.chunk_count() {
            return None;
        }
        let start = index * self.chunk_size();
        Some((start, (start + self.chunk_size()).min(self.size())))
    }

    /// The wire bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// SHA-256 of the wire bytes: identifies this exact manifest (used to resume safely).
    pub fn digest(&self) -> Digest {
        crate::sha256(self.bytes)
    }
}

/// Builds and signs a manifest for `image` served at `url` (feature `std`).
#[cfg(any(feature = "std", test))]
pub fn build(
    image: &[u8],
    chunk_size: u32,
    url: &str,
    key: &crate::keys::SigningKey,
) -> Result<Vec<u8>, ManifestError> {
    // A manifest may describe a deliberately broken image (tests serve those). When the header
    // does not parse, the version and counter are read from their raw header positions, so a
    // release with a corrupt header is still offered as the version it claims to be.
    let (version, counter) = match crate::image::ImageHeader::parse(image) {
        Ok(h) => (h.version, h.rollback_counter),
        Err(_) if image.len() >= 20 => {
            let mut v = [0u8; 6];
            v.copy_from_slice(&image[8..14]);
            (Version::from_le_bytes(v), crate::le_u32(image, 16))
        }
        Err(_) => (Version::default(), 0),
    };
    build_with(image, version, counter, chunk_size, url, key)
}

/// Like [`build`] with explicit version and counter (feature `std`).
#[cfg(any(feature = "std", test))]
pub fn build_with(
    image: &[u8],
    version: Version,
    rollback_counter: u32,
    chunk_size: u32,
    url: &str,
    key: &crate::keys::SigningKey,
) -> Result<Vec<u8>, ManifestError> {
    if image.is_empty() {
        return Err(ManifestError::EmptyImage);
    }
    if !chunk_size.is_power_of_two() || !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk_size) {
        return Err(ManifestError::BadChunkSize(chunk_size));
    }
    let size = u32::try_from(image.len()).map_err(|_| ManifestError::TooLong)?;
    let chunks = size.div_ceil(chunk_size);
    if chunks as usize > MAX_CHUNKS {
        return Err(ManifestError::BadChunkCount(chunks));
    }
    if url.is_empty() || url.len() > MAX_URL_LEN || !url.bytes().all(|c| c.is_ascii_graphic()) {
        return Err(ManifestError::BadUrl);
    }
    let mut out = Vec::with_capacity(FIXED_LEN + url.len() + chunks as usize * 32 + 64);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&rollback_counter.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&chunk_size.to_le_bytes());
    out.extend_from_slice(&chunks.to_le_bytes());
    out.extend_from_slice(&crate::sha256(image));
    out.extend_from_slice(&(url.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(url.as_bytes());
    for chunk in image.chunks(chunk_size as usize) {
        out.extend_from_slice(&crate::sha256(chunk));
    }
    let signature = crate::keys::sign(key, &out);
    out.extend_from_slice(&signature);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;

    #[test]
    fn round_trip_and_chunk_lookup() {
        let key = keys::generate();
        let image: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let bytes = build_with(
            &image,
            Version::new(2, 1, 0),
            3,
            4096,
            "/v1/images/v2.bin",
            &key,
        )
        .expect("builds");
        let m = Manifest::parse_verified(&bytes, key.verifying_key().as_bytes()).expect("valid");
        assert_eq!(m.version(), Version::new(2, 1, 0));
        assert_eq!(m.rollback_counter(), 3);
        assert_eq!(m.size(), 10_000);
        assert_eq!(m.chunk_count(), 3);
        assert_eq!(m.url(), "/v1/images/v2.bin");
        assert_eq!(m.sha256(), crate::sha256(&image));
        assert_eq!(m.chunk_hash(2), Some(crate::sha256(&image[8192..])));
        assert_eq!(m.chunk_range(2), Some((8192, 10_000)));
        assert_eq!(m.chunk_hash(3), None);
    }

    #[test]
    fn tampering_is_detected() {
        let key = keys::generate();
        let bytes =
            build_with(&[5u8; 3000], Version::new(1, 0, 0), 0, 1024, "/i", &key).expect("builds");
        let pk = key.verifying_key();
        for at in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[at] ^= 0x80;
            assert!(
                Manifest::parse_verified(&bad, pk.as_bytes()).is_err(),
                "byte {at}"
            );
        }
        let other = keys::generate();
        assert_eq!(
            Manifest::parse_verified(&bytes, other.verifying_key().as_bytes()),
            Err(ManifestError::BadSignature)
        );
        assert_eq!(
            Manifest::parse(&bytes[..bytes.len() - 1]),
            Err(ManifestError::LengthMismatch)
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..700)) {
            let _ = Manifest::parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_mutated_manifests(at in 0usize..300, val in proptest::num::u8::ANY, cut in 0usize..300) {
            let key = keys::generate();
            let mut bytes = build_with(&[9u8; 2000], Version::new(1, 0, 0), 0, 512, "/x", &key)
                .expect("builds");
            let at = at % bytes.len();
            bytes[at] = val;
            bytes.truncate(bytes.len().saturating_sub(cut % 8));
            let _ = Manifest::parse(&bytes);
        }
    }
}
