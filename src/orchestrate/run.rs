//! The scheduler: the whole pipeline, event-driven. Ready tasks are claimed
//! and implemented up to `parallel` at once; each piece is reviewed as it
//! lands; approved work enters the merge queue at once; a merge makes
//! dependents ready at once; all while other implementers keep running.
//! Each job runs in its own thread, each agent in its own process group.

use anyhow::{Context as _, Result};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::hub::Hub;
use super::integrate::{self, Entry, Landing};
use super::review::{self, ReviewOptions, Reviewed, Subject};
use super::work::{self, Finished};
use super::{limits, predict, Context};
use crate::error::No;
use crate::model::task::{State, Verdict};
use crate::store::lease::{hostname, ClaimOutcome, ClaimRequest};
use crate::store::queue;
use crate::store::queue_lease::Turn;

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct Options {
    pub parallel: usize,
    /// Keep going when nothing can move, polling for new work.
    pub watch: bool,
    pub poll: Duration,
    /// Claim against this remote: a claim counts once its push lands there.
    pub remote: Option<String>,
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub submitted: usize,
    pub failed: usize,
    pub interrupted: usize,
    pub lost: usize,
    pub approved: usize,
    pub changes_requested: usize,
    pub merged: usize,
    pub sent_back: usize,
    /// Agent runs that met a rate limit (and used up no attempt).
    pub rate_limited: usize,
    /// Tasks sent to a human for spending their budget.
    pub over_budget: usize,
    /// Why the run stopped starting new work, when `budget.run_usd` was spent.
    pub budget_spent: Option<String>,
    pub errors: Vec<String>,
}

/// A unit of work the scheduler runs in a thread.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Job {
    Implement {
        task: String,
        slot: usize,
    },
    /// A review of a task (`key` = its id) or of a commit a hook queued
    /// (`key` = `queue:<commit>`).
    Review {
        key: String,
    },
    Integrate,
}

/// What a job reports when it ends.
enum Done {
    Implemented(Result<Finished>),
    Reviewed(Result<Box<Reviewed>>),
    Integrated(Result<Vec<Entry>>),
    /// The job goes on, but something it did may let others start (an
    /// entry left the merge queue): a wake-up, not an end.
    Progress,
}

/// A lease on running here: one orchestrator per repository at a time.
/// The OS drops the lock with the process, so a kill -9 never leaves it held.
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Take the lock, or say (exit 1) that another run holds it.
    pub fn acquire(ctx: &Context) -> Result<RunLock> {
        let path = ctx.store.agent_dir().join("run.lock");
        let file = super::lock_file(&path)?;
        if file.try_lock().is_err() {
            return Err(No(format!(
                "another `git agent run` is running in this repository ({} is locked)",
                path.display()
            ))
            .into());
        }
        Ok(RunLock { _file: file })
    }
}

/// The scheduler's state between events.
struct Scheduler<'a> {
    ctx: &'a Context,
    parallel: usize,
    running: HashMap<Job, JoinHandle<()>>,
    free: BTreeSet<usize>,
    summary: Summary,
    /// The approved set and target tip the last queue pass left waiting:
    /// no second pass until one of them changes.
    queue_idle_at: Option<(Vec<String>, String)>,
    /// Why each ready task waits (conflict prediction), as last seen.
    waits: HashMap<String, String>,
    /// Reviews started in this run (`<task>@<head>` or `queue:<commit>`):
    /// each is tried once per run, so a broken reviewer cannot spin; a task
    /// back in review at a new head is a new key.
    reviews_started: HashSet<String>,
    /// The remote claims are won on and the queue's lease is held on, if any.
    hub: Option<Hub>,
    /// In a bare repository (a hub): when this run last took or renewed
    /// the queue's lease here, while it holds it. Clones that run against
    /// this hub with `run --remote` take the same lease by a push.
    queue_here: Option<Instant>,
    tx: Sender<(Job, Done)>,
}

/// How often the scheduler reads the board when no job has news.
const IDLE_SCAN: Duration = Duration::from_millis(500);

