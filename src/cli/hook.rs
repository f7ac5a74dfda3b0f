//! `git agent hook <name>`: what the installed shims call.

use anyhow::{Context, Result};
use std::io::Read;

use crate::hooks::{self, Hook, HookContext};

/// Run one git hook's work (called by the shims that `hooks install` puts in place).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The hook git ran.
    #[arg(value_enum)]
    name: Name,
    /// The hook's arguments, as git passed them.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Name {
    PostCommit,
    PrePush,
    PostMerge,
    PostRewrite,
    PostReceive,
    /// The background worker post-receive starts (not a git hook).
    #[value(hide = true)]
    Autorun,
}

pub fn run(args: Args) -> Result<()> {
    let store = hooks::open()?;
    let hook = match args.name {
        Name::PostCommit => Hook::PostCommit,
        Name::PrePush => Hook::PrePush,
        Name::PostMerge => Hook::PostMerge,
        Name::PostRewrite => Hook::PostRewrite,
        Name::PostReceive => Hook::PostReceive,
        Name::Autorun => return hooks::receive::worker(&store),
    };
    let mut stdin = String::new();
    if matches!(hook, Hook::PrePush | Hook::PostRewrite | Hook::PostReceive) {
        std::io::stdin()
            .read_to_string(&mut stdin)
            .context("reading the hook's input")?;
    }
    let ctx = HookContext {
        store,
        actor: super::default_actor(),
    };
    hooks::run(&ctx, hook, &args.args, &stdin)
}
