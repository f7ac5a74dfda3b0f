//! `git agent show`: one task with its whole history.

use anyhow::Result;

use crate::model::board::TaskView;
use crate::model::task::{Event, State};

/// One task with its whole history.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The task (id or unique prefix).
    task: String,
    /// Print `{"task": task, "events": [...]}`, oldest event first.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let store = super::open()?;
    let id = store.resolve(&args.task)?;
    let task = store.load(&id)?.task;
    let events = store.events(&id)?;
    let deps: Vec<(String, Option<State>)> = task
        .depends_on
        .iter()
        .map(|d| (d.clone(), store.load(d).ok().map(|r| r.task.state)))
        .collect();
    let deps_merged = deps.iter().all(|(_, s)| *s == Some(State::Merged));
    let open = task.state == State::Open;
    let view = TaskView {
        task: &task,
        ready: open && deps_merged,
        blocked: open && !deps_merged,
    };
    if args.json {
        return super::print_json(&serde_json::json!({ "task": view, "events": events }));
    }
    let t = view.task;
    // Task text and agent output go to a terminal: control characters
    // (escape sequences) are taken out of the whole page.
    let mut page = String::new();
    macro_rules! say {
        ($($arg:tt)*) => {{
            page.push_str(&format!($($arg)*));
            page.push('\n');
        }};
    }
    say!("{}  {}", t.id, t.title);
    let derived = if view.ready {
        " (ready)"
    } else if view.blocked {
        " (blocked)"
    } else {
        ""
    };
    say!(
        "state: {}{derived}   {}   priority: {}",
        t.state,
        t.attempt_words(),
        t.priority
    );
    if let Some(plan) = &t.plan {
        say!("plan: {plan}");
    }
    for (dep, state) in &deps {
        say!(
            "depends on: {dep} ({})",
            state.map_or("missing", |s| s.as_str())
        );
    }
    for (label, value) in [
        ("assignee", &t.assignee),
        ("branch", &t.branch),
        ("base", &t.base),
        ("head", &t.head),
        ("reason", &t.reason),
    ] {
        if let Some(value) = value {
            say!("{label}: {value}");
        }
    }
    if let Some(later) = unmerged_after(&store, t)? {
        say!("{later}");
    }
    if !t.scope.is_empty() {
        say!("scope: {}", t.scope.join(", "));
    }
    if !t.labels.is_empty() {
        say!("labels: {}", t.labels.join(", "));
    }
    if !t.spec.trim().is_empty() {
        say!("\n{}", indent(t.spec.trim_end()));
    }
    say!("\nhistory:");
    for e in &events {
        say!("  {}", event_line(e));
    }
    print!("{}", crate::model::text::printable(&page));
    Ok(())
}

/// One line for an event: when, what, who, its gist, and what the agent
/// used (tokens, cost) where it reported it.
pub fn event_line(e: &Event) -> String {
    let data = serde_json::to_value(&e.change)
        .ok()
        .and_then(|v| v.get("data").cloned());
    let gist = data.as_ref().map(gist).unwrap_or_default();
    let usage = data
        .as_ref()
        .and_then(|d| d.get("usage").cloned())
        .and_then(|u| serde_json::from_value::<crate::model::usage::Usage>(u).ok())
        .map(|u| format!("  [{}]", u.describe()))
        .unwrap_or_default();
    format!(
        "{}  {:<18} {:<12} {}  {}{usage}",
        e.at,
        e.change.kind(),
        e.role,
        e.actor,
        super::one_line(&gist, 80)
    )
}

/// The interesting values of an event's data, as `key=value` pairs.
fn gist(data: &serde_json::Value) -> String {
    let Some(map) = data.as_object() else {
        return String::new();
    };
    // What decided the event first; the rest after.
    const FIRST: [&str; 4] = ["verdict", "resolution", "reason", "assignee"];
    let mut fields: Vec<(&String, &serde_json::Value)> = map.iter().collect();
    fields.sort_by_key(|(k, _)| FIRST.iter().position(|f| f == k).unwrap_or(FIRST.len()));
    fields
        .into_iter()
        .filter(|(k, v)| !v.is_null() && !["spec", "log_tail", "usage"].contains(&k.as_str()))
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// For a merged task whose branch moved on after the approved head was
/// merged: which head was merged, and how many later commits were not.
fn unmerged_after(
    store: &crate::store::Store,
    t: &crate::model::task::Task,
) -> Result<Option<String>> {
    let (State::Merged, Some(branch), Some(head)) = (t.state, &t.branch, &t.head) else {
        return Ok(None);
    };
    let branch_ref = format!("refs/heads/{branch}");
    if store.find_ref(&branch_ref)?.is_none() {
        return Ok(None);
    }
    let later = crate::git::commits_in(store.work_dir(), &[&branch_ref], &[head])?;
    if later.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "merged {}; {} on {branch} after it {} not merged (review them: git agent review {branch} --base {})",
        short(head),
        crate::model::text::count(later.len(), "later commit"),
        if later.len() == 1 { "was" } else { "were" },
        short(head)
    )))
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
