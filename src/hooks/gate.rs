//! pre-push: the gate. No agent commit reaches the target unreviewed.
//!
//! An agent commit is one with a provenance note in `refs/notes/agent`
//! (post-commit writes one for every commit on `agent/<id>`, and agent runs
//! write one for every commit they make). Such a commit may be pushed to
//! the target branch only inside a reviewed tip: a pushed commit whose
//! latest verdict in `refs/notes/agent-review` is `approve` and which
//! contains it. Every other push, and every push to another branch, passes
//! untouched. `git push --no-verify` skips the hook, as with any pre-push
//! hook.

use anyhow::Result;
use gix::ObjectId;
use std::collections::HashSet;

use super::{annotated, note_field, provenance_task, HookContext};
use crate::agent::config;
use crate::error::No;
use crate::git;
use crate::store::notes::{PROVENANCE, REVIEW};
use crate::store::Store;

/// Run the gate on git's pre-push input: `remote` is the remote's name (or
/// URL), `stdin` the `<local ref> <local sha> <remote ref> <remote sha>`
/// lines. Refuses with [`No`] (exit 1), naming every unreviewed commit.
pub fn run(ctx: &HookContext, remote: Option<&str>, stdin: &str) -> Result<()> {
    let store = &ctx.store;
    // What moves a branch: only a branch can be the target, so a push of
    // tags, agent refs or deletions alone needs no config (and a broken
    // one never stops it).
    let moved: Vec<(&str, &str, &str)> = stdin
        .lines()
        .filter_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [_, local, remote_ref, remote_tip]
                    if remote_ref.starts_with("refs/heads/") && !is_zero(local) =>
                {
                    Some((local, remote_ref, remote_tip))
                }
                _ => None,
            },
        )
        .collect();
    if moved.is_empty() {
        return Ok(());
    }
    let target = config::team(store)?.target;
    let target_ref = format!("refs/heads/{target}");
    let mut refused = Vec::new();
    let mut base = None;
    for (local, remote_ref, remote_tip) in moved {
        if remote_ref != target_ref {
            continue;
        }
        let already = on_remote(store, remote, &target, remote_tip);
        base = base.or_else(|| already.first().cloned());
        for commit in unreviewed(store, local, &already)? {
            if !refused.contains(&commit) {
                refused.push(commit);
            }
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(No(refusal(store, &target, &refused, base.as_deref())?).into())
}

fn is_zero(id: &str) -> bool {
    id.bytes().all(|b| b == b'0')
}

/// What the remote's target has already, as far as this clone knows: the
/// remote tip git reports (if its object is here) and the remote-tracking
/// branch. Only the target is counted: agent branches pushed to the remote
/// earlier are no excuse.
fn on_remote(store: &Store, remote: Option<&str>, target: &str, remote_tip: &str) -> Vec<String> {
    let mut known = Vec::new();
    if let Ok(id) = ObjectId::from_hex(remote_tip.as_bytes()) {
        if !id.is_null() && store.repo().has_object(id) {
            known.push(remote_tip.to_string());
        }
    }
    if let Some(remote) = remote {
        let tracking = format!("refs/remotes/{remote}/{target}");
        if store.find_ref(&tracking).ok().flatten().is_some() {
            known.push(tracking);
        }
    }
    known
}

/// The agent commits in `local` but not in `already` that no approved
/// pushed commit contains, oldest first.
fn unreviewed(store: &Store, local: &str, already: &[String]) -> Result<Vec<ObjectId>> {
    let pushed = rev_list(store, &[local], already)?;
    let provenance = annotated(store, PROVENANCE)?;
    let agent: Vec<ObjectId> = pushed
        .iter()
        .filter(|c| provenance.contains(*c))
        .copied()
        .collect();
    if agent.is_empty() {
        return Ok(agent);
    }
    let reviewed = annotated(store, REVIEW)?;
    let mut approved = Vec::new();
    for commit in pushed.iter().filter(|c| reviewed.contains(*c)) {
        if latest_verdict(store, *commit)?.as_deref() == Some("approve") {
            approved.push(commit.to_string());
        }
    }
    let tips: Vec<&str> = approved.iter().map(String::as_str).collect();
    let covered: HashSet<ObjectId> = if tips.is_empty() {
        HashSet::new()
    } else {
        rev_list(store, &tips, already)?.into_iter().collect()
    };
    Ok(agent.into_iter().filter(|c| !covered.contains(c)).collect())
}

/// Commits reachable from `tips` and not from `exclude`, oldest first.
fn rev_list(store: &Store, tips: &[&str], exclude: &[String]) -> Result<Vec<ObjectId>> {
    let exclude: Vec<&str> = exclude.iter().map(String::as_str).collect();
    git::commits_in(store.work_dir(), tips, &exclude)?
        .iter()
        .map(|l| Ok(ObjectId::from_hex(l.as_bytes())?))
        .collect()
}

/// The verdict of the last review line on `commit`.
fn latest_verdict(store: &Store, commit: ObjectId) -> Result<Option<String>> {
    Ok(store
        .note_lines(REVIEW, commit)?
        .iter()
        .rev()
        .find_map(|line| note_field(line, "verdict")))
}

/// The message of a refusal: each commit, its subject and task, and the
/// ways forward, as commands that work where the branch is merged locally
/// already: the verdict goes on each task's last refused commit, reviewed
/// from what the remote has (`base`), not from the local target.
fn refusal(
    store: &Store,
    target: &str,
    commits: &[ObjectId],
    base: Option<&str>,
) -> Result<String> {
    let mut text = format!(
        "refusing to push to {target}: {} with no approved review of a tip that contains them:\n",
        crate::model::text::count(commits.len(), "agent commit")
    );
    let hexes: Vec<String> = commits.iter().map(ObjectId::to_string).collect();
    let hexes: Vec<&str> = hexes.iter().map(String::as_str).collect();
    let options = ["--no-walk=unsorted", "--format=%h %s"];
    let subjects = git::log(store.work_dir(), &options, &hexes)?;
    let mut last_of_task: Vec<(String, ObjectId)> = Vec::new();
    for (commit, subject) in commits.iter().zip(subjects.lines()) {
        let task = provenance_task(store, *commit)?.unwrap_or_else(|| "?".into());
        text.push_str(&format!("  {subject}  (task {task}, agent/{task})\n"));
        match last_of_task.iter_mut().find(|(t, _)| *t == task) {
            Some(entry) => entry.1 = *commit,
            None => last_of_task.push((task, *commit)),
        }
    }
    let from = base.map_or(String::new(), |b| format!(" --base {b}"));
    text.push_str("Review the work first; for a person's verdict on what you checked yourself:\n");
    for (_, commit) in &last_of_task {
        let short = commit.to_hex_with_len(12);
        text.push_str(&format!("  git agent review --approve {short}{from}\n"));
    }
    text.push_str(
        "(without --approve, the reviewer agent runs), or push with --no-verify to skip the gate.",
    );
    Ok(text)
}
