//! Ids for tasks (`t-…`), plans (`p-…`) and events (`e-…`), and the check that
//! keeps any name that becomes a ref or a path inside `[a-z0-9-]`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Random characters in an id: 6 gives 2^30 values, and every create is a
/// "must not exist" on the ref, so a collision is a retry, never an overwrite.
pub const RANDOM_LEN: usize = 6;

/// A fresh id `<prefix>-<random base32>`, e.g. `t-7k3f2a`.
pub fn generate(prefix: &str, len: usize) -> String {
    let mut bits = random_u64() as u128 | ((random_u64() as u128) << 64);
    let mut id = String::with_capacity(prefix.len() + 1 + len);
    id.push_str(prefix);
    id.push('-');
    for _ in 0..len {
        id.push(ALPHABET[(bits & 31) as usize] as char);
        bits >>= 5;
    }
    id
}

/// 64 random bits from the OS-seeded keys of std's `RandomState`, mixed with
/// the clock and the pid so that two processes started together still differ.
pub fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// Whether `name` may become part of a ref or a path: non-empty, at most 64
/// characters of `[a-z0-9-]`, not starting with `-`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_names_with_their_prefix() {
        for _ in 0..100 {
            let id = generate("t", RANDOM_LEN);
            assert!(id.starts_with("t-"), "{id}");
            assert_eq!(id.len(), 2 + RANDOM_LEN);
            assert!(is_valid_name(&id), "{id}");
        }
    }

    #[test]
    fn generated_ids_differ() {
        let ids: std::collections::HashSet<_> = (0..1000).map(|_| generate("t", 8)).collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn names_that_could_escape_a_ref_or_path_are_refused() {
        for bad in [
            "", "-x", "T-abc", "t/abc", "../x", "t abc", "t_abc", "t.abc", "é",
        ] {
            assert!(!is_valid_name(bad), "{bad:?} should be refused");
        }
        assert!(is_valid_name("t-7k3f2a"));
    }
}
