//! The only place that runs the git CLI, for what gix does not do simply
//! (config writes, revision parsing with git's full syntax, worktrees, merges,
//! push and fetch).
//!
//! A vocabulary: each git behaviour the project relies on is one named
//! function, documented and tested (against the real git binary, in the
//! submodule that defines it) once. The runners that take an argv list are
//! private to this module, so no raw git command line is written anywhere
//! else. Every command runs without the variables a hook inherits
//! ([`LOCAL_ENV_VARS`]), so that git acts on the directory it is given.

mod config;
mod history;
mod merge;
pub mod refs;
pub mod remote;
mod repo;
mod rev;
mod worktree;

pub use config::{
    config_add, config_get, config_get_all, config_set, config_unset_value, remote_url, remotes,
};
pub use history::{commit_patch_ids, diff, diff_names, diff_patch_id, diff_stat, log, noted};
pub use merge::{
    commit_tree, conflict_markers, merge_abort, merge_ff_only, merge_no_commit, merge_squash,
    merge_tree, merging, rebase, rebase_abort, rebase_continue, stage_resolved, unmerged,
    unresolved, MergeTree,
};
pub use repo::{
    common_dir, git_path, init, is_ignored, is_tracked, is_work_tree, object_format, pack_refs,
    pack_refs_in_background, private_path, ref_format, tracked_files, version,
};
pub use rev::{
    branches, cherry, commits_in, find_commit, first_parent_descendants, head, head_ref,
    is_ancestor, merge_base, resolve_commit, tree_of,
};
pub use worktree::{
    changed_paths, checkout_detached, checkout_new_branch, clean, commit_all, ignored_files,
    reset_hard, stage_all, worktree_add, worktree_add_detached, worktree_add_new_branch,
    worktree_list, worktree_move, worktree_prune, worktree_remove, Worktree,
};

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Command, Stdio};

/// Run `git <args>` in `dir` and return its stdout, trimmed. Fails with git's
/// own message when git exits non-zero.
fn run(dir: &Path, args: &[&str]) -> Result<String> {
    let output = command(dir, args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running git {}", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Run `git <args>` in `dir`; `Ok(None)` where git exits non-zero (a "no",
/// such as a config key that is not set).
fn try_run(dir: &Path, args: &[&str]) -> Result<Option<String>> {
    let output = command(dir, args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .with_context(|| format!("running git {}", args.join(" ")))?;
    Ok(output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string()))
}

/// A git command in `dir`, without the variables a hook inherits
/// (`GIT_DIR`, `GIT_INDEX_FILE`, ...), which would point it elsewhere.
fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir).args(args);
    for var in LOCAL_ENV_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// What `git rev-parse --local-env-vars` lists (git 2.47).
pub const LOCAL_ENV_VARS: &[&str] = &[
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_OBJECT_DIRECTORY",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_COMMON_DIR",
];

/// Run git in an agent worktree with hooks off, so that git-agent's own
/// commits never trigger its hooks (or the user's) a second time.
fn quiet(dir: &Path, args: &[&str]) -> Result<String> {
    let mut all = vec!["-c", "core.hooksPath=/dev/null"];
    all.extend_from_slice(args);
    run(dir, &all)
}

/// Run git with hooks off and say whether it succeeded, for commands whose
/// failure is an answer (a merge or rebase that conflicts).
fn quiet_succeeds(dir: &Path, args: &[&str]) -> Result<bool> {
    let mut all = vec!["-c", "core.hooksPath=/dev/null"];
    all.extend_from_slice(args);
    Ok(try_run(dir, &all)?.is_some())
}

/// Run `git <args>` in `dir`: whether it exited 0, and its stdout either way
/// (for commands whose "no" answer still prints, like `merge-tree`).
fn run_status(dir: &Path, args: &[&str]) -> Result<(bool, String)> {
    let output = command(dir, args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .with_context(|| format!("running git {}", args.join(" ")))?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
    ))
}

/// Real repositories in temporary directories, for the tests of each
/// submodule: the real git binary, no mocks.
#[cfg(test)]
mod testing {
    use std::path::Path;

    /// A fresh repository on `main`, with its own identity and one commit
    /// of `file` holding `base`.
    pub fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let d = dir.path();
        git(
            d,
            &["init", "-q", "--initial-branch=main", "--ref-format=files"],
        );
        git(d, &["config", "user.name", "t"]);
        git(d, &["config", "user.email", "t@localhost"]);
        git(d, &["config", "commit.gpgsign", "false"]);
        commit(d, "file", "base\n", "base");
        dir
    }

    /// Run git in `dir` to set a fixture up; panics with git's message.
    pub fn git(dir: &Path, args: &[&str]) -> String {
        super::run(dir, args).unwrap()
    }

    /// Write `text` to `path` and commit it on the current branch; the new
    /// commit's id.
    pub fn commit(dir: &Path, path: &str, text: &str, message: &str) -> String {
        std::fs::write(dir.join(path), text).unwrap();
        git(dir, &["add", "--", path]);
        git(
            dir,
            &[
                "-c",
                "core.hooksPath=/dev/null",
                "commit",
                "-q",
                "-m",
                message,
            ],
        );
        git(dir, &["rev-parse", "HEAD"])
    }
}
