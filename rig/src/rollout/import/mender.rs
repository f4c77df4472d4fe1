//! Mender: the management API's deployment body (`POST /api/management/v1/deployments/
//! deployments`, Mender 3.x, phased deployments): `phases[] { batch_size, start_ts }`,
//! `retries`, `max_devices`. A phase's devices are `batch_size` percent of the deployment's
//! devices (the last phase takes the rest) and start at its `start_ts`. Mender never stops a
//! deployment because devices fail: a drill's halt is the release manager's abort, from the
//! sidecar's `halt:`.

use std::path::Path;

use fake_server::policy::{Batch, BatchesConfig};
use fake_server::{HaltPolicy, PolicyConfig};

use super::json::{Node, Obj, error};
use super::targets::FleetDevice;
use super::{Built, Imported, Term, Wave, assignment};
use crate::rollout::error::Result;

pub const API: &str = "Mender Management API v1, POST /api/management/v1/deployments/deployments (Mender 3.x, phased deployments)";

#[derive(Debug, Clone)]
pub struct Plan {
    /// Device ids (`devices`), or every device (`all_devices`).
    pub devices: Option<Vec<(String, String)>>,
    /// (batch_size, start offset in ms, path).
    pub phases: Vec<(Option<u8>, u64, String)>,
    pub max_devices: Option<u32>,
    pub retries: u32,
    /// The release manager's abort (sidecar `halt:`), set by the sidecar.
    pub abort: Option<HaltPolicy>,
}

/// `2026-11-30T08:00:00Z`, `2020-07-06T15:04:49.114+0000`, `...+01:00`: milliseconds since
/// the Unix epoch.
pub fn timestamp(n: &Node<'_>) -> Result<i64> {
    let s = n.str()?;
    let bad = || {
        n.error(format!(
            "`{s}` is not an RFC 3339 timestamp (e.g. 2026-11-30T08:00:00Z)"
        ))
    };
    let (date, rest) = s.split_once('T').ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    let [y, m, day] = d[..] else {
        return Err(bad());
    };
    let tz_at = rest.find(['Z', '+', '-']).ok_or_else(bad)?;
    let (time, tz) = rest.split_at(tz_at);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let t: Vec<i64> = hms
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    let [hh, mm, ss] = t[..] else {
        return Err(bad());
    };
    let ms: i64 = if frac.is_empty() {
        0
    } else {
        format!("{:0<3}", &frac[..frac.len().min(3)])
            .parse()
            .map_err(|_| bad())?
    };
    let offset_min = match tz {
        "Z" => 0,
        _ => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            let digits: String = tz[1..].chars().filter(char::is_ascii_digit).collect();
            if digits.len() != 4 {
                return Err(bad());
            }
            let h: i64 = digits[..2].parse().map_err(|_| bad())?;
            let m: i64 = digits[2..].parse().map_err(|_| bad())?;
            sign * (h * 60 + m)
        }
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return Err(bad());
    }
    // Days from the civil date (proleptic Gregorian).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 86_400 + hh * 3600 + mm * 60 + ss) - offset_min * 60) * 1000 + ms)
}

