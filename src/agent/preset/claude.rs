//! Claude Code (`claude`), checked against 2.1.197 with a scripted model
//! on 127.0.0.1:
//!
//! - `-p` (print mode) reads the prompt from stdin (a regular file works)
//!   and needs no onboarding, login or trust dialog in a fresh `HOME`.
//! - It reaches its model at `ANTHROPIC_BASE_URL` (`POST /v1/messages`,
//!   streamed, after a `HEAD /` warm-up) with `ANTHROPIC_API_KEY` (sent as
//!   `x-api-key`) or `ANTHROPIC_AUTH_TOKEN` (a bearer token; then it also
//!   asks the same model for a session title, a request without tools).
//!   Its telemetry goes to api.anthropic.com and fails quietly without
//!   network; `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1` stops it and
//!   the title request. Print mode runs no auto-updater, so the preset sets
//!   no environment of its own.
//! - Edit roles: `--permission-mode acceptEdits` lets `Write`/`Edit` and
//!   plain file commands in Bash (`touch`, `>` redirection) change the
//!   worktree; any other command (`python3 …`, a test suite) "requires
//!   approval", which print mode cannot ask for, so it is denied: add
//!   `args: ["--allowedTools=Bash(cargo test *)"]` (or
//!   `--permission-mode bypassPermissions`) for an implementer that must run
//!   commands. Paths under `.git/` are refused in every mode, and `Write`
//!   refuses to overwrite a file the session has not `Read` first.
//! - Read-only roles: `--permission-mode dontAsk` denies every call that is
//!   not pre-approved (Bash that writes included) while `Read` and
//!   read-only commands (`git log`, `git status`) still run, and
//!   `--disallowedTools=Write,Edit,NotebookEdit` takes the file-editing
//!   tools out of the model's tool list altogether. `plan` mode also denies
//!   writes, but its system prompt tells the model to write a plan file,
//!   start Explore agents and end with `ExitPlanMode`, which fights a
//!   reviewer's verdict, and `default` denies only because print mode
//!   cannot ask.
//! - `--output-format json` prints one JSON object on stdout: `result` is
//!   the final assistant message, `usage` the tokens summed over all turns
//!   (input split into `input_tokens`, `cache_creation_input_tokens`,
//!   `cache_read_input_tokens`), `total_cost_usd` Claude Code's own price of
//!   them; `is_error: true` with `result: "API Error: …"` and exit code 1
//!   when the API failed.

use super::{words, Reading};
use crate::model::usage::Usage;

pub(super) fn argv(edits: bool) -> Vec<String> {
    let mut argv = words(&["claude", "-p", "--output-format", "json"]);
    if edits {
        argv.extend(words(&["--permission-mode", "acceptEdits"]));
    } else {
        // The `=` form: the flag takes a variadic list, which must not
        // swallow arguments a role's `args:` appends.
        argv.extend(words(&[
            "--permission-mode",
            "dontAsk",
            "--disallowedTools=Write,Edit,NotebookEdit",
        ]));
    }
    argv
}

pub(super) fn env() -> Vec<(String, String)> {
    Vec::new()
}

