//! The one place where failures become exit codes.
//!
//! 0: success. 1: a "no" that scripts test for (nothing ready to claim,
//! someone else holds the task, review asked for changes, gate refused).
//! 2: an error: bad input, bad config, or something broke; the message on
//! stderr names what was at fault.

/// A "no" answer: the command worked, and the answer is no (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct No(pub String);

/// The exit code for a failed command.
pub fn exit_code(error: &anyhow::Error) -> i32 {
    if error.downcast_ref::<No>().is_some() {
        1
    } else if error.downcast_ref::<Interrupted>().is_some() {
        130
    } else {
        2
    }
}

/// The configuration cannot work as it is (exit 2): a missing program, a
/// role that is not configured.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Config(pub String);

/// The command was interrupted (Ctrl-C) and stopped cleanly (exit 130, as a
/// shell reports SIGINT).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub String);
