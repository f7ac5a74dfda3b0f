//! `git agent stats`: where the time and the money went.

use anyhow::{Context as _, Result};
use std::path::PathBuf;

use crate::stats::{self, picture, text, Filter};

/// Where the time went: agent time against the coordination tax, per role
/// and per task, with tokens and cost; a timeline picture of the run.
#[derive(clap::Args, Debug)]
#[command(after_long_help = stats::FIELDS)]
pub struct Args {
    /// Only the tasks of this plan (id or unique prefix).
    #[arg(long, value_name = "PLAN")]
    plan: Option<String>,
    /// Only events from this time on (`2026-01-02`, `2026-01-02T10:00`,
    /// RFC 3339) or this age on (`2h`: the last two hours).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Print the numbers as one JSON document (fields: see below).
    #[arg(long)]
    json: bool,
    /// Write the timeline picture as SVG to FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Write an HTML page with the picture and the tables to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let store = super::open()?;
    let filter = Filter {
        plan: args.plan,
        since: args.since,
    };
    let stats = stats::collect(&store, &filter)?;
    if let Some(path) = &args.svg {
        write(path, &picture::svg(&stats))?;
    }
    if let Some(path) = &args.html {
        write(path, &picture::html(&stats))?;
    }
    if args.json {
        return super::print_json(&stats);
    }
    if args.svg.is_none() && args.html.is_none() {
        print!("{}", text::render(&stats));
    }
    Ok(())
}

fn write(path: &std::path::Path, content: &str) -> Result<()> {
    std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))
}
