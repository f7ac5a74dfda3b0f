//! How an entry leaves the queue: the target advanced to its candidate (as
//! `git merge --ff-only` would where the target is checked out, else with a
//! compare-and-swap of the ref), sent back, left waiting or escalated; and
//! the event that says so, with its stay in the queue.

use anyhow::{Context as _, Result};
use std::path::PathBuf;

use super::{Landing, Leaving, ROLE};
use crate::git;
use crate::git::remote::{PushRef, Pushed};
use crate::model::span::Span;
use crate::model::task::{Change, Task};
use crate::orchestrate::{worktree, Context};
use crate::store::Draft;

pub(super) enum Advance {
    Done,
    /// The target is no longer at the tip the candidates were built on.
    Moved,
    /// It cannot move now (local changes on its checkout), with why.
    Blocked(String),
}

/// Move the target from `old` to `new`: where it is checked out, as
/// `git merge --ff-only` would (or not at all, if local changes are in the
/// way); elsewhere with one compare-and-swap on the ref (`git::refs`). With
/// `remote`, the remote's target, by a push with a lease on `old`.
pub(super) fn advance(
    ctx: &Context,
    remote: Option<&str>,
    old: &str,
    new: &str,
) -> Result<Advance> {
    let target = &ctx.config.target;
    let refname = format!("refs/heads/{target}");
    if old == new {
        return Ok(Advance::Done);
    }
    if let Some(remote) = remote {
        return advance_remote(ctx, remote, old, new);
    }
    if let Some(checkout) = checked_out(ctx, &refname)? {
        if git::head(&checkout)? != old {
            return Ok(Advance::Moved);
        }
        return match git::merge_ff_only(&checkout, new) {
            Ok(()) => Ok(Advance::Done),
            Err(_) if git::head(&checkout)? != old => Ok(Advance::Moved),
            Err(e) => Ok(Advance::Blocked(format!(
                "{target} is checked out at {} with local changes in the way: {}",
                checkout.display(),
                crate::model::one_line(&e.to_string(), 300)
            ))),
        };
    }
    let new_id = gix::ObjectId::from_hex(new.as_bytes()).context("bad commit id")?;
    let old_id = gix::ObjectId::from_hex(old.as_bytes()).context("bad commit id")?;
    let edit = git::refs::Edit::set(refname.clone(), new_id, Some(old_id));
    match ctx.store.transact(&[edit], "merge queue") {
        Ok(()) => Ok(Advance::Done),
        Err(_) if git::resolve_commit(&ctx.root, &refname)? != old => Ok(Advance::Moved),
        Err(e) => Err(e.into()),
    }
}

/// Move `remote`'s target from exactly `old` to `new` by one push; this
/// clone's target follows where it can. A push refused because the target
/// moved there fetches its new tip, for the queue to rebuild on; nothing
/// lands on a tip that was not gated.
fn advance_remote(ctx: &Context, remote: &str, old: &str, new: &str) -> Result<Advance> {
    let target = &ctx.config.target;
    let push = PushRef {
        name: format!("refs/heads/{target}"),
        new: Some(new.to_string()),
        expected: Some(old.to_string()),
    };
    match git::remote::push_atomic(&ctx.root, remote, &[push]) {
        Ok(Pushed::Landed) => {
            let tracking = format!("refs/remotes/{remote}/{target}");
            let was = ctx.store.find_ref(&tracking)?;
            let new_id = gix::ObjectId::from_hex(new.as_bytes()).context("bad commit id")?;
            if was != Some(new_id) {
                // Lost to a fetch that brought the same or newer: fine.
                let _ = ctx.store.transact(
                    &[git::refs::Edit::set(tracking, new_id, was)],
                    "merge queue",
                );
            }
            if let Some(why) = crate::orchestrate::hub::follow_target(ctx, new)? {
                ctx.view.say(&why);
            }
            Ok(Advance::Done)
        }
        Ok(Pushed::Rejected(_)) => {
            git::remote::fetch_branch(&ctx.root, remote, target)?;
            Ok(Advance::Moved)
        }
        // Out of reach: the pass ends here, and the run tries it again
        // once the remote is back (the gates that passed are noted).
        Err(e) => Err(e),
    }
}

/// The worktree where `refname` is checked out, if any.
fn checked_out(ctx: &Context, refname: &str) -> Result<Option<PathBuf>> {
    Ok(worktree::list(ctx)?
        .into_iter()
        .find(|w| w.branch.as_deref() == Some(refname))
        .map(|w| w.path))
}

