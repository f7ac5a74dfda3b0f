//! Plans: `refs/agent/plans/<id>`, stored with all of their tasks in one
//! ref transaction, so a plan appears whole or not at all.

use anyhow::Result;
use gix::refs::transaction::PreviousValue;
use serde::Serialize;
use std::collections::HashSet;

use super::objects::{message, write_commit, write_tree};
use super::tasks::ref_update;
use super::{Store, PLANS_PREFIX};
use crate::model::id;
use crate::model::plan::{Dependency, Plan};
use crate::model::task::NewTask;

/// Plans larger than this write their refs straight into `packed-refs`.
const PACK_REFS_ABOVE: usize = 64;

/// A stored plan: its id and the id each plan key became.
#[derive(Debug, Serialize)]
pub struct StoredPlan {
    pub plan: String,
    pub tasks: Vec<(String, String)>,
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
    /// `max_attempts` get `default_attempts`.
    pub fn store_plan(
        &self,
        plan: &Plan,
        yaml: &str,
        actor: &str,
        role: &str,
        default_attempts: u32,
    ) -> Result<StoredPlan> {
        let (plan_id, ids) = self.assign_ids(plan)?;
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
            edits.push(self.prepare_create(id.clone(), new, actor, role)?.0);
        }
        edits.push(self.plan_commit(&plan_id, plan, &ids, yaml, actor, role)?);
        self.transact(edits, plan.tasks.len() > PACK_REFS_ABOVE)?;
        Ok(StoredPlan {
            plan: plan_id,
            tasks: plan.tasks.iter().map(|t| t.key.clone()).zip(ids).collect(),
        })
    }

    /// Write the plan's first commit and return the edit that creates its ref.
    fn plan_commit(
        &self,
        plan_id: &str,
        plan: &Plan,
        ids: &[String],
        yaml: &str,
        actor: &str,
        role: &str,
    ) -> Result<gix::refs::transaction::RefEdit> {
        let at = super::now();
        let snapshot = PlanSnapshot {
            id: plan_id,
            goal: plan.goal.as_deref(),
            tasks: plan
                .tasks
                .iter()
                .zip(ids)
                .map(|(t, id)| PlanTask { key: &t.key, id })
                .collect(),
            created_at: &at,
        };
        let event = serde_json::json!({
            "id": id::generate("e", 10),
            "kind": "created",
            "data": { "goal": plan.goal, "tasks": ids.len() },
            "at": at,
            "actor": actor,
            "role": role,
            "attempt": 0,
            "lamport": 1,
        });
        let tree = write_tree(
            &self.repo,
            &[
                ("event.json", &serde_json::to_vec_pretty(&event)?),
                ("plan.json", &serde_json::to_vec_pretty(&snapshot)?),
                ("plan.yaml", yaml.as_bytes()),
            ],
        )?;
        let subject = format!("plan: {}", plan.goal.as_deref().unwrap_or("(no goal)"));
        let body = format!("{} tasks.", ids.len());
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
        let tip = write_commit(&self.repo, &self.signature()?, tree, None, msg)?;
        ref_update(
            format!("{PLANS_PREFIX}{plan_id}"),
            tip,
            PreviousValue::MustNotExist,
            "plan",
        )
    }
}
