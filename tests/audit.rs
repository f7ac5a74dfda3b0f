//! Plain git reads the history well: the audit trail needs no git-agent.

use crate::common::Repo;

#[test]
fn git_log_of_a_task_reads_as_its_history() {
    let repo = Repo::new();
    let id = repo.add("Add a --verbose flag", &[]);
    repo.ok(&[
        "claim",
        &id,
        "--actor",
        "impl-2@buildbox",
        "--pid",
        &std::process::id().to_string(),
    ]);
    let log = repo.git(&["log", "--format=%s", &format!("refs/agent/tasks/{id}")]);
    assert_eq!(
        log,
        "claimed: Add a --verbose flag\ncreated: Add a --verbose flag"
    );
    let body = repo.git(&[
        "log",
        "-1",
        "--format=%B",
        &format!("refs/agent/tasks/{id}"),
    ]);
    for trailer in [
        format!("Agent-Task: {id}"),
        "Agent-Event: claimed".into(),
        "Agent-Role: implementer".into(),
        "Agent-Actor: impl-2@buildbox".into(),
        "Agent-Attempt: 1".into(),
        "Agent-Lamport: 2".into(),
    ] {
        assert!(body.contains(&trailer), "missing {trailer} in:\n{body}");
    }
    let trailers = repo.git(&[
        "log",
        "-1",
        "--format=%(trailers:key=Agent-Event,valueonly)",
        &format!("refs/agent/tasks/{id}"),
    ]);
    assert_eq!(trailers, "claimed", "git parses them as trailers");
}

#[test]
fn git_log_across_tasks_and_by_trailer_finds_everything() {
    let repo = Repo::new();
    let a = repo.add("A", &[]);
    let b = repo.add("B", &[]);
    let all = repo.git(&["log", "--format=%s", "--glob=refs/agent/tasks"]);
    assert_eq!(all.lines().count(), 2, "{all}");
    let grep = repo.git(&[
        "log",
        "--format=%s",
        "--all",
        &format!("--grep=Agent-Task: {b}"),
    ]);
    assert_eq!(grep, "created: B");
    let snapshot = repo.git(&["show", &format!("refs/agent/tasks/{a}:task.json")]);
    assert!(snapshot.contains("\"state\": \"open\""), "{snapshot}");
}

#[test]
fn without_a_configured_identity_git_agent_signs_as_itself() {
    let repo = Repo::new();
    std::fs::write(repo.home().join(".gitconfig"), "").unwrap();
    let out = repo
        .cmd(&["task", "add", "Anonymous"])
        .env_remove("GIT_AUTHOR_NAME")
        .env_remove("GIT_AUTHOR_EMAIL")
        .env_remove("GIT_COMMITTER_NAME")
        .env_remove("GIT_COMMITTER_EMAIL")
        .env_remove("EMAIL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let author = repo.git(&[
        "log",
        "-1",
        "--format=%an <%ae>",
        &format!("refs/agent/tasks/{id}"),
    ]);
    assert_eq!(author, "git-agent <git-agent@localhost>");
}
