//! The part of the board about limits: roles paused by a rate limit, and
//! what was spent against `budget:`. Printed first, as it says why work
//! that could run does not; `status --json` carries the same as `limits`.

use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;

use crate::orchestrate::limits::{self, describe_pause, running_state};
use crate::stats::text::money;
use crate::store::Store;

/// Pauses and spend against the budget, as `status --json` prints them.
#[derive(Serialize, Debug, Default)]
pub struct Limits {
    /// Roles whose dispatch a running `git agent run` pauses, by role.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pauses: BTreeMap<String, limits::Pause>,
    /// Set where `.git-agent.yaml` sets a budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetView>,
    /// Why the budget could not be read (a broken `.git-agent.yaml`): the
    /// board is still shown, since it lives in refs, not in the config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
}

#[derive(Serialize, Debug, Default)]
pub struct BudgetView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_usd: Option<f64>,
    /// What the running `git agent run` spent; none when no run runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_spent_usd: Option<f64>,
    /// Why the running run starts nothing new, once its budget is spent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_stopped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_tokens: Option<u64>,
    /// What each unfinished task spent, where a task budget is set.
    pub tasks: Vec<TaskSpend>,
}

#[derive(Serialize, Debug)]
pub struct TaskSpend {
    pub id: String,
    pub cost_usd: f64,
    pub tokens: u64,
}

impl Limits {
    /// The pauses of a running `git agent run` (those still on) and, where
    /// a budget is set, the spend of it and of each task of `unfinished`.
    pub fn of(store: &Store, unfinished: &[&str]) -> Result<Limits> {
        let running = running_state(&store.agent_dir());
        let mut out = Limits::default();
        if let Some(state) = &running {
            for (role, pause) in &state.pauses {
                if describe_pause(pause).is_some() {
                    out.pauses.insert(role.clone(), pause.clone());
                }
            }
        }
        let budget = match crate::agent::config::team(store) {
            Ok(config) => config.budget,
            Err(e) => {
                out.config_error = Some(format!("{e:#}"));
                return Ok(out);
            }
        };
        if !budget.is_set() {
            return Ok(out);
        }
        let mut view = BudgetView {
            run_usd: budget.run_usd,
            task_usd: budget.task_usd,
            task_tokens: budget.task_tokens,
            ..BudgetView::default()
        };
        if let (Some(_), Some(state)) = (budget.run_usd, &running) {
            view.run_spent_usd = Some(state.spent.cost_usd.unwrap_or(0.0));
            view.run_stopped = state.stopped.clone();
        }
        if budget.task_usd.is_some() || budget.task_tokens.is_some() {
            for &id in unfinished {
                let spent = limits::task_spent(&store.events(id)?);
                view.tasks.push(TaskSpend {
                    id: id.to_string(),
                    cost_usd: spent.cost_usd.unwrap_or(0.0),
                    tokens: spent.tokens.unwrap_or(0),
                });
            }
        }
        out.budget = Some(view);
        Ok(out)
    }

    /// Whether there is nothing to say.
    pub fn is_empty(&self) -> bool {
        self.pauses.is_empty() && self.budget.is_none() && self.config_error.is_none()
    }

    /// The warning for stderr where the config could not be read.
    pub fn warning(&self) -> Option<String> {
        let e = self.config_error.as_ref()?;
        Some(format!("warning: the budget is not shown: {e}"))
    }

    /// The lines of the board: pauses, then the budget (a config that could
    /// not be read is [`Limits::warning`]).
    pub fn print(&self, out: &mut String) {
        for (role, pause) in &self.pauses {
            let left = describe_pause(pause).unwrap_or_else(|| "0s".into());
            line!(
                out,
                "paused: {role} dispatch, rate limited ({} in a row), resumes in {left} at {}: {}",
                pause.hits,
                short_time(&pause.until),
                pause.reason
            );
        }
        let Some(budget) = &self.budget else {
            return;
        };
        let mut lines = Vec::new();
        if let Some(limit) = budget.run_usd {
            lines.push(match (budget.run_spent_usd, &budget.run_stopped) {
                (Some(spent), Some(_)) => format!(
                    "this run spent (and starts nothing new) {} of run_usd {}",
                    money_or_zero(spent),
                    money(limit)
                ),
                (Some(spent), None) => format!(
                    "this run spent {} of run_usd {}",
                    money_or_zero(spent),
                    money(limit)
                ),
                (None, _) => format!("no run now; a run may spend run_usd {}", money(limit)),
            });
        }
        for task in &budget.tasks {
            let mut parts = Vec::new();
            if let Some(limit) = budget.task_usd {
                parts.push(format!(
                    "{} of task_usd {}",
                    money_or_zero(task.cost_usd),
                    money(limit)
                ));
            }
            if let Some(limit) = budget.task_tokens {
                parts.push(format!("{} of task_tokens {limit}", task.tokens));
            }
            lines.push(format!("{}  {}", task.id, parts.join(", ")));
        }
        line!(out, "budget ({}):", lines.len());
        for each in lines {
            line!(out, "  {each}");
        }
    }
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
