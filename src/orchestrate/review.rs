//! Reviewing a range of commits: `merge-base(target, head)..head` of a task's
//! work or of any branch, by the reviewer agent in a detached worktree of the
//! head, or by a person. The verdict is one JSON line in
//! `refs/notes/agent-review` on exactly the commit reviewed, and holds for
//! that commit only; for a task in review at that commit, a `reviewed` event
//! moves the task (approve: approved; changes: back to open, or to a human).

use anyhow::{anyhow, bail, Context as _, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};

use super::limits::{self, RateLimited};
use super::{worktree, Context};
use crate::agent::config::Role;
use crate::agent::process::{AgentRun, Ending};
use crate::agent::prompt;
use crate::agent::reviewer::{self, Answer, Brief, Usage};
use crate::error::Interrupted;
use crate::git;
use crate::model::id;
use crate::model::span::{self, Span};
use crate::model::task::{Change, State, Task, Verdict};
use crate::store::{notes, Draft, Store, StoreError};

const ROLE: &str = "reviewer";

/// What to review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A task, by full id: its submitted head while it is in review, else the
    /// tip of its branch.
    Task(String),
    /// Any revision: a branch (an agent's or a person's), a tag, a commit.
    /// The branch `agent/<id>` of an existing task counts as that task's.
    Rev(String),
}

impl Subject {
    /// What a command-line argument names: an exact task id, else a local
    /// branch, else a unique task id prefix, else any revision. `None` is
    /// the current branch (`HEAD`).
    pub fn parse(ctx: &Context, arg: Option<&str>) -> Result<Subject> {
        let Some(arg) = arg else {
            return Ok(Subject::Rev("HEAD".into()));
        };
        let task = if id::is_valid_name(arg) {
            match ctx.store.resolve(arg) {
                Ok(id) => Some(Ok(id)),
                Err(e) => match e.downcast::<StoreError>() {
                    Ok(StoreError::NoSuchTask(_)) => None,
                    Ok(other) => Some(Err(anyhow::Error::from(other))),
                    Err(e) => return Err(e),
                },
            }
        } else {
            None
        };
        let is_branch = git::find_commit(&ctx.root, &format!("refs/heads/{arg}"))?.is_some();
        Ok(match task {
            Some(Ok(id)) if id == arg || !is_branch => Subject::Task(id),
            _ if is_branch => Subject::Rev(arg.to_string()),
            // An ambiguous task prefix that is no revision either: say so.
            Some(Err(e)) if git::resolve_commit(&ctx.root, arg).is_err() => return Err(e),
            _ => Subject::Rev(arg.to_string()),
        })
    }
}

/// How to review.
#[derive(Debug, Clone, Default)]
pub struct ReviewOptions {
    /// Review `base..head` instead of `merge-base(target, head)..head`.
    pub base: Option<String>,
    /// Run the reviewer even if it has a verdict on this commit already.
    /// (Without it, an earlier verdict by the same reviewer name on the same
    /// commit is returned, whatever base it was given against.)
    pub again: bool,
    /// A person's verdict, recorded as it is: no agent runs.
    pub person: Option<PersonVerdict>,
}

/// A verdict a person gives (`--approve`, `--request-changes -m MSG`).
#[derive(Debug, Clone)]
pub struct PersonVerdict {
    /// Who, as recorded in the note and the event (e.g. `user@host`).
    pub reviewer: String,
    pub verdict: Verdict,
    pub summary: String,
}

/// One line of `refs/notes/agent-review`: a verdict on the commit it is
/// attached to, and on no other.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct VerdictNote {
    pub verdict: Verdict,
    pub reviewer: String,
    #[serde(default)]
    pub task: Option<String>,
    /// The other end of the range reviewed (`base..commit`).
    #[serde(default)]
    pub base: String,
    #[serde(default)]
    pub at: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// What a review did.
