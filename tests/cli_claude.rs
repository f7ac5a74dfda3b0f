//! The claude preset against the real Claude Code CLI and the scripted
//! model service (Anthropic Messages API on 127.0.0.1).

use crate::common::model::{ModelService, INPUT_TOKENS, OUTPUT_TOKENS};
use crate::common::verdict;
use crate::common::{self, Repo};
use git_agent::agent::preset::Preset;
use std::process::{Command, Output, Stdio};

/// What a user sets to point Claude Code at a model service: the base URL,
/// a key (any string does for the scripted service), and no traffic to
/// Anthropic's own telemetry endpoints.
fn model_env(cmd: &mut Command, model: &ModelService) {
    cmd.env("ANTHROPIC_BASE_URL", model.url())
        .env("ANTHROPIC_API_KEY", "scripted-dummy-key")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1");
}

/// The real `claude` as the preset plays `role`, as git-agent starts an
/// agent: cwd and `$PWD` the repo, stdin a file holding `prompt`, stdout
/// and stderr apart.
fn claude(repo: &Repo, model: &ModelService, role: &str, prompt: &str) -> Command {
    let invocation = Preset::Claude
        .invocation(role)
        .expect("claude plays every role");
    let prompt_file = repo.scratch(&format!("{role}-prompt.md"));
    std::fs::write(&prompt_file, prompt).unwrap();
    let argv: Vec<String> = invocation
        .argv
        .iter()
        .map(|a| a.replace("{prompt_file}", &prompt_file))
        .collect();
    let mut cmd = Command::new(&argv[0]);
    repo.env(&mut cmd);
    model_env(&mut cmd, model);
    cmd.args(&argv[1..])
        .envs(invocation.env.iter().map(|(k, v)| (k, v)))
        .env("PWD", repo.path())
        .stdin(std::fs::File::open(&prompt_file).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Run `cmd` to its end; it must succeed.
fn succeed(mut cmd: Command, model: &ModelService) -> Output {
    let out = cmd.output().expect("run claude");
    assert!(
        out.status.success(),
        "claude failed ({:?})\nstdout: {}\nstderr: {}\nunanswered: {:?}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        model.unanswered()
    );
    out
}

fn run(repo: &Repo, model: &ModelService, role: &str, prompt: &str) -> Output {
    succeed(claude(repo, model, role, prompt), model)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn implementer_argv_creates_the_file_the_model_writes() {
    let Some(_) = common::cli("claude") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    let out = run(
        &repo,
        &model,
        "implementer",
        "# Task\nAdd a greeting.\nMODEL-WRITE hello.txt hello from claude\n",
    );
    assert_eq!(
        std::fs::read_to_string(repo.path().join("hello.txt"))
            .ok()
            .as_deref(),
        Some("hello from claude\n"),
        "stdout: {}\nrequests: {:?}",
        stdout(&out),
        model.requests().iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    let reading = Preset::Claude.read(&stdout(&out));
    assert_eq!(reading.message, "Done: wrote 1 file(s).");
    assert!(model.unanswered().is_empty(), "{:?}", model.unanswered());
}

#[test]
fn reviewer_argv_approves_a_diff_that_adds_the_wanted_path() {
    let Some(_) = common::cli("claude") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    let prompt = "You are the reviewer.\nMODEL-APPROVE-IF x.txt\n\n```diff\n--- /dev/null\n+++ b/x.txt\n@@ -0,0 +1 @@\n+x\n```\n";
    let out = run(&repo, &model, "reviewer", prompt);
    let reading = Preset::Claude.read(&stdout(&out));
    assert_eq!(
        verdict(&reading.message).as_deref(),
        Some("APPROVE"),
        "{reading:?}"
    );
    let usage = reading.usage.expect("claude reports its usage");
    assert_eq!(usage.input_tokens, Some(INPUT_TOKENS));
    assert_eq!(usage.output_tokens, Some(OUTPUT_TOKENS));
}

#[test]
fn reviewer_argv_asks_for_changes_when_the_wanted_path_is_missing() {
    let Some(_) = common::cli("claude") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    let prompt = "You are the reviewer.\nMODEL-APPROVE-IF x.txt\n\n```diff\n--- /dev/null\n+++ b/y.txt\n@@ -0,0 +1 @@\n+y\n```\n";
    let out = run(&repo, &model, "reviewer", prompt);
    let reading = Preset::Claude.read(&stdout(&out));
    assert_eq!(
        verdict(&reading.message).as_deref(),
        Some("CHANGES"),
        "{reading:?}"
    );
    assert!(reading.message.contains("x.txt is missing"), "{reading:?}");
}

#[test]
fn read_only_argv_does_not_write_the_file_the_model_asks_for() {
    let Some(_) = common::cli("claude") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    let out = run(
        &repo,
        &model,
        "planner",
        "# Task\nMODEL-WRITE forbidden.txt should not exist\n",
    );
    // The model did ask (its Write call reached the CLI and got an answer),
    // and the file is still not there.
    let asked = model
        .requests()
        .iter()
        .any(|r| r.body.contains("\"tool_result\""));
    assert!(
        asked,
        "the model's write call was answered\nstdout: {}",
        stdout(&out)
    );
    assert!(
        !repo.path().join("forbidden.txt").exists(),
        "stdout: {}",
        stdout(&out)
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    assert_eq!(
        Preset::Claude.invocation("reviewer"),
        Preset::Claude.invocation("planner"),
        "the reviewer runs the same read-only argv"
    );
}

#[test]
fn implementer_with_an_auth_token_writes_the_file_beside_its_title_request() {
    let Some(_) = common::cli("claude") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    let mut cmd = claude(
        &repo,
        &model,
        "implementer",
        "# Task\nMODEL-WRITE token.txt by token\n",
    );
    // A bearer token instead of a key, and the non-essential traffic left
    // on (telemetry off): Claude Code then also asks for a session title.
    cmd.env_remove("ANTHROPIC_API_KEY")
        .env_remove("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC")
        .env("ANTHROPIC_AUTH_TOKEN", "scripted-dummy-token")
        .env("DISABLE_TELEMETRY", "1");
    let out = succeed(cmd, &model);
    assert_eq!(
        std::fs::read_to_string(repo.path().join("token.txt"))
            .ok()
            .as_deref(),
        Some("by token\n"),
        "stdout: {}",
        stdout(&out)
    );
    assert_eq!(
        Preset::Claude.read(&stdout(&out)).message,
        "Done: wrote 1 file(s)."
    );
    let title = model.requests().into_iter().find(|r| {
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
        r.path.starts_with("/v1/messages?") && body["tools"].as_array().is_none_or(|t| t.is_empty())
    });
    assert_eq!(
        title.map(|r| r.status),
        Some(200),
        "the title request, answered"
    );
}

#[test]
fn implementer_argv_rewrites_a_file_that_exists() {
    let Some(_) = common::cli("claude") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    let out = run(
        &repo,
        &model,
        "implementer",
        "# Task\nMODEL-WRITE README.md # rewritten\n",
    );
    assert_eq!(
        std::fs::read_to_string(repo.path().join("README.md")).unwrap(),
        "# rewritten\n",
        "stdout: {}",
        stdout(&out)
    );
}

// git-agent itself running the claude preset in each role.

/// `.git-agent.yaml` with the claude preset in every role (no gate).
fn configure_claude(repo: &Repo) {
    repo.write(
        ".git-agent.yaml",
        "target: main\n\
         roles:\n  \
           planner: { agent: claude, timeout: 120s }\n  \
           implementer: { agent: claude, timeout: 120s, max_attempts: 2 }\n  \
           reviewer: { agent: claude, timeout: 120s }\n  \
           integrator: { agent: claude, timeout: 120s, env: { DISABLE_TELEMETRY: '1' } }\n",
    );
}

/// `git-agent <args>` with the model service in its environment, which the
/// agents it starts inherit.
fn git_agent(repo: &Repo, model: &ModelService, args: &[&str]) -> Output {
    let mut cmd = repo.cmd(args);
    model_env(&mut cmd, model);
    cmd.output().expect("run git-agent")
}

/// `git_agent` that must exit with `code`; its stdout.
fn git_agent_exits(repo: &Repo, model: &ModelService, code: i32, args: &[&str]) -> String {
    let out = git_agent(repo, model, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "git-agent {args:?}\nstdout: {}\nstderr: {}\nunanswered: {:?}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr),
        model.unanswered()
    );
    stdout(&out)
}

/// A task whose spec is `spec`, implemented by claude: its id.
fn implemented(repo: &Repo, model: &ModelService, title: &str, spec: &str) -> String {
    let id = repo.add(title, &["--spec", spec]);
    git_agent_exits(repo, model, 0, &["work", &id]);
    assert_eq!(repo.state(&id), "in_review");
    id
}

#[test]
fn claude_as_planner_writes_a_plan_that_is_imported() {
    let Some(_) = common::cli("claude") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    configure_claude(&repo);
    let out = git_agent_exits(&repo, &model, 0, &["plan", "goal MODEL-PLAN a,b", "--json"]);
    let out: serde_json::Value = serde_json::from_str(&out).expect("plan --json");
    let tasks = out["tasks"].as_object().expect("the imported tasks");
    let mut keys: Vec<&String> = tasks.keys().collect();
    keys.sort();
    assert_eq!(keys, ["a", "b"]);
    let a = repo.task(tasks["a"].as_str().unwrap());
    assert_eq!(a["title"], "Write a.txt");
    assert_eq!(repo.git(&["status", "--porcelain"]), "?? .git-agent.yaml");
}

#[test]
fn claude_as_implementer_commits_the_file_on_the_task_branch() {
    let Some(_) = common::cli("claude") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    configure_claude(&repo);
    let id = implemented(
        &repo,
        &model,
        "Greet",
        "MODEL-WRITE hello.txt hello from claude",
    );
    let branch = format!("agent/{id}");
    assert_eq!(
        repo.git(&["show", &format!("{branch}:hello.txt")]),
        "hello from claude"
    );
    assert_eq!(repo.task(&id)["head"], repo.git(&["rev-parse", &branch]));
    let submitted = repo.json(&["show", &id])["events"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|e| e["kind"] == "submitted")
        .cloned()
        .expect("a submitted event");
    assert_eq!(
        submitted["data"]["usage"]["input_tokens"],
        2 * INPUT_TOKENS,
        "two turns' usage: {submitted}"
    );
}

#[test]
fn claude_as_reviewer_approves_and_the_task_is_approved() {
    let Some(_) = common::cli("claude") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    configure_claude(&repo);
    let id = implemented(
        &repo,
        &model,
        "Write x",
        "MODEL-WRITE x.txt x\nMODEL-APPROVE-IF x.txt",
    );
    let out = git_agent_exits(&repo, &model, 0, &["review", &id]);
    assert!(out.contains(&format!("task {id}: approved")), "{out}");
    assert_eq!(repo.state(&id), "approved");
    let head = repo.task(&id)["head"].as_str().unwrap().to_string();
    let note = repo.git(&["notes", "--ref=agent-review", "show", &head]);
    assert!(note.contains("\"approve\""), "{note}");
}

#[test]
fn claude_as_reviewer_asks_for_changes_and_the_task_goes_back() {
    let Some(_) = common::cli("claude") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    configure_claude(&repo);
    let id = implemented(
        &repo,
        &model,
        "Write y, not x",
        "MODEL-WRITE y.txt y\nMODEL-APPROVE-IF x.txt",
    );
    git_agent_exits(&repo, &model, 1, &["review", &id]);
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
fn claude_as_integrator_resolves_a_conflict_and_both_tasks_land() {
    let Some(_) = common::cli("claude") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    configure_claude(&repo);
    let first = implemented(&repo, &model, "Shared A", "MODEL-WRITE shared.txt from a");
    let second = implemented(&repo, &model, "Shared B", "MODEL-WRITE shared.txt from b");
    for id in [&first, &second] {
        repo.ok(&["review", id, "--approve"]);
    }
    git_agent_exits(&repo, &model, 0, &["integrate"]);
    assert_eq!(repo.state(&first), "merged");
    assert_eq!(repo.state(&second), "merged");
    assert_eq!(repo.git(&["show", "main:shared.txt"]), "from b");
    let log = std::fs::read_to_string(repo.logs(&second).join("1-integrator.log"))
        .expect("the integrator's log");
    assert!(log.contains("Done: wrote 1 file(s)."), "{log}");
}

#[test]
fn claude_in_every_role_takes_a_plan_to_main() {
    let Some(_) = common::cli("claude") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    configure_claude(&repo);
    git_agent_exits(&repo, &model, 0, &["plan", "goal MODEL-PLAN a,b"]);
    let out = git_agent_exits(&repo, &model, 0, &["run", "--once"]);
    assert!(out.contains("2 merged"), "{out}");
    assert_eq!(repo.git(&["show", "main:a.txt"]), "a");
    assert_eq!(repo.git(&["show", "main:b.txt"]), "b");
}
