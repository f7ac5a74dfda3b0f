//! The only place that runs the git CLI, for what gix does not do simply
//! (config writes, revision parsing with git's full syntax, worktrees, merges,
//! push and fetch).

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
