//! Plans: `refs/agent/plans/<id>`, stored with all of their tasks in one
//! ref transaction, so a plan appears whole or not at all.

use anyhow::Result;
use serde::Serialize;
use std::collections::HashSet;

use super::objects::{message, write_commit, write_tree, Batch};
use super::{Store, PLANS_PREFIX};
use crate::git::refs::Edit;
use crate::model::id;
use crate::model::plan::{Dependency, Plan};
use crate::model::task::NewTask;

/// A stored plan: its id and the id each plan key became.
#[derive(Debug, Serialize)]
pub struct StoredPlan {
    pub plan: String,
    pub tasks: Vec<(String, String)>,
}

/// What planner agents did for a plan: each run's span (rate-limited,
/// refused and accepted plans alike) and what they reported they used.
/// Empty for a plan written by hand.
#[derive(Debug, Clone, Default)]
pub struct PlannerWork {
    pub spans: Vec<crate::model::span::Span>,
    pub usage: Option<crate::model::usage::Usage>,
}

#[derive(Serialize)]
struct PlanSnapshot<'a> {
    id: &'a str,
    goal: Option<&'a str>,
    tasks: Vec<PlanTask<'a>>,
    created_at: &'a str,
}

#[derive(Serialize)]
struct PlanTask<'a> {
    key: &'a str,
    id: &'a str,
}

/// Refs a plan import creates from which it asks git to pack refs (fewer
/// cost less to list loose than a `git pack-refs` process costs to start).
const PACK_AFTER: usize = 256;

impl Store {
    /// The ids a plan's tasks would get, without writing anything: fresh,
    /// distinct, and not yet taken by an existing task.
    pub fn assign_ids(&self, plan: &Plan) -> Result<(String, Vec<String>)> {
        let taken: HashSet<String> = self.task_refs()?.into_iter().map(|(id, _)| id).collect();
        let mut fresh = HashSet::new();
        let ids = plan
            .tasks
            .iter()
            .map(|_| loop {
                let id = id::generate("t", id::RANDOM_LEN);
                if !taken.contains(&id) && fresh.insert(id.clone()) {
                    break id;
                }
            })
            .collect();
        Ok((id::generate("p", id::RANDOM_LEN), ids))
    }

    /// Store `plan` (as imported from `yaml`) and all of its tasks in one
    /// transaction: every ref is created with "must not exist", so a clash
    /// with a concurrent writer leaves nothing behind. Tasks that name no
    /// `max_attempts` get `default_attempts`. `planner` is what the planner
    /// agents did, recorded in the plan's event (`data.usage`, `spans`).
    pub fn store_plan(
        &self,
        plan: &Plan,
        yaml: &str,
        actor: &str,
        role: &str,
        default_attempts: u32,
        planner: &PlannerWork,
    ) -> Result<StoredPlan> {
        let (plan_id, ids) = self.assign_ids(plan)?;
        let mut batch = Batch::new(&self.repo);
        let mut edits = Vec::with_capacity(plan.tasks.len() + 1);
        for (seq, (planned, id)) in plan.tasks.iter().zip(&ids).enumerate() {
            let depends_on = planned
                .depends_on
                .iter()
                .map(|d| match d {
                    Dependency::InPlan(i) => ids[*i].clone(),
                    Dependency::Existing(id) => id.clone(),
                })
                .collect();
            let new = NewTask {
                title: planned.title.clone(),
                spec: planned.spec.clone(),
                plan: Some(plan_id.clone()),
                depends_on,
                scope: planned.scope.clone(),
                priority: planned.priority,
                labels: planned.labels.clone(),
                max_attempts: planned.max_attempts.unwrap_or(default_attempts),
                seq: seq as u64 + 1,
            };
            let (edit, _) = self.prepare_create(&mut batch, id.clone(), new, actor, role)?;
            edits.push(edit);
        }
        let stored = StoredPlan {
            plan: plan_id,
            tasks: plan.tasks.iter().map(|t| t.key.clone()).zip(ids).collect(),
        };
        let goal = plan.goal.as_deref();
        edits.push(self.plan_commit(&mut batch, &stored, goal, yaml, (actor, role), planner)?);
        // Objects first: should the refs not move, they are only garbage.
        batch.write(&self.repo)?;
        self.transact(&edits, "plan")
            .map_err(|e| anyhow::anyhow!("storing the plan: {e}"))?;
        if edits.len() >= PACK_AFTER {
            // In a files repository each new ref is a loose file, and every
            // board, `ready` and `claim --next` lists them all: a 10,000
            // task plan left loose makes each listing open 10,000 files.
            crate::git::pack_refs_in_background(
                self.work_dir(),
                &["refs/agent/*"],
                &["refs/agent/leases/*"],
            );
        }
        Ok(stored)
    }

