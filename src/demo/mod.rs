//! `git agent demo`: the whole pipeline on a small project in a temporary
//! repository, with the bundled example agents (plain sh scripts that really
//! edit files and really review diffs; no network, no model).

use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::git;
use crate::model::task::State;
use crate::orchestrate::{run, Context};

const PLAN: &str = include_str!("plan.yaml");
const IMPLEMENTER: &str = include_str!("../../examples/agents/implementer.sh");
const REVIEWER: &str = include_str!("../../examples/agents/reviewer.sh");
const INTEGRATOR: &str = include_str!("../../examples/agents/integrator.sh");

/// The project the agents start from.
const PROJECT: &[(&str, &str)] = &[
    ("README.md", "# greeter\n\nSays hello.\n"),
    ("greet.sh", "#!/bin/sh\necho \"Hello, world\"\n"),
    ("tests/run.sh", "#!/bin/sh\n# Every test must pass: this is the merge gate.\nset -e\nfor t in tests/test_*.sh; do sh \"$t\"; done\necho \"all tests passed\"\n"),
    ("tests/test_greet.sh", "[ \"$(sh greet.sh)\" = \"Hello, world\" ] || { echo \"greet.sh: wrong greeting\"; exit 1; }\n"),
];

/// Build the demo repository, run the pipeline to the end, and show the
/// board and the audit trail. Returns where the repository is.
pub fn run(stop: &'static AtomicBool, parent: Option<&Path>) -> Result<PathBuf> {
    let dir = match parent {
        Some(p) => tempfile::Builder::new()
            .prefix("git-agent-demo-")
            .tempdir_in(p)?
            .keep(),
        None => tempfile::Builder::new()
            .prefix("git-agent-demo-")
            .tempdir()?
            .keep(),
    };
    let repo = dir.join("greeter");
    let agents = dir.join("agents");
    say(&format!("Setting up a small project in {}", repo.display()));
    write_agents(&agents)?;
    setup_project(&repo, &agents)?;
    let ctx = Context::open_in(&repo, stop)?;
    let plan = crate::model::plan::parse("plan.yaml", PLAN, &|_| None)?;
    let stored = ctx.store.store_plan(
        &plan,
        PLAN,
        "demo@git-agent",
        "human",
        3,
        &crate::store::PlannerWork::default(),
    )?;
    say(&format!(
        "Imported plan {} with {}; running the pipeline (-j 2):\n",
        stored.plan,
        crate::model::text::count(stored.tasks.len(), "task")
    ));
    let options = run::Options {
        parallel: 2,
        watch: false,
        poll: std::time::Duration::from_secs(1),
        remote: None,
    };
    let summary = run::run(&ctx, &options)?;
    for e in &summary.errors {
        eprintln!("error: {e}");
    }
    let shout = stored
        .tasks
        .iter()
        .find(|(k, _)| k == "shout")
        .map(|(_, id)| id.clone())
        .unwrap_or_default();
    show(&repo, "git agent status", &["agent", "status", "--all"])?;
    show(
        &repo,
        "git agent show <the task whose first review was rejected>",
        &["agent", "show", &shout],
    )?;
    show(
        &repo,
        "git log --graph --oneline main",
        &["log", "--graph", "--oneline", "--decorate=short", "main"],
    )?;
    show(
        &repo,
        "git log --notes=agent --notes=agent-review -1 <shout's head>",
        &[
            "log",
            "-1",
            "--notes=agent",
            "--notes=agent-review",
            "--format=%h %s%n%N",
            &format!("agent/{shout}"),
        ],
    )?;
    show(
        &repo,
        "git log --reverse --format='%h %s' --glob=refs/agent/tasks (the audit trail, oldest first)",
        &["log", "--reverse", "--format=%h %s", "--glob=refs/agent/tasks"],
    )?;
    let tasks = ctx.store.load_all()?;
    let merged = tasks.iter().filter(|t| t.state == State::Merged).count();
    println!("\nThe demo repository is at {}", repo.display());
    println!(
        "Look around: cd {} && git agent status && git log --glob=refs/agent/tasks",
        repo.display()
    );
    if merged != tasks.len() {
        bail!(
            "{merged} of {} tasks merged; see `git agent status` in {}",
            tasks.len(),
            repo.display()
        );
    }
    Ok(repo)
}

fn write_agents(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in [
        ("implementer.sh", IMPLEMENTER),
        ("reviewer.sh", REVIEWER),
        ("integrator.sh", INTEGRATOR),
    ] {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

fn setup_project(repo: &Path, agents: &Path) -> Result<()> {
    std::fs::create_dir_all(repo.join("tests"))?;
    git::init(repo, "main")?;
    // The demo signs its own commits, whoever runs it.
    git::config_set(repo, "user.name", "git-agent demo")?;
    git::config_set(repo, "user.email", "demo@git-agent.invalid")?;
    for (path, text) in PROJECT {
        std::fs::write(repo.join(path), text)?;
    }
    let agent = |name: &str| agents.join(name).display().to_string();
    let config = format!(
        "# The demo's team: the bundled example agents.\ntarget: main\ntest: sh tests/run.sh\nparallel: 2\nroles:\n  implementer: {{ command: [sh, \"{}\"], timeout: 60s, max_attempts: 3 }}\n  reviewer:    {{ command: [sh, \"{}\"], timeout: 60s }}\n  integrator:  {{ command: [sh, \"{}\"], timeout: 60s }}\n",
        agent("implementer.sh"),
        agent("reviewer.sh"),
        agent("integrator.sh")
    );
    std::fs::write(repo.join(crate::agent::config::FILE), config)?;
    std::fs::write(repo.join("plan.yaml"), PLAN)?;
    git::commit_all(repo, "A greeter that says hello")?;
    git::config_add(repo, "notes.rewriteRef", "refs/notes/agent")
        .context("setting notes.rewriteRef")?;
    Ok(())
}

/// Print a command and its output, as a person would see it.
fn show(repo: &Path, title: &str, args: &[&str]) -> Result<()> {
    println!("\n$ {title}");
    let output = if args.first() == Some(&"agent") {
        let exe = std::env::current_exe()?;
        let out = std::process::Command::new(exe)
            .args(&args[1..])
            .current_dir(repo)
            .output()?;
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        let options = args
            .strip_prefix(&["log"][..])
            .context("the demo shows git log and git agent only")?;
        git::log(repo, options, &[])?
    };
    println!("{}", output.trim_end());
    Ok(())
}

fn say(line: &str) {
    println!("{line}");
}
