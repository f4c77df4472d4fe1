//! Board locks: two rig processes never drive one board.
//!
//! A lock is the file `<dir>/<board>.lock`, created exclusively, holding one record line:
//! `otarig-lock pid=<pid> board=<board>`. A lock whose pid is dead is stale and taken over
//! (with a log line); a live one is [`Error::Busy`]. The file is removed when the lock is
//! dropped, if it still holds our record.
//!
//! Nothing else is ever removed: the board name must be a plain file name
//! ([`crate::bench::check_board_name`]), and a file that does not hold a lock record of this
//! board (or the bare pid older rigs wrote) is [`Error::NotALock`], left alone. Taking over
//! a stale lock happens under `flock` on the stale file, after checking that the path still
//! names that very file with the same record: two rigs taking over at once never delete
//! each other's fresh lock.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("board {board} is in use by process {pid} (lock {path})")]
    Busy {
        board: String,
        pid: i32,
        path: PathBuf,
    },
    #[error("board {board:?} cannot have a lock file: {reason}")]
    BadName { board: String, reason: String },
    #[error(
        "{path} is not a lock of board {board} ({found}): leaving it alone; remove it by hand if no rig uses the board"
    )]
    NotALock {
        board: String,
        path: PathBuf,
        /// What is there instead.
        found: String,
    },
    #[error("cannot take the lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A held board lock.
#[derive(Debug)]
pub struct BoardLock {
    path: PathBuf,
    record: String,
}

/// The start of every record line.
const TAG: &str = "otarig-lock";
/// Most of a lock file read (a record is one short line).
const MAX_RECORD: u64 = 256;
/// How often a lock that changes under us is looked at again, and how long a just-created
/// (still empty) lock is waited for.
const TRIES: u32 = 40;
const PAUSE: Duration = Duration::from_millis(25);

fn alive(pid: i32) -> bool {
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// The record this process writes for `board`.
fn record(board: &str) -> String {
    format!("{TAG} pid={} board={board}\n", std::process::id())
}

/// The owner's pid if `text` is a lock record of `board`: this version's record line, or a
/// bare pid (what older rigs wrote). Pids below 1 are no process.
fn owner(text: &str, board: &str) -> Option<i32> {
    let line = text.strip_suffix('\n').unwrap_or(text);
    if line.contains('\n') {
        return None;
    }
    let pid = match line.split(' ').collect::<Vec<_>>()[..] {
        [TAG, pid, name] if name.strip_prefix("board=") == Some(board) => {
            pid.strip_prefix("pid=")?
        }
        [bare] => bare,
        _ => return None,
    };
    if !pid.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok().filter(|&p| p > 0)
}

/// What is at the lock path.
enum Found {
    /// Nothing any more: try creating again.
    Gone,
    /// An empty file: another rig between creating its lock and writing its record.
    Empty,
    Live(i32),
    Stale(std::fs::File, String),
    Foreign(String),
}

/// Reads at most [`MAX_RECORD`] bytes of `file` from its start.
fn read_record(file: &mut std::fs::File) -> std::io::Result<String> {
    use std::io::Seek;
    file.rewind()?;
    let mut bytes = Vec::new();
    Read::take(&mut *file, MAX_RECORD).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn inspect(path: &Path, board: &str) -> std::io::Result<Found> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Gone),
        Err(e) => return Err(e),
    };
    let kind = meta.file_type();
    if !kind.is_file() {
        return Ok(Found::Foreign(
            if kind.is_symlink() {
                "a symbolic link"
            } else if kind.is_dir() {
                "a directory"
            } else {
                "not a regular file"
            }
            .into(),
        ));
    }
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Gone),
        Err(e) => return Err(e),
    };
    let text = read_record(&mut file)?;
    Ok(match owner(&text, board) {
        _ if text.is_empty() => Found::Empty,
        Some(pid) if alive(pid) => Found::Live(pid),
        Some(_) => Found::Stale(file, text),
        None => Found::Foreign(format!(
            "it holds {:?}",
            text.chars().take(80).collect::<String>()
        )),
    })
}

