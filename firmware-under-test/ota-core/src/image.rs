//! The signed image format.
//!
//! An image is a 256-byte header followed by the body. The header carries an ed25519 signature
//! over its first [`SIGNED_LEN`] bytes, and those bytes include the SHA-256 of the body, so one
//! signature check plus one body hash authenticate the whole image.
//!
//! | offset | size | field                                                    |
//! |-------:|-----:|----------------------------------------------------------|
//! |      0 |    4 | magic `OTAI`                                             |
//! |      4 |    2 | header format, [`FORMAT`]                                |
//! |      6 |    2 | header length, [`HEADER_LEN`]                            |
//! |      8 |    6 | version (major, minor, patch; u16 LE each)               |
//! |     14 |    2 | flags (reserved, 0)                                      |
//! |     16 |    4 | anti-rollback counter                                    |
//! |     20 |    4 | body length in bytes                                     |
//! |     24 |    4 | load address of the body                                 |
//! |     28 |    4 | entry point (must lie inside the body)                   |
//! |     32 |   32 | SHA-256 of the body                                      |
//! |     64 |   16 | board kind, ASCII, NUL padded (`sim`, `pico-w`)          |
//! |     80 |  112 | reserved, 0                                              |
//! |    192 |   64 | ed25519 signature over bytes `0..192`                    |
//!
//! All integers are little-endian. Parsing checks structure only ([`ImageHeader::parse`]);
//! authenticity is [`ImageHeader::verify_signature`] plus a hash of the body.

use core::fmt;

use crate::{Digest, PUBLIC_KEY_LEN, SIGNATURE_LEN, Version, le_u16, le_u32};

/// Header magic.
pub const MAGIC: [u8; 4] = *b"OTAI";
/// Header format version understood by this crate.
pub const FORMAT: u16 = 1;
/// Length of the header in bytes (one flash page on the RP2040).
pub const HEADER_LEN: usize = 256;
/// The signature covers bytes `0..SIGNED_LEN` of the header.
pub const SIGNED_LEN: usize = 192;
/// Length of the board-kind field.
pub const BOARD_LEN: usize = 16;
/// Largest body any board accepts (the slot bounds it further).
pub const MAX_BODY_LEN: u32 = 16 * 1024 * 1024;

/// A parsed (not yet authenticated) image header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageHeader {
    pub version: Version,
    pub flags: u16,
    pub rollback_counter: u32,
    pub body_len: u32,
    pub load_addr: u32,
    pub entry_point: u32,
    pub body_sha256: Digest,
    pub board: [u8; BOARD_LEN],
    pub signature: [u8; SIGNATURE_LEN],
}

/// Why a header was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than [`HEADER_LEN`] bytes.
    TooShort,
    BadMagic,
    UnsupportedFormat(u16),
    BadHeaderLength(u16),
    /// The body length is 0 or above [`MAX_BODY_LEN`].
    BadBodyLength(u32),
    /// The entry point is outside `load_addr..load_addr + body_len`.
    MissingEntryPoint,
    /// Reserved bytes or flags are not zero.
    ReservedNotZero,
    /// The board kind is not NUL-padded ASCII.
    BadBoardKind,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => write!(f, "image shorter than its {HEADER_LEN}-byte header"),
            Self::BadMagic => f.write_str("bad image magic (expected OTAI)"),
            Self::UnsupportedFormat(v) => write!(f, "unsupported image header format {v}"),
            Self::BadHeaderLength(v) => write!(f, "bad header length {v}"),
            Self::BadBodyLength(v) => write!(f, "bad body length {v}"),
            Self::MissingEntryPoint => f.write_str("entry point outside the image body"),
            Self::ReservedNotZero => f.write_str("reserved header bytes are not zero"),
            Self::BadBoardKind => f.write_str("board kind is not NUL-padded ASCII"),
        }
    }
}

