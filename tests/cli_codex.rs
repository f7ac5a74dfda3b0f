//! The codex preset against the real CLI (`codex exec`, codex-cli 0.171.0)
//! and the scripted model service (OpenAI Responses API on 127.0.0.1),
//! reached through a custom `model_providers` entry in
//! `$HOME/.codex/config.toml`.

use std::process::{Command, Output, Stdio};

use git_agent::agent::preset::Preset;

use crate::common::model::{ModelService, INPUT_TOKENS, OUTPUT_TOKENS};
use crate::common::verdict;
use crate::common::{self, Repo};

/// The variable the provider's API key is read from (any value does for
/// the scripted service).
const KEY_VAR: &str = "SCRIPTED_API_KEY";

/// A model in Codex's own catalog: it is offered the freeform `apply_patch`.
const KNOWN_MODEL: &str = "gpt-5.5";

/// What a user writes to point codex at a Responses API at `url`: a custom
/// provider (which codex reaches over HTTP with SSE; websockets are only
/// for providers with `supports_websockets = true`) and, if `model` is
/// given, the model to ask for (else codex's default, `gpt-6.2-sol`).
fn configure(repo: &Repo, url: &str, model: Option<&str>) {
    let dir = repo.home().join(".codex");
    std::fs::create_dir_all(&dir).unwrap();
    let model = model
        .map(|m| format!("model = \"{m}\"\n"))
        .unwrap_or_default();
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "{model}model_provider = \"scripted\"\n\n\
             [model_providers.scripted]\nname = \"scripted\"\nbase_url = \"{url}/v1\"\n\
             env_key = \"{KEY_VAR}\"\nwire_api = \"responses\"\n"
        ),
    )
    .unwrap();
}

