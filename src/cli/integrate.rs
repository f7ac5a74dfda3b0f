//! `git agent integrate`: run the merge queue once.

use anyhow::Result;

use crate::agent::process::catch_interrupts;
use crate::error::No;
use crate::orchestrate::integrate::{self, Landing};
use crate::orchestrate::Context;

/// Merge approved work onto the target through the test gate, in priority
/// then FIFO order; exit 1 if any entry was sent back.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print `[{task, title, outcome, ...}]`.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let ctx = Context::open(catch_interrupts())?;
    ctx.check_target()?;
    ctx.check_programs(&["integrator"])?;
    ctx.warn_without_gate();
    let entries = integrate::integrate_all(&ctx, ctx.config.parallel)?;
    if args.json {
        super::print_json(&entries)?;
    } else if entries.is_empty() {
        println!("nothing approved to integrate");
    } else {
        for e in &entries {
            println!(
                "{}  {}  {}",
                e.task,
                super::one_line(&e.title, 40),
                integrate::describe(&e.landing)
            );
        }
    }
    let sent_back = entries
        .iter()
        .filter(|e| matches!(e.landing, Landing::Failed { .. }))
        .count();
    if sent_back > 0 {
        return Err(No(format!(
            "{} sent back by the merge queue",
            crate::model::text::count(sent_back, "task")
        ))
        .into());
    }
    Ok(())
}
