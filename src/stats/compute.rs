//! The numbers of `git agent stats`, computed from task histories alone.
//! Pure: the histories go in, [`Stats`] comes out; nothing here reads the
//! clock, the disk or git, so every rule is tested on made-up histories.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{GateStats, QueueBar, QueueEntry, RoleStats, RunBar, Stats, TaskStats, Tax};
use crate::model::queue::QueueStay;
use crate::model::span::{epoch_ms, kind, Span};
use crate::model::task::{apply, Change, Event, State, Task, Verdict};
use crate::model::usage::Usage;

/// One task and its whole history, oldest event first.
#[derive(Debug, Clone)]
pub struct History {
    pub task: Task,
    pub events: Vec<Event>,
}

/// What to count: the tasks of `tasks` (ids) and, of their events, those
/// at or after `since` (ms since the epoch).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub tasks: Option<HashSet<String>>,
    pub since_ms: Option<i64>,
}

/// A plan's planning, from the plan's event: the planner runs it records
/// (rate-limited, refused and accepted plans), or, for a plan stored before
/// spans were recorded, only what its planners reported they used.
#[derive(Debug, Clone, Default)]
pub struct Planning {
    pub plan: String,
    pub goal: String,
    pub spans: Vec<Span>,
    pub usage: Option<Usage>,
}

/// An agent run found in the history, in absolute ms.
#[derive(Debug, Clone)]
struct Run {
    task: String,
    role: String,
    attempt: u32,
    start: i64,
    end: i64,
    /// The set-up before it (same lane), if recorded.
    setup: Option<(i64, i64)>,
    result: String,
    usage: Option<Usage>,
    /// Timed from the claim to the event (a history without spans).
    estimated: bool,
}

/// A merge-queue step (queue wait, merge, gate), in absolute ms.
#[derive(Debug, Clone)]
struct Step {
    task: String,
    kind: String,
    start: i64,
    end: i64,
    result: Option<String>,
}

/// Compute the stats of `histories` (all tasks: dependencies outside the
/// selection still decide when a task was ready) for `selection`;
/// `planning` is what the planner agents of the selected plans did.
pub fn compute(histories: &[History], selection: &Selection, planning: &[Planning]) -> Stats {
    let chosen: Vec<&History> = histories
        .iter()
        .filter(|h| {
            selection
                .tasks
                .as_ref()
                .is_none_or(|ids| ids.contains(&h.task.id))
        })
        .collect();
    let since = selection.since_ms.unwrap_or(i64::MIN);
    let mut runs = Vec::new();
    let mut steps = Vec::new();
    for h in &chosen {
        collect(h, since, &mut runs, &mut steps);
    }
    for p in planning {
        runs.extend(planner_runs(p));
    }
    runs.sort_by_key(|r| (r.setup.map_or(r.start, |s| s.0), r.start));
    steps.sort_by_key(|s| (s.start, s.end));
    let (from, to) = window(&chosen, since, &runs, &steps);
    let lanes = assign_lanes(&runs);
    let slots = lanes.iter().copied().max().map_or(0, |l| l + 1);
    let wall_ms = (to - from).max(0) as u64;
    let agent_ms: u64 = runs.iter().map(|r| (r.end - r.start).max(0) as u64).sum();
    let timelines = timelines(histories);
    let tax = tax(
        &runs,
        &lanes,
        slots,
        &steps,
        &chosen,
        &timelines,
        (from, to),
    );
    let tasks: Vec<TaskStats> = chosen
        .iter()
        .map(|h| task_stats(h, since, &runs, &steps))
        .collect();
    let (critical_path_ms, critical_path) = critical_path(&tasks, &chosen);
    let mut roles = role_stats(&runs);
    for p in planning.iter().filter(|p| !has_agent_spans(p)) {
        if let Some(usage) = &p.usage {
            let planner = roles.entry("planner".into()).or_default();
            add_usage(&mut planner.tokens, &mut planner.cost_usd, Some(usage));
        }
    }
    let tokens = roles.values().map(|r| r.tokens).sum();
    let cost_usd = roles.values().map(|r| r.cost_usd).sum();
    let gate = gate_stats(&steps);
    let at = |ms: i64| (ms - from).max(0) as u64;
    let entries = chosen
        .iter()
        .flat_map(|h| stays(h, since))
        .map(|(h, stay)| queue_entry(h, stay, at))
        .collect();
    Stats {
        from: (wall_ms > 0 || !runs.is_empty()).then(|| timestamp(from)),
        to: (wall_ms > 0 || !runs.is_empty()).then(|| timestamp(to)),
        wall_ms,
        agent_ms,
        slots,
        speedup: if wall_ms == 0 {
            0.0
        } else {
            agent_ms as f64 / wall_ms as f64
        },
        tax_ms: tax.total(),
        tax,
        critical_path_ms,
        critical_path,
        tokens,
        cost_usd,
        gate,
        roles,
        tasks,
        runs: runs
            .iter()
            .zip(&lanes)
            .map(|(r, &lane)| RunBar {
                task: r.task.clone(),
                title: title_of(&chosen, planning, &r.task),
                role: r.role.clone(),
                attempt: r.attempt,
                lane,
                start_ms: at(r.start),
                end_ms: at(r.end),
                setup_start_ms: r.setup.map(|s| at(s.0)),
                result: r.result.clone(),
                tokens: r.usage.as_ref().and_then(|u| u.tokens),
                cost_usd: r.usage.as_ref().and_then(|u| u.cost_usd),
                estimated: r.estimated,
            })
            .collect(),
        queue: steps
            .iter()
            .map(|s| QueueBar {
                task: s.task.clone(),
                title: title_of(&chosen, planning, &s.task),
                kind: s.kind.clone(),
                start_ms: at(s.start),
                end_ms: at(s.end),
                result: s.result.clone(),
            })
            .collect(),
        entries,
    }
}

