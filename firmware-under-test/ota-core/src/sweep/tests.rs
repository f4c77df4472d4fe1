use super::*;
use crate::nor::{Tear, TearFamily, tears_for};

/// Every cut of `script`'s clean run: clean, and torn in every shape of `families` (with
/// unstable bits if asked). Returns the points tried and those that ended off the script.
fn sweep(
    setup: &Setup,
    script: Script,
    families: &[TearFamily],
    unstable: bool,
) -> (usize, Vec<(u64, String, End, String)>) {
    let (clean, log) = clean_run(setup, script);
    assert_eq!(clean.end, script.expected(), "clean run: {}", clean.detail);
    let mut bad = Vec::new();
    let mut points = 0;
    for p in &log {
        let mut cuts = vec![None];
        for (_, shape) in tears_for(&p.op, families, setup.layout.sector) {
            cuts.push(Some(Tear { shape, unstable }));
        }
        for torn in cuts {
            points += 1;
            let at = p.op.index;
            let r = run_point(setup, script, &[Cut { at, torn }], None);
            if r.end != script.expected() {
                let how = torn.map_or("clean".into(), |t| t.to_string());
                bad.push((at, how, r.end, r.detail));
            }
        }
    }
    (points, bad)
}

/// A sim image of `body` bytes.
fn image(key: &SigningKey, version: Version, counter: u32, body: usize) -> Vec<u8> {
    let spec = ImageSpec {
        version,
        rollback_counter: counter,
        board: board_kind("sim").unwrap_or([0; 16]),
        load_addr: payload::SIM_LOAD_ADDR,
        entry_offset: 0,
    };
    crate::image::build(&spec, &payload::build(version, Drill::None, body), key)
}

#[test]
fn every_cut_of_every_path_survives_clean_and_torn_in_every_shape() {
    let setup = Setup::new(8 * 1024, 4096);
    let mut points = 0;
    for script in [Script::Update, Script::FailedTrial, Script::Rollback] {
        let (n, bad) = sweep(&setup, script, &TearFamily::ALL, false);
        points += n;
        assert!(bad.is_empty(), "{}: {bad:?}", script.as_str());
    }
    println!("in-memory sweep: {points} cut points, 0 bricked");
    assert!(points > 600, "{points}");
}

#[test]
fn unstable_bits_in_every_tear_are_survived() {
    let setup = Setup::new(4 * 1024, 4096);
    let (n, bad) = sweep(&setup, Script::Update, &TearFamily::ALL, true);
    assert!(bad.is_empty(), "{bad:?}");
    assert!(n > 100, "{n}");
}

#[test]
fn a_torn_state_record_is_caught_without_its_crc_check() {
    let mut setup = Setup::new(4 * 1024, 4096);
    let (n, bad) = sweep(&setup, Script::Update, &[TearFamily::Words], false);
    assert!(bad.is_empty(), "the correct firmware survives: {bad:?}");
    setup.quirks.skip_state_crc = true;
    let (m, bad) = sweep(&setup, Script::Update, &[TearFamily::Words], false);
    assert_eq!(n, m);
    assert!(
        bad.iter()
            .any(|(_, _, e, _)| matches!(e, End::Bricked | End::InvariantBroken)),
        "the torn sweep must catch a firmware that trusts a torn record: {bad:?}"
    );
    assert!(
        bad.iter().all(|(_, how, _, _)| how.starts_with("prefix:")),
        "only torn records, never clean cuts: {bad:?}"
    );
    println!(
        "skip-state-crc: {} of {m} points caught, e.g. {:?}",
        bad.len(),
        bad[0]
    );
    // The old tear model (half a page) never tore the 96-byte record: it missed this.
    let (_, half) = sweep(&setup, Script::Update, &[TearFamily::Half], false);
    assert!(half.is_empty(), "{half:?}");
}

#[test]
fn refusals_and_no_ops_end_unchanged_at_every_cut() {
    let key = crate::keys::generate();
    let untrusted = crate::keys::generate();
    let body = 4 * 1024;
    let v = |major| Version::new(major, 0, 0);
    let good = image(&key, v(2), 1, body);
    let cases = [
        (
            "corrupt body",
            image(&key, v(1), 1, body),
            crate::tools::corrupt(&good, crate::tools::Corruption::Body, &key, &untrusted)
                .expect("corrupt"),
            Script::Refused,
        ),
        (
            "counter below the floor",
            image(&key, v(2), 2, body),
            image(&key, v(3), 1, body),
            Script::Refused,
        ),
        (
            "same version",
            image(&key, v(1), 1, body),
            image(&key, v(1), 1, body),
            Script::NoOp,
        ),
        (
            "rollback with nothing to go back to",
            image(&key, v(1), 1, body),
            good.clone(),
            Script::RollbackRefused,
        ),
        (
            "every copy damaged in transit",
            image(&key, v(1), 1, body),
            good.clone(),
            Script::Refused,
        ),
    ];
    for (what, v1, v2, script) in cases {
        let mut setup = Setup::with_images(key.clone(), v1, v2, 4096);
        if what.contains("transit") {
            setup.faults.corrupt = Some((1000, 8));
        }
        let (clean, log) = clean_run(&setup, script);
        assert_eq!(clean.end, End::Unchanged, "{what}: {}", clean.detail);
        let (n, bad) = sweep(&setup, script, &TearFamily::ALL, false);
        assert!(bad.is_empty(), "{what}: {bad:?}");
        if script == Script::Refused {
            assert!(n > 0 && !log.is_empty(), "{what}: the refusal is recorded");
        } else {
            assert!(log.is_empty(), "{what}: a no-op writes nothing: {log:?}");
        }
        // Offered as if it were a good update, the device still refuses it: the device,
        // not the server, decides.
        if script == Script::Refused && setup.faults.corrupt.is_none() {
            let up = run_point(&setup, Script::Update, &[], None);
            assert_eq!(up.end, End::Unchanged, "{what}: never offered when refused");
        }
    }
}

#[test]
fn nested_cuts_during_recovery_survive() {
    let setup = Setup::new(8 * 1024, 4096);
    let (_, log) = clean_run(&setup, Script::Update);
    let torn = Some(Tear::HALF);
    let mut tried = 0;
    for p in log.iter().step_by(3) {
        let first = run_point(
            &setup,
            Script::Update,
            &[Cut {
                at: p.op.index,
                torn,
            }],
            None,
        );
        for j in [1u64, 3, 7, 20] {
            let second = p.op.index + j;
            if second >= first.ops {
                continue;
            }
            let r = run_point(
                &setup,
                Script::Update,
                &[
                    Cut {
                        at: p.op.index,
                        torn,
                    },
                    Cut { at: second, torn },
                ],
                None,
            );
            tried += 1;
            assert_eq!(
                r.end,
                End::Updated,
                "cuts at {} and {second}: {}",
                p.op.index,
                r.detail
            );
        }
    }
    assert!(tried > 20, "{tried}");
}

#[test]
fn a_broken_ordering_is_caught_as_bricked() {
    let mut setup = Setup::new(8 * 1024, 4096);
    setup.quirks.state_before_data = true;
    let (_, log) = clean_run(&setup, Script::Update);
    let bricked = log
        .iter()
        .filter(|p| {
            run_point(
                &setup,
                Script::Update,
                &[Cut {
                    at: p.op.index,
                    torn: None,
                }],
                None,
            )
            .end == End::Bricked
        })
        .count();
    assert!(
        bricked > 0,
        "the sweep must catch the state-before-data ordering"
    );
}
