//! `git agent status`: the board. What waits for a human comes first.

/// `writeln!` to a `String`, which cannot fail.
macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

mod limits;

use limits::Limits;

use anyhow::Result;
use std::collections::HashMap;

use crate::model::activity::{self, Activity};
use crate::model::board::{Board, TaskView};
use crate::model::task::State;
use crate::orchestrate::{predict, Context};
use crate::store::lease::Lease;

/// The board: tasks by state, what runs now, what waits for a human; on a
/// hub, what it reviewed and merged lately, and for whom.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print `{"counts": {...}, "tasks": [...]}`, and `"limits": {pauses,
    /// budget, config_error}` where a run pauses a role or a budget is set;
    /// in a bare repository (a hub), `"recent": [...]`, its latest reviews
    /// and merges.
    #[arg(long)]
    json: bool,
    /// Also list merged and abandoned tasks (by default only counted).
    #[arg(long)]
    all: bool,
    /// Keep the board on screen, redrawn in place whenever it changes (on
    /// a terminal); to a pipe, print it again each time it changes. Ctrl-C
    /// ends it.
    #[arg(long, conflicts_with = "json")]
    watch: bool,
    /// How often --watch reads the board, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 2.0, requires = "watch")]
    interval: f64,
}

/// What `status --json` prints, serialized straight from the board.
#[derive(serde::Serialize)]
struct StatusJson<'a> {
    counts: std::collections::BTreeMap<&'static str, usize>,
    tasks: &'a [TaskView<'a>],
    /// Pauses and budget, left out where there are none.
    #[serde(skip_serializing_if = "Limits::is_empty")]
    limits: Limits,
    /// In a bare repository (a hub): the latest reviews and merges.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    recent: Vec<Activity>,
}

/// How many reviews and merges a hub's board lists.
const RECENT: usize = 10;
/// How many of the latest changed tasks are read for them.
const RECENT_SCAN: usize = 50;

pub fn run(args: Args) -> Result<()> {
    let store = super::open()?;
    if args.watch {
        return watch(&store, &args);
    }
    // A hub's board reads histories, which the fast path does not.
    if args.json && !super::to_terminal() && !store.repo().is_bare() {
        return print_json_fast(&store);
    }
    let mut out = String::new();
    if let Some(warning) = board(&store, &args, &mut out)? {
        eprintln!("{warning}");
    }
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// `status --watch`: read the board every `--interval` and show it again
/// where it changed: on a terminal, over the last one (cursor home, clear
/// the screen); elsewhere, after it. Ends, with success, on SIGINT or
/// SIGTERM.
fn watch(store: &crate::store::Store, args: &Args) -> Result<()> {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let interval = Duration::try_from_secs_f64(args.interval)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--interval: {} is not a number of seconds above 0",
                args.interval
            )
        })?;
    let stop = crate::agent::process::catch_interrupts();
    let terminal = super::to_terminal();
    let mut shown: Option<String> = None;
    loop {
        let mut out = String::new();
        let warning = board(store, args, &mut out)?;
        if shown.as_deref() != Some(out.as_str()) {
            if let Some(warning) = warning {
                eprintln!("{warning}");
            }
            let mut stdout = std::io::stdout().lock();
            if terminal {
                let stamp = jiff::Zoned::now().strftime("%H:%M:%S");
                write!(stdout, "\x1b[H\x1b[2J")?;
                writeln!(
                    stdout,
                    "{}",
                    super::colour::paint(
                        super::colour::stdout(),
                        super::colour::Paint::Dim,
                        &format!(
                            "git agent status --watch, read every {}s, changed at {stamp} (Ctrl-C ends)",
                            args.interval
                        )
                    )
                )?;
            } else if shown.is_some() {
                writeln!(stdout)?;
            }
            stdout.write_all(out.as_bytes())?;
            stdout.flush()?;
            shown = Some(out);
        }
        let until = Instant::now() + interval;
        while Instant::now() < until {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50).min(interval));
        }
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
    }
}