pub fn parse(root: &Obj<'_>) -> Result<Imported> {
    let name = root.req("name")?.str()?.to_string();
    // The artifact is the release of the sidecar's drills.
    root.req("artifact_name")?.str()?;
    let devices = match (root.opt("devices"), root.opt("all_devices")) {
        (Some(list), None) => {
            let mut ids = Vec::new();
            for d in list.array()? {
                ids.push((d.str()?.to_string(), d.path.clone()));
            }
            if ids.is_empty() {
                return Err(list.error("at least one device"));
            }
            Some(ids)
        }
        (None, Some(all)) if all.bool()? => None,
        (None, Some(all)) => return Err(all.error("all_devices: false needs a devices list")),
        (Some(d), Some(_)) => return Err(d.error("give devices or all_devices, not both")),
        (None, None) => {
            return Err(root.error("devices", "missing: give devices or all_devices: true"));
        }
    };
    root.refuse(
        "filter_id",
        "dynamic (filter) deployments are the v2 API; give devices or all_devices",
    )?;
    root.refuse("group", "give the group's devices (devices) or all_devices")?;
    root.refuse(
        "update_control_map",
        "update control maps (pausing at install states) are not rehearsed",
    )?;
    root.refuse("autogenerate_delta", "delta artifacts are not rehearsed")?;
    root.refuse(
        "force_installation",
        "the simulated devices never hold an artifact already",
    )?;
    let retries = match root.opt("retries") {
        Some(r) => r.u64()?.min(u64::from(u32::MAX)) as u32,
        None => 0,
    };
    let max_devices = match root.opt("max_devices") {
        Some(m) => {
            let v = m.u64()?;
            if v == 0 {
                return Err(m.error("max_devices is at least 1"));
            }
            Some(v.min(u64::from(u32::MAX)) as u32)
        }
        None => None,
    };
    let list = match root.opt("phases") {
        Some(l) => l.array()?,
        None => Vec::new(),
    };
    let count = list.len();
    let mut sum = 0u64;
    let mut raw: Vec<(Option<u8>, Option<i64>, String)> = Vec::new();
    for (i, p) in list.iter().enumerate() {
        let o = p.obj()?;
        let batch = match o.opt("batch_size") {
            Some(b) => {
                let v = b.u64()?;
                if !(1..=100).contains(&v) {
                    return Err(b.error("batch_size is a percentage, 1..100"));
                }
                sum += v;
                Some(v as u8)
            }
            None if i + 1 == count => None,
            None => {
                return Err(o.error(
                    "batch_size",
                    "missing: only the last phase may leave it out (it takes the rest)",
                ));
            }
        };
        let ts = match o.opt("start_ts") {
            Some(t) => Some(timestamp(&t)?),
            None if i == 0 => None,
            None => {
                return Err(o.error(
                    "start_ts",
                    "missing: only the first phase may leave it out (it starts at once)",
                ));
            }
        };
        o.finish("a deployment phase")?;
        if let (Some(t), Some((_, Some(prev), _))) = (ts, raw.last())
            && t < *prev
        {
            return Err(p.error("start_ts is before the previous phase's"));
        }
        raw.push((batch, ts, p.path.clone()));
    }
    if sum > 100 || (raw.last().is_some_and(|p| p.0.is_some()) && sum != 100) {
        return Err(root.error(
            "phases",
            format!("the batch sizes add up to {sum}%: they must make 100% (or leave the last phase's out)"),
        ));
    }
    let origin = raw.first().and_then(|p| p.1);
    if origin.is_none() && raw.len() > 1 {
        // Mender starts such a first phase "now"; the drill measures the later phases'
        // start times from the first one's.
        return Err(root.error(
            "phases",
            "the first phase needs a start_ts when later phases follow (their start times are measured from it)",
        ));
    }
    let mut phases: Vec<(Option<u8>, u64, String)> = raw
        .into_iter()
        .map(|(b, ts, path)| {
            let at = match (ts, origin) {
                (Some(t), Some(o)) => u64::try_from(t - o).unwrap_or(0),
                _ => 0,
            };
            (b, at, path)
        })
        .collect();
    if phases.is_empty() {
        phases.push((None, 0, root.field_path("phases")));
    }
    let waves = phases
        .iter()
        .enumerate()
        .map(|(i, (b, at, _))| Wave {
            name: format!("phase {}", i + 1),
            terms: format!(
                "batch_size {}, starts at +{:.1} h",
                b.map_or_else(|| "rest".to_string(), |b| format!("{b}%")),
                *at as f64 / 3_600_000.0
            ),
        })
        .collect();
    let last_start = phases.last().map_or(0, |p| p.1);
    let terms = vec![
        Term {
            theirs: "phases[] batch_size (% of the deployment's devices), start_ts".into(),
            ours: "rollout phases of fixed devices that open at their start time on the server's clock".into(),
        },
        Term {
            theirs: "retries".into(),
            ours: "a device that failed is offered the artifact again that many times before it counts as failed".into(),
        },
        Term {
            theirs: "max_devices".into(),
            ours: "no more devices than this are offered the release".into(),
        },
        Term {
            theirs: "(no failure threshold: Mender deployments never stop by themselves)".into(),
            ours: "the sidecar's halt: is the release manager aborting the deployment (PUT .../deployments/{id}/status aborted)".into(),
        },
    ];
    Ok(Imported {
        backend: super::Backend::Mender,
        file: root.file().to_path_buf(),
        name,
        waves,
        terms,
        horizon_ms: last_start + 24 * 3_600_000,
        plan: super::Plan::Mender(Plan {
            devices,
            phases,
            max_devices,
            retries,
            abort: None,
        }),
    })
}

impl Plan {
    pub fn build(&self, file: &Path, fleet: &[FleetDevice]) -> Result<Built> {
        let targets: Vec<&FleetDevice> = match &self.devices {
            None => fleet.iter().collect(),
            Some(ids) => {
                let mut out = Vec::new();
                for (id, path) in ids {
                    let d = fleet.iter().find(|d| &d.id == id).ok_or_else(|| {
                        error(
                            file,
                            path,
                            format!(
                                "device `{id}` is not in this fleet of {} (fleet-00000..)",
                                fleet.len()
                            ),
                        )
                    })?;
                    out.push(d);
                }
                out
            }
        };
        let total = targets.len();
        let mut waves: Vec<Vec<&FleetDevice>> = Vec::new();
        let mut from = 0;
        for (i, (batch, _, _)) in self.phases.iter().enumerate() {
            let size = match batch {
                Some(b) if i + 1 < self.phases.len() => total * usize::from(*b) / 100,
                _ => total - from,
            };
            let size = size.min(total - from);
            waves.push(targets[from..from + size].to_vec());
            from += size;
        }
        let sizes = waves.iter().map(|w| w.len() as u32).collect();
        Ok(Built {
            policy: PolicyConfig::MenderBatches(BatchesConfig {
                batches: self
                    .phases
                    .iter()
                    .enumerate()
                    .map(|(i, (b, at, _))| Batch {
                        name: format!("phase {}", i + 1),
                        start_us: at * 1000,
                        batch_size: b.unwrap_or(0),
                    })
                    .collect(),
                assignment: assignment(&waves),
                max_devices: self.max_devices,
                retries: self.retries,
                abort: self.abort.clone(),
            }),
            sizes,
            targeted: total as u32,
        })
    }
}
