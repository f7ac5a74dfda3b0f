//! `.git-agent.yaml`: the team config, read from the main working tree (in a
//! bare repository: from the target branch's tree), never from a task branch.

use anyhow::{Context, Result};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::preset::Preset;
use crate::store::Store;

/// The config file's name at the root of the main working tree.
pub const FILE: &str = ".git-agent.yaml";

/// The config's top-level keys, named when a file is not a map of them.
const KEYS: &[&str] = &[
    "target",
    "test",
    "parallel",
    "roles",
    "review",
    "integrate",
    "worktrees",
    "worktree",
    "budget",
];

/// The whole config. Unknown keys are refused, with their line.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The branch the integrator advances.
    #[serde(default = "default_target")]
    pub target: String,
    /// The integration gate, run with `sh -c` in the merged tree; empty: none.
    #[serde(default)]
    pub test: String,
    /// Implementers at once.
    #[serde(default = "default_parallel")]
    pub parallel: usize,
    #[serde(default)]
    pub roles: Roles,
    #[serde(default)]
    pub review: Review,
    #[serde(default)]
    pub integrate: Integrate,
    /// Where task worktrees go, relative to the main working tree
    /// [default: `<main working tree>.agent-worktrees`, beside it].
    #[serde(default)]
    pub worktrees: Option<String>,
    /// How a new task worktree is made ready: set-up, copied files, ports, reuse.
    #[serde(default)]
    pub worktree: Worktree,
    /// What agents may spend: `{task_usd, run_usd, task_tokens}`.
    #[serde(default)]
    pub budget: super::limits::Budget,
    /// Where the config was read from, to place later refusals on a line.
    #[serde(skip)]
    pub origin: Origin,
}

/// The file a config was read from and its text.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub file: String,
    pub text: String,
}

impl Config {
    /// A refusal of the setting `key` (a top-level key or a dotted path
    /// whose last part is found), placed on its line.
    pub fn fault(&self, key: &str, message: String) -> ConfigError {
        let last = key.rsplit('.').next().unwrap_or(key);
        ConfigError {
            file: match self.origin.file.is_empty() {
                true => FILE.to_string(),
                false => self.origin.file.clone(),
            },
            line: line_of(&self.origin.text, last),
            message: format!("{key}: {message}"),
        }
    }
}

/// One agent command per role; a role without one is not run.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    pub planner: Option<Role>,
    pub implementer: Option<Role>,
    pub reviewer: Option<Role>,
    pub integrator: Option<Role>,
}

impl Roles {
    /// Each role by its name, in pipeline order.
    pub fn named(&self) -> [(&'static str, &Option<Role>); 4] {
        [
            ("planner", &self.planner),
            ("implementer", &self.implementer),
            ("reviewer", &self.reviewer),
            ("integrator", &self.integrator),
        ]
    }
}

/// How to run one role's agent: a preset (`agent:`) or a `command:`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// A preset's name: `claude`, `codex`, `gemini`, `aider` or `opencode`.
    #[serde(default)]
    pub agent: Option<String>,
    /// An argv list, or a string split as a shell would (but never run by one).
    #[serde(default, deserialize_with = "argv")]
    pub command: Vec<String>,
    /// Arguments added after the preset's (or the command's) own.
    #[serde(default)]
    pub args: Vec<String>,
    /// Variables added to the agent's environment (after the preset's).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// How a rate limit is told and met [default: see `agent::limits`].
    #[serde(default)]
    pub rate_limit: Option<super::limits::RateLimit>,
}

/// How one role's agent is started, presets resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The program and arguments; placeholders (`{prompt_file}`, …) not yet expanded.
    pub argv: Vec<String>,
    /// Variables added to the agent's environment.
    pub env: Vec<(String, String)>,
    /// The preset, whose output format the final message is read in.
    pub preset: Option<Preset>,
}

