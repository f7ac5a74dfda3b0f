//! `git agent release`: plumbing to give a claimed task back.

use anyhow::Result;

use crate::error::No;
use crate::model::task::{Change, State};
use crate::store::Draft;

/// Give a claimed task back: it becomes open again, its lease is deleted.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The task (id or unique prefix).
    task: String,
    /// Who releases [default: $GIT_AGENT_ACTOR, else user.email, else user@host].
    #[arg(long)]
    actor: Option<String>,
    /// Release even if someone else holds the lease.
    #[arg(long)]
    force: bool,
    /// Why, for the history.
    #[arg(long, short)]
    message: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let store = super::open()?;
    let id = store.resolve(&args.task)?;
    let actor = args.actor.unwrap_or_else(super::default_actor);
    let role = super::role_or("implementer");
    store.update(&id, |current| {
        if current.task.state != State::InProgress {
            return Err(No(format!(
                "task {id} is {}, not in progress",
                current.task.state
            ))
            .into());
        }
        super::submit::check_holder(&store, &id, &actor, args.force)?;
        let reason = args
            .message
            .clone()
            .unwrap_or_else(|| format!("released by {actor}"));
        let draft = Draft {
            change: Change::Released {
                reason: Some(reason),
            },
            actor: actor.clone(),
            role: role.clone(),
        };
        Ok((vec![draft], vec![]))
    })?;
    println!("{id}");
    Ok(())
}
