//! The device against a server that serves what it should not: a manifest signed by someone
//! else, a release it may not install, bytes that do not match what the manifest vouches for,
//! and a manifest that vouches for an image the device must still refuse. Each refusal names
//! its check and happens at the right stage: a refused manifest is never followed by an image
//! request, and a refused image is never activated.

use crate::device::Error;
use crate::keys::{self, SigningKey};
use crate::manifest::{self, Manifest};
use crate::state::BootState;
use crate::sweep::{End, MemServer, PointResult, Script, Setup, drive};
use crate::tools::{Corruption, corrupt};
use crate::{Reason, Version};

use super::bench::{BODY, Board, LAYOUT, Lines, image, image_for, one_offer, v};

const URL: &str = "/v1/images/v2.bin";

/// Offers `setup`'s release once (the device refuses it or not) and returns how the board
/// ended and the image requests it made.
fn offer(setup: &Setup) -> (PointResult, usize) {
    let mut server = MemServer::new(setup, Script::Refused);
    let r = drive(&mut server, &[], None);
    (r, server.image_requests.len())
}

fn has(r: &PointResult, line: &str) -> bool {
    r.console_tail.iter().any(|l| l == line)
}

/// A release whose manifest is `manifest` (re-signed or not by the caller).
fn setup_with(key: &SigningKey, v2: Vec<u8>, manifest: Vec<u8>) -> Setup {
    let mut s = Setup::with_images(key.clone(), image(key, v(1), 1), v2, 4096);
    s.manifest = manifest;
    s
}

#[test]
fn a_manifest_not_signed_by_the_release_key_is_refused_before_any_image_request() {
    let key = keys::generate();
    let untrusted = keys::generate();
    let v2 = image(&key, v(2), 1);
    let forged = manifest::build(&v2, 4096, URL, &untrusted).expect("manifest");
    let setup = setup_with(&key, v2.clone(), forged.clone());
    let (asked, out) = one_offer(&setup, &forged, &v2);
    assert!(
        out.iter()
            .any(|l| l == "update: refused version=unknown reason=bad-manifest-signature"),
        "{out:?}"
    );
    // The manifest was fetched, then nothing but the next check-in: no image request.
    assert_eq!(
        asked,
        ["checkin", "fetch /v1/manifest/v2 None", "checkin"],
        "{out:?}"
    );
    // The same offer with the real manifest is downloaded (the bench can tell).
    let good = manifest::build(&v2, 4096, URL, &key).expect("manifest");
    let (asked, _) = one_offer(&setup, &good, &v2);
    assert!(
        asked
            .iter()
            .any(|a| a.starts_with("fetch /v1/images/v2.bin")),
        "{asked:?}"
    );
}

#[test]
fn a_manifest_changed_in_transit_or_garbled_is_refused_and_nothing_is_recorded() {
    let key = keys::generate();
    let v2 = image(&key, v(2), 1);
    let good = manifest::build(&v2, 4096, URL, &key).expect("manifest");
    let mut resized = good.clone();
    resized[20] ^= 0x01; // the size it claims
    let mut garbled = good.clone();
    garbled[0] ^= 0xFF; // its magic
    let mut unsigned = good.clone();
    let last = unsigned.len() - 1;
    unsigned[last] ^= 0x80; // its signature
    for (what, raw, reason) in [
        ("resized", resized, Reason::BadManifestSignature),
        ("unsigned", unsigned, Reason::BadManifestSignature),
        ("garbled", garbled, Reason::BadManifest),
    ] {
        let mut dev = Board::new(&key).device();
        let mut st = BootState::factory(0, 1);
        let mut out = Lines::default();
        let r = dev.accept_manifest(&mut st, v(1), &raw, &mut out);
        assert_eq!(r.err(), Some(Error::Refused(reason)), "{what}");
        assert!(
            out.has(&format!(
                "update: refused version=unknown reason={}",
                reason.as_str()
            )),
            "{what}: {:?}",
            out.0
        );
        assert_eq!(dev.flash.core.ops(), 0, "{what}: nothing written");
    }
    let mut dev = Board::new(&key).device();
    let mut st = BootState::factory(0, 1);
    let m = dev.accept_manifest(&mut st, v(1), &good, &mut Lines::default());
    assert_eq!(m.map(|m| m.version()).ok(), Some(v(2)));
}

