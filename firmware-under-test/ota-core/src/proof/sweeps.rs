//! Sampled power-cut sweeps through the public sweep engine: the update, the failed trial
//! and the rollback, cut at a spread of operations (each phase included), clean and torn.
//! The exhaustive sweep is `rig sweep power-cut` and ota-core's own `sweep` unit tests; this
//! sample keeps the mutation oracle fast while still cutting every phase.

use crate::nor::{Cut, Tear, TearFamily, tears_for};
use crate::sweep::{End, Phase, Script, Setup, clean_run, run_point};

/// Cuts `script` at every `step`-th operation and at the first and last operation of every
/// phase, clean and torn; returns the points tried.
fn sampled(setup: &Setup, script: Script, step: usize) -> usize {
    let (clean, log) = clean_run(setup, script);
    assert_eq!(
        clean.end,
        script.expected(),
        "{}: clean run: {}",
        script.as_str(),
        clean.detail
    );
    let mut picked: Vec<usize> = (0..log.len()).step_by(step).collect();
    for w in log.windows(2).enumerate() {
        let (i, pair) = w;
        if pair[0].phase != pair[1].phase {
            picked.extend([i, i + 1]);
        }
    }
    picked.push(log.len() - 1);
    picked.sort_unstable();
    picked.dedup();
    let mut points = 0;
    for &i in &picked {
        let op = log[i].op;
        // Clean, and the first and last tear shape (a short prefix, bits part-way).
        let shapes = tears_for(&op, &TearFamily::ALL, setup.layout.sector);
        let mut cuts = vec![None];
        cuts.extend(shapes.first().map(|(_, s)| Some(Tear::new(*s))));
        cuts.extend(shapes.last().map(|(_, s)| Some(Tear::new(*s))));
        for torn in cuts {
            points += 1;
            let r = run_point(setup, script, &[Cut { at: op.index, torn }], None);
            assert_eq!(
                r.end,
                script.expected(),
                "{} cut at op {} ({:?}, {}) {torn:?}: {}\n{:?}",
                script.as_str(),
                op.index,
                op.kind,
                log[i].phase.as_str(),
                r.detail,
                r.console_tail
            );
        }
    }
    points
}

#[test]
fn every_phase_of_the_update_survives_sampled_cuts() {
    let setup = Setup::new(4 * 1024, 4096);
    let (_, log) = clean_run(&setup, Script::Update);
    for phase in [
        Phase::Download,
        Phase::SlotWrite,
        Phase::Stage,
        Phase::Trial,
        Phase::Confirm,
    ] {
        assert!(
            log.iter().any(|p| p.phase == phase),
            "{} never cut",
            phase.as_str()
        );
    }
    assert!(sampled(&setup, Script::Update, 7) > 20);
}

#[test]
fn a_failed_trial_survives_sampled_cuts_and_ends_back_on_the_old_image() {
    let setup = Setup::new(4 * 1024, 4096);
    let (_, log) = clean_run(&setup, Script::FailedTrial);
    assert!(
        log.iter().any(|p| p.phase == Phase::Revert),
        "the revert is cut too"
    );
    assert!(sampled(&setup, Script::FailedTrial, 7) > 20);
}

#[test]
fn a_rollback_survives_sampled_cuts() {
    let setup = Setup::new(4 * 1024, 4096);
    let (_, log) = clean_run(&setup, Script::Rollback);
    assert!(
        log.iter().any(|p| p.phase == Phase::Rollback),
        "the rollback is cut too"
    );
    assert!(sampled(&setup, Script::Rollback, 7) > 20);
}

#[test]
fn a_cut_that_loses_power_for_good_is_not_a_pass() {
    // The harness itself: a point cut at an operation past the end of the run is the clean
    // run; the sample above would prove nothing if every point ran clean.
    let setup = Setup::new(4 * 1024, 4096);
    let (clean, _) = clean_run(&setup, Script::Update);
    let late = run_point(
        &setup,
        Script::Update,
        &[Cut {
            at: clean.ops + 10,
            torn: None,
        }],
        None,
    );
    assert_eq!((late.end, late.ops), (End::Updated, clean.ops));
    let early = run_point(&setup, Script::Update, &[Cut { at: 1, torn: None }], None);
    assert!(
        early.ops > clean.ops,
        "a cut costs operations: {} vs {}",
        early.ops,
        clean.ops
    );
}

#[test]
fn an_update_in_chunks_smaller_than_a_sector_installs_and_survives_sampled_cuts() {
    // The manifest format allows chunks down to 256 B; the flash erases 4 KiB sectors. Each
    // sector is erased once, by the chunk holding its first byte (an erase per chunk would wipe
    // the chunks before it in the sector), and a download resumed after a cut goes back to
    // that chunk (bytes a torn write left cannot be programmed over).
    let setup = Setup::new(6 * 1024 + 300, 1024);
    let m = crate::manifest::Manifest::parse(&setup.manifest).expect("manifest");
    assert!(m.chunk_size() < setup.layout.sector && m.chunk_count() > 4);
    assert!(sampled(&setup, Script::Update, 5) > 20);
}
