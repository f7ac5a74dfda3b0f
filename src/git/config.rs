//! git config, as git reads and writes it (includes, multi-valued keys,
//! the repository's own file for writes), and the remotes it names.

use anyhow::{Context, Result};
use std::path::Path;

use super::{run, try_run};

/// Every value of multi-valued config `key` as git sees it at `dir` (all
/// scopes, in git's order); empty where the key is not set.
pub fn config_get_all(dir: &Path, key: &str) -> Result<Vec<String>> {
    Ok(try_run(dir, &["config", "--get-all", key])?
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect())
}

/// The value of `key` as git sees it at `dir` (the last one, where it has
/// several: the one that wins); `None` where it is not set.
pub fn config_get(dir: &Path, key: &str) -> Result<Option<String>> {
    try_run(dir, &["config", "--get", key])
}

/// Set `key` to `value` in the repository's config, replacing its value;
/// an error where `key` already has several.
pub fn config_set(dir: &Path, key: &str, value: &str) -> Result<()> {
    run(dir, &["config", key, value]).map(drop)
}

/// Add `value` to multi-valued `key` in the repository's config, beside
/// any values it has (even an equal one).
pub fn config_add(dir: &Path, key: &str, value: &str) -> Result<()> {
    run(dir, &["config", "--add", key, value]).map(drop)
}

/// Remove every value of multi-valued `key` equal to `value` from the
/// repository's config; nothing where there is none.
pub fn config_unset_value(dir: &Path, key: &str, value: &str) -> Result<()> {
    let args = ["config", "--fixed-value", "--unset-all", key, value];
    let output = super::command(dir, &args)
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running git {}", args.join(" ")))?;
    // Exit 5: no such value, which is what was wanted.
    if !output.status.success() && output.status.code() != Some(5) {
        anyhow::bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// The names of the remotes configured at `dir`, as `git remote` lists them.
pub fn remotes(dir: &Path) -> Result<Vec<String>> {
    Ok(run(dir, &["remote"])?.lines().map(String::from).collect())
}

/// The URL of remote `name`, or `None` where there is no such remote.
pub fn remote_url(dir: &Path, name: &str) -> Result<Option<String>> {
    try_run(dir, &["remote", "get-url", name])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{git, repo};
    use super::*;

    #[test]
    fn remotes_lists_each_remote_by_name() {
        let dir = repo();
        assert!(remotes(dir.path()).unwrap().is_empty());
        git(dir.path(), &["remote", "add", "hub", "/nowhere/hub.git"]);
        git(dir.path(), &["remote", "add", "origin", "/nowhere/o.git"]);
        assert_eq!(remotes(dir.path()).unwrap(), ["hub", "origin"]);
    }

    #[test]
    fn an_unset_key_has_no_values() {
        let dir = repo();
        assert_eq!(config_get(dir.path(), "agent.nothing").unwrap(), None);
        config_add(dir.path(), "agent.target", "main").unwrap();
        config_add(dir.path(), "agent.target", "release").unwrap();
        assert_eq!(
            config_get(dir.path(), "agent.target").unwrap().as_deref(),
            Some("release"),
            "the last value wins"
        );
        assert!(config_get_all(dir.path(), "agent.nothing")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn add_keeps_every_value_in_order_and_set_replaces_one() {
        let dir = repo();
        let d = dir.path();
        config_add(d, "notes.rewriteRef", "refs/notes/agent").unwrap();
        config_add(d, "notes.rewriteRef", "refs/notes/agent-review").unwrap();
        assert_eq!(
            config_get_all(d, "notes.rewriteRef").unwrap(),
            vec!["refs/notes/agent", "refs/notes/agent-review"]
        );
        assert!(
            config_set(d, "notes.rewriteRef", "x").is_err(),
            "set refuses a key with several values"
        );
        config_add(d, "notes.rewriteRef", "refs/notes/agent*").unwrap();
        config_unset_value(d, "notes.rewriteRef", "refs/notes/agent*").unwrap();
        config_unset_value(d, "notes.rewriteRef", "refs/notes/none").unwrap();
        assert_eq!(
            config_get_all(d, "notes.rewriteRef").unwrap(),
            vec!["refs/notes/agent", "refs/notes/agent-review"],
            "only the exact value goes (not read as a pattern)"
        );
        config_set(d, "agent.autorun", "true").unwrap();
        config_set(d, "agent.autorun", "false").unwrap();
        assert_eq!(config_get_all(d, "agent.autorun").unwrap(), vec!["false"]);
        // A config git cannot write is an error, not "nothing to remove".
        let lock = d.join(".git/config.lock");
        std::fs::write(&lock, "").unwrap();
        let err = config_unset_value(d, "notes.rewriteRef", "refs/notes/agent").unwrap_err();
        assert!(
            format!("{err:#}").contains("could not lock config file"),
            "{err:#}"
        );
        std::fs::remove_file(lock).unwrap();
    }

    #[test]
    fn remote_url_names_only_existing_remotes() {
        let dir = repo();
        let d = dir.path();
        assert_eq!(remote_url(d, "origin").unwrap(), None);
        git(
            d,
            &["remote", "add", "origin", "https://example.invalid/r.git"],
        );
        assert_eq!(
            remote_url(d, "origin").unwrap().as_deref(),
            Some("https://example.invalid/r.git")
        );
    }
}