/// Run the real `codex` as the preset plays `role`, as git-agent starts an
/// agent: cwd and `$PWD` the repo, stdin a file holding `prompt`.
fn run(repo: &Repo, service: &ModelService, role: &str, prompt: &str) -> Output {
    let invocation = Preset::Codex
        .invocation(role)
        .expect("codex plays every role");
    let prompt_file = repo.scratch(&format!("{role}-prompt.md"));
    std::fs::write(&prompt_file, prompt).unwrap();
    let argv: Vec<String> = invocation
        .argv
        .iter()
        .map(|a| a.replace("{prompt_file}", &prompt_file))
        .collect();
    let mut cmd = Command::new(&argv[0]);
    repo.env(&mut cmd);
    cmd.args(&argv[1..])
        .envs(invocation.env.iter().map(|(k, v)| (k, v)))
        .env("PWD", repo.path())
        .env(KEY_VAR, "scripted-dummy-key")
        .stdin(std::fs::File::open(&prompt_file).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = cmd.output().expect("run codex");
    assert!(
        out.status.success(),
        "codex as {role} failed ({:?})\nstdout: {}\nstderr: {}\nunanswered: {:?}",
        out.status.code(),
        stdout(&out),
        String::from_utf8_lossy(&out.stderr),
        service.unanswered()
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run the implementer argv asking for `hello.txt` with the provider set to
/// `model`, and check that the file is there and the final message read.
fn implementer_writes_hello(model: Option<&str>) {
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure(&repo, &service.url(), model);
    let prompt = "# Task\nAdd a greeting.\nMODEL-WRITE hello.txt hello from codex\n";
    let out = run(&repo, &service, "implementer", prompt);
    assert_eq!(
        std::fs::read_to_string(repo.path().join("hello.txt"))
            .ok()
            .as_deref(),
        Some("hello from codex\n"),
        "stdout: {}",
        stdout(&out)
    );
    let reading = Preset::Codex.read(&stdout(&out));
    assert_eq!(reading.message, "Done: wrote 1 file(s).");
    assert!(
        service.unanswered().is_empty(),
        "{:?}",
        service.unanswered()
    );
}

#[test]
fn implementer_argv_creates_the_file_the_model_writes() {
    if common::cli("codex").is_none() {
        return;
    }
    implementer_writes_hello(Some(KNOWN_MODEL));
}

#[test]
fn implementer_argv_writes_through_code_mode_with_codex_default_model() {
    if common::cli("codex").is_none() {
        return;
    }
    implementer_writes_hello(None);
}

#[test]
fn implementer_argv_writes_through_the_shell_tool_for_a_model_codex_does_not_know() {
    if common::cli("codex").is_none() {
        return;
    }
    implementer_writes_hello(Some("scripted"));
}

#[test]
fn reviewer_argv_approves_a_diff_that_adds_the_wanted_path_and_reports_usage() {
    if common::cli("codex").is_none() {
        return;
    }
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure(&repo, &service.url(), Some(KNOWN_MODEL));
    let prompt = "You are the reviewer.\nMODEL-APPROVE-IF x.txt\n\n```diff\n--- /dev/null\n+++ b/x.txt\n@@ -0,0 +1 @@\n+x\n```\n";
    let out = run(&repo, &service, "reviewer", prompt);
    let reading = Preset::Codex.read(&stdout(&out));
    assert_eq!(
        verdict(&reading.message).as_deref(),
        Some("APPROVE"),
        "{reading:?}"
    );
    let usage = reading.usage.expect("codex reports its usage");
    assert_eq!(usage.input_tokens, Some(INPUT_TOKENS));
    assert_eq!(usage.output_tokens, Some(OUTPUT_TOKENS));
}

#[test]
fn reviewer_argv_asks_for_changes_when_the_wanted_path_is_missing() {
    if common::cli("codex").is_none() {
        return;
    }
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure(&repo, &service.url(), Some(KNOWN_MODEL));
    let prompt = "You are the reviewer.\nMODEL-APPROVE-IF x.txt\n\n```diff\n--- /dev/null\n+++ b/y.txt\n@@ -0,0 +1 @@\n+y\n```\n";
    let out = run(&repo, &service, "reviewer", prompt);
    let reading = Preset::Codex.read(&stdout(&out));
    assert_eq!(
        verdict(&reading.message).as_deref(),
        Some("CHANGES"),
        "{reading:?}"
    );
    assert!(reading.message.contains("x.txt is missing"), "{reading:?}");
}

#[test]
fn planner_argv_prints_the_plan_as_its_final_message() {
    if common::cli("codex").is_none() {
        return;
    }
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure(&repo, &service.url(), Some(KNOWN_MODEL));
    let out = run(
        &repo,
        &service,
        "planner",
        "You are the planner.\nMODEL-PLAN a,b\n",
    );
    let reading = Preset::Codex.read(&stdout(&out));
    assert!(
        reading.message.contains("```yaml\ntasks:\n  - key: a\n")
            && reading.message.contains("  - key: b\n"),
        "{reading:?}"
    );
}

#[test]
fn read_only_argv_does_not_write_the_file_the_model_asks_for() {
    if common::cli("codex").is_none() {
        return;
    }
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure(&repo, &service.url(), Some(KNOWN_MODEL));
    let out = run(
        &repo,
        &service,
        "reviewer",
        "# Task\nMODEL-WRITE forbidden.txt should not exist\n",
    );
    // The model did ask: its apply_patch call reached codex, which answered
    // it with a refusal; and the file is still not there.
    let refused = service.requests().iter().any(|r| {
        r.body.contains("\"custom_tool_call_output\"") && r.body.contains("read-only sandbox")
    });
    assert!(refused, "codex refused the write\nstdout: {}", stdout(&out));
    assert!(!repo.path().join("forbidden.txt").exists());
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

// git-agent itself running the codex preset in each role.

/// Write `.git-agent.yaml` with codex in `roles` (and `extra` lines), and
/// codex's own config pointing at `service`.
fn configure_git_agent(repo: &Repo, service: &ModelService, roles: &[&str], extra: &str) {
    configure(repo, &service.url(), Some(KNOWN_MODEL));
    let mut yaml = format!("target: main\n{extra}roles:\n");
    for role in roles {
        yaml.push_str(&format!("  {role}: {{ agent: codex, timeout: 120s }}\n"));
    }
    repo.write(".git-agent.yaml", &yaml);
}

/// Run `git-agent <args>` with the provider's key set as a user would,
/// expecting exit `code`; returns stdout.
fn git_agent_exits(repo: &Repo, service: &ModelService, code: i32, args: &[&str]) -> String {
    let out = repo
        .cmd(args)
        .env(KEY_VAR, "scripted-dummy-key")
        .output()
        .expect("run git-agent");
    assert_eq!(
        out.status.code(),
        Some(code),
        "git-agent {args:?}\nstdout: {}\nstderr: {}\nunanswered: {:?}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        service.unanswered()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The verdict notes on `commit`, one JSON value per line.
fn review_notes(repo: &Repo, commit: &str) -> Vec<serde_json::Value> {
    repo.git(&["notes", "--ref=agent-review", "show", commit])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A task implemented by codex as git-agent's implementer; its id and head.
fn implemented(repo: &Repo, service: &ModelService, title: &str, spec: &str) -> (String, String) {
    let id = repo.add(title, &["--spec", spec]);
    git_agent_exits(repo, service, 0, &["work", &id]);
    let head = repo.task(&id)["head"].as_str().unwrap().to_string();
    (id, head)
}

#[test]
fn git_agent_plan_with_codex_imports_the_plan_it_wrote() {
    if common::cli("codex").is_none() {
        return;
    }
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure_git_agent(&repo, &service, &["planner"], "");
    let out = git_agent_exits(
        &repo,
        &service,
        0,
        &["plan", "Greet MODEL-PLAN a,b", "--json"],
    );
    let out: serde_json::Value = serde_json::from_str(&out).expect("JSON on stdout");
    let tasks = out["tasks"].as_object().expect("the imported tasks");
    assert_eq!(
        tasks.keys().map(String::as_str).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let a = repo.task(tasks["a"].as_str().unwrap());
    assert_eq!(a["title"], "Write a.txt");
    assert_eq!(a["state"], "open");
}

#[test]
fn git_agent_work_with_codex_commits_the_file_on_the_task_branch() {
    if common::cli("codex").is_none() {
        return;
    }
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure_git_agent(&repo, &service, &["implementer"], "");
    let (id, head) = implemented(&repo, &service, "Greet", "MODEL-WRITE hello.txt hello\n");
    assert_eq!(repo.state(&id), "in_review");
    assert_eq!(head, repo.git(&["rev-parse", &format!("agent/{id}")]));
    assert_eq!(repo.git(&["show", &format!("{head}:hello.txt")]), "hello");
    assert!(!repo.path().join("hello.txt").exists(), "main is untouched");
    assert_eq!(
        repo.git(&["status", "--porcelain", "--untracked-files=no"]),
        ""
    );
}

#[test]
fn git_agent_review_with_codex_records_an_approval_and_its_usage() {
    if common::cli("codex").is_none() {
        return;
    }
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure_git_agent(&repo, &service, &["implementer", "reviewer"], "");
    let spec = "MODEL-WRITE x.txt x\nMODEL-APPROVE-IF x.txt\n";
    let (id, head) = implemented(&repo, &service, "Write x", spec);
    git_agent_exits(&repo, &service, 0, &["review", &id]);
    let note = &review_notes(&repo, &head)[0];
    assert_eq!(note["verdict"], "approve", "{note}");
    assert_eq!(repo.state(&id), "approved");
    let shown = repo.json(&["show", &id]);
    let reviewed = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "reviewed")
        .expect("a reviewed event");
    assert_eq!(
        reviewed["data"]["usage"]["tokens"],
        INPUT_TOKENS + OUTPUT_TOKENS,
        "{reviewed}"
    );
}

#[test]
fn git_agent_review_with_codex_records_the_changes_it_asks_for() {
    if common::cli("codex").is_none() {
        return;
    }
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure_git_agent(&repo, &service, &["implementer", "reviewer"], "");
    let spec = "MODEL-WRITE y.txt y\nMODEL-APPROVE-IF x.txt\n";
    let (id, head) = implemented(&repo, &service, "Write x", spec);
    git_agent_exits(&repo, &service, 1, &["review", &id]);
    let note = &review_notes(&repo, &head)[0];
    assert_eq!(note["verdict"], "changes", "{note}");
    assert!(
        note["summary"]
            .as_str()
            .unwrap()
            .contains("x.txt is missing"),
        "{note}"
    );
}

#[test]
fn git_agent_integrate_with_codex_resolves_a_conflict() {
    if common::cli("codex").is_none() {
        return;
    }
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure_git_agent(
        &repo,
        &service,
        &["implementer", "integrator"],
        "test: ''\n",
    );
    let (first, _) = implemented(&repo, &service, "First", "MODEL-WRITE shared.txt first\n");
    let (second, _) = implemented(&repo, &service, "Second", "MODEL-WRITE shared.txt second\n");
    for id in [&first, &second] {
        repo.ok(&["review", id, "--approve"]);
    }
    git_agent_exits(&repo, &service, 0, &["integrate"]);
    assert_eq!(repo.state(&first), "merged");
    assert_eq!(repo.state(&second), "merged");
    assert_eq!(repo.git(&["show", "main:shared.txt"]), "second");
    assert!(
        repo.logs(&second).join("1-integrator.log").exists(),
        "the integrator agent ran"
    );
}

#[test]
fn git_agent_run_once_with_codex_in_every_role_lands_the_task() {
    if common::cli("codex").is_none() {
        return;
    }
    let service = ModelService::scripted();
    let repo = Repo::new();
    configure_git_agent(
        &repo,
        &service,
        &["implementer", "reviewer", "integrator"],
        "test: ''\n",
    );
    let id = repo.add(
        "Greet",
        &[
            "--spec",
            "MODEL-WRITE hello.txt hello\nMODEL-APPROVE-IF hello.txt\n",
        ],
    );
    git_agent_exits(&repo, &service, 0, &["run", "--once"]);
    assert_eq!(repo.state(&id), "merged", "{:?}", repo.kinds(&id));
    assert_eq!(repo.git(&["show", "main:hello.txt"]), "hello");
}
