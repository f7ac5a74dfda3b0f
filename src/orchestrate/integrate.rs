//! The merge queue: approved work lands on the target only through a test
//! gate, so the target stays green.
//!
//! For each approved task, in priority then FIFO order: merge its head onto
//! the target's tip in a scratch worktree, run `test` on exactly that tree,
//! and only if it passes advance the target with a compare-and-swap (again
//! from the new tip if the target moved meanwhile). A conflict goes to the
//! integrator agent if there is one, else back to the implementer; red tests
//! go back with the log tail. Every entry has a deadline.

use anyhow::{bail, Context as _, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::limits::{self, RateLimited};
use super::worktree::{self, creation_lock};
use super::Context;
use crate::agent::process::{self, AgentRun, Ending};
use crate::git;
use crate::model::span::{self, Span};
use crate::model::task::{Change, State, Task};
use crate::model::usage::Usage;
use crate::store::{notes, Draft};

/// How many times the queue starts over on a target that moved meanwhile.
const MOVED_RETRIES: usize = 5;
const ROLE: &str = "integrator";

/// What happened to one queue entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Landing {
    /// On the target, as `commit`.
    Merged { commit: String },
    /// Sent back to the implementer: conflict or red tests.
    Failed { reason: String },
    /// Still approved, waiting (e.g. local changes on the checked-out target).
    Waiting { reason: String },
    /// Waited past its deadline: now a human's.
    Escalated { reason: String },
}

/// One queue entry's result.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub task: String,
    pub title: String,
    #[serde(flatten)]
    pub landing: Landing,
}

/// Approved tasks in the order the queue takes them: priority, then the
/// time they were approved, then plan order.
pub fn queue(ctx: &Context) -> Result<Vec<Task>> {
    let mut approved: Vec<Task> = ctx
        .store
        .load_all()?
        .into_iter()
        .filter(|t| t.state == State::Approved)
        .collect();
    approved.sort_by(|a, b| {
        (a.priority, &a.updated_at, a.seq, &a.id).cmp(&(b.priority, &b.updated_at, b.seq, &b.id))
    });
    Ok(approved)
}

/// Run the whole queue once. One queue runs at a time per repository.
pub fn integrate_all(ctx: &Context) -> Result<Vec<Entry>> {
    let _turn = queue_lock(ctx)?;
    let mut entries = Vec::new();
    for task in queue(ctx)? {
        if ctx.stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let landing = land(ctx, &task)?;
        ctx.view.finished(&task.id, ROLE, &describe(&landing));
        entries.push(Entry {
            task: task.id.clone(),
            title: task.title.clone(),
            landing,
        });
    }
    Ok(entries)
}

/// Land one approved task, or send it back, or leave it waiting.
pub fn land(ctx: &Context, task: &Task) -> Result<Landing> {
    let head = task
        .head
        .clone()
        .with_context(|| format!("task {} is approved but has no head", task.id))?;
    let target = ctx.config.target.clone();
    let scratch = scratch_worktree(ctx)?;
    // The scratch worktree's set-up counts as waiting for the queue.
    let land_start = crate::store::now();
    // What the integrator agent used on this entry and when each step ran,
    // recorded with its outcome.
    let mut spent = Spent::default();
    let approved_at = task.updated_at.clone();
    spent
        .spans
        .push(Span::new(span::kind::QUEUE, &approved_at, &land_start));
    for _ in 0..MOVED_RETRIES {
        let tip = git::resolve_commit(&ctx.root, &format!("refs/heads/{target}"))?;
        if git::is_ancestor(&ctx.root, &head, &tip)? {
            // Already there (e.g. merged by hand): record it, land nothing new.
            return record_merged(ctx, task, &tip, spent);
        }
        let merge_start = crate::store::now();
        let merging = merge(ctx, &scratch, task, &head, &tip, &mut spent)?;
        let merge_span = Span::new(span::kind::MERGE, &merge_start, &crate::store::now());
        spent.spans.push(merge_span);
        let merged = match merging {
            Merge::Clean(commit) => commit,
            Merge::Conflict(_) if stopped(ctx) => return Ok(interrupted()),
            Merge::Conflict(paths) => return send_back_conflict(ctx, task, &tip, &paths, spent),
        };
        match gate(ctx, &scratch, task, &merged, &tip, &mut spent)? {
            Gate::Passed | Gate::NotConfigured => {}
            Gate::Failed { tail } => {
                let reason = format!("the tests failed on {head} merged onto {target}");
                return send_back(ctx, task, &reason, Some(tail), spent);
            }
            // Stopped by Ctrl-C: not the work's fault; it stays approved.
            Gate::DidNotRun { .. } if stopped(ctx) => return Ok(interrupted()),
            Gate::DidNotRun { why } => {
                let reason = format!("the gate did not run: {why}");
                return send_back(ctx, task, &reason, None, spent);
            }
        }
        match advance(ctx, &target, &tip, &merged)? {
            Advance::Done => return record_merged(ctx, task, &merged, spent),
            Advance::Moved => continue,
            Advance::Blocked(why) => return wait_or_escalate(ctx, task, why, spent),
        }
    }
    wait_or_escalate(
        ctx,
        task,
        format!("{target} kept moving while this was merged"),
        spent,
    )
}

