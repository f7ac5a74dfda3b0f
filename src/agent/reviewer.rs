//! The reviewer's side of the contract: the prompt it receives (the range's
//! log and diff, the task, how to answer) and what it returns: a verdict, a
//! summary and, optionally, what it cost. The answer is read from the file
//! named by `$GIT_AGENT_OUTPUT` (YAML or JSON), or else from the last line
//! the reviewer printed (`VERDICT: APPROVE` / `VERDICT: CHANGES`, everything
//! before it being the summary).

use serde::Deserialize;

use crate::model::task::{Task, Verdict};

pub use crate::model::usage::Usage;

/// A reviewer's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub verdict: Verdict,
    /// What the reviewer found, verbatim (trimmed); empty if it said nothing.
    pub summary: String,
    pub usage: Option<Usage>,
}

/// The output file's shape. Other keys are allowed: agents add their own.
#[derive(Deserialize)]
struct Written {
    verdict: String,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    usage: Option<Usage>,
}

/// The verdict a word names: `approve` or `changes` (any case; also
/// `approved` and `request_changes`, which agents tend to write).
pub fn verdict_word(word: &str) -> Option<Verdict> {
    match word.trim().to_ascii_lowercase().replace('-', "_").as_str() {
        "approve" | "approved" => Some(Verdict::Approve),
        "changes" | "request_changes" | "changes_requested" => Some(Verdict::Changes),
        _ => None,
    }
}

/// Read the answer from the output file's text (`output`) or, failing that,
/// from what the reviewer printed. `Err` says, in a sentence, why neither
/// holds a verdict.
pub fn read(output: Option<&str>, printed: &str) -> Result<Answer, String> {
    let from_file = output.map(from_output);
    if let Some(Ok(answer)) = from_file {
        return Ok(answer);
    }
    if let Some(answer) = from_printed(printed) {
        return Ok(answer);
    }
    let last = printed
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(nothing)");
    let printed_part = format!(
        "its final message has no `VERDICT: APPROVE` or `VERDICT: CHANGES` line (its last line: \"{}\")",
        crate::model::one_line(last, 80)
    );
    Err(match from_file {
        Some(Err(why)) => format!("$GIT_AGENT_OUTPUT {why}, and {printed_part}"),
        _ => format!("it wrote no $GIT_AGENT_OUTPUT, and {printed_part}"),
    })
}

fn from_output(text: &str) -> Result<Answer, String> {
    // JSON is YAML, so one parser reads both.
    let written: Written =
        serde_yaml::from_str(text).map_err(|e| format!("is not a verdict ({e})"))?;
    let verdict = verdict_word(&written.verdict).ok_or_else(|| {
        format!(
            "says verdict \"{}\", which is neither approve nor changes",
            written.verdict
        )
    })?;
    Ok(Answer {
        verdict,
        summary: written.summary.unwrap_or_default().trim().to_string(),
        usage: written.usage,
    })
}

/// The last `VERDICT:` line of the final message decides; the lines before
/// it are the summary (a sign-off after it is dropped).
fn from_printed(printed: &str) -> Option<Answer> {
    let lines: Vec<&str> = printed.lines().collect();
    let (at, verdict) = lines
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, l)| verdict_line(l).map(|v| (i, v)))?;
    Some(Answer {
        verdict,
        summary: lines[..at].join("\n").trim().to_string(),
        usage: None,
    })
}

/// The verdict a `VERDICT: APPROVE` / `VERDICT: CHANGES` line gives.
fn verdict_line(line: &str) -> Option<Verdict> {
    // Agents that write Markdown tend to dress the line up: **VERDICT: APPROVE**.
    let line = line.trim().trim_matches(|c| c == '*' || c == '`');
    let (key, word) = line.split_once(':')?;
    if !key.trim().eq_ignore_ascii_case("verdict") {
        return None;
    }
    verdict_word(
        word.trim()
            .trim_matches(|c| c == '*' || c == '`' || c == '.'),
    )
}

/// Patch text a prompt carries at most; the rest is cut, with a note saying
/// how to see it all (the reviewer runs in a checkout of the head).
pub const DIFF_BYTES: usize = 60_000;

/// What the reviewer is shown: the range and, for a task, what was asked.
#[derive(Debug, Clone)]
pub struct Brief<'a> {
    pub task: Option<&'a Task>,
    /// The branch (or revision) under review, as the user named it.
    pub branch: &'a str,
    pub base: &'a str,
    pub head: &'a str,
    pub target: &'a str,
    /// `git log` of `base..head`, oldest first.
    pub log: &'a str,
    /// `git diff --stat base head`.
    pub stat: &'a str,
    /// `git diff base head`, whole: `prompt` cuts it to `DIFF_BYTES`.
    pub diff: &'a str,
}

/// The reviewer's built-in prompt.
pub fn prompt(brief: &Brief) -> String {
    let mut p = format!(
        "# Review {} ({}..{})\n\n",
        brief.branch,
        short(brief.base),
        short(brief.head)
    );
    p.push_str(&format!(
        "You are the reviewer. Review the commits on `{}` that `{}` does not have: \
         `git diff {}..HEAD` in this working directory, a detached checkout of {}. \
         Read any file you need; do not commit, push or change branches.\n\n",
        brief.branch, brief.target, brief.base, brief.head
    ));
    if let Some(task) = brief.task {
        p.push_str(&format!("## Task {}: {}\n\n", task.id, task.title));
        if !task.spec.trim().is_empty() {
            p.push_str(task.spec.trim_end());
            p.push_str("\n\n");
        }
    }
    p.push_str("## Commits\n\n");
    p.push_str(brief.log.trim_end());
    p.push_str("\n\n## Files changed\n\n");
    p.push_str(brief.stat.trim_end());
    let fence = fence_for(brief.diff);
    p.push_str(&format!("\n\n## Diff\n\n{fence}diff\n"));
    p.push_str(cut(brief.diff, DIFF_BYTES, brief.base).trim_end());
    p.push_str(&format!("\n{fence}\n\n"));
    p.push_str(ANSWER);
    p
}

