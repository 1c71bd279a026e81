//! The memory guard of the commands: each request's estimate is checked against the limit
//! ([`nacsim_core::memory`]: `NACSIM_MEMORY_LIMIT`, default 3/4 of physical memory) before the
//! network's parameters and activations are allocated (training: [`nacsim_train::check_memory`]).

use nacsim_core::memory::{Estimate, check};
use nacsim_nn::network::{NetworkSpec, ResolvedLayer, footprint};

use crate::CliResult;

/// Images per batch of the accuracy passes (the simulator's and training's).
pub use nacsim_train::EVAL_BATCH;

/// Inference on `layers` (a network file `label`) in batches of `batch` images: float
/// parameters, their quantized and engine copies, the activations of one batch through the
/// float and the integer paths.
///
/// # Errors
/// The estimate exceeds the limit (message with the estimate, the limit and how to raise it).
pub fn check_inference(layers: &[ResolvedLayer], label: &str, batch: usize) -> CliResult<()> {
    let fp = footprint(layers, batch);
    let mut e = Estimate::new();
    e.add(
        "parameters (float, quantized and engine copies)",
        fp.params.saturating_mul(3),
    )
    .add(
        format!("activations of a batch of {batch} images"),
        fp.activations_peak.saturating_mul(2),
    );
    check(&format!("the network {label}"), &e)?;
    Ok(())
}

/// Inference on the network file `spec` (resolved here; an impossible topology is left to the
/// loader's message).
///
/// # Errors
/// As [`check_inference`].
pub fn check_spec(spec: &NetworkSpec, label: &str, batch: usize) -> CliResult<()> {
    match spec.resolve() {
        Ok(layers) => check_inference(&layers, label, batch),
        Err(_) => Ok(()),
    }
}

/// A sweep of `values` × `trials` points split into `shards`: the point lists of one shard.
///
/// # Errors
/// The estimate exceeds the limit.
pub fn check_sweep_points(values: usize, trials: u32, shards: usize, label: &str) -> CliResult<()> {
    let points = (values as u64).saturating_mul(u64::from(trials)) / shards.max(1) as u64;
    let mut e = Estimate::new();
    e.add(
        format!("the lists of {points} points ({values} values x {trials} trials)"),
        points.saturating_mul(3 * std::mem::size_of::<(usize, u32)>() as u64),
    );
    check(&format!("the sweep {label}"), &e)?;
    Ok(())
}
