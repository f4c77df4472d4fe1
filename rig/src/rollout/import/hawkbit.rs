//! hawkBit: the management API's rollout body (`POST /rest/v1/rollouts`), hawkBit 0.5.x.
//!
//! Targets are split into groups when the rollout is created (`amountGroups` equal groups, or
//! `groups[]` each taking `targetPercentage` of the remaining targets that match its filter);
//! the first group starts at once, each next one when the running group's `successCondition`
//! (THRESHOLD: % of its targets finished) is met (`successAction: NEXTGROUP`); a group whose
//! `errorCondition` (THRESHOLD: % of its targets in error) is met pauses the rollout
//! (`errorAction: PAUSE`).

use std::path::Path;

use fake_server::PolicyConfig;
use fake_server::policy::{Group, GroupsConfig};

use super::json::{Node, Obj, error};
use super::targets::{FleetDevice, LABELS, Select, known_label};
use super::{Built, Imported, Term, Wave, assignment, pct};
use crate::rollout::error::Result;

pub const API: &str = "hawkBit Management API v1, POST /rest/v1/rollouts (hawkBit 0.5.x)";

/// Simulated time one group may take before an unfinished rollout counts as stalled.
const PER_GROUP_MS: u64 = 12 * 3_600_000;

#[derive(Debug, Clone)]
pub struct GroupDef {
    pub name: String,
    pub filter: Option<Select>,
    /// `targetPercentage` (0..=100] of the remaining matching targets.
    pub percent: f64,
    pub success: f64,
    pub error: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub filter: Select,
    /// Explicit groups, or `amountGroups` equal ones.
    pub groups: Result<Vec<GroupDef>, (u64, f64, Option<f64>)>,
    pub groups_path: String,
}

/// `successCondition` / `errorCondition`: THRESHOLD and its percentage.
fn condition(n: &Node<'_>) -> Result<f64> {
    let o = n.obj()?;
    let c = o.req("condition")?;
    if c.str()? != "THRESHOLD" {
        return Err(c.error(format!("`{}`: hawkBit knows only THRESHOLD", c.str()?)));
    }
    let e = o.req("expression")?;
    let pct: f64 = e
        .str()?
        .trim()
        .parse()
        .ok()
        .filter(|p: &f64| (0.0..=100.0).contains(p))
        .ok_or_else(|| e.error("THRESHOLD expects a percentage 0..100 as a string, e.g. \"80\""))?;
    o.finish("a condition")?;
    Ok(pct / 100.0)
}

/// `successAction` / `errorAction`: the one action each can take.
fn action(n: &Node<'_>, want: &str) -> Result<()> {
    let o = n.obj()?;
    let a = o.req("action")?;
    if a.str()? != want {
        return Err(a.error(format!(
            "`{}` cannot be honoured: the rehearsal supports {want} here",
            a.str()?
        )));
    }
    if let Some(e) = o.opt("expression")
        && !e.str()?.is_empty()
    {
        return Err(e.error("an action expression cannot be honoured (leave it empty)"));
    }
    o.finish("an action")
}

/// The conditions of a group or the rollout: (success, error), each defaulting to `base`.
fn conditions(o: &Obj<'_>, base: (f64, Option<f64>)) -> Result<(f64, Option<f64>)> {
    let mut success = base.0;
    let mut error = base.1;
    if let Some(n) = o.opt("successCondition") {
        success = condition(&n)?;
    }
    if let Some(n) = o.opt("successAction") {
        action(&n, "NEXTGROUP")?;
    }
    if let Some(n) = o.opt("errorCondition") {
        error = Some(condition(&n)?);
    }
    if let Some(n) = o.opt("errorAction") {
        action(&n, "PAUSE")?;
        if error.is_none() {
            return Err(n.error("an errorAction without an errorCondition never fires"));
        }
    }
    Ok((success, error))
}

