//! `git agent gc`: sweep what finished tasks leave behind. The worktree and
//! `agent/<id>` branch of a merged or abandoned task go, and so do detached
//! review worktrees whose review ended; then the agent refs are packed.
//!
//! Never removed: a worktree with uncommitted work (or one that is locked,
//! or that git-agent did not make), and a branch with commits that reached
//! neither the target nor, for a merged task, the recorded merge.

use anyhow::{Context as _, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

use super::{review, worktree, Context};
use crate::git;
use crate::model::task::{Change, State, Task};
use crate::store::StoreError;

/// How to sweep.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Say what would go, remove nothing.
    pub dry_run: bool,
}

/// One thing removed (or, in a dry run, that would be) or kept, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Item {
    pub what: String,
    pub why: String,
}

/// What a sweep did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Swept {
    pub removed: Vec<Item>,
    pub kept: Vec<Item>,
    /// Whether the agent refs were packed.
    pub packed: bool,
}

impl Swept {
    fn remove(&mut self, what: String, why: &str) {
        self.removed.push(Item {
            what,
            why: why.to_string(),
        });
    }

    fn keep(&mut self, what: String, why: String) {
        self.kept.push(Item { what, why });
    }
}

/// Sweep the repository of `ctx`. See the module doc for what goes and what stays.
pub fn gc(ctx: &Context, options: &GcOptions) -> Result<Swept> {
    let mut swept = Swept::default();
    sweep_reviews(ctx, options, &mut swept)?;
    if !options.dry_run {
        let _turn = worktree::creation_lock(ctx)?;
        git::worktree_prune(&ctx.root)?;
    }
    let target = &ctx.config.target;
    let target_tip = git::resolve_commit(&ctx.root, &format!("refs/heads/{target}"))
        .with_context(|| format!("the target branch {target} does not exist"))?;
    let worktrees = worktree::list(ctx)?;
    let ours = canonical(&worktree::worktrees_dir(ctx));
    for (branch, tip) in git::branches(&ctx.root, "agent/")? {
        let id = branch
            .strip_prefix("agent/")
            .expect("git::branches lists only names under the prefix")
            .to_string();
        let (id, tip) = (id.as_str(), tip.as_str());
        let task = match ctx.store.load(id) {
            Ok(record) => record.task,
            Err(e) if matches!(e.downcast_ref(), Some(StoreError::NoSuchTask(_))) => {
                swept.keep(branch, format!("there is no task {id}"));
                continue;
            }
            Err(e) => return Err(e),
        };
        if !task.state.is_terminal() {
            swept.keep(branch, format!("task {id} is {}", task.state));
            continue;
        }
        let why = format!("task {}", task.state);
        let checkout = worktrees
            .iter()
            .find(|w| w.branch.as_deref() == Some(&format!("refs/heads/{branch}")));
        if let Some(checkout) = checkout {
            if let Some(reason) = keep_worktree(checkout, &ours)? {
                let path = checkout.path.display().to_string();
                swept.keep(branch, format!("checked out in {path}, which is kept"));
                swept.keep(path, reason);
                continue;
            }
            let mut why = why.clone();
            if !options.dry_run {
                if let Some(failed) = super::ready::tear_down(ctx, id, &checkout.path)? {
                    why = format!("{why}; {failed}");
                }
                if let Err(e) = git::worktree_remove(&ctx.root, &checkout.path, false) {
                    let path = checkout.path.display();
                    swept.keep(branch, format!("checked out in {path}, which is kept"));
                    swept.keep(path.to_string(), format!("{e:#}"));
                    continue;
                }
            }
            swept.remove(checkout.path.display().to_string(), &why);
        }
        match unreached(ctx, &task, tip, &target_tip)? {
            Some(count) => {
                let place = match task.state {
                    State::Merged => format!("{target} nor the recorded merge"),
                    _ => target.clone(),
                };
                swept.keep(
                    branch,
                    format!(
                        "{} on it reached neither {place}",
                        crate::model::text::count(count, "commit")
                    ),
                );
            }
            None => {
                if !options.dry_run {
                    // Compare-and-swap: a branch that moved meanwhile stays.
                    let name = format!("refs/heads/{branch}");
                    let old = gix::ObjectId::from_hex(tip.as_bytes()).context("bad commit id")?;
                    let edit = crate::git::refs::Edit::delete(name, old);
                    if let Err(e) = ctx.store.transact(&[edit], "gc") {
                        swept.keep(branch, e.to_string());
                        continue;
                    }
                }
                swept.remove(branch, &why);
            }
        }
    }
    if !options.dry_run {
        swept.packed = pack_agent_refs(ctx, &mut swept);
    }
    Ok(swept)
}

