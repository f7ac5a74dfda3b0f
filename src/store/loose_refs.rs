//! Reading and moving git-agent's own refs as loose files, the way git's
//! files backend does, without `packed-refs.lock`.
//!
//! A gix ref transaction takes `packed-refs.lock` for every edit once a
//! `packed-refs` file exists (after a large plan import or any `git gc`).
//! That costs one more file creation per write, the dearest thing a claim
//! does on a busy disk, and it makes every writer of every task wait on the
//! same lock. Git itself does not: moving a ref needs only that ref's own
//! lock. `git pack-refs` drops a loose ref only under the same lock and only
//! if its value did not change, so while we hold the lock the value is the
//! loose file, or the packed entry when there is no loose file.
//!
//! Here updates and creations of refs under `refs/agent/` go that way: lock
//! every ref (`<ref>.lock`, created exclusively, as git and gix do), check
//! each one's current value against what the edit expects, write the new
//! values into the locks, and rename them into place. Deletions need
//! `packed-refs` rewritten and stay with gix, as does anything with a
//! reflog to write.

use anyhow::{bail, Context, Result};
use gix::refs::transaction::{Change, PreviousValue, RefEdit};
use gix::refs::Target;
use gix::ObjectId;
use std::io::Write;
use std::path::Path;

/// The namespace this module writes.
const OURS: &str = "refs/agent/";

/// Whether [`commit`] can carry out `edits`: updates of refs under
/// `refs/agent/` to objects, each ref once, none with a reflog to keep.
pub(super) fn handles(repo: &gix::Repository, edits: &[RefEdit]) -> bool {
    use gix::refs::store::WriteReflog;
    let plain_store =
        repo.refs.namespace.is_none() && !matches!(repo.refs.write_reflog, WriteReflog::Always);
    let mut names: Vec<&[u8]> = edits.iter().map(|e| e.name.as_bstr().as_ref()).collect();
    names.sort_unstable();
    let distinct = names.windows(2).all(|w| w[0] != w[1]);
    plain_store
        && distinct
        && edits.iter().all(|edit| {
            let name = edit.name.as_bstr();
            let update = matches!(
                edit.change,
                Change::Update {
                    new: Target::Object(_),
                    ..
                }
            );
            let has_log = || {
                std::str::from_utf8(name)
                    .map_or(true, |n| repo.common_dir().join("logs").join(n).exists())
            };
            !edit.deref && update && name.starts_with(OURS.as_bytes()) && !has_log()
        })
}

/// Move every ref of `edits` (which [`handles`] accepted) if each still has
/// the value its edit expects; otherwise move none. Waits for other writers'
/// locks as `lock_wait` says.
pub(super) fn commit(
    repo: &gix::Repository,
    mut edits: Vec<RefEdit>,
    lock_wait: gix::lock::acquire::Fail,
) -> Result<()> {
    let common = repo.common_dir();
    // One lock order for everyone keeps two multi-ref writers from each
    // holding what the other waits for until both time out.
    edits.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    let mut locks = Vec::with_capacity(edits.len());
    for edit in &edits {
        let name = edit.name.as_bstr().to_string();
        let path = common.join(&name);
        let lock = gix::lock::File::acquire_to_update_resource(
            &path,
            lock_wait,
            Some(common.join("refs")),
            0,
        )
        .map_err(|e| anyhow::anyhow!("locking {name}: {e}"))?;
        locks.push((name, path, lock));
    }
    // Every lock is held: no one else moves these refs until we let go.
    for ((name, path, lock), edit) in locks.iter_mut().zip(&edits) {
        let Change::Update { expected, new, .. } = &edit.change else {
            bail!("{name}: only updates are written here");
        };
        let Target::Object(new) = new else {
            bail!("{name}: only object targets are written here");
        };
        let current = value(repo, path, name)?;
        check(name, expected, current)?;
        lock.with_mut(|file| file.write_all(format!("{new}\n").as_bytes()))
            .with_context(|| format!("writing {name}.lock"))?;
    }
    for (name, _, lock) in locks {
        lock.commit()
            .map_err(|e| anyhow::anyhow!("moving {name}: {}", e.error))?;
    }
    Ok(())
}

