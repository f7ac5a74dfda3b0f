//! Plan files: parse, validate, and locate every fault by file, line and field.
//!
//! [`super::yaml`] reports a line for syntax errors, unknown fields and wrong
//! types; the checks it cannot make (empty or duplicate keys, dangling dependencies,
//! cycles) find their line with [`Lines`], a scan of the block-style text.

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use super::task::DEFAULT_PRIORITY;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    #[serde(default)]
    goal: Option<String>,
    tasks: Vec<TaskEntry>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct TaskEntry {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    spec: Option<String>,
    #[serde(default)]
    scope: Vec<String>,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    max_attempts: Option<u32>,
}

/// A dependency of a planned task: another task of the same plan (by index)
/// or a task that exists already (by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dependency {
    InPlan(usize),
    Existing(String),
}

/// One validated task of a plan, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTask {
    pub key: String,
    pub title: String,
    pub spec: String,
    pub scope: Vec<String>,
    pub priority: i64,
    pub depends_on: Vec<Dependency>,
    pub labels: Vec<String>,
    /// `None`: the team's default (`roles.implementer.max_attempts`).
    pub max_attempts: Option<u32>,
}

/// A plan that passed every check and can be stored as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub goal: Option<String>,
    pub tasks: Vec<PlannedTask>,
}

/// Why a plan was refused: where, which field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PlanError {
    pub file: String,
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.field, self.message
        )
    }
}

/// Parse and validate a plan. `existing` resolves a name that is not a key of
/// this plan to the id of a task that exists already (or `None`).
pub fn parse(
    file: &str,
    text: &str,
    existing: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, PlanError> {
    let lines = Lines::new(text);
    let fault = |line: usize, field: &str, message: String| PlanError {
        file: file.to_string(),
        line,
        field: field.to_string(),
        message,
    };
    let parsed: PlanFile = super::yaml::parse(text, &["goal", "tasks"])
        .map_err(|e| fault(e.line, &e.field, e.message))?;

    let mut keys: HashMap<String, usize> = HashMap::new();
    let mut tasks = Vec::with_capacity(parsed.tasks.len());
    for (i, entry) in parsed.tasks.iter().enumerate() {
        let key = entry.key.as_deref().map(str::trim).unwrap_or("");
        if key.is_empty() {
            return Err(fault(
                lines.field(i, "key"),
                &format!("tasks[{i}].key"),
                "missing or empty; every task needs a key".into(),
            ));
        }
        let title = super::text::title(entry.title.as_deref().unwrap_or("")).map_err(|e| {
            fault(
                lines.field(i, "title"),
                &format!("task \"{key}\": title"),
                e,
            )
        })?;
        if title.is_empty() {
            return Err(fault(
                lines.field(i, "title"),
                &format!("task \"{key}\": title"),
                "missing or empty".into(),
            ));
        }
        if let Some(first) = keys.insert(key.to_string(), i) {
            return Err(fault(
                lines.field(i, "key"),
                &format!("task \"{key}\": key"),
                format!(
                    "duplicate key; tasks[{first}] (line {}) has it already",
                    lines.field(first, "key")
                ),
            ));
        }
        if entry.max_attempts == Some(0) {
            return Err(fault(
                lines.field(i, "max_attempts"),
                &format!("task \"{key}\": max_attempts"),
                "must be at least 1".into(),
            ));
        }
        tasks.push(PlannedTask {
            key: key.to_string(),
            title,
            spec: entry.spec.clone().unwrap_or_default(),
            scope: entry.scope.clone(),
            priority: entry.priority.unwrap_or(DEFAULT_PRIORITY),
            depends_on: Vec::new(),
            labels: entry.labels.clone(),
            max_attempts: entry.max_attempts,
        });
    }

    for (i, entry) in parsed.tasks.iter().enumerate() {
        let mut deps = Vec::new();
        for name in &entry.depends_on {
            let dep = match keys.get(name.as_str()) {
                Some(&j) => Dependency::InPlan(j),
                None => match existing(name) {
                    Some(id) => Dependency::Existing(id),
                    None => {
                        return Err(fault(
                            lines.field(i, "depends_on"),
                            &format!("task \"{}\": depends_on", tasks[i].key),
                            format!(
                            "names \"{name}\", which is not a key in this plan or an existing task"
                        ),
                        ))
                    }
                },
            };
            if !deps.contains(&dep) {
                deps.push(dep);
            }
        }
        tasks[i].depends_on = deps;
    }

    if let Some(cycle) = find_cycle(&tasks) {
        let path: Vec<&str> = cycle.iter().map(|&i| tasks[i].key.as_str()).collect();
        return Err(fault(
            lines.field(cycle[0], "depends_on"),
            &format!("task \"{}\": depends_on", tasks[cycle[0]].key),
            format!("dependency cycle: {}", path.join(" -> ")),
        ));
    }
    Ok(Plan {
        goal: parsed.goal.filter(|g| !g.trim().is_empty()),
        tasks,
    })
}

/// A cycle among in-plan dependencies as the path of task indexes, first
/// task repeated at the end (`a -> b -> a`), or `None`.
fn find_cycle(tasks: &[PlannedTask]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; tasks.len()];
    for start in 0..tasks.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // Iterative DFS: (task, next dependency to look at).
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::OnPath;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            let deps = &tasks[node].depends_on;
            let Some(dep) = deps.get(*next) else {
                mark[node] = Mark::Done;
                path.pop();
                continue;
            };
            *next += 1;
            let Dependency::InPlan(j) = *dep else {
                continue;
            };
            match mark[j] {
                Mark::OnPath => {
                    let from = path
                        .iter()
                        .position(|&(n, _)| n == j)
                        .expect("j is on the path");
                    let mut cycle: Vec<usize> = path[from..].iter().map(|&(n, _)| n).collect();
                    cycle.push(j);
                    return Some(cycle);
                }
                Mark::New => {
                    mark[j] = Mark::OnPath;
                    path.push((j, 0));
                }
                Mark::Done => {}
            }
        }
    }
    None
}

