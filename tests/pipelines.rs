//! Whole pipelines against the real agent CLIs and the scripted model
//! service: `git agent plan "<goal>"` with a planner preset, then one
//! `git agent run -j 2` that implements, reviews and lands every task,
//! through one review that asks for changes and one merge conflict that the
//! integrator preset resolves.
//!
//! The scripted planner (`colliding_plan`) plans one task per key of the
//! goal's `MODEL-PLAN` line, each writing `shared.txt` (so that whichever
//! lands second conflicts with the first) and `<key>.txt`, but the last
//! task's spec leaves its `<key>.txt` out: its reviewer (`MODEL-APPROVE-IF
//! <key>.txt`) asks for it, and the next attempt writes it from that
//! feedback. Everything else is the service's `directives` script.

use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::model::{directives, role_of, ModelService, Reply, Turn};
use crate::common::{self, Repo};

/// The goal a user gives: two tasks, `a` and `b`.
const GOAL: &str = "Write a.txt and b.txt, each with a line in shared.txt.\nMODEL-PLAN a,b";

/// How long a whole `git agent run` may take before the test stops it.
const RUN_DEADLINE: u64 = 300;

/// The provider-key variable of codex's custom provider.
const CODEX_KEY_VAR: &str = "SCRIPTED_API_KEY";

/// The scripted model with the planner of the module doc.
fn model() -> ModelService {
    ModelService::start(Arc::new(|turn: &Turn| {
        if role_of(&turn.user_text) == "planner" {
            colliding_plan(&turn.user_text)
        } else {
            directives(turn)
        }
    }))
}

/// A fenced YAML plan of one task per `MODEL-PLAN` key: each writes
/// `shared.txt` and (but the last) `<key>.txt`, and is approved only with
/// `<key>.txt` in its diff.
fn colliding_plan(prompt: &str) -> Reply {
    let keys: Vec<String> = prompt
        .lines()
        .find_map(|l| l.split_once("MODEL-PLAN ").map(|(_, k)| k.trim()))
        .unwrap_or("one")
        .split(',')
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    let mut yaml = String::from("```yaml\ntasks:\n");
    for (i, key) in keys.iter().enumerate() {
        yaml.push_str(&format!(
            "  - key: {key}\n    title: Write {key}.txt\n    spec: |\n      MODEL-WRITE shared.txt from {key}\n"
        ));
        if i + 1 < keys.len() {
            yaml.push_str(&format!("      MODEL-WRITE {key}.txt {key}\n"));
        }
        yaml.push_str(&format!("      MODEL-APPROVE-IF {key}.txt\n"));
    }
    yaml.push_str("```\n");
    Reply::Text(format!("Here is the plan.\n\n{yaml}"))
}

