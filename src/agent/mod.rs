//! Running agents: the prompt an agent receives.

pub mod prompt;
