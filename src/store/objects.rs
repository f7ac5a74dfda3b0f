//! Writing and reading the objects of an event chain: small trees of JSON
//! files, and commits whose message is the readable audit line.

use anyhow::{Context, Result};
use gix::objs::tree::{Entry, EntryKind};
use gix::objs::WriteTo;
use gix::ObjectId;
use std::collections::HashSet;

use super::pack;

/// Batches of at least this many objects are written as a pack; git's own
/// `transfer.unpackLimit` draws the line at 100 as well.
const PACK_FROM: usize = 100;

/// Objects that one operation writes, held in memory until [`Batch::write`]
/// stores them all: a few as loose files, many as one pack. A caller moves
/// refs only after `write` returned, so no ref ever points at an object that
/// is not stored; objects whose refs never moved are harmless garbage.
///
/// A pack per event write would create fewer files, but gix readers do not
/// survive the churn of packs that appear and are merged away: a process
/// runs out of index slots, or trips an assertion, under a few racing
/// writers. Loose objects are what git writes too.
pub(super) struct Batch {
    hash_kind: gix::hash::Kind,
    objects: Vec<pack::Object>,
    ids: HashSet<ObjectId>,
}

impl Batch {
    pub(super) fn new(repo: &gix::Repository) -> Batch {
        Batch {
            hash_kind: repo.object_hash(),
            objects: Vec::new(),
            ids: HashSet::new(),
        }
    }

    /// Add an object; returns its id. Adding the same object twice stores it once.
    pub(super) fn put(&mut self, object: &impl WriteTo) -> Result<ObjectId> {
        let mut data = Vec::with_capacity(object.size() as usize);
        object.write_to(&mut data).context("encoding an object")?;
        let id = gix::objs::compute_hash(self.hash_kind, object.kind(), &data)
            .context("hashing an object")?;
        if self.ids.insert(id) {
            let kind = object.kind();
            self.objects.push(pack::Object { kind, data, id });
        }
        Ok(id)
    }

    /// Store every object of the batch in `repo`.
    pub(super) fn write(self, repo: &gix::Repository) -> Result<()> {
        if self.objects.len() < PACK_FROM {
            for object in &self.objects {
                write_loose(repo, object)?;
            }
            return Ok(());
        }
        pack::write(repo.objects.store_ref().path(), &self.objects)?;
        Ok(())
    }
}

/// Write one loose object. `git gc` and `git maintenance` remove empty
/// fan-out directories (`objects/1e/`) as they prune; one removed between
/// gix making the directory and moving the object into it fails the write
/// with "not found". git retries the same way; writing an object is
/// idempotent, so trying again is safe.
fn write_loose(repo: &gix::Repository, object: &pack::Object) -> Result<()> {
    const ATTEMPTS: usize = 5;
    let mut tries = 0;
    loop {
        match gix::objs::Write::write_buf(repo, object.kind, &object.data) {
            Ok(_) => return Ok(()),
            Err(_) if tries + 1 < ATTEMPTS => tries += 1,
            Err(e) => return Err(anyhow::anyhow!(e).context(format!("writing a {}", object.kind))),
        }
    }
}

/// Add a tree of `files` (name, content) to `batch`; names must be plain file names.
pub(super) fn write_tree(batch: &mut Batch, files: &[(&str, &[u8])]) -> Result<ObjectId> {
    let mut entries = Vec::with_capacity(files.len());
    for (name, content) in files {
        let blob = gix::objs::BlobRef { data: content };
        entries.push(Entry {
            mode: EntryKind::Blob.into(),
            filename: (*name).into(),
            oid: batch.put(&blob)?,
        });
    }
    entries.sort();
    batch.put(&gix::objs::Tree { entries })
}

/// Add a commit to `batch` without moving any ref; the caller moves the ref
/// with a compare-and-swap once the batch is written.
pub(super) fn write_commit(
    batch: &mut Batch,
    signature: &gix::actor::Signature,
    tree: ObjectId,
    parent: Option<ObjectId>,
    message: String,
) -> Result<ObjectId> {
    batch.put(&gix::objs::Commit {
        tree,
        parents: parent.into_iter().collect(),
        author: signature.clone(),
        committer: signature.clone(),
        encoding: None,
        message: message.into(),
        extra_headers: Vec::new(),
    })
}

/// Object `id`, which a ref or another stored object points at. A miss is
/// looked up again after a moment, as git does: while `git repack -d` or
/// `git gc` runs, one listing of the pack directory can pass the new pack
/// before it appears and the old ones after they are gone.
pub(super) fn find(repo: &gix::Repository, id: ObjectId) -> Result<gix::Object<'_>> {
    const LOOKS: u32 = 6;
    for look in 1..=LOOKS {
        match repo.try_find_object(id) {
            Ok(Some(object)) => return Ok(object),
            Ok(None) if look < LOOKS => {
                std::thread::sleep(std::time::Duration::from_millis(1 << look));
            }
            Ok(None) => break,
            Err(e) => return Err(anyhow::anyhow!("reading object {id}: {e}")),
        }
    }
    anyhow::bail!("object {id} is not in the repository")
}

/// The content of file `name` in the tree of `commit`, if it has one.
pub(super) fn read_file(
    repo: &gix::Repository,
    commit: ObjectId,
    name: &str,
) -> Result<Option<Vec<u8>>> {
    let tree = find(repo, commit)?
        .try_into_commit()
        .with_context(|| format!("reading commit {commit}"))?
        .tree_id()
        .with_context(|| format!("reading commit {commit}"))?
        .detach();
    let tree = find(repo, tree)?
        .try_into_tree()
        .with_context(|| format!("reading the tree of {commit}"))?;
    let Some(entry) = tree.find_entry(name) else {
        return Ok(None);
    };
    let blob =
        find(repo, entry.object_id()).with_context(|| format!("reading {name} of {commit}"))?;
    Ok(Some(blob.data.clone()))
}

/// An audit-friendly commit message: a subject line, an optional body and
/// `Agent-*` trailers, so that `git log` reads as the history.
pub(super) fn message(subject: &str, body: Option<&str>, trailers: &[(&str, String)]) -> String {
    let mut msg = String::new();
    use crate::model::text::defuse;
    msg.push_str(&defuse(&crate::model::one_line(subject, 100)));
    msg.push_str("\n\n");
    if let Some(body) = body.map(str::trim).filter(|b| !b.is_empty()) {
        msg.push_str(&defuse(body));
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