/// What a user sets up once so that every CLI reaches the model service at
/// `model` (as tests/cli_*.rs do, one CLI each): config files in the test's
/// `HOME`, and variables in the environment git-agent's agents inherit.
fn user_setup(repo: &Repo, model: &ModelService, cmd: &mut Command) {
    let home = repo.home();
    let url = model.url();
    // Claude Code: the base URL and a key; no non-essential traffic.
    cmd.env("ANTHROPIC_BASE_URL", &url)
        .env("ANTHROPIC_API_KEY", "scripted-dummy-key")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1");
    // Codex: a custom Responses API provider, and a model of its catalog.
    let codex = home.join(".codex");
    std::fs::create_dir_all(&codex).unwrap();
    std::fs::write(
        codex.join("config.toml"),
        format!(
            "model = \"gpt-5.5\"\nmodel_provider = \"scripted\"\n\n\
             [model_providers.scripted]\nname = \"scripted\"\nbase_url = \"{url}/v1\"\n\
             env_key = \"{CODEX_KEY_VAR}\"\nwire_api = \"responses\"\n"
        ),
    )
    .unwrap();
    cmd.env(CODEX_KEY_VAR, "scripted-dummy-key");
    // Gemini CLI: the base URL and a key, and API-key auth in its settings.
    let gemini = home.join(".gemini");
    std::fs::create_dir_all(&gemini).unwrap();
    std::fs::write(
        gemini.join("settings.json"),
        r#"{
  "security": {"auth": {"selectedType": "gemini-api-key"}},
  "privacy": {"usageStatisticsEnabled": false},
  "telemetry": {"enabled": false},
  "general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false}
}
"#,
    )
    .unwrap();
    cmd.env("GOOGLE_GEMINI_BASE_URL", &url)
        .env("GEMINI_API_KEY", "scripted-dummy-key");
    // opencode: a custom OpenAI-compatible provider as the default model,
    // no models.dev fetch, and its plugin dependency already installed.
    let opencode = home.join(".config/opencode");
    std::fs::create_dir_all(opencode.join("node_modules/@opencode-ai/plugin")).unwrap();
    std::fs::write(
        opencode.join("package-lock.json"),
        r#"{"packages": {"": {"dependencies": {"@opencode-ai/plugin": "*"}}}}"#,
    )
    .unwrap();
    let config = serde_json::json!({
        "provider": {"scripted": {
            "npm": "@ai-sdk/openai-compatible",
            "name": "Scripted",
            "options": {"baseURL": format!("{url}/v1"), "apiKey": "sk-scripted"},
            "models": {"scripted": {"name": "Scripted"}},
        }},
        "model": "scripted/scripted",
    });
    cmd.env("OPENCODE_CONFIG_CONTENT", config.to_string())
        .env("OPENCODE_DISABLE_MODELS_FETCH", "1")
        .env_remove("OPENCODE_PERMISSION")
        .env_remove("OPENCODE_CONFIG")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("XDG_STATE_HOME");
    // aider: litellm's OpenAI provider, with the model's metadata.
    let metadata = repo.scratch("aider-models.json");
    std::fs::write(
        &metadata,
        r#"{"openai/scripted": {"max_input_tokens": 128000, "max_output_tokens": 4096,
            "input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002,
            "litellm_provider": "openai", "mode": "chat"}}"#,
    )
    .unwrap();
    cmd.env("AIDER_MODEL", "openai/scripted")
        .env("AIDER_MODEL_METADATA_FILE", &metadata)
        .env("OPENAI_API_BASE", format!("{url}/v1"))
        .env("OPENAI_API_KEY", "sk-scripted");
}