/// The device's own plan for a manifest on a board running v1.0.0 with floor 2.
fn plan(key: &SigningKey, version: Version, counter: u32, size: usize) -> Result<(), Reason> {
    let dev = Board::new(key).device();
    let img = image_for(key, version, counter, "sim", size);
    let m = manifest::build(&img, 4096, URL, key).expect("manifest");
    let m = Manifest::parse(&m).expect("parse");
    dev.plan(&BootState::factory(0, 2), v(1), &m)
}

#[test]
fn a_release_the_board_may_not_install_is_refused_by_its_own_check() {
    let key = keys::generate();
    let small = BODY;
    let slot = LAYOUT.slot_size as usize - 256;
    assert_eq!(plan(&key, v(2), 2, small), Ok(()));
    assert_eq!(
        plan(&key, Version::new(0, 9, 0), 2, small),
        Err(Reason::Downgrade)
    );
    assert_eq!(plan(&key, v(1), 2, small), Err(Reason::SameVersion));
    assert_eq!(plan(&key, Version::new(1, 0, 1), 2, small), Ok(()));
    assert_eq!(plan(&key, v(2), 1, small), Err(Reason::RollbackCounter));
    assert_eq!(plan(&key, v(2), 3, small), Ok(()));
    assert_eq!(
        plan(&key, v(2), 2, slot),
        Ok(()),
        "a release that fills the slot"
    );
    assert_eq!(plan(&key, v(2), 2, slot + 1), Err(Reason::TooLarge));
    // A release this board refused before.
    let dev = Board::new(&key).device();
    let img = image(&key, v(2), 2);
    let m = manifest::build(&img, 4096, URL, &key).expect("manifest");
    let m = Manifest::parse(&m).expect("parse");
    let mut st = BootState::factory(0, 2);
    st.rejected = Some(v(2));
    assert_eq!(dev.plan(&st, v(1), &m), Err(Reason::PreviouslyRejected));
    st.rejected = Some(Version::new(2, 0, 1));
    assert_eq!(dev.plan(&st, v(1), &m), Ok(()));
}

#[test]
fn a_refused_manifest_is_recorded_so_it_is_not_retried() {
    let key = keys::generate();
    let img = image(&key, v(2), 1);
    let raw = manifest::build(&img, 4096, URL, &key).expect("manifest");
    let mut dev = Board::new(&key).device();
    let mut st = BootState::factory(0, 2);
    let mut out = Lines::default();
    let r = dev.accept_manifest(&mut st, v(1), &raw, &mut out);
    assert_eq!(r.err(), Some(Error::Refused(Reason::RollbackCounter)));
    assert!(
        out.has("update: refused version=2.0.0 reason=rollback-counter"),
        "{:?}",
        out.0
    );
    let stored = crate::state::load(&mut dev.flash, &LAYOUT)
        .expect("read")
        .expect("record");
    assert_eq!(
        (stored.rejected, stored.last_error),
        (Some(v(2)), Some(Reason::RollbackCounter))
    );
    // A refusal that does not blame the release (the same version) is reported, not recorded
    // as rejected.
    let same = manifest::build(&image(&key, v(1), 2), 4096, URL, &key).expect("manifest");
    let mut st = BootState::factory(0, 2);
    let r = dev.accept_manifest(&mut st, v(1), &same, &mut out);
    assert_eq!(r.err(), Some(Error::Refused(Reason::SameVersion)));
    let stored = crate::state::load(&mut dev.flash, &LAYOUT)
        .expect("read")
        .expect("record");
    assert_eq!(
        (stored.rejected, stored.last_error),
        (None, Some(Reason::SameVersion))
    );
}