pub(super) fn record_merged(
    ctx: &Context,
    task: &Task,
    commit: &str,
    leaving: Leaving,
) -> Result<Landing> {
    record(
        ctx,
        task,
        Change::Merged {
            commit: Some(commit.to_string()),
            usage: leaving.usage,
            queue: Some(leaving.queue),
        },
        &leaving.spans,
    )?;
    Ok(Landing::Merged {
        commit: commit.to_string(),
    })
}

pub(super) fn send_back(
    ctx: &Context,
    task: &Task,
    reason: &str,
    detail: Option<String>,
    leaving: Leaving,
) -> Result<Landing> {
    record(
        ctx,
        task,
        Change::IntegrationFailed {
            reason: reason.to_string(),
            detail,
            usage: leaving.usage,
            queue: Some(leaving.queue),
        },
        &leaving.spans,
    )?;
    Ok(Landing::Failed {
        reason: reason.to_string(),
    })
}

/// A conflict goes back to the implementer with the conflicting paths, its
/// branch first brought up to the target's `tip`: the merge of the target is
/// left in progress in its worktree, for the next attempt to resolve.
pub(super) fn send_back_conflict(
    ctx: &Context,
    task: &Task,
    tip: &str,
    paths: &[String],
    leaving: Leaving,
) -> Result<Landing> {
    let target = &ctx.config.target;
    let short_tip = &tip[..tip.len().min(10)];
    let reason = format!("merge conflict with {target} in: {}", paths.join(", "));
    // Work made on another clone (`run --remote`) has its branch there:
    // that clone's next attempt merges the target itself.
    let branch = format!("refs/heads/agent/{}", task.id);
    let here = git::find_commit(&ctx.root, &branch)?;
    let detail = match here.is_some() && here == task.head {
        true => {
            worktree::bring_up_to(ctx, task, tip)?;
            format!(
                "{target} moved on while this was reviewed. A merge of {target} ({short_tip}) is in progress in your worktree \
                 with conflicts in: {}. Resolve them, keeping the intent of both sides, and commit.",
                paths.join(", ")
            )
        }
        false => format!(
            "{target} moved on while this was reviewed: your branch conflicts with {target} ({short_tip}) in: {}. \
             Merge {target} into your branch, resolve the conflicts keeping the intent of both sides, and commit.",
            paths.join(", ")
        ),
    };
    send_back(ctx, task, &reason, Some(detail), leaving)
}

/// Leave an entry that cannot land now approved, or give it to a human
/// once it has waited past `integrate.deadline`; `leaving` is its stay, were
/// it to leave.
pub(super) fn wait_or_escalate(
    ctx: &Context,
    task: &Task,
    why: String,
    leaving: Leaving,
) -> Result<Landing> {
    let approved_at: jiff::Timestamp = task
        .updated_at
        .parse()
        .unwrap_or_else(|_| jiff::Timestamp::now());
    let waited = jiff::Timestamp::now()
        .duration_since(approved_at)
        .unsigned_abs();
    let deadline = ctx.config.integrate.deadline();
    if waited < deadline {
        return Ok(Landing::Waiting { reason: why });
    }
    let reason = format!(
        "waited {}s in the merge queue (deadline {}s): {why}",
        waited.as_secs(),
        deadline.as_secs()
    );
    record(
        ctx,
        task,
        Change::Escalated {
            reason: reason.clone(),
            queue: Some(leaving.queue),
        },
        &leaving.spans,
    )?;
    Ok(Landing::Escalated { reason })
}

fn record(ctx: &Context, task: &Task, change: Change, spans: &[Span]) -> Result<()> {
    let actor = format!("integrator@{}", crate::store::lease::hostname());
    ctx.store.update_timed(&task.id, spans, |_| {
        Ok((
            vec![Draft {
                change: change.clone(),
                actor: actor.clone(),
                role: ROLE.into(),
            }],
            vec![],
        ))
    })?;
    Ok(())
}

pub(super) fn interrupted() -> Landing {
    Landing::Waiting {
        reason: "interrupted; it stays approved for the next run".into(),
    }
}

/// A landing in a few words, as `integrate` and the live view print it.
pub fn describe(landing: &Landing) -> String {
    match landing {
        Landing::Merged { commit } => format!("merged as {}", &commit[..commit.len().min(10)]),
        Landing::Failed { reason } => format!("sent back: {reason}"),
        Landing::Waiting { reason } => format!("waits: {reason}"),
        Landing::Escalated { reason } => format!("to a human: {reason}"),
    }
}
