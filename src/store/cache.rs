//! The derived snapshot cache under `<git-common-dir>/agent/cache/`.
//!
//! One line per task, in id order:
//!
//! ```text
//! <id> <tip> <state> <priority> <seq> <created_at> <depends_on> <task.json>
//! ```
//!
//! `depends_on` is the ids joined by commas (`-` for none) and `task.json`
//! the snapshot as compact JSON. The fields before the JSON are what the
//! board needs, so `ready` and `status` read 10,000 tasks without parsing
//! 10,000 snapshots. An entry is used only while its tip is still the task
//! ref's tip, so the cache can never answer with stale state; anything
//! missing or stale is read from the objects and the file rewritten, whole
//! and atomically. Deleting the file loses nothing.

use anyhow::{Context, Result};
use gix::ObjectId;
use std::io::Write;
use std::path::PathBuf;

use super::Store;
use crate::model::task::{Standing, State, Summary, Task};

const HEADER: &str = "git-agent task cache v2";

/// A task as the board reads it: its summary and its snapshot as one
/// compact JSON object, exactly as `serde_json::to_string` writes the
/// [`Task`], so that `--json` output can copy it without parsing it.
#[derive(Debug, Clone)]
pub struct TaskJson {
    pub summary: Summary,
    /// The event commit the snapshot was read from.
    pub tip: ObjectId,
    json: String,
}

impl TaskJson {
    /// The summary and JSON of `task`, read from commit `tip`.
    pub fn of(task: &Task, tip: ObjectId) -> Result<TaskJson> {
        Ok(TaskJson {
            summary: Summary::of(task),
            tip,
            json: serde_json::to_string(task).context("serializing a task")?,
        })
    }

    /// The snapshot as one compact JSON object (`{...}`, never anything else).
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The full snapshot.
    pub fn task(&self) -> Result<Task> {
        serde_json::from_str(&self.json).with_context(|| {
            format!(
                "task {}: the cached snapshot is not a task",
                self.summary.id
            )
        })
    }
}

impl Standing for TaskJson {
    fn id(&self) -> &str {
        &self.summary.id
    }
    fn state(&self) -> State {
        self.summary.state
    }
    fn depends_on(&self) -> &[String] {
        &self.summary.depends_on
    }
    fn start_key(&self) -> (i64, &str, u64, &str) {
        self.summary.start_key()
    }
}

fn path(store: &Store) -> PathBuf {
    store.agent_dir().join("cache").join("tasks")
}

/// Every task, in id order.
pub(super) fn load(store: &Store) -> Result<Vec<TaskJson>> {
    let refs = store.task_refs()?;
    let file = std::fs::read_to_string(path(store)).unwrap_or_default();
    // Lines and refs are both in id order: walk them side by side.
    let mut lines = parse(&file).peekable();
    let mut stale = false;
    let mut tasks = Vec::with_capacity(refs.len());
    for (id, tip) in &refs {
        while lines.next_if(|line| line.id < id.as_str()).is_some() {
            stale = true; // a task that is gone
        }
        let cached = lines
            .next_if(|line| line.id == id)
            .filter(|line| line.tip == *tip)
            .and_then(|line| line.entry());
        let task = match cached {
            Some(task) => task,
            None => {
                stale = true;
                TaskJson::of(&store.snapshot_at(id, *tip)?, *tip)?
            }
        };
        tasks.push(task);
    }
    if stale || lines.next().is_some() {
        // A cache that cannot be written only costs speed, never correctness.
        let _ = write(store, &tasks);
    }
    Ok(tasks)
}

/// One line of the cache file, split no further than its id and tip.
struct Line<'a> {
    id: &'a str,
    tip: ObjectId,
    rest: &'a str,
}

/// The lines of a cache file, in file order; none if it is not a cache file
/// of this version.
fn parse(file: &str) -> impl Iterator<Item = Line<'_>> {
    let mut lines = file.lines();
    let current = lines.next() == Some(HEADER);
    lines.take_while(move |_| current).filter_map(|line| {
        let (id, rest) = line.split_once(' ')?;
        let (tip, rest) = rest.split_once(' ')?;
        let tip = ObjectId::from_hex(tip.as_bytes()).ok()?;
        Some(Line { id, tip, rest })
    })
}

impl Line<'_> {
    /// The entry this line holds; `None` if the line is damaged (the task is
    /// then read from its objects).
    fn entry(&self) -> Option<TaskJson> {
        let mut fields = self.rest.splitn(6, ' ');
        let state = State::parse(fields.next()?)?;
        let priority = fields.next()?.parse().ok()?;
        let seq = fields.next()?.parse().ok()?;
        let created_at = fields.next()?.to_string();
        let depends_on = match fields.next()? {
            "-" => Vec::new(),
            ids => ids.split(',').map(String::from).collect(),
        };
        let json = fields.next()?;
        // Our writer starts every snapshot with its id: a line cut short or
        // spliced into another fails here rather than reaching the output.
        let starts_with_id = json
            .strip_prefix("{\"id\":\"")
            .and_then(|rest| rest.strip_prefix(self.id))
            .is_some_and(|rest| rest.starts_with('"'));
        if !starts_with_id || !json.ends_with('}') {
            return None;
        }
        Some(TaskJson {
            summary: Summary {
                id: self.id.to_string(),
                state,
                priority,
                created_at,
                seq,
                depends_on,
            },
            tip: self.tip,
            json: json.to_string(),
        })
    }
}

/// Whether `text` can stand as one field of a cache line (or one id of a
/// comma-separated list), and as an id needs no escaping in JSON. Tasks
/// git-agent writes always qualify; a task whose fields do not is simply not
/// cached.
fn is_field(text: &str) -> bool {
    !text.is_empty() && !text.contains(|c: char| c.is_whitespace() || matches!(c, ',' | '"' | '\\'))
}

/// Replace the cache file atomically (write a temporary file, then rename),
/// so a reader never sees half a file.
fn write(store: &Store, tasks: &[TaskJson]) -> Result<()> {
    let target = path(store);
    let dir = target.parent().expect("the cache file has a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        writeln!(out, "{HEADER}")?;
        for task in tasks {
            let s = &task.summary;
            if !(is_field(&s.id)
                && is_field(&s.created_at)
                && s.depends_on.iter().all(|d| is_field(d)))
            {
                continue;
            }
            let depends_on = match s.depends_on.join(",") {
                none if none.is_empty() => "-".to_string(),
                ids => ids,
            };
            writeln!(
                out,
                "{} {} {} {} {} {} {depends_on} {}",
                s.id,
                task.tip,
                s.state.as_str(),
                s.priority,
                s.seq,
                s.created_at,
                task.json
            )?;
        }
        out.flush()?;
    }
    tmp.persist(&target)?;
    Ok(())
}