impl Role {
    /// The argv and environment this role runs as `role` (a validated
    /// config always has one).
    pub fn launch(&self, role: &str) -> Launch {
        let preset = self.agent.as_deref().and_then(Preset::named);
        let (mut argv, mut env) = match preset.and_then(|p| p.invocation(role)) {
            Some(invocation) => (invocation.argv, invocation.env),
            None => (self.command.clone(), Vec::new()),
        };
        argv.extend(self.args.iter().cloned());
        for (name, value) in &self.env {
            env.retain(|(n, _)| n != name);
            env.push((name.clone(), value.clone()));
        }
        Launch { argv, env, preset }
    }

    /// The program this role runs (the first argv element).
    pub fn program(&self, role: &str) -> String {
        self.launch(role).argv.first().cloned().unwrap_or_default()
    }
}

/// When reviews happen.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// `commit`: queue a review on every commit to an agent branch (hooks);
    /// `submit` (default): review when a task is submitted.
    #[serde(default)]
    pub on: Option<String>,
}

/// How approved work lands on the target.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct Integrate {
    /// `merge` (default), `squash` or `rebase`.
    #[serde(default)]
    pub strategy: Option<String>,
    /// How long `test` may run on a merged tree [default: 30m].
    #[serde(default, deserialize_with = "duration")]
    pub test_timeout: Option<Duration>,
    /// How long approved work may wait in the queue (e.g. behind local
    /// changes on the checked-out target) before it goes to a human [default: 1h].
    #[serde(default, deserialize_with = "duration_or_zero")]
    pub deadline: Option<Duration>,
    /// How many candidates the queue gates at once, speculatively, each on
    /// the one before it [default: `parallel`].
    #[serde(default)]
    pub window: Option<usize>,
    /// How many times a failed (or timed-out) gate runs again on the
    /// identical tree before the entry is blamed (for a flaky test) [default: 0].
    #[serde(default)]
    pub retries: Option<u32>,
}

impl Integrate {
    pub fn strategy(&self) -> &str {
        self.strategy.as_deref().unwrap_or("merge")
    }

    pub fn test_timeout(&self) -> Duration {
        self.test_timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    pub fn deadline(&self) -> Duration {
        self.deadline.unwrap_or(Duration::from_secs(3600))
    }

    /// Candidates gated at once: `window`, else enough to keep `parallel`
    /// gates busy; at least 1.
    pub fn window(&self, parallel: usize) -> usize {
        self.window.unwrap_or(parallel).max(1)
    }

    pub fn retries(&self) -> u32 {
        self.retries.unwrap_or(0)
    }
}

/// How each new worktree (a task's, the merge queue's) is made ready to
/// work in, and what a recycled one loses.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct Worktree {
    /// Run once in each new worktree before the first agent there (an argv
    /// list, or a string split as a shell would, never run by one).
    #[serde(default, deserialize_with = "argv")]
    pub setup: Vec<String>,
    /// How long the set-up may run [default: 30m].
    #[serde(default, deserialize_with = "duration")]
    pub setup_timeout: Option<Duration>,
    /// Run in a worktree before `git agent gc` removes it.
    #[serde(default, deserialize_with = "argv")]
    pub teardown: Vec<String>,
    /// Ignored files of the main working tree copied into each new worktree
    /// (paths relative to it; `*` and `?` match within one path part).
    #[serde(default)]
    pub copy: Vec<String>,
    /// Ignored files a recycled worktree loses (same patterns as `copy`).
    #[serde(default)]
    pub clean: Vec<String>,
    /// The ports each slot is handed: `{base, per_slot}`.
    #[serde(default)]
    pub ports: Ports,
    /// Whether a slot's next task recycles a finished task's worktree
    /// [default: true]; `false`: a fresh worktree for every task.
    #[serde(default)]
    pub reuse: Option<bool>,
}

impl Worktree {
    pub fn setup_timeout(&self) -> Duration {
        self.setup_timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    pub fn reuse(&self) -> bool {
        self.reuse.unwrap_or(true)
    }
}

/// Slot `n` owns ports `base + n * per_slot` up to the next slot's.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    #[serde(default = "default_port_base")]
    pub base: u16,
    #[serde(default = "default_per_slot")]
    pub per_slot: u16,
}

