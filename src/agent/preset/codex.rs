//! Codex CLI (`codex exec`), checked against codex-cli 0.171.0 with a
//! scripted model on 127.0.0.1:
//!
//! - `codex exec … -` reads the prompt from stdin (a regular file works);
//!   options after the `-` (a role's `args:`, e.g. `-m gpt-5.5` or
//!   `-c model_reasoning_effort="high"`) still count. The working root is
//!   the cwd. `--skip-git-repo-check` keeps it from refusing a directory
//!   it does not take for a git repository. Its approval policy in `exec`
//!   is `never`: what the sandbox forbids fails instead of asking.
//! - It reaches a model through a custom provider in
//!   `$CODEX_HOME/config.toml` (default `~/.codex/config.toml`), or the same
//!   keys as `-c key=value` arguments:
//!   `model_provider = "<id>"` and `[model_providers.<id>]` with `name`
//!   (must not be empty) and `base_url` (up to `/v1`; codex POSTs
//!   `<base_url>/responses`, streamed); `env_key = "<VAR>"` sends that
//!   variable as a bearer token (the turn fails if it is unset) and no key
//!   is sent without it; `wire_api = "responses"` is the default and the only
//!   value left. A custom provider speaks HTTP with SSE from the first
//!   request (`supports_websockets` defaults to false); the built-in
//!   `openai` provider pointed elsewhere with `openai_base_url` first tries
//!   a websocket five times (seconds) before it falls back.
//!   `model = "<name>"` picks the model (default `gpt-6.2-sol`). Only models
//!   in codex's catalog get their own tools: `gpt-5.5` is offered a freeform
//!   `apply_patch`, `gpt-6.2-sol` runs tools from JavaScript (code mode);
//!   any other name runs on fallback metadata (an `error` item says so on
//!   stdout) with the shell tool, through which `apply_patch` still works.
//! - Edit roles: `--sandbox workspace-write` lets `apply_patch` and shell
//!   commands write the worktree and the temp dirs; the rest of the disk,
//!   `<worktree>/.git` and the network stay closed (the Linux sandbox, a
//!   bundled bubblewrap plus seccomp, works in an unprivileged container).
//!   A linked worktree's git dir lies outside it, so `git add`/`git commit`
//!   fail inside codex: git-agent commits (and `git add`s) for the agent.
//!   `args: ["-c", "sandbox_workspace_write.network_access=true"]` opens
//!   the network for an implementer that must fetch.
//! - Read-only roles: `--sandbox read-only` refuses `apply_patch` ("patch
//!   rejected: writing is blocked by read-only sandbox") and every shell
//!   write ("Read-only file system"), while reading commands run.
//! - `--json` prints JSON Lines on stdout: `thread.started`, `turn.started`,
//!   `item.started`/`item.completed` (`agent_message` with the model's
//!   text, `file_change`, `command_execution`, and `error` items for
//!   warnings), then `turn.completed` with `usage` (`input_tokens`, cached
//!   ones included, and `output_tokens`, summed over the turn's model
//!   requests) or `turn.failed` with `error.message` and exit code 1. With
//!   `--json`, stderr holds only warnings; without it stderr shows the
//!   banner, the echoed prompt and the message, and stdout the final
//!   message alone. `-o <file>` also writes the final message to a file.

use super::{json_lines, words, Reading};
use crate::model::usage::Usage;

pub(super) fn argv(edits: bool) -> Vec<String> {
    let sandbox = if edits {
        "workspace-write"
    } else {
        "read-only"
    };
    words(&[
        "codex",
        "exec",
        "--json",
        "--skip-git-repo-check",
        "--sandbox",
        sandbox,
        "-",
    ])
}

pub(super) fn env() -> Vec<(String, String)> {
    Vec::new()
}

