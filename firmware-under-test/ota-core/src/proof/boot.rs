//! The bootloader against a flash damaged or tampered with while the board was off: bit rot
//! in a slot, an image swapped for one signed by someone else or built for another board, a
//! torn or rewritten state record. Each image check is proven by the one image it refuses:
//! the refusal names the check, the board falls back to the intact previous image, and only
//! with nothing valid left does it brick.

use crate::device::{Error, Quirks};
use crate::image::{HEADER_LEN, ImageHeader};
use crate::keys;
use crate::state::Mode;
use crate::tools::{Corruption, corrupt};

use super::bench::{BODY, Board, LAYOUT, image, image_for, record, v};

/// `(what, tampered v2 image, reason the bootloader must give)` for every image check.
fn tampered(key: &keys::SigningKey) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let untrusted = keys::generate();
    let good = image(key, v(2), 2);
    let too_long = {
        // A validly signed header that claims more than the slot holds.
        let mut h = ImageHeader::parse(&good).expect("header");
        h.body_len = LAYOUT.slot_size - HEADER_LEN as u32 + 1;
        crate::image::resign(&mut h, key);
        let mut img = good.clone();
        img[..HEADER_LEN].copy_from_slice(&h.to_bytes());
        img
    };
    vec![
        (
            "a flipped body bit",
            corrupt(&good, Corruption::Body, key, &untrusted).expect("body"),
            "bad-hash",
        ),
        (
            "a header signed by another key",
            corrupt(&good, Corruption::Signature, key, &untrusted).expect("sig"),
            "bad-signature",
        ),
        (
            "an image for another board",
            image_for(key, v(2), 2, "pico-w", BODY),
            "wrong-board",
        ),
        (
            "a damaged header",
            corrupt(&good, Corruption::Header, key, &untrusted).expect("header"),
            "bad-header",
        ),
        (
            "an entry point outside the body",
            corrupt(&good, Corruption::Entry, key, &untrusted).expect("entry"),
            "missing-entry-point",
        ),
        ("a header longer than the slot", too_long, "too-large"),
        (
            "a counter below the floor",
            image(key, v(2), 1),
            "rollback-counter",
        ),
    ]
}

/// v1 confirmed in slot A, then v2 updated into slot B and confirmed, both with rollback
/// counter 2 (the floor): A is the previous image.
fn updated_board(key: &keys::SigningKey, v2: &[u8]) -> Board {
    let mut b = Board::new(key);
    b.put_slot(0, &image(key, v(1), 2));
    b.put_slot(1, v2);
    let mut st = record(5, 1, 2);
    st.previous = Some(0);
    b.put_record(1, &st);
    b
}

#[test]
fn an_intact_image_boots_as_recorded() {
    let key = keys::generate();
    let mut b = updated_board(&key, &image(&key, v(2), 2));
    let (boot, out) = b.boot();
    let boot = boot.expect("boots");
    assert_eq!((boot.slot, boot.header.version), (1, v(2)));
    assert!(
        out.has("boot: slot=b version=2.0.0 state=confirmed"),
        "{:?}",
        out.0
    );
    // Booting a confirmed image writes nothing.
    assert_eq!(b.record().expect("record").seq, 5);
}

#[test]
fn every_image_check_refuses_a_tampered_active_slot_and_the_previous_image_runs() {
    let key = keys::generate();
    for (what, bad, reason) in tampered(&key) {
        let mut b = updated_board(&key, &bad);
        let (boot, out) = b.boot();
        let boot = boot.unwrap_or_else(|e| panic!("{what}: bricked ({e:?}): {:?}", out.0));
        assert!(
            out.has(&format!("boot: refuse slot=b reason={reason}")),
            "{what}: refused by the wrong check: {:?}",
            out.0
        );
        assert!(
            out.has("boot: revert to=1.0.0 reason=bad-image"),
            "{what}: {:?}",
            out.0
        );
        assert_eq!((boot.slot, boot.header.version), (0, v(1)), "{what}");
        // The revert is persisted: the next boot does not look at the tampered slot again.
        let st = b.record().expect("record");
        assert_eq!(
            (st.active, st.mode, st.previous, st.reverted, st.seq),
            (0, Mode::Confirmed, None, true, 6),
            "{what}"
        );
        assert_eq!(st.last_error.map(|r| r.as_str()), Some(reason), "{what}");
        let (again, out) = b.boot();
        assert_eq!(again.expect("boots again").slot, 0, "{what}");
        assert!(
            !out.0.iter().any(|l| l.contains("refuse")),
            "{what}: {:?}",
            out.0
        );
    }
}

