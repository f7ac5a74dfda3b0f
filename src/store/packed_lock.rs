//! `packed-refs.lock` as git-agent holds it, and how a lock left by a
//! killed git-agent is told from one a git process still holds.
//!
//! git's own lock is an empty file that it keeps while it writes
//! `packed-refs.new` and renames that into place. A git process that is
//! merely slow (a `reference-transaction` hook, a `git gc` stopped with
//! Ctrl-Z, `git update-ref --stdin` between prepare and commit) leaves a
//! lock that looks just like an abandoned one, so no age makes it safe to
//! break. git-agent's lock is born with who holds it written in it (it is
//! written first, then linked into place, so there is never an empty one
//! where the file system can link):
//! a lock naming a git-agent process that is gone, of this boot of this
//! machine and of this process namespace, and owned by this user, is
//! broken. Any other lock is waited for, then reported with its holder.

use anyhow::{Context, Result};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::lease::{hostname, pid_is_running};

/// The first word of what git-agent writes into the lock it holds.
const MARK: &str = "git-agent";

/// `packed-refs.lock`, held until dropped.
pub(super) struct PackedLock {
    lock: PathBuf,
    packed: PathBuf,
}

impl PackedLock {
    /// Take `packed-refs.lock`, waiting as `wait` says, breaking one that a
    /// killed git-agent left behind.
    pub(super) fn acquire(repo: &gix::Repository, wait: gix::lock::acquire::Fail) -> Result<Self> {
        let common = repo.common_dir();
        let packed = repo.refs.packed_refs_path();
        let lock = packed.with_extension("lock");
        let mark = format!("{}\n", Holder::me().words().join(" "));
        let deadline = match wait {
            gix::lock::acquire::Fail::Immediately => Duration::ZERO,
            gix::lock::acquire::Fail::AfterDurationWithBackoff(d) => d,
        };
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            break_if_abandoned(common);
            match take(&lock, &mark) {
                Ok(()) => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::WouldBlock
                    ) =>
                {
                    if start.elapsed() >= deadline {
                        anyhow::bail!("{}", held_message(&lock));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("creating {}", lock.display()));
                }
            }
        }
        remove_leftovers(common);
        Ok(PackedLock { lock, packed })
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

impl Drop for PackedLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lock);
    }
}

/// Create `lock` holding `mark`, or fail with `AlreadyExists` (or
/// `WouldBlock`: try again). The mark is written to a file of its own beside
/// the lock first, then linked into place, which like an exclusive create
/// fails when the lock exists; so the lock is never seen empty. Where the
/// file system refuses the link, the lock is created and then marked.
fn take(lock: &Path, mark: &str) -> std::io::Result<()> {
    use std::io::ErrorKind::{AlreadyExists, NotFound, WouldBlock};
    let dir = lock.parent().expect("the lock has a directory");
    let mut marked = tempfile::Builder::new()
        .prefix(MARK_PREFIX)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)?;
    marked.write_all(mark.as_bytes())?;
    match std::fs::hard_link(marked.path(), lock) {
        Ok(()) => Ok(()),
        // Over NFS a link that worked can still answer "exists", when the
        // server's reply was lost and the request sent again.
        Err(e) if e.kind() == AlreadyExists => {
            let ours = std::fs::metadata(marked.path()).is_ok_and(|m| m.nlink() == 2);
            if ours {
                Ok(())
            } else {
                Err(e)
            }
        }
        // Our mark was reaped as a leftover while we were stopped.
        Err(e) if e.kind() == NotFound => Err(WouldBlock.into()),
        Err(_) => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(lock)?;
            file.write_all(mark.as_bytes())
        }
    }
    // Dropping `marked` removes its own name; the lock keeps the file.
}

/// Temporary files that become `packed-refs` start with this; git's own is
/// `packed-refs.new` exactly, which it creates only under the lock.
const NEW_PREFIX: &str = "packed-refs.new-";

/// Remove what a killed git-agent left of its work on `packed-refs`, in
/// the common dir `common`: new files it never renamed (only the lock holder
/// writes those, so all of them are leftovers), and marks it never linked
/// (a minute old: younger ones may be another process's, about to be
/// linked; one reaped too early only makes its writer try again).
fn remove_leftovers(common: &Path) {
    let Ok(entries) = std::fs::read_dir(common) else {
        return;
    };
    let old = |entry: &std::fs::DirEntry| {
        entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(60))
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(NEW_PREFIX) || (name.starts_with(MARK_PREFIX) && old(&entry)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The files in which a mark is written before it becomes the lock.
const MARK_PREFIX: &str = "packed-refs.mark-";

/// Who holds a lock git-agent took: enough to tell, from another process,
/// whether that holder is gone.
#[derive(Debug, PartialEq)]
struct Holder {
    pid: u32,
    host: String,
    /// This boot of the machine: a pid of an earlier boot means nothing.
    boot: String,
    /// The process namespace: a pid of another container means nothing.
    pid_ns: String,
}

impl Holder {
    fn me() -> Holder {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "-".to_string())
        };
        Holder {
            pid: std::process::id(),
            host: hostname(),
            boot: read("/proc/sys/kernel/random/boot_id"),
            pid_ns: std::fs::read_link("/proc/self/ns/pid")
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "-".to_string()),
        }
    }

    fn words(&self) -> Vec<String> {
        let pid = self.pid.to_string();
        [MARK, &pid, &self.host, &self.boot, &self.pid_ns]
            .iter()
            .map(|w| w.replace(char::is_whitespace, "_"))
            .collect()
    }

    /// The holder a lock's content names, if git-agent wrote it.
    fn of(content: &str) -> Option<Holder> {
        let mut words = content.split_whitespace();
        (words.next() == Some(MARK)).then_some(())?;
        Some(Holder {
            pid: words.next()?.parse().ok()?,
            host: words.next()?.to_string(),
            boot: words.next()?.to_string(),
            pid_ns: words.next()?.to_string(),
        })
    }
}

