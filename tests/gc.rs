//! `git agent gc`: what finished tasks leave behind goes; work that lives
//! nowhere else stays, and gc says why.

use crate::common::Repo;
use git_agent::model::task::Change;
use git_agent::store::{Draft, Store};
use std::path::PathBuf;

/// Record that task `id` was merged as `commit`, as the merge queue does.
fn record_merged(repo: &Repo, id: &str, commit: &str) {
    let store = Store::discover(repo.path()).unwrap();
    store
        .update(id, |_| {
            let draft = Draft {
                change: Change::Merged {
                    commit: Some(commit.to_string()),
                    usage: None,
                    queue: None,
                },
                actor: "integrator@test".into(),
                role: "integrator".into(),
            };
            Ok((vec![draft], vec![]))
        })
        .unwrap();
}

/// A task implemented and approved (by a person); returns its id.
fn approved_task(repo: &Repo, title: &str) -> String {
    let id = repo.add(title, &[]);
    repo.ok(&["work", &id]);
    repo.ok(&["review", &id, "--approve"]);
    id
}

fn worktree(repo: &Repo, id: &str) -> PathBuf {
    repo.worktree(id)
}

fn branch_exists(repo: &Repo, id: &str) -> bool {
    !repo
        .git(&["for-each-ref", &format!("refs/heads/agent/{id}")])
        .is_empty()
}

/// Run git in a task's worktree.
fn git_in(repo: &Repo, id: &str, args: &[&str]) {
    let mut cmd = std::process::Command::new("git");
    repo.env(&mut cmd);
    let status = cmd.current_dir(worktree(repo, id)).args(args).status();
    assert!(status.unwrap().success(), "git {args:?}");
}

/// A task that failed its only attempt and was abandoned.
fn abandoned_task(repo: &Repo, title: &str) -> String {
    let id = repo.add(title, &["--spec", "always-fail"]);
    repo.fails(1, &["work", &id]);
    repo.ok(&["resolve", &id, "--abandon"]);
    id
}

fn gc_removes_the_worktree_and_branch_of_a_merged_task_and_packs_agent_refs(format: &str) {
    let repo = Repo::with_ref_format(format);
    repo.configure("60s", 3, "");
    let id = approved_task(&repo, "Merge me");
    repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "Merge",
        &format!("agent/{id}"),
    ]);
    record_merged(&repo, &id, &repo.git(&["rev-parse", "HEAD"]));
    let out = repo.ok(&["gc"]);
    let path = worktree(&repo, &id);
    assert!(
        out.contains(&format!("removed {} (task merged)", path.display()))
            && out.contains(&format!("removed agent/{id} (task merged)"))
            && out.contains("packed refs/agent"),
        "{out}"
    );
    assert!(!path.exists());
    assert!(!branch_exists(&repo, &id));
    assert_eq!(repo.git(&["worktree", "list"]).lines().count(), 1);
    if repo.ref_format() == "files" {
        let packed = std::fs::read_to_string(repo.git_dir().join("packed-refs")).unwrap();
        assert!(
            packed.contains(&format!("refs/agent/tasks/{id}")),
            "{packed}"
        );
        assert!(!repo.git_dir().join("refs/agent/tasks").join(&id).exists());
    } else {
        // reftable: pack-refs compacts the stack into one table.
        let tables = std::fs::read_to_string(repo.git_dir().join("reftable/tables.list")).unwrap();
        assert_eq!(tables.lines().count(), 1, "{tables}");
    }
    assert_eq!(repo.state(&id), "merged", "the task's history stays");
    assert_eq!(
        repo.ok(&["gc"]).trim(),
        "nothing to remove\npacked refs/agent"
    );
}
crate::on_both_ref_formats!(
    gc_removes_the_worktree_and_branch_of_a_merged_task_and_packs_agent_refs
);

#[test]
fn gc_counts_a_squash_merge_as_reached_through_the_recorded_merge() {
    let repo = Repo::new();
    let id = repo.add("Squash me", &[]);
    repo.ok(&["claim", &id, "--actor", "me"]);
    // Two commits, so that no single one matches the squash by patch-id.
    repo.git(&["checkout", "-q", "-b", &format!("agent/{id}")]);
    for n in ["one", "two"] {
        repo.write(&format!("{n}.txt"), n);
        repo.git(&["add", "."]);
        repo.git(&["commit", "-q", "-m", n]);
    }
    repo.git(&["checkout", "-q", "main"]);
    repo.ok(&["submit", &id, "--actor", "me"]);
    repo.ok(&["review", &id, "--approve"]);
    repo.git(&["merge", "-q", "--squash", &format!("agent/{id}")]);
    repo.git(&["commit", "-q", "-m", "Squashed"]);
    record_merged(&repo, &id, &repo.git(&["rev-parse", "HEAD"]));
    let out = repo.ok(&["gc"]);
    assert!(out.contains(&format!("removed agent/{id}")), "{out}");
    assert!(!branch_exists(&repo, &id));
}

