//! Naming commits: revisions in git's full syntax, branches, ancestry and
//! the commits of a range.

use anyhow::{bail, Result};
use std::path::Path;

use super::{run, try_run};

/// The commit `rev` names, in git's full revision syntax (`main`,
/// `refs/heads/agent/t-x`, `HEAD~2`, an abbreviated id), or `None` where it
/// names none: no such ref, an unborn `HEAD`, an object that is no commit.
pub fn find_commit(dir: &Path, rev: &str) -> Result<Option<String>> {
    let spec = format!("{rev}^{{commit}}");
    let args = [
        "rev-parse",
        "--verify",
        "--quiet",
        "--end-of-options",
        &spec,
    ];
    Ok(try_run(dir, &args)?.filter(|id| !id.is_empty()))
}

/// The commit id `rev` names; an error saying so where it names none.
pub fn resolve_commit(dir: &Path, rev: &str) -> Result<String> {
    match find_commit(dir, rev)? {
        Some(id) => Ok(id),
        None => bail!("\"{rev}\" names no commit"),
    }
}

/// The commit `HEAD` points at in the worktree at `dir`; an error on an
/// unborn branch.
pub fn head(dir: &Path) -> Result<String> {
    run(dir, &["rev-parse", "HEAD"])
}

/// The ref `HEAD` names at `dir` (`refs/heads/main`), or `None` when it is
/// detached.
pub fn head_ref(dir: &Path) -> Result<Option<String>> {
    try_run(dir, &["symbolic-ref", "--quiet", "HEAD"])
}

/// The id of the tree of `commit`.
pub fn tree_of(dir: &Path, commit: &str) -> Result<String> {
    run(dir, &["rev-parse", &format!("{commit}^{{tree}}")])
}

/// The best common ancestor of `a` and `b`, or `None` where they share no
/// history (or either names no commit).
pub fn merge_base(dir: &Path, a: &str, b: &str) -> Result<Option<String>> {
    try_run(dir, &["merge-base", a, b])
}

/// Whether `commit` is an ancestor of (or is) `of`. A name that is no
/// commit is no ancestor.
pub fn is_ancestor(dir: &Path, commit: &str, of: &str) -> Result<bool> {
    Ok(try_run(dir, &["merge-base", "--is-ancestor", commit, of])?.is_some())
}

/// The commits reachable from any of `tips` and from none of `exclude`,
/// oldest first (`git rev-list --reverse <tips> --not <exclude>`): for
/// `a..b`, `commits_in(dir, &[b], &[a])`. An error where a name is no commit.
pub fn commits_in(dir: &Path, tips: &[&str], exclude: &[&str]) -> Result<Vec<String>> {
    let mut args = vec!["rev-list", "--reverse"];
    args.extend_from_slice(tips);
    args.push("--not");
    args.extend_from_slice(exclude);
    Ok(run(dir, &args)?.lines().map(String::from).collect())
}

/// The commits on `to`'s first-parent line that descend from `from`
/// (`--first-parent --ancestry-path from..to`), oldest first, each with
/// its parents (first parent first).
pub fn first_parent_descendants(
    dir: &Path,
    from: &str,
    to: &str,
) -> Result<Vec<(String, Vec<String>)>> {
    let range = format!("{from}..{to}");
    let args = [
        "rev-list",
        "--first-parent",
        "--ancestry-path",
        "--reverse",
        "--parents",
        &range,
    ];
    Ok(run(dir, &args)?
        .lines()
        .filter_map(|line| {
            let mut ids = line.split(' ').map(String::from);
            Some((ids.next()?, ids.collect()))
        })
        .collect())
}

/// The commits of `head` missing from `upstream` that have no
/// patch-equivalent commit there either (`git cherry`: rebases and
/// cherry-picks count as present), or `None` where git cannot tell.
pub fn cherry(dir: &Path, upstream: &str, head: &str) -> Result<Option<Vec<String>>> {
    Ok(try_run(dir, &["cherry", upstream, head])?.map(|out| {
        out.lines()
            .filter_map(|line| line.strip_prefix("+ "))
            .map(String::from)
            .collect()
    }))
}

