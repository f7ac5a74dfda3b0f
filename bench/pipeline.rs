//! What orchestration costs: `git-agent run` with scripted agents that do
//! next to nothing, so that what is left of the wall time is git-agent's.
//!
//! Run by hand (CI does not run it; it takes about a minute):
//!
//! ```text
//! cargo bench --bench pipeline
//! ```
//!
//! Cargo builds the `git-agent` binary with the bench profile and hands its
//! path to this program. Each run works on a fresh temporary repository
//! (`git init -b main` plus one empty commit) with `.git-agent.yaml` at its
//! root (untracked) and scripted agents, small sh scripts this program writes
//! beside the repository. Every agent appends one line to a record file,
//! `<role> <task> <attempt> <start> <end>` (epoch nanoseconds from
//! `date +%s%N`, taken inside the script), so agent time is what the agent
//! itself saw; the start of `sh` and of the first `date` count as overhead.
//! The program prints one markdown table (then any problems it saw):
//!
//! 1. Orchestration overhead per task (issue 3, target < 100 ms): 20
//!    independent tasks whose implementer writes one file, commits it and
//!    exits; no reviewer, no gate; `git-agent run -j 1` and `-j 4`.
//!    Overhead per task = (wall time of `run` − Σ agent time) / 20. At
//!    `-j 1` it is split with the task events into "claimed → agent
//!    started" (worktree, prompt, spawn), "agent ended → submitted"
//!    (provenance, submit) and the rest; at `-j 4` those are latencies that
//!    overlap across the slots.
//! 2. 16 tasks whose implementer sleeps 2 s, `-j 8`, implementer only: wall
//!    time against the ideal 4 s, with how long the first wave took to
//!    fill the eight slots.
//! 3. A 30-task plan end to end (issue 4): three layers of ten (each task of
//!    the second depends on two of the first, each of the third on one of
//!    the second),
//!    implementer (sleeps 0.3 s), reviewer (sleeps 0.2 s, approves) and gate
//!    (`test:` a script that sleeps 0.2 s), `-j 4`, until
//!    `git-agent status --json` counts 30 merged (asserted), once with the
//!    merge queue's default window (`parallel`, 4 gates at once: issue 14)
//!    and once with `integrate: { window: 1 }` (the serial queue). The wall
//!    time of each; the critical path of the task graph (the longest
//!    dependency chain of implementer + reviewer + gate spans) and the
//!    wall's ratio to it (issue 14's target: within 1.3×); what the slots
//!    allow (Σ implementer / 4, Σ reviewer / 4, Σ gate / window); gate
//!    utilisation (Σ gate / (window × wall)); agent time per role; the
//!    capacity the run left unused; and the mean latency of each handoff
//!    between the steps, from the task events and the spans.
//!
//! Every run checks the outcome in the store: each task's agents ran
//! exactly once, each task has exactly one `claimed` and one `submitted`
//! event (and one `reviewed` and one `merged` in 3), and `status --json`
//! counts every task in the expected state; a task done twice is an error,
//! not a slow run. What `git-agent run` itself says (exit code, summary
//! line, take-overs, leases left behind) is compared with that and any
//! difference listed after the table. Event times are whole milliseconds,
//! so a handoff measured from an event is good to about 1 ms.
//! Timings are medians (and minima) over three runs each.

#[path = "common.rs"]
mod common;
use common::{show, target, Stats};

use std::collections::HashMap;
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// The binary under test, built by cargo for this bench.
const BIN: &str = env!("CARGO_BIN_EXE_git-agent");

const RUNS: usize = 3;
const OVERHEAD_TASKS: usize = 20;
const SLEEPY_TASKS: usize = 16;
const SLEEPY_SECONDS: u64 = 2;
const SLEEPY_JOBS: usize = 8;
const LAYERS: usize = 3;
const LAYER_WIDTH: usize = 10;
const PIPELINE_JOBS: usize = 4;
/// Seconds each agent of the pipeline sleeps (as `sleep` takes them).
const PIPELINE_IMPLEMENTER: &str = "0.3";
const PIPELINE_REVIEWER: &str = "0.2";
const PIPELINE_GATE: &str = "0.2";

/// The implementer: read the prompt, sleep `$2` seconds, write a file of
/// its own (so no two tasks conflict), commit it, record its span in `$1`.
const IMPLEMENTER: &str = r#"#!/bin/sh
set -e
start=$(date +%s%N)
cat > /dev/null
[ "$2" = 0 ] || sleep "$2"
echo "$GIT_AGENT_TASK attempt $GIT_AGENT_ATTEMPT" > "work-$GIT_AGENT_TASK.txt"
git add -A
git commit -q -m "Implement $GIT_AGENT_TASK"
echo "implementer $GIT_AGENT_TASK $GIT_AGENT_ATTEMPT $start $(date +%s%N)" >> "$1"
"#;

