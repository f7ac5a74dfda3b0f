//! The repository itself: making one, where its parts are, what it tracks,
//! packing its refs.

use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::{run, try_run};

/// Make a new repository at `dir` (which may exist) with `branch` as its
/// unborn first branch.
pub fn init(dir: &Path, branch: &str) -> Result<()> {
    let initial = format!("--initial-branch={branch}");
    run(dir, &["init", "--quiet", &initial]).map(drop)
}

/// The object format (`sha1`, `sha256`) of the repository git finds at
/// `dir`, or `None` where git finds none.
pub fn object_format(dir: &Path) -> Result<Option<String>> {
    try_run(dir, &["rev-parse", "--show-object-format"])
}

/// How the repository git finds at `dir` stores its refs: `files` or
/// `reftable` (`git rev-parse --show-ref-format`, git 2.45+; a git older
/// than that knows only `files`).
pub fn ref_format(dir: &Path) -> Result<String> {
    Ok(try_run(dir, &["rev-parse", "--show-ref-format"])?.unwrap_or_else(|| "files".into()))
}

/// The version of the git on `PATH`, as `git version` prints it after
/// `git version ` (`2.47.3`).
pub fn version(dir: &Path) -> Result<String> {
    let line = run(dir, &["version"])?;
    Ok(line
        .strip_prefix("git version ")
        .unwrap_or(&line)
        .to_string())
}

/// The absolute path of the common git dir of the repository git finds at
/// `dir` (shared by all its worktrees), or `None` where git finds none.
pub fn common_dir(dir: &Path) -> Result<Option<PathBuf>> {
    Ok(try_run(
        dir,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )?
    .map(PathBuf::from))
}

/// The absolute path git uses for `name` inside the git dir of the worktree
/// at `dir` (`hooks`, `MERGE_MSG`), as `git rev-parse --git-path` resolves
/// it: `core.hooksPath` and linked worktrees are accounted for.
pub fn git_path(dir: &Path, name: &str) -> Result<PathBuf> {
    Ok(PathBuf::from(run(
        dir,
        &["rev-parse", "--path-format=absolute", "--git-path", name],
    )?))
}

/// The absolute path of `name`, a file git keeps per worktree (`index.lock`,
/// `MERGE_MSG`, a marker of our own), in the git dir of the worktree whose
/// top is `dir`: read from its `.git` (a directory, or a file that says
/// `gitdir: …`), with no git process; where that cannot be read, what
/// [`git_path`] says. Not for `hooks` or anything of the common dir.
pub fn private_path(dir: &Path, name: &str) -> Result<PathBuf> {
    let dot_git = dir.join(".git");
    if dot_git.is_dir() {
        return Ok(std::path::absolute(dot_git.join(name))?);
    }
    let linked = std::fs::read_to_string(&dot_git)
        .ok()
        .and_then(|text| text.strip_prefix("gitdir:").map(|g| g.trim().to_string()))
        .filter(|g| !g.is_empty());
    match linked {
        Some(gitdir) => Ok(std::path::absolute(dir.join(gitdir).join(name))?),
        None => git_path(dir, name),
    }
}

/// Whether `dir` is inside a work tree git can read (not a bare repository,
/// not a broken worktree).
pub fn is_work_tree(dir: &Path) -> bool {
    try_run(dir, &["rev-parse", "--is-inside-work-tree"])
        .is_ok_and(|o| o.as_deref() == Some("true"))
}

/// The paths the index tracks at `dir`, relative to it, in git's order.
pub fn tracked_files(dir: &Path) -> Result<Vec<String>> {
    Ok(run(dir, &["ls-files"])?.lines().map(String::from).collect())
}

/// Whether git ignores `path` at `dir` (`check-ignore`; a tracked path is not).
pub fn is_ignored(dir: &Path, path: &str) -> Result<bool> {
    Ok(try_run(dir, &["check-ignore", "-q", "--", path])?.is_some())
}

/// Whether git tracks `path` (a file, or files under a directory) at `dir`.
pub fn is_tracked(dir: &Path, path: &str) -> Result<bool> {
    Ok(!run(dir, &["ls-files", "--", &format!(":(literal){path}")])?.is_empty())
}

/// Pack the refs matching the `include` patterns and none of the `exclude`
/// ones (`git pack-refs --include .. --exclude ..`). In a reftable
/// repository git compacts the tables instead.
pub fn pack_refs(dir: &Path, include: &[&str], exclude: &[&str]) -> Result<()> {
    run(dir, &pack_refs_args(&[], include, exclude)).map(drop)
}

