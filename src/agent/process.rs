//! Running one agent: its argv (never through a shell), its prompt on stdin,
//! its `GIT_AGENT_*` environment, its own process group, its timeout, and its
//! output in a log file whose tail goes into the task's history.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::git::LOCAL_ENV_VARS;

/// How much of the log's end goes into an event.
const TAIL_LINES: usize = 30;
const TAIL_BYTES: usize = 4000;
/// How long a stopped agent's group gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

/// One agent run, fully described.
#[derive(Debug, Clone)]
pub struct AgentRun {
    pub role: String,
    pub command: Vec<String>,
    pub cwd: PathBuf,
    pub prompt: String,
    pub timeout: Duration,
    /// `<git-common-dir>/agent/logs/<task>/<attempt>-<role>`: `.log`,
    /// `.prompt.md`, `.task.json` and `.output` are made from it.
    pub files: PathBuf,
    /// `GIT_AGENT_*` variables (name without the prefix, value).
    pub env: Vec<(String, String)>,
    /// The task snapshot as JSON, for `GIT_AGENT_TASK_FILE`.
    pub task_json: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    /// Killed by a signal it did not handle.
    Signalled,
    TimedOut,
    /// Stopped because the orchestrator was asked to stop.
    Interrupted,
}

/// What a run left behind.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ending: Ending,
    pub duration: Duration,
    pub log: PathBuf,
    /// The last lines of the log.
    pub tail: String,
    /// What the agent wrote to `$GIT_AGENT_OUTPUT`, if anything.
    pub output: Option<String>,
    /// Everything the agent printed (stdout and stderr, interleaved).
    pub printed: String,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.ending == Ending::Exited(0)
    }

    /// Why the run failed, in a sentence, or `None` if it succeeded.
    pub fn failure(&self, timeout: Duration) -> Option<String> {
        match self.ending {
            Ending::Exited(0) => None,
            Ending::Exited(code) => Some(format!("the agent exited with code {code}")),
            Ending::Signalled => Some("the agent was killed by a signal".into()),
            Ending::TimedOut => Some(format!("the agent timed out after {}s", timeout.as_secs())),
            Ending::Interrupted => Some("the run was interrupted".into()),
        }
    }
}

