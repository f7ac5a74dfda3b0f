//! The aider preset against the real CLI and the scripted model service.
//!
//! The user's side of the set-up, as a test gives it: `AIDER_MODEL=openai/scripted`
//! with `OPENAI_API_BASE` and `OPENAI_API_KEY` (litellm's OpenAI provider),
//! and a model metadata file that names the model's context and prices, so
//! that aider fetches no price list and reports a cost.

use crate::common::model::{ModelService, INPUT_TOKENS, OUTPUT_TOKENS};
use crate::common::verdict;
use crate::common::{self, Repo};
use git_agent::agent::preset::{Preset, Reading};
use std::process::{Command, Output, Stdio};

/// One run of aider as `role`, the way the preset says, on `prompt`.
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
        Preset::Aider.read(&self.stdout())
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
    let aider = common::cli("aider")?;
    let repo = Repo::new();
    let service = ModelService::scripted();
    let prompt_file = repo.scratch("prompt.md");
    std::fs::write(&prompt_file, prompt).unwrap();
    let invocation = Preset::Aider
        .invocation(role)
        .expect("aider plays every role");
    let mut cmd = Command::new(aider);
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
    let output = cmd.output().expect("run aider");
    Some(Run {
        repo,
        service,
        output,
    })
}

/// What a user configures to reach the service: the model and litellm's
/// OpenAI provider in the environment, and the model's metadata (context
/// and prices) in a file of the test's HOME.
fn user_setup(repo: &Repo, service: &ModelService, cmd: &mut Command) {
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
        .env("OPENAI_API_BASE", format!("{}/v1", service.url()))
        .env("OPENAI_API_KEY", "sk-scripted");
}

/// The paths `git status` lists as changed or untracked.
fn changed_paths(repo: &Repo) -> Vec<String> {
    repo.git(&["status", "--porcelain", "--untracked-files=all"])
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(String::from))
        .collect()
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
}

#[test]
fn the_prompt_file_is_one_chat_turn() {
    let Some(run) = run("implementer", "Line one.\nLine two.\nMODEL-WRITE a.txt a\n") else {
        return;
    };
    let requests = run.service.requests();
    assert_eq!(requests.len(), 1, "{}", run.report());
    assert!(
        requests[0].body.contains("Line one.\\nLine two."),
        "{}",
        requests[0].body
    );
}

#[test]
fn implementer_commits_nothing_and_leaves_no_files_of_its_own() {
    let Some(run) = run("implementer", "MODEL-WRITE hello.txt hello\n") else {
        return;
    };
    assert!(run.output.status.success(), "{}", run.report());
    assert_eq!(run.repo.git(&["rev-list", "--count", "HEAD"]), "1");
    assert_eq!(changed_paths(&run.repo), ["hello.txt"], "{}", run.report());
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
    assert!(!reading.message.contains("Aider v"), "{}", reading.message);
    let usage = reading.usage.expect("aider reports usage");
    assert_eq!(usage.input_tokens, Some(INPUT_TOKENS));
    assert_eq!(usage.output_tokens, Some(OUTPUT_TOKENS));
    assert_eq!(
        usage.cost_usd,
        Some(0.00018),
        "120 in at $1/M, 30 out at $2/M"
    );
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
fn read_only_argv_writes_no_file_when_the_model_writes_one() {
    let Some(run) = run("reviewer", "MODEL-WRITE hello.txt hello\n") else {
        return;
    };
    assert!(run.output.status.success(), "{}", run.report());
    let message = run.reading().message;
    assert!(
        message.contains("hello.txt\n```\nhello\n```"),
        "the model did answer with the file: {}",
        run.report()
    );
    assert!(
        !run.repo.path().join("hello.txt").exists(),
        "{}",
        run.report()
    );
    assert!(changed_paths(&run.repo).is_empty(), "{}", run.report());
}

// git-agent itself running the aider preset in each role.

/// `.git-agent.yaml` with the aider preset in every role (no gate).
fn configure_aider(repo: &Repo) {
    repo.write(
        ".git-agent.yaml",
        "target: main\n\
         roles:\n  \
           planner: { agent: aider, timeout: 120s }\n  \
           implementer: { agent: aider, timeout: 120s, max_attempts: 2 }\n  \
           reviewer: { agent: aider, timeout: 120s }\n  \
           integrator: { agent: aider, timeout: 120s }\n",
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

/// A task whose spec is `spec`, implemented by aider: its id.
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
fn aider_as_planner_writes_a_plan_that_is_imported() {
    let Some(_) = common::cli("aider") else {
        return;
    };
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure_aider(&repo);
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
        "?? .git-agent.yaml",
        "aider left nothing in the main worktree"
    );
}

#[test]
fn aider_as_implementer_commits_the_file_on_the_task_branch() {
    let Some(_) = common::cli("aider") else {
        return;
    };
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure_aider(&repo);
    let id = implemented(
        &repo,
        &service,
        "Greet",
        "MODEL-WRITE hello.txt hello from aider",
    );
    let branch = format!("agent/{id}");
    assert_eq!(
        repo.git(&["show", &format!("{branch}:hello.txt")]),
        "hello from aider"
    );
    assert_eq!(
        repo.git(&["diff", "--name-only", "main", &branch]),
        "hello.txt",
        "the task's commit holds the file and nothing of aider's"
    );
    let usage = &last_event(&repo, &id, "submitted")["data"]["usage"];
    assert_eq!(usage["input_tokens"], INPUT_TOKENS, "{usage}");
    assert_eq!(usage["output_tokens"], OUTPUT_TOKENS, "{usage}");
}

#[test]
fn aider_as_reviewer_approves_and_the_task_is_approved() {
    let Some(_) = common::cli("aider") else {
        return;
    };
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure_aider(&repo);
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
    assert!(
        usage["cost_usd"].as_f64().is_some_and(|c| c > 0.0),
        "{usage}"
    );
}

#[test]
fn aider_as_reviewer_asks_for_changes_and_the_task_goes_back() {
    let Some(_) = common::cli("aider") else {
        return;
    };
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure_aider(&repo);
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
fn aider_as_integrator_resolves_a_conflict_and_both_tasks_land() {
    let Some(_) = common::cli("aider") else {
        return;
    };
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure_aider(&repo);
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
    assert!(log.contains("Applied edit to shared.txt"), "{log}");
    assert_eq!(
        repo.git(&["ls-tree", "-r", "--name-only", "main"]),
        "README.md\nshared.txt",
        "nothing of aider's landed"
    );
}

#[test]
fn aider_in_every_role_takes_a_plan_to_main() {
    let Some(_) = common::cli("aider") else {
        return;
    };
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure_aider(&repo);
    git_agent_exits(&repo, &service, 0, &["plan", "goal MODEL-PLAN a,b"]);
    let out = git_agent_exits(&repo, &service, 0, &["run", "--once"]);
    assert!(out.contains("2 merged"), "{out}");
    assert_eq!(repo.git(&["show", "main:a.txt"]), "a");
    assert_eq!(repo.git(&["show", "main:b.txt"]), "b");
}
