//! Task worktrees made ready to work in: copied untracked files, a set-up
//! run once per worktree, and each slot's GIT_AGENT_SLOT and GIT_AGENT_PORT.

use crate::common::Repo;

/// A repository whose `.env` is ignored and untracked, configured with
/// `worktree:` lines `extra`.
fn with_env(max_attempts: u32, extra: &str) -> Repo {
    let repo = Repo::new();
    repo.write(".gitignore", ".env\ncache/\n");
    repo.git(&["add", ".gitignore"]);
    repo.git(&["commit", "-q", "-m", "ignore"]);
    repo.write(".env", "SECRET=s3cret\n");
    repo.configure("60s", max_attempts, extra);
    repo
}

#[test]
fn an_untracked_env_is_in_every_worktree_and_the_setup_runs_once_in_each() {
    let repo = with_env(3, "");
    let runs = repo.scratch("setup-runs.txt");
    repo.configure(
        "60s",
        3,
        &format!(
            "worktree:\n  copy: [.env]\n  setup: [sh, -c, 'echo \"$GIT_AGENT_TASK $GIT_AGENT_SLOT\" >> {runs}; mkdir -p cache; echo built > cache/artifact']\n"
        ),
    );
    let a = repo.add("First", &["--spec", "fail-once"]);
    let b = repo.add("Second", &[]);
    // Attempt 1 of a fails, attempt 2 reuses its worktree: no second set-up.
    repo.fails(1, &["work", &a]);
    repo.ok(&["work", &a]);
    repo.ok(&["work", &b]);
    for id in [&a, &b] {
        let wt = repo.worktree(id);
        assert_eq!(
            std::fs::read_to_string(wt.join(".env")).unwrap(),
            "SECRET=s3cret\n",
            "{id}"
        );
        assert_eq!(
            std::fs::read_to_string(wt.join("cache/artifact")).unwrap(),
            "built\n"
        );
        let log = repo.logs(id).join("1-setup.log");
        assert!(log.exists(), "the set-up is logged like an agent: {log:?}");
    }
    assert!(!repo.logs(&a).join("2-setup.log").exists());
    let lines = std::fs::read_to_string(&runs).unwrap();
    assert_eq!(lines, format!("{a} 0\n{b} 0\n"));
    // The copy is not committed: it stays untracked, and ignored.
    let tree = repo.git(&["ls-tree", "-r", "--name-only", &format!("agent/{a}")]);
    assert!(
        !tree.lines().any(|l| l == ".env" || l.starts_with("cache")),
        "{tree}"
    );
}

#[test]
fn a_listed_file_that_is_tracked_missing_or_outside_is_refused_by_name() {
    for (copy, says) in [
        ("[README.md]", "\"README.md\" is tracked"),
        ("[.env.local]", "\".env.local\" is missing"),
        ("['config/*.yaml', nope.txt]", "\"nope.txt\" is missing"),
        ("[notes.txt]", "\"notes.txt\" is not ignored"),
    ] {
        let repo = with_env(3, "");
        repo.write("notes.txt", "untracked, not ignored\n");
        repo.configure("60s", 3, &format!("worktree:\n  copy: {copy}\n"));
        let id = repo.add("Anything", &[]);
        let err = repo.fails(2, &["work", &id]);
        assert!(err.contains(says), "{copy}: {err}");
        assert!(err.contains(".git-agent.yaml:"), "{copy}: {err}");
        assert!(!repo.worktree(&id).exists(), "{copy}: nothing was made");
    }
    let repo = with_env(3, "");
    let id = repo.add("Anything", &[]);
    repo.configure("60s", 3, "worktree:\n  copy: [../outside]\n");
    let err = repo.fails(2, &["work", &id]);
    assert!(
        err.contains("\"../outside\" is outside the repository"),
        "{err}"
    );
    // .worktreeinclude: its own file and line are named.
    let repo = with_env(3, "");
    repo.write(".worktreeinclude", "# secrets\n.env\n\nREADME.md\n");
    let id = repo.add("Anything", &[]);
    let err = repo.fails(2, &["work", &id]);
    assert!(
        err.contains(".worktreeinclude:4") && err.contains("\"README.md\" is tracked"),
        "{err}"
    );
}

#[test]
fn worktreeinclude_copies_plain_paths_and_globs() {
    let repo = with_env(3, "");
    repo.write(".gitignore", ".env\nconfig/local*\n");
    repo.write("config/local.yaml", "db: dev\n");
    repo.write("config/local-extra.yaml", "x: 1\n");
    repo.write(
        ".worktreeinclude",
        "# copied into each task worktree\n/.env\nconfig/local*.yaml\n",
    );
    let id = repo.add("Anything", &[]);
    repo.ok(&["work", &id]);
    let wt = repo.worktree(&id);
    for file in [".env", "config/local.yaml", "config/local-extra.yaml"] {
        assert!(wt.join(file).exists(), "{file} copied");
    }
}

