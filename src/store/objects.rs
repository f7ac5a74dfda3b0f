//! Writing and reading the objects of an event chain: small trees of JSON
//! files, and commits whose message is the readable audit line.

use anyhow::{Context, Result};
use gix::objs::tree::{Entry, EntryKind};
use gix::ObjectId;

/// Write a tree of `files` (name, content); names must be plain file names.
pub(super) fn write_tree(repo: &gix::Repository, files: &[(&str, &[u8])]) -> Result<ObjectId> {
    let mut entries = Vec::with_capacity(files.len());
    for (name, content) in files {
        let oid = repo.write_blob(content).context("writing a blob")?.detach();
        entries.push(Entry {
            mode: EntryKind::Blob.into(),
            filename: (*name).into(),
            oid,
        });
    }
    entries.sort();
    let tree = gix::objs::Tree { entries };
    Ok(repo.write_object(&tree).context("writing a tree")?.detach())
}

/// Write a commit without moving any ref; the caller moves the ref with a
/// compare-and-swap once the whole chain is written.
pub(super) fn write_commit(
    repo: &gix::Repository,
    signature: &gix::actor::Signature,
    tree: ObjectId,
    parent: Option<ObjectId>,
    message: String,
) -> Result<ObjectId> {
    let commit = gix::objs::Commit {
        tree,
        parents: parent.into_iter().collect(),
        author: signature.clone(),
        committer: signature.clone(),
        encoding: None,
        message: message.into(),
        extra_headers: Vec::new(),
    };
    Ok(repo
        .write_object(&commit)
        .context("writing a commit")?
        .detach())
}

/// The content of file `name` in the tree of `commit`, if it has one.
pub(super) fn read_file(
    repo: &gix::Repository,
    commit: ObjectId,
    name: &str,
) -> Result<Option<Vec<u8>>> {
    let commit = repo
        .find_commit(commit)
        .with_context(|| format!("reading commit {commit}"))?;
    let tree = commit
        .tree()
        .with_context(|| format!("reading the tree of {}", commit.id))?;
    let Some(entry) = tree.find_entry(name) else {
        return Ok(None);
    };
    let blob = repo
        .find_blob(entry.object_id())
        .with_context(|| format!("reading {name} of {}", commit.id))?;
    Ok(Some(blob.data.clone()))
}

/// The first parent of `commit`, or `None` at the root of a chain.
pub(super) fn parent(repo: &gix::Repository, commit: ObjectId) -> Result<Option<ObjectId>> {
    let commit = repo
        .find_commit(commit)
        .with_context(|| format!("reading commit {commit}"))?;
    let first = commit.parent_ids().next().map(|id| id.detach());
    Ok(first)
}

/// An audit-friendly commit message: a subject line, an optional body and
/// `Agent-*` trailers, so that `git log` reads as the history.
pub(super) fn message(subject: &str, body: Option<&str>, trailers: &[(&str, String)]) -> String {
    let mut msg = String::new();
    msg.push_str(&crate::model::one_line(subject, 100));
    msg.push_str("\n\n");
    if let Some(body) = body.map(str::trim).filter(|b| !b.is_empty()) {
        msg.push_str(body);
        msg.push_str("\n\n");
    }
    for (key, value) in trailers {
        msg.push_str(key);
        msg.push_str(": ");
        msg.push_str(&crate::model::one_line(value, 200));
        msg.push('\n');
    }
    msg
}