/// Run until nothing more can move (or until stopped, with `watch`).
pub fn run(ctx: &Context, options: &Options) -> Result<Summary> {
    let _lock = RunLock::acquire(ctx)?;
    if ctx.config.roles.implementer.is_none() && ctx.config.roles.reviewer.is_none() {
        ctx.role("implementer")?;
    }
    ctx.ledger.persist_in(&ctx.store.agent_dir())?;
    let (tx, rx) = mpsc::channel();
    let mut s = Scheduler {
        ctx,
        parallel: options.parallel.max(1),
        running: HashMap::new(),
        free: (1..=options.parallel.max(1)).collect(),
        summary: Summary::default(),
        queue_idle_at: None,
        waits: HashMap::new(),
        reviews_started: HashSet::new(),
        hub: options.remote.as_deref().map(Hub::new),
        queue_here: None,
        tx,
    };
    s.check_budgets(None)?;
    // The board is read again after each job's news, and otherwise only
    // every IDLE_SCAN (for what other processes change): reading it on
    // every wake-up costs git processes the agents need the cores for.
    let mut scan = true;
    let mut scanned = Instant::now();
    let mut drive = || -> Result<()> {
        loop {
            if ctx.stop.load(Ordering::Relaxed) {
                break;
            }
            // News from the remote is news like a job's.
            scan |= s.sync_if_due()?;
            // A held queue lease is renewed while anything runs, whether or
            // not new work may start (a spent budget lets running work end).
            s.renew_queue()?;
            if (scan || scanned.elapsed() >= IDLE_SCAN) && s.may_start() {
                if s.queue_turn()? {
                    s.start_integration()?;
                    s.start_reviews()?;
                }
                s.start_implementers()?;
                (scan, scanned) = (false, Instant::now());
            }
            if s.running.is_empty() {
                scan = true;
                // A role paused by a rate limit has work to take up again.
                if let Some(left) = ctx.ledger.any_pause().filter(|_| s.may_start()) {
                    sleep_unless_stopped(ctx, left.min(Duration::from_secs(1)));
                    continue;
                }
                if s.others_may_move()? {
                    sleep_unless_stopped(ctx, options.poll.min(REMOTE_POLL));
                    continue;
                }
                if !options.watch {
                    break;
                }
                sleep_unless_stopped(ctx, options.poll);
                continue;
            }
            if let Ok((job, done)) = rx.recv_timeout(Duration::from_millis(100)) {
                s.finish(job, done);
                scan = true;
            }
        }
        Ok(())
    };
    let driven = drive();
    if driven.is_err() {
        // Wound down as Ctrl-C would: the agents stop, their tasks are released.
        ctx.stop.store(true, Ordering::Relaxed);
    }
    // Stopped: the workers see the flag, stop their agents and release their tasks.
    while !s.running.is_empty() {
        let (job, done) = rx.recv().context("a worker thread vanished")?;
        s.finish(job, done);
    }
    if s.queue_here.is_some() {
        if let Err(e) = ctx.store.release_queue_lease_here(&queue_holder()) {
            ctx.view
                .say(&format!("the queue's lease stays until it expires: {e:#}"));
        }
    }
    if let Some(hub) = &mut s.hub {
        // What this run recorded goes out before it ends, and before the
        // queue's lease is given back: a clone that took the lease over
        // first would see this run's verdicts and merges as still to do.
        // A remote that is gone is waited for (Ctrl-C leaves it for a
        // later `git agent sync`).
        let mut synced = Ok(false);
        while matches!(synced, Ok(false)) {
            synced = hub.sync(ctx, true);
            if ctx.stop.load(Ordering::Relaxed) {
                break;
            }
            if matches!(synced, Ok(false)) {
                sleep_unless_stopped(ctx, REMOTE_POLL);
            }
        }
        hub.release_queue(ctx);
        if driven.is_ok() {
            synced?;
        }
    }
    driven?;
    Ok(s.summary)
}

/// How often a run against a remote looks again while only other clones
/// (or the remote's return) can move its work.
const REMOTE_POLL: Duration = Duration::from_millis(300);

