//! post-receive, in a bare hub (`git agent hooks install --server`).
//!
//! A pushed `agent/<id>` branch queues the review of its new tip; a push to
//! the target records the merges it brought; a pushed task or plan ref
//! (`git agent sync`, or a push that takes the agent refs along) may bring
//! work too. With git config
//! `agent.autorun true`, the hub then starts `git agent run --once` in the
//! background, so that a push gets reviewed and integrated by the hub
//! itself: a detached worker (`git agent hook autorun`) takes the lock
//! `<git-common-dir>/agent/autorun.lock`, so two runs never go at once, and
//! appends the run's output to `<git-common-dir>/agent/logs/autorun.log`.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{merges, task_of_branch, HookContext};
use crate::agent::config;
use crate::git::LOCAL_ENV_VARS;
use crate::store::{queue, Store};

/// Run the post-receive hook on git's `<old> <new> <ref>` lines.
pub fn run(ctx: &HookContext, stdin: &str) -> Result<()> {
    let store = &ctx.store;
    let target = config::team(store)?.target;
    let mut moved = false;
    let mut target_moved = false;
    for line in stdin.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, new, name] = fields[..] else {
            continue;
        };
        if new.bytes().all(|b| b == b'0') {
            continue;
        }
        let Some(branch) = name.strip_prefix("refs/heads/") else {
            // A task or plan that moved (submitted, approved by a person
            // on a clone, a new plan) may have work for the hub's run.
            moved |= name.starts_with(crate::store::TASKS_PREFIX)
                || name.starts_with(crate::store::PLANS_PREFIX);
            continue;
        };
        if let Some(task) = task_of_branch(branch) {
            let payload = serde_json::json!({"task": task, "branch": branch, "commit": new});
            queue::enqueue(&store.agent_dir(), "review", new, &payload)?;
            moved = true;
        } else if branch == target {
            target_moved = true;
        }
    }
    if target_moved {
        merges::record(ctx, &target)?;
    }
    if (moved || target_moved) && autorun(store)? {
        start_worker(store)?;
    }
    Ok(())
}

/// Git config `agent.autorun`; a value that is not a boolean is an error.
fn autorun(store: &Store) -> Result<bool> {
    match store.repo().config_snapshot().try_boolean("agent.autorun") {
        Ok(value) => Ok(value.unwrap_or(false)),
        Err(e) => bail!("git config agent.autorun: {e} (set it to true or false)"),
    }
}

fn pending_flag(store: &Store) -> PathBuf {
    store.agent_dir().join("autorun.pending")
}

/// The log the background runs append to.
pub fn log_path(store: &Store) -> PathBuf {
    store.agent_dir().join("logs").join("autorun.log")
}

/// Ask for a run and start a detached worker to do it. The pending flag is
/// set first, so a worker that is running already runs once more rather
/// than miss this push.
fn start_worker(store: &Store) -> Result<()> {
    std::fs::create_dir_all(store.agent_dir())?;
    std::fs::write(pending_flag(store), b"")?;
    let exe = std::env::current_exe().context("finding the git-agent binary")?;
    let mut worker = Command::new(exe);
    worker
        .args(["hook", "autorun"])
        .current_dir(store.work_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: the push's end does not stop it.
        .process_group(0);
    for var in LOCAL_ENV_VARS {
        worker.env_remove(var);
    }
    worker.spawn().context("starting the background run")?;
    Ok(())
}

/// The background worker (`git agent hook autorun`): while a run is asked
/// for, run `git agent run --once` with its output appended to the log.
/// Returns at once if another worker holds the lock: that one will see the
/// request.
pub fn worker(store: &Store) -> Result<()> {
    let lock_path = store.agent_dir().join("autorun.lock");
    loop {
        let lock =
            File::create(&lock_path).with_context(|| format!("opening {}", lock_path.display()))?;
        if !try_lock(&lock)? {
            return Ok(());
        }
        while take(&pending_flag(store)) {
            run_once(store)?;
        }
        drop(lock);
        // A request that came while the lock was being let go is not lost.
        if !pending_flag(store).exists() {
            return Ok(());
        }
    }
}

/// Remove the flag at `path`; whether it was there.
fn take(path: &Path) -> bool {
    std::fs::remove_file(path).is_ok()
}

fn run_once(store: &Store) -> Result<()> {
    let path = log_path(store);
    std::fs::create_dir_all(path.parent().context("the log has a directory")?)?;
    let mut log = File::options()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(
        log,
        "== {} git agent run --once (worker pid {})",
        crate::store::now(),
        std::process::id()
    )?;
    let exe = std::env::current_exe().context("finding the git-agent binary")?;
    let status = Command::new(exe)
        .args(["run", "--once"])
        .current_dir(store.work_dir())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .status()
        .context("running git agent run --once")?;
    writeln!(log, "== {} exited: {status}", crate::store::now())?;
    Ok(())
}

/// Take an exclusive lock on `file` without waiting; `false` if another
/// process holds it. The lock goes with the process, however it ends.
fn try_lock(file: &File) -> Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e).context("locking the autorun lock"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_autorun_lock_is_held_by_one_at_a_time() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("autorun.lock");
        let first = File::create(&path).unwrap();
        let second = File::create(&path).unwrap();
        assert!(try_lock(&first).unwrap());
        assert!(!try_lock(&second).unwrap());
        drop(first);
        assert!(try_lock(&second).unwrap());
    }
}
