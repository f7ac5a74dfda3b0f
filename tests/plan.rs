//! `git agent plan --file`: plans land whole, refusals name the fault and
//! write nothing.

use crate::common::{flat_plan, Repo};

const PLAN: &str = "goal: Add a verbose mode
tasks:
  - key: flag
    title: Add a --verbose flag
    spec: |
      Parse --verbose in src/cli.rs and keep it in Options.
    scope: [src/cli.rs]
    priority: 1
  - key: logging
    title: Log each step when verbose
    depends_on: [flag]
";

#[test]
fn plan_file_stores_every_task_with_dependencies_as_ids() {
    let repo = Repo::new();
    let tasks = repo.plan(PLAN);
    let flag = tasks["flag"].as_str().unwrap();
    let logging = tasks["logging"].as_str().unwrap();
    assert!(flag.starts_with("t-") && logging.starts_with("t-"));
    let t = repo.task(logging);
    assert_eq!(t["depends_on"], serde_json::json!([flag]));
    assert_eq!(t["blocked"], true);
    let f = repo.task(flag);
    assert_eq!(f["scope"], serde_json::json!(["src/cli.rs"]));
    assert_eq!(f["priority"], 1);
    assert_eq!(
        f["spec"],
        "Parse --verbose in src/cli.rs and keep it in Options.\n"
    );
    assert_eq!(f["plan"], t["plan"]);
    let plan_id = f["plan"].as_str().unwrap();
    let yaml = repo.git(&["show", &format!("refs/agent/plans/{plan_id}:plan.yaml")]);
    assert_eq!(yaml, PLAN.trim_end());
    let plan_json: serde_json::Value = serde_json::from_str(
        &repo.git(&["show", &format!("refs/agent/plans/{plan_id}:plan.json")]),
    )
    .unwrap();
    assert_eq!(plan_json["tasks"][1]["id"], logging);
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let repo = Repo::new();
    repo.write("plan.yaml", PLAN);
    let out = repo.ok(&["plan", "--file", "plan.yaml", "--dry-run"]);
    assert!(out.contains("2 tasks"), "{out}");
    assert!(
        out.contains("logging") && out.contains("after flag"),
        "{out}"
    );
    let json = repo.json(&["plan", "--file", "plan.yaml", "--dry-run"]);
    assert_eq!(json["tasks"][1]["depends_on"], serde_json::json!(["flag"]));
    assert!(repo.agent_refs().is_empty());
}

/// Each refusal DESIGN.md lists: exit 2, `file:line: field`, nothing written.
#[test]
fn every_refusal_names_file_line_and_field_and_writes_nothing() {
    let repo = Repo::new();
    let cases: &[(&str, &str, &str)] = &[
        ("tasks:\n  - key: a\n    title: [unclosed\n", "plan.yaml:3:", ""),
        ("tasks:\n  - key: a\n    title: A\n    colour: red\n", "plan.yaml:4:", "colour"),
        ("goal: g\nowner: me\ntasks: []\n", "plan.yaml:2:", "owner"),
        ("tasks:\n  - title: A\n", "plan.yaml:2:", "key"),
        ("tasks:\n  - key: \"\"\n    title: A\n", "plan.yaml:2:", "key"),
        ("tasks:\n  - key: a\n", "plan.yaml:2:", "title"),
        ("tasks:\n  - key: a\n    title: \"  \"\n", "plan.yaml:3:", "title"),
        ("tasks:\n  - key: a\n    title: A\n  - key: a\n    title: B\n", "plan.yaml:4:", "key"),
        ("tasks:\n  - key: a\n    title: A\n    depends_on: [nope]\n", "plan.yaml:4:", "depends_on"),
        (
            "tasks:\n  - key: flag\n    title: F\n    depends_on: [logging]\n  - key: logging\n    title: L\n    depends_on: [flag]\n",
            "plan.yaml:4:",
            "flag -> logging -> flag",
        ),
    ];
    for (yaml, location, field) in cases {
        repo.write("plan.yaml", yaml);
        let err = repo.fails(2, &["plan", "--file", "plan.yaml"]);
        assert!(
            err.contains(location),
            "expected {location} in: {err}\nfor:\n{yaml}"
        );
        assert!(
            err.contains(field),
            "expected {field} in: {err}\nfor:\n{yaml}"
        );
        assert!(
            repo.agent_refs().is_empty(),
            "a refused plan wrote refs:\n{yaml}"
        );
    }
}

