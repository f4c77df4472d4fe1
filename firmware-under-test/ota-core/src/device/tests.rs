use super::*;

#[test]
fn factory_reset_restores_the_factory_image_and_floor() {
    let setup = crate::sweep::Setup::new(3000, 1024);
    let layout = setup.layout;
    let mut flash = setup.fresh_flash();
    let at = |r: u32| r as usize;
    // Running v2 from slot B; slot A damaged.
    let (b, f) = (at(layout.slot(1)), at(layout.factory));
    flash.core.mem[b..b + setup.v2.len()].copy_from_slice(&setup.v2);
    flash.core.mem[at(layout.slot(0)) + 300] ^= 0xFF;
    let mut st = BootState::factory(1, 1);
    st.seq = 7;
    state::store(&mut flash, &layout, &mut st).expect("state");
    let mut dev = Device::new(flash, setup.config());
    let mut out = Lines(Vec::new());
    // No factory image yet: refused, nothing changes.
    assert_eq!(
        dev.factory_reset(&mut out),
        Err(Error::Refused(Reason::BadHeader))
    );
    assert_eq!(out.0, ["boot: factory reset failed reason=bad-header"]);
    assert_eq!(dev.boot(&mut out).expect("boot").slot, 1);
    // With the factory image: slot A is v1 again, slot B is gone.
    dev.flash.core.mem[f..f + setup.v1.len()].copy_from_slice(&setup.v1);
    out.0.clear();
    dev.factory_reset(&mut out).expect("reset");
    let boot = dev.boot(&mut out).expect("boot");
    assert_eq!((boot.slot, boot.header.version), (0, Version::new(1, 0, 0)));
    assert_eq!((boot.state.floor, boot.state.previous), (1, None));
    let b = at(layout.slot(1));
    assert!(
        dev.flash.core.mem[b..b + at(layout.slot_size)]
            .iter()
            .all(|x| *x == 0xFF),
        "slot B erased"
    );
    assert_eq!(
        out.0,
        [
            "boot: factory reset version=1.0.0",
            "boot: slot=a version=1.0.0 state=confirmed"
        ]
    );
}

/// A response head as a server would send it: status, then `name: value` lines.
fn head(status: u16, fields: &[&str]) -> crate::http::ResponseHead {
    let mut text = format!("HTTP/1.1 {status} X\r\n");
    for f in fields {
        text.push_str(f);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    crate::http::parse_head(text.as_bytes()).expect("well-formed head")
}

#[test]
fn response_checks() {
    let cl = |n: u32| format!("Content-Length: {n}");
    let ok = |start, len, h: &crate::http::ResponseHead| check_response(start, len, 100, h);
    assert_eq!(ok(0, 100, &head(200, &[&cl(100)])), Ok(()));
    let range = |r: &str| format!("Content-Range: {r}");
    assert_eq!(
        ok(0, 100, &head(206, &[&cl(100), &range("bytes 0-99/100")])),
        Ok(())
    );
    assert_eq!(
        ok(50, 50, &head(206, &[&cl(50), &range("bytes 50-99/100")])),
        Ok(())
    );
    assert_eq!(
        ok(50, 50, &head(200, &[&cl(100)])),
        Err(Reason::IgnoredRange)
    );
    for wrong in [
        "bytes 51-100/100",
        "bytes 50-99/101",
        "bytes 50-98/100",
        "bytes */100",
    ] {
        assert_eq!(
            ok(50, 50, &head(206, &[&cl(50), &range(wrong)])),
            Err(Reason::BadContentRange),
            "{wrong}"
        );
    }
    assert_eq!(
        ok(50, 50, &head(206, &[&cl(50)])),
        Err(Reason::BadContentRange),
        "206 without Content-Range"
    );
    for n in [1100, 90, 99, 101] {
        assert_eq!(
            ok(0, 100, &head(200, &[&cl(n)])),
            Err(Reason::BadContentLength),
            "{n}"
        );
    }
    assert_eq!(
        ok(50, 50, &head(206, &[&cl(51), &range("bytes 50-99/100")])),
        Err(Reason::BadContentLength)
    );
    assert_eq!(ok(0, 100, &head(200, &[])), Err(Reason::BadContentLength));
    assert_eq!(ok(0, 100, &head(503, &[&cl(0)])), Err(Reason::Status));
    assert_eq!(ok(0, 100, &head(204, &[])), Err(Reason::Status));
}

/// A board whose running image is damaged and that has no intact previous image: the factory
/// image goes back into slot A and runs; only a factory image the floor forbids bricks it.
#[test]
fn a_damaged_image_with_nothing_before_it_falls_back_to_the_factory_image() {
    let setup = crate::sweep::Setup::new(3000, 1024);
    let layout = setup.layout;
    let at = |r: u32| r as usize;
    let (a, b, f) = (at(layout.slot(0)), at(layout.slot(1)), at(layout.factory));
    let damaged = |previous: Option<u8>, floor: u32| {
        let mut flash = setup.fresh_flash();
        // v2 runs from slot B (damaged), v1 was in slot A (damaged too), v1 is the factory's.
        flash.core.mem[b..b + setup.v2.len()].copy_from_slice(&setup.v2);
        flash.core.mem[b + 400] ^= 0x10;
        flash.core.mem[a + 300] ^= 0x01;
        flash.core.mem[f..f + setup.v1.len()].copy_from_slice(&setup.v1);
        let mut st = BootState::factory(1, floor);
        st.previous = previous;
        st.seq = 5;
        state::store(&mut flash, &layout, &mut st).expect("state");
        Device::new(flash, setup.config())
    };
    for previous in [None, Some(0)] {
        let mut dev = damaged(previous, 1);
        let mut out = Lines(Vec::new());
        let boot = dev.boot(&mut out).expect("the factory image runs");
        assert_eq!((boot.slot, boot.header.version), (0, Version::new(1, 0, 0)));
        assert_eq!(
            &dev.flash.core.mem[a..a + setup.v1.len()],
            &setup.v1[..],
            "slot A holds the factory image again"
        );
        let st = state::load(&mut dev.flash, &layout)
            .expect("read")
            .expect("a record");
        assert_eq!(
            (st.active, st.mode, st.reverted, st.previous, st.floor),
            (0, Mode::Confirmed, true, None, 1),
            "{previous:?}"
        );
        assert_eq!(
            (st.last_error, st.rejected),
            (Some(Reason::BadHash), Some(Version::new(2, 0, 0)))
        );
        let expected: &[&str] = if previous.is_some() {
            &[
                "boot: refuse slot=b reason=bad-hash",
                "boot: refuse slot=a reason=bad-hash",
                "boot: revert to=1.0.0 reason=bad-image",
                "boot: slot=a version=1.0.0 state=confirmed",
            ]
        } else {
            &[
                "boot: refuse slot=b reason=bad-hash",
                "boot: revert to=1.0.0 reason=bad-image",
                "boot: slot=a version=1.0.0 state=confirmed",
            ]
        };
        assert_eq!(out.0, expected, "{previous:?}");
        // And it stays there.
        out.0.clear();
        assert_eq!(dev.boot(&mut out).expect("boot").slot, 0);
        assert_eq!(out.0, ["boot: slot=a version=1.0.0 state=confirmed"]);
    }
    // The factory image is below the anti-rollback floor: nothing may run.
    let mut dev = damaged(None, 2);
    let mut out = Lines(Vec::new());
    assert_eq!(dev.boot(&mut out), Err(Error::Bricked));
    assert_eq!(
        out.0,
        [
            "boot: refuse slot=b reason=bad-hash",
            "boot: FATAL no bootable image"
        ]
    );
}