/// What a gate run's result says of the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GateOutcome {
    /// Passed, or had nothing to run.
    Passed,
    /// Failed or timed out: the candidate is at fault.
    Failed,
    /// Stopped before it finished (cancelled because the chain changed, or
    /// stopped with the queue): it says nothing of the work.
    Cancelled,
}

fn gate_outcome(result: Option<&str>) -> GateOutcome {
    match result {
        Some(r) if r.starts_with("failed") || r == "not_run: timed out" => GateOutcome::Failed,
        Some(r) if r.starts_with("not_run: cancelled") || r == "not_run: stopped" => {
            GateOutcome::Cancelled
        }
        _ => GateOutcome::Passed,
    }
}

/// The (runs, failed, cancelled) of gate results.
fn gate_counts<'a>(results: impl Iterator<Item = Option<&'a str>>) -> (u64, u64, u64) {
    results.fold((0, 0, 0), |(runs, failed, cancelled), r| {
        let o = gate_outcome(r);
        (
            runs + 1,
            failed + u64::from(o == GateOutcome::Failed),
            cancelled + u64::from(o == GateOutcome::Cancelled),
        )
    })
}

/// The merge-queue stays that `h`'s events at or after `since` record.
fn stays(h: &History, since: i64) -> impl Iterator<Item = (&History, &QueueStay)> {
    h.events
        .iter()
        .filter(move |e| epoch_ms(&e.at).is_some_and(|at| at >= since))
        .filter_map(move |e| match &e.change {
            Change::Merged { queue, .. }
            | Change::IntegrationFailed { queue, .. }
            | Change::Escalated { queue, .. } => queue.as_ref().map(|q| (h, q)),
            _ => None,
        })
}

fn queue_entry(h: &History, stay: &QueueStay, at: impl Fn(i64) -> u64) -> QueueEntry {
    let entered = epoch_ms(&stay.entered_at);
    let taken = epoch_ms(&stay.taken_at);
    let (gate_runs, gate_failures, gate_cancelled) =
        gate_counts(stay.gates.iter().map(|g| Some(g.result.as_str())));
    QueueEntry {
        task: h.task.id.clone(),
        title: h.task.title.clone(),
        entered_ms: entered.map_or(0, &at),
        waited_ms: match (entered, taken) {
            (Some(e), Some(t)) => (t - e).max(0) as u64,
            _ => 0,
        },
        queued_ms: stay.queued_ms,
        gate_runs,
        gate_failures,
        gate_cancelled,
        window: stay.window,
        left: stay.left.as_str().into(),
    }
}

/// The title of task `id`, or the goal of plan `id`.
fn title_of(chosen: &[&History], planning: &[Planning], id: &str) -> String {
    chosen
        .iter()
        .find(|h| h.task.id == id)
        .map(|h| h.task.title.clone())
        .or_else(|| {
            planning
                .iter()
                .find(|p| p.plan == id)
                .map(|p| p.goal.clone())
        })
        .unwrap_or_default()
}

fn has_agent_spans(p: &Planning) -> bool {
    p.spans.iter().any(|s| s.kind == kind::AGENT)
}

