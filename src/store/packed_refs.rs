//! Creating many refs at once straight in `packed-refs`.
//!
//! A gix ref transaction takes a lock file per ref even when the refs go
//! into `packed-refs`: for a 10,000-task plan that is 10,000 files created
//! and deleted, seconds on a slow disk. Here only `packed-refs.lock` is
//! taken, and the file is rewritten with the new refs merged in and renamed
//! into place: all refs appear at once, or none do.

use anyhow::{bail, Context, Result};
use gix::bstr::{BStr, BString, ByteSlice};
use gix::refs::packed::Buffer;
use gix::refs::transaction::{Change, PreviousValue, RefEdit};
use gix::refs::{FullName, Target};
use gix::ObjectId;
use std::collections::BTreeSet;

use super::packed_lock::PackedLock;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What git and gix write as the first line of `packed-refs`.
const HEADER: &[u8] = b"# pack-refs with: peeled fully-peeled sorted \n";

/// How long to wait for another writer's `packed-refs.lock`.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Create every ref of `edits` in `packed-refs`, all or none. Each edit must
/// create a ref ("must not exist") pointing at an object that is already
/// stored. Refuses, writing nothing, if any of the refs exists, loose or
/// packed.
///
/// Refs already in `packed-refs` are kept as they are: whoever rewrites the
/// file (git's pack-refs and deletions, gix, git-agent's deletions) holds
/// `packed-refs.lock` and reads the file under it, and a ref updated
/// meanwhile as a loose file overrides its packed entry. A writer creating
/// the very same ref as a loose file at the same instant is not excluded;
/// the names are fresh random ids, so that takes a clash of random ids too.
pub(super) fn create(repo: &gix::Repository, edits: Vec<RefEdit>) -> Result<()> {
    let mut new = edits
        .into_iter()
        .map(creation)
        .collect::<Result<Vec<_>>>()?;
    new.sort_unstable_by(|a, b| a.0.as_bstr().cmp(b.0.as_bstr()));
    if let Some(w) = new.windows(2).find(|w| w[0].0 == w[1].0) {
        bail!("{} is created twice in one transaction", w[0].0.as_bstr());
    }
    let path = repo.refs.packed_refs_path();
    let wait = gix::lock::acquire::Fail::AfterDurationWithBackoff(LOCK_WAIT);
    let lock = PackedLock::acquire(repo, wait)?;
    // Read under the lock: this is the content the new file replaces.
    let existing = repo
        .refs
        .open_packed_buffer()
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    check_free(repo.common_dir(), existing.as_ref(), &new)?;
    lock.replace(|file| write_merged(file, existing.as_ref(), &new, &BTreeSet::new()))?;
    Ok(())
}

/// Refuse if a ref of `new` exists, loose or packed, or if it clashes with
/// an existing ref as a directory would: git cannot hold both `a/b` and
/// `a/b/c`.
fn check_free(
    common_dir: &Path,
    packed: Option<&Buffer>,
    new: &[(FullName, ObjectId)],
) -> Result<()> {
    let is_packed = |name: &BStr| -> Result<bool> {
        let Some(buffer) = packed else {
            return Ok(false);
        };
        let found = buffer
            .try_find(name)
            .map_err(|e| anyhow::anyhow!("reading packed-refs: {e}"))?;
        Ok(found.is_some())
    };
    let has_packed_children = |name: &BStr| -> Result<bool> {
        let Some(buffer) = packed else {
            return Ok(false);
        };
        let mut prefix = BString::from(name);
        prefix.push(b'/');
        let mut children = buffer
            .iter_prefixed(prefix)
            .map_err(|e| anyhow::anyhow!("reading packed-refs: {e}"))?;
        Ok(children.next().is_some())
    };
    let mut parents = BTreeSet::new();
    for (name, _) in new {
        let name = name.as_bstr();
        let loose = loose_path(common_dir, name)?;
        if loose.symlink_metadata().is_ok() || is_packed(name)? || has_packed_children(name)? {
            bail!("{name} already exists");
        }
        parents.extend(name.rfind_iter("/").map(|end| &name[..end]));
    }
    for parent in parents {
        let loose = loose_path(common_dir, parent)?;
        if loose.is_file() || is_packed(parent)? {
            bail!("{parent} is a ref (or a file in its place), so no ref can be created under it");
        }
    }
    Ok(())
}

/// Where the loose file of ref `name` would be.
fn loose_path(common_dir: &Path, name: &BStr) -> Result<PathBuf> {
    let name = name
        .to_str()
        .with_context(|| format!("{name} is not UTF-8"))?;
    Ok(common_dir.join(name))
}

