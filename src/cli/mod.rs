//! The command line: one file per command, each with its clap `Args` and a
//! thin `run`. The work happens in `store` and `model`.

mod claim;
pub mod colour;
mod completions;
mod context;
mod demo;
mod doctor;
mod gc;
mod hook;
mod hooks;
mod init;
mod integrate;
mod log;
mod plan;
mod ready;
mod release;
mod renew;
mod resolve;
mod review;
mod roles;
mod run;
mod self_install;
mod show;
mod stats;
mod status;
mod submit;
mod sync;
mod task;
mod work;

pub use init::DEFAULT_CONFIG;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

use crate::model::board::TaskView;
use crate::store::{Store, TaskJson};

/// Git as the coordination layer for a team of AI coding agents.
#[derive(Parser, Debug)]
#[command(name = "git-agent", version, about, long_about = None)]
pub struct Cli {
    /// Colour the output: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t)]
    pub color: colour::When,
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
    Renew(renew::Args),
    Submit(submit::Args),
    Context(context::Args),
    Work(work::Args),
    Run(run::Args),
    Integrate(integrate::Args),
    Resolve(resolve::Args),
    Roles(roles::Args),
    Hooks(hooks::Args),
    Hook(hook::Args),
    Review(review::Args),
    Stats(stats::Args),
    Doctor(doctor::Args),
    Sync(sync::Args),
    Gc(gc::Args),
    Demo(demo::Args),
    SelfInstall(self_install::Args),
    Completions(completions::Args),
}

/// Run one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    colour::choose(cli.color);
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
        Command::Renew(args) => renew::run(args),
        Command::Submit(args) => submit::run(args),
        Command::Context(args) => context::run(args),
        Command::Work(args) => work::run(args),
        Command::Run(args) => run::run(args),
        Command::Integrate(args) => integrate::run(args),
        Command::Resolve(args) => resolve::run(args),
        Command::Roles(args) => roles::run(args),
        Command::Hooks(args) => hooks::run(args),
        Command::Hook(args) => hook::run(args),
        Command::Review(args) => review::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Sync(args) => sync::run(args),
        Command::Gc(args) => gc::run(args),
        Command::Demo(args) => demo::run(args),
        Command::SelfInstall(args) => self_install::run(args),
        Command::Completions(args) => completions::run(args),
    }
}

/// The repository around the current directory.
fn open() -> Result<Store> {
    Store::discover(&current_dir()?)
}

fn current_dir() -> Result<PathBuf> {
    Ok(std::env::current_dir()?)
}

/// Who acts, when `--actor` is not given: `$GIT_AGENT_ACTOR`, else git's
/// `user.email` or `user.name`, else `user@host`.
fn default_actor() -> String {
    if let Ok(actor) = std::env::var("GIT_AGENT_ACTOR") {
        if !actor.trim().is_empty() {
            return actor;
        }
    }
    // A person is who git says they are: user.email, else user.name.
    let here = std::env::current_dir().unwrap_or_else(|_| ".".into());
    for key in ["user.email", "user.name"] {
        if let Ok(Some(who)) = crate::git::config_get(&here, key) {
            if !who.trim().is_empty() {
                return who;
            }
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

/// Whether stdout goes to a person (a terminal) rather than a program.
fn to_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
}

/// Print one JSON document on stdout: indented for a person at a terminal,
/// compact for a program (a pipe or a file), which parses it faster too.
fn print_json(value: &impl serde::Serialize) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if to_terminal() {
        serde_json::to_writer_pretty(&mut out, value)?;
    } else {
        serde_json::to_writer(&mut out, value)?;
    }
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Write task views as a compact JSON array: each the cached snapshot JSON
/// as it is, with the board's flags added. The same document
/// `serde_json::to_writer` makes of the views of the full tasks, without
/// parsing a snapshot.
fn write_views(out: &mut impl std::io::Write, views: &[&TaskView<TaskJson>]) -> Result<()> {
    out.write_all(b"[")?;
    for (i, view) in views.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        let fields = view
            .task
            .json()
            .strip_suffix('}')
            .expect("TaskJson holds one JSON object");
        write!(
            out,
            "{fields},\"ready\":{},\"blocked\":{}}}",
            view.ready, view.blocked
        )?;
    }
    out.write_all(b"]")?;
    Ok(())
}

pub use crate::model::{one_line, parse_duration};

/// Attempts a new task gets unless it says otherwise: `roles.implementer.max_attempts`, else 3.
fn default_attempts(store: &Store) -> Result<u32> {
    let config = crate::agent::config::team(store)?;
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
    fn views_written_from_cached_json_are_what_serde_writes() {
        use crate::model::board::Board;
        use crate::model::task::{apply, Change, Event, NewTask};
        let new = NewTask {
            title: "A \"quoted\" title\nwith a newline".into(),
            spec: "spec".into(),
            plan: Some("p-x".into()),
            depends_on: vec!["t-dep".into()],
            scope: vec!["src/".into()],
            priority: 1,
            labels: vec!["l".into()],
            max_attempts: 3,
            seq: 4,
        };
        let created = Event {
            id: "e-1".into(),
            change: Change::Created(new),
            at: "2026-01-01T00:00:00Z".into(),
            actor: "a".into(),
            role: "r".into(),
            attempt: 0,
            lamport: 1,
            spans: Vec::new(),
        };
        let task = apply(None, &created, "t-a").unwrap();
        let tip = gix::ObjectId::null(gix::hash::Kind::Sha1);
        let tasks = [task.clone()];
        let cached = [TaskJson::of(&task, tip).unwrap()];
        let full = Board::new(&tasks);
        let fast = Board::new(&cached);
        let expected = serde_json::to_string(&full.views.iter().collect::<Vec<_>>()).unwrap();
        let mut written = Vec::new();
        write_views(&mut written, &fast.views.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(String::from_utf8(written).unwrap(), expected);
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
