//! Merges and rebases: in a worktree (leaving conflicts in place to
//! resolve, or aborting them) or in memory (`merge-tree`), and how to tell
//! what is still in conflict. Hooks are off, as in [`super::worktree`].

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Stdio;

use super::{command, quiet, quiet_succeeds, run, run_status, try_run};

/// What merging two commits in memory gives.
#[derive(Debug, PartialEq, Eq)]
pub enum MergeTree {
    /// They merge cleanly into this tree.
    Clean(String),
    /// They conflict in these paths (each once, in git's order).
    Conflicts(Vec<String>),
}

/// Merge `a` and `b` without touching any worktree or index (`git
/// merge-tree --write-tree`, git 2.38+); the merged tree is written to the
/// object store but no ref moves. An error where git cannot merge them at
/// all (a name that is no commit, a git too old): git 2.47 exits 1 for a
/// name it cannot merge as for a conflict, so a conflict is told apart by
/// the tree it prints first.
pub fn merge_tree(dir: &Path, a: &str, b: &str) -> Result<MergeTree> {
    let args = [
        "merge-tree",
        "--write-tree",
        "--name-only",
        "--no-messages",
        a,
        b,
    ];
    let output = command(dir, &args)
        .stdin(Stdio::null())
        .output()
        .context("running git merge-tree")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines();
    let tree = lines
        .next()
        .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_hexdigit()));
    match (output.status.code(), tree) {
        (Some(0), Some(tree)) => Ok(MergeTree::Clean(tree.to_string())),
        // The tree (with conflict markers) came first, then the paths.
        (Some(1), Some(_)) => Ok(MergeTree::Conflicts(
            lines
                .take_while(|l| !l.is_empty())
                .map(String::from)
                .collect(),
        )),
        _ => bail!(
            "git merge-tree {a} {b} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    }
}

/// Make a commit of `tree` with `parents` (first parent first) and
/// `message`, without touching any worktree, index or ref (`git
/// commit-tree`): with [`merge_tree`], a merge built wholly in the object
/// store. Hooks do not run (commit-tree has none). Where no identity is
/// configured, the commit is signed `git-agent <git-agent@localhost>`. An
/// error where `tree` is no tree or a parent no commit.
pub fn commit_tree(dir: &Path, tree: &str, parents: &[&str], message: &str) -> Result<String> {
    let mut args = vec!["commit-tree", tree];
    for parent in parents {
        args.extend(["-p", parent]);
    }
    args.extend(["-F", "-"]);
    let mut cmd = command(dir, &args);
    if try_run(dir, &["var", "GIT_COMMITTER_IDENT"])?.is_none() {
        super::worktree::sign_as_git_agent(&mut cmd);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running git commit-tree")?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("git commit-tree's stdin")?;
        stdin.write_all(message.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "git commit-tree {tree} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Start merging `commit` into `HEAD` at `dir` as a merge commit (even where
/// a fast-forward would do), and stop before committing: whether it merged
/// cleanly. A conflict is left in progress (`MERGE_HEAD`, markers in the
/// files) for [`merge_abort`] or a resolution.
pub fn merge_no_commit(dir: &Path, commit: &str) -> Result<bool> {
    quiet_succeeds(dir, &["merge", "--no-ff", "--no-commit", commit])
}

/// Stage `commit`'s changes since the merge base onto `HEAD` at `dir`, as
/// one change with no merge in progress (`git merge --squash`): whether it
/// applied cleanly.
pub fn merge_squash(dir: &Path, commit: &str) -> Result<bool> {
    quiet_succeeds(dir, &["merge", "--squash", commit])
}

/// Fast-forward `HEAD`'s branch at `dir` to `commit`, updating its files; an
/// error with git's reason where that is no fast-forward or local changes
/// are in the way (then nothing moved).
pub fn merge_ff_only(dir: &Path, commit: &str) -> Result<()> {
    quiet(dir, &["merge", "--quiet", "--ff-only", commit]).map(drop)
}

/// Abort the merge in progress at `dir`, back to the state before it; an
/// error where none is in progress.
pub fn merge_abort(dir: &Path) -> Result<()> {
    quiet(dir, &["merge", "--abort"]).map(drop)
}

/// Replay `HEAD`'s commits at `dir` that `onto` lacks onto `onto`: whether
/// all applied. A conflict stops the rebase there, in progress, for
/// [`rebase_continue`] once resolved and staged, or [`rebase_abort`].
pub fn rebase(dir: &Path, onto: &str) -> Result<bool> {
    quiet_succeeds(dir, &["rebase", "--quiet", onto])
}

/// Go on with the rebase in progress at `dir` after a resolved conflict,
/// keeping each commit's message: whether the rest applied.
pub fn rebase_continue(dir: &Path) -> Result<bool> {
    quiet_succeeds(dir, &["-c", "core.editor=true", "rebase", "--continue"])
}

/// Abort the rebase in progress at `dir`, back to where it started; an
/// error where none is in progress.
pub fn rebase_abort(dir: &Path) -> Result<()> {
    quiet(dir, &["rebase", "--abort"]).map(drop)
}

/// Whether a merge is in progress in the worktree at `dir` (`MERGE_HEAD`).
pub fn merging(dir: &Path) -> bool {
    try_run(dir, &["rev-parse", "--quiet", "--verify", "MERGE_HEAD"]).is_ok_and(|o| o.is_some())
}

/// Paths the index holds as unmerged (a conflict in progress) at `dir`.
pub fn unmerged(dir: &Path) -> Result<Vec<String>> {
    Ok(run(dir, &["diff", "--name-only", "--diff-filter=U"])?
        .lines()
        .map(String::from)
        .collect())
}

/// Paths with unresolved conflicts in the worktree at `dir`: unmerged in
/// the index, or (tracked and) still holding conflict markers.
pub fn unresolved(dir: &Path) -> Result<Vec<String>> {
    let mut paths = unmerged(dir)?;
    let markers =
        try_run(dir, &["grep", "-l", "-E", "^(<<<<<<<|>>>>>>>)( |$)"])?.unwrap_or_default();
    for path in markers.lines().map(String::from) {
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    Ok(paths)
}

/// Stage each unmerged path at `dir` whose file no longer holds conflict
/// markers (or is gone): an agent that can only edit files resolves a
/// conflict by writing the file, and this is its `git add`.
pub fn stage_resolved(dir: &Path) -> Result<()> {
    for path in unmerged(dir)? {
        let resolved = match std::fs::read_to_string(dir.join(&path)) {
            Ok(text) => !text.lines().any(is_conflict_marker),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        if resolved {
            quiet(dir, &["add", "-A", "--", &path])?;
        }
    }
    Ok(())
}

fn is_conflict_marker(line: &str) -> bool {
    ["<<<<<<<", ">>>>>>>"].iter().any(|m| {
        line.strip_prefix(m)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
    })
}

/// Paths where `from..to` adds conflict markers, as `git diff --check`
/// finds them (other whitespace complaints are not counted).
pub fn conflict_markers(dir: &Path, from: &str, to: &str) -> Result<Vec<String>> {
    let (_, report) = run_status(dir, &["diff", "--check", from, to])?;
    let mut paths: Vec<String> = Vec::new();
    for line in report.lines() {
        if let Some((path, rest)) = line.split_once(':') {
            if rest.ends_with("leftover conflict marker") && !paths.iter().any(|p| p == path) {
                paths.push(path.to_string());
            }
        }
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::super::rev::head;
    use super::super::testing::{commit, git, repo};
    use super::*;

    /// `main` and `side` both change `file` from the base (conflicting), and
    /// `side` also adds `side`. Returns (dir, main's tip, side's tip).
    fn diverged(side_text: &str) -> (tempfile::TempDir, String, String) {
        let dir = repo();
        let d = dir.path();
        git(d, &["checkout", "-q", "-b", "side"]);
        commit(d, "side", "s\n", "add side");
        let side = commit(d, "file", side_text, "side's file");
        git(d, &["checkout", "-q", "main"]);
        let main = commit(d, "file", "main\n", "main's file");
        (dir, main, side)
    }

    #[test]
    fn merge_tree_names_the_tree_or_the_conflicting_paths() {
        let (dir, main, side) = diverged("side\n");
        let d = dir.path();
        let conflicts = merge_tree(d, &main, &side).unwrap();
        assert_eq!(conflicts, MergeTree::Conflicts(vec!["file".into()]));
        let base = git(d, &["rev-parse", "main~1"]);
        let side_only = git(d, &["rev-parse", "side~1"]);
        let MergeTree::Clean(tree) = merge_tree(d, &main, &side_only).unwrap() else {
            panic!("main and side~1 touch different files");
        };
        let names = git(d, &["ls-tree", "--name-only", &tree]);
        assert_eq!(names, "file\nside");
        assert_eq!(
            merge_tree(d, &base, &main).unwrap(),
            MergeTree::Clean(git(d, &["rev-parse", "main^{tree}"]))
        );
        assert_eq!(head(d).unwrap(), main, "no ref moved");
        assert!(
            git(d, &["status", "--porcelain"]).is_empty(),
            "no file touched"
        );
    }

    #[test]
    fn a_merge_built_in_memory_moves_no_ref_and_touches_no_file() {
        let (dir, main, _) = diverged("side\n");
        let d = dir.path();
        let side = git(d, &["rev-parse", "side~1"]);
        let MergeTree::Clean(tree) = merge_tree(d, &main, &side).unwrap() else {
            panic!("main and side~1 touch different files");
        };
        let message = "Merge side\n\nAgent-Task: t-a\n";
        let merge = commit_tree(d, &tree, &[&main, &side], message).unwrap();
        assert_eq!(git(d, &["rev-parse", &format!("{merge}^{{tree}}")]), tree);
        assert_eq!(git(d, &["rev-parse", &format!("{merge}^1")]), main);
        assert_eq!(git(d, &["rev-parse", &format!("{merge}^2")]), side);
        assert_eq!(
            git(d, &["log", "-1", "--format=%B", &merge]),
            message.trim()
        );
        let squash = commit_tree(d, &tree, &[&main], "Squash").unwrap();
        let parents = git(d, &["rev-list", "--parents", "-n", "1", &squash]);
        assert_eq!(parents, format!("{squash} {main}"), "one parent");
        assert_eq!(head(d).unwrap(), main, "no ref moved");
        assert!(
            git(d, &["status", "--porcelain"]).is_empty(),
            "no file touched"
        );
        assert!(commit_tree(d, &main, &[], "a commit is no tree").is_err());
        assert!(commit_tree(d, &tree, &["nope"], "no parent").is_err());
    }

    #[test]
    fn merge_tree_of_no_commit_is_an_error() {
        let dir = repo();
        let err = merge_tree(dir.path(), "main", "nope").unwrap_err();
        assert!(err.to_string().contains("nope"), "{err:#}");
    }

    #[test]
    fn a_conflicted_merge_is_left_in_progress_until_aborted() {
        let (dir, main, side) = diverged("side\n");
        let d = dir.path();
        assert!(!merge_no_commit(d, &side).unwrap());
        assert!(merging(d));
        assert_eq!(unmerged(d).unwrap(), vec!["file"]);
        assert_eq!(unresolved(d).unwrap(), vec!["file"]);
        merge_abort(d).unwrap();
        assert!(!merging(d));
        assert!(merge_abort(d).is_err(), "no merge in progress");
        assert_eq!(head(d).unwrap(), main);
    }

    #[test]
    fn a_clean_merge_stops_before_its_commit() {
        let (dir, main, _) = diverged("side\n");
        let d = dir.path();
        assert!(merge_no_commit(d, "side~1").unwrap());
        assert!(merging(d), "a merge commit is still to make");
        assert_eq!(head(d).unwrap(), main);
        assert!(d.join("side").exists());
    }

    #[test]
    fn a_squash_stages_the_change_with_no_merge_in_progress() {
        let (dir, main, _) = diverged("side\n");
        let d = dir.path();
        assert!(merge_squash(d, "side~1").unwrap());
        assert!(!merging(d));
        assert_eq!(head(d).unwrap(), main);
        assert_eq!(git(d, &["diff", "--cached", "--name-only"]), "side");
        git(d, &["reset", "-q", "--hard"]);
        assert!(!merge_squash(d, "side").unwrap(), "file conflicts");
    }

    #[test]
    fn resolving_by_editing_stages_only_files_without_markers() {
        let (dir, _, side) = diverged("side\n");
        let d = dir.path();
        assert!(!merge_no_commit(d, &side).unwrap());
        stage_resolved(d).unwrap();
        assert_eq!(unmerged(d).unwrap(), vec!["file"], "markers still there");
        std::fs::write(d.join("file"), "both\n").unwrap();
        stage_resolved(d).unwrap();
        assert!(unmerged(d).unwrap().is_empty());
        assert!(unresolved(d).unwrap().is_empty());
    }

    #[test]
    fn conflict_markers_finds_committed_markers_only() {
        let dir = repo();
        let d = dir.path();
        let base = head(d).unwrap();
        commit(d, "clean", "trailing space \n", "whitespace only");
        let marked = commit(
            d,
            "bad",
            "<<<<<<< ours\na\n=======\nb\n>>>>>>> theirs\n",
            "markers",
        );
        assert_eq!(conflict_markers(d, &base, &marked).unwrap(), vec!["bad"]);
        assert!(conflict_markers(d, &base, "HEAD~1").unwrap().is_empty());
    }

    #[test]
    fn fast_forward_only_refuses_diverged_history() {
        let (dir, main, side) = diverged("side\n");
        let d = dir.path();
        assert!(merge_ff_only(d, &side).is_err());
        assert_eq!(head(d).unwrap(), main);
        git(d, &["checkout", "-q", "-b", "behind", "main~1"]);
        merge_ff_only(d, &main).unwrap();
        assert_eq!(head(d).unwrap(), main);
    }

    #[test]
    fn a_rebase_stops_at_a_conflict_and_continues_once_resolved() {
        let (dir, main, side) = diverged("side\n");
        let d = dir.path();
        git(d, &["checkout", "-q", "--detach", &side]);
        assert!(!rebase(d, &main).unwrap());
        assert_eq!(unmerged(d).unwrap(), vec!["file"]);
        std::fs::write(d.join("file"), "both\n").unwrap();
        git(d, &["add", "file"]);
        assert!(rebase_continue(d).unwrap());
        assert_eq!(git(d, &["log", "-1", "--format=%s"]), "side's file");
        assert!(is_ancestor_of_head(d, &main));
        git(d, &["checkout", "-q", "--detach", &side]);
        assert!(!rebase(d, &main).unwrap());
        rebase_abort(d).unwrap();
        assert_eq!(head(d).unwrap(), side);
        assert!(rebase_abort(d).is_err(), "no rebase in progress");
    }

    fn is_ancestor_of_head(d: &Path, commit: &str) -> bool {
        super::super::rev::is_ancestor(d, commit, "HEAD").unwrap()
    }
}
