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

#[test]
fn a_board_kind_to_build_for_is_at_most_16_printable_characters() {
    use crate::image::board_kind;
    assert_eq!(board_kind("sixteen-chars-ok"), Some(*b"sixteen-chars-ok"));
    assert_eq!(board_kind("seventeen-chars-x"), None);
    assert_eq!(
        board_kind("sim").map(|b| b[..4].to_vec()),
        Some(b"sim\0".to_vec())
    );
    assert_eq!(board_kind("a b"), None);
    assert_eq!(board_kind("caf\u{e9}"), None);
}

mod manifests {
    use crate::keys;
    use crate::manifest::{self, Manifest, ManifestError};

    const FIXED: usize = 68;

    fn build(size: usize, chunk: u32, url: &str) -> Vec<u8> {
        let key = keys::generate();
        manifest::build_with(&vec![0x5A; size], super::v(2), 1, chunk, url, &key).expect("build")
    }

    fn parse_edited(raw: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Result<(), ManifestError> {
        let mut raw = raw.to_vec();
        edit(&mut raw);
        Manifest::parse(&raw).map(|_| ())
    }

    #[test]
    fn the_smallest_and_largest_manifests_parse_and_one_byte_more_or_less_does_not() {
        // 1024 chunks of 256 bytes and a 200-byte URL: the largest manifest there is.
        let url = "u".repeat(200);
        let max = build(1024 * 256, 256, &url);
        assert_eq!(max.len(), manifest::MAX_LEN);
        let m = Manifest::parse(&max).expect("the largest parses");
        assert_eq!(
            (m.chunk_count(), m.chunk_size(), m.url().len()),
            (1024, 256, 200)
        );
        let mut longer = max.clone();
        longer.push(0);
        assert_eq!(Manifest::parse(&longer).err(), Some(ManifestError::TooLong));
        // The fixed part and a signature, nothing else: not too short (its fields say why).
        let mut bare = build(1, 256, "u")[..FIXED].to_vec();
        bare.extend_from_slice(&[0; 64]);
        assert_ne!(Manifest::parse(&bare).err(), Some(ManifestError::TooShort));
        bare.pop();
        assert_eq!(Manifest::parse(&bare).err(), Some(ManifestError::TooShort));
    }

    #[test]
    fn every_field_is_checked() {
        let raw = build(5000, 1024, "/v1/images/v2.bin");
        assert!(Manifest::parse(&raw).is_ok());
        let set32 = |at: usize, v: u32| {
            move |r: &mut Vec<u8>| r[at..at + 4].copy_from_slice(&v.to_le_bytes())
        };
        let set16 = |at: usize, v: u16| {
            move |r: &mut Vec<u8>| r[at..at + 2].copy_from_slice(&v.to_le_bytes())
        };
        type Edit = Box<dyn FnOnce(&mut Vec<u8>)>;
        let cases: Vec<(&str, Edit, ManifestError)> = vec![
            (
                "magic",
                Box::new(|r: &mut Vec<u8>| r[3] ^= 1),
                ManifestError::BadMagic,
            ),
            (
                "format",
                Box::new(set16(4, 2)),
                ManifestError::UnsupportedFormat(2),
            ),
            (
                "reserved 6",
                Box::new(set16(6, 1)),
                ManifestError::ReservedNotZero,
            ),
            (
                "reserved 14",
                Box::new(set16(14, 1)),
                ManifestError::ReservedNotZero,
            ),
            (
                "reserved 66",
                Box::new(set16(66, 1)),
                ManifestError::ReservedNotZero,
            ),
            (
                "empty image",
                Box::new(set32(20, 0)),
                ManifestError::EmptyImage,
            ),
            (
                "chunk below 256",
                Box::new(set32(24, 128)),
                ManifestError::BadChunkSize(128),
            ),
            (
                "chunk above 64 KiB",
                Box::new(set32(24, 131_072)),
                ManifestError::BadChunkSize(131_072),
            ),
            (
                "chunk not a power of 2",
                Box::new(set32(24, 768)),
                ManifestError::BadChunkSize(768),
            ),
            (
                "one chunk too many",
                Box::new(set32(28, 6)),
                ManifestError::BadChunkCount(6),
            ),
            (
                "one chunk too few",
                Box::new(set32(28, 4)),
                ManifestError::BadChunkCount(4),
            ),
            ("no URL", Box::new(set16(64, 0)), ManifestError::BadUrl),
            (
                "URL over 200",
                Box::new(set16(64, 201)),
                ManifestError::BadUrl,
            ),
            (
                "URL with a space",
                Box::new(|r: &mut Vec<u8>| r[FIXED + 1] = b' '),
                ManifestError::BadUrl,
            ),
            (
                "one byte more",
                Box::new(|r: &mut Vec<u8>| r.push(0)),
                ManifestError::LengthMismatch,
            ),
            (
                "one byte less",
                Box::new(|r: &mut Vec<u8>| {
                    r.pop();
                }),
                ManifestError::LengthMismatch,
            ),
        ];
        for (what, edit, want) in cases {
            assert_eq!(parse_edited(&raw, edit).err(), Some(want), "{what}");
        }
        // 1025 chunks of 256 bytes: over the limit even though the count matches the size.
        let over = parse_edited(&build(1025 * 256, 512, "u"), |r| {
            r[24..28].copy_from_slice(&256u32.to_le_bytes());
            r[28..32].copy_from_slice(&1025u32.to_le_bytes());
        });
        assert_eq!(over.err(), Some(ManifestError::BadChunkCount(1025)));
    }

    #[test]
    fn a_manifest_for_bytes_that_are_no_image_claims_what_their_header_would_say() {
        // Tests serve broken images: the manifest takes the version and counter from the
        // raw header positions, or zero when there is not even that much.
        let key = keys::generate();
        let tiny = manifest::build(&[7u8; 10], 256, "u", &key).expect("build");
        let m = Manifest::parse(&tiny).expect("parse");
        assert_eq!(
            (m.version(), m.rollback_counter(), m.size()),
            (crate::Version::default(), 0, 10)
        );
        let mut raw = vec![0u8; 64];
        raw[8..14].copy_from_slice(&super::v(3).to_le_bytes());
        raw[16..20].copy_from_slice(&9u32.to_le_bytes());
        let m = manifest::build(&raw, 256, "u", &key).expect("build");
        let m = Manifest::parse(&m).expect("parse");
        assert_eq!((m.version(), m.rollback_counter()), (super::v(3), 9));
        assert_eq!(
            manifest::build(&[], 256, "u", &key).err(),
            Some(ManifestError::EmptyImage)
        );
    }

    #[test]
    fn the_signing_side_refuses_to_build_a_manifest_no_board_would_parse() {
        let key = keys::generate();
        let b = |size: usize, chunk: u32, url: &str| {
            manifest::build_with(&vec![1u8; size], super::v(2), 1, chunk, url, &key).map(|_| ())
        };
        assert_eq!(b(1000, 256, "u"), Ok(()));
        assert_eq!(b(1000, 65536, "u"), Ok(()));
        assert_eq!(b(1000, 128, "u"), Err(ManifestError::BadChunkSize(128)));
        assert_eq!(
            b(1000, 131_072, "u"),
            Err(ManifestError::BadChunkSize(131_072))
        );
        assert_eq!(b(1000, 768, "u"), Err(ManifestError::BadChunkSize(768)));
        assert_eq!(b(1024 * 256, 256, "u"), Ok(()));
        assert_eq!(
            b(1024 * 256 + 1, 256, "u"),
            Err(ManifestError::BadChunkCount(1025))
        );
        assert_eq!(b(1000, 256, &"u".repeat(200)), Ok(()));
        assert_eq!(b(1000, 256, &"u".repeat(201)), Err(ManifestError::BadUrl));
        assert_eq!(b(1000, 256, ""), Err(ManifestError::BadUrl));
        assert_eq!(b(1000, 256, "a b"), Err(ManifestError::BadUrl));
    }

    #[test]
    fn chunks_cover_the_image_exactly_and_nothing_past_it() {
        let raw = build(5000, 1024, "u");
        let m = Manifest::parse(&raw).expect("parse");
        assert_eq!(m.chunk_range(0), Some((0, 1024)));
        assert_eq!(m.chunk_range(4), Some((4096, 5000)));
        assert_eq!(m.chunk_range(5), None);
        assert_eq!(m.chunk_hash(4), Some(crate::sha256(&[0x5A; 904])));
        assert_eq!(m.chunk_hash(0), Some(crate::sha256(&[0x5A; 1024])));
        assert_eq!(m.chunk_hash(5), None);
        assert_eq!(m.sha256(), crate::sha256(&[0x5A; 5000]));
        assert_eq!(
            (m.size(), m.rollback_counter(), m.version()),
            (5000, 1, super::v(2))
        );
        assert_eq!(m.as_bytes(), raw.as_slice());
        assert_eq!(m.digest(), crate::sha256(&raw));
    }
}
