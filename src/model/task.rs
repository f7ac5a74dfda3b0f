//! The task, its events, and the state machine that folds events into a
//! snapshot. Pure: `apply` is the only way a task changes.

use crate::model::queue::QueueStay;
use crate::model::span::Span;
use crate::model::usage::Usage;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a task stands. `ready` and `blocked` are derived from `Open` and the
/// dependencies, never stored.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Open,
    InProgress,
    InReview,
    Approved,
    Merged,
    NeedsHuman,
    Abandoned,
}

impl State {
    pub const ALL: [State; 7] = [
        State::Open,
        State::InProgress,
        State::InReview,
        State::Approved,
        State::Merged,
        State::NeedsHuman,
        State::Abandoned,
    ];

    /// The name used in JSON, in trailers and on the board.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::InProgress => "in_progress",
            State::InReview => "in_review",
            State::Approved => "approved",
            State::Merged => "merged",
            State::NeedsHuman => "needs_human",
            State::Abandoned => "abandoned",
        }
    }

    /// The state named `name` (as [`State::as_str`] writes it).
    pub fn parse(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Merged and abandoned tasks never move again.
    pub fn is_terminal(self) -> bool {
        matches!(self, State::Merged | State::Abandoned)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The snapshot stored as `task.json` after every event.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Task {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub spec: String,
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub scope: Vec<String>,
    pub priority: i64,
    #[serde(default)]
    pub labels: Vec<String>,
    pub state: State,
    pub attempts: u32,
    pub max_attempts: u32,
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub base: Option<String>,
    #[serde(default)]
    pub head: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub lamport: u64,
    /// Position in the plan that created the task (0 for tasks added by hand):
    /// among equal priorities, plan order is start order.
    #[serde(default)]
    pub seq: u64,
}

/// Default priority: lower runs first.
pub const DEFAULT_PRIORITY: i64 = 2;
/// Default attempts before a task goes to a human.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// What a new task is made of: the `created` event's data.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct NewTask {
    pub title: String,
    #[serde(default)]
    pub spec: String,
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub scope: Vec<String>,
    pub priority: i64,
    #[serde(default)]
    pub labels: Vec<String>,
    pub max_attempts: u32,
    #[serde(default)]
    pub seq: u64,
}

/// The fields a `task edit` may change; absent fields stay as they are.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct TaskEdit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

impl TaskEdit {
    pub fn is_empty(&self) -> bool {
        *self == TaskEdit::default()
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    Changes,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Retry,
    Approve,
    Abandon,
}

/// What an event does, with its data. Serialized as `"kind"` and `"data"`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Change {
    Created(NewTask),
    Edited(TaskEdit),
    Claimed {
        assignee: String,
    },
    Released {
        #[serde(default)]
        reason: Option<String>,
    },
    Failed {
        reason: String,
        #[serde(default)]
        log_tail: Option<String>,
        /// What the attempt's agent used, where it reported it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
    },
    Submitted {
        head: String,
        #[serde(default)]
        branch: Option<String>,
        #[serde(default)]
        base: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
    },
    Reviewed {
        verdict: Verdict,
        head: String,
        #[serde(default)]
        summary: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
    },
    IntegrationFailed {
        reason: String,
        #[serde(default)]
        detail: Option<String>,
        /// What the integrator agent used, if one ran.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
        /// Its stay in the merge queue: times, gate runs, why it left.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<QueueStay>,
    },
    Merged {
        #[serde(default)]
        commit: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
        /// Its stay in the merge queue, where the queue merged it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<QueueStay>,
    },
    Escalated {
        reason: String,
        /// Its stay in the merge queue, where the queue gave up on it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<QueueStay>,
    },
    Resolved {
        resolution: Resolution,
        #[serde(default)]
        message: Option<String>,
    },
}

impl Change {
    /// The event kind as written in `event.json` and the `Agent-Event` trailer.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Created(_) => "created",
            Change::Edited(_) => "edited",
            Change::Claimed { .. } => "claimed",
            Change::Released { .. } => "released",
            Change::Failed { .. } => "failed",
            Change::Submitted { .. } => "submitted",
            Change::Reviewed { .. } => "reviewed",
            Change::IntegrationFailed { .. } => "integration_failed",
            Change::Merged { .. } => "merged",
            Change::Escalated { .. } => "escalated",
            Change::Resolved { .. } => "resolved",
        }
    }
}

