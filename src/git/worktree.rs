//! Worktrees: making, listing and removing them, and what happens inside
//! one (checkout, clean, staging, committing). Every command that could run
//! a hook (`post-checkout`, `pre-commit`, ...) runs with hooks off: these
//! are git-agent's own moves, never the user's.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::merge::merging;
use super::{command, quiet, run, try_run};

/// One worktree, as `git worktree list --porcelain` describes it.
#[derive(Debug)]
pub struct Worktree {
    pub path: PathBuf,
    /// `refs/heads/<name>`, or `None` when detached.
    pub branch: Option<String>,
    /// The lock reason (possibly empty) when locked.
    pub locked: Option<String>,
}

/// Every worktree of the repository at `dir`, the main one first. git fails
/// to read the admin dir of a worktree being added at that moment: callers
/// that add worktrees concurrently take turns (see `orchestrate::worktree`).
pub fn worktree_list(dir: &Path) -> Result<Vec<Worktree>> {
    let listing = run(dir, &["worktree", "list", "--porcelain"])?;
    let mut all = Vec::new();
    for block in listing.split("\n\n") {
        let mut entry = Worktree {
            path: PathBuf::new(),
            branch: None,
            locked: None,
        };
        for line in block.lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "worktree" => entry.path = PathBuf::from(value),
                "branch" => entry.branch = Some(value.to_string()),
                "locked" => entry.locked = Some(value.to_string()),
                _ => {}
            }
        }
        if !entry.path.as_os_str().is_empty() {
            all.push(entry);
        }
    }
    Ok(all)
}

/// Check out the existing `branch` in a new worktree at `path` (which must
/// not exist or be empty). git refuses a branch checked out in another
/// worktree.
pub fn worktree_add(dir: &Path, path: &Path, branch: &str) -> Result<()> {
    quiet(dir, &["worktree", "add", "--quiet", utf8(path)?, branch]).map(drop)
}

/// Make `branch` at `start` and check it out in a new worktree at `path`;
/// git refuses a `branch` that exists.
pub fn worktree_add_new_branch(dir: &Path, path: &Path, branch: &str, start: &str) -> Result<()> {
    let args = [
        "worktree",
        "add",
        "--quiet",
        "-b",
        branch,
        utf8(path)?,
        start,
    ];
    quiet(dir, &args).map(drop)
}

/// A new worktree at `path` with `HEAD` detached at `rev`: no branch is
/// checked out, so any branch may be checked out elsewhere meanwhile.
pub fn worktree_add_detached(dir: &Path, path: &Path, rev: &str) -> Result<()> {
    let args = ["worktree", "add", "--quiet", "--detach", utf8(path)?, rev];
    quiet(dir, &args).map(drop)
}

/// Remove the worktree at `path` and its admin dir. Without `force` git
/// refuses one with uncommitted changes or untracked files, or a locked
/// one; with it, only a locked one.
pub fn worktree_remove(dir: &Path, path: &Path, force: bool) -> Result<()> {
    let mut args = vec!["worktree", "remove"];
    if force {
        args.push("--force");
    }
    args.push(utf8(path)?);
    quiet(dir, &args).map(drop)
}

/// Forget the admin dirs of worktrees whose directory is gone (git also
/// removes one that another process is adding at that moment: callers take
/// turns).
pub fn worktree_prune(dir: &Path) -> Result<()> {
    quiet(dir, &["worktree", "prune"]).map(drop)
}

fn utf8(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("worktree path {} is not UTF-8", path.display()))
}

/// Detach `HEAD` at `rev` in the worktree at `dir`, discarding changes to
/// tracked files (untracked ones stay: see [`clean`]).
pub fn checkout_detached(dir: &Path, rev: &str) -> Result<()> {
    quiet(dir, &["checkout", "--quiet", "--force", "--detach", rev]).map(drop)
}

/// Move the worktree at `from` to `to` (`git worktree move`), its admin
/// dir and all its files (ignored ones too) with it.
pub fn worktree_move(dir: &Path, from: &Path, to: &Path) -> Result<()> {
    quiet(dir, &["worktree", "move", utf8(from)?, utf8(to)?]).map(drop)
}

/// Check out a new branch `branch` at `start` in the worktree at `dir`,
/// discarding changes to tracked files (`checkout --force -b`).
pub fn checkout_new_branch(dir: &Path, branch: &str, start: &str) -> Result<()> {
    quiet(
        dir,
        &["checkout", "--quiet", "--force", "-b", branch, start],
    )
    .map(drop)
}

