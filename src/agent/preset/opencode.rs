//! opencode (`opencode run`): works where `$PWD` says (git-agent sets it to
//! the agent's directory); reads the prompt from stdin; `--format json`
//! prints JSON Lines events whose `text` parts are the message. Permissions
//! come from its config, given in `OPENCODE_CONFIG_CONTENT`.

use super::{json_lines, words, Reading};
use crate::model::usage::Usage;

pub(super) fn argv(edits: bool) -> Vec<String> {
    let mut argv = words(&["opencode", "run", "--format", "json"]);
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
    vec![(
        "OPENCODE_CONFIG_CONTENT".into(),
        format!(r#"{{"permission":{permission}}}"#),
    )]
}

pub(super) fn read(stdout: &str) -> Option<Reading> {
    let mut message: Option<String> = None;
    let mut input = None;
    let mut output = None;
    let mut cost = None;
    for event in json_lines(stdout) {
        let part = event.get("part").unwrap_or(&event);
        match part.get("type").and_then(|t| t.as_str()) {
            Some("text") => {
                if let Some(text) = part.get("text").and_then(|t| t.as_str()) {
                    message = Some(text.to_string());
                }
            }
            Some("step-finish") => {
                let tokens = part.get("tokens");
                let count = |key: &str| tokens.and_then(|t| t.get(key)).and_then(|v| v.as_u64());
                if let Some(n) = count("input") {
                    input = Some(input.unwrap_or(0) + n);
                }
                if let Some(n) = count("output") {
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
