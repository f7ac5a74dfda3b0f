//! How fast the task store is: plan import, the board, and claims.
//!
//! Run by hand (CI does not run it; it takes a few minutes on 2 cores):
//!
//! ```text
//! cargo bench --bench store
//! GIT_AGENT_BENCH_REF_FORMATS=reftable cargo bench --bench store   # one format only
//! GIT_AGENT_BENCH_ROWS=races cargo bench --bench store              # some rows only
//! ```
//!
//! `GIT_AGENT_BENCH_ROWS` names the groups of rows to run, of `imports`,
//! `reads`, `claims` (in-process), `races` and `disk` (all by default);
//! `reads` and `claims` need the 10,000 task import, so they run `imports`
//! too.
//!
//! Rows 1-4 run once per ref format (`files`, then `reftable`, as
//! `GIT_AGENT_BENCH_REF_FORMATS` lists them), each row named by its format.
//!
//! Cargo builds the `git-agent` binary with the bench profile (optimised, as
//! release) and hands its path to this program, so whole-command timings run
//! the same code as the in-process ones. Every scenario works on a fresh
//! temporary repository (`git init -b main` plus one empty commit), and the
//! program prints one markdown table:
//!
//! 1. `git-agent plan --file plan.yaml` of 1,000 and of 10,000 generated
//!    tasks (every tenth depends on an earlier task), wall time; beside it
//!    the in-process parse of the plan.
//! 2. `git-agent status --json` and `git-agent ready --json` on the 10,000
//!    task repo, cold (the derived cache `<git-dir>/agent/cache/` deleted
//!    before each run) and warm, each also as a multiple of
//!    `git for-each-ref refs/agent/tasks` on the same repo. (Its default
//!    format reads every ref's object to print its type; the table also
//!    shows `for-each-ref` with a format that reads none.)
//! 3. `Store::claim` called in-process on that repo, one task per call,
//!    after a row that times one small file created and renamed on the
//!    same disk just before: a claim's cost is mostly the files it creates.
//! 4. Claim throughput: 1 and 8 processes looping over
//!    `git-agent claim --next` until it exits 1, on 400 ready tasks. It
//!    asserts that every task was claimed exactly once.
//! 5. Last, as what the disk allows: the time to write as many small files
//!    as a 10k import has objects (it writes them as one pack, but would
//!    cost this as loose objects). It runs last because deleting them slows
//!    the disk's next file creations for a while.
//!
//! Timings are medians (and minima) over several runs, measured with
//! `std::time::Instant`; output of the timed commands goes to /dev/null.

#[path = "common.rs"]
mod common;
use common::{show, target, Stats};

use std::collections::HashSet;
use std::error::Error;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use git_agent::model::task::State;
use git_agent::store::lease::{ClaimOutcome, ClaimRequest};
use git_agent::store::Store;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// The binary under test, built by cargo for this bench.
const BIN: &str = env!("CARGO_BIN_EXE_git-agent");

const IMPORT_1K_RUNS: usize = 5;
const IMPORT_10K_RUNS: usize = 3;
const READ_RUNS: usize = 10;
const IN_PROCESS_CLAIMS: usize = 200;
const RACE_TASKS: usize = 400;
const RACE_RUNS: usize = 3;
/// Objects a new task has: event blob, snapshot blob, tree, commit.
const OBJECTS_PER_TASK: usize = 4;

/// The ref format of the repositories the bench makes now.
static REF_FORMAT: std::sync::Mutex<&str> = std::sync::Mutex::new("files");

fn ref_format() -> &'static str {
    *REF_FORMAT.lock().expect("the ref format lock")
}

fn main() -> Result<()> {
    println!("git-agent store bench: {BIN}");
    println!("{}, {} cores\n", git_version()?, cores());
    let formats =
        std::env::var("GIT_AGENT_BENCH_REF_FORMATS").unwrap_or_else(|_| "files,reftable".into());
    let rows = Rows::from_env()?;
    let mut table = Table::default();
    for format in formats.split(',').map(str::trim) {
        let format: &'static str = match format {
            "files" => "files",
            "reftable" => "reftable",
            other => return Err(format!("unknown ref format {other:?}").into()),
        };
        *REF_FORMAT.lock().expect("the ref format lock") = format;
        table.prefix = format!("[{format}] ");
        if rows.imports {
            let big = imports(&mut table)?;
            if rows.reads {
                reads(&mut table, &big)?;
            }
            if rows.claims {
                claims(&mut table, &big)?;
            }
        }
        if rows.races {
            races(&mut table)?;
        }
    }
    table.prefix.clear();
    // Last: it creates and deletes 120,000 files, after which the disk
    // creates files up to ten times slower for a while (seen on ext4 with
    // `discard`), which would otherwise be charged to the claims.
    if rows.disk {
        disk_baseline(&mut table)?;
    }
    println!();
    table.print();
    Ok(())
}

