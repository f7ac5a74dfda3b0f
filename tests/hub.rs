//! The hub: a bare repository with the server hooks, which reviews and
//! merges what clones push to it. Real bare repository made by plain `git
//! init --bare`, real pushes firing the installed post-receive, the real
//! background run that `agent.autorun` starts.

use crate::common::{Repo, BIN};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run `program args` in `dir` with the repo's isolated environment.
fn run_in(repo: &Repo, dir: &Path, program: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(program);
    repo.env(&mut cmd);
    cmd.current_dir(dir).args(args).output().expect("run")
}

fn ok_in(repo: &Repo, dir: &Path, program: &str, args: &[&str]) -> String {
    let out = run_in(repo, dir, program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A hub made as a new user makes one: `git init --bare` with no
/// `init.defaultBranch` anywhere, so that its HEAD names `master`; the
/// repo's `origin`.
fn plain_hub(repo: &Repo) -> PathBuf {
    let hub = repo.home().join("hub.git");
    let nobody = repo.home().join("no-config");
    std::fs::create_dir_all(&nobody).unwrap();
    let out = Command::new("git")
        .args(["init", "-q", "--bare", hub.to_str().unwrap()])
        .env("HOME", &nobody)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_CONFIG_GLOBAL")
        .output()
        .unwrap();
    assert!(out.status.success());
    let head = std::fs::read_to_string(hub.join("HEAD")).unwrap();
    assert_eq!(
        head.trim(),
        "ref: refs/heads/master",
        "plain git init --bare"
    );
    repo.git(&["remote", "add", "origin", hub.to_str().unwrap()]);
    hub
}

/// The autorun log of the hub: every run it started, and how each ended.
fn autorun_log(hub: &Path) -> String {
    std::fs::read_to_string(hub.join("agent/logs/autorun.log")).unwrap_or_default()
}

/// Whether every background run the hub started has ended, and none is
/// asked for.
fn autorun_settled(hub: &Path) -> bool {
    let log = autorun_log(hub);
    let started = log.matches("git agent run --once").count();
    started > 0
        && log.matches("exited: ").count() == started
        && !hub.join("agent/autorun.pending").exists()
}

/// Lines the scripted reviewer appended: one per start.
fn reviewer_starts(count: &str) -> usize {
    std::fs::read_to_string(count).map_or(0, |text| text.lines().count())
}

/// A clone and its hub: the team config on `main` has no implementer (the
/// clones implement), a reviewer counting its starts in the returned file
/// and a gate; `main` is pushed to a plain hub with the server hooks and
/// `agent.autorun`.
fn reviewing_hub() -> (Repo, PathBuf, String) {
    let repo = Repo::new();
    let count = repo.scratch("reviews");
    repo.write(
        ".git-agent.yaml",
        &format!(
            "target: main\ntest: grep -q done work.txt\nroles:\n  reviewer: {{ command: [sh, {}, count={count}], timeout: 60s }}\n",
            crate::common::agent("reviewer.sh")
        ),
    );
    repo.write("work.txt", "to do\n");
    repo.git(&["add", ".git-agent.yaml", "work.txt"]);
    repo.git(&[
        "commit",
        "-q",
        "-m",
        "Team config: the hub reviews and gates",
    ]);
    let hub = plain_hub(&repo);
    repo.git(&["push", "-q", "origin", "main"]);
    ok_in(&repo, &hub, BIN, &["hooks", "install", "--server"]);
    ok_in(&repo, &hub, "git", &["config", "agent.autorun", "true"]);
    (repo, hub, count)
}

/// Task `title` done on `agent/<id>` by `actor` and submitted, with main
/// checked out again; returns the id and the branch tip.
fn submitted_work(repo: &Repo, title: &str, actor: &str) -> (String, String) {
    let id = repo.add(title, &[]);
    repo.ok(&["claim", &id, "--actor", actor]);
    repo.git(&["checkout", "-q", "-b", &format!("agent/{id}")]);
    repo.write("work.txt", "done\n");
    repo.git(&["commit", "-q", "-am", title]);
    let tip = repo.git(&["rev-parse", "HEAD"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.ok(&["submit", &id, "--actor", actor]);
    (id, tip)
}

/// Whether `commit` is on the hub's `main`.
fn on_main(repo: &Repo, hub: &Path, commit: &str) -> bool {
    run_in(
        repo,
        hub,
        "git",
        &["merge-base", "--is-ancestor", commit, "refs/heads/main"],
    )
    .status
    .success()
}

#[test]
fn a_push_triggered_hub_made_with_plain_git_init_bare_reviews_an_agent_branch_once_and_merges_it() {
    let (repo, hub, count) = reviewing_hub();
    // A clone does the work of a task and pushes its branch and task ref.
    let (id, tip) = submitted_work(&repo, "Finish the work", "ann@laptop");
    repo.git(&[
        "push",
        "-q",
        "origin",
        &format!("agent/{id}"),
        &format!("refs/agent/tasks/{id}"),
    ]);

    let merged = || on_main(&repo, &hub, &tip);
    assert!(
        crate::common::wait_for(90, || merged() && autorun_settled(&hub)),
        "the hub did not merge the work; autorun log:\n{}",
        autorun_log(&hub)
    );
    assert_eq!(
        reviewer_starts(&count),
        1,
        "reviewed once: {}",
        autorun_log(&hub)
    );
    let shown: Value =
        serde_json::from_str(&ok_in(&repo, &hub, BIN, &["show", &id, "--json"])).unwrap();
    assert_eq!(shown["task"]["state"], "merged");
    // Through the gate: the merge on the hub's main carries the task and
    // its tree has a passing gate run noted on it.
    let subject = ok_in(&repo, &hub, "git", &["log", "-1", "--format=%B", "main"]);
    assert!(subject.contains(&format!("Agent-Task: {id}")), "{subject}");
    let gate = ok_in(
        &repo,
        &hub,
        "git",
        &["notes", "--ref", "agent-ci", "show", "main"],
    );
    let gate: Value = serde_json::from_str(gate.lines().last().unwrap()).unwrap();
    assert_eq!(gate["result"], "passed", "{gate}");
    assert!(
        ok_in(&repo, &hub, "git", &["for-each-ref", "refs/heads/master"]).is_empty(),
        "HEAD's branch was never made"
    );

    // `status` on the hub says what it reviewed and merged, and for whom.
    let status = ok_in(&repo, &hub, BIN, &["status"]);
    let line = status
        .lines()
        .find(|l| l.contains(&id) && l.contains("for ann@laptop"))
        .unwrap_or_else(|| panic!("no line for {id} by ann@laptop:\n{status}"));
    assert!(
        line.contains(&format!(
            "approved by sh reviewer.sh count={count} at {}",
            &tip[..10]
        )),
        "{line}"
    );
    let merge = ok_in(&repo, &hub, "git", &["rev-parse", "main"]);
    assert!(
        line.contains(&format!("merged as {}", &merge[..10])),
        "{line}"
    );
    let json: Value =
        serde_json::from_str(&ok_in(&repo, &hub, BIN, &["status", "--json"])).unwrap();
    assert_eq!(json["recent"][0]["task"], id.as_str(), "{json}");
    assert_eq!(json["recent"][0]["author"], "ann@laptop");

    // A queued review that no longer applies: a branch pushed together with
    // a main that merged it by hand. The run drops it, says so, and ends well.
    repo.git(&["pull", "-q", "--no-rebase", "origin", "main"]);
    let other = repo.add("Merged by hand", &[]);
    repo.git(&["checkout", "-q", "-b", &format!("agent/{other}")]);
    repo.write("more.txt", "more\n");
    repo.git(&["add", "more.txt"]);
    repo.git(&["commit", "-q", "-m", "More"]);
    let stale = repo.git(&["rev-parse", "HEAD"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "By hand",
        &format!("agent/{other}"),
    ]);
    let runs = autorun_log(&hub).matches("git agent run --once").count();
    repo.git(&["push", "-q", "origin", "main", &format!("agent/{other}")]);
    assert!(
        crate::common::wait_for(90, || {
            autorun_log(&hub).matches("git agent run --once").count() > runs
                && autorun_settled(&hub)
        }),
        "no run after the second push:\n{}",
        autorun_log(&hub)
    );
    let log = autorun_log(&hub);
    assert!(
        log.contains(&format!(
            "review of {} dropped: it reached main already",
            &stale[..10]
        )),
        "{log}"
    );
    let ends: Vec<&str> = log.lines().filter(|l| l.contains("exited: ")).collect();
    assert!(ends.iter().all(|l| l.ends_with("exit status: 0")), "{log}");
    assert_eq!(
        reviewer_starts(&count),
        1,
        "the stale item was never reviewed"
    );
    assert!(
        std::fs::read_dir(hub.join("agent/queue")).map_or(true, |d| d.count() == 0),
        "the queue was drained"
    );
}

/// The branch first, the task after: the hub reviews the pushed commit on
/// its own, and when the task ref arrives in review at that commit, the
/// verdict it has counts: the reviewer does not start again, and the push
/// of the task ref alone starts the run that merges it.
#[test]
fn a_hub_given_the_branch_before_its_task_reviews_once_and_merges_when_the_task_arrives() {
    let (repo, hub, count) = reviewing_hub();
    let (id, tip) = submitted_work(&repo, "Branch first", "bob@desk");
    repo.git(&["push", "-q", "origin", &format!("agent/{id}")]);
    let verdict = || {
        run_in(
            &repo,
            &hub,
            "git",
            &["notes", "--ref", "agent-review", "show", &tip],
        )
        .status
        .success()
    };
    assert!(
        crate::common::wait_for(90, || verdict() && autorun_settled(&hub)),
        "the hub did not review the pushed commit:\n{}",
        autorun_log(&hub)
    );
    assert!(!on_main(&repo, &hub, &tip), "no task: nothing to merge yet");
    assert_eq!(reviewer_starts(&count), 1);

    repo.git(&["push", "-q", "origin", &format!("refs/agent/tasks/{id}")]);
    assert!(
        crate::common::wait_for(90, || on_main(&repo, &hub, &tip) && autorun_settled(&hub)),
        "the task's arrival did not get its work merged:\n{}",
        autorun_log(&hub)
    );
    assert_eq!(
        reviewer_starts(&count),
        1,
        "reviewed once: {}",
        autorun_log(&hub)
    );
    let shown: Value =
        serde_json::from_str(&ok_in(&repo, &hub, BIN, &["show", &id, "--json"])).unwrap();
    assert_eq!(shown["task"]["state"], "merged");
}

/// The team config names an implementer for the clones, a program the hub
/// does not have: the hub's run implements nothing (an open task stays
/// open), and reviews and merges the work pushed to it.
#[test]
fn a_hub_implements_nothing_whatever_the_team_config_names() {
    let repo = Repo::new();
    let count = repo.scratch("reviews");
    repo.write(
        ".git-agent.yaml",
        &format!(
            "target: main\ntest: grep -q done work.txt\nroles:\n  implementer: {{ command: [agent-only-on-laptops] }}\n  reviewer: {{ command: [sh, {}, count={count}], timeout: 60s }}\n",
            crate::common::agent("reviewer.sh")
        ),
    );
    repo.write("work.txt", "to do\n");
    repo.git(&["add", ".git-agent.yaml", "work.txt"]);
    repo.git(&["commit", "-q", "-m", "Team config"]);
    let hub = plain_hub(&repo);
    repo.git(&["push", "-q", "origin", "main"]);
    ok_in(&repo, &hub, BIN, &["hooks", "install", "--server"]);
    let open = repo.add("Left to the clones", &[]);
    let (id, tip) = submitted_work(&repo, "Done on a laptop", "ann@laptop");
    repo.git(&[
        "push",
        "-q",
        "origin",
        &format!("agent/{id}"),
        "refs/agent/tasks/*:refs/agent/tasks/*",
    ]);
    let out = run_in(&repo, &hub, BIN, &["run", "--once"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(on_main(&repo, &hub, &tip), "{err}");
    assert_eq!(reviewer_starts(&count), 1);
    let shown: Value =
        serde_json::from_str(&ok_in(&repo, &hub, BIN, &["show", &open, "--json"])).unwrap();
    assert_eq!(shown["task"]["state"], "open", "{err}");
    // Never tried, not tried and failed: no claim, no attempt.
    let log = ok_in(&repo, &hub, BIN, &["log", &open]);
    assert!(!log.contains("claimed"), "{log}");
    assert_eq!(shown["task"]["attempts"], 0, "{shown}");
}

/// A clone running against the hub with `run --remote` holds the queue's
/// lease there (`refs/agent/locks/queue`): the hub's own run then reviews
/// and merges nothing, so the work is never done on both; once the lease
/// is gone, the hub's run takes it, does the work, and gives it back.
#[test]
fn a_hub_leaves_reviews_and_merges_to_the_clone_holding_the_queues_lease() {
    let repo = Repo::new();
    let count = repo.scratch("reviews");
    repo.write(
        ".git-agent.yaml",
        &format!(
            "target: main\ntest: grep -q done work.txt\nroles:\n  reviewer: {{ command: [sh, {}, count={count}], timeout: 60s }}\n",
            crate::common::agent("reviewer.sh")
        ),
    );
    repo.write("work.txt", "to do\n");
    repo.git(&["add", ".git-agent.yaml", "work.txt"]);
    repo.git(&["commit", "-q", "-m", "Team config"]);
    let hub = plain_hub(&repo);
    repo.git(&["push", "-q", "origin", "main"]);
    let (id, tip) = submitted_work(&repo, "Done on a laptop", "ann@laptop");
    repo.git(&[
        "push",
        "-q",
        "origin",
        &format!("agent/{id}"),
        "refs/agent/tasks/*:refs/agent/tasks/*",
    ]);
    // A clone on another host holds the lease for the next hour.
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let lease = format!(
        "{{\"holder\":\"queue@laptop:7\",\"pid\":7,\"host\":\"laptop\",\"expires\":\"{}\"}}",
        expires.round(jiff::Unit::Second).unwrap()
    );
    let blob_file = repo.scratch("lease.json");
    std::fs::write(&blob_file, lease).unwrap();
    let blob = ok_in(&repo, &hub, "git", &["hash-object", "-w", &blob_file]);
    ok_in(
        &repo,
        &hub,
        "git",
        &["update-ref", "refs/agent/locks/queue", blob.trim()],
    );

    let out = run_in(&repo, &hub, BIN, &["run", "--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        reviewer_starts(&count),
        0,
        "the clone holding the lease reviews"
    );
    assert!(!on_main(&repo, &hub, &tip));
    assert_eq!(
        ok_in(&repo, &hub, "git", &["rev-parse", "refs/agent/locks/queue"]).trim(),
        blob.trim(),
        "the clone's lease is left alone"
    );

    ok_in(
        &repo,
        &hub,
        "git",
        &["update-ref", "-d", "refs/agent/locks/queue"],
    );
    let out = run_in(&repo, &hub, BIN, &["run", "--once"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(reviewer_starts(&count), 1, "{err}");
    assert!(on_main(&repo, &hub, &tip), "{err}");
    let left = run_in(
        &repo,
        &hub,
        "git",
        &["rev-parse", "-q", "--verify", "refs/agent/locks/queue"],
    );
    assert!(!left.status.success(), "the hub's run gave the lease back");
}