/// A target filter query (FIQL, the subset that maps onto the fleet): `;` AND, `,` OR,
/// clauses `name==GLOB`, `controllerId==GLOB`, `tag==LABEL`, `attribute.hw_revision==a|b`, each
/// also with `!=`.
pub fn filter(n: &Node<'_>) -> Result<Select> {
    let q = n.str()?.trim();
    if q.is_empty() {
        return Err(n.error("an empty query selects nothing; write name==* for every target"));
    }
    if q.contains(['(', ')']) {
        return Err(
            n.error("parentheses cannot be honoured: write the query as ORs (,) of ANDs (;)")
        );
    }
    let mut ors = Vec::new();
    for or in q.split(',') {
        let mut ands = Vec::new();
        for clause in or.split(';') {
            let clause = clause.trim();
            let (field, value, equal) = if let Some((f, v)) = clause.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = clause.split_once("==") {
                (f, v, true)
            } else {
                return Err(n.error(format!(
                    "`{clause}`: only == and != comparisons map onto the fleet"
                )));
            };
            let value = value.trim().trim_matches(['"', '\'']);
            let s = match field.trim() {
                "name" | "controllerId" | "id" => Select::Id {
                    glob: value.to_string(),
                    equal,
                },
                "tag" if known_label(value) => Select::Label {
                    label: value.to_string(),
                    equal,
                },
                "tag" => {
                    return Err(n.error(format!(
                        "`{clause}`: the fleet has no tag `{value}` (tags: {LABELS})"
                    )));
                }
                "attribute.hw_revision" | "attribute.hwRevision" if matches!(value, "a" | "b") => {
                    Select::HwRev {
                        rev: value.chars().next().unwrap_or('a'),
                        equal,
                    }
                }
                other => {
                    return Err(n.error(format!(
                        "`{clause}`: field `{other}` does not map onto the simulated fleet (name, controllerId, tag, attribute.hw_revision = a|b)"
                    )));
                }
            };
            ands.push(s);
        }
        ors.push(if ands.len() == 1 {
            ands.remove(0)
        } else {
            Select::And(ands)
        });
    }
    Ok(if ors.len() == 1 {
        ors.remove(0)
    } else {
        Select::Or(ors)
    })
}

pub fn parse(root: &Obj<'_>) -> Result<Imported> {
    let name = root.req("name")?.str()?.to_string();
    if let Some(d) = root.opt("description") {
        d.str()?;
    }
    // The distribution set is the release of the sidecar's drills.
    root.req("distributionSetId")?.u64()?;
    let selection = filter(&root.req("targetFilterQuery")?)?;
    if let Some(t) = root.opt("type") {
        match t.str()? {
            "forced" | "soft" => {}
            other => {
                return Err(t.error(format!(
                    "`{other}` cannot be honoured: simulated devices install when offered (forced or soft)"
                )));
            }
        }
    }
    root.refuse(
        "forcetime",
        "the simulated devices have no time-forced installs",
    )?;
    root.refuse("startAt", "the drill starts the rollout at once")?;
    if let Some(w) = root.opt("weight") {
        w.u64()?;
    }
    if let Some(c) = root.opt("confirmationRequired")
        && c.bool()?
    {
        return Err(c.error(
            "cannot be honoured: simulated devices cannot confirm an action (user consent flow)",
        ));
    }
    if let Some(d) = root.opt("dynamic")
        && d.bool()?
    {
        return Err(d.error("cannot be honoured: dynamic rollouts (experimental in hawkBit 0.5) add targets that join later; the simulated fleet never grows"));
    }
    root.refuse("dynamicGroupTemplate", "dynamic rollouts are not rehearsed")?;
    let base = conditions(root, (1.0, None))?;
    let groups_path = root.field_path("groups");
    let groups = match (root.opt("amountGroups"), root.opt("groups")) {
        (Some(n), None) => {
            let k = n.u64()?;
            if !(1..=255).contains(&k) {
                return Err(n.error("between 1 and 255 groups"));
            }
            Err((k, base.0, base.1))
        }
        (None, Some(list)) => {
            let mut out = Vec::new();
            for g in list.array()? {
                let o = g.obj()?;
                let gname = o.req("name")?.str()?.to_string();
                if let Some(d) = o.opt("description") {
                    d.str()?;
                }
                let gfilter = o.opt("targetFilterQuery").map(|n| filter(&n)).transpose()?;
                let percent = match o.opt("targetPercentage") {
                    Some(p) => {
                        let v = p.f64()?;
                        if !(v > 0.0 && v <= 100.0) {
                            return Err(p.error("targetPercentage must be in (0, 100]"));
                        }
                        v
                    }
                    None => 100.0,
                };
                if let Some(c) = o.opt("confirmationRequired")
                    && c.bool()?
                {
                    return Err(
                        c.error("cannot be honoured: simulated devices cannot confirm an action")
                    );
                }
                let (success, error) = conditions(&o, base)?;
                o.finish("a rollout group")?;
                out.push(GroupDef {
                    name: gname,
                    filter: gfilter,
                    percent,
                    success,
                    error,
                });
            }
            if out.is_empty() || out.len() > 255 {
                return Err(error(root.file(), &groups_path, "1 to 255 groups"));
            }
            Ok(out)
        }
        (Some(n), Some(_)) => return Err(n.error("give amountGroups or groups, not both")),
        (None, None) => return Err(root.error("groups", "missing: give amountGroups or groups")),
    };
    let (waves, count) = match &groups {
        Ok(list) => (
            list.iter()
                .map(|g| Wave {
                    name: g.name.clone(),
                    terms: group_terms(g.percent, g.success, g.error),
                })
                .collect::<Vec<_>>(),
            list.len() as u64,
        ),
        Err((k, s, e)) => (
            (1..=*k)
                .map(|i| Wave {
                    name: format!("group-{i}"),
                    terms: group_terms(100.0 / (*k - i + 1) as f64, *s, *e),
                })
                .collect(),
            *k,
        ),
    };
    let terms = vec![
        Term {
            theirs: "rollout groups (targets split when the rollout is created)".into(),
            ours: "rollout phases; a device's group is fixed before the first check-in".into(),
        },
        Term {
            theirs: "successCondition THRESHOLD N -> successAction NEXTGROUP".into(),
            ours: "the server starts the next phase once N% of the running group updated (confirmed on the release); no soak time, no release manager".into(),
        },
        Term {
            theirs: "errorCondition THRESHOLD N -> errorAction PAUSE".into(),
            ours: "the server halts (pauses) the rollout once N% of a group's targets failed: reverted (FAILED), refused the release (REJECTED) or timed out".into(),
        },
        Term {
            theirs: "targetFilterQuery".into(),
            ours: "a selection of the simulated fleet by id glob, tag (device mix label) or hardware revision".into(),
        },
    ];
    Ok(Imported {
        backend: super::Backend::Hawkbit,
        file: root.file().to_path_buf(),
        name,
        waves,
        terms,
        horizon_ms: count * PER_GROUP_MS,
        plan: super::Plan::Hawkbit(Plan {
            filter: selection,
            groups,
            groups_path,
        }),
    })
}

