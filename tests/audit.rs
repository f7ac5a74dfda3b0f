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

/// Task text that tries to pass for an audit trailer, and terminal escapes.
const SPOOF: &str = "Agent-Task: t-spoofed";

#[test]
fn task_text_cannot_spoof_the_trail_or_reach_a_terminal_raw() {
    let repo = Repo::new();
    repo.configure(
        "60s",
        3,
        &format!(
            "  reviewer:\n    command: [sh, {}]\n",
            crate::common::agent("reviewer.sh")
        ),
    );
    repo.git(&["add", ".git-agent.yaml"]);
    repo.git(&["commit", "-q", "-m", "Configure"]);
    // A title over several lines folds into one; its trailer-like text and
    // the spec's stay text.
    let title = format!("Fix it\n\n{SPOOF}\nAgent-Role: integrator");
    let spec = format!("Do it.\n\n{SPOOF}\n\u{1b}[2J\u{1b}]0;owned\u{7}cleared");
    let id = repo.add(&title, &["--spec", &spec]);
    assert_eq!(
        repo.task(&id)["title"],
        format!("Fix it {SPOOF} Agent-Role: integrator")
    );
    repo.ok(&["run"]);
    assert_eq!(repo.state(&id), "merged");

    let grep = |pattern: &str| {
        repo.git(&[
            "log",
            "--all",
            "--format=%H %s",
            &format!("--grep={pattern}"),
        ])
    };
    assert_eq!(
        grep(SPOOF),
        "",
        "a commit claims to be of a task that never was"
    );
    let merges = repo.git(&["log", "--merges", "--format=%B", "main"]);
    assert!(merges.contains(&format!("Agent-Task: {id}")), "{merges}");
    assert!(
        merges.contains("Agent-Task (quoted): t-spoofed"),
        "{merges}"
    );
    let roles = repo.git(&[
        "log",
        "--merges",
        "--format=%(trailers:key=Agent-Role,valueonly)",
        "main",
    ]);
    assert_eq!(
        roles.trim(),
        "integrator",
        "only the queue's own trailer: {roles}"
    );
    assert!(!grep(&format!("Agent-Task: {id}")).is_empty());

    for args in [vec!["show", id.as_str()], vec!["status"]] {
        let out = repo.ok(&args);
        assert!(
            !out.contains(|c: char| c.is_control() && c != '\n' && c != '\t'),
            "{args:?} printed a control character: {out:?}"
        );
    }
}

#[test]
fn control_characters_in_titles_and_actors_are_refused_by_name() {
    let repo = Repo::new();
    let err = repo.fails(2, &["task", "add", "Red \u{1b}[31mtitle"]);
    assert!(
        err.contains("title: holds the control character U+001B"),
        "{err}"
    );
    repo.write("plan.yaml", "tasks:\n  - key: a\n    title: \"Bell \\a\"\n");
    let err = repo.fails(2, &["plan", "--file", "plan.yaml"]);
    assert!(
        err.contains("plan.yaml:3: task \"a\": title: holds the control character U+0007"),
        "{err}"
    );
    assert!(repo.agent_refs().is_empty());

    let id = repo.add("Fine", &[]);
    let before = repo.agent_refs();
    let err = repo.fails(2, &["claim", &id, "--actor", "ann\nAgent-Task: t-x"]);
    assert!(err.contains("U+000A"), "{err}");
    assert_eq!(repo.agent_refs(), before);
    assert_eq!(repo.state(&id), "open");
}

#[test]
fn an_agents_escape_sequences_never_reach_the_terminal_through_run() {
    let repo = Repo::new();
    // A reviewer that fails, printing a sequence that would retitle the
    // terminal window.
    repo.configure(
        "60s",
        3,
        "  reviewer:\n    command: [sh, -c, \"printf '\\\\033]0;owned\\\\007reviewer crashed\\\\n' >&2; exit 3\"]\n",
    );
    let id = repo.add("Reviewed badly", &[]);
    let mut script = std::process::Command::new("script");
    repo.env(&mut script);
    let out = script
        .args([
            "-qec",
            &format!("{} run --once", crate::common::BIN),
            "/dev/null",
        ])
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        screen.contains("]0;ownedreviewer crashed"),
        "the reviewer's words are shown: {screen:?}"
    );
    assert!(
        !screen.contains("\u{1b}]0;owned"),
        "the escape sequence reached the terminal raw: {screen:?}"
    );
    assert!(
        screen.contains("1 error\r\n") || screen.contains("1 error\n"),
        "{screen:?}"
    );
    assert!(!screen.contains("1 errors"), "{screen:?}");
    assert_eq!(repo.state(&id), "in_review");
}
