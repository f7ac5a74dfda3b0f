//! git-agent: git as the coordination layer for a team of AI coding agents.
//!
//! `model` is the pure core, `store` keeps tasks in refs, `git` runs the git
//! CLI where gix does not reach, `agent` runs agents, `hooks` is what the git hooks do, `cli` is the shell.

pub mod agent;
pub mod cli;
pub mod demo;
pub mod error;
pub mod git;
pub mod hooks;
pub mod model;
pub mod orchestrate;
pub mod stats;
pub mod store;