/// The text of the last `agent_message` (the model's earlier messages are
/// its commentary between tool calls) and the usage of every
/// `turn.completed`; a turn that failed with no message gives its error as
/// the message.
pub(super) fn read(stdout: &str) -> Option<Reading> {
    let mut message = None;
    let mut failure = None;
    let mut usage: Option<Usage> = None;
    for event in json_lines(stdout) {
        match event["type"].as_str() {
            Some("item.completed") if event["item"]["type"] == "agent_message" => {
                message = event["item"]["text"].as_str().map(String::from);
            }
            Some("turn.failed") => {
                failure = event["error"]["message"].as_str().map(String::from);
            }
            Some("turn.completed") => {
                let count = |key: &str| event["usage"][key].as_u64();
                let (input, output) = (count("input_tokens"), count("output_tokens"));
                usage = Some(match usage {
                    None => Usage::from_tokens(input, output),
                    Some(sum) => Usage::from_tokens(
                        Some(sum.input_tokens.unwrap_or(0) + input.unwrap_or(0)),
                        Some(sum.output_tokens.unwrap_or(0) + output.unwrap_or(0)),
                    ),
                });
            }
            _ => {}
        }
    }
    Some(Reading {
        message: message.or(failure)?,
        usage: usage.filter(|u| !u.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reviewer's stdout (codex-cli 0.171.0, `--json`), on a model codex
    /// has no metadata for.
    const REVIEW: &str = r#"{"type":"thread.started","thread_id":"01a23a85-5dde-79d1-bb7c-da69e022c0c3"}
{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for `scripted` not found. Defaulting to fallback metadata; this can degrade performance and cause issues."}}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"The change does what the task asks.\nVERDICT: APPROVE"}}
{"type":"turn.completed","usage":{"input_tokens":120,"cached_input_tokens":0,"cache_write_input_tokens":0,"output_tokens":30,"reasoning_output_tokens":0}}
"#;

    /// An implementer's stdout: a commentary message, a file change, the
    /// final message, and usage summed over the turn's two requests.
    const IMPLEMENT: &str = r#"{"type":"thread.started","thread_id":"01a23a88-7900-77b3-abe2-0ed8ced1bb4d"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"I will add hello.txt."}}
{"type":"item.started","item":{"id":"item_1","type":"file_change","changes":[{"path":"/tmp/cx/repo/hello.txt","kind":"add"}],"status":"in_progress"}}
{"type":"item.completed","item":{"id":"item_1","type":"file_change","changes":[{"path":"/tmp/cx/repo/hello.txt","kind":"add"}],"status":"completed"}}
{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"Done: wrote 1 file(s)."}}
{"type":"turn.completed","usage":{"input_tokens":240,"cached_input_tokens":0,"cache_write_input_tokens":0,"output_tokens":60,"reasoning_output_tokens":0}}
"#;

    /// A run whose provider names an `env_key` that is not set.
    const FAILED: &str = r#"{"type":"thread.started","thread_id":"01a23a87-6f2c-7680-9a29-757168797ec7"}
{"type":"turn.started"}
{"type":"error","message":"Missing environment variable: `SCRIPTED_API_KEY`."}
{"type":"turn.failed","error":{"message":"Missing environment variable: `SCRIPTED_API_KEY`."}}
"#;

    #[test]
    fn the_message_is_the_agent_message_and_warnings_are_not() {
        let reading = read(REVIEW).expect("JSON Lines");
        assert_eq!(
            reading.message,
            "The change does what the task asks.\nVERDICT: APPROVE"
        );
        assert_eq!(reading.usage, Some(Usage::from_tokens(Some(120), Some(30))));
    }

    #[test]
    fn the_last_agent_message_wins_over_commentary() {
        let reading = read(IMPLEMENT).expect("JSON Lines");
        assert_eq!(reading.message, "Done: wrote 1 file(s).");
        assert_eq!(reading.usage, Some(Usage::from_tokens(Some(240), Some(60))));
    }

    #[test]
    fn a_failed_turn_gives_its_error_as_the_message() {
        let reading = read(FAILED).expect("JSON Lines");
        assert_eq!(
            reading.message,
            "Missing environment variable: `SCRIPTED_API_KEY`."
        );
        assert_eq!(reading.usage, None);
    }

    #[test]
    fn edit_roles_write_the_workspace_and_the_others_read_only() {
        let sandbox = |edits| {
            let argv = argv(edits);
            let at = argv
                .iter()
                .position(|a| a == "--sandbox")
                .expect("--sandbox");
            argv[at + 1].clone()
        };
        assert_eq!(sandbox(true), "workspace-write");
        assert_eq!(sandbox(false), "read-only");
        assert_eq!(argv(true).last().map(String::as_str), Some("-"), "stdin");
    }
}
