//! A new worktree made ready to work in: the untracked files `worktree.copy`
//! and `.worktreeinclude` name copied from the main working tree, the
//! set-up command run once (a marker in the worktree's git dir, not in its
//! tree, says it ran), and the slot's `GIT_AGENT_SLOT` and `GIT_AGENT_PORT`.

use anyhow::{Context as _, Result};
use std::path::Path;
use std::sync::atomic::AtomicBool;

use crate::agent::config::{self, Config, Launch};
use crate::agent::process::{self, AgentRun};
use crate::git;

/// The file of the main working tree that lists more files to copy, one
/// path or glob a line, `#` comments (the name Claude Code reads).
pub const INCLUDE_FILE: &str = ".worktreeinclude";

/// The marker, in the worktree's own git dir, of a set-up that succeeded.
const SETUP_DONE: &str = "agent-setup-done";

/// What to copy: each entry of `worktree.copy`, then each of
/// `.worktreeinclude`, with where it was written (file and line) for a refusal.
fn copy_list(root: &Path, config: &Config) -> Result<Vec<(String, String)>> {
    let mut list: Vec<(String, String)> = config
        .worktree
        .copy
        .iter()
        .map(|p| {
            let at = config.fault("copy", String::new());
            (p.clone(), format!("{}:{}: worktree.copy", at.file, at.line))
        })
        .collect();
    let include = root.join(INCLUDE_FILE);
    match std::fs::read_to_string(&include) {
        Ok(text) => {
            for (i, line) in text.lines().enumerate() {
                let entry = line.trim();
                if entry.is_empty() || entry.starts_with('#') {
                    continue;
                }
                let entry = entry.trim_start_matches('/').trim_end_matches('/');
                list.push((
                    entry.to_string(),
                    format!("{}:{}: {INCLUDE_FILE}", include.display(), i + 1),
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", include.display())),
    }
    Ok(list)
}

/// The untracked files of the main working tree `root` to copy into each
/// new worktree, checked before any worktree is made. A plain path must
/// exist, be untracked and be ignored (else the task's work would commit
/// it); a glob (`*`, `?`, `[`) copies the ignored files it matches, perhaps none.
/// A path that leaves the tree, is missing, tracked or not ignored is
/// refused by name, before anything is copied.
pub fn to_copy(root: &Path, config: &Config) -> Result<Vec<String>> {
    let mut files = Vec::new();
    for (entry, place) in copy_list(root, config)? {
        let refuse = |why: &str| -> anyhow::Error {
            crate::error::Config(format!("{place}: \"{entry}\" {why}")).into()
        };
        config::relative_path(&entry).map_err(&refuse)?;
        if entry.contains(['*', '?', '[']) {
            files.extend(git::ignored_files(root, &[&format!(":(glob){entry}")])?);
            continue;
        }
        if std::fs::symlink_metadata(root.join(&entry)).is_err() {
            return Err(refuse("is missing from the main working tree"));
        }
        if git::is_tracked(root, &entry)? {
            return Err(refuse(
                "is tracked (every worktree has it already): copy lists untracked files",
            ));
        }
        if !git::is_ignored(root, &entry)? {
            return Err(refuse(
                "is not ignored (the task's work would commit it): add it to .gitignore",
            ));
        }
        files.push(entry);
    }
    Ok(files)
}

/// Copy `files` (from [`to_copy`]) of the main working tree `root` into `dest`.
pub fn copy_files(root: &Path, files: &[String], dest: &Path) -> Result<()> {
    for file in files {
        copy_path(&root.join(file), &dest.join(file))?;
    }
    Ok(())
}

/// Copy a file, a symlink (as a link) or a directory (all of it).
fn copy_path(from: &Path, to: &Path) -> Result<()> {
    let meta =
        std::fs::symlink_metadata(from).with_context(|| format!("reading {}", from.display()))?;
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(from)?;
        let _ = std::fs::remove_file(to);
        std::os::unix::fs::symlink(target, to)?;
    } else if meta.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_path(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else {
        std::fs::copy(from, to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// A slot's resources, for the environment of set-up, agents and the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// 0 … parallel-1.
    pub index: usize,
    /// The first port of the slot's range free on 127.0.0.1 when handed out.
    pub port: u16,
}

impl Slot {
    /// Slot `index` with the first port of its range that binds.
    pub fn new(config: &Config, index: usize) -> Result<Slot> {
        let ports = config.worktree.ports;
        let first = u32::from(ports.base) + u32::from(ports.per_slot) * index as u32;
        let range = first..first + u32::from(ports.per_slot);
        let port = range
            .clone()
            .filter_map(|p| u16::try_from(p).ok())
            .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
            .with_context(|| {
                format!(
                    "no free port for slot {index} in {}..{} (worktree.ports)",
                    range.start, range.end
                )
            })?;
        Ok(Slot { index, port })
    }

    /// `SLOT` and `PORT`, for [`AgentRun::env`] (which adds `GIT_AGENT_`).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("SLOT".into(), self.index.to_string()),
            ("PORT".into(), self.port.to_string()),
        ]
    }
}

/// A set-up that failed: why, and the end of its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupFailed {
    pub reason: String,
    pub tail: String,
    /// Stopped by Ctrl-C, not failed: no attempt is used up.
    pub interrupted: bool,
}

/// Run `worktree.setup` in `dir` unless it ran there already: logged at
/// `files` like an agent, with the agents' environment and `env`. `Ok(None)`:
/// ready (or nothing to run).
pub fn set_up(
    config: &Config,
    dir: &Path,
    files: std::path::PathBuf,
    env: Vec<(String, String)>,
    stop: &AtomicBool,
) -> Result<Option<SetupFailed>> {
    let timeout = config.worktree.setup_timeout();
    let outcome = match run_setup(&config.worktree.setup, timeout, dir, files, env, stop) {
        Ok(Some(outcome)) => outcome,
        Ok(None) => return Ok(None),
        Err(e) => {
            return Ok(Some(SetupFailed {
                reason: format!("set-up failed: {e:#}"),
                tail: String::new(),
                interrupted: false,
            }))
        }
    };
    Ok(outcome.failure(timeout).map(|why| SetupFailed {
        reason: format!(
            "set-up failed: {}",
            why.replace("the agent", "the set-up command")
        ),
        tail: process::tail(&outcome.tail),
        interrupted: outcome.ending == process::Ending::Interrupted,
    }))
}

/// Run the set-up command `setup` in `dir` unless it is empty or ran there
/// already (then `Ok(None)`); a run that succeeds leaves the marker.
pub fn run_setup(
    setup: &[String],
    timeout: std::time::Duration,
    dir: &Path,
    files: std::path::PathBuf,
    env: Vec<(String, String)>,
    stop: &AtomicBool,
) -> Result<Option<process::Outcome>> {
    if setup.is_empty() {
        return Ok(None);
    }
    let marker = git::git_path(dir, SETUP_DONE)?;
    if marker.exists() {
        return Ok(None);
    }
    let run = AgentRun {
        role: "setup".into(),
        launch: Launch {
            argv: setup.to_vec(),
            env: Vec::new(),
            preset: None,
        },
        cwd: dir.to_path_buf(),
        prompt: String::new(),
        timeout,
        files,
        env,
        task_json: None,
    };
    let outcome = run.run(stop)?;
    if outcome.succeeded() {
        std::fs::write(&marker, crate::store::now())
            .with_context(|| format!("writing {}", marker.display()))?;
    }
    Ok(Some(outcome))
}

/// Run `worktree.teardown` in task `id`'s worktree `dir` before it is
/// removed, logged as `<task>/teardown`; `Some` says how it failed (the
/// worktree goes all the same: a broken teardown must not keep every one).
pub fn tear_down(ctx: &super::Context, id: &str, dir: &Path) -> Result<Option<String>> {
    let teardown = &ctx.config.worktree.teardown;
    if teardown.is_empty() {
        return Ok(None);
    }
    let files = ctx.store.agent_dir().join("logs").join(id).join("teardown");
    let timeout = ctx.config.worktree.setup_timeout();
    let run = AgentRun {
        role: "teardown".into(),
        launch: Launch {
            argv: teardown.clone(),
            env: Vec::new(),
            preset: None,
        },
        cwd: dir.to_path_buf(),
        prompt: String::new(),
        timeout,
        files,
        env: vec![("TASK".into(), id.to_string())],
        task_json: None,
    };
    let outcome = run.run(ctx.stop)?;
    Ok(outcome.failure(timeout).map(|why| {
        format!(
            "teardown failed: {} (see {})",
            why.replace("the agent", "the teardown command"),
            outcome.log.display()
        )
    }))
}