/// The name and target of an edit that creates a ref; anything else is refused.
fn creation(edit: RefEdit) -> Result<(FullName, ObjectId)> {
    match edit.change {
        Change::Update {
            expected: PreviousValue::MustNotExist,
            new: Target::Object(id),
            ..
        } if !edit.deref => Ok((edit.name, id)),
        _ => bail!(
            "{}: only the creation of a ref can go straight into packed-refs",
            edit.name.as_bstr()
        ),
    }
}

/// Write the refs of `existing` (less those in `gone`) and `new` (sorted,
/// disjoint) in name order.
pub(super) fn write_merged(
    file: &mut std::fs::File,
    existing: Option<&Buffer>,
    new: &[(FullName, ObjectId)],
    gone: &BTreeSet<BString>,
) -> std::io::Result<()> {
    let mut out = BufWriter::new(file);
    out.write_all(HEADER)?;
    let mut new = new.iter().peekable();
    if let Some(buffer) = existing {
        for old in buffer.iter().map_err(std::io::Error::other)? {
            let old = old.map_err(std::io::Error::other)?;
            if gone.contains(old.name.as_bstr()) {
                continue;
            }
            while let Some((name, id)) = new.next_if(|(n, _)| n.as_bstr() < old.name.as_bstr()) {
                write_line(&mut out, id, name.as_bstr())?;
            }
            // Copied as they are: hex target, name, and the peeled id if any.
            out.write_all(old.target)?;
            out.write_all(b" ")?;
            out.write_all(old.name.as_bstr())?;
            out.write_all(b"\n")?;
            if let Some(peeled) = old.object {
                out.write_all(b"^")?;
                out.write_all(peeled)?;
                out.write_all(b"\n")?;
            }
        }
    }
    for (name, id) in new {
        write_line(&mut out, id, name.as_bstr())?;
    }
    out.flush()
}

fn write_line(out: &mut impl Write, id: &ObjectId, name: &gix::bstr::BStr) -> std::io::Result<()> {
    write!(out, "{id} ")?;
    out.write_all(name)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tasks::ref_update;

    fn creation_of(name: &str, id: ObjectId) -> RefEdit {
        ref_update(name.into(), id, PreviousValue::MustNotExist, "test").unwrap()
    }

    fn repo_with_a_blob() -> (tempfile::TempDir, gix::Repository, ObjectId) {
        let dir = tempfile::tempdir().unwrap();
        let repo = gix::init(dir.path()).unwrap();
        let id = repo.write_blob(b"x").unwrap().detach();
        (dir, repo, id)
    }

    #[test]
    fn creates_all_refs_at_once_and_refuses_any_that_exists() {
        let (_dir, repo, id) = repo_with_a_blob();
        let edits = vec![
            creation_of("refs/agent/tasks/t-b", id),
            creation_of("refs/agent/tasks/t-a", id),
        ];
        create(&repo, edits).unwrap();
        let packed = std::fs::read_to_string(repo.refs.packed_refs_path()).unwrap();
        assert_eq!(
            packed,
            format!("# pack-refs with: peeled fully-peeled sorted \n{id} refs/agent/tasks/t-a\n{id} refs/agent/tasks/t-b\n")
        );
        let again = vec![
            creation_of("refs/agent/tasks/t-c", id),
            creation_of("refs/agent/tasks/t-a", id),
        ];
        let err = create(&repo, again).unwrap_err().to_string();
        assert!(err.contains("refs/agent/tasks/t-a already exists"), "{err}");
        assert_eq!(
            std::fs::read_to_string(repo.refs.packed_refs_path()).unwrap(),
            packed
        );
    }

    #[test]
    fn refuses_a_ref_that_a_loose_ref_or_a_directory_clashes_with() {
        let (dir, repo, id) = repo_with_a_blob();
        let refs = dir.path().join(".git/refs/agent");
        std::fs::create_dir_all(refs.join("tasks/t-a")).unwrap();
        std::fs::write(refs.join("plans"), format!("{id}\n")).unwrap();
        for (name, fault) in [
            (
                "refs/agent/tasks/t-a",
                "refs/agent/tasks/t-a already exists",
            ),
            ("refs/agent/plans/p-a", "refs/agent/plans is a ref"),
        ] {
            let err = create(&repo, vec![creation_of(name, id)])
                .unwrap_err()
                .to_string();
            assert!(err.contains(fault), "{name}: {err}");
        }
        assert!(!repo.refs.packed_refs_path().exists());
    }
}