impl Default for Ports {
    fn default() -> Ports {
        Ports {
            base: default_port_base(),
            per_slot: default_per_slot(),
        }
    }
}

fn default_port_base() -> u16 {
    41000
}

fn default_per_slot() -> u16 {
    10
}

/// The most gate retries a config may ask for: more hides a broken test.
pub const MAX_RETRIES: u32 = 3;

impl Default for Config {
    fn default() -> Config {
        serde_yaml::from_str("{}").expect("the empty config is valid")
    }
}

/// Default timeouts per role.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

impl Role {
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }
}

fn default_target() -> String {
    "main".into()
}

fn default_parallel() -> usize {
    4
}

/// Why a config was refused: where and what.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Parse config text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Config::default());
    }
    let config: Config = crate::model::yaml::parse(text, KEYS).map_err(|e| ConfigError {
        file: file.to_string(),
        line: e.line,
        message: match e.field.as_str() {
            "yaml" => e.message,
            field => format!("{field}: {}", e.message),
        },
    })?;
    // `key` is a top-level key or a dotted path, placed on the line of its last part.
    let fault = |key: &str, message: String| ConfigError {
        file: file.to_string(),
        line: line_of(text, key.rsplit('.').next().unwrap_or(key)),
        message: format!("{key}: {message}"),
    };
    if config.parallel == 0 {
        return Err(fault("parallel", "must be at least 1".into()));
    }
    let bad_branch = |b: &str| {
        b.is_empty()
            || b.contains("..")
            || b.contains(|c: char| c.is_whitespace() || "~^:?*[\\".contains(c))
    };
    if bad_branch(&config.target) {
        return Err(fault(
            "target",
            format!("\"{}\" is not a branch name", config.target),
        ));
    }
    for (name, role) in config.roles.named() {
        if let Some(role) = role {
            check_role(text, name, role).map_err(|(line, message)| ConfigError {
                file: file.to_string(),
                line,
                message,
            })?;
        }
    }
    super::limits::check(text, &config).map_err(|(line, message)| ConfigError {
        file: file.to_string(),
        line,
        message,
    })?;
    if let Some(strategy) = &config.integrate.strategy {
        if !["merge", "squash", "rebase"].contains(&strategy.as_str()) {
            return Err(fault(
                "strategy",
                format!("\"{strategy}\" is not merge, squash or rebase"),
            ));
        }
    }
    check_worktree(text, &config).map_err(|(line, message)| ConfigError {
        file: file.to_string(),
        line,
        message,
    })?;
    if config.integrate.window == Some(0) {
        return Err(fault("integrate.window", "must be at least 1".into()));
    }
    if config.integrate.retries.is_some_and(|r| r > MAX_RETRIES) {
        return Err(fault(
            "integrate.retries",
            format!(
                "must be at most {MAX_RETRIES} (a test that fails more often is broken, not flaky)"
            ),
        ));
    }
    Ok(Config {
        origin: Origin {
            file: file.to_string(),
            text: text.to_string(),
        },
        ..config
    })
}

/// The `worktree:` settings: commands with a program, paths that stay inside
/// the working tree, ports that fit below 65536; `Err` is the line and message.
fn check_worktree(text: &str, config: &Config) -> Result<(), (usize, String)> {
    let w = &config.worktree;
    let at = |key: &str| line_in_section(text, "worktree", key);
    for (key, command) in [("setup", &w.setup), ("teardown", &w.teardown)] {
        if command.first().is_some_and(|p| p.trim().is_empty()) {
            return Err((
                at(key),
                format!("worktree.{key}: the program (its first word) is empty"),
            ));
        }
    }
    for (key, paths) in [("copy", &w.copy), ("clean", &w.clean)] {
        for path in paths {
            if let Err(why) = relative_path(path) {
                return Err((at(key), format!("worktree.{key}: \"{path}\" {why}")));
            }
        }
    }
    let ports = w.ports;
    if ports.per_slot == 0 {
        return Err((
            at("per_slot"),
            "worktree.ports.per_slot: must be at least 1".into(),
        ));
    }
    if ports.base < 1024 {
        return Err((
            at("base"),
            format!(
                "worktree.ports.base: {} is a privileged port (give 1024 or above)",
                ports.base
            ),
        ));
    }
    let last = u32::from(ports.base) + u32::from(ports.per_slot) * config.parallel as u32;
    if last > 65536 {
        return Err((
            at("base"),
            format!(
                "worktree.ports: {} slots of {} ports from {} go past 65535",
                config.parallel, ports.per_slot, ports.base
            ),
        ));
    }
    Ok(())
}

