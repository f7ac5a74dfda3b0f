//! `git agent claim`: plumbing to claim one task atomically.

use anyhow::{bail, Result};
use std::time::Duration;

use crate::error::No;
use crate::store::lease::{ClaimOutcome, ClaimRequest};
use crate::store::Store;

/// Claim a task atomically; prints its id (exit 1 if someone else holds it).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The task (id or unique prefix).
    #[arg(conflicts_with = "next", required_unless_present = "next")]
    task: Option<String>,
    /// Claim the first task that can start now (or whose holder is gone).
    #[arg(long)]
    next: bool,
    /// Who claims (recorded in the event and the lease).
    #[arg(long)]
    actor: String,
    /// Tie the claim to this process as well: once it is gone from this
    /// host, the claim can be taken over [default: the claim holds until its
    /// lease expires or it is released or submitted, whoever called claim].
    #[arg(long)]
    pid: Option<u32>,
    /// How long the lease holds unless renewed (`git agent renew`).
    #[arg(long, default_value = "30m", value_parser = super::parse_duration)]
    ttl: Duration,
    /// Claim against this remote: the claim counts only once its push
    /// lands there (a sync before and after); a claim that lost to one
    /// that landed first exits 1.
    #[arg(long, value_name = "REMOTE")]
    remote: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    if args.actor.trim().is_empty() {
        bail!("--actor: must not be empty");
    }
    let store = super::open()?;
    let request = ClaimRequest {
        actor: args.actor.clone(),
        role: super::role_or("implementer"),
        // A claim outlives this process and its caller (an agent's tool
        // call runs each command in a fresh shell): no pid unless asked.
        pid: args.pid,
        ttl: args.ttl,
    };
    let remote = match args.remote {
        Some(given) => {
            let remote = super::sync::pick_remote(store.work_dir(), Some(given))?;
            // Sync first, so that the task named and the candidates are
            // judged on what the remote holds.
            store.sync(&remote)?;
            Some(remote)
        }
        None => None,
    };
    let claimer = Claimer {
        store: &store,
        request: &request,
        remote: remote.as_deref(),
    };
    let id = match args.task {
        Some(prefix) => claimer.one(&store.resolve(&prefix)?)?,
        None => claim_next(&claimer)?,
    };
    println!("{id}");
    Ok(())
}

/// Who claims, and against which remote, if any.
struct Claimer<'a> {
    store: &'a Store,
    request: &'a ClaimRequest,
    remote: Option<&'a str>,
}

impl Claimer<'_> {
    /// One claim attempt: locally, or won by the push to the remote.
    fn attempt(&self, id: &str) -> Result<ClaimOutcome> {
        match self.remote {
            Some(remote) => self.store.claim_remote(id, self.request, remote, true),
            None => self.store.claim(id, self.request),
        }
    }

    fn one(&self, id: &str) -> Result<String> {
        claim_one(self, id)
    }
}

fn claim_one(claimer: &Claimer, id: &str) -> Result<String> {
    match claimer.attempt(id)? {
        ClaimOutcome::Claimed(record) => Ok(record.task.id),
        ClaimOutcome::Held(lease) => {
            Err(No(format!("task {id} is held by {}", lease.describe())).into())
        }
        ClaimOutcome::NotClaimable(why) => Err(No(why).into()),
    }
}

/// How far past a lost task `claim --next` looks for its next try.
const SPREAD: usize = 8;

/// Claim the first task that may start now, by the same rule as `run`
/// (a predicted clash with work in flight waits). A lost race moves on to
/// one of the next [`SPREAD`] candidates at random: claimers that lost the
/// same task would otherwise all race again for the one after it, one
/// winner a round.
fn claim_next(claimer: &Claimer) -> Result<String> {
    static NEVER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let ctx = crate::orchestrate::Context::open(&NEVER)?;
    let mut waiting = Vec::new();
    let mut candidates = Vec::new();
    for (id, waits) in crate::orchestrate::predict::startable(&ctx)? {
        match waits {
            Some(why) => waiting.push(format!("{id} {why}")),
            None => candidates.push(id),
        }
    }
    let mut next = 0;
    while next < candidates.len() {
        let id = candidates.remove(next);
        if let ClaimOutcome::Claimed(record) = claimer.attempt(&id)? {
            return Ok(record.task.id);
        }
        let reach = candidates.len().min(SPREAD);
        next = match reach {
            0 => 0,
            _ => (crate::model::id::random_u64() % reach as u64) as usize,
        };
    }
    match waiting.is_empty() {
        true => Err(No("nothing ready to claim".into()).into()),
        false => Err(No(format!(
            "nothing ready to claim; waiting for work in flight: {}",
            waiting.join("; ")
        ))
        .into()),
    }
}
