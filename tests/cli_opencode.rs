//! The opencode preset against the real CLI and the scripted model service.
//!
//! The user's side of the set-up, as a test gives it: a custom provider in
//! `OPENCODE_CONFIG_CONTENT` (`@ai-sdk/openai-compatible` with
//! `options.baseURL` pointing at the service) that is also the default
//! `model`, `OPENCODE_DISABLE_MODELS_FETCH=1` (no models.dev download), and a
//! config directory that already has its `@opencode-ai/plugin` dependency,
//! so that opencode installs nothing from the npm registry.

use crate::common::model::{ModelService, INPUT_TOKENS, OUTPUT_TOKENS};
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
