//! `git agent task add|edit`: create or change one task by hand.

use anyhow::{bail, Result};

use crate::model::task::{Change, NewTask, TaskEdit, DEFAULT_PRIORITY};
use crate::store::{Draft, Store};

/// Create or change one task by hand.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: TaskCommand,
}

#[derive(clap::Subcommand, Debug)]
enum TaskCommand {
    /// Create a task; prints its id.
    Add(AddArgs),
    /// Change fields of a task; records an `edited` event.
    Edit(EditArgs),
}

#[derive(clap::Args, Debug)]
struct AddArgs {
    /// What the task is, in one line.
    title: String,
    /// What to do, in full.
    #[arg(long, default_value = "")]
    spec: String,
    /// A task that must be merged first (id or unique prefix); repeatable.
    #[arg(long = "depends-on", value_name = "TASK")]
    depends_on: Vec<String>,
    /// A path the task expects to touch; repeatable.
    #[arg(long, value_name = "PATH")]
    scope: Vec<String>,
    /// Lower runs first.
    #[arg(long, default_value_t = DEFAULT_PRIORITY)]
    priority: i64,
    /// A label; repeatable.
    #[arg(long = "label", value_name = "LABEL")]
    labels: Vec<String>,
    /// Failed attempts before the task goes to a human
    /// [default: roles.implementer.max_attempts, else 3].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: Option<u32>,
    /// Print the new task as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct EditArgs {
    /// The task (id or unique prefix).
    task: String,
    #[arg(long)]
    title: Option<String>,
    #[arg(long)]
    spec: Option<String>,
    /// Replace the dependencies with these (repeatable); `--depends-on ''` clears them.
    #[arg(long = "depends-on", value_name = "TASK")]
    depends_on: Option<Vec<String>>,
    /// Replace the scope with these paths (repeatable).
    #[arg(long, value_name = "PATH")]
    scope: Option<Vec<String>>,
    #[arg(long)]
    priority: Option<i64>,
    /// Replace the labels (repeatable).
    #[arg(long = "label", value_name = "LABEL")]
    labels: Option<Vec<String>>,
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: Option<u32>,
}

pub fn run(args: Args) -> Result<()> {
    let store = super::open()?;
    match args.command {
        TaskCommand::Add(add) => run_add(&store, add),
        TaskCommand::Edit(edit) => run_edit(&store, edit),
    }
}

fn run_add(store: &Store, args: AddArgs) -> Result<()> {
    let title =
        crate::model::text::title(&args.title).map_err(|e| anyhow::anyhow!("title: {e}"))?;
    if title.is_empty() {
        bail!("title: must not be empty");
    }
    let new = NewTask {
        title,
        spec: args.spec,
        plan: None,
        depends_on: resolve_all(store, &args.depends_on)?,
        scope: args.scope,
        priority: args.priority,
        labels: args.labels,
        max_attempts: match args.max_attempts {
            Some(n) => n,
            None => super::default_attempts(store)?,
        },
        seq: 0,
    };
    let task = store.create(new, &super::default_actor(), &super::role_or("human"))?;
    if args.json {
        super::print_json(&task)
    } else {
        println!("{}", task.id);
        Ok(())
    }
}

fn run_edit(store: &Store, args: EditArgs) -> Result<()> {
    let id = store.resolve(&args.task)?;
    let depends_on = match args.depends_on {
        Some(deps) => {
            let deps: Vec<String> = deps.into_iter().filter(|d| !d.is_empty()).collect();
            let resolved = resolve_all(store, &deps)?;
            if let Some(path) = cycle_through(store, &id, &resolved)? {
                bail!(
                    "--depends-on: that would make a dependency cycle: {}",
                    path.join(" -> ")
                );
            }
            Some(resolved)
        }
        None => None,
    };
    let edit = TaskEdit {
        title: args
            .title
            .map(|t| crate::model::text::title(&t))
            .transpose()
            .map_err(|e| anyhow::anyhow!("--title: {e}"))?,
        spec: args.spec,
        depends_on,
        scope: args.scope,
        priority: args.priority,
        labels: args.labels,
        max_attempts: args.max_attempts,
    };
    if edit.title.as_deref() == Some("") {
        bail!("--title: must not be empty");
    }
    if edit.is_empty() {
        bail!("nothing to change: name at least one field (see `git agent task edit --help`)");
    }
    let (actor, role) = (super::default_actor(), super::role_or("human"));
    store.update(&id, |_| {
        let draft = Draft {
            change: Change::Edited(edit.clone()),
            actor: actor.clone(),
            role: role.clone(),
        };
        Ok((vec![draft], vec![]))
    })?;
    println!("{id}");
    Ok(())
}

/// Resolve each task name (id or unique prefix) to its full id.
fn resolve_all(store: &Store, names: &[String]) -> Result<Vec<String>> {
    names
        .iter()
        .map(|n| {
            store
                .resolve(n)
                .map_err(|e| anyhow::anyhow!("--depends-on: {e}"))
        })
        .collect()
}

/// The cycle that making `id` depend on `deps` would close, as a path of ids
/// from `id` back to itself, or `None`.
fn cycle_through(store: &Store, id: &str, deps: &[String]) -> Result<Option<Vec<String>>> {
    let tasks = store.load_all()?;
    let depends: std::collections::HashMap<&str, &[String]> = tasks
        .iter()
        .map(|t| (t.id.as_str(), t.depends_on.as_slice()))
        .collect();
    // Depth-first from each new dependency, looking for `id`.
    let mut stack: Vec<Vec<String>> = deps
        .iter()
        .map(|d| vec![id.to_string(), d.clone()])
        .collect();
    let mut seen = std::collections::HashSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("paths are never empty").clone();
        if last == id {
            return Ok(Some(path));
        }
        if !seen.insert(last.clone()) {
            continue;
        }
        for next in depends.get(last.as_str()).copied().unwrap_or_default() {
            let mut longer = path.clone();
            longer.push(next.clone());
            stack.push(longer);
        }
    }
    Ok(None)
}
