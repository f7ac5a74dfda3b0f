//! `git agent stats` for people: the run in a few lines, then a table per
//! role and per task.

use super::Stats;

/// `1.2s`, `3m04s`, `2h05m`: a duration in ms, short.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{:.1}s", ms as f64 / 1000.0),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `$0.1234`, or `-` where nothing was reported.
pub fn money(usd: f64) -> String {
    if usd == 0.0 {
        "-".into()
    } else {
        format!("${usd:.4}")
    }
}

fn count(n: u64) -> String {
    if n == 0 {
        "-".into()
    } else {
        n.to_string()
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "0%".into()
    } else {
        format!("{:.0}%", part as f64 * 100.0 / whole as f64)
    }
}

/// The whole report.
pub fn render(stats: &Stats) -> String {
    if stats.runs.is_empty() && stats.wall_ms == 0 {
        return "nothing ran yet: no agent run is recorded for these tasks\n".into();
    }
    let mut out = summary(stats);
    out.push('\n');
    out.push_str(&roles(stats));
    out.push('\n');
    out.push_str(&tasks(stats));
    if !stats.entries.is_empty() {
        out.push('\n');
        out.push_str(&entries(stats));
    }
    out
}

/// The run in a few lines: wall, agent time, speed-up, tax, critical path.
pub fn summary(s: &Stats) -> String {
    let t = &s.tax;
    let slot_time = s.wall_ms * s.slots as u64;
    let mut out = format!(
        "wall {}   agent time {} on {} slot(s)   speed-up {:.2}x   critical path {}\n",
        duration(s.wall_ms),
        duration(s.agent_ms),
        s.slots,
        s.speedup,
        duration(s.critical_path_ms),
    );
    out.push_str(&format!(
        "coordination tax {} ({} of slot time): set-up {}, queue {}, gate {}, orchestration {}, no work {}\n",
        duration(s.tax_ms),
        percent(s.tax_ms, slot_time),
        duration(t.setup_ms),
        duration(t.queue_ms),
        duration(t.gate_ms),
        duration(t.orchestration_ms),
        duration(t.no_work_ms),
    ));
    if !s.critical_path.is_empty() {
        out.push_str(&format!(
            "critical path: {}\n",
            s.critical_path.join(" -> ")
        ));
    }
    out.push_str(&format!(
        "gate: {} run(s), {} failed, {} cancelled, {}   spent: {} tokens, {}\n",
        s.gate.runs,
        s.gate.failures,
        s.gate.cancelled,
        duration(s.gate.ms),
        s.tokens,
        money(s.cost_usd),
    ));
    out
}

fn roles(s: &Stats) -> String {
    let mut out = format!(
        "{:<12} {:>10} {:>8} {:>8} {:>8} {:>10} {:>10}\n",
        "role", "agent", "runs", "failed", "limited", "tokens", "cost"
    );
    for (name, r) in &s.roles {
        out.push_str(&format!(
            "{:<12} {:>10} {:>8} {:>8} {:>8} {:>10} {:>10}\n",
            name,
            duration(r.agent_ms),
            r.attempts,
            count(r.failures),
            count(r.rate_limited),
            count(r.tokens),
            money(r.cost_usd),
        ));
    }
    out
}

fn tasks(s: &Stats) -> String {
    let mut out = format!(
        "{:<10} {:<28} {:>12} {:>8} {:>8} {:>4} {:>4} {:>4} {:>5} {:>4} {:>9}\n",
        "task", "title", "state", "agent", "wall", "att", "fail", "rej", "gates", "esc", "cost"
    );
    for t in &s.tasks {
        out.push_str(&format!(
            "{:<10} {:<28} {:>12} {:>8} {:>8} {:>4} {:>4} {:>4} {:>5} {:>4} {:>9}\n",
            t.id,
            crate::model::one_line(&t.title, 28),
            t.state,
            duration(t.agent_ms),
            duration(t.wall_ms),
            t.attempts,
            count(t.failures),
            count(t.rejections),
            match t.gate_runs {
                0 => "-".to_string(),
                n => format!("{}/{n}", n - t.gate_failures - t.gate_cancelled),
            },
            count(t.escalations),
            money(t.cost_usd),
        ));
    }
    out
}

/// The merge queue, one line per stay of a task in it.
fn entries(s: &Stats) -> String {
    let mut out = String::from("merge queue\n");
    out.push_str(&format!(
        "{:<10} {:<28} {:>8} {:>8} {:>6} {:>6} {:>9} {:>6}  {}\n",
        "task", "title", "waited", "in queue", "gates", "failed", "cancelled", "window", "left"
    ));
    for e in &s.entries {
        out.push_str(&format!(
            "{:<10} {:<28} {:>8} {:>8} {:>6} {:>6} {:>9} {:>6}  {}\n",
            e.task,
            crate::model::one_line(&e.title, 28),
            duration(e.waited_ms),
            duration(e.queued_ms),
            e.gate_runs,
            count(e.gate_failures),
            count(e.gate_cancelled),
            e.window,
            e.left,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_short() {
        assert_eq!(duration(1234), "1.2s");
        assert_eq!(duration(184_000), "3m04s");
        assert_eq!(duration(7_500_000), "2h05m");
    }
}