fn stopped(ctx: &Context) -> bool {
    ctx.stop.load(std::sync::atomic::Ordering::Relaxed)
}

fn interrupted() -> Landing {
    Landing::Waiting {
        reason: "interrupted; it stays approved for the next run".into(),
    }
}

/// What one queue entry's integrator agents used, and when each step of
/// the entry ran: recorded with the entry's outcome.
#[derive(Default)]
struct Spent {
    usage: Option<Usage>,
    spans: Vec<Span>,
}

enum Merge {
    Clean(String),
    Conflict(Vec<String>),
}

/// Merge `head` onto `tip` in the scratch worktree with the configured
/// strategy; a conflict goes to the integrator agent if there is one.
fn merge(
    ctx: &Context,
    dir: &Path,
    task: &Task,
    head: &str,
    tip: &str,
    spent: &mut Spent,
) -> Result<Merge> {
    git::checkout_detached(dir, tip)?;
    git::clean(dir)?;
    let message = merge_message(ctx, task);
    let strategy = ctx.config.integrate.strategy().to_string();
    let clean = match strategy.as_str() {
        "squash" => git::merge_squash(dir, head)?,
        "rebase" => return rebase(ctx, dir, task, head, tip, spent),
        _ => git::merge_no_commit(dir, head)?,
    };
    if !clean {
        let paths = git::unmerged(dir)?;
        if paths.is_empty() {
            bail!("merging {head} onto {tip} failed without a conflict");
        }
        if !resolve_with_agent(ctx, dir, task, tip, &paths, spent)? {
            let _ = git::merge_abort(dir);
            let _ = git::reset_hard(dir);
            return Ok(Merge::Conflict(paths));
        }
    }
    match git::commit_all(dir, &message)? {
        Some(commit) => Ok(Merge::Clean(commit)),
        // A squash of changes the target already has: nothing to add.
        None => Ok(Merge::Clean(git::head(dir)?)),
    }
}

/// Replay `head`'s commits onto `tip`. Each commit that conflicts goes to
/// the integrator agent (if there is one) before the rebase continues.
fn rebase(
    ctx: &Context,
    dir: &Path,
    task: &Task,
    head: &str,
    tip: &str,
    spent: &mut Spent,
) -> Result<Merge> {
    git::checkout_detached(dir, head)?;
    let mut clean = git::rebase(dir, tip)?;
    while !clean {
        let paths = git::unmerged(dir)?;
        if paths.is_empty() || !resolve_with_agent(ctx, dir, task, tip, &paths, spent)? {
            let _ = git::rebase_abort(dir);
            return Ok(Merge::Conflict(paths));
        }
        clean = git::rebase_continue(dir)?;
    }
    Ok(Merge::Clean(git::head(dir)?))
}

