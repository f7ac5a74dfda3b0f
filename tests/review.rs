//! `git agent review`: verdicts as notes on the exact commit reviewed, on
//! anyone's branch or a task's, by the scripted reviewer or by a person.

use crate::common::{agent, Repo};
use git_agent::model::task::Verdict;
use git_agent::orchestrate::review::verdict_of;
use git_agent::store::Store;
use serde_json::Value;

/// Configure the scripted implementer and the scripted reviewer with `words`.
fn with_reviewer(repo: &Repo, max_attempts: u32, words: &[&str]) {
    let mut argv = vec!["sh".to_string(), agent("reviewer.sh")];
    argv.extend(words.iter().map(|w| w.to_string()));
    let argv = serde_json::to_string(&argv).unwrap();
    repo.configure(
        "60s",
        max_attempts,
        &format!("  reviewer:\n    command: {argv}\n    timeout: 30s\n"),
    );
}

/// A person's branch `name` off main with one commit writing `file`; back on main.
fn person_branch(repo: &Repo, name: &str, file: &str, content: &str) -> String {
    repo.git(&["checkout", "-q", "-b", name, "main"]);
    repo.write(file, content);
    repo.git(&["add", file]);
    repo.git(&["commit", "-q", "-m", &format!("Write {file}")]);
    let head = repo.git(&["rev-parse", "HEAD"]);
    repo.git(&["checkout", "-q", "main"]);
    head
}

