//! Running agents: the prompt an agent receives, and what a reviewer returns.

pub mod config;
pub mod limits;
pub mod preset;
pub mod process;
pub mod prompt;
pub mod reviewer;
