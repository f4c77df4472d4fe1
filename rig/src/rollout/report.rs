//! The rollout report: per phase, devices offered / updated / failed / rolled back / silent;
//! when and why the halt fired and how far the release got; time to full rollout; the server's
//! fault rules and what each did; a chart of the fleet over time. Written as `rollout.json` and
//! a self-contained `rollout.html`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use fake_server::faults::{FaultRule, RuleCounts};

use super::PhaseVerdict;
use super::runbook::RolloutOutcome;
use crate::report::html::esc;

#[derive(Debug, Clone, Serialize)]
pub struct RolloutReport {
    pub runbook: String,
    pub file: String,
    pub release: String,
    pub from: String,
    pub devices: u32,
    pub seed: u64,
    /// Devices per trouble (`good` for none).
    pub mix: BTreeMap<String, u32>,
    pub outcome: RolloutOutcome,
    pub expected: RolloutOutcome,
    /// An imported definition (`--from`): its backend, API and terms next to ours.
    pub backend: Option<BackendReport>,
    pub halt: Option<HaltReport>,
    pub phases: Vec<PhaseReport>,
    /// Simulated hours from the first offer until the last phase passed.
    pub time_to_full_h: Option<f64>,
    pub simulated_h: f64,
    pub bricked: u32,
    /// Devices that failed the release (server telemetry, every phase).
    pub failed: u32,
    /// Devices confirmed on the release at the end (server telemetry).
    pub updated_final: u32,
    /// Devices the release was never offered to (never reached: offline, out of the phases).
    pub never_reached: u32,
    pub power_cuts: u32,
    /// Devices whose bootloader reverted a failed trial by itself.
    pub reverted: u32,
    pub forced_rollbacks: u32,
    /// Device wake-ups simulated.
    pub wakes: u64,
    /// The runbook's fault rules as the server ran them, with what each did.
    pub faults: Vec<FaultReport>,
    pub samples: Vec<Sample>,
    pub checks: Vec<Check>,
    pub wall_s: f64,
    pub peak_rss_mib: Option<f64>,
    /// How the fleet reached the server: `tcp` or `in-process`.
    pub transport: super::FleetTransport,
    /// Flash the devices own beyond the shared factory image, in MiB.
    pub flash_mib: f64,
    /// Distinct written sectors shared between devices (content-addressed), in MiB.
    pub shared_flash_mib: f64,
}

/// The backend an imported definition came from, in its own words.
#[derive(Debug, Clone, Serialize)]
pub struct BackendReport {
    pub backend: super::import::Backend,
    /// The API (and version) the importer follows.
    pub api: String,
    /// The definition file.
    pub definition: String,
    /// The definition's own name (rollout, jobId, deployment).
    pub name: String,
    /// The backend's terms and what the rehearsal does for each.
    pub terms: Vec<super::import::Term>,
    /// The server policy at the end, in the backend's words.
    pub status: String,
    /// Devices the definition targets in this fleet.
    pub targeted: u32,
}

