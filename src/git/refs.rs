//! Refs through git's own implementation of the repository's ref format,
//! whichever it is (files or reftable): every write is one `git update-ref
//! --stdin` transaction (`start`, the edits, `prepare`, `commit`), every read
//! one `git for-each-ref`.
//!
//! Why git and not gix: gix 0.90 has no reftable backend (it writes loose
//! files that git never reads in a reftable repository), and its files
//! backend is a second implementation of locking next to git's. git waits
//! for a held lock itself, for `core.filesRefLockTimeout` (files) or
//! `reftable.lockTimeout` (reftable), never breaks one, runs the
//! `reference-transaction` hook and keeps reflogs as the user configured.
//! A transaction is all or nothing in both formats.

use gix::ObjectId;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// One edit of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub name: String,
    pub change: Change,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Create the ref; it must not exist.
    Create(ObjectId),
    /// Move the ref from `old` (which it must still point at) to `new`.
    Update { new: ObjectId, old: ObjectId },
    /// Delete the ref, which must still point at `old`.
    Delete { old: ObjectId },
    /// Move nothing, but fail the transaction unless the ref points at
    /// `old` (`None`: unless it does not exist).
    Verify { old: Option<ObjectId> },
}

impl Edit {
    pub fn create(name: impl Into<String>, new: ObjectId) -> Edit {
        Edit {
            name: name.into(),
            change: Change::Create(new),
        }
    }

    /// Create (`old` is `None`) or update with an expected old value.
    pub fn set(name: impl Into<String>, new: ObjectId, old: Option<ObjectId>) -> Edit {
        Edit {
            name: name.into(),
            change: match old {
                Some(old) => Change::Update { new, old },
                None => Change::Create(new),
            },
        }
    }

    pub fn delete(name: impl Into<String>, old: ObjectId) -> Edit {
        Edit {
            name: name.into(),
            change: Change::Delete { old },
        }
    }

    pub fn verify(name: impl Into<String>, old: Option<ObjectId>) -> Edit {
        Edit {
            name: name.into(),
            change: Change::Verify { old },
        }
    }

    /// The line of `git update-ref --stdin` that carries out this edit.
    fn command(&self) -> String {
        let name = &self.name;
        match &self.change {
            Change::Create(new) => format!("create {name} {new}\n"),
            Change::Update { new, old } => format!("update {name} {new} {old}\n"),
            Change::Delete { old } => format!("delete {name} {old}\n"),
            Change::Verify { old: Some(old) } => format!("verify {name} {old}\n"),
            Change::Verify { old: None } => format!("verify {name}\n"),
        }
    }
}

/// Why a transaction moved nothing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RefError {
    /// A ref no longer has the value the edit expected: someone else moved it.
    #[error("{name} moved: {detail}")]
    Moved { name: String, detail: String },
    /// A ref to be created exists.
    #[error("{name} exists already")]
    Exists { name: String },
    /// A ref to be updated or deleted does not exist.
    #[error("{name} does not exist")]
    Missing { name: String },
    /// Another process holds a lock git needs, for longer than git waits.
    #[error(
        "{} is held by another process (git waited for it and gave up; \
         if no git process runs, the holder crashed: remove the file)",
        lock.display()
    )]
    Locked { lock: PathBuf },
    #[error("git update-ref failed: {0}")]
    Other(String),
}

impl RefError {
    /// Whether a ref was not as the edit expected: moved, there already, or
    /// gone. For edits decided on a fresh read, all three mean a racer
    /// changed the ref in between.
    pub fn is_lost_race(&self) -> bool {
        matches!(
            self,
            RefError::Moved { .. } | RefError::Exists { .. } | RefError::Missing { .. }
        )
    }

