//! `git agent renew`: extend the holder's lease on a claimed task.

use anyhow::{bail, Result};
use std::time::Duration;

use crate::error::No;

/// Extend the lease on a task you hold; prints the new expiry (exit 1 if
/// someone else holds it, or it is not in progress).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The task (id or unique prefix).
    task: String,
    /// Who holds the claim (as given to `claim --actor`).
    #[arg(long)]
    actor: String,
    /// How long the lease holds from now.
    #[arg(long, default_value = "30m", value_parser = super::parse_duration)]
    ttl: Duration,
}

pub fn run(args: Args) -> Result<()> {
    if args.actor.trim().is_empty() {
        bail!("--actor: must not be empty");
    }
    let store = super::open()?;
    let id = store.resolve(&args.task)?;
    match store.renew(&id, &args.actor, args.ttl)? {
        Ok(lease) => {
            println!("{id} {}", lease.expires);
            Ok(())
        }
        Err(why) => Err(No(format!("task {id} not renewed: {why}")).into()),
    }
}
