//! `git agent sync` and claims against a remote: real clones, a real bare
//! hub, real pushes and fetches.

use crate::common::Repo;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Stdio;

/// A bare hub in a temp dir, made with plain `git init --bare`.
struct Hub {
    dir: tempfile::TempDir,
}

impl Hub {
    fn new() -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("git")
            .args(["init", "-q", "--bare"])
            .current_dir(dir.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(out.status.success());
        Hub { dir }
    }

    fn url(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    /// A clone's repository with the hub as `origin`.
    fn clone(&self) -> Repo {
        let repo = Repo::new();
        repo.git(&["remote", "add", "origin", self.url()]);
        repo
    }

    /// A clone whose `main` is the hub's (the first one pushes its own).
    fn clone_main(&self) -> Repo {
        let repo = self.clone();
        if self.git(&["for-each-ref", "refs/heads/main"]).is_empty() {
            repo.git(&["push", "-q", "origin", "main"]);
        } else {
            repo.git(&["fetch", "-q", "origin", "main"]);
            repo.git(&["reset", "-q", "--hard", "FETCH_HEAD"]);
        }
        repo
    }

    /// Run git in the hub; its stdout.
    fn git(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(self.dir.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The task each first-parent commit of the hub's `main` since `base`
    /// merged (its `Agent-Task` trailer), oldest first, with the commit.
    fn merges_since(&self, base: &str) -> Vec<(String, String)> {
        self.git(&[
            "log",
            "--first-parent",
            "--reverse",
            "--format=%H %(trailers:key=Agent-Task,valueonly,separator=%x2C)",
            &format!("{base}..main"),
        ])
        .lines()
        .map(|l| {
            let (commit, task) = l.split_once(' ').unwrap_or((l, ""));
            (commit.to_string(), task.trim().to_string())
        })
        .collect()
    }

    /// Whether the hub holds a passing `agent-ci` note on `commit`.
    fn gate_passed(&self, commit: &str) -> bool {
        let out = std::process::Command::new("git")
            .args(["notes", "--ref=agent-ci", "show", commit])
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().any(|l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| {
                v["result"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("passed"))
            })
        })
    }
}

/// Configure `repo` with the scripted implementer and reviewer and a gate.
fn configure_pipeline(repo: &Repo) {
    repo.configure(
        "60s",
        3,
        &format!(
            "  reviewer:\n    command: [sh, {}]\ntest: test -f README.md\n",
            crate::common::agent("reviewer.sh")
        ),
    );
}

/// How often the implementer started on `id`, by the lines of `record`.
fn starts(record: &str, id: &str) -> usize {
    record
        .lines()
        .filter(|l| l.starts_with("start ") && l.split(' ').nth(1) == Some(id))
        .count()
}

/// Every agent ref and notes ref of `repo` with its object.
fn all_refs(repo: &Repo) -> String {
    repo.git(&[
        "for-each-ref",
        "--format=%(refname) %(objectname)",
        "refs/agent/",
        "refs/notes/",
    ])
}

/// Event ids of a task, as `show --json` lists them.
fn event_ids(repo: &Repo, id: &str) -> BTreeSet<String> {
    let shown = repo.json(&["show", id]);
    shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

fn sync(repo: &Repo) -> String {
    repo.ok(&["sync"])
}

#[test]
fn diverged_changes_to_one_task_give_both_clones_every_event() {
    let hub = Hub::new();
    let (a, b) = (hub.clone(), hub.clone());
    let id = a.add("Shared", &[]);
    assert!(sync(&a).contains(&format!("pushed refs/agent/tasks/{id}")));
    assert!(sync(&b).contains(&format!("fetched refs/agent/tasks/{id}")));
    // Apart: each side changes the task.
    a.ok(&["task", "edit", &id, "--title", "Shared, renamed on A"]);
    b.ok(&["task", "edit", &id, "--priority", "0"]);
    let (only_a, only_b) = (event_ids(&a, &id), event_ids(&b, &id));
    assert_ne!(only_a, only_b);
    sync(&a);
    let merged = sync(&b);
    assert!(
        merged.contains(&format!("merged refs/agent/tasks/{id}")),
        "{merged}"
    );
    sync(&a);
    let (task_a, task_b) = (a.task(&id), b.task(&id));
    assert_eq!(task_a, task_b);
    assert_eq!(task_a["title"], "Shared, renamed on A");
    assert_eq!(task_a["priority"], 0);
    let every: BTreeSet<String> = only_a.union(&only_b).cloned().collect();
    assert_eq!(event_ids(&a, &id), every);
    assert_eq!(event_ids(&b, &id), every);
    assert_eq!(
        a.git(&["rev-parse", &format!("refs/agent/tasks/{id}")]),
        b.git(&["rev-parse", &format!("refs/agent/tasks/{id}")])
    );
}

#[test]
fn a_second_sync_with_nothing_new_moves_nothing() {
    let hub = Hub::new();
    let (a, b) = (hub.clone(), hub.clone());
    let ids: Vec<String> = (0..3).map(|i| a.add(&format!("T{i}"), &[])).collect();
    a.ok(&["claim", &ids[0], "--actor", "impl-a"]);
    sync(&a);
    sync(&b);
    let (before_a, before_b) = (all_refs(&a), all_refs(&b));
    assert_eq!(sync(&a).trim(), "nothing to sync with origin");
    assert_eq!(sync(&b).trim(), "nothing to sync with origin");
    assert_eq!(all_refs(&a), before_a);
    assert_eq!(all_refs(&b), before_b);
    // Both hold the same tasks and the same lease.
    let refs = |r: &Repo| {
        r.git(&[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/agent/",
        ])
    };
    assert_eq!(refs(&a), refs(&b));
    assert!(refs(&b).contains(&format!("refs/agent/leases/{}", ids[0])));
}

#[test]
fn syncs_racing_on_one_hub_end_consistent() {
    let hub = Hub::new();
    let clones: Vec<Repo> = (0..3).map(|_| hub.clone()).collect();
    let seed = clones[0].add("Seed", &[]);
    sync(&clones[0]);
    for c in &clones[1..] {
        sync(c);
    }
    // Each clone changes the seed task and adds tasks of its own, then all
    // sync at once.
    for (i, c) in clones.iter().enumerate() {
        c.ok(&["task", "edit", &seed, "--label", &format!("from-{i}")]);
        c.add(&format!("Own {i}"), &[]);
    }
    let racers: Vec<_> = clones
        .iter()
        .map(|c| {
            c.cmd(&["sync"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in racers {
        let out = r.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // One more round each brings every side up to the hub.
    for c in &clones {
        sync(c);
    }
    let refs = |r: &Repo| {
        r.git(&[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/agent/",
        ])
    };
    let first = refs(&clones[0]);
    assert_eq!(first.lines().count(), 4, "{first}");
    for c in &clones[1..] {
        assert_eq!(refs(c), first);
    }
    let events: BTreeSet<String> = event_ids(&clones[0], &seed);
    // created + three edits, one from each clone.
    assert_eq!(events.len(), 4, "{events:?}");
    let task: Value = clones[2].task(&seed);
    assert_eq!(task, clones[0].task(&seed));
}

#[test]
fn sync_with_an_unknown_remote_exits_2_naming_it() {
    let hub = Hub::new();
    let a = hub.clone();
    let err = a.fails(2, &["sync", "nowhere"]);
    assert!(err.contains("nowhere"), "{err}");
}

/// The holder `status --json` shows for task `id`.
fn holder(repo: &Repo, id: &str) -> Value {
    let board = repo.json(&["status"]);
    let tasks = board["tasks"]
        .as_array()
        .expect("status --json lists tasks");
    let task = tasks
        .iter()
        .find(|t| t["id"] == id)
        .expect("the task is listed");
    task["assignee"].clone()
}

#[test]
fn a_claim_against_the_remote_loses_to_the_one_that_landed() {
    let hub = Hub::new();
    let (a, b) = (hub.clone(), hub.clone());
    let id = a.add("Contested", &[]);
    sync(&a);
    sync(&b);
    a.ok(&["claim", &id, "--actor", "impl-a", "--remote", "origin"]);
    // B has not fetched since: its claim syncs first and sees A's.
    let err = b.fails(
        1,
        &["claim", &id, "--actor", "impl-b", "--remote", "origin"],
    );
    assert!(err.contains("impl-a"), "{err}");
    sync(&a);
    assert_eq!(holder(&a, &id), "impl-a");
    assert_eq!(holder(&b, &id), "impl-a");
    assert_eq!(a.task(&id), b.task(&id));
    // The hub holds A's lease, and so does every clone.
    let lease = format!("refs/agent/leases/{id}");
    assert_eq!(a.git(&["rev-parse", &lease]), b.git(&["rev-parse", &lease]));
}

#[test]
fn a_claim_made_while_apart_is_void_once_the_other_landed() {
    let hub = Hub::new();
    let (a, b) = (hub.clone(), hub.clone());
    let id = a.add("Split brain", &[]);
    sync(&a);
    sync(&b);
    // Both claim while apart; A's push lands first.
    a.ok(&["claim", &id, "--actor", "impl-a"]);
    b.ok(&["claim", &id, "--actor", "impl-b"]);
    sync(&a);
    let out = sync(&b);
    assert!(
        out.contains(&format!("merged refs/agent/tasks/{id}")),
        "{out}"
    );
    sync(&a);
    assert_eq!(holder(&a, &id), "impl-a");
    assert_eq!(holder(&b, &id), "impl-a");
    assert_eq!(a.task(&id), b.task(&id));
    let lease = format!("refs/agent/leases/{id}");
    assert_eq!(a.git(&["rev-parse", &lease]), b.git(&["rev-parse", &lease]));
    // B's claim stays in the history, voided; B can no longer act on it.
    assert_eq!(event_ids(&a, &id), event_ids(&b, &id));
    assert_eq!(event_ids(&b, &id).len(), 3);
    b.fails(1, &["renew", &id, "--actor", "impl-b"]);
}

#[test]
fn claim_next_against_the_remote_moves_past_a_task_taken_there() {
    let hub = Hub::new();
    let (a, b) = (hub.clone(), hub.clone());
    let first = a.add("First", &["--priority", "0"]);
    let second = a.add("Second", &["--priority", "1"]);
    sync(&a);
    sync(&b);
    assert_eq!(
        a.ok(&["claim", "--next", "--actor", "impl-a", "--remote", "origin"])
            .trim(),
        first
    );
    assert_eq!(
        b.ok(&["claim", "--next", "--actor", "impl-b", "--remote", "origin"])
            .trim(),
        second
    );
    sync(&a);
    assert_eq!(holder(&a, &second), "impl-b");
    assert_eq!(holder(&b, &first), "impl-a");
}

#[test]
fn claims_racing_through_one_hub_have_one_winner() {
    let hub = Hub::new();
    let clones: Vec<Repo> = (0..3).map(|_| hub.clone()).collect();
    let id = clones[0].add("Raced", &[]);
    for c in &clones {
        sync(c);
    }
    let racers: Vec<_> = clones
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let actor = format!("impl-{i}");
            c.cmd(&["claim", &id, "--actor", &actor, "--remote", "origin"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = racers
        .into_iter()
        .map(|r| r.wait_with_output().unwrap())
        .collect();
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        1,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == Some(1)).count(),
        2,
        "{codes:?}"
    );
    let winner = format!("impl-{}", codes.iter().position(|c| *c == Some(0)).unwrap());
    for c in &clones {
        sync(c);
    }
    for c in &clones {
        assert_eq!(holder(c, &id), winner.as_str());
    }
}

#[test]
fn three_clones_running_against_one_hub_implement_each_task_once() {
    let hub = Hub::new();
    let clones: Vec<Repo> = (0..3).map(|_| hub.clone()).collect();
    let record = clones[0].scratch("record.txt");
    let ids: Vec<String> = (0..6)
        .map(|i| {
            clones[0].add(
                &format!("Task {i}"),
                &["--spec", &format!("record={record}")],
            )
        })
        .collect();
    for c in &clones {
        c.configure("60s", 3, "");
        sync(c);
    }
    let runs: Vec<_> = clones
        .iter()
        .map(|c| {
            c.cmd(&["run", "--remote", "origin", "-j", "2"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in runs {
        let out = r.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for c in &clones {
        sync(c);
    }
    let record = std::fs::read_to_string(&record).unwrap();
    for id in &ids {
        let starts = record
            .lines()
            .filter(|l| l.starts_with("start ") && l.split(' ').nth(1) == Some(id))
            .count();
        assert_eq!(starts, 1, "{id} started {starts} times:\n{record}");
        for c in &clones {
            assert_eq!(c.state(id), "in_review", "{id}");
            assert_eq!(c.task(id), clones[0].task(id));
        }
    }
}

#[test]
fn notes_travel_and_merge_by_union() {
    let hub = Hub::new();
    let (a, b) = (hub.clone(), hub.clone());
    // One object both clones hold, noted on each side while apart.
    let blob = |r: &Repo| {
        r.write("shared.txt", "shared\n");
        r.git(&["hash-object", "-w", "shared.txt"])
            .trim()
            .to_string()
    };
    let (on_a, on_b) = (blob(&a), blob(&b));
    assert_eq!(on_a, on_b);
    a.git(&[
        "notes",
        "--ref=agent",
        "add",
        "-m",
        "{\"from\":\"a\"}",
        &on_a,
    ]);
    assert!(sync(&a).contains("pushed refs/notes/agent"));
    b.git(&[
        "notes",
        "--ref=agent",
        "add",
        "-m",
        "{\"from\":\"b\"}",
        &on_b,
    ]);
    let out = sync(&b);
    assert!(out.contains("merged refs/notes/agent"), "{out}");
    sync(&a);
    for r in [&a, &b] {
        let note = r.git(&["notes", "--ref=agent", "show", &on_a]);
        let mut lines: Vec<&str> = note.lines().filter(|l| !l.is_empty()).collect();
        lines.sort();
        assert_eq!(lines, ["{\"from\":\"a\"}", "{\"from\":\"b\"}"]);
    }
    assert_eq!(
        a.git(&["rev-parse", "refs/notes/agent"]),
        b.git(&["rev-parse", "refs/notes/agent"])
    );
}

#[test]
fn a_killed_clone_s_tasks_are_taken_over_through_the_hub_and_finish_once() {
    let hub = Hub::new();
    let (a, b) = (hub.clone_main(), hub.clone_main());
    let base = hub.git(&["rev-parse", "main"]).trim().to_string();
    let record = a.scratch("record.txt");
    let pids = a.scratch("pids.txt");
    let ids: Vec<String> = (0..3)
        .map(|i| {
            a.add(
                &format!("Task {i}"),
                &["--spec", &format!("record={record}")],
            )
        })
        .collect();
    // A's implementer hangs (recording its start and pid); B's does the work.
    a.write(
        ".git-agent.yaml",
        &format!(
            "target: main\nroles:\n  implementer:\n    command: [sh, -c, 'cat > /dev/null; echo \"start $GIT_AGENT_TASK hung\" >> {record}; echo $$ >> {pids}; exec sleep 300']\n    timeout: 600s\n"
        ),
    );
    configure_pipeline(&b);
    sync(&a);
    sync(&b);
    let mut run_a = a
        .cmd(&["run", "--remote", "origin", "-j", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let hung = || std::fs::read_to_string(&record).map_or(0, |r| r.lines().count());
    assert!(
        crate::common::wait_for(60, || hung() == 2),
        "A's agents did not start"
    );
    run_a.kill().unwrap();
    run_a.wait().unwrap();
    let orphans: Vec<String> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    // Stop what the killed run left, so that only B works on.
    for pid in &orphans {
        let _ = std::process::Command::new("kill")
            .args(["-9", pid])
            .status();
    }
    let run_b = b.run(&["run", "--remote", "origin", "-j", "2"]);
    assert!(
        run_b.status.success(),
        "{}",
        String::from_utf8_lossy(&run_b.stderr)
    );
    sync(&a);
    let record = std::fs::read_to_string(&record).unwrap();
    let merges = hub.merges_since(&base);
    let mut taken_over = 0;
    for id in &ids {
        let kinds = b.kinds(id);
        assert_eq!(
            kinds.iter().filter(|k| *k == "submitted").count(),
            1,
            "{id}: {kinds:?}"
        );
        if kinds.iter().any(|k| k == "released") {
            taken_over += 1;
        }
        // B implemented each task once.
        let by_b = record
            .lines()
            .filter(|l| l.starts_with(&format!("start {id} ")) && !l.ends_with("hung"))
            .count();
        assert_eq!(by_b, 1, "{id}:\n{record}");
        // And it merged once, on the hub's target.
        let on_hub = merges.iter().filter(|(_, t)| t == id).count();
        assert_eq!(on_hub, 1, "{id} merged {on_hub} times: {merges:?}");
        assert_eq!(a.state(id), "merged");
        assert_eq!(a.task(id), b.task(id));
    }
    assert_eq!(merges.len(), 3, "{merges:?}");
    for (commit, task) in &merges {
        assert!(
            hub.gate_passed(commit),
            "{commit} ({task}) has no passing gate note"
        );
    }
    assert_eq!(taken_over, 2, "{record}");
}

/// Run `git args` in `repo` and return its output, whatever the exit code.
fn git_output(repo: &Repo, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new("git");
    repo.env(&mut cmd);
    cmd.args(args).stdin(Stdio::null()).output().unwrap()
}

/// A clone set up with `init --remote origin` and the hooks, so that a
/// push to the hub takes the agent refs along.
fn pushing_clone(hub: &Hub) -> Repo {
    let repo = hub.clone();
    repo.ok(&["init", "--remote", "origin"]);
    repo.ok(&["hooks", "install"]);
    repo
}

/// A commit on main and `git push origin main`; the push must succeed.
/// Returns its stderr, where the hooks speak.
fn push_main(repo: &Repo, file: &str) -> String {
    repo.write(file, "change\n");
    repo.git(&["add", file]);
    repo.git(&["commit", "-q", "-m", &format!("Add {file}")]);
    let out = git_output(repo, &["push", "origin", "main"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the user's push failed: {err}");
    assert_eq!(
        repo.git(&["rev-parse", "main"]),
        hub_ref(hub_of(repo), "refs/heads/main").unwrap(),
        "the hub has the pushed main"
    );
    err
}

/// The hub's path, as the clone's origin names it.
fn hub_of(repo: &Repo) -> std::path::PathBuf {
    repo.git(&["remote", "get-url", "origin"]).into()
}

/// What `name` points at in the hub, if it exists.
fn hub_ref(hub: std::path::PathBuf, name: &str) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--verify", "-q", name])
        .current_dir(hub)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A hook in the hub, as `git` runs it there.
fn hub_hook(hub: &Hub, name: &str, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = hub.dir.path().join("hooks").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn init_remote_with_a_bad_remote_or_push_refs_value_writes_nothing() {
    let hub = Hub::new();
    let a = hub.clone();
    let config = || a.git(&["config", "--list", "--local"]);
    let before = config();
    let err = a.fails(2, &["init", "--remote", "nowhere"]);
    assert!(err.contains("--remote: no remote \"nowhere\""), "{err}");
    a.git(&["config", "agent.pushRefs", "maybe"]);
    let with_value = config();
    let err = a.fails(2, &["init", "--remote", "origin"]);
    assert!(err.contains("git config agent.pushRefs:"), "{err}");
    assert_eq!(config(), with_value, "nothing written");
    assert!(!a.path().join(".git-agent.yaml").exists());
    a.git(&["config", "--unset", "agent.pushRefs"]);
    assert_eq!(config(), before);
}

#[test]
fn init_remote_fetches_the_agent_notes_where_sync_and_doctor_look() {
    let hub = Hub::new();
    let a = hub.clone();
    // What an earlier init wrote: the notes where nothing reads them.
    let old = "+refs/notes/agent*:refs/notes/remotes/origin/agent*";
    a.git(&["config", "--add", "remote.origin.fetch", old]);
    let doctor = || String::from_utf8(a.run(&["doctor"]).stdout).unwrap();
    let before = doctor();
    assert!(
        before.contains(
            "problem  remote origin: fetches the agent notes into refs/notes/remotes/origin/"
        ) && before.contains("fix: git agent init --remote origin"),
        "{before}"
    );
    a.ok(&["init", "--remote", "origin"]);
    a.ok(&["init", "--remote", "origin"]);
    let fetch = a.git(&["config", "--get-all", "remote.origin.fetch"]);
    assert_eq!(
        fetch.lines().collect::<Vec<_>>(),
        [
            "+refs/heads/*:refs/remotes/origin/*",
            "+refs/agent/*:refs/agent-remotes/origin/*",
            "+refs/notes/agent*:refs/agent-remotes/origin/notes/agent*",
        ],
        "the old notes refspec is gone, the new ones are there once"
    );
    let after = doctor();
    assert!(
        after.contains("ok       remote origin: fetches the agent refs and notes"),
        "{after}"
    );

    // A plain `git fetch` fills the very refs a sync reads.
    let b = hub.clone();
    let id = b.add("Noted", &[]);
    let head = b.git(&["rev-parse", "HEAD"]);
    b.git(&[
        "notes",
        "--ref",
        "agent",
        "add",
        "-m",
        "{\"task\":\"t\"}",
        &head,
    ]);
    sync(&b);
    a.git(&["fetch", "-q", "origin"]);
    let fetched = a.git(&["for-each-ref", "--format=%(refname)", "refs/agent-remotes/"]);
    assert!(
        fetched
            .lines()
            .any(|r| r == "refs/agent-remotes/origin/notes/agent"),
        "{fetched}"
    );
    assert!(fetched.contains(&format!("refs/agent-remotes/origin/tasks/{id}")));
    assert!(a.git(&["for-each-ref", "refs/notes/remotes/"]).is_empty());
    let synced = sync(&a);
    assert!(synced.contains("fetched refs/notes/agent"), "{synced}");
    assert_eq!(
        a.git(&["notes", "--ref", "agent", "show", &head]),
        "{\"task\":\"t\"}"
    );
}

#[test]
fn a_push_takes_the_agent_refs_along_where_init_remote_set_that_up() {
    let hub = Hub::new();
    let a = pushing_clone(&hub);
    assert_eq!(a.git(&["config", "agent.pushRefs"]), "true");
    let id = a.add("Goes along", &[]);
    let err = push_main(&a, "one.txt");
    assert!(
        err.contains("git-agent: agent refs synced with origin alongside the push"),
        "{err}"
    );
    let name = format!("refs/agent/tasks/{id}");
    assert_eq!(
        hub_ref(hub_of(&a), &name),
        Some(a.git(&["rev-parse", &name]))
    );
    let doctor = a.ok(&["doctor"]);
    assert!(
        doctor.contains("a push to it takes them along (agent.pushRefs)"),
        "{doctor}"
    );

    // A value that is no boolean: doctor says so, and the push still lands.
    a.git(&["config", "agent.pushRefs", "maybe"]);
    let doctor = String::from_utf8(a.run(&["doctor"]).stdout).unwrap();
    assert!(
        doctor.contains("problem  git config agent.pushRefs:")
            && doctor.contains("fix: git config agent.pushRefs true"),
        "{doctor}"
    );
    let err = push_main(&a, "typo.txt");
    assert!(err.contains("git config agent.pushRefs:"), "{err}");

    // Turned off: the push is the user's alone.
    a.git(&["config", "agent.pushRefs", "false"]);
    let later = a.add("Stays here", &[]);
    let err = push_main(&a, "two.txt");
    assert!(!err.contains("git-agent:"), "{err}");
    assert_eq!(
        hub_ref(hub_of(&a), &format!("refs/agent/tasks/{later}")),
        None
    );
    // And so is a push to a remote init --remote did not set up.
    a.git(&["config", "agent.pushRefs", "true"]);
    a.git(&["remote", "add", "plain", hub.url()]);
    let out = git_output(&a, &["push", "plain", "main"]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("git-agent:"));
    assert_eq!(
        hub_ref(hub_of(&a), &format!("refs/agent/tasks/{later}")),
        None
    );
}

/// A push that names agent refs itself moves them as git says, with no
/// sync beside it (which would move them under git's feet and fail the
/// user's push); a dry run moves nothing on the remote.
#[test]
fn a_push_of_agent_refs_by_hand_or_a_dry_run_is_left_to_git() {
    let hub = Hub::new();
    let a = pushing_clone(&hub);
    let id = a.add("By hand", &[]);
    sync(&a);
    let name = format!("refs/agent/tasks/{id}");
    a.ok(&["task", "edit", &id, "--title", "By hand, renamed"]);
    a.write("mixed.txt", "change\n");
    a.git(&["add", "mixed.txt"]);
    a.git(&["commit", "-q", "-m", "Add mixed.txt"]);
    let out = git_output(&a, &["push", "origin", "main", &name]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the user's push failed: {err}");
    assert!(!err.contains("git-agent: agent refs synced"), "{err}");
    assert_eq!(
        hub_ref(hub_of(&a), &name),
        Some(a.git(&["rev-parse", &name]))
    );

    let later = a.add("Not yet", &[]);
    a.write("dry.txt", "change\n");
    a.git(&["add", "dry.txt"]);
    a.git(&["commit", "-q", "-m", "Add dry.txt"]);
    for dry in ["--dry-run", "-n"] {
        let out = git_output(&a, &["push", dry, "origin", "main"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            hub_ref(hub_of(&a), &format!("refs/agent/tasks/{later}")),
            None,
            "{dry} wrote to the remote"
        );
    }
    push_main(&a, "real.txt");
    assert!(hub_ref(hub_of(&a), &format!("refs/agent/tasks/{later}")).is_some());
}

/// Another clone's change to the same task lands on the hub between this
/// clone's fetch and its push (the hub's pre-receive puts it there, once,
/// outside the quarantine git keeps a push's objects in, where refs may move):
/// the push of the agent refs loses that race, fetches, merges both logs
/// and lands; the user's push goes through either way.
#[test]
fn a_push_whose_agent_refs_lose_a_race_merges_and_lands_them() {
    let hub = Hub::new();
    let (a, b) = (pushing_clone(&hub), hub.clone());
    let id = a.add("Raced", &[]);
    sync(&a);
    sync(&b);
    let name = format!("refs/agent/tasks/{id}");
    b.ok(&["task", "edit", &id, "--priority", "0"]);
    b.git(&["push", "-q", "origin", &format!("{name}:refs/other/{id}")]);
    a.ok(&["task", "edit", &id, "--title", "Raced, renamed on A"]);
    let marker = hub.dir.path().join("raced");
    hub_hook(
        &hub,
        "pre-receive",
        &format!(
            "#!/bin/sh\nif grep -q ' {name}$' && ! [ -e '{m}' ]; then\n  touch '{m}'\n  (unset GIT_QUARANTINE_PATH; git update-ref {name} refs/other/{id}) || exit 1\nfi\nexit 0\n",
            m = marker.display()
        ),
    );
    let err = push_main(&a, "one.txt");
    assert!(marker.exists(), "the race was run");
    assert!(err.contains("agent refs synced with origin"), "{err}");
    // The hub holds the merge of both sides: every event of A and of B.
    let landed = hub_ref(hub_of(&a), &name).unwrap();
    assert_eq!(landed, a.git(&["rev-parse", &name]));
    sync(&b);
    let every: BTreeSet<String> = event_ids(&a, &id);
    assert_eq!(event_ids(&b, &id), every);
    assert_eq!(a.task(&id)["title"], "Raced, renamed on A");
    assert_eq!(a.task(&id)["priority"], 0);
}

/// A remote that refuses the agent refs on every try: the push of main
/// still lands, the hook says the agent refs did not go and what brings
/// them; once the remote takes them again, the next sync does.
#[test]
fn agent_refs_that_cannot_land_never_fail_the_push_and_the_next_sync_brings_them() {
    let hub = Hub::new();
    let a = pushing_clone(&hub);
    hub_hook(
        &hub,
        "pre-receive",
        "#!/bin/sh\nif grep -q ' refs/agent/'; then echo 'agent refs refused here' >&2; exit 1; fi\nexit 0\n",
    );
    let id = a.add("Refused for now", &[]);
    let err = push_main(&a, "one.txt");
    assert!(
        err.contains("git-agent: the agent refs did not go to origin with this push")
            && err.contains("your push goes on, and `git agent sync origin` brings them together"),
        "{err}"
    );
    let name = format!("refs/agent/tasks/{id}");
    assert_eq!(hub_ref(hub_of(&a), &name), None);
    std::fs::remove_file(hub.dir.path().join("hooks/pre-receive")).unwrap();
    assert!(sync(&a).contains(&format!("pushed {name}")));
    assert_eq!(
        hub_ref(hub_of(&a), &name),
        Some(a.git(&["rev-parse", &name]))
    );
}

/// A remote that hides the agent refs, as git's `transfer.hideRefs` does
/// (and forges that keep only branches and tags): `sync` and `claim
/// --remote` exit 2 naming the refusal, without retrying what cannot land;
/// a push of main with `agent.pushRefs` lands and says the refs did not go.
#[test]
fn a_remote_that_hides_agent_refs_is_named_and_never_fails_a_push() {
    let hub = Hub::new();
    for hidden in ["refs/agent", "refs/notes/agent"] {
        let out = std::process::Command::new("git")
            .args(["config", "--add", "transfer.hideRefs", hidden])
            .current_dir(hub.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    let a = pushing_clone(&hub);
    let id = a.add("Nowhere to go", &[]);
    let err = a.fails(2, &["sync"]);
    assert!(
        err.contains("origin refuses the agent refs:") && err.contains("hidden ref"),
        "{err}"
    );
    let err = a.fails(2, &["claim", &id, "--actor", "me", "--remote", "origin"]);
    assert!(err.contains("hidden ref"), "{err}");
    let err = push_main(&a, "one.txt");
    assert!(
        err.contains("the agent refs did not go to origin with this push")
            && err.contains("hidden ref"),
        "{err}"
    );
}

#[test]
fn a_clone_that_loses_the_remote_goes_on_and_syncs_when_it_is_back() {
    let hub = Hub::new();
    let a = hub.clone_main();
    let record = a.scratch("record.txt");
    let gate = a.scratch("gate");
    let ids: Vec<String> = (0..2)
        .map(|i| {
            a.add(
                &format!("Task {i}"),
                &["--spec", &format!("record={record} sleep=1")],
            )
        })
        .collect();
    // The implementers wait until the test has taken the remote away.
    let script = format!(
        "while [ ! -e {gate} ]; do sleep 0.05; done; exec sh {}",
        crate::common::agent("implementer.sh")
    );
    a.write(
        ".git-agent.yaml",
        &format!(
            "target: main\nroles:\n  implementer:\n    command: [sh, -c, '{script}']\n    timeout: 60s\n"
        ),
    );
    sync(&a);
    let mut run = a
        .cmd(&["run", "--remote", "origin", "-j", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Both claims landed on the hub: then the remote goes.
    let claimed_on_hub = |id: &str| {
        hub.git(&["for-each-ref", &format!("refs/agent/leases/{id}")])
            .contains(id)
    };
    assert!(
        crate::common::wait_for(60, || ids.iter().all(|id| claimed_on_hub(id))),
        "the claims never reached the hub"
    );
    let gone = format!("{}-gone", hub.url());
    a.git(&["remote", "set-url", "origin", &gone]);
    std::fs::write(&gate, "").unwrap();
    // The work goes on here and is submitted here; the run waits for the hub.
    assert!(
        crate::common::wait_for(60, || ids.iter().all(|id| a.state(id) == "in_review")),
        "the work did not go on without the remote"
    );
    assert!(
        run.try_wait().unwrap().is_none(),
        "the run ended without its remote"
    );
    let on_hub = |id: &str| -> Value {
        let json = hub.git(&["show", &format!("refs/agent/tasks/{id}:task.json")]);
        serde_json::from_str(&json).unwrap()
    };
    for id in &ids {
        assert_eq!(on_hub(id)["state"], "in_progress", "{id}");
    }
    // Back: the run syncs what it holds, and ends.
    a.git(&["remote", "set-url", "origin", hub.url()]);
    let out = run.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("origin unreachable"), "{said}");
    for id in &ids {
        let task = on_hub(id);
        assert_eq!(task["state"], "in_review", "{id}");
        assert_eq!(event_ids(&a, id).len(), a.kinds(id).len());
        // The work branch reached the hub with the task that names it.
        let branch = hub.git(&["rev-parse", &format!("refs/heads/agent/{id}")]);
        assert_eq!(Some(branch.trim()), task["head"].as_str(), "{id}");
    }
    // Nothing was lost: the hub holds every event this clone recorded.
    let b = hub.clone_main();
    sync(&b);
    for id in &ids {
        assert_eq!(event_ids(&b, id), event_ids(&a, id), "{id}");
    }
}

#[test]
fn three_clones_running_against_one_hub_merge_each_task_once_on_the_hub() {
    let hub = Hub::new();
    let clones: Vec<Repo> = (0..3).map(|_| hub.clone_main()).collect();
    let base = hub.git(&["rev-parse", "main"]).trim().to_string();
    let record = clones[0].scratch("record.txt");
    // Three layers of ten: each task of a later layer waits for one of the
    // layer before, merged.
    let mut yaml = String::from("tasks:\n");
    for i in 0..30 {
        yaml.push_str(&format!(
            "  - key: k{i}\n    title: Task {i}\n    spec: \"record={record}\"\n"
        ));
        if i >= 10 {
            yaml.push_str(&format!("    depends_on: [k{}]\n", i - 10));
        }
    }
    for c in &clones {
        configure_pipeline(c);
    }
    let ids: Vec<String> = clones[0]
        .plan(&yaml)
        .values()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 30);
    for c in &clones {
        sync(c);
    }
    let runs: Vec<_> = clones
        .iter()
        .map(|c| {
            c.cmd(&["run", "--remote", "origin", "-j", "2"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in runs {
        let out = r.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let merges = hub.merges_since(&base);
    let record = std::fs::read_to_string(&record).unwrap();
    for id in &ids {
        assert_eq!(starts(&record, id), 1, "{id}:\n{record}");
        let on_hub = merges.iter().filter(|(_, t)| t == id).count();
        assert_eq!(on_hub, 1, "{id} merged {on_hub} times: {merges:?}");
    }
    assert_eq!(merges.len(), 30, "{merges:?}");
    for (commit, task) in &merges {
        assert!(
            hub.gate_passed(commit),
            "{commit} ({task}) has no passing gate note"
        );
    }
    for c in &clones {
        sync(c);
        c.git(&["fetch", "-q", "origin", "main"]);
        // Each clone's main followed the hub's, never diverged from it.
        c.git(&["merge-base", "--is-ancestor", "main", "origin/main"]);
        for id in &ids {
            assert_eq!(c.state(id), "merged", "{id}");
        }
    }
}

#[test]
fn a_later_attempt_s_work_branch_replaces_the_earlier_one_on_the_hub() {
    let hub = Hub::new();
    let a = hub.clone_main();
    let base = hub.git(&["rev-parse", "main"]).trim().to_string();
    // The reviewer sends the first attempt back; the second lands.
    a.configure(
        "60s",
        3,
        &format!(
            "  reviewer:\n    command: [sh, {}, 'pattern=attempt 1']\ntest: test -f README.md\n",
            crate::common::agent("reviewer.sh")
        ),
    );
    let id = a.add("Twice", &[]);
    sync(&a);
    // The hub keeps a log of each move of a ref, to show both pushes.
    hub.git(&["config", "core.logAllRefUpdates", "always"]);
    let run = a.run(&["run", "--remote", "origin", "-j", "1"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let shown = a.json(&["show", &id]);
    let heads: Vec<String> = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "submitted")
        .map(|e| e["data"]["head"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(heads.len(), 2, "{shown}");
    assert_ne!(heads[0], heads[1]);
    let on_hub = hub.git(&["rev-parse", &format!("refs/heads/agent/{id}")]);
    assert_eq!(on_hub.trim(), heads[1]);
    // Each attempt's work went to the hub as it ended, oldest last.
    let moves = hub.git(&["reflog", "--format=%H", &format!("refs/heads/agent/{id}")]);
    let moves: Vec<&str> = moves.lines().collect();
    assert_eq!(moves, [heads[1].as_str(), heads[0].as_str()]);
    let merges = hub.merges_since(&base);
    assert_eq!(merges.len(), 1, "{merges:?}");
    assert_eq!(merges[0].1, id);
    assert_eq!(a.state(&id), "merged");
}

#[test]
fn a_conflict_with_work_made_on_another_clone_goes_back_and_lands_once() {
    let hub = Hub::new();
    let (a, b) = (hub.clone_main(), hub.clone_main());
    let base = hub.git(&["rev-parse", "main"]).trim().to_string();
    // Both tasks write one file: whichever merges second conflicts.
    let ids: Vec<String> = ["Left", "Right"]
        .iter()
        .map(|t| b.add(t, &["--spec", "shared"]))
        .collect();
    // B implements both, and has no reviewer: it leaves them in review.
    b.configure("60s", 3, "");
    let run_b = b.run(&["run", "--remote", "origin", "-j", "2"]);
    assert!(
        run_b.status.success(),
        "{}",
        String::from_utf8_lossy(&run_b.stderr)
    );
    // A reviews and integrates them; the second goes back to be done again.
    configure_pipeline(&a);
    let run_a = a.run(&["run", "--remote", "origin", "-j", "2"]);
    assert!(
        run_a.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&run_a.stdout),
        String::from_utf8_lossy(&run_a.stderr)
    );
    let merges = hub.merges_since(&base);
    for id in &ids {
        assert_eq!(a.state(id), "merged", "{id}");
        let on_hub = merges.iter().filter(|(_, t)| t == id).count();
        assert_eq!(on_hub, 1, "{id} merged {on_hub} times: {merges:?}");
    }
    let sent_back: usize = ids
        .iter()
        .map(|id| {
            a.kinds(id)
                .iter()
                .filter(|k| *k == "integration_failed")
                .count()
        })
        .sum();
    assert_eq!(sent_back, 1);
}

/// A hub that answers and refuses the agent refs (its pre-receive declines
/// them) is no lost remote: `run --remote` stops with the refusal, exit 2,
/// instead of waiting for a remote that will never take them.
#[test]
fn run_against_a_hub_that_refuses_the_agent_refs_stops_saying_so() {
    let hub = Hub::new();
    let a = hub.clone_main();
    a.add("Nowhere to go", &[]);
    a.write(
        ".git-agent.yaml",
        &format!(
            "target: main\nroles:\n  implementer:\n    command: [sh, {}]\n    timeout: 60s\n",
            crate::common::agent("implementer.sh")
        ),
    );
    hub_hook(
        &hub,
        "pre-receive",
        "#!/bin/sh\nwhile read o n r; do case $r in refs/agent/*) echo declined >&2; exit 1;; esac; done\nexit 0\n",
    );
    let mut run = a
        .cmd(&["run", "--remote", "origin"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ended = crate::common::wait_for(60, || run.try_wait().unwrap().is_some());
    if !ended {
        let _ = run.kill();
    }
    let out = run.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(ended, "run --remote waited for a hub that refuses: {err}");
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("refuses the agent refs"), "{err}");
}

/// The hub goes away just as the queue's holder pushes the gated merge:
/// the pass ends, the run waits for the hub, and once it is back the merge
/// lands, once, instead of the run ending with the work approved.
#[test]
fn a_merge_whose_push_finds_the_hub_gone_lands_once_it_is_back() {
    let hub = Hub::new();
    let a = hub.clone_main();
    let base = a.git(&["rev-parse", "main"]);
    let id = a.add("Lands late", &[]);
    let path = hub.url().to_string();
    let marker = a.scratch("moved");
    // The gate takes the hub away once, then passes; the test brings the
    // hub back 2 s later (the gate's own processes end with it).
    let gate = format!("[ -e {marker} ] || {{ mv {path} {path}.away; touch {marker}; }}; true");
    let back = {
        let (marker, path) = (marker.clone(), path.clone());
        std::thread::spawn(move || {
            let moved = crate::common::wait_for(120, || std::path::Path::new(&marker).exists());
            std::thread::sleep(std::time::Duration::from_secs(2));
            if moved {
                std::fs::rename(format!("{path}.away"), &path).unwrap();
            }
            moved
        })
    };
    let script = a.scratch("gate.sh");
    std::fs::write(&script, format!("{gate}\n")).unwrap();
    a.write(
        ".git-agent.yaml",
        &format!(
            "target: main\ntest: sh {script}\nroles:\n  implementer:\n    command: [sh, {}]\n    timeout: 60s\n  reviewer:\n    command: [sh, {}]\n    timeout: 60s\n",
            crate::common::agent("implementer.sh"),
            crate::common::agent("reviewer.sh")
        ),
    );
    let out = a
        .cmd(&["run", "--remote", "origin"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(back.join().unwrap(), "the gate ran: {err}");
    assert!(out.status.success(), "{err}");
    let merges = hub.merges_since(&base);
    assert_eq!(
        merges.iter().filter(|(_, t)| *t == id).count(),
        1,
        "merged once on the hub: {merges:?}\n{err}"
    );
    assert!(err.contains("unreachable"), "{err}");
}
