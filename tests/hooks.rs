//! `git agent hooks` and the hooks themselves: real git firing the installed
//! shims, real bare remotes, real background processes.

use crate::common::Repo;
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

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

/// A bare hub at `<home>/hub.git` in the repo's ref format, the repo's
/// `origin`, with `main` pushed.
fn hub(repo: &Repo) -> PathBuf {
    let hub = repo.home().join("hub.git");
    let path = hub.to_str().unwrap();
    let format = format!("--ref-format={}", repo.ref_format());
    repo.git(&["init", "-q", "--bare", "-b", "main", &format, path]);
    repo.git(&["remote", "add", "origin", path]);
    repo.git(&["push", "-q", "origin", "main"]);
    hub
}

/// Commit `name` with `content` on the current branch; returns the commit.
fn commit_file(repo: &Repo, name: &str, content: &str) -> String {
    repo.write(name, content);
    repo.git(&["add", name]);
    repo.git(&["commit", "-q", "-m", &format!("Add {name}")]);
    repo.git(&["rev-parse", "HEAD"])
}

/// A task with work: `agent/<id>` from main with `commits` commits (the
/// post-commit hook, if installed, notes their provenance). Returns the id
/// and the branch tip, with main checked out again.
fn agent_work(repo: &Repo, title: &str, commits: usize) -> (String, String) {
    let id = repo.add(title, &[]);
    repo.git(&["checkout", "-q", "-b", &format!("agent/{id}"), "main"]);
    let mut tip = String::new();
    for i in 0..commits {
        tip = commit_file(repo, &format!("{id}-{i}.txt"), &format!("{title} {i}\n"));
    }
    repo.git(&["checkout", "-q", "main"]);
    (id, tip)
}

fn provenance(repo: &Repo, commit: &str) -> Option<String> {
    let out = run_in(
        repo,
        repo.path(),
        "git",
        &["notes", "--ref", "agent", "show", commit],
    );
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

/// Record a review verdict on `commit`, as `git agent review` would.
fn verdict(repo: &Repo, commit: &str, verdict: &str) {
    let line = format!(
        r#"{{"verdict":"{verdict}","reviewer":"test","task":"t","base":"","at":"","summary":""}}"#
    );
    repo.git(&[
        "notes",
        "--ref",
        "agent-review",
        "append",
        "-m",
        &line,
        commit,
    ]);
}

fn write_hook(path: &Path, content: &[u8], mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn is_our_shim(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|s| s.contains("# git-agent hook shim: "))
}

fn hooks_dir(repo: &Repo) -> PathBuf {
    repo.git_dir().join("hooks")
}

#[test]
fn a_chained_hook_gets_the_same_arguments_and_input_and_its_refusal_counts() {
    let repo = Repo::new();
    let hub = hub(&repo);
    let log = repo.home().join("user-hook.log");
    let user_hook = format!(
        "#!/bin/sh\necho \"args: $*\" >>'{0}'\ncat >>'{0}'\n[ -e '{0}.refuse' ] && exit 3\nexit 0\n",
        log.display()
    );
    write_hook(
        &hooks_dir(&repo).join("pre-push"),
        user_hook.as_bytes(),
        0o755,
    );
    repo.ok(&["hooks", "install"]);
    let head = commit_file(&repo, "x.txt", "x\n");

    std::fs::write(format!("{}.refuse", log.display()), "").unwrap();
    let out = run_in(&repo, repo.path(), "git", &["push", "origin", "main"]);
    assert!(!out.status.success(), "the user's hook refused the push");
    assert_ne!(ok_in(&repo, &hub, "git", &["rev-parse", "main"]), head);

    std::fs::remove_file(format!("{}.refuse", log.display())).unwrap();
    repo.git(&["push", "-q", "origin", "main"]);
    assert_eq!(ok_in(&repo, &hub, "git", &["rev-parse", "main"]), head);
    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(
        seen.contains(&format!("args: origin {}", hub.display())),
        "{seen}"
    );
    assert!(
        seen.contains(&format!("refs/heads/main {head} refs/heads/main ")),
        "{seen}"
    );
}

#[test]
fn a_husky_hook_that_finds_its_script_from_its_own_path_keeps_working() {
    let repo = Repo::new();
    // husky 9: core.hooksPath is .husky/_, where each hook sources ./h,
    // which runs .husky/<the hook's own name, from $0>.
    let husky = repo.path().join(".husky");
    let h = "#!/usr/bin/env sh\nn=$(basename \"$0\")\ns=$(dirname \"$(dirname \"$0\")\")/$n\n\
             [ ! -f \"$s\" ] && exit 0\nsh -e \"$s\" \"$@\"\nexit $?\n";
    write_hook(&husky.join("_/h"), h.as_bytes(), 0o644);
    write_hook(
        &husky.join("_/post-commit"),
        b"#!/usr/bin/env sh\n. \"${0%/*}/h\"\n",
        0o755,
    );
    let log = repo.home().join("husky.log");
    let script = format!(
        "echo \"husky ran $(basename \"$0\")\" >>'{}'\n",
        log.display()
    );
    write_hook(&husky.join("post-commit"), script.as_bytes(), 0o644);
    repo.git(&["config", "core.hooksPath", ".husky/_"]);
    repo.ok(&["hooks", "install"]);

    let (id, tip) = agent_work(&repo, "Beside husky", 1);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap_or_default(),
        "husky ran post-commit\n"
    );
    let note = provenance(&repo, &tip).expect("git-agent's hook ran too");
    assert!(note.contains(&id), "{note}");
}

