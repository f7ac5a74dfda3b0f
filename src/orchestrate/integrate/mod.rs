//! The merge queue: approved work lands on the target only through a test
//! gate, so the target stays green, and several entries are gated at once.
//!
//! In priority then FIFO order the queue builds a chain of candidates on the
//! target's tip, C1 = tip + e1, C2 = C1 + e2, … (merge commits made in the
//! object store with `git merge-tree` and `git commit-tree`; a rebase, or a
//! conflict for the integrator agent, in a worktree), and gates up to
//! `integrate.window` of them at once, each in a worktree of its own (a
//! slot, recycled from pass to pass so that ignored build caches survive).
//! As gates end it advances the target with one compare-and-swap to the
//! last candidate whose own gate and all earlier gates passed: every
//! first-parent commit of the target is a candidate whose tree passed (the
//! `agent-ci` notes show it).
//!
//! When Ck fails (on each of its `1 + integrate.retries` runs), C1 … Ck-1
//! land, ek goes back to its implementer with the log tail, and the entries
//! after it are rebuilt on the new tip and gated again. An entry that
//! conflicts with the target goes to the integrator agent (once it is first
//! in the chain) or back to its implementer at once; one that conflicts only
//! with an entry ahead of it waits for the chain to change, while the
//! entries behind it go on. If someone else moves the target, every
//! candidate is rebuilt on the new tip: nothing lands on a tip that was not
//! tested.
//!
//! A pass runs until nothing approved is left to take, taking work approved
//! while it runs. The event with which an entry leaves (`merged`,
//! `integration_failed`, `escalated`) carries its stay in the queue as
//! `data.queue`, a [`QueueStay`]: when it entered and left, every gate run
//! on its candidates (cancelled ones too) and why it left.

mod chain;
mod gate;
mod land;

pub use land::describe;

use anyhow::{Context as _, Result};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use super::worktree::{self, creation_lock};
use super::Context;
use crate::agent::process::{self, Ending};
use crate::git;
use crate::model::queue::{self as rules, GateRun, Left, QueueStay};
use crate::model::span::{self, Span};
use crate::model::task::{State, Task};
use crate::model::usage::Usage;
use chain::{Built, Spec};
use land::Advance;

/// How many times an entry's candidates are rebuilt because the target
/// moved under them before it waits for the next pass.
const MOVED_RETRIES: u32 = 5;
/// How often the queue wakes while its gates run, to see the pulse.
const TICK: Duration = Duration::from_millis(20);
/// How often the queue reads the store for new approvals and a moved
/// target while its gates run and nothing it knows of changed: for what
/// other processes do. Its own process's verdicts bump the pulse and are
/// seen within a tick; a target moved meanwhile is also caught by the
/// compare-and-swap that lands.
const LOOK: Duration = Duration::from_millis(250);
const ROLE: &str = "integrator";

/// What happened to one queue entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Landing {
    /// On the target, as `commit`.
    Merged { commit: String },
    /// Sent back to the implementer: conflict or red tests.
    Failed { reason: String },
    /// Still approved, waiting (e.g. local changes on the checked-out target).
    Waiting { reason: String },
    /// Waited past its deadline: now a human's.
    Escalated { reason: String },
}

/// One queue entry's result.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub task: String,
    pub title: String,
    #[serde(flatten)]
    pub landing: Landing,
}

/// Approved tasks in the order the queue takes them: priority, then the
/// time they were approved, then plan order.
pub fn queue(ctx: &Context) -> Result<Vec<Task>> {
    let mut approved: Vec<Task> = ctx
        .store
        .load_all()?
        .into_iter()
        .filter(|t| t.state == State::Approved)
        .collect();
    approved.sort_by(|a, b| {
        (a.priority, &a.updated_at, a.seq, &a.id).cmp(&(b.priority, &b.updated_at, b.seq, &b.id))
    });
    Ok(approved)
}

/// Run the queue until nothing approved is left to take, gating up to
/// `integrate.window` candidates at once (by default `parallel`). One queue
/// runs at a time per repository. Every gate it started has ended when it
/// returns.
pub fn integrate_all(ctx: &Context, parallel: usize) -> Result<Vec<Entry>> {
    integrate_notifying(ctx, parallel, None, &|| {})
}

