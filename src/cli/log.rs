//! `git agent log`: the event timeline across tasks, or of one.

use anyhow::Result;
use serde::Serialize;

use crate::model::task::Event;

/// The event timeline across tasks (or of one), oldest first.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only this task (id or unique prefix).
    task: Option<String>,
    /// Print `[event, ...]`, each with its `task` id.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct TaskEvent {
    task: String,
    #[serde(flatten)]
    event: Event,
}

pub fn run(args: Args) -> Result<()> {
    let store = super::open()?;
    let ids: Vec<String> = match &args.task {
        Some(prefix) => vec![store.resolve(prefix)?],
        None => store.task_refs()?.into_iter().map(|(id, _)| id).collect(),
    };
    let mut timeline = Vec::new();
    for id in ids {
        for event in store.events(&id)? {
            timeline.push(TaskEvent {
                task: id.clone(),
                event,
            });
        }
    }
    timeline.sort_by(|a, b| {
        (&a.event.at, a.event.lamport, &a.task).cmp(&(&b.event.at, b.event.lamport, &b.task))
    });
    if args.json {
        return super::print_json(&timeline);
    }
    for e in &timeline {
        println!("{}  {}", e.task, super::show::event_line(&e.event));
    }
    Ok(())
}
