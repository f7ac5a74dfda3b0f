//! `packed-refs.lock` as git-agent holds it, and how a lock left by a
//! killed git-agent is told from one a git process still holds.
//!
//! git's own lock is an empty file that it keeps while it writes
//! `packed-refs.new` and renames that into place. A git process that is
//! merely slow (a `reference-transaction` hook, a `git gc` stopped with
//! Ctrl-Z, `git update-ref --stdin` between prepare and commit) leaves a
//! lock that looks just like an abandoned one, so no age makes it safe to
//! break. git-agent therefore does the same as git, and writes into its
//! lock file who holds it: a lock naming a git-agent process of this
//! machine that is gone is broken; any other lock is waited for, and then
//! reported.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::lease::{hostname, pid_is_running};

/// What git-agent writes into the lock it holds.
const MARK: &str = "git-agent";

/// `packed-refs.lock`, held until dropped.
pub(super) struct PackedLock {
    /// Never committed: dropping it removes the lock file.
    _lock: gix::lock::File,
    packed: PathBuf,
}

impl PackedLock {
    /// Take `packed-refs.lock`, waiting as `wait` says, after breaking one
    /// that a killed git-agent left behind.
    pub(super) fn acquire(repo: &gix::Repository, wait: gix::lock::acquire::Fail) -> Result<Self> {
        let packed = repo.refs.packed_refs_path();
        let lock_path = packed.with_extension("lock");
        break_if_abandoned(&lock_path);
        let mut lock = gix::lock::File::acquire_to_update_resource(&packed, wait, None, 0)
            .map_err(|e| {
                anyhow::anyhow!(
                    "locking {}: {e}; if no git process is running, remove {}",
                    packed.display(),
                    lock_path.display()
                )
            })?;
        let mark = format!("{MARK} {} {}\n", std::process::id(), hostname());
        lock.with_mut(|file| file.write_all(mark.as_bytes()))
            .with_context(|| format!("writing {}", lock_path.display()))?;
        remove_leftovers(&packed);
        Ok(PackedLock {
            _lock: lock,
            packed,
        })
    }

    /// Replace `packed-refs` with what `write` writes, keeping the lock: the
    /// new file is written beside it and renamed into place, as git does.
    pub(super) fn replace(
        &self,
        write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
    ) -> Result<()> {
        let dir = self
            .packed
            .parent()
            .context("packed-refs has a directory")?;
        let mut tmp = tempfile::Builder::new()
            .prefix(NEW_PREFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        write(tmp.as_file_mut()).with_context(|| format!("writing {}", tmp.path().display()))?;
        tmp.persist(&self.packed)
            .with_context(|| format!("replacing {}", self.packed.display()))?;
        Ok(())
    }
}

/// Temporary files that become `packed-refs` start with this; git's own is
/// `packed-refs.new` exactly, which it creates only under the lock.
const NEW_PREFIX: &str = "packed-refs.new-";

/// Remove new `packed-refs` files that a killed git-agent never renamed.
/// Only the lock holder may: no one else writes them now.
fn remove_leftovers(packed: &Path) {
    let Some(dir) = packed.parent() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(NEW_PREFIX) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Remove `lock` if a git-agent process of this machine holds it and is
/// gone. Returns whether it did.
pub(super) fn break_if_abandoned(lock: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(lock) else {
        return false;
    };
    let Ok(content) = std::fs::read_to_string(lock) else {
        return false;
    };
    let mut words = content.split_whitespace();
    let ours = words.next() == Some(MARK);
    let pid = words.next().and_then(|p| p.parse::<u32>().ok());
    let host = words.next();
    let gone = match (ours, pid, host) {
        (true, Some(pid), Some(host)) => host == hostname() && !pid_is_running(pid),
        _ => false,
    };
    gone && super::tasks::remove_if_same(lock, &meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gix::lock::acquire::Fail;

    fn repo() -> (tempfile::TempDir, gix::Repository) {
        let dir = tempfile::tempdir().unwrap();
        let repo = gix::init(dir.path()).unwrap();
        (dir, repo)
    }

    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn the_lock_names_its_holder_and_goes_with_it() {
        let (dir, repo) = repo();
        let lock_path = dir.path().join(".git/packed-refs.lock");
        let lock = PackedLock::acquire(&repo, Fail::Immediately).unwrap();
        let content = std::fs::read_to_string(&lock_path).unwrap();
        let pid = std::process::id();
        assert_eq!(content, format!("git-agent {pid} {}\n", hostname()));
        assert!(!break_if_abandoned(&lock_path), "its holder is alive");
        lock.replace(|f| f.write_all(b"# pack-refs with: peeled fully-peeled sorted \n"))
            .unwrap();
        assert!(lock_path.exists(), "replacing packed-refs keeps the lock");
        drop(lock);
        assert!(!lock_path.exists());
        let packed = std::fs::read_to_string(dir.path().join(".git/packed-refs")).unwrap();
        assert!(packed.starts_with("# pack-refs"), "{packed}");
    }

    #[test]
    fn only_a_dead_git_agents_lock_is_broken_never_gits() {
        let (dir, repo) = repo();
        let lock_path = dir.path().join(".git/packed-refs.lock");
        // git's lock: empty, however old.
        std::fs::write(&lock_path, "").unwrap();
        assert!(!break_if_abandoned(&lock_path));
        let err = PackedLock::acquire(&repo, Fail::Immediately)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("if no git process is running, remove"),
            "{err}"
        );
        assert!(lock_path.exists());
        // Ours, from a process of this machine that is gone.
        let dead = format!("git-agent {} {}\n", dead_pid(), hostname());
        std::fs::write(&lock_path, dead).unwrap();
        std::fs::write(dir.path().join(".git/packed-refs.new-x1"), "half").unwrap();
        let lock = PackedLock::acquire(&repo, Fail::Immediately).unwrap();
        assert!(!dir.path().join(".git/packed-refs.new-x1").exists());
        drop(lock);
        // Ours, from another machine: its pid means nothing here.
        let elsewhere = format!("git-agent {} not-{}\n", dead_pid(), hostname());
        std::fs::write(&lock_path, elsewhere).unwrap();
        assert!(!break_if_abandoned(&lock_path));
    }
}
