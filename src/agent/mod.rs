//! Running agents: the prompt an agent receives.

pub mod config;
pub mod process;
pub mod prompt;
