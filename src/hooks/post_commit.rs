//! post-commit: provenance on agent branches; merges concluded by a squash.
//!
//! On `agent/<id>` the new commit gets a provenance note in
//! `refs/notes/agent`, and with `review.on: commit` its review is queued.
//! On the target, a commit that concludes `git merge --squash` (marked by
//! the post-merge hook, since git has already removed `SQUASH_MSG` by then)
//! records the tasks whose work it carries. Anywhere else it does nothing;
//! the shim does not even start git-agent there.

use anyhow::{Context, Result};
use serde::Serialize;

use super::{current_branch, merges, task_of_branch, HookContext};
use crate::agent::config;
use crate::store::{notes, queue};

/// The provenance record of one commit: a line of `refs/notes/agent`.
#[derive(Debug, Serialize)]
pub struct Provenance {
    pub task: String,
    pub role: String,
    pub agent: String,
    pub attempt: Option<u32>,
    pub run: Option<String>,
}

impl Provenance {
    /// The record for a commit on task `task`'s branch, from the
    /// `GIT_AGENT_*` variables an agent run sets (`GIT_AGENT_TASK` wins over
    /// the branch name): role defaults to `implementer`, agent
    /// (`GIT_AGENT_ACTOR`) to `unknown`; attempt and run are null where unset.
    pub fn from_env(task: &str) -> Provenance {
        Provenance {
            task: var("GIT_AGENT_TASK").unwrap_or_else(|| task.to_string()),
            role: var("GIT_AGENT_ROLE").unwrap_or_else(|| "implementer".into()),
            agent: var("GIT_AGENT_ACTOR").unwrap_or_else(|| "unknown".into()),
            attempt: var("GIT_AGENT_ATTEMPT").and_then(|a| a.parse().ok()),
            run: var("GIT_AGENT_RUN"),
        }
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The file (in the worktree's own git dir) by which post-merge tells
/// post-commit that the next commit concludes a squash merge on the target.
pub const SQUASH_MARKER: &str = "git-agent-squash";

/// Run the post-commit hook.
pub fn run(ctx: &HookContext) -> Result<()> {
    let Some(branch) = current_branch(&ctx.store)? else {
        return Ok(());
    };
    match task_of_branch(&branch) {
        Some(task) => on_agent_branch(ctx, task, &branch),
        None => after_squash(ctx, &branch),
    }
}

/// Write the provenance note on HEAD; queue its review if configured.
fn on_agent_branch(ctx: &HookContext, task: &str, branch: &str) -> Result<()> {
    let store = &ctx.store;
    let head = store.head_commit()?.context("HEAD names no commit")?;
    let record = Provenance::from_env(task);
    store.append_note(notes::PROVENANCE, head, &serde_json::to_string(&record)?)?;
    if config::team(store)?.review.on.as_deref() == Some("commit") {
        let payload = serde_json::json!({
            "task": record.task,
            "branch": branch,
            "commit": head.to_string(),
        });
        queue::enqueue(&store.agent_dir(), "review", &head.to_string(), &payload)?;
    }
    Ok(())
}

/// If post-merge marked a squash merge in this worktree, record the merges
/// the concluding commit brings to the target.
fn after_squash(ctx: &HookContext, branch: &str) -> Result<()> {
    let marker = ctx.store.repo().git_dir().join(SQUASH_MARKER);
    if !marker.exists() {
        return Ok(());
    }
    std::fs::remove_file(&marker).with_context(|| format!("removing {}", marker.display()))?;
    let target = config::team(&ctx.store)?.target;
    if branch == target {
        merges::record(ctx, &target)?;
    }
    Ok(())
}
