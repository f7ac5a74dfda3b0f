//! `git agent status|ready|show|log`: the read commands, their JSON shapes,
//! and the derived cache that must never answer with stale state.

use crate::common::Repo;

#[test]
fn status_json_counts_every_state_and_lists_tasks_with_flags() {
    let repo = Repo::new();
    let a = repo.add("A", &[]);
    let b = repo.add("B", &["--depends-on", &a]);
    repo.ok(&[
        "claim",
        &a,
        "--actor",
        "w",
        "--pid",
        &std::process::id().to_string(),
    ]);
    let status = repo.json(&["status"]);
    assert_eq!(status["counts"]["in_progress"], 1);
    assert_eq!(status["counts"]["open"], 1);
    assert_eq!(status["counts"]["needs_human"], 0);
    let tasks = status["tasks"].as_array().unwrap();
    let b_view = tasks.iter().find(|t| t["id"] == b.as_str()).unwrap();
    assert_eq!(
        (b_view["ready"].clone(), b_view["blocked"].clone()),
        (false.into(), true.into())
    );
    let text = repo.ok(&["status"]);
    assert!(
        text.contains("in progress (1)") && text.contains("w (pid"),
        "{text}"
    );
    assert!(
        text.contains("blocked (1)") && text.contains(&format!("waits for {a}")),
        "{text}"
    );
}

#[test]
fn ready_lists_startable_tasks_in_start_order() {
    let repo = Repo::new();
    let low = repo.add("Low", &["--priority", "3"]);
    let high = repo.add("High", &["--priority", "0"]);
    let _blocked = repo.add("Blocked", &["--depends-on", &high]);
    let ready = repo.json(&["ready"]);
    let ids: Vec<&str> = ready
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [high.as_str(), low.as_str()]);
    let text = repo.ok(&["ready"]);
    assert!(text.starts_with(&high), "{text}");
}