/// `(what, served image, reason)`: images a correctly signed manifest vouches for (the server
/// signs what it serves) that the image checks must still refuse after the download.
fn vouched_for_but_bad(key: &SigningKey) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let untrusted = keys::generate();
    let good = image(key, v(2), 1);
    vec![
        (
            "body changed after signing",
            corrupt(&good, Corruption::Body, key, &untrusted).expect("c"),
            "bad-hash",
        ),
        (
            "signed by another key",
            corrupt(&good, Corruption::Signature, key, &untrusted).expect("c"),
            "bad-signature",
        ),
        (
            "built for another board",
            image_for(key, v(2), 1, "pico-w", BODY),
            "wrong-board",
        ),
        (
            "a damaged header",
            corrupt(&good, Corruption::Header, key, &untrusted).expect("c"),
            "bad-header",
        ),
        (
            "no entry point",
            corrupt(&good, Corruption::Entry, key, &untrusted).expect("c"),
            "missing-entry-point",
        ),
        (
            "trailing bytes after the image",
            [good.as_slice(), &[0u8; 512]].concat(),
            "bad-hash",
        ),
    ]
}

#[test]
fn an_image_the_manifest_vouches_for_is_still_checked_before_it_is_activated() {
    let key = keys::generate();
    for (what, bad, reason) in vouched_for_but_bad(&key) {
        let setup = Setup::with_images(key.clone(), image(&key, v(1), 1), bad, 4096);
        let (r, requests) = offer(&setup);
        assert_eq!(
            r.end,
            End::Unchanged,
            "{what}: {}: {:?}",
            r.detail,
            r.console_tail
        );
        assert!(
            has(&r, &format!("verify: failed reason={reason}")),
            "{what}: {:?}",
            r.console_tail
        );
        assert!(requests > 0, "{what}: refused after the download");
        assert!(
            !r.console_tail
                .iter()
                .any(|l| l.starts_with("update: staged")),
            "{what}"
        );
    }
}

#[test]
fn an_image_older_than_the_manifest_says_is_refused_as_a_downgrade() {
    let key = keys::generate();
    for header in [Version::new(0, 9, 0), v(1)] {
        let old = image(&key, header, 1);
        let m = manifest::build_with(&old, v(2), 1, 4096, URL, &key).expect("manifest");
        let (r, _) = offer(&setup_with(&key, old, m));
        assert_eq!(r.end, End::Unchanged, "{header}: {}", r.detail);
        assert!(
            has(&r, "verify: failed reason=downgrade"),
            "{header}: {:?}",
            r.console_tail
        );
    }
    // One patch level above the running image is newer: it installs.
    let newer = image(&key, Version::new(1, 0, 1), 1);
    let setup = Setup::with_images(key.clone(), image(&key, v(1), 1), newer, 4096);
    let r = drive(&mut MemServer::new(&setup, Script::Update), &[], None);
    assert_eq!(r.end, End::Updated, "{}: {:?}", r.detail, r.console_tail);
}

#[test]
fn bytes_that_do_not_match_their_chunk_hash_are_never_written() {
    let key = keys::generate();
    let v2 = image_for(&key, v(2), 1, "sim", 10 * 1024);
    let mut setup = Setup::with_images(key.clone(), image(&key, v(1), 1), v2, 4096);
    setup.faults.corrupt = Some((5000, 4));
    let (r, requests) = offer(&setup);
    assert_eq!(r.end, End::Unchanged, "{}", r.detail);
    assert!(
        r.console_tail
            .iter()
            .any(|l| l.contains("reason=chunk-hash")),
        "{:?}",
        r.console_tail
    );
    assert!(requests >= 2, "retried: {requests}");
    assert!(
        !r.console_tail.iter().any(|l| l.starts_with("verify:")),
        "never complete"
    );
}

