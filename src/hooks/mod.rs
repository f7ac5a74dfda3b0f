//! What each git hook does. The shims in the repository's `hooks/` directory
//! (embedded here) call `git agent hook <name>`, which lands in [`run`].
//!
//! A hook does bookkeeping (notes, task events) and queues work in
//! `<git-common-dir>/agent/queue/`; it never runs an agent in the foreground.
//! Hooks run git with the variables a hook inherits removed (see
//! [`crate::git::LOCAL_ENV_VARS`]) and with optional locks off, so a post-*
//! hook never takes the index lock of the command that fired it.

pub mod install;

/// A hook git-agent installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    PostCommit,
    PrePush,
    PostMerge,
    PostRewrite,
    /// Installed only with `--server`, for a bare hub that receives pushes.
    PostReceive,
}

impl Hook {
    pub const ALL: [Hook; 5] = [
        Hook::PostCommit,
        Hook::PrePush,
        Hook::PostMerge,
        Hook::PostRewrite,
        Hook::PostReceive,
    ];

    /// The file name git looks for.
    pub fn name(self) -> &'static str {
        match self {
            Hook::PostCommit => "post-commit",
            Hook::PrePush => "pre-push",
            Hook::PostMerge => "post-merge",
            Hook::PostRewrite => "post-rewrite",
            Hook::PostReceive => "post-receive",
        }
    }

    /// The shim installed under [`Hook::name`]: `#!/bin/sh`, LF endings,
    /// carrying [`SHIM_MARKER`].
    pub fn shim(self) -> &'static str {
        match self {
            Hook::PostCommit => include_str!("../../hooks/post-commit"),
            Hook::PrePush => include_str!("../../hooks/pre-push"),
            Hook::PostMerge => include_str!("../../hooks/post-merge"),
            Hook::PostRewrite => include_str!("../../hooks/post-rewrite"),
            Hook::PostReceive => include_str!("../../hooks/post-receive"),
        }
    }
}

/// The line by which a hook file is recognised as one of our shims (any
/// version of it).
pub const SHIM_MARKER: &str = "# git-agent hook shim: ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shims_are_posix_sh_with_lf_endings_and_the_marker() {
        for hook in Hook::ALL {
            let shim = hook.shim();
            assert!(shim.starts_with("#!/bin/sh\n"), "{}", hook.name());
            assert!(!shim.contains('\r'), "{} has CR", hook.name());
            let marker = format!("{SHIM_MARKER}{}", hook.name());
            assert!(shim.lines().nth(1).unwrap().starts_with(&marker));
            assert!(shim.contains(&format!("hook {} \"$@\"", hook.name())));
            assert!(shim.contains(&format!("{}.git-agent-chained", hook.name())));
        }
    }
}
