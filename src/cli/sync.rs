//! `git agent sync`: make the agent refs and notes of this clone and a
//! remote one (DESIGN.md §8).

use anyhow::{bail, Result};
use std::path::Path;

use crate::store::Store;

/// Fetch the agent refs and notes of a remote, merge what diverged, push
/// back with a compare-and-swap per ref; prints one line per ref that moved.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The remote [default: the one configured remote, else `origin`].
    remote: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let store = super::open()?;
    let remote = pick_remote(store.work_dir(), args.remote)?;
    report(&sync(&store, &remote)?, &remote);
    Ok(())
}

/// The remote to sync with: `given`, or the one configured remote, or
/// `origin`. Refuses a name git does not know as a remote (a URL would
/// give its refs no namespace).
pub(crate) fn pick_remote(dir: &Path, given: Option<String>) -> Result<String> {
    let remotes = crate::git::remote::remotes(dir)?;
    let remote = match given {
        Some(remote) => remote,
        None if remotes.len() == 1 => remotes[0].clone(),
        None => "origin".to_string(),
    };
    if !remotes.contains(&remote) {
        bail!(
            "remote \"{remote}\": no such remote (configured: {}); add it with `git remote add`",
            match remotes.is_empty() {
                true => "none".to_string(),
                false => remotes.join(", "),
            }
        );
    }
    Ok(remote)
}

/// Sync `store` with `remote`.
pub(crate) fn sync(store: &Store, remote: &str) -> Result<Vec<crate::store::sync::Moved>> {
    store.sync(remote)
}

fn report(moved: &[crate::store::sync::Moved], remote: &str) {
    if moved.is_empty() {
        println!("nothing to sync with {remote}");
    }
    for m in moved {
        println!("{} {}", m.how, m.name);
    }
}
