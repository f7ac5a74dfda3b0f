//! git-agent's hooks beside the real hook managers (lefthook, husky,
//! pre-commit, as `.ci/hook-managers` pins them), installed in either order
//! and reinstalled: the pre-push gate keeps running, or `hooks status` and
//! every `integrate` say that it does not; `uninstall` leaves what the
//! manager would have left had git-agent never been there.

use crate::common::{hook_manager, hook_managers_dir, path_with_bin, Repo};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `PATH` with the hook managers in front of the binary under test.
fn path_with_managers() -> std::ffi::OsString {
    let mut dirs = vec![hook_managers_dir()];
    dirs.extend(std::env::split_paths(&path_with_bin()));
    std::env::join_paths(dirs).unwrap()
}

/// Run `program args` in the repo, the managers on `PATH` (so the hooks
/// they write find them too).
fn run(repo: &Repo, program: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(program);
    repo.env(&mut cmd);
    cmd.env("PATH", path_with_managers()).args(args);
    cmd.output().expect("run")
}

fn ok(repo: &Repo, program: &str, args: &[&str]) -> String {
    let out = run(repo, program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn agent(repo: &Repo, args: &[&str]) -> String {
    let bin = env!("CARGO_BIN_EXE_git-agent");
    ok(repo, bin, args)
}

/// The pre-push entry of `hooks status --json`.
fn pre_push(repo: &Repo) -> Value {
    let out = agent(repo, &["hooks", "status", "--json"]);
    let status: Value = serde_json::from_str(&out).unwrap();
    status["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "pre-push")
        .cloned()
        .unwrap()
}

/// A repo with a config, a bare hub as `origin`, and a config file for the
/// manager committed (`file`, `content`).
fn project(file: &str, content: &str) -> (Repo, PathBuf) {
    let repo = Repo::new();
    repo.configure("60s", 3, "test: 'true'\n");
    if let Some(dir) = Path::new(file).parent() {
        std::fs::create_dir_all(repo.path().join(dir)).unwrap();
    }
    repo.write(file, content);
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "hook manager config"]);
    let hub = repo.home().join("hub.git");
    repo.git(&["init", "-q", "--bare", "-b", "main", hub.to_str().unwrap()]);
    repo.git(&["remote", "add", "origin", hub.to_str().unwrap()]);
    repo.git(&["push", "-q", "--no-verify", "origin", "main"]);
    (repo, hub)
}

/// Merge unreviewed agent work into main and push it: the gate must refuse
/// it, once, after the manager's own pre-push hook ran (it writes
/// `marker`). Undoes the merge afterwards.
fn push_is_refused_after_the_managers_hook(repo: &Repo, hub: &Path, marker: &str) {
    let id = repo.add("Unreviewed", &[]);
    repo.git(&["checkout", "-q", "-b", &format!("agent/{id}"), "main"]);
    repo.write(&format!("{id}.txt"), "work\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "work"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "merge",
        &format!("agent/{id}"),
    ]);
    let _ = std::fs::remove_file(repo.path().join(marker));
    let before = Command::new("git")
        .args(["rev-parse", "main"])
        .current_dir(hub)
        .output()
        .unwrap()
        .stdout;

    let out = run(repo, "git", &["push", "origin", "main"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the push went through: {err}");
    assert_eq!(
        err.matches("refusing to push to main").count(),
        1,
        "the gate ran once: {err}"
    );
    assert!(
        repo.path().join(marker).exists(),
        "the manager's hook ran first: {err}"
    );
    let after = Command::new("git")
        .args(["rev-parse", "main"])
        .current_dir(hub)
        .output()
        .unwrap()
        .stdout;
    assert_eq!(before, after, "the hub's main did not move");
    repo.git(&["reset", "-q", "--hard", "HEAD^"]);
    let _ = std::fs::remove_file(repo.path().join(marker));
}

/// Every file in `dir` whose name starts with `pre-push`, with its bytes.
fn pre_push_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("pre-push") && !name.ends_with(".sample")
        })
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// `integrate` says the gate is missing, and why.
fn integrate_warns(repo: &Repo, why: &str) {
    let out = run(repo, env!("CARGO_BIN_EXE_git-agent"), &["integrate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: the pre-push gate is not in place") && err.contains(why),
        "{err}"
    );
}

