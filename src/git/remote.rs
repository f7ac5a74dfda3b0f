//! Fetch and push: what `git agent sync` moves between a clone and a remote.

use anyhow::{Context, Result};
use std::path::Path;
use std::process::Stdio;

use super::command;

/// git could not talk to the remote at all (a fetch that failed, a push
/// that refused no ref): what a machine that lost its remote sees, as
/// against a remote that answered and refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(pub String);

/// Whether `error` (or what caused it) is [`Unreachable`].
pub fn is_unreachable(error: &anyhow::Error) -> bool {
    error.chain().any(|e| e.is::<Unreachable>())
}

/// Fetch `refspecs` from `remote` (a remote name or URL), pruning refs
/// under their destinations that the remote no longer has. Hooks off: a
/// fetch of agent refs is bookkeeping, not the user's fetch.
pub fn fetch(dir: &Path, remote: &str, refspecs: &[&str]) -> Result<()> {
    let mut args = vec![
        "-c",
        "core.hooksPath=/dev/null",
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "--prune",
        remote,
    ];
    args.extend_from_slice(refspecs);
    super::run(dir, &args)
        .map(|_| ())
        .map_err(|e| Unreachable(format!("fetching from {remote}: {e:#}")).into())
}

/// Fetch branch `branch` of `remote` to `refs/remotes/<remote>/<branch>`, as
/// `git fetch <remote> <branch>` would; its tip, or `None` where the remote
/// has no such branch. An unreachable remote is an error.
pub fn fetch_branch(dir: &Path, remote: &str, branch: &str) -> Result<Option<String>> {
    let tracking = format!("refs/remotes/{remote}/{branch}");
    let refspec = format!("+refs/heads/{branch}:{tracking}");
    match fetch(dir, remote, &[&refspec]) {
        Ok(()) => Ok(super::try_run(
            dir,
            &["rev-parse", "--verify", "--quiet", &tracking],
        )?),
        Err(e) => {
            // Told apart from an unreachable remote by asking it once more.
            let heads = format!("refs/heads/{branch}");
            match super::try_run(dir, &["ls-remote", "--heads", remote, &heads])? {
                Some(listed) if listed.is_empty() => Ok(None),
                _ => Err(e),
            }
        }
    }
}