#[test]
fn a_tampered_image_with_no_intact_one_to_go_back_to_bricks_rather_than_runs() {
    let key = keys::generate();
    for (what, bad, reason) in tampered(&key) {
        // Nothing recorded to go back to.
        let mut b = updated_board(&key, &bad);
        let mut st = record(5, 1, 2);
        st.previous = None;
        b.put_record(1, &st);
        let (boot, out) = b.boot();
        assert_eq!(boot.err(), Some(Error::Bricked), "{what}: {:?}", out.0);
        assert!(
            out.has(&format!("boot: refuse slot=b reason={reason}")),
            "{what}: {:?}",
            out.0
        );
        assert!(out.has("boot: FATAL no bootable image"), "{what}");
        // The previous image is damaged too.
        let mut b = updated_board(&key, &image(&key, v(2), 2));
        b.put_slot(0, &bad);
        b.put_slot(1, &bad);
        let (boot, out) = b.boot();
        assert_eq!(boot.err(), Some(Error::Bricked), "{what}: {:?}", out.0);
        assert!(
            out.has(&format!("boot: refuse slot=a reason={reason}")),
            "{what}: {:?}",
            out.0
        );
    }
}

#[test]
fn the_limits_themselves_are_allowed() {
    let key = keys::generate();
    // An image that fills its slot exactly.
    let full = image_for(&key, v(2), 2, "sim", LAYOUT.slot_size as usize - HEADER_LEN);
    assert_eq!(full.len(), LAYOUT.slot_size as usize);
    let mut b = updated_board(&key, &full);
    let (boot, out) = b.boot();
    assert_eq!(boot.map(|b| b.slot).ok(), Some(1), "{:?}", out.0);
    // A counter equal to the floor.
    let mut b = updated_board(&key, &image(&key, v(2), 2));
    let mut st = record(5, 1, 2);
    st.previous = Some(0);
    st.floor = 2;
    b.put_record(0, &st);
    let (boot, out) = b.boot();
    assert_eq!(boot.map(|b| b.slot).ok(), Some(1), "{:?}", out.0);
}

#[test]
fn the_newest_valid_state_record_rules_and_a_damaged_or_older_one_does_not() {
    let key = keys::generate();
    let base = || {
        let mut b = Board::new(&key);
        b.put_slot(0, &image(&key, v(1), 1));
        b.put_slot(1, &image(&key, v(2), 1));
        b
    };
    // Copy 0 says A (seq 4), copy 1 says B (seq 5): B runs.
    let mut b = base();
    b.put_record(0, &record(4, 0, 1));
    b.put_record(1, &record(5, 1, 1));
    assert_eq!(b.boot().0.expect("boots").slot, 1);
    // The same with the newer one in copy 0.
    let mut b = base();
    b.put_record(0, &record(7, 1, 1));
    b.put_record(1, &record(6, 0, 1));
    assert_eq!(b.boot().0.expect("boots").slot, 1);
    // One bit of the newer record rots: its CRC fails and the older record rules.
    for bit in [0u32, 4, 8, 20, 60, 91, 92, 95] {
        let mut b = base();
        b.put_record(0, &record(4, 0, 1));
        b.put_record(1, &record(5, 1, 1));
        b.flip(LAYOUT.state[1] + bit, 0x01);
        let (boot, out) = b.boot();
        assert_eq!(boot.expect("boots").slot, 0, "bit at {bit}: {:?}", out.0);
    }
    // An older valid record written back over the newer one's copy does not outrank a newer
    // one: the sequence number decides, not the copy.
    let mut b = base();
    b.put_record(1, &record(9, 1, 1));
    b.put_record(0, &record(8, 0, 1));
    assert_eq!(b.boot().0.expect("boots").slot, 1);
}

