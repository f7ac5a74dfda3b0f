//! `git agent stats`: where a run's time and money went, from the event
//! history alone (task chains and the spans their events carry), so that
//! it works on any clone for any past run. [`compute`] holds the rules,
//! [`picture`] draws the timeline, [`text`] prints the tables.
//!
//! Every field of [`Stats`] is documented in `git agent stats --help`
//! ([`FIELDS`]), which is also its man page.

pub mod compute;
pub mod picture;
pub mod text;

use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

use crate::model::span::epoch_ms;
use crate::model::usage::Usage;
use crate::store::Store;
use compute::{History, Planning, Selection};

/// What `stats --json` prints.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// The first moment counted: the earliest claim or span.
    pub from: Option<String>,
    /// The last moment counted: the latest span end or event.
    pub to: Option<String>,
    pub wall_ms: u64,
    pub agent_ms: u64,
    pub slots: usize,
    pub speedup: f64,
    pub tax_ms: u64,
    pub tax: Tax,
    pub critical_path_ms: u64,
    pub critical_path: Vec<String>,
    pub tokens: u64,
    pub cost_usd: f64,
    pub gate: GateStats,
    pub roles: BTreeMap<String, RoleStats>,
    pub tasks: Vec<TaskStats>,
    pub runs: Vec<RunBar>,
    pub queue: Vec<QueueBar>,
    /// Each stay of a task in the merge queue, oldest first.
    pub entries: Vec<QueueEntry>,
}

/// The coordination tax, by cause; the parts add up to `tax_ms`.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct Tax {
    pub setup_ms: u64,
    pub queue_ms: u64,
    pub gate_ms: u64,
    pub orchestration_ms: u64,
    pub no_work_ms: u64,
}

impl Tax {
    pub fn total(&self) -> u64 {
        self.setup_ms + self.queue_ms + self.gate_ms + self.orchestration_ms + self.no_work_ms
    }
}

/// The test gate's runs.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct GateStats {
    pub runs: u64,
    /// Runs that failed or timed out.
    pub failures: u64,
    /// Runs stopped before they finished: cancelled because the chain of
    /// candidates changed, or stopped with the queue. They say nothing of
    /// the work.
    pub cancelled: u64,
    pub ms: u64,
}

/// One stay of a task in the merge queue, from the event it left with.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct QueueEntry {
    pub task: String,
    pub title: String,
    /// When it entered the queue (its approval), from `from`.
    pub entered_ms: u64,
    /// From entering to the queue's first build of it.
    pub waited_ms: u64,
    /// From entering to leaving.
    pub queued_ms: u64,
    /// Gate runs on its candidates, by outcome.
    pub gate_runs: u64,
    pub gate_failures: u64,
    pub gate_cancelled: u64,
    /// The candidates the queue gated at once.
    pub window: usize,
    /// Why it left: merged, already_merged, gate_failed, gate_did_not_run,
    /// conflict, deadline.
    pub left: String,
}

/// One role's agents.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct RoleStats {
    pub agent_ms: u64,
    pub attempts: u64,
    pub failures: u64,
    pub rate_limited: u64,
    pub tokens: u64,
    pub cost_usd: f64,
}

/// One task.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct TaskStats {
    pub id: String,
    pub title: String,
    pub state: String,
    pub depends_on: Vec<String>,
    pub agent_ms: u64,
    pub wall_ms: u64,
    pub runs: u64,
    pub attempts: u64,
    pub failures: u64,
    pub rejections: u64,
    pub rate_limited: u64,
    pub gate_runs: u64,
    pub gate_failures: u64,
    pub gate_cancelled: u64,
    pub gate_ms: u64,
    pub escalations: u64,
    pub tokens: u64,
    pub cost_usd: f64,
}

/// One agent run: a bar of the timeline.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct RunBar {
    pub task: String,
    pub title: String,
    pub role: String,
    pub attempt: u32,
    pub lane: usize,
    pub start_ms: u64,
    pub end_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_start_ms: Option<u64>,
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

/// One merge-queue step: waiting, merging or gating.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct QueueBar {
    pub task: String,
    pub title: String,
    pub kind: String,
    pub start_ms: u64,
    pub end_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// What to count, as the command line says it.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// A plan id or unique prefix: its tasks only.
    pub plan: Option<String>,
    /// A time (`2026-01-02`, `2026-01-02T10:00`, RFC 3339) or an age
    /// (`2h`: the last two hours): events from then on only.
    pub since: Option<String>,
}