/// The reviewer: read the prompt, sleep `$2` seconds, approve.
const REVIEWER: &str = r#"#!/bin/sh
set -e
start=$(date +%s%N)
cat > /dev/null
[ "$2" = 0 ] || sleep "$2"
echo "VERDICT: APPROVE"
echo "reviewer $GIT_AGENT_TASK $GIT_AGENT_ATTEMPT $start $(date +%s%N)" >> "$1"
"#;

/// The gate (`test:`): sleep `$2` seconds, pass.
const GATE: &str = r#"#!/bin/sh
set -e
start=$(date +%s%N)
[ "$2" = 0 ] || sleep "$2"
echo "gate $GIT_AGENT_TASK 0 $start $(date +%s%N)" >> "$1"
"#;

fn main() -> Result<()> {
    println!("git-agent pipeline bench: {BIN}");
    println!("{}, {} cores", git_version()?, cores());
    println!("load average before: {}\n", load_average());
    let mut table = Table::default();
    for jobs in [1, 4] {
        overhead(&mut table, jobs)?;
    }
    sleepy(&mut table)?;
    pipeline(&mut table)?;
    println!("\nload average after: {}\n", load_average());
    table.print();
    Ok(())
}

// ---- scenarios ----

/// Row 1: one-commit tasks, implementer only, at `-j jobs`.
fn overhead(table: &mut Table, jobs: usize) -> Result<()> {
    let mut runs = Vec::with_capacity(RUNS);
    for run in 1..=RUNS {
        let bench = Bench::new(&Roles::implementer_only("0"))?;
        let ids = bench.import(&flat_plan(OVERHEAD_TASKS))?;
        let label = format!("row 1, -j {jobs}, run {run}");
        let expect = format!("{OVERHEAD_TASKS} submitted");
        let ran = bench.run(jobs, &expect, &label, &mut table.problems)?;
        bench.expect_counts("in_review", OVERHEAD_TASKS)?;
        let spans = bench.spans()?;
        let implementer = once_per_task(&spans, "implementer", &ids)?;
        let events = bench.events(&ids, &["claimed", "submitted"])?;
        let mut before = Duration::ZERO;
        let mut after = Duration::ZERO;
        for (id, span) in &implementer {
            before += since(events[&(id.clone(), "claimed")], span.start);
            after += since(span.end, events[&(id.clone(), "submitted")]);
        }
        let agents = total(implementer.values().copied());
        println!(
            "-j {jobs}: {OVERHEAD_TASKS} tasks in {}, agents {} in all; each task claimed, run and submitted once (checked)",
            show(ran.wall),
            show(agents)
        );
        let n = OVERHEAD_TASKS as u32;
        let overhead = ran.wall.saturating_sub(agents) / n;
        runs.push([
            ran.wall,
            overhead,
            before / n,
            after / n,
            overhead.saturating_sub(before / n + after / n),
            agents / n,
        ]);
    }
    let column = |i: usize| Stats::of(runs.iter().map(|r| r[i]).collect());
    let name = format!("{OVERHEAD_TASKS} one-commit tasks, implementer only, -j {jobs}");
    let wall = column(0);
    let note = format!("{} per task", show(wall.median / OVERHEAD_TASKS as u32));
    table.row(&format!("{name}: wall"), &wall, &note);
    let per_task = column(1);
    let limit = Duration::from_millis(100);
    let mut note = format!(
        "(wall − Σ agent time) / {OVERHEAD_TASKS}; target {}",
        target(&per_task, limit)
    );
    if jobs > 1 {
        note.push_str(&format!(
            "; with {jobs} agents at once this subtracts overlapping agent time, so it is the orchestrator's share of the wall time, not the latency a task sees (below)"
        ));
    }
    table.row(&format!("{name}: overhead per task"), &per_task, &note);
    let (prefix, how) = if jobs == 1 {
        ("of which", "mean per task")
    } else {
        ("latency", "mean per task, overlapping across the slots")
    };
    let note = format!("{how}: `claimed` event → agent's first line (worktree, prompt, spawn)");
    table.row(
        &format!("  {prefix} claimed → agent started"),
        &column(2),
        &note,
    );
    let note = format!("{how}: agent's last line → `submitted` event (provenance note, submit)");
    table.row(
        &format!("  {prefix} agent ended → submitted"),
        &column(3),
        &note,
    );
    if jobs == 1 {
        let note = "the rest: start-up, claims, scheduling between tasks, exit";
        table.row("  of which the rest", &column(4), note);
    }
    let note = "mean per task, as the script measured itself (one `git commit`)";
    table.row("  (agent time per task, for scale)", &column(5), note);
    Ok(())
}

