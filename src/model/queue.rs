//! The merge queue's pure part: which candidates of a speculative chain
//! land and which entry is blamed, and the record of an entry's stay in the
//! queue that its last event carries.
//!
//! The queue builds a chain of candidates on the target's tip: C1 = tip +
//! e1, C2 = C1 + e2, …, and gates several at once. A candidate may land only
//! when its own gate and every gate before it passed; the first failure in
//! the chain is its entry's fault alone (everything before it passed), and
//! every candidate after it contains that entry, so it is rebuilt.

use serde::{Deserialize, Serialize};

/// Where the gate of one candidate of the chain stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Not decided yet (running, or queued behind a retry).
    Pending,
    /// Passed, did not need to run (no test, or the tree passed before).
    Passed,
    /// Failed on every run it was given, or could not run (timed out).
    Failed,
}

/// What to do with a chain, from its gates in chain order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    /// How many candidates from the front land (with one compare-and-swap
    /// of the target to the last of them).
    pub land: usize,
    /// The index of the candidate whose entry is blamed and goes back; every
    /// candidate after it is rebuilt without it.
    pub blamed: Option<usize>,
}

/// Land the longest passed prefix; blame the first failure, only once
/// everything before it passed (a failure behind a pending gate may be
/// caused by an entry ahead of it that fails too, so it waits).
pub fn settle(gates: &[Gate]) -> Settlement {
    let land = gates.iter().take_while(|g| **g == Gate::Passed).count();
    let blamed = (gates.get(land) == Some(&Gate::Failed)).then_some(land);
    Settlement { land, blamed }
}

/// Why an entry left the queue.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Left {
    /// Landed on the target as a candidate that passed the gate.
    Merged,
    /// Its head was on the target already (merged by hand).
    AlreadyMerged,
    /// Its candidate failed the gate (on every run): back to the implementer.
    GateFailed,
    /// The gate could not run on its candidate (timed out, killed).
    GateDidNotRun,
    /// It conflicts with the target: back to the implementer.
    Conflict,
    /// It waited past `integrate.deadline`: to a human.
    Deadline,
}

impl Left {
    pub fn as_str(self) -> &'static str {
        match self {
            Left::Merged => "merged",
            Left::AlreadyMerged => "already_merged",
            Left::GateFailed => "gate_failed",
            Left::GateDidNotRun => "gate_did_not_run",
            Left::Conflict => "conflict",
            Left::Deadline => "deadline",
        }
    }
}

/// One gate run on one candidate, as the entry's event records it (the
/// same run is a line of `refs/notes/agent-ci` on `commit`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GateRun {
    /// The candidate commit the gate ran on.
    pub commit: String,
    pub tree: String,
    /// The candidate's first parent: the target's tip, or the candidate ahead.
    pub base: String,
    /// Its place in the chain when it was built: 1 = on the target's tip.
    pub position: usize,
    /// 1 for the first run on this tree, 2 for the first retry, ….
    pub run: u32,
    /// `passed`, `failed: exit N`, `not_run: …` (timed out, stopped,
    /// cancelled because the chain changed), or `passed (this tree passed
    /// before)`.
    pub result: String,
    pub started_at: String,
    pub duration_ms: u64,
}

/// An entry's stay in the merge queue, carried by the event with which it
/// left (`merged`, `integration_failed`, `escalated`) as `data.queue`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct QueueStay {
    /// When it entered the queue: its approval (the task's `updated_at`
    /// when the queue took it).
    pub entered_at: String,
    /// When the queue first built a candidate of it in the pass it left in.
    pub taken_at: String,
    /// When it left.
    pub left_at: String,
    /// `entered_at` → `left_at`, in milliseconds.
    pub queued_ms: u64,
    pub left: Left,
    /// Every gate run on its candidates in that pass, oldest first,
    /// cancelled ones included.
    #[serde(default)]
    pub gates: Vec<GateRun>,
    /// The candidates the queue gated at once.
    pub window: usize,
}

#[cfg(test)]
mod tests {
    use super::Gate::*;
    use super::*;

    #[test]
    fn the_passed_prefix_lands_and_the_first_failure_after_it_is_blamed() {
        let table: &[(&[Gate], usize, Option<usize>)] = &[
            (&[], 0, None),
            (&[Pending, Passed, Failed], 0, None),
            (&[Passed, Passed, Pending, Failed], 2, None),
            (&[Passed, Passed, Passed], 3, None),
            (&[Passed, Failed, Passed, Failed], 1, Some(1)),
            (&[Failed, Passed], 0, Some(0)),
            (&[Failed, Failed], 0, Some(0)),
        ];
        for (gates, land, blamed) in table {
            assert_eq!(
                settle(gates),
                Settlement {
                    land: *land,
                    blamed: *blamed
                },
                "{gates:?}"
            );
        }
    }

    #[test]
    fn a_stay_reads_back_as_written() {
        let stay = QueueStay {
            entered_at: "2025-01-01T00:00:00Z".into(),
            taken_at: "2025-01-01T00:00:01Z".into(),
            left_at: "2025-01-01T00:00:03Z".into(),
            queued_ms: 3000,
            left: Left::GateFailed,
            gates: vec![GateRun {
                commit: "c".into(),
                tree: "t".into(),
                base: "b".into(),
                position: 2,
                run: 1,
                result: "failed: exit 1".into(),
                started_at: "2025-01-01T00:00:01Z".into(),
                duration_ms: 1000,
            }],
            window: 4,
        };
        let json = serde_json::to_value(&stay).unwrap();
        assert_eq!(json["left"], "gate_failed");
        assert_eq!(json["gates"][0]["position"], 2);
        assert_eq!(serde_json::from_value::<QueueStay>(json).unwrap(), stay);
    }
}