/// The stats of the repository `store` opens, for `filter`.
pub fn collect(store: &Store, filter: &Filter) -> Result<Stats> {
    let mut histories = Vec::new();
    for task in store.load_all()? {
        let events = store.events(&task.id)?;
        histories.push(History { task, events });
    }
    let plans = store.plans()?;
    let plan = filter
        .plan
        .as_deref()
        .map(|prefix| resolve_plan(&plans, prefix))
        .transpose()?;
    let tasks: Option<HashSet<String>> = plan.as_ref().map(|p| {
        histories
            .iter()
            .filter(|h| h.task.plan.as_deref() == Some(p.as_str()))
            .map(|h| h.task.id.clone())
            .collect()
    });
    let since_ms = filter.since.as_deref().map(since).transpose()?;
    let planning = planning(&plans, plan.as_deref(), since_ms);
    let selection = Selection { tasks, since_ms };
    Ok(compute::compute(&histories, &selection, &planning))
}

/// The full id of the plan `prefix` names.
fn resolve_plan(plans: &[(String, serde_json::Value)], prefix: &str) -> Result<String> {
    if let Some((id, _)) = plans.iter().find(|(id, _)| id == prefix) {
        return Ok(id.clone());
    }
    let matches: Vec<&String> = plans
        .iter()
        .map(|(id, _)| id)
        .filter(|id| id.starts_with(prefix))
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("--plan: no plan matches \"{prefix}\" (see `git log --glob=refs/agent/plans`)"),
        many => bail!(
            "--plan: \"{prefix}\" is ambiguous: it matches {}",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// What the planner agents of `plan` (or of every plan) did, for plans
/// stored at or after `since_ms`: their runs' spans, from each plan's event.
fn planning(
    plans: &[(String, serde_json::Value)],
    plan: Option<&str>,
    since_ms: Option<i64>,
) -> Vec<Planning> {
    plans
        .iter()
        .filter(|(id, _)| plan.is_none_or(|p| p == id))
        .filter(|(_, event)| {
            let at = event["at"].as_str().and_then(epoch_ms);
            since_ms.is_none_or(|s| at.is_some_and(|at| at >= s))
        })
        .map(|(id, event)| Planning {
            plan: id.clone(),
            goal: event["data"]["goal"].as_str().unwrap_or_default().into(),
            // A span this version cannot read is left out, not fatal.
            spans: serde_json::from_value(event["spans"].clone()).unwrap_or_default(),
            usage: serde_json::from_value::<Usage>(event["data"]["usage"].clone())
                .ok()
                .filter(|u| !u.is_empty()),
        })
        .filter(|p| !p.spans.is_empty() || p.usage.is_some())
        .collect()
}

/// `--since`: ms since the epoch of a time or of an age before now.
fn since(text: &str) -> Result<i64> {
    let text = text.trim();
    if let Ok(age) = crate::model::parse_duration(text) {
        return Ok(jiff::Timestamp::now().as_millisecond() - age.as_millis() as i64);
    }
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t.as_millisecond());
    }
    let zone = jiff::tz::TimeZone::system();
    if let Ok(t) = text.parse::<jiff::civil::DateTime>() {
        if let Ok(z) = t.to_zoned(zone.clone()) {
            return Ok(z.timestamp().as_millisecond());
        }
    }
    if let Ok(d) = text.parse::<jiff::civil::Date>() {
        if let Ok(z) = d.to_zoned(zone) {
            return Ok(z.timestamp().as_millisecond());
        }
    }
    bail!(
        "--since: \"{text}\" is neither a time (2026-01-02, 2026-01-02T10:00, RFC 3339) nor an age (90s, 10m, 2h, 1d)"
    )
}

/// The fields of `stats --json`, for `--help` and the man page.
pub const FIELDS: &str = "\
HOW IT COUNTS

