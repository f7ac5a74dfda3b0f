//! The opencode preset against the real CLI and the scripted model service.
//!
//! The user's side of the set-up, as a test gives it: a custom provider in
//! `OPENCODE_CONFIG_CONTENT` (`@ai-sdk/openai-compatible` with
//! `options.baseURL` pointing at the service) that is also the default
//! `model`, `OPENCODE_DISABLE_MODELS_FETCH=1` (no models.dev download), and a
//! config directory that already has its `@opencode-ai/plugin` dependency,
//! so that opencode installs nothing from the npm registry.

use crate::common::model::{ModelService, INPUT_TOKENS, OUTPUT_TOKENS};
use crate::common::verdict;
use crate::common::{self, Repo};
use git_agent::agent::preset::{Preset, Reading};
use std::process::{Command, Output, Stdio};

/// One run of opencode as `role`, the way the preset says, on `prompt`.
struct Run {
    repo: Repo,
    service: ModelService,
    output: Output,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    fn reading(&self) -> Reading {
        Preset::Opencode.read(&self.stdout())
    }

    /// What the run printed and what the model service saw, for failures.
    fn report(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}\nunanswered: {:?}",
            self.output.status.code(),
            self.stdout(),
            String::from_utf8_lossy(&self.output.stderr),
            self.service.unanswered()
        )
    }
}

fn run(role: &str, prompt: &str) -> Option<Run> {
    let opencode = common::cli("opencode")?;
    let repo = Repo::new();
    let service = ModelService::scripted();
    let prompt_file = repo.scratch("prompt.md");
    std::fs::write(&prompt_file, prompt).unwrap();
    let invocation = Preset::Opencode
        .invocation(role)
        .expect("opencode plays every role");
    let mut cmd = Command::new(opencode);
    repo.env(&mut cmd);
    user_setup(&repo, &service, &mut cmd);
    cmd.args(
        invocation.argv[1..]
            .iter()
            .map(|a| a.replace("{prompt_file}", &prompt_file)),
    )
    .envs(invocation.env)
    .env("PWD", repo.path())
    .stdin(std::fs::File::open(&prompt_file).unwrap())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let output = cmd.output().expect("run opencode");
    Some(Run {
        repo,
        service,
        output,
    })
}

/// What a user configures to reach the service, in the test's HOME.
fn user_setup(repo: &Repo, service: &ModelService, cmd: &mut Command) {
    let config = serde_json::json!({
        "provider": {"scripted": {
            "npm": "@ai-sdk/openai-compatible",
            "name": "Scripted",
            "options": {"baseURL": format!("{}/v1", service.url()), "apiKey": "sk-scripted"},
            "models": {"scripted": {"name": "Scripted"}},
        }},
        "model": "scripted/scripted",
    });
    let config_dir = repo.home().join(".config/opencode");
    std::fs::create_dir_all(config_dir.join("node_modules/@opencode-ai/plugin")).unwrap();
    std::fs::write(
        config_dir.join("package-lock.json"),
        r#"{"packages": {"": {"dependencies": {"@opencode-ai/plugin": "*"}}}}"#,
    )
    .unwrap();
    cmd.env("OPENCODE_CONFIG_CONTENT", config.to_string())
        .env("OPENCODE_DISABLE_MODELS_FETCH", "1")
        .env_remove("OPENCODE_PERMISSION")
        .env_remove("OPENCODE_CONFIG")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("XDG_STATE_HOME");
}

#[test]
fn implementer_writes_the_file_a_model_write_line_asks_for() {
    let Some(run) = run("implementer", "Greet.\nMODEL-WRITE hello.txt hello world\n") else {
        return;
    };
    assert!(run.output.status.success(), "{}", run.report());
    let written = std::fs::read_to_string(run.repo.path().join("hello.txt"));
    assert_eq!(
        written.ok().as_deref(),
        Some("hello world\n"),
        "{}",
        run.report()
    );
    assert_eq!(run.reading().message, "Done: wrote 1 file(s).");
}

#[test]
fn one_model_request_per_step_and_none_for_a_title() {
    let Some(run) = run("implementer", "MODEL-WRITE hello.txt hello\n") else {
        return;
    };
    assert!(run.output.status.success(), "{}", run.report());
    let requests = run.service.requests();
    assert_eq!(
        requests.len(),
        2,
        "a write, then the final message: {}",
        run.report()
    );
    assert!(
        requests.iter().all(|r| r.body.contains("\"tools\"")),
        "{}",
        run.report()
    );
}

