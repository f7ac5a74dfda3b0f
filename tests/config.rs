//! The team config: read from one place, checked whole before anything is
//! claimed or written, and every refusal placed on a line.

use crate::common::{agent, Repo, BIN};
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `git-agent <args>` with the repo's environment, run in `dir`.
fn run_in(repo: &Repo, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    repo.env(&mut cmd);
    cmd.current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run git-agent")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn commit_config(repo: &Repo, yaml: &str) {
    repo.write(".git-agent.yaml", yaml);
    repo.git(&["add", ".git-agent.yaml"]);
    repo.git(&["commit", "-q", "-m", "Configure git-agent"]);
}

#[test]
fn a_task_worktree_never_supplies_the_config() {
    let repo = Repo::new();
    commit_config(
        &repo,
        "target: main\nroles:\n  implementer:\n    command: [sh, x.sh]\n    max_attempts: 3\n",
    );
    let id = repo.add("Existing", &[]);
    let wt = repo.home().join("wt");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "agent/x",
        wt.to_str().unwrap(),
    ]);
    // What an agent might write on its branch.
    std::fs::write(
        wt.join(".git-agent.yaml"),
        "target: evil\nroles:\n  implementer:\n    command: [sh, x.sh]\n    max_attempts: 9\n",
    )
    .unwrap();

    let added = stdout(&run_in(&repo, &wt, &["task", "add", "From the worktree"]));
    assert_eq!(repo.task(&added)["max_attempts"], 3);
    let context = stdout(&run_in(&repo, &wt, &["context", &id]));
    assert!(context.contains("main"), "{context}");
    assert!(!context.contains("evil"), "{context}");
    // A broken file in the worktree breaks nothing either.
    std::fs::write(wt.join(".git-agent.yaml"), "parallel: [\n").unwrap();
    stdout(&run_in(&repo, &wt, &["task", "add", "Still fine"]));
}

