//! Rough edges a new user hit: attempts read right, any live task can be
//! abandoned, a run without a gate says so, the board keeps its words in a
//! pipe, people are named as git names them, plan keys work as task ids.

use crate::common::Repo;

#[test]
fn attempts_read_as_attempts_made_and_failed_everywhere() {
    let repo = Repo::new();
    repo.configure("60s", 3, "");
    let env = repo.scratch("env");
    let id = repo.add("Flaky", &["--spec", &format!("fail-once env={env}")]);
    assert!(repo
        .ok(&["show", &id])
        .contains("no attempt yet (3 allowed)"));
    repo.ok(&["run", "--once"]);
    let show = repo.ok(&["show", &id]);
    assert!(show.contains("attempt 2 of 3, 1 failed"), "{show}");
    let env = std::fs::read_to_string(&env).unwrap();
    assert!(env.lines().any(|l| l == "GIT_AGENT_ATTEMPT=2"), "{env}");
    let events = repo.json(&["show", &id])["events"].clone();
    let submitted = events.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (submitted["kind"].as_str(), submitted["attempt"].as_u64()),
        (Some("submitted"), Some(2))
    );
}

#[test]
fn a_task_in_any_live_state_can_be_abandoned_with_a_reason() {
    let repo = Repo::new();
    let open = repo.add("Open", &[]);
    let err = repo.fails(2, &["resolve", &open, "--abandon"]);
    assert!(
        err.contains("say why it is abandoned with --message"),
        "{err}"
    );
    assert_eq!(repo.state(&open), "open");
    repo.ok(&["resolve", &open, "--abandon", "-m", "Not needed"]);
    assert_eq!(repo.state(&open), "abandoned");

    let held = repo.add("Held", &[]);
    repo.ok(&["claim", &held, "--actor", "a1"]);
    repo.ok(&["resolve", &held, "--abandon", "-m", "Superseded"]);
    assert_eq!(repo.state(&held), "abandoned");
    let leases = repo.git(&["for-each-ref", "--format=%(refname)", "refs/agent/leases/"]);
    assert!(!leases.contains(&held), "the lease goes with it: {leases}");
    let events = repo.json(&["show", &held])["events"].clone();
    assert_eq!(
        events.as_array().unwrap().last().unwrap()["data"]["message"],
        "Superseded"
    );

    let err = repo.fails(1, &["resolve", &held, "--abandon", "-m", "again"]);
    assert!(err.contains("abandoned already"), "{err}");
}

