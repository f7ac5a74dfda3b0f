//! `git agent demo`: the README's first command runs the whole pipeline.

use crate::common::BIN;

#[test]
fn demo_runs_the_pipeline_with_one_rejected_review_and_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["demo", "--dir", dir.path().to_str().unwrap()])
        .env("HOME", &home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("merged (4):"), "{stdout}");
    assert!(
        stdout.contains("verdict=changes") && stdout.contains("verdict=approve"),
        "{stdout}"
    );
    assert!(
        stderr.contains("reviewer: changes: - greet.sh:2: # TODO"),
        "the live view shows the rejection: {stderr}"
    );
    let repo = stdout
        .lines()
        .find_map(|l| l.strip_prefix("The demo repository is at "))
        .map(std::path::PathBuf::from)
        .expect("the demo says where its repository is");
    let greet = std::fs::read_to_string(repo.join("greet.sh")).unwrap();
    assert!(
        greet.contains("--shout") && !greet.contains("TODO"),
        "{greet}"
    );
    let tests = std::process::Command::new("sh")
        .arg("tests/run.sh")
        .current_dir(&repo)
        .output()
        .unwrap();
    assert!(
        tests.status.success(),
        "the merged project passes its own tests"
    );
}