/// One entry of a task's history, stored as `event.json` in its commit.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Event {
    pub id: String,
    #[serde(flatten)]
    pub change: Change,
    pub at: String,
    pub actor: String,
    pub role: String,
    pub attempt: u32,
    pub lamport: u64,
    /// When the work this event accounts for ran (an attempt's agent, its
    /// set-up, a merge and its gate); absent in histories written before
    /// spans were recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<Span>,
}

/// Why `apply` refused an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("a task's first event must be `created`, not `{0}`")]
    NotCreated(&'static str),
    #[error("the task exists already; `created` can only be its first event")]
    AlreadyCreated,
    #[error("a task that is {state} cannot take a `{kind}` event")]
    Transition { state: State, kind: &'static str },
}

/// The state a `change` moves a task in `from` to, or `None` if the state
/// machine refuses it. This table is the whole state machine; `apply` adds
/// only the bookkeeping (attempts, head, reason, …).
pub fn next_state(from: State, change: &Change, attempts_left: bool) -> Option<State> {
    use State::*;
    let on_failure = if attempts_left { Open } else { NeedsHuman };
    match (from, change) {
        (_, Change::Created(_)) => None,
        (s, _) if s.is_terminal() => None,
        (s, Change::Edited(_)) => Some(s),
        (Open, Change::Claimed { .. }) => Some(InProgress),
        (InProgress, Change::Released { .. }) => Some(Open),
        (InProgress, Change::Failed { .. }) => Some(on_failure),
        (InProgress, Change::Submitted { .. }) => Some(InReview),
        (InReview, Change::Reviewed { verdict, .. }) => Some(match verdict {
            Verdict::Approve => Approved,
            Verdict::Changes => on_failure,
        }),
        (Approved, Change::IntegrationFailed { .. }) => Some(on_failure),
        // Work can reach the target by any road (the queue, a person's merge,
        // a squash recognised by a hook): it is a fact, recorded in any live state.
        (_, Change::Merged { .. }) => Some(Merged),
        (_, Change::Escalated { .. }) => Some(NeedsHuman),
        // A person may give up a task in any live state, not only when asked.
        (
            _,
            Change::Resolved {
                resolution: Resolution::Abandon,
                ..
            },
        ) => Some(Abandoned),
        (NeedsHuman, Change::Resolved { resolution, .. }) => Some(match resolution {
            Resolution::Retry => Open,
            Resolution::Approve => Approved,
            Resolution::Abandon => Abandoned,
        }),
        _ => None,
    }
}

impl Task {
    /// Attempts made so far: the failed ones (`attempts`), and the one that
    /// runs or went on to review and merge. `GIT_AGENT_ATTEMPT` is this
    /// number while an attempt runs.
    pub fn attempts_made(&self) -> u32 {
        let current = matches!(
            self.state,
            State::InProgress | State::InReview | State::Approved | State::Merged
        );
        self.attempts + u32::from(current)
    }

    /// The attempts in words, the same wherever they are shown: "attempt 2
    /// of 3, 1 failed", "no attempt yet (3 allowed)".
    pub fn attempt_words(&self) -> String {
        match (self.attempts_made(), self.attempts) {
            (0, _) => format!("no attempt yet ({} allowed)", self.max_attempts),
            (made, 0) => format!("attempt {made} of {}", self.max_attempts),
            (made, failed) => format!("attempt {made} of {}, {failed} failed", self.max_attempts),
        }
    }
}

/// Whether a change counts as a failed attempt (it increments `attempts`).
fn is_failed_attempt(change: &Change) -> bool {
    matches!(
        change,
        Change::Failed { .. }
            | Change::IntegrationFailed { .. }
            | Change::Reviewed {
                verdict: Verdict::Changes,
                ..
            }
    )
}

/// Fold `event` into `task` (`None` before the first event) and return the new
/// snapshot. Refuses what the state machine does not allow; never panics.
pub fn apply(task: Option<&Task>, event: &Event, id: &str) -> Result<Task, Refused> {
    let Some(task) = task else {
        let Change::Created(new) = &event.change else {
            return Err(Refused::NotCreated(event.change.kind()));
        };
        return Ok(created(id, new, event));
    };
    if matches!(event.change, Change::Created(_)) {
        return Err(Refused::AlreadyCreated);
    }
    let failed = is_failed_attempt(&event.change);
    let attempts = task.attempts + u32::from(failed);
    let state = next_state(task.state, &event.change, attempts < task.max_attempts).ok_or(
        Refused::Transition {
            state: task.state,
            kind: event.change.kind(),
        },
    )?;
    let mut next = task.clone();
    next.state = state;
    next.attempts = attempts;
    next.updated_at = event.at.clone();
    next.lamport = next.lamport.max(event.lamport);
    record_details(&mut next, &event.change);
    if state == State::NeedsHuman && failed {
        let why = next.reason.take().unwrap_or_default();
        next.reason = Some(format!(
            "{why} (attempt {attempts} of {}: attempts used up)",
            task.max_attempts
        ));
    }
    Ok(next)
}

fn created(id: &str, new: &NewTask, event: &Event) -> Task {
    Task {
        id: id.to_string(),
        title: new.title.clone(),
        spec: new.spec.clone(),
        plan: new.plan.clone(),
        depends_on: new.depends_on.clone(),
        scope: new.scope.clone(),
        priority: new.priority,
        labels: new.labels.clone(),
        state: State::Open,
        attempts: 0,
        max_attempts: new.max_attempts,
        assignee: None,
        branch: None,
        base: None,
        head: None,
        reason: None,
        created_at: event.at.clone(),
        updated_at: event.at.clone(),
        lamport: event.lamport,
        seq: new.seq,
    }
}

/// The snapshot fields an event sets besides the state.
fn record_details(task: &mut Task, change: &Change) {
    match change {
        Change::Created(_) => {}
        Change::Edited(edit) => {
            let e = edit.clone();
            if let Some(v) = e.title {
                task.title = v;
            }
            if let Some(v) = e.spec {
                task.spec = v;
            }
            if let Some(v) = e.depends_on {
                task.depends_on = v;
            }
            if let Some(v) = e.scope {
                task.scope = v;
            }
            if let Some(v) = e.priority {
                task.priority = v;
            }
            if let Some(v) = e.labels {
                task.labels = v;
            }
            if let Some(v) = e.max_attempts {
                task.max_attempts = v;
            }
        }
        Change::Claimed { assignee } => {
            task.assignee = Some(assignee.clone());
            task.reason = None;
        }
        Change::Released { reason } => {
            task.assignee = None;
            task.reason = reason.clone();
        }
        Change::Failed { reason, .. } => {
            task.assignee = None;
            task.reason = Some(reason.clone());
        }
        Change::Submitted {
            head, branch, base, ..
        } => {
            task.head = Some(head.clone());
            task.branch = branch.clone().or(task.branch.take());
            task.base = base.clone().or(task.base.take());
            task.assignee = None;
            task.reason = None;
        }
        Change::Reviewed {
            verdict, summary, ..
        } => {
            task.reason = match verdict {
                Verdict::Approve => None,
                Verdict::Changes => Some(format!(
                    "review asked for changes: {}",
                    summary.as_deref().unwrap_or("(no summary)")
                )),
            };
        }
        Change::IntegrationFailed { reason, .. } | Change::Escalated { reason, .. } => {
            task.assignee = None;
            task.reason = Some(reason.clone());
        }
        Change::Merged { .. } => {
            task.assignee = None;
            task.reason = None;
        }
        Change::Resolved {
            resolution,
            message,
        } => {
            if *resolution == Resolution::Retry {
                // A human's retry gives the task a fresh set of attempts.
                task.attempts = 0;
            }
            task.reason = message.clone();
        }
    }
}

/// Whether `task` can start now: open, and every dependency merged.
/// `merged` answers for a dependency id; unknown ids count as not merged.
pub fn is_ready(task: &Task, merged: impl Fn(&str) -> bool) -> bool {
    task.state == State::Open && task.depends_on.iter().all(|d| merged(d))
}

/// The order tasks start in: priority (lower first), then creation time, then
/// plan order, then id so that the order is total.
pub fn start_order<T: Standing>(a: &T, b: &T) -> std::cmp::Ordering {
    a.start_key().cmp(&b.start_key())
}

/// What the board needs of a task: its state, what it waits for, and where
/// it stands in the start order. A [`Task`] has it, and so has a
/// [`Summary`], which holds nothing else.
pub trait Standing {
    fn id(&self) -> &str;
    fn state(&self) -> State;
    fn depends_on(&self) -> &[String];
    /// `(priority, created_at, seq, id)`: lowest starts first.
    fn start_key(&self) -> (i64, &str, u64, &str);
}

impl Standing for Task {
    fn id(&self) -> &str {
        &self.id
    }
    fn state(&self) -> State {
        self.state
    }
    fn depends_on(&self) -> &[String] {
        &self.depends_on
    }
    fn start_key(&self) -> (i64, &str, u64, &str) {
        (self.priority, &self.created_at, self.seq, &self.id)
    }
}

/// The fields of a snapshot that decide whether a task is ready or blocked
/// and when it starts: enough for the board without the task's text.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub id: String,
    pub state: State,
    pub priority: i64,
    pub created_at: String,
    pub seq: u64,
    pub depends_on: Vec<String>,
}