#[test]
fn an_update_on_a_board_running_from_slot_b_goes_to_slot_a_and_leaves_b_alone() {
    let key = keys::generate();
    let mut b = Board::new(&key);
    let v2 = image(&key, v(2), 1);
    b.put_slot(0, &image(&key, v(1), 1));
    b.put_slot(1, &v2);
    let mut st = crate::proof::bench::record(5, 1, 1);
    st.previous = Some(0);
    b.put_record(1, &st);
    let mut dev = b.device();
    let mut out = Lines::default();
    let boot = dev.boot(&mut out).expect("boots");
    assert_eq!(boot.slot, 1);
    let mut st = boot.state.clone();
    assert_eq!(st.inactive(), 0);
    let v3 = image_for(&key, v(3), 1, "sim", 10 * 1024);
    let raw = manifest::build(&v3, 4096, URL, &key).expect("manifest");
    let m = dev
        .accept_manifest(&mut st, v(2), &raw, &mut out)
        .expect("accepted");
    assert_eq!(dev.begin_download(&mut st, &m).ok(), Some(0));
    assert_eq!(st.download.map(|(_, slot)| slot), Some(0), "into slot A");
    for k in 0..m.chunk_count() {
        let (s, e) = m.chunk_range(k).expect("chunk");
        dev.write_chunk(st.inactive(), &m, k, &v3[s as usize..e as usize])
            .expect("written");
    }
    let at = LAYOUT.slot(1) as usize;
    assert_eq!(
        &dev.flash.core.mem[at..at + v2.len()],
        v2.as_slice(),
        "slot B untouched"
    );
    let staged = dev.finish_update(&mut st, &m, v(2), crate::updater::no_board_check, &mut out);
    assert_eq!(staged, Ok(true), "{:?}", out.0);
    assert_eq!((st.active, st.previous), (0, Some(1)));
    let boot = dev.boot(&mut out).expect("boots");
    assert_eq!((boot.slot, boot.header.version), (0, v(3)));
}

#[test]
fn the_longest_image_url_a_manifest_may_carry_is_fetched_whole() {
    let key = keys::generate();
    let v2 = image(&key, v(2), 1);
    let url = format!("/{}", "x".repeat(199));
    let raw = manifest::build(&v2, 4096, &url, &key).expect("manifest");
    let setup = setup_with(&key, v2.clone(), raw.clone());
    let (asked, out) = one_offer(&setup, &raw, &v2);
    assert!(
        asked
            .iter()
            .any(|a| a.starts_with(&format!("fetch {url} Some("))),
        "{asked:?}"
    );
    assert!(
        out.iter().any(|l| l == "update: staged version=2.0.0"),
        "{out:?}"
    );
}

#[test]
fn after_a_restart_a_download_resumes_at_the_first_chunk_not_intact_in_the_slot() {
    let key = keys::generate();
    let mut b = Board::new(&key);
    b.put_slot(0, &image(&key, v(1), 1));
    b.put_record(1, &crate::proof::bench::record(5, 0, 1));
    let mut dev = b.device();
    let v2 = image_for(&key, v(2), 1, "sim", 5 * 4096);
    let raw = manifest::build(&v2, 4096, URL, &key).expect("manifest");
    let m = Manifest::parse(&raw).expect("parse");
    let mut st = crate::state::load(&mut dev.flash, &LAYOUT)
        .expect("read")
        .expect("record");
    assert_eq!(
        dev.begin_download(&mut st, &m).ok(),
        Some(0),
        "a new download"
    );
    let chunk = |k: u32| {
        let (s, e) = m.chunk_range(k).expect("chunk");
        &v2[s as usize..e as usize]
    };
    for k in 0..3 {
        dev.write_chunk(1, &m, k, chunk(k)).expect("written");
    }
    // The power comes back: the record says "downloading this manifest into B".
    let mut st = crate::state::load(&mut dev.flash, &LAYOUT)
        .expect("read")
        .expect("record");
    assert_eq!(dev.begin_download(&mut st, &m).ok(), Some(3));
    // A chunk damaged in the slot (a torn program) is fetched again, and so is all after it.
    dev.flash.core.mem[LAYOUT.slot(1) as usize + 4096 + 10] ^= 0x01;
    assert_eq!(dev.begin_download(&mut st, &m).ok(), Some(1));
    for k in 1..m.chunk_count() {
        dev.write_chunk(1, &m, k, chunk(k)).expect("written");
    }
    assert_eq!(
        dev.begin_download(&mut st, &m).ok(),
        Some(m.chunk_count()),
        "all in"
    );
    // Another manifest for the same slot starts from scratch.
    let other = manifest::build(&image_for(&key, v(3), 1, "sim", 5 * 4096), 4096, URL, &key)
        .expect("manifest");
    let other = Manifest::parse(&other).expect("parse");
    assert_eq!(dev.begin_download(&mut st, &other).ok(), Some(0));
}