#[test]
fn a_plan_may_depend_on_existing_tasks_by_id_or_prefix() {
    let repo = Repo::new();
    let base = repo.add("Existing work", &[]);
    let prefix = &base[..base.len() - 1];
    let yaml = format!("tasks:\n  - key: next\n    title: Next\n    depends_on: [{prefix}]\n");
    let tasks = repo.plan(&yaml);
    assert_eq!(
        repo.task(tasks["next"].as_str().unwrap())["depends_on"],
        serde_json::json!([base])
    );
}

#[test]
fn a_missing_plan_file_is_an_error_naming_it() {
    let repo = Repo::new();
    let err = repo.fails(2, &["plan", "--file", "nope.yaml"]);
    assert!(err.contains("nope.yaml"), "{err}");
}

/// The refs of a plan move in one transaction: when one cannot be written,
/// none are, small plan (loose refs) or large (packed-refs).
#[test]
fn a_plan_lands_whole_or_not_at_all() {
    for n in [3, 100] {
        let repo = Repo::with_ref_format("files");
        // A file where the plans directory should be makes the plan ref unwritable.
        std::fs::create_dir_all(repo.git_dir().join("refs/agent")).unwrap();
        std::fs::write(repo.git_dir().join("refs/agent/plans"), "in the way").unwrap();
        repo.write("plan.yaml", &flat_plan(n));
        repo.fails(2, &["plan", "--file", "plan.yaml"]);
        assert!(
            repo.agent_refs().is_empty(),
            "{n} tasks: some refs landed: {:?}",
            repo.agent_refs()
        );
        std::fs::remove_file(repo.git_dir().join("refs/agent/plans")).unwrap();
        repo.ok(&["plan", "--file", "plan.yaml"]);
        assert_eq!(repo.agent_refs().len(), n + 1);
    }
}

#[test]
fn a_large_plan_keeps_file_order_among_equal_priorities() {
    let repo = Repo::new();
    let tasks = repo.plan(&flat_plan(120));
    let ready = repo.json(&["ready"]);
    let order: Vec<&str> = ready
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = (0..120)
        .map(|i| tasks[&format!("k{i}")].as_str().unwrap())
        .collect();
    assert_eq!(order, expected);
}

