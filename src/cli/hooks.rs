//! `git agent hooks install|uninstall|status`: the hook suite, installed
//! where git looks, beside (never over) the hooks that are there.

use anyhow::Result;

use crate::hooks::install::{self, Action, Found};

/// Install, remove or inspect the git hooks that drive git-agent.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: HooksCommand,
}

#[derive(clap::Subcommand, Debug)]
enum HooksCommand {
    /// Install the shims (post-commit, pre-push, post-merge, post-rewrite)
    /// where git looks for hooks; a hook already there is kept and runs first.
    Install(InstallArgs),
    /// Remove the shims and put back exactly the hooks they had replaced.
    Uninstall,
    /// Show which hooks are installed, and which of yours they chain to.
    Status(StatusArgs),
}

#[derive(clap::Args, Debug)]
struct InstallArgs {
    /// Also install post-receive, for a bare hub that receives pushes.
    #[arg(long)]
    server: bool,
}

#[derive(clap::Args, Debug)]
struct StatusArgs {
    /// Print `{"dir": ..., "hooks": [{"name", "found", "chained", "earlier", "manager", "runs", "note"}, ...]}`.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let store = super::open()?;
    match args.command {
        HooksCommand::Install(a) => {
            let (dir, actions) = install::install(&store, a.server)?;
            report(&dir, &actions, "the hooks are installed and up to date")
        }
        HooksCommand::Uninstall => {
            let (dir, actions) = install::uninstall(&store)?;
            report(&dir, &actions, "no git-agent hooks were installed")
        }
        HooksCommand::Status(a) => status(&store, a.json),
    }
}

fn report(dir: &std::path::Path, actions: &[Action], nothing: &str) -> Result<()> {
    println!("hooks directory: {}", dir.display());
    if actions.is_empty() {
        println!("{nothing}");
    }
    for action in actions {
        println!("  {:<13} {}", action.name, action.what);
    }
    Ok(())
}

fn status(store: &crate::store::Store, json: bool) -> Result<()> {
    let (dir, states) = install::status(store)?;
    if json {
        return super::print_json(&serde_json::json!({ "dir": dir, "hooks": states }));
    }
    println!("hooks directory: {}", dir.display());
    for state in states {
        let found = match (state.found, state.runs) {
            (Found::Installed, _) => "installed",
            (Found::Outdated, _) => "installed (an older shim: run hooks install)",
            (Found::Foreign, true) => "installed, behind another manager's hook",
            (Found::Foreign, false) => "not installed (a hook that is not git-agent's is there)",
            (Found::Absent, _) => "not installed",
        };
        let shim = state.found != Found::Foreign;
        let chained = match (shim && state.chained, shim && state.earlier, state.manager) {
            (true, true, Some(m)) => {
                format!("; runs your earlier hook, then {}'s hook, first", m.name())
            }
            (true, false, Some(m)) => format!("; runs {}'s hook first", m.name()),
            (_, true, _) | (true, false, None) => "; runs your earlier hook first".to_string(),
            (false, false, _) => String::new(),
        };
        let note = state.note.map(|n| format!(": {n}")).unwrap_or_default();
        println!("  {:<13} {found}{chained}{note}", state.name);
    }
    Ok(())
}
