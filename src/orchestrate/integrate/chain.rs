//! Building one candidate of the chain: an entry's head merged onto the
//! candidate ahead of it (or the target's tip). A merge or squash is made in
//! the object store (`git merge-tree` + `git commit-tree`), touching no
//! worktree; a rebase, and a conflict the integrator agent resolves, happen
//! in the slot's worktree.

use anyhow::{bail, Result};
use std::path::Path;

use super::Spent;
use super::ROLE;
use crate::agent::process::{self, AgentRun};
use crate::git::{self, MergeTree};
use crate::model::task::Task;
use crate::orchestrate::limits::{self, RateLimited};
use crate::orchestrate::{worktree, Context};

/// What to build: `head` of `task` onto `base`, in the slot worktree `dir`;
/// `tip` is the target's, which `base` is or descends from.
pub(super) struct Spec<'a> {
    pub dir: &'a Path,
    pub task: &'a Task,
    pub head: &'a str,
    pub base: &'a str,
    pub tip: &'a str,
}

impl Spec<'_> {
    /// Built on a candidate ahead of it rather than on the target itself.
    fn speculative(&self) -> bool {
        self.base != self.tip
    }
}

pub(super) enum Built {
    /// The candidate commit and its tree; `commit` is `base` itself where
    /// the entry adds nothing (a squash of changes already there).
    Candidate { commit: String, tree: String },
    /// It conflicts only with an entry ahead of it (or needs the integrator
    /// agent, which works on the target itself): try again once the chain
    /// has changed.
    Deferred,
    /// It conflicts with the target in these paths, and no agent resolved it.
    Conflict(Vec<String>),
    /// Stopped (Ctrl-C) while the integrator agent worked on it.
    Interrupted,
}

/// Build the candidate of `spec`, with the configured strategy. What the
/// integrator agent used, if it ran, is added to `spent`.
pub(super) fn build(ctx: &Context, spec: &Spec, spent: &mut Spent) -> Result<Built> {
    match ctx.config.integrate.strategy() {
        "rebase" => rebase(ctx, spec, spent),
        strategy => in_memory(ctx, spec, strategy == "squash", spent),
    }
}

/// A merge commit (parents: base, head) or a squash (parent: base) of the
/// tree `git merge-tree` makes.
fn in_memory(ctx: &Context, spec: &Spec, squash: bool, spent: &mut Spent) -> Result<Built> {
    let tree = match git::merge_tree(&ctx.root, spec.base, spec.head)? {
        MergeTree::Clean(tree) => tree,
        MergeTree::Conflicts(paths) => return conflicted(ctx, spec, paths, spent),
    };
    if squash && tree == git::tree_of(&ctx.root, spec.base)? {
        return Ok(Built::Candidate {
            commit: spec.base.to_string(),
            tree,
        });
    }
    let parents = match squash {
        true => vec![spec.base],
        false => vec![spec.base, spec.head],
    };
    let commit = git::commit_tree(&ctx.root, &tree, &parents, &merge_message(ctx, spec.task))?;
    Ok(Built::Candidate { commit, tree })
}

/// Where `spec` conflicts. On a candidate: with an entry ahead of it (wait
/// for the chain to change) or with the target itself (back now, unless the
/// integrator agent is to resolve it once it is first). On the target: the
/// integrator agent's to resolve, or back.
fn conflicted(ctx: &Context, spec: &Spec, paths: Vec<String>, spent: &mut Spent) -> Result<Built> {
    let integrator = ctx.role(ROLE).is_ok();
    if spec.speculative() {
        return Ok(match git::merge_tree(&ctx.root, spec.tip, spec.head)? {
            MergeTree::Clean(_) => Built::Deferred,
            MergeTree::Conflicts(_) if integrator => Built::Deferred,
            MergeTree::Conflicts(paths) => Built::Conflict(paths),
        });
    }
    if !integrator {
        return Ok(Built::Conflict(paths));
    }
    merge_in_worktree(ctx, spec, spent)
}

/// Merge `head` onto `base` in the slot worktree with the configured
/// strategy (merge or squash), the conflict left to the integrator agent.
fn merge_in_worktree(ctx: &Context, spec: &Spec, spent: &mut Spent) -> Result<Built> {
    let dir = spec.dir;
    git::checkout_detached(dir, spec.base)?;
    git::clean(dir)?;
    let clean = match ctx.config.integrate.strategy() {
        "squash" => git::merge_squash(dir, spec.head)?,
        _ => git::merge_no_commit(dir, spec.head)?,
    };
    if !clean {
        let paths = git::unmerged(dir)?;
        if paths.is_empty() {
            bail!(
                "merging {} onto {} failed without a conflict",
                spec.head,
                spec.base
            );
        }
        if !resolve_with_agent(ctx, spec, &paths, spent)? {
            let _ = git::merge_abort(dir);
            let _ = git::reset_hard(dir);
            return Ok(unresolved(ctx, paths));
        }
    }
    let commit = match git::commit_all(dir, &merge_message(ctx, spec.task))? {
        Some(commit) => commit,
        // A squash of changes the target already has: nothing to add.
        None => git::head(dir)?,
    };
    let tree = git::tree_of(dir, &commit)?;
    Ok(Built::Candidate { commit, tree })
}

