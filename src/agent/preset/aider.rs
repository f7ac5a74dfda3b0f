//! aider (checked with 0.86.2, talking to an OpenAI-compatible service via
//! litellm, `--model openai/<name>` with `OPENAI_API_BASE`/`OPENAI_API_KEY`).
//!
//! - The prompt goes in a file (`--message-file {prompt_file}`): aider makes
//!   one chat turn of the whole file, where stdin would make one turn (and
//!   one model request) per line. It prints no echo of the prompt.
//! - aider has no tools: the model edits by writing files in the text of its
//!   reply, in the edit format aider picks for the model (`whole` for a model
//!   it does not know, `diff` for most it knows); the preset leaves that
//!   choice to aider. `--yes-always` creates and edits the files the reply
//!   names, but never runs a shell command the model suggests (aider asks
//!   those with "explicit yes required", which `--yes-always` declines), so
//!   `--no-suggest-shell-commands` only keeps that offer out of the prompt.
//! - Read-only roles use `--chat-mode ask`: in ask mode a reply in the edit
//!   format changes no file (checked), though aider still adds files the
//!   reply mentions to the chat and asks again once.
//! - `--no-auto-commits` keeps aider from committing (dirty commits too;
//!   git-agent commits for it), though it still `git add`s the files it
//!   creates; `--no-gitignore` keeps it from adding `.aider*` to
//!   `.gitignore`. So that nothing of aider's own ends up in the worktree
//!   (and so in git-agent's commit), the chat and input histories go to
//!   `/dev/null` and the repo map is off (`--map-tokens 0`): the map's tag
//!   cache is a `.aider.tags.cache.v4/` directory in the worktree root that
//!   no flag moves. The model still sees every file the reply names: aider
//!   adds mentioned files to the chat and asks again.
//! - No network but the model: `--no-check-update`, `--no-show-release-notes`
//!   (else a first run offers a browser), `--no-analytics` (else
//!   `--yes-always` would accept the analytics opt-in aider asks one user in
//!   ten; `--analytics-disable` would also do, but writes that into
//!   `~/.aider` and prints a line), `--no-detect-urls` (else `--yes-always`
//!   scrapes every URL in the prompt). `LITELLM_LOCAL_MODEL_COST_MAP=True`
//!   keeps litellm from fetching its model price list from GitHub at every
//!   start (aider keeps its own copy, fetched once a day into
//!   `~/.aider/caches`; a model listed in `--model-metadata-file` needs no
//!   fetch at all).
//! - `--no-stream`: only then does aider report the usage the service sent;
//!   streaming, it counts tokens itself.
//! - stdout: start-up notes, a banner (`Aider v…`, `Model: …`, `Git repo: …`,
//!   `Repo-map: …`, a blank line), then per model request the reply as plain
//!   text (`--no-pretty`) followed by `Tokens: <n> sent, <n> received.` and,
//!   where aider knows the model's prices, ` Cost: $<x> message, $<y>
//!   session.`, then notes such as `Applied edit to <path>`.

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
        "--map-tokens",
        "0",
        "--chat-history-file",
        "/dev/null",
        "--input-history-file",
        "/dev/null",
        "--no-check-update",
        "--no-show-release-notes",
        "--no-analytics",
        "--no-detect-urls",
        "--no-suggest-shell-commands",
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
    vec![("LITELLM_LOCAL_MODEL_COST_MAP".into(), "True".into())]
}

/// The model's replies (what follows the banner, less the usage lines) and
/// the usage: the sum of the `Tokens:` lines (one per model request) and the
/// session cost of the last `Cost:`.
pub(super) fn read(stdout: &str) -> Option<Reading> {
    let lines: Vec<&str> = stdout.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("Aider v"))
        .map(|banner| {
            lines[banner..]
                .iter()
                .position(|l| l.trim().is_empty())
                .map_or(lines.len(), |blank| banner + blank + 1)
        })
        .unwrap_or(0);
    let mut message = Vec::new();
    let (mut sent, mut received, mut cost) = (None, None, None);
    for line in &lines[start..] {
        let line_cost = line.split("Cost: $").nth(1).and_then(session_cost);
        if let Some(rest) = line.trim().strip_prefix("Tokens: ") {
            let (s, r) = parse_tokens(rest);
            sent = add(sent, s);
            received = add(received, r);
        } else if !line.trim().starts_with("Cost: $") {
            message.push(*line);
        }
        cost = line_cost.or(cost);
    }
    let mut usage = Usage::from_tokens(sent, received);
    usage.cost_usd = cost;
    Some(Reading {
        message: message.join("\n").trim().to_string(),
        usage: (!usage.is_empty()).then_some(usage),
    })
}

