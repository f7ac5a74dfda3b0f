//! `git agent self-install`: the `git-agent-<cmd>` links and the man pages,
//! placed beside the binary so that git and man find them, and the shell
//! completions, where bash, zsh and fish look for a user's.

use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::{Path, PathBuf};

/// Link `git-agent-<cmd>` for every command, install the man pages and the
/// bash, zsh and fish completions (under $XDG_DATA_HOME, fish's under
/// $XDG_CONFIG_HOME).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the links go [default: the directory of this binary].
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Where the man pages go [default: <bin-dir>/../share/man/man1].
    #[arg(long, value_name = "DIR")]
    man_dir: Option<PathBuf>,
    /// Write only the man pages (how `man/` in the repository is made).
    #[arg(long)]
    man_only: bool,
}

pub fn run(args: Args) -> Result<()> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let bin_dir = match args.bin_dir {
        Some(dir) => dir,
        None => exe
            .parent()
            .context("this binary has no directory")?
            .to_path_buf(),
    };
    let man_dir = args
        .man_dir
        .unwrap_or_else(|| bin_dir.join("..").join("share").join("man").join("man1"));
    if !args.man_only {
        std::fs::create_dir_all(&bin_dir)
            .with_context(|| format!("creating {}", bin_dir.display()))?;
        let names = command_names();
        for name in &names {
            replace_link(&exe, &bin_dir.join(format!("git-agent-{name}")))?;
        }
        println!(
            "linked {} commands as git-agent-<cmd> in {}",
            names.len(),
            bin_dir.display()
        );
    }
    std::fs::create_dir_all(&man_dir).with_context(|| format!("creating {}", man_dir.display()))?;
    let pages = man_pages()?;
    for (file, content) in &pages {
        std::fs::write(man_dir.join(file), content).with_context(|| format!("writing {file}"))?;
    }
    println!("wrote {} man pages to {}", pages.len(), man_dir.display());
    if !args.man_only {
        install_completions()?;
    }
    Ok(())
}

/// Write the completion script of each shell where that shell looks for a
/// user's completions.
fn install_completions() -> Result<()> {
    for shell in super::completions::SHELLS {
        let path = super::completions::user_path(shell)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let script = super::completions::script(shell)?;
        // A temp file renamed into place: a kill leaves the old script or the new.
        let mut temp = tempfile::NamedTempFile::new_in(path.parent().unwrap_or(Path::new(".")))
            .with_context(|| format!("writing {}", path.display()))?;
        std::io::Write::write_all(&mut temp, &script)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o644))?;
        temp.persist(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {shell} completions to {}", path.display());
    }
    let zsh = super::completions::user_path("zsh")?;
    if let Some(dir) = zsh.parent() {
        println!(
            "  zsh: put fpath=({} $fpath) before compinit in ~/.zshrc",
            dir.display()
        );
    }
    Ok(())
}

/// The names of the top-level commands, as `git agent <name>` takes them.
pub fn command_names() -> Vec<String> {
    super::Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|n| n != "self-install" && n != "help")
        .collect()
}

/// Point `link` at `target`, replacing whatever link was there.
fn replace_link(target: &Path, link: &Path) -> Result<()> {
    if link.symlink_metadata().is_ok() {
        std::fs::remove_file(link).with_context(|| format!("replacing {}", link.display()))?;
    }
    std::os::unix::fs::symlink(target, link).with_context(|| format!("linking {}", link.display()))
}

/// Every man page: `git-agent.1` and `git-agent-<cmd>.1` for each command
/// (nested commands too), rendered from the clap definition.
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>> {
    let mut root = super::Cli::command();
    root.build();
    let mut pages = Vec::new();
    render(&root, "git-agent", "git agent", &mut pages)?;
    Ok(pages)
}

/// Render `cmd`, invoked as `words` (`git agent task add`), into page
/// `<file>.1`, then its subcommands.
fn render(
    cmd: &clap::Command,
    file: &str,
    words: &str,
    pages: &mut Vec<(String, Vec<u8>)>,
) -> Result<()> {
    let cmd = cmd
        .clone()
        .name(file.to_string())
        .bin_name(words.to_string());
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    pages.push((format!("{file}.1"), buf));
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = sub.get_name();
        render(
            sub,
            &format!("{file}-{name}"),
            &format!("{words} {name}"),
            pages,
        )?;
    }
    Ok(())
}
