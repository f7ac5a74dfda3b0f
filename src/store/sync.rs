//! `git agent sync`: the agent refs and notes of this clone and a remote,
//! made one.
//!
//! The remote's refs are fetched into `refs/agent-remotes/<remote>/` (its
//! notes under `.../notes/`). Then, ref by ref: what only one side has goes
//! to the other; where one side is behind it moves forward; diverged task
//! chains get a merge commit with both tips as parents whose snapshot is
//! the fold of the union of both logs (DESIGN.md §3, [`crate::model::merge`]),
//! where the remote's side is the one whose pushes landed; diverged notes
//! merge by union. A lease follows its task: the side whose lease names the
//! task's holder wins, and a task no longer in progress has none. A task's
//! work branch `agent/<id>` goes along where the task's log names it as the
//! submitted head, or where its attempt has ended and it only adds to the
//! remote's (fetched to `refs/remotes/<remote>/agent/`). The remote
//! moves by one atomic push with an exact lease per ref; where anyone else
//! pushed in between, nothing lands, and the round starts again from a fetch.

use anyhow::{bail, Context, Result};
use gix::ObjectId;
use std::collections::{BTreeMap, BTreeSet};

use super::objects::{find, message, read_file, write_tree, Batch};
use super::{Lease, Store, LEASES_PREFIX, PLANS_PREFIX, TASKS_PREFIX};
use crate::git::refs::Edit;
use crate::git::remote::{self, PushRef, Pushed};
use crate::model::merge::{lost_claims, Log};
use crate::model::task::{Event, State, Task};

/// The notes refs that travel with the agent refs.
pub const NOTES_REFS: [&str; 3] = [
    "refs/notes/agent",
    "refs/notes/agent-review",
    "refs/notes/agent-ci",
];

/// How many rounds a sync tries before it gives up on a busy remote.
const ROUNDS: u32 = 12;

/// Where the work branches live: `agent/<task-id>`.
const BRANCHES_PREFIX: &str = "refs/heads/agent/";

/// Where the work branches of `remote` are fetched to, as a plain `git
/// fetch` of it would put them.
pub fn remote_branches(remote: &str) -> String {
    format!("refs/remotes/{remote}/agent/")
}

/// The namespace the refs of `remote` are fetched into.
pub fn remote_namespace(remote: &str) -> String {
    format!("refs/agent-remotes/{remote}/")
}

/// The fetch refspecs of the agent refs and notes of `remote`, into
/// [`remote_namespace`]: what a sync fetches, and what `init --remote` puts
/// in `remote.<remote>.fetch` so that a plain `git fetch` fills the same refs.
pub fn fetch_refspecs(remote: &str) -> [String; 2] {
    let ns = remote_namespace(remote);
    [
        format!("+refs/agent/*:{ns}*"),
        format!("+refs/notes/agent*:{ns}notes/agent*"),
    ]
}

/// One ref that a sync moved, for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Moved {
    pub name: String,
    pub how: &'static str,
}

/// What one side holds of one ref.
struct Pair {
    local: Option<ObjectId>,
    remote: Option<ObjectId>,
}

/// The plan of one round: what to push, what to move here, and the report.
#[derive(Default)]
struct Round {
    push: Vec<PushRef>,
    local: Vec<Edit>,
    moved: Vec<Moved>,
    /// Task id -> the tip its chain has once the round lands.
    tips: BTreeMap<String, ObjectId>,
}

impl Round {
    fn push(&mut self, name: &str, new: Option<ObjectId>, expected: Option<ObjectId>) {
        self.push.push(PushRef {
            name: name.to_string(),
            new: new.map(|o| o.to_string()),
            expected: expected.map(|o| o.to_string()),
        });
    }

    fn moved(&mut self, name: &str, how: &'static str) {
        self.moved.push(Moved {
            name: name.to_string(),
            how,
        });
    }
}