/// A large plan is written as one pack, with no loose file per object; git
/// verifies it, sees every ref, the task logs read as usual, and the tasks
/// move on as any other.
#[test]
fn a_large_plan_is_one_pack_that_git_verifies() {
    let repo = Repo::new();
    let loose_before = repo.git(&["count-objects"]);
    let tasks = repo.plan(&flat_plan(150));
    assert_eq!(repo.git(&["count-objects"]), loose_before);
    let pack_dir = repo.git_dir().join("objects/pack");
    let indexes: Vec<_> = std::fs::read_dir(&pack_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .collect();
    assert_eq!(indexes.len(), 1, "{indexes:?}");
    let listing = repo.git(&["verify-pack", "-v", indexes[0].to_str().unwrap()]);
    // 4 objects per task (event, snapshot, tree, commit), 5 for the plan.
    assert!(listing.contains("non delta: 605 objects"), "{listing}");
    repo.git(&["fsck", "--full", "--strict", "--no-dangling"]);
    let refs = repo.git(&["for-each-ref", "--format=%(refname)", "refs/agent/"]);
    assert_eq!(refs.lines().count(), 151, "{refs}");

    let first = tasks["k0"].as_str().unwrap();
    let subjects = repo.git(&["log", "--format=%s", &format!("refs/agent/tasks/{first}")]);
    assert_eq!(subjects, "created: Task 0");
    let pid = std::process::id().to_string();
    assert_eq!(
        repo.ok(&["claim", "--next", "--actor", "w", "--pid", &pid])
            .trim(),
        first
    );
    assert_eq!(repo.state(first), "in_progress");
    repo.git(&["fsck", "--full", "--strict", "--no-dangling"]);
}

/// Writing a large plan's refs keeps the refs already packed, peeled tags
/// included.
#[test]
fn a_large_plan_keeps_the_refs_already_packed() {
    let repo = Repo::new();
    repo.git(&["tag", "-a", "v1", "-m", "release 1"]);
    repo.git(&["branch", "topic"]);
    repo.git(&["pack-refs", "--all"]);
    let before = repo.git(&["show-ref", "-d"]);
    repo.plan(&flat_plan(120));
    let after = repo.git(&["show-ref", "-d"]);
    for line in before.lines() {
        assert!(after.contains(line), "lost {line}:\n{after}");
    }
    assert_eq!(repo.agent_refs().len(), 121);
    repo.plan(&flat_plan(80));
    assert_eq!(repo.agent_refs().len(), 202);
    repo.git(&["fsck", "--full", "--strict", "--no-dangling"]);
}

/// kill -9 at any moment of a plan import, small or large, on either ref
/// format: all of its tasks land or none, and git finds the repository whole.
#[test]
fn a_plan_import_killed_at_any_moment_lands_whole_or_not_at_all() {
    for format in ["files", "reftable"] {
        for n in [5, 400, 2000] {
            let repo = Repo::with_ref_format(format);
            repo.write("plan.yaml", &flat_plan(n));
            let mut landed = 0;
            for round in 0..6u64 {
                let before = repo.agent_refs().len();
                let mut child = repo
                    .cmd(&["plan", "--file", "plan.yaml"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                // From before git-agent has read the plan to after it is done.
                std::thread::sleep(std::time::Duration::from_millis(round * round * 12));
                let _ = child.kill();
                let _ = child.wait();
                let added = repo.agent_refs().len() - before;
                assert!(
                    added == 0 || added == n + 1,
                    "{format}, {n} tasks, round {round}: {added} refs landed"
                );
                landed += usize::from(added > 0);
            }
            repo.git(&["fsck", "--no-dangling"]);
            let status = repo.json(&["status"]);
            assert_eq!(
                status["tasks"].as_array().unwrap().len(),
                landed * n,
                "{format}, {n} tasks"
            );
        }
    }
}

/// In a reftable repository one lock guards every ref: a plan that finds it
/// held longer than git waits lands nothing and names the lock, which stays.
/// (The files format is shown the same by `a_plan_lands_whole_or_not_at_all`.)
#[test]
fn a_plan_refused_by_a_held_reftable_lock_lands_nothing() {
    let repo = Repo::with_ref_format("reftable");
    repo.git(&["config", "reftable.lockTimeout", "100"]);
    let lock = repo.git_dir().join("reftable/tables.list.lock");
    std::fs::write(&lock, "").unwrap();
    repo.write("plan.yaml", &flat_plan(50));
    let err = repo.fails(2, &["plan", "--file", "plan.yaml"]);
    assert!(err.contains(&lock.display().to_string()), "{err}");
    assert!(repo.agent_refs().is_empty(), "{:?}", repo.agent_refs());
    assert!(lock.exists(), "the lock was broken");
    std::fs::remove_file(&lock).unwrap();
    repo.ok(&["plan", "--file", "plan.yaml"]);
    assert_eq!(repo.agent_refs().len(), 51);
}

/// Loose task refs in a files repository, as `git` sees them on disk.
fn loose_task_refs(repo: &Repo) -> usize {
    std::fs::read_dir(repo.git_dir().join("refs/agent/tasks"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

#[test]
fn a_large_plan_has_git_pack_its_task_refs_so_listings_read_one_file() {
    let repo = Repo::new();
    let small = repo.plan(&flat_plan(3));
    assert_eq!(small.len(), 3);
    let large = repo.plan(&flat_plan(300));
    assert_eq!(large.len(), 300);
    assert!(
        crate::common::wait_for(30, || loose_task_refs(&repo) == 0),
        "{} task refs still loose",
        loose_task_refs(&repo)
    );
    let packed = std::fs::read_to_string(repo.git_dir().join("packed-refs")).unwrap();
    assert_eq!(packed.matches("refs/agent/tasks/").count(), 303, "{packed}");
    // Still every task, as git and git-agent read them.
    let ready = repo.json(&["ready"]);
    assert_eq!(ready.as_array().map(Vec::len), Some(303), "{ready}");
    assert!(!repo.git_dir().join("packed-refs.lock").exists());
}