Everything comes from the event history (refs/agent/tasks/*, refs/agent/plans/*) and the spans its events carry: when each agent process ran (the planner's runs are in the plan's event), when a worktree was set up, when approved work waited for the merge queue, when the queue merged and gated it. So it works on any clone, for any past run. Histories written before spans were recorded count implementer attempts from the claim to the event that ended them (estimated runs), and no reviewer, queue or gate time.

Agent runs are packed into slots: each run goes to the first slot free at its start (with the set-up before it), so `slots` is the most agents that ran at once. The picture (--svg, --html) has a lane per slot and one for the merge queue; each agent run is one bar, coloured by role and outlined by outcome, with hover text naming task, attempt and result.

JSON FIELDS (--json; times in milliseconds, money in dollars)

from, to: the first and last moment counted (RFC 3339): the earliest claim or span (a planner run included), the latest span end or event.

wall_ms: to - from.

agent_ms: the summed time of every agent process, all roles.

slots: agent slots (lanes of the picture): the most agents that ran at once.

speedup: agent_ms / wall_ms, how many agents worked on average.

tax_ms: the coordination tax: slot time in which no agent ran, slots * wall_ms - agent_ms. Each moment of it is put down to one cause, in this order, and the parts add up to tax_ms:

tax.setup_ms: the slot was setting up a worktree for its next run.

tax.orchestration_ms: a task could have moved (ready; in progress after its agent ended; in review with no reviewer running) but ran nowhere: the scheduler's latency, a predicted conflict, the parallel limit, or a role paused by a rate limit.

tax.gate_ms: the test gate ran.

tax.queue_ms: approved work waited for the merge queue or was being merged.

tax.no_work_ms: none of these: every other task waited for a dependency or a person, or was done.

critical_path_ms: the heaviest chain of depends_on among the tasks, each task weighed by its agent and gate time (planning is not part of it): a lower bound of wall_ms had slots been unlimited and coordination free. critical_path: that chain's task ids, first to last.

tokens, cost_usd: what agents reported, 0 where none did. Presets read the CLI's own report; any agent may write usage: {tokens, cost_usd} into $GIT_AGENT_OUTPUT.

gate.runs, gate.failures, gate.cancelled, gate.ms: test gate runs; those that failed or timed out; those stopped before they finished (a speculative run cancelled because an entry ahead of it left the chain, or a run stopped with the queue), which say nothing of the work; their summed time.

roles.<role> (planner, implementer, reviewer, integrator): agent_ms (its agents' summed time), attempts (its agent runs), failures (runs that used up an attempt of their task: an implementer that failed, a reviewer's changes verdict, an integrator that could not resolve, a planner whose plan was refused), rate_limited (runs that met a rate limit, using up no attempt), tokens, cost_usd.

tasks[]: id, title, state, depends_on; agent_ms (its agents' summed time, all roles); wall_ms (from its first claim or span to its last event); runs (agent runs of any role); attempts (implementer runs); failures (attempts used up: failed, changes asked, sent back by the queue); rejections (review verdicts that asked for changes); rate_limited; gate_runs, gate_failures, gate_cancelled, gate_ms; escalations (times it went to needs_human); tokens, cost_usd.

runs[]: each agent run, a bar of the picture: task, title (for a planner run: the plan's id and goal), role, attempt, lane (its slot, from 0), start_ms and end_ms (from `from`), setup_start_ms (when its set-up began), result (submitted, failed, rate_limited, interrupted, approve, changes, resolved, planned, refused, ...), tokens, cost_usd, estimated (timed from the claim, in a history without spans).

queue[]: each merge-queue step: task, title, kind (queue: waiting for the queue; merge; gate), start_ms, end_ms, result (for a gate: passed, failed: exit N, not_run: timed out, not_run: cancelled (why), not_run: stopped).

entries[]: each stay of a task in the merge queue, from the event it left with (merged, integration_failed, escalated): task, title, entered_ms (its approval, from `from`), waited_ms (until the queue first built a candidate of it), queued_ms (until it left), gate_runs, gate_failures, gate_cancelled (the runs on its candidates, cancelled ones included), window (the candidates gated at once), left (merged, already_merged, gate_failed, gate_did_not_run, conflict, deadline).";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_and_ages() {
        let now = jiff::Timestamp::now().as_millisecond();
        let two_hours = since("2h").unwrap();
        assert!((now - two_hours - 7_200_000).abs() < 5_000);
        assert_eq!(
            since("2026-01-02T03:04:05Z").unwrap(),
            "2026-01-02T03:04:05Z"
                .parse::<jiff::Timestamp>()
                .unwrap()
                .as_millisecond()
        );
        assert!(since("2026-01-02").is_ok());
        assert!(since("2026-01-02T10:00").is_ok());
        assert!(since("last tuesday")
            .unwrap_err()
            .to_string()
            .contains("--since"));
    }
}
