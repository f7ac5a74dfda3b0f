//! Installation: `git agent <cmd>` and `git agent-<cmd>` both work, and the
//! man pages in `man/` match the CLI.

use crate::common::{Repo, BIN};
use std::path::Path;

#[test]
fn git_agent_cmd_and_git_agent_dash_cmd_both_work_after_self_install() {
    let repo = Repo::new();
    let bin = repo.home().join("bin");
    let man = repo.home().join("share/man/man1");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(BIN, bin.join("git-agent")).unwrap();
    let out = repo.run(&[
        "self-install",
        "--bin-dir",
        bin.to_str().unwrap(),
        "--man-dir",
        man.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = repo.add("Via git", &[]);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    for cmd in [
        "status", "ready", "show", "log", "claim", "plan", "task", "context", "init", "submit",
        "release",
    ] {
        assert!(
            bin.join(format!("git-agent-{cmd}")).exists(),
            "no link for {cmd}"
        );
    }
    let git = |args: &[&str]| {
        let mut c = std::process::Command::new("git");
        repo.env(&mut c);
        let out = c.env("PATH", &path).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let spaced = git(&["agent", "show", &id]);
    let dashed = git(&["agent-show", &id]);
    assert_eq!(spaced, dashed);
    assert!(spaced.contains("Via git"));
    assert_eq!(git(&["agent-task", "add", "Nested"]).trim().len(), id.len());
    assert!(man.join("git-agent-claim.1").exists());
}

/// `man/` is generated from the CLI definition; regenerate with
/// `cargo run -- self-install --man-only --man-dir man`.
#[test]
fn man_pages_match_the_cli() {
    let repo = Repo::new();
    let fresh = repo.home().join("man");
    repo.ok(&[
        "self-install",
        "--man-only",
        "--man-dir",
        fresh.to_str().unwrap(),
    ]);
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let names = |dir: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(&fresh),
        names(&committed),
        "regenerate: cargo run -- self-install --man-only --man-dir man"
    );
    for name in names(&fresh) {
        let a = std::fs::read(fresh.join(&name)).unwrap();
        let b = std::fs::read(committed.join(&name)).unwrap();
        assert!(
            a == b,
            "man/{name} is out of date: cargo run -- self-install --man-only --man-dir man"
        );
    }
}
