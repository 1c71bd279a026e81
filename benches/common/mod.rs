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

/// Process CPU time (user + system) in seconds, from `getrusage` (microsecond resolution;
/// Unix; `None` elsewhere or if the call fails).
pub fn cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        // SAFETY: `getrusage` writes one `rusage` into the zeroed value it is given.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
            return None;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
        Some(tv(u.ru_utime) + tv(u.ru_stime))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Runs `f` on a worker of a fresh rayon pool sized as the global pool would be
/// (`RAYON_NUM_THREADS`, else all cores), with 16 MiB stacks: how every `nacsim` command runs
/// (`src/main.rs`, `in_worker_pool`), so the benches time parallel loops as the CLI pays for
/// them (started on a worker, not handed over from the main thread).
pub fn in_worker_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .stack_size(16 << 20)
        .build()
        .expect("a rayon pool")
        .install(f)
}

/// The rounds `NACSIM_INTERLEAVED=<rounds>` asks for (the benches' interleaved float-vs-engine
/// medians), if it is set to a number.
pub fn interleaved_rounds() -> Option<usize> {
    std::env::var("NACSIM_INTERLEAVED")
        .ok()
        .and_then(|v| v.parse().ok())
}
