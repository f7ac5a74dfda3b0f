//! What both benchmarks share: run statistics and how durations print.
//! Included by each bench with `#[path = "common.rs"] mod common;`.

use std::time::Duration;

/// Median and minimum of a set of runs.
pub struct Stats {
    pub median: Duration,
    pub min: Duration,
    pub runs: usize,
}

impl Stats {
    pub fn of(mut times: Vec<Duration>) -> Stats {
        assert!(!times.is_empty(), "no runs to summarise");
        times.sort_unstable();
        let mid = times.len() / 2;
        let median = if times.len().is_multiple_of(2) {
            (times[mid - 1] + times[mid]) / 2
        } else {
            times[mid]
        };
        Stats {
            median,
            min: times[0],
            runs: times.len(),
        }
    }
}

/// The target as text, and whether the median meets it.
pub fn target(stats: &Stats, limit: Duration) -> String {
    let verdict = if stats.median < limit {
        "met"
    } else {
        "MISSED"
    };
    format!("< {} ({verdict})", show(limit))
}

/// A duration in the unit that reads best.
pub fn show(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 1.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.0} µs", ms * 1000.0)
    }
}
