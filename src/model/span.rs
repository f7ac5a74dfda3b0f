//! When the work an event accounts for ran: agent processes, worktree
//! set-up, waits in the merge queue, merges and gate runs, as the
//! orchestrator timed them. The event that ends an attempt carries the spans
//! of that attempt, so `git agent stats` can tell where a run's time went
//! from the history alone, on any clone.

use serde::{Deserialize, Serialize};

use crate::model::task::{Change, Event};
use crate::model::usage::Usage;

/// Kinds of span, as written in `kind`. Other kinds may appear in histories
/// written by later versions: readers skip what they do not know.
pub mod kind {
    /// Getting an attempt ready: the worktree made or recycled, the prompt
    /// written (implementer), the review worktree checked out (reviewer).
    pub const SETUP: &str = "setup";
    /// An agent process, from its start to its end; `role` names its role.
    pub const AGENT: &str = "agent";
    /// Approved work waiting for the merge queue to take it.
    pub const QUEUE: &str = "queue";
    /// The merge queue building a candidate: the merge onto the target
    /// (with any integrator agent) up to the gate.
    pub const MERGE: &str = "merge";
    /// The test gate on a merged tree; `result` says how it ended.
    pub const GATE: &str = "gate";
}

/// One stretch of work, from `start` to `end` (RFC 3339, UTC, ms).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Span {
    pub kind: String,
    pub start: String,
    pub end: String,
    /// For an agent span: the role the agent played.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// How it ended, in a word: `submitted`, `failed`, `rate_limited`,
    /// `interrupted`, `approve`, `changes`, `passed`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// What an agent reported it used in this span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

impl Span {
    /// A span of `kind` from `start` to `end`, with nothing else said.
    pub fn new(kind: &str, start: &str, end: &str) -> Span {
        Span {
            kind: kind.to_string(),
            start: start.to_string(),
            end: end.to_string(),
            role: None,
            result: None,
            usage: None,
        }
    }

    /// The same span, with how it ended.
    pub fn ended(mut self, result: &str) -> Span {
        self.result = Some(result.to_string());
        self
    }
}

/// What the agents of `event` reported they used: the sum over its agent
/// spans where it has them (each attempt's own report), else the usage its
/// data carries (histories written before spans were recorded).
pub fn usage_of(event: &Event) -> Option<Usage> {
    let agents: Vec<&Usage> = event
        .spans
        .iter()
        .filter(|s| s.kind == kind::AGENT)
        .filter_map(|s| s.usage.as_ref())
        .collect();
    if event.spans.iter().any(|s| s.kind == kind::AGENT) {
        return agents.into_iter().cloned().reduce(|a, b| a.plus(&b));
    }
    match &event.change {
        Change::Failed { usage, .. }
        | Change::Submitted { usage, .. }
        | Change::Reviewed { usage, .. }
        | Change::IntegrationFailed { usage, .. }
        | Change::Merged { usage, .. } => usage.clone(),
        _ => None,
    }
}

/// Milliseconds since the Unix epoch of an RFC 3339 time, if it is one.
pub fn epoch_ms(at: &str) -> Option<i64> {
    at.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_round_trip_and_leave_out_what_they_lack() {
        let span = Span::new(
            kind::GATE,
            "2026-01-01T00:00:00.000Z",
            "2026-01-01T00:00:01.500Z",
        )
        .ended("passed");
        let json = serde_json::to_value(&span).unwrap();
        assert_eq!(json["kind"], "gate");
        assert!(json.get("usage").is_none());
        let back: Span = serde_json::from_value(json).unwrap();
        assert_eq!(back, span);
        assert_eq!(
            epoch_ms(&span.end).unwrap() - epoch_ms(&span.start).unwrap(),
            1500
        );
        assert_eq!(epoch_ms("yesterday"), None);
    }
}
