//! The aider preset against the real CLI and the scripted model service.
//!
//! The user's side of the set-up, as a test gives it: `AIDER_MODEL=openai/scripted`
//! with `OPENAI_API_BASE` and `OPENAI_API_KEY` (litellm's OpenAI provider),
//! and a model metadata file that names the model's context and prices, so
//! that aider fetches no price list and reports a cost.

use crate::common::model::{ModelService, INPUT_TOKENS, OUTPUT_TOKENS};
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
    let output = aider_in(&repo, &service, &aider, role, prompt);
    Some(Run {
        repo,
        service,
        output,
    })
}

fn aider_in(
    repo: &Repo,
    service: &ModelService,
    aider: &std::path::Path,
    role: &str,
    prompt: &str,
) -> Output {
    let prompt_file = repo.scratch("prompt.md");
    std::fs::write(&prompt_file, prompt).unwrap();
    let metadata = repo.scratch("aider-models.json");
    std::fs::write(
        &metadata,
        r#"{"openai/scripted": {"max_input_tokens": 128000, "max_output_tokens": 4096,
            "input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002,
            "litellm_provider": "openai", "mode": "chat"}}"#,
    )
    .unwrap();
    let invocation = Preset::Aider
        .invocation(role)
        .expect("aider plays every role");
    let mut cmd = Command::new(aider);
    repo.env(&mut cmd);
    cmd.args(
        invocation.argv[1..]
            .iter()
            .map(|a| a.replace("{prompt_file}", &prompt_file)),
    )
    .envs(invocation.env)
    .env("PWD", repo.path())
    .env("AIDER_MODEL", "openai/scripted")
    .env("AIDER_MODEL_METADATA_FILE", &metadata)
    .env("OPENAI_API_BASE", format!("{}/v1", service.url()))
    .env("OPENAI_API_KEY", "sk-scripted")
    .stdin(std::fs::File::open(&prompt_file).unwrap())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd.output().expect("run aider")
}

/// The paths `git status` lists as changed or untracked.
fn changed_paths(repo: &Repo) -> Vec<String> {
    repo.git(&["status", "--porcelain", "--untracked-files=all"])
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(String::from))
        .collect()
}

/// The last `VERDICT:` line of a message.
fn verdict(message: &str) -> Option<String> {
    message.lines().rev().find_map(|l| {
        l.trim()
            .strip_prefix("VERDICT:")
            .map(|v| v.trim().to_string())
    })
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
