//! One implementer attempt on one claimed task: worktree, prompt, agent,
//! leftover changes committed, provenance noted, then submitted or failed.

use anyhow::{Context as _, Result};
use std::path::Path;

use super::worktree::{self, trailered};
use super::{limits, Context};
use crate::agent::config::Role;
use crate::agent::process::{self, AgentRun, Ending};
use crate::agent::prompt;
use crate::git;
use crate::model::span::{self, Span};
use crate::model::task::{Change, Event, Task};
use crate::store::notes;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    Submitted {
        head: String,
    },
    Failed {
        reason: String,
    },
    /// Stopped by Ctrl-C: the work is committed and the task released.
    Interrupted,
    /// The agent met a rate limit (`reason`: the line that said so): the
    /// task is released with no attempt used up, to be tried again after
    /// the role's pause.
    RateLimited {
        reason: String,
    },
    /// The task was no longer ours when the attempt ended (taken over).
    Lost,
}

const ROLE: &str = "implementer";

/// Run one implementer attempt on `id`, which `actor` holds, in slot `slot`
/// (0 … parallel-1).
pub fn implement(ctx: &Context, id: &str, actor: &str, slot: usize) -> Result<Finished> {
    let setup_start = crate::store::now();
    let task = ctx.store.load(id)?.task;
    let events = ctx.store.events(id)?;
    let role = ctx.role(ROLE)?.clone();
    let attempt = task.attempts + 1;
    let files = process::log_base(&ctx.store.agent_dir(), id, attempt, ROLE);
    let path = worktree::task_path(ctx, id)?;
    if let Some(dir) = files.parent() {
        process::stop_orphans(dir, &path);
        if let Some(lock) = remove_stale_index_lock(&path)? {
            let line = format!(
                "{id}: removed {} that a stopped attempt left (no process works in {} any more)",
                lock.display(),
                path.display()
            );
            ctx.view.say(&line);
            std::fs::create_dir_all(dir)?;
            let mut log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("recovered.log"))?;
            std::io::Write::write_all(
                &mut log,
                format!("{} {line}\n", crate::store::now()).as_bytes(),
            )?;
        }
    }
    // The lease holds while the agent works, however long it takes.
    let _renewer = ctx
        .store
        .keep_renewed(id, actor, crate::store::lease::DEFAULT_TTL);
    let prepared = worktree::prepare_in(ctx, &task, Some(slot))?;
    if let Some(commit) = &prepared.recovered {
        ctx.view.say(&format!(
            "{id}: kept work an interrupted attempt left uncommitted ({})",
            short(commit)
        ));
    }
    let slot = super::ready::Slot::new(&ctx.config, slot)?;
    let mut env = vec![
        ("TASK".into(), id.to_string()),
        ("ATTEMPT".into(), attempt.to_string()),
        ("BASE".into(), prepared.base.clone()),
        ("BRANCH".into(), prepared.branch.clone()),
        ("ACTOR".into(), actor.to_string()),
    ];
    env.extend(slot.env());
    let setup_files = process::log_base(&ctx.store.agent_dir(), id, attempt, "setup");
    let failed = super::ready::set_up(
        &ctx.config,
        &prepared.path,
        setup_files,
        env.clone(),
        ctx.stop,
    )?;
    if let Some(failed) = failed {
        let (change, finished) = match failed.interrupted {
            true => (
                Change::Released {
                    reason: Some("interrupted during set-up: git agent run was stopped".into()),
                },
                Finished::Interrupted,
            ),
            false => (
                Change::Failed {
                    reason: failed.reason.clone(),
                    log_tail: Some(failed.tail),
                    usage: None,
                },
                Finished::Failed {
                    reason: failed.reason,
                },
            ),
        };
        let setup = Span::new(span::kind::SETUP, &setup_start, &crate::store::now());
        let finished = match ctx.record_as_holder(id, actor, ROLE, change, &[setup])? {
            true => finished,
            false if finished == Finished::Interrupted => finished,
            false => Finished::Lost,
        };
        ctx.view.finished(id, ROLE, &describe(&finished));
        return Ok(finished);
    }
    let start = git::head(&prepared.path)?;
    let run_id = crate::model::id::generate("r", 8);
    let run = AgentRun {
        role: ROLE.into(),
        launch: ctx.ledger.launch(&role, ROLE, &limits::task_spent(&events)),
        cwd: prepared.path.clone(),
        prompt: implementer_prompt(ctx, &task, &events),
        timeout: role.timeout(),
        files,
        env: [env, vec![("RUN".into(), run_id.clone())]].concat(),
        task_json: Some(serde_json::to_string_pretty(&task)?),
    };
    ctx.view.started(id, ROLE, attempt, &task.title);
    let outcome = run.run(ctx.stop)?;
    ctx.ledger.spend(outcome.usage.as_ref());
    let setup = Span::new(span::kind::SETUP, &setup_start, &outcome.started_at);
    // Whatever happened, the agent's work is kept on its branch.
    let leftover = trailered(
        &format!("Uncommitted work: {}", task.title),
        "Changes the implementer left uncommitted, committed by git-agent.",
        &task,
        ROLE,
    );
    // A merge of the target left to resolve is committed only once resolved:
    // conflict markers never land on the branch.
    let unresolved = if git::merging(&prepared.path) {
        git::stage_resolved(&prepared.path)?;
        git::unresolved(&prepared.path)?
    } else {
        Vec::new()
    };
    if unresolved.is_empty() {
        git::commit_all(&prepared.path, &leftover)?;
    }
    let head = git::head(&prepared.path)?;
    let agent = agent_name(&run.launch);
    note_provenance(ctx, &prepared.path, &start, &task, &agent, &run_id)?;
    let markers = git::conflict_markers(&prepared.path, &prepared.base, &head)?;

    let failure = match outcome.failure(role.timeout()) {
        Some(reason) => Some(reason),
        None if !unresolved.is_empty() => Some(format!(
            "the agent left conflicts unresolved in: {}",
            unresolved.join(", ")
        )),
        None if !markers.is_empty() => Some(format!(
            "the branch adds conflict markers in: {}",
            markers.join(", ")
        )),
        // Nothing beyond the base, or nothing since the head submitted last
        // time (commits kept from a killed attempt were never submitted, so
        // they still count).
        None => (task.head.as_deref() == Some(head.as_str())
            || git::commits_in(&prepared.path, &["HEAD"], &[&prepared.base])?.is_empty())
        .then(|| "the agent changed nothing".to_string()),
    };
    let (change, finished) = match (&outcome.ending, failure) {
        (Ending::Interrupted, _) => (
            Change::Released {
                reason: Some("interrupted: git agent run was stopped".into()),
            },
            Finished::Interrupted,
        ),
        (_, Some(failure)) => match rate_limited(&role, &outcome) {
            Some(line) => {
                // Paused before the task is given back: no slot takes it up
                // again before the pause is over.
                ctx.ledger.pause(ROLE, &role, &line);
                let reason = format!("rate limited: {line}");
                let change = Change::Released {
                    reason: Some(format!("{reason} (no attempt used up)")),
                };
                (change, Finished::RateLimited { reason })
            }
            None => {
                // What the next attempt is shown: the agent's final message,
                // else (it printed nothing on stdout) the end of its log.
                let said = match outcome.message.trim().is_empty() {
                    true => outcome.tail.clone(),
                    false => process::tail(&outcome.message),
                };
                let change = Change::Failed {
                    reason: failure.clone(),
                    log_tail: Some(said),
                    usage: outcome.usage.clone(),
                };
                (change, Finished::Failed { reason: failure })
            }
        },
        (_, None) => (
            Change::Submitted {
                head: head.clone(),
                branch: Some(prepared.branch.clone()),
                base: Some(prepared.base.clone()),
                usage: outcome.usage.clone(),
            },
            Finished::Submitted { head },
        ),
    };
    let spans = [setup, outcome.span(ROLE, result_word(&finished))];
    let finished = match ctx.record_as_holder(id, actor, ROLE, change, &spans)? {
        true => finished,
        // Interrupted: released if still ours; either way it was stopped.
        false if finished == Finished::Interrupted => finished,
        false => Finished::Lost,
    };
    ctx.view.finished(id, ROLE, &describe(&finished));
    Ok(finished)
}