fn group_terms(percent: f64, success: f64, error: Option<f64>) -> String {
    format!(
        "targetPercentage {percent}, successCondition THRESHOLD {} -> NEXTGROUP{}",
        pct(success),
        error.map_or_else(
            || ", no errorCondition".to_string(),
            |e| format!(", errorCondition THRESHOLD {} -> PAUSE", pct(e))
        )
    )
}

impl Plan {
    pub fn build(&self, file: &Path, fleet: &[FleetDevice]) -> Result<Built> {
        let mut remaining: Vec<&FleetDevice> =
            fleet.iter().filter(|d| self.filter.matches(d)).collect();
        let targeted = remaining.len() as u32;
        let mut waves: Vec<Vec<&FleetDevice>> = Vec::new();
        let mut groups = Vec::new();
        match &self.groups {
            Err((k, success, error)) => {
                let k = *k as usize;
                let total = remaining.len();
                let mut from = 0;
                for i in 0..k {
                    let size = total / k + usize::from(i < total % k);
                    waves.push(remaining[from..from + size].to_vec());
                    from += size;
                    groups.push(Group {
                        name: format!("group-{}", i + 1),
                        size: size as u32,
                        success_threshold: *success,
                        error_threshold: *error,
                    });
                }
                remaining.clear();
            }
            Ok(defs) => {
                for g in defs {
                    let (matching, rest): (Vec<&FleetDevice>, Vec<&FleetDevice>) = remaining
                        .iter()
                        .partition(|d| g.filter.as_ref().is_none_or(|f| f.matches(d)));
                    let take = ((matching.len() as f64) * g.percent / 100.0).ceil() as usize;
                    let take = take.min(matching.len());
                    let mut left = matching[take..].to_vec();
                    left.extend(rest);
                    left.sort_by(|a, b| a.id.cmp(&b.id));
                    groups.push(Group {
                        name: g.name.clone(),
                        size: take as u32,
                        success_threshold: g.success,
                        error_threshold: g.error,
                    });
                    waves.push(matching[..take].to_vec());
                    remaining = left;
                }
            }
        }
        if !remaining.is_empty() {
            return Err(error(
                file,
                &self.groups_path,
                format!(
                    "the groups leave {} of {targeted} targets of this fleet in no group (hawkBit refuses such a rollout: end with a group of targetPercentage 100 and no filter), e.g. {}",
                    remaining.len(),
                    remaining[0].id
                ),
            ));
        }
        let sizes = groups.iter().map(|g| g.size).collect();
        Ok(Built {
            policy: PolicyConfig::HawkbitGroups(GroupsConfig {
                groups,
                assignment: assignment(&waves),
            }),
            sizes,
            targeted,
        })
    }
}
