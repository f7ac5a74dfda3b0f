//! The test environment: real git repositories in temp dirs, the real
//! `git-agent` binary, and git configured in isolation from the machine's.

#![allow(dead_code)]

pub mod model;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A scenario `fn name(format: &str)` run as two tests, `name::files` and
/// `name::reftable`: the ref formats every repository git makes may use.
#[macro_export]
macro_rules! on_both_ref_formats {
    ($scenario:ident) => {
        mod $scenario {
            #[test]
            fn files() {
                super::$scenario("files")
            }
            #[test]
            fn reftable() {
                super::$scenario("reftable")
            }
        }
    };
}

pub const BIN: &str = env!("CARGO_BIN_EXE_git-agent");

/// A repository with one commit on `main`, in a temp dir of its own.
pub struct Repo {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
}

impl Repo {
    /// A repository in the ref format `GIT_AGENT_TEST_REF_FORMAT` names
    /// (`files` when unset), so that the whole suite can run on either.
    pub fn new() -> Repo {
        let format = std::env::var("GIT_AGENT_TEST_REF_FORMAT").unwrap_or_else(|_| "files".into());
        Repo::with_ref_format(&format)
    }

    /// A repository whose refs are stored in `format` (`files` or `reftable`).
    pub fn with_ref_format(format: &str) -> Repo {
        let tmp = tempfile::tempdir().expect("temp dir");
        let home = tmp.path().join("home");
        let root = tmp.path().join("repo");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(
            home.join(".gitconfig"),
            "[user]\n\tname = Test User\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n",
        )
        .unwrap();
        let repo = Repo {
            _tmp: tmp,
            root,
            home,
        };
        repo.git(&[
            "init",
            "-q",
            "-b",
            "main",
            &format!("--ref-format={format}"),
        ]);
        repo.write("README.md", "# project\n");
        repo.git(&["add", "README.md"]);
        repo.git(&["commit", "-q", "-m", "initial"]);
        repo
    }

    /// The ref format git reports for this repository.
    pub fn ref_format(&self) -> String {
        self.git(&["rev-parse", "--show-ref-format"])
            .trim()
            .to_string()
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    /// `<git-dir>`, where refs and the agent's local state live.
    pub fn git_dir(&self) -> PathBuf {
        self.root.join(".git")
    }

    /// Apply the isolated environment to a command. `git-agent` is first on
    /// `PATH`, so installed hooks run the binary under test.
    pub fn env(&self, cmd: &mut Command) {
        cmd.current_dir(&self.root)
            .env("PATH", path_with_bin())
            .env("HOME", &self.home)
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("NO_COLOR")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("GIT_CONFIG_GLOBAL")
            .env_remove("GIT_AGENT_ACTOR")
            .env_remove("GIT_AGENT_ROLE")
            .env_remove("GIT_AGENT_TASK")
            .env_remove("GIT_AGENT_ATTEMPT")
            .env_remove("GIT_AGENT_RUN")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE");
    }

    /// A `git-agent` command, ready to run in this repo.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        self.env(&mut cmd);
        cmd.args(args).stdin(Stdio::null());
        cmd
    }

    /// Run `git-agent <args>` and return its output, whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run git-agent")
    }

    /// Run `git-agent <args>`, expect success, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "git-agent {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run `git-agent <args>`, expect exit `code`, return stderr.
    pub fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "git-agent {args:?}: expected exit {code}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Run `git-agent <args> --json` and parse its stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).expect("valid JSON on stdout")
    }

    /// Run git in the repo, expect success, return stdout trimmed.
    pub fn git(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        self.env(&mut cmd);
        let out = cmd.args(args).output().expect("run git");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    pub fn write(&self, name: &str, content: &str) {
        let path = self.root.join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, content).unwrap();
    }

    /// Every ref under `refs/agent/`, as `git for-each-ref` lists them.
    pub fn agent_refs(&self) -> Vec<String> {
        let out = self.git(&["for-each-ref", "--format=%(refname)", "refs/agent/"]);
        out.lines().map(String::from).collect()
    }

    /// Import a plan file written from `yaml`; returns key -> id.
    pub fn plan(&self, yaml: &str) -> serde_json::Map<String, Value> {
        self.write("plan.yaml", yaml);
        let v = self.json(&["plan", "--file", "plan.yaml"]);
        v["tasks"].as_object().unwrap().clone()
    }

    /// Add one task by hand; returns its id.
    pub fn add(&self, title: &str, extra: &[&str]) -> String {
        let mut args = vec!["task", "add", title];
        args.extend_from_slice(extra);
        self.ok(&args).trim().to_string()
    }

    /// The snapshot of one task, as `show --json` prints it.
    pub fn task(&self, id: &str) -> Value {
        self.json(&["show", id])["task"].clone()
    }

    pub fn state(&self, id: &str) -> String {
        self.task(id)["state"].as_str().unwrap().to_string()
    }
}

