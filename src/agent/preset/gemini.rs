//! Gemini CLI (`gemini`): `-p ""` runs one prompt non-interactively, with
//! stdin as the prompt; `--skip-trust` lets it work in a folder the user has
//! not trusted (else it exits 55); `--approval-mode auto_edit` gives it
//! write tools. `--output-format json` prints `{response, stats}`. It
//! reaches its model at `GOOGLE_GEMINI_BASE_URL`.

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
    // Anything before the JSON object (a warning on stdout) is skipped.
    let start = stdout.find('{')?;
    let json: serde_json::Value = serde_json::from_str(stdout[start..].trim()).ok()?;
    let message = json.get("response")?.as_str()?.to_string();
    let mut input = None;
    let mut output = None;
    if let Some(models) = json.pointer("/stats/models").and_then(|m| m.as_object()) {
        for model in models.values() {
            let tokens = model.get("tokens");
            let count = |key: &str| tokens.and_then(|t| t.get(key)).and_then(|v| v.as_u64());
            if let Some(n) = count("prompt") {
                input = Some(input.unwrap_or(0) + n);
            }
            if let Some(n) = count("candidates") {
                output = Some(output.unwrap_or(0) + n);
            }
        }
    }
    let usage = Usage::from_tokens(input, output);
    Some(Reading {
        message,
        usage: (!usage.is_empty()).then_some(usage),
    })
}
