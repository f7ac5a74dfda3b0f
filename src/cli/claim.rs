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
    /// The process that holds the claim [default: whoever called `git agent`
    /// or `git-agent` (git's own wrapper process is skipped)].
    #[arg(long)]
    pid: Option<u32>,
    /// How long the lease holds unless renewed.
    #[arg(long, default_value = "30m", value_parser = super::parse_duration)]
    ttl: Duration,
}

pub fn run(args: Args) -> Result<()> {
    if args.actor.trim().is_empty() {
        bail!("--actor: must not be empty");
    }
    let store = super::open()?;
    let request = ClaimRequest {
        actor: args.actor.clone(),
        role: super::role_or("implementer"),
        // The claim outlives this process: by default it belongs to whoever
        // called us (the agent or its shell).
        pid: args.pid.unwrap_or_else(caller_pid),
        ttl: args.ttl,
    };
    let id = match args.task {
        Some(prefix) => claim_one(&store, &store.resolve(&prefix)?, &request)?,
        None => claim_next(&store, &request)?,
    };
    println!("{id}");
    Ok(())
}

fn claim_one(store: &Store, id: &str, request: &ClaimRequest) -> Result<String> {
    match store.claim(id, request)? {
        ClaimOutcome::Claimed(record) => Ok(record.task.id),
        ClaimOutcome::Held(lease) => Err(No(format!(
            "task {id} is held by {} (pid {} on {}, until {})",
            lease.holder, lease.pid, lease.host, lease.expires
        ))
        .into()),
        ClaimOutcome::NotClaimable(why) => Err(No(why).into()),
    }
}

fn claim_next(store: &Store, request: &ClaimRequest) -> Result<String> {
    match store.claim_next(request)? {
        Some(record) => Ok(record.task.id),
        None => Err(No("nothing ready to claim".into()).into()),
    }
}

/// The process the claim belongs to by default: our parent, or, when that is
/// git running us as `git agent claim` (it exits as soon as we do), its parent.
fn caller_pid() -> u32 {
    let parent = std::os::unix::process::parent_id();
    let comm = std::fs::read_to_string(format!("/proc/{parent}/comm")).unwrap_or_default();
    if comm.trim() != "git" {
        return parent;
    }
    std::fs::read_to_string(format!("/proc/{parent}/stat"))
        .ok()
        .and_then(|stat| {
            // "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
            let rest = stat.rsplit_once(')')?.1;
            rest.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(parent)
}
