//! The command line: one file per command, each with its clap `Args` and a
//! thin `run`. The work happens in `store` and `model`.

mod claim;
mod context;
mod init;
mod log;
mod plan;
mod ready;
mod release;
mod self_install;
mod show;
mod status;
mod submit;
mod task;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

use crate::store::Store;

/// Git as the coordination layer for a team of AI coding agents.
#[derive(Parser, Debug)]
#[command(name = "git-agent", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Init(init::Args),
    Plan(plan::Args),
    Task(task::Args),
    Status(status::Args),
    Ready(ready::Args),
    Show(show::Args),
    Log(log::Args),
    Claim(claim::Args),
    Release(release::Args),
    Submit(submit::Args),
    Context(context::Args),
    SelfInstall(self_install::Args),
}

/// Run one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init(args) => init::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Task(args) => task::run(args),
        Command::Status(args) => status::run(args),
        Command::Ready(args) => ready::run(args),
        Command::Show(args) => show::run(args),
        Command::Log(args) => log::run(args),
        Command::Claim(args) => claim::run(args),
        Command::Release(args) => release::run(args),
        Command::Submit(args) => submit::run(args),
        Command::Context(args) => context::run(args),
        Command::SelfInstall(args) => self_install::run(args),
    }
}

/// The repository around the current directory.
fn open() -> Result<Store> {
    Store::discover(&current_dir()?)
}

fn current_dir() -> Result<PathBuf> {
    Ok(std::env::current_dir()?)
}

/// Who acts, when `--actor` is not given: `$GIT_AGENT_ACTOR`, else `user@host`.
fn default_actor() -> String {
    if let Ok(actor) = std::env::var("GIT_AGENT_ACTOR") {
        if !actor.trim().is_empty() {
            return actor;
        }
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "someone".into());
    format!("{user}@{}", crate::store::lease::hostname())
}

/// The role an event is recorded under: `$GIT_AGENT_ROLE` (set for agents),
/// else `fallback`.
fn role_or(fallback: &str) -> String {
    std::env::var("GIT_AGENT_ROLE")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| fallback.to_string())
}

/// Print one JSON document on stdout.
fn print_json(value: &impl serde::Serialize) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

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
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => {
            return Err(format!(
                "\"{text}\": unknown unit \"{unit}\" (use s, m, h or d)"
            ))
        }
    };
    Ok(std::time::Duration::from_secs(seconds))
}

/// Shorten `text` to one line of at most `max` characters, for tables.
fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let mut s: String = flat.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// The branch the integrator advances: `target` in `.git-agent.yaml` of the
/// main working tree, else `main`.
fn target_branch(store: &Store) -> String {
    store
        .repo()
        .workdir()
        .and_then(|dir| std::fs::read_to_string(dir.join(".git-agent.yaml")).ok())
        .and_then(|text| serde_yaml::from_str::<serde_yaml::Value>(&text).ok())
        .and_then(|v| v.get("target").and_then(|t| t.as_str()).map(String::from))
        .unwrap_or_else(|| "main".to_string())
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
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