/// Rows 1-2: plan imports, with what the parse and the disk cost for
/// comparison. Returns the 10,000 task repository for the reads.
fn imports(table: &mut Table) -> Result<TestRepo> {
    let (small, _) = bench_import(1_000, IMPORT_1K_RUNS)?;
    table.row("plan import, 1,000 tasks", &small, "", "");
    let (import, big) = bench_import(10_000, IMPORT_10K_RUNS)?;
    let limit = Duration::from_secs(1);
    table.row(
        "plan import, 10,000 tasks",
        &import,
        "",
        &target(&import, limit),
    );
    let parse = bench_parse(10_000)?;
    table.row(
        "plan parse + validate in-process, 10,000 tasks",
        &parse,
        "",
        "",
    );
    Ok(big)
}

/// Last row: what writing a 10k import's objects as loose files would cost.
fn disk_baseline(table: &mut Table) -> Result<()> {
    let files = bench_file_writes(OBJECTS_PER_TASK * 10_000, IMPORT_10K_RUNS)?;
    table.row(
        "disk baseline: 40,000 small files, temp + rename (a 10k import's objects, were they loose)",
        &files,
        "",
        "",
    );
    Ok(())
}

/// Rows 3-4: the board read cold and warm, against `git for-each-ref`.
fn reads(table: &mut Table, big: &TestRepo) -> Result<()> {
    let refs = time_runs(READ_RUNS, no_setup, || {
        run_quiet(big.path(), "git", &for_each_ref())
    })?;
    let name = "git for-each-ref refs/agent/tasks, 10,000 tasks";
    table.row(name, &refs, "1.0x", "(baseline)");
    let names_only = [
        "for-each-ref",
        "--format=%(objectname) %(refname)",
        "refs/agent/tasks",
    ];
    let cheap = time_runs(READ_RUNS, no_setup, || {
        run_quiet(big.path(), "git", &names_only)
    })?;
    let name = "git for-each-ref --format='%(objectname) %(refname)', 10,000 tasks";
    table.row(name, &cheap, &ratio(&cheap, &refs), "(reads no objects)");
    bench_read(table, big, "status", &refs)?;
    bench_read(table, big, "ready", &refs)?;
    Ok(())
}

/// Which groups of rows to run (`GIT_AGENT_BENCH_ROWS`).
struct Rows {
    imports: bool,
    reads: bool,
    claims: bool,
    races: bool,
    disk: bool,
}

impl Rows {
    fn from_env() -> Result<Rows> {
        let Ok(list) = std::env::var("GIT_AGENT_BENCH_ROWS") else {
            return Ok(Rows {
                imports: true,
                reads: true,
                claims: true,
                races: true,
                disk: true,
            });
        };
        let mut rows = Rows {
            imports: false,
            reads: false,
            claims: false,
            races: false,
            disk: false,
        };
        for group in list.split(',').map(str::trim) {
            match group {
                "imports" => rows.imports = true,
                "reads" => rows.reads = true,
                "claims" => rows.claims = true,
                "races" => rows.races = true,
                "disk" => rows.disk = true,
                other => {
                    return Err(format!(
                        "GIT_AGENT_BENCH_ROWS: unknown group {other:?} (imports, reads, claims, races, disk)"
                    )
                    .into())
                }
            }
        }
        // The reads and the in-process claims work on the 10k import.
        rows.imports |= rows.reads || rows.claims;
        Ok(rows)
    }
}