/// The planner runs of a plan, under the plan's id: each try of the
/// planner is an attempt, and runs that met a rate limit share the
/// attempt they delayed.
fn planner_runs(p: &Planning) -> Vec<Run> {
    let mut attempt = 1;
    let mut runs = Vec::new();
    for span in p.spans.iter().filter(|s| s.kind == kind::AGENT) {
        let Some((start, end)) = span_ms(span) else {
            continue;
        };
        let result = span.result.clone().unwrap_or_else(|| "planned".into());
        runs.push(Run {
            task: p.plan.clone(),
            role: span.role.clone().unwrap_or_else(|| "planner".into()),
            attempt,
            start,
            end,
            setup: None,
            result: result.clone(),
            usage: span.usage.clone(),
            estimated: false,
        });
        if result != "rate_limited" {
            attempt += 1;
        }
    }
    runs
}

/// `2026-01-01T00:00:00.000Z` for ms since the epoch.
fn timestamp(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

fn span_ms(span: &Span) -> Option<(i64, i64)> {
    let (start, end) = (epoch_ms(&span.start)?, epoch_ms(&span.end)?);
    Some((start, end.max(start)))
}

/// The agent runs and queue steps of one task's events at or after `since`.
fn collect(h: &History, since: i64, runs: &mut Vec<Run>, steps: &mut Vec<Step>) {
    let mut claimed_at: Option<i64> = None;
    for event in &h.events {
        let Some(at) = epoch_ms(&event.at) else {
            continue;
        };
        if matches!(event.change, Change::Claimed { .. }) {
            claimed_at = Some(at);
        }
        if at < since {
            continue;
        }
        if event.spans.is_empty() {
            if let Some(run) = estimated_run(h, event, at, claimed_at) {
                runs.push(run);
            }
            continue;
        }
        let mut setup = None;
        for span in &event.spans {
            let Some((start, end)) = span_ms(span) else {
                continue;
            };
            match span.kind.as_str() {
                kind::SETUP => setup = Some((start, end)),
                kind::AGENT => runs.push(Run {
                    task: h.task.id.clone(),
                    role: span.role.clone().unwrap_or_else(|| event.role.clone()),
                    attempt: event.attempt,
                    start,
                    end,
                    setup: setup.take(),
                    result: span
                        .result
                        .clone()
                        .unwrap_or_else(|| event.change.kind().into()),
                    usage: span.usage.clone(),
                    estimated: false,
                }),
                kind::QUEUE | kind::MERGE | kind::GATE => steps.push(Step {
                    task: h.task.id.clone(),
                    kind: span.kind.clone(),
                    start,
                    end,
                    result: span.result.clone(),
                }),
                _ => {}
            }
        }
    }
}

/// An implementer attempt in a history written before spans: from its
/// claim to the event that ended it.
fn estimated_run(h: &History, event: &Event, at: i64, claimed: Option<i64>) -> Option<Run> {
    let (result, usage) = match &event.change {
        Change::Submitted { usage, .. } => ("submitted", usage.clone()),
        Change::Failed { usage, .. } => ("failed", usage.clone()),
        Change::Released { .. } => ("released", None),
        _ => return None,
    };
    let start = claimed.filter(|&c| c <= at)?;
    Some(Run {
        task: h.task.id.clone(),
        role: event.role.clone(),
        attempt: event.attempt,
        start,
        end: at,
        setup: None,
        result: result.into(),
        usage,
        estimated: true,
    })
}

/// The first and last moment anything of the selection happened.
fn window(chosen: &[&History], since: i64, runs: &[Run], steps: &[Step]) -> (i64, i64) {
    let mut from = i64::MAX;
    let mut to = i64::MIN;
    let mut see = |start: i64, end: i64| {
        from = from.min(start);
        to = to.max(end);
    };
    for r in runs {
        see(r.setup.map_or(r.start, |s| s.0), r.end);
    }
    for s in steps {
        see(s.start, s.end);
    }
    for h in chosen {
        for e in &h.events {
            let Some(at) = epoch_ms(&e.at).filter(|&at| at >= since) else {
                continue;
            };
            match e.change {
                // Creating and editing tasks is planning, not the run.
                Change::Created(_) | Change::Edited(_) => {}
                Change::Claimed { .. } => see(at, at),
                _ => see(i64::MAX, at),
            }
        }
    }
    if from > to {
        return (0, 0);
    }
    (from, to)
}

/// A lane for each run (with its set-up): the first lane free at its
/// start, so that lanes are as few as the runs at once at most.
fn assign_lanes(runs: &[Run]) -> Vec<usize> {
    let mut free_at: Vec<i64> = Vec::new();
    runs.iter()
        .map(|r| {
            let start = r.setup.map_or(r.start, |s| s.0);
            let lane = match free_at.iter().position(|&f| f <= start) {
                Some(lane) => lane,
                None => {
                    free_at.push(i64::MIN);
                    free_at.len() - 1
                }
            };
            free_at[lane] = r.end;
            lane
        })
        .collect()
}

/// Each task's state from each event on, in absolute ms, oldest first.
fn timelines(histories: &[History]) -> HashMap<String, Vec<(i64, State)>> {
    histories
        .iter()
        .map(|h| {
            let mut task: Option<Task> = None;
            let mut line = Vec::new();
            for e in &h.events {
                // A history that does not fold (edited by hand) is read as far as it goes.
                let Ok(next) = apply(task.as_ref(), e, &h.task.id) else {
                    break;
                };
                if let Some(at) = epoch_ms(&e.at) {
                    line.push((at, next.state));
                }
                task = Some(next);
            }
            (h.task.id.clone(), line)
        })
        .collect()
}

fn state_at(line: &[(i64, State)], t: i64) -> Option<State> {
    line.iter()
        .take_while(|(at, _)| *at <= t)
        .last()
        .map(|(_, s)| *s)
}

/// Whether task `h` waited at `t` for the orchestrator to give it a slot:
/// it could move (ready, in progress or in review) but nothing of its own ran.
fn waits_for_a_slot(h: &History, timelines: &HashMap<String, Vec<(i64, State)>>, t: i64) -> bool {
    let Some(state) = timelines.get(&h.task.id).and_then(|l| state_at(l, t)) else {
        return false;
    };
    match state {
        State::InProgress | State::InReview => true,
        State::Open => h.task.depends_on.iter().all(|d| {
            timelines
                .get(d)
                .and_then(|l| state_at(l, t))
                .is_some_and(|s| s == State::Merged)
        }),
        _ => false,
    }
}

/// Slot time in which no agent ran, each moment put down to its cause.
fn tax(
    runs: &[Run],
    lanes: &[usize],
    slots: usize,
    steps: &[Step],
    chosen: &[&History],
    timelines: &HashMap<String, Vec<(i64, State)>>,
    (from, to): (i64, i64),
) -> Tax {
    let mut tax = Tax::default();
    if slots == 0 || to <= from {
        return tax;
    }
    let mut cuts: Vec<i64> = vec![from, to];
    for r in runs {
        cuts.extend([r.start, r.end]);
        if let Some((s, e)) = r.setup {
            cuts.extend([s, e]);
        }
    }
    for s in steps {
        cuts.extend([s.start, s.end]);
    }
    for line in timelines.values() {
        cuts.extend(line.iter().map(|(at, _)| *at));
    }
    cuts.retain(|&c| (from..=to).contains(&c));
    cuts.sort_unstable();
    cuts.dedup();
    for pair in cuts.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let (d, mid) = ((b - a) as u64, a + (b - a) / 2);
        let covers = |s: i64, e: i64| s <= a && b <= e;
        let mut busy = vec![false; slots];
        let mut setting_up = vec![false; slots];
        let mut busy_tasks: HashSet<&str> = HashSet::new();
        for (r, &lane) in runs.iter().zip(lanes) {
            if covers(r.start, r.end) {
                busy[lane] = true;
                busy_tasks.insert(&r.task);
            } else if r.setup.is_some_and(|(s, e)| covers(s, e)) {
                setting_up[lane] = true;
                busy_tasks.insert(&r.task);
            }
        }
        let step_on = |k: &str| steps.iter().any(|s| s.kind == k && covers(s.start, s.end));
        for s in steps.iter().filter(|s| covers(s.start, s.end)) {
            busy_tasks.insert(&s.task);
        }
        let mut waiting = chosen
            .iter()
            .filter(|h| !busy_tasks.contains(h.task.id.as_str()))
            .filter(|h| waits_for_a_slot(h, timelines, mid))
            .count();
        for lane in 0..slots {
            if busy[lane] {
                continue;
            }
            let part = if setting_up[lane] {
                &mut tax.setup_ms
            } else if waiting > 0 {
                waiting -= 1;
                &mut tax.orchestration_ms
            } else if step_on(kind::GATE) {
                &mut tax.gate_ms
            } else if step_on(kind::MERGE) || step_on(kind::QUEUE) {
                &mut tax.queue_ms
            } else {
                &mut tax.no_work_ms
            };
            *part += d;
        }
    }
    tax
}

