//! Reading history: logs and diffs as a person reads them, the files a
//! change touches, patch ids (the same change under another commit) and
//! which commits carry notes.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Stdio;

use super::{command, run, try_run};

/// What `git log` prints for `revs` with `options` (`--format=..`,
/// `--reverse`, `--graph`, `--notes=..`, `--glob=..`), trimmed: text for a
/// person or a prompt, not for parsing ids.
pub fn log(dir: &Path, options: &[&str], revs: &[&str]) -> Result<String> {
    let mut args = vec!["log"];
    args.extend_from_slice(options);
    args.extend_from_slice(revs);
    run(dir, &args)
}

/// The patch from `from` to `to` as a person reads it: no colour, no
/// external diff driver.
pub fn diff(dir: &Path, from: &str, to: &str) -> Result<String> {
    run(dir, &["diff", "--no-color", "--no-ext-diff", from, to])
}

/// The `--stat` summary of the change from `from` to `to`.
pub fn diff_stat(dir: &Path, from: &str, to: &str) -> Result<String> {
    run(
        dir,
        &["diff", "--no-color", "--no-ext-diff", "--stat", from, to],
    )
}

/// The paths the change from `from` to `to` touches (renames count as a
/// deletion and an addition only where git does not detect them).
pub fn diff_names(dir: &Path, from: &str, to: &str) -> Result<Vec<String>> {
    Ok(run(dir, &["diff", "--name-only", from, to])?
        .lines()
        .map(String::from)
        .collect())
}

/// Options that make `log -p` and `diff` print patches the same way, so
/// that their patch ids compare.
const PATCH_OPTIONS: [&str; 4] = [
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-renames",
];

/// The stable patch id of each non-merge commit reachable from `tips` and
/// from none of `exclude`, as `(patch id, commit)`, newest first. A commit
/// that changes nothing has no id. Ids compare with [`diff_patch_id`].
pub fn commit_patch_ids(
    dir: &Path,
    tips: &[&str],
    exclude: &[&str],
) -> Result<Vec<(String, String)>> {
    let mut args = vec!["log", "-p", "--no-merges"];
    args.extend(PATCH_OPTIONS);
    args.extend_from_slice(tips);
    args.push("--not");
    args.extend_from_slice(exclude);
    patch_ids(dir, &args)
}

/// The stable patch id of the whole change from `from` to `to` (what a
/// squash of it would commit), or `None` where it changes nothing.
pub fn diff_patch_id(dir: &Path, from: &str, to: &str) -> Result<Option<String>> {
    let mut args = vec!["diff"];
    args.extend(PATCH_OPTIONS);
    args.extend([from, to]);
    Ok(patch_ids(dir, &args)?.into_iter().next().map(|(id, _)| id))
}

/// The stable patch id of each patch that `git <producer>` prints (`log -p`,
/// `diff`), as `(patch id, commit)` pairs in the producer's order (the commit
/// is all zeros for a plain diff; an empty patch has no id). The patches
/// stream from one git process into `git patch-id --stable`.
fn patch_ids(dir: &Path, producer: &[&str]) -> Result<Vec<(String, String)>> {
    let mut source = command(dir, producer)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running git {}", producer.join(" ")))?;
    let patches = source.stdout.take().context("git's stdout")?;
    let ids = command(dir, &["patch-id", "--stable"])
        .stdin(Stdio::from(patches))
        .output()
        .context("running git patch-id")?;
    let source = source.wait_with_output()?;
    if !source.status.success() || !ids.status.success() {
        bail!(
            "git {} | git patch-id failed: {}{}",
            producer.join(" "),
            String::from_utf8_lossy(&source.stderr).trim(),
            String::from_utf8_lossy(&ids.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&ids.stdout)
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(id, commit)| (id.to_string(), commit.to_string()))
        .collect())
}

/// The commits that have a note in `notes_ref`, listed by one `git notes
/// list` (cheaper than a lookup per commit when many are asked); empty
/// where the notes ref does not exist.
pub fn noted(dir: &Path, notes_ref: &str) -> Result<Vec<String>> {
    Ok(try_run(dir, &["notes", "--ref", notes_ref, "list"])?
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .map(String::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::rev::head;
    use super::super::testing::{commit, git, repo};
    use super::*;

    #[test]
    fn log_prints_what_the_options_ask_for() {
        let dir = repo();
        let d = dir.path();
        commit(d, "a", "a\n", "second");
        let subjects = log(d, &["--reverse", "--format=%s"], &["main"]).unwrap();
        assert_eq!(subjects, "base\nsecond");
    }

    #[test]
    fn diffs_name_stat_and_show_the_change() {
        let dir = repo();
        let d = dir.path();
        let base = head(d).unwrap();
        let tip = commit(d, "a", "a\n", "add a");
        assert_eq!(diff_names(d, &base, &tip).unwrap(), vec!["a"]);
        assert!(diff_names(d, &tip, &tip).unwrap().is_empty());
        assert!(diff(d, &base, &tip).unwrap().contains("+a"));
        assert!(diff_stat(d, &base, &tip)
            .unwrap()
            .contains("1 file changed"));
    }

    #[test]
    fn a_cherry_picked_commit_and_a_squash_share_patch_ids() {
        let dir = repo();
        let d = dir.path();
        let base = head(d).unwrap();
        git(d, &["checkout", "-q", "-b", "side"]);
        let one = commit(d, "a", "a\n", "one");
        commit(d, "b", "b\n", "two");
        git(d, &["checkout", "-q", "main"]);
        commit(d, "c", "c\n", "unrelated");
        git(d, &["-c", "core.hooksPath=/dev/null", "cherry-pick", &one]);
        let picked = head(d).unwrap();
        let on_main = commit_patch_ids(d, &["main"], &["side"]).unwrap();
        assert_eq!(on_main.len(), 2);
        assert_eq!(on_main[0].1, picked, "newest first");
        let on_side = commit_patch_ids(d, &["side"], &["main"]).unwrap();
        assert_eq!(on_side[1].1, one);
        assert_eq!(on_side[1].0, on_main[0].0, "same change, same id");
        // A squash of side: one commit of its whole diff.
        git(d, &["checkout", "-q", "-b", "squashed", &base]);
        git(
            d,
            &[
                "-c",
                "core.hooksPath=/dev/null",
                "merge",
                "-q",
                "--squash",
                "side",
            ],
        );
        git(
            d,
            &[
                "-c",
                "core.hooksPath=/dev/null",
                "commit",
                "-q",
                "-m",
                "squash",
            ],
        );
        let squash = commit_patch_ids(d, &["squashed"], &[&base]).unwrap();
        assert_eq!(
            diff_patch_id(d, &base, "side").unwrap(),
            Some(squash[0].0.clone())
        );
        assert_eq!(diff_patch_id(d, "side", "side").unwrap(), None);
    }

    #[test]
    fn noted_lists_annotated_commits() {
        let dir = repo();
        let d = dir.path();
        assert!(noted(d, "refs/notes/agent").unwrap().is_empty());
        let base = head(d).unwrap();
        git(
            d,
            &[
                "notes",
                "--ref",
                "refs/notes/agent",
                "add",
                "-m",
                "{}",
                &base,
            ],
        );
        assert_eq!(noted(d, "refs/notes/agent").unwrap(), vec![base]);
    }
}