impl Store {
    /// Sync the agent refs and notes with `remote`; returns what moved, on
    /// either side (empty: both sides already held the same).
    pub fn sync(&self, remote: &str) -> Result<Vec<Moved>> {
        let ns = remote_namespace(remote);
        // What init --remote makes git fetch, and the work branches,
        // which only a sync brings (a plain fetch leaves them on the hub).
        let [tasks, notes] = fetch_refspecs(remote);
        let refspecs = [
            tasks,
            notes,
            format!("+{BRANCHES_PREFIX}*:{}*", remote_branches(remote)),
        ];
        let refspecs: Vec<&str> = refspecs.iter().map(String::as_str).collect();
        // What earlier rounds moved: a round whose push landed but whose
        // local moves lost a race still moved the remote.
        let mut moved: Vec<Moved> = Vec::new();
        let report = |mut more: Vec<Moved>, moved: &mut Vec<Moved>| {
            more.retain(|m| !moved.contains(m));
            moved.extend(more);
        };
        for round in 1..=ROUNDS {
            remote::fetch(self.work_dir(), remote, &refspecs)?;
            let plan = self.plan_round(remote, &ns)?;
            match remote::push_atomic(self.work_dir(), remote, &plan.push)? {
                Pushed::Landed => {
                    let pushed: Vec<Moved> = plan
                        .moved
                        .iter()
                        .filter(|m| plan.push.iter().any(|p| p.name == m.name))
                        .cloned()
                        .collect();
                    report(pushed, &mut moved);
                }
                // No later round can land what the remote will not take.
                Pushed::Rejected(why) if remote::refused_for_good(&why) => {
                    bail!("{remote} refuses the agent refs: {why}")
                }
                Pushed::Rejected(why) if round < ROUNDS => {
                    let _ = why;
                    super::tasks::backoff(round * 8);
                    continue;
                }
                Pushed::Rejected(why) => {
                    bail!("{remote} refused the push {ROUNDS} times, the last: {why}")
                }
            }
            if plan.local.is_empty() {
                report(plan.moved, &mut moved);
                return Ok(moved);
            }
            match self.transact(&plan.local, &format!("sync with {remote}")) {
                Ok(()) => {
                    report(plan.moved, &mut moved);
                    return Ok(moved);
                }
                // Something here moved meanwhile (a claim, an event): what
                // was pushed stands; the next round brings the rest.
                Err(e) if e.is_lost_race() && round < ROUNDS => {
                    super::tasks::backoff(round * 8);
                }
                Err(e) => return Err(e).context("moving the local agent refs"),
            }
        }
        bail!("sync with {remote} did not settle in {ROUNDS} rounds")
    }

    /// Decide one round from the refs as they are now on both sides.
    fn plan_round(&self, remote: &str, ns: &str) -> Result<Round> {
        let mut round = Round::default();
        let mut batch = Batch::new(&self.repo);
        for (id, pair) in self.pairs(TASKS_PREFIX, &format!("{ns}tasks/"))? {
            let name = format!("{TASKS_PREFIX}{id}");
            let tip = self.chain(&mut round, &mut batch, &name, &pair, |store, b, l, r| {
                Ok(Some((store.merge_task(b, &id, l, r, remote)?, true)))
            })?;
            if let Some(tip) = tip {
                round.tips.insert(id, tip);
            }
        }
        for (id, pair) in self.pairs(PLANS_PREFIX, &format!("{ns}plans/"))? {
            let name = format!("{PLANS_PREFIX}{id}");
            // Plan chains are written once, by `plan`, and never race: a
            // diverged one is reported and left as it is on both sides.
            self.chain(&mut round, &mut batch, &name, &pair, |_, _, _, _| Ok(None))?;
        }
        for name in NOTES_REFS {
            let short = name.trim_start_matches("refs/notes/");
            let tracking = format!("{ns}notes/{short}");
            let pair = Pair {
                local: self.find_ref(name)?,
                remote: self.find_ref(&tracking)?,
            };
            self.chain(&mut round, &mut batch, name, &pair, |store, _, _, _| {
                remote::notes_merge_union(store.work_dir(), name, &tracking)?;
                // The merge moved the local notes ref itself; push that.
                let merged = store.find_ref(name)?.context("notes merge left no ref")?;
                Ok(Some((merged, false)))
            })?;
        }
        // Stored before the leases and branches are judged by the merged
        // snapshots; a round that never lands leaves them as harmless garbage.
        batch.write(&self.repo)?;
        self.plan_leases(&mut round, &format!("{ns}leases/"))?;
        self.plan_branches(&mut round, remote)?;
        Ok(round)
    }

