//! Budgets and rate limits while agents run: what this run and each task
//! spent against `budget:`, and which roles' dispatch pauses after a rate
//! limit. The scheduler and its workers share one [`Ledger`]; it is written
//! to `<git-common-dir>/agent/run-state.json` as it changes, so that
//! `git agent status` (another process) can show it.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::agent::config::{Launch, Role};
use crate::agent::limits::Budget;
use crate::model::span::{epoch_ms, Span};
use crate::model::task::Event;
use crate::model::usage::Usage;

/// The file a run's ledger is kept in, in the agent dir.
pub const STATE_FILE: &str = "run-state.json";

/// A run of a role's agent met a rate limit: the line of output that said so.
#[derive(Debug, thiserror::Error)]
#[error("rate limited: {0}")]
pub struct RateLimited(pub String);

/// What one run spent and which roles pause, as `run-state.json` holds it.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct RunState {
    /// The orchestrator's process: its state means nothing once it is gone.
    pub pid: u32,
    pub started_at: String,
    /// What agents reported in this run.
    pub spent: Usage,
    /// Set once `budget.run_usd` is spent: nothing new starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Roles whose dispatch pauses after a rate limit, by role.
    #[serde(default)]
    pub pauses: BTreeMap<String, Pause>,
    /// Spans of rate-limited runs, kept until the event their role records
    /// next for the task carries them (a rate limit ends a reviewer's or
    /// integrator's run with no event of its own). Kept on disk, so that a
    /// run killed before that event hands them to the next run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<Held>,
}

/// The span of a rate-limited run of `role` on `task`, not yet in an event.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Held {
    pub task: String,
    pub role: String,
    pub span: Span,
}

/// One role's pause after rate limits in a row.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Pause {
    /// When dispatch resumes (RFC 3339, UTC, ms).
    pub until: String,
    /// Rate limits in a row: each doubles the pause.
    pub hits: u32,
    /// The line of output that showed the rate limit.
    pub reason: String,
}

/// A run's spending and pauses, shared by its threads.
pub struct Ledger {
    budget: Budget,
    /// Where the state is written; unset: kept in memory only.
    file: std::sync::OnceLock<PathBuf>,
    state: Mutex<RunState>,
}

impl Ledger {
    /// A ledger kept in memory only (one `git agent work`, `review`, …).
    pub fn new(budget: Budget) -> Ledger {
        Ledger {
            budget,
            file: std::sync::OnceLock::new(),
            state: Mutex::new(RunState {
                pid: std::process::id(),
                started_at: crate::store::now(),
                ..RunState::default()
            }),
        }
    }

    /// Keep the span of a rate-limited run of `role` on `task` for the
    /// next event that role records for it ([`Ledger::take_held`]).
    pub fn hold(&self, task: &str, role: &str, span: Span) {
        self.lock().held.push(Held {
            task: task.to_string(),
            role: role.to_string(),
            span,
        });
        let _ = self.save();
    }

    /// The spans held for `role` on `task`, oldest first, handed over once.
    pub fn take_held(&self, task: &str, role: &str) -> Vec<Span> {
        let taken: Vec<Span> = {
            let mut state = self.lock();
            let (taken, kept) = std::mem::take(&mut state.held)
                .into_iter()
                .partition(|h| h.task == task && h.role == role);
            state.held = kept;
            taken.into_iter().map(|h: Held| h.span).collect()
        };
        if !taken.is_empty() {
            let _ = self.save();
        }
        taken
    }