#[test]
fn reviewer_approves_when_the_diff_has_the_wanted_path_and_reports_usage() {
    let prompt = "You are the reviewer.\nMODEL-APPROVE-IF x.txt\n\n+++ b/x.txt\n";
    let Some(run) = run("reviewer", prompt) else {
        return;
    };
    assert!(run.output.status.success(), "{}", run.report());
    let reading = run.reading();
    assert_eq!(
        verdict(&reading.message).as_deref(),
        Some("APPROVE"),
        "{}",
        run.report()
    );
    let usage = reading.usage.expect("opencode reports usage");
    assert_eq!(usage.input_tokens, Some(INPUT_TOKENS));
    assert_eq!(usage.output_tokens, Some(OUTPUT_TOKENS));
}

#[test]
fn reviewer_asks_for_changes_when_the_diff_lacks_the_wanted_path() {
    let prompt = "You are the reviewer.\nMODEL-APPROVE-IF x.txt\n\n+++ b/y.txt\n";
    let Some(run) = run("reviewer", prompt) else {
        return;
    };
    assert!(run.output.status.success(), "{}", run.report());
    let message = run.reading().message;
    assert_eq!(
        verdict(&message).as_deref(),
        Some("CHANGES"),
        "{}",
        run.report()
    );
    assert!(message.contains("MODEL-WRITE x.txt fixed"), "{message}");
}

#[test]
fn read_only_argv_refuses_the_models_write() {
    let Some(run) = run("reviewer", "MODEL-WRITE hello.txt hello\n") else {
        return;
    };
    assert!(run.output.status.success(), "{}", run.report());
    let requests = run.service.requests();
    assert!(
        requests.iter().all(
            |r| !r.body.contains("\"name\":\"write\"") && !r.body.contains("\"name\":\"bash\"")
        ),
        "no write or shell tool is offered: {}",
        run.report()
    );
    assert!(
        run.stdout().contains("unavailable tool 'write'"),
        "the model's write call was refused: {}",
        run.report()
    );
    assert!(
        !run.repo.path().join("hello.txt").exists(),
        "{}",
        run.report()
    );
}

// git-agent itself running the opencode preset in each role.

/// `.git-agent.yaml` with the opencode preset in every role (no gate).
fn configure_opencode(repo: &Repo) {
    repo.write(
        ".git-agent.yaml",
        "target: main\n\
         roles:\n  \
           planner: { agent: opencode, timeout: 120s }\n  \
           implementer: { agent: opencode, timeout: 120s, max_attempts: 2 }\n  \
           reviewer: { agent: opencode, timeout: 120s }\n  \
           integrator: { agent: opencode, timeout: 120s }\n",
    );
}

/// `git-agent <args>` with the user's set-up in its environment, which the
/// agents it starts inherit; it must exit with `code`. Its stdout.
fn git_agent_exits(repo: &Repo, service: &ModelService, code: i32, args: &[&str]) -> String {
    let mut cmd = repo.cmd(args);
    user_setup(repo, service, &mut cmd);
    let out = cmd.output().expect("run git-agent");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "git-agent {args:?}\nstdout: {stdout}\nstderr: {}\nunanswered: {:?}",
        String::from_utf8_lossy(&out.stderr),
        service.unanswered()
    );
    stdout
}

