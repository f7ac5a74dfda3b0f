//! Running one agent: its argv (never through a shell, placeholders
//! expanded), its prompt on stdin (a file, so an agent that does not read it
//! never blocks or kills git-agent), its `GIT_AGENT_*` environment, its own
//! process group, its timeout, and its output: stdout and stderr together in
//! a log whose tail goes into the task's history, stdout alone for results.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::config::Launch;
use crate::git::LOCAL_ENV_VARS;
use crate::model::span::{self, Span};
use crate::model::usage::Usage;

/// How much of the log's end goes into an event.
const TAIL_LINES: usize = 30;
const TAIL_BYTES: usize = 4000;
/// How long a stopped agent's group gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(2);
/// How long output is still read after the agent's group is gone (a
/// process that left the group may hold the pipes open).
const DRAIN: Duration = Duration::from_secs(2);

/// One agent run, fully described.
#[derive(Debug, Clone)]
pub struct AgentRun {
    pub role: String,
    /// The argv, the added environment and the preset, as the config says.
    pub launch: Launch,
    pub cwd: PathBuf,
    pub prompt: String,
    pub timeout: Duration,
    /// `<git-common-dir>/agent/logs/<task>/<attempt>-<role>`: `.log`,
    /// `.stdout`, `.prompt.md`, `.task.json` and `.output` are made from it.
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
    /// The agent's final message: read from stdout in its preset's output
    /// format, or all of stdout. Never anything from stderr.
    pub message: String,
    /// Tokens and cost, where the agent's output reported them: its CLI's
    /// own report (presets), else `usage:` in its `$GIT_AGENT_OUTPUT`.
    pub usage: Option<Usage>,
    /// When the agent process started and ended (RFC 3339, UTC, ms).
    pub started_at: String,
    pub ended_at: String,
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

    /// The agent span of this run, as `role`, ended with `result`.
    pub fn span(&self, role: &str, result: &str) -> Span {
        let mut span = Span::new(span::kind::AGENT, &self.started_at, &self.ended_at).ended(result);
        span.role = Some(role.to_string());
        span.usage = self.usage.clone();
        span
    }
}

impl AgentRun {
    /// Run the agent to its end, its timeout, or until `stop` is set; the
    /// whole process group is gone when this returns.
    pub fn run(&self, stop: &AtomicBool) -> Result<Outcome> {
        let dir = self.files.parent().context("log path has a directory")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let log = self.path("log");
        let prompt_file = self.path("prompt.md");
        let output_file = self.path("output");
        let task_file = self.path("task.json");
        std::fs::write(&prompt_file, &self.prompt)?;
        let _ = std::fs::remove_file(&output_file);
        if let Some(json) = &self.task_json {
            std::fs::write(&task_file, json)?;
        }
        let cwd = std::path::absolute(&self.cwd)?;
        let argv = self.expanded_argv(&cwd, &prompt_file, &task_file, &output_file);
        let Some((program, args)) = argv.split_first() else {
            bail!("the {} command is empty", self.role);
        };
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(&cwd)
            // Some agents (opencode) work where $PWD says, not in their cwd.
            .env("PWD", &cwd)
            .stdin(File::open(&prompt_file)?)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("GIT_AGENT_ROLE", &self.role)
            .env("GIT_AGENT_PROMPT_FILE", &prompt_file)
            .env("GIT_AGENT_OUTPUT", &output_file);
        if self.task_json.is_some() {
            command.env("GIT_AGENT_TASK_FILE", &task_file);
        }
        for (name, value) in &self.env {
            command.env(format!("GIT_AGENT_{name}"), value);
        }
        for var in LOCAL_ENV_VARS {
            command.env_remove(var);
        }
        command.envs(self.launch.env.iter().map(|(n, v)| (n, v)));
        {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let log_file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let log_file = Arc::new(Mutex::new(log_file));
        let started = Instant::now();
        let started_at = crate::store::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("starting the {} agent `{program}`", self.role))?;
        let group = child.id();
        let stdout = copy_into_log(child.stdout.take(), &log_file, true);
        let stderr = copy_into_log(child.stderr.take(), &log_file, false);
        // A killed orchestrator leaves its agents running (their own group);
        // the next run reads this file to stop them before it retries.
        let group_file = self.path("pgid");
        std::fs::write(&group_file, group.to_string())?;
        let ending = loop {
            if let Some(status) = child.try_wait()? {
                break match status.code() {
                    Some(code) => Ending::Exited(code),
                    None => Ending::Signalled,
                };
            }
            if started.elapsed() >= self.timeout {
                stop_group(group, &mut child);
                break Ending::TimedOut;
            }
            if stop.load(Ordering::Relaxed) {
                stop_group(group, &mut child);
                break Ending::Interrupted;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // Whatever the agent left running in its group goes with it.
        signal_group(group, libc::SIGKILL);
        let _ = child.wait();
        let _ = std::fs::remove_file(&group_file);
        let duration = started.elapsed();
        let ended_at = crate::store::now();
        let deadline = Instant::now() + DRAIN;
        let printed = drain(stdout, deadline);
        drain(stderr, deadline);
        let _ = std::fs::write(self.path("stdout"), &printed);
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        let (message, usage) = match self.launch.preset {
            Some(preset) => {
                let reading = preset.read(&printed);
                (reading.message, reading.usage)
            }
            None => (printed, None),
        };
        let output = std::fs::read_to_string(&output_file)
            .ok()
            .filter(|s| !s.trim().is_empty());
        let usage = usage.or_else(|| output.as_deref().and_then(Usage::reported_in));
        Ok(Outcome {
            ending,
            duration,
            tail: tail(&logged),
            output,
            message,
            usage,
            log,
            started_at,
            ended_at,
        })
    }

    /// The argv with `{prompt_file}`, `{task_file}`, `{output_file}`,
    /// `{worktree}`, `{base}` and `{branch}` expanded in each element; any
    /// other braces are left as they are.
    fn expanded_argv(&self, cwd: &Path, prompt: &Path, task: &Path, output: &Path) -> Vec<String> {
        let var = |name: &str| {
            self.env
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let values = [
            ("{prompt_file}", prompt.display().to_string()),
            ("{task_file}", task.display().to_string()),
            ("{output_file}", output.display().to_string()),
            ("{worktree}", cwd.display().to_string()),
            ("{base}", var("BASE")),
            ("{branch}", var("BRANCH")),
        ];
        self.launch
            .argv
            .iter()
            .map(|arg| {
                values
                    .iter()
                    .fold(arg.clone(), |a, (key, value)| a.replace(key, value))
            })
            .collect()
    }

    fn path(&self, extension: &str) -> PathBuf {
        let mut name = self.files.file_name().unwrap_or_default().to_os_string();
        name.push(".");
        name.push(extension);
        self.files.with_file_name(name)
    }
}

/// A pipe being copied into the log by a thread of its own, and (for
/// stdout) what it read so far.
struct Copying {
    thread: std::thread::JoinHandle<()>,
    kept: Arc<Mutex<Vec<u8>>>,
}

/// A thread that copies one of the agent's pipes into the log as it comes
/// (so the log interleaves stdout and stderr) and, for stdout, keeps it.
fn copy_into_log(
    pipe: Option<impl Read + Send + 'static>,
    log: &Arc<Mutex<File>>,
    keep: bool,
) -> Option<Copying> {
    let mut pipe = pipe?;
    let log = log.clone();
    let kept = Arc::new(Mutex::new(Vec::new()));
    let into = kept.clone();
    let thread = std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buffer) {
            if n == 0 {
                break;
            }
            if let Ok(mut log) = log.lock() {
                let _ = log.write_all(&buffer[..n]);
            }
            if keep {
                if let Ok(mut kept) = into.lock() {
                    kept.extend_from_slice(&buffer[..n]);
                }
            }
        }
    });
    Some(Copying { thread, kept })
}

