//! `git agent work`: one implementer attempt on one task, with scripted agents.

use crate::common::{alive, Repo};

#[test]
fn work_submits_the_agents_commits_with_provenance_notes() {
    let repo = Repo::new();
    repo.configure("60s", 3, "");
    let id = repo.add("Write the work file", &[]);
    let out = repo.ok(&["work", &id, "--actor", "impl-a"]);
    assert!(out.contains("submitted"), "{out}");
    let task = repo.task(&id);
    assert_eq!(task["state"], "in_review");
    let branch = format!("agent/{id}");
    assert_eq!(task["head"], repo.git(&["rev-parse", &branch]));
    assert_eq!(task["base"], repo.git(&["rev-parse", "main"]));
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s", &branch]),
        format!("Implement {id}")
    );
    let note = repo.git(&["notes", "--ref=agent", "show", &branch]);
    let note: serde_json::Value = serde_json::from_str(&note).unwrap();
    assert_eq!(
        (
            note["task"].as_str(),
            note["role"].as_str(),
            note["agent"].as_str()
        ),
        (Some(id.as_str()), Some("implementer"), Some("sh"))
    );
    assert_eq!(note["attempt"], 1);
    assert!(repo.worktree(&id).join(format!("work-{id}.txt")).exists());
    let log = std::fs::read_to_string(repo.logs(&id).join("1-implementer.log")).unwrap();
    assert!(log.contains(&format!("done with {id}")), "{log}");
    assert!(
        !repo.agent_refs().iter().any(|r| r.contains("leases")),
        "lease ended"
    );
}

#[test]
fn leftover_changes_are_committed_for_the_agent_with_trailers() {
    let repo = Repo::new();
    repo.configure("60s", 3, "");
    let id = repo.add("Leave it uncommitted", &["--spec", "leave"]);
    repo.ok(&["work", &id]);
    let branch = format!("agent/{id}");
    let body = repo.git(&["log", "-1", "--format=%B", &branch]);
    assert!(
        body.starts_with("Uncommitted work: Leave it uncommitted"),
        "{body}"
    );
    assert!(
        body.contains(&format!("Agent-Task: {id}")) && body.contains("Agent-Role: implementer"),
        "{body}"
    );
    repo.git(&["notes", "--ref=agent", "show", &branch]);
    assert_eq!(repo.state(&id), "in_review");
}

#[test]
fn an_agent_that_changed_nothing_has_failed() {
    let repo = Repo::new();
    repo.configure("60s", 3, "");
    let id = repo.add("Do nothing", &["--spec", "nothing"]);
    let err = repo.fails(1, &["work", &id]);
    assert!(err.contains("changed nothing"), "{err}");
    let task = repo.task(&id);
    assert_eq!(
        (task["state"].as_str(), task["attempts"].as_u64()),
        (Some("open"), Some(1))
    );
    assert!(task["reason"].as_str().unwrap().contains("changed nothing"));
}

#[test]
fn agents_get_the_agent_environment_and_none_of_the_hooks() {
    let repo = Repo::new();
    repo.configure("60s", 3, "");
    let dump = repo.scratch("env.txt");
    let id = repo.add("Show me the env", &["--spec", &format!("env={dump}")]);
    let index = repo.git_dir().join("index");
    let out = repo
        .cmd(&["work", &id])
        .env("GIT_DIR", repo.git_dir())
        .env("GIT_INDEX_FILE", &index)
        .env("GIT_WORK_TREE", repo.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = std::fs::read_to_string(&dump).unwrap();
    for var in ["GIT_DIR=", "GIT_INDEX_FILE=", "GIT_WORK_TREE="] {
        assert!(
            !env.lines().any(|l| l.starts_with(var)),
            "agent inherited {var}"
        );
    }
    for var in [
        "ROLE=implementer",
        &format!("TASK={id}"),
        "ATTEMPT=1",
        &format!("BRANCH=agent/{id}"),
        "BASE=",
        "TASK_FILE=",
        "PROMPT_FILE=",
        "OUTPUT=",
    ] {
        assert!(
            env.lines()
                .any(|l| l.starts_with(&format!("GIT_AGENT_{var}"))),
            "no GIT_AGENT_{var} in agent env"
        );
    }
    let prompt = std::fs::read_to_string(repo.logs(&id).join("1-implementer.prompt.md")).unwrap();
    assert!(
        prompt.contains("Show me the env") && prompt.contains(&format!("agent/{id}")),
        "{prompt}"
    );
}

#[test]
fn a_timeout_kills_the_agents_whole_process_group() {
    let repo = Repo::new();
    repo.configure("1s", 3, "");
    let pids = repo.scratch("pids.txt");
    let id = repo.add("Hang", &["--spec", &format!("hang pids={pids}")]);
    let err = repo.fails(1, &["work", &id]);
    assert!(err.contains("timed out"), "{err}");
    let pids: Vec<u32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "the agent and its background child");
    for pid in pids {
        assert!(!alive(pid), "process {pid} was left behind");
    }
    assert!(repo.task(&id)["reason"]
        .as_str()
        .unwrap()
        .contains("timed out"));
}

#[test]
fn a_prompt_template_in_the_repo_overrides_the_built_in_one() {
    let repo = Repo::new();
    repo.configure("60s", 3, "");
    repo.write(
        ".git-agent/prompts/implementer.md",
        "Custom: {{title}} on {{branch}} ({{attempt}}/{{max_attempts}})\n",
    );
    let id = repo.add("Templated", &[]);
    repo.ok(&["work", &id]);
    let prompt = std::fs::read_to_string(repo.logs(&id).join("1-implementer.prompt.md")).unwrap();
    assert_eq!(prompt, format!("Custom: Templated on agent/{id} (1/3)\n"));
}

#[test]
fn a_bad_config_is_refused_with_its_line() {
    let repo = Repo::new();
    let id = repo.add("X", &[]);
    repo.write(
        ".git-agent.yaml",
        "target: main\nroles:\n  implementer:\n    command: [sh, x]\n    timeot: 10m\n",
    );
    let err = repo.fails(2, &["work", &id]);
    assert!(
        err.contains(".git-agent.yaml:5:") && err.contains("timeot"),
        "{err}"
    );
    assert_eq!(repo.kinds(&id), ["created"]);
    let err = repo.fails(2, &["run"]);
    assert!(err.contains(".git-agent.yaml:5:"), "{err}");
}

/// A git killed with its agent leaves the worktree's `index.lock`; once no
/// process works in that worktree, the next attempt removes it, says so,
/// and records it, instead of failing on that task for good.
#[test]
fn a_stale_index_lock_left_by_a_stopped_attempt_is_removed_and_recorded() {
    let repo = Repo::new();
    repo.configure("60s", 3, "");
    let id = repo.add("Locked out", &["--spec", "fail-once"]);
    repo.fails(1, &["work", &id]);
    let wt = repo.worktree(&id);
    let mut cmd = std::process::Command::new("git");
    repo.env(&mut cmd);
    let out = cmd
        .current_dir(&wt)
        .args([
            "rev-parse",
            "--path-format=absolute",
            "--git-path",
            "index.lock",
        ])
        .output()
        .unwrap();
    let lock = std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    std::fs::write(&lock, "").unwrap();

    let out = repo.run(&["work", &id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!lock.exists());
    assert!(
        err.contains(&format!("removed {}", lock.display())),
        "{err}"
    );
    let recorded = std::fs::read_to_string(repo.logs(&id).join("recovered.log")).unwrap();
    assert!(recorded.contains("index.lock"), "{recorded}");
    assert_eq!(repo.state(&id), "in_review");
}