    /// Every id under `local_prefix` here or `remote_prefix` (the fetched
    /// copy), with both sides' objects.
    fn pairs(&self, local_prefix: &str, remote_prefix: &str) -> Result<BTreeMap<String, Pair>> {
        let mut pairs: BTreeMap<String, Pair> = BTreeMap::new();
        for (id, oid) in self.refs_under(local_prefix)? {
            pairs.insert(
                id,
                Pair {
                    local: Some(oid),
                    remote: None,
                },
            );
        }
        for (id, oid) in self.refs_under(remote_prefix)? {
            pairs
                .entry(id)
                .or_insert(Pair {
                    local: None,
                    remote: None,
                })
                .remote = Some(oid);
        }
        Ok(pairs)
    }

    /// Plan the moves of one chain ref (a task, a plan, a notes ref); returns
    /// its tip once the round lands. `merge` makes the commit that joins two
    /// diverged tips, and says whether the local ref still has to move to
    /// it (`None`: they are left diverged).
    fn chain(
        &self,
        round: &mut Round,
        batch: &mut Batch,
        name: &str,
        pair: &Pair,
        mut merge: impl FnMut(
            &Store,
            &mut Batch,
            ObjectId,
            ObjectId,
        ) -> Result<Option<(ObjectId, bool)>>,
    ) -> Result<Option<ObjectId>> {
        let dir = self.work_dir();
        let ancestor =
            |a: ObjectId, b: ObjectId| crate::git::is_ancestor(dir, &a.to_string(), &b.to_string());
        match (pair.local, pair.remote) {
            (None, None) => Ok(None),
            (Some(l), Some(r)) if l == r => Ok(Some(l)),
            (Some(l), None) => {
                round.push(name, Some(l), None);
                round.moved(name, "pushed");
                Ok(Some(l))
            }
            (None, Some(r)) => {
                round.local.push(Edit::create(name, r));
                round.moved(name, "fetched");
                Ok(Some(r))
            }
            (Some(l), Some(r)) if ancestor(r, l)? => {
                round.push(name, Some(l), Some(r));
                round.moved(name, "pushed");
                Ok(Some(l))
            }
            (Some(l), Some(r)) if ancestor(l, r)? => {
                round.local.push(Edit::set(name, r, Some(l)));
                round.moved(name, "fast-forwarded");
                Ok(Some(r))
            }
            (Some(l), Some(r)) => match merge(self, batch, l, r)? {
                Some((m, move_local)) => {
                    round.push(name, Some(m), Some(r));
                    if move_local {
                        round.local.push(Edit::set(name, m, Some(l)));
                    }
                    round.moved(name, "merged");
                    Ok(Some(m))
                }
                None => {
                    round.moved(name, "diverged, left as it is");
                    Ok(Some(l))
                }
            },
        }
    }

