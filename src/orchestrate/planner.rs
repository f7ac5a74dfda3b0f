//! `git agent plan "<goal>"`: the planner agent writes a plan, which is
//! validated like a plan file. A refused plan goes back to the planner once,
//! with the refusal; a second refusal ends with exit 2 and nothing written.

use anyhow::{bail, Result};
use std::time::{SystemTime, UNIX_EPOCH};

use super::Context;
use crate::agent::config::Role;
use crate::agent::process::{self, AgentRun, Outcome};
use crate::agent::prompt;
use crate::git;
use crate::model::plan::{self, Plan};
use crate::model::span::Span;
use crate::store::PlannerWork;
use std::sync::atomic::Ordering;

const ROLE: &str = "planner";
/// Files listed in the repository picture, at most.
const TREE_LINES: usize = 200;
const README_LINES: usize = 40;

/// A plan the planner wrote that passed validation, and its YAML.
pub struct Planned {
    pub plan: Plan,
    pub yaml: String,
    /// What the planner agents did: their spans and usage.
    pub work: PlannerWork,
}

/// Ask the planner for a plan for `goal`: at most two tries.
pub fn plan_goal(ctx: &Context, goal: &str) -> Result<Planned> {
    let role = ctx.role(ROLE)?.clone();
    let picture = picture(ctx)?;
    let open: Vec<_> = ctx
        .store
        .load_all()?
        .into_iter()
        .filter(|t| !t.state.is_terminal())
        .collect();
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut refusal: Option<String> = None;
    let mut work = PlannerWork::default();
    for attempt in 1..=2u32 {
        let built_in = prompt::planner(goal, &picture, &open, refusal.as_deref());
        let vars = [
            ("goal", goal.to_string()),
            ("repo", picture.clone()),
            ("refusal", refusal.clone().unwrap_or_default()),
        ];
        let run = AgentRun {
            role: ROLE.into(),
            launch: role.launch(ROLE),
            cwd: ctx.root.clone(),
            prompt: prompt::with_override(Some(&ctx.root), ROLE, built_in, &vars),
            timeout: role.timeout(),
            files: process::log_base(
                &ctx.store.agent_dir(),
                "planner",
                attempt,
                &stamp.to_string(),
            ),
            env: vec![("ATTEMPT".into(), attempt.to_string())],
            task_json: None,
        };
        ctx.view.started("plan", ROLE, attempt, goal);
        let outcome = run_through_rate_limits(ctx, &role, &run, &mut work.spans)?;
        if let Some(failure) = outcome.failure(role.timeout()) {
            ctx.view.finished("plan", ROLE, &failure);
            bail!(
                "the planner failed: {failure}; its log: {}\n{}",
                outcome.log.display(),
                outcome.tail
            );
        }
        if let Some(spent) = &outcome.usage {
            work.usage = Some(work.usage.map_or(spent.clone(), |u| u.plus(spent)));
        }
        let yaml = prompt::plan_text(outcome.output.as_deref(), &outcome.message);
        let existing = |dep: &str| ctx.store.resolve(dep).ok();
        let source = format!("planner output (attempt {attempt})");
        match plan::parse(&source, &yaml, &existing) {
            Ok(plan) => {
                work.spans.push(outcome.span(ROLE, "planned"));
                ctx.view.finished(
                    "plan",
                    ROLE,
                    &crate::model::text::count(plan.tasks.len(), "task"),
                );
                return Ok(Planned { plan, yaml, work });
            }
            Err(e) => {
                work.spans.push(outcome.span(ROLE, "refused"));
                ctx.view
                    .finished("plan", ROLE, &format!("plan refused: {e}"));
                refusal = Some(e.to_string());
            }
        }
    }
    bail!(
        "the planner's plan was refused twice; nothing was written. Last refusal: {}",
        refusal.unwrap_or_default()
    )
}

/// Rate limits the planner waits out before its failure counts.
const RATE_LIMITS: u32 = 5;

/// Run the planner; a run that meets a rate limit is tried again after the
/// role's backoff (up to [`RATE_LIMITS`] times), using up no try. The
/// rate-limited runs' spans go to `spans`.
fn run_through_rate_limits(
    ctx: &Context,
    role: &Role,
    run: &AgentRun,
    spans: &mut Vec<Span>,
) -> Result<Outcome> {
    for _ in 0..RATE_LIMITS {
        let outcome = run.run(ctx.stop)?;
        let Some(line) = super::work::rate_limited(role, &outcome) else {
            return Ok(outcome);
        };
        spans.push(outcome.span(ROLE, "rate_limited"));
        let pause = ctx.ledger.pause(ROLE, role, &line);
        ctx.view.say(&format!(
            "planner rate limited ({}): trying again in {:.1}s",
            crate::model::one_line(&line, 80),
            pause.as_secs_f64()
        ));
        let until = std::time::Instant::now() + pause;
        while std::time::Instant::now() < until && !ctx.stop.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    run.run(ctx.stop)
}

/// A short picture of the repository: its files and the head of its README.
fn picture(ctx: &Context) -> Result<String> {
    let files = git::tracked_files(&ctx.root)?;
    let count = files.len();
    let mut p = String::from("Files:\n");
    for f in files.iter().take(TREE_LINES) {
        p.push_str("  ");
        p.push_str(f);
        p.push('\n');
    }
    if count > TREE_LINES {
        p.push_str(&format!("  … and {} more\n", count - TREE_LINES));
    }
    if let Ok(readme) = std::fs::read_to_string(ctx.root.join("README.md")) {
        p.push_str("\nREADME.md (head):\n");
        for line in readme.lines().take(README_LINES) {
            p.push_str("  ");
            p.push_str(line);
            p.push('\n');
        }
    }
    Ok(p)
}
