//! Reports: independent writers over the same [`RunReport`]. A new format is a new module
//! here and touches no runner code.
//!
//! `write_all` creates `reports/<run id>/` with `report.json`, `junit.xml`, `report.html` and
//! `logs/`, every file written to a temporary name, synced and renamed, then repoints
//! `reports/latest` the same way: a killed run never leaves a half-written report.

pub mod html;
pub mod json;
pub mod junit;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::timeline::EventKind;
use crate::verdict::RunReport;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_atomic_with(path, |w| w.write_all(bytes).map_err(io(path)))
}

/// Like [`write_atomic`], streaming: `fill` writes the content (no whole copy in memory).
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> Result<(), Error>,
) -> Result<(), Error> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    let mut w = std::io::BufWriter::new(file);
    let result = fill(&mut w)
        .and_then(|()| {
            w.into_inner().map_err(|e| Error::Io {
                path: tmp.clone(),
                source: e.into_error(),
            })
        })
        .and_then(|f| f.sync_all().map_err(io(&tmp)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// One line of text for an event (logs, failure messages).
pub fn event_text(kind: &EventKind) -> String {
    match kind {
        EventKind::Power { on, detail } => {
            format!("[power] {} {detail}", if *on { "ON " } else { "OFF" })
        }
        EventKind::Console { line } => format!("[console] {line}"),
        EventKind::Http {
            method,
            path,
            range,
            status,
            bytes_sent,
            fault,
            ..
        } => format!(
            "[http] {method} {path}{} -> {status}, {bytes_sent} bytes{}",
            range
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            fault
                .as_deref()
                .map(|f| format!(", fault {f}"))
                .unwrap_or_default()
        ),
        EventKind::Flash {
            op,
            kind,
            addr,
            len,
        } => format!("[flash] #{op} {kind} 0x{addr:08x} {len}"),
        EventKind::Probe { detail } => format!("[probe] {detail}"),
        EventKind::Rig { detail } => format!("[rig] {detail}"),
    }
}

/// A file-name-safe version of a scenario name.
pub fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes every report of `report` under `root/<run id>/`, repoints `root/latest`, and returns
/// the run directory.
pub fn write_all(report: &mut RunReport, root: &Path) -> Result<PathBuf, Error> {
    let dir = root.join(&report.run_id);
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(io(&logs))?;
    // Raw logs per scenario attempt (their paths go into the report).
    for sc in &mut report.scenarios {
        let repeat = sc.attempts.len() > 1;
        for a in &mut sc.attempts {
            let stem = if repeat {
                format!("{}-{}", file_stem(&sc.name), a.index)
            } else {
                file_stem(&sc.name)
            };
            let mut console = String::new();
            let mut http = String::new();
            let mut flash = String::new();
            let mut all = String::new();
            for e in &a.events {
                let t = e.t.as_secs_f64();
                let line = format!("{t:10.4} {}\n", event_text(&e.kind));
                all.push_str(&line);
                match &e.kind {
                    EventKind::Console { line } => console.push_str(&format!("{t:10.4} {line}\n")),
                    EventKind::Http { .. } => http.push_str(&line),
                    EventKind::Flash { .. } => flash.push_str(&line),
                    _ => {}
                }
            }
            a.logs.clear();
            for (ext, text) in [
                ("timeline", all),
                ("console", console),
                ("http", http),
                ("flash", flash),
            ] {
                let rel = PathBuf::from("logs").join(format!("{stem}.{ext}.log"));
                write_atomic(&dir.join(&rel), text.as_bytes())?;
                a.logs.push(rel);
            }
        }
    }
    write_atomic_with(&dir.join("report.json"), |w| json::write(report, w))?;
    write_atomic(&dir.join("junit.xml"), &junit::render(report)?)?;
    write_atomic(&dir.join("report.html"), html::render(report).as_bytes())?;
    point_latest(root, &report.run_id)?;
    Ok(dir)
}

/// Atomically repoints `root/latest` at `run_id` (a relative symlink).
fn point_latest(root: &Path, run_id: &str) -> Result<(), Error> {
    let latest = root.join("latest");
    let tmp = root.join(format!(".latest.tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    #[cfg(unix)]
    std::os::unix::fs::symlink(run_id, &tmp).map_err(io(&tmp))?;
    #[cfg(not(unix))]
    std::fs::write(&tmp, run_id).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &latest).map_err(io(&latest))
}

#[cfg(test)]
pub(crate) mod sample;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_everything_atomically_and_repoints_latest() {
        let root = tempfile::tempdir().expect("tempdir");
        let mut report = sample::report();
        let dir = write_all(&mut report, root.path()).expect("write");
        for f in [
            "report.json",
            "junit.xml",
            "report.html",
            "logs/happy-path.console.log",
        ] {
            assert!(dir.join(f).is_file(), "{f}");
        }
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .expect("dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
        let first = std::fs::read_link(root.path().join("latest")).expect("latest");
        assert_eq!(first, PathBuf::from(&report.run_id));
        report.run_id = "second-run".into();
        write_all(&mut report, root.path()).expect("write again");
        let second = std::fs::read_link(root.path().join("latest")).expect("latest");
        assert_eq!(second, PathBuf::from("second-run"));
        assert!(root.path().join("latest/junit.xml").is_file());
    }
}
