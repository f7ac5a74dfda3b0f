//! `git agent stats`, budgets and rate limits: scripted agents in real
//! processes on real repositories, timed and priced as they ran.

use crate::common::{agent, wait_for, Repo};
use serde_json::Value;
use std::process::Stdio;

/// The scripted implementer with the scripted reviewer, a gate that
/// passes, and `extra` lines inside the implementer's block.
fn pipeline(repo: &Repo, max_attempts: u32, implementer_extra: &str, top: &str) {
    repo.configure(
        "60s",
        max_attempts,
        &format!(
            "{implementer_extra}  reviewer:\n    command: [sh, {}]\n    timeout: 60s\ntest: 'true'\n{top}",
            agent("reviewer.sh")
        ),
    );
}

fn ms(v: &Value) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("not a number of ms: {v}"))
}

/// `a` (2s) then `b` (3s, after a), and `c` (2s) beside them, on two slots.
fn timed_plan(repo: &Repo) -> serde_json::Map<String, Value> {
    repo.plan(
        "tasks:\n  - key: a\n    title: First\n    spec: sleep=2\n  - key: b\n    title: Second\n    spec: sleep=3\n    depends_on: [a]\n  - key: c\n    title: Beside\n    spec: sleep=2\n",
    )
}

#[test]
fn stats_time_each_agent_and_add_up_to_slots_times_wall() {
    let repo = Repo::new();
    pipeline(&repo, 3, "", "");
    let ids = timed_plan(&repo);
    let out = repo.ok(&["run", "-j", "2"]);
    assert!(out.contains("3 merged"), "{out}");
    let stats = repo.json(&["stats"]);
    let id = |key: &str| ids[key].as_str().unwrap().to_string();
    let sleeps = [(id("a"), 2000), (id("b"), 3000), (id("c"), 2000)];
    let runs = stats["runs"].as_array().unwrap();
    for (task, sleep) in &sleeps {
        let implementer: Vec<&Value> = runs
            .iter()
            .filter(|r| r["task"] == task.as_str() && r["role"] == "implementer")
            .collect();
        assert_eq!(implementer.len(), 1, "{task}: {stats}");
        let span = ms(&implementer[0]["end_ms"]) - ms(&implementer[0]["start_ms"]);
        assert!(
            (span - sleep).abs() <= sleep / 10,
            "{task}: the agent ran {span} ms for a sleep of {sleep} ms"
        );
    }
    // Speed-up and tax add up: agent time + idle slot time = slots × wall.
    let (wall, agent, slots) = (
        ms(&stats["wall_ms"]),
        ms(&stats["agent_ms"]),
        ms(&stats["slots"]),
    );
    assert_eq!(slots, 2, "{stats}");
    assert_eq!(agent + ms(&stats["tax_ms"]), slots * wall, "{stats}");
    let parts: i64 = [
        "setup_ms",
        "queue_ms",
        "gate_ms",
        "orchestration_ms",
        "no_work_ms",
    ]
    .iter()
    .map(|p| ms(&stats["tax"][p]))
    .sum();
    assert_eq!(parts, ms(&stats["tax_ms"]), "{stats}");
    let summed: i64 = runs
        .iter()
        .map(|r| ms(&r["end_ms"]) - ms(&r["start_ms"]))
        .sum();
    assert_eq!(summed, agent);
    let speedup = stats["speedup"].as_f64().unwrap();
    assert!(
        (speedup - agent as f64 / wall as f64).abs() < 1e-9,
        "{stats}"
    );
    assert!(speedup > 1.0, "two slots ran at once: {stats}");
    // The critical path is the longest chain, a then b, weighed by their own times.
    assert_eq!(
        stats["critical_path"],
        serde_json::json!([id("a"), id("b")])
    );
    let weight = |task: &str| {
        let t = stats["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == task)
            .unwrap()
            .clone();
        ms(&t["agent_ms"]) + ms(&t["gate_ms"])
    };
    let path = ms(&stats["critical_path_ms"]);
    assert_eq!(path, weight(&id("a")) + weight(&id("b")));
    assert!(
        (path - 5000).abs() <= 500,
        "critical path {path} ms for 5 s of sleeps"
    );
    assert!(wall >= path, "{stats}");
    let implementer = &stats["roles"]["implementer"];
    assert_eq!(implementer["attempts"], 3);
    assert_eq!(implementer["failures"], 0);
    assert_eq!(stats["roles"]["reviewer"]["attempts"], 3);
    assert_eq!(stats["gate"]["runs"], 3);
    assert_eq!(stats["gate"]["failures"], 0);
    // Each task's stay in the merge queue, from the event it left with.
    let entries = stats["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{stats}");
    for e in entries {
        assert_eq!(e["left"], "merged", "{e}");
        assert!(e["gate_runs"].as_u64().unwrap() >= 1, "{e}");
        assert!(ms(&e["queued_ms"]) >= ms(&e["waited_ms"]), "{e}");
    }
    // The same numbers on a clone: they come from the history alone.
    let clone = repo.scratch("clone");
    repo.git(&[
        "clone",
        "-q",
        "--mirror",
        repo.path().to_str().unwrap(),
        &clone,
    ]);
    let mut cmd = repo.cmd(&["stats", "--json"]);
    cmd.current_dir(&clone);
    let again: Value = serde_json::from_slice(&cmd.output().unwrap().stdout).unwrap();
    assert_eq!(again["agent_ms"], stats["agent_ms"]);
    assert_eq!(again["critical_path"], stats["critical_path"]);
    let text = repo.ok(&["stats", "--plan", "p-"]);
    assert!(text.contains("merge queue"), "{text}");
    assert!(
        text.contains("speed-up") && text.contains(&id("b")),
        "{text}"
    );
}

#[test]
fn the_svg_parses_and_has_one_bar_per_attempt() {
    let repo = Repo::new();
    pipeline(&repo, 3, "", "");
    let flaky = repo.add("Flaky", &["--spec", "fail-once"]);
    let steady = repo.add("Steady", &["--spec", "sleep=1"]);
    repo.ok(&["run", "-j", "2"]);
    let svg_file = repo.scratch("run.svg");
    let html_file = repo.scratch("run.html");
    repo.ok(&["stats", "--svg", &svg_file, "--html", &html_file]);
    let svg = std::fs::read_to_string(&svg_file).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("the SVG is XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let bars: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("bar"))
        .collect();
    // Every attempt the history shows: implementer attempts and reviews.
    let attempts: usize = [&flaky, &steady]
        .iter()
        .map(|id| {
            repo.kinds(id)
                .iter()
                .filter(|k| ["submitted", "failed", "reviewed"].contains(&k.as_str()))
                .count()
        })
        .sum();
    assert_eq!(
        attempts, 5,
        "flaky: failed, submitted, reviewed; steady: submitted, reviewed"
    );
    assert_eq!(bars.len(), attempts, "{svg}");
    let hover: Vec<String> = bars
        .iter()
        .map(|b| {
            b.children()
                .find(|c| c.has_tag_name("title"))
                .and_then(|t| t.text())
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(
        hover
            .iter()
            .any(|h| h.contains(&flaky) && h.contains("implementer attempt 1: failed")),
        "{hover:?}"
    );
    assert!(hover
        .iter()
        .any(|h| h.contains(&flaky) && h.contains("attempt 2: submitted")));
    assert!(hover
        .iter()
        .any(|h| h.contains(&steady) && h.contains("reviewer attempt 1: approve")));
    assert!(
        doc.descendants().any(|n| n.text() == Some("merge queue")),
        "a lane for the merge queue"
    );
    assert!(
        !svg.contains("<script") && !svg.contains("href="),
        "self-contained"
    );
    let html = std::fs::read_to_string(&html_file).unwrap();
    assert!(html.contains("<svg") && html.contains("<table>") && !html.contains("<script"));
}

#[test]
fn a_task_over_its_budget_waits_for_a_human_with_budget_and_spend() {
    let repo = Repo::new();
    repo.configure("60s", 5, "budget: {task_usd: 0.5}\n");
    let id = repo.add(
        "Costly",
        &["--spec", "always-fail cost=0.3", "--max-attempts", "5"],
    );
    let err = repo.fails(1, &["run"]);
    assert!(err.contains("for a human"), "{err}");
    let task = repo.task(&id);
    assert_eq!(task["state"], "needs_human");
    assert_eq!(
        task["attempts"], 2,
        "two attempts of $0.30 spend the $0.50: {task}"
    );
    let reason = task["reason"].as_str().unwrap();
    assert!(
        reason.contains("$0.6000") && reason.contains("budget.task_usd $0.5000"),
        "{reason}"
    );
    assert_eq!(
        repo.kinds(&id),
        [
            "created",
            "claimed",
            "failed",
            "claimed",
            "failed",
            "escalated"
        ]
    );
    let status = repo.ok(&["status"]);
    assert!(
        status.contains(&format!("{id}  $0.6000 of task_usd $0.5000")),
        "{status}"
    );
    let status = repo.json(&["status"]);
    let budget = &status["limits"]["budget"];
    assert_eq!(budget["task_usd"], 0.5, "{status}");
    assert_eq!(budget["tasks"][0]["id"], id.as_str(), "{status}");
    assert!(
        (budget["tasks"][0]["cost_usd"].as_f64().unwrap() - 0.6).abs() < 1e-9,
        "{status}"
    );
    let stats = repo.json(&["stats"]);
    assert!(
        (stats["cost_usd"].as_f64().unwrap() - 0.6).abs() < 1e-9,
        "{stats}"
    );
    assert_eq!(stats["tokens"], 2000);
    assert_eq!(stats["tasks"][0]["escalations"], 1);
}

#[test]
fn a_run_over_its_budget_starts_nothing_new_and_exits_1() {
    let repo = Repo::new();
    repo.configure("60s", 3, "budget: {run_usd: 0.5}\n");
    let ids: Vec<String> = (0..3)
        .map(|i| repo.add(&format!("Task {i}"), &["--spec", "cost=0.3 sleep=1"]))
        .collect();
    let err = repo.fails(1, &["run", "-j", "1"]);
    assert!(
        err.contains("the run budget is spent: $0.6000 of budget.run_usd $0.5000"),
        "{err}"
    );
    assert!(err.contains("starting nothing new"), "{err}");
    let started: Vec<&String> = ids
        .iter()
        .filter(|id| repo.kinds(id).contains(&"claimed".to_string()))
        .collect();
    assert_eq!(started.len(), 2, "the third never started");
    for id in &started {
        assert_eq!(repo.state(id), "in_review", "a started agent finished");
    }
}

#[test]
fn claude_is_given_what_is_left_of_the_budget() {
    let repo = Repo::new();
    let bin = repo.home().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let argv = repo.scratch("argv.txt");
    // A stand-in for Claude Code: records its argv, edits, prints its JSON.
    std::fs::write(
        bin.join("claude"),
        format!(
            "#!/bin/sh\necho \"$@\" > {argv}\ncat > /dev/null\necho hi > claude.txt\n\
             echo '{{\"type\":\"result\",\"result\":\"done\",\"total_cost_usd\":0.25,\"usage\":{{\"input_tokens\":10,\"output_tokens\":5}}}}'\n"
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(bin.join("claude"))
        .status()
        .unwrap();
    repo.write(
        ".git-agent.yaml",
        "budget: {task_usd: 1, run_usd: 3}\nroles:\n  implementer: { agent: claude, timeout: 60s }\n",
    );
    let id = repo.add("Edit", &[]);
    let path = std::env::join_paths(
        std::iter::once(bin.clone()).chain(std::env::split_paths(&crate::common::path_with_bin())),
    )
    .unwrap();
    let out = repo.cmd(&["run"]).env("PATH", &path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args = std::fs::read_to_string(&argv).unwrap();
    assert!(args.contains("--max-budget-usd 1.0000"), "{args}");
    let submitted = repo.json(&["show", &id])["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "submitted")
        .cloned()
        .unwrap();
    assert_eq!(submitted["data"]["usage"]["cost_usd"], 0.25);
}

#[test]
fn a_rate_limited_agent_pauses_its_role_and_uses_up_no_attempt() {
    let repo = Repo::new();
    let limited = repo.scratch("limited.txt");
    pipeline(
        &repo,
        1,
        "    rate_limit: { backoff: 1s, max_backoff: 2s }\n",
        "",
    );
    let id = repo.add(
        "Busy API",
        &[
            "--spec",
            &format!("limited={limited}"),
            "--max-attempts",
            "1",
        ],
    );
    let (mut run, view) = run_in_background(&repo);
    watch_the_pause(&repo, "implementer");
    assert!(
        run.wait().unwrap().success(),
        "{}",
        std::fs::read_to_string(&view).unwrap()
    );
    let task = repo.task(&id);
    assert_eq!(task["state"], "merged", "{task}");
    assert_eq!(task["attempts"], 0, "no attempt used up: {task}");
    let kinds = repo.kinds(&id);
    assert_eq!(
        kinds.iter().filter(|k| *k == "released").count(),
        2,
        "{kinds:?}"
    );
    let view = std::fs::read_to_string(&view).unwrap();
    assert!(view.contains("implementer rate limited"), "{view}");
    let stats = repo.json(&["stats"]);
    assert_eq!(stats["roles"]["implementer"]["rate_limited"], 2, "{stats}");
    assert_eq!(stats["roles"]["implementer"]["failures"], 0, "{stats}");
}

#[test]
fn planner_runs_are_timed_in_stats_and_drawn_in_a_lane() {
    let repo = Repo::new();
    let limited = repo.scratch("planner-limited.txt");
    repo.write(
        ".git-agent.yaml",
        &format!(
            "roles:\n  planner:\n    command: [sh, {}, learns, sleep=1, 'limited={limited}']\n    timeout: 60s\n    rate_limit: {{ backoff: 1s, max_backoff: 1s }}\n",
            agent("planner.sh")
        ),
    );
    let plan = repo.json(&["plan", "Add a greeting"]);
    let plan_id = plan["plan"].as_str().unwrap();
    let stats = repo.json(&["stats", "--plan", plan_id]);
    let runs: Vec<&Value> = stats["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["role"] == "planner")
        .collect();
    // Rate limited, then a refused plan, then the plan that was stored.
    let results: Vec<&str> = runs.iter().map(|r| r["result"].as_str().unwrap()).collect();
    assert_eq!(results, ["rate_limited", "refused", "planned"], "{stats}");
    let attempts: Vec<u64> = runs
        .iter()
        .map(|r| r["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [1, 1, 2], "{stats}");
    for r in &runs {
        assert_eq!(r["task"], plan_id, "{r}");
        assert_eq!(r["title"], "Add a greeting", "{r}");
        let span = ms(&r["end_ms"]) - ms(&r["start_ms"]);
        assert!(
            (span - 1000).abs() <= 100,
            "a planner run of {span} ms for a sleep of 1 s: {r}"
        );
    }
    let role = &stats["roles"]["planner"];
    assert_eq!(role["attempts"], 3, "{stats}");
    assert_eq!(role["failures"], 1, "{stats}");
    assert_eq!(role["rate_limited"], 1, "{stats}");
    let summed: i64 = runs
        .iter()
        .map(|r| ms(&r["end_ms"]) - ms(&r["start_ms"]))
        .sum();
    assert_eq!(ms(&role["agent_ms"]), summed, "{stats}");
    assert_eq!(
        ms(&stats["agent_ms"]),
        summed,
        "only the planner ran: {stats}"
    );
    let svg_file = repo.scratch("plan.svg");
    repo.ok(&["stats", "--svg", &svg_file]);
    let svg = std::fs::read_to_string(&svg_file).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("the SVG is XML");
    let bars: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("bar"))
        .filter(|n| n.attribute("data-role") == Some("planner"))
        .collect();
    assert_eq!(bars.len(), 3, "{svg}");
    assert!(bars
        .iter()
        .all(|b| b.attribute("data-task") == Some(plan_id)));
    let text = repo.ok(&["stats"]);
    assert!(text.contains("planner"), "{text}");
}

/// `git agent run` in the background, its view written to a file.
fn run_in_background(repo: &Repo) -> (std::process::Child, String) {
    let view = repo.scratch("view.txt");
    let run = repo
        .cmd(&["run"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&view).unwrap())
        .spawn()
        .unwrap();
    (run, view)
}

/// Poll `status` until the pause of `role` after a 429 has shown in its
/// text and in its JSON.
fn watch_the_pause(repo: &Repo, role: &str) {
    // Each pause lasts a second or two: look at the text and the JSON in
    // the same loop until each has shown one.
    let (mut paused, mut in_json) = (String::new(), None);
    let line = format!("paused: {role} dispatch, rate limited");
    assert!(
        wait_for(60, || {
            let text = repo.ok(&["status"]);
            if text.contains(&line) {
                paused = text;
            }
            let json = repo.json(&["status"]);
            let pause = &json["limits"]["pauses"][role];
            if pause.is_object() {
                in_json = Some(pause.clone());
            }
            !paused.is_empty() && in_json.is_some()
        }),
        "the {role} pause never showed in status (text: {paused:?}, json: {in_json:?})"
    );
    assert!(paused.contains("429 Too Many Requests"), "{paused}");
    let pause = in_json.unwrap();
    assert!(pause["hits"].as_u64().unwrap() >= 1, "{pause}");
    assert!(pause["reason"].as_str().unwrap().contains("429"), "{pause}");
}

#[test]
fn a_rate_limited_reviewer_pauses_its_role_and_uses_up_no_attempt() {
    let repo = Repo::new();
    let limited = repo.scratch("reviewer-limited.txt");
    repo.configure(
        "60s",
        1,
        &format!(
            "  reviewer:\n    command: [sh, {}, 'limited={limited}']\n    timeout: 60s\n    rate_limit: {{ backoff: 1s, max_backoff: 2s }}\ntest: 'true'\n",
            agent("reviewer.sh")
        ),
    );
    let id = repo.add(
        "Reviewed at last",
        &["--spec", "plain", "--max-attempts", "1"],
    );
    let (mut run, view) = run_in_background(&repo);
    watch_the_pause(&repo, "reviewer");
    assert!(
        run.wait().unwrap().success(),
        "{}",
        std::fs::read_to_string(&view).unwrap()
    );
    let task = repo.task(&id);
    assert_eq!(task["state"], "merged", "{task}");
    assert_eq!(task["attempts"], 0, "no attempt used up: {task}");
    let kinds = repo.kinds(&id);
    assert_eq!(
        kinds.iter().filter(|k| *k == "reviewed").count(),
        1,
        "one verdict, after the pauses: {kinds:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&limited).unwrap().lines().count(),
        2
    );
    let view = std::fs::read_to_string(&view).unwrap();
    assert!(view.contains("reviewer rate limited"), "{view}");
    let stats = repo.json(&["stats"]);
    let reviewer = &stats["roles"]["reviewer"];
    assert_eq!(reviewer["rate_limited"], 2, "{stats}");
    assert_eq!(reviewer["attempts"], 3, "{stats}");
    assert_eq!(reviewer["failures"], 0, "{stats}");
}

#[test]
fn a_rate_limited_integrator_pauses_its_role_and_the_conflict_still_lands() {
    let repo = Repo::new();
    let limited = repo.scratch("integrator-limited.txt");
    repo.configure(
        "60s",
        1,
        &format!(
            "  integrator:\n    command: [sh, {}, 'limited={limited}']\n    timeout: 60s\n    rate_limit: {{ backoff: 1s, max_backoff: 2s }}\ntest: 'true'\n",
            agent("integrator.sh")
        ),
    );
    // Two approved pieces that both append to one file: the second
    // conflicts with the first once the first has landed.
    let ids: Vec<String> = ["First", "Second"]
        .iter()
        .map(|title| {
            let id = repo.add(title, &["--spec", "append", "--max-attempts", "1"]);
            repo.ok(&["work", &id]);
            repo.ok(&["review", &id, "--approve"]);
            id
        })
        .collect();
    let (mut run, view) = run_in_background(&repo);
    watch_the_pause(&repo, "integrator");
    assert!(
        run.wait().unwrap().success(),
        "{}",
        std::fs::read_to_string(&view).unwrap()
    );
    let view = std::fs::read_to_string(&view).unwrap();
    let list = repo.git(&["show", "main:list.txt"]);
    for id in &ids {
        let task = repo.task(id);
        assert_eq!(task["state"], "merged", "{task}\n{view}");
        assert_eq!(task["attempts"], 0, "no attempt used up: {task}");
        assert!(list.lines().any(|l| l == id), "{id} not in:\n{list}");
    }
    assert!(!list.contains("<<<<<<<"), "{list}");
    assert_eq!(
        std::fs::read_to_string(&limited).unwrap().lines().count(),
        2
    );
    assert!(view.contains("integrator rate limited"), "{view}");
    let stats = repo.json(&["stats"]);
    let integrator = &stats["roles"]["integrator"];
    assert_eq!(integrator["rate_limited"], 2, "{stats}");
    assert_eq!(integrator["attempts"], 3, "{stats}");
    assert_eq!(integrator["failures"], 0, "{stats}");
}

#[test]
fn a_bad_budget_or_rate_limit_is_refused_by_file_line_and_field() {
    let repo = Repo::new();
    let id = repo.add("Untouched", &[]);
    let before = repo.agent_refs();
    for (extra, line, field) in [
        ("budget:\n  task_usd: -1\n", 9, "budget.task_usd"),
        ("budget: {run_usd: 1, task_tokenz: 5}\n", 8, "task_tokenz"),
        (
            "    rate_limit:\n      backoff: 1m\n      max_backoff: 10s\n",
            10,
            "roles.implementer.rate_limit.max_backoff",
        ),
    ] {
        repo.configure("60s", 3, extra);
        let err = repo.fails(2, &["run"]);
        assert!(
            err.contains(&format!(".git-agent.yaml:{line}: ")) && err.contains(field),
            "{extra}: {err}"
        );
        assert_eq!(repo.agent_refs(), before, "nothing written");
        assert_eq!(repo.kinds(&id), ["created"]);
    }
}

#[test]
fn a_broken_config_still_shows_the_board_and_says_why_the_budget_is_missing() {
    let repo = Repo::new();
    let id = repo.add("Still listed", &[]);
    repo.configure("60s", 3, "budget: {task_usd: nope}\n");
    let out = repo.cmd(&["status"]).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains(&id), "{stdout}");
    assert!(
        stderr.contains("budget is not shown") && stderr.contains(".git-agent.yaml:"),
        "{stderr}"
    );
    let status = repo.json(&["status"]);
    assert!(
        status["limits"]["config_error"]
            .as_str()
            .unwrap()
            .contains("task_usd"),
        "{status}"
    );
    assert_eq!(status["tasks"][0]["id"], id.as_str());
}
