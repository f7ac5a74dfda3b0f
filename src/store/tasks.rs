//! Task chains: create, read, and append events with compare-and-swap.

use anyhow::{Context, Result};
use gix::ObjectId;
use std::time::Duration;

use super::objects::{message, read_file, write_commit, write_tree, Batch};
use super::{resolve_prefix, Store, StoreError, TaskJson, LEASES_PREFIX, TASKS_PREFIX};
use crate::git::refs::{Edit, RefError, Retries};
use crate::model::id;
use crate::model::span::Span;
use crate::model::task::{apply, Change, Event, NewTask, State, Task};

/// A task as read from its ref: the snapshot and the commit it came from.
#[derive(Debug, Clone)]
pub struct TaskRecord {
    pub task: Task,
    pub tip: ObjectId,
}

/// An event to append, before the store gives it an id, a time and a clock.
#[derive(Debug, Clone)]
pub struct Draft {
    pub change: Change,
    pub actor: String,
    pub role: String,
}

impl Store {
    /// Every task ref with its tip, in id order.
    pub fn task_refs(&self) -> Result<Vec<(String, ObjectId)>> {
        self.refs_under(TASKS_PREFIX)
    }

    /// The full id of the task named by `prefix` (a unique prefix, as git
    /// accepts for hashes).
    pub fn resolve(&self, prefix: &str) -> Result<String> {
        if id::is_valid_name(prefix) {
            let refs = self.task_refs()?;
            match resolve_prefix(&refs, prefix) {
                Err(StoreError::NoSuchTask(_)) => {}
                found => return Ok(found?),
            }
        }
        match self.resolve_key(prefix)? {
            Some(id) => Ok(id),
            None if id::is_valid_name(prefix) || prefix.contains(':') => {
                Err(StoreError::NoSuchTask(prefix.to_string()).into())
            }
            None => Err(StoreError::InvalidId(prefix.to_string()).into()),
        }
    }

