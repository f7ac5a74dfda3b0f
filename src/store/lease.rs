//! Claims and their leases: `refs/agent/leases/<task-id>` -> a blob
//! `{holder, pid, host, expires}`.
//!
//! A claim moves the task ref (open -> in_progress) and creates the lease ref
//! in one transaction, so any number of racing claimers see exactly one
//! winner. A lease holds until it expires, whoever made the claim and however
//! short-lived that caller was; only a lease that names a process (the agents
//! `git agent run` supervises, or `claim --pid`) also ends when that process
//! is gone from this host. A dead lease can be taken over: the taker records
//! `released` and `claimed` in one write.

use anyhow::{Context, Result};
use gix::ObjectId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

use super::objects::Batch;
use super::{Draft, Store, TaskRecord, LEASES_PREFIX};
use crate::git::refs::{Edit, Retries};
use crate::model::board::Board;
use crate::model::task::{is_ready, start_order, Change, Standing, State};

/// Who holds a claimed task, and until when.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Lease {
    pub holder: String,
    /// The process the claim is tied to, if any: `null` for a claim that
    /// lasts until it expires or is released.
    #[serde(default)]
    pub pid: Option<u32>,
    pub host: String,
    /// RFC 3339 time after which anyone may take the task over.
    pub expires: String,
}

impl Lease {
    /// Whether the lease still protects its task: not expired, and, when it
    /// is tied to a process of this host, that process still running.
    pub fn is_live(&self) -> bool {
        let expired = self
            .expires
            .parse::<jiff::Timestamp>()
            .map_or(true, |t| t <= jiff::Timestamp::now());
        !expired && self.gone_process().is_none()
    }

    /// The process the lease is tied to, when it is known to be gone: it ran
    /// on this host and runs no more. Across hosts only expiry counts.
    fn gone_process(&self) -> Option<u32> {
        self.pid
            .filter(|pid| self.host == hostname() && !pid_is_running(*pid))
    }

    /// Who holds the lease and until when, for messages.
    pub fn describe(&self) -> String {
        match self.pid {
            Some(pid) => format!(
                "{} (pid {pid} on {}, until {})",
                self.holder, self.host, self.expires
            ),
            None => format!("{} (on {}, until {})", self.holder, self.host, self.expires),
        }
    }

    /// Why the lease no longer protects its task, for the event that takes it over.
    fn why_dead(&self) -> String {
        if let Some(pid) = self.gone_process() {
            format!(
                "lease of {} taken back: process {pid} on {} is gone",
                self.holder, self.host
            )
        } else {
            format!(
                "lease of {} taken back: it expired at {}",
                self.holder, self.expires
            )
        }
    }
}

/// How long a lease holds unless renewed: the default of `claim --ttl`, and
/// what `git agent run` and `work` claim for, renewing it while their agent
/// runs.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 60);

/// Keeps a lease renewed while it lives: a thread renews it every third of
/// its ttl, and stops when this is dropped or the lease is no longer ours.
pub struct Renewer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Renewer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a claim asks for.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub actor: String,
    pub role: String,
    /// The process the lease is tied to: when it is gone from this host, so
    /// is the claim. `None`: the claim holds until it expires or is released.
    pub pid: Option<u32>,
    pub ttl: Duration,
}

/// How a claim ended.
#[derive(Debug)]
pub enum ClaimOutcome {
    Claimed(Box<TaskRecord>),
    /// Someone else holds a live lease.
    Held(Lease),
    /// The task cannot be claimed in its state (or its dependencies are not merged).
    NotClaimable(String),
}

impl Store {
    /// The lease of task `id` and the blob it points at, if there is one.
    pub fn lease(&self, id: &str) -> Result<Option<(Lease, ObjectId)>> {
        let name = format!("{LEASES_PREFIX}{id}");
        let Some(oid) = self.find_ref(&name)? else {
            return Ok(None);
        };
        let blob =
            super::objects::find(&self.repo, oid).with_context(|| format!("reading {name}"))?;
        let lease =
            serde_json::from_slice(&blob.data).with_context(|| format!("{name} holds no lease"))?;
        Ok(Some((lease, oid)))
    }

    /// Every task's lease, by task id, from one listing of the lease refs
    /// (a board of thousands of running tasks is one `for-each-ref`, not
    /// one per task). A lease ref whose blob is not a lease is left out.
    pub fn leases(&self) -> Result<HashMap<String, Lease>> {
        let mut leases = HashMap::new();
        for (id, oid) in self.refs_under(LEASES_PREFIX)? {
            let blob = super::objects::find(&self.repo, oid)
                .with_context(|| format!("reading {LEASES_PREFIX}{id}"))?;
            if let Ok(lease) = serde_json::from_slice::<Lease>(&blob.data) {
                leases.insert(id, lease);
            }
        }
        Ok(leases)
    }

