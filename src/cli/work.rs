//! `git agent work`: run one implementer on one task in its worktree.

use anyhow::Result;

use crate::agent::process::catch_interrupts;
use crate::error::{Interrupted, No};
use crate::orchestrate::work::{self, Finished};
use crate::orchestrate::Context;
use crate::store::lease::{ClaimOutcome, ClaimRequest};

/// Claim a task and run one implementer attempt on it; exit 0 if it was
/// submitted, 1 if the attempt failed.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The task (id or unique prefix).
    task: String,
    /// Who works [default: $GIT_AGENT_ACTOR, else user.email, else user@host].
    #[arg(long)]
    actor: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let ctx = Context::open(catch_interrupts())?;
    let id = ctx.store.resolve(&args.task)?;
    ctx.role("implementer")?;
    ctx.check_target()?;
    ctx.check_programs(&["implementer"])?;
    let actor = args.actor.unwrap_or_else(super::default_actor);
    let request = ClaimRequest {
        actor: actor.clone(),
        role: "implementer".into(),
        pid: Some(std::process::id()),
        ttl: crate::store::lease::DEFAULT_TTL,
    };
    match ctx.store.claim(&id, &request)? {
        ClaimOutcome::Claimed(_) => {}
        ClaimOutcome::Held(lease) => {
            return Err(No(format!("task {id} is held by {}", lease.holder)).into())
        }
        ClaimOutcome::NotClaimable(why) => return Err(No(why).into()),
    }
    let finished = work::implement(&ctx, &id, &actor, 0)?;
    let line = work::describe(&finished);
    match finished {
        Finished::Submitted { .. } => {
            println!("{id}: {line}");
            Ok(())
        }
        Finished::Interrupted => Err(Interrupted(format!("{id}: {line}")).into()),
        Finished::Failed { .. } | Finished::RateLimited { .. } | Finished::Lost => {
            Err(No(format!("{id}: {line}")).into())
        }
    }
}
