//! `nacsim`: the command-line front end of the nacsim simulator.
//!
//! Run `nacsim --help` for the commands. With no command it runs the main job on the embedded
//! default (the default network on the bundled Fashion-MNIST sample).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nacsim::{StdoutError, cmd};

/// nacsim — a cycle-accurate simulator of multiplier-light neural accelerators.
///
/// With no command, runs the main job: simulates the default design (models/designs/systolic-int8.ron,
/// a 32x32 int8 systolic array) running the default network (models/networks/fmnist-mlp.ron) on
/// the bundled 2,000-image Fashion-MNIST sample, all embedded in the binary, and prints accuracy,
/// cycles, latency, GOPS, TOPS/W and the energy split.
///
/// Exit status: 0 on success; 2 on bad input (one `error:` paragraph naming the file, the field,
/// the value and the rule); 1 when the report cannot be written to standard output (a full
/// disk). A closed pipe (`nacsim info | head`) ends the process quietly. Requests whose memory
/// estimate exceeds NACSIM_MEMORY_LIMIT (bytes, or e.g. 16G; default 3/4 of physical memory)
/// are refused before allocating. RAYON_NUM_THREADS sets the worker threads of every command
/// (1 to 4 × the cores; unset: all cores; results are the same for any count).
#[derive(Parser, Debug)]
#[command(name = "nacsim", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Simulate a design running a quantized network over a dataset: accuracy, cycles, latency,
    /// GOPS, energy by component, TOPS/W, per layer and in total.
    Run(cmd::run::RunArgs),
    /// What is known without data: peak GOPS, analytic cycles per layer, storage, traffic.
    Info(cmd::info::InfoArgs),
    /// Cycle trace of one layer for one image: VCD signals and Perfetto spans.
    Trace(cmd::trace::TraceArgs),
    /// Sweep design fields (inference, or shape-only on a topology) or training-config fields
    /// (training) over values or several axes × Monte Carlo trials; shardable and resumable.
    Sweep(cmd::sweep::SweepArgs),
    /// Join the points of a sweep into a CSV table (mean, std, min, max) and an SVG plot;
    /// refuses a sweep with missing points unless --allow-partial.
    Merge(cmd::sweep::MergeArgs),
    /// The designs of a sweep no other design beats in every objective (any report figure,
    /// minimised or maximised): CSV of the front, the marked table, a scatter plot.
    Pareto(cmd::pareto::ParetoArgs),
    /// Train a network from a training config (models/training/*.ron) and write the trained
    /// network file (RON topology + safetensors weights).
    Train(cmd::train::TrainArgs),
    /// Evaluate a trained network's float top-1 accuracy on a dataset's test split.
    Eval(cmd::eval::EvalArgs),
    /// Measured device curves in (import to a LUT preset), fitted device models out (NeuroSim,
    /// SoftBounds, PowStep, ExpStep with RMSE and R²), curves from a preset.
    Device(cmd::device::DeviceArgs),
}

fn main() -> ExitCode {
    // A closed pipe (`nacsim info | head`) ends the process quietly, as for other Unix tools,
    // instead of panicking in `println!`.
    #[cfg(unix)]
    // SAFETY: restores the default SIGPIPE action at start-up, before any thread is spawned;
    // `signal` has no other effect.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    // `sweep --threads N` sizes the pool every command runs on (a value it refuses falls back to
    // all cores here, and `sweep` reports it).
    let threads = match &cli.command {
        Some(Command::Sweep(a)) => cmd::check_threads(a.threads).ok().flatten(),
        _ => None,
    };
    let result = cmd::check_rayon_env().and_then(|()| {
        in_worker_pool(threads, || match cli.command {
            None => cmd::run::run(&cmd::run::RunArgs::default()),
            Some(Command::Run(a)) => cmd::run::run(&a),
            Some(Command::Info(a)) => cmd::info::run(&a),
            Some(Command::Trace(a)) => cmd::trace::run(&a),
            Some(Command::Sweep(a)) => cmd::sweep::run(&a),
            Some(Command::Merge(a)) => cmd::sweep::run_merge(&a),
            Some(Command::Pareto(a)) => cmd::pareto::run(&a),
            Some(Command::Train(a)) => cmd::train::run(&a),
            Some(Command::Eval(a)) => cmd::eval::run(&a),
            Some(Command::Device(a)) => cmd::device::run(&a),
        })
    });
    // Reports are written line by line; what is still buffered must reach its file too.
    let result = result.and_then(|()| {
        use std::io::Write as _;
        std::io::stdout().flush().map_err(|e| StdoutError(e).into())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let status = if e.is::<StdoutError>() { 1 } else { 2 };
            // Causes whose text the message already quotes are not repeated.
            eprintln!("error: {}", nacsim::error_text(e.as_ref()));
            ExitCode::from(status)
        }
    }
}

/// Runs the command on a worker of a rayon pool of `threads` workers (`sweep --threads`), else
/// sized as rayon's global pool would be (`RAYON_NUM_THREADS`, else all cores), so each
/// parallel loop starts on a worker that takes part in it instead of handing the loop from the main thread to the pool and waiting: with
/// one thread that handoff cost `nacsim train` about 15 % of its CPU (session 11, #20). Worker
/// stacks get 16 MiB, more than the main thread's usual 8 MiB. Falls back to the calling
/// thread if the pool cannot be built.
fn in_worker_pool<T: Send>(threads: Option<usize>, f: impl FnOnce() -> T + Send) -> T {
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .stack_size(16 << 20)
        .build()
    {
        Ok(pool) => pool.install(f),
        Err(_) => f(),
    }
}
