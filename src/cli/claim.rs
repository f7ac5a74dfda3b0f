//! `git agent claim`: plumbing to claim one task atomically.

use anyhow::{bail, Result};
use std::time::Duration;

use crate::error::No;
use crate::model::board::Board;
use crate::model::task::{start_order, State, Task};
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
    /// The process that holds the claim [default: the caller of git-agent].
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
        pid: args.pid.unwrap_or_else(std::os::unix::process::parent_id),
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

/// Try the candidates in start order; a lost race moves on to the next one.
fn claim_next(store: &Store, request: &ClaimRequest) -> Result<String> {
    for id in candidates(store)? {
        if let ClaimOutcome::Claimed(record) = store.claim(&id, request)? {
            return Ok(record.task.id);
        }
    }
    Err(No("nothing ready to claim".into()).into())
}

/// Ready tasks, and running tasks whose lease is dead, in start order.
fn candidates(store: &Store) -> Result<Vec<String>> {
    let tasks = store.load_all()?;
    let board = Board::new(&tasks);
    let mut list: Vec<&Task> = board.ready().into_iter().map(|v| v.task).collect();
    for task in tasks.iter().filter(|t| t.state == State::InProgress) {
        let live = store
            .lease(&task.id)?
            .is_some_and(|(lease, _)| lease.is_live());
        if !live {
            list.push(task);
        }
    }
    list.sort_by(|a, b| start_order(a, b));
    Ok(list.into_iter().map(|t| t.id.clone()).collect())
}