/// Removes the stale lock `file` read from `path`, if the path still names it and it still
/// holds `seen`: under an exclusive `flock`, so that of two rigs taking over one stale lock
/// the second sees the path moved on and removes nothing.
fn take_over(file: std::fs::File, path: &Path, seen: &str) -> std::io::Result<()> {
    use nix::fcntl::{Flock, FlockArg};
    let mut file = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| std::io::Error::from(errno))?;
    let ours = file.metadata()?;
    let same = std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.ino() == ours.ino() && m.dev() == ours.dev());
    if same && read_record(&mut file)? == seen {
        std::fs::remove_file(path)?;
    }
    Ok(())
}

impl BoardLock {
    /// Takes the lock of `board` in `dir`.
    pub fn acquire(dir: &Path, board: &str) -> Result<Self, Error> {
        crate::bench::check_board_name(board).map_err(|reason| Error::BadName {
            board: board.chars().take(80).collect(),
            reason,
        })?;
        let path = dir.join(format!("{board}.lock"));
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let record = record(board);
        let mut empty = false;
        for _ in 0..TRIES {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let lock = Self { path, record };
                    // On failure, dropping `lock` removes the file only if it holds our record.
                    f.write_all(lock.record.as_bytes())
                        .and_then(|()| f.sync_data())
                        .map_err(|source| Error::Io {
                            path: lock.path.clone(),
                            source,
                        })?;
                    return Ok(lock);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    empty = false;
                    match inspect(&path, board).map_err(io)? {
                        Found::Gone => {}
                        Found::Empty => {
                            empty = true;
                            std::thread::sleep(PAUSE);
                        }
                        Found::Live(pid) => {
                            return Err(Error::Busy {
                                board: board.to_string(),
                                pid,
                                path: path.clone(),
                            });
                        }
                        Found::Stale(file, seen) => {
                            tracing::warn!(board, lock = %path.display(), owner = seen.trim(), "taking over a stale board lock");
                            take_over(file, &path, &seen).map_err(io)?;
                        }
                        Found::Foreign(found) => {
                            return Err(Error::NotALock {
                                board: board.to_string(),
                                path: path.clone(),
                                found,
                            });
                        }
                    }
                }
                Err(e) => return Err(io(e)),
            }
        }
        if empty {
            return Err(Error::NotALock {
                board: board.to_string(),
                path,
                found: "it stays empty".into(),
            });
        }
        Err(io(std::io::Error::other("the lock kept changing")))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BoardLock {
    fn drop(&mut self) {
        let mine = std::fs::File::open(&self.path)
            .and_then(|mut f| read_record(&mut f))
            .is_ok_and(|s| s == self.record);
        if mine {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contention_between_processes_and_stale_takeover() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Another live process holds the board.
        let mut other = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .expect("spawn");
        std::fs::write(dir.path().join("pico-1.lock"), format!("{}\n", other.id())).expect("write");
        let err = BoardLock::acquire(dir.path(), "pico-1").expect_err("busy");
        assert!(
            matches!(err, Error::Busy { pid, .. } if pid == other.id() as i32),
            "{err}"
        );
        // It dies: its lock is stale and taken over.
        other.kill().expect("kill");
        other.wait().expect("wait");
        let lock = BoardLock::acquire(dir.path(), "pico-1").expect("stale lock taken over");
        assert_eq!(
            std::fs::read_to_string(lock.path()).expect("read"),
            format!("otarig-lock pid={} board=pico-1\n", std::process::id())
        );
        // Held by us: a second acquire in this live process is busy too.
        assert!(matches!(
            BoardLock::acquire(dir.path(), "pico-1"),
            Err(Error::Busy { .. })
        ));
        drop(lock);
        assert!(!dir.path().join("pico-1.lock").exists(), "released on drop");
    }

    /// A pid that no process has any more.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        child.wait().expect("wait");
        pid
    }

    #[test]
    fn a_board_name_never_leaves_the_lock_directory() {
        let root = tempfile::tempdir().expect("tempdir");
        let locks = root.path().join("locks");
        std::fs::create_dir(&locks).expect("locks");
        // A victim outside the lock directory that a stale-looking record would have exposed.
        let victim = root.path().join("x.lock");
        std::fs::write(&victim, format!("{}\n", dead_pid())).expect("victim");
        for name in ["../x", "../../x", "/tmp/x", ".x", "", "a/b", "x\0"] {
            let e = BoardLock::acquire(&locks, name).expect_err(name);
            assert!(matches!(e, Error::BadName { .. }), "{name}: {e}");
        }
        assert!(
            victim.exists(),
            "nothing outside the lock directory is touched"
        );
        assert_eq!(std::fs::read_dir(&locks).expect("list").count(), 0);
    }

    #[test]
    fn a_file_that_is_not_our_lock_is_never_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dead = dead_pid();
        for (content, why) in [
            (
                "precious data\n".to_string(),
                "it holds \"precious data\\n\"",
            ),
            (
                format!("otarig-lock pid={dead} board=pico-2\n"),
                "board=pico-2",
            ),
            (
                format!("otarig-lock pid={dead} board=pico-1\nmore\n"),
                "more",
            ),
            ("0\n".into(), "it holds \"0\\n\""),
            ("-1\n".into(), "-1"),
            ("+12\n".into(), "+12"),
            ("\u{0}".repeat(10_000), "\\0"),
        ] {
            let path = dir.path().join("pico-1.lock");
            std::fs::write(&path, &content).expect("write");
            let e = BoardLock::acquire(dir.path(), "pico-1").expect_err("not a lock");
            let text = e.to_string();
            assert!(
                matches!(e, Error::NotALock { .. }) && text.contains(why),
                "{content:?}: {text}"
            );
            assert_eq!(std::fs::read_to_string(&path).expect("kept"), content);
        }
        // Not a file at all.
        let path = dir.path().join("pico-1.lock");
        std::fs::remove_file(&path).expect("rm");
        std::fs::create_dir(&path).expect("dir");
        let e = BoardLock::acquire(dir.path(), "pico-1").expect_err("a directory");
        assert!(e.to_string().contains("a directory"), "{e}");
        std::fs::remove_dir(&path).expect("rmdir");
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, format!("{dead}\n")).expect("target");
        std::os::unix::fs::symlink(&target, &path).expect("link");
        let e = BoardLock::acquire(dir.path(), "pico-1").expect_err("a symlink");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(target.exists() && path.exists());
    }

    #[test]
    fn records_are_checked_before_takeover_and_release() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pico-1.lock");
        // Older rigs wrote a bare pid; a dead one is still a stale lock of ours.
        std::fs::write(&path, format!("{}\n", dead_pid())).expect("legacy");
        let lock = BoardLock::acquire(dir.path(), "pico-1").expect("legacy stale lock");
        drop(lock);
        assert!(!path.exists());
        // A lock whose file was replaced behind its back leaves the new file alone on drop.
        let lock = BoardLock::acquire(dir.path(), "pico-1").expect("lock");
        std::fs::write(&path, "someone else's\n").expect("replace");
        drop(lock);
        assert_eq!(
            std::fs::read_to_string(&path).expect("kept"),
            "someone else's\n"
        );
    }

    /// Many takers of one stale lock at once: exactly one gets it, the others find it busy,
    /// and nobody deletes the winner's fresh lock.
    #[test]
    fn concurrent_takeover_of_a_stale_lock_has_one_winner() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("pico-1.lock");
            std::fs::write(
                &path,
                format!("otarig-lock pid={} board=pico-1\n", dead_pid()),
            )
            .expect("stale");
            let barrier = std::sync::Barrier::new(8);
            let results: Vec<Result<BoardLock, Error>> = std::thread::scope(|s| {
                let takers: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            BoardLock::acquire(dir.path(), "pico-1")
                        })
                    })
                    .collect();
                takers
                    .into_iter()
                    .map(|t| t.join().expect("taker"))
                    .collect()
            });
            let won = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(won, 1, "{results:?}");
            assert!(
                results
                    .iter()
                    .all(|r| matches!(r, Ok(_) | Err(Error::Busy { .. }))),
                "{results:?}"
            );
            assert_eq!(
                std::fs::read_to_string(&path).expect("the winner's lock"),
                format!("otarig-lock pid={} board=pico-1\n", std::process::id())
            );
        }
    }
}
