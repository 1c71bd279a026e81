//! Subcommands of the `nacsim` binary.

pub mod args;
pub mod data;
pub mod defaults;
pub mod device;
pub mod eval;
pub mod info;
pub mod limits;
pub mod merge;
pub mod pareto;
pub mod plot;
pub mod run;
pub mod sweep;
pub mod sweep_jobs;
pub mod trace;
pub mod train;
pub mod train_neurosim;

/// The most worker threads `--threads` accepts: 4 × the cores this process may use
/// (`std::thread::available_parallelism`). More threads than that only cost memory.
pub fn max_threads() -> usize {
    4 * std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// `--threads N` checked against 1..=[`max_threads`]; `None` (the flag left out) means all
/// cores.
///
/// # Errors
/// 0 or more than [`max_threads`], with the limit and the fix.
pub fn check_threads(threads: Option<usize>) -> crate::CliResult<Option<usize>> {
    let max = max_threads();
    match threads {
        Some(0) => Err(format!(
            "--threads 0: give 1 to {max} worker threads, or leave --threads out to use all cores"
        )
        .into()),
        Some(n) if n > max => Err(format!(
            "--threads {n}: at most {max} worker threads (4 × the {} cores available); give 1 to {max}, or \
             leave --threads out to use all cores",
            max / 4
        )
        .into()),
        t => Ok(t),
    }
}