/// The board as `status` prints it, into `out`; the warning for stderr,
/// where there is one.
fn board(store: &crate::store::Store, args: &Args, out: &mut String) -> Result<Option<String>> {
    let tasks = store.load_all()?;
    let board = Board::new(&tasks);
    let unfinished: Vec<&str> = tasks
        .iter()
        .filter(|t| !t.state.is_terminal())
        .map(|t| t.id.as_str())
        .collect();
    let limits = Limits::of(store, &unfinished)?;
    let recent = match store.repo().is_bare() {
        true => recent(store, &tasks)?,
        false => Vec::new(),
    };
    if args.json {
        super::print_json(&StatusJson {
            counts: board.counts(),
            tasks: &board.views,
            limits,
            recent,
        })?;
        return Ok(None);
    }
    limits.print(out);
    let warning = limits.warning();
    if tasks.is_empty() {
        line!(out, "no tasks yet: import a plan with `git agent plan --file F` or add one with `git agent task add`");
        return Ok(warning);
    }
    let by_state = |state: State| -> Vec<&TaskView> {
        board
            .views
            .iter()
            .filter(|v| v.task.state == state)
            .collect()
    };
    section(out, "needs a human", &by_state(State::NeedsHuman), |v| {
        v.task.reason.clone().unwrap_or_default()
    });
    let running = by_state(State::InProgress);
    let leases = match running.is_empty() {
        true => Default::default(),
        false => store.leases()?,
    };
    section(out, "in progress", &running, |v| {
        format!("{}, {}", v.task.attempt_words(), lease_line(&leases, v))
    });
    section(out, "in review", &by_state(State::InReview), |v| {
        v.task.head.as_deref().map(short).unwrap_or_default()
    });
    section(out, "approved", &by_state(State::Approved), |_| {
        String::new()
    });
    let ready = board.ready();
    let waits = why_ready_tasks_wait(&tasks, &ready)?;
    section(out, "ready", &ready, |v| match waits.get(&v.task.id) {
        Some(why) => format!("p{}, {why}", v.task.priority),
        None => format!("p{}", v.task.priority),
    });
    let blocked: Vec<&TaskView> = board.views.iter().filter(|v| v.blocked).collect();
    section(out, "blocked", &blocked, |v| {
        format!("waits for {}", v.task.depends_on.join(", "))
    });
    let queued = crate::store::queue::list(&store.agent_dir())?;
    let reviews: Vec<_> = queued.iter().filter(|q| q.kind == "review").collect();
    if !reviews.is_empty() {
        line!(out, "review queue ({}):", reviews.len());
        for item in reviews {
            let task = item.payload["task"].as_str().unwrap_or("?");
            let commit: String = item.key.chars().take(10).collect();
            line!(out, "  {commit}  task {task}, queued {}", item.queued_at);
        }
    }
    print_recent(out, &recent);
    for state in [State::Merged, State::Abandoned] {
        let done = by_state(state);
        if args.all {
            section(out, state.as_str(), &done, |_| String::new());
        } else if !done.is_empty() {
            line!(out, "{} {}", done.len(), state.as_str());
        }
    }
    Ok(warning)
}

/// The latest reviews and merges, newest first: what a hub did with the
/// work pushed to it, and for whom. Reads the histories of the tasks that
/// changed last only.
fn recent(
    store: &crate::store::Store,
    tasks: &[crate::model::task::Task],
) -> Result<Vec<Activity>> {
    let mut latest: Vec<&crate::model::task::Task> = tasks.iter().collect();
    latest.sort_by(|a, b| b.updated_at.cmp(&a.updated_at));
    let mut recent = Vec::new();
    for task in latest.into_iter().take(RECENT_SCAN) {
        if let Some(done) = activity::of(task, &store.events(&task.id)?) {
            recent.push(done);
        }
    }
    recent.sort_by(|a, b| b.at.cmp(&a.at));
    recent.truncate(RECENT);
    Ok(recent)
}

/// `reviewed and merged (n):`, a line a task: for whom, the verdict and
/// its reviewer, the merge and who made it.
fn print_recent(out: &mut String, recent: &[Activity]) {
    if recent.is_empty() {
        return;
    }
    line!(out, "reviewed and merged, latest first ({}):", recent.len());
    for done in recent {
        let mut what = Vec::new();
        if let Some(review) = &done.review {
            let verdict = match review.verdict {
                crate::model::task::Verdict::Approve => "approved",
                crate::model::task::Verdict::Changes => "changes asked",
            };
            what.push(format!(
                "{verdict} by {} at {}",
                review.reviewer,
                short(&review.head)
            ));
        }
        if let Some(merge) = &done.merge {
            let commit = merge.commit.as_deref().map(short).unwrap_or_default();
            what.push(format!("merged as {commit} by {}", merge.by));
        }
        let author = done.author.as_deref().unwrap_or("?");
        line!(
            out,
            "  {}  {}  for {author}: {}",
            done.task,
            super::one_line(&done.title, 50),
            super::one_line(&what.join(", "), 200)
        );
    }
}

