//! The git-backed store: task and plan chains, leases, and the derived cache.
//!
//! Every task is a ref, `refs/agent/tasks/<id>`, pointing at a chain of event
//! commits whose tree holds `task.json` (the snapshot) and `event.json` (the
//! event). Every write is a compare-and-swap on the ref, so concurrent writers
//! never lose an update: the loser re-reads and tries again. Refs are read
//! and moved through git's own implementation of the repository's ref
//! format ([`crate::git::refs`]); objects are read and written with gix.

mod cache;
pub mod lease;
pub mod notes;
mod objects;
mod pack;
pub mod plans;
pub mod queue;
pub mod queue_lease;
pub mod sync;
pub mod tasks;

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub use cache::TaskJson;
pub use lease::Lease;
pub use plans::PlannerWork;
pub use tasks::{Draft, TaskRecord};

/// Ref namespace of task chains.
pub const TASKS_PREFIX: &str = "refs/agent/tasks/";
/// Ref namespace of plan chains.
pub const PLANS_PREFIX: &str = "refs/agent/plans/";
/// Ref namespace of claim leases.
pub const LEASES_PREFIX: &str = "refs/agent/leases/";

/// Failures a caller must tell apart from "something broke".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no task matches \"{0}\"")]
    NoSuchTask(String),
    #[error("\"{prefix}\" is ambiguous: it matches {}", .matches.join(", "))]
    Ambiguous {
        prefix: String,
        matches: Vec<String>,
    },
    #[error("\"{0}\" is not a valid id: ids are lowercase letters, digits and '-'")]
    InvalidId(String),
    #[error("refused: {0}")]
    Refused(String),
}

/// An open repository with git-agent's view of it. Cloning is cheap; each
/// thread works with its own clone.
#[derive(Clone)]
pub struct Store {
    repo: gix::Repository,
    common_dir: PathBuf,
}

/// The object format of the repository git finds at `dir`, where it is one
/// this build of gix cannot read (gix is built for sha1 alone).
fn unsupported_object_format(dir: &Path) -> Option<String> {
    let format = crate::git::object_format(dir).ok()??;
    (format != "sha1").then_some(format)
}

impl Store {
    /// Open the repository that contains `dir`, as git would find it.
    pub fn discover(dir: &Path) -> Result<Store> {
        let mut repo = match gix::discover(dir) {
            Ok(repo) => repo,
            Err(e) => {
                if let Some(format) = unsupported_object_format(dir) {
                    anyhow::bail!(StoreError::Refused(format!(
                        "{} uses the {format} object format; git-agent works only in \
                         repositories of the sha1 format (the format git init makes by default)",
                        dir.display()
                    )));
                }
                return Err(e)
                    .with_context(|| format!("{} is not inside a git repository", dir.display()));
            }
        };
        // Event commits and notes need an identity; where the user has none
        // configured, git-agent signs as itself rather than failing.
        repo.committer_or_set_fallback("git-agent", "git-agent@localhost")
            .context("reading the committer identity")?;
        let common_dir = repo.common_dir().to_path_buf();
        Ok(Store { repo, common_dir })
    }

    /// The gix repository, for modules that read objects directly.
    pub fn repo(&self) -> &gix::Repository {
        &self.repo
    }

    /// `<git-common-dir>/agent`: logs, queue, cache, locks. Local and derived.
    pub fn agent_dir(&self) -> PathBuf {
        self.common_dir.join("agent")
    }

    /// The directory git commands should run in: the work tree, or the git
    /// dir of a bare repository.
    pub fn work_dir(&self) -> &Path {
        self.repo.workdir().unwrap_or_else(|| self.repo.git_dir())
    }

    pub fn common_dir(&self) -> &Path {
        &self.common_dir
    }

    /// The refs directly under `prefix` (ending in `/`) as (name less the
    /// prefix, object), in name order; safe to call while `git gc` packs refs.
    pub fn refs_under(&self, prefix: &str) -> Result<Vec<(String, gix::ObjectId)>> {
        crate::git::refs::list_refs(self.work_dir(), prefix)
    }

    /// The object ref `name` points at, if it exists.
    pub fn find_ref(&self, name: &str) -> Result<Option<gix::ObjectId>> {
        crate::git::refs::find_ref(self.work_dir(), name)
    }

    /// The commit HEAD points at, if any (an unborn branch has none). Read
    /// through git: gix 0.90 cannot read HEAD in a reftable repository.
    pub fn head_commit(&self) -> Result<Option<gix::ObjectId>> {
        crate::git::find_commit(self.work_dir(), "HEAD")?
            .map(|id| gix::ObjectId::from_hex(id.as_bytes()).context("git printed a bad commit id"))
            .transpose()
    }

    /// The ref HEAD names (`refs/heads/main`), or `None` when it is detached.
    pub fn head_ref(&self) -> Result<Option<String>> {
        crate::git::head_ref(self.work_dir())
    }

    /// Carry out `edits` as one ref transaction: all refs move or none do.
    pub(crate) fn transact(
        &self,
        edits: &[crate::git::refs::Edit],
        why: &str,
    ) -> Result<(), crate::git::refs::RefError> {
        crate::git::refs::update_refs(
            self.work_dir(),
            &self.common_dir,
            edits,
            &format!("git-agent: {why}"),
        )
    }

    /// A signature for a commit made now.
    fn signature(&self) -> Result<gix::actor::Signature> {
        let who = self
            .repo
            .committer()
            .context("no committer identity, even after setting the fallback")?
            .context("reading the committer identity")?;
        Ok(gix::actor::Signature {
            name: who.name.into(),
            email: who.email.into(),
            time: gix::date::Time::now_local_or_utc(),
        })
    }
}

/// Resolve a unique prefix among `ids` (sorted), as git does for hashes.
fn resolve_prefix(ids: &[(String, gix::ObjectId)], prefix: &str) -> Result<String, StoreError> {
    if let Some((id, _)) = ids.iter().find(|(id, _)| id == prefix) {
        return Ok(id.clone());
    }
    let matches: Vec<String> = ids
        .iter()
        .filter(|(id, _)| id.starts_with(prefix))
        .map(|(id, _)| id.clone())
        .collect();
    match matches.len() {
        0 => Err(StoreError::NoSuchTask(prefix.to_string())),
        1 => Ok(matches.into_iter().next().expect("one match")),
        _ => Err(StoreError::Ambiguous {
            prefix: prefix.to_string(),
            matches,
        }),
    }
}

/// The current time as RFC 3339 in UTC with milliseconds, fixed width
/// (`2026-11-24T17:02:50.123Z`), so that times sort as strings and events
/// a moment apart keep their order (the merge queue is FIFO by them).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}