/// Remove `packed-refs.lock` of the repository whose common dir is
/// `common` if a git-agent process of this boot, machine, process
/// namespace and user holds it and is gone. Returns whether it did.
pub(super) fn break_if_abandoned(common: &Path) -> bool {
    let lock = common.join("packed-refs.lock");
    let abandoned = |meta: &std::fs::Metadata| {
        let Some(holder) = std::fs::read_to_string(&lock)
            .ok()
            .and_then(|c| Holder::of(&c))
        else {
            return false;
        };
        let me = Holder::me();
        let here = (&holder.host, &holder.boot, &holder.pid_ns) == (&me.host, &me.boot, &me.pid_ns);
        // SAFETY: geteuid cannot fail and touches no memory.
        let same_user = meta.uid() == unsafe { libc::geteuid() };
        here && same_user && !pid_is_running(holder.pid)
    };
    // A first look outside the breakers' turn spares the turn to live locks.
    let first_look = std::fs::metadata(&lock).is_ok_and(|m| abandoned(&m));
    first_look && super::locks::remove_in_turn(common, &lock, abandoned)
}

/// Why `lock` could not be taken, and what to do about it.
fn held_message(lock: &Path) -> String {
    let content = std::fs::read_to_string(lock).unwrap_or_default();
    match Holder::of(&content) {
        Some(h) => format!(
            "{} is held by git-agent (pid {} on {}); try again when it is done",
            lock.display(),
            h.pid,
            h.host
        ),
        None => format!(
            "{} is held, by git or a program using git; if no such process is running, remove it",
            lock.display()
        ),
    }
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

    fn mark(holder: &Holder) -> String {
        format!("{}\n", holder.words().join(" "))
    }

    #[test]
    fn the_lock_is_born_naming_its_holder_and_goes_with_it() {
        let (dir, repo) = repo();
        let lock_path = dir.path().join(".git/packed-refs.lock");
        let lock = PackedLock::acquire(&repo, Fail::Immediately).unwrap();
        let content = std::fs::read_to_string(&lock_path).unwrap();
        assert_eq!(Holder::of(&content), Some(Holder::me()));
        assert!(
            !break_if_abandoned(&dir.path().join(".git")),
            "its holder is alive"
        );
        let err = PackedLock::acquire(&repo, Fail::Immediately).err().unwrap();
        assert!(err.to_string().contains("held by git-agent (pid"), "{err}");
        lock.replace(|f| f.write_all(b"# pack-refs with: peeled fully-peeled sorted \n"))
            .unwrap();
        assert!(lock_path.exists(), "replacing packed-refs keeps the lock");
        drop(lock);
        assert!(!lock_path.exists());
        let packed = std::fs::read_to_string(dir.path().join(".git/packed-refs")).unwrap();
        assert!(packed.starts_with("# pack-refs"), "{packed}");
        let marks: Vec<_> = std::fs::read_dir(dir.path().join(".git"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with(MARK_PREFIX))
            .collect();
        assert!(marks.is_empty(), "{marks:?}");
    }

    #[test]
    fn only_a_dead_git_agents_lock_of_this_machine_is_broken_never_gits() {
        let (dir, repo) = repo();
        let common = dir.path().join(".git");
        let lock_path = common.join("packed-refs.lock");
        // git's lock: empty, however old.
        std::fs::write(&lock_path, "").unwrap();
        assert!(!break_if_abandoned(&common));
        let err = PackedLock::acquire(&repo, Fail::Immediately)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("if no such process is running, remove it"),
            "{err}"
        );
        assert!(lock_path.exists());
        // Ours, from a process of this machine that is gone.
        let dead = Holder {
            pid: dead_pid(),
            ..Holder::me()
        };
        std::fs::write(&lock_path, mark(&dead)).unwrap();
        std::fs::write(common.join("packed-refs.new-x1"), "half").unwrap();
        let lock = PackedLock::acquire(&repo, Fail::Immediately).unwrap();
        assert!(!common.join("packed-refs.new-x1").exists());
        drop(lock);
        // A dead pid of another machine, boot or container means nothing here.
        let elsewhere = [
            Holder {
                host: format!("not-{}", hostname()),
                ..Holder {
                    pid: dead_pid(),
                    ..Holder::me()
                }
            },
            Holder {
                boot: "an-earlier-boot".into(),
                ..Holder {
                    pid: dead_pid(),
                    ..Holder::me()
                }
            },
            Holder {
                pid_ns: "pid:[1]".into(),
                ..Holder {
                    pid: dead_pid(),
                    ..Holder::me()
                }
            },
        ];
        for holder in elsewhere {
            std::fs::write(&lock_path, mark(&holder)).unwrap();
            assert!(!break_if_abandoned(&common), "{holder:?}");
            assert!(lock_path.exists());
        }
    }
}
