//! Presets: what git-agent knows about each agent CLI it supports out of the
//! box. Per role, a preset gives the non-interactive argv (edit permission
//! for the implementer and integrator, read-only where the CLI allows it for
//! the planner and reviewer), the environment it needs, how the prompt
//! reaches it, and how to find the final message and the usage in what it
//! printed on stdout. Each CLI's knowledge lives in its own file; the facts
//! they rely on were checked against the pinned versions in DESIGN.md §9.

mod aider;
mod claude;
mod codex;
mod gemini;
mod opencode;

use crate::model::usage::Usage;

/// A supported agent CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Claude,
    Codex,
    Gemini,
    Aider,
    Opencode,
}

/// Every preset, by the name `roles.<role>.agent` takes.
pub const ALL: [(&str, Preset); 5] = [
    ("claude", Preset::Claude),
    ("codex", Preset::Codex),
    ("gemini", Preset::Gemini),
    ("aider", Preset::Aider),
    ("opencode", Preset::Opencode),
];

/// The roles an agent can play.
pub const ROLES: [&str; 4] = ["planner", "implementer", "reviewer", "integrator"];

/// How one role's agent is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The program and its arguments; elements may hold placeholders
    /// (`{prompt_file}`, …) that git-agent expands before the run.
    pub argv: Vec<String>,
    /// Variables added to the agent's environment.
    pub env: Vec<(String, String)>,
}

/// What an agent's stdout says, once its format is understood.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reading {
    /// The agent's final message: where a verdict, a plan or a summary is.
    pub message: String,
    pub usage: Option<Usage>,
}

impl Preset {
    /// The preset named `name`, if there is one.
    pub fn named(name: &str) -> Option<Preset> {
        ALL.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
    }

    pub fn name(self) -> &'static str {
        ALL.iter()
            .find(|(_, p)| *p == self)
            .map(|(n, _)| *n)
            .expect("every preset is in ALL")
    }

    /// The names of all presets, for error messages.
    pub fn names() -> String {
        ALL.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
    }

    /// How to install the CLI, for an error that says it is missing.
    pub fn install_hint(self) -> &'static str {
        match self {
            Preset::Claude => "npm install -g @anthropic-ai/claude-code",
            Preset::Codex => "npm install -g @openai/codex",
            Preset::Gemini => "npm install -g @google/gemini-cli",
            Preset::Aider => "python3 -m pip install aider-chat",
            Preset::Opencode => "npm install -g opencode-ai",
        }
    }

    /// How this CLI plays `role`, or `None` if it cannot play it.
    pub fn invocation(self, role: &str) -> Option<Invocation> {
        let edits = match role {
            "implementer" | "integrator" => true,
            "planner" | "reviewer" => false,
            _ => return None,
        };
        let (argv, env) = match self {
            Preset::Claude => (claude::argv(edits), claude::env()),
            Preset::Codex => (codex::argv(edits), codex::env()),
            Preset::Gemini => (gemini::argv(edits), gemini::env()),
            Preset::Aider => (aider::argv(edits), aider::env()),
            Preset::Opencode => (opencode::argv(edits), opencode::env(edits)),
        };
        Some(Invocation { argv, env })
    }

    /// The arguments that hold this CLI to spending at most `usd` dollars,
    /// for the CLIs that take such a limit: Claude Code's
    /// `--max-budget-usd` (checked against 2.1.197). Empty for the others.
    pub fn budget_args(self, usd: f64) -> Vec<String> {
        match self {
            Preset::Claude => words(&["--max-budget-usd", &format!("{usd:.4}")]),
            Preset::Codex | Preset::Gemini | Preset::Aider | Preset::Opencode => Vec::new(),
        }
    }

    /// The final message and usage in what the CLI printed on stdout, in
    /// the output format its argv asked for. Output that is not in that
    /// format (an older CLI, a wrapper script) is taken as the message.
    pub fn read(self, stdout: &str) -> Reading {
        let read = match self {
            Preset::Claude => claude::read(stdout),
            Preset::Codex => codex::read(stdout),
            Preset::Gemini => gemini::read(stdout),
            Preset::Aider => aider::read(stdout),
            Preset::Opencode => opencode::read(stdout),
        };
        read.unwrap_or_else(|| Reading {
            message: stdout.to_string(),
            usage: None,
        })
    }
}

/// The argv elements of `words`, owned.
fn words(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// Each line of `stdout` that is a JSON object, in order (JSON Lines).
fn json_lines(stdout: &str) -> impl Iterator<Item = serde_json::Value> + '_ {
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_plays_every_role_and_edits_only_where_it_should() {
        for (name, preset) in ALL {
            assert_eq!(Preset::named(name), Some(preset));
            assert_eq!(preset.name(), name);
            for role in ROLES {
                let invocation = preset.invocation(role).expect("plays every role");
                assert!(!invocation.argv.is_empty(), "{name} {role}");
            }
            assert_ne!(
                preset.invocation("implementer"),
                preset.invocation("reviewer"),
                "{name}: the reviewer runs without edit permission"
            );
        }
        assert_eq!(Preset::named("cursor"), None);
    }

    #[test]
    fn only_claude_takes_a_budget() {
        assert_eq!(
            Preset::Claude.budget_args(0.5),
            ["--max-budget-usd", "0.5000"]
        );
        for preset in [
            Preset::Codex,
            Preset::Gemini,
            Preset::Aider,
            Preset::Opencode,
        ] {
            assert!(preset.budget_args(0.5).is_empty(), "{preset:?}");
        }
    }

    #[test]
    fn output_in_no_known_format_is_the_message() {
        for (_, preset) in ALL {
            let reading = preset.read("plain words\nVERDICT: APPROVE\n");
            assert!(reading.message.contains("VERDICT: APPROVE"), "{preset:?}");
        }
    }
}
