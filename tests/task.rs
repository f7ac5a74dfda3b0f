//! `git agent task add|edit` and `init`.

use crate::common::Repo;

#[test]
fn task_add_records_every_field() {
    let repo = Repo::new();
    let dep = repo.add("Dep", &[]);
    let id = repo.add(
        "Full",
        &[
            "--spec",
            "S",
            "--depends-on",
            &dep,
            "--scope",
            "src/a.rs",
            "--priority",
            "1",
            "--label",
            "ui",
            "--max-attempts",
            "5",
        ],
    );
    let t = repo.task(&id);
    assert_eq!(t["title"], "Full");
    assert_eq!(t["spec"], "S");
    assert_eq!(t["depends_on"], serde_json::json!([dep]));
    assert_eq!(t["scope"], serde_json::json!(["src/a.rs"]));
    assert_eq!(t["labels"], serde_json::json!(["ui"]));
    assert_eq!(
        (t["priority"].clone(), t["max_attempts"].clone()),
        (1.into(), 5.into())
    );
}

#[test]
fn task_add_refuses_bad_input_and_writes_nothing() {
    let repo = Repo::new();
    repo.fails(2, &["task", "add", " "]);
    let err = repo.fails(2, &["task", "add", "X", "--depends-on", "t-nothing"]);
    assert!(
        err.contains("--depends-on") && err.contains("t-nothing"),
        "{err}"
    );
    repo.fails(2, &["task", "add", "X", "--max-attempts", "0"]);
    assert!(repo.agent_refs().is_empty());
}

#[test]
fn task_edit_refuses_a_dependency_cycle() {
    let repo = Repo::new();
    let a = repo.add("A", &[]);
    let b = repo.add("B", &["--depends-on", &a]);
    let err = repo.fails(2, &["task", "edit", &a, "--depends-on", &b]);
    assert!(err.contains(&format!("{a} -> {b} -> {a}")), "{err}");
    let err = repo.fails(2, &["task", "edit", &a, "--depends-on", &a]);
    assert!(err.contains("cycle"), "{err}");
    assert_eq!(
        repo.json(&["show", &a])["events"].as_array().unwrap().len(),
        1
    );
    repo.fails(2, &["task", "edit", &a]);
}

#[test]
fn init_writes_the_config_once_and_sets_notes_rewriting() {
    let repo = Repo::new();
    repo.ok(&["init"]);
    let config = std::fs::read_to_string(repo.path().join(".git-agent.yaml")).unwrap();
    assert!(config.contains("target: main"), "{config}");
    std::fs::write(repo.path().join(".git-agent.yaml"), "target: trunk\n").unwrap();
    repo.ok(&["init"]);
    assert_eq!(
        std::fs::read_to_string(repo.path().join(".git-agent.yaml")).unwrap(),
        "target: trunk\n"
    );
    let rewrite = repo.git(&["config", "--get-all", "notes.rewriteRef"]);
    assert_eq!(
        rewrite, "refs/notes/agent",
        "set once, provenance only: {rewrite}"
    );
}

#[test]
fn init_with_a_remote_adds_fetch_refspecs_for_agent_state() {
    let repo = Repo::new();
    repo.fails(2, &["init", "--remote", "origin"]);
    let hub = tempfile::tempdir().unwrap();
    repo.git(&["init", "-q", "--bare", hub.path().to_str().unwrap()]);
    repo.git(&["remote", "add", "origin", hub.path().to_str().unwrap()]);
    repo.ok(&["init", "--remote", "origin"]);
    repo.ok(&["init", "--remote", "origin"]);
    let fetch = repo.git(&["config", "--get-all", "remote.origin.fetch"]);
    assert_eq!(
        fetch.lines().filter(|l| l.contains("refs/agent/*")).count(),
        1,
        "{fetch}"
    );
    let id = repo.add("Shared", &[]);
    let other = Repo::new();
    repo.git(&["push", "-q", "origin", "refs/agent/*:refs/agent/*"]);
    other.git(&["remote", "add", "origin", hub.path().to_str().unwrap()]);
    other.ok(&["init", "--remote", "origin"]);
    other.git(&["fetch", "-q", "origin"]);
    let fetched = other.git(&["for-each-ref", "--format=%(refname)", "refs/agent-remotes/"]);
    assert!(
        fetched.contains(&format!("refs/agent-remotes/origin/tasks/{id}")),
        "{fetched}"
    );
}

#[test]
fn new_tasks_take_max_attempts_from_the_config_unless_they_say() {
    let repo = Repo::new();
    repo.configure("60s", 5, "");
    let id = repo.add("Default", &[]);
    assert_eq!(repo.task(&id)["max_attempts"], 5);
    let id = repo.add("Explicit", &["--max-attempts", "2"]);
    assert_eq!(repo.task(&id)["max_attempts"], 2);
    let tasks = repo
        .plan("tasks:\n  - key: a\n    title: A\n  - key: b\n    title: B\n    max_attempts: 1\n");
    assert_eq!(repo.task(tasks["a"].as_str().unwrap())["max_attempts"], 5);
    assert_eq!(repo.task(tasks["b"].as_str().unwrap())["max_attempts"], 1);
}
