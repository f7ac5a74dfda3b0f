//! `git agent resolve`: the human's answer to an escalation.

use anyhow::Result;

use crate::error::No;
use crate::model::task::{Change, Resolution, State};
use crate::store::Draft;

/// Answer a task that waits for a human: retry it, approve it, or abandon
/// it. A task in any other state but merged can be abandoned too, with a
/// reason (`--message`).
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("answer").required(true).args(["retry", "approve", "abandon"])))]
pub struct Args {
    /// The task (id or unique prefix).
    task: String,
    /// Try again, with a fresh set of attempts.
    #[arg(long)]
    retry: bool,
    /// Accept the work as it is.
    #[arg(long)]
    approve: bool,
    /// Give the task up (from any state but merged; outside needs_human,
    /// say why with --message).
    #[arg(long)]
    abandon: bool,
    /// What to tell the next attempt (or the history).
    #[arg(long, short)]
    message: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let store = super::open()?;
    let id = store.resolve(&args.task)?;
    let resolution = if args.retry {
        Resolution::Retry
    } else if args.approve {
        Resolution::Approve
    } else {
        Resolution::Abandon
    };
    let actor = super::default_actor();
    let record = store.update(&id, |current| {
        let state = current.task.state;
        let abandon = resolution == Resolution::Abandon;
        if abandon && state.is_terminal() {
            return Err(No(format!("task {id} is {state} already: nothing to abandon")).into());
        }
        if abandon && state != State::NeedsHuman && args.message.is_none() {
            anyhow::bail!("task {id} is {state}: say why it is abandoned with --message");
        }
        if !abandon && state != State::NeedsHuman {
            return Err(No(format!(
                "task {id} is {}, not waiting for a human",
                current.task.state
            ))
            .into());
        }
        let change = Change::Resolved {
            resolution,
            message: args.message.clone(),
        };
        Ok((
            vec![Draft {
                change,
                actor: actor.clone(),
                role: "human".into(),
            }],
            vec![],
        ))
    })?;
    println!("{id}: {}", record.task.state);
    Ok(())
}
