//! `nacsim` as a library: the logic of the command-line front end (`src/main.rs`), so that other
//! front ends (the Python package, `crates/python`) run the same code and get the same reports.
//!
//! | module | job |
//! |---|---|
//! | [`cmd`] | one module per subcommand: its arguments, the report it builds and how it prints |
//! | this one | [`CliResult`], [`StdoutError`], [`error_text`] (the message of an error and its causes), [`progress_bar`] |
//!
//! The binary parses the command line with clap and calls [`cmd`]; a library user builds the
//! same argument structs (or calls the `report` functions with loaded inputs) and gets the
//! report values the commands print.

use std::io::IsTerminal;

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

pub mod cmd;

/// Standard output could not be written (exit status 1, not 2: the input was fine).
#[derive(Debug)]
pub struct StdoutError(pub std::io::Error);

impl std::fmt::Display for StdoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write the report to standard output: {}", self.0)
    }
}

impl std::error::Error for StdoutError {}

/// An error for the user: printed as `error: …` with its causes, exit status 2 (1 when the
/// report cannot be written to standard output, [`StdoutError`]).
pub type CliResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The text the CLI prints after `error: ` for `e`: its message, then one
/// `\n  caused by: …` line per cause whose text the message does not already quote.
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut shown = text.clone();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !shown.contains(&t) {
            text.push_str("\n  caused by: ");
            text.push_str(&t);
            shown = t;
        }
        src = s.source();
    }
    text
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