#[test]
fn show_json_has_the_task_and_its_events_oldest_first() {
    let repo = Repo::new();
    let id = repo.add("Shown", &["--spec", "Do the thing."]);
    repo.ok(&["task", "edit", &id, "--priority", "0"]);
    let show = repo.json(&["show", &id]);
    assert_eq!(show["task"]["priority"], 0);
    assert_eq!(show["task"]["ready"], true);
    let events = show["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["created", "edited"]);
    assert_eq!(events[1]["data"]["priority"], 0);
    assert_eq!(events[1]["lamport"], 2);
    for key in ["id", "at", "actor", "role", "attempt"] {
        assert!(!events[0][key].is_null(), "event lacks {key}");
    }
    let text = repo.ok(&["show", &id]);
    assert!(
        text.contains("Do the thing.") && text.contains("history:"),
        "{text}"
    );
}

#[test]
fn log_json_merges_the_timelines_of_all_tasks() {
    let repo = Repo::new();
    let a = repo.add("A", &[]);
    let b = repo.add("B", &[]);
    repo.ok(&["task", "edit", &a, "--title", "A2"]);
    let log = repo.json(&["log"]);
    let entries = log.as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let tasks: Vec<&str> = entries
        .iter()
        .map(|e| e["task"].as_str().unwrap())
        .collect();
    assert!(tasks.contains(&a.as_str()) && tasks.contains(&b.as_str()));
    assert_eq!(entries.last().unwrap()["kind"], "edited");
    let one = repo.json(&["log", &b]);
    assert_eq!(one.as_array().unwrap().len(), 1);
}

#[test]
fn ids_are_accepted_by_unique_prefix() {
    let repo = Repo::new();
    let a = repo.add("A", &[]);
    let _b = repo.add("B", &[]);
    let show = repo.json(&["show", &a[..5]]);
    assert_eq!(show["task"]["id"], a.as_str());
    let err = repo.fails(2, &["show", "t-"]);
    assert!(err.contains("ambiguous"), "{err}");
    let err = repo.fails(2, &["show", "t-zzzzzzzz"]);
    assert!(err.contains("no task matches"), "{err}");
    let err = repo.fails(2, &["show", "../HEAD"]);
    assert!(err.contains("not a valid id"), "{err}");
}

/// The cache answers only while each entry's tip is the ref's tip.
#[test]
fn the_cache_never_answers_with_stale_state() {
    let repo = Repo::new();
    let id = repo.add("Cached", &[]);
    assert_eq!(repo.json(&["status"])["counts"]["open"], 1);
    let cache = repo.git_dir().join("agent/cache/tasks");
    assert!(cache.exists(), "status wrote the cache");
    // A change made by plain git, behind git-agent's back, is seen too.
    let tip = repo.git(&["rev-parse", &format!("refs/agent/tasks/{id}")]);
    repo.ok(&[
        "claim",
        &id,
        "--actor",
        "w",
        "--pid",
        &std::process::id().to_string(),
    ]);
    assert_eq!(repo.json(&["status"])["counts"]["in_progress"], 1);
    repo.git(&["update-ref", &format!("refs/agent/tasks/{id}"), &tip]);
    assert_eq!(repo.json(&["ready"]).as_array().unwrap().len(), 1);
    std::fs::remove_file(&cache).unwrap();
    assert_eq!(repo.json(&["status"])["tasks"][0]["id"], id.as_str());
}

/// A damaged cache line, even one naming the current tip, is read again
/// from the objects rather than copied to the output.
#[test]
fn a_damaged_cache_is_rebuilt_not_trusted() {
    let repo = Repo::new();
    let id = repo.add("Cached", &[]);
    repo.ok(&["status"]);
    let cache = repo.git_dir().join("agent/cache/tasks");
    let good = std::fs::read_to_string(&cache).unwrap();
    let header = good.lines().next().unwrap();
    let tip = repo.git(&["rev-parse", &format!("refs/agent/tasks/{id}")]);
    let fields = format!("{id} {tip} open 2 0 2026-01-01T00:00:00Z -");
    let damaged = [
        format!("{header}\n{fields} {{not json\n"),
        format!("{header}\n{fields} {{\"id\":\"t-other\",\"title\":\"Other\"}}\n"),
        format!("{header}\n{fields} {{\"id\":\"{id}\",\"title\":\"Cut"),
        format!("{header}\n{id} {tip} open\n"),
        format!("git-agent task cache v1\n{id} {tip} {{\"id\":\"{id}\"}}\n"),
    ];
    for file in damaged {
        std::fs::write(&cache, &file).unwrap();
        let ready = repo.json(&["ready"]);
        assert_eq!(ready[0]["title"], "Cached", "trusted:\n{file}");
        assert_eq!(
            std::fs::read_to_string(&cache).unwrap(),
            good,
            "not rebuilt:\n{file}"
        );
    }
}

#[test]
fn read_commands_outside_a_repository_fail_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::common::BIN)
        .args(["status"])
        .current_dir(dir.path())
        .env("GIT_CEILING_DIRECTORIES", dir.path().parent().unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not inside a git repository"));
}

/// A task whose fields cannot stand in a cache line (here a dependency with
/// a space, written with plain git) is read from its objects every time,
/// and listed like any other.
#[test]
fn a_task_the_cache_cannot_hold_is_still_listed() {
    let repo = Repo::new();
    let normal = repo.add("Normal", &[]);
    let json = repo.git(&["show", &format!("refs/agent/tasks/{normal}:task.json")]);
    let mut odd: serde_json::Value = serde_json::from_str(&json).unwrap();
    odd["id"] = "t-odd".into();
    odd["title"] = "Odd".into();
    odd["depends_on"] = serde_json::json!(["has space"]);
    repo.write("odd.json", &odd.to_string());
    let blob = repo.git(&["hash-object", "-w", "odd.json"]);
    let tree = git_with_stdin(
        &repo,
        &["mktree"],
        &format!("100644 blob {blob}\ttask.json\n"),
    );
    let commit = repo.git(&["commit-tree", &tree, "-m", "made by hand"]);
    repo.git(&["update-ref", "refs/agent/tasks/t-odd", &commit]);
    for _ in 0..2 {
        let status = repo.json(&["status"]);
        let odd = status["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == "t-odd")
            .expect("the odd task is listed");
        assert_eq!(
            (odd["title"].as_str(), odd["blocked"].as_bool()),
            (Some("Odd"), Some(true))
        );
    }
    let cache = std::fs::read_to_string(repo.git_dir().join("agent/cache/tasks")).unwrap();
    assert!(
        cache.contains(&normal) && !cache.contains("t-odd"),
        "{cache}"
    );
}

fn git_with_stdin(repo: &Repo, args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut cmd = std::process::Command::new("git");
    repo.env(&mut cmd);
    let mut child = cmd
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git {args:?} failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