/// Row 2: tasks that sleep, `SLEEPY_JOBS` at once, against the ideal.
fn sleepy(table: &mut Table) -> Result<()> {
    let sleep = SLEEPY_SECONDS.to_string();
    let ideal = Duration::from_secs(SLEEPY_SECONDS * (SLEEPY_TASKS / SLEEPY_JOBS) as u64);
    let mut runs = Vec::with_capacity(RUNS);
    let mut most = usize::MAX;
    for run in 1..=RUNS {
        let bench = Bench::new(&Roles::implementer_only(&sleep))?;
        let ids = bench.import(&flat_plan(SLEEPY_TASKS))?;
        let label = format!("row 2, run {run}");
        let expect = format!("{SLEEPY_TASKS} submitted");
        let ran = bench.run(SLEEPY_JOBS, &expect, &label, &mut table.problems)?;
        bench.expect_counts("in_review", SLEEPY_TASKS)?;
        let spans = bench.spans()?;
        let implementer = once_per_task(&spans, "implementer", &ids)?;
        bench.events(&ids, &["claimed", "submitted"])?;
        let overlap = max_overlap(implementer.values().copied());
        most = most.min(overlap);
        let mut starts: Vec<u128> = implementer.values().map(|s| s.start).collect();
        starts.sort_unstable();
        let last_end = implementer.values().map(|s| s.end).max().unwrap_or(0);
        println!(
            "-j {SLEEPY_JOBS}: {SLEEPY_TASKS} tasks of {SLEEPY_SECONDS} s in {}, at most {overlap} agents at once; each task run once (checked)",
            show(ran.wall)
        );
        runs.push([
            ran.wall,
            since(ran.started, starts[0]),
            since(ran.started, starts[SLEEPY_JOBS - 1]),
            since(last_end, ran.ended),
        ]);
    }
    let column = |i: usize| Stats::of(runs.iter().map(|r| r[i]).collect());
    let wall = column(0);
    let note = format!(
        "ideal {}; median {} over it ({:.0}%); at least {most} agents ran at once in every run",
        show(ideal),
        show(wall.median.saturating_sub(ideal)),
        (wall.median.as_secs_f64() / ideal.as_secs_f64() - 1.0) * 100.0
    );
    let name = format!(
        "{SLEEPY_TASKS} tasks of {SLEEPY_SECONDS} s, implementer only, -j {SLEEPY_JOBS}: wall"
    );
    table.row(&name, &wall, &note);
    let note = "process start to the first agent's first line";
    table.row("  run started → 1st agent started", &column(1), note);
    let note = format!("the first wave: until all {SLEEPY_JOBS} slots are busy");
    table.row(
        &format!("  run started → {SLEEPY_JOBS}th agent started"),
        &column(2),
        &note,
    );
    let note = "last submit and exit";
    table.row("  last agent ended → run exited", &column(3), note);
    Ok(())
}

/// The handoffs of the pipeline, each a mean per task (the first over the
/// tasks that have dependencies).
const HANDOFFS: [&str; 7] = [
    "last dependency `merged` → `claimed`",
    "`claimed` → implementer started",
    "implementer ended → `submitted`",
    "`submitted` → reviewer started",
    "reviewer ended → `reviewed`",
    "`reviewed` → gate started",
    "gate ended → `merged`",
];

/// What one end-to-end run of the 30-task plan measured.
struct PipelineRun {
    wall: Duration,
    /// Σ agent time of the implementer, the reviewer and the gate.
    agents: [Duration; 3],
    /// The longest dependency chain of implementer + reviewer + gate spans.
    critical: Duration,
    /// What the slots allow: max(Σ implementer / j, Σ reviewer / j, Σ gate / window).
    resources: Duration,
    /// Mean latency of each of `HANDOFFS`.
    handoffs: [Duration; 7],
    /// Mean time from one gate's end to the next gate's start.
    queue_gap: Duration,
    /// The most gates that ran at once.
    gates_at_once: usize,
}

impl PipelineRun {
    /// Σ gate time / (window × wall): how busy the queue kept its gate slots.
    fn utilisation(&self, window: usize) -> f64 {
        self.agents[2].as_secs_f64() / (window as f64 * self.wall.as_secs_f64())
    }
}