fn add_usage(tokens: &mut u64, cost: &mut f64, usage: Option<&Usage>) {
    if let Some(u) = usage {
        *tokens += u.tokens.unwrap_or(0);
        *cost += u.cost_usd.unwrap_or(0.0);
    }
}

/// Whether a run's result used up an attempt of its task (for a planner:
/// a try of its plan).
fn is_failure(result: &str) -> bool {
    matches!(result, "failed" | "changes" | "lost" | "refused")
}

fn role_stats(runs: &[Run]) -> BTreeMap<String, RoleStats> {
    let mut roles: BTreeMap<String, RoleStats> = BTreeMap::new();
    for r in runs {
        let role = roles.entry(r.role.clone()).or_default();
        role.agent_ms += (r.end - r.start).max(0) as u64;
        role.attempts += 1;
        role.failures += u64::from(is_failure(&r.result));
        role.rate_limited += u64::from(r.result == "rate_limited");
        add_usage(&mut role.tokens, &mut role.cost_usd, r.usage.as_ref());
    }
    roles
}

fn gate_stats(steps: &[Step]) -> GateStats {
    let gates = || steps.iter().filter(|s| s.kind == kind::GATE);
    let (runs, failures, cancelled) = gate_counts(gates().map(|s| s.result.as_deref()));
    GateStats {
        runs,
        failures,
        cancelled,
        ms: gates().map(|s| (s.end - s.start).max(0) as u64).sum(),
    }
}

