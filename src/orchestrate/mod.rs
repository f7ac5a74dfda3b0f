//! What runs when: the implementer worker, the scheduler, the planner, and
//! the live view. Agents run through `agent`, state changes through `store`.

pub mod gc;
pub mod integrate;
pub mod planner;
pub mod predict;
pub mod review;
pub mod run;
pub mod view;
pub mod work;
pub mod worktree;

use anyhow::{Context as _, Result};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::agent::config::{self, Config, Role};
use crate::model::task::Change;
use crate::store::{Draft, Store};

/// Open (creating it and its directory) the lock file at `path`; the caller
/// takes the lock. These are OS locks: a killed holder never leaves one held.
pub(crate) fn lock_file(path: &std::path::Path) -> Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// A context to be opened in another thread.
pub struct Seed {
    root: PathBuf,
    config: Config,
    stop: &'static AtomicBool,
    view: Arc<view::View>,
}

impl Seed {
    pub fn open(self) -> Result<Context> {
        Ok(Context {
            store: Store::discover(&self.root)?,
            config: self.config,
            root: self.root,
            stop: self.stop,
            view: self.view,
        })
    }
}

/// What every step of the orchestration needs. Cheap to clone: each worker
/// thread takes its own.
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub config: Config,
    /// The main working tree: config, prompt templates, the planner's cwd.
    pub root: PathBuf,
    /// Set by Ctrl-C: start nothing new, stop what runs.
    pub stop: &'static AtomicBool,
    pub view: Arc<view::View>,
}

impl Context {
    /// The context of the repository around the current directory. In a
    /// bare repository (a hub) the config comes from the target branch's
    /// tree and git commands run in the git dir.
    pub fn open(stop: &'static AtomicBool) -> Result<Context> {
        Context::open_in(&std::env::current_dir()?, stop)
    }

    /// The context of the repository that contains `dir`.
    pub fn open_in(dir: &std::path::Path, stop: &'static AtomicBool) -> Result<Context> {
        let store = Store::discover(dir)?;
        let root = match store.repo().workdir() {
            Some(dir) => dir.to_path_buf(),
            None => store.repo().git_dir().to_path_buf(),
        };
        let config = crate::hooks::team_config(&store)?;
        Ok(Context {
            store,
            config,
            root,
            stop,
            view: Arc::new(view::View::new()),
        })
    }

    /// What a worker thread needs to open its own context: gix handles are
    /// not `Send`, so each thread opens the repository again (about 1 ms).
    pub fn seed(&self) -> Seed {
        Seed {
            root: self.root.clone(),
            config: self.config.clone(),
            stop: self.stop,
            view: self.view.clone(),
        }
    }

    /// The configured agent for `role`, or an error saying how to configure it.
    pub fn role(&self, role: &str) -> Result<&Role> {
        let roles = &self.config.roles;
        let found = match role {
            "planner" => &roles.planner,
            "implementer" => &roles.implementer,
            "reviewer" => &roles.reviewer,
            "integrator" => &roles.integrator,
            _ => &None,
        };
        found.as_ref().with_context(|| {
            format!(
                "{}: no {role} configured (set roles.{role}.command)",
                config::FILE
            )
        })
    }

    /// Record `change` on task `id` as `actor`, if the task is still ours:
    /// in progress, and not taken over by someone else meanwhile. Returns
    /// whether it was recorded.
    pub fn record_as_holder(
        &self,
        id: &str,
        actor: &str,
        role: &str,
        change: Change,
    ) -> Result<bool> {
        let mut ours = true;
        self.store.update(id, |current| {
            let lease = self.store.lease(id)?;
            ours = current.task.state == crate::model::task::State::InProgress
                && lease.as_ref().is_none_or(|(l, _)| l.holder == actor);
            if !ours {
                return Ok((vec![], vec![]));
            }
            let draft = Draft {
                change: change.clone(),
                actor: actor.to_string(),
                role: role.to_string(),
            };
            Ok((vec![draft], vec![]))
        })?;
        Ok(ours)
    }
}
