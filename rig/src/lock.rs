//! Board locks: two rig processes never drive one board.
//!
//! A lock is the file `<dir>/<board>.lock`, created exclusively, holding the owner's pid. A
//! lock whose pid is dead is stale and taken over (with a log line); a live one is
//! [`Error::Busy`]. The file is removed when the lock is dropped.

use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("board {board} is in use by process {pid} (lock {path})")]
    Busy {
        board: String,
        pid: i32,
        path: PathBuf,
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
}

fn alive(pid: i32) -> bool {
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

impl BoardLock {
    /// Takes the lock of `board` in `dir`.
    pub fn acquire(dir: &Path, board: &str) -> Result<Self, Error> {
        let path = dir.join(format!("{board}.lock"));
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    writeln!(f, "{}", std::process::id()).map_err(io)?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&path).unwrap_or_default();
                    match owner.trim().parse::<i32>() {
                        Ok(pid) if alive(pid) => {
                            return Err(Error::Busy {
                                board: board.to_string(),
                                pid,
                                path: path.clone(),
                            });
                        }
                        _ => {
                            tracing::warn!(board, lock = %path.display(), owner = owner.trim(), "taking over a stale board lock");
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => return Err(io(e)),
            }
        }
        Err(io(std::io::Error::other("the lock kept reappearing")))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BoardLock {
    fn drop(&mut self) {
        let mine = std::fs::read_to_string(&self.path)
            .is_ok_and(|s| s.trim() == std::process::id().to_string());
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
            std::fs::read_to_string(lock.path()).expect("read").trim(),
            std::process::id().to_string()
        );
        // Held by us: a second acquire in this live process is busy too.
        assert!(matches!(
            BoardLock::acquire(dir.path(), "pico-1"),
            Err(Error::Busy { .. })
        ));
        drop(lock);
        assert!(!dir.path().join("pico-1.lock").exists(), "released on drop");
    }
}
