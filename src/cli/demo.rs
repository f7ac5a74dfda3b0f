//! `git agent demo`: the whole pipeline in a temporary repository.

use anyhow::Result;
use std::path::PathBuf;

use crate::agent::process::catch_interrupts;

/// Run the whole pipeline on a small project with the bundled example agents:
/// plan, parallel implementers, a rejected review and its fix, the merge
/// queue; then show the board and the audit trail.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Make the temporary repository under this directory [default: the system's temp dir].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    crate::demo::run(catch_interrupts(), args.dir.as_deref())?;
    Ok(())
}