    /// Claim task `id` atomically: exactly one of any number of racing
    /// claimers gets `Claimed`.
    pub fn claim(&self, id: &str, request: &ClaimRequest) -> Result<ClaimOutcome> {
        let mut refused = None;
        let record = self.update_with(id, |current, batch| {
            refused = None;
            let task = &current.task;
            let lease = self.lease(id)?;
            let mut drafts = Vec::new();
            match task.state {
                State::Open => {
                    let blocked: Vec<&String> = task
                        .depends_on
                        .iter()
                        .filter(|d| !self.is_merged(d))
                        .collect();
                    if !is_ready(task, |d| !blocked.iter().any(|b| *b == d)) {
                        let names: Vec<&str> = blocked.iter().map(|s| s.as_str()).collect();
                        refused = Some(ClaimOutcome::NotClaimable(format!(
                            "task {id} is blocked: waiting for {}",
                            names.join(", ")
                        )));
                        return Ok((vec![], vec![]));
                    }
                }
                State::InProgress => match &lease {
                    Some((held, _)) if held.is_live() => {
                        refused = Some(ClaimOutcome::Held(held.clone()));
                        return Ok((vec![], vec![]));
                    }
                    dead => drafts.push(Draft {
                        change: Change::Released {
                            reason: Some(dead.as_ref().map_or_else(
                                || "in progress without a lease: taken back".to_string(),
                                |(l, _)| l.why_dead(),
                            )),
                        },
                        actor: request.actor.clone(),
                        role: request.role.clone(),
                    }),
                },
                other => {
                    refused = Some(ClaimOutcome::NotClaimable(format!(
                        "task {id} is {other}, not open"
                    )));
                    return Ok((vec![], vec![]));
                }
            }
            drafts.push(Draft {
                change: Change::Claimed {
                    assignee: request.actor.clone(),
                },
                actor: request.actor.clone(),
                role: request.role.clone(),
            });
            let edit = self.lease_edit(
                batch,
                id,
                &request.actor,
                request.pid,
                request.ttl,
                lease.map(|(_, oid)| oid),
            )?;
            Ok((drafts, vec![edit]))
        })?;
        Ok(refused.unwrap_or(ClaimOutcome::Claimed(Box::new(record))))
    }

    /// Ready tasks, and running tasks whose lease is dead, in start order.
    pub fn claimable(&self) -> Result<Vec<String>> {
        self.claimable_among(&self.load_json()?)
    }

    /// [`Store::claimable`] of `tasks`, every task as just loaded, for a
    /// caller that has them already: one listing of the refs fewer.
    pub fn claimable_among<T: Standing>(&self, tasks: &[T]) -> Result<Vec<String>> {
        let board = Board::new(tasks);
        let mut list: Vec<&T> = board.ready().into_iter().map(|v| v.task).collect();
        let mut running = tasks
            .iter()
            .filter(|t| t.state() == State::InProgress)
            .peekable();
        let leases = match running.peek() {
            Some(_) => self.leases()?,
            None => HashMap::new(),
        };
        for task in running {
            let live = leases.get(task.id()).is_some_and(|lease| lease.is_live());
            if !live {
                list.push(task);
            }
        }
        list.sort_by(|a, b| start_order(*a, *b));
        Ok(list.into_iter().map(|t| t.id().to_string()).collect())
    }

    /// Extend the lease of in-progress task `id` held by `holder` to `ttl`
    /// from now, keeping the process it is tied to. `Err(lease)`: someone
    /// else holds it (or nobody: the task is not in progress, or its lease
    /// is dead), and nothing was written.
    pub fn renew(&self, id: &str, holder: &str, ttl: Duration) -> Result<Result<Lease, Renewal>> {
        let mut retries = Retries::default();
        loop {
            let TaskRecord { task, tip } = self.load(id)?;
            if task.state != State::InProgress {
                return Ok(Err(Renewal::NotInProgress(task.state)));
            }
            let Some((lease, oid)) = self.lease(id)? else {
                return Ok(Err(Renewal::NoLease));
            };
            if lease.holder != holder {
                return Ok(Err(Renewal::HeldBy(lease)));
            }
            if !lease.is_live() {
                return Ok(Err(Renewal::Dead(lease)));
            }
            let mut batch = Batch::new(&self.repo);
            let edit = self.lease_edit(&mut batch, id, holder, lease.pid, ttl, Some(oid))?;
            batch.write(&self.repo)?;
            // The task must not move meanwhile either (a submit or release
            // that ends the claim).
            let unmoved = Edit::verify(format!("{}{id}", super::TASKS_PREFIX), Some(tip));
            match self.transact(&[edit, unmoved], "lease renewed") {
                Ok(()) => {
                    let (renewed, _) = self.lease(id)?.context("the renewed lease is gone")?;
                    return Ok(Ok(renewed));
                }
                Err(e) if retries.again(&e) => super::tasks::backoff(retries.tries()),
                Err(e) => return Err(e).with_context(|| format!("task {id}: renewing the lease")),
            }
        }
    }