impl AgentRun {
    /// Run the agent to its end, its timeout, or until `stop` is set; the
    /// whole process group is gone when this returns.
    pub fn run(&self, stop: &AtomicBool) -> Result<Outcome> {
        let Some((program, args)) = self.command.split_first() else {
            bail!("the {} command is empty", self.role);
        };
        let dir = self.files.parent().context("log path has a directory")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let log = self.path("log");
        let prompt_file = self.path("prompt.md");
        let output_file = self.path("output");
        std::fs::write(&prompt_file, &self.prompt)?;
        let _ = std::fs::remove_file(&output_file);
        let mut expression = duct::cmd(program, args)
            .dir(&self.cwd)
            .stdin_bytes(self.prompt.clone())
            // duct applies the outer redirection first: stdout goes to the log,
            // then stderr joins it there (the other order sends stderr to ours).
            .stderr_to_stdout()
            .stdout_file(File::create(&log).with_context(|| format!("creating {}", log.display()))?)
            .unchecked()
            .env("GIT_AGENT_ROLE", &self.role)
            .env("GIT_AGENT_PROMPT_FILE", &prompt_file)
            .env("GIT_AGENT_OUTPUT", &output_file);
        if let Some(json) = &self.task_json {
            let task_file = self.path("task.json");
            std::fs::write(&task_file, json)?;
            expression = expression.env("GIT_AGENT_TASK_FILE", &task_file);
        }
        for (name, value) in &self.env {
            expression = expression.env(format!("GIT_AGENT_{name}"), value);
        }
        for var in LOCAL_ENV_VARS {
            expression = expression.env_remove(var);
        }
        let expression = expression.before_spawn(|command| {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
            Ok(())
        });
        let started = Instant::now();
        let handle = expression
            .start()
            .with_context(|| format!("starting the {} agent `{program}`", self.role))?;
        let group = handle
            .pids()
            .first()
            .copied()
            .context("the agent has no pid")?;
        // A killed orchestrator leaves its agents running (their own group);
        // the next run reads this file to stop them before it retries.
        let group_file = self.path("pgid");
        std::fs::write(&group_file, group.to_string())?;
        let ending = loop {
            if let Some(output) = handle.try_wait()? {
                break match output.status.code() {
                    Some(code) => Ending::Exited(code),
                    None => Ending::Signalled,
                };
            }
            if started.elapsed() >= self.timeout {
                stop_group(group, &handle);
                break Ending::TimedOut;
            }
            if stop.load(Ordering::Relaxed) {
                stop_group(group, &handle);
                break Ending::Interrupted;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // Whatever the agent left running in its group goes with it.
        signal_group(group, libc::SIGKILL);
        let _ = handle.wait();
        let _ = std::fs::remove_file(&group_file);
        let printed = std::fs::read_to_string(&log).unwrap_or_default();
        Ok(Outcome {
            ending,
            duration: started.elapsed(),
            tail: tail(&printed),
            output: std::fs::read_to_string(&output_file)
                .ok()
                .filter(|s| !s.trim().is_empty()),
            printed,
            log,
        })
    }

    fn path(&self, extension: &str) -> PathBuf {
        let mut name = self.files.file_name().unwrap_or_default().to_os_string();
        name.push(".");
        name.push(extension);
        self.files.with_file_name(name)
    }
}

/// SIGTERM the group, give it a moment, then SIGKILL it.
fn stop_group(group: u32, handle: &duct::Handle) {
    signal_group(group, libc::SIGTERM);
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        if matches!(handle.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal_group(group, libc::SIGKILL);
}

fn signal_group(group: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with a negative pid signals a process group; it touches
    // no memory of ours. The group is the agent's own (process_group(0)).
    unsafe {
        libc::kill(-(group as libc::pid_t), signal);
    }
}

/// Stop an agent's process group that a killed orchestrator left behind,
/// found by the `.pgid` files next to its logs. The group is killed only if
/// its leader is gone (then only its old members remain, so the id cannot
/// have been reused) or still works in `cwd`.
pub fn stop_orphans(log_dir: &Path, cwd: &Path) {
    let Ok(entries) = std::fs::read_dir(log_dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|e| e != "pgid") {
            continue;
        }
        let group = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if let Some(group) = group {
            let leader = PathBuf::from(format!("/proc/{group}"));
            let ours = !leader.exists()
                || std::fs::read_link(leader.join("cwd")).is_ok_and(|dir| dir.starts_with(cwd));
            if ours {
                signal_group(group, libc::SIGKILL);
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}

/// The last lines of `text`, at most `TAIL_BYTES`.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    if out.len() > TAIL_BYTES {
        let mut cut = out.len() - TAIL_BYTES;
        while !out.is_char_boundary(cut) {
            cut += 1;
        }
        out = out[cut..].to_string();
    }
    out
}

/// `<git-common-dir>/agent/logs/<task>/<attempt>-<role>` (extension added per file).
pub fn log_base(agent_dir: &Path, task: &str, attempt: u32, role: &str) -> PathBuf {
    agent_dir
        .join("logs")
        .join(task)
        .join(format!("{attempt}-{role}"))
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Catch SIGINT and SIGTERM from now on: the returned flag is set instead of
/// the process dying, so that running agents can be stopped and their leases
/// released. Agents run in their own process groups, so a terminal's Ctrl-C
/// reaches only us.
pub fn catch_interrupts() -> &'static AtomicBool {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_interrupt as *const () as libc::sighandler_t,
        );
    }
    &INTERRUPTED
}