#[derive(Debug, Clone, Serialize)]
pub struct Reviewed {
    pub verdict: Verdict,
    pub summary: String,
    /// The commit the verdict is on: the head of the range.
    pub head: String,
    pub base: String,
    /// The branch or revision reviewed, as it was named.
    pub branch: String,
    /// Commits in `base..head`.
    pub commits: usize,
    pub reviewer: String,
    pub at: String,
    /// Whether the reviewer agent ran in this call (false: a person's
    /// verdict, or this reviewer's earlier verdict on the same commit).
    pub ran: bool,
    /// Whether the verdict is the reviewer's earlier one on this commit,
    /// returned without running it again.
    pub reused: bool,
    pub task: Option<String>,
    /// Whether this call recorded a `reviewed` event on the task.
    pub moved: bool,
    /// The task's state after this call.
    pub state: Option<State>,
    /// Why the task did not move, where there is a task and it did not.
    pub unmoved: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The reviewer's log, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
}

/// The range under review, located.
struct Range {
    head: String,
    base: String,
    /// The branch or revision as named (the current branch for `HEAD`).
    label: String,
    task: Option<Task>,
    commits: usize,
}

/// Review `subject` and record the verdict: a note on the exact head commit
/// and, for a task in review at that commit, a `reviewed` event.
///
/// With a person's verdict no agent runs. Otherwise, if the configured
/// reviewer has a verdict on the head commit already, that verdict is
/// returned and the agent does not run again (unless `again`). Fails (and
/// records nothing) when the range is empty, no reviewer is configured, or
/// the reviewer exits non-zero, times out, is interrupted or gives no verdict.
pub fn review(ctx: &Context, subject: &Subject, options: &ReviewOptions) -> Result<Reviewed> {
    let range = locate(ctx, subject, options.base.as_deref())?;
    let oid = object_id(&range.head)?;
    let mut spans = Vec::new();
    let (note, role, ran, log, reused) = match &options.person {
        Some(person) => {
            let answer = Answer {
                verdict: person.verdict,
                summary: person.summary.trim().to_string(),
                usage: None,
            };
            (
                note_of(&range, &person.reviewer, answer),
                "human",
                false,
                None,
                false,
            )
        }
        None => {
            let agent = ctx.role(ROLE)?.clone();
            let name = reviewer_label(&agent);
            let earlier = match options.again {
                true => None,
                false => latest(
                    verdicts_on(&ctx.store, oid)?
                        .into_iter()
                        .filter(|v| v.reviewer == name),
                ),
            };
            match earlier {
                Some(note) => (note, ROLE, false, None, true),
                None => {
                    let (answer, log, timed) = run_reviewer(ctx, &range, &agent)?;
                    spans = timed;
                    (note_of(&range, &name, answer), ROLE, true, Some(log), false)
                }
            }
        }
    };
    if !reused {
        let line = serde_json::to_string(&note)?;
        ctx.store.append_note(notes::REVIEW, oid, &line)?;
    }
    // Also for a verdict given earlier: a run killed between its note and
    // its event gets the event now.
    let (moved, state, unmoved) = match &range.task {
        Some(task) => {
            let (moved, state, why) =
                record_event(ctx, &task.id, &range.head, &note, role, &spans)?;
            (moved, Some(state), why)
        }
        None => (false, None, None),
    };
    Ok(Reviewed {
        verdict: note.verdict,
        summary: note.summary,
        head: range.head,
        base: range.base,
        branch: range.label,
        commits: range.commits,
        reviewer: note.reviewer,
        at: note.at,
        ran,
        reused,
        task: range.task.map(|t| t.id),
        moved,
        state,
        unmoved,
        usage: note.usage,
        log,
    })
}

/// Every verdict on exactly `commit` (a full id, or any revision), in the
/// order they were written; lines that are no verdict are skipped.
pub fn verdicts(store: &Store, commit: &str) -> Result<Vec<VerdictNote>> {
    verdicts_on(store, commit_id(store, commit)?)
}

