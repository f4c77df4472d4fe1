//! The limits of the wire formats a board parses, at the limit and one step past it: what the
//! parsers let through is what every later check works on.

use super::bench::{image, v};
use crate::image::{HeaderError, ImageHeader};
use crate::keys;

/// A good header with `edit` applied to its bytes (the parser does not check the signature;
/// the boot and staging checks do).
fn header_edited(edit: impl FnOnce(&mut [u8])) -> Result<ImageHeader, HeaderError> {
    let key = keys::generate();
    let mut img = image(&key, v(1), 1);
    edit(&mut img[..256]);
    ImageHeader::parse(&img)
}

fn header_with_body_len(len: u32) -> Result<ImageHeader, HeaderError> {
    header_edited(|h| h[20..24].copy_from_slice(&len.to_le_bytes()))
}

fn le(h: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]])
}

/// The header with its entry point at `load_addr + delta` (body length from the header).
fn entry_at(delta: i64) -> Result<ImageHeader, HeaderError> {
    header_edited(|h| {
        let entry = (i64::from(le(h, 24)) + delta) as u32;
        h[28..32].copy_from_slice(&entry.to_le_bytes());
    })
}

#[test]
fn an_image_body_is_1_byte_to_16_mib() {
    assert_eq!(
        header_with_body_len(0).err(),
        Some(HeaderError::BadBodyLength(0))
    );
    assert_eq!(header_with_body_len(1).map(|h| h.body_len), Ok(1));
    assert_eq!(
        header_with_body_len(16 << 20).map(|h| h.body_len),
        Ok(16 << 20)
    );
    assert_eq!(
        header_with_body_len((16 << 20) + 1).err(),
        Some(HeaderError::BadBodyLength((16 << 20) + 1))
    );
}

#[test]
fn the_entry_point_lies_inside_the_body() {
    let body_len = i64::from(header_edited(|_| {}).expect("good").body_len);
    assert!(entry_at(0).is_ok());
    assert!(entry_at(body_len - 1).is_ok());
    assert_eq!(entry_at(-1).err(), Some(HeaderError::MissingEntryPoint));
    assert_eq!(
        entry_at(body_len).err(),
        Some(HeaderError::MissingEntryPoint)
    );
}

#[test]
fn flags_and_reserved_bytes_must_each_be_zero() {
    assert_eq!(
        header_edited(|h| h[14] = 1).err(),
        Some(HeaderError::ReservedNotZero),
        "a flag"
    );
    for at in [80, 191] {
        assert_eq!(
            header_edited(|h| h[at] = 1).err(),
            Some(HeaderError::ReservedNotZero),
            "reserved byte {at}"
        );
    }
}

#[test]
fn a_board_kind_is_printable_ascii_padded_with_nul() {
    // "sim" then NULs: a control character inside, or anything after the first NUL, is not.
    assert_eq!(
        header_edited(|h| h[65] = b'\n').err(),
        Some(HeaderError::BadBoardKind)
    );
    assert_eq!(
        header_edited(|h| h[70] = b'x').err(),
        Some(HeaderError::BadBoardKind)
    );
    assert_eq!(
        header_edited(|h| h[79] = b'x').err(),
        Some(HeaderError::BadBoardKind)
    );
    assert_eq!(
        header_edited(|h| h[64..80].copy_from_slice(b"sixteen-chars-ok"))
            .map(|h| h.board_kind().len()),
        Ok(16)
    );
}