/// Let the integrator agent resolve a conflict in progress. Whether the
/// conflict is gone: no unmerged paths and no conflict markers left. What
/// the agent used is added to `spent`.
fn resolve_with_agent(
    ctx: &Context,
    dir: &Path,
    task: &Task,
    tip: &str,
    paths: &[String],
    spent: &mut Spent,
) -> Result<bool> {
    let Ok(role) = ctx.role(ROLE).cloned() else {
        return Ok(false);
    };
    let attempt = task.attempts + 1;
    let prompt = format!(
        "# Resolve a merge conflict\n\nTask {}: {}\n\n{}\n\nMerging `agent/{}` onto `{}` conflicts in:\n{}\n\
         Resolve every conflict in this worktree by editing the files so that no conflict markers remain \
         (keep the intent of both sides), and exit 0. Do not commit: git-agent stages and commits the merge. \
         Exit non-zero if you cannot.\n",
        task.id,
        task.title,
        task.spec.trim(),
        task.id,
        ctx.config.target,
        paths.iter().map(|p| format!("- {p}\n")).collect::<String>()
    );
    let task_spent = limits::task_spent(&ctx.store.events(&task.id)?);
    let run = AgentRun {
        role: ROLE.into(),
        launch: ctx.ledger.launch(&role, ROLE, &task_spent),
        cwd: dir.to_path_buf(),
        prompt,
        timeout: role.timeout(),
        files: process::log_base(&ctx.store.agent_dir(), &task.id, attempt, ROLE),
        env: vec![
            ("TASK".into(), task.id.clone()),
            ("ATTEMPT".into(), attempt.to_string()),
            ("BASE".into(), tip.to_string()),
            ("BRANCH".into(), format!("agent/{}", task.id)),
        ],
        task_json: Some(serde_json::to_string_pretty(task)?),
    };
    ctx.view.started(
        &task.id,
        ROLE,
        attempt,
        &format!("resolve conflict in {}", paths.join(", ")),
    );
    let outcome = run.run(ctx.stop)?;
    ctx.ledger.spend(outcome.usage.as_ref());
    if let Some(usage) = &outcome.usage {
        spent.usage = Some(
            spent
                .usage
                .as_ref()
                .map_or(usage.clone(), |s| s.plus(usage)),
        );
    }
    let result = if outcome.succeeded() {
        "resolved"
    } else {
        "failed"
    };
    spent.spans.push(outcome.span(ROLE, result));
    if let Some(line) = super::work::rate_limited(&role, &outcome) {
        // Not the work's fault: it stays approved, tried again after the pause.
        ctx.ledger.pause(ROLE, &role, &line);
        return Err(RateLimited(line).into());
    }
    if !outcome.succeeded() {
        ctx.view.say(&format!(
            "{}: the integrator could not resolve the conflict",
            task.id
        ));
        return Ok(false);
    }
    git::stage_all(dir)?;
    Ok(git::unresolved(dir)?.is_empty())
}

enum Gate {
    Passed,
    NotConfigured,
    Failed { tail: String },
    DidNotRun { why: String },
}

/// One gate run, as recorded in `refs/notes/agent-ci` on the tested commit.
#[derive(Serialize)]
struct GateRecord<'a> {
    tree: &'a str,
    base: &'a str,
    inputs: serde_json::Value,
    result: &'a str,
    duration_ms: u128,
    at: String,
}

/// Run `test` on the merged tree, unless that tree passed already; its span
/// goes into `spent`.
fn gate(
    ctx: &Context,
    dir: &Path,
    task: &Task,
    commit: &str,
    base: &str,
    spent: &mut Spent,
) -> Result<Gate> {
    let test = ctx.config.test.trim().to_string();
    let tree = git::tree_of(dir, commit)?;
    let inputs = serde_json::json!({ "test": test, "task": task.id });
    let note = |result: &str, duration: Duration| -> Result<()> {
        let record = GateRecord {
            tree: &tree,
            base,
            inputs: inputs.clone(),
            result,
            duration_ms: duration.as_millis(),
            at: crate::store::now(),
        };
        let oid = gix::ObjectId::from_hex(commit.as_bytes()).context("bad commit id")?;
        ctx.store
            .append_note(notes::CI, oid, &serde_json::to_string(&record)?)?;
        Ok(())
    };
    if test.is_empty() {
        note("not_run: no test command", Duration::ZERO)?;
        return Ok(Gate::NotConfigured);
    }
    if passed_before(ctx, &tree, &test) {
        note("passed (this tree passed before)", Duration::ZERO)?;
        return Ok(Gate::Passed);
    }
    let attempt = task.attempts + 1;
    let timeout = ctx.config.integrate.test_timeout();
    let run = AgentRun {
        role: "gate".into(),
        launch: crate::agent::config::Launch {
            argv: vec!["sh".into(), "-c".into(), test.clone()],
            env: Vec::new(),
            preset: None,
        },
        cwd: dir.to_path_buf(),
        prompt: String::new(),
        timeout,
        files: process::log_base(&ctx.store.agent_dir(), &task.id, attempt, "gate"),
        env: vec![
            ("TASK".into(), task.id.clone()),
            ("ATTEMPT".into(), attempt.to_string()),
            ("BASE".into(), base.to_string()),
            ("BRANCH".into(), format!("agent/{}", task.id)),
        ],
        task_json: Some(serde_json::to_string_pretty(task)?),
    };
    ctx.view.started(&task.id, "gate", attempt, &test);
    let outcome = run.run(ctx.stop)?;
    let word = match outcome.ending {
        Ending::Exited(0) => "passed".to_string(),
        Ending::Exited(code) => format!("failed: exit {code}"),
        Ending::TimedOut => "timed_out".to_string(),
        Ending::Signalled | Ending::Interrupted => "stopped".to_string(),
    };
    let gate_span = Span::new(span::kind::GATE, &outcome.started_at, &outcome.ended_at);
    spent.spans.push(gate_span.ended(&word));
    let verdict = match outcome.ending {
        Ending::Exited(0) => {
            remember_pass(ctx, &tree, &test)?;
            note("passed", outcome.duration)?;
            Gate::Passed
        }
        Ending::Exited(code) => {
            note(&format!("failed: exit {code}"), outcome.duration)?;
            Gate::Failed { tail: outcome.tail }
        }
        Ending::TimedOut => {
            note("not_run: timed out", outcome.duration)?;
            Gate::DidNotRun {
                why: format!("`{test}` timed out after {}s", timeout.as_secs()),
            }
        }
        Ending::Signalled | Ending::Interrupted => {
            note("not_run: stopped", outcome.duration)?;
            Gate::DidNotRun {
                why: format!("`{test}` was stopped before it finished"),
            }
        }
    };
    ctx.view.finished(&task.id, "gate", gate_word(&verdict));
    Ok(verdict)
}