    /// The log of the task chain at `tip`: every event on every path to
    /// the root, and every voided id recorded by a merge on the way.
    pub(super) fn log_at(&self, tip: ObjectId) -> Result<Log> {
        let mut events: Vec<Event> = Vec::new();
        let mut void: Vec<String> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut todo = vec![tip];
        while let Some(commit) = todo.pop() {
            if !seen.insert(commit) {
                continue;
            }
            if let Some(bytes) = read_file(&self.repo, commit, "event.json")? {
                events.push(
                    serde_json::from_slice(&bytes)
                        .with_context(|| format!("event.json of {commit}"))?,
                );
            }
            if let Some(bytes) = read_file(&self.repo, commit, "void.json")? {
                let ids: Vec<String> = serde_json::from_slice(&bytes)
                    .with_context(|| format!("void.json of {commit}"))?;
                void.extend(ids);
            }
            let object = find(&self.repo, commit)?
                .try_into_commit()
                .with_context(|| format!("reading commit {commit}"))?;
            todo.extend(object.parent_ids().map(|p| p.detach()));
        }
        Ok(Log::new(events, void))
    }

    /// The merge commit of task `id`'s diverged tips: parents the remote's
    /// tip (whose pushes landed) and ours; tree the fold of both logs, and
    /// the ids the merge voids.
    fn merge_task(
        &self,
        batch: &mut Batch,
        id: &str,
        local: ObjectId,
        landed: ObjectId,
        remote: &str,
    ) -> Result<ObjectId> {
        let ours = self.log_at(local)?;
        let theirs = self.log_at(landed)?;
        let lost = lost_claims(&theirs, &ours);
        let log = theirs.merge(&ours).with_void(lost);
        let task: Task = log
            .snapshot(id)
            .map_err(|e| anyhow::anyhow!("task {id}: merging with {remote}: {e}"))?;
        let task_json = serde_json::to_vec_pretty(&task)?;
        let void: Vec<&String> = log.void().iter().collect();
        let void_json = serde_json::to_vec_pretty(&void)?;
        let tree = write_tree(
            batch,
            &[("task.json", &task_json), ("void.json", &void_json)],
        )?;
        let signature = self.signature()?;
        let msg = message(
            &format!("synced: {}", task.title),
            Some(&format!(
                "The logs of {remote} and this clone, merged: {} events, {} void.",
                log.ordered().len(),
                void.len()
            )),
            &[
                ("Agent-Task", id.to_string()),
                ("Agent-Event", "synced".to_string()),
                ("Agent-Lamport", task.lamport.to_string()),
            ],
        );
        batch.put(&gix::objs::Commit {
            tree,
            parents: vec![landed, local].into(),
            author: signature.clone(),
            committer: signature,
            encoding: None,
            message: msg.into(),
            extra_headers: Vec::new(),
        })
    }

    /// Plan the pushes of work branches, in the same atomic push as the task
    /// refs, so that no clone ever sees a submitted head it cannot fetch. A
    /// branch goes where the task's log names its tip as the head (after
    /// each attempt, over whatever the remote held: the log says which work
    /// counts), or where the task is no longer in progress and the branch
    /// only adds to the remote's. Each push has a lease on the remote's exact
    /// old value. Branches here are never moved (a worktree may have one
    /// checked out): the remote's stay under [`remote_branches`].
    fn plan_branches(&self, round: &mut Round, remote: &str) -> Result<()> {
        let theirs: BTreeMap<String, ObjectId> = self
            .refs_under(&remote_branches(remote))?
            .into_iter()
            .collect();
        for (id, local) in self.refs_under(BRANCHES_PREFIX)? {
            let there = theirs.get(&id).copied();
            let Some(tip) = round.tips.get(&id) else {
                continue;
            };
            if there == Some(local) {
                continue;
            }
            let task = self.snapshot_at(&id, *tip)?;
            let named = task.head.as_deref() == Some(local.to_string().as_str());
            let ended = task.state != State::InProgress && !task.state.is_terminal();
            let adds = match there {
                None => true,
                Some(r) => {
                    crate::git::is_ancestor(self.work_dir(), &r.to_string(), &local.to_string())?
                }
            };
            if named || (ended && adds) {
                let name = format!("{BRANCHES_PREFIX}{id}");
                round.push(&name, Some(local), there);
                round.moved(&name, "pushed");
            }
        }
        Ok(())
    }