/// Why a task's worktree must stay, or `None` if removing it loses nothing.
fn keep_worktree(checkout: &git::Worktree, ours: &Path) -> Result<Option<String>> {
    if !canonical(&checkout.path).starts_with(ours) {
        return Ok(Some(format!(
            "{} is not a worktree git-agent made",
            checkout.path.display()
        )));
    }
    if let Some(reason) = &checkout.locked {
        return Ok(Some(match reason.is_empty() {
            true => "it is locked (git worktree unlock)".into(),
            false => format!("it is locked: {reason}"),
        }));
    }
    match git::changed_paths(&checkout.path) {
        Ok(status) if status.is_empty() => Ok(None),
        Ok(status) => Ok(Some(format!(
            "uncommitted work in {} ({})",
            checkout.path.display(),
            crate::model::text::count(status.len(), "path")
        ))),
        Err(_) => Ok(Some(format!(
            "git status fails in {}",
            checkout.path.display()
        ))),
    }
}

/// How many commits of `tip` reached neither the target nor (for a merged
/// task) the recorded merge, or `None` if all did. Reached: an ancestor of
/// the target's tip or of a recorded merge commit or of the head the task
/// was merged at (squash merges), or patch-equivalent to a commit on the
/// target (rebases, cherry-picks).
fn unreached(ctx: &Context, task: &Task, tip: &str, target_tip: &str) -> Result<Option<usize>> {
    let mut reached = vec![target_tip.to_string()];
    if task.state == State::Merged {
        for event in ctx.store.events(&task.id)? {
            if let Change::Merged {
                commit: Some(commit),
                ..
            } = event.change
            {
                reached.push(commit);
            }
        }
        reached.extend(task.head.clone());
    }
    for commit in &reached {
        if git::is_ancestor(&ctx.root, tip, commit)? {
            return Ok(None);
        }
    }
    let missing = match git::cherry(&ctx.root, target_tip, tip)? {
        Some(unpicked) => unpicked.len(),
        None => git::commits_in(&ctx.root, &[tip], &[target_tip])?.len(),
    };
    Ok((missing > 0).then_some(missing))
}

/// Remove review worktrees whose review ended (a killed review leaves its
/// worktree; a running one holds its lock file).
fn sweep_reviews(ctx: &Context, options: &GcOptions, swept: &mut Swept) -> Result<()> {
    let dir = review::reviews_dir(ctx);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for path in entries.flatten().map(|e| e.path()) {
        if !path.is_dir() {
            continue;
        }
        let lock_path = PathBuf::from(format!("{}.lock", path.display()));
        let lock = super::lock_file(&lock_path)?;
        if lock.try_lock().is_err() {
            swept.keep(path.display().to_string(), "a review runs in it".into());
            continue;
        }
        if !options.dry_run {
            let _ = git::worktree_remove(&ctx.root, &path, true);
            if path.exists() {
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
            let _ = std::fs::remove_file(&lock_path);
        }
        swept.remove(path.display().to_string(), "left by a review that ended");
    }
    Ok(())
}

/// Pack `refs/agent/*` (not the short-lived leases, nor anything outside
/// refs/agent). Returns whether it did; why not goes into `swept.kept`.
fn pack_agent_refs(ctx: &Context, swept: &mut Swept) -> bool {
    let packed = git::pack_refs(
        &ctx.root,
        &["refs/agent/*"],
        &["refs/agent/leases/*", "refs/tags/*"],
    );
    match packed {
        Ok(()) => true,
        Err(e) => {
            swept.keep("refs/agent".into(), format!("not packed: {e:#}"));
            false
        }
    }
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
