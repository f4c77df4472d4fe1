//! `rig rollout`: runbook drills on a simulated fleet (or, with `--bench`, the bench's boards
//! as the engineering phase).

use super::CliError;
use super::args::RolloutArgs;
use crate::rollout::{self, FleetOptions, runbook};

pub fn rollout(a: &RolloutArgs) -> Result<(), CliError> {
    let mut files = Vec::new();
    for p in &a.runbooks {
        if p.is_dir() {
            let mut found: Vec<_> = std::fs::read_dir(p)
                .map_err(|e| CliError::Usage(format!("{}: {e}", p.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "yaml"))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(CliError::Usage(format!(
                    "{}: no runbook files (*.yaml)",
                    p.display()
                )));
            }
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    let books = files
        .iter()
        .map(|f| runbook::load(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mix = a
        .mix
        .as_deref()
        .map(runbook::parse_mix)
        .transpose()
        .map_err(CliError::Usage)?;
    if let Some(bench) = &a.bench {
        return bench_rollout(&books, bench);
    }
    let devices = a.fleet.ok_or_else(|| {
        CliError::Usage("give --fleet N (simulated devices) or --bench FILE".into())
    })?;
    if devices == 0 || devices > 1_000_000 {
        return Err(CliError::Usage(format!(
            "--fleet {devices}: between 1 and 1000000 devices"
        )));
    }
    let (stamp, _) = super::run::utc_stamp(std::time::SystemTime::now());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Infra(format!("tokio runtime: {e}")))?;
    let mut failed = 0;
    for rb in &books {
        let dir = a.reports.join(format!("{stamp}-rollout-{}", rb.name));
        let opts = FleetOptions {
            devices,
            seed: a.seed,
            mix: mix.clone(),
            concurrency: a.concurrency,
            work_dir: dir.clone(),
        };
        let report = rt
            .block_on(rollout::run_fleet(rb, &opts))
            .map_err(|e| CliError::Infra(format!("{}: {e:#}", rb.file.display())))?;
        let html = rollout::report::write(&report, &dir)
            .map_err(|e| CliError::Infra(format!("cannot write the rollout report: {e}")))?;
        // The images were only needed while the run lasted.
        let _ = std::fs::remove_dir_all(dir.join("images"));
        println!("{}", rollout::report::summary(&report));
        println!("  report: {}", html.display());
        if !report.passed() {
            failed += 1;
        }
    }
    if failed > 0 {
        return Err(CliError::ScenariosFailed { failed });
    }
    Ok(())
}

/// `--bench`: the engineering phase on real boards.
fn bench_rollout(books: &[runbook::Runbook], bench: &std::path::Path) -> Result<(), CliError> {
    let bench = crate::bench::load(bench).map_err(|e| match e {
        crate::bench::Error::Invalid(inner) => CliError::Scenario(inner),
        other => CliError::Usage(other.to_string()),
    })?;
    let _ = books;
    Err(CliError::Usage(format!(
        "rollout --bench: the bench has {} board(s); running a runbook's engineering phase on real boards is not implemented yet (use --fleet)",
        bench.boards.len()
    )))
}
