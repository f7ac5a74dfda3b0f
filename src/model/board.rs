//! The board: which tasks are ready or blocked, and in what order they start.
//! Derived from snapshots alone; nothing here is stored.

use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

use super::task::{start_order, Standing, State, Task};

/// A task as `--json` prints it: the snapshot plus the derived flags.
#[derive(Serialize, Debug)]
pub struct TaskView<'a, T = Task> {
    #[serde(flatten)]
    pub task: &'a T,
    pub ready: bool,
    pub blocked: bool,
}

/// All tasks with their derived flags. The board reads only what
/// [`Standing`] offers, so it works on full tasks and on summaries alike.
pub struct Board<'a, T = Task> {
    pub views: Vec<TaskView<'a, T>>,
}

impl<'a, T: Standing> Board<'a, T> {
    /// Derive the flags of every task. A dependency that is not among `tasks`
    /// counts as not merged.
    pub fn new(tasks: &'a [T]) -> Board<'a, T> {
        let merged: HashSet<&str> = tasks
            .iter()
            .filter(|t| t.state() == State::Merged)
            .map(|t| t.id())
            .collect();
        let views = tasks
            .iter()
            .map(|task| {
                let open = task.state() == State::Open;
                let deps_merged = task
                    .depends_on()
                    .iter()
                    .all(|d| merged.contains(d.as_str()));
                TaskView {
                    task,
                    ready: open && deps_merged,
                    blocked: open && !deps_merged,
                }
            })
            .collect();
        Board { views }
    }

    /// Ready tasks in the order they would be started.
    pub fn ready(&self) -> Vec<&TaskView<'a, T>> {
        let mut ready: Vec<&TaskView<'a, T>> = self.views.iter().filter(|v| v.ready).collect();
        // The start order is total (it ends with the id), so an unstable sort
        // gives the same order as a stable one, faster.
        ready.sort_unstable_by(|a, b| start_order(a.task, b.task));
        ready
    }

    /// How many tasks are in each state.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts: BTreeMap<&'static str, usize> =
            State::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        for v in &self.views {
            *counts.entry(v.task.state().as_str()).or_default() += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::task::DEFAULT_PRIORITY;

    fn task(id: &str, state: State, priority: i64, seq: u64, deps: &[&str]) -> Task {
        Task {
            id: id.into(),
            title: id.into(),
            spec: String::new(),
            plan: None,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            scope: vec![],
            priority,
            labels: vec![],
            state,
            attempts: 0,
            max_attempts: 3,
            assignee: None,
            branch: None,
            base: None,
            head: None,
            reason: None,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            lamport: 1,
            seq,
        }
    }

    #[test]
    fn ready_means_open_with_every_dependency_merged() {
        let tasks = vec![
            task("t-a", State::Merged, DEFAULT_PRIORITY, 1, &[]),
            task("t-b", State::Open, DEFAULT_PRIORITY, 2, &["t-a"]),
            task("t-c", State::Open, DEFAULT_PRIORITY, 3, &["t-b"]),
            task("t-d", State::Open, DEFAULT_PRIORITY, 4, &["t-gone"]),
            task("t-e", State::InProgress, DEFAULT_PRIORITY, 5, &[]),
        ];
        let board = Board::new(&tasks);
        let ready: Vec<&str> = board.ready().iter().map(|v| v.task.id.as_str()).collect();
        assert_eq!(ready, ["t-b"]);
        let blocked: Vec<&str> = board
            .views
            .iter()
            .filter(|v| v.blocked)
            .map(|v| v.task.id.as_str())
            .collect();
        assert_eq!(blocked, ["t-c", "t-d"]);
        assert_eq!(board.counts()["open"], 3);
        assert_eq!(board.counts()["needs_human"], 0);
    }

    #[test]
    fn ready_order_is_priority_then_plan_order() {
        let tasks = vec![
            task("t-z", State::Open, 2, 1, &[]),
            task("t-y", State::Open, 1, 3, &[]),
            task("t-x", State::Open, 2, 2, &[]),
        ];
        let board = Board::new(&tasks);
        let ready: Vec<&str> = board.ready().iter().map(|v| v.task.id.as_str()).collect();
        assert_eq!(ready, ["t-y", "t-z", "t-x"]);
    }

    #[test]
    fn json_view_is_the_snapshot_plus_flags() {
        let tasks = vec![task("t-a", State::Open, 1, 0, &[])];
        let board = Board::new(&tasks);
        let v = serde_json::to_value(&board.views[0]).unwrap();
        assert_eq!(v["id"], "t-a");
        assert_eq!(v["ready"], true);
        assert_eq!(v["blocked"], false);
        assert_eq!(v["state"], "open");
    }
}
