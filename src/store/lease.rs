//! Claims and their leases: `refs/agent/leases/<task-id>` -> a blob
//! `{holder, pid, host, expires}`.
//!
//! A claim moves the task ref (open -> in_progress) and creates the lease ref
//! in one transaction, so any number of racing claimers see exactly one
//! winner. A lease whose time is up, or whose process is gone from this host,
//! can be taken over: the taker records `released` and `claimed` in one write.

use anyhow::{Context, Result};
use gix::refs::transaction::PreviousValue;
use gix::refs::Target;
use gix::ObjectId;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::objects::Batch;
use super::tasks::{ref_delete, ref_update};
use super::{Draft, Store, TaskJson, TaskRecord, LEASES_PREFIX};
use crate::model::board::Board;
use crate::model::task::{is_ready, start_order, Change, State};

/// Who holds a claimed task, and until when.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Lease {
    pub holder: String,
    pub pid: u32,
    pub host: String,
    /// RFC 3339 time after which anyone may take the task over.
    pub expires: String,
}

impl Lease {
    /// Whether the lease still protects its task: not expired, and (when it
    /// was taken on this host) its process still running.
    pub fn is_live(&self) -> bool {
        let expired = self
            .expires
            .parse::<jiff::Timestamp>()
            .map_or(true, |t| t <= jiff::Timestamp::now());
        !expired && (self.host != hostname() || pid_is_running(self.pid))
    }

    /// Why the lease no longer protects its task, for the event that takes it over.
    fn why_dead(&self) -> String {
        if self.host == hostname() && !pid_is_running(self.pid) {
            format!(
                "lease of {} taken back: process {} on {} is gone",
                self.holder, self.pid, self.host
            )
        } else {
            format!(
                "lease of {} taken back: it expired at {}",
                self.holder, self.expires
            )
        }
    }
}

/// What a claim asks for.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub actor: String,
    pub role: String,
    /// The process that holds the lease; when it is gone, so is the claim.
    pub pid: u32,
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
        let Some(oid) = super::loose_refs::find(&self.repo, &name)? else {
            return Ok(None);
        };
        let blob =
            super::objects::find(&self.repo, oid).with_context(|| format!("reading {name}"))?;
        let lease =
            serde_json::from_slice(&blob.data).with_context(|| format!("{name} holds no lease"))?;
        Ok(Some((lease, oid)))
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

    /// Claim the first task that can start now, or whose holder is gone, in
    /// start order; a lost race moves on to the next. `None`: nothing to claim.
    pub fn claim_next(&self, request: &ClaimRequest) -> Result<Option<TaskRecord>> {
        for id in self.claimable()? {
            if let ClaimOutcome::Claimed(record) = self.claim(&id, request)? {
                return Ok(Some(*record));
            }
        }
        Ok(None)
    }

    /// Ready tasks, and running tasks whose lease is dead, in start order.
    pub fn claimable(&self) -> Result<Vec<String>> {
        let tasks = self.load_json()?;
        let board = Board::new(&tasks);
        let mut list: Vec<&TaskJson> = board.ready().into_iter().map(|v| v.task).collect();
        for task in tasks
            .iter()
            .filter(|t| t.summary.state == State::InProgress)
        {
            let live = self
                .lease(&task.summary.id)?
                .is_some_and(|(lease, _)| lease.is_live());
            if !live {
                list.push(task);
            }
        }
        list.sort_by(|a, b| start_order(*a, *b));
        Ok(list.into_iter().map(|t| t.summary.id.clone()).collect())
    }

    /// Extend the lease of `id` held by `holder` by `ttl` from now.
    pub fn renew(&self, id: &str, holder: &str, pid: u32, ttl: Duration) -> Result<bool> {
        let Some((lease, oid)) = self.lease(id)? else {
            return Ok(false);
        };
        if lease.holder != holder {
            return Ok(false);
        }
        let mut batch = Batch::new(&self.repo);
        let edit = self.lease_edit(&mut batch, id, holder, pid, ttl, Some(oid))?;
        batch.write(&self.repo)?;
        Ok(self.transact(vec![edit]).is_ok())
    }

    /// The edit that points the lease ref of `id` at a new lease, replacing
    /// `previous` (or creating it where there was none); the lease's blob
    /// goes into `batch`.
    fn lease_edit(
        &self,
        batch: &mut Batch,
        id: &str,
        holder: &str,
        pid: u32,
        ttl: Duration,
        previous: Option<ObjectId>,
    ) -> Result<gix::refs::transaction::RefEdit> {
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
        let expected = match previous {
            Some(old) => PreviousValue::MustExistAndMatch(Target::Object(old)),
            None => PreviousValue::MustNotExist,
        };
        ref_update(format!("{LEASES_PREFIX}{id}"), blob, expected, "lease")
    }

    /// The deletion of `id`'s lease, if it has one: a lease lives only while
    /// its task is in progress.
    pub(super) fn lease_cleanup(
        &self,
        id: &str,
    ) -> Result<Option<gix::refs::transaction::RefEdit>> {
        match self.lease(id)? {
            Some((_, oid)) => Ok(Some(ref_delete(format!("{LEASES_PREFIX}{id}"), oid)?)),
            None => Ok(None),
        }
    }

    /// Whether task `id` exists and is merged.
    pub fn is_merged(&self, id: &str) -> bool {
        self.load(id).is_ok_and(|r| r.task.state == State::Merged)
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