    /// Renew `holder`'s lease on `id` to `ttl` every `ttl / 3` until the
    /// returned guard is dropped; a renewal that fails is tried again at the
    /// next turn, one refused (the lease is no longer ours) ends the thread.
    pub fn keep_renewed(&self, id: &str, holder: &str, ttl: Duration) -> Renewer {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (dir, id, holder) = (
            self.work_dir().to_path_buf(),
            id.to_string(),
            holder.to_string(),
        );
        let thread = std::thread::spawn(move || {
            // A store is not shared across threads: this one opens its own.
            let Ok(store) = Store::discover(&dir) else {
                return;
            };
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(ttl / 3)
            {
                if let Ok(Err(_refused)) = store.renew(&id, &holder, ttl) {
                    return;
                }
            }
        });
        Renewer {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The edit that points the lease ref of `id` at a new lease, replacing
    /// `previous` (or creating it where there was none); the lease's blob
    /// goes into `batch`.
    fn lease_edit(
        &self,
        batch: &mut Batch,
        id: &str,
        holder: &str,
        pid: Option<u32>,
        ttl: Duration,
        previous: Option<ObjectId>,
    ) -> Result<Edit> {
        let expires = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::try_from(ttl)?)?
            .round(jiff::Unit::Second)?;
        let lease = Lease {
            holder: holder.to_string(),
            pid,
            host: hostname(),
            expires: expires.to_string(),
        };
        let json = serde_json::to_vec(&lease)?;
        let blob = batch.put(&gix::objs::BlobRef { data: &json })?;
        Ok(Edit::set(format!("{LEASES_PREFIX}{id}"), blob, previous))
    }

    /// The deletion of `id`'s lease, if it has one: a lease lives only while
    /// its task is in progress.
    pub(super) fn lease_cleanup(&self, id: &str) -> Result<Option<Edit>> {
        match self.lease(id)? {
            Some((_, oid)) => Ok(Some(Edit::delete(format!("{LEASES_PREFIX}{id}"), oid))),
            None => Ok(None),
        }
    }

    /// Whether task `id` exists and is merged.
    pub fn is_merged(&self, id: &str) -> bool {
        self.load(id).is_ok_and(|r| r.task.state == State::Merged)
    }
}

/// Why a lease was not renewed.
#[derive(Debug)]
pub enum Renewal {
    NotInProgress(State),
    NoLease,
    HeldBy(Lease),
    Dead(Lease),
}

impl std::fmt::Display for Renewal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Renewal::NotInProgress(state) => write!(f, "it is {state}, not in progress"),
            Renewal::NoLease => write!(f, "it has no lease"),
            Renewal::HeldBy(lease) => write!(f, "it is held by {}", lease.describe()),
            Renewal::Dead(lease) => write!(
                f,
                "the lease of {} no longer holds: claim the task again",
                lease.describe()
            ),
        }
    }
}

/// This machine's name, as leases record it.
pub fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Whether process `pid` runs on this machine.
pub fn pid_is_running(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false; // 0 would ask about our own process group
    }
    // Signal 0 checks without signalling. Only "no such process" means
    // gone: a process of another user answers "not permitted" (and may be
    // hidden from /proc).
    // SAFETY: kill with signal 0 has no effect on the process.
    let answer = unsafe { libc::kill(pid, 0) };
    answer == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed_task() -> (tempfile::TempDir, Store, String) {
        let dir = tempfile::tempdir().unwrap();
        gix::init(dir.path()).unwrap();
        let store = Store::discover(dir.path()).unwrap();
        let new: crate::model::task::NewTask = serde_json::from_value(
            serde_json::json!({"title": "T", "priority": 0, "max_attempts": 3}),
        )
        .unwrap();
        let id = store.create(new, "me", "human").unwrap().id;
        let request = ClaimRequest {
            actor: "me".into(),
            role: "implementer".into(),
            pid: None,
            ttl: Duration::from_secs(3),
        };
        assert!(matches!(
            store.claim(&id, &request).unwrap(),
            ClaimOutcome::Claimed(_)
        ));
        (dir, store, id)
    }

    #[test]
    fn a_kept_lease_is_renewed_until_the_guard_goes() {
        let (_dir, store, id) = claimed_task();
        let expires = |store: &Store| store.lease(&id).unwrap().unwrap().0.expires;
        let first = expires(&store);
        let renewer = store.keep_renewed(&id, "me", Duration::from_secs(3));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while expires(&store) == first && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_ne!(expires(&store), first, "renewed within its ttl");
        drop(renewer);
        let last = expires(&store);
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(expires(&store), last, "no renewal once the guard is gone");
    }

    #[test]
    fn a_lease_tied_to_no_process_lives_until_it_expires() {
        let (_dir, store, id) = claimed_task();
        let (lease, _) = store.lease(&id).unwrap().unwrap();
        assert_eq!(lease.pid, None);
        assert!(lease.is_live());
        let gone = Lease {
            pid: Some(u32::MAX - 1),
            ..lease.clone()
        };
        assert!(!gone.is_live(), "a pid of this host that is gone ends it");
        let elsewhere = Lease {
            host: "another-host".into(),
            ..gone
        };
        assert!(elsewhere.is_live(), "across hosts only expiry counts");
        let expired = Lease {
            expires: "2020-01-01T00:00:00Z".into(),
            ..lease
        };
        assert!(!expired.is_live());
    }
}
