//! `sweep.html`: the survival map. Every cut point is a cell along the update's operations,
//! grouped by phase and tear shape (clean cuts first) and coloured by outcome; a cell's title
//! names its operation and exactly how it was torn; a failing cell links to its details and
//! replay.

use std::fmt::Write;

use super::SweepReport;
use crate::report::html::esc;

pub fn render(r: &SweepReport) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>otarig power-cut sweep: {name}</title><style>\
body{{font:14px system-ui,sans-serif;margin:24px;color:#1d2430}}.map{{display:flex;flex-wrap:wrap;gap:1px;margin:6px 0 16px}}\
.c{{width:9px;height:14px;display:block}}.updated{{background:#2e9d5b}}.rolled-back{{background:#3b7dd8}}.unchanged{{background:#9aa5b5}}\
.bricked{{background:#d33}}.invariant-broken{{background:#e08a00}}h2{{font-size:15px;margin:14px 0 2px}}\
pre{{background:#f7f8fa;padding:8px;font:12px ui-monospace,monospace;white-space:pre-wrap}}.legend span{{margin-right:14px}}\
</style></head><body><h1>Power-cut sweep: {name}</h1>\
<p>script <b>{script}</b> ({why}) · expected end (the scenario's outcome): <b>{exp}</b> · clean run ends <b>{clean}</b> · \
image {img} bytes · {ops} flash operations in the clean run · tear shapes: {shapes}{unstable} · \
<b>{n}</b> cut points: <b>{b} bricked</b>, {rb} rolled back, {u} updated, {un} unchanged, {o} other · {pps:.0} points/s{stopped}</p>\
<p class=legend><span><i class='c updated' style='display:inline-block'></i> updated</span><span><i class='c rolled-back' style='display:inline-block'></i> rolled back</span>\
<span><i class='c unchanged' style='display:inline-block'></i> unchanged</span><span><i class='c bricked' style='display:inline-block'></i> bricked</span>\
<span><i class='c invariant-broken' style='display:inline-block'></i> invariant broken</span></p>",
        name = esc(&r.scenario),
        script = r.script,
        why = esc(&r.script_reason),
        clean = r.clean_outcome,
        shapes = if r.tear_shapes.is_empty() {
            "none (clean cuts only)".to_string()
        } else {
            r.tear_shapes.join(", ")
        },
        unstable = if r.unstable_bits {
            ", with unstable bits"
        } else {
            ""
        },
        un = r.unchanged,
        stopped = match &r.interrupted {
            Some(why) => format!(
                " · <b>interrupted ({}): {} of {} points swept</b>",
                esc(why),
                r.points.len(),
                r.planned_points
            ),
            None => String::new(),
        },
        exp = r.expected,
        img = r.image_bytes,
        ops = r.clean_ops,
        n = r.points.len(),
        b = r.bricked,
        rb = r.rolled_back,
        u = r.updated,
        o = r.other,
        pps = r.points_per_second,
    );
    let mut phases: Vec<&str> = Vec::new();
    for p in &r.points {
        if !phases.contains(&p.phase) {
            phases.push(p.phase);
        }
    }
    let mut shapes: Vec<&str> = vec!["clean"];
    shapes.extend(r.tear_shapes.iter().copied());
    for phase in phases {
        for &shape in &shapes {
            let cells: Vec<(usize, &super::Point)> = r
                .points
                .iter()
                .enumerate()
                .filter(|(_, p)| p.phase == phase && p.shape == shape && p.nested.is_none())
                .collect();
            if cells.is_empty() {
                continue;
            }
            let _ = write!(
                h,
                "<h2>{phase} ({})</h2><div class=map>",
                if shape == "clean" {
                    "clean cut".to_string()
                } else {
                    format!("torn: {shape}")
                }
            );
            for (i, p) in cells {
                let title = format!(
                    "op {} {} 0x{:08x} {}{}: {}",
                    p.op,
                    p.kind,
                    p.addr,
                    p.len,
                    torn(p.tear.as_deref()),
                    p.outcome
                );
                cell(&mut h, i, &p.outcome, p.outcome == r.expected, &title);
            }
            h.push_str("</div>");
        }
    }
    let nested = r.points.iter().filter(|p| p.nested.is_some()).count();
    if nested > 0 {
        let _ = write!(h, "<h2>nested cuts during recovery</h2><div class=map>");
        for (i, p) in r
            .points
            .iter()
            .enumerate()
            .filter(|(_, p)| p.nested.is_some())
        {
            let title = format!(
                "op {} then op {}{}: {}",
                p.op,
                p.nested.unwrap_or_default(),
                torn(p.tear.as_deref()),
                p.outcome
            );
            cell(&mut h, i, &p.outcome, p.outcome == r.expected, &title);
        }
        h.push_str("</div>");
    }
    if r.clean_outcome != r.expected {
        let _ = write!(
            h,
            "<h2>The clean run did not end as expected</h2><p>with no power cut at all the board ends \
             <b>{}</b>, where the scenario's outcome is <b>{}</b>.</p>",
            r.clean_outcome, r.expected
        );
    }
    let bad: Vec<(usize, &super::Point)> = r
        .points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.outcome != r.expected)
        .collect();
    if !bad.is_empty() {
        h.push_str("<h2>Points that did not end as expected</h2>");
        for (i, p) in bad {
            let _ = write!(
                h,
                "<div id='p{i}'><b>op {} ({}{}{})</b>: {} — {}<pre>{}\n\nreplay: {}</pre></div>",
                p.op,
                p.kind,
                p.tear
                    .as_deref()
                    .map_or(String::new(), |t| format!(", torn {t}")),
                p.nested.map_or(String::new(), |n| format!(", then op {n}")),
                p.outcome,
                esc(&p.detail),
                esc(&p.log_tail.join("\n")),
                esc(&p.replay)
            );
        }
    }
    if r.process_checked > 0 || !r.process_disagreements.is_empty() {
        let _ = write!(
            h,
            "<h2>Process cross-check</h2><p>{} points re-run with the real sim-board process; {} disagreements.</p><pre>{}</pre>",
            r.process_checked,
            r.process_disagreements.len(),
            esc(&r.process_disagreements.join("\n"))
        );
    }
    h.push_str("</body></html>");
    h
}

/// One point of the map: a plain cell when it ended as expected, else a link to its detail.
fn cell(h: &mut String, i: usize, outcome: &impl std::fmt::Display, expected: bool, title: &str) {
    if expected {
        let _ = write!(h, "<i class='c {outcome}' title='{}'></i>", esc(title));
    } else {
        let _ = write!(
            h,
            "<a class='c {outcome}' href='#p{i}' title='{}'></a>",
            esc(title)
        );
    }
}

/// ` torn <shape>` for a torn point, nothing for a clean one.
fn torn(tear: Option<&str>) -> String {
    tear.map_or(String::new(), |t| format!(" torn {t}"))
}
