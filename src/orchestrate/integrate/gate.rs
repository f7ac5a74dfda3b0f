//! The gate: `test` run with `sh -c` on exactly a candidate's tree, in the
//! candidate's slot worktree, in a thread of its own so that several run at
//! once. A failed (or timed-out) run is run again on the identical tree up to
//! `integrate.retries` times before the entry is blamed. Every run is a line
//! of `refs/notes/agent-ci` on the candidate commit; a tree that passed is
//! not tested again.

use anyhow::{Context as _, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use crate::agent::config::Launch;
use crate::agent::process::{self, AgentRun, Ending, Outcome};
use crate::git;
use crate::model::queue::GateRun;
use crate::orchestrate::Context;
use crate::store::notes;

/// A commit the gate tests: its tree, and the commit it is built on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Step {
    pub commit: String,
    pub tree: String,
    pub base: String,
}

/// One candidate's gate, as its thread needs it.
pub(super) struct Job {
    pub id: u64,
    pub task: String,
    pub attempt: u32,
    pub commit: String,
    pub tree: String,
    pub base: String,
    /// The commits a rebase replayed before `commit`, oldest first: each
    /// lands as a first-parent commit of the target, so each is gated (in
    /// turn, before `commit`) and the first that fails decides the job.
    pub before: Vec<Step>,
    pub position: usize,
    /// The slot worktree it runs in.
    pub dir: PathBuf,
    pub test: String,
    pub timeout: Duration,
    /// Runs after a failed one, on the identical tree.
    pub retries: u32,
    /// `<git-common-dir>/agent`, for the logs.
    pub agent_dir: PathBuf,
    pub task_json: String,
    /// `worktree.setup`, run once in the slot worktree before its first gate.
    pub setup: Vec<String>,
    pub setup_timeout: Duration,
    /// `SLOT` and `PORT` of the queue slot.
    pub slot_env: Vec<(String, String)>,
}

/// One run of a job.
pub(super) struct Run {
    /// The commit it tested.
    pub step: Step,
    pub started_at: String,
    pub outcome: Outcome,
    /// This run was the worktree's set-up (which failed), not the gate.
    pub setup: bool,
}

/// What a job's thread reports when it ends.
pub(super) struct Done {
    pub job: Job,
    /// Every run, oldest first; an error where the worktree could not be set up.
    pub runs: Result<Vec<Run>>,
}

/// Run `job` in a thread of its own until it passes, its runs are used up,
/// or `cancel` is set; the thread reports on `tx`.
pub(super) fn spawn(job: Job, cancel: Arc<AtomicBool>, tx: Sender<Done>) {
    std::thread::spawn(move || {
        let runs = job.run_all(&cancel);
        let _ = tx.send(Done { job, runs });
    });
}

impl Job {
    fn run_all(&self, cancel: &AtomicBool) -> Result<Vec<Run>> {
        let mut runs = Vec::new();
        // A set-up that fails is the gate's one run: its log is the gate's.
        git::checkout_detached(&self.dir, &self.commit)?;
        let started_at = crate::store::now();
        let files = process::log_base(&self.agent_dir, &self.task, self.attempt, "gate-setup");
        let env = [self.env(), self.slot_env.clone()].concat();
        let setup = crate::orchestrate::ready::run_setup(
            &self.setup,
            self.setup_timeout,
            &self.dir,
            files,
            env,
            cancel,
        )?;
        if let Some(outcome) = setup.filter(|o| !o.succeeded()) {
            runs.push(Run {
                step: self.last_step(),
                started_at,
                outcome,
                setup: true,
            });
            return Ok(runs);
        }
        let mut steps = self.before.clone();
        steps.push(self.last_step());
        for step in steps {
            let passed = self.run_step(&step, cancel, &mut runs)?;
            if !passed {
                break;
            }
        }
        Ok(runs)
    }

    fn last_step(&self) -> Step {
        Step {
            commit: self.commit.clone(),
            tree: self.tree.clone(),
            base: self.base.clone(),
        }
    }

