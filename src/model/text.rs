//! Text from tasks, agents and users, made safe for where it goes: one line
//! for titles and actors, no trailer of ours inside a quoted commit message,
//! and no control character on a terminal.

use std::borrow::Cow;

/// A title as it is stored: one line. Line breaks and tabs fold into single
/// spaces (a plan may wrap a long title); any other control character is
/// refused, named by its code point, for it would reach terminals and
/// commit subjects.
pub fn title(text: &str) -> Result<String, String> {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match folded.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "holds the control character U+{:04X}; a title is one line of text",
            c as u32
        )),
        None => Ok(folded),
    }
}

/// An actor name as it is recorded: refused where it holds a line break or
/// any other control character (it goes into trailers and lease refs).
pub fn actor(text: &str) -> Result<&str, String> {
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "the actor \"{}\" holds the control character U+{:04X}; an actor is one line of text",
            printable(text),
            c as u32
        )),
        None if text.trim().is_empty() => Err("the actor is empty".into()),
        None => Ok(text),
    }
}

/// Text quoted into a commit message that git-agent signs with its own
/// trailers, defused: every `Agent-<Name>:` in it becomes `Agent-<Name>
/// (quoted):`, which is no trailer token to git's trailer parser and no
/// match for `git log --grep='Agent-Task: <id>'`.
pub fn defuse(text: &str) -> Cow<'_, str> {
    let lower = text.to_ascii_lowercase();
    if !lower.contains("agent-") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = 0;
    let mut from = 0;
    while let Some(at) = lower[from..].find("agent-").map(|i| i + from) {
        let name_end = lower[at + 6..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .map_or(lower.len(), |i| i + at + 6);
        let spaced_colon = lower[name_end..]
            .find(|c: char| c != ' ' && c != '\t')
            .map(|i| i + name_end)
            .filter(|&i| lower[i..].starts_with(':'));
        if let (true, Some(colon)) = (name_end > at + 6, spaced_colon) {
            out.push_str(&text[rest..name_end]);
            out.push_str(" (quoted):");
            rest = colon + 1;
            from = colon + 1;
        } else {
            from = at + 6;
        }
    }
    out.push_str(&text[rest..]);
    Cow::Owned(out)
}

/// `text` for a terminal: control characters removed, line breaks and tabs
/// kept (escape sequences from task text or agent output never reach it raw).
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .filter(|&c| !c.is_control() || c == '\n' || c == '\t')
            .collect(),
    )
}

/// `n` and a noun, in the number it takes: "1 task", "2 tasks" (`noun` is
/// the singular; the plural adds an s).
pub fn count(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_fold_line_breaks_and_refuse_other_control_characters() {
        assert_eq!(title("  Add\na  mode\t ").unwrap(), "Add a mode");
        let e = title("Red \u{1b}[31mtext").unwrap_err();
        assert!(e.contains("U+001B"), "{e}");
        assert!(title("nul\0").unwrap_err().contains("U+0000"));
    }

    #[test]
    fn actors_with_control_characters_are_refused() {
        assert_eq!(actor("ann@host").unwrap(), "ann@host");
        assert!(actor("ann\nAgent-Task: t-x")
            .unwrap_err()
            .contains("U+000A"));
        assert!(actor(" ").is_err());
    }

    #[test]
    fn quoted_text_cannot_form_our_trailers() {
        let spoof = "Fix it\n\nAgent-Task: t-other\nagent-role : x\nAgent-: y\nSee AGENT-TASK:t-z";
        let safe = defuse(spoof);
        assert!(!safe.to_ascii_lowercase().contains("agent-task:"), "{safe}");
        assert!(safe.contains("Agent-Task (quoted): t-other"), "{safe}");
        assert!(safe.contains("agent-role (quoted): x"), "{safe}");
        assert!(safe.contains("AGENT-TASK (quoted):t-z"), "{safe}");
        assert!(
            safe.contains("Agent-: y"),
            "a bare prefix is no token: {safe}"
        );
        assert_eq!(defuse("plain text"), "plain text");
        assert_eq!(defuse("my-agent-thing works"), "my-agent-thing works");
    }

    #[test]
    fn counts_take_the_number_of_their_noun() {
        assert_eq!(count(1, "task"), "1 task");
        assert_eq!(count(0, "task"), "0 tasks");
        assert_eq!(count(12, "commit"), "12 commits");
    }

    #[test]
    fn terminals_get_no_control_characters() {
        assert_eq!(printable("a\u{1b}[2Jb\nc\td\r"), "a[2Jb\nc\td");
        assert!(matches!(printable("fine"), Cow::Borrowed(_)));
    }
}
