//! Running against a remote (`git agent run --remote R`): every clone of one
//! hub implements, claiming each task by a push that lands (DESIGN.md §8);
//! reviews and the merge queue run on whichever clone holds the queue's
//! lease on the hub ([`crate::store::queue_lease`]).
//!
//! Why reviews go with the queue's lease rather than with the clone whose
//! implementer made the work: the lease is one thing to judge across hosts
//! (a dead holder's reviews are taken over once it expires, where a review
//! owed by a dead implementer's clone would wait for a person), and the
//! reviewer sees the work as the hub has it, which is what the queue merges.
//! The cost: reviews do not spread over the machines; the holder runs up to
//! `-j` of them at once.
//!
//! The hub's target is the queue's target: the holder fetches it to
//! `refs/remotes/<remote>/<target>`, builds and gates candidates on it, and
//! moves it with a push whose lease is its exact old value; a refused push
//! fetches and rebuilds. Each clone's own target branch is fast-forwarded to
//! the hub's where it can be (as `git merge --ff-only` would where it is
//! checked out), and left alone, with the reason said once, where it has
//! commits of its own or local changes are in the way.
//!
//! A clone that loses the remote goes on with the work it holds, claims
//! nothing new, and syncs again until the remote is back: every event waits
//! in its own refs meanwhile.

use anyhow::Result;
use std::time::{Duration, Instant};

use super::{worktree, Context};
use crate::git;
use crate::store::lease::hostname;
use crate::store::queue_lease::Turn;

/// How often a run syncs with the hub while nothing of its own moved.
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// How long moves made here gather before they are synced.
const SYNC_GATHER: Duration = Duration::from_millis(200);
/// How long the queue's lease holds unless renewed, and how often it is.
pub(super) const QUEUE_TTL: Duration = Duration::from_secs(120);
pub(super) const QUEUE_RENEW: Duration = Duration::from_secs(30);
/// How long before its expiry an unrenewed lease is no longer counted on:
/// clocks of two hosts may differ this much.
const QUEUE_MARGIN: Duration = Duration::from_secs(20);

/// A run's dealings with its remote.
pub struct Hub {
    pub remote: String,
    /// The name this run holds the queue's lease under.
    holder: String,
    /// Whether the last exchange with the remote went through.
    reachable: bool,
    /// Something here moved since the last sync.
    dirty: bool,
    last_sync: Option<Instant>,
    /// When the queue's lease was last taken or renewed, while it is ours.
    queue: Option<Instant>,
    /// When this run last tried to take the queue's lease.
    tried_queue: Option<Instant>,
    /// What was last said about the remote or the target, so that each is
    /// said once.
    said: Option<String>,
}

impl Hub {
    pub fn new(remote: &str) -> Hub {
        Hub {
            remote: remote.to_string(),
            holder: format!("queue@{}:{}", hostname(), std::process::id()),
            reachable: true,
            dirty: true,
            last_sync: None,
            queue: None,
            tried_queue: None,
            said: None,
        }
    }

    pub fn reachable(&self) -> bool {
        self.reachable
    }

    /// Whether this run holds the queue's lease: taken or renewed, and not
    /// yet near its expiry (a renewal that cannot reach the remote leaves
    /// it to run out, and then another clone may take it over).
    pub fn holds_queue(&self) -> bool {
        self.queue
            .is_some_and(|t| t.elapsed() < QUEUE_TTL - QUEUE_MARGIN)
    }

    /// Something here moved: the next turn syncs.
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// Whether a sync is due: something moved here (moves that come close
    /// together go in one sync), or a while has passed.
    pub fn due(&self) -> bool {
        let since = |d: Duration| self.last_sync.is_none_or(|t| t.elapsed() >= d);
        (self.dirty && since(SYNC_GATHER)) || since(SYNC_EVERY)
    }

    /// Sync the agent refs and notes and, with `follow`, fetch the hub's
    /// target and bring this clone's target up to it (without: the merge
    /// queue runs, and fetches and moves the target itself). Whether it went through;
    /// a remote out of reach is said once and tried again at the next turn.
    /// A remote that answered and refused (it hides or declines the agent
    /// refs), or a failure here, is an error: waiting would not mend it.
    pub fn sync(&mut self, ctx: &Context, follow: bool) -> Result<bool> {
        self.last_sync = Some(Instant::now());
        match self.exchange(ctx, follow) {
            Ok(()) => {
                if !self.reachable {
                    self.say(ctx, format!("{}: reachable again, synced", self.remote));
                }
                self.reachable = true;
                self.dirty = false;
            }
            Err(e) if git::remote::is_unreachable(&e) => self.lost(ctx, &e),
            Err(e) => return Err(e.context(format!("syncing with {}", self.remote))),
        }
        Ok(self.reachable)
    }

