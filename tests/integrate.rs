//! `git agent integrate` and the whole pipeline: only tested, approved work
//! reaches the target, which stays green.

use crate::common::{agent, Repo};
use std::process::Stdio;

/// A gate that fails whenever a file named BROKEN is in the tree.
const GATE: &str = "test: test ! -e BROKEN\n";

/// Implement and approve a task (a person's verdict): ready for the queue.
fn approved(repo: &Repo, title: &str, spec: &str) -> String {
    let id = repo.add(title, &["--spec", spec]);
    repo.ok(&["work", &id]);
    repo.ok(&["review", &id, "--approve"]);
    assert_eq!(repo.state(&id), "approved");
    id
}

fn first_parents(repo: &Repo) -> Vec<String> {
    repo.git(&["rev-list", "--first-parent", "main"])
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn approved_work_lands_through_the_gate_as_a_merge_with_trailers() {
    let repo = Repo::new();
    repo.configure("60s", 3, GATE);
    let id = approved(&repo, "Good work", "plain");
    let out = repo.ok(&["integrate"]);
    assert!(out.contains(&id) && out.contains("merged as"), "{out}");
    let task = repo.task(&id);
    assert_eq!(task["state"], "merged");
    let tip = repo.git(&["rev-parse", "main"]);
    let body = repo.git(&["log", "-1", "--format=%B", "main"]);
    assert!(
        body.starts_with(&format!("Merge agent/{id}: Good work")),
        "{body}"
    );
    assert!(
        body.contains(&format!("Agent-Task: {id}")) && body.contains("Agent-Role: integrator"),
        "{body}"
    );
    assert_eq!(
        repo.git(&["rev-parse", "main^2"]),
        task["head"].as_str().unwrap()
    );
    let gate: serde_json::Value =
        serde_json::from_str(&repo.git(&["notes", "--ref=agent-ci", "show", &tip])).unwrap();
    assert_eq!(gate["result"], "passed");
    assert_eq!(gate["tree"], repo.git(&["rev-parse", "main^{tree}"]));
    assert_eq!(gate["inputs"]["test"], "test ! -e BROKEN");
    for key in ["base", "duration_ms", "at"] {
        assert!(!gate[key].is_null(), "gate record lacks {key}");
    }
    // The checked-out target moved too, as `git merge --ff-only` would.
    assert!(repo.path().join(format!("work-{id}.txt")).exists());
    assert_eq!(
        repo.git(&["status", "--porcelain", "--untracked-files=no"]),
        ""
    );
    assert_eq!(
        repo.ok(&["integrate"]).trim(),
        "nothing approved to integrate"
    );
}

#[test]
fn red_tests_never_reach_the_target() {
    let repo = Repo::new();
    repo.configure("60s", 3, GATE);
    let good = approved(&repo, "Good", "plain");
    let bad = approved(&repo, "Bad", "broken");
    let err = repo.fails(1, &["integrate"]);
    assert!(err.contains("sent back"), "{err}");
    assert_eq!(repo.state(&good), "merged");
    let task = repo.task(&bad);
    assert_eq!(
        (task["state"].as_str(), task["attempts"].as_u64()),
        (Some("open"), Some(1))
    );
    assert!(
        task["reason"].as_str().unwrap().contains("tests failed"),
        "{task}"
    );
    for commit in first_parents(&repo) {
        let files = repo.git(&["ls-tree", "--name-only", &commit]);
        assert!(
            !files.lines().any(|f| f == "BROKEN"),
            "{commit} on main has BROKEN"
        );
    }
    let context = repo.ok(&["context", &bad]);
    assert!(
        context.contains("integration failed: the tests failed"),
        "{context}"
    );
}

#[test]
fn local_changes_in_the_way_leave_the_target_untouched_with_the_reason() {
    let repo = Repo::new();
    repo.configure("60s", 3, GATE);
    let id = approved(&repo, "Blocked", "plain");
    let before = repo.git(&["rev-parse", "main"]);
    repo.write(&format!("work-{id}.txt"), "mine, not committed\n");
    let out = repo.ok(&["integrate"]);
    assert!(
        out.contains("waits") && out.contains("local changes in the way"),
        "{out}"
    );
    assert_eq!(repo.git(&["rev-parse", "main"]), before, "target untouched");
    assert_eq!(
        std::fs::read_to_string(repo.path().join(format!("work-{id}.txt"))).unwrap(),
        "mine, not committed\n"
    );
    assert_eq!(repo.state(&id), "approved");
    let runs_before = gate_runs(&repo, &id);
    std::fs::remove_file(repo.path().join(format!("work-{id}.txt"))).unwrap();
    repo.ok(&["integrate"]);
    assert_eq!(repo.state(&id), "merged");
    // The same tree passed already: the gate did not run a second time.
    assert_eq!(gate_runs(&repo, &id), runs_before);
    let note = repo.git(&["notes", "--ref=agent-ci", "show", "main"]);
    assert!(note.contains("passed before"), "{note}");
}

/// How many gate logs a task has.
fn gate_runs(repo: &Repo, id: &str) -> usize {
    std::fs::read_dir(repo.logs(id))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with("-gate.log")
        })
        .count()
}

