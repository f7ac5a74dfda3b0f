//! The one integration-test binary: a module per command or scenario.

mod common;

mod agents;
mod audit;
mod board;
mod claim;
mod cli;
mod cli_aider;
mod cli_claude;
mod cli_codex;
mod cli_gemini;
mod cli_opencode;
mod config;
mod demo;
mod edges;
mod formats;
mod gc;
mod hook_managers;
mod hooks;
mod hub;
mod install;
mod integrate;
mod parsers;
mod pipelines;
mod plan;
mod planner;
mod review;
mod run;
mod stats;
mod sync;
mod task;
mod work;
mod worktrees;