/// Row 5: one claim in-process, after what one file costs the disk now.
fn claims(table: &mut Table, big: &TestRepo) -> Result<()> {
    // What one file costs the disk right now: a claim creates 6-7 (its
    // loose objects and two ref locks), so this row explains the next one.
    let create = bench_file_creates()?;
    let name = "disk now: one small file, create + write + rename";
    table.row(name, &create, "", "(a claim creates 6-7)");
    let claim = bench_claim_in_process(big.path())?;
    let limit = Duration::from_millis(5);
    let name = "claim in-process (Store::claim), 10,000 tasks";
    table.row(name, &claim, "", &target(&claim, limit));
    Ok(())
}

/// Row 6: racing `claim --next` processes.
fn races(table: &mut Table) -> Result<()> {
    for workers in [1, 8] {
        let runs = (0..RACE_RUNS)
            .map(|_| bench_claim_race(workers))
            .collect::<Result<Vec<_>>>()?;
        table.race_row(workers, &Stats::of(runs));
    }
    Ok(())
}

// ---- scenarios ----

/// Import a generated plan of `tasks` tasks into a fresh repository, `runs`
/// times. Returns the timings and the last repository, for the reads.
fn bench_import(tasks: usize, runs: usize) -> Result<(Stats, TestRepo)> {
    let yaml = plan_yaml(tasks, true);
    let mut repo = None;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let fresh = TestRepo::new()?;
        let file = fresh.path().join("plan.yaml");
        std::fs::write(&file, &yaml)?;
        let args = [
            "plan",
            "--file",
            file.to_str().ok_or("temp path is not UTF-8")?,
        ];
        times.push(timed(|| run_quiet(fresh.path(), BIN, &args))?);
        repo = Some(fresh);
    }
    let repo = repo.ok_or("no import ran")?;
    let count = repo.task_count()?;
    if count != tasks {
        return Err(format!("imported {tasks} tasks but found {count} task refs").into());
    }
    Ok((Stats::of(times), repo))
}

/// `git_agent::model::plan::parse` of a generated plan of `tasks` tasks.
fn bench_parse(tasks: usize) -> Result<Stats> {
    let yaml = plan_yaml(tasks, true);
    time_runs(READ_RUNS, no_setup, || {
        let plan = git_agent::model::plan::parse("plan.yaml", &yaml, &|_| None)?;
        assert_eq!(plan.tasks.len(), tasks, "the parsed plan lost tasks");
        Ok(())
    })
}

/// What the disk allows: write `count` small files the way loose objects
/// are written (a temporary file, then a rename into one of 256
/// directories), in a fresh directory each run.
fn bench_file_writes(count: usize, runs: usize) -> Result<Stats> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let dir = fan_out_dir()?;
        times.push(timed(|| write_files(dir.path(), count))?);
    }
    Ok(Stats::of(times))
}

/// A temporary directory with 256 subdirectories, as `objects/` has.
fn fan_out_dir() -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("git-agent-bench")
        .tempdir()?;
    for fan in 0..256 {
        std::fs::create_dir(dir.path().join(format!("{fan:02x}")))?;
    }
    Ok(dir)
}

/// One small file created, written and renamed, timed alone, 200 times.
fn bench_file_creates() -> Result<Stats> {
    let dir = fan_out_dir()?;
    let mut times = Vec::with_capacity(IN_PROCESS_CLAIMS);
    for i in 0..IN_PROCESS_CLAIMS {
        times.push(timed(|| write_files_from(dir.path(), i, 1))?);
    }
    Ok(Stats::of(times))
}

fn write_files(dir: &Path, count: usize) -> Result<()> {
    write_files_from(dir, 0, count)
}

fn write_files_from(dir: &Path, first: usize, count: usize) -> Result<()> {
    let body = [b'x'; 300];
    for i in first..first + count {
        let tmp = dir.join(format!("tmp{i}"));
        std::fs::write(&tmp, body)?;
        std::fs::rename(&tmp, dir.join(format!("{:02x}/{i}", i % 256)))?;
    }
    Ok(())
}

