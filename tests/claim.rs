//! `git agent claim|release|submit`: atomic claims between real processes,
//! leases that die with their holder, and no half-written state after kill -9.

use crate::common::{flat_plan, Repo};
use std::collections::HashSet;
use std::process::{Child, Stdio};
use std::time::Duration;

/// A pid that is certainly not running: a child that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn live_pid() -> String {
    std::process::id().to_string()
}

#[test]
fn claim_race_has_one_winner() {
    let repo = Repo::new();
    let id = repo.add("Contested", &[]);
    let pid = live_pid();
    let racers: Vec<Child> = (0..8)
        .map(|i| {
            let actor = format!("w{i}");
            repo.cmd(&["claim", &id, "--actor", &actor, "--pid", &pid])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outcomes: Vec<_> = racers
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners: Vec<_> = outcomes.iter().filter(|o| o.status.success()).collect();
    assert_eq!(winners.len(), 1, "exactly one claim wins");
    assert_eq!(String::from_utf8_lossy(&winners[0].stdout).trim(), id);
    for loser in outcomes.iter().filter(|o| !o.status.success()) {
        assert_eq!(
            loser.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&loser.stderr)
        );
    }
    let events = repo.json(&["show", &id])["events"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(events, 2, "created + one claimed");
}

#[test]
fn workers_racing_on_claim_next_never_get_the_same_task() {
    let repo = Repo::new();
    repo.plan(&flat_plan(24));
    let pid = live_pid();
    let workers: Vec<_> = (0..6)
        .map(|i| {
            let mut cmd = std::process::Command::new("sh");
            repo.env(&mut cmd);
            cmd.args([
                "-c",
                "while id=$(\"$0\" claim --next --actor \"$1\" --pid \"$2\"); do echo \"$id\"; done",
                crate::common::BIN,
                &format!("w{i}"),
                &pid,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut claimed = Vec::new();
    for w in workers {
        let out = w.wait_with_output().unwrap();
        claimed.extend(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(String::from),
        );
    }
    let unique: HashSet<&String> = claimed.iter().collect();
    assert_eq!(claimed.len(), 24, "every task claimed once: {claimed:?}");
    assert_eq!(unique.len(), 24, "no task claimed twice: {claimed:?}");
    repo.fails(1, &["claim", "--next", "--actor", "late"]);
}

#[test]
fn a_live_lease_refuses_a_second_claim() {
    let repo = Repo::new();
    let id = repo.add("Held", &[]);
    repo.ok(&["claim", &id, "--actor", "first", "--pid", &live_pid()]);
    let err = repo.fails(1, &["claim", &id, "--actor", "second"]);
    assert!(err.contains("held by first"), "{err}");
    repo.fails(1, &["claim", "--next", "--actor", "second"]);
}

#[test]
fn a_dead_holders_lease_is_taken_over() {
    let repo = Repo::new();
    let id = repo.add("Orphaned", &[]);
    repo.ok(&[
        "claim",
        &id,
        "--actor",
        "crashed",
        "--pid",
        &dead_pid().to_string(),
    ]);
    let got = repo.ok(&[
        "claim",
        "--next",
        "--actor",
        "rescuer",
        "--pid",
        &live_pid(),
    ]);
    assert_eq!(got.trim(), id);
    let show = repo.json(&["show", &id]);
    let kinds: Vec<&str> = show["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "claimed", "released", "claimed"]);
    let released = &show["events"][2]["data"]["reason"];
    assert!(released.as_str().unwrap().contains("is gone"), "{released}");
    assert_eq!(show["task"]["assignee"], "rescuer");
}

#[test]
fn an_expired_lease_is_taken_over() {
    let repo = Repo::new();
    let id = repo.add("Slow", &[]);
    repo.ok(&[
        "claim",
        &id,
        "--actor",
        "slow",
        "--pid",
        &live_pid(),
        "--ttl",
        "1s",
    ]);
    std::thread::sleep(Duration::from_millis(2100));
    repo.ok(&["claim", &id, "--actor", "fast", "--pid", &live_pid()]);
    let lease: serde_json::Value =
        serde_json::from_str(&repo.git(&["cat-file", "-p", &format!("refs/agent/leases/{id}")]))
            .unwrap();
    assert_eq!(lease["holder"], "fast");
    assert_eq!(lease["pid"].as_u64().unwrap().to_string(), live_pid());
    let reason = repo.json(&["show", &id])["events"][2]["data"]["reason"].clone();
    assert!(reason.as_str().unwrap().contains("expired"), "{reason}");
}

#[test]
fn a_blocked_task_cannot_be_claimed() {
    let repo = Repo::new();
    let first = repo.add("First", &[]);
    let second = repo.add("Second", &["--depends-on", &first]);
    let err = repo.fails(1, &["claim", &second, "--actor", "a"]);
    assert!(err.contains("blocked") && err.contains(&first), "{err}");
    assert_eq!(repo.state(&second), "open");
}

#[test]
fn release_reopens_and_deletes_the_lease() {
    let repo = Repo::new();
    let id = repo.add("Give back", &[]);
    repo.ok(&["claim", &id, "--actor", "a", "--pid", &live_pid()]);
    let err = repo.fails(1, &["release", &id, "--actor", "b"]);
    assert!(err.contains("held by a"), "{err}");
    repo.ok(&["release", &id, "--actor", "a", "-m", "need a break"]);
    let task = repo.task(&id);
    assert_eq!(task["state"], "open");
    assert_eq!(task["reason"], "need a break");
    assert!(!repo
        .agent_refs()
        .iter()
        .any(|r| r.starts_with("refs/agent/leases/")));
    repo.fails(1, &["release", &id, "--actor", "a"]);
}

#[test]
fn submit_records_the_branch_head_and_ends_the_lease() {
    let repo = Repo::new();
    let id = repo.add("Do it", &[]);
    let err = repo.fails(1, &["submit", &id, "--actor", "a"]);
    assert!(err.contains("not in progress"), "{err}");
    repo.ok(&["claim", &id, "--actor", "a", "--pid", &live_pid()]);
    let err = repo.fails(2, &["submit", &id, "--actor", "a"]);
    assert!(err.contains(&format!("agent/{id}")), "{err}");
    repo.git(&["checkout", "-q", "-b", &format!("agent/{id}")]);
    repo.write("work.txt", "done\n");
    repo.git(&["add", "work.txt"]);
    repo.git(&["commit", "-q", "-m", "work"]);
    let head = repo.git(&["rev-parse", "HEAD"]);
    repo.ok(&["submit", &id, "--actor", "a"]);
    let task = repo.task(&id);
    assert_eq!(task["state"], "in_review");
    assert_eq!(task["head"], head);
    assert_eq!(task["branch"], format!("agent/{id}"));
    assert!(!repo
        .agent_refs()
        .iter()
        .any(|r| r.starts_with("refs/agent/leases/")));
}

/// git-agent never breaks a ref lock: a lock left by a killed writer is
/// waited for (`core.filesRefLockTimeout` / `reftable.lockTimeout`), then
/// reported by its path, and the task is left as it was. Once the lock is
/// gone the claim goes through.
fn a_held_ref_lock_is_reported_never_broken(format: &str) {
    let repo = Repo::with_ref_format(format);
    assert_eq!(repo.ref_format(), format);
    let id = repo.add("Locked", &[]);
    repo.git(&["config", "core.filesRefLockTimeout", "200"]);
    repo.git(&["config", "reftable.lockTimeout", "200"]);
    let lock = match format {
        "reftable" => repo.git_dir().join("reftable/tables.list.lock"),
        _ => repo.git_dir().join(format!("refs/agent/tasks/{id}.lock")),
    };
    std::fs::write(&lock, "").unwrap();
    let started = std::time::Instant::now();
    let err = repo.fails(2, &["claim", &id, "--actor", "a"]);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "gave up before the lock timeout"
    );
    assert!(
        err.contains(&lock.display().to_string()),
        "the lock is not named: {err}"
    );
    assert!(lock.exists(), "the lock was broken");
    assert_eq!(repo.state(&id), "open");
    assert!(!repo.agent_refs().iter().any(|r| r.contains("leases")));
    std::fs::remove_file(&lock).unwrap();
    repo.ok(&["claim", &id, "--actor", "a"]);
    assert_eq!(repo.state(&id), "in_progress");
}

#[test]
fn a_held_ref_lock_is_reported_never_broken_files() {
    a_held_ref_lock_is_reported_never_broken("files");
}

#[test]
fn a_held_ref_lock_is_reported_never_broken_reftable() {
    a_held_ref_lock_is_reported_never_broken("reftable");
}

/// Claimers killed with SIGKILL at arbitrary moments leave every ref whole:
/// each task ref is a readable chain, each lease belongs to an in-progress
/// task, and the survivors can go on.
#[test]
fn kill_9_during_claims_leaves_no_half_written_state() {
    let repo = Repo::new();
    repo.plan(&flat_plan(40));
    for round in 0..12u64 {
        let mut child = repo
            .cmd(&[
                "claim",
                "--next",
                "--actor",
                &format!("k{round}"),
                "--pid",
                &dead_pid().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(2 + round * 3));
        let _ = child.kill();
        let _ = child.wait();
    }
    let status = repo.json(&["status"]);
    let tasks = status["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 40);
    let in_progress: HashSet<&str> = tasks
        .iter()
        .filter(|t| t["state"] == "in_progress")
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    for lease in repo
        .agent_refs()
        .iter()
        .filter_map(|r| r.strip_prefix("refs/agent/leases/"))
    {
        assert!(
            in_progress.contains(lease),
            "lease {lease} without an in-progress task"
        );
    }
    repo.git(&["fsck", "--no-dangling"]);
    // Every task can still be claimed (the killed holders' pids are dead).
    let mut claimed = HashSet::new();
    while let Ok(out) = repo
        .cmd(&["claim", "--next", "--actor", "after", "--pid", &live_pid()])
        .output()
    {
        if !out.status.success() {
            break;
        }
        claimed.insert(String::from_utf8(out.stdout).unwrap().trim().to_string());
    }
    assert_eq!(claimed.len(), 40);
}

/// `git gc` packs refs whenever it likes, also while tasks move: writers
/// claiming and releasing beside a `git pack-refs --all --prune` loop lose
/// no event, no released lease comes back, and every task ends with its
/// whole history.
#[test]
fn git_pack_refs_running_beside_writers_loses_no_event() {
    writers_beside(&Repo::new(), &["pack-refs", "--all", "--prune"]);
}

/// git's own housekeeping, looping beside writers, on both ref formats:
/// `git gc --aggressive`, `git pack-refs --all` and `git maintenance run`
/// lose no event and leave every chain whole.
#[test]
fn git_housekeeping_beside_writers_loses_no_event_on_both_ref_formats() {
    for format in ["files", "reftable"] {
        for housekeeping in [
            &["gc", "--aggressive", "--quiet"][..],
            &["pack-refs", "--all"],
            &["maintenance", "run", "--quiet"],
        ] {
            let repo = Repo::with_ref_format(format);
            let ids = writers_beside(&repo, housekeeping);
            assert_eq!(ids.len(), 4, "{format} {housekeeping:?}");
            assert_eq!(repo.ref_format(), format);
        }
    }
}

/// The same with a reflog for every ref, as `core.logAllRefUpdates=always`
/// asks: reflogs are written and deleted with their refs.
#[test]
fn git_pack_refs_beside_writers_with_reflogs_everywhere_loses_no_event() {
    let repo = Repo::new();
    repo.git(&["config", "core.logAllRefUpdates", "always"]);
    let ids = writers_beside(&repo, &["pack-refs", "--all", "--prune"]);
    // Every task's reflog holds every move, each from where the last one went.
    for id in &ids {
        let name = format!("refs/agent/tasks/{id}");
        let log = repo.git(&["reflog", "show", "--format=%H %P", &name]);
        let mut moves: Vec<Vec<&str>> = log.lines().map(|l| l.split(' ').collect()).collect();
        moves.reverse();
        assert_eq!(moves.len(), repo.kinds(id).len(), "{name}: {log}");
        assert_eq!(moves[0].len(), 1, "{name} starts with a root: {log}");
        for pair in moves.windows(2) {
            assert_eq!(pair[1][1], pair[0][0], "{name}: {log}");
        }
        let tip = repo.git(&["rev-parse", &name]);
        assert_eq!(moves.last().unwrap()[0], tip.trim(), "{name}");
        let lease = format!("refs/agent/leases/{id}");
        let mut git = std::process::Command::new("git");
        repo.env(&mut git);
        let exists = git.args(["reflog", "exists", &lease]).status().unwrap();
        assert!(!exists.success(), "the reflog of deleted {lease} is gone");
    }
}

/// Four writers claim and release their tasks while `git <housekeeping>`
/// runs in a loop. Returns the ids of the tasks written.
fn writers_beside(repo: &Repo, housekeeping: &[&str]) -> Vec<String> {
    const CYCLES: usize = 25;
    let tasks = repo.plan(&flat_plan(4));
    let ids: Vec<String> = tasks
        .values()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (packs, outputs) = std::thread::scope(|scope| {
        let packer = scope.spawn(|| {
            let mut runs = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Housekeeping may meet a held lock and give up: that is git's way.
                let mut git = std::process::Command::new("git");
                repo.env(&mut git);
                let _ = git.args(housekeeping).output();
                runs += 1;
            }
            runs
        });
        let writers: Vec<Child> = ids
            .iter()
            .map(|id| {
                let mut cmd = std::process::Command::new("sh");
                repo.env(&mut cmd);
                cmd.args([
                    "-c",
                    "i=0; while [ $i -lt \"$3\" ]; do \
                       \"$0\" claim \"$1\" --actor w --pid \"$2\" >/dev/null && \
                       \"$0\" release \"$1\" --actor w || exit 1; i=$((i+1)); done",
                    crate::common::BIN,
                    id,
                    &live_pid(),
                    &CYCLES.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
            })
            .collect();
        let outputs: Vec<_> = writers
            .into_iter()
            .map(|w| w.wait_with_output().unwrap())
            .collect();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (packer.join().unwrap(), outputs)
    });
    for out in outputs {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "a writer failed: {stderr}");
    }
    assert!(
        packs > 1,
        "git {housekeeping:?} ran {packs} time(s) beside the writers"
    );
    for id in &ids {
        let kinds = repo.kinds(id);
        assert_eq!(kinds.len(), 1 + 2 * CYCLES, "{id}: {kinds:?}");
    }
    let leases = repo.git(&["for-each-ref", "refs/agent/leases/"]);
    assert_eq!(leases, "", "every lease was released");
    repo.git(&["fsck", "--strict", "--no-dangling"]);
    ids
}

/// git itself briefly holds packed-refs.lock (e.g. a commit deleting
/// AUTO_MERGE). gix then moves the task ref but fails the lease deletion of
/// the same transaction: the write landed, and must be reported as landed,
/// with the lease still cleaned up.
#[test]
fn a_transient_packed_refs_lock_does_not_turn_a_landed_write_into_a_lost_race() {
    let repo = Repo::new();
    let id = repo.add("Busy refs", &[]);
    for round in 0..3 {
        repo.ok(&["claim", &id, "--actor", "me", "--pid", &live_pid()]);
        let lock = repo.git_dir().join("packed-refs.lock");
        std::fs::write(&lock, "").unwrap();
        let remover = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::remove_file(lock).unwrap();
        });
        let out = repo.run(&["release", &id, "--actor", "me"]);
        remover.join().unwrap();
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(repo.state(&id), "open");
        assert!(
            !repo.agent_refs().iter().any(|r| r.contains("leases")),
            "round {round}: lease left behind"
        );
    }
    assert_eq!(
        repo.kinds(&id).iter().filter(|k| *k == "released").count(),
        3
    );
}

#[test]
fn a_reader_that_goes_away_ends_git_agent_quietly() {
    let repo = Repo::new();
    repo.plan(&flat_plan(300));
    let mut sh = std::process::Command::new("sh");
    repo.env(&mut sh);
    let out = sh
        .args(["-c", &format!("{} status | head -n 1", crate::common::BIN)])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
}

/// A shell loop of `id=$(git-agent claim --next --actor <actor>)`, each
/// claim in a subshell that exits at once, printing each id claimed.
fn subshell_claimer(repo: &Repo, actor: &str) -> Child {
    let mut cmd = std::process::Command::new("bash");
    repo.env(&mut cmd);
    cmd.args([
        "-c",
        "while id=$(bash -c '\"$0\" claim --next --actor \"$1\"' \"$0\" \"$1\"); do echo \"$id\"; done",
        crate::common::BIN,
        actor,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

/// Claims made from short-lived subshells hold: 16 loopers over 200 tasks
/// claim each task exactly once, and each task has one `claimed` event.
fn claims_from_subshells_hold_and_each_task_is_claimed_once(format: &str) {
    let repo = Repo::with_ref_format(format);
    repo.plan(&flat_plan(200));
    let workers: Vec<Child> = (0..16)
        .map(|i| subshell_claimer(&repo, &format!("a{i}")))
        .collect();
    let mut claimed = Vec::new();
    for w in workers {
        let out = w.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.lines().all(|l| l.contains("nothing ready to claim")),
            "only the last claim of a loop may fail, as a no: {stderr}"
        );
        claimed.extend(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(String::from),
        );
    }
    let unique: HashSet<&String> = claimed.iter().collect();
    assert_eq!(claimed.len(), 200, "200 claims");
    assert_eq!(unique.len(), 200, "200 distinct tasks");
    let log = repo.git(&[
        "log",
        "--glob=refs/agent/tasks",
        "--grep=^Agent-Event: claimed$",
        "--format=%H",
    ]);
    assert_eq!(log.lines().count(), 200, "one claimed event per task");
    let leases = repo.git(&["for-each-ref", "--format=%(refname)", "refs/agent/leases/"]);
    assert_eq!(
        leases.lines().count(),
        200,
        "every claim still holds its lease"
    );
    repo.fails(1, &["claim", "--next", "--actor", "late"]);
}
crate::on_both_ref_formats!(claims_from_subshells_hold_and_each_task_is_claimed_once);

/// Twelve racers on one task, each from a subshell: one winner, eleven no.
fn twelve_subshell_racers_on_one_task_have_one_winner(format: &str) {
    let repo = Repo::with_ref_format(format);
    let id = repo.add("Contested", &[]);
    let racers: Vec<Child> = (0..12)
        .map(|i| {
            let mut cmd = std::process::Command::new("bash");
            repo.env(&mut cmd);
            cmd.args([
                "-c",
                "id=$(bash -c '\"$0\" claim \"$1\" --actor \"$2\"' \"$0\" \"$1\" \"$2\") && echo \"$id\"",
                crate::common::BIN,
                &id,
                &format!("r{i}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let outcomes: Vec<_> = racers
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners = outcomes.iter().filter(|o| o.status.success()).count();
    assert_eq!(winners, 1, "one winner");
    for loser in outcomes.iter().filter(|o| !o.status.success()) {
        assert_eq!(
            loser.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&loser.stderr)
        );
    }
    assert_eq!(repo.kinds(&id), ["created", "claimed"]);
}
crate::on_both_ref_formats!(twelve_subshell_racers_on_one_task_have_one_winner);

/// A claim made from `bash -c` outlives the shell: another actor's claim,
/// claim --next and `git agent run` leave it alone until it is released.
fn a_claim_from_a_shell_that_exited_is_left_alone(format: &str) {
    let repo = Repo::with_ref_format(format);
    repo.configure("60s", 3, "");
    let id = repo.add("Held from a shell", &[]);
    let mut sh = std::process::Command::new("bash");
    repo.env(&mut sh);
    let out = sh
        .args([
            "-c",
            "\"$0\" claim \"$1\" --actor first",
            crate::common::BIN,
            &id,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lease: serde_json::Value =
        serde_json::from_str(&repo.git(&["cat-file", "-p", &format!("refs/agent/leases/{id}")]))
            .unwrap();
    assert!(lease["pid"].is_null(), "tied to no process: {lease}");
    let err = repo.fails(1, &["claim", &id, "--actor", "second"]);
    assert!(err.contains("held by first"), "{err}");
    repo.fails(1, &["claim", "--next", "--actor", "second"]);
    repo.run(&["run", "--once"]);
    assert_eq!(repo.kinds(&id), ["created", "claimed"]);
    assert_eq!(repo.task(&id)["assignee"], "first");
    repo.ok(&["release", &id, "--actor", "first"]);
    repo.ok(&["claim", &id, "--actor", "second"]);
    assert_eq!(repo.task(&id)["assignee"], "second");
}
crate::on_both_ref_formats!(a_claim_from_a_shell_that_exited_is_left_alone);

/// `renew` extends the holder's lease; anyone else gets exit 1 and the
/// lease is unchanged.
#[test]
fn renew_extends_the_holders_lease_and_refuses_anyone_else() {
    let repo = Repo::new();
    let id = repo.add("Long job", &[]);
    let lease = |repo: &Repo| -> serde_json::Value {
        serde_json::from_str(&repo.git(&["cat-file", "-p", &format!("refs/agent/leases/{id}")]))
            .unwrap()
    };
    repo.ok(&["claim", &id, "--actor", "me", "--ttl", "1m"]);
    let before: jiff::Timestamp = lease(&repo)["expires"].as_str().unwrap().parse().unwrap();
    let err = repo.fails(1, &["renew", &id, "--actor", "other"]);
    assert!(err.contains("held by me"), "{err}");
    assert_eq!(
        lease(&repo)["expires"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap(),
        before
    );
    let out = repo.ok(&["renew", &id, "--actor", "me", "--ttl", "2h"]);
    let after: jiff::Timestamp = lease(&repo)["expires"].as_str().unwrap().parse().unwrap();
    assert!(out.contains(&after.to_string()), "{out}");
    assert!(after.duration_since(before) > jiff::SignedDuration::from_mins(100));
    repo.ok(&["release", &id, "--actor", "me"]);
    let err = repo.fails(1, &["renew", &id, "--actor", "me"]);
    assert!(err.contains("not in progress"), "{err}");
}
