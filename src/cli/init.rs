//! `git agent init`: the team config and the git settings git-agent relies on.

use anyhow::{Context, Result};

use crate::git;

/// Write a commented default `.git-agent.yaml` (if absent) and set up git.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also fetch the agent refs and notes of this remote into their own
    /// namespace, and push them along with every push to it (git config
    /// agent.pushRefs, set to true unless it is set already).
    #[arg(long, value_name = "REMOTE")]
    remote: Option<String>,
    /// The agent CLI every role uses (a preset), unless named per role below.
    #[arg(long, value_name = "PRESET", value_parser = PRESETS)]
    agent: Option<String>,
    /// The planner's preset [default: --agent].
    #[arg(long, value_name = "PRESET", value_parser = PRESETS, requires = "agent")]
    planner: Option<String>,
    /// The reviewer's preset [default: --agent].
    #[arg(long, value_name = "PRESET", value_parser = PRESETS, requires = "agent")]
    reviewer: Option<String>,
    /// The integrator's preset (it resolves merge conflicts) [default: --agent].
    #[arg(long, value_name = "PRESET", value_parser = PRESETS, requires = "agent")]
    integrator: Option<String>,
}

/// The preset names, as clap offers them.
const PRESETS: [&str; 5] = ["claude", "codex", "gemini", "aider", "opencode"];

/// The top of every config `init` writes: the keys besides the roles.
macro_rules! header {
    () => {
        "\
# git-agent team config: read from the main working tree (never a task branch).
# Durations: 90s, 10m, 2h. Commands are argv lists, never run through a shell.

target: main            # the branch the integrator advances
test: \"\"                # the integration gate, run with sh -c in the merged tree
parallel: 4             # implementers at once
# worktrees: ../work    # where task worktrees go [default: <this folder>.agent-worktrees, beside it]

# A role names a preset (agent: claude | codex | gemini | aider | opencode, with
# args: and env: to add) or any program (command: [my-agent, \"{prompt_file}\"]).
# Placeholders in argv: {prompt_file} {task_file} {output_file} {worktree} {base} {branch}.
# `git agent roles` shows the exact command line and environment of each role.
roles:
"
    };
}

const HEADER: &str = header!();

/// The default config `init` writes: every key, with what it means.
pub const DEFAULT_CONFIG: &str = concat!(
    header!(),
    "  # planner:     { agent: claude, timeout: 10m }
  # implementer: { agent: claude, timeout: 30m, max_attempts: 3 }
  # reviewer:    { agent: codex, timeout: 10m }
  # integrator:  { agent: claude, timeout: 20m }   # optional: resolves merge conflicts
  # or any program: { command: [my-agent, --prompt, \"{prompt_file}\"], env: {MY_MODE: fast} }
"
);

/// The config `init --agent` writes: the header, and each role on a preset.
fn preset_config(args: &Args) -> String {
    let all = args.agent.as_deref().unwrap_or("claude");
    let pick = |one: &Option<String>| one.clone().unwrap_or_else(|| all.to_string());
    format!(
        "{HEADER}  planner:     {{ agent: {}, timeout: 10m }}
  implementer: {{ agent: {all}, timeout: 30m, max_attempts: 3 }}
  reviewer:    {{ agent: {}, timeout: 10m }}
  integrator:  {{ agent: {}, timeout: 20m }}   # resolves merge conflicts; remove to send them back
",
        pick(&args.planner),
        pick(&args.reviewer),
        pick(&args.integrator),
    )
}

/// Notes refs whose notes follow a commit through `git commit --amend` and
/// `git rebase`: provenance only. A review verdict or a gate run holds for
/// the exact commit it was given on, so a rewritten commit needs a new one.
const NOTES_REFS: [&str; 1] = ["refs/notes/agent"];

pub fn run(args: Args) -> Result<()> {
    let store = super::open()?;
    let dir = store.work_dir().to_path_buf();
    // Refusals first: nothing is written for a bad --remote.
    if let Some(remote) = &args.remote {
        if remote.contains(|c: char| c == '*' || c == ':' || c.is_whitespace()) {
            anyhow::bail!("--remote: \"{remote}\" is not a remote name");
        }
        git::remote_url(&dir, remote)?
            .with_context(|| format!("--remote: no remote \"{remote}\""))?;
        crate::hooks::push_refs::enabled(&store)?;
    }
    if let Some(root) = store.repo().workdir() {
        let path = root.join(".git-agent.yaml");
        if path.exists() && args.agent.is_some() {
            anyhow::bail!(
                "{} exists already: --agent writes a new config only; edit its roles: (see `git agent roles`)",
                path.display()
            );
        } else if path.exists() {
            println!("kept {}", path.display());
        } else {
            let text = match args.agent {
                Some(_) => preset_config(&args),
                None => DEFAULT_CONFIG.to_string(),
            };
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
            println!(
                "  commit it, so that hubs and clones read the same config: git add .git-agent.yaml && git commit -m 'Configure git-agent'"
            );
        }
    }
    for notes in NOTES_REFS {
        add_config_value(&dir, "notes.rewriteRef", notes)?;
    }
    if let Some(remote) = args.remote {
        let key = format!("remote.{remote}.fetch");
        for spec in crate::store::sync::fetch_refspecs(&remote) {
            add_config_value(&dir, &key, &spec)?;
        }
        // Earlier versions fetched the notes where no sync looks.
        git::config_unset_value(
            &dir,
            &key,
            &format!("+refs/notes/agent*:refs/notes/remotes/{remote}/agent*"),
        )?;
        let push_refs = crate::hooks::push_refs::KEY;
        let enabled = match git::config_get(&dir, push_refs)? {
            None => {
                git::config_set(&dir, push_refs, "true")?;
                true
            }
            Some(_) => crate::hooks::push_refs::enabled(&store)?,
        };
        println!(
            "{remote}: `git fetch` and `git agent sync` bring its agent refs and notes into refs/agent-remotes/{remote}/"
        );
        match enabled {
            true => println!(
                "  a push to {remote} takes them along, through the pre-push hook of `git agent hooks install` \
                 (`git config {push_refs} false` turns that off)"
            ),
            false => println!(
                "  a push to {remote} leaves them ({push_refs} is false): `git agent sync {remote}` moves them"
            ),
        }
    }
    println!("git-agent is set up in {}", dir.display());
    Ok(())
}

/// Add `value` to multi-valued config `key` unless it is there already, so
/// that running `init` twice changes nothing.
fn add_config_value(dir: &std::path::Path, key: &str, value: &str) -> Result<()> {
    let present = git::config_get_all(dir, key)?;
    if !present.iter().any(|line| line == value) {
        git::config_add(dir, key, value)?;
    }
    Ok(())
}
