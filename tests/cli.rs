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
    assert!(
        said.contains(&format!(
            "fpath=({}",
            data.join("zsh/site-functions").display()
        )),
        "{said}"
    );
}

/// The board of a repo with one ready task and one in progress.
fn two_states(repo: &Repo) -> (String, String) {
    let a = repo.add("Running one", &[]);
    let b = repo.add("Waiting one", &[]);
    let pid = std::process::id().to_string();
    repo.ok(&["claim", &a, "--actor", "w", "--pid", &pid]);
    (a, b)
}

#[test]
fn color_always_paints_the_board_and_never_or_no_color_or_a_pipe_do_not() {
    let repo = Repo::new();
    two_states(&repo);
    let painted = repo.ok(&["status", "--color", "always"]);
    assert!(
        painted.contains("\x1b[33min progress (1):\x1b[0m"),
        "{painted:?}"
    );
    assert!(painted.contains("\x1b[32mready (1):\x1b[0m"), "{painted:?}");
    let piped = repo.ok(&["status"]);
    assert!(!piped.contains('\x1b'), "{piped:?}");
    assert!(piped.contains("in progress (1):"), "{piped}");
    assert_eq!(repo.ok(&["status", "--color", "never"]), piped);
    assert_eq!(repo.ok(&["--color", "auto", "status"]), piped);
    // On a terminal: colour, unless NO_COLOR says no.
    let on_terminal = |no_color: Option<&str>| {
        let mut script = Command::new("script");
        repo.env(&mut script);
        if let Some(value) = no_color {
            script.env("NO_COLOR", value);
        }
        let out = script
            .args(["-qec", &format!("{BIN} status --color auto"), "/dev/null"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        on_terminal(None).contains("\x1b[33min progress"),
        "{:?}",
        on_terminal(None)
    );
    let plain = on_terminal(Some("1"));
    assert!(plain.contains("in progress (1):"), "{plain:?}");
    assert!(
        !plain.contains('\x1b'),
        "NO_COLOR=1 still coloured: {plain:?}"
    );
    // An error's prefix, coloured only where asked.
    let mut cmd = repo.cmd(&["--color", "always", "show", "t-nosuch"]);
    let out = cmd.output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("\x1b[31mgit-agent:\x1b[0m "),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = repo.fails(2, &["show", "t-nosuch"]);
    assert!(err.starts_with("git-agent: "), "{err:?}");
}

/// Collect a child's stdout as it comes, on a thread of its own.
fn collect(child: &mut std::process::Child) -> std::sync::Arc<std::sync::Mutex<String>> {
    use std::io::Read;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    seen
}

fn interrupt(pid: u32) {
    // SAFETY: sending a signal to a process of ours touches no memory.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGINT) }, 0);
}

#[test]
fn status_watch_to_a_pipe_prints_the_board_again_when_it_changes() {
    let repo = Repo::new();
    let (a, b) = two_states(&repo);
    let mut child = repo
        .cmd(&["status", "--watch", "--interval", "0.1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let seen = collect(&mut child);
    let text = || seen.lock().unwrap().clone();
    assert!(
        crate::common::wait_for(30, || text().contains(&format!("{b}  Waiting one"))),
        "{}",
        text()
    );
    repo.ok(&["release", &a, "--actor", "w"]);
    assert!(
        crate::common::wait_for(30, || text().contains("ready (2):")),
        "the released task never showed: {}",
        text()
    );
    let shown = text();
    assert_eq!(shown.matches("ready (1):").count(), 1, "{shown}");
    assert!(!shown.contains('\x1b'), "a pipe gets no escapes: {shown:?}");
    interrupt(child.id());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "Ctrl-C ends --watch with success: {status:?}"
    );
}

#[test]
fn status_watch_on_a_terminal_redraws_in_place() {
    let repo = Repo::new();
    let (a, _) = two_states(&repo);
    let pid_file = repo.scratch("watch.pid");
    let mut script = Command::new("script");
    repo.env(&mut script);
    let mut child = script
        .args([
            "-qec",
            &format!("echo $$ > {pid_file}; exec {BIN} status --watch --interval 0.1"),
            "/dev/null",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let seen = collect(&mut child);
    let text = || seen.lock().unwrap().clone();
    assert!(
        crate::common::wait_for(30, || text().contains("in progress (1):")),
        "{}",
        text()
    );
    repo.ok(&["release", &a, "--actor", "w"]);
    assert!(
        crate::common::wait_for(30, || text().contains("ready (2):")),
        "the released task never showed: {}",
        text()
    );
    let screen = text();
    assert!(
        screen.matches("\x1b[H\x1b[2J").count() >= 2,
        "each board is drawn over the last: {screen:?}"
    );
    assert!(screen.contains("Ctrl-C ends"), "{screen:?}");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    interrupt(pid);
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "Ctrl-C ends --watch with success: {status:?}"
    );
}

/// `doctor`'s lines: (status word, rest of the line).
fn doctor_lines(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .map(|line| {
            let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
            (word.to_string(), rest.trim_start().to_string())
        })
        .collect()
}

/// A repository set up the way doctor wants: hooks, a remote fetching the
/// agent refs, a role whose program is on PATH.
fn healthy(format: &str) -> Repo {
    let repo = Repo::with_ref_format(format);
    let hub = repo.scratch("hub.git");
    repo.git(&["init", "-q", "--bare", &hub]);
    repo.git(&["remote", "add", "hub", &hub]);
    repo.ok(&["init", "--remote", "hub"]);
    repo.ok(&["hooks", "install"]);
    repo.write(
        ".git-agent.yaml",
        "roles:\n  implementer: { command: [sh, -c, \"true\"] }\n",
    );
    repo
}

fn doctor_healthy(format: &str) {
    let repo = healthy(format);
    let out = repo.ok(&["doctor"]);
    let lines = doctor_lines(&out);
    assert!(lines.iter().all(|(word, _)| word == "ok"), "{out}");
    for expected in [
        "config: ",
        "role implementer: runs sh",
        "hook pre-push: installed",
        "hook post-commit: installed",
        "remote hub: fetches the agent refs and notes",
        "identity: user.name is Test User",
        "identity: user.email is test@example.com",
        &format!("repository: {format} refs"),
        "git: version ",
    ] {
        assert!(
            lines.iter().any(|(_, rest)| rest.starts_with(expected)),
            "no \"{expected}\" line: {out}"
        );
    }
}
crate::on_both_ref_formats!(doctor_healthy);

#[test]
fn doctor_names_each_problem_with_its_fix_and_exits_1() {
    let repo = Repo::new();
    let hub = repo.scratch("hub.git");
    repo.git(&["init", "-q", "--bare", &hub]);
    repo.git(&["remote", "add", "hub", &hub]);
    // Half set up: the agent refs, not their notes.
    repo.git(&[
        "config",
        "--add",
        "remote.hub.fetch",
        "+refs/agent/*:refs/agent-remotes/hub/*",
    ]);
    let plain = repo.scratch("plain.git");
    repo.git(&["init", "-q", "--bare", &plain]);
    repo.git(&["remote", "add", "forge", &plain]);
    repo.write(
        ".git-agent.yaml",
        "roles:\n  implementer: { command: [no-such-agent-cli, \"{prompt_file}\"] }\n",
    );
    repo.git(&["config", "--global", "--unset", "user.email"]);
    let out = repo.cmd(&["doctor"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let problems: Vec<String> = doctor_lines(&stdout)
        .into_iter()
        .filter(|(word, _)| word == "problem")
        .map(|(_, rest)| rest)
        .collect();
    let has = |start: &str, fix: &str| {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(start) && p.ends_with(&format!("; fix: {fix}"))),
            "no problem \"{start}\" fixed by \"{fix}\": {stdout}"
        );
    };
    has(
        "role implementer: program \"no-such-agent-cli\" is not on PATH",
        "install no-such-agent-cli, or name another in roles.implementer of .git-agent.yaml (`git agent roles` shows each command)",
    );
    has("hook pre-push: not installed", "git agent hooks install");
    assert!(
        problems.iter().any(|p| p.contains("pushes are not gated")),
        "{stdout}"
    );
    has("remote hub: does not fetch", "git agent init --remote hub");
    assert!(
        stdout.contains("ok       remote forge: carries code only"),
        "a remote for code only is no problem: {stdout}"
    );
    has(
        "identity: user.email is not set",
        "git config --global user.email you@example.com",
    );
    assert!(
        stdout.contains("ok       identity: user.name is Test User"),
        "{stdout}"
    );
    // Following the fixes makes it healthy.
    repo.ok(&["hooks", "install"]);
    repo.ok(&["init", "--remote", "hub"]);
    repo.git(&["config", "--global", "user.email", "you@example.com"]);
    repo.write(
        ".git-agent.yaml",
        "roles:\n  implementer: { command: [sh] }\n",
    );
    let healed = repo.ok(&["doctor"]);
    assert!(!healed.contains("problem"), "{healed}");
}

#[test]
fn doctor_shows_a_bad_configs_file_and_line() {
    let repo = Repo::new();
    repo.ok(&["hooks", "install"]);
    repo.write(
        ".git-agent.yaml",
        "target: main\nroles:\n  implementer: { agent: nosuch }\n",
    );
    let out = repo.cmd(&["doctor"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let config = stdout
        .lines()
        .find(|l| l.starts_with("problem  config: "))
        .unwrap_or_else(|| panic!("no config problem: {stdout}"));
    assert!(
        config.contains(".git-agent.yaml:3: roles.implementer.agent"),
        "{config}"
    );
    assert!(config.contains("nosuch"), "{config}");
}

#[test]
fn doctor_in_a_hub_checks_post_receive_and_not_the_client_hooks() {
    let repo = Repo::new();
    let hub = repo.scratch("hub.git");
    repo.git(&["init", "-q", "--bare", &hub]);
    let in_hub = |args: &[&str]| {
        let mut cmd = repo.cmd(args);
        cmd.current_dir(&hub);
        cmd.output().unwrap()
    };
    let out = in_hub(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("problem  hook post-receive: not installed")
            && stdout.contains("; fix: git agent hooks install --server"),
        "{stdout}"
    );
    assert!(!stdout.contains("pre-push"), "{stdout}");
    assert!(in_hub(&["hooks", "install", "--server"]).status.success());
    let out = in_hub(&["doctor"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("ok       hook post-receive: installed"),
        "{stdout}"
    );
}

#[test]
fn status_watch_refuses_an_interval_that_is_no_duration() {
    let repo = Repo::new();
    for bad in ["0", "-1", "1e30", "NaN"] {
        let err = repo.fails(2, &["status", "--watch", &format!("--interval={bad}")]);
        assert!(
            err.contains(&format!("--interval: {}", bad.parse::<f64>().unwrap())),
            "{bad}: {err}"
        );
    }
}

/// Through git's own bash completion (the script git ships; another path
/// in `GIT_AGENT_GIT_COMPLETION`): `git agent <TAB>` reaches ours.
#[test]
fn gits_own_bash_completion_completes_git_agent() {
    let repo = Repo::new();
    let git_completion = std::env::var("GIT_AGENT_GIT_COMPLETION")
        .unwrap_or_else(|_| "/usr/share/bash-completion/completions/git".into());
    assert!(
        std::path::Path::new(&git_completion).exists(),
        "git's bash completion is not at {git_completion}: set GIT_AGENT_GIT_COMPLETION"
    );
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let code = format!(
            "source {git_completion}; source <({BIN} completions bash); \
             COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{line}'; COMP_POINT={point}; \
             __git_wrap__git_main git '{cur}' '{prev}'; echo \"${{COMPREPLY[@]}}\"",
            words = words.join(" "),
            cword = words.len() - 1,
            point = line.len(),
            cur = words[words.len() - 1],
            prev = words[words.len() - 2],
        );
        bash(&repo, &code)
    };
    assert_eq!(
        complete("git agent sta")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["status", "stats"]
    );
    assert!(complete("git agent doctor --co").contains("--color"));
    assert!(complete("git agent status --wa").contains("--watch"));
}
