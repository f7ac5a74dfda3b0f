//! `git agent doctor`: what git-agent relies on, checked one line each,
//! with how to fix what is wrong.

use anyhow::Result;

use crate::git;
use crate::hooks::install::{self, Found};
use crate::store::Store;

/// Check the config, each role's program, the hooks, the remotes' refspecs,
/// the identity and the repository format; say how to fix each problem.
/// Exits 1 where there is a problem.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// One check's outcome: `None` fix for ok.
struct Check {
    what: String,
    fix: Option<String>,
}

fn ok(what: impl Into<String>) -> Check {
    Check {
        what: what.into(),
        fix: None,
    }
}

fn problem(what: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        what: what.into(),
        fix: Some(fix.into()),
    }
}

/// The oldest git with everything git-agent runs: `merge-tree --write-tree`.
const OLDEST_GIT: (u32, u32) = (2, 38);

pub fn run(_args: Args) -> Result<()> {
    let store = super::open()?;
    let mut checks = Vec::new();
    config_and_roles(&store, &mut checks);
    hooks(&store, &mut checks)?;
    remotes(&store, &mut checks)?;
    identity(&store, &mut checks)?;
    format(&store, &mut checks)?;
    let colour = super::colour::stdout();
    let problems = checks.iter().filter(|c| c.fix.is_some()).count();
    for check in &checks {
        match &check.fix {
            None => println!(
                "{}  {}",
                super::colour::paint(colour, super::colour::Paint::Green, "ok     "),
                check.what
            ),
            Some(fix) => println!(
                "{}  {}; fix: {fix}",
                super::colour::paint(colour, super::colour::Paint::Red, "problem"),
                check.what
            ),
        }
    }
    match problems {
        0 => Ok(()),
        1 => Err(crate::error::No("1 problem".into()).into()),
        n => Err(crate::error::No(format!("{n} problems")).into()),
    }
}

/// The config loads (else its file:line error), and each role's program is
/// found.
fn config_and_roles(store: &Store, checks: &mut Vec<Check>) {
    let config = match crate::agent::config::team(store) {
        Ok(config) => config,
        Err(e) => {
            checks.push(problem(
                format!("config: {e:#}"),
                "correct .git-agent.yaml where the error says",
            ));
            return;
        }
    };
    // Read, as `team` reads it, from the main working tree.
    let file = match store.repo().is_bare() {
        true => None,
        false => store
            .repo()
            .main_repo()
            .ok()
            .and_then(|main| main.workdir().map(|w| w.join(".git-agent.yaml"))),
    };
    checks.push(match file {
        Some(path) if path.exists() => ok(format!("config: {} loads", path.display())),
        Some(_) => {
            ok("config: no .git-agent.yaml, the defaults hold (`git agent init` writes one)")
        }
        None => ok("config: loads (a hub reads .git-agent.yaml from its target branch)"),
    });
    let mut any = false;
    for (name, role) in config.roles.named() {
        let Some(role) = role else { continue };
        any = true;
        let program = role.program(name);
        match crate::orchestrate::find_program(&program) {
            Some(path) => checks.push(ok(format!(
                "role {name}: runs {program} ({})",
                path.display()
            ))),
            None => checks.push(problem(
                format!("role {name}: program \"{program}\" is not on PATH"),
                format!(
                    "install {program}, or name another in roles.{name} of .git-agent.yaml (`git agent roles` shows each command)"
                ),
            )),
        }
    }
    if !any {
        checks.push(ok(
            "roles: none configured (`git agent run` needs roles.implementer)",
        ));
    }
}