#[test]
fn uninstall_restores_the_replaced_hooks_byte_for_byte_with_their_mode() {
    let repo = Repo::new();
    let dir = hooks_dir(&repo);
    let content = b"#!/bin/sh\r\n# CRLF, and no final newline\r\nexit 0".to_vec();
    write_hook(&dir.join("post-commit"), &content, 0o750);
    std::os::unix::fs::symlink("../../my-hooks/post-merge", dir.join("post-merge")).unwrap();

    repo.ok(&["hooks", "install"]);
    assert!(is_our_shim(&dir.join("post-commit")));
    assert!(is_our_shim(&dir.join("post-merge")));
    assert!(dir.join("post-commit.git-agent-chained").exists());
    assert!(repo.git_dir().join("agent/hooks.json").exists());

    repo.ok(&["hooks", "uninstall"]);
    let restored = dir.join("post-commit");
    assert_eq!(std::fs::read(&restored).unwrap(), content);
    assert_eq!(
        std::fs::metadata(&restored).unwrap().permissions().mode() & 0o7777,
        0o750
    );
    assert_eq!(
        std::fs::read_link(dir.join("post-merge")).unwrap(),
        Path::new("../../my-hooks/post-merge")
    );
    for gone in ["pre-push", "post-rewrite", "post-commit.git-agent-chained"] {
        assert!(!dir.join(gone).exists(), "{gone} is left behind");
    }
    assert!(!repo.git_dir().join("agent/hooks.json").exists());
}