#[test]
fn a_conflict_goes_back_to_the_implementer_with_the_branch_brought_up() {
    let repo = Repo::new();
    repo.configure("60s", 3, GATE);
    let first = approved(&repo, "First", "shared");
    let second = approved(&repo, "Second", "shared");
    repo.fails(1, &["integrate"]);
    assert_eq!(repo.state(&first), "merged");
    let task = repo.task(&second);
    assert_eq!(task["state"], "open");
    assert!(
        task["reason"]
            .as_str()
            .unwrap()
            .contains("merge conflict with main in: shared.txt"),
        "{task}"
    );
    let worktree = repo.worktree(&second);
    let mut git = std::process::Command::new("git");
    repo.env(&mut git);
    let merging = git
        .current_dir(&worktree)
        .args(["rev-parse", "-q", "--verify", "MERGE_HEAD"])
        .output()
        .unwrap();
    assert!(
        merging.status.success(),
        "the target's merge is left in progress"
    );
    // The next attempt resolves it (the fixture rewrites shared.txt) and lands.
    repo.ok(&["work", &second]);
    let prompt =
        std::fs::read_to_string(repo.logs(&second).join("2-implementer.prompt.md")).unwrap();
    assert!(
        prompt.contains("merge of main") && prompt.contains("shared.txt"),
        "{prompt}"
    );
    repo.ok(&["review", &second, "--approve"]);
    repo.ok(&["integrate"]);
    assert_eq!(repo.state(&second), "merged");
    assert_eq!(repo.git(&["show", "main:shared.txt"]), second);
}

#[test]
fn three_tasks_editing_one_file_all_land_through_the_integrator_agent() {
    for strategy in ["merge", "rebase"] {
        three_edits_of_one_file_land(strategy);
    }
}

fn three_edits_of_one_file_land(strategy: &str) {
    let repo = Repo::new();
    let integrator =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/agents/integrator.sh");
    repo.configure(
        "60s",
        3,
        &format!(
            "  integrator:\n    command: [sh, {}]\n    timeout: 60s\n{GATE}integrate: {{ strategy: {strategy} }}\n",
            integrator.display()
        ),
    );
    let ids: Vec<String> = (0..3)
        .map(|i| approved(&repo, &format!("Append {i}"), "append"))
        .collect();
    let before = first_parents(&repo).len();
    repo.ok(&["integrate"]);
    let list = repo.git(&["show", "main:list.txt"]);
    for id in &ids {
        assert_eq!(repo.state(id), "merged");
        assert!(
            list.lines().any(|l| l == id),
            "{id} missing from list.txt:\n{list}"
        );
    }
    assert!(!list.contains("<<<<<<<"), "{list}");
    let merges = repo
        .git(&["log", "--merges", "--format=%h", "main"])
        .lines()
        .count();
    assert_eq!(
        first_parents(&repo).len(),
        before + 3,
        "{strategy}: one commit per task on main"
    );
    assert_eq!(
        merges,
        if strategy == "rebase" { 0 } else { 3 },
        "{strategy}"
    );
    assert!(
        repo.logs(&ids[1]).join("1-integrator.log").exists()
            || repo.logs(&ids[2]).join("1-integrator.log").exists()
    );
}

#[test]
fn a_dependent_tasks_base_contains_its_dependency() {
    let repo = Repo::new();
    repo.configure("60s", 3, GATE);
    let first = approved(&repo, "Foundation", "plain");
    let second = repo.add("On top", &["--depends-on", &first]);
    repo.fails(1, &["work", &second]);
    repo.ok(&["integrate"]);
    let merge = repo.task(&first)["head"].as_str().unwrap().to_string();
    repo.ok(&["work", &second]);
    let base = repo.task(&second)["base"].as_str().unwrap().to_string();
    repo.git(&["merge-base", "--is-ancestor", &merge, &base]);
    let files = repo.git(&["ls-tree", "--name-only", &format!("agent/{second}")]);
    assert!(files.contains(&format!("work-{first}.txt")), "{files}");
}

