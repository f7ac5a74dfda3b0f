//! `git agent gc`: remove what merged and abandoned tasks left behind.

use anyhow::Result;

use crate::agent::process::catch_interrupts;
use crate::orchestrate::gc::{self, GcOptions};
use crate::orchestrate::Context;

/// Remove the worktrees and branches of merged and abandoned tasks and
/// leftover review worktrees, then pack the agent refs. Never removes a
/// worktree with uncommitted work, or a branch with commits that reached
/// neither the target nor the recorded merge; says what it kept and why.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Say what would be removed; remove nothing.
    #[arg(long, short = 'n')]
    dry_run: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let ctx = Context::open(catch_interrupts())?;
    let options = GcOptions {
        dry_run: args.dry_run,
    };
    let swept = gc::gc(&ctx, &options)?;
    if args.json {
        return super::print_json(&swept);
    }
    let removed = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for item in &swept.removed {
        println!("{removed} {} ({})", item.what, item.why);
    }
    for item in &swept.kept {
        println!("kept {}: {}", item.what, item.why);
    }
    if swept.removed.is_empty() && swept.kept.is_empty() {
        println!("nothing to remove");
    }
    if swept.packed {
        println!("packed refs/agent");
    }
    Ok(())
}