impl ImageHeader {
    /// Parses and structurally checks a header from the first [`HEADER_LEN`] bytes of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, HeaderError> {
        let b = bytes.get(..HEADER_LEN).ok_or(HeaderError::TooShort)?;
        if b[0..4] != MAGIC {
            return Err(HeaderError::BadMagic);
        }
        let format = le_u16(b, 4);
        if format != FORMAT {
            return Err(HeaderError::UnsupportedFormat(format));
        }
        let header_len = le_u16(b, 6);
        if usize::from(header_len) != HEADER_LEN {
            return Err(HeaderError::BadHeaderLength(header_len));
        }
        let mut version = [0u8; 6];
        version.copy_from_slice(&b[8..14]);
        let flags = le_u16(b, 14);
        let body_len = le_u32(b, 20);
        if body_len == 0 || body_len > MAX_BODY_LEN {
            return Err(HeaderError::BadBodyLength(body_len));
        }
        let load_addr = le_u32(b, 24);
        let entry_point = le_u32(b, 28);
        let body_end = u64::from(load_addr) + u64::from(body_len);
        if entry_point < load_addr || u64::from(entry_point) >= body_end {
            return Err(HeaderError::MissingEntryPoint);
        }
        if flags != 0 || b[80..SIGNED_LEN].iter().any(|&x| x != 0) {
            return Err(HeaderError::ReservedNotZero);
        }
        let mut board = [0u8; BOARD_LEN];
        board.copy_from_slice(&b[64..80]);
        let text_len = board.iter().position(|&c| c == 0).unwrap_or(BOARD_LEN);
        if !board[..text_len].iter().all(|c| c.is_ascii_graphic())
            || board[text_len..].iter().any(|&c| c != 0)
        {
            return Err(HeaderError::BadBoardKind);
        }
        let mut body_sha256 = [0u8; 32];
        body_sha256.copy_from_slice(&b[32..64]);
        let mut signature = [0u8; SIGNATURE_LEN];
        signature.copy_from_slice(&b[SIGNED_LEN..HEADER_LEN]);
        Ok(Self {
            version: Version::from_le_bytes(version),
            flags,
            rollback_counter: le_u32(b, 16),
            body_len,
            load_addr,
            entry_point,
            body_sha256,
            board,
            signature,
        })
    }

    /// The signed part of the header, as it is laid out on flash.
    pub fn signed_bytes(&self) -> [u8; SIGNED_LEN] {
        let mut b = [0u8; SIGNED_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&FORMAT.to_le_bytes());
        b[6..8].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        b[8..14].copy_from_slice(&self.version.to_le_bytes());
        b[14..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..20].copy_from_slice(&self.rollback_counter.to_le_bytes());
        b[20..24].copy_from_slice(&self.body_len.to_le_bytes());
        b[24..28].copy_from_slice(&self.load_addr.to_le_bytes());
        b[28..32].copy_from_slice(&self.entry_point.to_le_bytes());
        b[32..64].copy_from_slice(&self.body_sha256);
        b[64..80].copy_from_slice(&self.board);
        b
    }

    /// The whole header, signature included.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..SIGNED_LEN].copy_from_slice(&self.signed_bytes());
        b[SIGNED_LEN..].copy_from_slice(&self.signature);
        b
    }

    /// True when the signature verifies against the trusted `public_key`.
    pub fn verify_signature(&self, public_key: &[u8; PUBLIC_KEY_LEN]) -> bool {
        crate::verify_signature(public_key, &self.signed_bytes(), &self.signature)
    }

    /// The board kind as text (`sim`, `pico-w`).
    pub fn board_kind(&self) -> &str {
        let len = self.board.iter().position(|&c| c == 0).unwrap_or(BOARD_LEN);
        core::str::from_utf8(&self.board[..len]).unwrap_or("")
    }

    /// Total image length, header included.
    pub fn image_len(&self) -> u32 {
        self.body_len.saturating_add(HEADER_LEN as u32)
    }
}

