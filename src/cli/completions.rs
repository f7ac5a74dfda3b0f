//! `git agent completions <shell>`: the shell completion script, generated
//! from the clap definition (so it cannot drift from the commands), and the
//! per-user places `self-install` puts each.

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use std::path::PathBuf;

/// Print the completion script for a shell (bash, zsh or fish).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_parser = SHELLS)]
    shell: String,
}

/// The shells completions are made for.
pub const SHELLS: [&str; 3] = ["bash", "zsh", "fish"];

pub fn run(args: Args) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(&script(&args.shell)?)?;
    out.flush()?;
    Ok(())
}

/// In bash, git's own completion hands `git agent <words>` to a function
/// named `_git_agent`: complete the words after `agent` as the words after
/// `git-agent` (`git -C dir agent st<TAB>` works too).
const BASH_GIT_AGENT: &str = r#"
# `git agent <TAB>`: git's completion calls _git_agent; complete the words
# after `agent` as if they followed `git-agent`.
_git_agent() {
    local i=0
    while [[ $i -lt $COMP_CWORD && ${COMP_WORDS[i]} != agent ]]; do
        i=$((i + 1))
    done
    local words_after=("${COMP_WORDS[@]:i+1}")
    local cword_after=$((COMP_CWORD - i))
    local COMP_WORDS=(git-agent "${words_after[@]}")
    local COMP_CWORD=$cword_after
    _git__agent git-agent "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
}
"#;

/// The completion script for `shell`, one of [`SHELLS`].
pub fn script(shell: &str) -> Result<Vec<u8>> {
    let generator = match shell {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        other => anyhow::bail!("no completions for shell \"{other}\": bash, zsh or fish"),
    };
    let mut cmd = super::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(generator, &mut cmd, "git-agent", &mut buf);
    if shell == "bash" {
        // clap_complete names a subcommand's case `git__subcmd__agent__...`
        // where its word loop sets `git__agent__...` (the dash of the
        // binary's name is split twice): make the two agree, so that a
        // subcommand's flags complete.
        let text = String::from_utf8(buf)?.replace("git__subcmd__agent__", "git__agent__");
        buf = text.into_bytes();
        buf.extend_from_slice(BASH_GIT_AGENT.as_bytes());
    }
    Ok(buf)
}

/// Where a user's shell finds `shell`'s completions for git-agent, as the
/// bash-completion, zsh and fish conventions have it: under
/// `$XDG_DATA_HOME` (`~/.local/share`), fish's under `$XDG_CONFIG_HOME`
/// (`~/.config`).
pub fn user_path(shell: &str) -> Result<PathBuf> {
    let xdg = |var: &str, fallback: &str| -> Result<PathBuf> {
        match std::env::var_os(var).filter(|v| !v.is_empty()) {
            Some(dir) => Ok(PathBuf::from(dir)),
            None => {
                let home = std::env::var_os("HOME")
                    .filter(|h| !h.is_empty())
                    .with_context(|| format!("neither {var} nor HOME is set"))?;
                Ok(PathBuf::from(home).join(fallback))
            }
        }
    };
    Ok(match shell {
        "bash" => {
            xdg("XDG_DATA_HOME", ".local/share")?.join("bash-completion/completions/git-agent")
        }
        "zsh" => xdg("XDG_DATA_HOME", ".local/share")?.join("zsh/site-functions/_git-agent"),
        _ => xdg("XDG_CONFIG_HOME", ".config")?.join("fish/completions/git-agent.fish"),
    })
}