/// `git-agent <command> --json` cold and warm, with its ratio to `refs`.
fn bench_read(table: &mut Table, repo: &TestRepo, command: &str, refs: &Stats) -> Result<()> {
    let args = [command, "--json"];
    let cache = repo.path().join(".git/agent/cache");
    let clear = || match std::fs::remove_dir_all(&cache) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    };
    let run = || run_quiet(repo.path(), BIN, &args);
    let cold = time_runs(READ_RUNS, clear, run)?;
    run()?; // fill the cache
    let warm = time_runs(READ_RUNS, no_setup, run)?;
    let (cold_target, warm_target) = match command {
        "ready" => (
            target(&cold, Duration::from_millis(150)),
            target(&warm, Duration::from_millis(25)),
        ),
        _ => (String::new(), String::new()),
    };
    let name = |how: &str| format!("{command} --json, 10,000 tasks, {how}");
    table.row(&name("cold"), &cold, &ratio(&cold, refs), &cold_target);
    table.row(&name("warm"), &warm, &ratio(&warm, refs), &warm_target);
    Ok(())
}

/// Time `Store::claim` on `IN_PROCESS_CLAIMS` different ready tasks.
fn bench_claim_in_process(dir: &Path) -> Result<Stats> {
    let store = Store::discover(dir)?;
    let ids: Vec<String> = store
        .load_all()?
        .into_iter()
        .filter(|t| t.state == State::Open && t.depends_on.is_empty())
        .map(|t| t.id)
        .take(IN_PROCESS_CLAIMS)
        .collect();
    let mut times = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        // An actor of its own per claim, so that no two leases are the same
        // blob (as two claims by one process within a second would be).
        let request = ClaimRequest {
            actor: format!("bench-{i}"),
            role: "implementer".into(),
            pid: Some(std::process::id()),
            ttl: Duration::from_secs(1800),
        };
        let start = Instant::now();
        let outcome = store.claim(id, &request)?;
        times.push(start.elapsed());
        if !matches!(outcome, ClaimOutcome::Claimed(_)) {
            return Err(format!("claim of {id}: expected Claimed, got {outcome:?}").into());
        }
    }
    Ok(Stats::of(times))
}

/// `workers` processes claim `RACE_TASKS` ready tasks with `claim --next`
/// until none is left; checks that each task went to exactly one of them.
/// Returns the wall time from the first claim to the last worker's exit.
fn bench_claim_race(workers: usize) -> Result<Duration> {
    let repo = TestRepo::new()?;
    let file = repo.path().join("plan.yaml");
    std::fs::write(&file, plan_yaml(RACE_TASKS, false))?;
    run_quiet(repo.path(), BIN, &["plan", "--file", "plan.yaml"])?;

    let dir = repo.path();
    let start = Instant::now();
    let claimed: Vec<Vec<String>> = thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|i| scope.spawn(move || claim_until_done(dir, &format!("w{i}"))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a claim worker panicked"))
            .collect::<Result<_>>()
    })?;
    let elapsed = start.elapsed();

    let all: Vec<&String> = claimed.iter().flatten().collect();
    let distinct: HashSet<&String> = all.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "{workers} workers: {} claims but only {} distinct tasks: a task was claimed twice",
        all.len(),
        distinct.len()
    );
    assert_eq!(
        all.len(),
        RACE_TASKS,
        "{workers} workers claimed {} of {RACE_TASKS} tasks",
        all.len()
    );
    let per_worker: Vec<String> = claimed.iter().map(|c| c.len().to_string()).collect();
    println!(
        "claim race, {workers} worker(s): check passed: {RACE_TASKS} tasks, each claimed exactly once (per worker: {})",
        per_worker.join(" + ")
    );
    Ok(elapsed)
}

