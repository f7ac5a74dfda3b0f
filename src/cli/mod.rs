//! The command line: one file per command, each with its clap `Args` and a
//! thin `run`. The work happens in `store` and `model`.

mod claim;
mod context;
mod init;
mod log;
mod plan;
mod ready;
mod release;
mod resolve;
mod run;
mod self_install;
mod show;
mod status;
mod submit;
mod task;
mod work;

pub use init::DEFAULT_CONFIG;

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
    Work(work::Args),
    Run(run::Args),
    Resolve(resolve::Args),
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
        Command::Work(args) => work::run(args),
        Command::Run(args) => run::run(args),
        Command::Resolve(args) => resolve::run(args),
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

/// Print one JSON document on stdout: indented for a person at a terminal,
/// compact for a program (a pipe or a file), which parses it faster too.
fn print_json(value: &impl serde::Serialize) -> Result<()> {
    use std::io::{IsTerminal, Write};
    let stdout = std::io::stdout();
    let pretty = stdout.is_terminal();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if pretty {
        serde_json::to_writer_pretty(&mut out, value)?;
    } else {
        serde_json::to_writer(&mut out, value)?;
    }
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

pub use crate::model::{one_line, parse_duration};

/// The team config of the repository `store` opens (the default config in a
/// bare repository or where there is no file).
fn config(store: &Store) -> Result<crate::agent::config::Config> {
    match store.repo().workdir() {
        Some(root) => crate::agent::config::load(root),
        None => Ok(Default::default()),
    }
}

/// Attempts a new task gets unless it says otherwise: `roles.implementer.max_attempts`, else 3.
fn default_attempts(store: &Store) -> Result<u32> {
    let config = config(store)?;
    Ok(config
        .roles
        .implementer
        .and_then(|r| r.max_attempts)
        .unwrap_or(crate::model::task::DEFAULT_MAX_ATTEMPTS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
