//! `git agent plan "<goal>"`: the planner agent, validated like a plan file.

use crate::common::{agent, Repo};

fn configure_planner(repo: &Repo, mode: &str) {
    repo.write(
        ".git-agent.yaml",
        &format!(
            "roles:\n  planner:\n    command: [sh, {}, {mode}]\n    timeout: 60s\n",
            agent("planner.sh")
        ),
    );
}

#[test]
fn a_refused_plan_goes_back_to_the_planner_once_with_the_error() {
    let repo = Repo::new();
    configure_planner(&repo, "learns");
    let out = repo.json(&["plan", "Add a greeting"]);
    let tasks = out["tasks"].as_object().unwrap();
    assert_eq!(tasks.len(), 2);
    let greet = repo.task(tasks["greet"].as_str().unwrap());
    assert_eq!(greet["depends_on"], serde_json::json!([tasks["setup"]]));
    let second = std::fs::read_dir(repo.git_dir().join("agent/logs/planner"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.to_string_lossy().ends_with(".prompt.md")
                && p.file_name().unwrap().to_string_lossy().starts_with('2')
        })
        .expect("a second planner prompt");
    let prompt = std::fs::read_to_string(second).unwrap();
    assert!(
        prompt.contains("previous plan was refused") && prompt.contains("\"setup\""),
        "{prompt}"
    );
    assert!(
        prompt.contains("README.md"),
        "the prompt pictures the repository"
    );
}

#[test]
fn a_planner_refused_twice_writes_nothing_and_exits_2() {
    let repo = Repo::new();
    configure_planner(&repo, "always-bad");
    let err = repo.fails(2, &["plan", "Add a greeting"]);
    assert!(
        err.contains("refused twice") && err.contains("depends_on"),
        "{err}"
    );
    assert!(repo.agent_refs().is_empty());
}

#[test]
fn plan_dry_run_prints_the_planners_plan_and_writes_nothing() {
    let repo = Repo::new();
    configure_planner(&repo, "learns");
    let out = repo.ok(&["plan", "Add a greeting", "--dry-run"]);
    assert!(
        out.contains("greet") && out.contains("after setup"),
        "{out}"
    );
    assert!(repo.agent_refs().is_empty());
}

#[test]
fn without_a_planner_configured_plan_says_how_to_set_one() {
    let repo = Repo::new();
    let err = repo.fails(2, &["plan", "Anything"]);
    assert!(err.contains("roles.planner.command"), "{err}");
}