/// Replay `head`'s commits onto `base` in the slot worktree. On the target,
/// each commit that conflicts goes to the integrator agent (if there is
/// one) before the rebase continues.
fn rebase(ctx: &Context, spec: &Spec, spent: &mut Spent) -> Result<Built> {
    let dir = spec.dir;
    git::checkout_detached(dir, spec.head)?;
    git::clean(dir)?;
    let mut clean = git::rebase(dir, spec.base)?;
    while !clean {
        let paths = git::unmerged(dir)?;
        let resolved = !spec.speculative()
            && !paths.is_empty()
            && resolve_with_agent(ctx, spec, &paths, spent)?;
        if !resolved {
            let _ = git::rebase_abort(dir);
            if spec.speculative() {
                return conflicted(ctx, spec, paths, spent);
            }
            return Ok(unresolved(ctx, paths));
        }
        clean = git::rebase_continue(dir)?;
    }
    let commit = git::head(dir)?;
    let tree = git::tree_of(dir, &commit)?;
    Ok(Built::Candidate { commit, tree })
}

/// A conflict nobody resolved: back to the implementer, unless Ctrl-C
/// stopped the agent that was resolving it.
fn unresolved(ctx: &Context, paths: Vec<String>) -> Built {
    match ctx.stop.load(std::sync::atomic::Ordering::Relaxed) {
        true => Built::Interrupted,
        false => Built::Conflict(paths),
    }
}

/// Let the integrator agent resolve a conflict in progress in the slot
/// worktree. Whether the conflict is gone: no unmerged paths and no
/// conflict markers left. What the agent used is added to `spent`.
fn resolve_with_agent(
    ctx: &Context,
    spec: &Spec,
    paths: &[String],
    spent: &mut Spent,
) -> Result<bool> {
    let Ok(role) = ctx.role(ROLE).cloned() else {
        return Ok(false);
    };
    let task = spec.task;
    let attempt = task.attempts + 1;
    let prompt = format!(
        "# Resolve a merge conflict\n\nTask {}: {}\n\n{}\n\nMerging `agent/{}` onto `{}` conflicts in:\n{}\n\
         Resolve every conflict in this worktree by editing the files so that no conflict markers remain \
         (keep the intent of both sides), and exit 0. Do not commit: git-agent stages and commits the merge. \
         Exit non-zero if you cannot.\n",
        task.id,
        task.title,
        task.spec.trim(),
        task.id,
        ctx.config.target,
        paths.iter().map(|p| format!("- {p}\n")).collect::<String>()
    );
    let task_spent = limits::task_spent(&ctx.store.events(&task.id)?);
    let run = AgentRun {
        role: ROLE.into(),
        launch: ctx.ledger.launch(&role, ROLE, &task_spent),
        cwd: spec.dir.to_path_buf(),
        prompt,
        timeout: role.timeout(),
        files: process::log_base(&ctx.store.agent_dir(), &task.id, attempt, ROLE),
        env: vec![
            ("TASK".into(), task.id.clone()),
            ("ATTEMPT".into(), attempt.to_string()),
            ("BASE".into(), spec.base.to_string()),
            ("BRANCH".into(), format!("agent/{}", task.id)),
        ],
        task_json: Some(serde_json::to_string_pretty(task)?),
    };
    ctx.view.started(
        &task.id,
        ROLE,
        attempt,
        &format!("resolve conflict in {}", paths.join(", ")),
    );
    let outcome = run.run(ctx.stop)?;
    ctx.ledger.spend(outcome.usage.as_ref());
    if let Some(line) = crate::orchestrate::work::rate_limited(&role, &outcome) {
        // Not the work's fault: it stays approved, tried again after the
        // pause, and the event it leaves the queue with carries this run.
        ctx.ledger.pause(ROLE, &role, &line);
        ctx.ledger
            .hold(&task.id, ROLE, outcome.span(ROLE, "rate_limited"));
        return Err(RateLimited(line).into());
    }
    let result = match outcome.succeeded() {
        true => "resolved",
        false => "failed",
    };
    spent.agent(outcome.span(ROLE, result));
    if !outcome.succeeded() {
        ctx.view.say(&format!(
            "{}: the integrator could not resolve the conflict",
            task.id
        ));
        return Ok(false);
    }
    git::stage_all(spec.dir)?;
    Ok(git::unresolved(spec.dir)?.is_empty())
}

fn merge_message(ctx: &Context, task: &Task) -> String {
    let subject = format!("Merge agent/{}: {}", task.id, task.title);
    let body = format!(
        "Approved work, merged onto {} by the merge queue after the gate.",
        ctx.config.target
    );
    worktree::trailered(&subject, &body, task, ROLE)
}
