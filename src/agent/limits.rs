//! What agents may spend and how a rate limit is met: `budget:` and
//! `roles.<role>.rate_limit:` in `.git-agent.yaml`, and their checks.
//!
//! ```yaml
//! budget: { task_usd: 2.50, run_usd: 20, task_tokens: 2000000 }   # each optional
//! roles:
//!   implementer:
//!     agent: claude
//!     rate_limit: { patterns: ["429", "rate limit"], backoff: 30s, max_backoff: 10m }
//! ```

use serde::{Deserialize, Deserializer};
use std::time::Duration;

use super::config::{Config, Role};

/// `budget:`: limits on what agents report they spent. Each is optional;
/// none set means no limit.
#[derive(Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Dollars one task's agents may spend over all its attempts and roles.
    #[serde(default)]
    pub task_usd: Option<f64>,
    /// Dollars one `git agent run` may spend, over all tasks.
    #[serde(default)]
    pub run_usd: Option<f64>,
    /// Tokens one task's agents may use over all its attempts and roles.
    #[serde(default)]
    pub task_tokens: Option<u64>,
}

impl Budget {
    /// Whether any limit is set.
    pub fn is_set(&self) -> bool {
        *self != Budget::default()
    }
}

/// The rate-limit patterns every role has unless it names its own.
pub const DEFAULT_PATTERNS: [&str; 4] = ["429", "rate limit", "quota", "overloaded"];
const DEFAULT_BACKOFF: Duration = Duration::from_secs(30);
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(600);

/// `roles.<role>.rate_limit:`: how a failure that is a rate limit is told
/// from others, and how long the role's dispatch pauses after one.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Words that mark a failed run's output as a rate limit, matched
    /// without regard to case; `[]` turns the detection off.
    #[serde(default = "default_patterns")]
    pub patterns: Vec<String>,
    /// The first pause; each rate limit in a row doubles it.
    #[serde(default = "default_backoff", deserialize_with = "backoff")]
    pub backoff: Duration,
    /// The longest pause.
    #[serde(default = "default_max_backoff", deserialize_with = "max_backoff")]
    pub max_backoff: Duration,
}

impl Default for RateLimit {
    fn default() -> RateLimit {
        RateLimit {
            patterns: default_patterns(),
            backoff: DEFAULT_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }
}

impl RateLimit {
    /// The first line of `output` that holds one of the patterns, trimmed:
    /// the evidence that a failed run met a rate limit.
    pub fn matching_line<'a>(&self, output: &'a str) -> Option<&'a str> {
        let patterns: Vec<String> = self
            .patterns
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| p.to_lowercase())
            .collect();
        output.lines().map(str::trim).find(|line| {
            let line = line.to_lowercase();
            patterns.iter().any(|p| line.contains(p.as_str()))
        })
    }

    /// The pause after the `hits`-th rate limit in a row: `backoff` doubled
    /// for each earlier one, spread by `jitter` (0 to 1: from three quarters
    /// to five quarters of it), never more than `max_backoff`.
    pub fn pause(&self, hits: u32, jitter: f64) -> Duration {
        let doubled = self
            .backoff
            .saturating_mul(1u32 << hits.saturating_sub(1).min(20));
        let capped = doubled.min(self.max_backoff);
        capped
            .mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
            .min(self.max_backoff)
    }
}

impl Role {
    /// This role's rate-limit handling: its own, else the defaults.
    pub fn rate_limit(&self) -> RateLimit {
        self.rate_limit.clone().unwrap_or_default()
    }
}

fn default_patterns() -> Vec<String> {
    DEFAULT_PATTERNS.iter().map(|p| p.to_string()).collect()
}

fn default_backoff() -> Duration {
    DEFAULT_BACKOFF
}

fn default_max_backoff() -> Duration {
    DEFAULT_MAX_BACKOFF
}

fn duration_of<'de, D: Deserializer<'de>>(d: D, key: &str) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    crate::model::parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("{key}: {e}")))
}

fn backoff<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    duration_of(d, "backoff")
}

fn max_backoff<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    duration_of(d, "max_backoff")
}

/// Check the budget and every role's rate limit of a parsed `config`
/// (`text` is its file, for line numbers). `Err` is the line and a message
/// that names the field.
pub fn check(text: &str, config: &Config) -> Result<(), (usize, String)> {
    let budget = &config.budget;
    for (key, value) in [("task_usd", budget.task_usd), ("run_usd", budget.run_usd)] {
        if let Some(usd) = value {
            if !usd.is_finite() || usd <= 0.0 {
                return Err((
                    line_of_path(text, &["budget", key]),
                    format!("budget.{key}: must be an amount of dollars above 0, not {usd}"),
                ));
            }
        }
    }
    if budget.task_tokens == Some(0) {
        return Err((
            line_of_path(text, &["budget", "task_tokens"]),
            "budget.task_tokens: must be at least 1".into(),
        ));
    }
    for (name, role) in config.roles.named() {
        let Some(limit) = role.as_ref().and_then(|r| r.rate_limit.as_ref()) else {
            continue;
        };
        let at = |key: &str| line_of_path(text, &["roles", name, "rate_limit", key]);
        let field = format!("roles.{name}.rate_limit");
        if limit.patterns.iter().any(|p| p.trim().is_empty()) {
            return Err((
                at("patterns"),
                format!("{field}.patterns: a pattern is empty"),
            ));
        }
        if limit.backoff.is_zero() {
            return Err((
                at("backoff"),
                format!("{field}.backoff: must be at least 1s"),
            ));
        }
        if limit.max_backoff < limit.backoff {
            return Err((
                at("max_backoff"),
                format!(
                    "{field}.max_backoff: {}s is less than backoff ({}s)",
                    limit.max_backoff.as_secs(),
                    limit.backoff.as_secs()
                ),
            ));
        }
    }
    Ok(())
}

