//! Breaking ref locks that a killed process left behind.
//!
//! A `<ref>.lock` file lives for microseconds while its writer runs; one
//! older than [`STALE_LOCK`] under `refs/agent/` was left by a process
//! killed mid-write, and would block its task for good. It is removed, so
//! that a kill -9 costs a task ten seconds, never its future. (A git process
//! holding a lock of an agent ref for longer, say a `git pack-refs` stopped
//! with Ctrl-Z, would lose it; so would every holder on an NFS client whose
//! clock runs ten seconds ahead of the server.)
//!
//! Several processes may judge the same lock stale at once. Were each to
//! delete what it found, a late one could delete the fresh lock another has
//! just taken, and two writers would then both hold "the" lock. So breakers
//! take turns, through an advisory lock (`flock`) on a file that is never
//! deleted, which the kernel lets go of when its holder dies; a breaker
//! looks at the lock and judges it only in its turn. Only breakers remove
//! someone else's lock, so what it judged is what it removes.

use std::fs::Metadata;
use std::path::Path;
use std::time::{Duration, Instant};

/// A ref lock older than this was left by a killed process.
pub(super) const STALE_LOCK: Duration = Duration::from_secs(10);

/// How long a breaker waits for its turn before it gives up (and the
/// writer it serves goes on waiting for the lock, or fails).
const TURN_WAIT: Duration = Duration::from_secs(1);

/// Remove `lock` (of the repository whose common dir is `common`) if it is
/// older than [`STALE_LOCK`]. Returns whether it did.
pub(super) fn break_if_stale(common: &Path, lock: &Path) -> bool {
    let old = |meta: &Metadata| {
        let age = meta.modified().ok().and_then(|t| t.elapsed().ok());
        age.is_some_and(|age| age > STALE_LOCK)
    };
    // A first look outside the turn spares the turn to every live lock.
    std::fs::metadata(lock).is_ok_and(|m| old(&m)) && remove_in_turn(common, lock, old)
}

/// In the breakers' turn, remove `lock` if `abandoned` judges it so.
/// Returns whether it did.
pub(super) fn remove_in_turn(
    common: &Path,
    lock: &Path,
    abandoned: impl FnOnce(&Metadata) -> bool,
) -> bool {
    let Some(_turn) = Turn::take(common) else {
        return false;
    };
    std::fs::metadata(lock).is_ok_and(|m| abandoned(&m)) && std::fs::remove_file(lock).is_ok()
}

/// The breakers' turn: an flock on `agent/lock-breaker`, let go when
/// dropped (or when its process dies).
struct Turn(std::fs::File);

impl Turn {
    fn take(common: &Path) -> Option<Turn> {
        let agent = common.join("agent");
        let path = agent.join("lock-breaker");
        // Created once by whoever comes first; in a repository shared by
        // several users the others may only read it, which flock allows.
        let file = std::fs::create_dir_all(&agent)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
            })
            .or_else(|_| std::fs::File::open(&path))
            .ok()?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Some(Turn(file)),
                Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < TURN_WAIT => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(_) => return None,
            }
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
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
    fn a_lock_is_judged_again_in_the_turn() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("t-a.lock");
        // Another breaker removed the stale lock and a writer took it anew
        // before this breaker's turn came: the fresh one is left alone.
        std::fs::write(&lock, "theirs").unwrap();
        assert!(!remove_in_turn(dir.path(), &lock, |m| {
            m.modified().unwrap().elapsed().unwrap() > STALE_LOCK
        }));
        assert_eq!(std::fs::read_to_string(&lock).unwrap(), "theirs");
    }

    #[test]
    fn breakers_take_turns_and_give_up_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("t-a.lock");
        std::fs::write(&lock, "").unwrap();
        age(&lock, 60);
        let agent = dir.path().join("agent");
        std::fs::create_dir_all(&agent).unwrap();
        let turns = std::fs::File::create(agent.join("lock-breaker")).unwrap();
        turns.lock().unwrap();
        let start = Instant::now();
        assert!(
            !break_if_stale(dir.path(), &lock),
            "no breaking out of turn"
        );
        assert!(start.elapsed() >= TURN_WAIT);
        assert!(lock.exists());
        let breaker = {
            let (dir, lock) = (dir.path().to_path_buf(), lock.clone());
            std::thread::spawn(move || break_if_stale(&dir, &lock))
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(lock.exists());
        turns.unlock().unwrap();
        assert!(breaker.join().unwrap());
        assert!(!lock.exists());
    }
}