/// A path that names something inside a working tree: relative, without
/// `..`; `Err` says why not.
pub fn relative_path(path: &str) -> Result<(), &'static str> {
    let p = Path::new(path);
    if path.trim().is_empty() {
        return Err("is empty");
    }
    if p.is_absolute() {
        return Err("is outside the repository (give a path relative to the working tree)");
    }
    if p.components().any(|c| c == std::path::Component::ParentDir) {
        return Err("is outside the repository (it goes up with ..)");
    }
    if p.components().next() == Some(std::path::Component::Normal(".git".as_ref())) {
        return Err("is inside .git");
    }
    Ok(())
}

/// A role names a preset it may play, or a command that is not empty;
/// `Err` is the line and the message.
fn check_role(text: &str, name: &str, role: &Role) -> Result<(), (usize, String)> {
    let at = |key: &str| line_in_section(text, name, key);
    match (&role.agent, role.command.is_empty()) {
        (Some(_), false) => Err((
            at("command"),
            format!("roles.{name}: give either agent or command, not both"),
        )),
        (None, true) => Err((
            at(""),
            format!(
                "roles.{name}: no agent and no command (name a preset: {}, or give a command)",
                Preset::names()
            ),
        )),
        (Some(agent), true) => match Preset::named(agent) {
            None => Err((
                at("agent"),
                format!(
                    "roles.{name}.agent: \"{agent}\" is not a preset (the presets: {})",
                    Preset::names()
                ),
            )),
            Some(p) if p.invocation(name).is_none() => Err((
                at("agent"),
                format!("roles.{name}.agent: {agent} cannot play the {name} role"),
            )),
            Some(_) => Ok(()),
        },
        (None, false) => Ok(()),
    }?;
    if role.command.first().is_some_and(|p| p.trim().is_empty()) {
        return Err((
            at("command"),
            format!("roles.{name}.command: the program (its first word) is empty"),
        ));
    }
    if role.max_attempts == Some(0) {
        return Err((
            at("max_attempts"),
            format!("roles.{name}: max_attempts must be at least 1"),
        ));
    }
    Ok(())
}

/// The line of `key:` inside the `name:` block of the config (or of the
/// block's own line when `key` is empty or not found), else 1.
fn line_in_section(text: &str, name: &str, key: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines
        .iter()
        .position(|l| l.trim_start().starts_with(&format!("{name}:")))
    else {
        return 1;
    };
    let indent = |l: &str| l.len() - l.trim_start().len();
    let own = indent(lines[start]);
    if !key.is_empty() {
        // The flow form `name: { agent: x }` holds its keys on its own line.
        if lines[start].contains(&format!("{key}:")) {
            return start + 1;
        }
        for (i, l) in lines.iter().enumerate().skip(start + 1) {
            if !l.trim().is_empty() && indent(l) <= own {
                break;
            }
            if l.trim_start().starts_with(&format!("{key}:")) {
                return i + 1;
            }
        }
    }
    start + 1
}

