//! Task worktrees: `agent/<id>` checked out in `<worktrees>/<id>`, by default
//! `<main working tree>.agent-worktrees/`: beside the repository, outside
//! `.git` (agent CLIs such as Claude Code refuse to edit files under `.git/`)
//! and outside the main working tree (whose status and tools would see them).
//! A retry reuses the worktree, and work a killed run left uncommitted is
//! committed before anything else happens in it.

use anyhow::{Context as _, Result};
use std::path::{Path, PathBuf};

use super::Context;
use crate::git;
use crate::model::task::Task;

/// A worktree ready for an attempt.
#[derive(Debug)]
pub struct Prepared {
    pub path: PathBuf,
    pub branch: String,
    /// Where the branch left the target: the merge base of the two.
    pub base: String,
    /// The commit that saved work a killed run had left uncommitted.
    pub recovered: Option<String>,
}

/// The directory that holds the task worktrees: `worktrees:` from the
/// config (relative to the main working tree), else a folder beside the
/// repository named after it (`<root>.agent-worktrees`).
pub fn worktrees_dir(ctx: &Context) -> PathBuf {
    match &ctx.config.worktrees {
        Some(dir) => ctx.root.join(dir),
        // A bare hub: inside its own folder, whose parent may not be ours to write.
        None if ctx.store.repo().workdir().is_none() => ctx.root.join("agent-worktrees"),
        None => {
            let mut name = ctx.root.file_name().unwrap_or_default().to_os_string();
            name.push(".agent-worktrees");
            ctx.root.with_file_name(name)
        }
    }
}

/// A name for this repository's own folders in a `worktrees:` folder that
/// several repositories may share: 8 hex digits of a hash of its (common)
/// git dir's canonical path.
pub fn repo_key(ctx: &Context) -> String {
    let agent_dir = ctx.store.agent_dir();
    let dir = agent_dir.parent().unwrap_or(&agent_dir);
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    // FNV-1a: stable across Rust versions, unlike the std hasher.
    let hash = dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{:08x}", hash as u32)
}

/// Refuse a worktree at `path` that belongs to another repository (a
/// `worktrees:` folder shared by several): using it would work on their files.
pub fn check_ours(ctx: &Context, path: &std::path::Path) -> Result<()> {
    let Some(theirs) = git::common_dir(path)? else {
        anyhow::bail!(
            "{} is not a worktree git can read: remove it, or give this repository a worktrees: folder of its own",
            path.display()
        );
    };
    // Our common dir is where the store keeps `agent/`: no second git call.
    let agent_dir = ctx.store.agent_dir();
    let ours = agent_dir.parent().unwrap_or(&agent_dir);
    let canon = |p: &std::path::Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    if canon(&theirs) != canon(ours) {
        anyhow::bail!(
            "{} is a worktree of another repository ({}), not of this one: \
             give this repository a worktrees: folder of its own",
            path.display(),
            theirs.display()
        );
    }
    Ok(())
}

/// Where task `id` is worked on: the worktree that has `agent/<id>` checked
/// out, wherever it is (one made before `worktrees:` changed, or in
/// `.git/agent/worktrees` by an older git-agent, keeps its work), else
/// `<worktrees>/<id>`.
pub fn task_path(ctx: &Context, id: &str) -> Result<PathBuf> {
    let branch = format!("refs/heads/agent/{id}");
    let existing = list(ctx)?
        .into_iter()
        .find(|w| w.branch.as_deref() == Some(branch.as_str()) && w.path.exists());
    Ok(match existing {
        Some(w) => w.path,
        None => worktrees_dir(ctx).join(id),
    })
}

/// The worktree and branch for `task`: created from the target's tip the
/// first time, reused (with leftover work committed) after that.
pub fn prepare(ctx: &Context, task: &Task) -> Result<Prepared> {
    prepare_in(ctx, task, None)
}

/// [`prepare`], for an attempt in implementer slot `slot`: a new worktree
/// is the recycled one of a finished task of that slot where there is one.
pub fn prepare_in(ctx: &Context, task: &Task, slot: Option<usize>) -> Result<Prepared> {
    let path = task_path(ctx, &task.id)?;
    let branch = format!("agent/{}", task.id);
    let target = &ctx.config.target;
    let target_tip = git::resolve_commit(&ctx.root, &format!("refs/heads/{target}"))
        .with_context(|| format!("the target branch {target} does not exist"))?;
    let mut recovered = None;
    if is_worktree(&path) {
        check_ours(ctx, &path)?;
    }
    if is_worktree(&path) && git::merging(&path) {
        // A merge of the target left for this attempt to resolve: leave it.
    } else if is_worktree(&path) {
        let message = trailered(
            &format!("Recover uncommitted work: {}", task.title),
            "Work an interrupted attempt left uncommitted, kept before the retry.",
            task,
            "implementer",
        );
        recovered = git::commit_all(&path, &message)?;
    } else {
        let copies = super::ready::to_copy(&ctx.root, &ctx.config)?;
        // `worktree prune` removes the admin dir of a worktree another thread
        // or process is adding at that moment: creation takes turns.
        let _turn = creation_lock(ctx)?;
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("clearing {}", path.display()))?;
        }
        git::worktree_prune(&ctx.root)?;
        let exists = git::find_commit(&ctx.root, &format!("refs/heads/{branch}"))?.is_some();
        let spare = match (exists, slot) {
            (false, Some(slot)) if ctx.config.worktree.reuse() => spare(ctx, slot)?,
            _ => None,
        };
        if let Some(old) = spare {
            recycle(ctx, &old, &path, &branch, &target_tip)?;
        } else if exists {
            git::worktree_add(&ctx.root, &path, &branch)?;
        } else {
            git::worktree_add_new_branch(&ctx.root, &path, &branch, &target_tip)?;
        }
        if let Some(slot) = slot {
            std::fs::write(git::private_path(&path, SLOT_FILE)?, slot.to_string())?;
        }
        super::ready::copy_files(&ctx.root, &copies, &path)?;
    }
    let base = git::merge_base(&path, &target_tip, "HEAD")?
        .with_context(|| format!("{branch} shares no history with {target}"))?;
    Ok(Prepared {
        path,
        branch,
        base,
        recovered,
    })
}

