//! The merge of diverged task logs (DESIGN.md §3): pure.
//!
//! Two clones that changed the same task while apart hold two chains with a
//! common root. Their merge is the union of both sides' events; the snapshot
//! of the merged chain is the fold of that union in (lamport, actor, event
//! id) order, where an event the state machine refuses at its place in the
//! order changes nothing (it stays in the history). A claim that lost to one
//! whose push landed is recorded as void, and so is what its holder did on
//! the strength of it; the void set is part of the log and merges by union
//! too, so the merge is commutative, associative and idempotent.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::task::{apply, Change, Event, Refused, Task};

/// A task's history as a set: every event by id, and the ids of events that
/// count for nothing because the claim they rest on lost.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Log {
    events: BTreeMap<String, Event>,
    void: BTreeSet<String>,
}

impl Log {
    /// The log of `events` with `void` ids voided. An id given twice keeps
    /// one event, the same one whatever the order (see [`Log::merge`]).
    pub fn new(
        events: impl IntoIterator<Item = Event>,
        void: impl IntoIterator<Item = String>,
    ) -> Log {
        let mut log = Log {
            events: BTreeMap::new(),
            void: void.into_iter().collect(),
        };
        for event in events {
            log.insert(event);
        }
        log
    }

    fn insert(&mut self, event: Event) {
        match self.events.get(&event.id) {
            // Ids are random and never reused; should two events share one,
            // keep the same of the two on every side so the merge commutes.
            Some(kept) if canonical(kept) <= canonical(&event) => {}
            _ => {
                self.events.insert(event.id.clone(), event);
            }
        }
    }

    /// The union of both logs: events and void sets.
    pub fn merge(&self, other: &Log) -> Log {
        let mut merged = self.clone();
        for event in other.events.values() {
            merged.insert(event.clone());
        }
        merged.void.extend(other.void.iter().cloned());
        merged
    }

    /// Add `ids` to the void set.
    pub fn with_void(mut self, ids: impl IntoIterator<Item = String>) -> Log {
        self.void.extend(ids);
        self
    }

    /// The ids of voided events, in order.
    pub fn void(&self) -> &BTreeSet<String> {
        &self.void
    }

    /// Whether the log holds event `id`.
    pub fn contains(&self, id: &str) -> bool {
        self.events.contains_key(id)
    }

    /// Every event in fold order: (lamport, actor, event id).
    pub fn ordered(&self) -> Vec<&Event> {
        let mut events: Vec<&Event> = self.events.values().collect();
        events.sort_by(|a, b| fold_key(a).cmp(&fold_key(b)));
        events
    }

    /// The snapshot of task `id`: the fold of every event that is not void,
    /// in fold order, skipping what the state machine refuses where it
    /// stands; its lamport is the highest of any event, so that the next
    /// event is 1 + max over both sides. Refuses a log with no `created`.
    pub fn snapshot(&self, id: &str) -> Result<Task, Refused> {
        let mut task: Option<Task> = None;
        let mut first_refusal = None;
        for event in self.ordered() {
            if self.void.contains(&event.id) {
                continue;
            }
            match apply(task.as_ref(), event, id) {
                Ok(next) => task = Some(next),
                Err(e) => {
                    first_refusal.get_or_insert(e);
                }
            }
        }
        let mut task = match task {
            Some(task) => task,
            None => return Err(first_refusal.unwrap_or(Refused::NotCreated("nothing"))),
        };
        let top = self.events.values().map(|e| e.lamport).max().unwrap_or(0);
        task.lamport = task.lamport.max(top);
        Ok(task)
    }
}

/// The events of `local` that a merge with `landed` (the side whose pushes
/// landed on the remote) voids: where the task moved on through its states
/// on the landed side while `local` claimed it (both claimed while apart,
/// or the holder went on while `local` took its lease over), the claim that
/// never landed is void: every claim only `local` holds, the release a
/// takeover wrote with it, and everything its claimer did after it that
/// only `local` holds.
pub fn lost_claims(landed: &Log, local: &Log) -> BTreeSet<String> {
    let only = |a: &Log, b: &Log| -> Vec<Event> {
        a.events
            .values()
            .filter(|e| !b.contains(&e.id))
            .cloned()
            .collect()
    };
    let is_claim = |e: &Event| matches!(e.change, Change::Claimed { .. });
    // A person's edit of the text moves no state: a claim made meanwhile stands.
    let moves_state = |e: &Event| !matches!(e.change, Change::Created(_) | Change::Edited(_));
    let landed_only = only(landed, local);
    if !landed_only.iter().any(moves_state) {
        return BTreeSet::new();
    }
    let local_only = only(local, landed);
    let mut void = BTreeSet::new();
    for claim in local_only.iter().filter(|e| is_claim(e)) {
        for e in &local_only {
            let later = fold_key(e) >= fold_key(claim);
            let takeover =
                matches!(e.change, Change::Released { .. }) && e.lamport + 1 == claim.lamport;
            if e.actor == claim.actor && (later || takeover) {
                void.insert(e.id.clone());
            }
        }
    }
    void
}

