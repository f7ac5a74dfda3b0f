//! The derived snapshot cache under `<git-common-dir>/agent/cache/`.
//!
//! One line per task: `<id> <tip> <task.json>`. An entry is used only while
//! its tip is still the task ref's tip, so the cache can never answer with
//! stale state; anything missing or stale is read from the objects and the
//! file rewritten. Deleting the file loses nothing.

use anyhow::{Context, Result};
use gix::ObjectId;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use super::Store;
use crate::model::task::Task;

const HEADER: &str = "git-agent task cache v1";

fn path(store: &Store) -> PathBuf {
    store.agent_dir().join("cache").join("tasks")
}

/// Every task, in id order.
pub(super) fn load_all(store: &Store) -> Result<Vec<Task>> {
    let refs = store.task_refs()?;
    let file = std::fs::read_to_string(path(store)).unwrap_or_default();
    let cached = parse(&file);
    let mut tasks = Vec::with_capacity(refs.len());
    let mut stale = cached.len() != refs.len();
    let mut lines = Vec::new();
    for (id, tip) in &refs {
        match cached.get(id.as_str()) {
            Some((cached_tip, json)) if cached_tip == tip => {
                if let Ok(task) = serde_json::from_str::<Task>(json) {
                    tasks.push(task);
                    lines.push((id.as_str(), *tip, None));
                    continue;
                }
                stale = true;
            }
            _ => stale = true,
        }
        let task = store.snapshot_at(id, *tip)?;
        lines.push((id.as_str(), *tip, Some(serde_json::to_string(&task)?)));
        tasks.push(task);
    }
    if stale {
        // A cache that cannot be written only costs speed, never correctness.
        let _ = write(store, &lines, &cached);
    }
    Ok(tasks)
}

/// The valid entries of a cache file: id -> (tip, snapshot JSON).
fn parse(file: &str) -> HashMap<&str, (ObjectId, &str)> {
    let mut lines = file.lines();
    if lines.next() != Some(HEADER) {
        return HashMap::new();
    }
    lines
        .filter_map(|line| {
            let (id, rest) = line.split_once(' ')?;
            let (tip, json) = rest.split_once(' ')?;
            Some((id, (ObjectId::from_hex(tip.as_bytes()).ok()?, json)))
        })
        .collect()
}

/// Replace the cache file atomically (write a temporary file, then rename),
/// so a reader never sees half a file. `fresh` holds the JSON of entries
/// that were read from objects; the others are copied from `cached`.
fn write(
    store: &Store,
    lines: &[(&str, ObjectId, Option<String>)],
    cached: &HashMap<&str, (ObjectId, &str)>,
) -> Result<()> {
    let target = path(store);
    let dir = target.parent().expect("the cache file has a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        writeln!(out, "{HEADER}")?;
        for (id, tip, fresh) in lines {
            let json = match fresh {
                Some(json) => json.as_str(),
                None => cached.get(id).map(|(_, j)| *j).unwrap_or("{}"),
            };
            writeln!(out, "{id} {tip} {json}")?;
        }
        out.flush()?;
    }
    tmp.persist(&target)?;
    Ok(())
}
