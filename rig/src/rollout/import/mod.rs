//! `rig rollout --from hawkbit|aws-iot-job|mender FILE.json`: a backend's own rollout
//! definition, translated into the same in-memory [`Runbook`] a YAML runbook becomes, with the
//! backend's semantics kept: the fake-server plays the backend's rollout policy
//! ([`fake_server::policy`]) instead of otarig's phases. Every field an importer cannot honour
//! is an error naming its JSON path; nothing is dropped silently.
//!
//! What the JSON does not say (which images, the fleet, what the drill must show) comes from
//! a sidecar next to it, `NAME.rig.yaml` (see [`sidecar`]), which can hold several drills of
//! the same definition (a good release that completes, a bad one the threshold stops).

mod aws;
mod hawkbit;
pub mod json;
mod mender;
pub mod sidecar;
mod targets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fake_server::PolicyConfig;
use serde::Serialize;

pub use targets::{FleetDevice, Select};

use super::error::{Error, Result};
use super::runbook::Runbook;

/// The backends a definition can come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    Hawkbit,
    AwsIotJob,
    Mender,
}

impl Backend {
    pub const ALL: [Self; 3] = [Self::Hawkbit, Self::AwsIotJob, Self::Mender];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hawkbit => "hawkbit",
            Self::AwsIotJob => "aws-iot-job",
            Self::Mender => "mender",
        }
    }

    /// The API (and version) the importer follows.
    pub fn api(self) -> &'static str {
        match self {
            Self::Hawkbit => hawkbit::API,
            Self::AwsIotJob => aws::API,
            Self::Mender => mender::API,
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown backend `{s}` (known: {})",
                    Self::ALL.map(Self::as_str).join(", ")
                )
            })
    }
}

/// One of the backend's terms and what the rig does for it.
#[derive(Debug, Clone, Serialize)]
pub struct Term {
    /// In the backend's words (`errorCondition THRESHOLD 20 -> PAUSE`).
    pub theirs: String,
    /// What the rehearsal does.
    pub ours: String,
}

/// One wave of the imported rollout (hawkBit group, Mender phase, the AWS job).
#[derive(Debug, Clone, Serialize)]
pub struct Wave {
    pub name: String,
    /// Its settings in the backend's words.
    pub terms: String,
}

/// The server policy for one fleet, and what the report needs about it.
#[derive(Debug, Clone)]
pub struct Built {
    pub policy: PolicyConfig,
    /// Devices per wave.
    pub sizes: Vec<u32>,
    /// Devices the rollout targets.
    pub targeted: u32,
}

/// How the server policy is built for a fleet.
#[derive(Debug, Clone)]
pub(crate) enum Plan {
    Hawkbit(hawkbit::Plan),
    Aws(aws::Plan),
    Mender(mender::Plan),
}

/// An imported definition, as a runbook carries it.
#[derive(Debug, Clone)]
pub struct Imported {
    pub backend: Backend,
    pub file: PathBuf,
    /// The definition's own name (rollout name, jobId, deployment name).
    pub name: String,
    pub waves: Vec<Wave>,
    pub terms: Vec<Term>,
    /// Simulated time after which a rollout that has not completed is stalled.
    pub horizon_ms: u64,
    pub(crate) plan: Plan,
}

impl Imported {
    /// The server policy for `fleet` (the device mix decides filter matches). A selection that
    /// cannot be built (a named device not in the fleet, groups that leave targets out) is an
    /// error naming the JSON path.
    pub fn build(&self, fleet: &[FleetDevice]) -> Result<Built> {
        match &self.plan {
            Plan::Hawkbit(p) => p.build(&self.file, fleet),
            Plan::Aws(p) => p.build(&self.file, fleet),
            Plan::Mender(p) => p.build(&self.file, fleet),
        }
    }
}

/// Reads a definition and its sidecar (`NAME.rig.yaml` beside it): one runbook per drill.
pub fn load(backend: Backend, file: &Path) -> Result<Vec<Runbook>> {
    let text = std::fs::read_to_string(file).map_err(|source| Error::Read {
        path: file.to_path_buf(),
        source,
    })?;
    let imported = parse(backend, &text, file)?;
    let side = sidecar::path_for(file);
    sidecar::load(&side, &imported)
}

/// Translates a definition's JSON text.
pub fn parse(backend: Backend, text: &str, file: &Path) -> Result<Imported> {
    let value = json::parse(text, file)?;
    let root = json::Obj::root(file, &value)?;
    let imported = match backend {
        Backend::Hawkbit => hawkbit::parse(&root)?,
        Backend::AwsIotJob => aws::parse(&root)?,
        Backend::Mender => mender::parse(&root)?,
    };
    root.finish(backend.api())?;
    Ok(imported)
}

/// Device → wave, in device order, as the policies take it.
pub(crate) fn assignment(waves: &[Vec<&FleetDevice>]) -> BTreeMap<String, u8> {
    let mut out = BTreeMap::new();
    for (w, devices) in waves.iter().enumerate() {
        for d in devices {
            out.insert(d.id.clone(), w as u8);
        }
    }
    out
}

/// `0.2` → `20%`.
pub(crate) fn pct(share: f64) -> String {
    format!("{}%", (share * 1000.0).round() / 10.0)
}

#[cfg(test)]
mod tests;
