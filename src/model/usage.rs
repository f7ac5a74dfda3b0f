//! What an agent's attempt cost, as the agent or its CLI reported it.

use serde::{Deserialize, Serialize};

/// Tokens and money one agent run used; a field the agent did not report is
/// left out (never guessed).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Usage {
    /// All tokens, when only a total is known or as the sum of the parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

impl Usage {
    /// Usage from input and output counts; the total is their sum.
    pub fn from_tokens(input: Option<u64>, output: Option<u64>) -> Usage {
        let tokens = match (input, output) {
            (None, None) => None,
            (i, o) => Some(i.unwrap_or(0) + o.unwrap_or(0)),
        };
        Usage {
            tokens,
            input_tokens: input,
            output_tokens: output,
            cost_usd: None,
        }
    }

    /// The sum of two reports; a field either side lacks counts as the
    /// other's (and stays out when both lack it).
    pub fn plus(&self, other: &Usage) -> Usage {
        fn add<T: std::ops::Add<Output = T> + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            }
        }
        Usage {
            tokens: add(self.tokens, other.tokens),
            input_tokens: add(self.input_tokens, other.input_tokens),
            output_tokens: add(self.output_tokens, other.output_tokens),
            cost_usd: add(self.cost_usd, other.cost_usd),
        }
    }

    /// The `usage: {tokens, cost_usd}` an agent wrote into its result (the
    /// YAML or JSON of `$GIT_AGENT_OUTPUT`), if it wrote one that reads.
    pub fn reported_in(result: &str) -> Option<Usage> {
        let value: serde_yaml::Value = serde_yaml::from_str(result).ok()?;
        let usage: Usage = serde_yaml::from_value(value.get("usage")?.clone()).ok()?;
        (!usage.is_empty()).then_some(usage)
    }

    /// Whether nothing at all was reported.
    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }

    /// `1,234 tokens (1,000 in, 234 out), $0.0123`, for people.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = self.tokens {
            let split = match (self.input_tokens, self.output_tokens) {
                (Some(i), Some(o)) => format!(" ({i} in, {o} out)"),
                _ => String::new(),
            };
            parts.push(format!("{t} tokens{split}"));
        }
        if let Some(c) = self.cost_usd {
            parts.push(format!("${c:.4}"));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_from_a_result_in_yaml_or_json() {
        let yaml = "verdict: approve\nusage: {tokens: 120, cost_usd: 0.25}\n";
        let usage = Usage::reported_in(yaml).unwrap();
        assert_eq!((usage.tokens, usage.cost_usd), (Some(120), Some(0.25)));
        let json = r#"{"summary": "done", "usage": {"cost_usd": 1.5}}"#;
        assert_eq!(Usage::reported_in(json).unwrap().cost_usd, Some(1.5));
        assert_eq!(Usage::reported_in("just words"), None);
        assert_eq!(Usage::reported_in("usage: lots"), None);
        assert_eq!(Usage::reported_in("- a\n- b"), None);
    }
}
