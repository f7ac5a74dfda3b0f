//! Recording tasks whose work reached the target, however it got there.
//!
//! The check is stateless: whatever fired it (a merge, a pull, a rebase, a
//! push to a hub), every live task with work is compared with the target as
//! it is now, so running it twice records nothing the second time.
//!
//! A task's work is its submitted head, and the tip of `agent/<id>` where
//! that tip carries a provenance note naming the task (a branch freshly
//! made from the target has no work yet, though its tip is on the target).
//! The work reached the target if that commit is an ancestor of the target
//! (merge, fast-forward), or if `git patch-id --stable` finds it there
//! rewritten: the task's whole diff as one commit (a squash), or each of its
//! commits (a rebase or cherry-pick).

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::Path;

use super::{current_branch, provenance_task, HookContext};
use crate::agent::config;
use crate::git;
use crate::model::task::Change;
use crate::store::{Draft, Store};

/// The role recorded on the `merged` events a hook writes.
const ROLE: &str = "hook";

/// One task found on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    pub task: String,
    /// The target commit that brought the work: the merge commit, the
    /// work's own head (fast-forward), or the squashed/rebased commit.
    pub commit: String,
    pub how: &'static str,
}

/// post-merge: on the target, record what the merge brought. `squash` is
/// git's argument ("1" for `git merge --squash`): then nothing is committed
/// yet, so the commit's post-commit hook is told to look instead.
pub fn post_merge(ctx: &HookContext, squash: Option<&str>) -> Result<()> {
    let target = config::team(&ctx.store)?.target;
    if current_branch(&ctx.store)?.as_deref() != Some(target.as_str()) {
        return Ok(());
    }
    if squash == Some("1") {
        let marker = ctx
            .store
            .repo()
            .git_dir()
            .join(super::post_commit::SQUASH_MARKER);
        std::fs::write(&marker, b"").with_context(|| format!("writing {}", marker.display()))?;
        return Ok(());
    }
    record(ctx, &target).map(drop)
}

/// Record as merged every live task whose work is on branch `target`, and
/// say so on stderr. Dependents become ready by themselves: readiness is
/// derived from the dependencies' states.
pub fn record(ctx: &HookContext, target: &str) -> Result<Vec<Landed>> {
    let store = &ctx.store;
    let dir = store.work_dir();
    let Some(tip) = git::find_commit(dir, &format!("refs/heads/{target}"))? else {
        return Ok(Vec::new());
    };
    let found = find(store, &tip)?;
    for landed in &found {
        mark_merged(ctx, landed)?;
    }
    Ok(found)
}

/// Append `merged` to the task unless it is merged or abandoned already.
fn mark_merged(ctx: &HookContext, landed: &Landed) -> Result<()> {
    let mut wrote = false;
    ctx.store.update(&landed.task, |current| {
        if current.task.state.is_terminal() {
            return Ok((vec![], vec![]));
        }
        wrote = true;
        let change = Change::Merged {
            commit: Some(landed.commit.clone()),
            usage: None,
            queue: None,
        };
        let draft = Draft {
            change,
            actor: ctx.actor.clone(),
            role: ROLE.into(),
        };
        Ok((vec![draft], vec![]))
    })?;
    if wrote {
        eprintln!(
            "git-agent: task {} is merged ({}, as {})",
            landed.task,
            landed.how,
            &landed.commit[..landed.commit.len().min(12)]
        );
    }
    Ok(())
}

/// Every live task whose work is in `tip`'s history.
fn find(store: &Store, tip: &str) -> Result<Vec<Landed>> {
    let dir = store.work_dir();
    let mut found = Vec::new();
    let mut rewritten = Vec::new();
    for (task, heads) in candidates(store)? {
        match heads
            .iter()
            .find_map(|h| landing(dir, h, tip).transpose())
            .transpose()?
        {
            Some(commit) => found.push(Landed {
                task,
                commit,
                how: "merge",
            }),
            None => rewritten.push((task, heads)),
        }
    }
    if rewritten.is_empty() {
        return Ok(found);
    }
    let all_heads: Vec<&str> = rewritten
        .iter()
        .flat_map(|(_, heads)| heads.iter().map(String::as_str))
        .collect();
    let on_target = TargetPatches::read(dir, tip, &all_heads)?;
    for (task, heads) in rewritten {
        for head in &heads {
            if let Some((commit, how)) = on_target.find(dir, head, tip)? {
                found.push(Landed {
                    task: task.clone(),
                    commit,
                    how,
                });
                break;
            }
        }
    }
    Ok(found)
}