    /// What git's message on stderr says went wrong; `common_dir` is where
    /// a reftable repository keeps the lock it names no path of.
    fn of(stderr: &str, common_dir: &Path) -> RefError {
        let line = stderr
            .lines()
            .find(|l| l.starts_with("fatal:") || l.starts_with("error:"))
            .unwrap_or(stderr)
            .trim();
        // "fatal: prepare: cannot lock ref '<name>': <why>"
        let named = line.split_once("cannot lock ref '").and_then(|(_, rest)| {
            let (name, why) = rest.split_once("': ")?;
            Some((name.to_string(), why))
        });
        if let Some((name, why)) = named {
            if why.contains("but expected") {
                return RefError::Moved {
                    name,
                    detail: why.to_string(),
                };
            }
            if why.starts_with("reference already exists") {
                return RefError::Exists { name };
            }
            if why.starts_with("unable to resolve reference")
                || why.starts_with("reference is missing")
            {
                return RefError::Missing { name };
            }
            if let Some((_, rest)) = why.split_once("Unable to create '") {
                if let Some((path, _)) = rest.split_once("': File exists") {
                    return RefError::Locked { lock: path.into() };
                }
            }
        }
        if let Some((_, rest)) = line.split_once("Unable to create '") {
            if let Some((path, _)) = rest.split_once("': File exists") {
                return RefError::Locked { lock: path.into() };
            }
        }
        if line.ends_with("cannot lock references") {
            return RefError::Locked {
                lock: common_dir.join("reftable").join("tables.list.lock"),
            };
        }
        RefError::Other(stderr.trim().to_string())
    }
}

/// How often a compare-and-swap loop tries again. Only a lost race and a
/// held lock are worth another try; git has already waited out the lock
/// timeout by the time it reports one, so a lock held that long gets few.
#[derive(Debug, Default)]
pub struct Retries {
    pub lost: u32,
    pub locked: u32,
}

impl Retries {
    pub const LOST_RACES: u32 = 200;
    pub const LOCKED: u32 = 3;

    /// Whether to read again and retry after `error` (and count it).
    pub fn again(&mut self, error: &RefError) -> bool {
        match error {
            RefError::Locked { .. } => {
                self.locked += 1;
                self.locked < Self::LOCKED
            }
            e if e.is_lost_race() => {
                self.lost += 1;
                self.lost < Self::LOST_RACES
            }
            _ => false,
        }
    }

    /// The tries made so far, for the back-off.
    pub fn tries(&self) -> u32 {
        self.lost + self.locked
    }
}

