//! Subcommands of the `nacsim` binary.

pub mod data;
pub mod eval;
pub mod train;
