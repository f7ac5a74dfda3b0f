//! The picture of a run: an SVG timeline with a lane per agent slot and one
//! for the merge queue. Each agent run is one bar (`class="bar"`), coloured
//! by role, outlined by outcome, with hover text (`<title>`) naming the
//! task, the attempt and the result; set-up shows as a thin grey bar before
//! it, idle time as the empty lane. The HTML page holds the same picture and
//! the tables. Both are self-contained: no script, no font, no link.

use std::fmt::Write as _;

use super::text::{duration, money};
use super::{QueueBar, RunBar, Stats};

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 120.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 56.0;
const LANE: f64 = 30.0;
const GATE_PASSED: &str = "#16a34a";
const GATE_FAILED: &str = "#dc2626";
/// A gate run stopped before it finished (a speculative candidate whose
/// chain changed): neither green nor red, since it says nothing of the work.
const GATE_CANCELLED: &str = "#fbbf24";
const GAP: f64 = 8.0;

/// The fill of a role's bars.
fn role_colour(role: &str) -> &'static str {
    match role {
        "implementer" => "#3b82f6",
        "reviewer" => "#8b5cf6",
        "integrator" => "#f59e0b",
        "planner" => "#14b8a6",
        _ => "#6b7280",
    }
}

/// How an outcome outlines a bar: (fill opacity, stroke, dash).
fn outcome_style(result: &str) -> (f64, &'static str, &'static str) {
    match result {
        "submitted" | "approve" | "resolved" | "planned" => (1.0, "#1f2937", ""),
        "rate_limited" => (0.35, "#ea580c", "5 3"),
        "failed" | "changes" | "lost" | "refused" => (0.35, "#dc2626", ""),
        _ => (0.35, "#6b7280", "2 2"),
    }
}

/// `&`, `<`, `>`, `"` and `'` escaped for XML text and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and newline are not XML.
            c if c.is_control() && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The timeline's geometry: where a moment and a lane are drawn.
struct Scale {
    wall: f64,
    slots: usize,
    /// Rows of the merge queue's lane: the most gate runs at once.
    queue_rows: usize,
}

impl Scale {
    fn x(&self, ms: u64) -> f64 {
        LEFT + (WIDTH - LEFT - RIGHT) * (ms as f64 / self.wall.max(1.0))
    }
    fn y(&self, lane: usize) -> f64 {
        TOP + lane as f64 * (LANE + GAP)
    }
    /// The merge queue's lane, below the slots.
    fn queue_y(&self) -> f64 {
        self.y(self.slots)
    }
    fn queue_height(&self) -> f64 {
        LANE * self.queue_rows.max(1) as f64
    }
    fn bottom(&self) -> f64 {
        self.queue_y() + self.queue_height()
    }
}

/// The SVG document of `stats`.
pub fn svg(stats: &Stats) -> String {
    let rows = gate_rows(&stats.queue);
    let scale = Scale {
        wall: stats.wall_ms as f64,
        slots: stats.slots,
        queue_rows: rows.iter().flatten().max().map_or(1, |r| r + 1),
    };
    let height = scale.bottom() + 116.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"##
    );
    let _ = writeln!(out, "<title>git agent stats: a timeline of the run</title>");
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="22" font-size="15" font-weight="bold" fill="#111827">{}</text>"##,
        escape(&headline(stats))
    );
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="40" fill="#4b5563">{}</text>"##,
        escape(&tax_line(stats))
    );
    lanes(&mut out, &scale);
    axis(&mut out, &scale);
    // Waits first, so that merges and gates are drawn over them.
    for kind in ["queue", "merge", "gate"] {
        for (bar, row) in stats
            .queue
            .iter()
            .zip(&rows)
            .filter(|(b, _)| b.kind == kind)
        {
            queue_bar(&mut out, &scale, bar, row.unwrap_or(0));
        }
    }
    for run in &stats.runs {
        run_bar(&mut out, &scale, run);
    }
    legend(&mut out, scale.bottom() + 44.0);
    out.push_str("</svg>\n");
    out
}

fn headline(s: &Stats) -> String {
    format!(
        "wall {}  ·  agent time {} on {} slot(s)  ·  speed-up {:.2}×  ·  critical path {}  ·  {}",
        duration(s.wall_ms),
        duration(s.agent_ms),
        s.slots,
        s.speedup,
        duration(s.critical_path_ms),
        if s.tokens == 0 && s.cost_usd == 0.0 {
            "no usage reported".to_string()
        } else {
            format!("{} tokens, {}", s.tokens, money(s.cost_usd))
        }
    )
}

