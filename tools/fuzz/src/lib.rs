//! # otarig-fuzz
//!
//! A bounded, corpus-driven fuzzer for otarig's parsers that runs on stable Rust (cargo-fuzz
//! needs nightly). There is no coverage feedback: each target starts from its committed seeds
//! (`corpus/<target>/`), mutates them (bit flips, byte edits, interesting numbers, dictionary
//! tokens, splices, truncation, repetition, line edits) and keeps mutants the parser accepted
//! for further mutation. Runs are bounded by time and/or executions and are a function of
//! their `--seed`.
//!
//! - [`targets`]: what each target runs and checks.
//! - [`engine`]: the loop, failure capture (panic, broken property, slow input, hang).
//! - [`mutate`]: the mutations.
//! - [`seeds`]: `--seed-corpus`, which writes the committed corpus.

mod dicts;
pub mod engine;
pub mod mutate;
pub mod seeds;
pub mod targets;

use std::path::PathBuf;

/// `tools/fuzz/` in the source tree this binary was built from.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace root (where `scenarios/` is).
pub fn workspace_root() -> PathBuf {
    crate_dir().join("../..")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::engine::{Kind, Options, exec, run};
    use super::targets::{TARGETS, Target, Verdict};

    fn options(execs: u64) -> Options {
        Options {
            seconds: None,
            execs: Some(execs),
            seed: 1,
            // A debug build on a busy machine: only a runaway input counts as slow here.
            timeout: Duration::from_secs(10),
            hang: Duration::from_secs(60),
            corpus: super::crate_dir().join("corpus"),
            crashes: None,
            record: None,
        }
    }

    /// Every target, 200 executions from its committed corpus: no failure (this is what
    /// `cargo test --workspace` runs; `.ci/fuzz.sh` runs the real budget).
    #[test]
    fn every_target_survives_200_execs() {
        let mut failed = Vec::new();
        for target in TARGETS {
            let stats = run(target, &options(200)).expect(target.name);
            assert_eq!(stats.execs, 200, "{}", target.name);
            assert!(stats.seeds > 0, "{}", target.name);
            for f in &stats.failures {
                failed.push(format!(
                    "{}: {} {} (input {})",
                    target.name,
                    f.kind.as_str(),
                    f.message,
                    f.input_hex
                ));
            }
        }
        assert!(failed.is_empty(), "{failed:#?}");
    }

    /// Every committed seed of the text formats a parser should take is accepted, so the
    /// corpus starts the fuzzer from valid inputs (a format change that breaks them shows).
    #[test]
    fn seeds_are_mostly_valid() {
        for target in TARGETS {
            let seeds = super::engine::load_seeds(target, &options(0).corpus).expect("seeds");
            let accepted = seeds
                .iter()
                .filter(|s| exec(target, s) == Ok(Verdict::Accepted))
                .count();
            assert!(
                accepted * 2 >= seeds.len(),
                "{}: only {accepted} of {} seeds accepted",
                target.name,
                seeds.len()
            );
        }
    }

    fn boom(input: &[u8]) -> super::targets::Outcome {
        if input.windows(2).any(|w| w == b"!!") {
            panic!("boom");
        }
        if input.len() > 40 {
            return Err("too long".into());
        }
        Ok(Verdict::Rejected)
    }

    static BOOM: Target = Target {
        name: "boom",
        about: "panics on `!!`",
        text: true,
        max_len: 64,
        dict: &[b"!"],
        run: boom,
        fixup: None,
    };

    /// A panic and a broken property are caught, shrunk, written and counted; the run goes
    /// on to its budget.
    #[test]
    fn failures_are_caught_shrunk_and_written() {
        let dir = std::env::temp_dir().join(format!("otarig-fuzz-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("corpus/boom")).expect("corpus");
        std::fs::write(dir.join("corpus/boom/a"), b"hello ! world").expect("seed");
        let opts = Options {
            corpus: dir.join("corpus"),
            crashes: Some(dir.join("crashes")),
            ..options(3000)
        };
        let stats = run(&BOOM, &opts).expect("run");
        assert_eq!(stats.execs, 3000);
        let panic = stats
            .failures
            .iter()
            .find(|f| f.kind == Kind::Panic)
            .expect("the panic is found");
        assert!(panic.message.contains("boom"), "{}", panic.message);
        assert!(panic.message.contains("lib.rs"), "{}", panic.message);
        assert_eq!(
            panic.input_hex,
            hex::encode(b"!!"),
            "shrunk to the two bytes"
        );
        let file = panic.file.as_ref().expect("written");
        assert_eq!(std::fs::read(file).expect("read"), b"!!");
        assert!(
            stats.failures.iter().any(|f| f.kind == Kind::Property),
            "{:?}",
            stats.failures
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The same seed gives the same run.
    #[test]
    fn runs_are_deterministic() {
        let target = super::targets::find("http-head").expect("target");
        let a = run(target, &options(500)).expect("run");
        let b = run(target, &options(500)).expect("run");
        assert_eq!(a.accepted, b.accepted);
    }
}