#[test]
fn a_hub_made_by_plain_init_bare_reads_the_config_of_main() {
    let repo = Repo::new();
    commit_config(
        &repo,
        "roles:\n  implementer:\n    command: [sh, x.sh]\n    max_attempts: 7\n",
    );
    let hub = repo.home().join("hub.git");
    let format = format!("--ref-format={}", repo.ref_format());
    // HEAD names master, which never exists: the hub is pushed a main.
    repo.git(&[
        "init",
        "-q",
        "--bare",
        "-b",
        "master",
        &format,
        hub.to_str().unwrap(),
    ]);
    repo.git(&["push", "-q", hub.to_str().unwrap(), "main"]);
    let id = stdout(&run_in(&repo, &hub, &["task", "add", "On the hub"]));
    let show = stdout(&run_in(&repo, &hub, &["show", &id, "--json"]));
    assert!(show.contains("\"max_attempts\":7"), "{show}");

    // `agent.target` names another branch: its file counts.
    repo.git(&["checkout", "-q", "-b", "release"]);
    commit_config(
        &repo,
        "target: release\nroles:\n  implementer:\n    command: [sh, x.sh]\n    max_attempts: 2\n",
    );
    repo.git(&["push", "-q", hub.to_str().unwrap(), "release"]);
    let git_dir = format!("--git-dir={}", hub.display());
    repo.git(&[&git_dir, "config", "agent.target", "release"]);
    let id = stdout(&run_in(&repo, &hub, &["task", "add", "On release"]));
    let show = stdout(&run_in(&repo, &hub, &["show", &id, "--json"]));
    assert!(show.contains("\"max_attempts\":2"), "{show}");

    // A broken config on the hub's branch is refused by branch and line.
    commit_config(&repo, "target: release\nparalel: 2\n");
    repo.git(&["push", "-q", hub.to_str().unwrap(), "release"]);
    let out = run_in(&repo, &hub, &["task", "add", "Refused"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("release:.git-agent.yaml:2: paralel"), "{err}");
}

/// Configs that cannot work, each with the line and the words its refusal
/// must hold.
const UNWORKABLE: &[(&str, usize, &str)] = &[
    (
        "target: nosuch\nroles:\n  implementer:\n    command: [IMPL]\n",
        1,
        "the branch \"nosuch\" does not exist",
    ),
    (
        "target: main\nroles:\n  implementer:\n    command: [\"\"]\n",
        4,
        "roles.implementer.command: the program (its first word) is empty",
    ),
    (
        "target: main\nroles:\n  implementer:\n    command: [no-such-agent-program]\n",
        3,
        "`no-such-agent-program` is not on PATH",
    ),
    (
        "roles:\n  implementer:\n    command: [IMPL]\n    timeout: 0s\n",
        4,
        "roles.implementer.timeout: \"0s\" is no time at all",
    ),
    (
        "roles:\n  implementer:\n    command: [IMPL]\n    timeout: 99999999999999999d\n",
        4,
        "out of range (at most 365d)",
    ),
    (
        "integrate:\n  test_timeout: 18446744073709551615m\nroles:\n  implementer:\n    command: [IMPL]\n",
        2,
        "integrate.test_timeout: \"18446744073709551615m\" is out of range",
    ),
    (
        "worktrees: .agent/trees\nroles:\n  implementer:\n    command: [IMPL]\n",
        1,
        "worktrees: \".agent/trees\" is inside the main working tree",
    ),
    (
        "worktrees: sub/../../repo/inside\nroles:\n  implementer:\n    command: [IMPL]\n",
        1,
        "is inside the main working tree",
    ),
];

#[test]
fn an_unworkable_config_is_refused_by_line_before_anything_is_claimed() {
    let repo = Repo::new();
    let id = repo.add("Waits", &[]);
    let refs = repo.agent_refs();
    for (yaml, line, words) in UNWORKABLE {
        let yaml = yaml.replace("IMPL", &format!("sh, {}", agent("implementer.sh")));
        repo.write(".git-agent.yaml", &yaml);
        for args in [&["run"][..], &["work", &id][..]] {
            let out = repo.run(args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?} on {yaml}: {err}");
            let at = format!(".git-agent.yaml:{line}: ");
            assert!(err.contains(&at), "{args:?}: expected {at} in {err}");
            assert!(err.contains(words), "{args:?}: expected {words:?} in {err}");
            assert!(!err.contains("panicked"), "{err}");
            assert_eq!(repo.agent_refs(), refs, "{args:?} wrote refs for {yaml}");
            assert_eq!(repo.state(&id), "open");
        }
    }
}

/// Plans that do not parse, with the line, the field and words the refusal
/// must hold, and what it must not say.
const BAD_PLANS: &[(&[u8], usize, &str, &str)] = &[
    (
        b"tasks:\n  - key: a\n    title: A\n  - key: b\n    title: B\n    priority: high\n",
        6,
        "tasks[1].priority: expected a whole number, found the text \"high\"",
        "i64",
    ),
    (
        b"- a\n- b\n",
        1,
        "yaml: expected a map of keys (goal, tasks), found a list",
        "struct",
    ),
    (
        b"tasks: [{key: a, title: A},\n  {key: b, title: B, priority: x}]\n",
        2,
        "tasks[1].priority: expected a whole number",
        "tasks[1].priority: tasks[1].priority",
    ),
    (
        b"tasks:\n  - key: a\n    title: \"\xff\"\n",
        3,
        "not UTF-8 text",
        "stream did not contain",
    ),
    (
        b"tasks:\n  - key: a\n\n    title: x\0\n",
        4,
        "holds a NUL byte",
        "panicked",
    ),
    (
        b"goal: g\ngoal: h\ntasks: []\n",
        2,
        "goal: given twice",
        "duplicate field",
    ),
    (
        b"tasks:\n  - key: a\n    title: A\n    scope: {a: b}\n",
        4,
        "tasks[0].scope: expected a list, found a map",
        "sequence",
    ),
];

#[test]
fn a_bad_plan_is_refused_in_words_a_user_knows_on_its_line() {
    let repo = Repo::new();
    for (bytes, line, words, never) in BAD_PLANS {
        std::fs::write(repo.path().join("plan.yaml"), bytes).unwrap();
        let err = repo.fails(2, &["plan", "--file", "plan.yaml"]);
        let at = format!("plan.yaml:{line}: ");
        let shown = String::from_utf8_lossy(bytes);
        assert!(err.contains(&at), "{shown}: expected {at} in {err}");
        assert!(err.contains(words), "{shown}: expected {words:?} in {err}");
        assert!(!err.contains(never), "{shown}: {never:?} leaked in {err}");
        assert!(repo.agent_refs().is_empty(), "{shown} wrote refs");
    }
}

#[test]
fn aliases_that_expand_past_the_bound_are_refused_and_nothing_is_written() {
    let repo = Repo::new();
    // 8 KB that would store 1.5 MB: under serde_yaml's own limit, over ours.
    let plan = format!(
        "tasks:\n  - key: a\n    title: A\n    spec: &s {}\n    labels: [{}]\n",
        "x".repeat(1000),
        ["*s"; 1500].join(", ")
    );
    repo.write("plan.yaml", &plan);
    let err = repo.fails(2, &["plan", "--file", "plan.yaml"]);
    assert!(err.contains("expands through its aliases"), "{err}");
    assert!(err.contains("1048576 bytes"), "{err}");
    assert!(repo.agent_refs().is_empty());

    let mut laughs = String::from("test: &a0 [lol]\n");
    for i in 1..12 {
        let p = i - 1;
        laughs.push_str(&format!(
            "x{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    repo.write(".git-agent.yaml", &laughs);
    let err = repo.fails(2, &["task", "add", "x"]);
    assert!(err.contains(".git-agent.yaml:"), "{err}");
    assert!(err.contains("expands through its aliases"), "{err}");
    assert!(repo.agent_refs().is_empty());
}
