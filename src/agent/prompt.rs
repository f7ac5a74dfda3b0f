//! The prompt an implementer receives, built from the task and its history,
//! so that an interactive session (`git agent context`) and a run see the
//! same text.

use crate::model::task::{Change, Event, Task, Verdict};

/// Feedback from earlier attempts: every failure, change request and
/// integration failure, oldest first, verbatim.
pub fn feedback(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| {
            let text = match &e.change {
                Change::Failed { reason, log_tail } => match log_tail {
                    Some(tail) => format!("failed: {reason}\n{tail}"),
                    None => format!("failed: {reason}"),
                },
                Change::Reviewed {
                    verdict: Verdict::Changes,
                    summary,
                    ..
                } => format!(
                    "review asked for changes:\n{}",
                    summary.as_deref().unwrap_or("(no summary)")
                ),
                Change::IntegrationFailed { reason, detail } => match detail {
                    Some(d) => format!("integration failed: {reason}\n{d}"),
                    None => format!("integration failed: {reason}"),
                },
                Change::Resolved {
                    message: Some(m), ..
                } => format!("a human answered: {m}"),
                _ => return None,
            };
            Some(format!("Attempt {} ({}): {text}", e.attempt, e.actor))
        })
        .collect()
}

/// The implementer's prompt for `task`. `deps` pairs each dependency id with
/// its title, where known.
pub fn implementer(
    task: &Task,
    deps: &[(String, Option<String>)],
    events: &[Event],
    target: &str,
) -> String {
    let mut p = String::new();
    p.push_str(&format!("# Task {}: {}\n\n", task.id, task.title));
    p.push_str(
        "You are the implementer. Make the change this task asks for, in this worktree.\n\n",
    );
    if !task.spec.trim().is_empty() {
        p.push_str("## Spec\n\n");
        p.push_str(task.spec.trim_end());
        p.push_str("\n\n");
    }
    if !task.scope.is_empty() {
        p.push_str("## Scope\n\nThe task expects to touch: ");
        p.push_str(&task.scope.join(", "));
        p.push_str("\n\n");
    }
    if !deps.is_empty() {
        p.push_str("## Builds on\n\n");
        for (id, title) in deps {
            p.push_str(&format!(
                "- {id}: {}\n",
                title.as_deref().unwrap_or("(unknown task)")
            ));
        }
        p.push('\n');
    }
    let feedback = feedback(events);
    if !feedback.is_empty() {
        p.push_str("## Feedback from earlier attempts\n\n");
        for f in &feedback {
            p.push_str(f.trim_end());
            p.push_str("\n\n");
        }
    }
    let attempt = task.attempts + 1;
    p.push_str("## How to work\n\n");
    p.push_str(&format!(
        "- This is attempt {attempt} of {}.\n- Work on branch `agent/{}`, based on `{target}`.\n\
         - Commit your changes with clear messages; uncommitted changes are committed for you.\n\
         - When you are done, exit 0 (or, in an interactive session, run `git agent submit {}`).\n\
         - If you cannot do the task, exit non-zero and say why on stderr.\n",
        task.max_attempts, task.id, task.id
    ));
    p
}