/// The ignored files of the worktree at `dir` that `pathspecs` match,
/// relative to it (every file under an ignored directory, one by one);
/// none where `pathspecs` is empty. (`git clean -X` with a pathspec takes
/// whole ignored directories the pathspec does not match, so it is not used.)
pub fn ignored_files(dir: &Path, pathspecs: &[&str]) -> Result<Vec<String>> {
    if pathspecs.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec![
        "ls-files",
        "-z",
        "--others",
        "--ignored",
        "--exclude-standard",
        "--",
    ];
    args.extend_from_slice(pathspecs);
    Ok(run(dir, &args)?
        .split('\0')
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect())
}

/// Delete the untracked files and directories of the worktree at `dir`;
/// ignored ones (build caches) stay.
pub fn clean(dir: &Path) -> Result<()> {
    quiet(dir, &["clean", "--quiet", "-fd"]).map(drop)
}

/// Reset the index and tracked files of the worktree at `dir` to `HEAD`.
pub fn reset_hard(dir: &Path) -> Result<()> {
    quiet(dir, &["reset", "--quiet", "--hard"]).map(drop)
}

/// Stage everything in the worktree at `dir`: changes, deletions and
/// untracked files (not ignored ones).
pub fn stage_all(dir: &Path) -> Result<()> {
    quiet(dir, &["add", "-A"]).map(drop)
}

/// The lines of `git status --porcelain` at `dir`, one per changed path
/// (staged or not) or untracked file; empty where the worktree is clean.
/// An error where git cannot read the worktree.
pub fn changed_paths(dir: &Path) -> Result<Vec<String>> {
    Ok(
        run(dir, &["status", "--porcelain", "--untracked-files=all"])?
            .lines()
            .map(String::from)
            .collect(),
    )
}

/// Whether the worktree at `dir` has changes, staged or not, or untracked files.
fn has_changes(dir: &Path) -> Result<bool> {
    Ok(!changed_paths(dir)?.is_empty())
}