/// The team config of the repository `store` opens, from the one place it
/// lives: `.git-agent.yaml` of the main working tree (never of a linked
/// worktree, which may be a task's and hold an agent's edits); in a bare
/// repository, the file in the tree of [`hub_branch`]. Missing: the defaults.
pub fn team(store: &Store) -> Result<Config> {
    let repo = store.repo();
    if !repo.is_bare() {
        let main = repo.main_repo().context("opening the main working tree")?;
        if let Some(root) = main.workdir() {
            return load(root);
        }
    }
    let branch = hub_branch(store)?;
    let Some(tip) = store.find_ref(&format!("refs/heads/{branch}"))? else {
        return Ok(Config::default());
    };
    let tree = repo
        .find_commit(tip)
        .and_then(|c| c.tree())
        .with_context(|| format!("reading the tree of {branch}"))?;
    let Some(entry) = tree.find_entry(FILE) else {
        return Ok(Config::default());
    };
    let blob = entry
        .object()
        .with_context(|| format!("reading {branch}:{FILE}"))?;
    parse_bytes(&format!("{branch}:{FILE}"), &blob.data, None)
}

/// The branch whose tree holds a bare repository's config: the one `git
/// config agent.target` names, else HEAD's branch where it exists, else
/// `main` (a hub made by plain `git init --bare` has HEAD at `master` and
/// is pushed a `main`).
pub fn hub_branch(store: &Store) -> Result<String> {
    if let Some(name) =
        crate::git::config_get(store.work_dir(), "agent.target")?.filter(|name| !name.is_empty())
    {
        return Ok(name);
    }
    if let Some(head) = store.head_ref()? {
        if store.find_ref(&head)?.is_some() {
            if let Some(branch) = head.strip_prefix("refs/heads/") {
                return Ok(branch.to_string());
            }
        }
    }
    Ok("main".into())
}

/// Read the config of the main working tree at `root`; a missing file is the
/// default config.
pub fn load(root: &Path) -> Result<Config> {
    let path = root.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => parse_bytes(&path.display().to_string(), &bytes, Some(root)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Parse the bytes of a config file named `file`; `root`, the main working
/// tree, where there is one (settings relative to it are checked against it).
fn parse_bytes(file: &str, bytes: &[u8], root: Option<&Path>) -> Result<Config> {
    let text = crate::model::yaml::decode(bytes).map_err(|e| ConfigError {
        file: file.to_string(),
        line: e.line,
        message: e.message,
    })?;
    let config = parse(file, text)?;
    if let (Some(root), Some(dir)) = (root, &config.worktrees) {
        if within(root, &root.join(dir)) {
            return Err(config
                .fault(
                    "worktrees",
                    format!(
                        "\"{dir}\" is inside the main working tree; task worktrees go \
                         beside it (for example ../{}.agent-worktrees)",
                        root.file_name()
                            .map_or("repo".into(), |n| n.to_string_lossy())
                    ),
                )
                .into());
        }
    }
    Ok(config)
}

/// Whether `path` is `root` or inside it, judged on the names alone (`..`
/// resolved, symlinks not followed: neither need exist yet).
fn within(root: &Path, path: &Path) -> bool {
    fn normal(path: &Path) -> std::path::PathBuf {
        let mut out = std::path::PathBuf::new();
        for part in path.components() {
            match part {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::CurDir => {}
                other => out.push(other),
            }
        }
        out
    }
    normal(path).starts_with(normal(root))
}

/// The first line where `key:` appears (in block or flow style), else 1.
fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| crate::model::yaml::mentions_key(l, key))
        .map_or(1, |i| i + 1)
}

fn argv<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Words;
    impl<'de> serde::de::Visitor<'de> for Words {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of words or one line of text")
        }
        fn visit_str<E: serde::de::Error>(self, line: &str) -> Result<Vec<String>, E> {
            split_words(line).map_err(E::custom)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Vec<String>, A::Error> {
            let mut words = Vec::new();
            while let Some(word) = seq.next_element::<String>()? {
                words.push(word);
            }
            Ok(words)
        }
    }
    d.deserialize_any(Words)
}

/// A duration setting: more than zero, at most [`crate::model::MAX_DURATION`].
/// Parsed inside the visitor, so that serde_yaml places a refusal on the
/// value's own line and path.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(Setting { zero: false }).map(Some)
}

