//! Notes of one JSON line per record: provenance (`refs/notes/agent`),
//! review verdicts (`refs/notes/agent-review`) and gate runs
//! (`refs/notes/agent-ci`). Appending is a compare-and-swap on the notes ref,
//! retried after a lost race, and appending a line that is there already
//! changes nothing.

use anyhow::{Context, Result};
use gix::ObjectId;

use super::objects::Batch;
use super::Store;
use crate::git::refs::{Edit, Retries};

/// Provenance of commits an agent run produced.
pub const PROVENANCE: &str = "refs/notes/agent";
/// Review verdicts, on the exact commit reviewed.
pub const REVIEW: &str = "refs/notes/agent-review";
/// Gate runs, on the tested commit.
pub const CI: &str = "refs/notes/agent-ci";

impl Store {
    /// The lines of the note on `commit` in `notes_ref` (none if it has no note).
    pub fn note_lines(&self, notes_ref: &str, commit: ObjectId) -> Result<Vec<String>> {
        let (_, mut notes) = self.notes_at(notes_ref)?;
        self.lines_in(&mut notes, notes_ref, commit)
    }

    fn lines_in(
        &self,
        notes: &mut gix::note::plumbing::State,
        notes_ref: &str,
        commit: ObjectId,
    ) -> Result<Vec<String>> {
        let Some(blob) = notes
            .get(&commit, &self.repo)
            .with_context(|| format!("reading {notes_ref} of {commit}"))?
        else {
            return Ok(Vec::new());
        };
        let blob = self
            .repo
            .find_blob(blob)
            .with_context(|| format!("reading the note on {commit} in {notes_ref}"))?;
        Ok(String::from_utf8_lossy(&blob.data)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect())
    }

    /// Add `line` to the note on `commit` in `notes_ref`, unless the note has
    /// that line already. Returns whether it wrote.
    pub fn append_note(&self, notes_ref: &str, commit: ObjectId, line: &str) -> Result<bool> {
        let line = line.trim();
        let mut retries = Retries::default();
        let mut tree_failures = 0;
        loop {
            let (tip, mut notes) = self.notes_at(notes_ref)?;
            let mut lines = self.lines_in(&mut notes, notes_ref, commit)?;
            if lines.iter().any(|l| l == line) {
                return Ok(false);
            }
            lines.push(line.to_string());
            let data = lines.join("\n") + "\n";
            let mut batch = Batch::new(&self.repo);
            let blob = batch.put(&gix::objs::BlobRef {
                data: data.as_bytes(),
            })?;
            // The notes tree gix edits is written here too (it writes trees
            // itself): the blob must be stored first.
            batch.write(&self.repo)?;
            // gix writes the notes trees as loose objects, which a `git gc`
            // pruning beside us can fail (see `objects::write_loose`).
            let edit = match notes.replace(commit, blob, &self.repo) {
                Ok(edit) => edit,
                Err(_) if tree_failures < 4 => {
                    tree_failures += 1;
                    continue;
                }
                Err(e) => {
                    return Err(anyhow::anyhow!(e))
                        .with_context(|| format!("adding a note on {commit} to {notes_ref}"));
                }
            };
            let signature = self.signature()?;
            let note_commit = gix::objs::Commit {
                tree: edit.tree,
                parents: tip.into_iter().collect(),
                author: signature.clone(),
                committer: signature,
                encoding: None,
                message: format!("git-agent: note on {commit}\n").into(),
                extra_headers: Vec::new(),
            };
            let mut batch = Batch::new(&self.repo);
            let new = batch.put(&note_commit)?;
            batch.write(&self.repo)?;
            match self.transact(&[Edit::set(notes_ref, new, tip)], "note") {
                Ok(()) => return Ok(true),
                Err(e) if retries.again(&e) => super::tasks::backoff(retries.tries()),
                Err(e) => {
                    return Err(e).with_context(|| format!("writing {notes_ref} on {commit}"));
                }
            }
        }
    }

    /// The commit `notes_ref` points at (if it exists) and its notes tree.
    fn notes_at(&self, notes_ref: &str) -> Result<(Option<ObjectId>, gix::note::plumbing::State)> {
        let tip = self.find_ref(notes_ref)?;
        let tree = match tip {
            Some(tip) => self
                .repo
                .find_commit(tip)
                .and_then(|c| c.tree_id())
                .with_context(|| format!("{notes_ref} does not point at a notes commit"))?
                .detach(),
            None => ObjectId::empty_tree(self.repo.object_hash()),
        };
        let state = gix::note::plumbing::State::new(tree, &self.repo)
            .with_context(|| format!("reading the notes tree of {notes_ref}"))?;
        Ok((tip, state))
    }
}