/// kill -9 while the gate runs, then again: the work lands exactly once.
fn integration_killed_mid_gate_resumes_and_lands_once(format: &str) {
    let repo = Repo::with_ref_format(format);
    let marker = repo.scratch("gate-started");
    repo.configure("60s", 3, &format!("test: touch {marker}; sleep 30\n"));
    let id = approved(&repo, "Slow gate", "plain");
    let before = repo.git(&["rev-parse", "main"]);
    let mut queue = repo
        .cmd(&["integrate"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(crate::common::wait_for(30, || std::path::Path::new(
        &marker
    )
    .exists()));
    queue.kill().unwrap();
    queue.wait().unwrap();
    assert_eq!(
        repo.git(&["rev-parse", "main"]),
        before,
        "nothing landed half-way"
    );
    assert_eq!(repo.state(&id), "approved");
    repo.configure("60s", 3, "test: 'true'\n");
    repo.ok(&["integrate"]);
    assert_eq!(repo.state(&id), "merged");
    assert_eq!(repo.kinds(&id).iter().filter(|k| *k == "merged").count(), 1);
    let merges = repo.git(&["log", "--merges", "--format=%s", "main"]);
    assert_eq!(merges.lines().count(), 1, "{merges}");
}
crate::on_both_ref_formats!(integration_killed_mid_gate_resumes_and_lands_once);

/// The whole pipeline in one `run`: implement, review as each lands, merge
/// as each is approved, dependents started as their dependency merges.
fn run_drives_implement_review_integrate_to_the_end(format: &str) {
    let repo = Repo::with_ref_format(format);
    repo.configure(
        "60s",
        3,
        &format!(
            "  reviewer:\n    command: [sh, {}]\n    timeout: 60s\n{GATE}",
            agent("reviewer.sh")
        ),
    );
    let tasks = repo.plan(
        "tasks:\n  - key: a\n    title: A\n  - key: b\n    title: B\n  - key: c\n    title: C\n    depends_on: [a, b]\n",
    );
    let out = repo.ok(&["run", "-j", "2"]);
    assert!(out.contains("3 merged"), "{out}");
    for key in ["a", "b", "c"] {
        let id = tasks[key].as_str().unwrap();
        assert_eq!(repo.state(id), "merged", "{key}");
        assert!(repo.kinds(id).contains(&"reviewed".to_string()));
        let verdict = repo.git(&[
            "notes",
            "--ref=agent-review",
            "show",
            repo.task(id)["head"].as_str().unwrap(),
        ]);
        assert!(verdict.contains("\"approve\""), "{verdict}");
    }
    let c = repo.task(tasks["c"].as_str().unwrap());
    for dep in ["a", "b"] {
        let merged = repo.task(tasks[dep].as_str().unwrap())["head"]
            .as_str()
            .unwrap()
            .to_string();
        repo.git(&[
            "merge-base",
            "--is-ancestor",
            &merged,
            c["base"].as_str().unwrap(),
        ]);
    }
}
crate::on_both_ref_formats!(run_drives_implement_review_integrate_to_the_end);

/// Nothing waits silently: an entry that cannot land by its deadline goes
/// to a human with the reason.
#[test]
fn an_entry_past_its_deadline_goes_to_a_human() {
    let repo = Repo::new();
    repo.configure("60s", 3, &format!("{GATE}integrate: {{ deadline: 0s }}\n"));
    let id = approved(&repo, "Stuck", "plain");
    repo.write(&format!("work-{id}.txt"), "in the way\n");
    let out = repo.ok(&["integrate"]);
    assert!(out.contains("to a human"), "{out}");
    let task = repo.task(&id);
    assert_eq!(task["state"], "needs_human");
    let reason = task["reason"].as_str().unwrap();
    assert!(
        reason.contains("in the merge queue") && reason.contains("local changes in the way"),
        "{reason}"
    );
    assert!(repo.ok(&["status"]).starts_with("needs a human (1):"));
}

/// After a review asked for changes, an attempt that adds nothing to the
/// submitted head has failed: it is not submitted again.
#[test]
fn a_retry_that_adds_nothing_is_not_resubmitted() {
    let repo = Repo::new();
    repo.configure("60s", 3, GATE);
    let id = repo.add("Needs more", &["--spec", "plain"]);
    repo.ok(&["work", &id]);
    repo.fails(1, &["review", &id, "--request-changes", "-m", "add a test"]);
    repo.ok(&["task", "edit", &id, "--spec", "nothing"]);
    let err = repo.fails(1, &["work", &id]);
    assert!(err.contains("changed nothing"), "{err}");
    assert_eq!(repo.task(&id)["state"], "open");
}

/// An attempt that leaves the target's merge unresolved never commits the
/// conflict markers: the merge stays in progress for the next attempt.
#[test]
fn unresolved_conflicts_are_never_committed() {
    let repo = Repo::new();
    repo.configure("60s", 3, GATE);
    let _first = approved(&repo, "First", "shared");
    let second = approved(&repo, "Second", "shared");
    repo.fails(1, &["integrate"]);
    let tip = repo.git(&["rev-parse", &format!("agent/{second}")]);
    repo.ok(&["task", "edit", &second, "--spec", "always-fail"]);
    repo.fails(1, &["work", &second]);
    assert_eq!(
        repo.git(&["rev-parse", &format!("agent/{second}")]),
        tip,
        "nothing committed"
    );
    repo.ok(&["task", "edit", &second, "--spec", "nothing"]);
    let err = repo.fails(1, &["work", &second]);
    assert!(
        err.contains("left conflicts unresolved in: shared.txt"),
        "{err}"
    );
    assert_eq!(
        repo.git(&["rev-parse", &format!("agent/{second}")]),
        tip,
        "markers never committed"
    );
}