fn gate_word(gate: &Gate) -> &'static str {
    match gate {
        Gate::Passed => "passed",
        Gate::NotConfigured => "did not run (no test command)",
        Gate::Failed { .. } => "failed",
        Gate::DidNotRun { .. } => "did not run",
    }
}

/// `<agent>/cache/gate-passed`: trees that passed, with the test command.
/// Derived from the agent-ci notes; losing it costs only a re-run.
fn passed_file(ctx: &Context) -> PathBuf {
    ctx.store.agent_dir().join("cache").join("gate-passed")
}

fn passed_before(ctx: &Context, tree: &str, test: &str) -> bool {
    let line = format!("{tree} {test}");
    std::fs::read_to_string(passed_file(ctx)).is_ok_and(|f| f.lines().any(|l| l == line))
}

fn remember_pass(ctx: &Context, tree: &str, test: &str) -> Result<()> {
    use std::io::Write;
    let path = passed_file(ctx);
    std::fs::create_dir_all(path.parent().expect("cache file has a directory"))?;
    let mut file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&path)?;
    writeln!(file, "{tree} {}", test.replace('\n', " "))?;
    Ok(())
}

enum Advance {
    Done,
    Moved,
    Blocked(String),
}

/// Move the target from `old` to `new`: where it is checked out, as
/// `git merge --ff-only` would (or not at all, if local changes are in the
/// way); elsewhere with a compare-and-swap on the ref.
fn advance(ctx: &Context, target: &str, old: &str, new: &str) -> Result<Advance> {
    let refname = format!("refs/heads/{target}");
    if let Some(checkout) = checked_out(ctx, &refname)? {
        if git::head(&checkout)? != old {
            return Ok(Advance::Moved);
        }
        return match git::merge_ff_only(&checkout, new) {
            Ok(()) => Ok(Advance::Done),
            Err(e) if git::head(&checkout)? != old => {
                let _ = e;
                Ok(Advance::Moved)
            }
            Err(e) => Ok(Advance::Blocked(format!(
                "{target} is checked out at {} with local changes in the way: {}",
                checkout.display(),
                crate::model::one_line(&e.to_string(), 300)
            ))),
        };
    }
    let new_id = gix::ObjectId::from_hex(new.as_bytes()).context("bad commit id")?;
    let old_id = gix::ObjectId::from_hex(old.as_bytes()).context("bad commit id")?;
    let edit = crate::git::refs::Edit::set(refname.clone(), new_id, Some(old_id));
    match ctx.store.transact(&[edit], "merge queue") {
        Ok(()) => Ok(Advance::Done),
        Err(_) if git::resolve_commit(&ctx.root, &refname)? != old => Ok(Advance::Moved),
        Err(e) => Err(e.into()),
    }
}

/// The worktree where `refname` is checked out, if any.
fn checked_out(ctx: &Context, refname: &str) -> Result<Option<PathBuf>> {
    Ok(worktree::list(ctx)?
        .into_iter()
        .find(|w| w.branch.as_deref() == Some(refname))
        .map(|w| w.path))
}

fn record_merged(ctx: &Context, task: &Task, commit: &str, spent: Spent) -> Result<Landing> {
    record(
        ctx,
        task,
        Change::Merged {
            commit: Some(commit.to_string()),
            usage: spent.usage,
        },
        &spent.spans,
    )?;
    Ok(Landing::Merged {
        commit: commit.to_string(),
    })
}