/// A duration setting where `0s` means "at once" (a queue deadline).
fn duration_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(Setting { zero: true }).map(Some)
}

struct Setting {
    zero: bool,
}

impl serde::de::Visitor<'_> for Setting {
    type Value = Duration;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a duration (like 90s, 10m, 2h)")
    }
    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
        match crate::model::parse_duration(text) {
            Ok(d) if d.is_zero() && !self.zero => Err(E::custom(format!(
                "\"{text}\" is no time at all (give at least 1s)"
            ))),
            Ok(d) => Ok(d),
            Err(e) => Err(E::custom(e)),
        }
    }
    fn visit_u64<E: serde::de::Error>(self, seconds: u64) -> Result<Duration, E> {
        self.visit_str(&seconds.to_string())
    }
}

/// Split a command line into words as a POSIX shell would (quotes and
/// backslashes), without expanding anything: the words are never given to a shell.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(format!("unclosed ' in \"{line}\"")),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err(format!("unclosed \" in \"{line}\"")),
                        },
                        Some(c) => w.push(c),
                        None => return Err(format!("unclosed \" in \"{line}\"")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(format!("trailing \\ in \"{line}\"")),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_written_by_init_parses() {
        let config = parse("x", crate::cli::DEFAULT_CONFIG).unwrap();
        assert_eq!(config.target, "main");
        assert_eq!(config.parallel, 4);
        assert!(config.roles.implementer.is_none());
    }

    #[test]
    fn roles_take_argv_lists_or_strings_and_durations() {
        let config = parse(
            "x",
            "roles:\n  implementer: { command: [claude, -p, --permission-mode, acceptEdits], timeout: 30m, max_attempts: 3 }\n  reviewer:\n    command: codex exec 'two words'\n    timeout: 90s\n",
        )
        .unwrap();
        let implementer = config.roles.implementer.unwrap();
        assert_eq!(
            implementer.command,
            ["claude", "-p", "--permission-mode", "acceptEdits"]
        );
        assert_eq!(implementer.timeout().as_secs(), 1800);
        let reviewer = config.roles.reviewer.unwrap();
        assert_eq!(reviewer.command, ["codex", "exec", "two words"]);
        assert_eq!(reviewer.timeout().as_secs(), 90);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_their_line() {
        let e = parse(".git-agent.yaml", "target: main\nparalel: 3\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.to_string().contains("paralel"), "{e}");
        let e = parse(
            "f",
            "roles:\n  implementer:\n    command: [x]\n    timout: 3m\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        let e = parse(
            "f",
            "roles:\n  implementer:\n    command: [x]\n    timeout: soon\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        let e = parse("f", "target: main\nparallel: 0\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = parse("f", "integrate:\n  strategy: octopus\n").unwrap_err();
        assert!(e.to_string().contains("octopus"), "{e}");
        for (bad, line) in [
            ("target: main\nintegrate:\n  window: 0\n", 3),
            ("target: main\nintegrate: { window: -1 }\n", 2),
            ("integrate:\n  strategy: merge\n  window: many\n", 3),
            ("target: main\nintegrate:\n  retries: 9\n", 3),
            ("integrate:\n  retries: -1\n", 2),
        ] {
            let e = parse(".git-agent.yaml", bad).unwrap_err();
            assert_eq!(e.line, line, "{bad}: {e}");
            assert!(
                e.to_string().contains("window") || e.to_string().contains("retries"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn the_window_follows_parallel_unless_set_and_retries_default_to_none() {
        let config = parse("x", "parallel: 3\n").unwrap();
        assert_eq!(config.integrate.window(config.parallel), 3);
        assert_eq!(config.integrate.retries(), 0);
        let config = parse("x", "parallel: 3\nintegrate: { window: 1, retries: 1 }\n").unwrap();
        assert_eq!(config.integrate.window(config.parallel), 1);
        assert_eq!(config.integrate.retries(), 1);
    }

    #[test]
    fn presets_resolve_to_their_argv_with_args_and_env_added() {
        let config = parse(
            "x",
            "roles:\n  implementer:\n    agent: claude\n    args: [--model, sonnet]\n    env: {A: b}\n  reviewer: { agent: codex }\n",
        )
        .unwrap();
        let launch = config.roles.implementer.unwrap().launch("implementer");
        assert_eq!(launch.preset, Some(Preset::Claude));
        assert_eq!(launch.argv.first().map(String::as_str), Some("claude"));
        assert_eq!(&launch.argv[launch.argv.len() - 2..], ["--model", "sonnet"]);
        assert!(launch.env.contains(&("A".into(), "b".into())));
        let reviewer = config.roles.reviewer.unwrap().launch("reviewer");
        assert_eq!(reviewer.preset, Some(Preset::Codex));
    }

    #[test]
    fn an_unknown_preset_is_refused_on_its_line_with_the_list() {
        let e = parse(
            ".git-agent.yaml",
            "target: main\nroles:\n  implementer:\n    timeout: 5m\n    agent: cursor\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        let text = e.to_string();
        assert!(text.contains("roles.implementer.agent"), "{text}");
        assert!(
            text.contains("claude, codex, gemini, aider, opencode"),
            "{text}"
        );
        let e = parse("f", "roles:\n  reviewer: { agent: claude, command: [x] }\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.to_string().contains("not both"), "{e}");
        let e = parse("f", "roles:\n  reviewer: { timeout: 5m }\n").unwrap_err();
        assert!(e.to_string().contains("no agent and no command"), "{e}");
    }

    #[test]
    fn worktree_settings_parse_and_bad_ones_are_refused_on_their_line() {
        let config = parse(
            "x",
            "worktree:\n  setup: cargo fetch --offline\n  setup_timeout: 5m\n  copy: [.env, config/local.yaml]\n  clean: [target/debug/*.log]\n  ports: { base: 50000, per_slot: 4 }\n",
        )
        .unwrap();
        let w = &config.worktree;
        assert_eq!(w.setup, ["cargo", "fetch", "--offline"]);
        assert_eq!(w.setup_timeout().as_secs(), 300);
        assert_eq!(w.copy, [".env", "config/local.yaml"]);
        assert_eq!(w.clean, ["target/debug/*.log"]);
        assert_eq!(
            w.ports,
            Ports {
                base: 50000,
                per_slot: 4
            }
        );
        assert_eq!(parse("x", "").unwrap().worktree.ports.base, 41000);
        for (bad, line, says) in [
            (
                "target: main\nworktree:\n  copy: [../secrets]\n",
                3,
                "../secrets",
            ),
            (
                "worktree:\n  setup: make\n  copy: [/etc/passwd]\n",
                3,
                "/etc/passwd",
            ),
            ("worktree:\n  clean: [.git/config]\n", 2, "inside .git"),
            ("worktree:\n  setup: [' ', x]\n", 2, "worktree.setup"),
            ("worktree:\n  setup_timeout: 0s\n", 2, "no time"),
            ("worktree:\n  ports:\n    per_slot: 0\n", 3, "per_slot"),
            ("worktree:\n  ports:\n    base: 80\n", 3, "privileged"),
            (
                "parallel: 8\nworktree:\n  ports:\n    base: 65530\n",
                4,
                "past 65535",
            ),
            ("worktree:\n  setpu: make\n", 2, "setpu"),
        ] {
            let e = parse(".git-agent.yaml", bad).unwrap_err();
            assert_eq!(e.line, line, "{bad}: {e}");
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn words_split_like_a_shell_without_one() {
        assert_eq!(
            split_words(r#"a "b c" 'd e' f\ g "h\"i" $HOME"#).unwrap(),
            ["a", "b c", "d e", "f g", "h\"i", "$HOME"]
        );
        assert!(split_words("a 'b").is_err());
        assert_eq!(split_words("  ").unwrap(), Vec::<String>::new());
    }
}