pub(super) fn read(stdout: &str) -> Option<Reading> {
    let json: serde_json::Value = serde_json::from_str(stdout.trim())
        .ok()
        .or_else(|| super::json_lines(stdout).last())?;
    let message = json.get("result")?.as_str()?.to_string();
    let usage = json.get("usage");
    let count = |key: &str| usage.and_then(|u| u.get(key)).and_then(|v| v.as_u64());
    let input = [
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    ]
    .iter()
    .filter_map(|k| count(k))
    .reduce(|a, b| a + b);
    let mut usage = Usage::from_tokens(input, count("output_tokens"));
    usage.cost_usd = json.get("total_cost_usd").and_then(|v| v.as_f64());
    Some(Reading {
        message,
        usage: (!usage.is_empty()).then_some(usage),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reviewer run of claude 2.1.197 (one turn), trimmed.
    const REVIEWER: &str = r#"{"type":"result","subtype":"success","is_error":false,"api_error_status":null,"duration_ms":118,"num_turns":1,"result":"The change does what the task asks.\nVERDICT: APPROVE","stop_reason":"end_turn","session_id":"1371cca4-7367-4bf1-be33-14164fd9d1dc","total_cost_usd":0.00135,"usage":{"input_tokens":120,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":30,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard"},"modelUsage":{"claude-opus-4-8[1m]":{"inputTokens":120,"outputTokens":30,"costUSD":0.00135}},"permission_denials":[],"terminal_reason":"completed"}
"#;

    /// A read-only run whose model tried to write (two turns), trimmed.
    const DENIED: &str = r#"{"type":"result","subtype":"success","is_error":false,"num_turns":2,"result":"Done: wrote 1 file(s).","stop_reason":"end_turn","total_cost_usd":0.0027,"usage":{"input_tokens":240,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":60},"permission_denials":[{"tool_name":"Write","tool_use_id":"toolu_scripted_0","tool_input":{"file_path":"/tmp/.tmpUA65en/repo/forbidden.txt","content":"should not exist\n"}}],"terminal_reason":"completed"}"#;

    /// The API answered 400 (exit code 1).
    const API_ERROR: &str = r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":400,"num_turns":1,"result":"API Error: 400 scripted failure","stop_reason":"stop_sequence","total_cost_usd":0,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0},"modelUsage":{},"permission_denials":[]}"#;

    #[test]
    fn the_result_is_the_message_and_usage_and_cost_are_read() {
        let reading = read(REVIEWER).expect("claude's JSON result");
        assert_eq!(
            reading.message,
            "The change does what the task asks.\nVERDICT: APPROVE"
        );
        let usage = reading.usage.expect("usage");
        assert_eq!(usage.input_tokens, Some(120));
        assert_eq!(usage.output_tokens, Some(30));
        assert_eq!(usage.tokens, Some(150));
        assert_eq!(usage.cost_usd, Some(0.00135));
    }

    #[test]
    fn usage_is_summed_over_turns_by_claude() {
        let usage = read(DENIED).and_then(|r| r.usage).expect("usage");
        assert_eq!(usage.input_tokens, Some(240));
        assert_eq!(usage.output_tokens, Some(60));
    }

    #[test]
    fn cached_input_counts_as_input() {
        // DENIED with cache counts in, as a real API reports them.
        let stdout = DENIED.replace(
            r#""input_tokens":240,"cache_creation_input_tokens":0,"cache_read_input_tokens":0"#,
            r#""input_tokens":200,"cache_creation_input_tokens":30,"cache_read_input_tokens":10"#,
        );
        let usage = read(&stdout).and_then(|r| r.usage).expect("usage");
        assert_eq!(usage.input_tokens, Some(240));
    }

    #[test]
    fn an_api_error_is_the_message() {
        let reading = read(API_ERROR).expect("claude's JSON result");
        assert_eq!(reading.message, "API Error: 400 scripted failure");
    }

    #[test]
    fn a_result_after_other_lines_is_found() {
        let stdout = format!("some wrapper's line\n{REVIEWER}");
        assert!(read(&stdout).unwrap().message.ends_with("VERDICT: APPROVE"));
    }

    #[test]
    fn text_output_is_not_read() {
        assert_eq!(read("VERDICT: APPROVE\n"), None);
    }

    #[test]
    fn only_the_edit_roles_may_edit() {
        let implementer = argv(true).join(" ");
        assert!(implementer.contains("--permission-mode acceptEdits"));
        let reviewer = argv(false).join(" ");
        assert!(reviewer.contains("--permission-mode dontAsk"));
        assert!(reviewer.contains("--disallowedTools=Write,Edit,NotebookEdit"));
        assert!(!reviewer.contains("acceptEdits"));
    }
}
