//! The one error type of the `rig` commands, and the exit code each error means.
//!
//! Library layers keep their own `thiserror` types (a scenario file problem, a bench file
//! problem, a probe failure…); a command wraps them here with `#[from]`, sources kept, and
//! [`Error::exit_code`] alone decides how the process ends:
//! 0 all passed, 101 a scenario failed, 2 usage or configuration error, 3 infrastructure
//! error, 130 interrupted (SIGINT/SIGTERM).

/// Exit codes (documented for CI consumers).
pub mod exit {
    pub const OK: u8 = 0;
    /// A scenario failed (libtest convention).
    pub const SCENARIO_FAILED: u8 = 101;
    /// Bad arguments or configuration (scenario files, bench files, runbooks).
    pub const USAGE: u8 = 2;
    /// The rig, a port, a relay, a probe or the server failed.
    pub const INFRA: u8 = 3;
    /// Stopped by SIGINT or SIGTERM (128 + 2, the shell's convention).
    pub const INTERRUPTED: u8 = 130;
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that ends a `rig` command early.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments or a bad combination of them.
    #[error("{0}")]
    Usage(String),
    /// A scenario (or bench, or runbook) file problem, located.
    #[error(transparent)]
    Scenario(#[from] crate::scenario::Error),
    /// A bench file that cannot be used.
    #[error(transparent)]
    Bench(#[from] crate::bench::Error),
    /// A rollout drill that could not run (a bad definition, or the rig, server or a board
    /// failing).
    #[error(transparent)]
    Rollout(#[from] crate::rollout::Error),
    /// Scenarios ran and some failed (the report says which).
    #[error("{failed} scenario(s) failed")]
    ScenariosFailed { failed: usize },
    /// The rig, a port, a relay, a probe or the server failed: what it was doing, and why.
    #[error("infrastructure error: {context}")]
    Infra {
        context: String,
        #[source]
        source: Option<Source>,
    },
    /// SIGINT or SIGTERM.
    #[error("interrupted by {signal}")]
    Interrupted { signal: &'static str },
}

impl Error {
    /// An infrastructure failure with its cause kept as the source.
    pub fn infra(context: impl Into<String>, source: impl Into<Source>) -> Self {
        Self::Infra {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// An infrastructure failure described in full by `context`.
    pub fn infra_msg(context: impl Into<String>) -> Self {
        Self::Infra {
            context: context.into(),
            source: None,
        }
    }

    /// The process exit code this error means.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Scenario(_) | Self::Bench(_) => exit::USAGE,
            Self::ScenariosFailed { .. } => exit::SCENARIO_FAILED,
            Self::Rollout(e) if e.is_bad_input() => exit::USAGE,
            Self::Infra { .. } | Self::Rollout(_) => exit::INFRA,
            Self::Interrupted { .. } => exit::INTERRUPTED,
        }
    }

    /// The error and every cause under it, one per line (`caused by: ...`).
    pub fn chain(&self) -> String {
        let mut out = format!("error: {self}");
        let mut source = std::error::Error::source(self);
        // A transparent wrapper's source is the error already printed: skip repeats.
        let mut last = self.to_string();
        while let Some(s) = source {
            let text = s.to_string();
            if text != last {
                out.push_str("\n  caused by: ");
                out.push_str(&text);
            }
            last = text;
            source = s.source();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_has_its_exit_code() {
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
        assert_eq!(Error::ScenariosFailed { failed: 1 }.exit_code(), 101);
        assert_eq!(Error::infra_msg("x").exit_code(), 3);
        assert_eq!(Error::Interrupted { signal: "SIGINT" }.exit_code(), 130);
        let located =
            crate::scenario::parse("nope: [", std::path::Path::new("s.yaml")).expect_err("invalid");
        assert_eq!(Error::from(located).exit_code(), 2);
        let board = crate::rollout::Error::Board {
            board: "b".into(),
            why: "no relay".into(),
        };
        assert_eq!(Error::from(board).exit_code(), 2);
        let runtime = crate::rollout::Error::Runtime {
            what: "fleet",
            detail: "gone".into(),
        };
        assert_eq!(Error::from(runtime).exit_code(), 3);
    }

    #[test]
    fn the_chain_names_every_cause_once() {
        let io = std::io::Error::other("disk full");
        let e = Error::infra("cannot write the report", io);
        assert_eq!(
            e.chain(),
            "error: infrastructure error: cannot write the report\n  caused by: disk full"
        );
        let usage = Error::Usage("--fleet 0: between 1 and 100000 devices".into());
        assert_eq!(usage.chain().lines().count(), 1);
    }
}
