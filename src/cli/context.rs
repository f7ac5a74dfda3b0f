//! `git agent context`: the prompt and context of a task, so that an
//! interactive agent session can take part by hand.

use anyhow::Result;

use crate::agent::prompt;

/// Print the prompt and context an implementer would get for a task.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The task (id or unique prefix).
    task: String,
    /// Print `{"task": task, "prompt": text, "feedback": [...]}`.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let store = super::open()?;
    let id = store.resolve(&args.task)?;
    let task = store.load(&id)?.task;
    let events = store.events(&id)?;
    let deps: Vec<(String, Option<String>)> = task
        .depends_on
        .iter()
        .map(|d| (d.clone(), store.load(d).ok().map(|r| r.task.title)))
        .collect();
    let target = crate::agent::config::team(&store)?.target;
    let text = prompt::implementer(&task, &deps, &events, &target);
    if args.json {
        let feedback = prompt::feedback(&events);
        return super::print_json(
            &serde_json::json!({ "task": task, "prompt": text, "feedback": feedback }),
        );
    }
    print!("{text}");
    Ok(())
}
