//! `rig check`: validates scenario, runbook and bench files without running anything.

use std::path::{Path, PathBuf};

use super::run::default_paths;
use crate::Error;
use crate::scenario;

/// What kind of YAML file `rig check` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Scenario,
    /// A rollout runbook: in a `runbooks` folder, or with a top-level key only runbooks have.
    Runbook,
    /// A bench config: named `bench*.yaml`.
    Bench,
}

fn file_kind(path: &Path, text: &str) -> FileKind {
    if scenario::is_bench_file(path) {
        return FileKind::Bench;
    }
    let in_runbooks = path
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == "runbooks");
    let runbook_key = text.lines().any(|l| {
        [
            "expect:", "phases:", "fleet:", "halt:", "on_halt:", "success:",
        ]
        .iter()
        .any(|k| l.starts_with(k))
    });
    if in_runbooks || runbook_key {
        FileKind::Runbook
    } else {
        FileKind::Scenario
    }
}

/// Reads and validates one file of any kind; the line `rig check` prints for it.
fn check_file(file: &Path) -> Result<(FileKind, String), String> {
    let text = scenario::read_text(file).map_err(|e| e.to_string())?;
    let kind = file_kind(file, &text);
    let summary = match kind {
        FileKind::Scenario => scenario::parse(&text, file)
            .map(|sc| format!("{}, {} steps", sc.name, sc.steps.len()))
            .map_err(|e| e.to_string())?,
        FileKind::Runbook => crate::rollout::runbook::parse(&text, file)
            .map(|rb| format!("runbook {}, {} phases", rb.name, rb.phases.len()))
            .map_err(|e| e.to_string())?,
        FileKind::Bench => crate::bench::parse(&text, file)
            .map(|b| format!("bench, {} boards", b.boards.len()))
            .map_err(|e| e.to_string())?,
    };
    Ok((kind, summary))
}

/// `rig check`: validate every file (scenarios; runbooks, in a `runbooks` folder or given by
/// name; bench files given by name), print each error as `file:line:col: message`.
pub fn check(paths: &[PathBuf]) -> Result<(), Error> {
    let paths = default_paths(paths);
    let files = scenario::discover(&paths)?;
    let mut bad = 0usize;
    let mut others = 0usize;
    for file in &files {
        match check_file(file) {
            Ok((kind, summary)) => {
                others += usize::from(kind != FileKind::Scenario);
                println!("ok      {} ({summary})", file.display());
            }
            Err(e) => {
                bad += 1;
                eprintln!("{e}");
            }
        }
    }
    if bad > 0 {
        return Err(Error::Usage(format!(
            "{bad} of {} file(s) are invalid; nothing was run",
            files.len()
        )));
    }
    if others == 0 {
        println!("{} scenario file(s) valid", files.len());
    } else {
        println!(
            "{} scenario file(s) valid, and {others} runbook or bench file(s)",
            files.len() - others
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_kinds() {
        let scenario = "about: x\ngiven: { firmware: v1 }\n";
        let runbook = "release: { from: v1, to: v2 }\nexpect: { outcome: completed }\n";
        assert_eq!(
            file_kind(Path::new("s/a.yaml"), scenario),
            FileKind::Scenario
        );
        assert_eq!(file_kind(Path::new("s/a.yaml"), runbook), FileKind::Runbook);
        assert_eq!(
            file_kind(Path::new("s/runbooks/a.yaml"), scenario),
            FileKind::Runbook
        );
        assert_eq!(
            file_kind(Path::new("s/bench.x.yaml"), scenario),
            FileKind::Bench
        );
    }
}