#[test]
fn installing_twice_changes_nothing() {
    let repo = Repo::new();
    write_hook(
        &hooks_dir(&repo).join("post-commit"),
        b"#!/bin/sh\nexit 0\n",
        0o755,
    );
    repo.ok(&["hooks", "install"]);
    let snapshot = || {
        let mut files: Vec<(String, u64, i64, Vec<u8>)> = std::fs::read_dir(hooks_dir(&repo))
            .unwrap()
            .map(|e| e.unwrap().path())
            .chain([repo.git_dir().join("agent/hooks.json")])
            .map(|p| {
                let meta = std::fs::symlink_metadata(&p).unwrap();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (
                    name,
                    meta.ino(),
                    meta.mtime_nsec(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    };
    let before = snapshot();
    let out = repo.ok(&["hooks", "install"]);
    assert!(out.contains("up to date"), "{out}");
    assert_eq!(snapshot(), before);
}

#[test]
fn install_refuses_to_move_a_hook_onto_a_leftover_chained_file() {
    let repo = Repo::new();
    let dir = hooks_dir(&repo);
    write_hook(&dir.join("post-commit"), b"#!/bin/sh\necho mine\n", 0o755);
    write_hook(
        &dir.join("post-commit.git-agent-chained"),
        b"#!/bin/sh\necho older\n",
        0o755,
    );
    let err = repo.fails(2, &["hooks", "install"]);
    assert!(err.contains("post-commit.git-agent-chained"), "{err}");
    assert_eq!(
        std::fs::read(dir.join("post-commit")).unwrap(),
        b"#!/bin/sh\necho mine\n"
    );
    assert!(!dir.join("pre-push").exists(), "nothing was installed");
}

#[test]
fn an_unknown_hook_name_is_refused() {
    let repo = Repo::new();
    let err = repo.fails(2, &["hook", "pre-commit"]);
    assert!(err.contains("pre-commit"), "{err}");
}

#[test]
fn install_respects_core_hooks_path() {
    let repo = Repo::new();
    repo.git(&["config", "core.hooksPath", ".githooks"]);
    let out = repo.ok(&["hooks", "install"]);
    assert!(out.contains(".githooks"), "{out}");
    assert!(is_our_shim(&repo.path().join(".githooks/post-commit")));
    assert!(!hooks_dir(&repo).join("post-commit").exists());
    let (id, tip) = agent_work(&repo, "Via hooksPath", 1);
    let note = provenance(&repo, &tip).expect("git ran the shim from core.hooksPath");
    assert!(note.contains(&format!(r#""task":"{id}""#)), "{note}");
}

#[test]
fn linked_worktrees_share_the_hooks_installed_from_any_of_them() {
    let repo = Repo::new();
    let id = repo.add("In a worktree", &[]);
    let wt = repo.home().join("wt");
    let branch = format!("agent/{id}");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        &branch,
        wt.to_str().unwrap(),
        "main",
    ]);
    let bin = crate::common::BIN;
    let out = ok_in(&repo, &wt, bin, &["hooks", "install"]);
    assert!(
        out.contains(&hooks_dir(&repo).display().to_string()),
        "{out}"
    );
    assert!(is_our_shim(&hooks_dir(&repo).join("post-commit")));

    std::fs::write(wt.join("w.txt"), "w\n").unwrap();
    ok_in(&repo, &wt, "git", &["add", "w.txt"]);
    ok_in(&repo, &wt, "git", &["commit", "-q", "-m", "work"]);
    let tip = ok_in(&repo, &wt, "git", &["rev-parse", "HEAD"]);
    let note = provenance(&repo, &tip).expect("provenance of the worktree's commit");
    assert!(note.contains(&format!(r#""task":"{id}""#)), "{note}");

    let on_main = commit_file(&repo, "m.txt", "m\n");
    assert_eq!(
        provenance(&repo, &on_main),
        None,
        "main is no agent's branch"
    );
}

fn the_gate_refuses_unreviewed_agent_commits_on_the_target(format: &str) {
    let repo = Repo::with_ref_format(format);
    let hub = hub(&repo);
    repo.ok(&["hooks", "install"]);
    let (id, tip) = agent_work(&repo, "Unreviewed", 2);
    let before = ok_in(&repo, &hub, "git", &["rev-parse", "main"]);
    repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "merge",
        &format!("agent/{id}"),
    ]);

    let out = run_in(&repo, repo.path(), "git", &["push", "origin", "main"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("refusing to push to main"), "{err}");
    assert!(err.contains(&tip[..7]), "names the commit: {err}");
    assert!(err.contains(&id), "names the task: {err}");
    assert_eq!(ok_in(&repo, &hub, "git", &["rev-parse", "main"]), before);

    // The command the refusal suggests works as printed, though the branch
    // is merged locally already.
    let suggested = err
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("git agent review --approve"))
        .unwrap_or_else(|| panic!("no command suggested: {err}"));
    let words: Vec<&str> = suggested.split_whitespace().skip(2).collect();
    assert!(suggested.contains(&tip[..12]), "{suggested}");
    repo.ok(&words);
    repo.git(&["push", "-q", "origin", "main"]);
    assert_eq!(
        ok_in(&repo, &hub, "git", &["rev-parse", "main"]),
        repo.git(&["rev-parse", "main"])
    );
    let (id, _) = agent_work(&repo, "Skipped", 1);
    repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "merge",
        &format!("agent/{id}"),
    ]);
    repo.git(&["push", "-q", "origin", &format!("agent/{id}")]);
    repo.git(&["push", "-q", "--no-verify", "origin", "main"]);
    assert_eq!(
        ok_in(&repo, &hub, "git", &["rev-parse", "main"]),
        repo.git(&["rev-parse", "main"])
    );
}
crate::on_both_ref_formats!(the_gate_refuses_unreviewed_agent_commits_on_the_target);

#[test]
fn the_gate_follows_the_latest_verdict_on_the_branch_tip() {
    let repo = Repo::new();
    let hub = hub(&repo);
    repo.ok(&["hooks", "install"]);
    let (id, tip) = agent_work(&repo, "Reviewed", 2);
    repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "merge",
        &format!("agent/{id}"),
    ]);

    verdict(&repo, &tip, "changes");
    let out = run_in(&repo, repo.path(), "git", &["push", "origin", "main"]);
    assert!(!out.status.success(), "changes requested: refused");

    verdict(&repo, &tip, "approve");
    repo.git(&["push", "-q", "origin", "main"]);
    assert_eq!(
        ok_in(&repo, &hub, "git", &["rev-parse", "main"]),
        repo.git(&["rev-parse", "main"])
    );
}

#[test]
fn the_gate_lets_pushes_without_agent_commits_through() {
    let repo = Repo::new();
    let hub = hub(&repo);
    repo.ok(&["hooks", "install"]);
    let (_, _) = agent_work(&repo, "Not merged", 1);
    let head = commit_file(&repo, "plain.txt", "plain\n");
    repo.git(&["push", "-q", "origin", "main"]);
    assert_eq!(ok_in(&repo, &hub, "git", &["rev-parse", "main"]), head);
}

fn a_squash_merge_on_the_target_records_the_task_and_readies_its_dependents(format: &str) {
    let repo = Repo::with_ref_format(format);
    repo.ok(&["hooks", "install"]);
    let (id, _) = agent_work(&repo, "Squashed", 2);
    let dependent = repo.add("Needs it", &["--depends-on", &id]);
    commit_file(&repo, "meanwhile.txt", "on main\n");
    assert_eq!(repo.state(&id), "open");

    repo.git(&["merge", "-q", "--squash", &format!("agent/{id}")]);
    assert_eq!(repo.state(&id), "open", "nothing is committed yet");
    repo.git(&["commit", "-q", "-m", "Squashed work"]);
    let squash = repo.git(&["rev-parse", "HEAD"]);

    assert_eq!(repo.state(&id), "merged");
    let events = repo.json(&["show", &id])["events"].clone();
    let last = events.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["data"]["commit"], squash.as_str());
    let ready: Vec<String> = repo
        .json(&["ready"])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ready, [dependent]);
}
crate::on_both_ref_formats!(
    a_squash_merge_on_the_target_records_the_task_and_readies_its_dependents
);