/// [`integrate_all`], calling `left` each time an entry leaves the queue
/// (merged or sent back), so that a scheduler can start what that unblocks
/// while the pass goes on. With `remote`, the target is that remote's (see
/// [`crate::orchestrate::hub`]): fetched, and moved by a push with a lease
/// on its exact old value.
pub fn integrate_notifying(
    ctx: &Context,
    parallel: usize,
    remote: Option<&str>,
    left: &dyn Fn(),
) -> Result<Vec<Entry>> {
    let _turn = queue_lock(ctx)?;
    let window = ctx.config.integrate.window(parallel);
    let mut queue = MergeQueue::new(ctx, window, remote, left)?;
    let ran = queue.run();
    queue.drain();
    ran?;
    Ok(queue.entries)
}

/// Where one candidate's gate stands.
enum Standing {
    Running {
        job: u64,
        cancel: Arc<AtomicBool>,
    },
    Passed,
    /// Failed (or could not run): the entry goes back with `reason`.
    Failed {
        left: Left,
        reason: String,
        tail: Option<String>,
    },
}

/// One link of the chain: an entry's head merged onto the link ahead of it.
struct Candidate {
    task: Task,
    head: String,
    commit: String,
    standing: Standing,
}

/// A worktree a gate runs in; `job` while one does.
struct Slot {
    path: PathBuf,
    ready: bool,
    job: Option<u64>,
}

/// What the queue knows of an entry in this pass.
struct Stay {
    entered_at: String,
    taken_at: String,
    gates: Vec<GateRun>,
    /// How often the target moved under its candidates.
    moved: u32,
    /// What its builds and integrator agents took, over every candidate of it.
    spent: Spent,
}

/// What building an entry's candidates took: the merges (with any
/// integrator agent in them) as spans, and what the agents used.
#[derive(Default)]
pub(super) struct Spent {
    usage: Option<Usage>,
    spans: Vec<Span>,
}

impl Spent {
    /// An integrator agent's run, with what it reported it used.
    pub(super) fn agent(&mut self, span: Span) {
        if let Some(usage) = &span.usage {
            self.usage = Some(self.usage.as_ref().map_or(usage.clone(), |u| u.plus(usage)));
        }
        self.spans.push(span);
    }
}

/// An entry as it leaves the queue: its stay, what its integrator agents
/// used, and the spans of its wait, builds, agents and gates (for `stats`).
pub(super) struct Leaving {
    pub queue: QueueStay,
    pub usage: Option<Usage>,
    pub spans: Vec<Span>,
}

struct MergeQueue<'a> {
    ctx: &'a Context,
    /// The remote whose target this queue advances, if not the local one.
    remote: Option<String>,
    /// Called as each entry leaves.
    on_leave: &'a dyn Fn(),
    window: usize,
    /// The target's tip the chain is built on.
    tip: String,
    chain: Vec<Candidate>,
    slots: Vec<Slot>,
    /// Entries that conflict only with a candidate ahead of them: not taken
    /// again until the chain changes.
    deferred: HashSet<String>,
    /// `<task>@<head>` of entries that left (or wait) in this pass.
    done: HashSet<String>,
    stays: HashMap<String, Stay>,
    /// Gate jobs cancelled, with why; their runs are recorded as such.
    cancelled: HashMap<u64, String>,
    next_job: u64,
    /// When the store was last read for approvals and the target, and the
    /// pulse then; `look` asks for a read at the next tick.
    looked: (std::time::Instant, u64),
    look: bool,
    tx: Sender<gate::Done>,
    rx: Receiver<gate::Done>,
    entries: Vec<Entry>,
}

