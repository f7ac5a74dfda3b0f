//! Installing the shims where git looks for hooks, without clobbering.
//!
//! A hook that is there already (the user's own, or another manager's:
//! pre-commit, lefthook, husky) is renamed to `<name>.git-agent-chained` in
//! the same directory, and our shim runs it first with the same arguments and
//! standard input; its exit code still counts. A rename keeps the file
//! itself (bytes, mode, even the inode), so `uninstall` puts back exactly
//! what was there. What install replaced is recorded in the manifest
//! `<git-common-dir>/agent/hooks.json`, which `status` reads and `uninstall`
//! checks the restored files against.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Hook, SHIM_MARKER};
use crate::git;
use crate::store::Store;

/// Suffix of the user's hook once ours stands in its place.
pub const CHAINED_SUFFIX: &str = ".git-agent-chained";

/// The directory git runs hooks from, as git itself finds it
/// (`core.hooksPath`, linked worktrees), as an absolute path.
pub fn hooks_dir(store: &Store) -> Result<PathBuf> {
    git::git_path(store.work_dir(), "hooks")
}

/// What stands at a hook's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Found {
    /// Nothing: git runs no hook of this name.
    Absent,
    /// Our shim, as this binary would write it.
    Installed,
    /// Our shim, from another version of git-agent.
    Outdated,
    /// A hook that is not ours (install would chain to it).
    Foreign,
}

/// One hook's state, for `status`.
#[derive(Debug, Clone, Serialize)]
pub struct HookState {
    pub name: &'static str,
    pub found: Found,
    /// Whether a previous hook is kept as `<name>.git-agent-chained` (our
    /// shim runs it first).
    pub chained: bool,
}

/// What one install or uninstall did to one hook, in words for the user.
#[derive(Debug, Clone)]
pub struct Action {
    pub name: &'static str,
    pub what: String,
}

/// The manifest: every hook install put in place, and what it moved aside.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
struct Manifest {
    hooks: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Entry {
    name: String,
    /// The hooks directory it was installed in.
    dir: PathBuf,
    /// The hook that was there before, now at `<name>.git-agent-chained`.
    replaced: Option<Kept>,
}

/// A file install moved aside, described well enough to check that
/// uninstall put back the same thing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Kept {
    /// Permission bits and file type, as `stat` gives them.
    mode: u32,
    symlink: bool,
    /// The git blob id of its content (of the link target, for a symlink).
    blob: String,
}

fn manifest_path(store: &Store) -> PathBuf {
    store.agent_dir().join("hooks.json")
}

fn read_manifest(store: &Store) -> Result<Manifest> {
    let path = manifest_path(store);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a git-agent hooks manifest", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn write_manifest(store: &Store, manifest: &Manifest) -> Result<()> {
    let path = manifest_path(store);
    if manifest.hooks.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        };
    }
    let mut text = serde_json::to_vec_pretty(manifest)?;
    text.push(b'\n');
    write_atomically(&path, &text, 0o644)
}

/// What is at `path`, given the shim this binary would write there.
fn inspect(path: &Path, shim: &str) -> Result<Found> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Absent),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if !meta.is_file() {
        return Ok(Found::Foreign);
    }
    let content = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let ours = content
        .split(|b| *b == b'\n')
        .nth(1)
        .is_some_and(|line| line.starts_with(SHIM_MARKER.as_bytes()));
    Ok(match (ours, content == shim.as_bytes()) {
        (true, true) => Found::Installed,
        (true, false) => Found::Outdated,
        (false, _) => Found::Foreign,
    })
}

fn chained_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{CHAINED_SUFFIX}"))
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Each hook's state in the hooks directory git uses now.
pub fn status(store: &Store) -> Result<(PathBuf, Vec<HookState>)> {
    let dir = hooks_dir(store)?;
    let mut states = Vec::new();
    for hook in Hook::ALL {
        states.push(HookState {
            name: hook.name(),
            found: inspect(&dir.join(hook.name()), hook.shim())?,
            chained: exists(&chained_path(&dir, hook.name())),
        });
    }
    Ok((dir, states))
}

