//! A board's fixed buffers ([`SliceBuffers`]): the Pico W's static RAM. An update needs room for
//! the whole manifest and one chunk; with less, the release is refused before any image byte
//! arrives, and with exactly enough it installs.

use super::bench::{image_for, one_offer_with, v};
use crate::manifest;
use crate::sweep::Setup;
use crate::updater::{Buffers, SliceBuffers};

const URL: &str = "/v1/images/v2.bin";

#[test]
fn slices_hand_out_exactly_the_room_asked_for_and_keep_what_was_written() {
    let (mut m, mut c) = ([0u8; 8], [0u8; 4]);
    let mut b = SliceBuffers {
        manifest: &mut m,
        chunk: &mut c,
    };
    assert!(b.manifest_room(9).is_none());
    assert!(b.chunk_room(5).is_none());
    b.manifest_room(8)
        .expect("room")
        .copy_from_slice(b"manifest");
    b.chunk_room(4).expect("room").copy_from_slice(b"abcd");
    assert_eq!(b.manifest_room(3).map(|r| r.len()), Some(3));
    assert_eq!(b.manifest(8), b"manifest");
    assert_eq!(b.manifest(3), b"man");
    assert_eq!(b.chunk(4), b"abcd");
    assert_eq!(b.chunk(2), b"ab");
    assert_eq!(b.manifest(9), b"", "never more than the slice");
    assert_eq!(b.chunk(5), b"");
}

#[test]
fn an_update_runs_in_fixed_buffers_just_large_enough_and_is_refused_in_smaller_ones() {
    let setup = Setup::new(8 * 1024, 4096);
    let key = setup.key.clone();
    let v2 = image_for(&key, v(2), 1, "sim", 8 * 1024);
    let raw = manifest::build(&v2, 4096, URL, &key).expect("manifest");
    let run = |manifest_room: usize, chunk_room: usize| {
        let (mut m, mut c) = (vec![0u8; manifest_room], vec![0u8; chunk_room]);
        let mut bufs = SliceBuffers {
            manifest: &mut m,
            chunk: &mut c,
        };
        one_offer_with(&setup, &raw, &v2, &mut bufs)
    };
    let (asked, out) = run(raw.len(), 4096);
    assert!(
        out.iter().any(|l| l == "update: staged version=2.0.0"),
        "{out:?}"
    );
    assert_eq!(
        asked.last().map(String::as_str),
        Some("Reset(Update)"),
        "{asked:?}"
    );
    // A manifest buffer one byte short: the manifest is refused, no image is requested.
    let (asked, out) = run(raw.len() - 1, 4096);
    assert!(
        out.iter()
            .any(|l| l == "update: manifest unavailable reason=bad-content-length"),
        "{out:?}"
    );
    assert!(!asked.iter().any(|a| a.contains("images")), "{asked:?}");
    // A chunk buffer one byte short: the download fails, nothing is staged.
    let (_, out) = run(raw.len(), 4095);
    assert!(
        !out.iter().any(|l| l.starts_with("update: staged")),
        "{out:?}"
    );
    assert!(
        out.iter().any(|l| l.contains("reason=too-large")),
        "{out:?}"
    );
}
