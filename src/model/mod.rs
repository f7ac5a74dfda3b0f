//! The pure core: ids, the task and its state machine, plan validation.
//!
//! Nothing here touches the disk, a process or git; everything is a function
//! of its inputs, so every rule can be tested by a table.

pub mod activity;
pub mod board;
pub mod id;
pub mod merge;
pub mod plan;
pub mod queue;
pub mod span;
pub mod task;
pub mod text;
pub mod usage;
pub mod yaml;

/// The longest duration any setting takes: a year. Longer ones are refused
/// by name, never left to overflow a clock.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(365 * 86400);

/// A duration like `90s`, `10m`, `2h`, `1d` (or bare seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" is not a duration (like 90s, 10m, 2h)"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => {
            return Err(format!(
                "\"{text}\": unknown unit \"{unit}\" (use s, m, h or d)"
            ))
        }
    };
    match n.checked_mul(scale) {
        Some(seconds) if seconds <= MAX_DURATION.as_secs() => {
            Ok(std::time::Duration::from_secs(seconds))
        }
        _ => Err(format!("\"{text}\" is out of range (at most 365d)")),
    }
}

/// `text` on one line of at most `max` characters, cut with an ellipsis.
pub fn one_line(text: &str, max: usize) -> String {
    let flat = text::printable(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("10m").unwrap().as_secs(), 600);
        assert_eq!(parse_duration("2h").unwrap().as_secs(), 7200);
        assert_eq!(parse_duration("45").unwrap().as_secs(), 45);
        assert!(parse_duration("10 minutes").is_err());
        assert!(parse_duration("m").is_err());
        assert_eq!(parse_duration("365d").unwrap(), MAX_DURATION);
        for huge in ["366d", "99999999999999999d", "18446744073709551615m"] {
            let e = parse_duration(huge).unwrap_err();
            assert!(e.contains("out of range"), "{e}");
        }
    }

    #[test]
    fn one_line_flattens_and_cuts() {
        assert_eq!(one_line("a\n b", 10), "a b");
        assert_eq!(one_line("abcdef", 4), "abc…");
    }
}