/// Commit everything in the worktree at `dir` (hooks off) with `message`;
/// returns the new commit, or `None` if there was nothing to commit. A
/// merge in progress is committed even when its result equals `HEAD`'s tree
/// (a conflict resolved as "ours"). Where no identity is configured, the
/// commit is signed `git-agent <git-agent@localhost>`.
pub fn commit_all(dir: &Path, message: &str) -> Result<Option<String>> {
    if !merging(dir) && !has_changes(dir)? {
        return Ok(None);
    }
    stage_all(dir)?;
    let mut cmd = command(
        dir,
        &[
            "-c",
            "core.hooksPath=/dev/null",
            "commit",
            "-q",
            "--no-verify",
            "-F",
            "-",
        ],
    );
    if try_run(dir, &["var", "GIT_COMMITTER_IDENT"])?.is_none() {
        sign_as_git_agent(&mut cmd);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running git commit")?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("git commit's stdin")?;
        stdin.write_all(message.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "git commit failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(Some(super::rev::head(dir)?))
}

/// Where no identity is configured: sign as git-agent rather than fail.
pub(super) fn sign_as_git_agent(cmd: &mut std::process::Command) {
    for var in ["GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"] {
        cmd.env(var, "git-agent");
    }
    for var in ["GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"] {
        cmd.env(var, "git-agent@localhost");
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{commit, git, repo};
    use super::*;

    /// `dir`'s canonical path, so paths compare with what git prints.
    fn root(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().canonicalize().unwrap()
    }

    #[test]
    fn worktree_add_checks_out_an_existing_branch_once() {
        let dir = repo();
        let d = &root(&dir);
        git(d, &["branch", "agent/t-a"]);
        let path = d.join("wt-a");
        worktree_add(d, &path, "agent/t-a").unwrap();
        assert_eq!(
            git(&path, &["symbolic-ref", "HEAD"]),
            "refs/heads/agent/t-a"
        );
        assert!(path.join("file").exists());
        let again = worktree_add(d, &d.join("wt-b"), "agent/t-a").unwrap_err();
        assert!(format!("{again:#}").contains("agent/t-a"), "{again:#}");
        assert!(worktree_add(d, &d.join("wt-c"), "no-such-branch").is_err());
    }

    #[test]
    fn worktree_add_new_branch_refuses_an_existing_branch() {
        let dir = repo();
        let d = &root(&dir);
        let base = git(d, &["rev-parse", "HEAD"]);
        let path = d.join("wt");
        worktree_add_new_branch(d, &path, "agent/t-a", &base).unwrap();
        assert_eq!(git(&path, &["rev-parse", "agent/t-a"]), base);
        assert!(worktree_add_new_branch(d, &d.join("wt2"), "agent/t-a", &base).is_err());
    }

    #[test]
    fn worktrees_are_listed_removed_and_pruned() {
        let dir = repo();
        let d = &root(&dir);
        let detached = d.join("detached");
        worktree_add_detached(d, &detached, "main").unwrap();
        git(d, &["branch", "agent/t-a"]);
        let branch = d.join("branch");
        worktree_add(d, &branch, "agent/t-a").unwrap();
        git(
            d,
            &[
                "worktree",
                "lock",
                "--reason",
                "busy",
                branch.to_str().unwrap(),
            ],
        );
        let all = worktree_list(d).unwrap();
        let mut found: Vec<(&Path, Option<&str>, Option<&str>)> = all
            .iter()
            .map(|w| (w.path.as_path(), w.branch.as_deref(), w.locked.as_deref()))
            .collect();
        // The main worktree comes first; git lists the others in no set order.
        found[1..].sort();
        assert_eq!(
            found,
            vec![
                (d.as_path(), Some("refs/heads/main"), None),
                (branch.as_path(), Some("refs/heads/agent/t-a"), Some("busy")),
                (detached.as_path(), None, None),
            ]
        );
        std::fs::write(detached.join("new"), "x").unwrap();
        assert!(
            worktree_remove(d, &detached, false).is_err(),
            "untracked work"
        );
        worktree_remove(d, &detached, true).unwrap();
        assert!(!detached.exists());
        assert!(worktree_remove(d, &branch, true).is_err(), "locked");
        git(d, &["worktree", "unlock", branch.to_str().unwrap()]);
        std::fs::remove_dir_all(&branch).unwrap();
        assert_eq!(worktree_list(d).unwrap().len(), 2, "listed until pruned");
        worktree_prune(d).unwrap();
        assert_eq!(worktree_list(d).unwrap().len(), 1);
    }

    #[test]
    fn checkout_clean_and_reset_discard_changes_but_not_ignored_files() {
        let dir = repo();
        let d = dir.path();
        let base = git(d, &["rev-parse", "HEAD"]);
        commit(d, "file", "two\n", "two");
        std::fs::write(d.join(".git/info/exclude"), "cache/\n").unwrap();
        std::fs::create_dir(d.join("cache")).unwrap();
        std::fs::write(d.join("cache/kept"), "c").unwrap();
        std::fs::write(d.join("file"), "edited\n").unwrap();
        std::fs::write(d.join("stray"), "s").unwrap();
        checkout_detached(d, &base).unwrap();
        assert_eq!(std::fs::read_to_string(d.join("file")).unwrap(), "base\n");
        assert_eq!(changed_paths(d).unwrap(), vec!["?? stray"]);
        clean(d).unwrap();
        assert!(!has_changes(d).unwrap());
        assert!(d.join("cache/kept").exists(), "ignored files stay");
        std::fs::write(d.join("file"), "edited\n").unwrap();
        stage_all(d).unwrap();
        assert_eq!(changed_paths(d).unwrap(), vec!["M  file"]);
        reset_hard(d).unwrap();
        assert!(changed_paths(d).unwrap().is_empty());
    }

    #[test]
    fn commit_all_commits_everything_or_nothing() {
        let dir = repo();
        let d = dir.path();
        let base = git(d, &["rev-parse", "HEAD"]);
        assert_eq!(commit_all(d, "nothing").unwrap(), None);
        std::fs::write(d.join("file"), "changed\n").unwrap();
        std::fs::write(d.join("new"), "n\n").unwrap();
        let made = commit_all(d, "Both\n\nAgent-Task: t-a\n").unwrap().unwrap();
        assert_eq!(git(d, &["rev-parse", "HEAD^"]), base);
        assert_eq!(
            git(d, &["log", "-1", "--format=%B", &made]),
            "Both\n\nAgent-Task: t-a"
        );
        assert!(changed_paths(d).unwrap().is_empty());
    }
}