    /// Keep this ledger in `<agent_dir>/run-state.json` from now on, for
    /// `status` to read: what a `git agent run` does when it starts.
    pub fn persist_in(&self, agent_dir: &Path) -> Result<()> {
        std::fs::create_dir_all(agent_dir)?;
        let file = agent_dir.join(STATE_FILE);
        // What an earlier run held and never handed over (it was killed
        // first) goes to the next event of its role here.
        let earlier = std::fs::read_to_string(&file)
            .ok()
            .and_then(|text| serde_json::from_str::<RunState>(&text).ok())
            .filter(|old| old.pid != std::process::id());
        if let Some(earlier) = earlier {
            let mut state = self.lock();
            let mine = std::mem::take(&mut state.held);
            state.held = earlier.held.into_iter().chain(mine).collect();
        }
        let _ = self.file.set(file);
        self.save()
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save(&self) -> Result<()> {
        let Some(file) = self.file.get() else {
            return Ok(());
        };
        let json = serde_json::to_vec_pretty(&*self.lock())?;
        // Written whole, then renamed: a reader never sees half a file.
        let partial = file.with_extension("json.partial");
        std::fs::write(&partial, json)?;
        std::fs::rename(&partial, file)?;
        Ok(())
    }

    /// Count what an agent reported against this run's budget.
    pub fn spend(&self, usage: Option<&Usage>) {
        let Some(usage) = usage else {
            return;
        };
        {
            let mut state = self.lock();
            state.spent = state.spent.plus(usage);
        }
        let _ = self.save();
    }

    /// What this run spent so far.
    pub fn spent(&self) -> Usage {
        self.lock().spent.clone()
    }

    /// Why nothing new may start: the run budget is spent. Says so once,
    /// the first time it is found, and remembers it.
    pub fn run_budget_spent(&self) -> Option<String> {
        let limit = self.budget.run_usd?;
        let mut state = self.lock();
        if state.stopped.is_none() {
            let spent = state.spent.cost_usd.unwrap_or(0.0);
            if spent < limit {
                return None;
            }
            state.stopped = Some(format!(
                "the run budget is spent: ${spent:.4} of budget.run_usd ${limit:.4}"
            ));
            drop(state);
            let _ = self.save();
            return self.lock().stopped.clone();
        }
        state.stopped.clone()
    }

    /// Dollars an agent of task `task_spent` may still spend: the least of
    /// what is left of the task's and of the run's budget, if either is set.
    pub fn remaining_usd(&self, task_spent: &Usage) -> Option<f64> {
        let task = self
            .budget
            .task_usd
            .map(|b| b - task_spent.cost_usd.unwrap_or(0.0));
        let run = self
            .budget
            .run_usd
            .map(|b| b - self.lock().spent.cost_usd.unwrap_or(0.0));
        match (task, run) {
            (Some(a), Some(b)) => Some(a.min(b).max(0.0)),
            (a, b) => a.or(b).map(|r| r.max(0.0)),
        }
    }

    /// How `role` runs as `name`, with the remaining budget passed to a
    /// CLI that takes one (Claude Code's `--max-budget-usd`).
    pub fn launch(&self, role: &Role, name: &str, task_spent: &Usage) -> Launch {
        let mut launch = role.launch(name);
        if let (Some(preset), Some(usd)) = (launch.preset, self.remaining_usd(task_spent)) {
            launch.argv.extend(preset.budget_args(usd));
        }
        launch
    }

    /// `role` met a rate limit (`reason`: the line that said so): pause its
    /// dispatch, longer for each one in a row. Returns the pause.
    pub fn pause(&self, name: &str, role: &Role, reason: &str) -> Duration {
        let limit = role.rate_limit();
        let pause = {
            let mut state = self.lock();
            let hits = state.pauses.get(name).map_or(0, |p| p.hits) + 1;
            let pause = limit.pause(hits, jitter());
            let until = jiff::Timestamp::now()
                + jiff::SignedDuration::from_millis(pause.as_millis() as i64);
            state.pauses.insert(
                name.to_string(),
                Pause {
                    until: until.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                    hits,
                    reason: crate::model::one_line(reason, 200),
                },
            );
            pause
        };
        let _ = self.save();
        pause
    }

    /// `name` ran without meeting a rate limit: the next one starts the
    /// backoff afresh.
    pub fn clear_pause(&self, name: &str) {
        let removed = self.lock().pauses.remove(name).is_some();
        if removed {
            let _ = self.save();
        }
    }

    /// How long `name`'s dispatch still pauses, if it does.
    pub fn paused(&self, name: &str) -> Option<Duration> {
        let state = self.lock();
        left(state.pauses.get(name)?)
    }

    /// The longest pause still running of any role.
    pub fn any_pause(&self) -> Option<Duration> {
        self.lock().pauses.values().filter_map(left).max()
    }
}

/// How long `pause` has left, if any.
fn left(pause: &Pause) -> Option<Duration> {
    let until = epoch_ms(&pause.until)?;
    let now = jiff::Timestamp::now().as_millisecond();
    (until > now).then(|| Duration::from_millis((until - now) as u64))
}

/// The state a running `git agent run` keeps in `agent_dir`, if one runs.
pub fn running_state(agent_dir: &Path) -> Option<RunState> {
    let text = std::fs::read_to_string(agent_dir.join(STATE_FILE)).ok()?;
    let state: RunState = serde_json::from_str(&text).ok()?;
    crate::store::lease::pid_is_running(state.pid).then_some(state)
}

/// How long a pause has left, in words (`12s`), if it is still on.
pub fn describe_pause(pause: &Pause) -> Option<String> {
    left(pause).map(|d| format!("{:.0}s", d.as_secs_f64().ceil()))
}

/// What a task's agents reported over its whole history: each event's
/// agent spans where it has them, else the usage its data carries.
pub fn task_spent(events: &[Event]) -> Usage {
    events
        .iter()
        .filter_map(crate::model::span::usage_of)
        .fold(Usage::default(), |all, u| all.plus(&u))
}

/// Why task of `spent` is over `budget`, if it is: the budget and the spend.
pub fn task_over_budget(budget: &Budget, spent: &Usage) -> Option<String> {
    if let (Some(limit), Some(cost)) = (budget.task_usd, spent.cost_usd) {
        if cost >= limit {
            return Some(format!(
                "over budget: its agents spent ${cost:.4} of budget.task_usd ${limit:.4}"
            ));
        }
    }
    if let (Some(limit), Some(tokens)) = (budget.task_tokens, spent.tokens) {
        if tokens >= limit {
            return Some(format!(
                "over budget: its agents used {tokens} tokens of budget.task_tokens {limit}"
            ));
        }
    }
    None
}

/// A number from 0 to 1, different each call: the jitter of a pause.
fn jitter() -> f64 {
    (crate::model::id::random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(cost: f64) -> Usage {
        Usage {
            cost_usd: Some(cost),
            ..Usage::default()
        }
    }

    #[test]
    fn held_spans_outlive_a_run_killed_before_handing_them_over() {
        let dir = tempfile::tempdir().unwrap();
        let span = Span::new(
            "agent",
            "2026-01-01T00:00:00.000Z",
            "2026-01-01T00:00:01.000Z",
        );
        // A run that held a span and died: its file is all that is left.
        let earlier = RunState {
            pid: u32::MAX,
            held: vec![Held {
                task: "t-1".into(),
                role: "reviewer".into(),
                span: span.clone(),
            }],
            ..RunState::default()
        };
        std::fs::write(
            dir.path().join(STATE_FILE),
            serde_json::to_vec(&earlier).unwrap(),
        )
        .unwrap();
        let ledger = Ledger::new(Budget::default());
        ledger.persist_in(dir.path()).unwrap();
        assert!(ledger.take_held("t-1", "integrator").is_empty());
        assert_eq!(ledger.take_held("t-1", "reviewer"), vec![span.clone()]);
        assert!(
            ledger.take_held("t-1", "reviewer").is_empty(),
            "handed over once"
        );
        // And one held now is on disk at once.
        ledger.hold("t-2", "reviewer", span);
        let text = std::fs::read_to_string(dir.path().join(STATE_FILE)).unwrap();
        let state: RunState = serde_json::from_str(&text).unwrap();
        assert_eq!(state.held.len(), 1);
        assert_eq!(state.held[0].task, "t-2");
    }

    #[test]
    fn the_remaining_budget_is_the_least_of_task_and_run() {
        let ledger = Ledger::new(Budget {
            task_usd: Some(1.0),
            run_usd: Some(5.0),
            task_tokens: None,
        });
        assert_eq!(ledger.remaining_usd(&usd(0.25)), Some(0.75));
        ledger.spend(Some(&usd(4.5)));
        assert_eq!(ledger.remaining_usd(&usd(0.25)), Some(0.5));
        assert_eq!(ledger.run_budget_spent(), None);
        ledger.spend(Some(&usd(0.5)));
        assert!(ledger
            .run_budget_spent()
            .unwrap()
            .contains("$5.0000 of budget.run_usd"));
        assert_eq!(ledger.remaining_usd(&usd(2.0)), Some(0.0));
        assert_eq!(
            Ledger::new(Budget::default()).remaining_usd(&usd(1.0)),
            None
        );
    }

    #[test]
    fn a_task_is_over_budget_by_dollars_or_tokens() {
        let budget = Budget {
            task_usd: Some(0.5),
            run_usd: None,
            task_tokens: Some(1000),
        };
        assert_eq!(task_over_budget(&budget, &usd(0.4)), None);
        let why = task_over_budget(&budget, &usd(0.5)).unwrap();
        assert!(why.contains("$0.5000 of budget.task_usd $0.5000"), "{why}");
        let tokens = Usage {
            tokens: Some(1200),
            ..Usage::default()
        };
        assert!(task_over_budget(&budget, &tokens)
            .unwrap()
            .contains("1200 tokens"));
    }

    #[test]
    fn jitter_stays_between_0_and_1() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..=1.0).contains(&j), "{j}");
        }
    }
}
