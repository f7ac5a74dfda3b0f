//! pre-push, after the gate: the agent refs and notes go along.
//!
//! With git config `agent.pushRefs true` (which `git agent init --remote R`
//! sets), a push to a remote whose fetch refspecs carry the agent refs (as
//! `init --remote` writes them) also runs a sync with it: `refs/agent/*` and
//! the agent notes are fetched, merged and pushed back with a lease per
//! ref, as `git agent sync` does. The user's own push never fails because
//! of it: where the sync loses a race or cannot reach the remote, the hook
//! says so and lets the push go on, and the next sync puts it right.

use anyhow::{bail, Result};

use super::HookContext;
use crate::store::sync::{fetch_refspecs, NOTES_REFS};
use crate::store::Store;

/// The git config key that turns this on.
pub const KEY: &str = "agent.pushRefs";

/// Sync the agent refs with `remote` (the pre-push hook's first argument)
/// where that is configured; `stdin` holds git's pre-push lines. Never
/// fails the push: a config value that is not a boolean, or a failed sync,
/// is a warning on stderr.
pub fn run(ctx: &HookContext, remote: Option<&str>, stdin: &str) -> Result<()> {
    let store = &ctx.store;
    let Some(remote) = remote else {
        return Ok(());
    };
    match wanted(store, remote) {
        Ok(true) if !only_agent_refs(stdin) => {}
        Ok(_) => return Ok(()),
        Err(e) => {
            eprintln!(
                "git-agent: {e:#}; the agent refs stay here (`git agent sync {remote}` moves them)"
            );
            return Ok(());
        }
    }
    match store.sync(remote) {
        Ok(moved) if moved.is_empty() => {}
        Ok(moved) => eprintln!(
            "git-agent: agent refs synced with {remote} alongside the push ({} moved)",
            crate::model::text::count(moved.len(), "ref")
        ),
        Err(e) => eprintln!(
            "git-agent: the agent refs did not go to {remote} with this push ({}); \
             your push goes on, and `git agent sync {remote}` brings them together",
            crate::model::one_line(&format!("{e:#}"), 200)
        ),
    }
    Ok(())
}

/// Whether a push to `remote` takes the agent refs along: `agent.pushRefs`
/// is true and `remote` is a configured remote that fetches them into
/// their namespace (a URL, or a remote `init --remote` did not set up, is
/// left alone).
pub fn wanted(store: &Store, remote: &str) -> Result<bool> {
    if !enabled(store)? {
        return Ok(false);
    }
    carries_agent_refs(store, remote)
}

/// Git config [`KEY`]; unset is off; a value that is not a boolean is an error.
pub fn enabled(store: &Store) -> Result<bool> {
    match store.repo().config_snapshot().try_boolean(KEY) {
        Ok(value) => Ok(value.unwrap_or(false)),
        Err(e) => bail!("git config {KEY}: {e} (set it to true or false)"),
    }
}

/// Whether `remote` is configured with both agent fetch refspecs.
pub fn carries_agent_refs(store: &Store, remote: &str) -> Result<bool> {
    let dir = store.work_dir();
    if !crate::git::remotes(dir)?.iter().any(|r| r == remote) {
        return Ok(false);
    }
    let fetch = crate::git::config_get_all(dir, &format!("remote.{remote}.fetch"))?;
    Ok(fetch_refspecs(remote)
        .iter()
        .all(|spec| fetch.contains(spec)))
}

/// Whether every ref this push moves on the remote is an agent ref or an
/// agent notes ref: the user is moving them by hand, and a sync beside it
/// would race that push.
fn only_agent_refs(stdin: &str) -> bool {
    let mut remote_refs = stdin
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2))
        .peekable();
    remote_refs.peek().is_some()
        && remote_refs.all(|name| name.starts_with("refs/agent/") || NOTES_REFS.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_of_agent_refs_alone_is_left_to_itself() {
        let zero = "0".repeat(40);
        let one = "1".repeat(40);
        let line = |r: &str| format!("{r} {one} {r} {zero}\n");
        let agent = line("refs/agent/tasks/t-abc") + &line("refs/notes/agent-review");
        assert!(only_agent_refs(&agent));
        assert!(!only_agent_refs(&(agent + &line("refs/heads/main"))));
        assert!(!only_agent_refs(""), "nothing pushed: nothing to race");
    }
}