impl RolloutReport {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// One fault rule of the drill's server and what it did over the whole drill.
#[derive(Debug, Clone, Serialize)]
pub struct FaultReport {
    /// The rule, in the fault-rule format (`faults:` of a scenario or runbook).
    pub rule: FaultRule,
    /// One line, e.g. `GET /v1/images/*: status=503 retry_after=1, 20% of each device's
    /// requests (seed 0)`.
    pub summary: String,
    /// Requests matched, picked by the schedule (applied), and faults that took effect.
    #[serde(flatten)]
    pub counts: RuleCounts,
}

#[derive(Debug, Clone, Serialize)]
pub struct HaltReport {
    pub phase: String,
    pub at_h: f64,
    pub reason: String,
    pub failed: u32,
    pub offered_in_phase: u32,
    /// Devices offered the release before the halt (every phase).
    pub reached: u32,
    /// Devices that ran it (booted it, even if only to crash).
    pub ran_release: u32,
    pub kill_switch: bool,
    pub rollback_queued: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub name: String,
    pub percent: Option<u8>,
    pub devices: Option<u32>,
    pub started_h: Option<f64>,
    pub ended_h: Option<f64>,
    pub offered: u32,
    pub updated: u32,
    pub failed: u32,
    pub rolled_back: u32,
    /// Of the failed, those that refused the release (AWS: REJECTED).
    pub rejected: u32,
    /// Offered devices that neither updated nor failed within the in-progress timeout (AWS:
    /// TIMED_OUT).
    pub timed_out: u32,
    /// The wave's settings in the backend's words (imported definitions).
    pub backend: Option<String>,
    /// Offered devices silent for two check-in intervals at the last judgement.
    pub silent: u32,
    /// Simulated hours the phase was held past its soak.
    pub held_for_h: f64,
    /// The last judgement.
    pub note: String,
    #[serde(skip)]
    held_since: Option<u64>,
}

impl PhaseReport {
    pub fn new(name: &str, percent: Option<u8>, devices: Option<u32>) -> Self {
        Self {
            name: name.to_string(),
            percent,
            devices,
            started_h: None,
            ended_h: None,
            offered: 0,
            updated: 0,
            failed: 0,
            rolled_back: 0,
            rejected: 0,
            timed_out: 0,
            backend: None,
            silent: 0,
            held_for_h: 0.0,
            note: String::new(),
            held_since: None,
        }
    }