#[test]
fn gc_keeps_a_branch_with_commits_that_reached_neither_target_nor_merge() {
    let repo = Repo::new();
    repo.configure("60s", 3, "");
    let id = approved_task(&repo, "Merged, then more");
    repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "Merge",
        &format!("agent/{id}"),
    ]);
    record_merged(&repo, &id, &repo.git(&["rev-parse", "HEAD"]));
    std::fs::write(worktree(&repo, &id).join("after.txt"), "after\n").unwrap();
    git_in(&repo, &id, &["add", "after.txt"]);
    git_in(&repo, &id, &["commit", "-q", "-m", "After the merge"]);
    let tip = repo.git(&["rev-parse", &format!("agent/{id}")]);
    let out = repo.ok(&["gc"]);
    assert!(
        out.contains(&format!(
            "kept agent/{id}: 1 commit on it reached neither main nor the recorded merge"
        )),
        "{out}"
    );
    assert_eq!(repo.git(&["rev-parse", &format!("agent/{id}")]), tip);
    // The worktree held nothing uncommitted: it went, the branch keeps the work.
    assert!(!worktree(&repo, &id).exists());

    // An abandoned task's commits are kept the same way.
    let repo = Repo::new();
    repo.configure("60s", 1, "");
    let id = repo.add("Rejected", &[]);
    repo.ok(&["work", &id]);
    repo.fails(1, &["review", &id, "--request-changes", "-m", "No"]);
    repo.ok(&["resolve", &id, "--abandon"]);
    let out = repo.ok(&["gc"]);
    assert!(
        out.contains(&format!(
            "kept agent/{id}: 1 commit on it reached neither main\n"
        )),
        "{out}"
    );
    assert!(branch_exists(&repo, &id));
}

#[test]
fn gc_keeps_a_worktree_with_uncommitted_work() {
    let repo = Repo::new();
    repo.configure("60s", 1, "");
    let id = abandoned_task(&repo, "Given up");
    let path = worktree(&repo, &id);
    std::fs::write(path.join("notes.txt"), "half a thought\n").unwrap();
    let out = repo.ok(&["gc"]);
    assert!(
        out.contains(&format!(
            "kept {}: uncommitted work in {}",
            path.display(),
            path.display()
        )) && out.contains(&format!("kept agent/{id}: checked out in")),
        "{out}"
    );
    assert!(path.join("notes.txt").exists());
    assert!(branch_exists(&repo, &id));

    std::fs::remove_file(path.join("notes.txt")).unwrap();
    let out = repo.ok(&["gc"]);
    assert!(
        out.contains(&format!("removed agent/{id} (task abandoned)")),
        "{out}"
    );
    assert!(!path.exists());
    assert!(!branch_exists(&repo, &id));
}

#[test]
fn gc_leaves_live_tasks_running_reviews_and_unknown_branches_alone() {
    let repo = Repo::new();
    repo.configure("60s", 3, "");
    let id = repo.add("Still in review", &[]);
    repo.ok(&["work", &id]);
    repo.git(&["branch", "agent/mine"]);
    let reviews = repo.reviews();
    std::fs::create_dir_all(&reviews).unwrap();
    let (left, busy) = (reviews.join("r-left"), reviews.join("r-busy"));
    for dir in [&left, &busy] {
        repo.git(&[
            "worktree",
            "add",
            "-q",
            "--detach",
            dir.to_str().unwrap(),
            "main",
        ]);
    }
    let lock = std::fs::File::create(reviews.join("r-busy.lock")).unwrap();
    lock.lock().unwrap();

    let out = repo.ok(&["gc"]);
    for line in [
        format!("kept agent/{id}: task {id} is in_review"),
        "kept agent/mine: there is no task mine".to_string(),
        format!("kept {}: a review runs in it", busy.display()),
        format!("removed {} (left by a review that ended)", left.display()),
    ] {
        assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
    }
    assert!(worktree(&repo, &id).exists() && branch_exists(&repo, &id));
    assert!(busy.exists() && !left.exists());
    assert!(!repo.git(&["worktree", "list"]).contains("r-left"));

    drop(lock);
    repo.ok(&["gc"]);
    assert!(!busy.exists());
    assert_eq!(repo.git(&["worktree", "list"]).lines().count(), 2);
}

#[test]
fn gc_dry_run_removes_nothing() {
    let repo = Repo::new();
    repo.configure("60s", 1, "");
    let id = abandoned_task(&repo, "Dry");
    let out = repo.ok(&["gc", "--dry-run"]);
    assert!(
        out.contains(&format!("would remove agent/{id} (task abandoned)")),
        "{out}"
    );
    assert!(worktree(&repo, &id).exists() && branch_exists(&repo, &id));
    let swept = repo.json(&["gc"]);
    assert_eq!(swept["removed"].as_array().unwrap().len(), 2, "{swept}");
    assert_eq!(swept["packed"], true);
}
