//! The one integration-test binary: a module per command or scenario.

mod common;

mod audit;
mod board;
mod claim;
mod demo;
mod gc;
mod hooks;
mod install;
mod integrate;
mod plan;
mod planner;
mod review;
mod run;
mod task;
mod work;
