//! `nacsim`: the command-line front end of the nacsim simulator.
//!
//! Run `nacsim --help` for the commands. With no command it runs the main job on the embedded
//! default (the default network on the bundled Fashion-MNIST sample).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// nacsim — a cycle-accurate simulator of multiplier-light neural accelerators.
///
/// With no command, evaluates the default network (models/networks/fmnist-mlp.ron, embedded in
/// the binary) on the bundled 2,000-image Fashion-MNIST sample and prints a table.
#[derive(Parser, Debug)]
#[command(name = "nacsim", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a network from a training config (models/training/*.ron) and write the trained
    /// network file (RON topology + safetensors weights).
    Train(cmd::train::TrainArgs),
    /// Evaluate a trained network's float top-1 accuracy on a dataset's test split.
    Eval(cmd::eval::EvalArgs),
}

/// An error for the user: printed as `error: …` with its causes, exit status 2.
pub type CliResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => cmd::eval::run(&cmd::eval::EvalArgs::default()),
        Some(Command::Train(a)) => cmd::train::run(&a),
        Some(Command::Eval(a)) => cmd::eval::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
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
            ExitCode::from(2)
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
