//! What can stop a rollout drill before it has a report.

use std::path::PathBuf;

/// A rollout drill that could not run. [`Error::is_bad_input`] tells a definition the rig
/// refuses (exit 2) from a failure of the rig, the server or a board (exit 3).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A runbook or sidecar file that does not parse or holds a value that makes no sense.
    #[error(transparent)]
    Runbook(#[from] crate::scenario::Error),
    /// An imported backend definition with a field the rig cannot honour, or a wrong value:
    /// `FILE: $.json.path: message`.
    #[error("{}: {path}: {message}", file.display())]
    Import {
        file: PathBuf,
        /// JSON path of the field, e.g. `$.groups[1].successAction.action`.
        path: String,
        message: String,
    },
    /// An imported definition that is not JSON: `FILE:LINE:COL: message`.
    #[error("{}:{line}:{column}: not valid JSON: {message}", file.display())]
    Json {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A bench board the rollout cannot use.
    #[error("board `{board}`: {why}")]
    Board { board: String, why: String },
    #[error("building the drill's images")]
    Images(#[from] crate::images::Error),
    #[error("provisioning the fleet's factory flash: {0}")]
    Provision(String),
    #[error("the update server")]
    Server(#[from] fake_server::Error),
    #[error("bench board `{board}`: cannot power it on")]
    Power {
        board: String,
        #[source]
        source: crate::board::power::Error,
    },
    /// `--transport in-process` with a fault rule only a socket can play.
    #[error("runbook `{runbook}`: --transport in-process: {source} (or --transport auto)")]
    Transport {
        runbook: String,
        #[source]
        source: fake_server::Error,
    },
    /// A thread or runtime of the drill could not start or died.
    #[error("{what}: {detail}")]
    Runtime { what: &'static str, detail: String },
}

impl Error {
    /// A definition, sidecar or bench file the user can fix (exit 2); everything else is the
    /// rig's, the server's or a board's failure (exit 3).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::Runbook(_)
                | Self::Import { .. }
                | Self::Json { .. }
                | Self::Board { .. }
                | Self::Transport { .. }
        )
    }

    pub(crate) fn runtime(what: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Runtime {
            what,
            detail: detail.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