/// Live tasks with their work commits (see the module doc).
fn candidates(store: &Store) -> Result<Vec<(String, Vec<String>)>> {
    let tips = agent_branch_tips(store)?;
    let mut out = Vec::new();
    for task in store.load_all()? {
        if task.state.is_terminal() {
            continue;
        }
        let known = |hex: &str| {
            gix::ObjectId::from_hex(hex.as_bytes()).is_ok_and(|id| store.repo().has_object(id))
        };
        // A head submitted on another clone may not be here yet.
        let mut heads: Vec<String> = task.head.iter().filter(|h| known(h)).cloned().collect();
        if let Some(tip) = tips.get(&task.id) {
            let tip_hex = tip.to_string();
            if !heads.contains(&tip_hex)
                && provenance_task(store, *tip)?.as_deref() == Some(task.id.as_str())
            {
                heads.push(tip_hex);
            }
        }
        if !heads.is_empty() {
            out.push((task.id, heads));
        }
    }
    Ok(out)
}

/// The tips of the local `agent/<id>` branches, by task id.
fn agent_branch_tips(store: &Store) -> Result<HashMap<String, gix::ObjectId>> {
    Ok(store.refs_under("refs/heads/agent/")?.into_iter().collect())
}

/// If `head` is in `tip`'s history, the target commit that brought it: the
/// first commit on the target's first-parent line that contains it (a
/// merge commit), or `head` itself where the target line runs through it.
fn landing(dir: &Path, head: &str, tip: &str) -> Result<Option<String>> {
    if !git::is_ancestor(dir, head, tip)? {
        return Ok(None);
    }
    let line = git::first_parent_descendants(dir, head, tip)?;
    Ok(Some(match line.first() {
        Some((commit, parents)) if parents.first().is_some_and(|p| p != head) => commit.clone(),
        _ => head.to_string(),
    }))
}

/// Patch ids of the target commits that no candidate head contains (where
/// squashed or rebased work would be), newest first.
struct TargetPatches {
    by_id: HashMap<String, (usize, String)>,
}

impl TargetPatches {
    fn read(dir: &Path, tip: &str, heads: &[&str]) -> Result<TargetPatches> {
        let mut by_id = HashMap::new();
        for (rank, (id, commit)) in git::commit_patch_ids(dir, &[tip], heads)?
            .into_iter()
            .enumerate()
        {
            by_id.entry(id).or_insert((rank, commit));
        }
        Ok(TargetPatches { by_id })
    }

    /// Where `head`'s work is on the target, rewritten: each of its commits
    /// (then the newest of those), or its whole diff as one commit.
    fn find(&self, dir: &Path, head: &str, tip: &str) -> Result<Option<(String, &'static str)>> {
        let own = git::commit_patch_ids(dir, &[head], &[tip])?;
        let matched: Option<Vec<&(usize, String)>> =
            own.iter().map(|(id, _)| self.by_id.get(id)).collect();
        if let Some((_, commit)) = matched
            .filter(|m| !m.is_empty())
            .and_then(|m| m.into_iter().min_by_key(|(rank, _)| *rank))
        {
            return Ok(Some((commit.clone(), "rebase")));
        }
        let base = git::merge_base(dir, head, tip)?
            .with_context(|| format!("{head} and {tip} share no history"))?;
        Ok(git::diff_patch_id(dir, &base, head)?
            .and_then(|id| self.by_id.get(&id))
            .map(|(_, commit)| (commit.clone(), "squash")))
    }
}
