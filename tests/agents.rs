//! How agents run, whatever the CLI: their directory and `PWD`, their
//! prompt, placeholders, what is read from stdout and never from stderr,
//! where worktrees live, and what a missing or unknown agent gets.

use crate::common::Repo;

/// Configure the implementer as `sh -c <script>` (and `extra` lines).
fn implementer_script(repo: &Repo, script: &str, extra: &str) {
    let argv = serde_json::to_string(&["sh", "-c", script]).unwrap();
    repo.write(
        ".git-agent.yaml",
        &format!(
            "target: main\nroles:\n  implementer:\n    command: {argv}\n    timeout: 60s\n    max_attempts: 2\n{extra}"
        ),
    );
}

#[test]
fn agents_work_in_their_own_directory_and_pwd_outside_git_dir() {
    let repo = Repo::new();
    implementer_script(&repo, r#"echo "$PWD" > pwd.txt; pwd -P > cwd.txt"#, "");
    let id = repo.add("Where am I", &[]);
    // The caller's PWD names the main checkout, as a shell's would.
    let out = repo
        .cmd(&["work", &id])
        .env("PWD", repo.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let worktree = repo.worktree(&id);
    let pwd = std::fs::read_to_string(worktree.join("pwd.txt")).unwrap();
    let cwd = std::fs::read_to_string(worktree.join("cwd.txt")).unwrap();
    assert_eq!(pwd.trim(), worktree.display().to_string());
    assert_eq!(
        std::path::Path::new(cwd.trim()),
        worktree.canonicalize().unwrap()
    );
    assert!(!pwd.contains("/.git/"), "{pwd}");
    assert!(
        !repo.path().join("pwd.txt").exists(),
        "nothing in the main checkout"
    );
}

#[test]
fn an_agent_that_never_reads_a_large_prompt_does_not_kill_git_agent() {
    let repo = Repo::new();
    implementer_script(&repo, "echo done > done.txt", "");
    // Above a pipe's 64 KiB, below the 128 KiB one argument may hold.
    let spec = "x".repeat(100 * 1024);
    let id = repo.add("Huge prompt", &["--spec", &spec]);
    repo.ok(&["work", &id]);
    assert_eq!(repo.state(&id), "in_review");
}

#[test]
fn placeholders_are_expanded_in_argv_and_env_is_added() {
    let repo = Repo::new();
    repo.write(
        ".git-agent.yaml",
        "target: main\nroles:\n  implementer:\n    command: [sh, -c, 'cp \"$1\" prompt-copy.md; echo \"$2 $3 $MODE\" > seen.txt', agent, '{prompt_file}', '{branch}', '{worktree}']\n    env: {MODE: fast}\n",
    );
    let id = repo.add("Placeholders", &["--spec", "the spec words"]);
    repo.ok(&["work", &id]);
    let worktree = repo.worktree(&id);
    let prompt = std::fs::read_to_string(worktree.join("prompt-copy.md")).unwrap();
    assert!(prompt.contains("the spec words"), "{prompt}");
    let seen = std::fs::read_to_string(worktree.join("seen.txt")).unwrap();
    assert_eq!(
        seen.trim(),
        format!("agent/{id} {} fast", worktree.display())
    );
}

#[test]
fn the_verdict_is_read_from_stdout_never_from_stderr() {
    let repo = Repo::new();
    implementer_script(
        &repo,
        "echo one > one.txt",
        "  reviewer:\n    command: [sh, -c, 'echo \"Looks fine.\"; echo \"VERDICT: APPROVE\"; echo \"VERDICT: CHANGES\" >&2']\n",
    );
    let id = repo.add("Stdout only", &[]);
    repo.ok(&["work", &id]);
    repo.ok(&["review", &id]);
    assert_eq!(repo.state(&id), "approved");
}

#[test]
fn a_missing_program_is_named_before_anything_is_claimed() {
    let repo = Repo::new();
    repo.write(
        ".git-agent.yaml",
        "target: main\nroles:\n  implementer: { agent: claude }\n",
    );
    let id = repo.add("Never claimed", &[]);
    let out = repo
        .cmd(&["run"])
        .env("PATH", crate::common::path_without_agent_clis())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`claude` is not on PATH")
            && err.contains("npm install -g @anthropic-ai/claude-code"),
        "{err}"
    );
    assert_eq!(repo.state(&id), "open");
    assert!(repo.agent_refs().iter().all(|r| !r.contains("leases")));
}

#[test]
fn an_unknown_preset_is_refused_with_the_line_and_the_list() {
    let repo = Repo::new();
    let id = repo.add("Never claimed", &[]);
    repo.write(
        ".git-agent.yaml",
        "target: main\nroles:\n  implementer:\n    agent: cursor\n",
    );
    let err = repo.fails(2, &["work", &id]);
    assert!(err.contains(".git-agent.yaml:4"), "{err}");
    assert!(
        err.contains("claude, codex, gemini, aider, opencode"),
        "{err}"
    );
    assert_eq!(repo.state(&id), "open");
}

#[test]
fn init_with_presets_writes_a_config_that_roles_shows_resolved() {
    let repo = Repo::new();
    repo.ok(&["init", "--agent", "claude", "--reviewer", "codex"]);
    let config = std::fs::read_to_string(repo.path().join(".git-agent.yaml")).unwrap();
    assert!(config.contains("implementer: { agent: claude"), "{config}");
    assert!(config.contains("reviewer:    { agent: codex"), "{config}");
    let roles = repo.json(&["roles"]);
    let reviewer = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "reviewer")
        .unwrap()
        .clone();
    assert_eq!(reviewer["preset"], "codex");
    let argv: Vec<&str> = reviewer["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(argv[..2], ["codex", "exec"]);
    assert!(argv.contains(&"read-only"), "{argv:?}");
    let err = repo.fails(2, &["init", "--agent", "cursor"]);
    assert!(err.contains("claude") && err.contains("opencode"), "{err}");
}

#[test]
fn an_edit_only_agent_finishes_a_merge_sent_back_to_it() {
    let repo = Repo::new();
    // The agent rewrites shared.txt whole (no git commands): markers gone.
    implementer_script(&repo, "echo \"$GIT_AGENT_TASK\" > shared.txt", "");
    let first = repo.add("First", &[]);
    let second = repo.add("Second", &[]);
    repo.ok(&["work", &first]);
    repo.ok(&["work", &second]);
    for id in [&first, &second] {
        repo.ok(&["review", id, "--approve"]);
    }
    repo.fails(1, &["integrate"]);
    assert_eq!(repo.state(&first), "merged");
    assert_eq!(repo.state(&second), "open", "sent back with the conflict");
    repo.ok(&["work", &second]);
    assert_eq!(repo.state(&second), "in_review");
    let head = repo.task(&second)["head"].as_str().unwrap().to_string();
    let parents = repo.git(&["rev-list", "--parents", "-n", "1", &head]);
    assert_eq!(parents.split(' ').count(), 3, "the merge is committed");
}

#[test]
fn a_branch_that_adds_conflict_markers_never_reaches_review() {
    let repo = Repo::new();
    implementer_script(
        &repo,
        "printf '<<<<<<< ours\\na\\n=======\\nb\\n>>>>>>> theirs\\n' > marked.txt",
        "",
    );
    let id = repo.add("Markers", &[]);
    let err = repo.fails(1, &["work", &id]);
    assert!(err.contains("conflict markers in: marked.txt"), "{err}");
    assert_eq!(repo.state(&id), "open");
}

#[test]
fn two_repositories_sharing_a_worktrees_folder_each_merge() {
    let shared = tempfile::tempdir().unwrap();
    let folder = shared.path().display().to_string();
    let repos = [Repo::new(), Repo::new()];
    for repo in &repos {
        implementer_script(
            repo,
            "echo work > work.txt",
            &format!("worktrees: {folder}\n"),
        );
        let id = repo.add("Work", &[]);
        repo.ok(&["work", &id]);
        repo.ok(&["review", &id, "--approve"]);
        repo.ok(&["integrate"]);
        assert_eq!(repo.state(&id), "merged");
    }
    let queues = std::fs::read_dir(shared.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("queue-"))
        .count();
    assert_eq!(queues, 2, "a merge worktree per repository");
}

#[test]
fn a_worktree_an_older_git_agent_made_in_git_dir_keeps_its_work() {
    let repo = Repo::new();
    implementer_script(&repo, "echo more > more.txt", "");
    let id = repo.add("Upgraded", &[]);
    let old = repo.git_dir().join("agent/worktrees").join(&id);
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        &format!("agent/{id}"),
        old.to_str().unwrap(),
        "main",
    ]);
    std::fs::write(old.join("left.txt"), "left by a killed run\n").unwrap();
    repo.ok(&["work", &id]);
    let head = repo.task(&id)["head"].as_str().unwrap().to_string();
    let files = repo.git(&["ls-tree", "--name-only", &head]);
    assert!(
        files.contains("left.txt") && files.contains("more.txt"),
        "{files}"
    );
}