#[test]
fn a_merge_on_the_target_records_the_task_with_its_merge_commit() {
    let repo = Repo::new();
    repo.ok(&["hooks", "install"]);
    let (id, _) = agent_work(&repo, "Merged", 1);
    let (other, _) = agent_work(&repo, "Not merged", 1);
    repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "merge",
        &format!("agent/{id}"),
    ]);
    let merge = repo.git(&["rev-parse", "HEAD"]);
    assert_eq!(repo.state(&id), "merged");
    assert_eq!(repo.task(&id)["state"], "merged");
    let events = repo.json(&["show", &id])["events"].clone();
    assert_eq!(
        events.as_array().unwrap().last().unwrap()["data"]["commit"],
        merge.as_str()
    );
    assert_eq!(repo.state(&other), "open");
}

#[test]
fn a_rebase_merge_pulled_from_the_remote_records_the_task() {
    let repo = Repo::new();
    let hub = hub(&repo);
    repo.ok(&["hooks", "install"]);
    let (id, _) = agent_work(&repo, "Rebased elsewhere", 2);
    repo.git(&["push", "-q", "origin", &format!("agent/{id}")]);

    // Elsewhere, a forge's "rebase and merge": the commits replayed on main.
    let other = repo.home().join("other");
    repo.git(&[
        "clone",
        "-q",
        hub.to_str().unwrap(),
        other.to_str().unwrap(),
    ]);
    ok_in(
        &repo,
        &other,
        "git",
        &["commit", "-q", "--allow-empty", "-m", "meanwhile"],
    );
    ok_in(
        &repo,
        &other,
        "git",
        &["cherry-pick", &format!("main..origin/agent/{id}")],
    );
    ok_in(&repo, &other, "git", &["push", "-q", "origin", "main"]);
    let replayed = ok_in(&repo, &other, "git", &["rev-parse", "main"]);

    repo.git(&["pull", "-q", "--no-rebase", "origin", "main"]);
    assert_eq!(repo.state(&id), "merged");
    let events = repo.json(&["show", &id])["events"].clone();
    let merged = events.as_array().unwrap().last().unwrap().clone();
    assert_eq!(merged["data"]["commit"], replayed.as_str());
}

