//! Helpers shared by the run benches (`run_mlp`, `engine_ratios`, `graph_resnet`): the measured
//! part of a run report, the process CPU clock and the interleaved-rounds setting. Included
//! with `#[path]`; not a bench.

#![allow(dead_code)] // each bench uses a subset

use nacsim_nn::data::Split;
use nacsim_scheduler::report::{Calibration, RunFacts};

/// The measured part of a report (the benches time the costing around it): `images` of the
/// test split, calibrated on 512 images of `calibration_data`.
pub fn facts(network: &str, calibration_data: &str, images: usize, accuracy: f64) -> RunFacts {
    RunFacts {
        network: network.into(),
        data: "test".into(),
        images,
        accuracy,
        float_accuracy: None,
        calibration: Calibration {
            data: calibration_data.into(),
            split: Split::Train,
            images: 512,
        },
        wall_seconds: 0.0,
        timings: None,
    }
}

/// Process CPU time (user + system) in seconds, from `/proc/self/stat` (Linux; `None`
/// elsewhere). Clock ticks assumed 100 Hz (the Linux default).
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The rounds `NACSIM_INTERLEAVED=<rounds>` asks for (the benches' interleaved float-vs-engine
/// medians), if it is set to a number.
pub fn interleaved_rounds() -> Option<usize> {
    std::env::var("NACSIM_INTERLEAVED")
        .ok()
        .and_then(|v| v.parse().ok())
}