/// The object ref `name` (a full name) points at, if it exists: its loose
/// file, or its entry in `packed-refs`. Reads one file where a gix lookup by
/// name tries git's whole list of places first.
pub(super) fn find(repo: &gix::Repository, name: &str) -> Result<Option<ObjectId>> {
    // Validated as gix would, so that no name reads outside the refs.
    gix::refs::FullName::try_from(name).with_context(|| format!("{name:?} is no ref name"))?;
    value(repo, &repo.common_dir().join(name), name)
}

fn value(repo: &gix::Repository, path: &Path, name: &str) -> Result<Option<ObjectId>> {
    match std::fs::read(path) {
        Ok(content) => {
            let hex = content.trim_ascii_end();
            if hex.starts_with(b"ref:") {
                bail!("{name} is a symbolic ref");
            }
            ObjectId::from_hex(hex)
                .map(Some)
                .with_context(|| format!("{name} does not hold an object id"))
        }
        // Read packed-refs only now: `git pack-refs` writes it before it
        // removes a loose file, so a ref is always in one of the two.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => packed(repo, name),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn packed(repo: &gix::Repository, name: &str) -> Result<Option<ObjectId>> {
    let buffer = repo
        .refs
        .cached_packed_buffer()
        .map_err(|e| anyhow::anyhow!("reading packed-refs: {e}"))?;
    let Some(buffer) = buffer else {
        return Ok(None);
    };
    let found = buffer
        .try_find(name)
        .map_err(|e| anyhow::anyhow!("reading {name} in packed-refs: {e}"))?;
    Ok(found.map(|r| r.target()))
}

/// Refuse unless `current` is what `expected` asks for.
fn check(name: &str, expected: &PreviousValue, current: Option<ObjectId>) -> Result<()> {
    let object = |target: &Target| match target {
        Target::Object(id) => Ok(*id),
        Target::Symbolic(_) => Err(anyhow::anyhow!("{name}: expected a symbolic ref")),
    };
    let fits = match expected {
        PreviousValue::Any => true,
        PreviousValue::MustNotExist => current.is_none(),
        PreviousValue::MustExist => current.is_some(),
        PreviousValue::MustExistAndMatch(t) => current == Some(object(t)?),
        PreviousValue::ExistingMustMatch(t) => {
            let want = object(t)?;
            current.is_none_or(|c| c == want)
        }
    };
    match (fits, current) {
        (true, _) => Ok(()),
        (false, None) => bail!("{name} does not exist"),
        (false, Some(_)) if matches!(expected, PreviousValue::MustNotExist) => {
            bail!("{name} already exists")
        }
        (false, Some(id)) => bail!("{name} moved: it is {id}, not what this write expected"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tasks::{ref_delete, ref_update};
    use gix::lock::acquire::Fail;

    const WAIT: Fail = Fail::Immediately;

    fn repo() -> (tempfile::TempDir, gix::Repository, ObjectId, ObjectId) {
        let dir = tempfile::tempdir().unwrap();
        let repo = gix::init(dir.path()).unwrap();
        let a = repo.write_blob(b"a").unwrap().detach();
        let b = repo.write_blob(b"b").unwrap().detach();
        (dir, repo, a, b)
    }

    fn update(name: &str, new: ObjectId, expected: PreviousValue) -> RefEdit {
        ref_update(name.into(), new, expected, "test").unwrap()
    }

    fn matching(id: ObjectId) -> PreviousValue {
        PreviousValue::MustExistAndMatch(Target::Object(id))
    }

    /// `git rev-parse` of `name`, as git itself reads it.
    fn git_value(dir: &Path, name: &str) -> String {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--verify", "--quiet", name])
            .current_dir(dir)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        let out = std::process::Command::new("find")
            .args([".git", "-name", "*.lock"])
            .current_dir(dir)
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn moves_a_packed_ref_while_git_holds_packed_refs_lock() {
        let (dir, repo, a, b) = repo();
        let name = "refs/agent/tasks/t-a";
        let create = update(name, a, PreviousValue::MustNotExist);
        crate::store::packed_refs::create(&repo, vec![create]).unwrap();
        // gix would wait for this lock; git's files backend does not need it.
        let packed_lock = dir.path().join(".git/packed-refs.lock");
        std::fs::write(&packed_lock, "").unwrap();
        commit(&repo, vec![update(name, b, matching(a))], WAIT).unwrap();
        assert_eq!(git_value(dir.path(), name), b.to_string());
        assert_eq!(find(&repo, name).unwrap(), Some(b));
        std::fs::remove_file(packed_lock).unwrap();
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_stale_expectation_moves_no_ref_of_the_transaction() {
        let (dir, repo, a, b) = repo();
        let (one, two) = ("refs/agent/tasks/t-a", "refs/agent/leases/t-a");
        commit(
            &repo,
            vec![update(one, a, PreviousValue::MustNotExist)],
            WAIT,
        )
        .unwrap();
        let stale = vec![
            update(two, a, PreviousValue::MustNotExist),
            update(one, b, matching(b)),
        ];
        let err = commit(&repo, stale, WAIT).unwrap_err().to_string();
        assert!(err.contains("refs/agent/tasks/t-a moved"), "{err}");
        assert_eq!(git_value(dir.path(), one), a.to_string());
        assert_eq!(git_value(dir.path(), two), "");
        let again = vec![update(one, b, PreviousValue::MustNotExist)];
        let err = commit(&repo, again, WAIT).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        let missing = vec![update(two, b, matching(a))];
        let err = commit(&repo, missing, WAIT).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_held_ref_lock_refuses_the_write() {
        let (dir, repo, a, b) = repo();
        let name = "refs/agent/tasks/t-a";
        commit(
            &repo,
            vec![update(name, a, PreviousValue::MustNotExist)],
            WAIT,
        )
        .unwrap();
        let lock = dir.path().join(".git/refs/agent/tasks/t-a.lock");
        std::fs::write(&lock, "").unwrap();
        let err = commit(&repo, vec![update(name, b, matching(a))], WAIT).unwrap_err();
        assert!(
            err.to_string().contains("locking refs/agent/tasks/t-a"),
            "{err}"
        );
        assert_eq!(git_value(dir.path(), name), a.to_string());
        assert!(lock.exists(), "someone else's lock is left alone");
    }

    #[test]
    fn the_loose_file_wins_over_packed_refs_and_names_are_checked() {
        let (dir, repo, a, b) = repo();
        let name = "refs/agent/tasks/t-a";
        assert_eq!(find(&repo, name).unwrap(), None);
        crate::store::packed_refs::create(
            &repo,
            vec![update(name, a, PreviousValue::MustNotExist)],
        )
        .unwrap();
        assert_eq!(find(&repo, name).unwrap(), Some(a));
        let loose = dir.path().join(".git").join(name);
        std::fs::create_dir_all(loose.parent().unwrap()).unwrap();
        std::fs::write(loose, format!("{b}\n")).unwrap();
        assert_eq!(find(&repo, name).unwrap(), Some(b));
        assert!(find(&repo, "refs/agent/../../config").is_err());
    }

    #[test]
    fn deletions_other_refs_and_reflogs_are_left_to_gix() {
        let (dir, repo, a, _) = repo();
        let ours = "refs/agent/tasks/t-a";
        assert!(handles(
            &repo,
            &[update(ours, a, PreviousValue::MustNotExist)]
        ));
        let heads = update("refs/heads/main", a, PreviousValue::Any);
        assert!(!handles(&repo, &[heads]));
        let deletion = ref_delete(ours.into(), a).unwrap();
        assert!(!handles(&repo, &[deletion]));
        let twice = update(ours, a, PreviousValue::Any);
        assert!(!handles(&repo, &[twice.clone(), twice]));
        let log = dir.path().join(".git/logs/refs/agent/tasks/t-a");
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        std::fs::write(&log, "").unwrap();
        assert!(!handles(&repo, &[update(ours, a, PreviousValue::Any)]));
    }
}