/// The client hooks are where git runs them, and current; the pre-push gate
/// above all.
fn hooks(store: &Store, checks: &mut Vec<Check>) -> Result<()> {
    let (dir, states) = install::status(store)?;
    let bare = store.repo().is_bare();
    for state in states {
        // post-receive is a hub's hook, and the client hooks never run in a hub.
        if (state.name == "post-receive") != bare {
            continue;
        }
        let install = match bare {
            true => "git agent hooks install --server",
            false => "git agent hooks install",
        };
        let gate = match state.name {
            "pre-push" => ": pushes are not gated",
            _ => "",
        };
        let name = state.name;
        checks.push(match (state.found, state.runs, state.note) {
            // A hook manager in the way, a loop, or shims git no longer runs.
            (_, false, Some(note)) => problem(format!("hook {name}: {note}{gate}"), install),
            (Found::Installed | Found::Outdated, true, Some(note)) => {
                problem(format!("hook {name}: {note}"), install)
            }
            (Found::Outdated, true, None) => {
                problem(format!("hook {name}: an older git-agent shim"), install)
            }
            (_, true, note) => ok(format!(
                "hook {name}: installed in {}{}",
                dir.display(),
                note.map(|n| format!(" ({n})")).unwrap_or_default()
            )),
            (Found::Foreign, false, None) => problem(
                format!(
                    "hook {name}: a hook that is not git-agent's is in {}{gate}",
                    dir.display()
                ),
                format!("{install} (it keeps yours and runs it first)"),
            ),
            (_, false, None) => problem(
                format!("hook {name}: not installed in {}{gate}", dir.display()),
                install,
            ),
        });
    }
    Ok(())
}

/// Each remote fetches the agent refs and notes into the namespace `git
/// agent sync` reads, as `init --remote` sets it up; where `agent.pushRefs`
/// is on, a push to it takes them along.
fn remotes(store: &Store, checks: &mut Vec<Check>) -> Result<()> {
    let dir = store.work_dir();
    let push_refs = match crate::hooks::push_refs::enabled(store) {
        Ok(on) => on,
        Err(e) => {
            let key = crate::hooks::push_refs::KEY;
            checks.push(problem(format!("{e:#}"), format!("git config {key} true")));
            false
        }
    };
    for remote in git::remotes(dir)? {
        let fetch = git::config_get_all(dir, &format!("remote.{remote}.fetch"))?;
        let old = format!("+refs/notes/agent*:refs/notes/remotes/{remote}/agent*");
        let wanted = crate::store::sync::fetch_refspecs(&remote);
        let missing: Vec<&String> = wanted.iter().filter(|w| !fetch.contains(w)).collect();
        let along = match push_refs {
            true => "; a push to it takes them along (agent.pushRefs)",
            false => "",
        };
        checks.push(match (missing.is_empty(), fetch.contains(&old)) {
            (true, false) => ok(format!(
                "remote {remote}: fetches the agent refs and notes{along}"
            )),
            (_, true) => problem(
                format!(
                    "remote {remote}: fetches the agent notes into refs/notes/remotes/{remote}/, \
                     where `git agent sync` does not look"
                ),
                format!("git agent init --remote {remote}"),
            ),
            // A remote for code only (a forge a single machine clones
            // from) is no fault: coordinating through it is a choice.
            (false, false) if missing.len() == wanted.len() => ok(format!(
                "remote {remote}: carries code only (`git agent init --remote {remote}` \
                 lets machines coordinate through it)"
            )),
            (false, false) => problem(
                format!(
                    "remote {remote}: does not fetch {}",
                    missing
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
                format!("git agent init --remote {remote}"),
            ),
        });
    }
    Ok(())
}

/// Commits and events are signed by a person: user.name and user.email.
fn identity(store: &Store, checks: &mut Vec<Check>) -> Result<()> {
    let dir = store.work_dir();
    for (key, example) in [
        ("user.name", "\"Your Name\""),
        ("user.email", "you@example.com"),
    ] {
        let value = git::config_get(dir, key)?.filter(|v| !v.trim().is_empty());
        checks.push(match value {
            Some(value) => ok(format!("identity: {key} is {value}")),
            None => problem(
                format!("identity: {key} is not set (git cannot commit)"),
                format!("git config --global {key} {example}"),
            ),
        });
    }
    Ok(())
}

/// The ref format and the git version.
fn format(store: &Store, checks: &mut Vec<Check>) -> Result<()> {
    let dir = store.work_dir();
    let refs = git::ref_format(dir)?;
    let objects = git::object_format(dir)?.unwrap_or_else(|| "sha1".into());
    checks.push(ok(format!("repository: {refs} refs, {objects} objects")));
    let version = git::version(dir)?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    checks.push(match (major, minor) >= OLDEST_GIT {
        true => ok(format!("git: version {version}")),
        false => problem(
            format!(
                "git: version {version} is older than {}.{} (no merge-tree --write-tree)",
                OLDEST_GIT.0, OLDEST_GIT.1
            ),
            "install a newer git",
        ),
    });
    Ok(())
}
