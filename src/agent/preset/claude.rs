//! Claude Code (`claude`): `-p` reads the prompt from stdin; edits need
//! `--permission-mode acceptEdits`; `--output-format json` prints one JSON
//! object whose `result` is the final message, with `usage` and
//! `total_cost_usd`. It reaches its model at `ANTHROPIC_BASE_URL`.

use super::{words, Reading};
use crate::model::usage::Usage;

pub(super) fn argv(edits: bool) -> Vec<String> {
    let mode = if edits { "acceptEdits" } else { "plan" };
    words(&[
        "claude",
        "-p",
        "--output-format",
        "json",
        "--permission-mode",
        mode,
    ])
}

pub(super) fn env() -> Vec<(String, String)> {
    Vec::new()
}

pub(super) fn read(stdout: &str) -> Option<Reading> {
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).ok()?;
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
