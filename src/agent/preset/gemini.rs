//! Gemini CLI (`gemini`), as checked against 0.61.0:
//!
//! - `-p ""` runs headless with stdin as the whole prompt (stdin is read
//!   when it is not a TTY, up to 8 MiB, and `-p`'s text would follow it
//!   after a blank line; an empty `-p` adds nothing).
//! - `--skip-trust` trusts the worktree for this run (and writes nothing
//!   to `~/.gemini/trustedFolders.json`): in a folder the user has not
//!   trusted, a headless run exits 55 (`GEMINI_CLI_TRUST_WORKSPACE=true`
//!   would do the same as the flag).
//! - `--approval-mode auto_edit` offers the edit tools (`write_file
//!   {file_path, content}`, `replace`) and runs them without asking; it
//!   offers no shell tool (that needs `yolo`, or `args:` with a policy).
//!   The read-only roles run in `default` mode, where a headless run denies
//!   every tool that would ask for approval, so the model is offered only
//!   reading and search tools, and a call of `write_file` fails as an
//!   unknown tool. (`plan` mode would offer `write_file`, denied by
//!   policy outside its plans directory, and prompt the model to write a
//!   plan: not a reviewer.)
//! - `--output-format json` prints one JSON object on stdout,
//!   `{session_id, response, stats}`, without a trailing newline; warnings
//!   and errors (an error is a JSON object with `error`) go to stderr.
//!   `stats.models.<model>.tokens` counts per model, side requests (the
//!   model router's classifier) included: `prompt` and `tool` in,
//!   `candidates` and `thoughts` out. No cost is reported.
//!
//! To reach a model at a base URL of the user's own: `GOOGLE_GEMINI_BASE_URL`
//! and `GEMINI_API_KEY`, and `~/.gemini/settings.json` with
//! `{"security": {"auth": {"selectedType": "gemini-api-key"}}}`: without
//! it, the base URL alone selects the `gateway` auth type, which 0.61.0's
//! headless mode rejects ("Invalid auth method selected.", exit 41).
//! `"privacy": {"usageStatisticsEnabled": false}` there keeps it from
//! calling Google's usage statistics endpoint.

use super::{words, Reading};
use crate::model::usage::Usage;

pub(super) fn argv(edits: bool) -> Vec<String> {
    let mode = if edits { "auto_edit" } else { "default" };
    words(&[
        "gemini",
        "--skip-trust",
        "--output-format",
        "json",
        "--approval-mode",
        mode,
        "-p",
        "",
    ])
}

pub(super) fn env() -> Vec<(String, String)> {
    Vec::new()
}

pub(super) fn read(stdout: &str) -> Option<Reading> {
    // The object starts a line; anything before it (a stray line some
    // extension printed) is skipped, and so is anything after it.
    let json = stdout
        .match_indices('{')
        .filter(|(i, _)| *i == 0 || stdout[..*i].ends_with('\n'))
        .find_map(|(i, _)| {
            serde_json::Deserializer::from_str(&stdout[i..])
                .into_iter::<serde_json::Value>()
                .next()?
                .ok()
                .filter(|v| v.get("response").is_some())
        })?;
    let message = json.get("response")?.as_str()?.to_string();
    let usage = json
        .pointer("/stats/models")
        .and_then(|m| m.as_object())
        .map(|models| {
            let sum = |keys: &[&str]| {
                models
                    .values()
                    .flat_map(|m| keys.iter().map(move |k| m.pointer(&format!("/tokens/{k}"))))
                    .flatten()
                    .filter_map(|v| v.as_u64())
                    .reduce(|a, b| a + b)
            };
            Usage::from_tokens(sum(&["prompt", "tool"]), sum(&["candidates", "thoughts"]))
        })
        .filter(|u| !u.is_empty());
    Some(Reading { message, usage })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_response_and_sums_every_models_tokens() {
        let reading = read(REVIEWER).expect("gemini's JSON output");
        assert_eq!(
            reading.message,
            "The change does what the task asks.\nVERDICT: APPROVE"
        );
        let usage = reading.usage.expect("usage");
        assert_eq!(usage.input_tokens, Some(240));
        assert_eq!(usage.output_tokens, Some(60));
        assert_eq!(usage.tokens, Some(300));
    }

    #[test]
    fn thoughts_count_as_output_and_tool_prompts_as_input() {
        let out = r#"{"response": "ok", "stats": {"models": {"m": {"tokens":
            {"input": 90, "prompt": 100, "candidates": 20, "total": 135, "cached": 10,
             "thoughts": 10, "tool": 5}}}}}"#;
        let usage = read(out).and_then(|r| r.usage).expect("usage");
        assert_eq!(
            (usage.input_tokens, usage.output_tokens),
            (Some(105), Some(30))
        );
        assert_eq!(usage.tokens, Some(135));
    }

    #[test]
    fn a_line_before_the_object_is_skipped() {
        let out = format!("Loaded extension x {{v1}}\n{REVIEWER}\n");
        let reading = read(&out).expect("the object after the line");
        assert!(reading.message.ends_with("VERDICT: APPROVE"));
    }

    #[test]
    fn an_error_object_is_not_a_reading() {
        let out = r#"{"session_id": "s", "error": {"type": "Error", "message": "Invalid auth method selected.", "code": 41}}"#;
        assert_eq!(read(out), None);
    }

    /// A reviewer run of gemini 0.61.0 against the scripted model (trimmed:
    /// `stats.tools` and `stats.files` left out).
    const REVIEWER: &str = r#"{
  "session_id": "151891ca-88fa-48e6-93e8-832287603e71",
  "response": "The change does what the task asks.\nVERDICT: APPROVE",
  "stats": {
    "models": {
      "gemini-3.5-flash-lite": {
        "api": {
          "totalRequests": 1,
          "totalErrors": 0,
          "totalLatencyMs": 11,
          "errorsByType": {}
        },
        "tokens": {
          "input": 120,
          "prompt": 120,
          "candidates": 30,
          "total": 150,
          "cached": 0,
          "thoughts": 0,
          "tool": 0
        },
        "roles": {
          "utility_router": {
            "totalRequests": 1,
            "totalErrors": 0,
            "totalLatencyMs": 11,
            "tokens": {
              "input": 120,
              "prompt": 120,
              "candidates": 30,
              "total": 150,
              "cached": 0,
              "thoughts": 0,
              "tool": 0
            }
          }
        }
      },
      "gemini-3.8-flash": {
        "api": {
          "totalRequests": 1,
          "totalErrors": 0,
          "totalLatencyMs": 22,
          "errorsByType": {}
        },
        "tokens": {
          "input": 120,
          "prompt": 120,
          "candidates": 30,
          "total": 150,
          "cached": 0,
          "thoughts": 0,
          "tool": 0
        },
        "roles": {
          "main": {
            "totalRequests": 1,
            "totalErrors": 0,
            "totalLatencyMs": 22,
            "tokens": {
              "input": 120,
              "prompt": 120,
              "candidates": 30,
              "total": 150,
              "cached": 0,
              "thoughts": 0,
              "tool": 0
            }
          }
        }
      }
    }
  }
}"#;
}
