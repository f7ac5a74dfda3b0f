//! What a task's history says was reviewed and merged, and for whom: the
//! lines a hub's `status` shows of the work pushed to it.

use serde::Serialize;

use super::task::{Change, Event, Task, Verdict};

/// The latest review and merge of one task's work.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Activity {
    pub task: String,
    pub title: String,
    /// Who submitted the work reviewed (the implementer's actor): whom the
    /// review and the merge were for.
    pub author: Option<String>,
    pub review: Option<Review>,
    pub merge: Option<Merge>,
    /// When the later of the two happened.
    pub at: String,
}

/// A review's verdict, by whom, on which commit.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Review {
    pub verdict: Verdict,
    pub reviewer: String,
    pub head: String,
    pub at: String,
}

/// A merge: the commit it made on the target, and who made it.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Merge {
    pub commit: Option<String>,
    pub by: String,
    pub at: String,
}

/// The latest review and merge in `events` (the history of `task`, oldest
/// first); `None` where it has neither. The author is whoever submitted the
/// head reviewed (else the last submission before the merge).
pub fn of(task: &Task, events: &[Event]) -> Option<Activity> {
    let mut review = None;
    let mut merge = None;
    let mut submitted: Vec<(&str, &str)> = Vec::new();
    for event in events {
        match &event.change {
            Change::Submitted { head, .. } => submitted.push((head, &event.actor)),
            Change::Reviewed { verdict, head, .. } => {
                review = Some(Review {
                    verdict: *verdict,
                    reviewer: event.actor.clone(),
                    head: head.clone(),
                    at: event.at.clone(),
                })
            }
            Change::Merged { commit, .. } => {
                merge = Some(Merge {
                    commit: commit.clone(),
                    by: event.actor.clone(),
                    at: event.at.clone(),
                })
            }
            _ => {}
        }
    }
    if review.is_none() && merge.is_none() {
        return None;
    }
    let author = review
        .as_ref()
        .and_then(|r| submitted.iter().rev().find(|(head, _)| *head == r.head))
        .or(submitted.last())
        .map(|(_, actor)| actor.to_string());
    let at = [
        review.as_ref().map(|r| &r.at),
        merge.as_ref().map(|m| &m.at),
    ]
    .into_iter()
    .flatten()
    .max()
    .cloned()
    .unwrap_or_default();
    Some(Activity {
        task: task.id.clone(),
        title: task.title.clone(),
        author,
        review,
        merge,
        at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::task::State;

    fn event(change: Change, actor: &str, at: &str) -> Event {
        Event {
            id: format!("e-{at}"),
            change,
            at: at.into(),
            actor: actor.into(),
            role: String::new(),
            attempt: 1,
            lamport: 1,
            spans: Vec::new(),
        }
    }

    fn submitted(head: &str, actor: &str, at: &str) -> Event {
        let change = Change::Submitted {
            head: head.into(),
            branch: None,
            base: None,
            usage: None,
        };
        event(change, actor, at)
    }

    fn reviewed(verdict: Verdict, head: &str, at: &str) -> Event {
        let change = Change::Reviewed {
            verdict,
            head: head.into(),
            summary: None,
            usage: None,
        };
        event(change, "reviewer.sh", at)
    }

    fn task() -> Task {
        Task {
            id: "t-abc".into(),
            title: "Work".into(),
            spec: String::new(),
            plan: None,
            depends_on: vec![],
            scope: vec![],
            priority: 2,
            labels: vec![],
            state: State::Merged,
            attempts: 2,
            max_attempts: 3,
            assignee: None,
            branch: None,
            base: None,
            head: None,
            reason: None,
            created_at: "0".into(),
            updated_at: "5".into(),
            lamport: 5,
            seq: 0,
        }
    }

    #[test]
    fn a_merged_task_names_its_reviewer_merger_and_author() {
        let events = [
            submitted("h1", "ann", "1"),
            reviewed(Verdict::Changes, "h1", "2"),
            submitted("h2", "bob", "3"),
            reviewed(Verdict::Approve, "h2", "4"),
            event(
                Change::Merged {
                    commit: Some("m".into()),
                    usage: None,
                    queue: None,
                },
                "integrator@hub",
                "5",
            ),
        ];
        let a = of(&task(), &events).expect("it has a review and a merge");
        assert_eq!(
            a.author.as_deref(),
            Some("bob"),
            "the author of the head reviewed"
        );
        let review = a.review.unwrap();
        assert_eq!(
            (review.verdict, review.head.as_str()),
            (Verdict::Approve, "h2")
        );
        let merge = a.merge.unwrap();
        assert_eq!(
            (merge.commit.as_deref(), merge.by.as_str()),
            (Some("m"), "integrator@hub")
        );
        assert_eq!(a.at, "5");
    }

    #[test]
    fn a_task_never_reviewed_or_merged_has_no_activity() {
        assert_eq!(of(&task(), &[submitted("h", "ann", "1")]), None);
    }
}