/// The line of a failed run's output that shows it met a rate limit, if
/// one does: only a run that exited non-zero can have (a timeout or an
/// agent that changed nothing is no rate limit).
pub(crate) fn rate_limited(role: &Role, outcome: &process::Outcome) -> Option<String> {
    if !matches!(outcome.ending, Ending::Exited(code) if code != 0) {
        return None;
    }
    let limit = role.rate_limit();
    limit
        .matching_line(&outcome.tail)
        .or_else(|| limit.matching_line(&outcome.message))
        .map(str::to_string)
}

/// How an attempt ended, in the word its agent span records.
fn result_word(finished: &Finished) -> &'static str {
    match finished {
        Finished::Submitted { .. } => "submitted",
        Finished::Failed { .. } => "failed",
        Finished::Interrupted => "interrupted",
        Finished::RateLimited { .. } => "rate_limited",
        Finished::Lost => "lost",
    }
}

/// The implementer's prompt, with the feedback of earlier attempts.
fn implementer_prompt(ctx: &Context, task: &Task, events: &[Event]) -> String {
    let deps: Vec<(String, Option<String>)> = task
        .depends_on
        .iter()
        .map(|d| (d.clone(), ctx.store.load(d).ok().map(|r| r.task.title)))
        .collect();
    let target = &ctx.config.target;
    let built_in = prompt::implementer(task, &deps, events, target);
    let vars = prompt::task_vars(task, &prompt::feedback(events), target);
    prompt::with_override(Some(&ctx.root), ROLE, built_in, &vars)
}

