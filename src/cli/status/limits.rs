//! The part of the board about limits: roles paused by a rate limit, and
//! what was spent against `budget:`. Printed first, as it says why work
//! that could run does not.

use anyhow::Result;

use crate::model::task::Task;
use crate::orchestrate::limits::{self, describe_pause, running_state};
use crate::stats::text::money;
use crate::store::Store;

/// Print the pauses of a running `git agent run` and, where a budget is
/// set, the spend against it; nothing otherwise.
pub fn print(store: &Store, tasks: &[Task]) -> Result<()> {
    let running = running_state(&store.agent_dir());
    if let Some(state) = &running {
        for (role, pause) in &state.pauses {
            if let Some(left) = describe_pause(pause) {
                println!(
                    "paused: {role} dispatch, rate limited ({} in a row), resumes in {left} at {}: {}",
                    pause.hits,
                    short_time(&pause.until),
                    pause.reason
                );
            }
        }
    }
    let budget = crate::agent::config::team(store)?.budget;
    if !budget.is_set() {
        return Ok(());
    }
    let mut lines = Vec::new();
    if let Some(limit) = budget.run_usd {
        let spent = running
            .as_ref()
            .map_or(0.0, |s| s.spent.cost_usd.unwrap_or(0.0));
        let what = match &running {
            Some(state) => match &state.stopped {
                Some(_) => "this run spent (and starts nothing new)",
                None => "this run spent",
            },
            None => "no run now; a run may spend",
        };
        lines.push(match running {
            Some(_) => format!(
                "{what} {} of run_usd {}",
                money_or_zero(spent),
                money(limit)
            ),
            None => format!("{what} run_usd {}", money(limit)),
        });
    }
    if budget.task_usd.is_some() || budget.task_tokens.is_some() {
        for task in tasks.iter().filter(|t| !t.state.is_terminal()) {
            let spent = limits::task_spent(&store.events(&task.id)?);
            let mut parts = Vec::new();
            if let Some(limit) = budget.task_usd {
                parts.push(format!(
                    "{} of task_usd {}",
                    money_or_zero(spent.cost_usd.unwrap_or(0.0)),
                    money(limit)
                ));
            }
            if let Some(limit) = budget.task_tokens {
                parts.push(format!(
                    "{} of task_tokens {limit}",
                    spent.tokens.unwrap_or(0)
                ));
            }
            lines.push(format!("{}  {}", task.id, parts.join(", ")));
        }
    }
    println!("budget ({}):", lines.len());
    for line in lines {
        println!("  {line}");
    }
    Ok(())
}

fn money_or_zero(usd: f64) -> String {
    format!("${usd:.4}")
}

/// `12:03:04` of an RFC 3339 time, in the local time zone.
fn short_time(at: &str) -> String {
    at.parse::<jiff::Timestamp>()
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| at.to_string())
}