#[test]
fn a_post_commit_fired_twice_queues_one_review() {
    let repo = Repo::new();
    repo.write(".git-agent.yaml", "review:\n  on: commit\n");
    repo.ok(&["hooks", "install"]);
    let id = repo.add("Reviewed per commit", &[]);
    repo.git(&["checkout", "-q", "-b", &format!("agent/{id}")]);
    let tip = commit_file(&repo, "r.txt", "r\n");
    repo.ok(&["hook", "post-commit"]);

    let queue = repo.git_dir().join("agent/queue");
    let names: Vec<String> = std::fs::read_dir(&queue)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [format!("review-{tip}.json")]);
    let item: Value =
        serde_json::from_str(&std::fs::read_to_string(queue.join(&names[0])).unwrap()).unwrap();
    assert_eq!(item["payload"]["task"], id.as_str());
    assert_eq!(item["payload"]["commit"], tip.as_str());
    let note = provenance(&repo, &tip).unwrap();
    assert_eq!(note.lines().count(), 1, "{note}");
}

#[test]
fn provenance_follows_a_rewritten_commit_but_verdicts_and_gate_runs_do_not() {
    let repo = Repo::new();
    repo.ok(&["hooks", "install"]);
    let (_, tip) = agent_work(&repo, "Amended", 1);
    let verdict = r#"{"verdict":"approve","reviewer":"r"}"#;
    repo.git(&["notes", "--ref", "agent-review", "add", "-m", verdict, &tip]);
    repo.git(&[
        "notes",
        "--ref",
        "agent-ci",
        "add",
        "-m",
        r#"{"tree":"t","result":"passed"}"#,
        &tip,
    ]);
    repo.git(&[
        "checkout",
        "-q",
        &format!("agent/{}", provenance_task(&repo, &tip)),
    ]);
    repo.git(&["commit", "-q", "--amend", "-m", "Amended again"]);
    let amended = repo.git(&["rev-parse", "HEAD"]);
    assert_ne!(amended, tip);
    assert_eq!(
        provenance(&repo, &amended),
        provenance(&repo, &tip),
        "provenance follows"
    );
    for notes in ["agent-review", "agent-ci"] {
        let mut git = std::process::Command::new("git");
        repo.env(&mut git);
        let shown = git
            .args(["notes", "--ref", notes, "show", &amended])
            .output()
            .unwrap();
        assert!(
            !shown.status.success(),
            "a {notes} note must not follow a rewrite: an old verdict never approves a new commit"
        );
    }
}

fn provenance_task(repo: &Repo, commit: &str) -> String {
    let note: Value = serde_json::from_str(provenance(repo, commit).unwrap().trim()).unwrap();
    note["task"].as_str().unwrap().to_string()
}