/// A provenance note on every commit the attempt produced.
fn note_provenance(
    ctx: &Context,
    dir: &Path,
    start: &str,
    task: &Task,
    agent: &str,
    run: &str,
) -> Result<()> {
    let line = serde_json::json!({
        "task": task.id, "role": ROLE, "agent": agent, "attempt": task.attempts + 1, "run": run,
    })
    .to_string();
    for commit in git::commits_in(dir, &["HEAD"], &[start])? {
        let oid =
            gix::ObjectId::from_hex(commit.as_bytes()).context("git printed a bad commit id")?;
        ctx.store.append_note(notes::PROVENANCE, oid, &line)?;
    }
    Ok(())
}

/// The agent's name for provenance: the preset's, else the program's file name.
pub fn agent_name(launch: &crate::agent::config::Launch) -> String {
    match launch.preset {
        Some(preset) => preset.name().to_string(),
        None => launch
            .argv
            .first()
            .and_then(|p| Path::new(p).file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

pub fn describe(finished: &Finished) -> String {
    match finished {
        Finished::Submitted { head } => format!("submitted {}", short(head)),
        Finished::Failed { reason } => format!("failed: {reason}"),
        Finished::Interrupted => "interrupted; work kept, task released".into(),
        Finished::RateLimited { reason } => format!("{reason}; released, no attempt used up"),
        Finished::Lost => "ended, but the task was taken over meanwhile".into(),
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

/// Remove the `index.lock` of the task worktree at `path` when no process
/// works there any more (the git that held it was killed with its agent);
/// returns the path removed. A lock with a live process beside it is left:
/// that git may still be writing.
fn remove_stale_index_lock(path: &std::path::Path) -> Result<Option<std::path::PathBuf>> {
    if !path.join(".git").exists() {
        return Ok(None);
    }
    let lock = crate::git::private_path(path, "index.lock")?;
    if !lock.exists() || !process::processes_in(path).is_empty() {
        return Ok(None);
    }
    match std::fs::remove_file(&lock) {
        Ok(()) => Ok(Some(lock)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("removing {}", lock.display())),
    }
}