fn tax_line(s: &Stats) -> String {
    let t = &s.tax;
    format!(
        "coordination tax {} of slot time: set-up {}, queue {}, gate {}, orchestration {}, no work {}",
        duration(s.tax_ms),
        duration(t.setup_ms),
        duration(t.queue_ms),
        duration(t.gate_ms),
        duration(t.orchestration_ms),
        duration(t.no_work_ms)
    )
}

/// A row of the queue's lane for each gate run (none for other steps): the
/// first row free at its start, so that speculative runs at once are drawn
/// one above the other instead of over each other.
fn gate_rows(queue: &[QueueBar]) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..queue.len())
        .filter(|&i| queue[i].kind == "gate")
        .collect();
    order.sort_by_key(|&i| (queue[i].start_ms, queue[i].end_ms));
    let mut free_at: Vec<u64> = Vec::new();
    let mut rows = vec![None; queue.len()];
    for i in order {
        let bar = &queue[i];
        let row = match free_at.iter().position(|&f| f <= bar.start_ms) {
            Some(row) => row,
            None => {
                free_at.push(0);
                free_at.len() - 1
            }
        };
        free_at[row] = bar.end_ms.max(bar.start_ms + 1);
        rows[i] = Some(row);
    }
    rows
}

/// The lanes' backgrounds (idle time shows as their empty stretches) and labels.
fn lanes(out: &mut String, scale: &Scale) {
    let width = WIDTH - LEFT - RIGHT;
    for lane in 0..=scale.slots {
        let (y, height, label) = match lane == scale.slots {
            true => (
                scale.queue_y(),
                scale.queue_height(),
                "merge queue".to_string(),
            ),
            false => (scale.y(lane), LANE, format!("slot {}", lane + 1)),
        };
        let _ = writeln!(
            out,
            r##"<rect class="lane" x="{LEFT}" y="{y}" width="{width}" height="{height}" fill="#f3f4f6"/>"##
        );
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#374151">{label}</text>"##,
            LEFT - 10.0,
            y + LANE / 2.0 + 4.0
        );
    }
}

/// Ticks at a round step, about ten across.
fn axis(out: &mut String, scale: &Scale) {
    let wall = scale.wall.max(1.0);
    let step = [1.0, 2.0, 5.0]
        .iter()
        .flat_map(|m| (0..8).map(move |p| m * 10f64.powi(p)))
        .map(|s| s * 1.0)
        .filter(|s| wall / s <= 12.0)
        .fold(f64::MAX, f64::min);
    let step = if step == f64::MAX { wall } else { step };
    let bottom = scale.bottom();
    let mut t = 0.0;
    while t <= wall + 0.5 {
        let x = scale.x(t as u64);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#d1d5db" stroke-width="1"/>"##,
            TOP - 4.0,
            bottom + 4.0
        );
        let _ = writeln!(
            out,
            r##"<text x="{x:.1}" y="{}" text-anchor="middle" fill="#6b7280">{}</text>"##,
            bottom + 18.0,
            duration(t as u64)
        );
        t += step;
    }
}

fn run_bar(out: &mut String, scale: &Scale, run: &RunBar) {
    let y = scale.y(run.lane);
    if let Some(setup) = run.setup_start_ms {
        let (x, w) = (scale.x(setup), scale.x(run.start_ms) - scale.x(setup));
        if w > 0.0 {
            let _ = writeln!(
                out,
                r##"<rect class="setup" x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="#9ca3af"><title>{}</title></rect>"##,
                y + LANE * 0.35,
                LANE * 0.3,
                escape(&format!(
                    "{} {}\nworktree set-up before {} attempt {}: {}",
                    run.task,
                    run.title,
                    run.role,
                    run.attempt,
                    duration(run.start_ms - setup)
                ))
            );
        }
    }
    let x = scale.x(run.start_ms);
    // A run of a few ms (a rate limit answered at once) still shows.
    let w = (scale.x(run.end_ms) - x).max(3.0);
    let (opacity, stroke, dash) = outcome_style(&run.result);
    let dash = match dash {
        "" => String::new(),
        d => format!(r##" stroke-dasharray="{d}""##),
    };
    let mut hover = format!(
        "{} {}\n{} attempt {}: {}\n{} from {} to {}",
        run.task,
        run.title,
        run.role,
        run.attempt,
        run.result,
        duration(run.end_ms - run.start_ms),
        duration(run.start_ms),
        duration(run.end_ms)
    );
    if run.tokens.is_some() || run.cost_usd.is_some() {
        let _ = write!(
            hover,
            "\n{} tokens, {}",
            run.tokens.unwrap_or(0),
            money(run.cost_usd.unwrap_or(0.0))
        );
    }
    if run.estimated {
        hover.push_str("\n(timed from the claim: recorded before spans were)");
    }
    let _ = writeln!(
        out,
        r##"<rect class="bar" data-task="{}" data-role="{}" data-result="{}" x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" rx="3" fill="{}" fill-opacity="{opacity}" stroke="{stroke}" stroke-width="1.5"{dash}><title>{}</title></rect>"##,
        escape(&run.task),
        escape(&run.role),
        escape(&run.result),
        y + 2.0,
        LANE - 4.0,
        role_colour(&run.role),
        escape(&hover)
    );
    let label = format!("{} #{}", run.task, run.attempt);
    if w > label.len() as f64 * 6.5 + 8.0 {
        let fill = if opacity < 1.0 { "#111827" } else { "#ffffff" };
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" fill="{fill}" pointer-events="none">{}</text>"##,
            x + 5.0,
            y + LANE / 2.0 + 4.0,
            escape(&label)
        );
    }
}