/// The review notes on `commit`, one JSON value per line.
fn notes(repo: &Repo, commit: &str) -> Vec<Value> {
    repo.git(&["notes", "--ref=agent-review", "show", commit])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn has_note(repo: &Repo, commit: &str) -> bool {
    let mut cmd = std::process::Command::new("git");
    repo.env(&mut cmd);
    let out = cmd
        .args(["notes", "--ref=agent-review", "show", commit])
        .output()
        .unwrap();
    out.status.success()
}

fn stdout(repo: &Repo, args: &[&str], code: i32) -> String {
    let out = repo.run(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "git-agent {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn verdict(repo: &Repo, commit: &str) -> Option<Verdict> {
    verdict_of(&Store::discover(repo.path()).unwrap(), commit).unwrap()
}

/// Implement a task with the scripted implementer; returns its id and head.
fn submitted_task(repo: &Repo, title: &str) -> (String, String) {
    let id = repo.add(title, &[]);
    repo.ok(&["work", &id]);
    let head = repo.task(&id)["head"].as_str().unwrap().to_string();
    (id, head)
}

#[test]
fn any_branch_gets_both_verdicts_as_notes_on_its_head() {
    let repo = Repo::new();
    with_reviewer(&repo, 3, &[]);
    let main = repo.git(&["rev-parse", "main"]);
    let first = person_branch(&repo, "feature", "notes.txt", "one\nTODO: two\n");
    let out = stdout(&repo, &["review", "feature"], 1);
    assert!(
        out.starts_with("changes: feature") && out.contains("notes.txt: TODO: two"),
        "{out}"
    );
    let note = &notes(&repo, &first)[0];
    assert_eq!(note["verdict"], "changes");
    assert_eq!(note["reviewer"], "sh reviewer.sh");
    assert_eq!(note["task"], Value::Null);
    assert_eq!(note["base"], main.as_str());
    assert_eq!(note["summary"], "Requested changes:\nnotes.txt: TODO: two");
    assert!(note["at"].as_str().unwrap().ends_with('Z'));

    // The fix, reviewed from the branch itself (the default subject).
    repo.git(&["checkout", "-q", "feature"]);
    repo.write("notes.txt", "one\ntwo\n");
    repo.git(&["commit", "-q", "-am", "Do two"]);
    let second = repo.git(&["rev-parse", "HEAD"]);
    let out = stdout(&repo, &["review"], 0);
    assert!(
        out.starts_with("approve: feature") && out.contains("2 commits since"),
        "{out}"
    );
    assert_eq!(notes(&repo, &second)[0]["verdict"], "approve");
    assert_eq!(
        notes(&repo, &first).len(),
        1,
        "the first commit keeps its own"
    );
    assert_eq!(notes(&repo, &first)[0]["verdict"], "changes");
    assert!(!has_note(&repo, &main));
}

#[test]
fn a_new_commit_has_no_verdict_even_when_its_parent_was_approved() {
    let repo = Repo::new();
    with_reviewer(&repo, 3, &[]);
    let approved = person_branch(&repo, "feature", "a.txt", "fine\n");
    repo.ok(&["review", "feature"]);
    assert_eq!(verdict(&repo, &approved), Some(Verdict::Approve));
    repo.git(&["checkout", "-q", "feature"]);
    repo.write("a.txt", "fine\nBUG here\n");
    repo.git(&["commit", "-q", "-am", "More"]);
    let newer = repo.git(&["rev-parse", "HEAD"]);
    assert_eq!(verdict(&repo, &newer), None);
    assert_eq!(
        verdict(&repo, "feature"),
        None,
        "any revision names a commit"
    );
    repo.fails(1, &["review"]);
    assert_eq!(verdict(&repo, &newer), Some(Verdict::Changes));
    assert_eq!(verdict(&repo, &approved), Some(Verdict::Approve));
}

#[test]
fn the_verdict_can_come_from_the_output_file_with_usage() {
    let repo = Repo::new();
    with_reviewer(&repo, 3, &["yaml"]);
    person_branch(&repo, "feature", "a.txt", "BUG\n");
    let out = repo.run(&["review", "feature", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let reviewed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reviewed["verdict"], "changes");
    assert_eq!(reviewed["summary"], "Requested changes:\na.txt: BUG");
    assert_eq!(reviewed["usage"]["tokens"], 1234);
    assert_eq!(reviewed["ran"], true);
    let note = &notes(&repo, "feature")[0];
    assert_eq!(note["usage"]["cost_usd"], 0.01);
}

#[test]
fn approving_a_task_moves_it_to_approved() {
    let repo = Repo::new();
    with_reviewer(&repo, 3, &[]);
    let (id, head) = submitted_task(&repo, "Approve me");
    let out = stdout(&repo, &["review", &id[..5]], 0);
    assert!(out.contains(&format!("task {id}: approved")), "{out}");
    assert_eq!(repo.state(&id), "approved");
    let note = &notes(&repo, &head)[0];
    assert_eq!(
        (note["verdict"].as_str(), note["task"].as_str()),
        (Some("approve"), Some(id.as_str()))
    );
    let events = repo.json(&["show", &id])["events"].clone();
    let reviewed = events.as_array().unwrap().last().unwrap();
    assert_eq!(reviewed["kind"], "reviewed");
    assert_eq!(reviewed["data"]["head"], head.as_str());
    assert_eq!(reviewed["actor"], "sh reviewer.sh");
}

#[test]
fn requested_changes_reach_the_next_attempt_verbatim() {
    let repo = Repo::new();
    // The scripted implementer writes "<id> attempt N": reject the first attempt.
    with_reviewer(&repo, 3, &["pattern=attempt 1"]);
    let (id, first) = submitted_task(&repo, "Fix it twice");
    repo.fails(1, &["review", &id]);
    let task = repo.task(&id);
    assert_eq!(
        (task["state"].as_str(), task["attempts"].as_u64()),
        (Some("open"), Some(1))
    );
    let summary = notes(&repo, &first)[0]["summary"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        summary,
        format!("Requested changes:\nwork-{id}.txt: {id} attempt 1")
    );
    repo.ok(&["work", &id]);
    let prompt = std::fs::read_to_string(repo.logs(&id).join("2-implementer.prompt.md")).unwrap();
    assert!(
        prompt.contains(&format!("review asked for changes:\n{summary}\n")),
        "the summary is not verbatim in:\n{prompt}"
    );
    let second = repo.task(&id)["head"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    repo.ok(&["review", &id]);
    assert_eq!(repo.state(&id), "approved");
    assert!(repo.logs(&id).join("2-reviewer.log").exists());
}

#[test]
fn a_verdict_on_another_commit_does_not_move_the_task() {
    let repo = Repo::new();
    with_reviewer(&repo, 3, &[]);
    let (id, head) = submitted_task(&repo, "Moving target");
    let worktree = repo.worktree(&id);
    std::fs::write(worktree.join("later.txt"), "later\n").unwrap();
    let git = |args: &[&str]| {
        let mut cmd = std::process::Command::new("git");
        repo.env(&mut cmd);
        assert!(cmd
            .current_dir(&worktree)
            .args(args)
            .status()
            .unwrap()
            .success());
    };
    git(&["add", "later.txt"]);
    git(&["commit", "-q", "-m", "Later"]);
    let branch = format!("agent/{id}");
    let out = stdout(&repo, &["review", &branch], 0);
    assert!(
        out.contains(&format!(
            "task {id} not moved: task {id} is in review at {}",
            &head[..10]
        )),
        "{out}"
    );
    assert_eq!(repo.state(&id), "in_review");
    assert_eq!(verdict(&repo, &branch), Some(Verdict::Approve));
    assert_eq!(verdict(&repo, &head), None);
    // The task itself means its submitted head.
    repo.ok(&["review", &id]);
    assert_eq!(repo.state(&id), "approved");
    assert_eq!(verdict(&repo, &head), Some(Verdict::Approve));
}

#[test]
fn a_reviewed_commit_is_not_reviewed_again_unless_asked() {
    let repo = Repo::new();
    let count = repo.scratch("count.txt");
    with_reviewer(&repo, 3, &[&format!("count={count}")]);
    let head = person_branch(&repo, "feature", "a.txt", "a\n");
    repo.ok(&["review", "feature"]);
    let again = repo.json(&["review", "feature"]);
    assert_eq!(
        (again["ran"].as_bool(), again["reused"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(again["verdict"], "approve");
    let runs = || std::fs::read_to_string(&count).unwrap().lines().count();
    assert_eq!(runs(), 1, "the reviewer ran once");
    assert_eq!(notes(&repo, &head).len(), 1);
    let again = repo.json(&["review", "feature", "--again"]);
    assert_eq!(runs(), 2, "--again runs the reviewer again");
    assert_eq!(
        (again["ran"].as_bool(), again["reused"].as_bool()),
        (Some(true), Some(false))
    );
    // Its verdict is written again (a line identical to the last, within
    // the same second, is the same record and is not doubled).
    assert_eq!(verdict(&repo, &head), Some(Verdict::Approve));
}

#[test]
fn a_persons_verdict_needs_no_agent() {
    let repo = Repo::new();
    // No .git-agent.yaml at all: no reviewer configured.
    let head = person_branch(&repo, "feature", "a.txt", "a\n");
    let out = repo
        .cmd(&[
            "review",
            "feature",
            "--request-changes",
            "-m",
            "Rename a.txt to b.txt",
        ])
        .env("GIT_AGENT_ACTOR", "alice")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("by alice") && printed.contains("Rename a.txt to b.txt"),
        "{printed}"
    );
    let note = &notes(&repo, &head)[0];
    assert_eq!(
        (
            note["verdict"].as_str(),
            note["reviewer"].as_str(),
            note["summary"].as_str()
        ),
        (
            Some("changes"),
            Some("alice"),
            Some("Rename a.txt to b.txt")
        )
    );
    repo.ok(&["review", "feature", "--approve", "--actor", "bob"]);
    assert_eq!(verdict(&repo, &head), Some(Verdict::Approve));
    assert_eq!(notes(&repo, &head)[1]["reviewer"], "bob");
    let err = repo.fails(2, &["review", "feature", "--request-changes"]);
    assert!(err.contains("--message"), "{err}");
    let err = repo.fails(2, &["review", "feature"]);
    assert!(err.contains("no reviewer configured"), "{err}");
}

#[test]
fn a_persons_request_for_changes_sends_the_task_back() {
    let repo = Repo::new();
    repo.configure("60s", 3, "");
    let (id, _) = submitted_task(&repo, "Person reviews");
    repo.fails(
        1,
        &["review", &id, "--request-changes", "-m", "Use a constant"],
    );
    let task = repo.task(&id);
    assert_eq!(task["state"], "open");
    assert_eq!(task["reason"], "review asked for changes: Use a constant");
    let events = repo.json(&["show", &id])["events"].clone();
    assert_eq!(events.as_array().unwrap().last().unwrap()["role"], "human");
}

#[test]
fn a_failing_or_silent_reviewer_records_nothing() {
    for (word, expected) in [("fail", "exited with code 3"), ("mute", "gave no verdict")] {
        let repo = Repo::new();
        with_reviewer(&repo, 3, &[word]);
        let (id, _) = submitted_task(&repo, "Unlucky");
        let err = repo.fails(2, &["review", &id]);
        assert!(
            err.contains(expected) && err.contains("nothing recorded"),
            "{err}"
        );
        assert_eq!(repo.state(&id), "in_review");
        assert_eq!(repo.kinds(&id).last().unwrap(), "submitted");
        assert_eq!(repo.git(&["for-each-ref", "refs/notes/agent-review"]), "");
        let reviews = repo.reviews();
        let left: Vec<_> = std::fs::read_dir(&reviews).unwrap().collect();
        assert!(left.is_empty(), "review worktree left behind: {left:?}");
        assert_eq!(
            repo.git(&["worktree", "list"]).lines().count(),
            2,
            "main and the task's"
        );
    }
}

#[test]
fn the_reviewer_runs_in_a_detached_checkout_of_the_head_with_the_range() {
    let repo = Repo::new();
    let dump = repo.scratch("env.txt");
    with_reviewer(&repo, 3, &[&format!("env={dump}")]);
    let id = repo.add("Look closely", &["--spec", "Check the work file."]);
    repo.ok(&["work", &id]);
    let head = repo.task(&id)["head"].as_str().unwrap().to_string();
    let base = repo.git(&["rev-parse", "main"]);
    repo.ok(&["review", &id]);
    let env = std::fs::read_to_string(&dump).unwrap();
    for line in [
        format!("GIT_AGENT_BASE={base}"),
        format!("GIT_AGENT_BRANCH=agent/{id}"),
        format!("GIT_AGENT_TASK={id}"),
        format!("GIT_AGENT_HEAD={head}"),
        format!("HEAD_IS={head}"),
        "GIT_AGENT_ROLE=reviewer".to_string(),
    ] {
        assert!(env.lines().any(|l| l == line), "no {line} in:\n{env}");
    }
    let pwd = env.lines().find_map(|l| l.strip_prefix("PWD_IS=")).unwrap();
    assert!(
        pwd.starts_with(&repo.reviews().display().to_string()),
        "{pwd}"
    );
    let prompt = std::fs::read_to_string(repo.logs(&id).join("1-reviewer.prompt.md")).unwrap();
    for part in [
        format!("## Task {id}: Look closely"),
        "Check the work file.".to_string(),
        format!("Implement {id}"),
        format!("+{id} attempt 1"),
        "VERDICT: APPROVE".to_string(),
    ] {
        assert!(
            prompt.contains(&part),
            "no {part:?} in the prompt:\n{prompt}"
        );
    }
}

#[test]
fn a_branch_with_nothing_new_is_refused() {
    let repo = Repo::new();
    with_reviewer(&repo, 3, &[]);
    let err = repo.fails(2, &["review", "main"]);
    assert!(err.contains("nothing to review"), "{err}");
    let err = repo.fails(2, &["review", "no-such-branch"]);
    assert!(err.contains("no-such-branch"), "{err}");
}

#[test]
fn a_reviewer_that_times_out_records_nothing() {
    let repo = Repo::new();
    repo.configure(
        "60s",
        3,
        &format!(
            "  reviewer:\n    command: [sh, {}, sleep=30]\n    timeout: 1s\n",
            agent("reviewer.sh")
        ),
    );
    let head = person_branch(&repo, "feature", "a.txt", "a\n");
    let started = std::time::Instant::now();
    let err = repo.fails(2, &["review", "feature"]);
    assert!(err.contains("timed out after 1s"), "{err}");
    assert!(
        started.elapsed().as_secs() < 20,
        "the reviewer was not stopped"
    );
    assert!(!has_note(&repo, &head));
}

#[test]
fn a_prompt_template_in_the_repo_overrides_the_reviewers() {
    let repo = Repo::new();
    with_reviewer(&repo, 3, &[]);
    repo.write(
        ".git-agent/prompts/reviewer.md",
        "Review {{branch}} {{base}}..{{head}} for {{target}}:\n{{diff}}",
    );
    let head = person_branch(&repo, "feature", "a.txt", "hello\n");
    repo.ok(&["review", "feature"]);
    let prompt = std::fs::read_to_string(
        repo.logs("review")
            .join(format!("{}-reviewer.prompt.md", &head[..10])),
    )
    .unwrap();
    let base = repo.git(&["rev-parse", "main"]);
    assert!(
        prompt.starts_with(&format!(
            "Review feature {base}..{head} for main:\ndiff --git"
        )),
        "{prompt}"
    );
    assert!(prompt.contains("+hello"), "{prompt}");
}
