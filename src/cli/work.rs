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
    /// Claim against this remote (the claim counts once its push lands
    /// there), and sync with it once the attempt ends.
    #[arg(long, value_name = "REMOTE")]
    remote: Option<String>,
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
    let remote = args
        .remote
        .map(|r| super::sync::pick_remote(ctx.store.work_dir(), Some(r)))
        .transpose()?;
    let outcome = match &remote {
        Some(remote) => ctx.store.claim_remote(&id, &request, remote, false)?,
        None => ctx.store.claim(&id, &request)?,
    };
    match outcome {
        ClaimOutcome::Claimed(_) => {}
        ClaimOutcome::Held(lease) => {
            return Err(No(format!("task {id} is held by {}", lease.holder)).into())
        }
        ClaimOutcome::NotClaimable(why) => return Err(No(why).into()),
    }
    let finished = work::implement(&ctx, &id, &actor, 0)?;
    if let Some(remote) = &remote {
        ctx.store.sync(remote)?;
    }
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