/// The variables a `.git-agent/prompts/reviewer.md` template can use.
pub fn vars(brief: &Brief) -> Vec<(&'static str, String)> {
    let task = |f: fn(&Task) -> String| brief.task.map(f).unwrap_or_default();
    vec![
        ("id", task(|t| t.id.clone())),
        ("title", task(|t| t.title.clone())),
        ("spec", task(|t| t.spec.clone())),
        ("branch", brief.branch.to_string()),
        ("base", brief.base.to_string()),
        ("head", brief.head.to_string()),
        ("target", brief.target.to_string()),
        ("log", brief.log.to_string()),
        ("stat", brief.stat.to_string()),
        ("diff", cut(brief.diff, DIFF_BYTES, brief.base)),
        ("answer", ANSWER.to_string()),
    ]
}

const ANSWER: &str = "## How to answer

Approve if the change does what it should, correctly, with tests where it
needs them. Otherwise ask for changes and say exactly what to fix (file,
line, why): your summary goes verbatim into the implementer's next attempt.

Write your verdict to the file named by $GIT_AGENT_OUTPUT, as YAML or JSON:

    verdict: approve          # or: changes
    summary: |
      What you found; for changes, what to fix.

or end what you print with one last line, `VERDICT: APPROVE` or
`VERDICT: CHANGES`; everything you printed before it is the summary.
";

/// `text` cut at a line boundary to at most `max` bytes, with a note saying
/// how much was left out and how to see it.
pub fn cut(text: &str, max: usize, base: &str) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let end = text[..end].rfind('\n').map_or(end, |i| i + 1);
    let left = text[end..].lines().count();
    format!(
        "{}[… {left} more lines of diff not shown: run `git diff {base}..HEAD` to see them]\n",
        &text[..end]
    )
}

/// A code fence longer than any run of backticks in `text`.
fn fence_for(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    "`".repeat(longest.max(2) + 1)
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_file_is_read_as_yaml_or_json() {
        let a = read(
            Some("verdict: changes\nsummary: |\n  fix a.rs\n  and b.rs\nusage: {tokens: 12, cost_usd: 0.5}\n"),
            "VERDICT: APPROVE",
        )
        .unwrap();
        assert_eq!(a.verdict, Verdict::Changes);
        assert_eq!(a.summary, "fix a.rs\nand b.rs");
        assert_eq!(
            a.usage,
            Some(Usage {
                tokens: Some(12),
                cost_usd: Some(0.5),
                ..Usage::default()
            })
        );
        let a = read(Some(r#"{"verdict": "APPROVE", "extra": 1}"#), "").unwrap();
        assert_eq!((a.verdict, a.summary.as_str()), (Verdict::Approve, ""));
    }

    #[test]
    fn the_last_printed_line_is_the_fallback_and_the_rest_the_summary() {
        let a = read(None, "Looked at it.\n\nAll good.\n**VERDICT: APPROVE**\n\n").unwrap();
        assert_eq!(a.verdict, Verdict::Approve);
        assert_eq!(a.summary, "Looked at it.\n\nAll good.");
        let a = read(Some("not: a verdict"), "x.rs: TODO left\nVERDICT: CHANGES").unwrap();
        assert_eq!(
            (a.verdict, a.summary.as_str()),
            (Verdict::Changes, "x.rs: TODO left")
        );
    }

    #[test]
    fn no_verdict_anywhere_is_an_error_that_says_where_it_looked() {
        let e = read(None, "VERDICT: maybe later\nthen more talk").unwrap_err();
        assert!(
            e.contains("no $GIT_AGENT_OUTPUT") && e.contains("then more talk"),
            "{e}"
        );
        // The last verdict line counts, whatever follows it.
        let a = read(None, "VERDICT: CHANGES\nVERDICT: APPROVE.\nthanks").unwrap();
        assert_eq!(a.verdict, Verdict::Approve);
        let e = read(Some("verdict: maybe"), "").unwrap_err();
        assert!(e.contains("\"maybe\""), "{e}");
    }

    #[test]
    fn a_long_diff_is_cut_at_a_line_with_a_note() {
        let diff = "+a\n".repeat(100);
        let cut = cut(&diff, 10, "abc");
        assert!(cut.starts_with("+a\n+a\n+a\n[… 97 more lines"), "{cut}");
        assert!(cut.contains("git diff abc..HEAD"), "{cut}");
        assert_eq!(super::cut("+a\n", 10, "abc"), "+a\n");
    }

    #[test]
    fn the_prompt_carries_task_log_stat_diff_and_how_to_answer() {
        let brief = Brief {
            task: None,
            branch: "feature",
            base: "1111111111111",
            head: "2222222222222",
            target: "main",
            log: "abc Add x",
            stat: " x | 1 +",
            diff: "+```inner```\n",
        };
        let p = prompt(&brief);
        for part in [
            "# Review feature (1111111111..2222222222)",
            "abc Add x",
            " x | 1 +",
            "````diff\n+```inner```\n````",
            "VERDICT: CHANGES",
        ] {
            assert!(p.contains(part), "no {part:?} in:\n{p}");
        }
    }
}