#[test]
fn with_no_valid_record_the_bootloader_rebuilds_one_from_the_best_intact_image() {
    let key = keys::generate();
    let untrusted = keys::generate();
    let v1 = image(&key, v(1), 1);
    let v2 = image(&key, v(2), 3);
    let bad2 = corrupt(&v2, Corruption::Body, &key, &untrusted).expect("corrupt");
    for (a, bslot, want) in [
        (&v1, &v2, Some((1, v(2)))),
        (&v2, &v1, Some((0, v(2)))),
        (&v1, &bad2, Some((0, v(1)))),
        (&bad2, &bad2, None),
    ] {
        let mut b = Board::new(&key);
        b.put_slot(0, a);
        b.put_slot(1, bslot);
        // Both copies damaged: one erased, one torn.
        b.put_record(1, &record(3, 0, 1));
        b.flip(LAYOUT.state[1] + 30, 0x10);
        let (boot, out) = b.boot();
        match want {
            Some((slot, version)) => {
                let boot = boot.unwrap_or_else(|e| panic!("{e:?}: {:?}", out.0));
                assert_eq!(
                    (boot.slot, boot.header.version),
                    (slot, version),
                    "{:?}",
                    out.0
                );
                let st = b.record().expect("a new record is written");
                assert_eq!(
                    (st.active, st.floor),
                    (
                        slot,
                        ImageHeader::parse(if slot == 0 { a } else { bslot })
                            .expect("h")
                            .rollback_counter
                    )
                );
            }
            None => {
                assert_eq!(boot.err(), Some(Error::Bricked));
                assert!(out.has("boot: FATAL no bootable image"));
            }
        }
    }
}

#[test]
fn trial_boots_are_counted_in_flash_and_the_last_allowed_one_still_runs() {
    let key = keys::generate();
    let mut b = Board::new(&key);
    b.put_slot(0, &image(&key, v(1), 1));
    b.put_slot(1, &image(&key, v(2), 1));
    let mut st = record(5, 1, 1);
    st.mode = Mode::Trial;
    st.previous = Some(0);
    b.put_record(1, &st);
    for attempt in 1..=b.max_attempts {
        let (boot, out) = b.boot();
        let boot = boot.expect("boots");
        assert_eq!((boot.slot, boot.state.attempts), (1, attempt));
        assert!(
            out.has(&format!("boot: trial version=2.0.0 attempt={attempt}/3")),
            "{:?}",
            out.0
        );
        assert!(
            out.has("boot: slot=b version=2.0.0 state=trial"),
            "{:?}",
            out.0
        );
        assert_eq!(
            b.record().expect("record").attempts,
            attempt,
            "counted before it runs"
        );
    }
    let (boot, out) = b.boot();
    let boot = boot.expect("reverts");
    assert_eq!(boot.slot, 0);
    assert!(
        out.has("boot: revert to=1.0.0 reason=trial-exhausted"),
        "{:?}",
        out.0
    );
    let st = b.record().expect("record");
    assert_eq!(
        (st.active, st.mode, st.previous),
        (0, Mode::Confirmed, None)
    );
    assert_eq!(
        st.rejected,
        Some(v(2)),
        "the failed release is never installed again"
    );
    assert_eq!(st.last_error.map(|r| r.as_str()), Some("trial-exhausted"));
}

