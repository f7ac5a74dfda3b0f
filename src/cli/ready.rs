//! `git agent ready`: what can start now, in the order it would start.

use anyhow::Result;

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
    let tasks = store.load_all()?;
    let board = Board::new(&tasks);
    let ready = board.ready();
    if args.json {
        return super::print_json(&ready);
    }
    use std::io::Write;
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