/// The latest verdict on exactly `commit` (a full id, or any revision):
/// `None` if it has none. A verdict on an ancestor says nothing about it.
pub fn verdict_of(store: &Store, commit: &str) -> Result<Option<Verdict>> {
    Ok(latest_verdict(store, commit)?.map(|v| v.verdict))
}

/// The latest verdict note on exactly `commit`, by its time (then by its
/// place in the note): who gave it, on which range, and why.
pub fn latest_verdict(store: &Store, commit: &str) -> Result<Option<VerdictNote>> {
    Ok(latest(verdicts(store, commit)?))
}

/// A configured reviewer's name in its verdicts: a preset's name and the
/// arguments added to it (`codex`, `claude --model opus`), else its command.
pub fn reviewer_label(role: &Role) -> String {
    let mut words = match &role.agent {
        Some(preset) => vec![preset.clone()],
        None => role.command.clone(),
    };
    words.extend(role.args.iter().cloned());
    reviewer_name(&words)
}

/// How a reviewer agent is named in its verdicts: its command, with paths
/// cut to file names (`codex exec`, `sh reviewer.sh`). A commit that has a
/// verdict by this name is not given to the same reviewer again.
pub fn reviewer_name(command: &[String]) -> String {
    command
        .iter()
        .map(|word| match word.rsplit_once('/') {
            // A path: its file name. Options and `key=value` words stay whole.
            Some((_, name))
                if !name.is_empty() && !word.starts_with('-') && !word.contains('=') =>
            {
                name
            }
            _ => word.as_str(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where review worktrees live while a reviewer runs: `<agent dir>/reviews/`,
/// each `<run>` next to a `<run>.lock` held for as long as the review runs.
pub fn reviews_dir(ctx: &Context) -> PathBuf {
    worktree::worktrees_dir(ctx).join(format!("reviews-{}", worktree::repo_key(ctx)))
}

fn verdicts_on(store: &Store, commit: gix::ObjectId) -> Result<Vec<VerdictNote>> {
    Ok(store
        .note_lines(notes::REVIEW, commit)?
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

fn latest(notes: impl IntoIterator<Item = VerdictNote>) -> Option<VerdictNote> {
    notes
        .into_iter()
        .enumerate()
        .max_by(|(i, a), (j, b)| a.at.cmp(&b.at).then(i.cmp(j)))
        .map(|(_, note)| note)
}

fn note_of(range: &Range, reviewer: &str, answer: Answer) -> VerdictNote {
    VerdictNote {
        verdict: answer.verdict,
        reviewer: reviewer.to_string(),
        task: range.task.as_ref().map(|t| t.id.clone()),
        base: range.base.clone(),
        at: crate::store::now(),
        summary: answer.summary,
        usage: answer.usage,
    }
}

fn commit_id(store: &Store, commit: &str) -> Result<gix::ObjectId> {
    if commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return object_id(commit);
    }
    object_id(&git::resolve_commit(store.work_dir(), commit)?)
}

fn object_id(hex: &str) -> Result<gix::ObjectId> {
    gix::ObjectId::from_hex(hex.as_bytes()).with_context(|| format!("\"{hex}\" is not a commit id"))
}

/// Find the head, the base and the task of `subject`.
fn locate(ctx: &Context, subject: &Subject, base_rev: Option<&str>) -> Result<Range> {
    let (head, label, task) = match subject {
        Subject::Task(id) => {
            let task = ctx.store.load(id)?.task;
            let branch = task.branch.clone().unwrap_or_else(|| format!("agent/{id}"));
            let tip = git::resolve_commit(&ctx.root, &format!("refs/heads/{branch}")).ok();
            let head = match task.state {
                State::InReview => task.head.clone(),
                _ => tip.or_else(|| task.head.clone()),
            }
            .with_context(|| {
                format!("task {id} has no work to review: no branch {branch}, nothing submitted")
            })?;
            (head, branch, Some(task))
        }
        Subject::Rev(rev) => {
            let head = git::resolve_commit(&ctx.root, rev)?;
            let label = match rev.as_str() {
                "HEAD" => git::head_ref(&ctx.root)?
                    .map(|r| r.strip_prefix("refs/heads/").unwrap_or(&r).to_string())
                    .unwrap_or_else(|| "HEAD".into()),
                _ => rev.clone(),
            };
            let task = label
                .strip_prefix("agent/")
                .filter(|id| id::is_valid_name(id))
                .and_then(|id| ctx.store.load(id).ok())
                .map(|r| r.task);
            (head, label, task)
        }
    };
    let target = &ctx.config.target;
    let base = match base_rev {
        Some(rev) => git::resolve_commit(&ctx.root, rev).context("--base")?,
        None => {
            let target_tip = git::resolve_commit(&ctx.root, &format!("refs/heads/{target}"))
                .map_err(|_| {
                    anyhow!("the target branch {target} does not exist (set target in .git-agent.yaml, or give --base)")
                })?;
            git::merge_base(&ctx.root, &target_tip, &head)?.with_context(|| {
                format!("{label} has no history in common with {target}: give --base")
            })?
        }
    };
    let commits = git::commits_in(&ctx.root, &[&head], &[&base])?.len();
    if commits == 0 {
        let other = base_rev.unwrap_or(target);
        bail!(
            "nothing to review: {label} ({}) has no commits that {other} lacks",
            short(&head)
        );
    }
    Ok(Range {
        head,
        base,
        label,
        task,
        commits,
    })
}

/// Run the reviewer agent on `range` in a detached worktree of its head and
/// read its answer, with the spans of its set-up and its run; an error if
/// it failed (a [`RateLimited`] one if it met a rate limit) or gave no verdict.
fn run_reviewer(
    ctx: &Context,
    range: &Range,
    agent: &Role,
) -> Result<(Answer, PathBuf, Vec<Span>)> {
    let (base, head) = (range.base.as_str(), range.head.as_str());
    let spec = format!("{base}..{head}");
    let options = ["--reverse", "--no-color", "--format=%h %s%n%w(0,4,4)%-b"];
    let log = git::log(&ctx.root, &options, &[&spec])?;
    let stat = git::diff_stat(&ctx.root, base, head)?;
    let diff = git::diff(&ctx.root, base, head)?;
    let brief = Brief {
        task: range.task.as_ref(),
        branch: &range.label,
        base,
        head,
        target: &ctx.config.target,
        log: &log,
        stat: &stat,
        diff: &diff,
    };
    let built_in = reviewer::prompt(&brief);
    let text = prompt::with_override(Some(&ctx.root), ROLE, built_in, &reviewer::vars(&brief));
    let setup_start = crate::store::now();
    let spent = match &range.task {
        Some(task) => limits::task_spent(&ctx.store.events(&task.id)?),
        None => Default::default(),
    };
    let tree = ReviewTree::create(ctx, head)?;
    let attempt = range.task.as_ref().map_or(1, |t| t.attempts + 1);
    let files = log_files(ctx, range, attempt);
    let run = AgentRun {
        role: ROLE.into(),
        launch: ctx.ledger.launch(agent, ROLE, &spent),
        cwd: tree.path.clone(),
        prompt: text,
        timeout: agent.timeout(),
        files,
        env: vec![
            (
                "TASK".into(),
                range
                    .task
                    .as_ref()
                    .map(|t| t.id.clone())
                    .unwrap_or_default(),
            ),
            ("ATTEMPT".into(), attempt.to_string()),
            ("BASE".into(), base.to_string()),
            ("HEAD".into(), head.to_string()),
            ("BRANCH".into(), range.label.clone()),
            ("TARGET".into(), ctx.config.target.clone()),
            ("RUN".into(), tree.run.clone()),
        ],
        task_json: range
            .task
            .as_ref()
            .map(serde_json::to_string_pretty)
            .transpose()?,
    };
    let (shown, title) = match &range.task {
        Some(task) => (task.id.clone(), task.title.clone()),
        None => (range.label.clone(), format!("{} commits", range.commits)),
    };
    ctx.view.started(&shown, ROLE, attempt, &title);
    let outcome = run.run(ctx.stop);
    drop(tree);
    let outcome = outcome?;
    if outcome.ending == Ending::Interrupted {
        ctx.view
            .finished(&shown, ROLE, "interrupted; nothing recorded");
        return Err(Interrupted(format!(
            "review of {} interrupted; nothing recorded",
            range.label
        ))
        .into());
    }
    ctx.ledger.spend(outcome.usage.as_ref());
    if let Some(failure) = outcome.failure(agent.timeout()) {
        ctx.view.finished(&shown, ROLE, &failure);
        if let Some(line) = super::work::rate_limited(agent, &outcome) {
            ctx.ledger.pause(ROLE, agent, &line);
            if let Some(task) = &range.task {
                // Recorded with the verdict this run delayed.
                ctx.ledger
                    .hold(&task.id, ROLE, outcome.span(ROLE, "rate_limited"));
            }
            return Err(RateLimited(line).into());
        }
        bail!(
            "the reviewer failed: {failure}; nothing recorded. Its log: {}\n{}",
            outcome.log.display(),
            outcome.tail
        );
    }
    let mut answer =
        reviewer::read(outcome.output.as_deref(), &outcome.message).map_err(|why| {
            ctx.view.finished(&shown, ROLE, "no verdict");
            anyhow!(
                "the reviewer gave no verdict: {why}; nothing recorded. Its log: {}",
                outcome.log.display()
            )
        })?;
    if answer.usage.is_none() {
        answer.usage = outcome.usage.clone();
    }
    ctx.view
        .finished(&shown, ROLE, &describe(answer.verdict, &answer.summary));
    let word = match answer.verdict {
        Verdict::Approve => "approve",
        Verdict::Changes => "changes",
    };
    let mut run_span = outcome.span(ROLE, word);
    run_span.usage = answer.usage.clone();
    let mut spans = match &range.task {
        Some(task) => ctx.ledger.take_held(&task.id, ROLE),
        None => Vec::new(),
    };
    spans.push(Span::new(
        span::kind::SETUP,
        &setup_start,
        &outcome.started_at,
    ));
    spans.push(run_span);
    Ok((answer, outcome.log, spans))
}

/// `approve` or `changes: <first line of the summary>`, for the live view.
pub fn describe(verdict: Verdict, summary: &str) -> String {
    match verdict {
        Verdict::Approve => "approve".into(),
        // The first finding (a `- ` line) says more than the summary's header.
        Verdict::Changes => {
            let finding = summary
                .lines()
                .find(|l| l.starts_with("- "))
                .or_else(|| summary.lines().next());
            format!(
                "changes: {}",
                crate::model::one_line(finding.unwrap_or(""), 70)
            )
        }
    }
}

/// `<agent dir>/logs/<task>/<attempt>-reviewer` (or `logs/review/<head>-reviewer`
/// for a branch), with `-2`, `-3`… where a review of the same attempt ran before.
fn log_files(ctx: &Context, range: &Range, attempt: u32) -> PathBuf {
    let (dir, stem) = match &range.task {
        Some(task) => (task.id.clone(), format!("{attempt}-{ROLE}")),
        None => (
            "review".to_string(),
            format!("{}-{ROLE}", short(&range.head)),
        ),
    };
    let dir = ctx.store.agent_dir().join("logs").join(dir);
    (1..)
        .map(|n| match n {
            1 => dir.join(&stem),
            n => dir.join(format!("{stem}-{n}")),
        })
        .find(|base| {
            !base
                .with_file_name(format!("{}.log", file_name(base)))
                .exists()
        })
        .expect("some numbered log name is free")
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// Record the verdict as a `reviewed` event if the task is in review at
/// exactly `head`. Returns whether it did, the task's state after, and why not.
fn record_event(
    ctx: &Context,
    id: &str,
    head: &str,
    note: &VerdictNote,
    role: &str,
    spans: &[Span],
) -> Result<(bool, State, Option<String>)> {
    let mut why = None;
    let record = ctx.store.update_timed(id, spans, |current| {
        let task = &current.task;
        why = if task.state != State::InReview {
            Some(format!("task {id} is {}, not in review", task.state))
        } else if task.head.as_deref() != Some(head) {
            Some(format!(
                "task {id} is in review at {}, not at this commit",
                task.head.as_deref().map_or("(no head)", short)
            ))
        } else {
            None
        };
        if why.is_some() {
            return Ok((vec![], vec![]));
        }
        let change = Change::Reviewed {
            verdict: note.verdict,
            head: head.to_string(),
            summary: (!note.summary.is_empty()).then(|| note.summary.clone()),
            usage: note.usage.clone(),
        };
        let draft = Draft {
            change,
            actor: note.reviewer.clone(),
            role: role.to_string(),
        };
        Ok((vec![draft], vec![]))
    })?;
    Ok((why.is_none(), record.task.state, why))
}

/// A detached worktree of the head under review, removed when dropped. Its
/// lock file is held meanwhile, so that `git agent gc` leaves it alone.
struct ReviewTree {
    path: PathBuf,
    run: String,
    root: PathBuf,
    lock_path: PathBuf,
    _lock: File,
}

impl ReviewTree {
    fn create(ctx: &Context, head: &str) -> Result<ReviewTree> {
        let dir = reviews_dir(ctx);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let run = id::generate("r", 8);
        let lock_path = dir.join(format!("{run}.lock"));
        let lock = File::create(&lock_path)
            .with_context(|| format!("creating {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("locking {}", lock_path.display()))?;
        let path = dir.join(&run);
        let tree = ReviewTree {
            path,
            run,
            root: ctx.root.clone(),
            lock_path,
            _lock: lock,
        };
        let _turn = worktree::creation_lock(ctx)?;
        git::worktree_add_detached(&ctx.root, &tree.path, head)?;
        Ok(tree)
    }
}

impl Drop for ReviewTree {
    fn drop(&mut self) {
        let _ = git::worktree_remove(&self.root, &self.path, true);
        // What git left (or a failed add made) goes too; gc sweeps the rest.
        let _ = std::fs::remove_dir_all(&self.path);
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviewers_are_named_by_their_command_with_paths_cut() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            reviewer_name(&words(&["sh", "/x/agents/reviewer.sh", "pattern=a/b"])),
            "sh reviewer.sh pattern=a/b"
        );
        assert_eq!(reviewer_name(&words(&["codex", "exec"])), "codex exec");
        assert_eq!(
            reviewer_name(&words(&["/usr/bin/claude", "--x=/a"])),
            "claude --x=/a"
        );
    }

    #[test]
    fn the_latest_verdict_is_the_newest_then_the_last_written() {
        let note = |verdict, at: &str| VerdictNote {
            verdict,
            reviewer: "r".into(),
            task: None,
            base: String::new(),
            at: at.into(),
            summary: String::new(),
            usage: None,
        };
        let notes = vec![
            note(Verdict::Changes, "2026-01-02T00:00:00Z"),
            note(Verdict::Approve, "2026-01-01T00:00:00Z"),
        ];
        assert_eq!(latest(notes).map(|n| n.verdict), Some(Verdict::Changes));
        let tied = vec![
            note(Verdict::Changes, "2026-01-01T00:00:00Z"),
            note(Verdict::Approve, "2026-01-01T00:00:00Z"),
        ];
        assert_eq!(latest(tied).map(|n| n.verdict), Some(Verdict::Approve));
        assert_eq!(latest(vec![]), None);
    }
}
