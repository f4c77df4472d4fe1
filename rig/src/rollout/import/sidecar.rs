//! The sidecar of an imported definition, `NAME.rig.yaml` next to `NAME.json`: what the
//! backend's JSON does not say. The fleet, the images, the release manager's part and one or
//! more drills, each a release and what its rehearsal must show:
//!
//! ```yaml
//! about: The fleet-wide rollout of 2.0 as hawkBit runs it.
//! fleet: { devices: 2000, checkin_interval: 1h, mix: { bad-wifi: 10%, rev-b: 5% } }
//! images: { v2-rev-b-crash: { version: 2.0.0, drill: crash-on-rev-b } }
//! success: { updated: 95% }       # completed: every wave open and this share of targets updated
//! on_halt: { kill_switch: true }
//! drills:
//!   - { name: good, release: { from: v1, to: v2 }, expect: { outcome: completed } }
//!   - { name: bad, release: { from: v1, to: v2-rev-b-crash }, expect: { outcome: halted } }
//! ```
//!
//! `halt:` is allowed for Mender only (the release manager's abort: Mender has no failure
//! threshold); hawkBit's and AWS's halts come from their definitions. `phases:` is never
//! allowed: the waves are the definition's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Backend, Imported, Plan};
use crate::rollout::error::Result;
use crate::rollout::runbook::{
    Expect, FleetDef, HaltDef, OnHalt, Percent, Phase, Runbook, Success, TimedEvent,
};
use crate::scenario::values;
use crate::scenario::{Dur, Error, FaultRule, ImageDef};

/// `NAME.json` → `NAME.rig.yaml`.
pub fn path_for(definition: &Path) -> PathBuf {
    definition.with_extension("rig.yaml")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSidecar {
    #[serde(default, deserialize_with = "values::opt_text")]
    about: Option<String>,
    #[serde(default)]
    images: BTreeMap<String, ImageDef>,
    #[serde(default)]
    success: Option<Completion>,
    #[serde(default)]
    halt: Option<Spanned<HaltDef>>,
    #[serde(default)]
    on_halt: OnHalt,
    #[serde(default)]
    fleet: Option<Spanned<FleetDef>>,
    #[serde(default)]
    events: Vec<TimedEvent>,
    #[serde(default)]
    faults: Vec<FaultRule>,
    drills: Spanned<Vec<Spanned<RawDrill>>>,
}

/// When an imported rollout counts as completed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Completion {
    updated: Percent,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrill {
    #[serde(deserialize_with = "values::text")]
    name: String,
    release: RawRelease,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelease {
    from: String,
    to: String,
}

/// Reads the sidecar at `path` for `imported`: one runbook per drill.
pub fn load(path: &Path, imported: &Imported) -> Result<Vec<Runbook>> {
    let text = crate::scenario::read_text(path)?;
    Ok(parse(&text, path, imported)?)
}

pub fn parse(text: &str, path: &Path, imported: &Imported) -> Result<Vec<Runbook>, Error> {
    let raw: RawSidecar =
        serde_saphyr::from_str(text).map_err(|e| crate::scenario::yaml_error(&e, text, path))?;
    let invalid = |loc, message: String| Error::at(path, text, loc, &message);
    let mut imported = imported.clone();
    let halt = match (&raw.halt, imported.backend) {
        (Some(h), Backend::Mender) => {
            if let Plan::Mender(p) = &mut imported.plan {
                p.abort = Some(fake_server::HaltPolicy {
                    error_rate: h.value.error_rate.0,
                    min_sample: h.value.min_sample,
                    max_rollbacks: h.value.rollbacks,
                });
            }
            h.value.clone()
        }
        (Some(h), b) => {
            return Err(invalid(
                h.referenced,
                format!(
                    "halt: a {} definition decides its own halts ({}); only a Mender sidecar has a release manager's halt",
                    b.as_str(),
                    if b == Backend::Hawkbit {
                        "errorCondition"
                    } else {
                        "abortConfig"
                    }
                ),
            ));
        }
        (None, _) => HaltDef::default(),
    };
    let (fleet, fleet_at) = raw.fleet.map_or(
        (FleetDef::default(), serde_saphyr::Location::UNKNOWN),
        |f| (f.value, f.referenced),
    );
    crate::rollout::runbook::check_fleet(&fleet).map_err(|m| invalid(fleet_at, m))?;
    let mut images = crate::scenario::default_catalogue();
    images.extend(raw.images);
    let phases: Vec<Phase> = imported
        .waves
        .iter()
        .map(|w| Phase {
            name: w.name.clone(),
            percent: None,
            devices: None,
            soak: Dur(std::time::Duration::ZERO),
        })
        .collect();
    if raw.drills.value.is_empty() {
        return Err(invalid(
            raw.drills.referenced,
            "drills: at least one drill".into(),
        ));
    }
    let mut out: Vec<Runbook> = Vec::new();
    for d in raw.drills.value {
        let loc = d.referenced;
        let d = d.value;
        for (field, name) in [("from", &d.release.from), ("to", &d.release.to)] {
            if !images.contains_key(name) {
                return Err(invalid(
                    loc,
                    format!(
                        "drill `{}`: release.{field}: unknown image `{name}` (known: {})",
                        d.name,
                        images.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        if images[&d.release.to].version.0 <= images[&d.release.from].version.0 {
            return Err(invalid(
                loc,
                format!(
                    "drill `{}`: release.to is not newer than release.from",
                    d.name
                ),
            ));
        }
        for name in &d.expect.halted_in {
            if !phases.iter().any(|p| &p.name == name) {
                return Err(invalid(
                    loc,
                    format!(
                        "drill `{}`: expect.halted_in: no wave named `{name}` (waves: {})",
                        d.name,
                        phases
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        let name = format!("{}-{}", imported.backend.as_str(), d.name);
        if out.iter().any(|r| r.name == name) {
            return Err(invalid(loc, format!("drills: `{}` comes twice", d.name)));
        }
        out.push(Runbook {
            name,
            about: raw.about.clone().unwrap_or_default(),
            file: imported.file.clone(),
            from: d.release.from,
            to: d.release.to,
            images: images.clone(),
            phases: phases.clone(),
            success: Success {
                updated: raw.success.as_ref().map_or(Percent(0.95), |c| c.updated),
                ..Success::default()
            },
            halt: halt.clone(),
            on_halt: raw.on_halt.clone(),
            fleet: fleet.clone(),
            events: raw.events.clone(),
            faults: raw.faults.clone(),
            expect: d.expect,
            imported: Some(imported.clone()),
        });
    }
    Ok(out)
}