fn task_stats(h: &History, since: i64, runs: &[Run], steps: &[Step]) -> TaskStats {
    let id = &h.task.id;
    let mine: Vec<&Run> = runs.iter().filter(|r| &r.task == id).collect();
    let gates: Vec<&Step> = steps
        .iter()
        .filter(|s| &s.task == id && s.kind == kind::GATE)
        .collect();
    let mut t = TaskStats {
        id: id.clone(),
        title: h.task.title.clone(),
        state: h.task.state.as_str().to_string(),
        depends_on: h.task.depends_on.clone(),
        ..TaskStats::default()
    };
    for r in &mine {
        t.agent_ms += (r.end - r.start).max(0) as u64;
        t.runs += 1;
        if r.role == "implementer" {
            t.attempts += 1;
        }
        t.rate_limited += u64::from(r.result == "rate_limited");
        add_usage(&mut t.tokens, &mut t.cost_usd, r.usage.as_ref());
    }
    (t.gate_runs, t.gate_failures, t.gate_cancelled) =
        gate_counts(gates.iter().map(|g| g.result.as_deref()));
    t.gate_ms = gates.iter().map(|g| (g.end - g.start).max(0) as u64).sum();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    let mut task: Option<Task> = None;
    for e in &h.events {
        let next = apply(task.as_ref(), e, id).ok();
        let at = epoch_ms(&e.at).filter(|&at| at >= since);
        if let (Some(at), Some(next)) = (at, &next) {
            let was = task.as_ref().map(|t| t.state);
            t.failures += u64::from(next.attempts > task.as_ref().map_or(0, |t| t.attempts));
            t.escalations +=
                u64::from(next.state == State::NeedsHuman && was != Some(State::NeedsHuman));
            if let Change::Reviewed {
                verdict: Verdict::Changes,
                ..
            } = e.change
            {
                t.rejections += 1;
            }
            if !matches!(e.change, Change::Created(_) | Change::Edited(_)) {
                first = first.min(at);
                last = last.max(at);
            }
        }
        if next.is_some() {
            task = next;
        }
    }
    for r in &mine {
        first = first.min(r.setup.map_or(r.start, |s| s.0));
    }
    for s in steps.iter().filter(|s| &s.task == id) {
        first = first.min(s.start);
    }
    t.wall_ms = if first <= last {
        (last - first) as u64
    } else {
        0
    };
    t
}

/// The longest chain of dependencies among the selected tasks, weighed by
/// each task's agent and gate time: a lower bound of the wall time, had
/// every slot been free and coordination cost nothing.
fn critical_path(tasks: &[TaskStats], chosen: &[&History]) -> (u64, Vec<String>) {
    let weight: HashMap<&str, u64> = tasks
        .iter()
        .map(|t| (t.id.as_str(), t.agent_ms + t.gate_ms))
        .collect();
    let deps: HashMap<&str, &[String]> = chosen
        .iter()
        .map(|h| (h.task.id.as_str(), h.task.depends_on.as_slice()))
        .collect();
    let mut best: HashMap<&str, (u64, Vec<String>)> = HashMap::new();
    let mut longest = (0, Vec::new());
    for t in tasks {
        let path = chain(&t.id, &weight, &deps, &mut best, &mut HashSet::new());
        if path.0 > longest.0 {
            longest = path;
        }
    }
    longest
}

