//! What a git user expects of a CLI: shell completions, colour on a
//! terminal only, a live `status --watch`, and `doctor`.

use crate::common::{Repo, BIN};
use std::process::Command;

/// Run `bash -c <code>` in the repo's environment; its stdout.
fn bash(repo: &Repo, code: &str) -> String {
    let mut cmd = Command::new("bash");
    repo.env(&mut cmd);
    let out = cmd.args(["--norc", "-c", code]).output().unwrap();
    assert!(
        out.status.success(),
        "bash -c {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn each_shell_gets_a_completion_script_that_names_the_commands() {
    let repo = Repo::new();
    for shell in ["bash", "zsh", "fish"] {
        let script = repo.ok(&["completions", shell]);
        for command in ["status", "doctor", "claim", "self-install"] {
            assert!(
                script.contains(command),
                "{shell} completions do not offer {command}: {script}"
            );
        }
    }
    let err = repo.fails(2, &["completions", "tcsh"]);
    assert!(err.contains("tcsh"), "{err}");
}

#[test]
fn bash_completes_git_agent_and_git_space_agent() {
    let repo = Repo::new();
    let load = format!("source <({BIN} completions bash)");
    let registered = bash(&repo, &format!("{load}; complete -p git-agent"));
    assert!(registered.contains("git-agent"), "{registered}");
    // As bash calls it for `git-agent stat<TAB>`.
    let direct = bash(
        &repo,
        &format!(
            "{load}; COMP_WORDS=(git-agent stat); COMP_CWORD=1; \
             _git__agent git-agent stat git-agent; echo \"${{COMPREPLY[@]}}\""
        ),
    );
    assert_eq!(
        direct.split_whitespace().collect::<Vec<_>>(),
        ["status", "stats"]
    );
    // As git's own completion calls it for `git -C . agent stat<TAB>`.
    let via_git = bash(
        &repo,
        &format!(
            "{load}; COMP_WORDS=(git -C . agent stat); COMP_CWORD=4; \
             _git_agent; echo \"${{COMPREPLY[@]}}\""
        ),
    );
    assert_eq!(
        via_git.split_whitespace().collect::<Vec<_>>(),
        ["status", "stats"]
    );
    // A subcommand's flags, through git.
    let flags = bash(
        &repo,
        &format!(
            "{load}; COMP_WORDS=(git agent status --wa); COMP_CWORD=3; \
             _git_agent; echo \"${{COMPREPLY[@]}}\""
        ),
    );
    assert!(flags.contains("--watch"), "{flags}");
}

#[test]
fn self_install_puts_completions_where_each_shell_looks() {
    let repo = Repo::new();
    let bin = repo.home().join("bin");
    let data = repo.home().join("data");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(BIN, bin.join("git-agent")).unwrap();
    let out = repo
        .cmd(&["self-install", "--bin-dir", bin.to_str().unwrap()])
        .env("XDG_DATA_HOME", &data)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bash = data.join("bash-completion/completions/git-agent");
    let zsh = data.join("zsh/site-functions/_git-agent");
    let fish = repo.home().join(".config/fish/completions/git-agent.fish");
    for (path, shell) in [(&bash, "bash"), (&zsh, "zsh"), (&fish, "fish")] {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("no {shell} completions at {}: {e}", path.display()));
        assert_eq!(text, repo.ok(&["completions", shell]), "{shell}");
        assert!(said.contains(&path.display().to_string()), "{said}");
    }
}