    /// The task a plan key names: `<key>` where one plan has it, or
    /// `<plan>:<key>` (the plan by id or unique prefix). `None`: no plan has it.
    fn resolve_key(&self, name: &str) -> Result<Option<String>> {
        let (plan, key) = match name.split_once(':') {
            Some((plan, key)) => (Some(plan), key),
            None => (None, name),
        };
        let mut found: Vec<(String, String)> = Vec::new();
        for (plan_id, tip) in self.refs_under(super::PLANS_PREFIX)? {
            if plan.is_some_and(|p| !plan_id.starts_with(p)) {
                continue;
            }
            let Some(bytes) = read_file(&self.repo, tip, "plan.json")? else {
                continue;
            };
            let snapshot: serde_json::Value = serde_json::from_slice(&bytes)?;
            let ids = snapshot["tasks"].as_array().into_iter().flatten();
            for task in ids.filter(|t| t["key"] == key) {
                if let Some(id) = task["id"].as_str() {
                    found.push((plan_id.clone(), id.to_string()));
                }
            }
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop().map(|(_, id)| id)),
            _ => Err(StoreError::Ambiguous {
                prefix: name.to_string(),
                matches: found
                    .iter()
                    .map(|(plan, id)| format!("{plan}:{key} ({id})"))
                    .collect(),
            }
            .into()),
        }
    }

    /// Read one task by its full id.
    pub fn load(&self, id: &str) -> Result<TaskRecord> {
        let name = format!("{TASKS_PREFIX}{id}");
        let tip = self
            .find_ref(&name)?
            .ok_or_else(|| StoreError::NoSuchTask(id.to_string()))?;
        Ok(TaskRecord {
            task: self.snapshot_at(id, tip)?,
            tip,
        })
    }

    /// The snapshot stored in the event commit `tip` of task `id`.
    pub(super) fn snapshot_at(&self, id: &str, tip: ObjectId) -> Result<Task> {
        let bytes = read_file(&self.repo, tip, "task.json")?
            .with_context(|| format!("task {id}: commit {tip} has no task.json"))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("task {id}: task.json of {tip} is not a task"))
    }

    /// Every task, in id order, from the derived cache where it still
    /// matches the ref tips.
    pub fn load_all(&self) -> Result<Vec<Task>> {
        self.load_json()?
            .into_iter()
            // A damaged cache entry costs a read of the objects, never an answer.
            .map(|t| t.task().or_else(|_| self.snapshot_at(&t.summary.id, t.tip)))
            .collect()
    }

    /// Every task as its summary and snapshot JSON, in id order: what the
    /// board and `--json` output need, without parsing every snapshot.
    pub fn load_json(&self) -> Result<Vec<TaskJson>> {
        super::cache::load(self)
    }

    /// The events of a task in fold order (lamport, actor, id): oldest
    /// first along one chain, and both sides' events once where a sync
    /// merged two.
    pub fn events(&self, id: &str) -> Result<Vec<Event>> {
        let log = self.log_at(self.load(id)?.tip)?;
        Ok(log.ordered().into_iter().cloned().collect())
    }

    /// Create one task with a fresh id; returns its first snapshot.
    pub fn create(&self, new: NewTask, actor: &str, role: &str) -> Result<Task> {
        loop {
            let mut batch = Batch::new(&self.repo);
            let id = id::generate("t", id::RANDOM_LEN);
            let (edit, task) = self.prepare_create(&mut batch, id, new.clone(), actor, role)?;
            batch.write(&self.repo)?;
            match self.transact(&[edit], "created") {
                Ok(()) => return Ok(task),
                // A clash of random ids: draw another.
                Err(RefError::Exists { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Add the first event of task `id` to `batch` and return the ref edit
    /// that creates it ("must not exist"), for the caller to commit, alone or
    /// in a transaction with others, once the batch is written.
    pub(super) fn prepare_create(
        &self,
        batch: &mut Batch,
        id: String,
        new: NewTask,
        actor: &str,
        role: &str,
    ) -> Result<(Edit, Task)> {
        let draft = Draft {
            change: Change::Created(new),
            actor: actor.to_string(),
            role: role.to_string(),
        };
        let (task, tip) = self.write_chain(batch, &id, None, &[draft], &[])?;
        Ok((Edit::create(format!("{TASKS_PREFIX}{id}"), tip), task))
    }

    /// Append events to a task, re-reading and recomputing them after a lost
    /// race. `decide` sees the current record and returns the events to add
    /// (none: nothing is written) and any ref edits that must land in the same
    /// transaction; its error ends the loop.
    pub fn update<F>(&self, id: &str, decide: F) -> Result<TaskRecord>
    where
        F: FnMut(&TaskRecord) -> Result<(Vec<Draft>, Vec<Edit>)>,
    {
        self.update_timed(id, &[], decide)
    }

    /// [`Store::update`] where the last event written carries `spans`: when
    /// the work it accounts for ran (see [`crate::model::span`]).
    pub fn update_timed<F>(&self, id: &str, spans: &[Span], mut decide: F) -> Result<TaskRecord>
    where
        F: FnMut(&TaskRecord) -> Result<(Vec<Draft>, Vec<Edit>)>,
    {
        self.update_spanned(id, spans, |current, _| decide(current))
    }

    /// [`Store::update`] where `decide` may also add objects that its ref
    /// edits point at, to be stored with the events.
    pub(super) fn update_with<F>(&self, id: &str, decide: F) -> Result<TaskRecord>
    where
        F: FnMut(&TaskRecord, &mut Batch) -> Result<(Vec<Draft>, Vec<Edit>)>,
    {
        self.update_spanned(id, &[], decide)
    }

    fn update_spanned<F>(&self, id: &str, spans: &[Span], mut decide: F) -> Result<TaskRecord>
    where
        F: FnMut(&TaskRecord, &mut Batch) -> Result<(Vec<Draft>, Vec<Edit>)>,
    {
        let mut retries = Retries::default();
        loop {
            let current = self.load(id)?;
            let mut batch = Batch::new(&self.repo);
            let (drafts, extra) = decide(&current, &mut batch)?;
            if drafts.is_empty() && extra.is_empty() {
                return Ok(current);
            }
            let prev = Some((&current.task, current.tip));
            let (task, tip) = self.write_chain(&mut batch, id, prev, &drafts, spans)?;
            batch.write(&self.repo)?;
            let mut edits = extra;
            let lease_ref = format!("{LEASES_PREFIX}{id}");
            if task.state != State::InProgress && !edits.iter().any(|e| e.name == lease_ref) {
                edits.extend(self.lease_cleanup(id)?);
            }
            let kinds: Vec<&str> = drafts.iter().map(|d| d.change.kind()).collect();
            let task_ref = format!("{TASKS_PREFIX}{id}");
            edits.push(Edit::set(task_ref, tip, Some(current.tip)));
            match self.transact(&edits, &kinds.join(", ")) {
                Ok(()) => return Ok(TaskRecord { task, tip }),
                // Lost a race, or git gave up waiting for a lock: re-read,
                // decide again. Every edit here was decided on what was just
                // read, so a ref that exists (or is gone) where `decide` saw
                // otherwise was moved by a racer too.
                Err(e) if retries.again(&e) => backoff(retries.tries()),
                Err(e) => {
                    return Err(e).with_context(|| format!("task {id} (after {retries:?})"));
                }
            }
        }
    }

    /// Add the commits for `drafts` on top of `prev` to `batch` and return
    /// the final snapshot and commit; the last event carries `spans`.
    /// Refuses what the state machine refuses.
    fn write_chain(
        &self,
        batch: &mut Batch,
        id: &str,
        prev: Option<(&Task, ObjectId)>,
        drafts: &[Draft],
        spans: &[Span],
    ) -> Result<(Task, ObjectId)> {
        let signature = self.signature()?;
        let at = super::now();
        let mut task = prev.map(|(t, _)| t.clone());
        let mut tip = prev.map(|(_, tip)| tip);
        for (i, draft) in drafts.iter().enumerate() {
            let last = i + 1 == drafts.len();
            crate::model::text::actor(&draft.actor).map_err(StoreError::Refused)?;
            let event = Event {
                id: id::generate("e", 10),
                change: draft.change.clone(),
                at: at.clone(),
                actor: draft.actor.clone(),
                role: draft.role.clone(),
                attempt: task.as_ref().map_or(0, |t| t.attempts + 1),
                lamport: task.as_ref().map_or(1, |t| t.lamport + 1),
                spans: if last { spans.to_vec() } else { Vec::new() },
            };
            let next = apply(task.as_ref(), &event, id)
                .map_err(|e| StoreError::Refused(format!("task {id}: {e}")))?;
            let event_json = serde_json::to_vec_pretty(&event)?;
            let task_json = serde_json::to_vec_pretty(&next)?;
            let tree = write_tree(
                batch,
                &[("event.json", &event_json), ("task.json", &task_json)],
            )?;
            let msg = event_message(&next, &event);
            tip = Some(write_commit(batch, &signature, tree, tip, msg)?);
            task = Some(next);
        }
        Ok((
            task.context("no events to write")?,
            tip.context("no events to write")?,
        ))
    }
}

/// Sleep a little longer after each lost race, with jitter so that racing
/// processes spread out instead of colliding again in step.
pub(super) fn backoff(attempt: u32) {
    let base = 1 + u64::from(attempt.min(20));
    let jitter =
        u64::from(std::process::id() % 7) + (id::generate("j", 1).as_bytes()[2] as u64 % 5);
    std::thread::sleep(Duration::from_millis(base + jitter));
}

/// The commit message of an event: `<kind>: <title>`, what it carries, trailers.
fn event_message(task: &Task, event: &Event) -> String {
    let body = match &event.change {
        Change::Created(new) => Some(new.spec.clone()),
        Change::Claimed { assignee } => Some(format!("Claimed by {assignee}.")),
        Change::Released { reason } => reason.clone(),
        Change::Failed {
            reason, log_tail, ..
        } => Some(match log_tail {
            Some(tail) => format!("{reason}\n\n{tail}"),
            None => reason.clone(),
        }),
        Change::Submitted { head, branch, .. } => Some(match branch {
            Some(b) => format!("Submitted {b} at {head}."),
            None => format!("Submitted {head}."),
        }),
        Change::Reviewed {
            verdict,
            head,
            summary,
            ..
        } => Some(format!(
            "Verdict {} on {head}.\n\n{}",
            serde_json::to_value(verdict)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            summary.as_deref().unwrap_or("")
        )),
        Change::IntegrationFailed { reason, detail, .. } => {
            Some(format!("{reason}\n\n{}", detail.as_deref().unwrap_or("")))
        }
        Change::Merged { commit, .. } => commit.as_ref().map(|c| format!("Merged as {c}.")),
        Change::Escalated { reason, .. } => Some(reason.clone()),
        Change::Resolved { message, .. } => message.clone(),
        Change::Edited(edit) => serde_json::to_string(edit).ok(),
    };
    let subject = format!("{}: {}", event.change.kind(), task.title);
    message(
        &subject,
        body.as_deref(),
        &[
            ("Agent-Task", task.id.clone()),
            ("Agent-Event", event.change.kind().to_string()),
            ("Agent-Role", event.role.clone()),
            ("Agent-Actor", event.actor.clone()),
            ("Agent-Attempt", event.attempt.to_string()),
            ("Agent-Lamport", event.lamport.to_string()),
        ],
    )
}
