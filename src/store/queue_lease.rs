//! The merge queue's lease on a remote: `refs/agent/locks/queue` there,
//! pointing at a blob `{holder, pid, host, expires}` (a [`Lease`]), moved
//! only by pushes with a lease on its exact old value, so that of machines
//! racing for it one push lands. Whoever holds it reviews and integrates for
//! every clone of that remote; the others implement only. It is judged as a
//! task's lease is: by expiry, and on this host also by its process.
//!
//! Nothing here is history: a lost or stale lease costs at most one review
//! or one queue pass done twice, never a target that was not gated, since
//! the target itself moves on the remote only by a compare-and-swap push.

use anyhow::Result;
use gix::ObjectId;
use std::time::Duration;

use super::lease::hostname;
use super::objects::{find, Batch};
use super::sync::remote_namespace;
use super::{Lease, Store};
use crate::git::remote::{self, PushRef, Pushed};

/// The ref of the queue's lease, on the remote.
pub const QUEUE_LEASE: &str = "refs/agent/locks/queue";

/// Who holds the queue's lease on a remote, as a take left it.
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    /// This holder holds it, until `expires`.
    Ours(Lease),
    /// Someone else holds a live lease (`None`: their push landed just now
    /// and was not read back).
    Theirs(Option<Lease>),
}

impl Store {
    /// Take the queue's lease on `remote` for `holder` (tied to this
    /// process), or renew it where `holder` holds it already, until `ttl`
    /// from now. A lease that is live and someone else's is left alone.
    /// One fetch of the lease ref and at most one push; an unreachable
    /// remote is an error.
    pub fn take_queue_lease(&self, remote: &str, holder: &str, ttl: Duration) -> Result<Turn> {
        let (current, old) = self.fetch_queue_lease(remote)?;
        if let Some(lease) = current.filter(|l| l.is_live() && l.holder != holder) {
            return Ok(Turn::Theirs(Some(lease)));
        }
        let lease = self.queue_lease_for(holder, ttl)?;
        let json = serde_json::to_vec(&lease)?;
        let mut batch = Batch::new(&self.repo);
        let blob = batch.put(&gix::objs::BlobRef { data: &json })?;
        batch.write(&self.repo)?;
        let push = PushRef {
            name: QUEUE_LEASE.to_string(),
            new: Some(blob.to_string()),
            expected: old.map(|o| o.to_string()),
        };
        match remote::push_atomic(self.work_dir(), remote, &[push])? {
            Pushed::Landed => Ok(Turn::Ours(lease)),
            Pushed::Rejected(_) => Ok(Turn::Theirs(None)),
        }
    }

    /// Give up `holder`'s queue lease on `remote`, if it still holds it
    /// there; someone else's is left alone.
    pub fn release_queue_lease(&self, remote: &str, holder: &str) -> Result<()> {
        let (current, old) = self.fetch_queue_lease(remote)?;
        let (Some(lease), Some(old)) = (current, old) else {
            return Ok(());
        };
        if lease.holder != holder {
            return Ok(());
        }
        let push = PushRef {
            name: QUEUE_LEASE.to_string(),
            new: None,
            expected: Some(old.to_string()),
        };
        // Refused: someone took it over meanwhile, which is theirs now.
        remote::push_atomic(self.work_dir(), remote, &[push])?;
        Ok(())
    }

    /// In the repository the clones push to (a hub's own run): take or
    /// renew the queue's lease for `holder` here, by a compare-and-swap on
    /// the ref itself, so that the hub's reviews and merges and those of a
    /// clone holding it through `run --remote` never run at once. A live
    /// lease of someone else's is left alone; a lost race is theirs.
    pub fn take_queue_lease_here(&self, holder: &str, ttl: Duration) -> Result<Turn> {
        let old = self.find_ref(QUEUE_LEASE)?;
        let current = old.map(|oid| self.queue_lease_at(oid)).transpose()?;
        if let Some(lease) = current
            .flatten()
            .filter(|l| l.is_live() && l.holder != holder)
        {
            return Ok(Turn::Theirs(Some(lease)));
        }
        let lease = self.queue_lease_for(holder, ttl)?;
        let mut batch = Batch::new(&self.repo);
        let blob = batch.put(&gix::objs::BlobRef {
            data: &serde_json::to_vec(&lease)?,
        })?;
        batch.write(&self.repo)?;
        let edit = crate::git::refs::Edit::set(QUEUE_LEASE, blob, old);
        match self.transact(&[edit], "queue lease") {
            Ok(()) => Ok(Turn::Ours(lease)),
            Err(e) if e.is_lost_race() => Ok(Turn::Theirs(None)),
            Err(e) => Err(e.into()),
        }
    }

    /// Give up `holder`'s queue lease here, if it still holds it.
    pub fn release_queue_lease_here(&self, holder: &str) -> Result<()> {
        let Some(old) = self.find_ref(QUEUE_LEASE)? else {
            return Ok(());
        };
        if self
            .queue_lease_at(old)?
            .is_some_and(|l| l.holder == holder)
        {
            let edit = crate::git::refs::Edit::delete(QUEUE_LEASE, old);
            // Moved meanwhile: someone took it over, and it is theirs.
            if let Err(e) = self.transact(&[edit], "queue lease released") {
                if !e.is_lost_race() {
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// The lease blob `oid` holds, if it is one (a blob that is no lease,
    /// written by hand, is as good as none).
    fn queue_lease_at(&self, oid: ObjectId) -> Result<Option<Lease>> {
        let blob = find(&self.repo, oid)?;
        Ok(serde_json::from_slice(&blob.data).ok())
    }

    /// A queue lease for `holder`, tied to this process, for `ttl` from now.
    fn queue_lease_for(&self, holder: &str, ttl: Duration) -> Result<Lease> {
        let expires = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::try_from(ttl)?)?
            .round(jiff::Unit::Second)?;
        Ok(Lease {
            holder: holder.to_string(),
            pid: Some(std::process::id()),
            host: hostname(),
            expires: expires.to_string(),
        })
    }

    /// The queue's lease as `remote` holds it now, and its blob.
    fn fetch_queue_lease(&self, remote: &str) -> Result<(Option<Lease>, Option<ObjectId>)> {
        let tracking = format!("{}locks/", remote_namespace(remote));
        let refspec = format!("+refs/agent/locks/*:{tracking}*");
        remote::fetch(self.work_dir(), remote, &[&refspec])?;
        let name = format!(
            "{tracking}{}",
            QUEUE_LEASE.trim_start_matches("refs/agent/locks/")
        );
        let Some(oid) = self.find_ref(&name)? else {
            return Ok((None, None));
        };
        Ok((self.queue_lease_at(oid)?, Some(oid)))
    }
}