/// Run `git-agent claim --next` as `actor` until it answers 1 (nothing
/// ready); returns the ids it printed.
fn claim_until_done(dir: &Path, actor: &str) -> Result<Vec<String>> {
    let pid = std::process::id().to_string();
    let args = ["claim", "--next", "--actor", actor, "--pid", &pid];
    let mut ids = Vec::new();
    loop {
        let out = command(dir, BIN, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()?;
        match out.status.code() {
            Some(0) => ids.push(String::from_utf8(out.stdout)?.trim().to_string()),
            Some(1) => return Ok(ids),
            _ => {
                return Err(format!(
                    "{actor}: git-agent claim --next failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )
                .into())
            }
        }
    }
}

// ---- repositories and plans ----

/// A fresh repository in a temporary directory: branch main, one empty commit.
struct TestRepo {
    dir: tempfile::TempDir,
}

impl TestRepo {
    fn new() -> Result<TestRepo> {
        let dir = tempfile::Builder::new()
            .prefix("git-agent-bench")
            .tempdir()?;
        let format = format!("--ref-format={}", ref_format());
        run_quiet(dir.path(), "git", &["init", "-q", "-b", "main", &format])?;
        let commit = ["commit", "-q", "--allow-empty", "-m", "init"];
        run_quiet(dir.path(), "git", &commit)?;
        Ok(TestRepo { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn task_count(&self) -> Result<usize> {
        let out = command(self.path(), "git", &for_each_ref())
            .stdout(Stdio::piped())
            .output()?;
        Ok(out
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count())
    }
}

/// A plan of `tasks` tasks; with `deps`, every tenth depends on an earlier one.
fn plan_yaml(tasks: usize, deps: bool) -> String {
    let mut yaml = String::from("goal: Benchmark the store\ntasks:\n");
    for i in 0..tasks {
        yaml.push_str(&format!(
            "  - key: k{i}\n    title: Task number {i}\n    spec: |\n      Do step {i} of the benchmark.\n    priority: {}\n",
            i % 3
        ));
        if deps && i % 10 == 9 {
            yaml.push_str(&format!("    depends_on: [k{}]\n", i / 2));
        }
    }
    yaml
}

fn for_each_ref() -> [&'static str; 2] {
    ["for-each-ref", "refs/agent/tasks"]
}

// ---- processes ----

/// A command in `dir`, isolated from the user's and the system's git config
/// (with a fixed identity) so that runs are comparable across machines.
fn command(dir: &Path, program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@localhost")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@localhost")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// Run a command to success with its stdout discarded.
fn run_quiet(dir: &Path, program: &str, args: &[&str]) -> Result<()> {
    let out = command(dir, program, args)
        .stderr(Stdio::piped())
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(())
}

fn git_version() -> Result<String> {
    let out = Command::new("git").arg("--version").output()?;
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

// ---- timing and the table ----

fn timed(run: impl FnOnce() -> Result<()>) -> Result<Duration> {
    let start = Instant::now();
    run()?;
    Ok(start.elapsed())
}

/// Time `run` `runs` times, calling the untimed `setup` before each.
fn time_runs(
    runs: usize,
    mut setup: impl FnMut() -> Result<()>,
    mut run: impl FnMut() -> Result<()>,
) -> Result<Stats> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        setup()?;
        times.push(timed(&mut run)?);
    }
    Ok(Stats::of(times))
}

fn no_setup() -> Result<()> {
    Ok(())
}

fn ratio(of: &Stats, to: &Stats) -> String {
    format!("{:.1}x", of.median.as_secs_f64() / to.median.as_secs_f64())
}

/// The rows of the markdown table, in the order they were measured.
#[derive(Default)]
struct Table {
    rows: Vec<[String; 6]>,
    /// Put before each scenario's name: the ref format it ran on.
    prefix: String,
}

impl Table {
    fn row(&mut self, scenario: &str, stats: &Stats, vs_refs: &str, target: &str) {
        self.rows.push([
            format!("{}{scenario}", self.prefix),
            show(stats.median),
            show(stats.min),
            stats.runs.to_string(),
            vs_refs.to_string(),
            target.to_string(),
        ]);
    }

    /// A claim race: `stats` are the wall times of whole races of
    /// `RACE_TASKS` claims, shown as claims per second (the min column shows
    /// the best run).
    fn race_row(&mut self, workers: usize, stats: &Stats) {
        let rate = |d: Duration| format!("{:.0} claims/s", RACE_TASKS as f64 / d.as_secs_f64());
        self.rows.push([
            format!(
                "{}claim --next, {workers} racing process(es), {RACE_TASKS} ready tasks",
                self.prefix
            ),
            rate(stats.median),
            rate(stats.min),
            stats.runs.to_string(),
            String::new(),
            format!(
                "{} per race, {} per claim; every task claimed exactly once (checked){}",
                show(stats.median),
                show(stats.median / RACE_TASKS as u32),
                match workers {
                    8 => "; target 80 claims/s",
                    _ => "",
                }
            ),
        ]);
    }

    fn print(&self) {
        println!("| scenario | median | min | runs | vs for-each-ref | target / note |");
        println!("|---|---:|---:|---:|---:|---|");
        for row in &self.rows {
            println!("| {} |", row.join(" | "));
        }
    }
}
