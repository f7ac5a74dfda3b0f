//! post-rewrite: notes follow rewritten commits; a rebase of the target
//! records the merges it brought.
//!
//! git copies notes itself for the refs in `notes.rewriteRef` (set by
//! `git agent init`). Where that is not set, this hook copies the agent
//! notes (provenance, review, gate runs) from each old commit to its
//! rewrite. Appending a note line is idempotent, so where git copied
//! already, nothing changes; `notes.rewrite.<amend|rebase> = false` is
//! respected.

use anyhow::Result;
use gix::ObjectId;

use super::{current_branch, merges, HookContext};
use crate::agent::config;
use crate::store::notes::PROVENANCE;

/// Notes that follow a commit, the refs `git agent init` names in `notes.rewriteRef`.
/// Only provenance follows a rewritten commit: a review verdict or a gate
/// run holds for the exact commit (and tree) it was given on.
const FOLLOWING: [&str; 1] = [PROVENANCE];

/// Run the post-rewrite hook: `kind` is git's argument (`amend` or
/// `rebase`), `stdin` its `<old> <new>` lines.
pub fn run(ctx: &HookContext, kind: Option<&str>, stdin: &str) -> Result<()> {
    let pairs = rewritten(stdin);
    if copying_enabled(ctx, kind) {
        for (old, new) in &pairs {
            copy_notes(ctx, *old, *new)?;
        }
    }
    let target = config::team(&ctx.store)?.target;
    if kind == Some("rebase") && current_branch(&ctx.store)?.as_deref() == Some(target.as_str()) {
        merges::record(ctx, &target)?;
    }
    Ok(())
}

/// The `(old, new)` pairs of git's input; lines that are not two commit
/// ids (with an optional extra field) are skipped.
fn rewritten(stdin: &str) -> Vec<(ObjectId, ObjectId)> {
    stdin
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let old = ObjectId::from_hex(fields.next()?.as_bytes()).ok()?;
            let new = ObjectId::from_hex(fields.next()?.as_bytes()).ok()?;
            Some((old, new))
        })
        .collect()
}

/// Whether the user left notes rewriting on for this kind of rewrite
/// (git's default).
fn copying_enabled(ctx: &HookContext, kind: Option<&str>) -> bool {
    let Some(kind) = kind.filter(|k| ["amend", "rebase"].contains(k)) else {
        return true;
    };
    ctx.store
        .repo()
        .config_snapshot()
        .boolean(format!("notes.rewrite.{kind}").as_str())
        .unwrap_or(true)
}

fn copy_notes(ctx: &HookContext, old: ObjectId, new: ObjectId) -> Result<()> {
    for notes_ref in FOLLOWING {
        for line in ctx.store.note_lines(notes_ref, old)? {
            ctx.store.append_note(notes_ref, new, &line)?;
        }
    }
    Ok(())
}