/// The file in a task worktree's git dir that names the slot it was made or
/// recycled for.
const SLOT_FILE: &str = "agent-slot";

/// A worktree that `slot` may recycle: made for that slot, in the
/// worktrees folder, its task merged or abandoned, and nothing uncommitted
/// in it (untracked files count; ignored ones do not).
fn spare(ctx: &Context, slot: usize) -> Result<Option<PathBuf>> {
    use crate::model::task::State;
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let dir = canon(&worktrees_dir(ctx));
    for w in git::worktree_list(&ctx.root)? {
        let Some(id) = w
            .branch
            .as_deref()
            .and_then(|b| b.strip_prefix("refs/heads/agent/"))
        else {
            continue;
        };
        let inside = w.path.parent().is_some_and(|p| canon(p) == dir);
        if w.locked.is_some() || !inside || !w.path.exists() {
            continue;
        }
        let mine = git::private_path(&w.path, SLOT_FILE)
            .ok()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .is_some_and(|s| s.trim() == slot.to_string());
        if !mine {
            continue;
        }
        let finished = ctx
            .store
            .load(id)
            .is_ok_and(|r| matches!(r.task.state, State::Merged | State::Abandoned));
        if finished && git::changed_paths(&w.path)?.is_empty() {
            return Ok(Some(w.path));
        }
    }
    Ok(None)
}

/// Make the finished task's worktree at `old` the worktree of `branch` at
/// `path`: moved, on a new branch at `tip`, tracked and untracked files of
/// the old task gone, ignored ones kept but for `worktree.clean`'s.
fn recycle(ctx: &Context, old: &Path, path: &Path, branch: &str, tip: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    git::worktree_move(&ctx.root, old, path)?;
    git::checkout_new_branch(path, branch, tip)?;
    git::clean(path)?;
    let clean: Vec<String> = ctx
        .config
        .worktree
        .clean
        .iter()
        .map(|p| format!(":(glob){p}"))
        .collect();
    let clean: Vec<&str> = clean.iter().map(String::as_str).collect();
    for file in git::ignored_files(path, &clean)? {
        let file = path.join(file);
        std::fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
    }
    Ok(())
}

fn is_worktree(path: &std::path::Path) -> bool {
    path.join(".git").exists() && git::is_work_tree(path)
}

/// A commit message with the `Agent-Task`/`Agent-Role` trailers that every
/// commit git-agent makes carries; task text in `subject` and `body` cannot
/// pass for one of them.
pub fn trailered(subject: &str, body: &str, task: &Task, role: &str) -> String {
    use crate::model::text::defuse;
    format!(
        "{}\n\n{}\n\nAgent-Task: {}\nAgent-Role: {role}\nAgent-Attempt: {}\n",
        defuse(subject),
        defuse(body),
        task.id,
        task.attempts + 1
    )
}

/// An exclusive lock on creating (and pruning) worktrees in this repository,
/// held until dropped (the OS releases it with the process). Everything that
/// runs `git worktree add` or `git worktree prune` takes it: a prune removes
/// the admin dir of a worktree that another process is adding at that moment.
pub fn creation_lock(ctx: &Context) -> Result<std::fs::File> {
    let path = ctx.store.agent_dir().join("worktrees.lock");
    let file = super::lock_file(&path)?;
    file.lock()
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(file)
}

/// Bring the branch of `task` up to the target's `tip` for its next attempt:
/// in its worktree, start merging `tip`. A clean merge is committed; a
/// conflicted one is left in progress, markers and all, for the implementer
/// to resolve (its uncommitted result is committed as the merge).
pub fn bring_up_to(ctx: &Context, task: &Task, tip: &str) -> Result<()> {
    let prepared = prepare(ctx, task)?;
    let message = trailered(
        &format!("Merge {} into agent/{}", ctx.config.target, task.id),
        "Bring the branch up to the target before the next attempt.",
        task,
        "integrator",
    );
    let dir = &prepared.path;
    let clean = git::merge_no_commit(dir, tip)?;
    if clean {
        git::commit_all(dir, &message)?;
    } else {
        // Leave the message for the commit that completes the merge.
        std::fs::write(git::private_path(dir, "MERGE_MSG")?, message)?;
    }
    Ok(())
}

/// Every worktree of the repository, as `git worktree list --porcelain`
/// describes them. Listing takes the creation lock: git fails to read the
/// admin dir of a worktree that another thread is adding at that moment.
pub(crate) fn list(ctx: &Context) -> Result<Vec<git::Worktree>> {
    let _turn = creation_lock(ctx)?;
    git::worktree_list(&ctx.root)
}
