//! `git agent roles`: the exact command line and environment each role of
//! the current config runs, presets resolved.

use anyhow::Result;
use serde::Serialize;

use crate::agent::preset::ROLES;
use crate::orchestrate::{find_program, Context};

/// Show each role's resolved argv and environment, and where its program is.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Shown {
    role: &'static str,
    preset: Option<&'static str>,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    /// Where the program was found on PATH, if it was.
    program: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    static NEVER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let ctx = Context::open(&NEVER)?;
    let shown: Vec<Shown> = ROLES
        .iter()
        .filter_map(|&role| {
            let launch = ctx.role(role).ok()?.launch(role);
            Some(Shown {
                role,
                preset: launch.preset.map(|p| p.name()),
                program: launch
                    .argv
                    .first()
                    .and_then(|p| find_program(p))
                    .map(|p| p.display().to_string()),
                argv: launch.argv,
                env: launch.env,
            })
        })
        .collect();
    if args.json {
        return super::print_json(&shown);
    }
    if shown.is_empty() {
        println!("no roles configured: see `git agent init --agent <preset>`");
    }
    for s in &shown {
        let preset = s.preset.map_or(String::new(), |p| format!(" (preset {p})"));
        println!("{}{preset}:", s.role);
        println!("  argv: {}", quoted(&s.argv));
        for (name, value) in &s.env {
            println!("  env:  {name}={value}");
        }
        match &s.program {
            Some(path) => println!("  program: {path}"),
            None => println!("  program: not found on PATH"),
        }
    }
    Ok(())
}

/// An argv as a person would type it: words with spaces or quotes quoted.
fn quoted(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty() && !a.contains(|c: char| c.is_whitespace() || "'\"\\$`".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