/// Row 3: the layered plan through implementer, reviewer and gate, with the
/// queue's default window (`parallel` = `-j`) and with `window: 1`.
fn pipeline(table: &mut Table) -> Result<()> {
    let tasks = LAYERS * LAYER_WIDTH;
    let run_all = |window: usize, problems: &mut Vec<String>| {
        (1..=RUNS)
            .map(|run| pipeline_run(tasks, run, window, problems))
            .collect::<Result<Vec<_>>>()
    };
    let runs = run_all(PIPELINE_JOBS, &mut table.problems)?;
    let serial = run_all(1, &mut table.problems)?;
    let stats = |f: &dyn Fn(&PipelineRun) -> Duration| Stats::of(runs.iter().map(f).collect());
    let serial_stats =
        |f: &dyn Fn(&PipelineRun) -> Duration| Stats::of(serial.iter().map(f).collect());
    let median = |values: Vec<f64>| {
        let mut values = values;
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let j = PIPELINE_JOBS as u32;
    let name = format!(
        "{tasks}-task plan ({LAYERS} layers of {LAYER_WIDTH}), implementer + reviewer + gate, -j {PIPELINE_JOBS}"
    );
    let wall = stats(&|r| r.wall);
    let note = format!(
        "merge queue window {PIPELINE_JOBS} (the default: `parallel`); until `status --json` counts {tasks} merged (asserted); agents sleep {PIPELINE_IMPLEMENTER} / {PIPELINE_REVIEWER} / {PIPELINE_GATE} s"
    );
    table.row(&format!("{name}: wall"), &wall, &note);
    let serial_wall = serial_stats(&|r| r.wall);
    let note = format!(
        "the same plan with `integrate: {{ window: 1 }}`, one gate at a time; window {PIPELINE_JOBS} is {:.2}× faster (medians)",
        serial_wall.median.as_secs_f64() / wall.median.as_secs_f64()
    );
    table.row("  serial queue (window 1): wall", &serial_wall, &note);
    let critical = stats(&|r| r.critical);
    let ratios: Vec<f64> = runs
        .iter()
        .map(|r| r.wall.as_secs_f64() / r.critical.as_secs_f64())
        .collect();
    let ratio = median(ratios);
    let verdict = if ratio <= 1.3 { "met" } else { "MISSED" };
    let note = format!(
        "longest dependency chain of implementer + reviewer + gate spans; wall / critical path {ratio:.2}× (median of the ratios; target ≤ 1.3×: {verdict})"
    );
    table.row("  critical path of the task graph", &critical, &note);
    let resources = stats(&|r| r.resources);
    let note = format!(
        "max(Σ implementer / {PIPELINE_JOBS}, Σ reviewer / {PIPELINE_JOBS}, Σ gate / window): what the slots alone allow; wall / max(this, critical path) {:.2}×",
        median(
            runs.iter()
                .map(|r| r.wall.as_secs_f64() / r.resources.max(r.critical).as_secs_f64())
                .collect()
        )
    );
    table.row("  slot bound from the agent spans", &resources, &note);
    let note = format!(
        "Σ gate / (window × wall): window {PIPELINE_JOBS} {:.0}% (at most {} gates at once), window 1 {:.0}% (at most {} at once); medians",
        100.0 * median(runs.iter().map(|r| r.utilisation(PIPELINE_JOBS)).collect()),
        runs.iter().map(|r| r.gates_at_once).max().unwrap_or(0),
        100.0 * median(serial.iter().map(|r| r.utilisation(1)).collect()),
        serial.iter().map(|r| r.gates_at_once).max().unwrap_or(0),
    );
    table.row(
        "  gate utilisation (Σ gate time shown)",
        &stats(&|r| r.agents[2]),
        &note,
    );
    let roles = [
        ("implementer", PIPELINE_IMPLEMENTER),
        ("reviewer", PIPELINE_REVIEWER),
        ("gate", PIPELINE_GATE),
    ];
    for (i, (role, sleep)) in roles.into_iter().enumerate() {
        let s = stats(&|r| r.agents[i]);
        let note = format!(
            "Σ of {tasks} runs of {sleep} s sleep; {} per run",
            show(s.median / tasks as u32)
        );
        table.row(&format!("  agent time: {role}"), &s, &note);
    }
    let idle = stats(&|r| (r.wall * j).saturating_sub(r.agents[0] + r.agents[1]));
    let note = format!(
        "wall × {PIPELINE_JOBS} − Σ implementer and reviewer time: capacity of {PIPELINE_JOBS} agent slots left unused (waiting on dependencies and the queue, plus orchestration); reviews run beside the implementer slots, so this understates the idle time"
    );
    table.row("  idle capacity", &idle, &note);
    let over = stats(&|r| r.wall.saturating_sub(r.critical.max(r.resources)));
    let note = format!(
        "wall − max(critical path, slot bound): what orchestration added; {} per task",
        show(over.median / tasks as u32)
    );
    table.row("  wall over the bounds", &over, &note);
    let note = "serial queue only (with several gates at once they overlap): mean over consecutive gate runs of the queue's own time per entry (build the candidate, record, advance the target), plus any time it had nothing approved to take";
    table.row(
        "  window 1: gate ended → next gate started",
        &serial_stats(&|r| r.queue_gap),
        note,
    );
    for (i, handoff) in HANDOFFS.iter().enumerate() {
        let note = if i == 0 {
            "mean over the 20 tasks with dependencies"
        } else if i == 5 {
            "mean per task; includes waiting behind other tasks in the merge queue and the merge itself"
        } else {
            "mean per task"
        };
        table.row(
            &format!("  handoff: {handoff}"),
            &stats(&|r| r.handoffs[i]),
            note,
        );
    }
    Ok(())
}

fn pipeline_run(
    tasks: usize,
    run: usize,
    window: usize,
    problems: &mut Vec<String>,
) -> Result<PipelineRun> {
    let roles = Roles {
        implementer: PIPELINE_IMPLEMENTER,
        reviewer: Some(PIPELINE_REVIEWER),
        gate: Some(PIPELINE_GATE),
        window: Some(window),
    };
    let bench = Bench::new(&roles)?;
    let keys = bench.import_keyed(&layered_plan())?;
    let ids: Vec<String> = keys.values().cloned().collect();
    let label = format!("row 3, window {window}, run {run}");
    let expect = format!("{tasks} merged");
    let ran = bench.run(PIPELINE_JOBS, &expect, &label, problems)?;
    bench.expect_counts("merged", tasks)?;
    let events = bench.events(&ids, &["claimed", "submitted", "reviewed", "merged"])?;
    let spans = bench.spans()?;
    let implementer = once_per_task(&spans, "implementer", &ids)?;
    let reviewer = once_per_task(&spans, "reviewer", &ids)?;
    let gate = once_per_task(&spans, "gate", &ids)?;
    let roles = [&implementer, &reviewer, &gate];
    let j = PIPELINE_JOBS as u32;
    let sum = |spans: &HashMap<String, Span>| total(spans.values().copied());
    let run = PipelineRun {
        wall: ran.wall,
        agents: roles.map(sum),
        critical: critical_path(&keys, roles),
        resources: [
            sum(&implementer) / j,
            sum(&reviewer) / j,
            sum(&gate) / window as u32,
        ]
        .into_iter()
        .max()
        .unwrap_or_default(),
        handoffs: handoffs(&keys, &events, roles),
        queue_gap: queue_gap(&gate),
        gates_at_once: max_overlap(gate.values().copied()),
    };
    if run.gates_at_once > window {
        problems.push(format!(
            "{label}: {} gates ran at once, more than the window of {window}",
            run.gates_at_once
        ));
    }
    println!(
        "-j {PIPELINE_JOBS}, window {window}: {tasks}-task plan merged in {}; agents: implementer {}, reviewer {}, gate {} (at most {} at once); each task implemented, reviewed, gated and merged once (checked)",
        show(ran.wall),
        show(run.agents[0]),
        show(run.agents[1]),
        show(run.agents[2]),
        run.gates_at_once
    );
    Ok(run)
}

/// The mean time between consecutive gate runs: what the merge queue spends
/// per entry besides the gate (merging, recording, advancing the target),
/// plus any time it had nothing approved to take.
fn queue_gap(gate: &HashMap<String, Span>) -> Duration {
    let mut spans: Vec<Span> = gate.values().copied().collect();
    spans.sort_unstable_by_key(|s| s.start);
    let gaps: Duration = spans.windows(2).map(|w| since(w[0].end, w[1].start)).sum();
    gaps / u32::try_from(spans.len().saturating_sub(1).max(1)).unwrap_or(u32::MAX)
}

/// The mean latency of each of `HANDOFFS`, from the task events and the
/// agent spans.
fn handoffs(
    keys: &HashMap<String, String>,
    events: &Events,
    roles: [&HashMap<String, Span>; 3],
) -> [Duration; 7] {
    let [implementer, reviewer, gate] = roles;
    let at = |id: &str, kind: &'static str| events[&(id.to_string(), kind)];
    let mut sums = [Duration::ZERO; 7];
    let mut dependents = 0u32;
    for layer in 0..LAYERS {
        for i in 0..LAYER_WIDTH {
            let id = keys[&key(layer, i)].as_str();
            let deps = dependencies(layer, i);
            if let Some(ready) = deps.iter().map(|d| at(&keys[d], "merged")).max() {
                sums[0] += since(ready, at(id, "claimed"));
                dependents += 1;
            }
            sums[1] += since(at(id, "claimed"), implementer[id].start);
            sums[2] += since(implementer[id].end, at(id, "submitted"));
            sums[3] += since(at(id, "submitted"), reviewer[id].start);
            sums[4] += since(reviewer[id].end, at(id, "reviewed"));
            sums[5] += since(at(id, "reviewed"), gate[id].start);
            sums[6] += since(gate[id].end, at(id, "merged"));
        }
    }
    let tasks = (LAYERS * LAYER_WIDTH) as u32;
    let mut means = sums.map(|s| s / tasks);
    means[0] = sums[0] / dependents.max(1);
    means
}

/// The critical path of the task graph with the measured spans: the
/// longest chain of dependencies, each task's implementer + reviewer + gate
/// run back to back, as if slots were unlimited.
fn critical_path(keys: &HashMap<String, String>, roles: [&HashMap<String, Span>; 3]) -> Duration {
    let mut done: HashMap<String, Duration> = HashMap::new();
    for layer in 0..LAYERS {
        for i in 0..LAYER_WIDTH {
            let key = key(layer, i);
            let ready = dependencies(layer, i)
                .iter()
                .map(|d| done[d])
                .max()
                .unwrap_or_default();
            let id = &keys[&key];
            let own = roles
                .iter()
                .map(|spans| spans[id].length())
                .sum::<Duration>();
            done.insert(key, ready + own);
        }
    }
    done.values().copied().max().unwrap_or_default()
}

// ---- plans ----

/// `count` independent tasks.
fn flat_plan(count: usize) -> String {
    let mut yaml = String::from("goal: Benchmark orchestration\ntasks:\n");
    for i in 0..count {
        let _ = writeln!(
            yaml,
            "  - key: k{i}\n    title: Task {i}\n    spec: Write work-<task>.txt."
        );
    }
    yaml
}

fn key(layer: usize, i: usize) -> String {
    format!("l{layer}-{i}")
}

/// The keys task `i` of `layer` depends on (layers count from 0): two of
/// the first layer for the second, one of the second for the third.
fn dependencies(layer: usize, i: usize) -> Vec<String> {
    match layer {
        0 => Vec::new(),
        1 => vec![key(0, i), key(0, (i + 1) % LAYER_WIDTH)],
        _ => vec![key(layer - 1, i)],
    }
}

fn layered_plan() -> String {
    let mut yaml = String::from("goal: Benchmark the pipeline\ntasks:\n");
    for layer in 0..LAYERS {
        for i in 0..LAYER_WIDTH {
            let _ = writeln!(
                yaml,
                "  - key: {}\n    title: Layer {layer} task {i}\n    spec: Write work-<task>.txt.\n    depends_on: [{}]",
                key(layer, i),
                dependencies(layer, i).join(", ")
            );
        }
    }
    yaml
}

// ---- one bench repository ----

/// Which agents a run configures, and how long each sleeps (seconds, as
/// `sleep` takes them; "0" runs no `sleep` at all).
struct Roles<'a> {
    implementer: &'a str,
    reviewer: Option<&'a str>,
    gate: Option<&'a str>,
    /// `integrate.window`, where set.
    window: Option<usize>,
}

