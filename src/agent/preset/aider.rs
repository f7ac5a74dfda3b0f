//! aider: takes each stdin line as a chat turn, so the prompt goes in a file
//! (`--message-file`); `--yes-always` answers its questions; it prints its
//! final message as plain text, then `Tokens: … sent, … received.` (and the
//! cost) lines, which are the usage and not part of the message.

use super::{words, Reading};
use crate::model::usage::Usage;

pub(super) fn argv(edits: bool) -> Vec<String> {
    let mut argv = words(&[
        "aider",
        "--message-file",
        "{prompt_file}",
        "--yes-always",
        "--no-auto-commits",
        "--no-gitignore",
        "--no-check-update",
        "--no-show-model-warnings",
        "--no-pretty",
        "--no-stream",
    ]);
    if !edits {
        argv.extend(words(&["--chat-mode", "ask"]));
    }
    argv
}

pub(super) fn env() -> Vec<(String, String)> {
    Vec::new()
}

pub(super) fn read(stdout: &str) -> Option<Reading> {
    let mut message = Vec::new();
    let mut usage = None;
    for line in stdout.lines() {
        if let Some(rest) = line.trim().strip_prefix("Tokens: ") {
            usage = parse_tokens(rest);
        } else {
            message.push(line);
        }
    }
    Some(Reading {
        message: message.join("\n"),
        usage,
    })
}

/// `1.1k sent, 23 received. Cost: $0.01 message, $0.02 session.`
fn parse_tokens(rest: &str) -> Option<Usage> {
    let number = |word: &str| -> Option<u64> {
        let word = word.trim().replace(',', "");
        let (digits, scale) = match word.strip_suffix('k') {
            Some(d) => (d.to_string(), 1_000.0),
            None => (word, 1.0),
        };
        digits
            .parse::<f64>()
            .ok()
            .map(|n| (n * scale).round() as u64)
    };
    let mut parts = rest.split(',');
    let sent = number(parts.next()?.trim().strip_suffix(" sent")?)?;
    let received = parts
        .next()
        .and_then(|p| p.trim().split_whitespace().next())
        .and_then(number);
    let mut usage = Usage::from_tokens(Some(sent), received);
    usage.cost_usd = rest
        .split("Cost: $")
        .nth(1)
        .and_then(|c| c.split_whitespace().next())
        .and_then(|c| c.parse().ok());
    Some(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tokens_line_is_usage_not_message() {
        let reading = read("Looks right.\nVERDICT: APPROVE\nTokens: 1.1k sent, 23 received. Cost: $0.01 message, $0.02 session.\n").unwrap();
        assert_eq!(reading.message, "Looks right.\nVERDICT: APPROVE");
        let usage = reading.usage.unwrap();
        assert_eq!(usage.input_tokens, Some(1100));
        assert_eq!(usage.output_tokens, Some(23));
        assert_eq!(usage.cost_usd, Some(0.01));
    }
}
