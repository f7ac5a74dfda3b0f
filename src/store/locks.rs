//! Breaking ref locks that a killed process left behind.
//!
//! A `<ref>.lock` file lives for microseconds while its writer runs; one
//! older than [`STALE_LOCK`] under `refs/agent/` was left by a process
//! killed mid-write, and would block its task for good. It is removed, so
//! that a kill -9 costs a task ten seconds, never its future.
//!
//! Several processes may judge the same lock stale at once. Were each to
//! delete what it found, a late one could delete the fresh lock another has
//! just taken, and two writers would then both hold "the" lock. So breakers
//! take turns, through an advisory lock (`flock`) on a file that is never
//! deleted, which the kernel lets go of when its holder dies; in its turn a
//! breaker removes the lock only if it is still the very file it judged.
//! Only breakers remove someone else's lock, so no one can slip in between.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// A ref lock older than this was left by a killed process.
pub(super) const STALE_LOCK: Duration = Duration::from_secs(10);

/// Remove `lock` (of the repository whose common dir is `common`) if it is
/// older than [`STALE_LOCK`]. Returns whether it did.
pub(super) fn break_if_stale(common: &Path, lock: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(lock) else {
        return false;
    };
    let age = meta.modified().ok().and_then(|t| t.elapsed().ok());
    age.is_some_and(|age| age > STALE_LOCK) && remove_if_same(common, lock, &meta)
}

/// In the breakers' turn, remove `lock` if it is still the file `judged`
/// describes. Returns whether it did.
pub(super) fn remove_if_same(common: &Path, lock: &Path, judged: &Metadata) -> bool {
    let agent = common.join("agent");
    if std::fs::create_dir_all(&agent).is_err() {
        return false;
    }
    let Ok(turns) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(agent.join("lock-breaker"))
    else {
        return false;
    };
    if turns.lock().is_err() {
        return false;
    }
    // The inode alone does not tell: a lock deleted and taken anew often
    // gets the same number back. Its modification time does.
    let same = std::fs::metadata(lock).is_ok_and(|now| {
        (now.ino(), now.dev(), now.mtime(), now.mtime_nsec())
            == (
                judged.ino(),
                judged.dev(),
                judged.mtime(),
                judged.mtime_nsec(),
            )
    });
    same && std::fs::remove_file(lock).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, seconds: u64) {
        let then = std::time::SystemTime::now() - Duration::from_secs(seconds);
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(then).unwrap();
    }

    #[test]
    fn only_a_lock_older_than_the_limit_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("t-a.lock");
        std::fs::write(&lock, "").unwrap();
        age(&lock, 5);
        assert!(!break_if_stale(dir.path(), &lock));
        assert!(lock.exists());
        age(&lock, 60);
        assert!(break_if_stale(dir.path(), &lock));
        assert!(!lock.exists());
        assert!(!break_if_stale(dir.path(), &lock), "nothing left to break");
    }

    #[test]
    fn a_fresh_lock_in_place_of_the_stale_one_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("t-a.lock");
        std::fs::write(&lock, "").unwrap();
        age(&lock, 60);
        let judged = std::fs::metadata(&lock).unwrap();
        // Another process broke it and took the lock in the meantime.
        std::fs::remove_file(&lock).unwrap();
        std::fs::write(&lock, "theirs").unwrap();
        assert!(!remove_if_same(dir.path(), &lock, &judged));
        assert_eq!(std::fs::read_to_string(&lock).unwrap(), "theirs");
    }

    #[test]
    fn breakers_take_turns() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("t-a.lock");
        std::fs::write(&lock, "").unwrap();
        age(&lock, 60);
        let judged = std::fs::metadata(&lock).unwrap();
        let agent = dir.path().join("agent");
        std::fs::create_dir_all(&agent).unwrap();
        let turns = std::fs::File::create(agent.join("lock-breaker")).unwrap();
        turns.lock().unwrap();
        let breaker = {
            let (dir, lock) = (dir.path().to_path_buf(), lock.clone());
            std::thread::spawn(move || remove_if_same(&dir, &lock, &judged))
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(lock.exists(), "no breaking out of turn");
        turns.unlock().unwrap();
        assert!(breaker.join().unwrap());
        assert!(!lock.exists());
    }
}
