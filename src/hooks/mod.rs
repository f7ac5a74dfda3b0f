//! What each git hook does. The shims in the repository's `hooks/` directory
//! (embedded here) call `git agent hook <name>`, which lands in [`run`].
//!
//! A hook does bookkeeping (notes, task events) and queues work in
//! `<git-common-dir>/agent/queue/`; it never runs an agent in the foreground.
//! Hooks run git with the variables a hook inherits removed (see
//! [`crate::git::LOCAL_ENV_VARS`]) and with optional locks off, so a post-*
//! hook never takes the index lock of the command that fired it.

pub mod gate;
pub mod install;
pub mod merges;
pub mod post_commit;
pub mod push_refs;
pub mod receive;
pub mod rewrite;

use anyhow::{Context, Result};
use gix::ObjectId;

use crate::store::Store;

/// A hook git-agent installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    PostCommit,
    PrePush,
    PostMerge,
    PostRewrite,
    /// Installed only with `--server`, for a bare hub that receives pushes.
    PostReceive,
}

impl Hook {
    pub const ALL: [Hook; 5] = [
        Hook::PostCommit,
        Hook::PrePush,
        Hook::PostMerge,
        Hook::PostRewrite,
        Hook::PostReceive,
    ];

    /// The file name git looks for.
    pub fn name(self) -> &'static str {
        match self {
            Hook::PostCommit => "post-commit",
            Hook::PrePush => "pre-push",
            Hook::PostMerge => "post-merge",
            Hook::PostRewrite => "post-rewrite",
            Hook::PostReceive => "post-receive",
        }
    }

    /// The shim installed under [`Hook::name`]: `#!/bin/sh`, LF endings,
    /// carrying [`SHIM_MARKER`].
    pub fn shim(self) -> &'static str {
        match self {
            Hook::PostCommit => include_str!("../../hooks/post-commit"),
            Hook::PrePush => include_str!("../../hooks/pre-push"),
            Hook::PostMerge => include_str!("../../hooks/post-merge"),
            Hook::PostRewrite => include_str!("../../hooks/post-rewrite"),
            Hook::PostReceive => include_str!("../../hooks/post-receive"),
        }
    }
}

/// The line by which a hook file is recognised as one of our shims (any
/// version of it).
pub const SHIM_MARKER: &str = "# git-agent hook shim: ";

/// What every hook needs: the repository and who acts.
pub struct HookContext {
    pub store: Store,
    /// Recorded as the actor of task events a hook writes.
    pub actor: String,
}

/// Open the repository a hook runs for (hooks start in the work tree's
/// root, or in the git dir of a bare repository), then clean the process
/// environment for what follows: the variables a hook inherits
/// (`GIT_DIR`, `GIT_INDEX_FILE`, ...) are removed, so no git command or
/// agent started from here is pointed at the caller's index, and optional
/// locks are turned off, so a post-* hook never takes the index lock.
/// Call it before any thread starts.
pub fn open() -> Result<Store> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let store = match Store::discover(&cwd) {
        Ok(store) => store,
        Err(e) => match std::env::var_os("GIT_DIR") {
            Some(dir) => Store::discover(&cwd.join(dir))?,
            None => return Err(e),
        },
    };
    for var in crate::git::LOCAL_ENV_VARS {
        std::env::remove_var(var);
    }
    std::env::set_var("GIT_OPTIONAL_LOCKS", "0");
    Ok(store)
}

/// Run hook `hook` with git's arguments `args` and standard input `stdin`
/// (read only by the hooks that get one). An `Err` of [`crate::error::No`]
/// means the hook refuses (exit 1): only the pre-push gate does.
pub fn run(ctx: &HookContext, hook: Hook, args: &[String], stdin: &str) -> Result<()> {
    match hook {
        Hook::PostCommit => post_commit::run(ctx),
        Hook::PrePush => {
            let remote = args.first().map(String::as_str);
            gate::run(ctx, remote, stdin)?;
            push_refs::run(ctx, remote, stdin)
        }
        Hook::PostMerge => merges::post_merge(ctx, args.first().map(String::as_str)),
        Hook::PostRewrite => rewrite::run(ctx, args.first().map(String::as_str), stdin),
        Hook::PostReceive => receive::run(ctx, stdin),
    }
}

/// The branch checked out where the hook runs (`main`, `agent/t-abc`), or
/// `None` on a detached HEAD.
pub fn current_branch(store: &Store) -> Result<Option<String>> {
    Ok(store
        .head_ref()?
        .and_then(|name| name.strip_prefix("refs/heads/").map(String::from)))
}

/// The task id of an agent branch `agent/<id>`, if `branch` is one.
pub fn task_of_branch(branch: &str) -> Option<&str> {
    branch
        .strip_prefix("agent/")
        .filter(|id| crate::model::id::is_valid_name(id))
}

/// The commit ids of every commit that has a note in `notes_ref`, listed by
/// one `git notes list` (cheaper than a lookup per commit when many are asked).
pub fn annotated(store: &Store, notes_ref: &str) -> Result<std::collections::HashSet<ObjectId>> {
    Ok(crate::git::noted(store.work_dir(), notes_ref)?
        .iter()
        .filter_map(|id| ObjectId::from_hex(id.as_bytes()).ok())
        .collect())
}

/// The task a provenance note names, from its first line that names one.
pub fn provenance_task(store: &Store, commit: ObjectId) -> Result<Option<String>> {
    let lines = store.note_lines(crate::store::notes::PROVENANCE, commit)?;
    Ok(lines.iter().find_map(|line| note_field(line, "task")))
}

/// The string `field` of one JSON line of a note, if it has one.
pub fn note_field(line: &str, field: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()?
        .get(field)?
        .as_str()
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shims_are_posix_sh_with_lf_endings_and_the_marker() {
        for hook in Hook::ALL {
            let shim = hook.shim();
            assert!(shim.starts_with("#!/bin/sh\n"), "{}", hook.name());
            assert!(!shim.contains('\r'), "{} has CR", hook.name());
            let marker = format!("{SHIM_MARKER}{}", hook.name());
            assert!(shim.lines().nth(1).unwrap().starts_with(&marker));
            assert!(shim.contains(&format!("hook {} \"$@\"", hook.name())));
            assert!(shim.contains(&format!("{}.git-agent-chained", hook.name())));
        }
    }

    #[test]
    fn agent_branches_name_their_task() {
        assert_eq!(task_of_branch("agent/t-abc123"), Some("t-abc123"));
        assert_eq!(task_of_branch("agent/T/x"), None);
        assert_eq!(task_of_branch("main"), None);
    }
}
