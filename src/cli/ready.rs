//! `git agent ready`: what can start now, in the order it would start.

use anyhow::Result;
use std::io::Write;

use crate::model::board::Board;

/// Tasks that can start now, in priority order.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print `[task, ...]` in start order.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let store = super::open()?;
    if args.json && !super::to_terminal() {
        // For a program: the cached snapshots, copied without parsing them.
        let tasks = store.load_json()?;
        let board = Board::new(&tasks);
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