impl<'a> MergeQueue<'a> {
    fn new(
        ctx: &'a Context,
        window: usize,
        remote: Option<&str>,
        on_leave: &'a dyn Fn(),
    ) -> Result<MergeQueue<'a>> {
        if let Some(remote) = remote {
            let target = &ctx.config.target;
            if git::remote::fetch_branch(&ctx.root, remote, target)?.is_none() {
                anyhow::bail!(
                    "{remote} has no branch {target} for the merge queue to advance: push it there first (git push {remote} {target})"
                );
            }
        }
        let (tx, rx) = mpsc::channel();
        let key = worktree::repo_key(ctx);
        let dir = worktree::worktrees_dir(ctx);
        let slots = (1..=window)
            .map(|n| Slot {
                path: match n {
                    1 => dir.join(format!("queue-{key}")),
                    n => dir.join(format!("queue-{key}-{n}")),
                },
                ready: false,
                job: None,
            })
            .collect();
        Ok(MergeQueue {
            ctx,
            remote: remote.map(String::from),
            on_leave,
            window,
            tip: target_tip(ctx, remote)?,
            chain: Vec::new(),
            slots,
            deferred: HashSet::new(),
            done: HashSet::new(),
            stays: HashMap::new(),
            cancelled: HashMap::new(),
            next_job: 0,
            looked: (std::time::Instant::now(), ctx.pulse.get()),
            look: true,
            tx,
            rx,
            entries: Vec::new(),
        })
    }

    fn run(&mut self) -> Result<()> {
        self.stop_orphans()?;
        loop {
            if stopped(self.ctx) {
                return self.interrupt();
            }
            // With gates running (or, in `git agent run`, implementers and
            // reviewers that may bring more) and nothing changed, the store
            // is not read on every tick; else an empty chain looks, to know
            // when to end.
            let feeding = self.ctx.pulse.feeding() > 0;
            let look = self.look
                || (self.chain.is_empty() && !feeding)
                || self.ctx.pulse.get() != self.looked.1
                || self.looked.0.elapsed() >= LOOK;
            if look {
                self.looked = (std::time::Instant::now(), self.ctx.pulse.get());
                self.look = false;
                self.follow_target()?;
            }
            self.settle()?;
            let more = match look {
                true => self.extend()?,
                false => true,
            };
            // While work may still come from this run's agents, the pass
            // waits for it: a new pass costs more than a tick.
            if self.chain.is_empty() && !more && !feeding {
                return Ok(());
            }
            if let Ok(done) = self.rx.recv_timeout(TICK) {
                self.finish(done)?;
                while let Ok(done) = self.rx.try_recv() {
                    self.finish(done)?;
                }
                // A slot is free, a candidate decided: take more now.
                self.look = true;
            }
        }
    }

    /// Gates (and integrator agents) a killed pass left running in the
    /// slots: stopped, before a slot is used again.
    fn stop_orphans(&self) -> Result<()> {
        let logs = self.ctx.store.agent_dir().join("logs");
        let worktrees = worktree::worktrees_dir(self.ctx);
        for task in queue(self.ctx)? {
            process::stop_orphans_of(&logs.join(&task.id), &worktrees, &["gate", ROLE]);
        }
        Ok(())
    }

    /// Someone else moved the target: rebuild every candidate on its tip.
    fn follow_target(&mut self) -> Result<()> {
        let tip = target_tip(self.ctx, self.remote.as_deref())?;
        if tip != self.tip {
            self.retarget(tip)?;
        }
        Ok(())
    }

    fn retarget(&mut self, tip: String) -> Result<()> {
        if !self.chain.is_empty() {
            self.ctx.view.say(&format!(
                "merge queue: {} moved to {} under {} candidate(s): rebuilding them on it",
                self.ctx.config.target,
                short(&tip),
                self.chain.len()
            ));
        }
        self.tip = tip;
        self.deferred.clear();
        for c in std::mem::take(&mut self.chain) {
            self.cancel(&c, "the target moved");
            let stay = self.stay_of(&c.task);
            stay.moved += 1;
            if stay.moved > MOVED_RETRIES {
                let why = format!(
                    "{} kept moving while this was gated",
                    self.ctx.config.target
                );
                let stay = self.stay(&c.task, Left::Deadline);
                let landing = land::wait_or_escalate(self.ctx, &c.task, why, stay)?;
                self.leave(&c.task, &c.head, landing);
            }
        }
        Ok(())
    }

    /// Land the passed front of the chain; send back the first failure
    /// after it and rebuild what followed it.
    fn settle(&mut self) -> Result<()> {
        let gates: Vec<rules::Gate> = self.chain.iter().map(|c| c.standing.gate()).collect();
        let settlement = rules::settle(&gates);
        if settlement.land > 0 {
            let last = self.chain[settlement.land - 1].commit.clone();
            match land::advance(self.ctx, self.remote.as_deref(), &self.tip, &last)? {
                Advance::Done => {
                    self.tip = last;
                    self.deferred.clear();
                    let landed: Vec<Candidate> = self.chain.drain(..settlement.land).collect();
                    for c in landed {
                        let stay = self.stay(&c.task, Left::Merged);
                        let landing = land::record_merged(self.ctx, &c.task, &c.commit, stay)?;
                        self.leave(&c.task, &c.head, landing);
                    }
                }
                Advance::Moved => {
                    return self.retarget(target_tip(self.ctx, self.remote.as_deref())?)
                }
                Advance::Blocked(why) => return self.block(&why),
            }
        }
        if settlement.blamed.is_some() {
            let failed = self.chain.remove(0);
            self.deferred.clear();
            for c in std::mem::take(&mut self.chain) {
                self.cancel(&c, "an entry ahead of it failed the gate");
            }
            self.blame(failed)?;
        }
        Ok(())
    }

    /// The target cannot move now: every entry of the chain waits (or goes
    /// to a human past its deadline).
    fn block(&mut self, why: &str) -> Result<()> {
        self.deferred.clear();
        for c in std::mem::take(&mut self.chain) {
            self.cancel(&c, "the target cannot move");
            let stay = self.stay(&c.task, Left::Deadline);
            let landing = land::wait_or_escalate(self.ctx, &c.task, why.to_string(), stay)?;
            self.leave(&c.task, &c.head, landing);
        }
        Ok(())
    }

    /// Send the entry of a failed candidate back with its reason and log tail.
    fn blame(&mut self, c: Candidate) -> Result<()> {
        let Standing::Failed { left, reason, tail } = &c.standing else {
            unreachable!("only a failed candidate is blamed");
        };
        let stay = self.stay(&c.task, *left);
        let landing = land::send_back(self.ctx, &c.task, reason, tail.clone(), stay)?;
        self.leave(&c.task, &c.head, landing);
        Ok(())
    }

    /// Take approved entries into the chain while it is shorter than the
    /// window and a slot is free. Whether approved entries may remain that
    /// it did not take.
    fn extend(&mut self) -> Result<bool> {
        if self.chain.is_empty() {
            self.deferred.clear();
        }
        if self.chain.len() >= self.window || self.free_slot().is_none() {
            return Ok(true);
        }
        let pending: Vec<Task> = queue(self.ctx)?
            .into_iter()
            .filter(|t| {
                !self.deferred.contains(&t.id)
                    && !self.chain.iter().any(|c| c.task.id == t.id)
                    && !self.done.contains(&done_key(&t.id, t.head.as_deref()))
                    && super::has_head(self.ctx, t)
            })
            .collect();
        for task in pending {
            if stopped(self.ctx) || self.chain.len() >= self.window {
                return Ok(true);
            }
            let Some(slot) = self.free_slot() else {
                return Ok(true);
            };
            self.take(task, slot)?;
        }
        Ok(false)
    }

    /// Build the candidate of one entry on the end of the chain and start
    /// its gate, or settle the entry at once (already on the target, a
    /// conflict), or defer it.
    fn take(&mut self, task: Task, slot: usize) -> Result<()> {
        let head = task
            .head
            .clone()
            .with_context(|| format!("task {} is approved but has no head", task.id))?;
        self.stay_of(&task);
        if git::is_ancestor(&self.ctx.root, &head, &self.tip)? {
            // Already there (e.g. merged by hand): record it, land nothing new.
            let stay = self.stay(&task, Left::AlreadyMerged);
            let landing = land::record_merged(self.ctx, &task, &self.tip, stay)?;
            self.leave(&task, &head, landing);
            return Ok(());
        }
        let base = self
            .chain
            .last()
            .map_or(self.tip.clone(), |c| c.commit.clone());
        let dir = self.slot_path(slot)?;
        let mut spent = std::mem::take(&mut self.stay_of(&task).spent);
        let build_start = crate::store::now();
        let spec = Spec {
            dir: &dir,
            task: &task,
            head: &head,
            base: &base,
            tip: &self.tip,
        };
        let built = chain::build(self.ctx, &spec, &mut spent);
        let merge = Span::new(span::kind::MERGE, &build_start, &crate::store::now());
        spent.spans.push(merge);
        self.stay_of(&task).spent = spent;
        let built = built?;
        // Integrator runs an earlier pass ended with a rate limit: this
        // stay's event records them.
        for held in self.ctx.ledger.take_held(&task.id, ROLE) {
            self.stay_of(&task).spent.agent(held);
        }
        match built {
            Built::Candidate { commit, tree } => {
                let position = self.chain.len() + 1;
                let standing = match commit == base {
                    // It adds nothing: it passes as what it is built on does.
                    true => Standing::Passed,
                    false => self.start_gate(slot, &task, &commit, &tree, &base, position)?,
                };
                self.chain.push(Candidate {
                    task,
                    head,
                    commit,
                    standing,
                });
            }
            Built::Deferred => {
                if self.deferred.insert(task.id.clone()) {
                    self.ctx.view.say(&format!(
                        "{} waits in the merge queue: it conflicts with an entry ahead of it (or is for the integrator once first)",
                        task.id
                    ));
                }
            }
            Built::Conflict(paths) => {
                let stay = self.stay(&task, Left::Conflict);
                let tip = self.tip.clone();
                let landing = land::send_back_conflict(self.ctx, &task, &tip, &paths, stay)?;
                self.leave(&task, &head, landing);
            }
            Built::Interrupted => self.leave(&task, &head, land::interrupted()),
        }
        Ok(())
    }

    /// Gate a candidate in `slot`: at once where there is no test or its
    /// tree passed before, else in a thread.
    fn start_gate(
        &mut self,
        slot: usize,
        task: &Task,
        commit: &str,
        tree: &str,
        base: &str,
        position: usize,
    ) -> Result<Standing> {
        let test = self.ctx.config.test.trim().to_string();
        let mut before = Vec::new();
        let replayed = self.replayed_before(commit, base)?;
        // What `commit` is built on: the last commit replayed before it.
        let parent = replayed
            .last()
            .map_or(base, |s| s.commit.as_str())
            .to_string();
        for step in replayed {
            // An intermediate commit whose tree passed is noted at once.
            if !self.passes_at_once(task, &step, position, &test)? {
                before.push(step);
            }
        }
        let last = gate::Step {
            commit: commit.to_string(),
            tree: tree.to_string(),
            base: parent,
        };
        if before.is_empty() && self.passes_at_once(task, &last, position, &test)? {
            return Ok(Standing::Passed);
        }
        self.next_job += 1;
        let job = self.next_job;
        let cancel = Arc::new(AtomicBool::new(false));
        let attempt = task.attempts + 1;
        self.ctx.view.started(&task.id, "gate", attempt, &test);
        gate::spawn(
            gate::Job {
                id: job,
                task: task.id.clone(),
                attempt,
                commit: last.commit,
                tree: last.tree,
                base: last.base,
                before,
                position,
                dir: self.slots[slot].path.clone(),
                test,
                timeout: self.ctx.config.integrate.test_timeout(),
                retries: self.ctx.config.integrate.retries(),
                agent_dir: self.ctx.store.agent_dir(),
                task_json: serde_json::to_string_pretty(task)?,
                setup: self.ctx.config.worktree.setup.clone(),
                setup_timeout: self.ctx.config.worktree.setup_timeout(),
                // Queue slots take the port ranges after the implementers'.
                slot_env: crate::orchestrate::ready::Slot::new(
                    &self.ctx.config,
                    self.ctx.config.parallel + slot,
                )?
                .env(),
            },
            cancel.clone(),
            self.tx.clone(),
        );
        self.slots[slot].job = Some(job);
        Ok(Standing::Running { job, cancel })
    }

    /// The commits a rebase put between `base` and `commit` (its own
    /// first-parent line, oldest first, `commit` left out): each becomes a
    /// first-parent commit of the target, so each is gated. None for a
    /// merge or a squash, which add `commit` alone.
    fn replayed_before(&self, commit: &str, base: &str) -> Result<Vec<gate::Step>> {
        if self.ctx.config.integrate.strategy() != "rebase" {
            return Ok(Vec::new());
        }
        let line = git::first_parent_descendants(&self.ctx.root, base, commit)?;
        let mut steps = Vec::new();
        let mut parent = base.to_string();
        for (c, _) in line.into_iter().filter(|(c, _)| c != commit) {
            steps.push(gate::Step {
                tree: git::tree_of(&self.ctx.root, &c)?,
                base: std::mem::replace(&mut parent, c.clone()),
                commit: c,
            });
        }
        Ok(steps)
    }

    /// Whether `step` passes without a run (no test command, or its tree
    /// passed before); if so its note is written.
    fn passes_at_once(
        &mut self,
        task: &Task,
        step: &gate::Step,
        position: usize,
        test: &str,
    ) -> Result<bool> {
        let result = match test.is_empty() {
            true => "not_run: no test command",
            false if gate::passed_before(self.ctx, &step.tree, test) => {
                "passed (this tree passed before)"
            }
            false => return Ok(false),
        };
        let run = GateRun {
            commit: step.commit.clone(),
            tree: step.tree.clone(),
            base: step.base.clone(),
            position,
            run: 1,
            result: result.to_string(),
            started_at: crate::store::now(),
            duration_ms: 0,
        };
        gate::note(self.ctx, &run, &task.id)?;
        self.stay_of(task).gates.push(run);
        Ok(true)
    }

    /// A gate job ended: record its runs, free its slot, and (unless it
    /// was cancelled) decide its candidate.
    fn finish(&mut self, done: gate::Done) -> Result<()> {
        let job = &done.job;
        if let Some(slot) = self.slots.iter_mut().find(|s| s.job == Some(job.id)) {
            slot.job = None;
        }
        let cancelled = self.cancelled.remove(&job.id);
        let mut last = None;
        match done.runs {
            Ok(runs) => {
                for (n, run) in runs.into_iter().enumerate() {
                    let record = GateRun {
                        commit: run.step.commit.clone(),
                        tree: run.step.tree.clone(),
                        base: run.step.base.clone(),
                        position: job.position,
                        run: u32::try_from(n + 1).unwrap_or(u32::MAX),
                        result: gate::result_of(&run.outcome.ending, cancelled.as_deref()),
                        started_at: run.started_at,
                        duration_ms: u64::try_from(run.outcome.duration.as_millis())
                            .unwrap_or(u64::MAX),
                    };
                    gate::note(self.ctx, &record, &job.task)?;
                    if let Some(stay) = self.stays.get_mut(&job.task) {
                        stay.gates.push(record);
                    }
                    last = Some((run.outcome, run.setup));
                }
            }
            // Not the work's fault (a worktree git cannot check out): the
            // pass stops with the error, the entries stay approved.
            Err(e) if cancelled.is_none() => {
                return Err(e.context(format!("gating {} of {}", short(&job.commit), job.task)))
            }
            Err(_) => {}
        }
        if cancelled.is_some() || stopped(self.ctx) {
            self.ctx.view.finished(&job.task, "gate", "cancelled");
            return Ok(());
        }
        let standing = match last {
            Some((outcome, true)) => Standing::Failed {
                left: Left::GateFailed,
                reason: format!(
                    "set-up failed in the merge queue's worktree, for {} merged onto {}",
                    self.head_of(job),
                    self.ctx.config.target
                ),
                tail: Some(outcome.tail),
            },
            Some((outcome, false)) => self.verdict(job, Some(&outcome)),
            None => self.verdict(job, None),
        };
        self.ctx.view.finished(&job.task, "gate", standing.word());
        if let Some(c) = self
            .chain
            .iter_mut()
            .find(|c| matches!(c.standing, Standing::Running { job: j, .. } if j == job.id))
        {
            c.standing = standing;
        }
        Ok(())
    }

    /// What the last run of a job says of its candidate.
    fn verdict(&self, job: &gate::Job, last: Option<&process::Outcome>) -> Standing {
        let target = &self.ctx.config.target;
        let did_not_run = |why: String| Standing::Failed {
            left: Left::GateDidNotRun,
            reason: format!("the gate did not run: {why}"),
            tail: None,
        };
        let Some(outcome) = last else {
            return did_not_run("it made no run".into());
        };
        match outcome.ending {
            Ending::Exited(0) => Standing::Passed,
            Ending::Exited(_) => Standing::Failed {
                left: Left::GateFailed,
                reason: format!(
                    "the tests failed on {} merged onto {target}",
                    self.head_of(job)
                ),
                tail: Some(outcome.tail.clone()),
            },
            Ending::TimedOut => did_not_run(format!(
                "`{}` timed out after {}s",
                job.test,
                job.timeout.as_secs()
            )),
            Ending::Signalled | Ending::Interrupted => {
                did_not_run(format!("`{}` was stopped before it finished", job.test))
            }
        }
    }

    fn head_of(&self, job: &gate::Job) -> String {
        self.chain
            .iter()
            .find(|c| c.task.id == job.task)
            .map_or(String::new(), |c| c.head.clone())
    }

    /// Stopped (Ctrl-C): the gates stop, every entry in the chain stays
    /// approved for the next run.
    fn interrupt(&mut self) -> Result<()> {
        for c in std::mem::take(&mut self.chain) {
            self.cancel(&c, "the run was interrupted");
            self.leave(&c.task, &c.head, land::interrupted());
        }
        Ok(())
    }

    /// Stop every gate still running and wait for each to report, so that
    /// no gate outlives the pass. Runs are recorded; errors only said.
    fn drain(&mut self) {
        for c in std::mem::take(&mut self.chain) {
            self.cancel(&c, "the queue stopped");
        }
        while self.slots.iter().any(|s| s.job.is_some()) {
            let Ok(done) = self.rx.recv() else {
                break;
            };
            if let Err(e) = self.finish(done) {
                self.ctx.view.say(&format!("merge queue: {e:#}"));
            }
        }
    }

    fn cancel(&mut self, c: &Candidate, why: &str) {
        if let Standing::Running { job, cancel } = &c.standing {
            cancel.store(true, Ordering::Relaxed);
            self.cancelled.insert(*job, why.to_string());
        }
    }

    fn free_slot(&self) -> Option<usize> {
        self.slots.iter().position(|s| s.job.is_none())
    }

    /// The worktree of `slot`, made on first use (detached at the target),
    /// else recycled: any merge or rebase a killed run left is aborted.
    fn slot_path(&mut self, slot: usize) -> Result<PathBuf> {
        let ctx = self.ctx;
        let slot = &mut self.slots[slot];
        let path = slot.path.clone();
        if slot.ready {
            return Ok(path);
        }
        if path.join(".git").exists() {
            worktree::check_ours(ctx, &path)?;
            let _ = git::merge_abort(&path);
            let _ = git::rebase_abort(&path);
        } else {
            let copies = crate::orchestrate::ready::to_copy(&ctx.root, &ctx.config)?;
            let _turn = creation_lock(ctx)?;
            if path.exists() {
                std::fs::remove_dir_all(&path)?;
            }
            git::worktree_prune(&ctx.root)?;
            let target = format!("refs/heads/{}", ctx.config.target);
            git::worktree_add_detached(&ctx.root, &path, &target)?;
            crate::orchestrate::ready::copy_files(&ctx.root, &copies, &path)?;
        }
        slot.ready = true;
        Ok(path)
    }

    /// What the queue knows of `task` in this pass, begun when it is first taken.
    fn stay_of(&mut self, task: &Task) -> &mut Stay {
        self.stays.entry(task.id.clone()).or_insert_with(|| Stay {
            entered_at: task.updated_at.clone(),
            taken_at: crate::store::now(),
            gates: Vec::new(),
            moved: 0,
            spent: Spent::default(),
        })
    }

    /// The record of `task`'s stay, as it leaves for `left`.
    fn stay(&mut self, task: &Task, left: Left) -> Leaving {
        let window = self.window;
        let stay = self.stay_of(task);
        let left_at = jiff::Timestamp::now();
        let queued_ms = stay
            .entered_at
            .parse::<jiff::Timestamp>()
            .map_or(0, |entered| {
                u64::try_from(left_at.duration_since(entered).as_millis()).unwrap_or(0)
            });
        let mut gates = std::mem::take(&mut stay.gates);
        // In the order they started (a cancelled run may report late).
        gates.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        let spent = std::mem::take(&mut stay.spent);
        let mut spans = vec![Span::new(
            span::kind::QUEUE,
            &stay.entered_at,
            &stay.taken_at,
        )];
        spans.extend(spent.spans);
        spans.extend(gates.iter().filter_map(gate_span));
        Leaving {
            queue: QueueStay {
                entered_at: stay.entered_at.clone(),
                taken_at: stay.taken_at.clone(),
                left_at: left_at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                queued_ms,
                left,
                gates,
                window,
            },
            usage: spent.usage,
            spans,
        }
    }

    /// `task` (at `head`) is done with in this pass.
    fn leave(&mut self, task: &Task, head: &str, landing: Landing) {
        self.done.insert(done_key(&task.id, Some(head)));
        self.ctx
            .view
            .finished(&task.id, ROLE, &land::describe(&landing));
        self.entries.push(Entry {
            task: task.id.clone(),
            title: task.title.clone(),
            landing,
        });
        (self.on_leave)();
    }
}

