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

/// Runs `f` on a rayon pool of `threads` workers (`None`: all cores, as rayon's global pool),
/// reusing the pool the caller already runs on when it fits: every command runs on a worker
/// of such a pool (`main`), sized by `--threads` for the commands that take it, so a command
/// does not build a second pool beside an idle first one.
///
/// # Errors
/// The pool cannot be built (the operating system refused the threads).
pub fn in_pool<R: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> R + Send,
) -> crate::CliResult<R> {
    let fits = rayon::current_thread_index().is_some()
        && threads.is_none_or(|n| n == rayon::current_num_threads());
    if fits {
        return Ok(f());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .stack_size(16 << 20)
        .build()
        .map_err(|e| format!("--threads: {e}"))?;
    Ok(pool.install(f))
}

/// The `RAYON_NUM_THREADS` environment variable (the size of rayon's global pool, which every
/// command's parallel loops use) checked as `--threads` is: unset, empty or 0 (rayon's "all
/// cores") pass; a whole number from 1 to [`max_threads`] passes; anything else is refused
/// before any work, because rayon would silently ignore text and spawn any number of threads
/// (20,000 made `nacsim eval` take a minute).
///
/// # Errors
/// Not a whole number, or more than [`max_threads`], with the limit and the fix.
pub fn check_rayon_env() -> crate::CliResult<()> {
    let Some(v) = std::env::var_os("RAYON_NUM_THREADS") else {
        return Ok(());
    };
    let max = max_threads();
    let v = v.to_string_lossy();
    let t = v.trim();
    match t.parse::<usize>() {
        _ if t.is_empty() => Ok(()),
        Ok(n) if n <= max => Ok(()),
        Ok(n) => Err(format!(
            "RAYON_NUM_THREADS={n}: at most {max} worker threads (4 × the {} cores available); \
             set 1 to {max}, or unset it to use all cores",
            max / 4
        )
        .into()),
        Err(_) => Err(format!(
            "RAYON_NUM_THREADS={v:?}: not a whole number of worker threads; set 1 to {max}, or \
             unset it to use all cores"
        )
        .into()),
    }
}
