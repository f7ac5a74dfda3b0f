//! What runs when: the implementer worker, the scheduler, the planner, and
//! the live view. Agents run through `agent`, state changes through `store`.

pub mod gc;
pub mod hub;
pub mod integrate;
pub mod limits;
pub mod planner;
pub mod predict;
pub mod ready;
pub mod review;
pub mod run;
pub mod view;
pub mod work;
pub mod worktree;

use anyhow::{Context as _, Result};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::agent::config::{self, Config, Role};
use crate::model::task::Change;
use crate::store::{Draft, Store};

/// Whether this clone holds the commit `task`'s head names: work made on
/// another clone arrives with the sync that brings its task, and a hub may
/// get a task's ref before the push of its branch lands.
pub(crate) fn has_head(ctx: &Context, task: &crate::model::task::Task) -> bool {
    task.head
        .as_deref()
        .and_then(|h| gix::ObjectId::from_hex(h.as_bytes()).ok())
        .is_some_and(|oid| ctx.store.repo().has_object(oid))
}

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

/// Where `program` is: itself if it names a path (has a `/`), else the
/// first executable file of that name on `PATH`.
pub fn find_program(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// A context to be opened in another thread.
pub struct Seed {
    root: PathBuf,
    config: Config,
    stop: &'static AtomicBool,
    view: Arc<view::View>,
    ledger: Arc<limits::Ledger>,
    pulse: Arc<Pulse>,
}

/// A count of what this process's jobs changed in the store (a verdict
/// recorded, …), shared by its threads: a loop that watches for such
/// changes reads the store again when the count moves, instead of reading
/// it on every tick.
/// It also counts the jobs still running that may bring the merge queue
/// more work (implementers, reviewers), so that the queue waits for them
/// rather than end its pass and start another.
#[derive(Debug, Default)]
pub struct Pulse {
    count: std::sync::atomic::AtomicU64,
    feeding: std::sync::atomic::AtomicUsize,
}

impl Pulse {
    /// Something changed.
    pub fn bump(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The count now: compare with an earlier one to see a change.
    pub fn get(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// `jobs` implementers and reviewers run now.
    pub fn set_feeding(&self, jobs: usize) {
        self.feeding.store(jobs, Ordering::Relaxed);
    }

    /// Implementers and reviewers running now (0 outside `git agent run`).
    pub fn feeding(&self) -> usize {
        self.feeding.load(Ordering::Relaxed)
    }
}

impl Seed {
    pub fn open(self) -> Result<Context> {
        Ok(Context {
            store: Store::discover(&self.root)?,
            config: self.config,
            root: self.root,
            stop: self.stop,
            view: self.view,
            ledger: self.ledger,
            pulse: self.pulse,
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
    /// What this run spent against `budget:`, and which roles pause after
    /// a rate limit.
    pub ledger: Arc<limits::Ledger>,
    pub pulse: Arc<Pulse>,
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
        // Run from a linked worktree (a task's), the main working tree is
        // still the one whose config, templates and worktree folder count.
        let main = store
            .repo()
            .main_repo()
            .context("opening the main working tree")?;
        let root = match main.workdir() {
            Some(dir) => dir.to_path_buf(),
            None => store.repo().git_dir().to_path_buf(),
        };
        let config = config::team(&store)?;
        let ledger = Arc::new(limits::Ledger::new(config.budget.clone()));
        Ok(Context {
            store,
            config,
            root,
            stop,
            view: Arc::new(view::View::new()),
            ledger,
            pulse: Arc::new(Pulse::default()),
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
            ledger: self.ledger.clone(),
            pulse: self.pulse.clone(),
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
                "{}: no {role} configured (set roles.{role}.agent to a preset: {}, or roles.{role}.command)",
                config::FILE,
                crate::agent::preset::Preset::names()
            )
        })
    }

    /// Say so on stderr when approved work would land untested (`test:` is
    /// empty), and when the pre-push gate would not stop unapproved agent
    /// work on a push (its hook is missing, or a hook manager displaced
    /// it). Every run and integrate says it; it is never silent.
    pub fn warn_without_gate(&self) {
        match crate::hooks::install::gate_missing(&self.store) {
            Ok(None) => {}
            Ok(Some(why)) => eprintln!("git-agent: warning: {why}"),
            Err(e) => {
                eprintln!("git-agent: warning: the pre-push gate could not be checked: {e:#}")
            }
        }
        if self.config.test.trim().is_empty() {
            eprintln!(
                "git-agent: warning: no gate: `test:` in {} is empty, so approved work lands on {} untested (set it to your test command)",
                config::FILE,
                self.config.target
            );
        }
    }

    /// Refuse to start when the target branch does not exist, before
    /// anything is claimed or written: every task starts from it.
    pub fn check_target(&self) -> Result<()> {
        let target = &self.config.target;
        if self
            .store
            .find_ref(&format!("refs/heads/{target}"))?
            .is_some()
        {
            return Ok(());
        }
        let e = self.config.fault(
            "target",
            format!("the branch \"{target}\" does not exist (create it, or name the branch agents' work lands on)"),
        );
        Err(crate::error::Config(e.to_string()).into())
    }

    /// Refuse to start when the program of a configured role among `roles`
    /// cannot be found, before anything is claimed or written: the error
    /// names the role, the program and how to install it.
    pub fn check_programs(&self, roles: &[&str]) -> Result<()> {
        for &name in roles {
            let Ok(role) = self.role(name) else {
                continue;
            };
            let launch = role.launch(name);
            let Some(program) = launch.argv.first() else {
                continue;
            };
            // A relative path names a program of the repository's own.
            let program = match program.contains('/') && !program.starts_with('/') {
                true => self.root.join(program).display().to_string(),
                false => program.clone(),
            };
            if find_program(&program).is_some() {
                continue;
            }
            let how = match launch.preset {
                Some(preset) => format!("install it with `{}`", preset.install_hint()),
                None => format!("install it, or fix roles.{name}.command"),
            };
            let e = self.config.fault(
                &format!("roles.{name}"),
                format!("the program `{program}` is not on PATH: {how}"),
            );
            return Err(crate::error::Config(e.to_string()).into());
        }
        Ok(())
    }

    /// Record `change` on task `id` as `actor`, with the `spans` of the
    /// attempt it ends, if the task is still ours: in progress, and not
    /// taken over by someone else meanwhile. Returns whether it was recorded.
    pub fn record_as_holder(
        &self,
        id: &str,
        actor: &str,
        role: &str,
        change: Change,
        spans: &[crate::model::span::Span],
    ) -> Result<bool> {
        let mut ours = true;
        self.store.update_timed(id, spans, |current| {
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
