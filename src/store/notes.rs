//! Notes of one JSON line per record: provenance (`refs/notes/agent`),
//! review verdicts (`refs/notes/agent-review`) and gate runs
//! (`refs/notes/agent-ci`). Appending is a compare-and-swap on the notes ref,
//! retried after a lost race, and appending a line that is there already
//! changes nothing.

use anyhow::{Context, Result};
use gix::ObjectId;

use super::Store;

/// Provenance of commits an agent run produced.
pub const PROVENANCE: &str = "refs/notes/agent";
/// Review verdicts, on the exact commit reviewed.
pub const REVIEW: &str = "refs/notes/agent-review";
/// Gate runs, on the tested commit.
pub const CI: &str = "refs/notes/agent-ci";

const APPEND_ATTEMPTS: u32 = 100;

impl Store {
    /// The lines of the note on `commit` in `notes_ref` (none if it has no note).
    pub fn note_lines(&self, notes_ref: &str, commit: ObjectId) -> Result<Vec<String>> {
        let mut notes = self.repo.notes()?.with_refs([notes_ref])?;
        let found = notes
            .get(commit)
            .with_context(|| format!("reading {notes_ref} of {commit}"))?;
        Ok(found
            .first()
            .map(|note| {
                String::from_utf8_lossy(&note.blob.data)
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Add `line` to the note on `commit` in `notes_ref`, unless the note has
    /// that line already. Returns whether it wrote.
    pub fn append_note(&self, notes_ref: &str, commit: ObjectId, line: &str) -> Result<bool> {
        let line = line.trim();
        let mut last_error = None;
        for attempt in 0..APPEND_ATTEMPTS {
            let mut lines = self.note_lines(notes_ref, commit)?;
            if lines.iter().any(|l| l == line) {
                return Ok(false);
            }
            lines.push(line.to_string());
            let data = lines.join("\n") + "\n";
            let mut notes = self
                .repo
                .notes()?
                .with_commit_message(format!("git-agent: note on {commit}"));
            match notes.replace(notes_ref, commit, data) {
                Ok(_) => return Ok(true),
                Err(e) => {
                    last_error = Some(anyhow::anyhow!("{e}"));
                    std::thread::sleep(std::time::Duration::from_millis(
                        1 + u64::from(attempt % 10),
                    ));
                }
            }
        }
        Err(last_error.expect("one attempt ran"))
            .with_context(|| format!("writing {notes_ref} on {commit}"))
    }
}