/// Every branch whose name starts with `prefix` (`agent/`, nested names
/// too), as (branch name, tip), in name order.
pub fn branches(dir: &Path, prefix: &str) -> Result<Vec<(String, String)>> {
    let pattern = format!("refs/heads/{prefix}");
    let out = run(
        dir,
        &[
            "for-each-ref",
            "--format=%(refname:lstrip=2) %(objectname)",
            &pattern,
        ],
    )?;
    Ok(out
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(name, tip)| (name.to_string(), tip.to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{commit, git, repo};
    use super::*;

    #[test]
    fn find_commit_names_commits_and_nothing_else() {
        let dir = repo();
        let d = dir.path();
        let base = git(d, &["rev-parse", "HEAD"]);
        assert_eq!(find_commit(d, "main").unwrap(), Some(base.clone()));
        assert_eq!(
            find_commit(d, "refs/heads/main").unwrap(),
            Some(base.clone())
        );
        assert_eq!(find_commit(d, &base[..8]).unwrap(), Some(base.clone()));
        assert_eq!(find_commit(d, "refs/heads/nope").unwrap(), None);
        let tree = tree_of(d, "main").unwrap();
        assert_eq!(find_commit(d, &tree).unwrap(), None, "a tree is no commit");
        assert_eq!(find_commit(d, "--all").unwrap(), None, "never an option");
        let err = resolve_commit(d, "nope").unwrap_err().to_string();
        assert_eq!(err, "\"nope\" names no commit");
    }

    #[test]
    fn head_and_head_ref_follow_checkout() {
        let dir = repo();
        let d = dir.path();
        let base = head(d).unwrap();
        assert_eq!(head_ref(d).unwrap().as_deref(), Some("refs/heads/main"));
        git(d, &["checkout", "-q", "--detach"]);
        assert_eq!(head_ref(d).unwrap(), None);
        assert_eq!(head(d).unwrap(), base);
    }

    #[test]
    fn head_of_an_unborn_branch_is_an_error_and_no_commit() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q"]);
        assert!(head(dir.path()).is_err());
        assert_eq!(find_commit(dir.path(), "HEAD").unwrap(), None);
    }

    #[test]
    fn ancestry_and_merge_base() {
        let dir = repo();
        let d = dir.path();
        let base = head(d).unwrap();
        git(d, &["checkout", "-q", "-b", "side"]);
        let side = commit(d, "side", "s\n", "side");
        git(d, &["checkout", "-q", "main"]);
        let main = commit(d, "file", "main\n", "main");
        assert!(is_ancestor(d, &base, &main).unwrap());
        assert!(
            is_ancestor(d, &main, &main).unwrap(),
            "a commit is its own ancestor"
        );
        assert!(!is_ancestor(d, &side, &main).unwrap());
        assert!(!is_ancestor(d, "nope", &main).unwrap());
        assert_eq!(merge_base(d, &side, &main).unwrap(), Some(base.clone()));
        assert_eq!(merge_base(d, "nope", &main).unwrap(), None);
        git(d, &["checkout", "-q", "--orphan", "alone"]);
        let alone = commit(d, "other", "o\n", "unrelated");
        assert_eq!(merge_base(d, &alone, &main).unwrap(), None);
    }

    #[test]
    fn commits_in_is_oldest_first_and_excludes() {
        let dir = repo();
        let d = dir.path();
        let base = head(d).unwrap();
        let a = commit(d, "a", "a\n", "a");
        let b = commit(d, "b", "b\n", "b");
        assert_eq!(
            commits_in(d, &[&b], &[&base]).unwrap(),
            vec![a.clone(), b.clone()]
        );
        assert_eq!(commits_in(d, &[&b], &[&a]).unwrap(), vec![b.clone()]);
        assert!(commits_in(d, &[&a], &[&b]).unwrap().is_empty());
        assert!(commits_in(d, &["nope"], &[]).is_err());
    }

    #[test]
    fn first_parent_descendants_finds_the_merge_that_brought_a_commit() {
        let dir = repo();
        let d = dir.path();
        git(d, &["checkout", "-q", "-b", "side"]);
        let side = commit(d, "side", "s\n", "side");
        git(d, &["checkout", "-q", "main"]);
        let main = commit(d, "file", "main\n", "main");
        git(
            d,
            &[
                "-c",
                "core.hooksPath=/dev/null",
                "merge",
                "-q",
                "--no-ff",
                "-m",
                "m",
                "side",
            ],
        );
        let merge = head(d).unwrap();
        let after = commit(d, "later", "l\n", "later");
        let line = first_parent_descendants(d, &side, &after).unwrap();
        assert_eq!(
            line,
            vec![
                (merge.clone(), vec![main, side.clone()]),
                (after.clone(), vec![merge]),
            ]
        );
        assert!(first_parent_descendants(d, &after, &after)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn cherry_counts_picked_commits_as_present() {
        let dir = repo();
        let d = dir.path();
        git(d, &["checkout", "-q", "-b", "side"]);
        let picked = commit(d, "a", "a\n", "picked");
        let missing = commit(d, "b", "b\n", "missing");
        git(d, &["checkout", "-q", "main"]);
        git(
            d,
            &["-c", "core.hooksPath=/dev/null", "cherry-pick", &picked],
        );
        assert_eq!(cherry(d, "main", "side").unwrap(), Some(vec![missing]));
        assert_eq!(cherry(d, "main", "nope").unwrap(), None);
    }

    #[test]
    fn branches_lists_nested_names_under_the_prefix_only() {
        let dir = repo();
        let d = dir.path();
        let base = head(d).unwrap();
        for name in ["agent/t-b", "agent/t-a", "agent/x/y", "agentish", "other"] {
            git(d, &["branch", name]);
        }
        let names: Vec<(String, String)> = ["agent/t-a", "agent/t-b", "agent/x/y"]
            .iter()
            .map(|n| (n.to_string(), base.clone()))
            .collect();
        assert_eq!(branches(d, "agent/").unwrap(), names);
        assert!(branches(d, "none/").unwrap().is_empty());
    }
}