/// What a copying thread kept by the time it finished or `deadline` came:
/// a process that left the agent's group may hold the pipe open for
/// ever, and what the agent itself printed is all there by then.
fn drain(copying: Option<Copying>, deadline: Instant) -> String {
    let Some(copying) = copying else {
        return String::new();
    };
    while !copying.thread.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let kept = copying.kept.lock().map(|k| k.clone()).unwrap_or_default();
    String::from_utf8_lossy(&kept).into_owned()
}

/// SIGTERM the group, give it a moment, then SIGKILL it.
fn stop_group(group: u32, child: &mut std::process::Child) {
    signal_group(group, libc::SIGTERM);
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
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
/// found by the `.pgid` files next to its logs. The group is stopped only if
/// its leader is gone (then only its old members remain, so the id cannot
/// have been reused) or still works in `cwd`: SIGTERM first, so that a git
/// it runs can let go of its `index.lock`, then SIGKILL after [`GRACE`].
pub fn stop_orphans(log_dir: &Path, cwd: &Path) {
    stop_orphans_of(log_dir, cwd, &[]);
}

/// [`stop_orphans`], for the runs of `roles` only (all of them where
/// `roles` is empty): the `.pgid` files of other roles are left alone.
pub fn stop_orphans_of(log_dir: &Path, cwd: &Path, roles: &[&str]) {
    let Ok(entries) = std::fs::read_dir(log_dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|e| e != "pgid") {
            continue;
        }
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        if !roles.is_empty() && !roles.iter().any(|r| stem.ends_with(&format!("-{r}"))) {
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
                signal_group(group, libc::SIGTERM);
                let deadline = Instant::now() + GRACE;
                while group_alive(group) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                signal_group(group, libc::SIGKILL);
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}

/// Whether any process of group `group` is left.
fn group_alive(group: u32) -> bool {
    // SAFETY: kill(2) with signal 0 only asks whether the group exists.
    unsafe { libc::kill(-(group as libc::pid_t), 0) == 0 }
}

/// The processes whose working directory is `dir` or inside it, read from
/// `/proc` (none where there is no `/proc`).
pub fn processes_in(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .collect()
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
