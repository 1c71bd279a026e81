//! `nacsim`: the command-line front end of the nacsim simulator.
//!
//! Run `nacsim --help` for the commands. With no command it runs the main job on the embedded
//! default (the default network on the bundled Fashion-MNIST sample).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `println!` for reports: writes to stdout and returns a write failure (a full disk, a closed
/// file) from the enclosing function as a [`StdoutError`] instead of panicking.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($t)*).map_err($crate::StdoutError)?;
    }};
}

/// `print!` for reports, as [`outln!`].
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($t)*).map_err($crate::StdoutError)?;
    }};
}

mod cmd;

/// Standard output could not be written (exit status 1, not 2: the input was fine).
#[derive(Debug)]
pub struct StdoutError(pub std::io::Error);

impl std::fmt::Display for StdoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write the report to standard output: {}", self.0)
    }
}

impl std::error::Error for StdoutError {}

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
/// are refused before allocating.
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
    /// Sweep one design field (inference) or training-config field (training) over values ×
    /// Monte Carlo trials; shardable and resumable.
    Sweep(cmd::sweep::SweepArgs),
    /// Join the points of a sweep into a CSV table (mean, std, min, max) and an SVG plot;
    /// refuses a sweep with missing points unless --allow-partial.
    Merge(cmd::sweep::MergeArgs),
    /// Train a network from a training config (models/training/*.ron) and write the trained
    /// network file (RON topology + safetensors weights).
    Train(cmd::train::TrainArgs),
    /// Evaluate a trained network's float top-1 accuracy on a dataset's test split.
    Eval(cmd::eval::EvalArgs),
    /// Measured device curves in (import to a LUT preset), fitted device models out (NeuroSim,
    /// SoftBounds, PowStep, ExpStep with RMSE and R²), curves from a preset.
    Device(cmd::device::DeviceArgs),
}

/// An error for the user: printed as `error: …` with its causes, exit status 2 (1 when the
/// report cannot be written to standard output, [`StdoutError`]).
pub type CliResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

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
    let result = match cli.command {
        None => cmd::run::run(&cmd::run::RunArgs::default()),
        Some(Command::Run(a)) => cmd::run::run(&a),
        Some(Command::Info(a)) => cmd::info::run(&a),
        Some(Command::Trace(a)) => cmd::trace::run(&a),
        Some(Command::Sweep(a)) => cmd::sweep::run(&a),
        Some(Command::Merge(a)) => cmd::sweep::run_merge(&a),
        Some(Command::Train(a)) => cmd::train::run(&a),
        Some(Command::Eval(a)) => cmd::eval::run(&a),
        Some(Command::Device(a)) => cmd::device::run(&a),
    };
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
            let mut shown = e.to_string();
            eprintln!("error: {shown}");
            let mut src = e.source();
            while let Some(s) = src {
                let t = s.to_string();
                if !shown.contains(&t) {
                    eprintln!("  caused by: {t}");
                    shown = t;
                }
                src = s.source();
            }
            ExitCode::from(status)
        }
    }
}

/// A progress bar on a terminal; hidden when stderr is not a terminal (CI, pipes) or `quiet`.
pub fn progress_bar(len: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(len);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    pb
}