fn fold_key(e: &Event) -> (u64, &str, &str) {
    (e.lamport, &e.actor, &e.id)
}

/// A total order on events that share an id (never expected): their JSON.
fn canonical(e: &Event) -> String {
    serde_json::to_string(e).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::task::{NewTask, Resolution, State, Verdict};
    use proptest::prelude::*;

    fn created() -> Event {
        event(
            "e-root",
            1,
            "human",
            Change::Created(NewTask {
                title: "t".into(),
                spec: String::new(),
                plan: None,
                depends_on: vec![],
                scope: vec![],
                priority: 2,
                labels: vec![],
                max_attempts: 3,
                seq: 0,
            }),
        )
    }

    fn event(id: &str, lamport: u64, actor: &str, change: Change) -> Event {
        Event {
            id: id.into(),
            change,
            at: format!("2026-01-01T00:00:{:02}.000Z", lamport % 60),
            actor: actor.into(),
            role: "implementer".into(),
            attempt: 1,
            lamport,
            spans: Vec::new(),
        }
    }

    fn change(n: u8, actor: &str) -> Change {
        match n % 8 {
            0 => Change::Claimed {
                assignee: actor.into(),
            },
            1 => Change::Released { reason: None },
            2 => Change::Submitted {
                head: "h".into(),
                branch: None,
                base: None,
                usage: None,
            },
            3 => Change::Reviewed {
                verdict: Verdict::Approve,
                head: "h".into(),
                summary: None,
                usage: None,
            },
            4 => Change::Reviewed {
                verdict: Verdict::Changes,
                head: "h".into(),
                summary: None,
                usage: None,
            },
            5 => Change::Failed {
                reason: "x".into(),
                log_tail: None,
                usage: None,
            },
            6 => Change::Escalated {
                reason: "x".into(),
                queue: None,
            },
            _ => Change::Resolved {
                resolution: Resolution::Retry,
                message: None,
            },
        }
    }

    /// Events after a common `created`: (kind, actor, lamport, id suffix).
    fn events() -> impl Strategy<Value = Vec<Event>> {
        prop::collection::vec((0u8..8, 0usize..3, 2u64..8, 0u32..1000), 0..12).prop_map(|raw| {
            let actors = ["a", "b", "c"];
            let mut out = vec![created()];
            for (i, (kind, actor, lamport, n)) in raw.into_iter().enumerate() {
                let actor = actors[actor];
                out.push(event(
                    &format!("e-{i}-{n}"),
                    lamport,
                    actor,
                    change(kind, actor),
                ));
            }
            out
        })
    }

    /// A log holding a random subset of `events` (always the root) and a
    /// random void set among their ids.
    fn side(events: &[Event], pick: &[bool], void: &[bool]) -> Log {
        let kept = events
            .iter()
            .enumerate()
            .filter(|(i, _)| *i == 0 || pick.get(*i).copied().unwrap_or(true))
            .map(|(_, e)| e.clone());
        let voided = events
            .iter()
            .enumerate()
            .filter(|(i, _)| *i > 0 && void.get(*i).copied().unwrap_or(false))
            .map(|(_, e)| e.id.clone());
        Log::new(kept, voided)
    }

    fn three_sides() -> impl Strategy<Value = (Log, Log, Log)> {
        let flags = || prop::collection::vec(any::<bool>(), 13);
        (
            events(),
            flags(),
            flags(),
            flags(),
            flags(),
            flags(),
            flags(),
        )
            .prop_map(|(events, p1, p2, p3, v1, v2, v3)| {
                (
                    side(&events, &p1, &v1),
                    side(&events, &p2, &v2),
                    side(&events, &p3, &v3),
                )
            })
    }

    proptest! {
        #[test]
        fn merge_is_commutative((a, b, _) in three_sides()) {
            prop_assert_eq!(a.merge(&b), b.merge(&a));
            prop_assert_eq!(a.merge(&b).snapshot("t-x"), b.merge(&a).snapshot("t-x"));
        }

        #[test]
        fn merge_is_associative((a, b, c) in three_sides()) {
            let left = a.merge(&b).merge(&c);
            let right = a.merge(&b.merge(&c));
            prop_assert_eq!(left.snapshot("t-x"), right.snapshot("t-x"));
            prop_assert_eq!(left, right);
        }

        #[test]
        fn merge_is_idempotent((a, b, _) in three_sides()) {
            prop_assert_eq!(a.merge(&a), a.clone());
            let ab = a.merge(&b);
            prop_assert_eq!(ab.merge(&b), ab.clone());
            prop_assert_eq!(ab.merge(&a).snapshot("t-x"), ab.snapshot("t-x"));
        }

        #[test]
        fn any_interleaving_folds_to_the_same_snapshot(
            events in events(),
            order in prop::collection::vec(any::<u32>(), 13),
        ) {
            let straight = Log::new(events.clone(), []);
            let mut shuffled: Vec<(u32, Event)> = events
                .into_iter()
                .enumerate()
                .map(|(i, e)| (order.get(i).copied().unwrap_or(0), e))
                .collect();
            shuffled.sort_by_key(|(k, _)| *k);
            let shuffled = Log::new(shuffled.into_iter().map(|(_, e)| e), []);
            prop_assert_eq!(straight.snapshot("t-x"), shuffled.snapshot("t-x"));
        }

        #[test]
        fn a_merged_snapshot_never_fails_and_sees_every_clock(events in events()) {
            let log = Log::new(events.clone(), []);
            let task = log.snapshot("t-x").expect("a log with its created event folds");
            let top = events.iter().map(|e| e.lamport).max().unwrap_or(0);
            prop_assert_eq!(task.lamport, top);
        }
    }

    #[test]
    fn the_claim_that_landed_wins() {
        let root = created();
        // B's claim sorts first (same clock, actor "a-b" < "a-z"), but A's landed.
        let theirs = event(
            "e-a",
            2,
            "a-z",
            Change::Claimed {
                assignee: "a-z".into(),
            },
        );
        let ours = event(
            "e-b",
            2,
            "a-b",
            Change::Claimed {
                assignee: "a-b".into(),
            },
        );
        let ours_next = event("e-b2", 3, "a-b", change(2, "a-b"));
        let landed = Log::new([root.clone(), theirs], []);
        let local = Log::new([root, ours, ours_next], []);
        let void = lost_claims(&landed, &local);
        assert_eq!(
            void,
            ["e-b".to_string(), "e-b2".to_string()]
                .into_iter()
                .collect()
        );
        let merged = landed.merge(&local).with_void(void);
        let task = merged.snapshot("t-x").unwrap();
        assert_eq!(task.state, State::InProgress);
        assert_eq!(task.assignee.as_deref(), Some("a-z"));
        assert_eq!(task.lamport, 3);
        // Whoever merges next, in either order, agrees.
        assert_eq!(merged.merge(&landed).snapshot("t-x").unwrap(), task);
        assert_eq!(local.merge(&merged).snapshot("t-x").unwrap(), task);
    }

    #[test]
    fn a_takeover_that_lost_to_the_holder_s_submission_is_void() {
        let root = created();
        let claim = event(
            "e-a",
            2,
            "a",
            Change::Claimed {
                assignee: "a".into(),
            },
        );
        // A went on and submitted (landed); B, not yet seeing it, took A's
        // lease over: a release and a claim in one write.
        let submitted = event("e-a2", 3, "a", change(2, "a"));
        let released = event("e-b1", 3, "b", change(1, "b"));
        let taken = event("e-b2", 4, "b", change(0, "b"));
        let landed = Log::new([root.clone(), claim.clone(), submitted], []);
        let local = Log::new([root, claim, released, taken], []);
        let void = lost_claims(&landed, &local);
        assert_eq!(
            void,
            ["e-b1".to_string(), "e-b2".to_string()]
                .into_iter()
                .collect()
        );
        let task = landed
            .merge(&local)
            .with_void(void)
            .snapshot("t-x")
            .unwrap();
        assert_eq!(task.state, State::InReview);
        assert_eq!(task.head.as_deref(), Some("h"));
    }

    #[test]
    fn a_claim_made_while_the_text_was_edited_stands() {
        let root = created();
        let edit = event(
            "e-h",
            2,
            "human",
            Change::Edited(crate::model::task::TaskEdit {
                title: Some("renamed".into()),
                ..Default::default()
            }),
        );
        let claim = event(
            "e-a",
            2,
            "a",
            Change::Claimed {
                assignee: "a".into(),
            },
        );
        let landed = Log::new([root.clone(), edit], []);
        let local = Log::new([root, claim], []);
        assert!(lost_claims(&landed, &local).is_empty());
    }

    #[test]
    fn no_conflict_voids_nothing() {
        let root = created();
        let claim = event(
            "e-a",
            2,
            "a",
            Change::Claimed {
                assignee: "a".into(),
            },
        );
        let landed = Log::new([root.clone()], []);
        let local = Log::new([root, claim], []);
        assert!(lost_claims(&landed, &local).is_empty());
    }
}
