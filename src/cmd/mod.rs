//! Subcommands of the `nacsim` binary.

pub mod data;
pub mod defaults;
pub mod eval;
pub mod info;
pub mod limits;
pub mod run;
pub mod sweep;
pub mod trace;
pub mod train;