    /// Records a judgement at `now` (ms).
    pub fn apply(
        &mut self,
        v: &PhaseVerdict,
        stats: &[fake_server::PhaseStats],
        index: usize,
        now: u64,
    ) {
        if self.started_h.is_none() {
            self.started_h = Some(0.0);
        }
        if let Some(s) = stats.get(index) {
            self.offered = s.offered;
            self.updated = s.updated;
            self.failed = s.failed;
            self.rolled_back = s.rolled_back;
        }
        self.silent = v.silent;
        if !v.note.is_empty() {
            if !v.passes && v.note.contains("silent") {
                let first = self.held_since.get_or_insert(now);
                self.held_for_h = (now - *first) as f64 / 3_600_000.0;
            }
            self.note = v.note.clone();
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub t_h: f64,
    pub by_version: BTreeMap<String, u32>,
    pub off: u32,
    pub bricked: u32,
    /// Devices offered the release so far.
    pub offered: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// Writes `rollout.json` and `rollout.html` into `dir`; returns the HTML path.
pub fn write(r: &RolloutReport, dir: &Path) -> Result<PathBuf, crate::report::Error> {
    std::fs::create_dir_all(dir).map_err(|source| crate::report::Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let json = serde_json::to_vec_pretty(r).map_err(|e| crate::report::Error::Encode {
        what: "rollout.json",
        reason: e.to_string(),
    })?;
    crate::report::write_atomic(&dir.join("rollout.json"), &json)?;
    let html = dir.join("rollout.html");
    crate::report::write_atomic(&html, render(r).as_bytes())?;
    Ok(html)
}

/// A short text summary for the terminal.
pub fn summary(r: &RolloutReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "runbook {} ({} -> {}), {} devices, seed {}: {:?} after {:.1} simulated hours",
        r.runbook, r.from, r.release, r.devices, r.seed, r.outcome, r.simulated_h
    );
    if let Some(b) = &r.backend {
        let _ = writeln!(
            s,
            "  imported from {} `{}` ({}), {} targeted; follows {}",
            b.backend.as_str(),
            b.name,
            b.definition,
            b.targeted,
            b.api
        );
        for t in &b.terms {
            let _ = writeln!(s, "    {} = {}", t.theirs, t.ours);
        }
        let _ = writeln!(s, "    at the end: {}", b.status);
    }
    let _ = writeln!(
        s,
        "  {:<12} {:>8} {:>8} {:>7} {:>11} {:>8} {:>9} {:>7}  note",
        "phase", "offered", "updated", "failed", "rolled-back", "rejected", "timed-out", "silent"
    );
    for p in &r.phases {
        let _ = writeln!(
            s,
            "  {:<12} {:>8} {:>8} {:>7} {:>11} {:>8} {:>9} {:>7}  {}{}",
            p.name,
            p.offered,
            p.updated,
            p.failed,
            p.rolled_back,
            p.rejected,
            p.timed_out,
            p.silent,
            p.note,
            p.backend
                .as_deref()
                .map(|b| format!("[{b}]"))
                .unwrap_or_default()
        );
    }
    if let Some(h) = &r.halt {
        let _ = writeln!(
            s,
            "  halted in phase {} at {:.1} h: {}; the release reached {} device(s) ({} ran it); kill switch: {} ({} rollback(s) queued)",
            h.phase,
            h.at_h,
            h.reason,
            h.reached,
            h.ran_release,
            if h.kill_switch { "on" } else { "off" },
            h.rollback_queued
        );
    }
    if let Some(t) = r.time_to_full_h {
        let _ = writeln!(s, "  time to full rollout: {t:.1} simulated hours");
    }
    for (i, f) in r.faults.iter().enumerate() {
        let _ = writeln!(
            s,
            "  server fault #{i} {}: matched {}, applied {}, took effect {}",
            f.summary, f.counts.matched, f.counts.applied, f.counts.took_effect
        );
    }
    let _ = writeln!(
        s,
        "  bricked {}, failed {}, on {} at the end {}, never reached {}, power cuts {}, trial reverts {}, forced rollbacks {}",
        r.bricked,
        r.failed,
        r.release,
        r.updated_final,
        r.never_reached,
        r.power_cuts,
        r.reverted,
        r.forced_rollbacks
    );
    for c in &r.checks {
        let _ = writeln!(
            s,
            "  [{}] {}: {}",
            if c.passed { "ok" } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    let _ = write!(
        s,
        "  {} device wake-ups in {:.1}s wall ({}), peak RSS {}, device flash {:.0} MiB private + {:.1} MiB shared",
        r.wakes,
        r.wall_s,
        match r.transport {
            super::FleetTransport::Tcp => "loopback TCP",
            _ => "in-process pipes",
        },
        r.peak_rss_mib
            .map_or_else(|| "?".to_string(), |m| format!("{m:.0} MiB")),
        r.flash_mib,
        r.shared_flash_mib
    );
    s
}

const COLOURS: [&str; 6] = [
    "#4e79a7", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948",
];

/// The chart: devices per running version over simulated time, plus offered, off and
/// bricked; phase starts and the halt as vertical rules.
fn chart(r: &RolloutReport) -> String {
    let (w, h, pad) = (900.0, 320.0, 40.0);
    let t_max = r.samples.last().map_or(1.0, |s| s.t_h).max(1.0);
    let n = f64::from(r.devices.max(1));
    let x = |t: f64| pad + (w - 2.0 * pad) * t / t_max;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * v / n;
    let mut versions: Vec<String> = r
        .samples
        .iter()
        .flat_map(|s| s.by_version.keys().cloned())
        .collect();
    versions.sort();
    versions.dedup();
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {w} {h}' role='img' aria-label='rollout over time'>"
    );
    let _ = write!(
        svg,
        "<line x1='{pad}' y1='{0}' x2='{1}' y2='{0}' stroke='#999'/><line x1='{pad}' y1='{pad}' x2='{pad}' y2='{0}' stroke='#999'/>",
        h - pad,
        w - pad
    );
    for frac in [0.0, 0.5, 1.0] {
        let _ = write!(
            svg,
            "<text x='4' y='{:.1}' font-size='10'>{:.0}</text>",
            y(frac * n) + 3.0,
            frac * n
        );
    }
    let _ = write!(
        svg,
        "<text x='{:.1}' y='{:.1}' font-size='10' text-anchor='end'>{t_max:.0} h</text>",
        w - pad,
        h - pad + 14.0
    );
    for p in &r.phases {
        if let Some(t) = p.started_h {
            let _ = write!(
                svg,
                "<line x1='{0:.1}' y1='{pad}' x2='{0:.1}' y2='{1}' stroke='#ccc' stroke-dasharray='3 3'/><text x='{2:.1}' y='{3}' font-size='10'>{4}</text>",
                x(t),
                h - pad,
                x(t) + 2.0,
                pad - 4.0,
                esc(&p.name)
            );
        }
    }
    if let Some(halt) = &r.halt {
        let _ = write!(
            svg,
            "<line x1='{0:.1}' y1='{pad}' x2='{0:.1}' y2='{1}' stroke='#e15759' stroke-width='2'/><text x='{2:.1}' y='{3}' font-size='11' fill='#e15759'>halt</text>",
            x(halt.at_h),
            h - pad,
            x(halt.at_h) + 3.0,
            pad + 12.0
        );
    }
    let mut series: Vec<(String, &str, Vec<f64>)> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                format!("v{v}"),
                COLOURS[i % COLOURS.len()],
                r.samples
                    .iter()
                    .map(|s| f64::from(s.by_version.get(v).copied().unwrap_or(0)))
                    .collect(),
            )
        })
        .collect();
    series.push((
        "offered".into(),
        "#999",
        r.samples.iter().map(|s| f64::from(s.offered)).collect(),
    ));
    series.push((
        "off".into(),
        "#bab0ac",
        r.samples.iter().map(|s| f64::from(s.off)).collect(),
    ));
    series.push((
        "bricked".into(),
        "#000",
        r.samples.iter().map(|s| f64::from(s.bricked)).collect(),
    ));
    for (k, (name, colour, values)) in series.iter().enumerate() {
        let points: Vec<String> = r
            .samples
            .iter()
            .zip(values)
            .map(|(s, v)| format!("{:.1},{:.1}", x(s.t_h), y(*v)))
            .collect();
        let dash = if name == "offered" {
            " stroke-dasharray='5 3'"
        } else {
            ""
        };
        let _ = write!(
            svg,
            "<polyline fill='none' stroke='{colour}' stroke-width='2'{dash} points='{}'><title>{}</title></polyline>",
            points.join(" "),
            esc(name)
        );
        let lx = pad + 10.0 + 110.0 * k as f64;
        let _ = write!(
            svg,
            "<rect x='{lx:.1}' y='{0:.1}' width='10' height='10' fill='{colour}'/><text x='{1:.1}' y='{2:.1}' font-size='11'>{3}</text>",
            h - 14.0,
            lx + 14.0,
            h - 5.0,
            esc(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

pub fn render(r: &RolloutReport) -> String {
    let mut s = String::from(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>otarig rollout</title>\
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse}\
td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}\
.ok{color:#2e7d32}.fail{color:#c62828;font-weight:bold}svg{width:100%;height:auto;border:1px solid #eee}</style></head><body>",
    );
    let _ = write!(
        s,
        "<h1>Rollout drill: {}</h1><p>{} → {} on {} simulated devices (seed {}), outcome <b>{:?}</b> (expected {:?}) after {:.1} simulated hours.</p>",
        esc(&r.runbook),
        esc(&r.from),
        esc(&r.release),
        r.devices,
        r.seed,
        r.outcome,
        r.expected,
        r.simulated_h
    );
    if let Some(b) = &r.backend {
        let _ = write!(
            s,
            "<h2>Imported from {}</h2><p><code>{}</code> `{}` ({} devices targeted), following {}. At the end: {}.</p><table><tr><th>{}'s term</th><th>what the rehearsal does</th></tr>",
            esc(b.backend.as_str()),
            esc(&b.definition),
            esc(&b.name),
            b.targeted,
            esc(&b.api),
            esc(&b.status),
            esc(b.backend.as_str())
        );
        for t in &b.terms {
            let _ = write!(
                s,
                "<tr><td style='text-align:left'>{}</td><td style='text-align:left'>{}</td></tr>",
                esc(&t.theirs),
                esc(&t.ours)
            );
        }
        s.push_str("</table>");
    }
    s.push_str("<h2>Checks</h2><ul>");
    for c in &r.checks {
        let _ = write!(
            s,
            "<li class='{}'>{} {}: {}</li>",
            if c.passed { "ok" } else { "fail" },
            if c.passed { "✔" } else { "✘" },
            esc(&c.name),
            esc(&c.detail)
        );
    }
    s.push_str("</ul><h2>Fleet over time</h2>");
    s.push_str(&chart(r));
    s.push_str("<h2>Phases</h2><table><tr><th>phase</th><th>started (h)</th><th>passed (h)</th><th>offered</th><th>updated</th><th>failed</th><th>rolled back</th><th>rejected</th><th>timed out</th><th>silent</th><th>held (h)</th><th>judgement</th><th>backend terms</th></tr>");
    let hours = |t: Option<f64>| t.map_or_else(|| "–".to_string(), |t| format!("{t:.1}"));
    for p in &r.phases {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td style='text-align:left'>{}</td><td style='text-align:left'>{}</td></tr>",
            esc(&p.name),
            hours(p.started_h),
            hours(p.ended_h),
            p.offered,
            p.updated,
            p.failed,
            p.rolled_back,
            p.rejected,
            p.timed_out,
            p.silent,
            p.held_for_h,
            esc(&p.note),
            esc(p.backend.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</table>");
    if let Some(h) = &r.halt {
        let _ = write!(
            s,
            "<h2>Halt</h2><p>The server halted the rollout in phase <b>{}</b> at {:.1} h: {}. Before the halt the release was offered to {} device(s) and ran on {}. Kill switch: {} ({} forced rollback(s) queued).</p>",
            esc(&h.phase),
            h.at_h,
            esc(&h.reason),
            h.reached,
            h.ran_release,
            if h.kill_switch { "on" } else { "off" },
            h.rollback_queued
        );
    }
    if let Some(t) = r.time_to_full_h {
        let _ = write!(
            s,
            "<p>Time to full rollout: <b>{t:.1} simulated hours</b>.</p>"
        );
    }
    if !r.faults.is_empty() {
        s.push_str("<h2>Server faults</h2><p>Fault rules the fake-server played against the whole fleet for the whole drill.</p><table><tr><th>#</th><th>rule</th><th>matched</th><th>applied</th><th>took effect</th></tr>");
        for (i, f) in r.faults.iter().enumerate() {
            let _ = write!(
                s,
                "<tr><td>{i}</td><td style='text-align:left'><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.summary),
                f.counts.matched,
                f.counts.applied,
                f.counts.took_effect
            );
        }
        s.push_str("</table>");
    }
    s.push_str("<h2>Fleet</h2><ul>");
    for (k, v) in &r.mix {
        let _ = write!(s, "<li>{}: {v}</li>", esc(k));
    }
    let _ = write!(
        s,
        "</ul><p>Bricked: <b>{}</b>. Failed the release: {}. Confirmed on {} at the end: {}. Never reached: {}. Power cuts: {}. Trial reverts: {}. Forced rollbacks: {}.</p><p>{} device wake-ups in {:.1} s wall; peak RSS {}.</p></body></html>",
        r.bricked,
        r.failed,
        esc(&r.release),
        r.updated_final,
        r.never_reached,
        r.power_cuts,
        r.reverted,
        r.forced_rollbacks,
        r.wakes,
        r.wall_s,
        r.peak_rss_mib
            .map_or_else(|| "?".to_string(), |m| format!("{m:.0} MiB"))
    );
    s
}
