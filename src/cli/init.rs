//! `git agent init`: the team config and the git settings git-agent relies on.

use anyhow::{Context, Result};

use crate::git;

/// Write a commented default `.git-agent.yaml` (if absent) and set up git.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also fetch the agent refs and notes of this remote into their own namespace.
    #[arg(long, value_name = "REMOTE")]
    remote: Option<String>,
}

/// The default config `init` writes: every key, with what it means.
pub const DEFAULT_CONFIG: &str = "\
# git-agent team config: read from the main working tree (never a task branch).
# Durations: 90s, 10m, 2h. Commands are argv lists, never run through a shell.

target: main            # the branch the integrator advances
test: \"\"                # the integration gate, run with sh -c in the merged tree
parallel: 4             # implementers at once

roles:
  # planner:     { command: [claude, -p], timeout: 10m }
  # implementer: { command: [claude, -p, --permission-mode, acceptEdits], timeout: 30m, max_attempts: 3 }
  # reviewer:    { command: [codex, exec], timeout: 10m }
  # integrator:  { command: [claude, -p], timeout: 20m }   # optional: resolves merge conflicts
";

/// Notes refs whose notes follow a commit through `git commit --amend` and
/// `git rebase`: provenance only. A review verdict or a gate run holds for
/// the exact commit it was given on, so a rewritten commit needs a new one.
const NOTES_REFS: [&str; 1] = ["refs/notes/agent"];

pub fn run(args: Args) -> Result<()> {
    let store = super::open()?;
    let dir = store.work_dir().to_path_buf();
    if let Some(root) = store.repo().workdir() {
        let path = root.join(".git-agent.yaml");
        if path.exists() {
            println!("kept {}", path.display());
        } else {
            std::fs::write(&path, DEFAULT_CONFIG)
                .with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
        }
    }
    for notes in NOTES_REFS {
        add_config_value(&dir, "notes.rewriteRef", notes)?;
    }
    if let Some(remote) = args.remote {
        if remote.contains(|c: char| c == '*' || c == ':' || c.is_whitespace()) {
            anyhow::bail!("--remote: \"{remote}\" is not a remote name");
        }
        git::run(&dir, &["remote", "get-url", &remote])
            .with_context(|| format!("--remote: no remote \"{remote}\""))?;
        let key = format!("remote.{remote}.fetch");
        add_config_value(
            &dir,
            &key,
            &format!("+refs/agent/*:refs/agent-remotes/{remote}/*"),
        )?;
        add_config_value(
            &dir,
            &key,
            &format!("+refs/notes/agent*:refs/notes/remotes/{remote}/agent*"),
        )?;
    }
    println!("git-agent is set up in {}", dir.display());
    Ok(())
}

/// Add `value` to multi-valued config `key` unless it is there already, so
/// that running `init` twice changes nothing.
fn add_config_value(dir: &std::path::Path, key: &str, value: &str) -> Result<()> {
    let present = git::try_run(dir, &["config", "--get-all", key])?.unwrap_or_default();
    if !present.lines().any(|line| line == value) {
        git::run(dir, &["config", "--add", key, value])?;
    }
    Ok(())
}
