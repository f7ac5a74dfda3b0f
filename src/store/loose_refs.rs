//! Reading and moving git-agent's own refs as loose files, the way git's
//! files backend does.
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
//! Here every edit of refs under `refs/agent/` goes that way: lock every ref
//! (`<ref>.lock`, created exclusively, as git and gix do), check each one's
//! current value against what the edit expects, write the new values into
//! the locks, and rename them into place. A deletion also takes
//! `packed-refs.lock`, after the refs' locks, as git does: it reads
//! `packed-refs` under that lock, rewrites it without the deleted refs that
//! it holds, removes the loose files, and only then lets go, so that no
//! `git pack-refs` can pack a ref between the two steps and bring it back.
//! (gix reads `packed-refs` before it takes the lock, trusting the file's
//! modification time, and can write back a value `git pack-refs` just
//! replaced.) Reflogs are kept where git keeps them (a ref that has one, or
//! `core.logAllRefUpdates=always`) and deleted with their ref. Namespaced
//! stores (`GIT_NAMESPACE`, for servers) stay with gix.
//!
//! As with git and gix, only the checks are all-or-nothing: the renames that
//! follow them are one file at a time, updates before deletions.

use anyhow::{bail, Context, Result};
use gix::bstr::BString;
use gix::refs::packed::Buffer;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::Target;
use gix::ObjectId;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use super::packed_lock::PackedLock;

/// The namespace this module writes.
const OURS: &str = "refs/agent/";

/// Whether [`commit`] can carry out `edits`: updates of refs under
/// `refs/agent/` to objects, and deletions, each ref once, ref and reflog
/// together.
pub(super) fn handles(repo: &gix::Repository, edits: &[RefEdit]) -> bool {
    let mut names: Vec<&[u8]> = edits.iter().map(|e| e.name.as_bstr().as_ref()).collect();
    names.sort_unstable();
    let distinct = names.windows(2).all(|w| w[0] != w[1]);
    repo.refs.namespace.is_none()
        && distinct
        && edits.iter().all(|edit| {
            let plain_change = matches!(
                edit.change,
                Change::Update {
                    new: Target::Object(_),
                    log: LogChange {
                        mode: RefLog::AndReference,
                        ..
                    },
                    ..
                } | Change::Delete {
                    log: RefLog::AndReference,
                    ..
                }
            );
            !edit.deref && plain_change && edit.name.as_bstr().starts_with(OURS.as_bytes())
        })
}