fn integrate_is_quiet_about_the_gate(repo: &Repo) {
    let out = run(repo, env!("CARGO_BIN_EXE_git-agent"), &["integrate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("pre-push gate"), "{err}");
}

const LEFTHOOK: &str = "pre-push:\n  commands:\n    mark:\n      run: touch lefthook-ran\n";

#[test]
fn lefthook_installed_after_git_agent_is_chained_again_and_uninstall_leaves_lefthooks_hooks() {
    let Some(lefthook) = hook_manager("lefthook") else {
        return;
    };
    let lefthook = lefthook.to_str().unwrap();
    let (repo, hub) = project("lefthook.yml", LEFTHOOK);
    let hooks = repo.git_dir().join("hooks");
    agent(&repo, &["hooks", "install"]);
    integrate_is_quiet_about_the_gate(&repo);
    ok(&repo, lefthook, &["install"]);
    let lefthooks = std::fs::read(hooks.join("pre-push")).unwrap();

    // lefthook renamed the shim to pre-push.old, which it never runs.
    let state = pre_push(&repo);
    assert_eq!(state["runs"], false, "{state}");
    assert_eq!(state["manager"], "lefthook", "{state}");
    let note = state["note"].as_str().unwrap();
    assert!(
        note.contains("pre-push.old") && note.contains("does not run it"),
        "{note}"
    );
    integrate_warns(&repo, "pre-push.old");
    let out = run(&repo, env!("CARGO_BIN_EXE_git-agent"), &["doctor"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.lines()
            .any(|l| l.contains("hook pre-push: lefthook moved")
                && l.contains("git agent hooks install")),
        "{said}"
    );

    agent(&repo, &["hooks", "install"]);
    assert_eq!(pre_push(&repo)["runs"], true);
    assert!(
        !hooks.join("pre-push.old").exists(),
        "the shim was taken back"
    );
    integrate_is_quiet_about_the_gate(&repo);
    push_is_refused_after_the_managers_hook(&repo, &hub, "lefthook-ran");

    // lefthook installs again (its config changed): the same again.
    ok(&repo, lefthook, &["install"]);
    assert_eq!(pre_push(&repo)["runs"], false);
    let out = agent(&repo, &["hooks", "install"]);
    assert!(out.contains("lefthook's hook runs first"), "{out}");
    push_is_refused_after_the_managers_hook(&repo, &hub, "lefthook-ran");

    agent(&repo, &["hooks", "uninstall"]);
    assert_eq!(
        pre_push_files(&hooks),
        vec![("pre-push".to_string(), lefthooks)],
        "only lefthook's hook is left, byte for byte"
    );
    // And lefthook installs over it as over its own.
    ok(&repo, lefthook, &["install"]);
    assert_eq!(pre_push_files(&hooks).len(), 1);
}

#[test]
fn git_agent_installed_after_lefthook_survives_lefthook_reinstalling() {
    let Some(lefthook) = hook_manager("lefthook") else {
        return;
    };
    let lefthook = lefthook.to_str().unwrap();
    let (repo, hub) = project("lefthook.yml", LEFTHOOK);
    let hooks = repo.git_dir().join("hooks");
    ok(&repo, lefthook, &["install"]);
    let lefthooks = std::fs::read(hooks.join("pre-push")).unwrap();
    agent(&repo, &["hooks", "install"]);
    push_is_refused_after_the_managers_hook(&repo, &hub, "lefthook-ran");

    ok(&repo, lefthook, &["install"]);
    let state = pre_push(&repo);
    assert_eq!(state["runs"], false, "{state}");
    agent(&repo, &["hooks", "install"]);
    assert_eq!(pre_push(&repo)["runs"], true);
    push_is_refused_after_the_managers_hook(&repo, &hub, "lefthook-ran");

    agent(&repo, &["hooks", "uninstall"]);
    assert_eq!(
        pre_push_files(&hooks),
        vec![("pre-push".to_string(), lefthooks)]
    );
}

const HUSKY_PRE_PUSH: &str = "touch husky-ran\n";

#[test]
fn husky_moving_and_rewriting_the_hooks_is_seen_and_put_right() {
    let Some(husky) = hook_manager("husky") else {
        return;
    };
    let husky = husky.to_str().unwrap();
    let (repo, hub) = project(".husky/pre-push", HUSKY_PRE_PUSH);
    agent(&repo, &["hooks", "install"]);
    ok(&repo, husky, &[]);
    assert_eq!(repo.git(&["config", "core.hooksPath"]).trim(), ".husky/_");
    let husky_dir = repo.path().join(".husky/_");
    let huskys = std::fs::read(husky_dir.join("pre-push")).unwrap();

    // husky pointed git at .husky/_: the shims in .git/hooks no longer run.
    let state = pre_push(&repo);
    assert_eq!(state["runs"], false, "{state}");
    assert!(
        state["note"].as_str().unwrap().contains("core.hooksPath"),
        "{state}"
    );
    integrate_warns(&repo, "core.hooksPath");

    agent(&repo, &["hooks", "install"]);
    assert_eq!(pre_push(&repo)["runs"], true);
    push_is_refused_after_the_managers_hook(&repo, &hub, "husky-ran");

    // `npm install` runs husky again, which rewrites every hook in .husky/_.
    ok(&repo, husky, &[]);
    let state = pre_push(&repo);
    assert_eq!(state["runs"], false, "{state}");
    assert_eq!(state["manager"], "husky", "{state}");
    assert!(
        state["note"].as_str().unwrap().contains("overwrote"),
        "{state}"
    );
    integrate_warns(&repo, "overwrote");
    let out = agent(&repo, &["hooks", "install"]);
    assert!(out.contains("husky's hook runs first"), "{out}");
    push_is_refused_after_the_managers_hook(&repo, &hub, "husky-ran");

    agent(&repo, &["hooks", "uninstall"]);
    assert_eq!(
        pre_push_files(&husky_dir),
        vec![("pre-push".to_string(), huskys)]
    );
    assert!(
        pre_push_files(&repo.git_dir().join("hooks")).is_empty(),
        "nothing of ours is left in .git/hooks either"
    );
}

const PRE_COMMIT: &str = "repos:\n- repo: local\n  hooks:\n  - id: mark\n    name: mark\n    entry: touch pre-commit-ran\n    language: system\n    stages: [pre-push]\n    always_run: true\n    pass_filenames: false\n";

#[test]
fn pre_commit_running_the_shim_it_moved_is_in_place_and_never_a_loop() {
    let Some(pre_commit) = hook_manager("pre-commit") else {
        return;
    };
    let pre_commit = pre_commit.to_str().unwrap();
    let (repo, hub) = project(".pre-commit-config.yaml", PRE_COMMIT);
    let hooks = repo.git_dir().join("hooks");
    agent(&repo, &["hooks", "install"]);
    ok(&repo, pre_commit, &["install", "-t", "pre-push"]);
    let pre_commits = std::fs::read(hooks.join("pre-push")).unwrap();

    // Migration mode: the shim is pre-push.legacy, and pre-commit runs it.
    let state = pre_push(&repo);
    assert_eq!(state["runs"], true, "{state}");
    assert_eq!(state["manager"], "pre-commit", "{state}");
    assert!(
        state["note"].as_str().unwrap().contains("pre-push.legacy"),
        "{state}"
    );
    integrate_is_quiet_about_the_gate(&repo);
    let out = run(&repo, env!("CARGO_BIN_EXE_git-agent"), &["doctor"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.lines()
            .any(|l| l.starts_with("ok") && l.contains("pre-commit runs the shim from")),
        "{said}"
    );
    push_is_refused_after_the_managers_hook(&repo, &hub, "pre-commit-ran");

    // A second install leaves it so: no chain back to pre-commit's hook.
    agent(&repo, &["hooks", "install"]);
    assert!(!hooks.join("pre-push.git-agent-chained").exists());
    push_is_refused_after_the_managers_hook(&repo, &hub, "pre-commit-ran");

    agent(&repo, &["hooks", "uninstall"]);
    assert_eq!(
        pre_push_files(&hooks),
        vec![("pre-push".to_string(), pre_commits)]
    );
}

#[test]
fn git_agent_after_pre_commit_stands_where_pre_commit_runs_it_and_a_loop_is_undone() {
    let Some(pre_commit) = hook_manager("pre-commit") else {
        return;
    };
    let pre_commit = pre_commit.to_str().unwrap();
    let (repo, hub) = project(".pre-commit-config.yaml", PRE_COMMIT);
    let hooks = repo.git_dir().join("hooks");
    ok(&repo, pre_commit, &["install", "-t", "pre-push"]);
    let pre_commits = std::fs::read(hooks.join("pre-push")).unwrap();
    let out = agent(&repo, &["hooks", "install"]);
    assert!(
        out.contains("pre-push.legacy, where pre-commit runs it"),
        "{out}"
    );
    assert_eq!(std::fs::read(hooks.join("pre-push")).unwrap(), pre_commits);
    push_is_refused_after_the_managers_hook(&repo, &hub, "pre-commit-ran");

    // pre-commit installs again over its own hook: nothing moves.
    ok(&repo, pre_commit, &["install", "-t", "pre-push"]);
    assert_eq!(pre_push(&repo)["runs"], true);
    push_is_refused_after_the_managers_hook(&repo, &hub, "pre-commit-ran");

    // The loop an earlier layout could leave (the shim at the path chaining
    // pre-commit's hook, and a copy of the shim at .legacy): every push
    // fails in pre-commit, and git-agent's gate never runs.
    let shim = std::fs::read(hooks.join("pre-push.legacy")).unwrap();
    std::fs::copy(
        hooks.join("pre-push"),
        hooks.join("pre-push.git-agent-chained"),
    )
    .unwrap();
    std::fs::write(hooks.join("pre-push"), &shim).unwrap();
    let state = pre_push(&repo);
    assert_eq!(state["runs"], false, "{state}");
    assert!(
        state["note"].as_str().unwrap().contains("a loop"),
        "{state}"
    );
    integrate_warns(&repo, "a loop");
    let out = agent(&repo, &["hooks", "install"]);
    assert!(out.contains("put pre-commit's hook back"), "{out}");
    assert_eq!(pre_push(&repo)["runs"], true);
    push_is_refused_after_the_managers_hook(&repo, &hub, "pre-commit-ran");

    agent(&repo, &["hooks", "uninstall"]);
    assert_eq!(
        pre_push_files(&hooks),
        vec![("pre-push".to_string(), pre_commits)]
    );
}

#[test]
fn a_users_hook_that_pre_commit_moved_to_legacy_keeps_running_and_comes_back() {
    let Some(pre_commit) = hook_manager("pre-commit") else {
        return;
    };
    let pre_commit = pre_commit.to_str().unwrap();
    let (repo, hub) = project(".pre-commit-config.yaml", PRE_COMMIT);
    let hooks = repo.git_dir().join("hooks");
    let users = b"#!/bin/sh\ntouch user-ran\n".to_vec();
    std::fs::write(hooks.join("pre-push"), &users).unwrap();
    std::fs::set_permissions(
        hooks.join("pre-push"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    ok(&repo, pre_commit, &["install", "-t", "pre-push"]);
    let pre_commits = std::fs::read(hooks.join("pre-push")).unwrap();
    agent(&repo, &["hooks", "install"]);
    // pre-commit installs again (it would overwrite .legacy had the shim
    // been at the path).
    ok(&repo, pre_commit, &["install", "-t", "pre-push"]);
    assert_eq!(pre_push(&repo)["runs"], true);
    let user_ran = repo.path().join("user-ran");
    let _ = std::fs::remove_file(&user_ran);
    push_is_refused_after_the_managers_hook(&repo, &hub, "pre-commit-ran");
    assert!(user_ran.exists(), "the user's own hook still runs");

    agent(&repo, &["hooks", "uninstall"]);
    assert_eq!(
        pre_push_files(&hooks),
        vec![
            ("pre-push".to_string(), pre_commits),
            ("pre-push.legacy".to_string(), users)
        ],
        "as pre-commit alone would have left them"
    );
}

#[test]
fn a_repository_without_the_gate_is_warned_on_every_integrate() {
    let repo = Repo::new();
    repo.configure("60s", 3, "test: 'true'\n");
    integrate_warns(&repo, "git agent hooks install");
    repo.ok(&["hooks", "install"]);
    integrate_is_quiet_about_the_gate(&repo);
}

/// A hook of the user's that counts its runs in `user-ran`.
const USERS_PRE_PUSH: &[u8] = b"#!/bin/sh\necho ran >>user-ran\n";

fn write_users_hook(path: &Path) {
    std::fs::write(path, USERS_PRE_PUSH).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// How often the user's hook ran since the last call.
fn users_hook_runs(repo: &Repo) -> usize {
    let file = repo.path().join("user-ran");
    let runs = std::fs::read_to_string(&file).map_or(0, |s| s.lines().count());
    let _ = std::fs::remove_file(&file);
    runs
}

/// The refused push runs lefthook's hook, the user's hook once, and the
/// gate once.
fn push_runs_lefthook_the_users_hook_and_the_gate(repo: &Repo, hub: &Path) {
    users_hook_runs(repo);
    push_is_refused_after_the_managers_hook(repo, hub, "lefthook-ran");
    assert_eq!(users_hook_runs(repo), 1, "the user's hook ran once");
}

#[test]
fn a_users_hook_that_lefthook_moved_to_old_runs_once_beside_git_agent_and_comes_back() {
    let Some(lefthook) = hook_manager("lefthook") else {
        return;
    };
    let lefthook = lefthook.to_str().unwrap();
    let (repo, hub) = project("lefthook.yml", LEFTHOOK);
    let hooks = repo.git_dir().join("hooks");
    write_users_hook(&hooks.join("pre-push"));
    ok(&repo, lefthook, &["install"]);
    let lefthooks = std::fs::read(hooks.join("pre-push")).unwrap();
    let alone = pre_push_files(&hooks);
    assert_eq!(
        alone,
        vec![
            ("pre-push".to_string(), lefthooks.clone()),
            ("pre-push.old".to_string(), USERS_PRE_PUSH.to_vec())
        ],
        "lefthook moved the user's hook to pre-push.old"
    );

    let out = agent(&repo, &["hooks", "install"]);
    assert!(
        out.contains("your earlier hook runs first, from") && out.contains("then lefthook's hook"),
        "{out}"
    );
    let state = pre_push(&repo);
    assert_eq!(
        (&state["runs"], &state["earlier"], &state["note"]),
        (&Value::Bool(true), &Value::Bool(true), &Value::Null),
        "{state}"
    );
    let said = agent(&repo, &["hooks", "status"]);
    assert!(
        said.contains("runs your earlier hook, then lefthook's hook, first"),
        "{said}"
    );
    push_runs_lefthook_the_users_hook_and_the_gate(&repo, &hub);

    // pre-push.old is free, so lefthook installs again (it moves the shim
    // there), and git-agent puts it right again.
    assert!(!hooks.join("pre-push.old").exists());
    ok(&repo, lefthook, &["install"]);
    let state = pre_push(&repo);
    assert_eq!(state["runs"], false, "{state}");
    let note = state["note"].as_str().unwrap();
    assert!(
        note.contains("does not run it, nor your earlier hook at"),
        "{note}"
    );
    agent(&repo, &["hooks", "install"]);
    assert_eq!(pre_push(&repo)["runs"], true);
    push_runs_lefthook_the_users_hook_and_the_gate(&repo, &hub);
    let again = agent(&repo, &["hooks", "install"]);
    assert!(again.contains("up to date"), "{again}");

    agent(&repo, &["hooks", "uninstall"]);
    assert_eq!(
        pre_push_files(&hooks),
        alone,
        "as lefthook and the user's hook had them, byte for byte"
    );
    ok(&repo, lefthook, &["install"]);
    assert_eq!(pre_push_files(&hooks), alone);
}

#[test]
fn a_users_hook_chained_before_lefthook_installs_runs_once_and_survives_lefthook_uninstall() {
    let Some(lefthook) = hook_manager("lefthook") else {
        return;
    };
    let lefthook = lefthook.to_str().unwrap();
    let (repo, hub) = project("lefthook.yml", LEFTHOOK);
    let hooks = repo.git_dir().join("hooks");
    write_users_hook(&hooks.join("pre-push"));
    agent(&repo, &["hooks", "install"]);
    ok(&repo, lefthook, &["install"]);

    // lefthook moved the shim to pre-push.old: neither the gate nor the
    // user's hook (chained by the shim) runs.
    let state = pre_push(&repo);
    assert_eq!(state["runs"], false, "{state}");
    let note = state["note"].as_str().unwrap();
    assert!(
        note.contains("nor your earlier hook at") && note.contains("pre-push.git-agent-chained"),
        "{note}"
    );
    agent(&repo, &["hooks", "install"]);
    assert_eq!(pre_push(&repo)["earlier"], true);
    push_runs_lefthook_the_users_hook_and_the_gate(&repo, &hub);

    // lefthook uninstall removes its hooks and renames each X.old back to
    // X: the shim chains the user's hook alone.
    ok(&repo, lefthook, &["uninstall"]);
    let state = pre_push(&repo);
    assert_eq!(
        (&state["runs"], &state["chained"], &state["earlier"]),
        (&Value::Bool(true), &Value::Bool(true), &Value::Bool(false)),
        "{state}"
    );
    users_hook_runs(&repo);
    let id = repo.add("Unreviewed", &[]);
    repo.git(&["checkout", "-q", "-b", &format!("agent/{id}"), "main"]);
    repo.write(&format!("{id}.txt"), "work\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "work"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "merge",
        &format!("agent/{id}"),
    ]);
    let out = run(&repo, "git", &["push", "origin", "main"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert_eq!(err.matches("refusing to push to main").count(), 1, "{err}");
    assert_eq!(users_hook_runs(&repo), 1);
    repo.git(&["reset", "-q", "--hard", "HEAD^"]);

    agent(&repo, &["hooks", "uninstall"]);
    assert_eq!(
        pre_push_files(&hooks),
        vec![("pre-push".to_string(), USERS_PRE_PUSH.to_vec())]
    );
}

#[test]
fn the_users_hook_an_earlier_layout_left_at_old_is_reported_and_chained() {
    let Some(lefthook) = hook_manager("lefthook") else {
        return;
    };
    let lefthook = lefthook.to_str().unwrap();
    let (repo, hub) = project("lefthook.yml", LEFTHOOK);
    let hooks = repo.git_dir().join("hooks");
    ok(&repo, lefthook, &["install"]);
    agent(&repo, &["hooks", "install"]);
    // What earlier versions left after user hook, lefthook, git-agent: the
    // user's hook at pre-push.old, where nothing runs it.
    write_users_hook(&hooks.join("pre-push.old"));
    let refused = run(&repo, lefthook, &["install"]);
    assert!(!refused.status.success(), "lefthook install fails so");

    let state = pre_push(&repo);
    assert_eq!(state["runs"], true, "{state}");
    let note = state["note"].as_str().unwrap();
    assert!(
        note.contains("pre-push.old") && note.contains("`lefthook install` fails"),
        "{note}"
    );
    let out = run(&repo, env!("CARGO_BIN_EXE_git-agent"), &["doctor"]);
    assert_eq!(out.status.code(), Some(1), "doctor calls it a problem");

    let out = agent(&repo, &["hooks", "install"]);
    assert!(out.contains("your earlier hook runs first again"), "{out}");
    assert_eq!(pre_push(&repo)["note"], Value::Null);
    push_runs_lefthook_the_users_hook_and_the_gate(&repo, &hub);
    ok(&repo, lefthook, &["install"]);
}

#[test]
fn a_changed_copy_of_lefthooks_hook_is_kept_and_install_says_why() {
    let Some(lefthook) = hook_manager("lefthook") else {
        return;
    };
    let lefthook = lefthook.to_str().unwrap();
    let (repo, hub) = project("lefthook.yml", LEFTHOOK);
    let hooks = repo.git_dir().join("hooks");
    ok(&repo, lefthook, &["install"]);
    agent(&repo, &["hooks", "install"]);
    let chained = hooks.join("pre-push.git-agent-chained");
    let mut edited = std::fs::read(&chained).unwrap();
    edited.extend_from_slice(b"echo my change\n");
    std::fs::write(&chained, &edited).unwrap();
    ok(&repo, lefthook, &["install"]);

    let state = pre_push(&repo);
    assert_eq!(state["runs"], false, "{state}");
    let note = state["note"].as_str().unwrap();
    assert!(
        note.contains("changed after git-agent moved it there"),
        "{note}"
    );
    let before = pre_push_files(&hooks);
    let out = run(
        &repo,
        env!("CARGO_BIN_EXE_git-agent"),
        &["hooks", "install"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("pre-push.git-agent-chained") && err.contains("changed after"),
        "{err}"
    );
    assert_eq!(pre_push_files(&hooks), before, "nothing moved");
    assert_eq!(std::fs::read(&chained).unwrap(), edited);

    std::fs::remove_file(&chained).unwrap();
    agent(&repo, &["hooks", "install"]);
    assert_eq!(pre_push(&repo)["runs"], true);
    push_is_refused_after_the_managers_hook(&repo, &hub, "lefthook-ran");
}

#[test]
fn lefthook_rewriting_its_hook_for_a_new_config_is_chained_again() {
    let Some(lefthook) = hook_manager("lefthook") else {
        return;
    };
    let lefthook = lefthook.to_str().unwrap();
    let (repo, hub) = project("lefthook.yml", LEFTHOOK);
    let hooks = repo.git_dir().join("hooks");
    ok(&repo, lefthook, &["install"]);
    let first = std::fs::read(hooks.join("pre-push")).unwrap();
    agent(&repo, &["hooks", "install"]);
    repo.write("lefthook.yml", &format!("rc: ./lefthookrc\n{LEFTHOOK}"));
    repo.git(&["commit", "-q", "-am", "lefthook rc"]);
    ok(&repo, lefthook, &["install"]);
    let second = std::fs::read(hooks.join("pre-push")).unwrap();
    assert_ne!(first, second, "lefthook wrote a different hook");

    // The chained copy is the one install moved there: not the user's.
    let out = agent(&repo, &["hooks", "install"]);
    assert!(out.contains("lefthook's hook runs first"), "{out}");
    assert_eq!(
        std::fs::read(hooks.join("pre-push.git-agent-chained")).unwrap(),
        second
    );
    push_is_refused_after_the_managers_hook(&repo, &hub, "lefthook-ran");
    agent(&repo, &["hooks", "uninstall"]);
    assert_eq!(
        pre_push_files(&hooks),
        vec![("pre-push".to_string(), second)]
    );
}

#[test]
fn a_changed_copy_of_huskys_hook_is_kept_and_install_says_why() {
    let Some(husky) = hook_manager("husky") else {
        return;
    };
    let husky = husky.to_str().unwrap();
    let (repo, hub) = project(".husky/pre-push", HUSKY_PRE_PUSH);
    ok(&repo, husky, &[]);
    agent(&repo, &["hooks", "install"]);
    let dir = repo.path().join(".husky/_");
    let chained = dir.join("pre-push.git-agent-chained");
    let mut edited = std::fs::read(&chained).unwrap();
    edited.extend_from_slice(b"echo my change\n");
    std::fs::write(&chained, &edited).unwrap();
    ok(&repo, husky, &[]);

    let state = pre_push(&repo);
    assert_eq!(state["runs"], false, "{state}");
    assert!(
        state["note"]
            .as_str()
            .unwrap()
            .contains("changed after git-agent moved it there"),
        "{state}"
    );
    integrate_warns(&repo, "changed after git-agent moved it there");
    let out = run(
        &repo,
        env!("CARGO_BIN_EXE_git-agent"),
        &["hooks", "install"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("pre-push.git-agent-chained"), "{err}");
    assert_eq!(std::fs::read(&chained).unwrap(), edited, "kept");

    std::fs::remove_file(&chained).unwrap();
    agent(&repo, &["hooks", "install"]);
    push_is_refused_after_the_managers_hook(&repo, &hub, "husky-ran");
}

#[test]
fn a_users_hook_chained_before_pre_commit_installs_runs_once_and_survives_either_uninstall() {
    let Some(pre_commit) = hook_manager("pre-commit") else {
        return;
    };
    let pre_commit = pre_commit.to_str().unwrap();
    let (repo, hub) = project(".pre-commit-config.yaml", PRE_COMMIT);
    let hooks = repo.git_dir().join("hooks");
    write_users_hook(&hooks.join("pre-push"));
    agent(&repo, &["hooks", "install"]);
    ok(&repo, pre_commit, &["install", "-t", "pre-push"]);
    let pre_commits = std::fs::read(hooks.join("pre-push")).unwrap();

    // pre-commit runs the shim from pre-push.legacy; the shim runs the
    // user's hook.
    assert_eq!(pre_push(&repo)["runs"], true);
    users_hook_runs(&repo);
    push_is_refused_after_the_managers_hook(&repo, &hub, "pre-commit-ran");
    assert_eq!(users_hook_runs(&repo), 1, "the user's hook ran once");
    let out = agent(&repo, &["hooks", "install"]);
    assert!(out.contains("up to date"), "{out}");

    agent(&repo, &["hooks", "uninstall"]);
    assert_eq!(
        pre_push_files(&hooks),
        vec![
            ("pre-push".to_string(), pre_commits),
            ("pre-push.legacy".to_string(), USERS_PRE_PUSH.to_vec())
        ],
        "as pre-commit installed over the user's hook leaves them"
    );

    // Installed again, then pre-commit uninstalled: pre-commit puts
    // .legacy (the shim) back, which still chains the user's hook.
    agent(&repo, &["hooks", "install"]);
    ok(&repo, pre_commit, &["uninstall", "-t", "pre-push"]);
    let state = pre_push(&repo);
    assert_eq!(
        (&state["found"], &state["runs"], &state["chained"]),
        (
            &Value::from("installed"),
            &Value::Bool(true),
            &Value::Bool(true)
        ),
        "{state}"
    );
    agent(&repo, &["hooks", "uninstall"]);
    assert_eq!(
        pre_push_files(&hooks),
        vec![("pre-push".to_string(), USERS_PRE_PUSH.to_vec())]
    );
}

#[test]
fn every_run_says_while_a_manager_keeps_the_pre_push_gate_from_running() {
    let Some(lefthook) = hook_manager("lefthook") else {
        return;
    };
    let lefthook = lefthook.to_str().unwrap();
    let (repo, _hub) = project("lefthook.yml", LEFTHOOK);
    let bin = env!("CARGO_BIN_EXE_git-agent");
    agent(&repo, &["hooks", "install"]);
    let out = run(&repo, bin, &["run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("pre-push gate"), "{err}");

    ok(&repo, lefthook, &["install"]);
    let out = run(&repo, bin, &["run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: the pre-push gate is not in place: lefthook moved git-agent's shim")
            && err.contains("pre-push.old"),
        "{err}"
    );
}