/// Start opencode once, as a user's opencode has been before: its first
/// start creates its database (`~/.local/share/opencode/opencode.db`), and
/// two first starts at once race on that (opencode 1.18.33: one of them
/// fails, exit 1, "Failed query: CREATE TABLE `workspace`"), which would
/// cost a parallel implementer an attempt.
fn opencode_started_once(repo: &Repo, model: &ModelService) {
    let mut cmd = Command::new(common::cli("opencode").expect("opencode is installed"));
    repo.env(&mut cmd);
    user_setup(repo, model, &mut cmd);
    let out = cmd
        .args(["db", "path"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run opencode");
    assert!(
        out.status.success(),
        "opencode db path: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `.git-agent.yaml` with a preset per role (planner, implementer,
/// reviewer, integrator) and no gate.
fn configure(repo: &Repo, [planner, implementer, reviewer, integrator]: [&str; 4]) {
    repo.write(
        ".git-agent.yaml",
        &format!(
            "target: main\n\
             roles:\n  \
               planner: {{ agent: {planner}, timeout: 120s }}\n  \
               implementer: {{ agent: {implementer}, timeout: 120s, max_attempts: 3 }}\n  \
               reviewer: {{ agent: {reviewer}, timeout: 120s }}\n  \
               integrator: {{ agent: {integrator}, timeout: 120s }}\n"
        ),
    );
}

/// What one `git-agent` command did.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Run `git-agent <args>` with the user's set-up, for at most `deadline`
/// seconds: past it, the run is stopped as Ctrl-C would (its agents with
/// it), and the test fails with what it printed.
fn git_agent(repo: &Repo, model: &ModelService, args: &[&str], deadline: u64) -> Ran {
    let out = repo.scratch("git-agent.out");
    let err = repo.scratch("git-agent.err");
    let mut cmd = repo.cmd(args);
    user_setup(repo, model, &mut cmd);
    cmd.stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start git-agent");
    let mut status = None;
    let ended = common::wait_for(deadline, || {
        status = child.try_wait().expect("wait for git-agent");
        status.is_some()
    });
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    if !ended {
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        if !common::wait_for(30, || child.try_wait().unwrap().is_some()) {
            let _ = child.kill();
        }
        let _ = child.wait();
        panic!(
            "git-agent {args:?} still ran after {deadline}s (stopped)\nstdout: {}\nstderr: {}\nstatus: {}\nunanswered: {:?}",
            read(&out),
            read(&err),
            repo.ok(&["status"]),
            model.unanswered()
        );
    }
    Ran {
        status: status.expect("the run ended"),
        stdout: read(&out),
        stderr: read(&err),
        took: started.elapsed(),
    }
}

/// `git_agent` that must exit 0.
fn git_agent_ok(repo: &Repo, model: &ModelService, args: &[&str], deadline: u64) -> Ran {
    let ran = git_agent(repo, model, args, deadline);
    assert_eq!(
        ran.status.code(),
        Some(0),
        "git-agent {args:?}\nstdout: {}\nstderr: {}\nunanswered: {:?}",
        ran.stdout,
        ran.stderr,
        model.unanswered()
    );
    ran
}

/// `git agent plan "<GOAL>"` as a user types it: the tasks it lists
/// (`  <id>  <key>  <title>` lines), as (key, id), in the order printed.
fn plan(repo: &Repo, model: &ModelService) -> Vec<(String, String)> {
    let ran = git_agent_ok(repo, model, &["plan", GOAL], 180);
    let mut lines = ran.stdout.lines();
    let head = lines.next().unwrap_or_default();
    assert!(
        head.starts_with("plan ") && head.contains(": 2 tasks (planner: "),
        "the plan and what the planner used: {}",
        ran.stdout
    );
    let tasks: Vec<(String, String)> = lines
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let id = words.next()?.to_string();
            Some((words.next()?.to_string(), id))
        })
        .collect();
    let keys: Vec<&str> = tasks.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["a", "b"], "{}", ran.stdout);
    eprintln!("plan took {:.1}s", ran.took.as_secs_f64());
    tasks
}

/// The events of a task, as `show --json` gives them.
fn events(repo: &Repo, id: &str) -> Vec<Value> {
    repo.json(&["show", id])["events"]
        .as_array()
        .expect("events")
        .clone()
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

/// The tokens an event's usage counts (0 if it has none).
fn tokens(event: &Value) -> u64 {
    event["data"]["usage"]["tokens"].as_u64().unwrap_or(0)
}

/// The integrator logs of a task's agent runs.
fn integrator_logs(repo: &Repo, id: &str) -> Vec<PathBuf> {
    std::fs::read_dir(repo.logs(id))
        .map(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.ends_with("-integrator.log"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Plan `GOAL` with `roles`, run everything to `main` with `run -j 2`, and
/// check what a user sees.
fn plan_and_run_to_main(roles: [&str; 4]) {
    let model = model();
    let repo = Repo::new();
    configure(&repo, roles);
    if roles.contains(&"opencode") {
        opencode_started_once(&repo, &model);
    }
    let tasks = plan(&repo, &model);
    let (a, b) = (&tasks[0].1, &tasks[1].1);

    let ran = git_agent_ok(&repo, &model, &["run", "-j", "2"], RUN_DEADLINE);
    eprintln!("run -j 2 took {:.1}s", ran.took.as_secs_f64());
    let report = || {
        format!(
            "run stdout: {}\nrun stderr: {}\n{}\nevents of a: {:#?}\nevents of b: {:#?}",
            ran.stdout,
            ran.stderr,
            repo.ok(&["status"]),
            events(&repo, a),
            events(&repo, b)
        )
    };
    assert!(
        ran.stdout.contains("1 changes requested") && ran.stdout.contains("2 merged"),
        "the run's summary: {}",
        report()
    );

    // Both tasks landed, each with its file, on main and in the main worktree.
    for (_, id) in &tasks {
        assert_eq!(repo.state(id), "merged", "{id}: {}", report());
    }
    let on_main = |path: &str| repo.git(&["show", &format!("main:{path}")]);
    assert_eq!(on_main("a.txt"), "a");
    assert_eq!(
        on_main("b.txt"),
        "fixed",
        "written from the review's feedback"
    );
    let shared = on_main("shared.txt");
    assert!(
        ["from a", "from b"].contains(&shared.as_str()),
        "the conflict resolved, no markers: {shared:?}"
    );
    for path in ["a.txt", "b.txt", "shared.txt"] {
        assert!(
            repo.path().join(path).exists(),
            "the main worktree moved forward: {path}"
        );
    }
    assert_eq!(repo.git(&["status", "--porcelain"]), "?? .git-agent.yaml");

    // The CHANGES round: b's first attempt lacked b.txt; its reviewer asked
    // for it, and b's second attempt was approved. a went straight through.
    let (ea, eb) = (events(&repo, a), events(&repo, b));
    let verdicts = |events: &[Value]| -> Vec<String> {
        of_kind(events, "reviewed")
            .iter()
            .map(|e| e["data"]["verdict"].as_str().unwrap_or("?").to_string())
            .collect()
    };
    assert_eq!(verdicts(&ea), ["approve"], "{}", report());
    assert_eq!(verdicts(&eb), ["changes", "approve"], "{}", report());
    let asked = of_kind(&eb, "reviewed")[0]["data"]["summary"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(asked.contains("b.txt is missing"), "{asked}");
    assert_eq!(of_kind(&eb, "submitted").len(), 2, "{}", report());
    assert_eq!(of_kind(&ea, "submitted").len(), 1, "{}", report());

    // The conflict: whichever landed second conflicted in shared.txt, and
    // the integrator agent resolved it (no trip back to the implementer).
    let resolved: Vec<&String> = [a, b]
        .into_iter()
        .filter(|id| !integrator_logs(&repo, id).is_empty())
        .collect();
    assert_eq!(
        resolved.len(),
        1,
        "one conflict, one integrator run: {}",
        report()
    );
    let resolved = resolved[0];
    let logs = integrator_logs(&repo, resolved);
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(
        !log.trim().is_empty(),
        "the integrator's log: {}",
        logs[0].display()
    );
    for e in [&ea, &eb] {
        assert!(of_kind(e, "integration_failed").is_empty(), "{}", report());
        assert!(of_kind(e, "failed").is_empty(), "{}", report());
    }

    // Usage on every agent's event: each attempt, each review, and the
    // merge the integrator agent resolved.
    for e in [&ea, &eb] {
        for event in of_kind(e, "submitted")
            .into_iter()
            .chain(of_kind(e, "reviewed"))
        {
            assert!(tokens(event) > 0, "usage recorded: {event}");
        }
    }
    let merged = events(&repo, resolved);
    let merged = of_kind(&merged, "merged");
    assert!(
        tokens(merged[0]) > 0,
        "the integrator's usage: {}",
        merged[0]
    );
    assert!(model.unanswered().is_empty(), "{:?}", model.unanswered());
}

#[test]
fn claude_implementing_with_codex_reviewing_lands_a_plan_through_changes_and_a_conflict() {
    let Some(_) = common::cli("claude") else {
        return;
    };
    let Some(_) = common::cli("codex") else {
        return;
    };
    plan_and_run_to_main(["claude", "claude", "codex", "claude"]);
}

#[test]
fn four_different_clis_land_a_plan_through_changes_and_a_conflict() {
    let Some(_) = common::cli("gemini") else {
        return;
    };
    let Some(_) = common::cli("opencode") else {
        return;
    };
    let Some(_) = common::cli("claude") else {
        return;
    };
    let Some(_) = common::cli("codex") else {
        return;
    };
    plan_and_run_to_main(["gemini", "opencode", "claude", "codex"]);
}
