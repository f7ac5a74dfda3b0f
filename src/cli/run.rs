//! `git agent run`: the orchestrator.

use anyhow::Result;
use std::time::Duration;

use crate::agent::process::catch_interrupts;
use crate::error::{Interrupted, No};
use crate::orchestrate::run::{self, Options};
use crate::orchestrate::Context;

/// Implement ready tasks, up to N at once, until nothing more can move.
///
/// In a bare repository (a hub) nothing is implemented: the run reviews and
/// integrates the work pushed to it, and the clones implement.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Agents at once [default: `parallel` in .git-agent.yaml].
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    jobs: Option<u32>,
    /// Stop when nothing more can move (the default).
    #[arg(long, conflicts_with = "watch")]
    once: bool,
    /// Keep running, polling for new work.
    #[arg(long)]
    watch: bool,
    /// How often `--watch` looks for new work.
    #[arg(long, default_value = "5s", value_parser = super::parse_duration)]
    poll: Duration,
    /// Work against this remote with every other clone of it: each claim
    /// counts once its push lands there, work branches go there, and the
    /// clone that holds the merge queue's lease there reviews and moves its
    /// target; synced as the run goes and when it ends.
    #[arg(long, value_name = "REMOTE")]
    remote: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let stop = catch_interrupts();
    let ctx = Context::open(stop)?;
    ctx.check_target()?;
    // A hub (a bare repository) reviews and integrates what is pushed to
    // it; the clones implement, so their implementer need not be here.
    match ctx.store.repo().is_bare() {
        true => ctx.check_programs(&["reviewer", "integrator"])?,
        false => ctx.check_programs(&["implementer", "reviewer", "integrator"])?,
    }
    ctx.warn_without_gate();
    let remote = args
        .remote
        .map(|r| super::sync::pick_remote(ctx.store.work_dir(), Some(r)))
        .transpose()?;
    let options = Options {
        parallel: args.jobs.map_or(ctx.config.parallel, |j| j as usize),
        watch: args.watch,
        poll: args.poll,
        remote: remote.clone(),
    };
    // Against a remote, the run syncs what it recorded before it returns.
    let summary = run::run(&ctx, &options)?;
    let line = format!(
        "{} submitted, {} failed attempts, {} approved, {} changes requested, {} merged, {} sent back by the queue, {} interrupted, {} taken over{}{}",
        summary.submitted,
        summary.failed,
        summary.approved,
        summary.changes_requested,
        summary.merged,
        summary.sent_back,
        summary.interrupted,
        summary.lost,
        limits_words(&summary),
        if summary.errors.is_empty() {
            String::new()
        } else {
            format!(", {}", crate::model::text::count(summary.errors.len(), "error"))
        }
    );
    let waiting = ctx
        .store
        .load_all()?
        .iter()
        .filter(|t| t.state == crate::model::task::State::NeedsHuman)
        .count();
    if stop.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Interrupted(format!(
            "interrupted: {line}; running agents stopped, their tasks released"
        ))
        .into());
    }
    println!("{line}");
    for e in &summary.errors {
        eprintln!("error: {}", crate::model::text::printable(e));
    }
    if !summary.errors.is_empty() {
        anyhow::bail!(
            "{} hit an error",
            crate::model::text::count(summary.errors.len(), "task")
        )
    }
    if let Some(why) = &summary.budget_spent {
        // Exit 1: the run said no to more work, and scripts can tell.
        return Err(No(format!(
            "{why}: no new attempts were started and the running agents finished; \
             raise budget.run_usd in .git-agent.yaml or run again to go on"
        ))
        .into());
    }
    if waiting > 0 {
        // Exit 1: scripts and CI can tell a run that left work for a person.
        let verb = if waiting == 1 { "waits" } else { "wait" };
        return Err(No(format!(
            "{} {verb} for a human: see `git agent status`, answer with `git agent resolve`",
            crate::model::text::count(waiting, "task")
        ))
        .into());
    }
    Ok(())
}

/// `, 2 rate limited, 1 over budget, $0.1234 spent`: what only runs with
/// limits have to say.
fn limits_words(summary: &run::Summary) -> String {
    let mut words = String::new();
    if summary.rate_limited > 0 {
        words.push_str(&format!(", {} rate limited", summary.rate_limited));
    }
    if summary.over_budget > 0 {
        words.push_str(&format!(", {} over budget", summary.over_budget));
    }
    words
}