fn queue_bar(out: &mut String, scale: &Scale, bar: &QueueBar, row: usize) {
    let y = scale.queue_y() + row as f64 * LANE;
    let x = scale.x(bar.start_ms);
    let w = (scale.x(bar.end_ms) - x).max(1.0);
    let result = bar.result.as_deref().unwrap_or("passed");
    let (top, height, fill) = match bar.kind.as_str() {
        "queue" => (y + LANE * 0.42, LANE * 0.16, "#cbd5e1"),
        "merge" => (y + 4.0, LANE - 8.0, "#64748b"),
        _ if result.starts_with("passed") => (y + 2.0, LANE - 4.0, GATE_PASSED),
        _ if result.starts_with("failed") || result == "not_run: timed out" => {
            (y + 2.0, LANE - 4.0, GATE_FAILED)
        }
        _ => (y + 2.0, LANE - 4.0, GATE_CANCELLED),
    };
    let what = match bar.kind.as_str() {
        "queue" => "waited for the merge queue".to_string(),
        "merge" => "merged onto the target".to_string(),
        kind => format!("{kind}: {}", bar.result.as_deref().unwrap_or("")),
    };
    let _ = writeln!(
        out,
        r##"<rect class="{}" x="{x:.1}" y="{top:.1}" width="{w:.1}" height="{height:.1}" fill="{fill}"><title>{}</title></rect>"##,
        escape(&bar.kind),
        escape(&format!(
            "{} {}\n{what}: {}",
            bar.task,
            bar.title,
            duration(bar.end_ms - bar.start_ms)
        ))
    );
}

fn legend(out: &mut String, y: f64) {
    let mut items: Vec<(String, &str)> = Vec::new();
    for role in ["planner", "implementer", "reviewer", "integrator"] {
        let swatch = format!(
            r##"width="16" height="14" rx="3" fill="{}""##,
            role_colour(role)
        );
        items.push((swatch, role));
    }
    for (label, result) in [
        ("failed / changes", "failed"),
        ("rate limited", "rate_limited"),
    ] {
        let (opacity, stroke, dash) = outcome_style(result);
        let dash = if dash.is_empty() { "none" } else { dash };
        let swatch = format!(
            r##"width="16" height="14" rx="3" fill="#6b7280" fill-opacity="{opacity}" stroke="{stroke}" stroke-width="1.5" stroke-dasharray="{dash}""##
        );
        items.push((swatch, label));
    }
    // The merge queue's steps take a second row: one row is too narrow
    // for every role and step.
    let first_row = items.len();
    for (label, fill, h) in [
        ("set-up", "#9ca3af", 5.0),
        ("queue wait", "#cbd5e1", 3.0),
        ("merge", "#64748b", 10.0),
        ("gate passed", GATE_PASSED, 14.0),
        ("gate failed", GATE_FAILED, 14.0),
        ("gate cancelled", GATE_CANCELLED, 14.0),
    ] {
        let swatch = format!(
            r##"width="16" height="{h}" transform="translate(0 {})" fill="{fill}""##,
            (14.0 - h) / 2.0
        );
        items.push((swatch, label));
    }
    let (mut x, row_y) = (LEFT, y);
    for (n, (swatch, label)) in items.into_iter().enumerate() {
        if n == first_row {
            x = LEFT;
        }
        let y = if n < first_row { row_y } else { row_y + 20.0 };
        let _ = writeln!(out, r##"<rect x="{x:.1}" y="{y:.1}" {swatch}/>"##);
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" fill="#374151">{label}</text>"##,
            x + 22.0,
            y + 11.0
        );
        x += 34.0 + label.len() as f64 * 6.8;
    }
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="{:.1}" fill="#6b7280">An empty stretch of a lane is idle time. Hover a bar for its task, attempt and result.</text>"##,
        row_y + 56.0
    );
}

