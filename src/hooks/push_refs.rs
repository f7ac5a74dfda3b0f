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
        Ok(true) if !moves_agent_refs(stdin) && !push_is_dry_run() => {}
        Ok(_) => return Ok(()),
        Err(e) => {
            eprintln!(
                "git-agent: {}; the agent refs stay here (`git agent sync {remote}` moves them)",
                crate::model::one_line(&format!("{e:#}"), 200)
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

/// Whether this push moves any agent ref, agent notes ref or remote
/// namespace of them on the remote itself (`git push origin main
/// refs/agent/tasks/t-1`, `git push --mirror`): the user is moving them by
/// hand, and a sync beside it would move them under git's feet, so that
/// git's own update of them fails its old-value check and the user's push
/// fails with it.
fn moves_agent_refs(stdin: &str) -> bool {
    stdin
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2))
        .any(|name| {
            name.starts_with("refs/agent/")
                || name.starts_with("refs/agent-remotes/")
                || NOTES_REFS.contains(&name)
        })
}

/// Whether the `git push` this hook runs for was given `--dry-run` (`-n`).
/// git does not tell pre-push, so this reads the command lines of this
/// process's ancestors (the hook runs a few processes below `git push`:
/// the shim, `git agent`, perhaps a hook manager) for the nearest `git
/// push`. Where that cannot be read (no `/proc`), it is taken as a real
/// push.
fn push_is_dry_run() -> bool {
    let mut pid = std::process::id();
    for _ in 0..8 {
        let Some(parent) = parent_of(pid) else {
            return false;
        };
        pid = parent;
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            return false;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if let Some(dry) = dry_run_push(&args) {
            return dry;
        }
    }
    false
}

/// The parent of process `pid`, from `/proc/<pid>/stat`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace()
        .nth(1)?
        .parse()
        .ok()
        .filter(|p| *p > 1)
}

/// For a git command line that runs `push`: whether it is a dry run.
/// `None` for any other command line.
fn dry_run_push(args: &[String]) -> Option<bool> {
    let program = args.first()?;
    if !program.rsplit('/').next()?.starts_with("git") {
        return None;
    }
    let push = args.iter().position(|a| a == "push")?;
    let mut options = args[push + 1..].iter().take_while(|a| *a != "--");
    Some(options.any(|a| {
        a == "--dry-run" || (a.starts_with('-') && !a.starts_with("--") && a.contains('n'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_that_moves_any_agent_ref_is_left_to_itself() {
        let zero = "0".repeat(40);
        let one = "1".repeat(40);
        let line = |r: &str| format!("{r} {one} {r} {zero}\n");
        let agent = line("refs/agent/tasks/t-abc") + &line("refs/notes/agent-review");
        assert!(moves_agent_refs(&agent));
        assert!(moves_agent_refs(&(agent + &line("refs/heads/main"))));
        assert!(moves_agent_refs(&line(
            "refs/agent-remotes/origin/tasks/t-1"
        )));
        assert!(!moves_agent_refs(&line("refs/heads/main")));
        assert!(!moves_agent_refs(""), "nothing pushed: nothing to race");
    }

    #[test]
    fn a_dry_run_is_read_off_the_push_command_line() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            dry_run_push(&args("git push --dry-run origin main")),
            Some(true)
        );
        assert_eq!(
            dry_run_push(&args("/usr/bin/git push -nv origin")),
            Some(true)
        );
        assert_eq!(
            dry_run_push(&args("git -C x push origin main")),
            Some(false)
        );
        assert_eq!(dry_run_push(&args("git push origin -- -n")), Some(false));
        assert_eq!(
            dry_run_push(&args("git push --no-verify origin")),
            Some(false)
        );
        assert_eq!(dry_run_push(&args("sh .git/hooks/pre-push origin")), None);
        assert_eq!(dry_run_push(&args("git agent hook pre-push")), None);
    }
}