/// Line numbers of task entries and their fields in block-style YAML.
struct Lines {
    /// For each task entry: its first line and its fields' lines by name.
    tasks: Vec<(usize, BTreeMap<String, usize>)>,
    tasks_line: usize,
}

impl Lines {
    fn new(text: &str) -> Lines {
        let mut tasks: Vec<(usize, BTreeMap<String, usize>)> = Vec::new();
        let mut tasks_line = 1;
        let mut item_indent: Option<usize> = None;
        let mut in_tasks = false;
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let line = raw.split(" #").next().unwrap_or(raw);
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if indent == 0 {
                in_tasks = trimmed.starts_with("tasks:");
                if in_tasks {
                    tasks_line = line_no;
                }
                continue;
            }
            if !in_tasks {
                continue;
            }
            let (indent, rest) = match trimmed
                .strip_prefix("- ")
                .or(trimmed.strip_prefix('-').filter(|r| r.is_empty()))
            {
                Some(rest) if item_indent.is_none_or(|i| i == indent) => {
                    item_indent = Some(indent);
                    tasks.push((line_no, BTreeMap::new()));
                    let rest_trim = rest.trim_start();
                    (indent + 2 + (rest.len() - rest_trim.len()), rest_trim)
                }
                _ => (indent, trimmed),
            };
            let _ = indent;
            if let (Some((_, fields)), Some((name, _))) = (tasks.last_mut(), rest.split_once(':')) {
                let name = name.trim();
                if !name.is_empty() && !name.contains(' ') {
                    fields.entry(name.to_string()).or_insert(line_no);
                }
            }
        }
        Lines { tasks, tasks_line }
    }

    /// The line of `field` in task `i`, else the task's first line, else the
    /// `tasks:` line.
    fn field(&self, i: usize, field: &str) -> usize {
        match self.tasks.get(i) {
            Some((start, fields)) => fields.get(field).copied().unwrap_or(*start),
            None => self.tasks_line,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_existing(_: &str) -> Option<String> {
        None
    }

    fn refuse(text: &str) -> PlanError {
        parse("plan.yaml", text, &no_existing).expect_err("plan should be refused")
    }

    const GOOD: &str = "goal: Add a verbose mode
tasks:
  - key: flag
    title: Add a --verbose flag
    spec: |
      Parse --verbose.
    scope: [src/cli.rs]
    priority: 1
  - key: logging
    title: Log each step when verbose
    depends_on: [flag]
";

    #[test]
    fn a_good_plan_parses_in_file_order() {
        let plan = parse("plan.yaml", GOOD, &no_existing).unwrap();
        assert_eq!(plan.goal.as_deref(), Some("Add a verbose mode"));
        assert_eq!(plan.tasks.len(), 2);
        assert_eq!(plan.tasks[0].priority, 1);
        assert_eq!(plan.tasks[1].priority, DEFAULT_PRIORITY);
        assert_eq!(plan.tasks[1].depends_on, vec![Dependency::InPlan(0)]);
        assert_eq!(plan.tasks[0].spec, "Parse --verbose.\n");
    }

    #[test]
    fn yaml_that_does_not_parse_names_its_line() {
        let e = refuse("tasks:\n  - key: a\n    title: [unclosed\n");
        assert_eq!(e.file, "plan.yaml");
        assert!(e.line >= 3, "{e}");
    }

    #[test]
    fn unknown_field_is_named_with_its_line() {
        let e = refuse("tasks:\n  - key: a\n    title: A\n    colour: red\n");
        assert_eq!(e.line, 4, "{e}");
        assert!(e.field.contains("colour"), "{e}");
    }

    #[test]
    fn missing_key_and_empty_title_are_refused() {
        let e = refuse("tasks:\n  - title: A\n");
        assert_eq!((e.line, e.field.as_str()), (2, "tasks[0].key"), "{e}");
        let e = refuse("tasks:\n  - key: a\n    title: \"\"\n");
        assert_eq!(e.line, 3, "{e}");
        assert!(e.field.ends_with("title"), "{e}");
    }

    #[test]
    fn duplicate_key_names_both_lines() {
        let e = refuse("tasks:\n  - key: a\n    title: A\n  - key: a\n    title: B\n");
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("line 2"), "{e}");
    }

    #[test]
    fn dangling_dependency_is_refused_and_existing_ids_are_accepted() {
        let text = "tasks:\n  - key: a\n    title: A\n    depends_on: [t-zzzzzz]\n";
        let e = refuse(text);
        assert_eq!(
            (e.line, e.field.as_str()),
            (4, "task \"a\": depends_on"),
            "{e}"
        );
        assert!(e.message.contains("\"t-zzzzzz\""), "{e}");
        let known = |n: &str| (n == "t-zzzzzz").then(|| n.to_string());
        let plan = parse("p", text, &known).unwrap();
        assert_eq!(
            plan.tasks[0].depends_on,
            vec![Dependency::Existing("t-zzzzzz".into())]
        );
    }

    #[test]
    fn a_cycle_is_printed_as_a_path() {
        let e = refuse(
            "tasks:\n  - key: flag\n    title: F\n    depends_on: [logging]\n  - key: logging\n    title: L\n    depends_on: [flag]\n",
        );
        assert_eq!(
            e.message, "dependency cycle: flag -> logging -> flag",
            "{e}"
        );
        assert_eq!(e.line, 4, "{e}");
        let e = refuse("tasks:\n  - key: a\n    title: A\n    depends_on: [a]\n");
        assert_eq!(e.message, "dependency cycle: a -> a");
    }

    #[test]
    fn a_long_chain_is_no_cycle() {
        let mut text = String::from("tasks:\n");
        for i in 0..5000 {
            text.push_str(&format!("  - key: k{i}\n    title: T\n"));
            if i > 0 {
                text.push_str(&format!("    depends_on: [k{}]\n", i - 1));
            }
        }
        assert_eq!(parse("p", &text, &no_existing).unwrap().tasks.len(), 5000);
    }
}