fn a_push_of_an_agent_branch_to_a_bare_hub_queues_its_review_there(format: &str) {
    let repo = Repo::with_ref_format(format);
    let hub = hub(&repo);
    ok_in(
        &repo,
        &hub,
        crate::common::BIN,
        &["hooks", "install", "--server"],
    );
    assert!(is_our_shim(&hub.join("hooks/post-receive")));
    let (id, tip) = agent_work(&repo, "Pushed", 1);
    repo.git(&["push", "-q", "origin", &format!("agent/{id}")]);

    let queued = hub.join(format!("agent/queue/review-{tip}.json"));
    let item: Value = serde_json::from_str(&std::fs::read_to_string(&queued).unwrap()).unwrap();
    assert_eq!(item["kind"], "review");
    assert_eq!(item["payload"]["task"], id.as_str());
    assert_eq!(item["payload"]["branch"], format!("agent/{id}"));
    assert_eq!(
        std::fs::read_dir(hub.join("agent/queue")).unwrap().count(),
        1
    );
}
crate::on_both_ref_formats!(a_push_of_an_agent_branch_to_a_bare_hub_queues_its_review_there);

#[test]
fn a_push_to_the_hub_target_records_merges_there() {
    let repo = Repo::new();
    let hub = hub(&repo);
    ok_in(
        &repo,
        &hub,
        crate::common::BIN,
        &["hooks", "install", "--server"],
    );
    let (id, _) = agent_work(&repo, "Merged on the hub", 1);
    repo.ok(&["claim", &id, "--actor", "me"]);
    repo.ok(&["submit", &id, "--actor", "me"]);
    repo.git(&[
        "push",
        "-q",
        "origin",
        "refs/agent/tasks/*:refs/agent/tasks/*",
    ]);
    repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "merge",
        &format!("agent/{id}"),
    ]);
    repo.git(&["push", "-q", "origin", "main"]);

    let shown: Value = serde_json::from_str(&ok_in(
        &repo,
        &hub,
        crate::common::BIN,
        &["show", &id, "--json"],
    ))
    .unwrap();
    assert_eq!(shown["task"]["state"], "merged");
}

