//! `git agent ready`: what can start now, in the order it would start.

use anyhow::Result;
use std::io::Write;

use crate::model::board::Board;
use crate::model::task::State;

/// Tasks that can start now, in priority order.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print `[task, ...]` in start order.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let store = super::open()?;
    let tasks = store.load_json()?;
    let board = Board::new(&tasks);
    if board.views.iter().any(|v| in_flight(v.task.summary.state)) {
        return run_beside_work_in_flight(args);
    }
    if args.json && !super::to_terminal() {
        // For a program: the cached snapshots, copied without parsing them.
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        super::write_views(&mut out, &board.ready())?;
        writeln!(out)?;
        out.flush()?;
        return Ok(());
    }
    let tasks = store.load_all()?;
    let board = Board::new(&tasks);
    let ready = board.ready();
    if args.json {
        return super::print_json(&ready);
    }
    print_lines(&ready)
}

fn in_flight(state: State) -> bool {
    matches!(state, State::InProgress | State::InReview | State::Approved)
}

/// With work in flight, the same rule as `run` and `claim --next`: a ready
/// task predicted to clash with it waits, and is named on stderr with why.
fn run_beside_work_in_flight(args: Args) -> Result<()> {
    static NEVER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let ctx = crate::orchestrate::Context::open(&NEVER)?;
    let waits: std::collections::HashMap<String, String> =
        crate::orchestrate::predict::startable(&ctx)?
            .into_iter()
            .filter_map(|(id, why)| why.map(|w| (id, w)))
            .collect();
    let tasks = ctx.store.load_all()?;
    let board = Board::new(&tasks);
    let ready: Vec<_> = board
        .ready()
        .into_iter()
        .filter(|v| !waits.contains_key(&v.task.id))
        .collect();
    for (id, why) in &waits {
        eprintln!("{id} {}", crate::model::text::printable(why));
    }
    if args.json {
        return super::print_json(&ready);
    }
    print_lines(&ready)
}

/// One line per ready task: id, priority, title.
fn print_lines(ready: &[&crate::model::board::TaskView]) -> Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for v in ready {
        writeln!(
            out,
            "{}  p{}  {}",
            v.task.id,
            v.task.priority,
            super::one_line(&v.task.title, 70)
        )?;
    }
    out.flush()?;
    Ok(())
}