#[test]
fn with_chunks_smaller_than_a_sector_a_download_resumes_at_the_chunk_that_erases_its_sector() {
    let key = keys::generate();
    let mut b = Board::new(&key);
    b.put_slot(0, &image(&key, v(1), 1));
    b.put_record(1, &crate::proof::bench::record(5, 0, 1));
    let mut dev = b.device();
    // 1 KiB chunks, four to a 4 KiB sector; the last chunk is short.
    let v2 = image_for(&key, v(2), 1, "sim", 3 * 4096);
    let raw = manifest::build(&v2, 1024, URL, &key).expect("manifest");
    let m = Manifest::parse(&raw).expect("parse");
    let chunks = m.chunk_count();
    assert_eq!(chunks, 13);
    let mut st = crate::state::load(&mut dev.flash, &LAYOUT)
        .expect("read")
        .expect("record");
    assert_eq!(dev.begin_download(&mut st, &m).ok(), Some(0));
    let chunk = |k: u32| {
        let (s, e) = m.chunk_range(k).expect("chunk");
        &v2[s as usize..e as usize]
    };
    // A chunk that starts a sector erases it; one inside a sector only programs its pages.
    let pages = u64::from(1024 / LAYOUT.page);
    for k in 0..7 {
        let before = dev.flash.core.ops();
        dev.write_chunk(1, &m, k, chunk(k)).expect("written");
        let erases = u64::from(k % 4 == 0);
        assert_eq!(dev.flash.core.ops() - before, erases + pages, "chunk {k}");
    }
    // Chunks 0..7 are intact: the next is 7, the fourth of sector 1, which chunk 4 erased.
    assert_eq!(dev.begin_download(&mut st, &m).ok(), Some(4));
    // A chunk damaged at the start of a sector resumes there; inside one, at its start.
    let slot = LAYOUT.slot(1) as usize;
    dev.flash.core.mem[slot + 4 * 1024 + 10] ^= 0x01;
    assert_eq!(dev.begin_download(&mut st, &m).ok(), Some(4));
    dev.flash.core.mem[slot + 4 * 1024 + 10] ^= 0x01;
    dev.flash.core.mem[slot + 2 * 1024 + 10] ^= 0x01;
    assert_eq!(dev.begin_download(&mut st, &m).ok(), Some(0));
    // Resuming there rewrites the damaged chunk over erased flash: every chunk ends intact.
    for k in 0..chunks {
        dev.write_chunk(1, &m, k, chunk(k)).expect("written");
    }
    assert_eq!(dev.begin_download(&mut st, &m).ok(), Some(chunks), "all in");
    let head = crate::image::ImageHeader::parse(&v2).expect("header");
    assert_eq!(
        dev.verify_staged(&st, &m, v(1)).map(|h| h.version).ok(),
        Some(head.version)
    );
}

#[test]
fn a_manifest_whose_image_hash_disagrees_with_its_chunks_is_refused_at_staging() {
    // Every chunk matches its hash, the image passes its own checks, but the signed manifest
    // says the whole image hashes to something else (a signing-side bug): the device trusts
    // neither alone and refuses to stage.
    let key = keys::generate();
    let v2 = image(&key, v(2), 1);
    let mut raw = manifest::build(&v2, 4096, URL, &key).expect("manifest");
    raw[32] ^= 0x01; // the whole-image SHA-256
    let body = raw.len() - crate::SIGNATURE_LEN;
    let signature = keys::sign(&key, &raw[..body]);
    raw[body..].copy_from_slice(&signature);
    let (r, requests) = offer(&setup_with(&key, v2, raw));
    assert_eq!(r.end, End::Unchanged, "{}", r.detail);
    assert!(requests > 0, "refused after the download");
    assert!(
        has(&r, "verify: failed reason=bad-hash"),
        "{:?}",
        r.console_tail
    );
}
