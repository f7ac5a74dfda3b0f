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

// ---- the speculative queue (issue 14) ----

/// Approve one task per spec, in order (so the queue takes them in order).
fn approved_in_order(repo: &Repo, specs: &[&str]) -> Vec<String> {
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| approved(repo, &format!("Entry {}", i + 1), spec))
        .collect()
}

/// The gate runs of the `agent-ci` note on `commit`, oldest first.
fn gate_notes(repo: &Repo, commit: &str) -> Vec<serde_json::Value> {
    repo.git(&["notes", "--ref=agent-ci", "show", commit])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every first-parent commit of `main` after the initial one, except
/// `others` (made by someone else), is a candidate the gate passed on
/// exactly that tree, built on its first parent.
fn assert_every_first_parent_gated(repo: &Repo, others: &[String]) {
    let initial = repo.git(&["rev-list", "--max-parents=0", "main"]);
    let line = repo.git(&["rev-list", "--first-parent", "main", &format!("^{initial}")]);
    for commit in line.lines().filter(|c| !others.iter().any(|o| o == c)) {
        let notes = gate_notes(repo, commit);
        let last = notes
            .last()
            .unwrap_or_else(|| panic!("{commit} has no gate note"));
        assert!(
            last["result"].as_str().unwrap().starts_with("passed"),
            "{commit}: {notes:?}"
        );
        assert_eq!(
            last["tree"],
            repo.git(&["rev-parse", &format!("{commit}^{{tree}}")])
        );
        assert_eq!(
            last["base"],
            repo.git(&["rev-parse", &format!("{commit}^1")])
        );
    }
}

/// The `data.queue` of the event with which task `id` left the queue.
fn stay(repo: &Repo, id: &str) -> serde_json::Value {
    let shown = repo.json(&["show", id]);
    shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| !e["data"]["queue"].is_null())
        .unwrap_or_else(|| panic!("{id} has no event with its stay in the queue"))["data"]["queue"]
        .clone()
}

