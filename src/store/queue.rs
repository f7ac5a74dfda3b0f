//! The queue of work that hooks hand to `git agent run`:
//! `<git-common-dir>/agent/queue/`, one JSON file per event.
//!
//! A file is named `<kind>-<key>.json` (`review-<commit>.json`), so the same
//! event fired twice is queued once: the second `enqueue` finds the file and
//! writes nothing. Files appear whole (written aside, then linked into place
//! without replacing anything), so a reader never sees half an event. The
//! queue is local and derived: deleting it loses work not yet started, never
//! history.
//!
//! A drainer calls [`list`], does the work of each item (idempotently: a
//! crash between the work and [`remove`] runs it again), then [`remove`]s it.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::model::id;

/// One queued event, as [`list`] reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    /// What to do: `review`, `merge`, … (`[a-z0-9-]`).
    pub kind: String,
    /// What makes the event unique within its kind, e.g. the commit id.
    pub key: String,
    /// When it was queued (RFC 3339, UTC).
    pub queued_at: String,
    /// What the drainer needs to do the work, e.g. `{"task","branch","commit"}`.
    pub payload: serde_json::Value,
}

/// `<agent_dir>/queue`.
pub fn dir(agent_dir: &Path) -> PathBuf {
    agent_dir.join("queue")
}

fn file(agent_dir: &Path, kind: &str, key: &str) -> PathBuf {
    dir(agent_dir).join(format!("{kind}-{key}.json"))
}

/// Queue event `kind`/`key` with `payload`. Returns `false` (and writes
/// nothing) if that event is queued already. Refuses a kind or key outside
/// `[a-z0-9-]`, which could otherwise escape the queue directory.
pub fn enqueue(
    agent_dir: &Path,
    kind: &str,
    key: &str,
    payload: &serde_json::Value,
) -> Result<bool> {
    for (what, name) in [("kind", kind), ("key", key)] {
        if !id::is_valid_name(name) {
            bail!("queue {what} \"{name}\" is not made of [a-z0-9-]");
        }
    }
    let target = file(agent_dir, kind, key);
    if target.exists() {
        return Ok(false);
    }
    let queue = dir(agent_dir);
    std::fs::create_dir_all(&queue).with_context(|| format!("creating {}", queue.display()))?;
    let item = Queued {
        kind: kind.to_string(),
        key: key.to_string(),
        queued_at: super::now(),
        payload: payload.clone(),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".queued-")
        .tempfile_in(&queue)
        .with_context(|| format!("writing in {}", queue.display()))?;
    serde_json::to_writer_pretty(&mut temp, &item)?;
    temp.write_all(b"\n")?;
    match temp.persist_noclobber(&target) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e.error).with_context(|| format!("writing {}", target.display())),
    }
}

/// Every queued event, oldest first (ties in name order). Files that are not
/// queue items (temp files, anything unreadable) are skipped; a missing
/// queue directory is an empty queue.
pub fn list(agent_dir: &Path) -> Result<Vec<Queued>> {
    let queue = dir(agent_dir);
    let entries = match std::fs::read_dir(&queue) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", queue.display())),
    };
    let mut items: Vec<(String, Queued)> = Vec::new();
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let Ok(text) = std::fs::read(queue.join(&name)) else {
            continue;
        };
        if let Ok(item) = serde_json::from_slice::<Queued>(&text) {
            items.push((name, item));
        }
    }
    items.sort_by(|(a_name, a), (b_name, b)| (&a.queued_at, a_name).cmp(&(&b.queued_at, b_name)));
    Ok(items.into_iter().map(|(_, item)| item).collect())
}

/// Take `item` off the queue. Removing what is gone already (another drainer
/// took it) is not an error.
pub fn remove(agent_dir: &Path, item: &Queued) -> Result<()> {
    let path = file(agent_dir, &item.kind, &item.key);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_same_event_is_queued_once_and_removed_once() {
        let tmp = tempfile::tempdir().unwrap();
        let payload = json!({"task": "t-abc", "commit": "0123abcd"});
        assert!(enqueue(tmp.path(), "review", "0123abcd", &payload).unwrap());
        assert!(!enqueue(tmp.path(), "review", "0123abcd", &payload).unwrap());
        assert!(enqueue(tmp.path(), "review", "4567", &payload).unwrap());
        let items = list(tmp.path()).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].payload, payload);
        remove(tmp.path(), &items[0]).unwrap();
        remove(tmp.path(), &items[0]).unwrap();
        assert_eq!(list(tmp.path()).unwrap().len(), 1);
    }

    #[test]
    fn names_that_could_escape_the_queue_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let e = enqueue(tmp.path(), "review", "../x", &json!({})).unwrap_err();
        assert!(e.to_string().contains("../x"), "{e}");
        assert!(list(tmp.path()).unwrap().is_empty());
    }
}