#[test]
fn autorun_starts_a_logged_background_run_only_when_configured() {
    let repo = Repo::new();
    let hub = hub(&repo);
    ok_in(
        &repo,
        &hub,
        crate::common::BIN,
        &["hooks", "install", "--server"],
    );
    let log = hub.join("agent/logs/autorun.log");
    let (first, _) = agent_work(&repo, "No autorun", 1);
    repo.git(&["push", "-q", "origin", &format!("agent/{first}")]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!log.exists(), "autorun is off: nothing started");

    ok_in(&repo, &hub, "git", &["config", "agent.autorun", "true"]);
    let (second, _) = agent_work(&repo, "Autorun", 1);
    repo.git(&["push", "-q", "origin", &format!("agent/{second}")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("== ") && text.contains("exited") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(text.contains("git agent run --once"), "{text}");
    assert!(text.contains("exited"), "the background run ended: {text}");
}

/// The whole hub: a push of an agent branch to a bare hub with the server
/// hooks and `agent.autorun` leads to a review there, by the reviewer that
/// the target branch's `.git-agent.yaml` names, with its verdict as a note
/// in the hub.
#[test]
fn a_push_to_an_autorun_hub_gets_reviewed_by_the_hub() {
    let repo = Repo::new();
    let reviewer = crate::common::agent("reviewer.sh");
    repo.write(
        ".git-agent.yaml",
        &format!(
            "target: main\nroles:\n  reviewer: {{ command: [sh, {reviewer}], timeout: 60s }}\n"
        ),
    );
    repo.git(&["add", ".git-agent.yaml"]);
    repo.git(&["commit", "-q", "-m", "Team config with a reviewer"]);
    let hub = hub(&repo);
    ok_in(
        &repo,
        &hub,
        crate::common::BIN,
        &["hooks", "install", "--server"],
    );
    ok_in(&repo, &hub, "git", &["config", "agent.autorun", "true"]);
    let (id, tip) = agent_work(&repo, "Reviewed on the hub", 1);
    repo.git(&["push", "-q", "origin", &format!("agent/{id}")]);
    let verdict = || {
        let out = run_in(
            &repo,
            &hub,
            "git",
            &["notes", "--ref", "agent-review", "show", &tip],
        );
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    };
    let log = hub.join("agent/logs/autorun.log");
    assert!(
        crate::common::wait_for(60, || verdict().is_some()),
        "no verdict in the hub; autorun log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let note: Value = serde_json::from_str(verdict().unwrap().trim()).unwrap();
    assert_eq!(note["verdict"], "approve");
    assert_eq!(note["reviewer"], "sh reviewer.sh");
    assert!(
        std::fs::read_dir(hub.join("agent/queue")).map_or(true, |d| d.count() == 0),
        "the queue was drained"
    );
}

/// With `review: {on: commit}` the hook queues each agent commit; the
/// task's own review covers its head, so each commit is reviewed once, and
/// a queued commit that reached the target meanwhile is dropped with a word.
#[test]
fn each_queued_commit_is_reviewed_once_and_a_stale_item_is_dropped() {
    let repo = Repo::new();
    let count = repo.scratch("reviews");
    repo.configure(
        "60s",
        3,
        &format!(
            "  reviewer:\n    command: [sh, {}, count={count}]\nreview:\n  on: commit\n",
            crate::common::agent("reviewer.sh")
        ),
    );
    repo.git(&["add", ".git-agent.yaml"]);
    repo.git(&["commit", "-q", "-m", "Review every commit"]);
    repo.ok(&["hooks", "install"]);
    let queue = repo.git_dir().join("agent/queue");
    let queued = || std::fs::read_dir(&queue).map_or(0, |d| d.count());

    let id = repo.add("Reviewed once", &[]);
    repo.ok(&["run"]);
    assert_eq!(repo.state(&id), "merged");
    let reviews = std::fs::read_to_string(&count).unwrap();
    assert_eq!(reviews.lines().count(), 1, "{reviews}");
    assert_eq!(queued(), 0, "the queue was drained");

    // A commit queued by the hook, then merged by hand before any run.
    let (stale, tip) = agent_work(&repo, "Merged by hand", 1);
    assert_eq!(queued(), 1, "the hook queued its review");
    let status = repo.ok(&["status"]);
    assert!(status.contains("review queue (1):"), "{status}");
    assert!(status.contains(&tip[..10]), "{status}");
    repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "by hand",
        &format!("agent/{stale}"),
    ]);
    let out = repo.run(&["run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "review of {} dropped: it reached main already",
            &tip[..10]
        )),
        "{err}"
    );
    assert_eq!(queued(), 0);
    assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 1);
    repo.ok(&["run"]);
}

/// A broken `.git-agent.yaml` never stops a push that moves no branch (a
/// tag, a deletion): only a branch can be the target. A branch push still
/// fails closed, naming the line, since the gate cannot know the target.
#[test]
fn a_broken_config_stops_only_pushes_the_gate_must_judge() {
    let repo = Repo::new();
    repo.ok(&["hooks", "install"]);
    let hub = repo.scratch("hub.git");
    repo.git(&["init", "-q", "--bare", &hub]);
    repo.git(&["remote", "add", "hub", &hub]);
    repo.write(".git-agent.yaml", "target: main\nbogus: [\n");
    repo.git(&["tag", "v1"]);
    let push = |args: &[&str]| {
        let mut cmd = std::process::Command::new("git");
        repo.env(&mut cmd);
        cmd.args(args).output().unwrap()
    };
    let tag = push(&["push", "hub", "v1"]);
    assert!(
        tag.status.success(),
        "{}",
        String::from_utf8_lossy(&tag.stderr)
    );
    let branch = push(&["push", "hub", "main"]);
    let err = String::from_utf8_lossy(&branch.stderr);
    assert!(!branch.status.success(), "{err}");
    assert!(err.contains(".git-agent.yaml:"), "{err}");
}
