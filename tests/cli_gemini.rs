//! The gemini preset against the real Gemini CLI and the scripted model
//! service (Gemini API on 127.0.0.1).

use crate::common::model::{ModelService, INPUT_TOKENS, OUTPUT_TOKENS};
use crate::common::verdict;
use crate::common::{self, Repo};
use git_agent::agent::preset::Preset;
use std::process::{Command, Output, Stdio};

/// What a user sets up to point Gemini CLI at a model service: the base URL
/// and a key in the environment, and in `~/.gemini/settings.json` the API
/// key auth type (else the base URL alone selects `gateway`, which headless
/// mode rejects) and no usage statistics.
fn model_env(cmd: &mut Command, repo: &Repo, model: &ModelService) {
    let settings = repo.home().join(".gemini/settings.json");
    if !settings.exists() {
        std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
        std::fs::write(
            &settings,
            r#"{
  "security": {"auth": {"selectedType": "gemini-api-key"}},
  "privacy": {"usageStatisticsEnabled": false},
  "telemetry": {"enabled": false},
  "general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false}
}
"#,
        )
        .unwrap();
    }
    cmd.env("GOOGLE_GEMINI_BASE_URL", model.url())
        .env("GEMINI_API_KEY", "scripted-dummy-key");
}

/// Run the real `gemini` as the preset plays `role`, as git-agent starts an
/// agent: cwd and `$PWD` the repo, stdin a file holding `prompt`.
fn run(repo: &Repo, model: &ModelService, role: &str, prompt: &str) -> Output {
    let invocation = Preset::Gemini
        .invocation(role)
        .expect("gemini plays every role");
    let prompt_file = repo.scratch(&format!("{role}-prompt.md"));
    std::fs::write(&prompt_file, prompt).unwrap();
    let argv: Vec<String> = invocation
        .argv
        .iter()
        .map(|a| a.replace("{prompt_file}", &prompt_file))
        .collect();
    let mut cmd = Command::new(&argv[0]);
    repo.env(&mut cmd);
    model_env(&mut cmd, repo, model);
    cmd.args(&argv[1..])
        .envs(invocation.env.iter().map(|(k, v)| (k, v)))
        .env("PWD", repo.path())
        .stdin(std::fs::File::open(&prompt_file).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = cmd.output().expect("run gemini");
    assert!(
        out.status.success(),
        "gemini as {role} failed ({:?})\nstdout: {}\nstderr: {}\nunanswered: {:?}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        model.unanswered()
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How many model turns (main and side requests) the CLI asked for.
fn model_requests(model: &ModelService) -> u64 {
    model
        .requests()
        .iter()
        .filter(|r| r.path.contains("GenerateContent") || r.path.contains(":generateContent"))
        .count() as u64
}

const APPROVABLE: &str = "You are the reviewer.\nMODEL-APPROVE-IF x.txt\n\n```diff\n--- /dev/null\n+++ b/x.txt\n@@ -0,0 +1 @@\n+x\n```\n";

#[test]
fn implementer_argv_creates_the_file_the_model_writes() {
    let Some(_) = common::cli("gemini") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    let out = run(
        &repo,
        &model,
        "implementer",
        "# Task\nAdd a greeting.\nMODEL-WRITE hello.txt hello from gemini\n",
    );
    assert_eq!(
        std::fs::read_to_string(repo.path().join("hello.txt"))
            .ok()
            .as_deref(),
        Some("hello from gemini\n"),
        "stdout: {}\nrequests: {:?}",
        stdout(&out),
        model.requests().iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    let reading = Preset::Gemini.read(&stdout(&out));
    assert_eq!(reading.message, "Done: wrote 1 file(s).");
    assert!(model.unanswered().is_empty(), "{:?}", model.unanswered());
}

#[test]
fn reviewer_argv_approves_a_diff_that_adds_the_wanted_path() {
    let Some(_) = common::cli("gemini") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    let out = run(&repo, &model, "reviewer", APPROVABLE);
    let reading = Preset::Gemini.read(&stdout(&out));
    assert_eq!(
        verdict(&reading.message).as_deref(),
        Some("APPROVE"),
        "{reading:?}"
    );
}

#[test]
fn reviewer_argv_reports_the_usage_of_every_model_request() {
    let Some(_) = common::cli("gemini") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    let out = run(&repo, &model, "reviewer", APPROVABLE);
    let reading = Preset::Gemini.read(&stdout(&out));
    // The model router's classifier is a request of its own, and counted.
    let turns = model_requests(&model);
    assert!(turns >= 2, "{:?}", model.requests());
    let usage = reading.usage.expect("gemini reports its usage");
    assert_eq!(usage.input_tokens, Some(INPUT_TOKENS * turns), "{usage:?}");
    assert_eq!(
        usage.output_tokens,
        Some(OUTPUT_TOKENS * turns),
        "{usage:?}"
    );
}

#[test]
fn reviewer_argv_asks_for_changes_when_the_wanted_path_is_missing() {
    let Some(_) = common::cli("gemini") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    let prompt = "You are the reviewer.\nMODEL-APPROVE-IF x.txt\n\n```diff\n--- /dev/null\n+++ b/y.txt\n@@ -0,0 +1 @@\n+y\n```\n";
    let out = run(&repo, &model, "reviewer", prompt);
    let reading = Preset::Gemini.read(&stdout(&out));
    assert_eq!(
        verdict(&reading.message).as_deref(),
        Some("CHANGES"),
        "{reading:?}"
    );
    assert!(reading.message.contains("x.txt is missing"), "{reading:?}");
}

#[test]
fn read_only_argv_refuses_the_write_the_model_asks_for() {
    let Some(_) = common::cli("gemini") else {
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
    // The model did call write_file (it was not offered, so the CLI
    // answered the call with an error), and the file is still not there.
    let requests = model.requests();
    let offered = requests.iter().any(|r| {
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
        body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| {
                t["functionDeclarations"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .any(|f| f["name"] == "write_file")
    });
    let refused = requests
        .iter()
        .any(|r| r.body.contains("\"functionResponse\"") && r.body.contains("write_file"));
    assert!(!offered, "the read-only argv offers no write_file");
    assert!(
        refused,
        "the model's write call was answered\nstdout: {}",
        stdout(&out)
    );
    assert!(
        !repo.path().join("forbidden.txt").exists(),
        "stdout: {}",
        stdout(&out)
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

// git-agent itself running the gemini preset in each role.

/// Write `.git-agent.yaml` with gemini in `roles` (and `extra` lines).
fn configure(repo: &Repo, roles: &[&str], extra: &str) {
    let mut yaml = format!("target: main\n{extra}roles:\n");
    for role in roles {
        yaml.push_str(&format!("  {role}: {{ agent: gemini, timeout: 120s }}\n"));
    }
    repo.write(".git-agent.yaml", &yaml);
}

/// Run `git-agent <args>` with the model service set up as a user would.
fn git_agent(repo: &Repo, model: &ModelService, args: &[&str]) -> Output {
    let mut cmd = repo.cmd(args);
    model_env(&mut cmd, repo, model);
    cmd.output().expect("run git-agent")
}

/// `git_agent`, expecting exit `code`; returns stdout.
fn git_agent_exits(repo: &Repo, model: &ModelService, code: i32, args: &[&str]) -> String {
    let out = git_agent(repo, model, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "git-agent {args:?}\nstdout: {}\nstderr: {}\nunanswered: {:?}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        model.unanswered()
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

/// A task implemented by gemini as git-agent's implementer; its id and head.
fn implemented(repo: &Repo, model: &ModelService, title: &str, spec: &str) -> (String, String) {
    let id = repo.add(title, &["--spec", spec]);
    git_agent_exits(repo, model, 0, &["work", &id]);
    let head = repo.task(&id)["head"].as_str().unwrap().to_string();
    (id, head)
}

#[test]
fn git_agent_plan_with_gemini_imports_the_plan_it_wrote() {
    let Some(_) = common::cli("gemini") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    configure(&repo, &["planner"], "");
    let out = git_agent_exits(
        &repo,
        &model,
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
fn git_agent_work_with_gemini_commits_the_file_on_the_task_branch() {
    let Some(_) = common::cli("gemini") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    configure(&repo, &["implementer"], "");
    let (id, head) = implemented(&repo, &model, "Greet", "MODEL-WRITE hello.txt hello\n");
    assert_eq!(repo.state(&id), "in_review");
    assert_eq!(head, repo.git(&["rev-parse", &format!("agent/{id}")]));
    assert_eq!(repo.git(&["show", &format!("{head}:hello.txt")]), "hello");
    assert!(
        !repo.path().join("hello.txt").exists(),
        "the main worktree is untouched"
    );
}

#[test]
fn git_agent_review_with_gemini_records_an_approval() {
    let Some(_) = common::cli("gemini") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    configure(&repo, &["implementer", "reviewer"], "");
    let spec = "MODEL-WRITE x.txt x\nMODEL-APPROVE-IF x.txt\n";
    let (id, head) = implemented(&repo, &model, "Write x", spec);
    git_agent_exits(&repo, &model, 0, &["review", &id]);
    let note = &review_notes(&repo, &head)[0];
    assert_eq!(note["verdict"], "approve", "{note}");
    assert_eq!(repo.state(&id), "approved");
}

#[test]
fn git_agent_review_with_gemini_records_the_changes_it_asks_for() {
    let Some(_) = common::cli("gemini") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    configure(&repo, &["implementer", "reviewer"], "");
    let spec = "MODEL-WRITE y.txt y\nMODEL-APPROVE-IF x.txt\n";
    let (id, head) = implemented(&repo, &model, "Write x", spec);
    git_agent_exits(&repo, &model, 1, &["review", &id]);
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
fn git_agent_integrate_with_gemini_resolves_a_conflict() {
    let Some(_) = common::cli("gemini") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    configure(&repo, &["implementer", "integrator"], "test: ''\n");
    let (first, _) = implemented(&repo, &model, "First", "MODEL-WRITE shared.txt first\n");
    let (second, _) = implemented(&repo, &model, "Second", "MODEL-WRITE shared.txt second\n");
    for id in [&first, &second] {
        repo.ok(&["review", id, "--approve"]);
    }
    git_agent_exits(&repo, &model, 0, &["integrate"]);
    assert_eq!(repo.state(&first), "merged");
    assert_eq!(repo.state(&second), "merged");
    assert_eq!(repo.git(&["show", "main:shared.txt"]), "second");
    assert!(
        repo.logs(&second).join("1-integrator.log").exists(),
        "the integrator agent ran"
    );
}

#[test]
fn git_agent_run_with_gemini_in_every_role_lands_a_task() {
    let Some(_) = common::cli("gemini") else {
        return;
    };
    let model = ModelService::scripted();
    let repo = Repo::new();
    configure(&repo, &["implementer", "reviewer", "integrator"], "");
    let id = repo.add(
        "Write x",
        &["--spec", "MODEL-WRITE x.txt x\nMODEL-APPROVE-IF x.txt\n"],
    );
    git_agent_exits(&repo, &model, 0, &["run", "--once"]);
    assert_eq!(repo.state(&id), "merged");
    assert_eq!(repo.git(&["show", "main:x.txt"]), "x");
    // Usage as recorded per event: the implementer's three model requests
    // (the router's classifier, the write, the final message), the
    // reviewer's two.
    let used = |n: u64| {
        let (i, o) = (INPUT_TOKENS * n, OUTPUT_TOKENS * n);
        format!("[{} tokens ({i} in, {o} out)]", i + o)
    };
    let shown = repo.ok(&["show", &id]);
    for (event, n) in [("submitted", 3), ("reviewed", 2)] {
        assert!(
            shown
                .lines()
                .any(|l| l.contains(event) && l.ends_with(&used(n))),
            "{event} with {}:\n{shown}",
            used(n)
        );
    }
}