fn add(sum: Option<u64>, n: Option<u64>) -> Option<u64> {
    match (sum, n) {
        (None, None) => None,
        (s, n) => Some(s.unwrap_or(0) + n.unwrap_or(0)),
    }
}

/// `1.1k sent, 200 cache write, 23 received.` (aider rounds to 0.1k from
/// 1,000 and to 1k from 10,000): the tokens sent and received.
fn parse_tokens(rest: &str) -> (Option<u64>, Option<u64>) {
    let counts = rest.split(" received").next().unwrap_or("");
    let (mut sent, mut received) = (None, None);
    for (i, part) in counts.split(", ").enumerate() {
        let mut words = part.split_whitespace();
        let n = words.next().and_then(number);
        match words.next() {
            Some("sent") => sent = n,
            None if i > 0 && rest.contains(" received") => received = n,
            _ => {}
        }
    }
    (sent, received)
}

/// `$0.01 message, $0.02 session.` after `Cost: $`: the session's cost.
fn session_cost(rest: &str) -> Option<f64> {
    let session = rest.split(", $").nth(1)?;
    session.split_whitespace().next()?.parse().ok()
}

/// `602`, `1.1k`, `12k`.
fn number(word: &str) -> Option<u64> {
    let word = word.trim().replace(',', "");
    let (digits, scale) = match word.strip_suffix('k') {
        Some(d) => (d.to_string(), 1_000.0),
        None => (word, 1.0),
    };
    digits
        .parse::<f64>()
        .ok()
        .map(|n| (n * scale).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// aider 0.86.2's stdout as a reviewer (`--chat-mode ask`), trimmed: the
    /// reply named a file, so aider added it and asked again.
    const REVIEW: &str = "
Update git name with: git config user.name \"Your Name\"
Aider v0.86.2
Model: openai/scripted with ask edit format
Git repo: .git with 1 files
Repo-map: disabled

Looks fine: a.txt says hello.
VERDICT: APPROVE

Tokens: 120 sent, 30 received. Cost: $0.00018 message, $0.00018 session.

a.txt
Looks fine: a.txt says hello.
VERDICT: APPROVE

Tokens: 1.1k sent, 30 received. Cost: $0.0012 message, $0.0014 session.
";

    #[test]
    fn the_banner_and_the_tokens_lines_are_not_the_message() {
        let reading = read(REVIEW).unwrap();
        assert!(
            reading.message.starts_with("Looks fine"),
            "{}",
            reading.message
        );
        assert!(reading.message.ends_with("VERDICT: APPROVE"));
        assert!(!reading.message.contains("Tokens:"));
        assert!(!reading.message.contains("Aider v"));
    }

    #[test]
    fn usage_sums_the_requests_and_takes_the_session_cost() {
        let usage = read(REVIEW).unwrap().usage.unwrap();
        assert_eq!(usage.input_tokens, Some(1220));
        assert_eq!(usage.output_tokens, Some(60));
        assert_eq!(usage.tokens, Some(1280));
        assert_eq!(usage.cost_usd, Some(0.0014));
    }

    #[test]
    fn cache_counts_and_a_cost_line_of_its_own_are_read() {
        let reading = read(
            "Aider v0.86.2\n\nDone.\nTokens: 12k sent, 2.0k cache write, 9.5k cache hit, 1.2k received.\nCost: $0.02 message, $0.05 session.\n",
        )
        .unwrap();
        assert_eq!(reading.message, "Done.");
        let usage = reading.usage.unwrap();
        assert_eq!(usage.input_tokens, Some(12_000));
        assert_eq!(usage.output_tokens, Some(1_200));
        assert_eq!(usage.cost_usd, Some(0.05));
    }

    #[test]
    fn without_prices_there_is_no_cost() {
        let usage = read("Aider v0.86.2\n\nhi\n\nTokens: 120 sent, 30 received.\n")
            .unwrap()
            .usage
            .unwrap();
        assert_eq!(
            (usage.input_tokens, usage.output_tokens),
            (Some(120), Some(30))
        );
        assert_eq!(usage.cost_usd, None);
    }
}
