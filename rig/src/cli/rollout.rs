//! `rig rollout`: runbook drills on a simulated fleet (or, with `--bench`, the bench's boards
//! as the engineering phase).

use super::args::RolloutArgs;
use crate::Error;
use crate::rollout::{self, FleetOptions, runbook};

pub fn rollout(a: &RolloutArgs) -> Result<(), Error> {
    let mut files = Vec::new();
    for p in &a.runbooks {
        if p.is_dir() {
            let mut found: Vec<_> = std::fs::read_dir(p)
                .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "yaml"))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(Error::Usage(format!(
                    "{}: no runbook files (*.yaml)",
                    p.display()
                )));
            }
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    let books = match &a.from {
        Some(from) => {
            let [backend, file] = &from[..] else {
                return Err(Error::Usage("--from BACKEND FILE".into()));
            };
            let backend: rollout::import::Backend = backend
                .parse()
                .map_err(|e| Error::Usage(format!("--from: {e}")))?;
            rollout::import::load(backend, std::path::Path::new(file))?
        }
        None => files
            .iter()
            .map(|f| runbook::load(f))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let mix = a
        .mix
        .as_deref()
        .map(runbook::parse_mix)
        .transpose()
        .map_err(Error::Usage)?;
    if let Some(bench) = &a.bench {
        return bench_rollout(&books, bench, &a.reports);
    }
    if let Some(devices) = a.fleet
        && !(1..=runbook::MAX_FLEET).contains(&devices)
    {
        return Err(Error::Usage(format!(
            "--fleet {devices}: between 1 and {} devices",
            runbook::MAX_FLEET
        )));
    }
    // --fleet overrides the runbook's `fleet.devices`; one of them is needed.
    let sizes = books
        .iter()
        .map(|rb| {
            a.fleet.or(rb.fleet.devices).ok_or_else(|| {
                Error::Usage(format!(
                    "{}: give --fleet N (simulated devices), `fleet: {{ devices: N }}` in the runbook, or --bench FILE",
                    rb.file.display()
                ))
            })
        })
        .collect::<Result<Vec<u32>, _>>()?;
    let (stamp, rt) = stamp_and_runtime()?;
    let mut failed = 0;
    for (rb, devices) in books.iter().zip(sizes) {
        let dir = a.reports.join(format!("{stamp}-rollout-{}", rb.name));
        let opts = FleetOptions {
            devices,
            seed: a.seed,
            mix: mix.clone(),
            concurrency: a.concurrency,
            work_dir: dir.clone(),
            transport: a.transport,
        };
        let report = rt.block_on(rollout::run_fleet(rb, &opts))?;
        let html = rollout::report::write(&report, &dir)
            .map_err(|e| Error::infra("cannot write the rollout report", e))?;
        // The images were only needed while the run lasted.
        let _ = std::fs::remove_dir_all(dir.join("images"));
        println!("{}", rollout::report::summary(&report));
        println!("  report: {}", html.display());
        if !report.passed() {
            failed += 1;
        }
    }
    if failed > 0 {
        return Err(Error::ScenariosFailed { failed });
    }
    Ok(())
}

/// `--bench`: each runbook's engineering phase on the bench's boards, in real time.
fn bench_rollout(
    books: &[runbook::Runbook],
    bench_file: &std::path::Path,
    reports: &std::path::Path,
) -> Result<(), Error> {
    let bench = crate::bench::load(bench_file).map_err(|e| match e {
        crate::bench::Error::Invalid(inner) => Error::Scenario(inner),
        other => Error::Usage(other.to_string()),
    })?;
    let exe =
        std::env::current_exe().map_err(|e| Error::infra("cannot find the rig executable", e))?;
    let program = vec![
        exe.into_os_string(),
        std::ffi::OsString::from("__sim-board"),
    ];
    let (stamp, rt) = stamp_and_runtime()?;
    let mut failed = 0;
    for rb in books {
        let dir = reports.join(format!("{stamp}-bench-rollout-{}", rb.name));
        let result = rt.block_on(rollout::bench::run(rb, &bench, program.clone(), &dir))?;
        let json = serde_json::to_vec_pretty(&result)
            .map_err(|e| Error::infra("bench rollout report", e))?;
        crate::report::write_atomic(&dir.join("bench-rollout.json"), &json)
            .map_err(|e| Error::infra_msg(e.to_string()))?;
        let _ = std::fs::remove_dir_all(dir.join("images"));
        println!(
            "runbook {}: engineering phase on {} bench board(s): {} in {:.1}s",
            rb.name,
            result.boards.len(),
            if result.passed {
                "passed"
            } else {
                "did not pass"
            },
            result.seconds
        );
        for b in &result.boards {
            println!(
                "  {:<12} {:<20} version {:<8} {:<10} {}{}",
                b.board,
                b.device,
                b.version,
                b.state,
                if b.updated {
                    "updated"
                } else if b.failed {
                    "failed the release"
                } else {
                    "not updated"
                },
                b.last_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
        }
        if let Some(h) = &result.halted {
            println!("  the server halted the rollout: {h}");
        }
        println!("  report: {}", dir.join("bench-rollout.json").display());
        // A drill that expects the release to complete must pass its engineering phase.
        if rb.expect.outcome == runbook::RolloutOutcome::Completed && !result.passed {
            failed += 1;
        }
    }
    if failed > 0 {
        return Err(Error::ScenariosFailed { failed });
    }
    Ok(())
}

/// The UTC stamp that names this run's report directories, and the runtime it runs on.
fn stamp_and_runtime() -> Result<(String, tokio::runtime::Runtime), Error> {
    let (stamp, _) = super::run::utc_stamp(std::time::SystemTime::now());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::infra("tokio runtime", e))?;
    Ok((stamp, rt))
}
