//! opencode (`opencode run`, checked with 1.18.33).
//!
//! - It works where `$PWD` says, not in its cwd (git-agent sets both to the
//!   agent's directory), and reads the prompt from stdin when no message is
//!   given on the command line.
//! - `--title` (with no value: the prompt's start) saves the extra model
//!   request opencode otherwise makes to name the session.
//! - Permissions: `OPENCODE_PERMISSION`, a JSON object that opencode merges
//!   over the `permission` key of all its config (files and
//!   `OPENCODE_CONFIG_CONTENT`, which so stays free for the user's provider),
//!   and that applies to every agent, subagents included. A permission that
//!   is `ask` is rejected by `opencode run` (it cannot ask), so the edit roles
//!   allow edits and shell commands outright. The read-only roles run the
//!   `plan` agent with edits and shell commands denied: a denied tool is not
//!   even offered to the model, and a call of it fails as an unavailable tool
//!   (checked). `plan` alone would not do: it allows shell commands, and any
//!   user config that allows edits overrides its own denial.
//! - `--format json`: JSON Lines events, each with a `part`: `text` events
//!   (`part.text`) and one `step_finish` per model request with
//!   `part.tokens` (`input`, `output`, `reasoning`, `cache.read`,
//!   `cache.write`) and `part.cost` in dollars; a failure is an `error` event
//!   and exit code 1.
//! - At start it fetches model data from models.dev (`OPENCODE_DISABLE_MODELS_FETCH=1`
//!   stops that; a provider configured in full needs none) and installs
//!   `@opencode-ai/plugin` into its config directory from the npm registry,
//!   in the background (it skips that once the directory has it).

use super::{json_lines, words, Reading};
use crate::model::usage::Usage;

pub(super) fn argv(edits: bool) -> Vec<String> {
    let mut argv = words(&["opencode", "run", "--format", "json", "--title"]);
    if !edits {
        argv.extend(words(&["--agent", "plan"]));
    }
    argv
}

pub(super) fn env(edits: bool) -> Vec<(String, String)> {
    let permission = if edits {
        r#"{"edit":"allow","bash":"allow","webfetch":"deny"}"#
    } else {
        r#"{"edit":"deny","bash":"deny","webfetch":"deny"}"#
    };
    vec![("OPENCODE_PERMISSION".into(), permission.into())]
}

/// The last text part is the message; the usage is the sum of the steps'
/// tokens (cache reads and writes counted as input, reasoning as output).
pub(super) fn read(stdout: &str) -> Option<Reading> {
    let mut message: Option<String> = None;
    let (mut input, mut output, mut cost) = (None, None, None);
    for event in json_lines(stdout) {
        let part = event.get("part").unwrap_or(&event);
        match part.get("type").and_then(|t| t.as_str()) {
            Some("text") => {
                if let Some(text) = part.get("text").and_then(|t| t.as_str()) {
                    message = Some(text.to_string());
                }
            }
            Some("step-finish") => {
                let tokens = &part["tokens"];
                let count = |keys: &[&[&str]]| -> Option<u64> {
                    let found: Vec<u64> = keys
                        .iter()
                        .filter_map(|path| path.iter().try_fold(tokens, |v, k| v.get(*k))?.as_u64())
                        .collect();
                    (!found.is_empty()).then(|| found.iter().sum())
                };
                if let Some(n) = count(&[&["input"], &["cache", "read"], &["cache", "write"]]) {
                    input = Some(input.unwrap_or(0) + n);
                }
                if let Some(n) = count(&[&["output"], &["reasoning"]]) {
                    output = Some(output.unwrap_or(0) + n);
                }
                if let Some(c) = part.get("cost").and_then(|c| c.as_f64()) {
                    cost = Some(cost.unwrap_or(0.0) + c);
                }
            }
            _ => {}
        }
    }
    let mut usage = Usage::from_tokens(input, output);
    usage.cost_usd = cost;
    Some(Reading {
        message: message?,
        usage: (!usage.is_empty()).then_some(usage),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// opencode 1.18.33's `--format json` output for a write and a final
    /// message, trimmed (ids shortened, long fields left out).
    const RUN: &str = r#"{"type":"step_start","timestamp":1,"sessionID":"ses_1","part":{"id":"prt_1","messageID":"msg_1","sessionID":"ses_1","snapshot":"f97b","type":"step-start"}}
{"type":"tool_use","timestamp":2,"sessionID":"ses_1","part":{"type":"tool","tool":"write","callID":"call_1","state":{"status":"completed","input":{"filePath":"hello.txt","content":"hello\n"},"output":"Wrote file successfully.","title":"hello.txt"},"id":"prt_2","sessionID":"ses_1","messageID":"msg_1"}}
{"type":"step_finish","timestamp":3,"sessionID":"ses_1","part":{"id":"prt_3","reason":"tool-calls","messageID":"msg_1","sessionID":"ses_1","type":"step-finish","tokens":{"total":150,"input":120,"output":30,"reasoning":0,"cache":{"write":0,"read":0}},"cost":0}}
{"type":"step_start","timestamp":4,"sessionID":"ses_1","part":{"id":"prt_4","messageID":"msg_2","sessionID":"ses_1","type":"step-start"}}
{"type":"text","timestamp":5,"sessionID":"ses_1","part":{"id":"prt_5","messageID":"msg_2","sessionID":"ses_1","type":"text","text":"Looks right.\nVERDICT: APPROVE","time":{"start":4,"end":5}}}
{"type":"step_finish","timestamp":6,"sessionID":"ses_1","part":{"id":"prt_6","reason":"stop","messageID":"msg_2","sessionID":"ses_1","type":"step-finish","tokens":{"total":250,"input":100,"output":20,"reasoning":10,"cache":{"write":0,"read":120}},"cost":0.0021}}
"#;

    #[test]
    fn the_last_text_part_is_the_message() {
        let reading = read(RUN).unwrap();
        assert_eq!(reading.message, "Looks right.\nVERDICT: APPROVE");
    }

    #[test]
    fn usage_sums_the_steps() {
        let usage = read(RUN).unwrap().usage.unwrap();
        assert_eq!(usage.input_tokens, Some(340));
        assert_eq!(usage.output_tokens, Some(60));
        assert_eq!(usage.cost_usd, Some(0.0021));
    }

    #[test]
    fn the_read_only_roles_deny_edits_and_shell_commands() {
        let env = env(false);
        let permission: serde_json::Value = serde_json::from_str(&env[0].1).unwrap();
        assert_eq!(env[0].0, "OPENCODE_PERMISSION");
        assert_eq!(permission["edit"], "deny");
        assert_eq!(permission["bash"], "deny");
        assert!(argv(false).ends_with(&words(&["--agent", "plan"])));
    }
}