#[test]
fn a_trial_with_nothing_to_go_back_to_keeps_running_past_its_attempts() {
    let key = keys::generate();
    let mut b = Board::new(&key);
    b.put_slot(0, &image(&key, v(1), 1));
    let mut st = record(5, 0, 1);
    st.mode = Mode::Trial;
    st.attempts = 3;
    b.put_record(1, &st);
    let (boot, out) = b.boot();
    assert_eq!(boot.expect("runs").slot, 0, "{:?}", out.0);
}

#[test]
fn without_its_crc_check_a_rotten_record_is_believed() {
    // The quirk's own proof: the CRC check is what refuses the rotten record above.
    let key = keys::generate();
    let mut b = Board::new(&key);
    b.put_slot(0, &image(&key, v(1), 1));
    b.put_slot(1, &image(&key, v(2), 1));
    b.put_record(0, &record(4, 0, 1));
    b.put_record(1, &record(5, 0, 1));
    b.flip(LAYOUT.state[1] + 8, 0x01); // active: A -> B
    b.quirks = Quirks {
        skip_state_crc: true,
        ..Quirks::default()
    };
    assert_eq!(b.boot().0.expect("boots").slot, 1);
    b.quirks = Quirks::default();
    assert_eq!(b.boot().0.expect("boots").slot, 0);
}

#[test]
fn the_app_at_the_entry_point_is_what_the_image_carries() {
    use crate::payload::{self, Drill, PayloadError};
    let key = keys::generate();
    let mut b = Board::new(&key);
    let spec = crate::image::ImageSpec {
        version: v(1),
        rollback_counter: 1,
        board: crate::image::board_kind("sim").expect("kind"),
        load_addr: payload::SIM_LOAD_ADDR,
        entry_offset: 0,
    };
    for drill in [Drill::Hang, Drill::CrashInInit, Drill::None] {
        let img = crate::image::build(&spec, &payload::build(v(1), drill, BODY), &key);
        b.put_slot(0, &img);
        let mut dev = Board {
            flash: std::mem::replace(&mut b.flash, crate::nor::TestFlash::new(0)),
            ..Board::new(&key)
        }
        .device();
        assert_eq!(dev.app(0), Ok(drill));
        assert_eq!(
            dev.app(1),
            Err(PayloadError::NoEntry),
            "an erased slot runs nothing"
        );
        b.flash = dev.flash;
    }
}

#[test]
fn a_factory_reset_copies_the_factory_image_and_nothing_after_it() {
    let key = keys::generate();
    let mut b = Board::new(&key);
    // An image whose length is not a whole number of pages, and bytes after it in the region.
    let factory = crate::proof::bench::image_for(&key, v(1), 1, "sim", BODY + 100);
    b.put(LAYOUT.factory, &factory);
    b.put(LAYOUT.factory + factory.len() as u32, &[0x00; 512]);
    b.put_slot(0, &image(&key, v(2), 2));
    b.put_slot(1, &image(&key, v(3), 3));
    b.put_record(1, &record(5, 1, 3));
    let mut dev = b.device();
    let mut out = crate::proof::bench::Lines::default();
    dev.factory_reset(&mut out).expect("reset");
    assert!(out.has("boot: factory reset version=1.0.0"), "{:?}", out.0);
    let a = LAYOUT.slot(0) as usize;
    let mem = &dev.flash.core.mem;
    assert_eq!(&mem[a..a + factory.len()], factory.as_slice());
    assert!(
        mem[a + factory.len()..a + factory.len() + 512]
            .iter()
            .all(|&x| x == 0xFF),
        "slot A holds the factory image and nothing else"
    );
    let bslot = LAYOUT.slot(1) as usize;
    assert!(
        mem[bslot..bslot + 4096].iter().all(|&x| x == 0xFF),
        "slot B erased"
    );
    let boot = dev.boot(&mut out).expect("boots");
    assert_eq!(
        (boot.slot, boot.header.version, boot.state.floor),
        (0, v(1), 1)
    );
}