/// Encodes a board kind for [`ImageHeader::board`]; `None` if it is too long or not ASCII.
pub fn board_kind(kind: &str) -> Option<[u8; BOARD_LEN]> {
    if kind.len() > BOARD_LEN || !kind.bytes().all(|c| c.is_ascii_graphic()) {
        return None;
    }
    let mut out = [0u8; BOARD_LEN];
    out[..kind.len()].copy_from_slice(kind.as_bytes());
    Some(out)
}

/// What to put in a new image (host side).
#[cfg(any(feature = "std", test))]
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub version: Version,
    pub rollback_counter: u32,
    pub board: [u8; BOARD_LEN],
    pub load_addr: u32,
    /// Offset of the entry point inside the body.
    pub entry_offset: u32,
}

/// Builds a signed image: header + `body` (feature `std`).
#[cfg(any(feature = "std", test))]
pub fn build(spec: &ImageSpec, body: &[u8], key: &crate::keys::SigningKey) -> Vec<u8> {
    let mut header = ImageHeader {
        version: spec.version,
        flags: 0,
        rollback_counter: spec.rollback_counter,
        body_len: body.len() as u32,
        load_addr: spec.load_addr,
        entry_point: spec.load_addr.wrapping_add(spec.entry_offset),
        body_sha256: crate::sha256(body),
        board: spec.board,
        signature: [0; SIGNATURE_LEN],
    };
    resign(&mut header, key);
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(body);
    out
}

/// Replaces the header's signature with one made by `key` (feature `std`).
#[cfg(any(feature = "std", test))]
pub fn resign(header: &mut ImageHeader, key: &crate::keys::SigningKey) {
    header.signature = crate::keys::sign(key, &header.signed_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;

    fn spec() -> ImageSpec {
        ImageSpec {
            version: Version::new(2, 0, 0),
            rollback_counter: 1,
            board: board_kind("sim").expect("valid kind"),
            load_addr: 0x1000_0100,
            entry_offset: 0,
        }
    }

    #[test]
    fn built_image_parses_and_verifies() {
        let key = keys::generate();
        let image = build(&spec(), &[7u8; 1000], &key);
        let header = ImageHeader::parse(&image).expect("valid header");
        assert_eq!(header.version, Version::new(2, 0, 0));
        assert_eq!(header.body_len, 1000);
        assert_eq!(header.board_kind(), "sim");
        assert_eq!(header.body_sha256, crate::sha256(&image[HEADER_LEN..]));
        assert!(header.verify_signature(key.verifying_key().as_bytes()));
        assert!(!header.verify_signature(keys::generate().verifying_key().as_bytes()));
        assert_eq!(header.to_bytes()[..], image[..HEADER_LEN]);
    }

    #[test]
    fn any_signed_byte_flip_breaks_the_signature() {
        let key = keys::generate();
        let image = build(&spec(), &[1u8; 64], &key);
        for at in [8usize, 16, 20, 40, 64] {
            let mut bad = image.clone();
            bad[at] ^= 0x01;
            if let Ok(h) = ImageHeader::parse(&bad) {
                assert!(
                    !h.verify_signature(key.verifying_key().as_bytes()),
                    "byte {at}"
                );
            }
        }
    }

    #[test]
    fn structural_errors_are_reported() {
        let key = keys::generate();
        let image = build(&spec(), &[1u8; 64], &key);
        assert_eq!(
            ImageHeader::parse(&image[..100]),
            Err(HeaderError::TooShort)
        );
        let mut bad = image.clone();
        bad[0] = b'X';
        assert_eq!(ImageHeader::parse(&bad), Err(HeaderError::BadMagic));
        let mut no_entry = spec();
        no_entry.entry_offset = 64;
        let image = build(&no_entry, &[1u8; 64], &key);
        assert_eq!(
            ImageHeader::parse(&image),
            Err(HeaderError::MissingEntryPoint)
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = ImageHeader::parse(&bytes);
        }
    }
}