    /// Gate one commit, run again after a failure up to `retries` times;
    /// whether its last run passed.
    fn run_step(&self, step: &Step, cancel: &AtomicBool, runs: &mut Vec<Run>) -> Result<bool> {
        for _ in 0..=self.retries {
            // The identical tree every time, whatever a run left behind.
            git::checkout_detached(&self.dir, &step.commit)?;
            git::clean(&self.dir)?;
            let started_at = crate::store::now();
            let outcome = self.agent_run()?.run(cancel)?;
            // A gate that hangs past its timeout is as flaky as one that
            // fails: both are run again before the entry is blamed.
            let failed = match outcome.ending {
                Ending::Exited(code) => code != 0,
                Ending::TimedOut => true,
                Ending::Signalled | Ending::Interrupted => false,
            };
            let passed = outcome.succeeded();
            runs.push(Run {
                step: step.clone(),
                started_at,
                outcome,
                setup: false,
            });
            if !failed || cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(passed);
            }
        }
        Ok(false)
    }

    fn agent_run(&self) -> Result<AgentRun> {
        Ok(AgentRun {
            role: "gate".into(),
            launch: Launch {
                argv: vec!["sh".into(), "-c".into(), self.test.clone()],
                env: Vec::new(),
                preset: None,
            },
            cwd: self.dir.clone(),
            prompt: String::new(),
            timeout: self.timeout,
            files: next_log(&self.agent_dir, &self.task, self.attempt),
            env: [self.env(), self.slot_env.clone()].concat(),
            task_json: Some(self.task_json.clone()),
        })
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("TASK".into(), self.task.clone()),
            ("ATTEMPT".into(), self.attempt.to_string()),
            ("BASE".into(), self.base.clone()),
            ("BRANCH".into(), format!("agent/{}", self.task)),
        ]
    }
}

/// The log of the next gate run of `task`'s `attempt`: `<attempt>-gate`,
/// then `<attempt>.2-gate`, … (a retry, or a candidate rebuilt), so that no
/// run's log overwrites another's.
fn next_log(agent_dir: &Path, task: &str, attempt: u32) -> PathBuf {
    let first = process::log_base(agent_dir, task, attempt, "gate");
    if !log_of(&first).exists() {
        return first;
    }
    (2..)
        .map(|n| first.with_file_name(format!("{attempt}.{n}-gate")))
        .find(|base| !log_of(base).exists())
        .expect("an unbounded range has a free name")
}

fn log_of(base: &Path) -> PathBuf {
    let mut name = base.file_name().unwrap_or_default().to_os_string();
    name.push(".log");
    base.with_file_name(name)
}

/// A run's result, as its note and the entry's event say it.
pub(super) fn result_of(ending: &Ending, cancelled: Option<&str>) -> String {
    match (ending, cancelled) {
        (Ending::Exited(0), _) => "passed".into(),
        (Ending::Exited(code), _) => format!("failed: exit {code}"),
        (Ending::TimedOut, _) => "not_run: timed out".into(),
        (Ending::Signalled | Ending::Interrupted, Some(why)) => {
            format!("not_run: cancelled ({why})")
        }
        (Ending::Signalled | Ending::Interrupted, None) => "not_run: stopped".into(),
    }
}

/// One gate run, as recorded in `refs/notes/agent-ci` on the tested commit.
#[derive(Serialize)]
struct GateRecord<'a> {
    tree: &'a str,
    base: &'a str,
    inputs: serde_json::Value,
    result: &'a str,
    duration_ms: u64,
    at: String,
    /// 1 for the first run on this tree in this pass, 2 for a retry, ….
    run: u32,
}

/// Record `run` in the `agent-ci` note of its commit (and, if it passed,
/// in the cache of trees that passed).
pub(super) fn note(ctx: &Context, run: &GateRun, task: &str) -> Result<()> {
    let test = ctx.config.test.trim();
    let record = GateRecord {
        tree: &run.tree,
        base: &run.base,
        inputs: serde_json::json!({ "test": test, "task": task }),
        result: &run.result,
        duration_ms: run.duration_ms,
        at: crate::store::now(),
        run: run.run,
    };
    let oid = gix::ObjectId::from_hex(run.commit.as_bytes()).context("bad commit id")?;
    ctx.store
        .append_note(notes::CI, oid, &serde_json::to_string(&record)?)?;
    if run.result == "passed" {
        remember_pass(ctx, &run.tree, test)?;
    }
    Ok(())
}

/// `<agent>/cache/gate-passed`: trees that passed, with the test command.
/// Derived from the agent-ci notes; losing it costs only a re-run.
fn passed_file(ctx: &Context) -> PathBuf {
    ctx.store.agent_dir().join("cache").join("gate-passed")
}

/// Whether `tree` passed `test` before.
pub(super) fn passed_before(ctx: &Context, tree: &str, test: &str) -> bool {
    let line = format!("{tree} {}", test.replace('\n', " "));
    std::fs::read_to_string(passed_file(ctx)).is_ok_and(|f| f.lines().any(|l| l == line))
}

fn remember_pass(ctx: &Context, tree: &str, test: &str) -> Result<()> {
    use std::io::Write;
    let path = passed_file(ctx);
    std::fs::create_dir_all(path.parent().expect("cache file has a directory"))?;
    let mut file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&path)?;
    writeln!(file, "{tree} {}", test.replace('\n', " "))?;
    Ok(())
}