#[test]
fn a_verdict_is_kept_when_a_detached_child_holds_stdout_open() {
    let repo = Repo::new();
    implementer_script(
        &repo,
        "echo one > one.txt",
        "  reviewer:\n    command: [sh, -c, 'setsid -f sh -c \"sleep 5\"; echo \"VERDICT: APPROVE\"']\n",
    );
    let id = repo.add("Daemon", &[]);
    repo.ok(&["work", &id]);
    repo.ok(&["review", &id]);
    assert_eq!(repo.state(&id), "approved");
}

#[test]
fn init_with_a_preset_refuses_to_keep_an_existing_config_silently() {
    let repo = Repo::new();
    repo.write(".git-agent.yaml", "target: main\n");
    let err = repo.fails(2, &["init", "--agent", "codex"]);
    assert!(err.contains(".git-agent.yaml exists already"), "{err}");
    let config = std::fs::read_to_string(repo.path().join(".git-agent.yaml")).unwrap();
    assert_eq!(config, "target: main\n");
}

#[test]
fn submit_refuses_a_branch_that_adds_conflict_markers() {
    let repo = Repo::new();
    let id = repo.add("By hand", &[]);
    repo.ok(&["claim", &id, "--actor", "me"]);
    repo.git(&["checkout", "-q", "-b", &format!("agent/{id}")]);
    repo.write(
        "marked.txt",
        "<<<<<<< ours\na\n=======\nb\n>>>>>>> theirs\n",
    );
    repo.git(&["add", "marked.txt"]);
    repo.git(&["commit", "-q", "-m", "marked"]);
    repo.git(&["checkout", "-q", "main"]);
    let err = repo.fails(1, &["submit", &id, "--actor", "me"]);
    assert!(err.contains("conflict markers in: marked.txt"), "{err}");
    assert_eq!(repo.state(&id), "in_progress");
}
