//! Every repository git makes: both ref formats, bare repositories, linked
//! worktrees, and a clear refusal of the object format gix cannot read.

use crate::common::Repo;
use std::path::Path;
use std::process::{Command, Output};

/// `git-agent <args>` run in `dir` with the repo's isolated environment.
fn agent_in(repo: &Repo, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = repo.cmd(args);
    cmd.current_dir(dir);
    cmd.output().unwrap()
}

fn git_in(repo: &Repo, dir: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new("git");
    repo.env(&mut cmd);
    let out = cmd.current_dir(dir).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A SHA-256 repository is refused at the first command, by name, with
/// exit 2 and nothing written.
#[test]
fn a_sha256_repository_is_refused_by_name_and_nothing_is_written() {
    let repo = Repo::new();
    let dir = repo.home().join("sha256");
    std::fs::create_dir_all(&dir).unwrap();
    git_in(
        &repo,
        &dir,
        &["init", "-q", "--object-format=sha256", "-b", "main"],
    );
    std::fs::write(dir.join("a.txt"), "a\n").unwrap();
    git_in(&repo, &dir, &["add", "a.txt"]);
    git_in(&repo, &dir, &["commit", "-q", "-m", "first"]);
    for args in [
        &["task", "add", "Anything"][..],
        &["status"],
        &["claim", "--next", "--actor", "a"],
        &["hooks", "install"],
    ] {
        let out = agent_in(&repo, &dir, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("sha256"), "names the format: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_eq!(
        git_in(&repo, &dir, &["for-each-ref", "--format=%(refname)"]),
        "refs/heads/main",
        "no ref written"
    );
    let hook = dir.join(".git/hooks/post-commit");
    assert!(!hook.exists(), "no hook written");
}

/// A bare clone (a hub) keeps tasks in its own refs, on either ref format.
fn a_bare_repository_holds_tasks(format: &str) {
    let repo = Repo::with_ref_format(format);
    let bare = repo.home().join("hub.git");
    git_in(
        &repo,
        repo.home(),
        &[
            "clone",
            "-q",
            "--bare",
            &format!("--ref-format={format}"),
            repo.path().to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    let out = agent_in(&repo, &bare, &["task", "add", "On the hub"]);
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let out = agent_in(&repo, &bare, &["claim", &id, "--actor", "hub"]);
    assert!(out.status.success(), "{out:?}");
    let shown = agent_in(&repo, &bare, &["show", &id, "--json"]);
    let task: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(task["task"]["state"], "in_progress", "{task}");
    assert_eq!(task["task"]["assignee"], "hub");
    assert_eq!(
        git_in(&repo, &bare, &["rev-parse", "--show-ref-format"]),
        format
    );
    assert!(
        repo.agent_refs().is_empty(),
        "the clone it came from is untouched"
    );
}
crate::on_both_ref_formats!(a_bare_repository_holds_tasks);

/// A task added from a linked worktree is the same task from the main one:
/// refs are shared, whichever format stores them.
fn a_linked_worktree_shares_the_task_refs(format: &str) {
    let repo = Repo::with_ref_format(format);
    let linked = repo.home().join("linked");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "side",
        linked.to_str().unwrap(),
    ]);
    let out = agent_in(&repo, &linked, &["task", "add", "From the side"]);
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(repo.task(&id)["title"], "From the side");
    repo.ok(&["claim", &id, "--actor", "main"]);
    let shown = agent_in(&repo, &linked, &["show", &id, "--json"]);
    let task: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(task["task"]["assignee"], "main", "{task}");
}
crate::on_both_ref_formats!(a_linked_worktree_shares_the_task_refs);