    /// Every plan, by id, with its first event (`event.json` of its
    /// chain's tip): its goal, its task count, and what the planner used.
    pub fn plans(&self) -> Result<Vec<(String, serde_json::Value)>> {
        let mut plans = Vec::new();
        for (id, tip) in self.refs_under(PLANS_PREFIX)? {
            let event = super::objects::read_file(&self.repo, tip, "event.json")?
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or(serde_json::Value::Null);
            plans.push((id, event));
        }
        Ok(plans)
    }

    /// Add the plan's first commit to `batch` and return the edit that
    /// creates its ref.
    fn plan_commit(
        &self,
        batch: &mut Batch,
        stored: &StoredPlan,
        goal: Option<&str>,
        yaml: &str,
        (actor, role): (&str, &str),
        planner: &PlannerWork,
    ) -> Result<Edit> {
        let at = super::now();
        let plan_id = &stored.plan;
        let snapshot = PlanSnapshot {
            id: plan_id,
            goal,
            tasks: stored
                .tasks
                .iter()
                .map(|(key, id)| PlanTask { key, id })
                .collect(),
            created_at: &at,
        };
        let mut data = serde_json::json!({ "goal": goal, "tasks": stored.tasks.len() });
        if let Some(usage) = &planner.usage {
            data["usage"] = serde_json::to_value(usage)?;
        }
        let mut event = serde_json::json!({
            "id": id::generate("e", 10),
            "kind": "created",
            "data": data,
            "at": at,
            "actor": actor,
            "role": role,
            "attempt": 0,
            "lamport": 1,
        });
        if !planner.spans.is_empty() {
            event["spans"] = serde_json::to_value(&planner.spans)?;
        }
        let tree = write_tree(
            batch,
            &[
                ("event.json", &serde_json::to_vec_pretty(&event)?),
                ("plan.json", &serde_json::to_vec_pretty(&snapshot)?),
                ("plan.yaml", yaml.as_bytes()),
            ],
        )?;
        let subject = format!("plan: {}", goal.unwrap_or("(no goal)"));
        let body = format!("{}.", crate::model::text::count(stored.tasks.len(), "task"));
        let msg = message(
            &subject,
            Some(&body),
            &[
                ("Agent-Plan", plan_id.to_string()),
                ("Agent-Event", "created".into()),
                ("Agent-Role", role.to_string()),
                ("Agent-Actor", actor.to_string()),
                ("Agent-Lamport", "1".into()),
            ],
        );
        let tip = write_commit(batch, &self.signature()?, tree, None, msg)?;
        Ok(Edit::create(format!("{PLANS_PREFIX}{plan_id}"), tip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pack and packed-refs a large plan is written as are read at once
    /// by the same store, whose object database knew nothing of the pack.
    #[test]
    fn a_large_plan_is_readable_by_the_store_that_wrote_it() {
        let dir = tempfile::tempdir().unwrap();
        gix::init(dir.path()).unwrap();
        let store = Store::discover(dir.path()).unwrap();
        assert!(store.load_all().unwrap().is_empty());
        let yaml: String = (0..150)
            .map(|i| format!("  - key: k{i}\n    title: Task {i}\n"))
            .fold("tasks:\n".to_string(), |all, task| all + &task);
        let plan = crate::model::plan::parse("plan.yaml", &yaml, &|_| None).unwrap();
        let stored = store
            .store_plan(&plan, &yaml, "me", "planner", 3, &PlannerWork::default())
            .unwrap();
        let tasks = store.load_all().unwrap();
        assert_eq!(tasks.len(), 150);
        let (_, first) = &stored.tasks[0];
        let events = store.events(first).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(store.load(first).unwrap().task.title, "Task 0");
    }
}
