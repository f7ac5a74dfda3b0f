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
                Change::Failed {
                    reason, log_tail, ..
                } => match log_tail {
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
                Change::IntegrationFailed { reason, detail, .. } => match detail {
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

/// The prompt for `role`: the user's template from
/// `<root>/.git-agent/prompts/<role>.md` if there is one, with `{{name}}`
/// replaced by the matching variable, else `built_in`.
pub fn with_override(
    root: Option<&std::path::Path>,
    role: &str,
    built_in: String,
    vars: &[(&str, String)],
) -> String {
    let template = root
        .map(|r| {
            r.join(".git-agent")
                .join("prompts")
                .join(format!("{role}.md"))
        })
        .and_then(|path| std::fs::read_to_string(path).ok());
    match template {
        Some(template) => render(&template, vars),
        None => built_in,
    }
}

/// Replace every `{{name}}` in `template` with its variable; unknown names
/// stay as they are, so a typo shows in the prompt instead of vanishing.
pub fn render(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (name, value) in vars {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    out
}

/// The variables a template can use for a task.
pub fn task_vars(task: &Task, feedback: &[String], target: &str) -> Vec<(&'static str, String)> {
    vec![
        ("id", task.id.clone()),
        ("title", task.title.clone()),
        ("spec", task.spec.clone()),
        ("scope", task.scope.join(", ")),
        ("attempt", (task.attempts + 1).to_string()),
        ("max_attempts", task.max_attempts.to_string()),
        ("branch", format!("agent/{}", task.id)),
        ("target", target.to_string()),
        ("feedback", feedback.join("\n\n")),
    ]
}

/// The planner's prompt: the goal, a picture of the repository, the tasks
/// already open, the plan format, and (on a second try) why the first plan
/// was refused.
pub fn planner(goal: &str, picture: &str, open_tasks: &[Task], refusal: Option<&str>) -> String {
    let mut p = format!("# Plan this goal\n\n{goal}\n\n");
    p.push_str("You are the planner. Break the goal into small tasks that implementers can do in parallel, each in its own branch. ");
    p.push_str("Say which tasks depend on which; keep tasks that touch the same files apart with depends_on or scope.\n\n");
    p.push_str("## The repository\n\n");
    p.push_str(picture.trim_end());
    p.push_str("\n\n");
    if !open_tasks.is_empty() {
        p.push_str("## Tasks that exist already (a task may depend on them by id)\n\n");
        for t in open_tasks {
            p.push_str(&format!("- {} [{}]: {}\n", t.id, t.state, t.title));
        }
        p.push('\n');
    }
    p.push_str(PLAN_FORMAT);
    if let Some(refusal) = refusal {
        p.push_str("\n## Your previous plan was refused\n\n");
        p.push_str(refusal);
        p.push_str("\n\nWrite the whole plan again with this fixed.\n");
    }
    p
}

const PLAN_FORMAT: &str = "## What to return

Write the plan as YAML to the file named by $GIT_AGENT_OUTPUT, or print it as the last ```yaml block:

```yaml
goal: <the goal, one line>
tasks:
  - key: <short unique name>
    title: <one line>
    spec: |
      <what to do, precisely, with acceptance criteria>
    scope: [<paths the task expects to touch>]
    priority: 2            # lower runs first
    depends_on: [<keys of this plan, or ids of existing tasks>]
```

Allowed task fields: key, title, spec, scope, priority, depends_on, labels, max_attempts. Nothing else.
";

/// The plan YAML in a planner's result: the output file if it wrote one,
/// else the last fenced yaml block of what it printed, else all of it.
pub fn plan_text(output: Option<&str>, printed: &str) -> String {
    if let Some(output) = output {
        return output.to_string();
    }
    let mut last = None;
    let mut rest = printed;
    while let Some(start) = rest.find("```yaml").or_else(|| rest.find("```yml")) {
        let body = &rest[start..];
        let body = &body[body.find('\n').map_or(body.len(), |i| i + 1)..];
        match body.find("```") {
            Some(end) => {
                last = Some(body[..end].to_string());
                rest = &body[end + 3..];
            }
            None => break,
        }
    }
    last.unwrap_or_else(|| printed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_yaml_block_is_the_plan() {
        let printed =
            "thinking\n```yaml\ntasks: [old]\n```\nbetter:\n```yaml\ntasks: []\n```\ndone\n";
        assert_eq!(plan_text(None, printed), "tasks: []\n");
        assert_eq!(plan_text(Some("x: 1"), printed), "x: 1");
        assert_eq!(plan_text(None, "tasks: []"), "tasks: []");
    }

    #[test]
    fn templates_replace_known_names_and_keep_unknown_ones() {
        let vars = [("id", "t-1".to_string())];
        assert_eq!(render("do {{id}} {{nope}}", &vars), "do t-1 {{nope}}");
    }
}
