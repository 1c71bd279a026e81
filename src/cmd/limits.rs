//! The memory guard of the commands: each request's estimate is checked against the limit
//! ([`nacsim_core::memory`]: `NACSIM_MEMORY_LIMIT`, default 3/4 of physical memory) before the
//! network's parameters and activations are allocated.

use nacsim_core::memory::{Estimate, check};
use nacsim_nn::network::{NetworkSpec, ResolvedLayer, footprint};
use nacsim_nn::train::{EpochRecord, KernelChoice, TrainConfig};

use crate::CliResult;

/// Images per batch of the accuracy passes (`accuracy(…, 1000)` and the simulator's).
pub const EVAL_BATCH: usize = 1000;

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

/// Training `cfg` (file `label`): parameters with gradients and optimiser moments, the cached
/// activations of a step, an evaluation batch, the epoch history and the block-circulant
/// kernel's tables.
///
/// # Errors
/// The estimate exceeds the limit.
pub fn check_training(cfg: &TrainConfig, label: &str) -> CliResult<()> {
    let Ok(layers) = cfg.network.resolve() else {
        return Ok(());
    };
    let step = footprint(&layers, cfg.train.batch_size);
    let eval = footprint(&layers, EVAL_BATCH);
    let mut e = Estimate::new();
    e.add(
        "parameters with gradients and optimiser moments",
        step.params.saturating_mul(4),
    )
    .add(
        format!(
            "activations and their gradients for a batch of {}",
            cfg.train.batch_size
        ),
        step.activations_all.saturating_mul(2),
    )
    .add("an evaluation batch", eval.activations_peak)
    .add(
        format!("the history of {} epochs", cfg.train.epochs),
        (cfg.train.epochs as u64).saturating_mul(std::mem::size_of::<EpochRecord>() as u64),
    );
    if let KernelChoice::BlockCirculant { block, .. } = &cfg.kernel {
        let k = *block as u64;
        let widest = layers
            .iter()
            .map(|l| (l.input.len().max(l.output.len()) as u64).div_ceil(k.max(1)) * k)
            .max()
            .unwrap_or(0);
        e.add(
            format!("block-circulant tables for block {block}"),
            k.saturating_mul(k)
                .saturating_add(widest.saturating_mul(widest))
                .saturating_mul(8),
        );
    }
    check(&format!("training {label}"), &e)?;
    Ok(())
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