/// The line of the key at `path` (each key inside the block of the one
/// before it, in block or flow form), else the deepest line found, else 1.
fn line_of_path(text: &str, path: &[&str]) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let (mut from, mut to, mut found) = (0, lines.len(), 0);
    for key in path {
        let head = format!("{key}:");
        // Within a flow mapping `name: { key: … }` the key sits on its line.
        if found > 0 && lines[found - 1].contains(&head) {
            continue;
        }
        let Some(i) = (from..to).find(|&i| {
            let l = lines[i].trim_start().trim_start_matches("- ");
            l.starts_with(&head) || l.starts_with(&format!("{{ {head}"))
        }) else {
            break;
        };
        found = i + 1;
        let own = indent(lines[i]);
        from = i + 1;
        to = (from..lines.len())
            .find(|&j| !lines[j].trim().is_empty() && indent(lines[j]) <= own)
            .unwrap_or(lines.len());
    }
    found.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::config::parse;

    #[test]
    fn budgets_and_rate_limits_parse_with_defaults() {
        let config = parse(
            "f",
            "budget: {task_usd: 0.5, run_usd: 3}\nroles:\n  implementer:\n    command: [x]\n    rate_limit: {backoff: 2s}\n  reviewer: {command: [y]}\n",
        )
        .unwrap();
        assert_eq!(config.budget.task_usd, Some(0.5));
        assert_eq!(config.budget.task_tokens, None);
        let implementer = config.roles.implementer.unwrap().rate_limit();
        assert_eq!(implementer.backoff, Duration::from_secs(2));
        assert_eq!(implementer.patterns, default_patterns());
        assert_eq!(
            config.roles.reviewer.unwrap().rate_limit(),
            RateLimit::default()
        );
    }

    #[test]
    fn bad_budgets_and_rate_limits_name_their_field_and_line() {
        let cases = [
            ("target: main\nbudget:\n  task_usd: -1\n", 3, "budget.task_usd"),
            ("budget:\n  run_usd: 0\n", 2, "budget.run_usd"),
            ("budget:\n  task_tokens: lots\n", 2, "task_tokens"),
            ("budget: {task_usd: 1, run_dollars: 3}\n", 1, "run_dollars"),
            (
                "roles:\n  reviewer:\n    command: [x]\n  implementer:\n    command: [x]\n    rate_limit:\n      backoff: 1m\n      max_backoff: 30s\n",
                8,
                "roles.implementer.rate_limit.max_backoff",
            ),
            (
                "roles:\n  implementer:\n    command: [x]\n    rate_limit: {backoff: soon}\n",
                4,
                "backoff",
            ),
            (
                "roles:\n  implementer:\n    command: [x]\n    rate_limit:\n      patterns: ['']\n",
                5,
                "roles.implementer.rate_limit.patterns",
            ),
        ];
        for (text, line, field) in cases {
            let e = parse(".git-agent.yaml", text).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.to_string().contains(field), "{text}: {e}");
            assert!(e.to_string().starts_with(".git-agent.yaml:"), "{e}");
        }
    }

    #[test]
    fn a_rate_limit_is_found_by_its_words_in_any_case() {
        let limit = RateLimit::default();
        let output = "working…\nAPI Error: 429 Too Many Requests\nbye";
        assert_eq!(
            limit.matching_line(output),
            Some("API Error: 429 Too Many Requests")
        );
        assert_eq!(
            limit.matching_line("Rate Limit reached"),
            Some("Rate Limit reached")
        );
        assert_eq!(limit.matching_line("the tests failed"), None);
        let off = RateLimit {
            patterns: vec![],
            ..RateLimit::default()
        };
        assert_eq!(off.matching_line(output), None);
    }

    #[test]
    fn pauses_double_with_jitter_up_to_the_cap() {
        let limit = RateLimit {
            patterns: vec![],
            backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(600),
        };
        assert_eq!(limit.pause(1, 0.5), Duration::from_secs(30));
        assert_eq!(limit.pause(2, 0.5), Duration::from_secs(60));
        assert_eq!(limit.pause(3, 0.0), Duration::from_secs(90));
        assert_eq!(limit.pause(3, 1.0), Duration::from_secs(150));
        assert_eq!(limit.pause(10, 1.0), Duration::from_secs(600));
        assert_eq!(limit.pause(64, 0.0), Duration::from_secs(450));
    }
}