impl Standing {
    fn gate(&self) -> rules::Gate {
        match self {
            Standing::Running { .. } => rules::Gate::Pending,
            Standing::Passed => rules::Gate::Passed,
            Standing::Failed { .. } => rules::Gate::Failed,
        }
    }

    fn word(&self) -> &'static str {
        match self {
            Standing::Running { .. } => "running",
            Standing::Passed => "passed",
            Standing::Failed {
                left: Left::GateFailed,
                ..
            } => "failed",
            Standing::Failed { .. } => "did not run",
        }
    }
}

/// A gate run as a span of the time it took; none for a run that did not
/// take any (no test, or a tree that passed before).
fn gate_span(run: &GateRun) -> Option<Span> {
    if run.duration_ms == 0 {
        return None;
    }
    let start: jiff::Timestamp = run.started_at.parse().ok()?;
    let end = start
        .checked_add(jiff::SignedDuration::from_millis(
            i64::try_from(run.duration_ms).ok()?,
        ))
        .ok()?;
    let end = end.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    Some(Span::new(span::kind::GATE, &run.started_at, &end).ended(&run.result))
}

fn done_key(task: &str, head: Option<&str>) -> String {
    format!("{task}@{}", head.unwrap_or(""))
}

/// The tip the queue builds on: the local target's, or with `remote` the
/// remote's as last fetched (or pushed) to `refs/remotes/<remote>/<target>`.
fn target_tip(ctx: &Context, remote: Option<&str>) -> Result<String> {
    let target = &ctx.config.target;
    match remote {
        Some(remote) => git::resolve_commit(&ctx.root, &format!("refs/remotes/{remote}/{target}")),
        None => git::resolve_commit(&ctx.root, &format!("refs/heads/{target}")),
    }
}

fn stopped(ctx: &Context) -> bool {
    ctx.stop.load(Ordering::Relaxed)
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

/// One merge queue per repository at a time (an OS lock: a kill -9 frees it).
fn queue_lock(ctx: &Context) -> Result<std::fs::File> {
    let file = super::lock_file(&ctx.store.agent_dir().join("queue.lock"))?;
    file.lock().context("locking the merge queue")?;
    Ok(file)
}