/// Put our shims in the hooks directory: the client hooks, and with
/// `server` the post-receive hook too. A hook already there is chained, an
/// older shim of ours is replaced, a current one is left alone: installing
/// twice writes nothing the second time. Refuses (before changing anything)
/// where `<name>.git-agent-chained` exists beside a hook that is not ours,
/// since moving the hook aside would overwrite it.
pub fn install(store: &Store, server: bool) -> Result<(PathBuf, Vec<Action>)> {
    let dir = hooks_dir(store)?;
    let hooks: Vec<Hook> = Hook::ALL
        .into_iter()
        .filter(|h| server || *h != Hook::PostReceive)
        .collect();
    for hook in &hooks {
        let chained = chained_path(&dir, hook.name());
        if inspect(&dir.join(hook.name()), hook.shim())? == Found::Foreign && exists(&chained) {
            bail!(
                "{} exists already beside a hook that is not git-agent's: move one of them away, then install again",
                chained.display()
            );
        }
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut manifest = read_manifest(store)?;
    let before = manifest.hooks.clone();
    let mut actions = Vec::new();
    for hook in hooks {
        if let Some(what) = install_one(store, &dir, hook, &mut manifest)? {
            actions.push(Action {
                name: hook.name(),
                what,
            });
        }
    }
    if manifest.hooks != before {
        write_manifest(store, &manifest)?;
    }
    Ok((dir, actions))
}

/// Install one shim; returns what was done, or `None` if it was in place.
fn install_one(
    store: &Store,
    dir: &Path,
    hook: Hook,
    manifest: &mut Manifest,
) -> Result<Option<String>> {
    let path = dir.join(hook.name());
    let found = inspect(&path, hook.shim())?;
    let mut replaced = None;
    let what = match found {
        Found::Installed => None,
        Found::Outdated => Some("updated the shim".to_string()),
        Found::Absent => Some("installed".to_string()),
        Found::Foreign => {
            let chained = chained_path(dir, hook.name());
            replaced = Some(describe(store, &path)?);
            std::fs::rename(&path, &chained)
                .with_context(|| format!("moving {} aside", path.display()))?;
            Some(format!(
                "installed; your hook runs first, from {}",
                chained.display()
            ))
        }
    };
    if found != Found::Installed {
        write_atomically(&path, hook.shim().as_bytes(), 0o755)?;
    }
    let known = manifest
        .hooks
        .iter()
        .any(|e| e.name == hook.name() && e.dir == dir);
    if !known || replaced.is_some() {
        manifest
            .hooks
            .retain(|e| !(e.name == hook.name() && e.dir == dir));
        manifest.hooks.push(Entry {
            name: hook.name().to_string(),
            dir: dir.to_path_buf(),
            replaced,
        });
    }
    Ok(what)
}

/// Remove our shims from every directory they were installed in (and from
/// the one git uses now), putting back each hook they had moved aside.
/// A hook that is no longer ours (someone replaced the shim) is left alone.
pub fn uninstall(store: &Store) -> Result<(PathBuf, Vec<Action>)> {
    let current = hooks_dir(store)?;
    let manifest = read_manifest(store)?;
    let mut dirs: Vec<&Path> = manifest.hooks.iter().map(|e| e.dir.as_path()).collect();
    dirs.push(&current);
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|d| seen.insert(*d));
    let mut actions = Vec::new();
    for dir in dirs {
        for hook in Hook::ALL {
            let entry = manifest
                .hooks
                .iter()
                .find(|e| e.name == hook.name() && e.dir == dir);
            if let Some(what) = uninstall_one(store, dir, hook, entry)? {
                actions.push(Action {
                    name: hook.name(),
                    what,
                });
            }
        }
    }
    write_manifest(store, &Manifest::default())?;
    Ok((current, actions))
}

fn uninstall_one(
    store: &Store,
    dir: &Path,
    hook: Hook,
    entry: Option<&Entry>,
) -> Result<Option<String>> {
    let path = dir.join(hook.name());
    let chained = chained_path(dir, hook.name());
    let found = inspect(&path, hook.shim())?;
    if found == Found::Foreign {
        return Ok(exists(&chained).then(|| {
            format!(
                "left alone: {} is no longer git-agent's; your earlier hook is still at {}",
                path.display(),
                chained.display()
            )
        }));
    }
    if !exists(&chained) {
        if found == Found::Absent {
            return Ok(None);
        }
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        return Ok(Some("removed".into()));
    }
    std::fs::rename(&chained, &path).with_context(|| format!("putting back {}", path.display()))?;
    let expected = entry.and_then(|e| e.replaced.as_ref());
    let restored = describe(store, &path)?;
    Ok(Some(match expected {
        Some(kept) if *kept != restored => {
            "restored your hook (it was changed after install)".to_string()
        }
        _ => "restored your hook".to_string(),
    }))
}

/// Mode, kind and content id of the file (or symlink) at `path`.
fn describe(store: &Store, path: &Path) -> Result<Kept> {
    let meta =
        std::fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let symlink = meta.file_type().is_symlink();
    let content = if symlink {
        let target =
            std::fs::read_link(path).with_context(|| format!("reading {}", path.display()))?;
        target.into_os_string().into_encoded_bytes()
    } else if meta.is_file() {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
    } else {
        Vec::new()
    };
    let blob = gix::objs::compute_hash(store.repo().object_hash(), gix::objs::Kind::Blob, &content)
        .context("hashing a hook")?;
    Ok(Kept {
        mode: meta.mode(),
        symlink,
        blob: blob.to_string(),
    })
}

/// Write `content` to `path` with permissions `mode`: to a temp file in the
/// same directory, then renamed over `path`, so git never runs half a hook.
fn write_atomically(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().context("a hook path has a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".git-agent-")
        .tempfile_in(dir)
        .with_context(|| format!("writing in {}", dir.display()))?;
    temp.write_all(content)?;
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    temp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
