//! `git-agent`: parse the command line, run the command, map the outcome to
//! an exit code. Also answers as `git-agent-<cmd>` (so `git agent-<cmd>` works).

use clap::Parser;
use git_agent::{cli, error};
use std::ffi::OsString;
use std::path::Path;

fn main() {
    // Like git: a reader that goes away (`git agent status | head`) ends us
    // quietly instead of a panic on the broken pipe.
    // SAFETY: setting a signal's disposition to the default touches no memory.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match cli::Cli::try_parse_from(argv()) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let when = cli.color;
    if let Err(e) = cli::run(cli) {
        cli::colour::choose(when);
        let prefix =
            cli::colour::paint(cli::colour::stderr(), cli::colour::Paint::Red, "git-agent:");
        // An error may quote a file or an agent's output.
        let said = format!("{e:#}");
        eprintln!("{prefix} {}", git_agent::model::text::printable(&said));
        std::process::exit(error::exit_code(&e));
    }
}

/// The arguments, with `git-agent-<cmd> args` read as `git-agent <cmd> args`.
fn argv() -> Vec<OsString> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let invoked = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .map(str::to_string);
    if let Some(cmd) = invoked
        .as_deref()
        .and_then(|n| n.strip_prefix("git-agent-"))
    {
        args[0] = "git-agent".into();
        args.insert(1, cmd.into());
    }
    args
}
