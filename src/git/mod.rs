//! The only place that runs the git CLI, for what gix does not do simply
//! (config writes, revision parsing with git's full syntax, worktrees, merges,
//! push and fetch).

pub mod refs;

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Command, Stdio};

/// Run `git <args>` in `dir` and return its stdout, trimmed. Fails with git's
/// own message when git exits non-zero.
pub fn run(dir: &Path, args: &[&str]) -> Result<String> {
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
pub fn try_run(dir: &Path, args: &[&str]) -> Result<Option<String>> {
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

/// The commit id `rev` names, in git's full revision syntax.
pub fn resolve_commit(dir: &Path, rev: &str) -> Result<String> {
    let spec = format!("{rev}^{{commit}}");
    match try_run(
        dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
    )? {
        Some(id) if !id.is_empty() => Ok(id),
        _ => bail!("\"{rev}\" names no commit"),
    }
}

/// Run git in an agent worktree with hooks off, so that git-agent's own
/// commits never trigger its hooks (or the user's) a second time.
pub fn quiet(dir: &Path, args: &[&str]) -> Result<String> {
    let mut all = vec!["-c", "core.hooksPath=/dev/null"];
    all.extend_from_slice(args);
    run(dir, &all)
}

/// Run git with hooks off and say whether it succeeded, for commands whose
/// failure is an answer (a merge or rebase that conflicts).
pub fn quiet_succeeds(dir: &Path, args: &[&str]) -> Result<bool> {
    let mut all = vec!["-c", "core.hooksPath=/dev/null"];
    all.extend_from_slice(args);
    Ok(try_run(dir, &all)?.is_some())
}

/// Whether `commit` is an ancestor of (or is) `of`.
pub fn is_ancestor(dir: &Path, commit: &str, of: &str) -> Result<bool> {
    Ok(try_run(dir, &["merge-base", "--is-ancestor", commit, of])?.is_some())
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

/// Whether a merge is in progress in the worktree at `dir` (`MERGE_HEAD`).
pub fn merging(dir: &Path) -> bool {
    try_run(dir, &["rev-parse", "--quiet", "--verify", "MERGE_HEAD"]).is_ok_and(|o| o.is_some())
}

/// Whether the worktree at `dir` has changes, staged or not, or untracked files.
pub fn has_changes(dir: &Path) -> Result<bool> {
    Ok(!run(dir, &["status", "--porcelain", "--untracked-files=all"])?.is_empty())
}

/// Commit everything in the worktree at `dir` (hooks off) with `message`;
/// returns the new commit, or `None` if there was nothing to commit. A
/// merge in progress is committed even when its result equals `HEAD`'s tree
/// (a conflict resolved as "ours").
pub fn commit_all(dir: &Path, message: &str) -> Result<Option<String>> {
    if !merging(dir) && !has_changes(dir)? {
        return Ok(None);
    }
    quiet(dir, &["add", "-A"])?;
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
        // No identity configured: sign as git-agent rather than fail.
        for var in ["GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"] {
            cmd.env(var, "git-agent");
        }
        for var in ["GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"] {
            cmd.env(var, "git-agent@localhost");
        }
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
    Ok(Some(run(dir, &["rev-parse", "HEAD"])?))
}

/// Commits in `range` (`a..b`), oldest first.
pub fn commits_in(dir: &Path, range: &str) -> Result<Vec<String>> {
    Ok(run(dir, &["rev-list", "--reverse", range])?
        .lines()
        .map(String::from)
        .collect())
}

/// Run `git <args>` in `dir`: whether it exited 0, and its stdout either way
/// (for commands whose "no" answer still prints, like `merge-tree`).
pub fn run_status(dir: &Path, args: &[&str]) -> Result<(bool, String)> {
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

/// The stable patch id of each patch that `git <producer>` prints (`log -p`,
/// `diff`), as `(patch id, commit)` pairs in the producer's order (the commit
/// is all zeros for a plain diff; an empty patch has no id). The patches
/// stream from one git process into `git patch-id --stable`.
pub fn patch_ids(dir: &Path, producer: &[&str]) -> Result<Vec<(String, String)>> {
    let mut source = command(dir, producer)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running git {}", producer.join(" ")))?;
    let patches = source.stdout.take().context("git's stdout")?;
    let ids = command(dir, &["patch-id", "--stable"])
        .stdin(Stdio::from(patches))
        .output()
        .context("running git patch-id")?;
    let source = source.wait_with_output()?;
    if !source.status.success() || !ids.status.success() {
        bail!(
            "git {} | git patch-id failed: {}{}",
            producer.join(" "),
            String::from_utf8_lossy(&source.stderr).trim(),
            String::from_utf8_lossy(&ids.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&ids.stdout)
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(id, commit)| (id.to_string(), commit.to_string()))
        .collect())
}
