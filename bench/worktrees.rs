//! What recycling task worktrees saves: a pipeline of 8 tasks on a small
//! real Rust crate whose gate is `cargo test`, with a fresh worktree per
//! task (`worktree: { reuse: false }`) against recycled ones (the default).
//!
//! Run by hand (CI does not run it; it needs cargo and takes a few minutes):
//!
//! ```text
//! cargo bench --bench worktrees
//! cargo test --bench worktrees   # the same, with the debug binary (no release build)
//! ```
//!
//! Each mode works on a fresh temporary repository holding a crate with no
//! dependencies (so it builds offline) and `target/` ignored. The set-up is
//! `cargo build --tests --offline` (logged, timed by the script itself);
//! the implementer adds one integration test file of its own (no two tasks
//! conflict), the reviewer approves, the gate is `cargo test --offline
//! --quiet`. `git-agent run -j 1`: one slot, so each task after the first
//! may recycle the worktree of the one before. The program checks that all
//! 8 tasks were merged and prints the wall time, the set-up runs and the
//! mean set-up time per task of each mode. The set-up runs include the
//! merge queue's worktree (once). With recycling a slot still makes a new
//! worktree when the task before it is not merged yet (the slot takes its
//! next task while the last one is in review or the queue), so there are
//! more set-ups than two.

use std::error::Error;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

const BIN: &str = env!("CARGO_BIN_EXE_git-agent");
const TASKS: usize = 8;

const IMPLEMENTER: &str = r#"#!/bin/sh
set -e
cat > /dev/null
name=$(echo "$GIT_AGENT_TASK" | tr -c 'a-z0-9\n' '_')
mkdir -p tests
cat > "tests/t_$name.rs" <<EOF
#[test]
fn adds_up() {
    assert_eq!(benchcrate::add(2, 3), 5);
}
EOF
git add -A
git commit -q -m "Test $GIT_AGENT_TASK"
"#;

const REVIEWER: &str = r#"#!/bin/sh
cat > /dev/null
echo "VERDICT: APPROVE"
"#;

/// The set-up: time `cargo build --tests` in the new worktree, into `$1`.
const SETUP: &str = r#"#!/bin/sh
set -e
start=$(date +%s%N)
cargo build --tests --offline --quiet
echo "$GIT_AGENT_ROLE ${GIT_AGENT_TASK:-gate} $start $(date +%s%N)" >> "$1"
"#;

const LIB: &str = r#"//! A small crate for the worktree benchmark.

/// The sum of `a` and `b`.
pub fn add(a: u64, b: u64) -> u64 {
    a + b
}

/// The `n`th Fibonacci number.
pub fn fib(n: u32) -> u64 {
    (0..n).fold((0, 1), |(a, b), _| (b, a + b)).0
}

#[cfg(test)]
mod tests {
    #[test]
    fn fib_10() {
        assert_eq!(super::fib(10), 55);
    }
}
"#;

struct Measured {
    wall: Duration,
    setups: usize,
    setup_total: Duration,
}

fn main() -> Result<()> {
    let mut rows = Vec::new();
    for (label, reuse) in [("fresh worktrees", false), ("recycled worktrees", true)] {
        let m = pipeline(reuse)?;
        rows.push((label, m));
    }
    println!("| {TASKS} tasks, gate `cargo test`, -j 1 | wall | set-up runs | set-up per task |");
    println!("|---|---|---|---|");
    for (label, m) in &rows {
        println!(
            "| {label} | {:.1} s | {} | {:.2} s |",
            m.wall.as_secs_f64(),
            m.setups,
            m.setup_total.as_secs_f64() / TASKS as f64
        );
    }
    Ok(())
}

fn pipeline(reuse: bool) -> Result<Measured> {
    let tmp = tempfile::tempdir()?;
    let repo = tmp.path().join("crate");
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(repo.join("src"))?;
    std::fs::create_dir_all(&bin)?;
    let record = tmp.path().join("setups.txt");
    for (name, text) in [
        ("implementer.sh", IMPLEMENTER),
        ("reviewer.sh", REVIEWER),
        ("setup.sh", SETUP),
    ] {
        std::fs::write(bin.join(name), text)?;
    }
    std::fs::write(
        repo.join("Cargo.toml"),
        "[package]\nname = \"benchcrate\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )?;
    std::fs::write(repo.join("src/lib.rs"), LIB)?;
    std::fs::write(repo.join(".gitignore"), "/target\nCargo.lock\n")?;
    git(&repo, &["init", "-q", "-b", "main"])?;
    git(&repo, &["add", "-A"])?;
    git(&repo, &["commit", "-q", "-m", "A small crate"])?;
    let sh = |name: &str| format!("[sh, {}]", bin.join(name).display());
    std::fs::write(
        repo.join(".git-agent.yaml"),
        format!(
            "target: main\nparallel: 1\ntest: cargo test --offline --quiet\nroles:\n  implementer: {{ command: {} }}\n  reviewer: {{ command: {} }}\nintegrate: {{ window: 1 }}\nworktree:\n  setup: [sh, {}, {}]\n  setup_timeout: 10m\n  reuse: {reuse}\n",
            sh("implementer.sh"),
            sh("reviewer.sh"),
            bin.join("setup.sh").display(),
            record.display(),
        ),
    )?;
    let mut plan = String::from("tasks:\n");
    for i in 0..TASKS {
        plan.push_str(&format!("  - key: k{i}\n    title: Test {i}\n"));
    }
    std::fs::write(tmp.path().join("plan.yaml"), plan)?;
    let plan_path = tmp.path().join("plan.yaml");
    ok(
        &repo,
        &["plan", "--file", plan_path.to_str().ok_or("path")?],
    )?;
    let start = Instant::now();
    let out = command(&repo, &["run", "-j", "1"]).output()?;
    let wall = start.elapsed();
    let status = command(&repo, &["status", "--json"]).output()?;
    let status: serde_json::Value = serde_json::from_slice(&status.stdout)?;
    let merged = count_merged(&status);
    if merged != TASKS {
        return Err(format!(
            "reuse {reuse}: {merged} of {TASKS} tasks merged; run said: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let lines = std::fs::read_to_string(&record)?;
    let mut setup_total = Duration::ZERO;
    let mut setups = 0;
    for line in lines.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(a), Some(b)) = (f.get(2), f.get(3)) else {
            continue;
        };
        let (a, b): (u64, u64) = (a.parse()?, b.parse()?);
        setup_total += Duration::from_nanos(b.saturating_sub(a));
        setups += 1;
    }
    Ok(Measured {
        wall,
        setups,
        setup_total,
    })
}

/// How many tasks `status --json` counts merged, wherever it keeps them.
fn count_merged(status: &serde_json::Value) -> usize {
    fn walk(v: &serde_json::Value, n: &mut usize) {
        match v {
            serde_json::Value::Object(map) => {
                if map.get("state").and_then(|s| s.as_str()) == Some("merged") {
                    *n += 1;
                }
                map.values().for_each(|v| walk(v, n));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, n)),
            _ => {}
        }
    }
    let mut n = 0;
    walk(status, &mut n);
    n
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@localhost")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@localhost")
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null());
    cmd
}

fn ok(dir: &Path, args: &[&str]) -> Result<()> {
    let out = command(dir, args).output()?;
    if !out.status.success() {
        return Err(format!(
            "git-agent {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@localhost")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@localhost")
        .status()?;
    if !status.success() {
        return Err(format!("git {} failed", args.join(" ")).into());
    }
    Ok(())
}
