//! `git agent run`: parallel implementers, retries, escalation, kill -9 and
//! Ctrl-C, with scripted agents in real processes.

use crate::common::{alive, wait_for, Repo};
use std::process::Stdio;

/// The most tasks that ran at one moment, from `start|end <task> <time>` lines.
fn max_overlap(record: &str) -> usize {
    let mut edges: Vec<(f64, i32)> = record
        .lines()
        .map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            (
                parts[2].parse().unwrap(),
                if parts[0] == "start" { 1 } else { -1 },
            )
        })
        .collect();
    edges.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (mut now, mut most) = (0, 0);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

#[test]
fn run_implements_ready_tasks_in_parallel() {
    let repo = Repo::new();
    repo.configure("60s", 3, "");
    let record = repo.scratch("record.txt");
    let ids: Vec<String> = (0..4)
        .map(|i| {
            repo.add(
                &format!("Task {i}"),
                &["--spec", &format!("sleep=1 record={record}")],
            )
        })
        .collect();
    let run = repo.run(&["run", "-j", "4"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(out.contains("4 submitted"), "{out}");
    // Not a terminal: the live view is plain timestamped lines.
    let view = String::from_utf8_lossy(&run.stderr);
    for id in &ids {
        let started = format!("{id} implementer attempt 1: Task");
        assert!(
            view.lines()
                .any(|l| l.contains(&started) && l.ends_with("started") && l.as_bytes()[2] == b':'),
            "{view}"
        );
        assert!(
            view.contains(&format!("{id} implementer: submitted")),
            "{view}"
        );
    }
    for id in &ids {
        assert_eq!(repo.state(id), "in_review");
    }
    let record = std::fs::read_to_string(&record).unwrap();
    assert_eq!(record.lines().count(), 8);
    assert!(
        max_overlap(&record) >= 2,
        "agents ran one at a time:\n{record}"
    );
}

#[test]
fn a_failed_attempt_is_retried_with_the_failure_in_its_prompt() {
    let repo = Repo::new();
    repo.configure("60s", 3, "");
    let id = repo.add("Flaky", &["--spec", "fail-once"]);
    repo.ok(&["run", "--once"]);
    assert_eq!(
        repo.kinds(&id),
        ["created", "claimed", "failed", "claimed", "submitted"]
    );
    let prompt = std::fs::read_to_string(repo.logs(&id).join("2-implementer.prompt.md")).unwrap();
    assert!(
        prompt.contains("Feedback from earlier attempts"),
        "{prompt}"
    );
    assert!(
        prompt.contains("the agent exited with code 4") && prompt.contains("missing import"),
        "{prompt}"
    );
    assert!(prompt.contains("attempt 2 of 3"), "{prompt}");
}

#[test]
fn attempts_used_up_go_to_a_human_who_answers_with_resolve() {
    let repo = Repo::new();
    repo.configure("60s", 2, "");
    let id = repo.add(
        "Impossible",
        &["--spec", "always-fail", "--max-attempts", "2"],
    );
    let ok = repo.add("Fine", &[]);
    // Exit 1: the run left a task for a person, and says how many.
    let err = repo.fails(1, &["run"]);
    assert!(err.contains("1 task waits for a human"), "{err}");
    let task = repo.task(&id);
    assert_eq!(
        (task["state"].as_str(), task["attempts"].as_u64()),
        (Some("needs_human"), Some(2))
    );
    assert!(
        task["reason"]
            .as_str()
            .unwrap()
            .contains("exited with code 3"),
        "{task}"
    );
    let show = repo.json(&["show", &id]);
    let last_failure = show["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["kind"] == "failed")
        .unwrap()
        .clone();
    assert!(last_failure["data"]["log_tail"]
        .as_str()
        .unwrap()
        .contains("cannot do this task"));
    let status = repo.ok(&["status"]);
    assert!(status.starts_with("needs a human (1):"), "{status}");
    assert!(
        status.contains(&ok) && status.contains("in review"),
        "{status}"
    );
    repo.fails(1, &["resolve", &ok, "--retry"]);
    repo.fails(2, &["resolve", &id]);
    repo.ok(&["resolve", &id, "--retry", "-m", "try the other approach"]);
    let task = repo.task(&id);
    assert_eq!(
        (task["state"].as_str(), task["attempts"].as_u64()),
        (Some("open"), Some(0))
    );
    let context = repo.ok(&["context", &id]);
    assert!(
        context.contains("a human answered: try the other approach"),
        "{context}"
    );
    repo.fails(1, &["run"]);
    assert_eq!(repo.state(&id), "needs_human");
    repo.ok(&["resolve", &id, "--abandon"]);
    // Nothing waits for a human any more: a run with nothing to do exits 0.
    repo.ok(&["run"]);
    assert_eq!(repo.state(&id), "abandoned");
}

#[test]
fn a_second_orchestrator_is_refused_while_one_runs() {
    let repo = Repo::new();
    repo.configure("60s", 3, "");
    let record = repo.scratch("record.txt");
    repo.add("Slow", &["--spec", &format!("sleep=3 record={record}")]);
    let mut first = repo
        .cmd(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(20, || std::path::Path::new(&record).exists()));
    let err = repo.fails(1, &["run"]);
    assert!(err.contains("another `git agent run`"), "{err}");
    assert!(first.wait().unwrap().success());
}

/// kill -9 of the orchestrator mid-run, then a second run: every task
/// finishes exactly once, and the work left uncommitted is kept.
#[test]
fn kill_9_then_rerun_finishes_every_task_exactly_once() {
    let repo = Repo::new();
    repo.configure("120s", 3, "");
    let record = repo.scratch("record.txt");
    let pids = repo.scratch("pids.txt");
    let ids: Vec<String> = (0..3)
        .map(|i| {
            repo.add(
                &format!("Partial {i}"),
                &["--spec", &format!("partial record={record} pids={pids}")],
            )
        })
        .collect();
    let view = repo.scratch("view.txt");
    let mut first = repo
        .cmd(&["run", "-j", "3"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&view).unwrap())
        .spawn()
        .unwrap();
    let started = || std::fs::read_to_string(&record).map_or(0, |r| r.lines().count());
    assert!(
        wait_for(60, || started() == 3),
        "agents did not start: {}",
        std::fs::read_to_string(&view).unwrap_or_default()
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    first.kill().unwrap();
    first.wait().unwrap();
    let orphans: Vec<u32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(
        orphans.iter().any(|p| alive(*p)),
        "agents outlive the orchestrator (their own groups)"
    );

    let out = repo.ok(&["run", "-j", "3"]);
    assert!(out.contains("3 submitted"), "{out}");
    for pid in orphans {
        assert!(!alive(pid), "orphaned agent {pid} still runs");
    }
    for id in &ids {
        let kinds = repo.kinds(id);
        assert_eq!(
            kinds.iter().filter(|k| *k == "submitted").count(),
            1,
            "{id}: {kinds:?}"
        );
        assert_eq!(
            kinds,
            ["created", "claimed", "released", "claimed", "submitted"],
            "{id}"
        );
        let log = repo.git(&["log", "--format=%s", &format!("agent/{id}")]);
        assert!(
            log.contains("Recover uncommitted work: Partial"),
            "{id}: {log}"
        );
        let files = repo.git(&["ls-tree", "--name-only", &format!("agent/{id}")]);
        assert!(files.contains(&format!("partial-{id}.txt")), "{files}");
    }
}

/// Ctrl-C: no new work, running agents stopped, leases released, the
/// interruption recorded.
#[test]
fn ctrl_c_stops_agents_and_releases_their_tasks() {
    let repo = Repo::new();
    repo.configure("120s", 3, "");
    let record = repo.scratch("record.txt");
    let pids = repo.scratch("pids.txt");
    let ids: Vec<String> = (0..3)
        .map(|i| {
            repo.add(
                &format!("Long {i}"),
                &["--spec", &format!("sleep=60 record={record} pids={pids}")],
            )
        })
        .collect();
    let run = repo
        .cmd(&["run", "-j", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = || std::fs::read_to_string(&record).map_or(0, |r| r.lines().count());
    assert!(wait_for(30, || started() == 2), "agents did not start");
    unsafe { libc_kill(run.id() as i32, 2) };
    let out = run.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    assert_eq!(started(), 2, "no new work after Ctrl-C");
    for pid in std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.parse::<u32>().unwrap())
    {
        assert!(!alive(pid), "agent {pid} still runs");
    }
    assert!(
        !repo.agent_refs().iter().any(|r| r.contains("leases")),
        "leases released"
    );
    let released: Vec<&String> = ids
        .iter()
        .filter(|id| repo.kinds(id).contains(&"released".to_string()))
        .collect();
    assert_eq!(released.len(), 2);
    for id in released {
        let task = repo.task(id);
        assert_eq!(task["state"], "open");
        assert!(
            task["reason"].as_str().unwrap().contains("interrupted"),
            "{task}"
        );
        assert_eq!(
            task["attempts"], 0,
            "an interruption is not a failed attempt"
        );
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

/// A ready task whose scope clashes with work in flight waits for it
/// (and `status` says why) instead of running beside it.
#[test]
fn a_task_that_would_clash_with_work_in_flight_waits_and_status_says_why() {
    let repo = Repo::new();
    repo.configure("60s", 3, "");
    let record = repo.scratch("record.txt");
    let first = repo.add(
        "First",
        &[
            "--scope",
            "src/a.rs",
            "--spec",
            &format!("sleep=2 record={record}"),
        ],
    );
    let second = repo.add(
        "Second",
        &["--scope", "src/a.rs", "--spec", &format!("record={record}")],
    );
    let third = repo.add(
        "Third",
        &["--scope", "src/b.rs", "--spec", &format!("record={record}")],
    );
    repo.ok(&[
        "claim",
        &first,
        "--actor",
        "someone",
        "--pid",
        &std::process::id().to_string(),
    ]);
    let status = repo.ok(&["status"]);
    let line = status.lines().find(|l| l.contains(&second)).unwrap();
    assert!(
        line.contains(&format!("waits for {first}: both touch src/a.rs")),
        "{status}"
    );
    assert!(
        !status
            .lines()
            .find(|l| l.contains(&third))
            .unwrap()
            .contains("waits"),
        "{status}"
    );
    // ready and claim --next follow the same rule as run.
    let out = repo.run(&["ready"]);
    let ready = String::from_utf8_lossy(&out.stdout);
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(
        ready.contains(&third) && !ready.contains(&second),
        "{ready}"
    );
    assert!(
        why.contains(&format!("{second} waits for {first}: both touch src/a.rs")),
        "{why}"
    );
    let ready = repo.json(&["ready"]);
    let ids: Vec<&str> = ready
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [third.as_str()]);
    let claimed = repo.ok(&["claim", "--next", "--actor", "other"]);
    assert_eq!(
        claimed.trim(),
        third,
        "claim --next skips the task that would clash"
    );
    let err = repo.fails(1, &["claim", "--next", "--actor", "other"]);
    assert!(
        err.contains(&format!("{second} waits for {first}")),
        "{err}"
    );
    repo.ok(&["release", &third, "--actor", "other"]);
    repo.ok(&["release", &first, "--actor", "someone"]);
    let run = repo.run(&["run", "-j", "3"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let view = String::from_utf8_lossy(&run.stderr);
    assert!(
        view.contains(&format!("{second} waits for {first}: both touch src/a.rs")),
        "{view}"
    );
    // Work in review is still in flight: the second waits until the first lands.
    assert_eq!(repo.state(&second), "open");
    assert_eq!(repo.state(&third), "in_review");
    repo.ok(&["review", &first, "--approve"]);
    repo.ok(&["integrate"]);
    repo.ok(&["run"]);
    assert_eq!(repo.state(&second), "in_review");
    let record = std::fs::read_to_string(&record).unwrap();
    let at = |what: &str, id: &str| -> f64 {
        let line = record
            .lines()
            .find(|l| l.starts_with(&format!("{what} {id} ")))
            .unwrap();
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    assert!(at("start", &second) >= at("end", &first), "{record}");
    assert!(
        at("start", &third) < at("end", &first),
        "the third ran beside the first: {record}"
    );
}

/// On a terminal the live view is one progress line per running agent
/// (task, role, attempt, elapsed), redrawn in place. `script` gives the run
/// a real pseudo-terminal.
#[test]
fn on_a_terminal_each_running_agent_has_a_progress_line() {
    let repo = Repo::new();
    repo.configure("60s", 3, "");
    let a = repo.add("Slow one", &["--spec", "sleep=2"]);
    let b = repo.add("Slow two", &["--spec", "sleep=2"]);
    let mut script = std::process::Command::new("script");
    repo.env(&mut script);
    let out = script
        .args([
            "-qec",
            &format!("{} run -j 2", crate::common::BIN),
            "/dev/null",
        ])
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    for id in [&a, &b] {
        let line = format!("{id} implementer attempt 1: Slow");
        assert!(
            screen.contains(&line),
            "no progress line for {id}: {screen}"
        );
    }
    assert!(screen.contains("[  1s]"), "elapsed time shown: {screen}");
    assert!(
        screen.contains("\u{1b}[2K"),
        "lines are redrawn in place: {screen}"
    );
}

#[test]
fn an_orphaned_agent_is_sent_term_before_kill_so_it_can_let_go() {
    let repo = Repo::new();
    repo.configure("120s", 3, "");
    let record = repo.scratch("record.txt");
    let term = repo.scratch("term.txt");
    let pids = repo.scratch("pids.txt");
    let id = repo.add(
        "Orphaned",
        &[
            "--spec",
            &format!("partial record={record} term={term} pids={pids}"),
        ],
    );
    let mut first = repo
        .cmd(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The partial file is written after the agent set its trap.
    let partial = || repo.worktree(&id).join(format!("partial-{id}.txt"));
    assert!(
        wait_for(60, || std::fs::read_to_string(&record).is_ok()
            && partial().exists()),
        "the agent did not start"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    let orphan: u32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(orphan), "the agent outlives the orchestrator");
    assert!(
        !std::path::Path::new(&term).exists(),
        "killing the orchestrator sent the agent nothing"
    );

    let out = repo.ok(&["run"]);
    assert!(out.contains("1 submitted"), "{out}");
    assert!(!alive(orphan), "the orphan was stopped");
    assert_eq!(
        std::fs::read_to_string(&term).unwrap_or_default(),
        "term\n",
        "the orphan got SIGTERM (and time to act on it) before SIGKILL"
    );
    assert_eq!(repo.state(&id), "in_review");
}
