//! Predict conflicts before they cost an attempt: a ready task that would
//! clash with work in flight waits for it instead of running beside it.
//!
//! Two branches with commits are compared by a real merge
//! (`git merge-tree --write-tree`); otherwise the task's declared `scope` is
//! compared with what the work in flight touches (its scope and its diff).

use anyhow::Result;
use std::collections::BTreeSet;

use super::Context;
use crate::git;
use crate::model::task::{State, Task};

/// Work that has a branch or a claim and has not landed yet.
pub fn in_flight(tasks: &[Task]) -> Vec<&Task> {
    tasks
        .iter()
        .filter(|t| {
            matches!(
                t.state,
                State::InProgress | State::InReview | State::Approved
            )
        })
        .collect()
}

/// The one rule for what may start now, used by `run`, `claim --next` and
/// `ready`: the claimable tasks in start order, each with why it waits (a
/// predicted clash with work in flight), or `None` where it can start.
pub fn startable(ctx: &Context) -> Result<Vec<(String, Option<String>)>> {
    let tasks = ctx.store.load_all()?;
    let flight = in_flight(&tasks);
    let mut out = Vec::new();
    for id in ctx.store.claimable_among(&tasks)? {
        let why = match tasks.iter().find(|t| t.id == id) {
            // A task with no declared scope and no branch yet has no
            // footprint to compare: no git process per candidate.
            Some(task) if task.scope.is_empty() && task.branch.is_none() => None,
            Some(task) if task.state == State::Open && !flight.is_empty() => {
                clash(ctx, task, &flight)?
            }
            _ => None,
        };
        out.push((id, why));
    }
    Ok(out)
}

/// Why `task` should wait, or `None` if it can start beside `flight`.
pub fn clash(ctx: &Context, task: &Task, flight: &[&Task]) -> Result<Option<String>> {
    let mine = Footprint::of(ctx, task)?;
    if mine.branch.is_none() && mine.files.is_empty() {
        return Ok(None);
    }
    for other in flight.iter().filter(|o| o.id != task.id) {
        let theirs = Footprint::of(ctx, other)?;
        if let (Some(a), Some(b)) = (&mine.branch, &theirs.branch) {
            let conflicts = merge_conflicts(ctx, a, b)?;
            if !conflicts.is_empty() {
                return Ok(Some(format!(
                    "waits for {}: merging both conflicts in {}",
                    other.id,
                    join(&conflicts)
                )));
            }
            continue;
        }
        let shared: BTreeSet<&String> = mine.files.intersection(&theirs.files).collect();
        if !shared.is_empty() {
            let shared: Vec<String> = shared.into_iter().cloned().collect();
            return Ok(Some(format!(
                "waits for {}: both touch {}",
                other.id,
                join(&shared)
            )));
        }
    }
    Ok(None)
}

/// What a task touches: its declared scope and, if its branch has commits,
/// the files they change.
struct Footprint {
    branch: Option<String>,
    files: BTreeSet<String>,
}

impl Footprint {
    fn of(ctx: &Context, task: &Task) -> Result<Footprint> {
        let mut files: BTreeSet<String> = task.scope.iter().cloned().collect();
        let branch = format!("refs/heads/agent/{}", task.id);
        let target = format!("refs/heads/{}", ctx.config.target);
        let Some(base) = git::merge_base(&ctx.root, &target, &branch)? else {
            return Ok(Footprint {
                branch: None,
                files,
            });
        };
        let changed = git::diff_names(&ctx.root, &base, &branch)?;
        if changed.is_empty() {
            return Ok(Footprint {
                branch: None,
                files,
            });
        }
        files.extend(changed);
        Ok(Footprint {
            branch: Some(branch),
            files,
        })
    }
}

/// Paths that conflict when `a` and `b` are merged (none if they merge cleanly).
/// A merge git cannot even try (a git older than 2.38) predicts nothing:
/// no reason to hold a task back.
fn merge_conflicts(ctx: &Context, a: &str, b: &str) -> Result<Vec<String>> {
    match git::merge_tree(&ctx.root, a, b) {
        Ok(git::MergeTree::Conflicts(paths)) => Ok(paths),
        Ok(git::MergeTree::Clean(_)) | Err(_) => Ok(Vec::new()),
    }
}

fn join(paths: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut s = paths
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > SHOWN {
        s.push_str(&format!(" and {} more", paths.len() - SHOWN));
    }
    s
}
