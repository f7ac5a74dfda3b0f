//! The pure core: ids, the task and its state machine, plan validation.
//!
//! Nothing here touches the disk, a process or git; everything is a function
//! of its inputs, so every rule can be tested by a table.

pub mod board;
pub mod id;
pub mod plan;
pub mod task;
