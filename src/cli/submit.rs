//! `git agent submit`: plumbing to record a branch head as done.

use anyhow::{anyhow, Context, Result};

use crate::error::No;
use crate::git;
use crate::model::task::{Change, State};
use crate::store::{Draft, Store};

/// Record the branch head as done, ready for review.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The task (id or unique prefix).
    task: String,
    /// The commit that is the work [default: the tip of agent/<task>].
    #[arg(long, value_name = "REV")]
    head: Option<String>,
    /// The branch the work is on [default: agent/<task>].
    #[arg(long)]
    branch: Option<String>,
    /// Who submits [default: $GIT_AGENT_ACTOR, else user.email, else user@host].
    #[arg(long)]
    actor: Option<String>,
    /// Submit even if someone else holds the lease.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> Result<()> {
    let store = super::open()?;
    let id = store.resolve(&args.task)?;
    let branch = args.branch.unwrap_or_else(|| format!("agent/{id}"));
    let rev = args
        .head
        .clone()
        .unwrap_or_else(|| format!("refs/heads/{branch}"));
    let state = store.load(&id)?.task.state;
    if state != State::InProgress {
        return Err(No(format!(
            "task {id} is {state}, not in progress: claim it first"
        ))
        .into());
    }
    let head = git::resolve_commit(store.work_dir(), &rev).map_err(|_| match &args.head {
        None => {
            anyhow!("branch {branch} does not exist: commit the work there, or name it with --head")
        }
        Some(rev) => anyhow!("--head: \"{rev}\" names no commit"),
    })?;
    // Work that adds conflict markers never goes to review or the gate.
    let target = crate::agent::config::team(&store)?.target;
    if let Some(tip) = git::find_commit(store.work_dir(), &format!("refs/heads/{target}"))? {
        let base = git::merge_base(store.work_dir(), &tip, &head)?
            .with_context(|| format!("{head} shares no history with {target}"))?;
        let marked = git::conflict_markers(store.work_dir(), &base, &head)?;
        if !marked.is_empty() {
            return Err(No(format!(
                "{head} adds conflict markers in: {}; resolve them and commit before submitting",
                marked.join(", ")
            ))
            .into());
        }
    }
    let actor = args.actor.unwrap_or_else(super::default_actor);
    let role = super::role_or("implementer");
    store.update(&id, |current| {
        if current.task.state != State::InProgress {
            return Err(No(format!(
                "task {id} is {}, not in progress: claim it first",
                current.task.state
            ))
            .into());
        }
        check_holder(&store, &id, &actor, args.force)?;
        let change = Change::Submitted {
            head: head.clone(),
            branch: Some(branch.clone()),
            base: None,
            usage: None,
        };
        Ok((
            vec![Draft {
                change,
                actor: actor.clone(),
                role: role.clone(),
            }],
            vec![],
        ))
    })?;
    println!("{id}");
    Ok(())
}

/// Refuse (exit 1) when someone other than `actor` holds a live lease on `id`.
pub fn check_holder(store: &Store, id: &str, actor: &str, force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    match store.lease(id)? {
        Some((lease, _)) if lease.holder != actor && lease.is_live() => Err(No(format!(
            "task {id} is held by {}, not {actor} (use --force to override)",
            lease.holder
        ))
        .into()),
        _ => Ok(()),
    }
}