/// Carry out every edit of `edits` (which [`handles`] accepted) if each ref
/// still has the value its edit expects; otherwise change nothing. Waits for
/// other writers' locks as `lock_wait` says; `committer` signs reflog lines.
pub(super) fn commit(
    repo: &gix::Repository,
    mut edits: Vec<RefEdit>,
    lock_wait: gix::lock::acquire::Fail,
    committer: &gix::actor::Signature,
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
        locks.push(Locked {
            name,
            path,
            lock,
            current: None,
        });
    }
    let deletes = edits
        .iter()
        .any(|e| matches!(e.change, Change::Delete { .. }));
    let packed_lock = match deletes {
        true => Some(PackedLock::acquire(repo, lock_wait)?),
        false => None,
    };
    // Every lock is held: no one else moves these refs until we let go.
    let packed = fresh_packed(repo)?;
    let mut unpack = BTreeSet::new();
    for (locked, edit) in locks.iter_mut().zip(&edits) {
        let name = &locked.name;
        locked.current = value(&locked.path, name, packed.as_ref())?;
        match &edit.change {
            Change::Update {
                expected,
                new: Target::Object(new),
                ..
            } => {
                check(name, expected, locked.current)?;
                locked
                    .lock
                    .with_mut(|file| file.write_all(format!("{new}\n").as_bytes()))
                    .with_context(|| format!("writing {name}.lock"))?;
            }
            Change::Delete { expected, .. } => {
                check(name, expected, locked.current)?;
                if is_packed(packed.as_ref(), name)? {
                    unpack.insert(BString::from(name.as_str()));
                }
            }
            Change::Update { .. } => bail!("{name}: only object targets are written here"),
        }
    }
    // git's order: updates first, then deletions (the packed entries before
    // the loose files: were a loose file removed while its packed entry
    // remained, the old value would come back), the locks last.
    let mut deleted = Vec::new();
    for (locked, edit) in locks.into_iter().zip(&edits) {
        match &edit.change {
            Change::Update {
                new: Target::Object(new),
                log,
                ..
            } => {
                let Locked {
                    name,
                    lock,
                    current,
                    ..
                } = locked;
                log_update(repo, &name, current, *new, committer, log.message.as_ref())?;
                lock.commit()
                    .map_err(|e| anyhow::anyhow!("moving {name}: {}", e.error))?;
            }
            _ => deleted.push(locked),
        }
    }
    if let (Some(lock), Some(packed)) = (&packed_lock, &packed) {
        if !unpack.is_empty() {
            let gone = &unpack;
            lock.replace(|file| super::packed_refs::write_merged(file, Some(packed), &[], gone))?;
        }
    }
    for locked in deleted {
        let log = reflog_path(repo, &locked.name);
        if log.is_file() {
            std::fs::remove_file(&log).with_context(|| format!("deleting {}", log.display()))?;
        }
        match std::fs::remove_file(&locked.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("deleting {}", locked.name));
            }
            _ => {}
        }
        // Dropping the lock also removes the directories it leaves empty.
        drop(locked.lock);
    }
    drop(packed_lock);
    Ok(())
}

/// A ref being written: its lock, and its value when the lock was taken.
struct Locked {
    name: String,
    path: std::path::PathBuf,
    lock: gix::lock::File,
    current: Option<ObjectId>,
}

fn reflog_path(repo: &gix::Repository, name: &str) -> std::path::PathBuf {
    repo.common_dir().join("logs").join(name)
}

