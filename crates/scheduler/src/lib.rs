#![deny(missing_docs)]
//! # nacsim-scheduler
//!
//! ## Overview
//!
//! Maps a quantized network onto a hardware design ([`design`]), runs it functionally through
//! the design's engines ([`engine`], the seam every engine implements), models the on-chip and
//! off-chip memory with double-buffered DRAM transfers ([`memory`]), and reports cycles, latency,
//! GOPS, energy by component, TOPS/W and accuracy ([`report`]).
//!
//! ## Layer
//!
//! Timing and cost: engines count actions; [`sim::Simulation::energy`] multiplies counts by the
//! design's energy table afterwards.

pub mod area;
pub mod design;
pub mod engine;
pub mod memory;
pub mod report;
pub mod sim;
pub mod sweep;
pub mod techset;
pub mod topology;
pub mod units;