#[test]
fn a_failing_setup_sends_the_task_back_and_at_max_attempts_waits_for_a_human() {
    let repo = with_env(
        2,
        "worktree:\n  setup: sh -c 'echo cannot fetch the dependencies >&2; exit 5'\n",
    );
    let id = repo.add("Needs deps", &[]);
    let err = repo.fails(1, &["work", &id]);
    assert!(err.contains("set-up failed"), "{err}");
    let task = repo.task(&id);
    assert_eq!(
        (task["state"].as_str(), task["attempts"].as_u64()),
        (Some("open"), Some(1))
    );
    let show = repo.json(&["show", &id]);
    let failure = show["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["kind"] == "failed")
        .cloned()
        .unwrap();
    assert!(
        failure["data"]["log_tail"]
            .as_str()
            .unwrap()
            .contains("cannot fetch the dependencies"),
        "{failure}"
    );
    assert!(
        failure["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("exited with code 5"),
        "{failure}"
    );
    // The agent never ran.
    assert!(!repo.logs(&id).join("1-implementer.log").exists());
    repo.fails(1, &["work", &id]);
    let task = repo.task(&id);
    assert_eq!(task["state"], "needs_human", "{task}");
    assert!(
        task["reason"].as_str().unwrap().contains("set-up failed"),
        "{task}"
    );
}

#[test]
fn two_agents_binding_their_port_at_once_do_not_collide() {
    let repo = Repo::new();
    let dir = repo.scratch("ports");
    std::fs::create_dir_all(&dir).unwrap();
    repo.configure("60s", 1, "");
    let yaml = std::fs::read_to_string(repo.path().join(".git-agent.yaml"))
        .unwrap()
        .replace("parallel: 4", "parallel: 2");
    repo.write(
        ".git-agent.yaml",
        &format!("{yaml}worktree:\n  ports: {{ base: 47100, per_slot: 5 }}\n"),
    );
    let spec = format!("bind={dir}");
    let a = repo.add("Serve a", &["--spec", &spec]);
    let b = repo.add("Serve b", &["--spec", &spec]);
    let out = repo.run(&["run", "-j", "2"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ports = Vec::new();
    for id in [&a, &b] {
        let port = std::fs::read_to_string(format!("{dir}/{id}"))
            .unwrap_or_else(|e| panic!("{id} bound no port ({e}): {said}"));
        ports.push(port.trim().parse::<u16>().unwrap());
        assert_ne!(repo.state(id), "open", "{id}: {said}");
    }
    ports.sort();
    assert_ne!(ports[0], ports[1]);
    assert!(
        (47100..47105).contains(&ports[0]) && (47105..47110).contains(&ports[1]),
        "{ports:?}"
    );
}

#[test]
fn the_gates_merge_worktree_gets_the_copies_the_setup_and_a_port() {
    let repo = with_env(3, "");
    let runs = repo.scratch("setup-runs.txt");
    repo.configure(
        "60s",
        3,
        &format!(
            "test: test -f .env && test -f cache/artifact && test -n \"$GIT_AGENT_PORT\" && test -n \"$GIT_AGENT_SLOT\"\nintegrate: {{ window: 1 }}\nworktree:\n  copy: [.env]\n  setup: [sh, -c, 'echo \"$PWD\" >> {runs}; mkdir -p cache; echo built > cache/artifact']\n"
        ),
    );
    let mut ids = Vec::new();
    for title in ["One", "Two"] {
        let id = repo.add(title, &[]);
        repo.ok(&["work", &id]);
        repo.ok(&["review", &id, "--approve"]);
        ids.push(id);
    }
    let out = repo.ok(&["integrate"]);
    for id in &ids {
        assert_eq!(repo.state(id), "merged", "{out}");
    }
    // One set-up per task worktree, and one for the queue's worktree,
    // which both gates shared.
    let lines = std::fs::read_to_string(&runs).unwrap();
    assert_eq!(lines.lines().count(), 3, "{lines}");
    let gate_dir = lines.lines().last().unwrap();
    assert!(
        !ids.iter().any(|id| gate_dir.ends_with(id.as_str())),
        "{lines}"
    );
}

/// Implement, approve and land a task through `work`, `review` and `integrate`.
fn landed(repo: &Repo, title: &str) -> String {
    let id = repo.add(title, &[]);
    repo.ok(&["work", &id]);
    repo.ok(&["review", &id, "--approve"]);
    repo.ok(&["integrate"]);
    assert_eq!(repo.state(&id), "merged");
    id
}

#[test]
fn the_next_task_of_a_slot_recycles_the_worktree_keeping_ignored_caches_only() {
    let repo = with_env(3, "");
    let runs = repo.scratch("setup-runs.txt");
    repo.write(".gitignore", ".env\ncache/\n*.log\n");
    repo.git(&["commit", "-q", "-am", "ignore logs"]);
    repo.configure(
        "60s",
        3,
        &format!(
            "worktree:\n  copy: [.env]\n  clean: ['*.log']\n  setup: [sh, -c, 'echo \"$GIT_AGENT_TASK\" >> {runs}; mkdir -p cache; echo built > cache/artifact']\n"
        ),
    );
    let a = landed(&repo, "First");
    let old = repo.worktree(&a);
    std::fs::write(old.join("debug.log"), "noise\n").unwrap();
    let b = repo.add("Second", &[]);
    repo.ok(&["work", &b]);
    let wt = repo.worktree(&b);
    assert!(!old.exists(), "a's worktree became b's");
    assert_eq!(
        std::fs::read_to_string(wt.join("cache/artifact")).unwrap(),
        "built\n",
        "the ignored build cache survives"
    );
    assert!(wt.join(".env").exists());
    assert!(!wt.join("debug.log").exists(), "worktree.clean removes it");
    // b's branch holds b's change alone, and its worktree nothing else.
    assert_eq!(
        repo.git(&["diff", "--name-only", "main", &format!("agent/{b}")]),
        format!("work-{b}.txt")
    );
    assert_eq!(
        repo.git(&["-C", wt.to_str().unwrap(), "status", "--porcelain"]),
        ""
    );
    assert_eq!(
        repo.git(&["-C", wt.to_str().unwrap(), "branch", "--show-current"]),
        format!("agent/{b}")
    );
    assert_eq!(
        std::fs::read_to_string(&runs).unwrap(),
        format!("{a}\n"),
        "the set-up ran once for the worktree, not again for b"
    );
    assert_eq!(repo.task(&b)["base"], repo.git(&["rev-parse", "main"]));
}

#[test]
fn a_worktree_with_uncommitted_work_is_never_recycled_and_gc_removes_unused_ones() {
    let repo = with_env(3, "");
    let runs = repo.scratch("setup-runs.txt");
    repo.configure(
        "60s",
        3,
        &format!("worktree:\n  setup: [sh, -c, 'echo \"$GIT_AGENT_TASK\" >> {runs}; mkdir -p cache; echo built > cache/artifact']\n  teardown: [sh, -c, 'echo \"down $GIT_AGENT_TASK $(cat cache/artifact)\" >> {runs}']\n"),
    );
    let a = landed(&repo, "First");
    std::fs::write(repo.worktree(&a).join("notes.txt"), "keep me\n").unwrap();
    let b = repo.add("Second", &[]);
    repo.ok(&["work", &b]);
    assert!(
        repo.worktree(&a).join("notes.txt").exists(),
        "a's worktree kept"
    );
    assert!(repo.worktree(&b).exists());
    assert_eq!(
        std::fs::read_to_string(&runs).unwrap(),
        format!("{a}\n{b}\n"),
        "b got a worktree of its own, set up anew"
    );
    // gc keeps a's (uncommitted work); with it gone, a's is removed.
    repo.ok(&["gc"]);
    assert!(repo.worktree(&a).exists());
    std::fs::remove_file(repo.worktree(&a).join("notes.txt")).unwrap();
    repo.ok(&["gc"]);
    assert!(
        !repo.worktree(&a).exists(),
        "gc removes a finished task's worktree, caches and all"
    );
    assert!(repo.worktree(&b).exists(), "b's task is not finished");
}

#[test]
fn a_setup_that_fails_in_the_merge_queues_worktree_sends_the_task_back_saying_so() {
    let repo = with_env(3, "");
    // Task worktrees are named after their task; the queue's is not.
    repo.configure(
        "60s",
        3,
        "test: 'true'\nintegrate: { window: 1 }\nworktree:\n  setup: [sh, -c, 'case \"${PWD##*/}\" in t-*) exit 0;; esac; echo the queue set-up broke; exit 3']\n",
    );
    let id = repo.add("One", &[]);
    repo.ok(&["work", &id]);
    repo.ok(&["review", &id, "--approve"]);
    let out = repo.run(&["integrate"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(repo.state(&id), "merged", "{said}");
    let log = repo.ok(&["log", &id]);
    assert!(log.contains("set-up failed"), "{log}");
}