/// The names of the configured remotes, in git's order.
pub fn remotes(dir: &Path) -> Result<Vec<String>> {
    Ok(super::run(dir, &["remote"])?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// One ref a push moves: to `new` (`None`: delete it), where the remote
/// holds exactly `expected` (`None`: the ref must not exist there).
#[derive(Clone, Debug, PartialEq)]
pub struct PushRef {
    pub name: String,
    pub new: Option<String>,
    pub expected: Option<String>,
}

/// What became of an atomic push.
#[derive(Debug, PartialEq)]
pub enum Pushed {
    /// Every ref moved.
    Landed,
    /// Nothing moved: the remote refused (a ref was not where we expected,
    /// or a hook said no); git's words.
    Rejected(String),
}

/// Push `refs` to `remote` all or nothing (`--atomic`), each with a
/// compare-and-swap on its expected value (`--force-with-lease=<ref>:<old>`).
/// A ref whose expected value does not match makes the whole push land
/// nowhere, and `Rejected` says so; an unreachable remote is an error.
pub fn push_atomic(dir: &Path, remote: &str, refs: &[PushRef]) -> Result<Pushed> {
    if refs.is_empty() {
        return Ok(Pushed::Landed);
    }
    let mut args: Vec<String> = [
        "-c",
        "core.hooksPath=/dev/null",
        "push",
        "--atomic",
        "--porcelain",
        "--quiet",
        "--no-verify",
        remote,
    ]
    .map(String::from)
    .to_vec();
    for r in refs {
        let expected = r.expected.as_deref().unwrap_or("");
        args.push(format!("--force-with-lease={}:{expected}", r.name));
    }
    for r in refs {
        args.push(match &r.new {
            Some(new) => format!("{new}:{}", r.name),
            None => format!(":{}", r.name),
        });
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = command(dir, &argv)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running git push to {remote}"))?;
    if output.status.success() {
        return Ok(Pushed::Landed);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // `--porcelain` prints one line per ref: `!` marks a refused one. With
    // none of those, git could not talk to the remote at all.
    let refused: Vec<&str> = stdout.lines().filter(|l| l.starts_with('!')).collect();
    if refused.is_empty() {
        return Err(Unreachable(format!("git push to {remote} failed: {}", stderr.trim())).into());
    }
    Ok(Pushed::Rejected(refused.join("; ")))
}

/// Whether the words of a [`Pushed::Rejected`] say the remote refuses the
/// refs themselves (a hook of the remote declined them, or it hides them,
/// as `transfer.hideRefs` and some forges do), which no retry changes; a
/// ref that moved meanwhile is not such a refusal.
pub fn refused_for_good(why: &str) -> bool {
    why.contains("hook declined") || why.contains("hidden ref")
}

/// Merge notes ref `other` into `notes_ref` by union: a note both sides
/// hold for one commit keeps every line of both once
/// (`git notes merge -s cat_sort_uniq`), which fits notes of one JSON
/// record a line. `other` is a full ref name outside `refs/notes/`.
pub fn notes_merge_union(dir: &Path, notes_ref: &str, other: &str) -> Result<()> {
    super::run(
        dir,
        &[
            "notes",
            "--ref",
            notes_ref,
            "merge",
            "--quiet",
            "--strategy=cat_sort_uniq",
            other,
        ],
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{commit, git, repo};
    use super::*;

    fn bare() -> tempfile::TempDir {
        let hub = tempfile::tempdir().unwrap();
        git(hub.path(), &["init", "-q", "--bare"]);
        hub
    }

    #[test]
    fn a_push_lands_only_where_every_lease_matches() {
        let dir = repo();
        let hub = bare();
        let url = hub.path().to_str().unwrap();
        let one = git(dir.path(), &["rev-parse", "HEAD"]);
        let two = commit(dir.path(), "file", "two", "two");
        let create = |name: &str, new: &str| PushRef {
            name: name.into(),
            new: Some(new.into()),
            expected: None,
        };
        let landed = push_atomic(dir.path(), url, &[create("refs/agent/a", &one)]).unwrap();
        assert_eq!(landed, Pushed::Landed);
        // b would be fine alone; a's lease is stale, so neither moves.
        let stale = PushRef {
            name: "refs/agent/a".into(),
            new: Some(two.clone()),
            expected: Some(two.clone()),
        };
        let out = push_atomic(dir.path(), url, &[create("refs/agent/b", &two), stale]).unwrap();
        assert!(matches!(out, Pushed::Rejected(_)), "{out:?}");
        assert_eq!(git(hub.path(), &["rev-parse", "refs/agent/a"]), one);
        assert!(git(hub.path(), &["for-each-ref", "refs/agent/b"]).is_empty());
        // Fetched back into a namespace of its own.
        fetch(dir.path(), url, &["+refs/agent/*:refs/agent-remotes/hub/*"]).unwrap();
        assert_eq!(
            git(dir.path(), &["rev-parse", "refs/agent-remotes/hub/a"]),
            one
        );
    }

    #[test]
    fn a_remote_that_hides_or_declines_refs_refuses_for_good_and_a_moved_ref_does_not() {
        let dir = repo();
        let one = git(dir.path(), &["rev-parse", "HEAD"]);
        let create = PushRef {
            name: "refs/agent/a".into(),
            new: Some(one.clone()),
            expected: None,
        };
        let hidden = bare();
        git(
            hidden.path(),
            &["config", "transfer.hideRefs", "refs/agent"],
        );
        let declined = bare();
        let hook = declined.path().join("hooks/pre-receive");
        std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
        std::fs::write(&hook, "#!/bin/sh\nexit 1\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        for hub in [&hidden, &declined] {
            let url = hub.path().to_str().unwrap();
            let Pushed::Rejected(why) =
                push_atomic(dir.path(), url, std::slice::from_ref(&create)).unwrap()
            else {
                panic!("{url} took the ref");
            };
            assert!(refused_for_good(&why), "{why}");
        }
        // A lease that no longer matches: a fetch and a new round can land.
        let open = bare();
        let url = open.path().to_str().unwrap();
        push_atomic(dir.path(), url, std::slice::from_ref(&create)).unwrap();
        let stale = PushRef {
            new: Some(commit(dir.path(), "file", "two", "two")),
            expected: Some("1".repeat(40)),
            ..create
        };
        let Pushed::Rejected(why) = push_atomic(dir.path(), url, &[stale]).unwrap() else {
            panic!("a stale lease landed");
        };
        assert!(!refused_for_good(&why), "{why}");
    }

    #[test]
    fn notes_merge_keeps_every_line_of_both_sides() {
        let dir = repo();
        let head = git(dir.path(), &["rev-parse", "HEAD"]);
        let notes = |r: &str, line: &str| {
            git(
                dir.path(),
                &["notes", "--ref", r, "append", "-m", line, &head],
            );
        };
        notes("refs/notes/agent", "{\"a\":1}");
        git(
            dir.path(),
            &[
                "update-ref",
                "refs/agent-remotes/hub/notes/agent",
                "refs/notes/agent",
            ],
        );
        notes("refs/notes/agent", "{\"b\":2}");
        git(
            dir.path(),
            &[
                "update-ref",
                "refs/notes/other",
                "refs/agent-remotes/hub/notes/agent",
            ],
        );
        notes("refs/notes/other", "{\"c\":3}");
        let other = git(dir.path(), &["rev-parse", "refs/notes/other"]);
        git(
            dir.path(),
            &["update-ref", "refs/agent-remotes/hub/notes/agent", &other],
        );
        notes_merge_union(
            dir.path(),
            "refs/notes/agent",
            "refs/agent-remotes/hub/notes/agent",
        )
        .unwrap();
        let merged = git(dir.path(), &["notes", "--ref", "agent", "show", &head]);
        let mut lines: Vec<&str> = merged.lines().filter(|l| !l.is_empty()).collect();
        lines.sort();
        assert_eq!(lines, ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"]);
    }
}