/// The commit task `id` was merged as, from its `merged` event.
fn merged_as(repo: &Repo, id: &str) -> String {
    repo.json(&["show", id])["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "merged")
        .unwrap()["data"]["commit"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Eight approved entries behind a one-second gate, in one `integrate`:
/// how long it took. Each lands, on a commit the gate passed.
fn eight_behind_a_slow_gate(window: usize) -> std::time::Duration {
    let repo = Repo::new();
    repo.configure(
        "60s",
        3,
        &format!("test: sleep 1\nintegrate: {{ window: {window} }}\n"),
    );
    let ids = approved_in_order(&repo, &["plain"; 8]);
    let start = std::time::Instant::now();
    repo.ok(&["integrate"]);
    let took = start.elapsed();
    for id in &ids {
        assert_eq!(repo.state(id), "merged", "window {window}");
        let stay = stay(&repo, id);
        assert_eq!(stay["left"], "merged");
        assert_eq!(stay["window"], window);
        assert!(stay["queued_ms"].as_u64().unwrap() > 0, "{stay}");
        assert!(!stay["gates"].as_array().unwrap().is_empty(), "{stay}");
    }
    assert_eq!(first_parents(&repo).len(), 1 + 8, "one commit per entry");
    assert_every_first_parent_gated(&repo, &[]);
    took
}

#[test]
fn a_window_of_four_lands_eight_entries_in_under_half_the_serial_time() {
    let serial = eight_behind_a_slow_gate(1);
    let speculative = eight_behind_a_slow_gate(4);
    assert!(
        speculative * 2 < serial,
        "window 4 took {speculative:?}, window 1 {serial:?}"
    );
}

#[test]
fn the_fifth_of_eight_breaking_the_gate_goes_back_and_the_rest_land() {
    let repo = Repo::new();
    repo.configure(
        "60s",
        3,
        "test: \"test ! -e BROKEN || { echo BROKEN is in the tree; exit 1; }\"\nintegrate: { window: 4 }\n",
    );
    let mut specs = ["plain"; 8];
    specs[4] = "broken";
    let ids = approved_in_order(&repo, &specs);
    let err = repo.fails(1, &["integrate"]);
    assert!(err.contains("1 task sent back"), "{err}");
    let fifth = repo.task(&ids[4]);
    assert_eq!(fifth["state"], "open");
    assert!(
        fifth["reason"].as_str().unwrap().contains("tests failed"),
        "{fifth}"
    );
    let failed = repo.json(&["show", &ids[4]])["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "integration_failed")
        .unwrap()
        .clone();
    assert_eq!(failed["data"]["queue"]["left"], "gate_failed");
    let log = failed["data"]["detail"].as_str().unwrap();
    assert!(log.contains("BROKEN is in the tree"), "the log tail: {log}");
    // The first four, then the last three, each on a tree the gate passed.
    let landed: Vec<String> = repo
        .git(&["log", "--first-parent", "--reverse", "--format=%s", "main"])
        .lines()
        .skip(1)
        .map(String::from)
        .collect();
    let expected: Vec<String> = [0, 1, 2, 3, 5, 6, 7]
        .iter()
        .map(|&i| format!("Merge agent/{}: Entry {}", ids[i], i + 1))
        .collect();
    assert_eq!(landed, expected);
    assert_every_first_parent_gated(&repo, &[]);
    for commit in first_parents(&repo) {
        let files = repo.git(&["ls-tree", "--name-only", &commit]);
        assert!(!files.lines().any(|f| f == "BROKEN"), "{commit} has BROKEN");
    }
    // The sixth was gated on a candidate with the fifth in it first, then
    // rebuilt: the run it landed on is its last, on the commit it landed as.
    let sixth = stay(&repo, &ids[5]);
    let gates = sixth["gates"].as_array().unwrap();
    let merged = repo.task(&ids[5]);
    let landed_as = merged_as(&repo, &ids[5]);
    assert_eq!(merged["state"], "merged");
    let last = gates.last().unwrap();
    assert_eq!(last["result"], "passed", "{sixth}");
    assert_eq!(last["commit"], landed_as.as_str());
    assert!(
        gates.len() >= 2 && gates[0]["result"] != "passed",
        "first gated with the fifth ahead of it: {sixth}"
    );
}

#[test]
fn a_target_moved_by_someone_else_mid_gate_lands_nothing_untested_and_catches_up() {
    let repo = Repo::new();
    let started = repo.scratch("started");
    let release = repo.scratch("release");
    std::fs::create_dir_all(&started).unwrap();
    repo.configure(
        "60s",
        3,
        &format!(
            "test: \"touch {started}/$GIT_AGENT_TASK; while [ ! -e {release} ]; do sleep 0.05; done\"\nintegrate: {{ window: 4 }}\n"
        ),
    );
    let ids = approved_in_order(&repo, &["plain"; 3]);
    let old_tip = repo.git(&["rev-parse", "main"]);
    let mut queue = repo
        .cmd(&["integrate"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let gating = |id: &String| std::path::Path::new(&started).join(id).exists();
    assert!(
        crate::common::wait_for(60, || ids.iter().all(gating)),
        "three candidates gated at once"
    );
    // Someone else moves main while all three gates run.
    repo.write("theirs.txt", "someone else's\n");
    repo.git(&["add", "theirs.txt"]);
    repo.git(&["commit", "-q", "-m", "Someone else's change"]);
    let theirs = repo.git(&["rev-parse", "main"]);
    std::fs::write(&release, "").unwrap();
    assert!(
        crate::common::wait_for(120, || queue.try_wait().unwrap().is_some()),
        "the queue finished"
    );
    assert!(queue.wait().unwrap().success());
    for id in &ids {
        assert_eq!(repo.state(id), "merged");
        let commit = repo.task(id)["head"].as_str().unwrap().to_string();
        repo.git(&["merge-base", "--is-ancestor", &commit, "main"]);
        let gates = stay(&repo, id)["gates"].as_array().unwrap().clone();
        let on_old_tip = gates.iter().any(|g| {
            let mut git = std::process::Command::new("git");
            repo.env(&mut git);
            let commit = g["commit"].as_str().unwrap();
            let old = git
                .args(["merge-base", "--is-ancestor", &old_tip, commit])
                .status()
                .unwrap()
                .success();
            old && !repo.git(&["branch", "--contains", commit]).contains("main")
        });
        assert!(
            on_old_tip,
            "first gated on a chain on the old tip, which never landed: {gates:?}"
        );
        let landed_as = merged_as(&repo, id);
        assert!(
            gates
                .iter()
                .any(|g| g["commit"] == landed_as.as_str() && g["result"] == "passed"),
            "landed as a candidate it gated: {gates:?}"
        );
        repo.git(&["merge-base", "--is-ancestor", &theirs, &landed_as]);
    }
    let line = first_parents(&repo);
    assert_eq!(line.len(), 1 + 1 + 3, "{line:?}");
    assert!(line.contains(&theirs));
    assert_every_first_parent_gated(&repo, &[theirs]);
}

/// kill -9 of the queue while several gates run: the next run lands each
/// entry once and leaves no stray merge worktree (nor gate) behind.
fn killed_during_several_gates_the_next_run_lands_each_once(format: &str) {
    let repo = Repo::with_ref_format(format);
    let started = repo.scratch("started");
    std::fs::create_dir_all(&started).unwrap();
    repo.configure(
        "60s",
        3,
        &format!(
            "test: \"echo $$ > {started}/$GIT_AGENT_TASK; sleep 30\"\nintegrate: {{ window: 3 }}\n"
        ),
    );
    let ids = approved_in_order(&repo, &["plain"; 3]);
    let before = repo.git(&["rev-parse", "main"]);
    let mut queue = repo
        .cmd(&["integrate"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid_of = |id: &String| {
        std::fs::read_to_string(std::path::Path::new(&started).join(id))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
    };
    assert!(
        crate::common::wait_for(60, || ids.iter().all(|id| pid_of(id).is_some())),
        "three gates running"
    );
    let gates: Vec<u32> = ids.iter().filter_map(pid_of).collect();
    queue.kill().unwrap();
    queue.wait().unwrap();
    assert_eq!(repo.git(&["rev-parse", "main"]), before, "nothing landed");
    for id in &ids {
        assert_eq!(repo.state(id), "approved");
    }
    repo.configure("60s", 3, "test: 'true'\nintegrate: { window: 3 }\n");
    repo.ok(&["integrate"]);
    for id in &ids {
        assert_eq!(repo.state(id), "merged");
        assert_eq!(repo.kinds(id).iter().filter(|k| *k == "merged").count(), 1);
    }
    let merges = repo.git(&["log", "--merges", "--format=%s", "main"]);
    assert_eq!(merges.lines().count(), 3, "{merges}");
    assert_every_first_parent_gated(&repo, &[]);
    assert!(
        crate::common::wait_for(10, || gates.iter().all(|pid| !crate::common::alive(*pid))),
        "the gates the killed run left were stopped"
    );
    // The queue's worktrees: registered, clean, nothing in progress, no more than the window.
    let listing = repo.git(&["worktree", "list", "--porcelain"]);
    assert!(!listing.contains("prunable"), "{listing}");
    let queues: Vec<std::path::PathBuf> = std::fs::read_dir(repo.worktrees())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("queue-"))
        .map(|e| e.path())
        .collect();
    assert!(!queues.is_empty() && queues.len() <= 3, "{queues:?}");
    for path in &queues {
        let canonical = path.canonicalize().unwrap();
        assert!(
            listing.contains(&format!("worktree {}", canonical.display())),
            "{} is a registered worktree:\n{listing}",
            path.display()
        );
        let mut git = std::process::Command::new("git");
        repo.env(&mut git);
        let status = git
            .current_dir(path)
            .args(["status", "--porcelain"])
            .output()
            .unwrap();
        assert!(
            status.status.success() && status.stdout.is_empty(),
            "{}",
            path.display()
        );
        let mut git = std::process::Command::new("git");
        repo.env(&mut git);
        let merging = git
            .current_dir(path)
            .args(["rev-parse", "-q", "--verify", "MERGE_HEAD"])
            .output()
            .unwrap();
        assert!(
            !merging.status.success(),
            "a merge left in {}",
            path.display()
        );
    }
}
crate::on_both_ref_formats!(killed_during_several_gates_the_next_run_lands_each_once);

/// A flaky gate: with `retries: 1` a failed run is run once more on the
/// identical tree before the entry is blamed, and both runs are recorded.
#[test]
fn a_gate_that_fails_once_is_run_again_on_the_same_tree_and_both_runs_recorded() {
    let repo = Repo::new();
    let seen = repo.scratch("seen");
    std::fs::create_dir_all(&seen).unwrap();
    repo.configure(
        "60s",
        3,
        &format!(
            "test: \"t=$(git rev-parse HEAD^{{tree}}); [ -e {seen}/$t ] || {{ touch {seen}/$t; echo flaky; exit 1; }}\"\nintegrate: {{ retries: 1 }}\n"
        ),
    );
    let id = approved(&repo, "Flaky", "plain");
    repo.ok(&["integrate"]);
    assert_eq!(repo.state(&id), "merged");
    let notes = gate_notes(&repo, "main");
    let results: Vec<&str> = notes
        .iter()
        .map(|n| n["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["failed: exit 1", "passed"]);
    assert_eq!(notes[0]["tree"], notes[1]["tree"], "the identical tree");
    let runs: Vec<u64> = stay(&repo, &id)["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["run"].as_u64().unwrap())
        .collect();
    assert_eq!(runs, [1, 2]);
}

#[test]
fn a_gate_that_times_out_once_is_run_again_and_the_entry_lands() {
    let repo = Repo::new();
    let seen = repo.scratch("seen");
    std::fs::create_dir_all(&seen).unwrap();
    repo.configure(
        "60s",
        3,
        &format!(
            "test: \"t=$(git rev-parse HEAD^{{tree}}); [ -e {seen}/$t ] || {{ touch {seen}/$t; sleep 30; }}\"\nintegrate: {{ retries: 1, test_timeout: 1s }}\n"
        ),
    );
    let id = approved(&repo, "Hangs once", "plain");
    repo.ok(&["integrate"]);
    assert_eq!(repo.state(&id), "merged");
    let results: Vec<String> = gate_notes(&repo, "main")
        .iter()
        .map(|n| n["result"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(results, ["not_run: timed out", "passed"]);
    assert_every_first_parent_gated(&repo, &[]);
}

/// A task approved with one commit per `(file, content)` in `commits`
/// (content `-` removes the file), made by hand on its branch.
fn approved_commits(repo: &Repo, title: &str, commits: &[(&str, &str)]) -> String {
    let id = repo.add(title, &[]);
    repo.ok(&["claim", &id, "--actor", "me"]);
    repo.git(&["checkout", "-q", "-b", &format!("agent/{id}")]);
    for (file, content) in commits {
        match *content {
            "-" => repo.git(&["rm", "-q", file]),
            text => {
                repo.write(file, text);
                repo.git(&["add", file])
            }
        };
        repo.git(&["commit", "-q", "-m", &format!("{file}: {content}")]);
    }
    repo.git(&["checkout", "-q", "main"]);
    repo.ok(&["submit", &id, "--actor", "me"]);
    repo.ok(&["review", &id, "--approve"]);
    id
}

#[test]
fn a_rebased_entry_lands_only_with_every_commit_gated() {
    let repo = Repo::new();
    repo.configure(
        "60s",
        3,
        &format!("{GATE}integrate: {{ strategy: rebase }}\n"),
    );
    let before = first_parents(&repo).len();
    let id = approved_commits(&repo, "Two steps", &[("one.txt", "1"), ("two.txt", "2")]);
    repo.ok(&["integrate"]);
    assert_eq!(repo.state(&id), "merged");
    assert_eq!(
        first_parents(&repo).len(),
        before + 2,
        "both commits, rebased"
    );
    assert_every_first_parent_gated(&repo, &[]);
}

#[test]
fn a_rebased_entry_with_a_red_commit_between_green_ones_never_lands() {
    let repo = Repo::new();
    repo.configure(
        "60s",
        3,
        &format!("{GATE}integrate: {{ strategy: rebase }}\n"),
    );
    let tip = repo.git(&["rev-parse", "main"]);
    // Its last tree is green, but the commit before it breaks the gate.
    let id = approved_commits(
        &repo,
        "Broken on the way",
        &[("BROKEN", "oops"), ("BROKEN", "-"), ("fixed.txt", "ok")],
    );
    repo.fails(1, &["integrate"]);
    assert_eq!(repo.git(&["rev-parse", "main"]), tip, "nothing landed");
    assert_ne!(repo.state(&id), "merged");
    let stay = stay(&repo, &id);
    assert_eq!(stay["left"], "gate_failed", "{stay}");
    let results: Vec<&str> = stay["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        ["failed: exit 1"],
        "the first commit, and only it: {stay}"
    );
}