/// Where `.ci/agent-clis` installs the pinned agent CLIs.
pub fn agent_clis_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/agent-clis/bin")
}

/// `PATH` with the directory of the binary under test in front, then the
/// pinned agent CLIs (when `.ci/agent-clis` installed them).
pub fn path_with_bin() -> std::ffi::OsString {
    let bin_dir = Path::new(BIN).parent().expect("the binary has a directory");
    let mut dirs = vec![bin_dir.to_path_buf(), agent_clis_dir()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).expect("PATH entries without ':'")
}

/// A plan with `n` independent tasks `k0..k{n-1}`.
pub fn flat_plan(n: usize) -> String {
    let mut yaml = String::from("tasks:\n");
    for i in 0..n {
        yaml.push_str(&format!("  - key: k{i}\n    title: Task {i}\n"));
    }
    yaml
}

/// The absolute path of a scripted agent in `tests/fixtures/agents/`.
pub fn agent(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/agents")
        .join(name)
        .display()
        .to_string()
}

impl Repo {
    /// Write `.git-agent.yaml` with the scripted implementer (and `extra` lines).
    pub fn configure(&self, timeout: &str, max_attempts: u32, extra: &str) {
        let yaml = format!(
            "target: main\nparallel: 4\nroles:\n  implementer:\n    command: [sh, {}]\n    timeout: {timeout}\n    max_attempts: {max_attempts}\n{extra}",
            agent("implementer.sh")
        );
        self.write(".git-agent.yaml", &yaml);
    }

    /// The events of a task, by kind.
    pub fn kinds(&self, id: &str) -> Vec<String> {
        self.json(&["show", id])["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect()
    }

    /// Where the task worktrees live by default: beside the repository.
    pub fn worktrees(&self) -> PathBuf {
        self.root.with_file_name("repo.agent-worktrees")
    }

    /// The worktree of task `id`.
    pub fn worktree(&self, id: &str) -> PathBuf {
        self.worktrees().join(id)
    }

    /// Where this repository's review worktrees go: `reviews-<key>` in the
    /// worktrees folder, the key a hash of the git dir's path (FNV-1a, as
    /// git-agent computes it).
    pub fn reviews(&self) -> PathBuf {
        let dir = self.git_dir().canonicalize().unwrap();
        let hash = dir
            .as_os_str()
            .as_encoded_bytes()
            .iter()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
            });
        self.worktrees()
            .join(format!("reviews-{:08x}", hash as u32))
    }

    /// The log directory of a task's agent runs.
    pub fn logs(&self, id: &str) -> PathBuf {
        self.git_dir().join("agent/logs").join(id)
    }

    /// A path in the test's temp dir, outside the repository.
    pub fn scratch(&self, name: &str) -> String {
        self.home.join(name).display().to_string()
    }
}

/// Whether a process runs (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// The word after the last `VERDICT:` line of an agent's message, trimmed.
pub fn verdict(message: &str) -> Option<String> {
    message
        .lines()
        .filter_map(|l| l.trim().strip_prefix("VERDICT:"))
        .map(|v| v.trim().to_string())
        .next_back()
}

/// Wait until `check` holds, for at most `seconds`.
pub fn wait_for(seconds: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    check()
}

/// `PATH` with the binary under test but without the pinned agent CLIs.
pub fn path_without_agent_clis() -> std::ffi::OsString {
    let clis = agent_clis_dir();
    std::env::join_paths(std::env::split_paths(&path_with_bin()).filter(|d| *d != clis))
        .expect("PATH entries without ':'")
}

/// The real agent CLI `name` (`claude`, `codex`, `gemini`, `aider`,
/// `opencode`) on the tests' `PATH`. Where it is missing the test is skipped
/// with a note saying how to install it; under `CI=true` a missing CLI
/// fails the test instead.
pub fn cli(name: &str) -> Option<PathBuf> {
    let found = std::env::split_paths(&path_with_bin())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        let how = format!(
            "the {name} CLI is not installed: `.ci/agent-clis` installs the pinned agent CLIs into {}",
            agent_clis_dir().display()
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{how} (CI=true: a missing CLI fails the run)");
        }
        eprintln!("skipped: {how}");
    }
    found
}

/// The folder `.ci/hook-managers` installs the pinned hook managers into.
pub fn hook_managers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/hook-managers/bin")
}

/// The pinned hook manager `name` (lefthook, husky, pre-commit), or `None`
/// (the test skips) where `.ci/hook-managers` has not installed it; under
/// `CI=true` a missing manager fails the run instead.
pub fn hook_manager(name: &str) -> Option<PathBuf> {
    let found = hook_managers_dir().join(name);
    if found.is_file() {
        return Some(found);
    }
    let how = format!(
        "{name} is not installed: `.ci/hook-managers` installs the pinned hook managers into {}",
        hook_managers_dir().display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{how} (CI=true: a missing hook manager fails the run)");
    }
    eprintln!("skipped: {how}");
    None
}