/// `git pack-refs` with `options` and an `--include`/`--exclude` per pattern.
fn pack_refs_args<'a>(
    options: &[&'a str],
    include: &[&'a str],
    exclude: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec!["pack-refs"];
    args.extend(options);
    for pattern in include {
        args.extend(["--include", pattern]);
    }
    for pattern in exclude {
        args.extend(["--exclude", pattern]);
    }
    args
}

/// Start `git pack-refs --auto` for the refs matching `include` and none of
/// `exclude`, and return without waiting, as git's own auto maintenance
/// detaches: git decides whether packing pays (in a files repository, by
/// the number of loose refs against the size of `packed-refs`; in a
/// reftable one, by its tables' sizes) and takes the same locks as any
/// writer, so it is safe beside them. Its outcome only matters for speed,
/// so a failure to start is ignored.
pub fn pack_refs_in_background(dir: &Path, include: &[&str], exclude: &[&str]) {
    let args = pack_refs_args(&["--auto"], include, exclude);
    let child = super::command(dir, &args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Ok(mut child) = child {
        // Reaped by a thread of ours while we live, by init after.
        std::thread::spawn(move || child.wait());
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{git, repo};
    use super::*;

    #[test]
    fn ref_format_and_version_are_what_git_says() {
        let dir = repo();
        assert_eq!(ref_format(dir.path()).unwrap(), "files");
        let version = version(dir.path()).unwrap();
        assert!(
            version.split('.').next().unwrap().parse::<u32>().unwrap() >= 2,
            "{version}"
        );
    }

    #[test]
    fn init_makes_an_unborn_branch() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), "trunk").unwrap();
        assert_eq!(
            git(dir.path(), &["symbolic-ref", "HEAD"]),
            "refs/heads/trunk"
        );
        assert_eq!(object_format(dir.path()).unwrap().as_deref(), Some("sha1"));
    }

    #[test]
    fn paths_are_absolute_and_follow_hooks_path_and_linked_worktrees() {
        let dir = repo();
        let d = &dir.path().canonicalize().unwrap();
        assert_eq!(common_dir(d).unwrap().unwrap(), d.join(".git"));
        assert_eq!(git_path(d, "hooks").unwrap(), d.join(".git/hooks"));
        git(d, &["config", "core.hooksPath", "/somewhere/hooks"]);
        assert_eq!(git_path(d, "hooks").unwrap(), Path::new("/somewhere/hooks"));
        let linked = d.join("linked");
        git(
            d,
            &[
                "worktree",
                "add",
                "-q",
                "--detach",
                linked.to_str().unwrap(),
            ],
        );
        assert_eq!(common_dir(&linked).unwrap().unwrap(), d.join(".git"));
        assert_eq!(
            git_path(&linked, "MERGE_MSG").unwrap(),
            d.join(".git/worktrees/linked/MERGE_MSG")
        );
        for (top, name) in [(&linked, "agent-slot"), (d, "index.lock")] {
            assert_eq!(
                private_path(top, name).unwrap(),
                git_path(top, name).unwrap(),
                "{name} in {}",
                top.display()
            );
        }
        assert!(is_work_tree(&linked));
        assert!(!is_work_tree(&d.join(".git")));
    }

    #[test]
    fn tracked_files_lists_the_index() {
        let dir = repo();
        std::fs::write(dir.path().join("untracked"), "u").unwrap();
        assert_eq!(tracked_files(dir.path()).unwrap(), vec!["file".to_string()]);
    }

    #[test]
    fn pack_refs_packs_only_what_is_included() {
        let dir = repo();
        let d = dir.path();
        git(d, &["update-ref", "refs/agent/tasks/t-a", "HEAD"]);
        git(d, &["update-ref", "refs/agent/leases/t-a", "HEAD"]);
        pack_refs(d, &["refs/agent/*"], &["refs/agent/leases/*"]).unwrap();
        let packed = std::fs::read_to_string(d.join(".git/packed-refs")).unwrap();
        assert!(packed.contains("refs/agent/tasks/t-a"), "{packed}");
        assert!(!packed.contains("refs/agent/leases/t-a"), "{packed}");
        assert!(d.join(".git/refs/agent/leases/t-a").exists());
    }
}