impl Summary {
    pub fn of(task: &Task) -> Summary {
        Summary {
            id: task.id.clone(),
            state: task.state,
            priority: task.priority,
            created_at: task.created_at.clone(),
            seq: task.seq,
            depends_on: task.depends_on.clone(),
        }
    }
}

impl Standing for Summary {
    fn id(&self) -> &str {
        &self.id
    }
    fn state(&self) -> State {
        self.state
    }
    fn depends_on(&self) -> &[String] {
        &self.depends_on
    }
    fn start_key(&self) -> (i64, &str, u64, &str) {
        (self.priority, &self.created_at, self.seq, &self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;

    fn new_task() -> NewTask {
        NewTask {
            title: "t".into(),
            spec: String::new(),
            plan: None,
            depends_on: vec![],
            scope: vec![],
            priority: DEFAULT_PRIORITY,
            labels: vec![],
            max_attempts: 3,
            seq: 0,
        }
    }

    fn event(change: Change) -> Event {
        Event {
            id: "e-1".into(),
            change,
            at: "2026-01-01T00:00:00Z".into(),
            actor: "a".into(),
            role: "human".into(),
            attempt: 1,
            lamport: 2,
            spans: Vec::new(),
        }
    }

    /// One change of every kind (and every verdict and resolution).
    fn every_change() -> Vec<(&'static str, Change)> {
        vec![
            ("created", Change::Created(new_task())),
            ("edited", Change::Edited(TaskEdit::default())),
            (
                "claimed",
                Change::Claimed {
                    assignee: "a".into(),
                },
            ),
            ("released", Change::Released { reason: None }),
            (
                "failed",
                Change::Failed {
                    reason: "x".into(),
                    log_tail: None,
                    usage: None,
                },
            ),
            (
                "submitted",
                Change::Submitted {
                    head: "h".into(),
                    branch: None,
                    base: None,
                    usage: None,
                },
            ),
            (
                "approve",
                Change::Reviewed {
                    verdict: Verdict::Approve,
                    head: "h".into(),
                    summary: None,
                    usage: None,
                },
            ),
            (
                "changes",
                Change::Reviewed {
                    verdict: Verdict::Changes,
                    head: "h".into(),
                    summary: None,
                    usage: None,
                },
            ),
            (
                "integration_failed",
                Change::IntegrationFailed {
                    reason: "x".into(),
                    detail: None,
                    usage: None,
                    queue: None,
                },
            ),
            (
                "merged",
                Change::Merged {
                    commit: None,
                    usage: None,
                    queue: None,
                },
            ),
            (
                "escalated",
                Change::Escalated {
                    reason: "x".into(),
                    queue: None,
                },
            ),
            (
                "retry",
                Change::Resolved {
                    resolution: Resolution::Retry,
                    message: None,
                },
            ),
            (
                "resolve-approve",
                Change::Resolved {
                    resolution: Resolution::Approve,
                    message: None,
                },
            ),
            (
                "abandon",
                Change::Resolved {
                    resolution: Resolution::Abandon,
                    message: None,
                },
            ),
        ]
    }

    /// The whole state machine: for every state and every change, the state it
    /// leads to with attempts left, or `None` where it is refused.
    #[rustfmt::skip]
    fn expected(from: State, change: &str) -> Option<State> {
        let live = !from.is_terminal();
        match (from, change) {
            (_, "created") => None,
            (s, "edited") if live => Some(s),
            (Open, "claimed") => Some(InProgress),
            (InProgress, "released") => Some(Open),
            (InProgress, "failed") => Some(Open),
            (InProgress, "submitted") => Some(InReview),
            (InReview, "approve") => Some(Approved),
            (InReview, "changes") => Some(Open),
            (Approved, "integration_failed") => Some(Open),
            (_, "merged") if live => Some(Merged),
            (_, "escalated") if live => Some(NeedsHuman),
            (NeedsHuman, "retry") => Some(Open),
            (NeedsHuman, "resolve-approve") => Some(Approved),
            (_, "abandon") if live => Some(Abandoned),
            _ => None,
        }
    }

    #[test]
    fn every_transition_is_allowed_or_refused_as_the_table_says() {
        let mut checked = 0;
        for from in State::ALL {
            for (name, change) in every_change() {
                assert_eq!(
                    next_state(from, &change, true),
                    expected(from, name),
                    "{from} --{name}-->"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 7 * 14);
    }

    #[test]
    fn a_failure_without_attempts_left_goes_to_a_human() {
        for (from, name) in [
            (InProgress, "failed"),
            (InReview, "changes"),
            (Approved, "integration_failed"),
        ] {
            let change = every_change()
                .into_iter()
                .find(|(n, _)| *n == name)
                .unwrap()
                .1;
            assert_eq!(
                next_state(from, &change, false),
                Some(NeedsHuman),
                "{from} --{name}-->"
            );
        }
    }

    fn task_in(state: State, attempts: u32) -> Task {
        let mut t = apply(None, &event(Change::Created(new_task())), "t-abcdef").unwrap();
        t.state = state;
        t.attempts = attempts;
        t
    }

    #[test]
    fn failures_count_attempts_and_escalate_with_the_reason() {
        let t = task_in(InProgress, 1);
        let fail = event(Change::Failed {
            reason: "exit 3".into(),
            log_tail: None,
            usage: None,
        });
        let t = apply(Some(&t), &fail, "t-abcdef").unwrap();
        assert_eq!((t.state, t.attempts), (Open, 2));
        let mut t = t;
        t.state = InProgress;
        let t = apply(Some(&t), &fail, "t-abcdef").unwrap();
        assert_eq!((t.state, t.attempts), (NeedsHuman, 3));
        assert!(
            t.reason.as_deref().unwrap().starts_with("exit 3"),
            "{:?}",
            t.reason
        );
    }

    #[test]
    fn retry_gives_fresh_attempts() {
        let t = task_in(NeedsHuman, 3);
        let retry = event(Change::Resolved {
            resolution: Resolution::Retry,
            message: Some("go".into()),
        });
        let t = apply(Some(&t), &retry, "t-abcdef").unwrap();
        assert_eq!((t.state, t.attempts), (Open, 0));
    }

    #[test]
    fn first_event_must_be_created_and_only_first() {
        let claim = event(Change::Claimed {
            assignee: "a".into(),
        });
        assert_eq!(
            apply(None, &claim, "t-x"),
            Err(Refused::NotCreated("claimed"))
        );
        let t = task_in(Open, 0);
        let again = event(Change::Created(new_task()));
        assert_eq!(apply(Some(&t), &again, "t-x"), Err(Refused::AlreadyCreated));
    }

    #[test]
    fn submit_records_head_and_branch() {
        let t = task_in(InProgress, 0);
        let sub = event(Change::Submitted {
            head: "abc".into(),
            branch: Some("agent/t-abcdef".into()),
            base: None,
            usage: None,
        });
        let t = apply(Some(&t), &sub, "t-abcdef").unwrap();
        assert_eq!(t.state, InReview);
        assert_eq!(t.head.as_deref(), Some("abc"));
        assert_eq!(t.branch.as_deref(), Some("agent/t-abcdef"));
    }

    #[test]
    fn event_json_has_kind_and_data() {
        let e = event(Change::Claimed {
            assignee: "impl-1".into(),
        });
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(v["kind"], "claimed");
        assert_eq!(v["data"]["assignee"], "impl-1");
        assert_eq!(v["lamport"], 2);
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }
}