/// Carry out `edits` as one transaction in the repository at `dir` (whose
/// common dir is `common_dir`), with `message` in the reflogs: every ref
/// moves, or none does.
pub fn update_refs(
    dir: &Path,
    common_dir: &Path,
    edits: &[Edit],
    message: &str,
) -> Result<(), RefError> {
    if edits.is_empty() {
        return Ok(());
    }
    let mut input = String::with_capacity(16 + edits.len() * 100);
    input.push_str("start\n");
    for edit in edits {
        if edit
            .name
            .contains(|c: char| c.is_whitespace() || c.is_control())
        {
            return Err(RefError::Other(format!(
                "{:?} is not a ref name",
                edit.name
            )));
        }
        input.push_str(&edit.command());
    }
    input.push_str("prepare\ncommit\n");
    let message = crate::model::one_line(message, 200);
    let mut child = super::command(dir, &["update-ref", "-m", &message, "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| RefError::Other(format!("running git update-ref: {e}")))?;
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|e| RefError::Other(format!("running git update-ref: {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.success() && stdout.lines().any(|l| l == "commit: ok") {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.trim().is_empty() {
        if let Some(Err(e)) = written {
            return Err(RefError::Other(format!("writing to git update-ref: {e}")));
        }
    }
    Err(RefError::of(&stderr, common_dir))
}

/// The refs directly under `prefix` (ending in `/`) as (name less the
/// prefix, object), in name order.
pub fn list_refs(dir: &Path, prefix: &str) -> anyhow::Result<Vec<(String, ObjectId)>> {
    let pattern = prefix.trim_end_matches('/');
    let mut refs = Vec::new();
    for (name, id) in for_each_ref(dir, &[pattern])? {
        if let Some(rest) = name.strip_prefix(prefix) {
            if !rest.contains('/') {
                refs.push((rest.to_string(), id));
            }
        }
    }
    refs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(refs)
}

/// The object each of `names` (full ref names) points at, where it exists.
pub fn find_refs(dir: &Path, names: &[&str]) -> anyhow::Result<Vec<Option<ObjectId>>> {
    let found = for_each_ref(dir, names)?;
    Ok(names
        .iter()
        .map(|name| found.iter().find(|(n, _)| n == name).map(|(_, id)| *id))
        .collect())
}

/// The object ref `name` points at, if it exists.
pub fn find_ref(dir: &Path, name: &str) -> anyhow::Result<Option<ObjectId>> {
    Ok(find_refs(dir, &[name])?.pop().flatten())
}

/// `git for-each-ref` over `patterns`: (full name, object) of each ref.
fn for_each_ref(dir: &Path, patterns: &[&str]) -> anyhow::Result<Vec<(String, ObjectId)>> {
    let mut args = vec!["for-each-ref", "--format=%(objectname) %(refname)", "--"];
    args.extend_from_slice(patterns);
    let out = super::run(dir, &args)?;
    let mut refs = Vec::new();
    for line in out.lines() {
        let Some((id, name)) = line.split_once(' ') else {
            continue;
        };
        let id = ObjectId::from_hex(id.as_bytes())
            .map_err(|e| anyhow::anyhow!("git for-each-ref printed {line:?}: {e}"))?;
        refs.push((name.to_string(), id));
    }
    Ok(refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(format: &str) -> (tempfile::TempDir, ObjectId, ObjectId) {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| super::super::run(dir.path(), args).unwrap();
        git(&["init", "-q", &format!("--ref-format={format}")]);
        let empty_tree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
        let me = [
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@localhost",
            "commit-tree",
        ];
        let a = git(&[&me[..], &["-m", "a", empty_tree]].concat());
        let b = git(&[&me[..], &["-m", "b", empty_tree]].concat());
        let id = |s: String| ObjectId::from_hex(s.as_bytes()).unwrap();
        (dir, id(a), id(b))
    }

    fn common(dir: &Path) -> PathBuf {
        dir.join(".git")
    }

    #[test]
    fn each_failure_is_named_and_moves_nothing_in_both_formats() {
        for format in ["files", "reftable"] {
            let (dir, a, b) = repo(format);
            let d = dir.path();
            let x = "refs/agent/tasks/t-x";
            update_refs(d, &common(d), &[Edit::create(x, a)], "test").unwrap();
            assert_eq!(find_ref(d, x).unwrap(), Some(a), "{format}");
            let moved = update_refs(d, &common(d), &[Edit::set(x, b, Some(b))], "t").unwrap_err();
            assert!(
                matches!(&moved, RefError::Moved { name, .. } if name == x),
                "{format}: {moved:?}"
            );
            assert!(Retries::default().again(&moved));
            let exists = update_refs(d, &common(d), &[Edit::create(x, b)], "t").unwrap_err();
            assert_eq!(exists, RefError::Exists { name: x.into() }, "{format}");
            let y = "refs/agent/tasks/t-y";
            let missing = update_refs(d, &common(d), &[Edit::set(y, b, Some(a))], "t").unwrap_err();
            assert_eq!(missing, RefError::Missing { name: y.into() }, "{format}");
            assert!(missing.is_lost_race());
            // All or nothing: the good create of y goes with the failed update of x.
            let both = [Edit::create(y, a), Edit::set(x, b, Some(b))];
            assert!(update_refs(d, &common(d), &both, "t").is_err());
            assert_eq!(find_ref(d, y).unwrap(), None, "{format}");
            let listed = list_refs(d, "refs/agent/tasks/").unwrap();
            assert_eq!(listed, vec![("t-x".to_string(), a)], "{format}");
            update_refs(d, &common(d), &[Edit::delete(x, a)], "t").unwrap();
            assert_eq!(find_ref(d, x).unwrap(), None, "{format}");
        }
    }

    #[test]
    fn a_held_lock_is_waited_for_then_named_and_left_alone() {
        for format in ["files", "reftable"] {
            let (dir, a, _) = repo(format);
            let d = dir.path();
            let x = "refs/agent/tasks/t-x";
            let lock = match format {
                "files" => common(d).join("refs/agent/tasks/t-x.lock"),
                _ => common(d).join("reftable/tables.list.lock"),
            };
            std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
            std::fs::write(&lock, "someone else's").unwrap();
            let start = std::time::Instant::now();
            let held = update_refs(d, &common(d), &[Edit::create(x, a)], "t").unwrap_err();
            assert!(
                start.elapsed() >= std::time::Duration::from_millis(90),
                "{format}: git waited"
            );
            match &held {
                RefError::Locked { lock: named } => assert_eq!(
                    named.canonicalize().unwrap(),
                    lock.canonicalize().unwrap(),
                    "{format}"
                ),
                other => panic!("{format}: {other:?}"),
            }
            let mut retries = Retries::default();
            assert!(retries.again(&held) && retries.again(&held) && !retries.again(&held));
            assert!(
                held.to_string().contains("tables.list.lock")
                    || held.to_string().contains("t-x.lock")
            );
            assert_eq!(std::fs::read_to_string(&lock).unwrap(), "someone else's");
            std::fs::remove_file(&lock).unwrap();
            update_refs(d, &common(d), &[Edit::create(x, a)], "t").unwrap();
        }
    }
}