/// `status --json` for a program: the cached snapshots, copied without
/// parsing them; the same document as [`StatusJson`] makes.
fn print_json_fast(store: &crate::store::Store) -> Result<()> {
    use std::io::Write;
    let tasks = store.load_json()?;
    let board = Board::new(&tasks);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    out.write_all(b"{\"counts\":")?;
    serde_json::to_writer(&mut out, &board.counts())?;
    out.write_all(b",\"tasks\":")?;
    super::write_views(&mut out, &board.views.iter().collect::<Vec<_>>())?;
    let unfinished: Vec<&str> = tasks
        .iter()
        .filter(|t| !t.summary.state.is_terminal())
        .map(|t| t.summary.id.as_str())
        .collect();
    let limits = Limits::of(store, &unfinished)?;
    if !limits.is_empty() {
        out.write_all(b",\"limits\":")?;
        serde_json::to_writer(&mut out, &limits)?;
    }
    out.write_all(b"}\n")?;
    out.flush()?;
    Ok(())
}

/// Print a titled list of tasks, with `detail` after each title; nothing if empty.
fn section(
    out: &mut String,
    title: &str,
    views: &[&TaskView],
    detail: impl Fn(&TaskView) -> String,
) {
    if views.is_empty() {
        return;
    }
    let heading = format!("{title} ({}):", views.len());
    line!(
        out,
        "{}",
        super::colour::paint(super::colour::stdout(), paint_of(title), &heading)
    );
    // Cut to fit a terminal; a pipe or a file gets every word.
    let (title_width, detail_width) = match super::to_terminal() {
        true => (50, 70),
        false => (usize::MAX, usize::MAX),
    };
    for v in views {
        let detail = detail(v);
        let sep = if detail.is_empty() { "" } else { "  " };
        line!(
            out,
            "  {}  {}{sep}{}",
            v.task.id,
            super::one_line(&v.task.title, title_width),
            super::one_line(&detail, detail_width)
        );
    }
}

/// The colour of a section's heading: red for what needs a person, green
/// for what is done or can start.
fn paint_of(title: &str) -> super::colour::Paint {
    use super::colour::Paint;
    match title {
        "needs a human" => Paint::Red,
        "in progress" => Paint::Yellow,
        "in review" => Paint::Cyan,
        "approved" | "ready" | "merged" => Paint::Green,
        "blocked" => Paint::Magenta,
        "abandoned" => Paint::Dim,
        _ => Paint::Blue,
    }
}

/// Who holds a running task and whether the lease still holds.
fn lease_line(leases: &HashMap<String, Lease>, view: &TaskView) -> String {
    match leases.get(&view.task.id) {
        Some(lease) => {
            if lease.is_live() {
                lease.describe()
            } else {
                format!("{}: lease dead, can be taken over", lease.describe())
            }
        }
        _ => format!(
            "{} (no lease)",
            view.task.assignee.as_deref().unwrap_or("?")
        ),
    }
}

fn short(commit: &str) -> String {
    commit.chars().take(10).collect()
}

/// Why ready tasks wait although they could start: a predicted clash with
/// work in flight (see `orchestrate::predict`).
fn why_ready_tasks_wait(
    tasks: &[crate::model::task::Task],
    ready: &[&TaskView],
) -> Result<std::collections::HashMap<String, String>> {
    static NEVER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let mut waits = std::collections::HashMap::new();
    let flight = predict::in_flight(tasks);
    if flight.is_empty() || ready.is_empty() {
        return Ok(waits);
    }
    let ctx = Context::open(&NEVER)?;
    for view in ready {
        if let Some(why) = predict::clash(&ctx, view.task, &flight)? {
            waits.insert(view.task.id.clone(), why);
        }
    }
    Ok(waits)
}