impl<'a> Roles<'a> {
    fn implementer_only(sleep: &'a str) -> Roles<'a> {
        Roles {
            implementer: sleep,
            reviewer: None,
            gate: None,
            window: None,
        }
    }
}

/// A temporary directory with the repository (`repo/`), the agent scripts
/// and the record file they append to, both outside the repository.
struct Bench {
    dir: tempfile::TempDir,
}

impl Bench {
    fn new(roles: &Roles) -> Result<Bench> {
        let dir = tempfile::Builder::new()
            .prefix("git-agent-bench")
            .tempdir()?;
        let bench = Bench { dir };
        std::fs::create_dir(bench.repo())?;
        run_quiet(&bench.repo(), "git", &["init", "-q", "-b", "main"])?;
        let commit = ["commit", "-q", "--allow-empty", "-m", "init"];
        run_quiet(&bench.repo(), "git", &commit)?;
        let config = bench.config(roles)?;
        std::fs::write(bench.repo().join(".git-agent.yaml"), config)?;
        Ok(bench)
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn record(&self) -> PathBuf {
        self.dir.path().join("record.txt")
    }

    /// Write the scripts and return `.git-agent.yaml` naming them.
    fn config(&self, roles: &Roles) -> Result<String> {
        let record = self.record().display().to_string();
        let script = |name: &str, text: &str| -> Result<String> {
            let path = self.dir.path().join(name);
            std::fs::write(&path, text)?;
            Ok(path.display().to_string())
        };
        let role = |name: &str, path: &str, sleep: &str, extra: &str| {
            format!(
                "  {name}: {{ command: [sh, \"{path}\", \"{record}\", \"{sleep}\"], timeout: 60s{extra} }}\n"
            )
        };
        let mut yaml = format!("target: main\nparallel: {PIPELINE_JOBS}\n");
        if let Some(sleep) = roles.gate {
            let gate = script("gate.sh", GATE)?;
            let _ = writeln!(yaml, "test: \"sh '{gate}' '{record}' {sleep}\"");
        }
        if let Some(window) = roles.window {
            let _ = writeln!(yaml, "integrate: {{ window: {window} }}");
        }
        yaml.push_str("roles:\n");
        let implementer = script("implementer.sh", IMPLEMENTER)?;
        yaml.push_str(&role(
            "implementer",
            &implementer,
            roles.implementer,
            ", max_attempts: 3",
        ));
        if let Some(sleep) = roles.reviewer {
            let reviewer = script("reviewer.sh", REVIEWER)?;
            yaml.push_str(&role("reviewer", &reviewer, sleep, ""));
        }
        Ok(yaml)
    }

    /// `git-agent plan --file` of `yaml`; the task ids.
    fn import(&self, yaml: &str) -> Result<Vec<String>> {
        Ok(self.import_keyed(yaml)?.into_values().collect())
    }

    /// `git-agent plan --file` of `yaml`; key → task id.
    fn import_keyed(&self, yaml: &str) -> Result<HashMap<String, String>> {
        std::fs::write(self.dir.path().join("plan.yaml"), yaml)?;
        let plan = self.dir.path().join("plan.yaml").display().to_string();
        let out = self.json(&["plan", "--file", &plan])?;
        let tasks = out["tasks"]
            .as_object()
            .ok_or("plan --json printed no tasks")?;
        tasks
            .iter()
            .map(|(key, id)| {
                let id = id.as_str().ok_or("a task id is not a string")?;
                Ok((key.clone(), id.to_string()))
            })
            .collect()
    }

    /// Time `git-agent run -j jobs`. What the run itself reports is only
    /// compared, not trusted: a failed exit, a summary line without
    /// `expect`, lines about errors or take-overs, and leases left behind
    /// are noted in `problems` under `label`; the callers then check the
    /// outcome in the store and fail if it is wrong.
    fn run(
        &self,
        jobs: usize,
        expect: &str,
        label: &str,
        problems: &mut Vec<String>,
    ) -> Result<Ran> {
        let jobs = jobs.to_string();
        let started = epoch_nanos()?;
        let start = Instant::now();
        let out = command(&self.repo(), BIN, &["run", "-j", &jobs])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()?;
        let wall = start.elapsed();
        let ended = epoch_nanos()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let summary = stdout.lines().next().unwrap_or("").trim();
        if !out.status.success() || !summary.contains(expect) {
            problems.push(format!(
                "{label}: `git-agent run -j {jobs}` ({}) said \"{summary}\", expected \"{expect}\"",
                out.status
            ));
        }
        for line in stderr
            .lines()
            .filter(|l| l.contains("taken over") || l.contains("error"))
        {
            problems.push(format!("{label}: run printed \"{}\"", line.trim()));
        }
        let leases = self.leases()?;
        if !leases.is_empty() {
            problems.push(format!(
                "{label}: {} lease ref(s) left after the run: {}",
                leases.len(),
                leases.join(", ")
            ));
        }
        Ok(Ran {
            wall,
            started,
            ended,
        })
    }

    /// The lease refs left, each with its task's state.
    fn leases(&self) -> Result<Vec<String>> {
        let out = command(
            &self.repo(),
            "git",
            &["for-each-ref", "--format=%(refname)", "refs/agent/leases/"],
        )
        .stdout(Stdio::piped())
        .output()?;
        let mut leases = Vec::new();
        for name in String::from_utf8(out.stdout)?.lines() {
            let id = name.rsplit('/').next().unwrap_or(name);
            let shown = self.json(&["show", id])?;
            let state = shown["task"]["state"].as_str().unwrap_or("?").to_string();
            leases.push(format!("{name} (task {state})"));
        }
        Ok(leases)
    }

    /// `git-agent status --json` must count `n` tasks in `state`.
    fn expect_counts(&self, state: &str, n: usize) -> Result<()> {
        let status = self.json(&["status"])?;
        let counts = &status["counts"];
        if counts[state].as_u64() != Some(n as u64) {
            return Err(
                format!("expected {n} tasks {state}, `status --json` counts {counts}").into(),
            );
        }
        Ok(())
    }

    /// The spans the agents recorded.
    fn spans(&self) -> Result<Vec<Recorded>> {
        std::fs::read_to_string(self.record())?
            .lines()
            .map(Span::parse)
            .collect()
    }

    /// Each task's one event of each of `kinds`, from `git-agent log --json`,
    /// as (task, kind) → epoch nanoseconds. A kind seen twice for a task is
    /// an error: that task was done twice.
    fn events(&self, ids: &[String], kinds: &[&'static str]) -> Result<Events> {
        let log = self.json(&["log"])?;
        let mut seen: Events = HashMap::new();
        for event in log.as_array().ok_or("log --json is not an array")? {
            let (Some(task), Some(kind), Some(at)) = (
                event["task"].as_str(),
                event["kind"].as_str(),
                event["at"].as_str(),
            ) else {
                return Err(format!("an event without task, kind or at: {event}").into());
            };
            let Some(kind) = kinds.iter().find(|k| **k == kind) else {
                continue;
            };
            let at: jiff::Timestamp = at.parse()?;
            let at = u128::try_from(at.as_nanosecond())?;
            if seen.insert((task.to_string(), kind), at).is_some() {
                return Err(
                    format!("task {task} has two `{kind}` events: it was done twice").into(),
                );
            }
        }
        for id in ids {
            for kind in kinds {
                if !seen.contains_key(&(id.clone(), *kind)) {
                    return Err(format!("task {id} has no `{kind}` event").into());
                }
            }
        }
        Ok(seen)
    }

    /// `git-agent <args> --json` in the repository, parsed.
    fn json(&self, args: &[&str]) -> Result<Value> {
        let mut all = args.to_vec();
        all.push("--json");
        let out = command(&self.repo(), BIN, &all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "`git-agent {}` failed ({}): {}",
                all.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }
}

/// Each task's one event of each kind asked for: (task, kind) → epoch
/// nanoseconds (whole milliseconds, as events carry them).
type Events = HashMap<(String, &'static str), u128>;

/// How long `git-agent run` took, and when it started and ended (epoch
/// nanoseconds, comparable with the agents' spans).
struct Ran {
    wall: Duration,
    started: u128,
    ended: u128,
}

fn epoch_nanos() -> Result<u128> {
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos())
}

/// One agent run as its script recorded it.
#[derive(Debug, Clone, Copy)]
struct Span {
    /// Epoch nanoseconds.
    start: u128,
    end: u128,
}

/// A record line with its role and task.
type Recorded = (String, String, Span);

impl Span {
    fn parse(line: &str) -> Result<Recorded> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [role, task, _attempt, start, end] = fields[..] else {
            return Err(
                format!("a record line is not `role task attempt start end`: {line}").into(),
            );
        };
        let span = Span {
            start: start.parse()?,
            end: end.parse()?,
        };
        Ok((role.to_string(), task.to_string(), span))
    }

    fn length(&self) -> Duration {
        since(self.start, self.end)
    }
}

/// The one span of `role` for each task of `ids`; a task run twice, or not
/// at all, is an error.
fn once_per_task(spans: &[Recorded], role: &str, ids: &[String]) -> Result<HashMap<String, Span>> {
    let mut found: HashMap<String, Span> = HashMap::new();
    for (r, task, span) in spans {
        if r == role && found.insert(task.clone(), *span).is_some() {
            return Err(format!("task {task}: the {role} ran more than once").into());
        }
    }
    if let Some(missing) = ids.iter().find(|id| !found.contains_key(*id)) {
        return Err(format!("task {missing}: the {role} never ran").into());
    }
    if found.len() != ids.len() {
        return Err(format!("the {role} ran for a task that is not in this run").into());
    }
    Ok(found)
}

fn total(spans: impl Iterator<Item = Span>) -> Duration {
    spans.map(|s| s.length()).sum()
}

/// The most spans that were open at one moment.
fn max_overlap(spans: impl Iterator<Item = Span>) -> usize {
    let mut edges: Vec<(u128, i32)> = spans.flat_map(|s| [(s.start, 1), (s.end, -1)]).collect();
    // An end sorts before a start at the same instant: touching is not overlap.
    edges.sort_unstable();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}

/// From `earlier` to `later` (epoch nanoseconds); zero if they are the
/// other way round (event times are whole milliseconds).
fn since(earlier: u128, later: u128) -> Duration {
    let nanos = later.saturating_sub(earlier);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

// ---- processes ----

/// A command in `dir`, isolated from the user's and the system's git config
/// (with a fixed identity, which the agents' commits inherit) and from any
/// git or git-agent variables of the shell that started the bench.
fn command(dir: &Path, program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@localhost")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@localhost")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_AGENT_ACTOR",
        "GIT_AGENT_ROLE",
        "GIT_AGENT_TASK",
        "GIT_AGENT_ATTEMPT",
        "GIT_AGENT_RUN",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Run a command to success with its stdout discarded.
fn run_quiet(dir: &Path, program: &str, args: &[&str]) -> Result<()> {
    let out = command(dir, program, args)
        .stderr(Stdio::piped())
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(())
}

fn git_version() -> Result<String> {
    let out = Command::new("git").arg("--version").output()?;
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// `/proc/loadavg` (1, 5 and 15 minutes), to tell a busy machine's figures apart.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_string(),
        |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

// ---- timing and the table ----

/// The rows of the markdown table, in the order they were measured.
#[derive(Default)]
struct Table {
    rows: Vec<[String; 5]>,
    /// What git-agent did wrong along the way, printed after the table.
    problems: Vec<String>,
}

impl Table {
    fn row(&mut self, scenario: &str, stats: &Stats, note: &str) {
        self.rows.push([
            scenario.to_string(),
            show(stats.median),
            show(stats.min),
            stats.runs.to_string(),
            note.to_string(),
        ]);
    }

    fn print(&self) {
        println!("| scenario | median | min | runs | note |");
        println!("|---|---:|---:|---:|---|");
        for row in &self.rows {
            println!("| {} |", row.join(" | "));
        }
        if self.problems.is_empty() {
            println!(
                "\nNo problems seen: every run's summary, exit code and leases were as expected."
            );
            return;
        }
        println!("\nProblems seen (the figures above stand: each task's outcome was checked in the store):");
        for problem in &self.problems {
            println!("- {problem}");
        }
    }
}
