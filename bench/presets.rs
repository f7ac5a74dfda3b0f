//! What each preset's CLI costs on top of git-agent: the wall time of one
//! implementer attempt (`git-agent work <task>`: worktree, prompt, the agent,
//! commit, submit) with each real agent CLI against the scripted model
//! service of the tests (two model turns: one file write, then the final
//! message), beside the same attempt with an agent that is a one-line `sh`
//! script, which is git-agent's own overhead per task.
//!
//! Run by hand (CI does not run it):
//!
//! ```text
//! .ci/agent-clis            # the pinned CLIs, into target/agent-clis
//! cargo bench --bench presets
//! ```
//!
//! Each measured attempt works on a fresh task of one temporary repository
//! per CLI, with an isolated HOME. A CLI that is not installed gets a row
//! saying so. Timings are medians (and minima) over five attempts.

#[allow(dead_code)]
#[path = "common.rs"]
mod common;
#[allow(unused)]
#[path = "../tests/common/model/mod.rs"]
mod model;

use common::{show, Stats};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 5;
const BIN: &str = env!("CARGO_BIN_EXE_git-agent");

/// One row: the role config line and what the CLI needs to reach the service.
struct Agent {
    name: &'static str,
    /// The `implementer:` value in `.git-agent.yaml`.
    role: String,
    /// Environment for git-agent (and so the agent).
    env: Vec<(String, String)>,
    /// Files to write into HOME (path relative to HOME, content).
    home_files: Vec<(String, String)>,
}

fn agents(url: &str) -> Vec<Agent> {
    let base = |name: &'static str| Agent {
        name,
        role: format!("{{ agent: {name} }}"),
        env: Vec::new(),
        home_files: Vec::new(),
    };
    let mut sh = base("sh (git-agent alone)");
    sh.role = "{ command: [sh, -c, 'echo hello > hello.txt'] }".into();
    let mut claude = base("claude");
    claude.env = vec![
        ("ANTHROPIC_BASE_URL".into(), url.into()),
        ("ANTHROPIC_API_KEY".into(), "scripted".into()),
        (
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(),
            "1".into(),
        ),
    ];
    let mut codex = base("codex");
    codex.env = vec![("SCRIPTED_API_KEY".into(), "scripted".into())];
    codex.home_files = vec![(
        ".codex/config.toml".into(),
        format!(
            "model = \"gpt-5.5\"\nmodel_provider = \"scripted\"\n\n[model_providers.scripted]\n\
             name = \"scripted\"\nbase_url = \"{url}/v1\"\nenv_key = \"SCRIPTED_API_KEY\"\nwire_api = \"responses\"\n"
        ),
    )];
    let mut gemini = base("gemini");
    gemini.env = vec![
        ("GOOGLE_GEMINI_BASE_URL".into(), url.into()),
        ("GEMINI_API_KEY".into(), "scripted".into()),
    ];
    gemini.home_files = vec![(
        ".gemini/settings.json".into(),
        r#"{"security":{"auth":{"selectedType":"gemini-api-key"}},"privacy":{"usageStatisticsEnabled":false},"telemetry":{"enabled":false}}"#.into(),
    )];
    let mut aider = base("aider");
    aider.env = vec![
        ("AIDER_MODEL".into(), "openai/scripted".into()),
        ("OPENAI_API_BASE".into(), format!("{url}/v1")),
        ("OPENAI_API_KEY".into(), "sk-scripted".into()),
    ];
    let mut opencode = base("opencode");
    opencode.env = vec![
        (
            "OPENCODE_CONFIG_CONTENT".into(),
            format!(
                r#"{{"provider":{{"scripted":{{"npm":"@ai-sdk/openai-compatible","name":"Scripted","options":{{"baseURL":"{url}/v1","apiKey":"sk-scripted"}},"models":{{"scripted":{{"name":"Scripted"}}}}}}}},"model":"scripted/scripted"}}"#
            ),
        ),
        ("OPENCODE_DISABLE_MODELS_FETCH".into(), "1".into()),
    ];
    // What the tests do so that opencode does not fetch its plugin at start.
    opencode.home_files = vec![
        (
            ".config/opencode/package-lock.json".into(),
            r#"{"packages": {"": {"dependencies": {"@opencode-ai/plugin": "*"}}}}"#.into(),
        ),
        (
            ".config/opencode/node_modules/@opencode-ai/plugin/.keep".into(),
            String::new(),
        ),
    ];
    vec![sh, claude, codex, gemini, aider, opencode]
}

fn main() -> Result<(), Box<dyn Error>> {
    let service = model::ModelService::scripted();
    let clis = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/agent-clis/bin");
    let path = std::env::join_paths([clis.clone()].into_iter().chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))?;
    println!("| agent | one implementer attempt, median | min | runs |");
    println!("|---|---|---|---|");
    for agent in agents(&service.url()) {
        let program = agent.name.split(' ').next().unwrap_or_default();
        if program != "sh" && !clis.join(program).exists() && which(program, &path).is_none() {
            println!("| {} | not installed (`.ci/agent-clis`) | | |", agent.name);
            continue;
        }
        let times = attempts(&agent, &path)?;
        let stats = Stats::of(times);
        println!(
            "| {} | {} | {} | {} |",
            agent.name,
            show(stats.median),
            show(stats.min),
            stats.runs
        );
    }
    Ok(())
}

fn which(program: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Time `RUNS` implementer attempts of `agent`, each on a new task.
fn attempts(agent: &Agent, path: &std::ffi::OsStr) -> Result<Vec<Duration>, Box<dyn Error>> {
    let tmp = tempfile::tempdir()?;
    let home = tmp.path().join("home");
    let root = tmp.path().join("repo");
    std::fs::create_dir_all(&home)?;
    std::fs::create_dir_all(&root)?;
    std::fs::write(
        home.join(".gitconfig"),
        "[user]\n\tname = Bench\n\temail = bench@example.com\n[init]\n\tdefaultBranch = main\n",
    )?;
    for (file, content) in &agent.home_files {
        let file = home.join(file);
        std::fs::create_dir_all(file.parent().expect("a file in a folder"))?;
        std::fs::write(file, content)?;
    }
    let run = |args: &[&str], program: &str| -> Result<String, Box<dyn Error>> {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(&root)
            .env("HOME", &home)
            .env("PATH", path)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .envs(agent.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        let out = cmd.output()?;
        if !out.status.success() {
            return Err(format!(
                "{program} {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    run(&["init", "-q", "-b", "main"], "git")?;
    run(&["commit", "-q", "--allow-empty", "-m", "initial"], "git")?;
    std::fs::write(
        root.join(".git-agent.yaml"),
        format!(
            "target: main\nroles:\n  implementer: {}\n",
            agent.role.replace("}", ", timeout: 5m }")
        ),
    )?;
    let mut times = Vec::new();
    for i in 0..RUNS {
        let spec = format!("MODEL-WRITE hello-{i}.txt hello {i}");
        let id = run(
            &["task", "add", &format!("Hello {i}"), "--spec", &spec],
            BIN,
        )?;
        let started = Instant::now();
        run(&["work", &id], BIN)?;
        times.push(started.elapsed());
    }
    Ok(times)
}