/// Start opencode once, so that its database exists: two first starts at
/// once race on creating it (1.18.33: one fails with "Failed query: CREATE
/// TABLE"), which would cost a parallel implementer an attempt.
fn started_once(repo: &Repo, service: &ModelService) {
    let mut cmd = Command::new(common::cli("opencode").expect("opencode is installed"));
    repo.env(&mut cmd);
    user_setup(repo, service, &mut cmd);
    let out = cmd
        .args(["db", "path"])
        .stdin(Stdio::null())
        .output()
        .expect("run opencode");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A task whose spec is `spec`, implemented by opencode: its id.
fn implemented(repo: &Repo, service: &ModelService, title: &str, spec: &str) -> String {
    let id = repo.add(title, &["--spec", spec]);
    git_agent_exits(repo, service, 0, &["work", &id]);
    assert_eq!(repo.state(&id), "in_review");
    id
}

/// The last event of `kind` of a task.
fn last_event(repo: &Repo, id: &str, kind: &str) -> serde_json::Value {
    repo.json(&["show", id])["events"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|e| e["kind"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("{id} has no {kind} event"))
}

#[test]
fn opencode_as_planner_writes_a_plan_that_is_imported() {
    let Some(_) = common::cli("opencode") else {
        return;
    };
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure_opencode(&repo);
    let out = git_agent_exits(
        &repo,
        &service,
        0,
        &["plan", "goal MODEL-PLAN a,b", "--json"],
    );
    let out: serde_json::Value = serde_json::from_str(&out).expect("plan --json");
    let tasks = out["tasks"].as_object().expect("the imported tasks");
    let mut keys: Vec<&String> = tasks.keys().collect();
    keys.sort();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(
        repo.task(tasks["a"].as_str().unwrap())["title"],
        "Write a.txt"
    );
    assert_eq!(
        repo.git(&["status", "--porcelain", "--untracked-files=all"]),
        "?? .git-agent.yaml"
    );
}

#[test]
fn opencode_as_implementer_commits_the_file_on_the_task_branch() {
    let Some(_) = common::cli("opencode") else {
        return;
    };
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure_opencode(&repo);
    let id = implemented(
        &repo,
        &service,
        "Greet",
        "MODEL-WRITE hello.txt hello from opencode",
    );
    let branch = format!("agent/{id}");
    assert_eq!(
        repo.git(&["show", &format!("{branch}:hello.txt")]),
        "hello from opencode"
    );
    assert_eq!(
        repo.git(&["diff", "--name-only", "main", &branch]),
        "hello.txt"
    );
    let usage = &last_event(&repo, &id, "submitted")["data"]["usage"];
    assert_eq!(
        usage["input_tokens"],
        2 * INPUT_TOKENS,
        "two steps: {usage}"
    );
    assert_eq!(
        usage["output_tokens"],
        2 * OUTPUT_TOKENS,
        "two steps: {usage}"
    );
}

#[test]
fn opencode_as_reviewer_approves_and_the_task_is_approved() {
    let Some(_) = common::cli("opencode") else {
        return;
    };
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure_opencode(&repo);
    let id = implemented(
        &repo,
        &service,
        "Write x",
        "MODEL-WRITE x.txt x\nMODEL-APPROVE-IF x.txt",
    );
    let out = git_agent_exits(&repo, &service, 0, &["review", &id]);
    assert!(out.contains(&format!("task {id}: approved")), "{out}");
    assert_eq!(repo.state(&id), "approved");
    let head = repo.task(&id)["head"].as_str().unwrap().to_string();
    let note = repo.git(&["notes", "--ref=agent-review", "show", &head]);
    assert!(note.contains("\"approve\""), "{note}");
    let usage = &last_event(&repo, &id, "reviewed")["data"]["usage"];
    assert_eq!(usage["input_tokens"], INPUT_TOKENS, "{usage}");
}

#[test]
fn opencode_as_reviewer_asks_for_changes_and_the_task_goes_back() {
    let Some(_) = common::cli("opencode") else {
        return;
    };
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure_opencode(&repo);
    let id = implemented(
        &repo,
        &service,
        "Write y, not x",
        "MODEL-WRITE y.txt y\nMODEL-APPROVE-IF x.txt",
    );
    git_agent_exits(&repo, &service, 1, &["review", &id]);
    let task = repo.task(&id);
    assert_eq!(task["state"], "open");
    assert!(
        task["reason"]
            .as_str()
            .unwrap()
            .contains("x.txt is missing"),
        "{task}"
    );
    let head = task["head"].as_str().unwrap().to_string();
    let note = repo.git(&["notes", "--ref=agent-review", "show", &head]);
    assert!(note.contains("\"changes\""), "{note}");
}

#[test]
fn opencode_as_integrator_resolves_a_conflict_and_both_tasks_land() {
    let Some(_) = common::cli("opencode") else {
        return;
    };
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure_opencode(&repo);
    let first = implemented(&repo, &service, "Shared A", "MODEL-WRITE shared.txt from a");
    let second = implemented(&repo, &service, "Shared B", "MODEL-WRITE shared.txt from b");
    for id in [&first, &second] {
        repo.ok(&["review", id, "--approve"]);
    }
    git_agent_exits(&repo, &service, 0, &["integrate"]);
    assert_eq!(repo.state(&first), "merged");
    assert_eq!(repo.state(&second), "merged");
    assert_eq!(repo.git(&["show", "main:shared.txt"]), "from b");
    let log = std::fs::read_to_string(repo.logs(&second).join("1-integrator.log"))
        .expect("the integrator's log");
    assert!(log.contains("\"tool\":\"write\""), "{log}");
    assert!(log.contains("Done: wrote 1 file(s)."), "{log}");
}

#[test]
fn opencode_in_every_role_takes_a_plan_to_main() {
    let Some(_) = common::cli("opencode") else {
        return;
    };
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure_opencode(&repo);
    started_once(&repo, &service);
    git_agent_exits(&repo, &service, 0, &["plan", "goal MODEL-PLAN a,b"]);
    let out = git_agent_exits(&repo, &service, 0, &["run", "--once"]);
    assert!(out.contains("2 merged"), "{out}");
    assert_eq!(repo.git(&["show", "main:a.txt"]), "a");
    assert_eq!(repo.git(&["show", "main:b.txt"]), "b");
}