/// The heaviest chain that ends at `id`, oldest first (memoized; a cycle,
/// which plans refuse, is cut where it closes).
fn chain<'a>(
    id: &'a str,
    weight: &HashMap<&'a str, u64>,
    deps: &HashMap<&'a str, &'a [String]>,
    best: &mut HashMap<&'a str, (u64, Vec<String>)>,
    visiting: &mut HashSet<&'a str>,
) -> (u64, Vec<String>) {
    if let Some(done) = best.get(id) {
        return done.clone();
    }
    if !visiting.insert(id) {
        return (0, Vec::new());
    }
    let mut heaviest = (0, Vec::new());
    for dep in deps.get(id).copied().unwrap_or_default() {
        if !weight.contains_key(dep.as_str()) {
            continue;
        }
        let path = chain(dep.as_str(), weight, deps, best, visiting);
        if path.0 > heaviest.0 || heaviest.1.is_empty() {
            heaviest = path;
        }
    }
    visiting.remove(id);
    heaviest.0 += weight.get(id).copied().unwrap_or(0);
    heaviest.1.push(id.to_string());
    best.insert(id, heaviest.clone());
    heaviest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::task::NewTask;

    /// `2026-01-01T00:00:<s>` as RFC 3339, `s` in seconds (fractions allowed).
    fn at(s: f64) -> String {
        timestamp(1_767_225_600_000 + (s * 1000.0) as i64)
    }

    fn event(change: Change, when: f64, role: &str, attempt: u32, spans: Vec<Span>) -> Event {
        Event {
            id: format!("e-{when}"),
            change,
            at: at(when),
            actor: "a".into(),
            role: role.into(),
            attempt,
            lamport: 0,
            spans,
        }
    }

    fn agent(role: &str, start: f64, end: f64, result: &str) -> Span {
        let mut span = Span::new(kind::AGENT, &at(start), &at(end)).ended(result);
        span.role = Some(role.into());
        span
    }

    /// A task claimed at `claim`, set up for a second, implemented until
    /// `done`, reviewed for a second, queued, merged and gated.
    fn history(id: &str, deps: &[&str], claim: f64, done: f64) -> History {
        let new = NewTask {
            title: id.to_uppercase(),
            spec: String::new(),
            plan: None,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            scope: vec![],
            priority: 2,
            labels: vec![],
            max_attempts: 3,
            seq: 0,
        };
        let events = vec![
            event(Change::Created(new), 0.0, "human", 0, vec![]),
            event(
                Change::Claimed {
                    assignee: "i".into(),
                },
                claim,
                "implementer",
                1,
                vec![],
            ),
            event(
                Change::Submitted {
                    head: "h".into(),
                    branch: None,
                    base: None,
                    usage: None,
                },
                done,
                "implementer",
                1,
                vec![
                    Span::new(kind::SETUP, &at(claim), &at(claim + 1.0)),
                    agent("implementer", claim + 1.0, done, "submitted"),
                ],
            ),
            event(
                Change::Reviewed {
                    verdict: Verdict::Approve,
                    head: "h".into(),
                    summary: None,
                    usage: None,
                },
                done + 1.0,
                "reviewer",
                1,
                vec![agent("reviewer", done, done + 1.0, "approve")],
            ),
            event(
                Change::Merged {
                    commit: None,
                    usage: None,
                    queue: None,
                },
                done + 3.0,
                "integrator",
                1,
                vec![
                    Span::new(kind::QUEUE, &at(done + 1.0), &at(done + 1.5)),
                    Span::new(kind::MERGE, &at(done + 1.5), &at(done + 2.0)),
                    Span::new(kind::GATE, &at(done + 2.0), &at(done + 3.0)).ended("passed"),
                ],
            ),
        ];
        let mut task: Option<Task> = None;
        for e in &events {
            task = Some(apply(task.as_ref(), e, id).unwrap());
        }
        History {
            task: task.unwrap(),
            events,
        }
    }

    #[test]
    fn a_chain_on_one_slot_pays_its_set_up_queue_and_gate() {
        // a: claimed at 0, agent 1..5, review 5..6, queue, merge, gate till 8;
        // b after a: claimed at 8.5, agent 9.5..12, review till 13, gate till 15.
        let histories = vec![history("a", &[], 0.0, 5.0), history("b", &["a"], 8.5, 12.0)];
        let stats = compute(&histories, &Selection::default(), &[]);
        assert_eq!((stats.wall_ms, stats.slots), (15_000, 1));
        assert_eq!(stats.agent_ms, 4000 + 1000 + 2500 + 1000);
        assert_eq!(stats.agent_ms + stats.tax_ms, stats.wall_ms);
        let tax = &stats.tax;
        assert_eq!(tax.setup_ms, 2000);
        assert_eq!(tax.gate_ms, 2000);
        // Queue waits and merges: 1s for each task.
        assert_eq!(tax.queue_ms, 2000);
        // From a's merge (8) to b's claim (8.5): b was ready and ran nowhere.
        assert_eq!(tax.orchestration_ms, 500);
        assert_eq!(tax.no_work_ms, 0);
        assert_eq!(stats.critical_path, ["a", "b"]);
        assert_eq!(
            stats.critical_path_ms,
            (4000 + 1000 + 1000) + (2500 + 1000 + 1000)
        );
        assert_eq!(stats.runs.len(), 4);
        assert_eq!(stats.gate.runs, 2);
        assert_eq!(stats.tasks[1].wall_ms, 15_000 - 8_500);
    }

    #[test]
    fn tasks_side_by_side_take_two_slots_and_idle_ones_have_no_work() {
        // c is merged at 6 while a runs until 9 and is reviewed until 10:
        // c's slot has nothing to do for those 4 s.
        let histories = vec![history("a", &[], 0.0, 9.0), history("c", &[], 0.0, 3.0)];
        let stats = compute(&histories, &Selection::default(), &[]);
        assert_eq!(stats.slots, 2);
        assert_eq!(stats.agent_ms + stats.tax_ms, 2 * stats.wall_ms);
        assert!(stats.speedup > 0.0);
        assert_eq!(stats.tax.no_work_ms, 4000, "{:?}", stats.tax);
        let lanes: HashSet<usize> = stats.runs.iter().map(|r| r.lane).collect();
        assert_eq!(lanes.len(), 2);
        // One task alone: the selection counts only it.
        let only_c = Selection {
            tasks: Some(["c".to_string()].into()),
            since_ms: None,
        };
        let stats = compute(&histories, &only_c, &[]);
        assert_eq!(stats.tasks.len(), 1);
        assert_eq!(stats.slots, 1);
    }

    #[test]
    fn a_history_without_spans_counts_implementer_attempts_from_the_claim() {
        let mut h = history("a", &[], 0.0, 5.0);
        for e in &mut h.events {
            e.spans.clear();
        }
        let stats = compute(&[h], &Selection::default(), &[]);
        assert_eq!(stats.runs.len(), 1);
        assert!(stats.runs[0].estimated);
        assert_eq!(stats.agent_ms, 5000);
        assert_eq!(stats.gate.runs, 0);
    }

    #[test]
    fn usage_adds_up_per_role_and_task_and_the_planner_counts() {
        let mut h = history("a", &[], 0.0, 5.0);
        let usage = Usage {
            tokens: Some(100),
            cost_usd: Some(0.5),
            ..Usage::default()
        };
        for e in &mut h.events {
            for s in &mut e.spans {
                if s.kind == kind::AGENT {
                    s.usage = Some(usage.clone());
                }
            }
        }
        let planning = Planning {
            plan: "p".into(),
            goal: "G".into(),
            spans: vec![],
            usage: Some(usage),
        };
        let stats = compute(&[h], &Selection::default(), &[planning]);
        assert_eq!(stats.tokens, 300);
        assert!((stats.cost_usd - 1.5).abs() < 1e-9);
        assert_eq!(stats.roles["implementer"].tokens, 100);
        assert_eq!(stats.roles["planner"].tokens, 100);
        assert_eq!(stats.tasks[0].tokens, 200);
    }

    #[test]
    fn planner_runs_are_bars_of_their_plan_with_attempts_and_a_lane() {
        // The planner is rate limited at 0..0.5, its plan refused at 1..2,
        // and accepted at 2..4; the plan's task is claimed at 5.
        let planning = Planning {
            plan: "p-1".into(),
            goal: "Greet".into(),
            spans: vec![
                agent("planner", 0.0, 0.5, "rate_limited"),
                agent("planner", 1.0, 2.0, "refused"),
                agent("planner", 2.0, 4.0, "planned"),
            ],
            usage: Some(Usage {
                tokens: Some(999),
                ..Usage::default()
            }),
        };
        let histories = vec![history("a", &[], 5.0, 9.0)];
        let stats = compute(&histories, &Selection::default(), &[planning]);
        let planner: Vec<&RunBar> = stats.runs.iter().filter(|r| r.role == "planner").collect();
        assert_eq!(planner.len(), 3, "{:?}", stats.runs);
        assert!(planner
            .iter()
            .all(|r| r.task == "p-1" && r.title == "Greet"));
        let attempts: Vec<u32> = planner.iter().map(|r| r.attempt).collect();
        assert_eq!(attempts, [1, 1, 2], "a rate limit uses up no try");
        assert_eq!((planner[2].start_ms, planner[2].end_ms), (2000, 4000));
        let role = &stats.roles["planner"];
        assert_eq!(
            (
                role.agent_ms,
                role.attempts,
                role.failures,
                role.rate_limited
            ),
            (3500, 3, 1, 1)
        );
        // The spans carry no usage, and the plan's summed usage is not
        // counted again beside them.
        assert_eq!(role.tokens, 0);
        // The run begins with its planning, which adds to agent time and
        // to the slots' accounts alike.
        assert_eq!(stats.from.as_deref(), Some(at(0.0).as_str()));
        assert_eq!(stats.wall_ms, 12_000);
        assert_eq!(stats.slots, 1);
        assert_eq!(stats.agent_ms + stats.tax_ms, stats.wall_ms);
        assert_eq!(stats.critical_path, ["a"]);
        let svg = super::super::picture::svg(&stats);
        assert_eq!(svg.matches(r##"data-role="planner""##).count(), 3, "{svg}");
    }

    #[test]
    fn nothing_run_is_all_zero() {
        let stats = compute(&[], &Selection::default(), &[]);
        assert_eq!((stats.wall_ms, stats.slots, stats.tax_ms), (0, 0, 0));
        assert_eq!(stats.from, None);
    }

    #[test]
    fn a_cancelled_speculative_gate_is_no_failure_and_the_stay_is_an_entry() {
        use crate::model::queue::{GateRun, Left};
        let mut h = history("a", &[], 0.0, 5.0);
        let gate = |result: &str, start: f64| GateRun {
            commit: "c".into(),
            tree: "t".into(),
            base: "b".into(),
            position: 2,
            run: 1,
            result: result.into(),
            started_at: at(start),
            duration_ms: 500,
        };
        let merged = h.events.last_mut().unwrap();
        merged
            .spans
            .push(Span::new(kind::GATE, &at(7.0), &at(7.5)).ended("not_run: cancelled (t-b left)"));
        merged
            .spans
            .push(Span::new(kind::GATE, &at(7.5), &at(7.8)).ended("failed: exit 1"));
        merged.change = Change::Merged {
            commit: None,
            usage: None,
            queue: Some(QueueStay {
                entered_at: at(6.0),
                taken_at: at(6.5),
                left_at: at(8.0),
                queued_ms: 2000,
                left: Left::Merged,
                gates: vec![
                    gate("not_run: cancelled (t-b left)", 7.0),
                    gate("failed: exit 1", 7.5),
                    gate("passed", 7.0),
                ],
                window: 4,
            }),
        };
        let stats = compute(&[h], &Selection::default(), &[]);
        assert_eq!(
            (stats.gate.runs, stats.gate.failures, stats.gate.cancelled),
            (3, 1, 1)
        );
        let t = &stats.tasks[0];
        assert_eq!((t.gate_runs, t.gate_failures, t.gate_cancelled), (3, 1, 1));
        let [entry] = stats.entries.as_slice() else {
            panic!("one stay: {:?}", stats.entries);
        };
        assert_eq!(entry.task, "a");
        assert_eq!(
            (entry.entered_ms, entry.waited_ms, entry.queued_ms),
            (6000, 500, 2000)
        );
        assert_eq!(
            (entry.gate_runs, entry.gate_failures, entry.gate_cancelled),
            (3, 1, 1)
        );
        assert_eq!((entry.window, entry.left.as_str()), (4, "merged"));
        let text = super::super::text::render(&stats);
        assert!(text.contains("merge queue"), "{text}");
        assert!(text.contains("1 failed, 1 cancelled"), "{text}");
    }
}