fn send_back(
    ctx: &Context,
    task: &Task,
    reason: &str,
    detail: Option<String>,
    spent: Spent,
) -> Result<Landing> {
    record(
        ctx,
        task,
        Change::IntegrationFailed {
            reason: reason.to_string(),
            detail,
            usage: spent.usage,
        },
        &spent.spans,
    )?;
    Ok(Landing::Failed {
        reason: reason.to_string(),
    })
}

/// A conflict goes back to the implementer with the conflicting paths, its
/// branch first brought up to the new target: the merge of the target is
/// left in progress in its worktree, for the next attempt to resolve.
fn send_back_conflict(
    ctx: &Context,
    task: &Task,
    tip: &str,
    paths: &[String],
    spent: Spent,
) -> Result<Landing> {
    let target = &ctx.config.target;
    worktree::bring_up_to(ctx, task, tip)?;
    let reason = format!("merge conflict with {target} in: {}", paths.join(", "));
    let detail = format!(
        "{target} moved on while this was reviewed. A merge of {target} ({}) is in progress in your worktree \
         with conflicts in: {}. Resolve them, keeping the intent of both sides, and commit.",
        &tip[..tip.len().min(10)],
        paths.join(", ")
    );
    send_back(ctx, task, &reason, Some(detail), spent)
}

fn wait_or_escalate(ctx: &Context, task: &Task, why: String, spent: Spent) -> Result<Landing> {
    let approved_at: jiff::Timestamp = task
        .updated_at
        .parse()
        .unwrap_or_else(|_| jiff::Timestamp::now());
    let waited = jiff::Timestamp::now()
        .duration_since(approved_at)
        .unsigned_abs();
    let deadline = ctx.config.integrate.deadline();
    if waited < deadline {
        return Ok(Landing::Waiting { reason: why });
    }
    let reason = format!(
        "waited {}s in the merge queue (deadline {}s): {why}",
        waited.as_secs(),
        deadline.as_secs()
    );
    record(
        ctx,
        task,
        Change::Escalated {
            reason: reason.clone(),
        },
        &spent.spans,
    )?;
    Ok(Landing::Escalated { reason })
}

fn record(ctx: &Context, task: &Task, change: Change, spans: &[Span]) -> Result<()> {
    let actor = format!("integrator@{}", crate::store::lease::hostname());
    ctx.store.update_timed(&task.id, spans, |_| {
        Ok((
            vec![Draft {
                change: change.clone(),
                actor: actor.clone(),
                role: ROLE.into(),
            }],
            vec![],
        ))
    })?;
    Ok(())
}

fn merge_message(ctx: &Context, task: &Task) -> String {
    let subject = format!("Merge agent/{}: {}", task.id, task.title);
    let body = format!(
        "Approved work, merged onto {} by the merge queue after the gate.",
        ctx.config.target
    );
    worktree::trailered(&subject, &body, task, ROLE)
}

/// The queue's scratch worktree (detached), created on first use; named
/// for this repository, so that repositories sharing a `worktrees:` folder
/// each have their own.
fn scratch_worktree(ctx: &Context) -> Result<PathBuf> {
    let path = worktree::worktrees_dir(ctx).join(format!("queue-{}", worktree::repo_key(ctx)));
    if path.join(".git").exists() {
        worktree::check_ours(ctx, &path)?;
        let _ = git::merge_abort(&path);
        let _ = git::rebase_abort(&path);
        return Ok(path);
    }
    let _turn = creation_lock(ctx)?;
    if path.exists() {
        std::fs::remove_dir_all(&path)?;
    }
    git::worktree_prune(&ctx.root)?;
    let target = format!("refs/heads/{}", ctx.config.target);
    git::worktree_add_detached(&ctx.root, &path, &target)?;
    Ok(path)
}

/// One merge queue per repository at a time (an OS lock: a kill -9 frees it).
fn queue_lock(ctx: &Context) -> Result<std::fs::File> {
    let file = super::lock_file(&ctx.store.agent_dir().join("queue.lock"))?;
    file.lock().context("locking the merge queue")?;
    Ok(file)
}

pub fn describe(landing: &Landing) -> String {
    match landing {
        Landing::Merged { commit } => format!("merged as {}", &commit[..commit.len().min(10)]),
        Landing::Failed { reason } => format!("sent back: {reason}"),
        Landing::Waiting { reason } => format!("waits: {reason}"),
        Landing::Escalated { reason } => format!("to a human: {reason}"),
    }
}
