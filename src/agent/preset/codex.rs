//! Codex CLI (`codex exec`): reads the prompt from stdin (`-`); read-only
//! unless `--sandbox workspace-write`; `--json` prints JSON Lines events, the
//! final message in the last `agent_message` item and the usage in
//! `turn.completed`. Its banner and the echoed prompt go to stderr.

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

pub(super) fn read(stdout: &str) -> Option<Reading> {
    let mut message = None;
    let mut usage: Option<Usage> = None;
    for event in json_lines(stdout) {
        match event.get("type").and_then(|t| t.as_str()) {
            Some("item.completed") => {
                let item = event.get("item")?;
                if item.get("type").and_then(|t| t.as_str()) == Some("agent_message") {
                    message = item.get("text").and_then(|t| t.as_str()).map(String::from);
                }
            }
            Some("turn.completed") => {
                let u = event.get("usage");
                let count = |key: &str| u.and_then(|u| u.get(key)).and_then(|v| v.as_u64());
                let turn = Usage::from_tokens(count("input_tokens"), count("output_tokens"));
                usage = Some(match usage {
                    None => turn,
                    Some(sum) => Usage::from_tokens(
                        Some(sum.input_tokens.unwrap_or(0) + turn.input_tokens.unwrap_or(0)),
                        Some(sum.output_tokens.unwrap_or(0) + turn.output_tokens.unwrap_or(0)),
                    ),
                });
            }
            _ => {}
        }
    }
    Some(Reading {
        message: message?,
        usage: usage.filter(|u| !u.is_empty()),
    })
}