    /// An exchange with the remote failed (`why`): out of reach until the
    /// next sync goes through.
    pub fn lost(&mut self, ctx: &Context, why: &anyhow::Error) {
        let was = std::mem::replace(&mut self.reachable, false);
        self.dirty = true;
        if !was {
            // Said when it went; each retry fails its own way, and saying
            // each would fill the log while the remote is away.
            return;
        }
        self.say(
            ctx,
            format!(
                "{} unreachable ({}): going on with the work this clone holds, claiming nothing new; \
                 its events wait here until the remote is back",
                self.remote,
                crate::model::one_line(&format!("{why:#}"), 200)
            ),
        );
    }

    fn exchange(&mut self, ctx: &Context, follow: bool) -> Result<()> {
        ctx.store.sync(&self.remote)?;
        let tip =
            git::remote::fetch_branch(ctx.store.work_dir(), &self.remote, &ctx.config.target)?;
        if let (true, Some(tip)) = (follow, tip) {
            if let Some(why) = follow_target(ctx, &tip)? {
                self.say(ctx, why);
            }
        }
        Ok(())
    }

    /// Whether this run holds the queue's lease now: renewed where it is
    /// ours and half spent, taken where `wanted` and it is free or dead
    /// (tried at most once a [`SYNC_EVERY`]: another clone's lease lasts).
    pub fn queue_turn(&mut self, ctx: &Context, wanted: bool) -> bool {
        let renew = self.queue.is_some_and(|t| t.elapsed() >= QUEUE_RENEW);
        let take = self.queue.is_none()
            && wanted
            && self.reachable
            && self.tried_queue.is_none_or(|t| t.elapsed() >= SYNC_EVERY);
        if !renew && !take {
            return self.holds_queue();
        }
        self.tried_queue = Some(Instant::now());
        match ctx
            .store
            .take_queue_lease(&self.remote, &self.holder, QUEUE_TTL)
        {
            Ok(Turn::Ours(_)) => self.queue = Some(Instant::now()),
            Ok(Turn::Theirs(_)) => {
                if self.queue.take().is_some() {
                    self.say(
                        ctx,
                        format!(
                            "{}: the merge queue's lease passed to another clone",
                            self.remote
                        ),
                    );
                }
            }
            // Unreachable: what runs goes on; the hub's target moves only by
            // a push that lands, so nothing untested can land meanwhile.
            Err(e) if git::remote::is_unreachable(&e) => self.lost(ctx, &e),
            // Answered but refused: this clone does not hold the queue.
            Err(e) => {
                self.say(
                    ctx,
                    format!(
                        "{}: the merge queue's lease could not be taken ({})",
                        self.remote,
                        crate::model::one_line(&format!("{e:#}"), 200)
                    ),
                );
                self.queue = None;
            }
        }
        if self.queue.is_some() && !self.holds_queue() {
            // Run out while the remote was away: another clone may hold it.
            self.queue = None;
        }
        self.holds_queue()
    }

    /// Give the queue's lease back, if this run holds it.
    pub fn release_queue(&mut self, ctx: &Context) {
        if self.queue.take().is_some() {
            let _ = ctx.store.release_queue_lease(&self.remote, &self.holder);
        }
    }

    fn say(&mut self, ctx: &Context, line: String) {
        if self.said.as_deref() != Some(line.as_str()) {
            ctx.view.say(&line);
            self.said = Some(line);
        }
    }
}

/// Bring this clone's target up to the hub's `tip` where it is behind it:
/// as `git merge --ff-only` would where it is checked out, else by a
/// compare-and-swap of the ref. Why it was left alone, if it was.
pub fn follow_target(ctx: &Context, tip: &str) -> Result<Option<String>> {
    let target = &ctx.config.target;
    let refname = format!("refs/heads/{target}");
    let Some(local) = git::find_commit(&ctx.root, &refname)? else {
        return Ok(None);
    };
    if local == tip || git::is_ancestor(&ctx.root, tip, &local)? {
        return Ok(None);
    }
    if !git::is_ancestor(&ctx.root, &local, tip)? {
        return Ok(Some(format!(
            "{target} here has commits that the hub's lacks: left as it is (the merge queue works on the hub's)"
        )));
    }
    let checkout = worktree::list(ctx)?
        .into_iter()
        .find(|w| w.branch.as_deref() == Some(refname.as_str()))
        .map(|w| w.path);
    if let Some(checkout) = checkout {
        return Ok(match git::merge_ff_only(&checkout, tip) {
            Ok(()) => None,
            Err(e) => Some(format!(
                "{target} is checked out at {} and could not move to the hub's: {}",
                checkout.display(),
                crate::model::one_line(&e.to_string(), 200)
            )),
        });
    }
    let (new, old) = (oid(tip)?, oid(&local)?);
    let edit = git::refs::Edit::set(refname, new, Some(old));
    // Lost to another writer: the next turn looks again.
    let _ = ctx.store.transact(&[edit], "follow the hub's target");
    Ok(None)
}

fn oid(hex: &str) -> Result<gix::ObjectId> {
    Ok(gix::ObjectId::from_hex(hex.as_bytes())?)
}
