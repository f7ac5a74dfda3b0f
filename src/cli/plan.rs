//! `git agent plan`: store a plan and its tasks, from a file or a planner.

use anyhow::{bail, Context as _, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::agent::process::catch_interrupts;
use crate::model::plan::{self, Dependency, PlanError};
use crate::orchestrate::{planner, Context};
use crate::store::{PlannerWork, Store};

/// Break a goal into tasks (with the planner agent), or import a plan file.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The goal for the planner agent.
    goal: Option<String>,
    /// Import a human-written plan (YAML) instead of running the planner.
    #[arg(long, short, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Validate and print the plan; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print `{"plan": id, "tasks": {key: id}}`.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let (store, plan, text, work) = match (&args.file, &args.goal) {
        (Some(file), None) => {
            let store = super::open()?;
            let name = file.display().to_string();
            let bytes = std::fs::read(file)
                .with_context(|| format!("{name}: cannot read the plan file"))?;
            let text = crate::model::yaml::decode(&bytes)
                .map_err(|e| PlanError {
                    file: name.clone(),
                    line: e.line,
                    field: e.field,
                    message: e.message,
                })?
                .to_string();
            let plan = validate(&store, &name, &text)?;
            (store, plan, text, PlannerWork::default())
        }
        (None, Some(goal)) => {
            let ctx = Context::open(catch_interrupts())?;
            ctx.role("planner")?;
            ctx.check_programs(&["planner"])?;
            let planned = planner::plan_goal(&ctx, goal)?;
            (ctx.store, planned.plan, planned.yaml, planned.work)
        }
        (Some(_), Some(_)) => bail!("give a goal or --file, not both"),
        (None, None) => {
            bail!("give a goal (`git agent plan \"<goal>\"`) or a plan file (`--file F`)")
        }
    };
    if args.dry_run {
        return print_dry_run(&plan, args.json);
    }
    let attempts = super::default_attempts(&store)?;
    let stored = store.store_plan(
        &plan,
        &text,
        &super::default_actor(),
        &super::role_or("human"),
        attempts,
        &work,
    )?;
    if args.json {
        let tasks: BTreeMap<&str, &str> = stored
            .tasks
            .iter()
            .map(|(k, id)| (k.as_str(), id.as_str()))
            .collect();
        super::print_json(&serde_json::json!({ "plan": stored.plan, "tasks": tasks }))?;
    } else {
        let spent = work
            .usage
            .map_or(String::new(), |u| format!(" (planner: {})", u.describe()));
        println!(
            "plan {}: {}{spent}",
            stored.plan,
            crate::model::text::count(stored.tasks.len(), "task")
        );
        for ((key, id), task) in stored.tasks.iter().zip(&plan.tasks) {
            println!("  {id}  {key:<16}  {}", super::one_line(&task.title, 60));
        }
    }
    Ok(())
}

/// Parse and check a plan against the tasks that exist already.
pub fn validate(store: &Store, name: &str, text: &str) -> Result<plan::Plan, PlanError> {
    let existing = |dep: &str| store.resolve(dep).ok();
    plan::parse(name, text, &existing)
}

fn print_dry_run(plan: &plan::Plan, json: bool) -> Result<()> {
    let dep_names = |deps: &[Dependency]| -> Vec<String> {
        deps.iter()
            .map(|d| match d {
                Dependency::InPlan(i) => plan.tasks[*i].key.clone(),
                Dependency::Existing(id) => id.clone(),
            })
            .collect()
    };
    if json {
        let tasks: Vec<_> = plan
            .tasks
            .iter()
            .map(|t| {
                serde_json::json!({
                    "key": t.key, "title": t.title, "spec": t.spec, "scope": t.scope,
                    "priority": t.priority, "depends_on": dep_names(&t.depends_on),
                    "labels": t.labels, "max_attempts": t.max_attempts,
                })
            })
            .collect();
        return super::print_json(&serde_json::json!({ "goal": plan.goal, "tasks": tasks }));
    }
    println!(
        "plan is valid: {} (dry run, nothing written)",
        crate::model::text::count(plan.tasks.len(), "task")
    );
    if let Some(goal) = &plan.goal {
        println!("goal: {goal}");
    }
    for t in &plan.tasks {
        let deps = dep_names(&t.depends_on);
        let after = if deps.is_empty() {
            String::new()
        } else {
            format!("  after {}", deps.join(", "))
        };
        println!(
            "  {:<16} p{}  {}{after}",
            t.key,
            t.priority,
            super::one_line(&t.title, 60)
        );
    }
    Ok(())
}