#[test]
fn a_run_without_a_gate_says_so_and_init_says_to_commit_the_config() {
    let repo = Repo::new();
    let out = repo.ok(&["init"]);
    assert!(
        out.contains("git add .git-agent.yaml && git commit"),
        "{out}"
    );
    repo.configure("60s", 3, "");
    let out = repo.run(&["run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: no gate: `test:` in .git-agent.yaml is empty, so approved work lands on main untested"),
        "{err}"
    );
    repo.configure("60s", 3, "test: \"true\"\n");
    let out = repo.run(&["run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("no gate"), "{err}");
}

#[test]
fn the_board_keeps_every_word_in_a_pipe_and_counts_in_words() {
    let repo = Repo::new();
    let title = "A title long enough that a board fitted to a terminal would cut it short";
    let id = repo.add(title, &[]);
    let status = repo.ok(&["status"]);
    assert!(status.contains(title), "{status}");
    repo.write("plan.yaml", "tasks:\n  - key: only\n    title: Only\n");
    let out = repo.ok(&["plan", "--file", "plan.yaml"]);
    assert!(out.contains(": 1 task\n"), "{out}");
    let _ = id;
}

#[test]
fn people_are_named_as_git_names_them() {
    let repo = Repo::new();
    let id = repo.add("Who", &[]);
    let events = repo.json(&["show", &id])["events"].clone();
    assert_eq!(events[0]["actor"], "test@example.com");
}

#[test]
fn a_plan_key_works_where_a_task_id_does() {
    let repo = Repo::new();
    let first =
        repo.plan("tasks:\n  - key: parser\n    title: Parser\n  - key: docs\n    title: Docs\n");
    let parser = first["parser"].as_str().unwrap().to_string();
    assert_eq!(repo.task("parser")["id"], parser.as_str());
    let second = repo.plan("tasks:\n  - key: docs\n    title: More docs\n");
    let err = repo.fails(2, &["show", "docs"]);
    assert!(err.contains("ambiguous"), "{err}");
    let plans = repo.git(&[
        "for-each-ref",
        "--format=%(refname:lstrip=3)",
        "refs/agent/plans/",
    ]);
    let docs = second["docs"].as_str().unwrap();
    let plan = plans
        .lines()
        .find(|p| {
            repo.git(&["show", &format!("refs/agent/plans/{p}:plan.json")])
                .contains(docs)
        })
        .unwrap();
    assert_eq!(repo.task(&format!("{plan}:docs"))["id"], docs);
    let err = repo.fails(2, &["show", "nokey"]);
    assert!(err.contains("no task matches \"nokey\""), "{err}");
}

#[test]
fn commits_after_the_approved_head_are_named_not_silently_dropped() {
    let repo = Repo::new();
    repo.configure(
        "60s",
        3,
        &format!(
            "  reviewer:\n    command: [sh, {}]\n",
            crate::common::agent("reviewer.sh")
        ),
    );
    let id = repo.add("Landed", &[]);
    repo.ok(&["run"]);
    assert_eq!(repo.state(&id), "merged");
    let head = repo.task(&id)["head"].as_str().unwrap().to_string();
    assert!(!repo.ok(&["show", &id]).contains("not merged"));

    let wt = repo.worktree(&id);
    std::fs::write(wt.join("late.txt"), "late\n").unwrap();
    for args in [
        &["add", "late.txt"][..],
        &["commit", "-q", "-m", "Late work"],
    ] {
        let mut cmd = std::process::Command::new("git");
        repo.env(&mut cmd);
        assert!(cmd.current_dir(&wt).args(args).status().unwrap().success());
    }
    let show = repo.ok(&["show", &id]);
    assert!(
        show.contains(&format!(
            "merged {}; 1 later commit on agent/{id} after it was not merged",
            &head[..10]
        )),
        "{show}"
    );
}

#[test]
fn status_and_the_provenance_note_count_attempts_as_show_does() {
    let repo = Repo::new();
    repo.configure("60s", 3, "");
    let id = repo.add("Flaky", &["--spec", "fail-once"]);
    repo.fails(1, &["work", &id]);
    repo.ok(&["claim", &id, "--actor", "a1"]);
    let status = repo.ok(&["status"]);
    assert!(status.contains("attempt 2 of 3, 1 failed"), "{status}");
    let show = repo.ok(&["show", &id]);
    assert!(show.contains("attempt 2 of 3, 1 failed"), "{show}");

    repo.ok(&["release", &id, "--actor", "a1"]);
    repo.ok(&["work", &id]);
    let note = repo.git(&[
        "notes",
        "--ref=refs/notes/agent",
        "show",
        &format!("agent/{id}"),
    ]);
    assert!(note.contains("\"attempt\":2"), "{note}");
}

#[test]
fn work_in_review_approved_or_waiting_for_a_human_can_be_abandoned_but_merged_work_cannot() {
    let repo = Repo::new();
    repo.configure("60s", 1, "");
    let in_review = repo.add("In review", &[]);
    repo.ok(&["work", &in_review]);
    assert_eq!(repo.state(&in_review), "in_review");
    repo.ok(&["resolve", &in_review, "--abandon", "-m", "Wrong idea"]);
    assert_eq!(repo.state(&in_review), "abandoned");

    let approved = repo.add("Approved", &[]);
    repo.ok(&["work", &approved]);
    repo.ok(&["review", &format!("agent/{approved}"), "--approve"]);
    assert_eq!(repo.state(&approved), "approved");
    repo.ok(&["resolve", &approved, "--abandon", "-m", "Not wanted now"]);
    assert_eq!(repo.state(&approved), "abandoned");

    let stuck = repo.add("Stuck", &["--spec", "always-fail"]);
    repo.fails(1, &["work", &stuck]);
    assert_eq!(repo.state(&stuck), "needs_human");
    repo.ok(&["resolve", &stuck, "--abandon"]);
    assert_eq!(repo.state(&stuck), "abandoned");

    let merged = repo.add("Merged", &[]);
    repo.ok(&["work", &merged]);
    repo.ok(&["review", &format!("agent/{merged}"), "--approve"]);
    repo.ok(&["integrate"]);
    assert_eq!(repo.state(&merged), "merged");
    let err = repo.fails(1, &["resolve", &merged, "--abandon", "-m", "Too late"]);
    assert!(
        err.contains(&format!(
            "task {merged} is merged already: nothing to abandon"
        )),
        "{err}"
    );
    assert_eq!(repo.state(&merged), "merged");
}