/// A page with the picture and the tables, for a browser.
pub fn html(stats: &Stats) -> String {
    let mut out = String::from(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>git agent stats</title>\n<style>\n\
         body { font-family: sans-serif; margin: 24px; color: #111827; }\n\
         table { border-collapse: collapse; margin: 12px 0 24px; }\n\
         th, td { padding: 4px 10px; border-bottom: 1px solid #e5e7eb; text-align: right; }\n\
         th:first-child, td:first-child, .title { text-align: left; }\n\
         td:first-child { white-space: nowrap; }\n\
         pre { background: #f9fafb; padding: 12px; }\n</style>\n</head>\n<body>\n<h1>git agent stats</h1>\n",
    );
    out.push_str(&svg(stats));
    let _ = writeln!(out, "<pre>{}</pre>", escape(&super::text::summary(stats)));
    out.push_str("<h2>Roles</h2>\n<table>\n<tr><th>role</th><th>agent time</th><th>runs</th><th>failed</th><th>rate limited</th><th>tokens</th><th>cost</th></tr>\n");
    for (name, r) in &stats.roles {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            duration(r.agent_ms),
            r.attempts,
            r.failures,
            r.rate_limited,
            r.tokens,
            money(r.cost_usd)
        );
    }
    out.push_str("</table>\n<h2>Tasks</h2>\n<table>\n<tr><th>task</th><th class=\"title\">title</th><th>state</th><th>agent time</th><th>wall</th><th>attempts</th><th>failures</th><th>rejections</th><th>gate runs</th><th>gate failures</th><th>escalations</th><th>tokens</th><th>cost</th></tr>\n");
    for t in &stats.tasks {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"title\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&t.id),
            escape(&t.title),
            escape(&t.state),
            duration(t.agent_ms),
            duration(t.wall_ms),
            t.attempts,
            t.failures,
            t.rejections,
            t.gate_runs,
            t.gate_failures,
            t.escalations,
            t.tokens,
            money(t.cost_usd)
        );
    }
    if !stats.entries.is_empty() {
        out.push_str("</table>\n<h2>Merge queue</h2>\n<table>\n<tr><th>task</th><th class=\"title\">title</th><th>waited</th><th>in queue</th><th>gate runs</th><th>failed</th><th>cancelled</th><th>window</th><th>left</th></tr>\n");
        for e in &stats.entries {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"title\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&e.task),
                escape(&e.title),
                duration(e.waited_ms),
                duration(e.queued_ms),
                e.gate_runs,
                e.gate_failures,
                e.gate_cancelled,
                e.window,
                escape(&e.left)
            );
        }
    }
    out.push_str("</table>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_xml() {
        assert_eq!(escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot; ");
    }

    #[test]
    fn one_bar_per_run_and_a_lane_per_slot_and_the_queue() {
        let stats = Stats {
            wall_ms: 10_000,
            slots: 2,
            runs: (0..3)
                .map(|i| RunBar {
                    task: format!("t-{i}"),
                    title: "A <title>".into(),
                    role: "implementer".into(),
                    attempt: 1,
                    lane: i % 2,
                    start_ms: i as u64 * 1000,
                    end_ms: i as u64 * 1000 + 2500,
                    result: "submitted".into(),
                    ..RunBar::default()
                })
                .collect(),
            ..Stats::default()
        };
        let svg = svg(&stats);
        assert_eq!(svg.matches(r##"class="bar""##).count(), 3);
        assert_eq!(svg.matches(r##"class="lane""##).count(), 3);
        assert!(svg.contains("A &lt;title&gt;"));
        assert!(!svg.contains("<script") && !svg.contains("href"));
    }

    #[test]
    fn gate_runs_at_once_get_rows_of_their_own() {
        let gate = |start_ms, end_ms, result: &str| QueueBar {
            task: "t-a".into(),
            kind: "gate".into(),
            start_ms,
            end_ms,
            result: Some(result.into()),
            ..QueueBar::default()
        };
        let queue = vec![
            gate(0, 4000, "passed"),
            gate(1000, 2000, "not_run: cancelled (t-b left)"),
            gate(2500, 3000, "failed: exit 1"),
            gate(5000, 6000, "passed"),
        ];
        assert_eq!(gate_rows(&queue), [Some(0), Some(1), Some(1), Some(0)]);
        let svg = svg(&Stats {
            wall_ms: 6000,
            slots: 1,
            queue,
            ..Stats::default()
        });
        assert!(svg.contains(GATE_CANCELLED) && svg.contains(GATE_FAILED));
        // The queue's lane is two rows high.
        assert!(svg.contains(&format!(r##"height="{}" fill="#f3f4f6""##, 2.0 * LANE)));
    }
}