    /// Plan the leases: each follows its task as the round leaves it.
    fn plan_leases(&self, round: &mut Round, remote_prefix: &str) -> Result<()> {
        for (id, pair) in self.pairs(LEASES_PREFIX, remote_prefix)? {
            let name = format!("{LEASES_PREFIX}{id}");
            if pair.local == pair.remote {
                continue;
            }
            let holder = match round.tips.get(&id) {
                Some(tip) => {
                    let task = self.snapshot_at(&id, *tip)?;
                    (task.state == State::InProgress)
                        .then_some(task.assignee)
                        .flatten()
                }
                None => None,
            };
            let holds = |oid: Option<ObjectId>| -> Result<Option<Lease>> {
                let Some(oid) = oid else { return Ok(None) };
                let blob = find(&self.repo, oid)?;
                Ok(serde_json::from_slice::<Lease>(&blob.data).ok())
            };
            let (mine, theirs) = (holds(pair.local)?, holds(pair.remote)?);
            let names = |l: &Option<Lease>| {
                l.as_ref()
                    .is_some_and(|l| Some(&l.holder) == holder.as_ref())
            };
            // The lease that names the holder; both do: the later expiry
            // (the holder renewed it on one side).
            let keep = match (names(&mine), names(&theirs)) {
                (true, true) => {
                    let later = |l: &Option<Lease>| l.as_ref().map(|l| l.expires.clone());
                    if later(&mine) >= later(&theirs) {
                        pair.local
                    } else {
                        pair.remote
                    }
                }
                (true, false) => pair.local,
                (false, true) => pair.remote,
                (false, false) if holder.is_none() => None,
                // Neither names the holder: not ours to judge.
                (false, false) => continue,
            };
            if keep != pair.remote {
                round.push(&name, keep, pair.remote);
                round.moved(
                    &name,
                    if keep.is_some() {
                        "pushed"
                    } else {
                        "released there"
                    },
                );
            }
            if keep != pair.local {
                round.local.push(match (keep, pair.local) {
                    (Some(k), old) => Edit::set(&name, k, old),
                    (None, Some(old)) => Edit::delete(&name, old),
                    (None, None) => continue,
                });
                round.moved(
                    &name,
                    if keep.is_some() {
                        "fetched"
                    } else {
                        "released here"
                    },
                );
            }
        }
        Ok(())
    }
}

impl Store {
    /// Claim task `id` against `remote`: the claim counts only once the
    /// push of the task ref and its lease lands. Where someone else's claim
    /// landed first, the sync that follows voids ours (the merge of logs
    /// keeps the claim whose push landed), and the winner's lease is
    /// returned as `Held`. `fresh`: the caller synced just now.
    pub fn claim_remote(
        &self,
        id: &str,
        request: &super::lease::ClaimRequest,
        remote: &str,
        fresh: bool,
    ) -> Result<super::lease::ClaimOutcome> {
        use super::lease::ClaimOutcome;
        if !fresh {
            self.sync(remote)?;
        }
        let outcome = self.claim(id, request)?;
        if !matches!(outcome, ClaimOutcome::Claimed(_)) {
            return Ok(outcome);
        }
        self.sync(remote)?;
        let record = self.load(id)?;
        let lease = self.lease(id)?;
        let ours = record.task.state == State::InProgress
            && record.task.assignee.as_deref() == Some(request.actor.as_str())
            && lease
                .as_ref()
                .is_some_and(|(l, _)| l.holder == request.actor);
        Ok(match (ours, lease) {
            (true, _) => ClaimOutcome::Claimed(Box::new(record)),
            (false, Some((lease, _))) => ClaimOutcome::Held(lease),
            (false, None) => ClaimOutcome::NotClaimable(format!(
                "task {id} is {} after the sync with {remote}: another claim landed first",
                record.task.state
            )),
        })
    }
}
