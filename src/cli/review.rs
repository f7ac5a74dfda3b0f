//! `git agent review`: run the reviewer on a branch or a task, or record a
//! person's verdict.

use anyhow::Result;

use crate::agent::process::catch_interrupts;
use crate::error::No;
use crate::model::task::Verdict;
use crate::orchestrate::review::{self, PersonVerdict, ReviewOptions, Reviewed, Subject};
use crate::orchestrate::Context;

/// Review `merge-base(target, branch)..branch` and record the verdict as a
/// note on the branch's head commit (and, for a task in review, move it).
/// Exit 0 approve, 1 changes.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("verdict").args(["approve", "request_changes"])))]
pub struct Args {
    /// A branch (anyone's) or any revision, or a task id or unique prefix
    /// [default: the current branch].
    #[arg(value_name = "BRANCH|TASK")]
    what: Option<String>,
    /// Review `REV..branch` instead of `merge-base(target, branch)..branch`.
    #[arg(long, value_name = "REV")]
    base: Option<String>,
    /// Run the reviewer even if it has a verdict on this commit already.
    #[arg(long, conflicts_with = "verdict")]
    again: bool,
    /// Record your own approval; no agent runs.
    #[arg(long)]
    approve: bool,
    /// Record your own request for changes (with -m); no agent runs.
    #[arg(long, requires = "message")]
    request_changes: bool,
    /// What to fix (or, with --approve, a note); it reaches the next attempt verbatim.
    #[arg(short, long, value_name = "MSG", requires = "verdict")]
    message: Option<String>,
    /// Who gives a person's verdict [default: $GIT_AGENT_ACTOR, else user.email, else user@host].
    #[arg(long, requires = "verdict")]
    actor: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let ctx = Context::open(catch_interrupts())?;
    let subject = Subject::parse(&ctx, args.what.as_deref())?;
    let person = (args.approve || args.request_changes).then(|| PersonVerdict {
        reviewer: args.actor.clone().unwrap_or_else(super::default_actor),
        verdict: match args.approve {
            true => Verdict::Approve,
            false => Verdict::Changes,
        },
        summary: args.message.clone().unwrap_or_default(),
    });
    if person.is_none() {
        ctx.check_target()?;
        ctx.check_programs(&["reviewer"])?;
    }
    let options = ReviewOptions {
        base: args.base,
        again: args.again,
        person,
    };
    let reviewed = review::review(&ctx, &subject, &options)?;
    if args.json {
        super::print_json(&reviewed)?;
    } else {
        print!("{}", crate::model::text::printable(&render(&reviewed)));
    }
    match reviewed.verdict {
        Verdict::Approve => Ok(()),
        Verdict::Changes => Err(No(format!(
            "{}: review asked for changes",
            reviewed.task.as_deref().unwrap_or(&reviewed.branch)
        ))
        .into()),
    }
}

/// The verdict line, what happened to the task, and the summary.
fn render(r: &Reviewed) -> String {
    let verdict = match r.verdict {
        Verdict::Approve => "approve",
        Verdict::Changes => "changes",
    };
    let mut out = format!(
        "{verdict}: {} at {} ({} since {}) by {}{}\n",
        r.branch,
        short(&r.head),
        crate::model::text::count(r.commits, "commit"),
        short(&r.base),
        r.reviewer,
        if r.reused {
            format!(" (its verdict of {}; --again to ask again)", r.at)
        } else {
            String::new()
        }
    );
    if let (Some(task), Some(state)) = (&r.task, r.state) {
        out.push_str(&match (&r.unmoved, r.moved) {
            (_, true) => format!("task {task}: {state}\n"),
            (Some(why), false) => format!("task {task} not moved: {why}\n"),
            (None, false) => format!("task {task}: {state}\n"),
        });
    }
    if !r.summary.is_empty() {
        out.push('\n');
        out.push_str(r.summary.trim_end());
        out.push('\n');
    }
    out
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}