/// Append the reflog line of an update where git would: when the ref has a
/// reflog (whatever `core.logAllRefUpdates` says), or that setting is
/// `always` (refs under `refs/agent/` get none by default).
fn log_update(
    repo: &gix::Repository,
    name: &str,
    old: Option<ObjectId>,
    new: ObjectId,
    committer: &gix::actor::Signature,
    message: &gix::bstr::BStr,
) -> Result<()> {
    use gix::refs::store::WriteReflog;
    let path = reflog_path(repo, name);
    // A directory there is no reflog, for git too.
    let wanted = matches!(repo.refs.write_reflog, WriteReflog::Always) || path.is_file();
    if !wanted {
        return Ok(());
    }
    let dir = path.parent().context("a reflog has a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let old = old.unwrap_or_else(|| ObjectId::null(new.kind()));
    let mut time = gix::date::parse::TimeBuf::default();
    // As git writes it: no newline or angle bracket in the identity, the
    // message on one line with its spaces squeezed, no tab when empty.
    let ident = |s: &gix::bstr::BStr| s.to_string().replace(['\n', '<', '>'], "");
    let message = message.to_string();
    let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut line = format!(
        "{old} {new} {} <{}> {}",
        ident(committer.name.as_ref()),
        ident(committer.email.as_ref()),
        committer.time.to_str(&mut time),
    );
    if !message.is_empty() {
        line.push('\t');
        line.push_str(&message);
    }
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(line.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// The object ref `name` (a full name) points at, if it exists: its loose
/// file, or its entry in `packed-refs`. Reads one file where a gix lookup by
/// name tries git's whole list of places first.
pub(super) fn find(repo: &gix::Repository, name: &str) -> Result<Option<ObjectId>> {
    if repo.refs.namespace.is_some() {
        // gix knows where a namespace puts the ref.
        let found = repo.try_find_reference(name)?;
        return found
            .map(|r| {
                r.try_id()
                    .map(|id| id.detach())
                    .with_context(|| format!("{name} is a symbolic ref"))
            })
            .transpose();
    }
    // Validated as gix would, so that no name reads outside the refs.
    gix::refs::FullName::try_from(name).with_context(|| format!("{name:?} is no ref name"))?;
    match value(&repo.common_dir().join(name), name, None)? {
        Some(id) => Ok(Some(id)),
        // Read packed-refs only now: `git pack-refs` writes it before it
        // removes a loose file, so a ref is always in one of the two.
        None => Ok(fresh_packed(repo)?
            .map(|packed| packed_value(&packed, name))
            .transpose()?
            .flatten()),
    }
}

/// The refs directly under `prefix` (which ends in `/`), as (name less the
/// prefix, object), in name order. A loose ref that `git pack-refs` removes
/// while we list is found in `packed-refs`, which is read last for that
/// reason: pack-refs writes it before it removes the loose files.
pub(super) fn list(repo: &gix::Repository, prefix: &str) -> Result<Vec<(String, ObjectId)>> {
    use std::io::ErrorKind::{NotADirectory, NotFound};
    let dir = repo.common_dir().join(prefix);
    let mut all = std::collections::BTreeMap::new();
    // Symbolic refs are not listed, and hide any packed entry of their name.
    let mut symbolic = BTreeSet::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.collect::<std::io::Result<Vec<_>>>(),
        // No such directory, or a ref of that name (`refs/heads/agent`).
        Err(e) if matches!(e.kind(), NotFound | NotADirectory) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
    .with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let Ok(id) = entry.file_name().into_string() else {
            continue;
        };
        // Lock files and other names git would never give a ref.
        let name = format!("{prefix}{id}");
        if id.ends_with(".lock") || gix::refs::FullName::try_from(name.as_str()).is_err() {
            continue;
        }
        match read_loose(&entry.path(), &name)? {
            Loose::Object(oid) => {
                all.insert(id, oid);
            }
            Loose::Symbolic => {
                symbolic.insert(id);
            }
            // Pruned since the listing (it is packed now), or a directory
            // of deeper refs.
            Loose::Missing => {}
        }
    }
    if let Some(packed) = fresh_packed(repo)? {
        let entries = packed
            .iter_prefixed(BString::from(prefix))
            .map_err(|e| anyhow::anyhow!("reading packed-refs: {e}"))?;
        for entry in entries {
            let entry = entry.map_err(|e| anyhow::anyhow!("reading packed-refs: {e}"))?;
            let name = entry.name.as_bstr().to_string();
            let Some(id) = name.strip_prefix(prefix).filter(|id| !id.contains('/')) else {
                continue;
            };
            if !symbolic.contains(id) {
                all.entry(id.to_string()).or_insert_with(|| entry.target());
            }
        }
    }
    Ok(all.into_iter().collect())
}

/// `packed-refs` as it is on disk now. gix's cached copy is reloaded only
/// when the file's modification time changes, which two rewrites within
/// one clock tick do not do.
fn fresh_packed(repo: &gix::Repository) -> Result<Option<Buffer>> {
    repo.refs
        .open_packed_buffer()
        .map_err(|e| anyhow::anyhow!("reading packed-refs: {e}"))
}

/// The value of ref `name`: its loose file at `path`, else its entry in
/// `packed`.
fn value(path: &Path, name: &str, packed: Option<&Buffer>) -> Result<Option<ObjectId>> {
    match read_loose(path, name)? {
        Loose::Object(id) => Ok(Some(id)),
        Loose::Symbolic => bail!("{name} is a symbolic ref"),
        Loose::Missing => Ok(packed.map(|p| packed_value(p, name)).transpose()?.flatten()),
    }
}

/// What the loose file of a ref holds.
enum Loose {
    /// No file, or a directory of deeper refs: for git, no loose ref.
    Missing,
    Symbolic,
    Object(ObjectId),
}

fn read_loose(path: &Path, name: &str) -> Result<Loose> {
    use std::io::ErrorKind::{IsADirectory, NotFound};
    match std::fs::read(path) {
        Ok(content) if content.starts_with(b"ref:") => Ok(Loose::Symbolic),
        Ok(content) => ObjectId::from_hex(content.trim_ascii_end())
            .map(Loose::Object)
            .with_context(|| format!("{name} does not hold an object id")),
        Err(e) if matches!(e.kind(), NotFound | IsADirectory) => Ok(Loose::Missing),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn packed_value(packed: &Buffer, name: &str) -> Result<Option<ObjectId>> {
    let found = packed
        .try_find(name)
        .map_err(|e| anyhow::anyhow!("reading {name} in packed-refs: {e}"))?;
    Ok(found.map(|r| r.target()))
}

fn is_packed(packed: Option<&Buffer>, name: &str) -> Result<bool> {
    Ok(match packed {
        Some(packed) => packed_value(packed, name)?.is_some(),
        None => false,
    })
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

    fn me() -> gix::actor::Signature {
        gix::actor::Signature {
            name: "tester".into(),
            email: "tester@localhost".into(),
            time: gix::date::Time::new(1_700_000_000, 3600),
        }
    }

    fn update(name: &str, new: ObjectId, expected: PreviousValue) -> RefEdit {
        ref_update(name.into(), new, expected, "test").unwrap()
    }

    /// Create ref `name` at `id` through [`commit`].
    fn create(repo: &gix::Repository, name: &str, id: ObjectId) {
        let edit = update(name, id, PreviousValue::MustNotExist);
        commit(repo, vec![edit], WAIT, &me()).unwrap();
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
        commit(&repo, vec![update(name, b, matching(a))], WAIT, &me()).unwrap();
        assert_eq!(git_value(dir.path(), name), b.to_string());
        assert_eq!(find(&repo, name).unwrap(), Some(b));
        std::fs::remove_file(packed_lock).unwrap();
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_stale_expectation_moves_no_ref_of_the_transaction() {
        let (dir, repo, a, b) = repo();
        let (one, two) = ("refs/agent/tasks/t-a", "refs/agent/leases/t-a");
        create(&repo, one, a);
        let stale = vec![
            update(two, a, PreviousValue::MustNotExist),
            update(one, b, matching(b)),
        ];
        let err = commit(&repo, stale, WAIT, &me()).unwrap_err().to_string();
        assert!(err.contains("refs/agent/tasks/t-a moved"), "{err}");
        assert_eq!(git_value(dir.path(), one), a.to_string());
        assert_eq!(git_value(dir.path(), two), "");
        let again = vec![update(one, b, PreviousValue::MustNotExist)];
        let err = commit(&repo, again, WAIT, &me()).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        let missing = vec![update(two, b, matching(a))];
        let err = commit(&repo, missing, WAIT, &me()).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_held_ref_lock_refuses_the_write() {
        let (dir, repo, a, b) = repo();
        let name = "refs/agent/tasks/t-a";
        create(&repo, name, a);
        let lock = dir.path().join(".git/refs/agent/tasks/t-a.lock");
        std::fs::write(&lock, "").unwrap();
        let err = commit(&repo, vec![update(name, b, matching(a))], WAIT, &me()).unwrap_err();
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
    fn a_deletion_removes_the_packed_entry_and_the_loose_file() {
        let (dir, repo, a, b) = repo();
        let (gone, kept) = ("refs/agent/leases/t-a", "refs/agent/tasks/t-a");
        let creations = vec![
            update(gone, a, PreviousValue::MustNotExist),
            update(kept, a, PreviousValue::MustNotExist),
        ];
        crate::store::packed_refs::create(&repo, creations).unwrap();
        // A newer loose value over the packed one, as after any update.
        commit(&repo, vec![update(gone, b, matching(a))], WAIT, &me()).unwrap();
        let stale = vec![ref_delete(gone.into(), a).unwrap()];
        let err = commit(&repo, stale, WAIT, &me()).unwrap_err().to_string();
        assert!(err.contains("moved"), "{err}");
        commit(
            &repo,
            vec![ref_delete(gone.into(), b).unwrap()],
            WAIT,
            &me(),
        )
        .unwrap();
        assert_eq!(git_value(dir.path(), gone), "", "neither value comes back");
        assert_eq!(git_value(dir.path(), kept), a.to_string());
        let packed = std::fs::read_to_string(dir.path().join(".git/packed-refs")).unwrap();
        assert!(!packed.contains(gone), "{packed}");
        assert!(packed.contains(kept), "{packed}");
        assert!(!dir.path().join(".git/refs/agent/leases").exists());
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_deletion_waits_for_packed_refs_lock() {
        let (dir, repo, a, _) = repo();
        let name = "refs/agent/leases/t-a";
        create(&repo, name, a);
        let packed_lock = dir.path().join(".git/packed-refs.lock");
        std::fs::write(&packed_lock, "").unwrap();
        let err = commit(
            &repo,
            vec![ref_delete(name.into(), a).unwrap()],
            WAIT,
            &me(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("packed-refs"), "{err}");
        assert_eq!(git_value(dir.path(), name), a.to_string());
        assert_eq!(leftovers(dir.path()), vec![".git/packed-refs.lock"]);
    }

    #[test]
    fn a_listing_merges_loose_and_packed_refs_of_one_level() {
        let (dir, repo, a, b) = repo();
        let packed = vec![
            update("refs/agent/tasks/t-a", a, PreviousValue::MustNotExist),
            update("refs/agent/tasks/t-c", a, PreviousValue::MustNotExist),
            update("refs/agent/tasks/deep/t-d", a, PreviousValue::MustNotExist),
        ];
        crate::store::packed_refs::create(&repo, packed).unwrap();
        let loose = vec![
            update("refs/agent/tasks/t-a", b, matching(a)),
            update("refs/agent/tasks/t-b", b, PreviousValue::MustNotExist),
            update("refs/agent/tasks/more/t-e", b, PreviousValue::MustNotExist),
        ];
        commit(&repo, loose, WAIT, &me()).unwrap();
        std::fs::write(dir.path().join(".git/refs/agent/tasks/t-f.lock"), "").unwrap();
        let listed = list(&repo, "refs/agent/tasks/").unwrap();
        let expected = [("t-a", b), ("t-b", b), ("t-c", a)];
        let expected: Vec<(String, ObjectId)> = expected
            .iter()
            .map(|(n, id)| (n.to_string(), *id))
            .collect();
        assert_eq!(listed, expected);
        assert_eq!(list(&repo, "refs/agent/plans/").unwrap(), vec![]);
    }

    #[test]
    fn a_listing_skips_symbolic_refs_and_a_ref_in_place_of_the_directory() {
        let (dir, repo, a, _) = repo();
        let refs = dir.path().join(".git/refs/agent");
        std::fs::create_dir_all(refs.join("tasks")).unwrap();
        std::fs::write(refs.join("tasks/t-a"), format!("{a}\n")).unwrap();
        std::fs::write(refs.join("tasks/link"), "ref: refs/agent/tasks/t-a\n").unwrap();
        let listed = list(&repo, "refs/agent/tasks/").unwrap();
        assert_eq!(listed, vec![("t-a".to_string(), a)]);
        std::fs::write(refs.join("plans"), format!("{a}\n")).unwrap();
        assert_eq!(list(&repo, "refs/agent/plans/").unwrap(), vec![]);
    }

    /// Were the loose file removed before the packed entry, a failure in
    /// between would bring the old packed value back.
    #[test]
    fn a_deletion_that_cannot_rewrite_packed_refs_keeps_the_ref() {
        let (dir, repo, a, b) = repo();
        let name = "refs/agent/leases/t-a";
        let packed: Vec<RefEdit> = std::iter::once(name.to_string())
            .chain((0..30).map(|i| format!("refs/agent/tasks/t-{i:02}")))
            .map(|n| update(&n, a, PreviousValue::MustNotExist))
            .collect();
        crate::store::packed_refs::create(&repo, packed).unwrap();
        commit(&repo, vec![update(name, b, matching(a))], WAIT, &me()).unwrap();
        // A damaged line at the end: the rewrite fails when it reaches it.
        let path = dir.path().join(".git/packed-refs");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"0123 refs/zzz\n").unwrap();
        let deletion = vec![ref_delete(name.into(), b).unwrap()];
        assert!(commit(&repo, deletion, WAIT, &me()).is_err());
        assert_eq!(find(&repo, name).unwrap(), Some(b));
        assert!(dir.path().join(".git").join(name).exists());
    }

    #[test]
    fn other_refs_and_reflog_only_edits_are_left_to_gix() {
        let (_dir, repo, a, _) = repo();
        let ours = "refs/agent/tasks/t-a";
        assert!(handles(
            &repo,
            &[update(ours, a, PreviousValue::MustNotExist)]
        ));
        assert!(handles(&repo, &[ref_delete(ours.into(), a).unwrap()]));
        let heads = update("refs/heads/main", a, PreviousValue::Any);
        assert!(!handles(&repo, &[heads]));
        let twice = update(ours, a, PreviousValue::Any);
        assert!(!handles(&repo, &[twice.clone(), twice]));
        let mut log_only = update(ours, a, PreviousValue::Any);
        if let Change::Update { log, .. } = &mut log_only.change {
            log.mode = RefLog::Only;
        }
        assert!(!handles(&repo, &[log_only]));
    }

    #[test]
    fn an_existing_reflog_is_kept_even_where_git_would_start_none() {
        let (dir, _, a, b) = repo();
        let config = dir.path().join(".git/config");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str("[core]\n\tlogAllRefUpdates = false\n");
        std::fs::write(&config, text).unwrap();
        let repo = gix::open(dir.path()).unwrap();
        let name = "refs/agent/tasks/t-a";
        create(&repo, name, a);
        let log = dir.path().join(".git/logs").join(name);
        assert!(!log.exists(), "none started");
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        std::fs::write(&log, "").unwrap();
        let who = gix::actor::Signature {
            name: "Odd\n<Name>".into(),
            email: "odd@<host>".into(),
            ..me()
        };
        let mut edit = update(name, b, matching(a));
        if let Change::Update { log, .. } = &mut edit.change {
            log.message = "".into();
        }
        commit(&repo, vec![edit], WAIT, &who).unwrap();
        let line = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            line,
            format!("{a} {b} OddName <odd@host> 1700000000 +0100\n")
        );
    }

    #[test]
    fn reflogs_are_kept_where_git_keeps_them_and_go_with_their_ref() {
        let (dir, _, a, b) = repo();
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        git(&["config", "core.logAllRefUpdates", "always"]);
        let repo = gix::open(dir.path()).unwrap();
        let name = "refs/agent/tasks/t-a";
        create(&repo, name, a);
        commit(&repo, vec![update(name, b, matching(a))], WAIT, &me()).unwrap();
        let raw = std::fs::read_to_string(dir.path().join(".git/logs").join(name)).unwrap();
        let null = ObjectId::null(a.kind());
        let who = "tester <tester@localhost> 1700000000 +0100";
        assert_eq!(
            raw,
            format!("{null} {a} {who}\tgit-agent: test\n{a} {b} {who}\tgit-agent: test\n")
        );
        // git reads it as the ref's reflog.
        let previous = git(&["rev-parse", &format!("{name}@{{1}}")]);
        assert_eq!(previous.trim(), a.to_string());
        commit(
            &repo,
            vec![ref_delete(name.into(), b).unwrap()],
            WAIT,
            &me(),
        )
        .unwrap();
        assert!(!dir.path().join(".git/logs").join(name).exists());
        assert_eq!(git_value(dir.path(), name), "");
    }
}
