//! `git agent sync` and claims against a remote: real clones, a real bare
//! hub, real pushes and fetches.

use crate::common::Repo;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Stdio;

/// A bare hub in a temp dir, made with plain `git init --bare`.
struct Hub {
    dir: tempfile::TempDir,
}

impl Hub {
    fn new() -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("git")
            .args(["init", "-q", "--bare"])
            .current_dir(dir.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(out.status.success());
        Hub { dir }
    }

    fn url(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    /// A clone's repository with the hub as `origin`.
    fn clone(&self) -> Repo {
        let repo = Repo::new();
        repo.git(&["remote", "add", "origin", self.url()]);
        repo
    }
}

/// Every agent ref and notes ref of `repo` with its object.
fn all_refs(repo: &Repo) -> String {
    repo.git(&[
        "for-each-ref",
        "--format=%(refname) %(objectname)",
        "refs/agent/",
        "refs/notes/",
    ])
}

/// Event ids of a task, as `show --json` lists them.
fn event_ids(repo: &Repo, id: &str) -> BTreeSet<String> {
    let shown = repo.json(&["show", id]);
    shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

fn sync(repo: &Repo) -> String {
    repo.ok(&["sync"])
}

#[test]
fn diverged_changes_to_one_task_give_both_clones_every_event() {
    let hub = Hub::new();
    let (a, b) = (hub.clone(), hub.clone());
    let id = a.add("Shared", &[]);
    assert!(sync(&a).contains(&format!("pushed refs/agent/tasks/{id}")));
    assert!(sync(&b).contains(&format!("fetched refs/agent/tasks/{id}")));
    // Apart: each side changes the task.
    a.ok(&["task", "edit", &id, "--title", "Shared, renamed on A"]);
    b.ok(&["task", "edit", &id, "--priority", "0"]);
    let (only_a, only_b) = (event_ids(&a, &id), event_ids(&b, &id));
    assert_ne!(only_a, only_b);
    sync(&a);
    let merged = sync(&b);
    assert!(
        merged.contains(&format!("merged refs/agent/tasks/{id}")),
        "{merged}"
    );
    sync(&a);
    let (task_a, task_b) = (a.task(&id), b.task(&id));
    assert_eq!(task_a, task_b);
    assert_eq!(task_a["title"], "Shared, renamed on A");
    assert_eq!(task_a["priority"], 0);
    let every: BTreeSet<String> = only_a.union(&only_b).cloned().collect();
    assert_eq!(event_ids(&a, &id), every);
    assert_eq!(event_ids(&b, &id), every);
    assert_eq!(
        a.git(&["rev-parse", &format!("refs/agent/tasks/{id}")]),
        b.git(&["rev-parse", &format!("refs/agent/tasks/{id}")])
    );
}

#[test]
fn a_second_sync_with_nothing_new_moves_nothing() {
    let hub = Hub::new();
    let (a, b) = (hub.clone(), hub.clone());
    let ids: Vec<String> = (0..3).map(|i| a.add(&format!("T{i}"), &[])).collect();
    a.ok(&["claim", &ids[0], "--actor", "impl-a"]);
    sync(&a);
    sync(&b);
    let (before_a, before_b) = (all_refs(&a), all_refs(&b));
    assert_eq!(sync(&a).trim(), "nothing to sync with origin");
    assert_eq!(sync(&b).trim(), "nothing to sync with origin");
    assert_eq!(all_refs(&a), before_a);
    assert_eq!(all_refs(&b), before_b);
    // Both hold the same tasks and the same lease.
    let refs = |r: &Repo| {
        r.git(&[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/agent/",
        ])
    };
    assert_eq!(refs(&a), refs(&b));
    assert!(refs(&b).contains(&format!("refs/agent/leases/{}", ids[0])));
}

#[test]
fn syncs_racing_on_one_hub_end_consistent() {
    let hub = Hub::new();
    let clones: Vec<Repo> = (0..3).map(|_| hub.clone()).collect();
    let seed = clones[0].add("Seed", &[]);
    sync(&clones[0]);
    for c in &clones[1..] {
        sync(c);
    }
    // Each clone changes the seed task and adds tasks of its own, then all
    // sync at once.
    for (i, c) in clones.iter().enumerate() {
        c.ok(&["task", "edit", &seed, "--label", &format!("from-{i}")]);
        c.add(&format!("Own {i}"), &[]);
    }
    let racers: Vec<_> = clones
        .iter()
        .map(|c| {
            c.cmd(&["sync"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in racers {
        let out = r.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // One more round each brings every side up to the hub.
    for c in &clones {
        sync(c);
    }
    let refs = |r: &Repo| {
        r.git(&[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/agent/",
        ])
    };
    let first = refs(&clones[0]);
    assert_eq!(first.lines().count(), 4, "{first}");
    for c in &clones[1..] {
        assert_eq!(refs(c), first);
    }
    let events: BTreeSet<String> = event_ids(&clones[0], &seed);
    // created + three edits, one from each clone.
    assert_eq!(events.len(), 4, "{events:?}");
    let task: Value = clones[2].task(&seed);
    assert_eq!(task, clones[0].task(&seed));
}

#[test]
fn sync_with_an_unknown_remote_exits_2_naming_it() {
    let hub = Hub::new();
    let a = hub.clone();
    let err = a.fails(2, &["sync", "nowhere"]);
    assert!(err.contains("nowhere"), "{err}");
}
