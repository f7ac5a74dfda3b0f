//! The scheduler: ready tasks are claimed and implemented up to `parallel`
//! at once, each in its own thread and its agent in its own process group,
//! until nothing more can move (or forever, with `watch`).

use anyhow::{Context as _, Result};
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::work::{self, Finished};
use super::Context;
use crate::error::No;
use crate::store::lease::{hostname, ClaimRequest};

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct Options {
    pub parallel: usize,
    /// Keep going when nothing can move, polling for new work.
    pub watch: bool,
    pub poll: Duration,
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub submitted: usize,
    pub failed: usize,
    pub interrupted: usize,
    pub lost: usize,
    pub errors: Vec<String>,
}

impl Summary {
    fn count(&mut self, id: &str, result: Result<Finished>) {
        match result {
            Ok(Finished::Submitted { .. }) => self.submitted += 1,
            Ok(Finished::Failed { .. }) => self.failed += 1,
            Ok(Finished::Interrupted) => self.interrupted += 1,
            Ok(Finished::Lost) => self.lost += 1,
            Err(e) => self.errors.push(format!("{id}: {e:#}")),
        }
    }
}

/// A lease on running here: one orchestrator per repository at a time.
/// The OS drops the lock with the process, so a kill -9 never leaves it held.
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Take the lock, or say (exit 1) that another run holds it.
    pub fn acquire(ctx: &Context) -> Result<RunLock> {
        let dir = ctx.store.agent_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("run.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        if file.try_lock().is_err() {
            return Err(No(format!(
                "another `git agent run` is running in this repository ({} is locked)",
                path.display()
            ))
            .into());
        }
        Ok(RunLock { _file: file })
    }
}

/// Run until nothing more can move (or until stopped, with `watch`).
pub fn run(ctx: &Context, options: &Options) -> Result<Summary> {
    let _lock = RunLock::acquire(ctx)?;
    let timeout = ctx.role("implementer")?.timeout();
    let (done_tx, done_rx) = mpsc::channel::<(String, usize, Result<Finished>)>();
    let mut running: HashMap<String, (usize, JoinHandle<()>)> = HashMap::new();
    let mut free: BTreeSet<usize> = (1..=options.parallel.max(1)).collect();
    let mut summary = Summary::default();
    loop {
        if ctx.stop.load(Ordering::Relaxed) {
            break;
        }
        while let Some(&slot) = free.first() {
            let request = ClaimRequest {
                actor: format!("implementer-{slot}@{}", hostname()),
                role: "implementer".into(),
                pid: std::process::id(),
                ttl: timeout + Duration::from_secs(300),
            };
            let Some(record) = ctx.store.claim_next(&request)? else {
                break;
            };
            free.remove(&slot);
            let id = record.task.id.clone();
            let seed = ctx.seed();
            let tx = done_tx.clone();
            let thread_id = id.clone();
            let handle = std::thread::spawn(move || {
                let result = seed
                    .open()
                    .and_then(|worker| work::implement(&worker, &thread_id, &request.actor));
                let _ = tx.send((thread_id, slot, result));
            });
            running.insert(id, (slot, handle));
        }
        if running.is_empty() {
            if !options.watch {
                break;
            }
            sleep_unless_stopped(ctx, options.poll);
            continue;
        }
        if let Ok((id, slot, result)) = done_rx.recv_timeout(Duration::from_millis(100)) {
            finish(ctx, &mut running, &mut free, &mut summary, id, slot, result);
        }
    }
    // Stopped: the workers see the flag, stop their agents and release their tasks.
    while !running.is_empty() {
        let (id, slot, result) = done_rx.recv().context("a worker thread vanished")?;
        finish(ctx, &mut running, &mut free, &mut summary, id, slot, result);
    }
    Ok(summary)
}

fn finish(
    ctx: &Context,
    running: &mut HashMap<String, (usize, JoinHandle<()>)>,
    free: &mut BTreeSet<usize>,
    summary: &mut Summary,
    id: String,
    slot: usize,
    result: Result<Finished>,
) {
    if let Some((_, handle)) = running.remove(&id) {
        let _ = handle.join();
    }
    free.insert(slot);
    if let Err(e) = &result {
        ctx.view.say(&format!("{id}: error: {e:#}"));
    }
    summary.count(&id, result);
}

fn sleep_unless_stopped(ctx: &Context, total: Duration) {
    let step = Duration::from_millis(100);
    let mut slept = Duration::ZERO;
    while slept < total && !ctx.stop.load(Ordering::Relaxed) {
        std::thread::sleep(step);
        slept += step;
    }
}