impl Scheduler<'_> {
    /// Against a remote: sync when something moved here or a while passed.
    /// This clone's target follows the hub's, unless the merge queue runs
    /// (it moves the target itself).
    /// Returns whether it synced.
    fn sync_if_due(&mut self) -> Result<bool> {
        let follow = !self.running.contains_key(&Job::Integrate);
        match self.hub.as_mut().filter(|h| h.due()) {
            Some(hub) => hub.sync(self.ctx, follow).map(|_| true),
            None => Ok(false),
        }
    }

    /// Renew the queue's lease where this run holds it and a renewal is due.
    fn renew_queue(&mut self) -> Result<()> {
        if self.queue_here.is_some() || self.hub.as_ref().is_some_and(Hub::holds_queue) {
            self.queue_turn()?;
        }
        Ok(())
    }

    /// Whether this run reviews and integrates: always alone; against a
    /// remote, while it holds the queue's lease there, which it takes when
    /// there is work for the queue.
    fn queue_turn(&mut self) -> Result<bool> {
        let wanted = match &self.hub {
            None if self.ctx.store.repo().is_bare() => return self.queue_turn_here(),
            None => return Ok(true),
            Some(hub) if hub.holds_queue() => true,
            Some(_) => self.queue_work()?.0,
        };
        let ctx = self.ctx;
        Ok(self.hub.as_mut().is_some_and(|h| h.queue_turn(ctx, wanted)))
    }

    /// In a hub: whether this run holds the queue's lease here (taking or
    /// renewing it as due), so that a clone running against this hub with
    /// `run --remote` and holding it reviews and integrates instead, never
    /// both at once.
    fn queue_turn_here(&mut self) -> Result<bool> {
        if self
            .queue_here
            .is_some_and(|at| at.elapsed() < super::hub::QUEUE_RENEW)
        {
            return Ok(true);
        }
        let turn = self
            .ctx
            .store
            .take_queue_lease_here(&queue_holder(), super::hub::QUEUE_TTL)?;
        self.queue_here = match turn {
            Turn::Ours(_) => Some(Instant::now()),
            Turn::Theirs(_) => None,
        };
        Ok(self.queue_here.is_some())
    }

    /// Whether any task waits for a review (with a reviewer configured) or
    /// in the merge queue; and whether any of those waits for its work to
    /// arrive from another clone.
    fn queue_work(&self) -> Result<(bool, bool)> {
        let reviewer = self.ctx.config.roles.reviewer.is_some();
        let mut waiting = (false, false);
        for task in self.ctx.store.load_all()? {
            let queued = match task.state {
                State::InReview => reviewer,
                State::Approved => true,
                _ => false,
            };
            if queued {
                waiting.0 = true;
                waiting.1 |= !super::has_head(self.ctx, &task);
            }
        }
        Ok(waiting)
    }

    /// With nothing running here: whether a run against a remote should
    /// wait, because other clones can still move its work (a task in
    /// progress there, work for a queue another clone holds, work not yet
    /// arrived) or the remote is out of reach with this clone's events.
    fn others_may_move(&mut self) -> Result<bool> {
        let Some(hub) = &self.hub else {
            return Ok(false);
        };
        if !hub.reachable() {
            return Ok(true);
        }
        let holds = hub.holds_queue();
        let in_progress = self
            .ctx
            .store
            .load_all()?
            .iter()
            .any(|t| t.state == State::InProgress);
        let (queued, arriving) = self.queue_work()?;
        Ok(in_progress || arriving || (queued && !holds))
    }

    /// Whether new work may start: not once the run's budget is spent
    /// (said once, when it is first found; running agents finish).
    fn may_start(&mut self) -> bool {
        let Some(why) = self.ctx.ledger.run_budget_spent() else {
            return true;
        };
        if self.summary.budget_spent.is_none() {
            self.ctx.view.say(&format!(
                "{why}: starting nothing new; {} running job(s) finish",
                self.running.len()
            ));
            self.summary.budget_spent = Some(why);
        }
        false
    }

    /// Send to a human each task (`only` one, else every task not running)
    /// whose agents spent its budget, with the budget and the spend.
    fn check_budgets(&mut self, only: Option<&str>) -> Result<()> {
        let budget = self.ctx.config.budget.clone();
        if budget.task_usd.is_none() && budget.task_tokens.is_none() {
            return Ok(());
        }
        let ids: Vec<String> = match only {
            Some(id) => vec![id.to_string()],
            None => self
                .ctx
                .store
                .load_all()?
                .into_iter()
                .filter(|t| {
                    !t.state.is_terminal()
                        && !matches!(t.state, State::NeedsHuman | State::InProgress)
                })
                .map(|t| t.id)
                .collect(),
        };
        for id in ids {
            self.escalate_if_over_budget(&id)?;
        }
        Ok(())
    }

    /// Send task `id` to a human if its agents spent its budget and it is
    /// not running; whether it went.
    fn escalate_if_over_budget(&mut self, id: &str) -> Result<bool> {
        let budget = &self.ctx.config.budget;
        if budget.task_usd.is_none() && budget.task_tokens.is_none() {
            return Ok(false);
        }
        let spent = limits::task_spent(&self.ctx.store.events(id)?);
        let Some(why) = limits::task_over_budget(budget, &spent) else {
            return Ok(false);
        };
        let mut moved = false;
        self.ctx.store.update(id, |current| {
            let state = current.task.state;
            moved = !state.is_terminal() && !matches!(state, State::NeedsHuman | State::InProgress);
            let drafts = match moved {
                true => vec![crate::store::Draft {
                    change: crate::model::task::Change::Escalated {
                        reason: why.clone(),
                        queue: None,
                    },
                    actor: format!("git-agent@{}", hostname()),
                    role: "orchestrator".into(),
                }],
                false => vec![],
            };
            Ok((drafts, vec![]))
        })?;
        if moved {
            self.ctx.view.say(&format!("{id}: to a human: {why}"));
            self.summary.over_budget += 1;
        }
        Ok(moved)
    }

    /// A job of `role` met a rate limit: say so, with the pause.
    /// (The worker paused the role in the ledger before it gave the task
    /// back, so no other slot takes the task up before the pause.)
    fn rate_limited(&mut self, role: &str, why: &str) {
        let pause = self.ctx.ledger.paused(role).unwrap_or_default();
        self.summary.rate_limited += 1;
        self.ctx.view.say(&format!(
            "{role} rate limited ({}): its dispatch pauses for {:.1}s",
            crate::model::one_line(why, 80),
            pause.as_secs_f64()
        ));
    }

    /// One merge-queue pass at a time, when there is approved work it has
    /// not already left waiting. A pass takes work approved while it runs,
    /// gating up to `integrate.window` candidates at once (by default as
    /// many as there are implementer slots).
    fn start_integration(&mut self) -> Result<()> {
        if self.running.contains_key(&Job::Integrate)
            || self.ctx.ledger.paused("integrator").is_some()
        {
            return Ok(());
        }
        let approved: Vec<String> = integrate::queue(self.ctx)?
            .into_iter()
            .map(|t| t.id)
            .collect();
        if approved.is_empty() {
            return Ok(());
        }
        let target = match &self.hub {
            Some(hub) => format!("refs/remotes/{}/{}", hub.remote, self.ctx.config.target),
            None => format!("refs/heads/{}", self.ctx.config.target),
        };
        let tip = crate::git::find_commit(&self.ctx.root, &target)?.unwrap_or_default();
        if self.queue_idle_at.as_ref() == Some(&(approved.clone(), tip.clone())) {
            return Ok(());
        }
        self.queue_idle_at = Some((approved, tip));
        let parallel = self.parallel;
        let wake = self.tx.clone();
        let remote = self.hub.as_ref().map(|h| h.remote.clone());
        self.spawn(Job::Integrate, move |ctx, job| {
            let left = || {
                let _ = wake.send((job.clone(), Done::Progress));
            };
            Done::Integrated(integrate::integrate_notifying(
                &ctx,
                parallel,
                remote.as_deref(),
                &left,
            ))
        });
        Ok(())
    }

    /// Review each piece as it lands: every task in review (at its head),
    /// and every commit a hook queued, up to `parallel` reviews at once. With
    /// no reviewer configured, reviews are left to people.
    fn start_reviews(&mut self) -> Result<()> {
        if self.ctx.config.roles.reviewer.is_none() || self.ctx.ledger.paused("reviewer").is_some()
        {
            return Ok(());
        }
        let mut wanted: Vec<(String, String)> = Vec::new();
        let tasks = self.ctx.store.load_all()?;
        for task in tasks.iter().filter(|t| t.state == State::InReview) {
            if !super::has_head(self.ctx, task) {
                // Its work has not arrived: made on another clone, it comes
                // with a sync; a hub may get a task's ref before the push
                // of its branch lands.
                continue;
            }
            let head = task.head.clone().unwrap_or_default();
            wanted.push((task.id.clone(), format!("{}@{head}", task.id)));
        }
        let agent_dir = self.ctx.store.agent_dir();
        for item in queue::list(&agent_dir)?
            .into_iter()
            .filter(|i| i.kind == "review")
        {
            if task_still_in_progress(&item, &tasks) {
                // Its submission brings the task's own review, which
                // covers this commit; until then the item waits.
                continue;
            }
            if let Some(why) = stale_review(self.ctx, &item, &tasks)? {
                self.ctx.view.say(&format!(
                    "queue: review of {} dropped: {why}",
                    short(&item.key)
                ));
                queue::remove(&agent_dir, &item)?;
                continue;
            }
            // The item stays queued until its review has ended (see
            // `finish`): a kill -9 before then loses nothing.
            let key = format!("queue:{}", item.key);
            wanted.push((key.clone(), key));
        }
        for (key, attempt) in wanted {
            let reviews = self
                .running
                .keys()
                .filter(|j| matches!(j, Job::Review { .. }))
                .count();
            let job = Job::Review { key: key.clone() };
            if reviews >= self.parallel
                || self.running.contains_key(&job)
                || self.reviews_started.contains(&attempt)
            {
                continue;
            }
            self.reviews_started.insert(attempt);
            self.spawn(job, move |ctx, _| {
                let subject = match key.strip_prefix("queue:") {
                    Some(commit) => Subject::Rev(commit.to_string()),
                    None => Subject::Task(key.clone()),
                };
                Done::Reviewed(
                    review::review(&ctx, &subject, &ReviewOptions::default()).map(Box::new),
                )
            });
        }
        Ok(())
    }

    /// Claim and start ready tasks while slots are free, skipping those
    /// predicted to clash with work in flight. Never in a bare repository:
    /// a hub reviews and integrates, the clones implement.
    fn start_implementers(&mut self) -> Result<()> {
        if self.ctx.config.roles.implementer.is_none()
            || self.ctx.store.repo().is_bare()
            || self.ctx.ledger.paused("implementer").is_some()
            || self.hub.as_ref().is_some_and(|h| !h.reachable())
        {
            return Ok(());
        }
        while !self.free.is_empty() && self.start_one()? {}
        Ok(())
    }

    /// Start the first claimable task that clashes with nothing in flight
    /// (read afresh: the last one started is in flight now). Whether one started.
    fn start_one(&mut self) -> Result<bool> {
        for (id, waits) in predict::startable(self.ctx)? {
            let Some(&slot) = self.free.first() else {
                break;
            };
            if let Some(why) = waits {
                if self.waits.insert(id.clone(), why.clone()).as_ref() != Some(&why) {
                    self.ctx.view.say(&format!("{id} {why}"));
                }
                continue;
            }
            // Checked again here: a task can be back in the ready list
            // before the job that spent its budget has been seen to end.
            if self.escalate_if_over_budget(&id)? {
                continue;
            }
            let request = self.claim_request(slot)?;
            let claimed = match &mut self.hub {
                Some(hub) => match self
                    .ctx
                    .store
                    .claim_remote(&id, &request, &hub.remote, false)
                {
                    Ok(outcome) => matches!(outcome, ClaimOutcome::Claimed(_)),
                    Err(e) => {
                        hub.lost(self.ctx, &e);
                        // The claim may stand here, unsent: work it holds.
                        let task = self.ctx.store.load(&id)?.task;
                        task.state == State::InProgress
                            && task.assignee.as_deref() == Some(request.actor.as_str())
                    }
                },
                None => matches!(
                    self.ctx.store.claim(&id, &request)?,
                    ClaimOutcome::Claimed(_)
                ),
            };
            if claimed {
                self.free.remove(&slot);
                self.waits.remove(&id);
                let actor = request.actor.clone();
                let task_id = id.clone();
                self.spawn(Job::Implement { task: id, slot }, move |ctx, _| {
                    Done::Implemented(work::implement(&ctx, &task_id, &actor, slot - 1))
                });
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A queued review has ended: a done one leaves the queue; a failed one
    /// stays for the next run (this run does not try it again).
    fn dequeue(&self, key: &str, done: bool) {
        if !done {
            return;
        }
        let dir = self.ctx.store.agent_dir();
        if let Ok(items) = queue::list(&dir) {
            for item in items.iter().filter(|i| i.kind == "review" && i.key == key) {
                if let Err(e) = queue::remove(&dir, item) {
                    self.ctx
                        .view
                        .say(&format!("queue: could not remove review {key}: {e:#}"));
                }
            }
        }
    }

    fn claim_request(&self, slot: usize) -> Result<ClaimRequest> {
        // Against a remote, clones on one host must not share a name: the
        // merge of logs tells claims apart by who made them.
        let actor = match &self.hub {
            Some(_) => format!("implementer-{slot}@{}:{}", hostname(), std::process::id()),
            None => format!("implementer-{slot}@{}", hostname()),
        };
        Ok(ClaimRequest {
            actor,
            role: "implementer".into(),
            pid: Some(std::process::id()),
            ttl: crate::store::lease::DEFAULT_TTL,
        })
    }

    /// Run `work` in a thread with its own context; its result comes back as an event.
    fn spawn(&mut self, job: Job, work: impl FnOnce(Context, &Job) -> Done + Send + 'static) {
        let seed = self.ctx.seed();
        let tx = self.tx.clone();
        let key = job.clone();
        let handle = std::thread::spawn(move || {
            let done = match seed.open() {
                Ok(ctx) => work(ctx, &key),
                Err(e) => match key {
                    Job::Implement { .. } => Done::Implemented(Err(e)),
                    Job::Review { .. } => Done::Reviewed(Err(e)),
                    Job::Integrate => Done::Integrated(Err(e)),
                },
            };
            let _ = tx.send((key, done));
        });
        self.running.insert(job, handle);
        self.count_feeding();
    }

    /// Tell the merge queue how many jobs may still bring it work.
    fn count_feeding(&self) {
        let feeding = self
            .running
            .keys()
            .filter(|j| !matches!(j, Job::Integrate))
            .count();
        self.ctx.pulse.set_feeding(feeding);
    }

    fn finish(&mut self, job: Job, done: Done) {
        if let Some(hub) = &mut self.hub {
            hub.touch();
        }
        if matches!(job, Job::Review { .. }) {
            // A verdict may be recorded: the merge queue looks at once.
            self.ctx.pulse.bump();
        }
        if matches!(done, Done::Progress) {
            // The job runs on; the loop looks for what can start now.
            return;
        }
        if let Some(handle) = self.running.remove(&job) {
            let _ = handle.join();
        }
        self.count_feeding();
        if let Err(e) = self.after(&job, &done) {
            self.summary.errors.push(format!("budget: {e:#}"));
        }
        let label = match &job {
            Job::Implement { task, slot } => {
                self.free.insert(*slot);
                task.clone()
            }
            Job::Review { key } => {
                if let Some(queued) = key.strip_prefix("queue:") {
                    self.dequeue(queued, done_ok(&done));
                }
                key.clone()
            }
            Job::Integrate => "merge queue".to_string(),
        };
        let s = &mut self.summary;
        match done {
            Done::Implemented(Ok(Finished::Submitted { .. })) => s.submitted += 1,
            Done::Implemented(Ok(Finished::Failed { .. })) => s.failed += 1,
            Done::Implemented(Ok(Finished::Interrupted)) => s.interrupted += 1,
            Done::Implemented(Ok(Finished::RateLimited { .. })) => {}
            Done::Reviewed(Err(e)) | Done::Integrated(Err(e))
                if e.downcast_ref::<limits::RateLimited>().is_some() => {}
            Done::Implemented(Ok(Finished::Lost)) => s.lost += 1,
            Done::Reviewed(Ok(reviewed)) => match reviewed.verdict {
                Verdict::Approve => s.approved += 1,
                Verdict::Changes => s.changes_requested += 1,
            },
            Done::Integrated(Ok(entries)) => {
                for e in &entries {
                    match e.landing {
                        Landing::Merged { .. } => s.merged += 1,
                        Landing::Failed { .. } => s.sent_back += 1,
                        Landing::Waiting { .. } | Landing::Escalated { .. } => {}
                    }
                }
                if entries
                    .iter()
                    .any(|e| !matches!(e.landing, Landing::Waiting { .. }))
                {
                    // Something moved: the queue may have more to do.
                    self.queue_idle_at = None;
                }
            }
            Done::Progress => {}
            Done::Integrated(Err(e))
                if self.hub.is_some() && crate::git::remote::is_unreachable(&e) =>
            {
                // Not the work's fault: the pass runs again once the
                // remote is back.
                self.queue_idle_at = None;
                if let Some(hub) = &mut self.hub {
                    hub.lost(self.ctx, &e);
                }
            }
            Done::Implemented(Err(e)) | Done::Reviewed(Err(e)) | Done::Integrated(Err(e)) => {
                self.ctx.view.say(&format!("{label}: error: {e:#}"));
                s.errors.push(format!("{label}: {e:#}"));
            }
        }
    }
}

impl Scheduler<'_> {
    /// What a job's end means for budgets and rate limits: a rate-limited
    /// role pauses (and its work is tried again); a role that ran clean
    /// starts its backoff afresh; the task's spend is checked.
    fn after(&mut self, job: &Job, done: &Done) -> Result<()> {
        let limited =
            |e: &anyhow::Error| e.downcast_ref::<limits::RateLimited>().map(|r| r.0.clone());
        match (job, done) {
            (Job::Implement { task, .. }, Done::Implemented(result)) => {
                match result {
                    Ok(Finished::RateLimited { reason }) => {
                        self.rate_limited("implementer", reason)
                    }
                    Ok(Finished::Submitted { .. } | Finished::Failed { .. }) => {
                        self.ctx.ledger.clear_pause("implementer")
                    }
                    _ => {}
                }
                self.check_budgets(Some(task))?;
            }
            (Job::Review { key }, Done::Reviewed(result)) => {
                match result {
                    Err(e) => {
                        if let Some(why) = limited(e) {
                            self.rate_limited("reviewer", &why);
                            // Tried again once the pause is over.
                            let mine = format!("{key}@");
                            self.reviews_started
                                .retain(|k| k != key && !k.starts_with(&mine));
                        }
                    }
                    Ok(reviewed) => {
                        self.ctx.ledger.clear_pause("reviewer");
                        if let Some(task) = &reviewed.task {
                            self.check_budgets(Some(task))?;
                        }
                    }
                }
            }
            (Job::Integrate, Done::Integrated(result)) => match result {
                Err(e) => {
                    if let Some(why) = limited(e) {
                        self.rate_limited("integrator", &why);
                        self.queue_idle_at = None;
                    }
                }
                Ok(entries) => {
                    for entry in entries {
                        self.check_budgets(Some(&entry.task))?;
                    }
                }
            },
            _ => {}
        }
        Ok(())
    }
}

/// Whether a job ended without an error.
fn done_ok(done: &Done) -> bool {
    !matches!(
        done,
        Done::Implemented(Err(_)) | Done::Reviewed(Err(_)) | Done::Integrated(Err(_))
    )
}

fn sleep_unless_stopped(ctx: &Context, total: Duration) {
    let step = Duration::from_millis(100);
    let mut slept = Duration::ZERO;
    while slept < total && !ctx.stop.load(Ordering::Relaxed) {
        std::thread::sleep(step);
        slept += step;
    }
}

/// Why a queued review no longer applies, if it does not: each commit is
/// reviewed once, and a commit whose review could not matter is not
/// reviewed at all (a hook queued it; the work moved on meanwhile).
pub fn stale_review(
    ctx: &Context,
    item: &queue::Queued,
    tasks: &[crate::model::task::Task],
) -> Result<Option<String>> {
    let commit = item.key.as_str();
    let Ok(oid) = gix::ObjectId::from_hex(commit.as_bytes()) else {
        return Ok(Some("not a commit id".into()));
    };
    if !ctx.store.repo().has_object(oid) {
        return Ok(Some("the commit is gone from this repository".into()));
    }
    let target = &ctx.config.target;
    if crate::git::is_ancestor(
        ctx.store.work_dir(),
        commit,
        &format!("refs/heads/{target}"),
    )? {
        return Ok(Some(format!("it reached {target} already")));
    }
    if !ctx
        .store
        .note_lines(crate::store::notes::REVIEW, oid)?
        .is_empty()
    {
        return Ok(Some("it has a verdict already".into()));
    }
    let task = item.payload.get("task").and_then(|t| t.as_str());
    if let Some(task) = task.and_then(|id| tasks.iter().find(|t| t.id == id)) {
        if task.state.is_terminal() {
            return Ok(Some(format!("task {} is {}", task.id, task.state)));
        }
        if let (State::InReview, Some(head)) = (task.state, task.head.as_deref()) {
            if crate::git::is_ancestor(ctx.store.work_dir(), commit, head)? {
                return Ok(Some(format!("the review of task {} covers it", task.id)));
            }
        }
    }
    Ok(None)
}

/// Whether the task a queued review names is still being worked on.
fn task_still_in_progress(item: &queue::Queued, tasks: &[crate::model::task::Task]) -> bool {
    let task = item.payload.get("task").and_then(|t| t.as_str());
    tasks
        .iter()
        .any(|t| Some(t.id.as_str()) == task && t.state == State::InProgress)
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

/// Who holds the queue's lease in a hub's own run.
fn queue_holder() -> String {
    format!("hub@{}:{}", hostname(), std::process::id())
}
