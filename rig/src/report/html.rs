//! `report.html`: one self-contained page (inline CSS and SVG, a few lines of inline JS, no
//! external resources) that an engineer or a release manager reads at a glance: a summary
//! table, then per scenario its verdict, replay command and a timeline with one lane each for
//! power, console, HTTP, flash and rig steps. Every text is escaped.

use std::fmt::Write;

use crate::timeline::{Event, EventKind};
use crate::verdict::{Attempt, RunReport, ScenarioResult, Status};

/// Escapes text for HTML content and attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn status_badge(s: Status) -> (&'static str, &'static str) {
    match s {
        Status::Passed => ("pass", "passed"),
        Status::Failed => ("fail", "FAILED"),
        Status::InfraError => ("infra", "infra error"),
        Status::Skipped => ("skip", "skipped"),
    }
}

const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2430;background:#f5f6f8}
header{background:#1d2430;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:20px}
header .meta{color:#b9c2d0;font-size:13px}main{padding:20px 28px;max-width:1400px}
.counts span{display:inline-block;margin-right:14px;font-weight:600}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0001}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e6e8ec;vertical-align:top}
th{background:#eef0f4;font-weight:600}tr:hover td{background:#fafbfc}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:700}
.pass{background:#d9f2e1;color:#17683a}.fail{background:#fbdada;color:#a11b1b}.infra{background:#fde9c9;color:#8a4b00}.skip{background:#e6e8ec;color:#555}
section.sc{background:#fff;margin:22px 0;padding:14px 18px;box-shadow:0 1px 2px #0001;border-left:5px solid #ccc}
section.sc.pass{border-left-color:#2e9d5b}section.sc.fail{border-left-color:#d33}section.sc.infra{border-left-color:#e08a00}
section.sc h2{margin:0 0 6px;font-size:17px}.about{color:#4a5363;margin:0 0 8px}
.reason{white-space:pre-wrap;background:#fff4f4;border:1px solid #f3caca;padding:8px;font:12px/1.4 ui-monospace,monospace}
code.replay{display:block;background:#1d2430;color:#e6edf3;padding:8px 10px;font:12px ui-monospace,monospace;overflow-x:auto;margin:6px 0}
svg.tl{width:100%;height:auto;background:#fbfcfd;border:1px solid #e6e8ec}
svg .lane{font:11px system-ui;fill:#4a5363}svg .axis{font:10px system-ui;fill:#7a8392}
details{margin-top:8px}summary{cursor:pointer;color:#2457c5}
pre.log{max-height:360px;overflow:auto;background:#f7f8fa;border:1px solid #e6e8ec;padding:8px;font:12px/1.35 ui-monospace,monospace}
.legend span{margin-right:14px;font-size:12px}.sw{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:-1px}
"#;

/// Renders the whole page.
pub fn render(r: &RunReport) -> String {
    let (passed, failed, infra, skipped) = r.counts();
    let mut h = String::with_capacity(256 * 1024);
    let _ = write!(
        h,
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>otarig run {id}</title><style>{CSS}</style></head><body>\
         <header><h1>otarig run {id}</h1><div class=meta>started {started} · {dur:.1}s · rig {ver} · seed {seed}<br><code>{cmd}</code></div></header><main>\
         <p class=counts><span class='badge pass'>{passed} passed</span><span class='badge fail'>{failed} failed</span><span class='badge infra'>{infra} infra errors</span><span class='badge skip'>{skipped} skipped</span></p>",
        id = esc(&r.run_id),
        started = esc(&r.started),
        dur = r.duration.as_secs_f64(),
        ver = esc(&r.rig_version),
        seed = r.seed,
        cmd = esc(&r.command),
    );
    if let Some(why) = &r.interrupted {
        let _ = write!(
            h,
            "<p class=reason>run interrupted ({}): only the scenarios that had finished are listed</p>",
            esc(why)
        );
    }
    h.push_str("<table id=summary><thead><tr><th>scenario</th><th>board</th><th>expected</th><th>observed</th><th>status</th><th>pass rate</th><th>duration</th></tr></thead><tbody>");
    for (i, sc) in r.scenarios.iter().enumerate() {
        let (cls, label) = status_badge(sc.status());
        let (p, t) = sc.pass_rate();
        let observed: Vec<String> = sc
            .attempts
            .iter()
            .map(|a| a.observed.map_or("-".to_string(), |o| o.to_string()))
            .collect();
        let _ = write!(
            h,
            "<tr><td><a href='#sc{i}'>{name}</a></td><td>{board}</td><td>{exp}</td><td>{obs}</td><td><span class='badge {cls}'>{label}</span></td><td>{p}/{t}</td><td>{d:.2}s</td></tr>",
            name = esc(&sc.name),
            board = esc(&sc.board),
            exp = sc.expected,
            obs = esc(&observed.join(", ")),
            d = sc.duration().as_secs_f64(),
        );
    }
    h.push_str("</tbody></table>");
    h.push_str("<p class=legend><span><i class=sw style='background:#2e9d5b'></i>power on</span><span><i class=sw style='background:#5b6b82'></i>console line</span><span><i class=sw style='background:#3b7dd8'></i>HTTP response</span><span><i class=sw style='background:#d33'></i>fault / cut</span><span><i class=sw style='background:#e08a00'></i>flash erase</span><span><i class=sw style='background:#8e5bd8'></i>flash program</span><span><i class=sw style='background:#222'></i>rig step</span><span><i class=sw style='background:#7a3fb8'></i>probe</span></p>");
    for (i, sc) in r.scenarios.iter().enumerate() {
        scenario(&mut h, i, sc);
    }
    h.push_str("</main><script>(function(){try{var n=document.querySelectorAll('section.sc').length;document.body.dataset.scenarios=String(n);document.body.dataset.ok='1';}catch(e){document.body.dataset.errors=String(e);}})();</script></body></html>");
    h
}

fn scenario(h: &mut String, i: usize, sc: &ScenarioResult) {
    let (cls, label) = status_badge(sc.status());
    let _ = write!(
        h,
        "<section class='sc {cls}' id='sc{i}'><h2>{name} <span class='badge {cls}'>{label}</span></h2><p class=about>{about}</p><div>expected <b>{exp}</b> · file <code>{file}</code></div>",
        name = esc(&sc.name),
        about = esc(&sc.about),
        exp = sc.expected,
        file = esc(&sc.file.display().to_string()),
    );
    if let Some(why) = &sc.skipped {
        let _ = write!(
            h,
            "<p>not run on board {}: {}</p>",
            esc(&sc.board),
            esc(why)
        );
    }
    for a in &sc.attempts {
        attempt(h, a, sc.attempts.len() > 1);
    }
    h.push_str("</section>");
}

fn attempt(h: &mut String, a: &Attempt, numbered: bool) {
    if numbered {
        let _ = write!(h, "<h3>attempt {}</h3>", a.index);
    }
    let _ = write!(
        h,
        "<div>observed <b>{}</b> in {:.2}s · seed {}</div>",
        a.observed.map_or("-".to_string(), |o| o.to_string()),
        a.duration.as_secs_f64(),
        a.seed
    );
    if let Some(reason) = &a.reason {
        let _ = write!(h, "<div class=reason>{}</div>", esc(reason));
    }
    let _ = write!(h, "<code class=replay>{}</code>", esc(&a.replay));
    if !a.resolved.is_empty() {
        let _ = write!(
            h,
            "<div>resolved trigger points: {}</div>",
            esc(&a.resolved.join("; "))
        );
    }
    timeline_svg(h, &a.events);
    h.push_str("<details><summary>console log</summary><pre class=log>");
    for e in &a.events {
        if let EventKind::Console { line } = &e.kind {
            let _ = writeln!(h, "{:9.3}s {}", e.t.as_secs_f64(), esc(line));
        }
    }
    h.push_str("</pre></details><details><summary>all events (flash operations summarised)</summary><pre class=log>");
    let mut flash_run = 0usize;
    for e in &a.events {
        if matches!(e.kind, EventKind::Flash { .. }) {
            flash_run += 1;
            continue;
        }
        if flash_run > 0 {
            let _ = writeln!(h, "          … {flash_run} flash operations");
            flash_run = 0;
        }
        let _ = writeln!(
            h,
            "{:9.3}s {}",
            e.t.as_secs_f64(),
            esc(&super::event_text(&e.kind))
        );
    }
    if flash_run > 0 {
        let _ = writeln!(h, "          … {flash_run} flash operations");
    }
    h.push_str("</pre></details>");
}

/// The timeline: lanes for power, console, HTTP, flash and rig, time along x.
fn timeline_svg(h: &mut String, events: &[Event]) {
    const W: f64 = 1200.0;
    const LEFT: f64 = 70.0;
    const LANE: f64 = 26.0;
    const BINS: usize = 300;
    let end = events.last().map_or(1.0, |e| e.t.as_secs_f64()).max(0.001);
    let x = |t: f64| LEFT + (t / end) * (W - LEFT - 10.0);
    let lanes = ["power", "console", "http", "flash", "rig", "probe"];
    let height = LANE * lanes.len() as f64 + 24.0;
    let _ = write!(
        h,
        "<svg class=tl viewBox='0 0 {W} {height}' xmlns='http://www.w3.org/2000/svg'>"
    );
    for (i, name) in lanes.iter().enumerate() {
        let y = i as f64 * LANE;
        let _ = write!(
            h,
            "<rect x='{LEFT}' y='{y}' width='{}' height='{LANE}' fill='{}'/><text class=lane x='4' y='{}'>{name}</text>",
            W - LEFT,
            if i % 2 == 0 { "#f3f5f8" } else { "#fbfcfd" },
            y + 17.0
        );
    }
    // Axis.
    let ticks = 10;
    for k in 0..=ticks {
        let t = end * f64::from(k) / f64::from(ticks);
        let shift = if k == ticks { 34.0 } else { 8.0 };
        let _ = write!(
            h,
            "<text class=axis x='{:.1}' y='{:.1}'>{t:.2}s</text>",
            x(t) - shift,
            LANE * lanes.len() as f64 + 16.0
        );
    }
    // Power: bars while on.
    let mut on_since: Option<f64> = None;
    for e in events {
        if let EventKind::Power { on, detail } = &e.kind {
            let t = e.t.as_secs_f64();
            match (on, on_since) {
                (true, None) => on_since = Some(t),
                (false, Some(s)) => {
                    power_bar(h, x(s), x(t), detail);
                    on_since = None;
                }
                _ => {}
            }
            if !on {
                let _ = write!(
                    h,
                    "<line x1='{0:.1}' x2='{0:.1}' y1='0' y2='{1}' stroke='#d33' stroke-width='1.5'><title>{2}</title></line>",
                    x(t),
                    LANE,
                    esc(detail)
                );
            }
        }
    }
    if let Some(s) = on_since {
        power_bar(h, x(s), x(end), "on");
    }
    let mut flash_bins = vec![(0u32, 0u32); BINS];
    for e in events {
        let t = e.t.as_secs_f64();
        let tip = esc(&super::event_text(&e.kind));
        match &e.kind {
            EventKind::Console { .. } => {
                let _ = write!(
                    h,
                    "<rect x='{:.1}' y='{}' width='2' height='18' fill='#5b6b82'><title>{:.3}s {tip}</title></rect>",
                    x(t),
                    LANE + 4.0,
                    t
                );
            }
            EventKind::Http {
                bytes_sent, fault, ..
            } => {
                let colour = if fault.is_some() { "#d33" } else { "#3b7dd8" };
                let hgt = (4.0 + (*bytes_sent as f64).log2().max(0.0)).min(20.0);
                let _ = write!(
                    h,
                    "<rect x='{:.1}' y='{:.1}' width='4' height='{hgt:.1}' fill='{colour}'><title>{:.3}s {tip}</title></rect>",
                    x(t) - 2.0,
                    2.0 * LANE + (LANE - hgt) / 2.0,
                    t
                );
            }
            EventKind::Flash { kind, .. } => {
                let b = ((t / end) * (BINS as f64 - 1.0)).round() as usize;
                if let Some(bin) = flash_bins.get_mut(b) {
                    if kind == "erase" {
                        bin.0 += 1;
                    } else {
                        bin.1 += 1;
                    }
                }
            }
            EventKind::Rig { detail } => {
                let colour = if detail.starts_with("cut")
                    || detail.starts_with("server fault")
                    || detail.starts_with("verdict")
                {
                    "#d33"
                } else {
                    "#222"
                };
                let _ = write!(
                    h,
                    "<circle cx='{:.1}' cy='{}' r='3' fill='{colour}'><title>{:.3}s {tip}</title></circle>",
                    x(t),
                    4.0 * LANE + 13.0,
                    t
                );
            }
            EventKind::Probe { .. } => {
                let _ = write!(
                    h,
                    "<rect x='{:.1}' y='{}' width='3' height='12' fill='#7a3fb8'><title>{:.3}s {tip}</title></rect>",
                    x(t) - 1.5,
                    5.0 * LANE + 7.0,
                    t
                );
            }
            EventKind::Power { .. } => {}
        }
    }
    let bin_w = (W - LEFT - 10.0) / BINS as f64;
    for (i, (erases, programs)) in flash_bins.iter().enumerate() {
        if erases + programs == 0 {
            continue;
        }
        let t0 = end * i as f64 / (BINS as f64 - 1.0);
        let colour = if *erases > 0 { "#e08a00" } else { "#8e5bd8" };
        let _ = write!(
            h,
            "<rect x='{:.1}' y='{}' width='{:.1}' height='18' fill='{colour}'><title>~{t0:.3}s: {erases} erases, {programs} programs</title></rect>",
            x(t0),
            3.0 * LANE + 4.0,
            bin_w.max(1.5)
        );
    }
    h.push_str("</svg>");
}

fn power_bar(h: &mut String, x0: f64, x1: f64, detail: &str) {
    let _ = write!(
        h,
        "<rect x='{x0:.1}' y='5' width='{:.1}' height='16' fill='#2e9d5b' opacity='0.8'><title>powered ({})</title></rect>",
        (x1 - x0).max(1.0),
        esc(detail)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_console_text_and_lists_every_scenario() {
        let html = render(&crate::report::sample::report());
        assert!(
            !html.contains("<script>alert(1)"),
            "console text must be escaped"
        );
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<b>escaped</b>"));
        for name in ["happy-path", "bad-one", "infra-one"] {
            assert!(html.contains(&format!(">{name}</a>")), "{name} in summary");
        }
        assert!(!html.contains("http://") || html.contains("xmlns='http://www.w3.org/2000/svg'"));
        assert!(html.len() < 2_000_000);
    }
}
