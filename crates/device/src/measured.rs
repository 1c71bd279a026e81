//! Measured pulse curves in (issue #21): a CSV of conductance against pulse index for
//! potentiation and depression, one or more cycles, becomes a look-up-table device with its
//! cycle-to-cycle spread ([`import`]).
//!
//! # CSV format
//!
//! Three columns per row, `pulse, conductance_s, direction`, comma separated; an optional header
//! row (its first field not a number); blank lines and lines starting with `#` are skipped.
//!
//! * `pulse`: the pulse index within the current sweep, `0, 1, 2, …` (0 is the state before
//!   the first pulse). A row with pulse 0 starts a new sweep of its direction.
//! * `conductance_s`: siemens, finite and ≥ 0.
//! * `direction`: `ltp` (also `potentiation`, `up`, `set`, `+`) or `ltd` (also `depression`,
//!   `down`, `reset`, `-`), any case.
//!
//! A cycle is one LTP sweep and one LTD sweep; every sweep of a direction must have the same
//! number of pulses. Errors name the file, line and column (`curves.csv:12:2: …`).
//!
//! # What is estimated
//!
//! * The LUT: the mean over cycles of the conductance at each pulse index, per direction, made
//!   strictly monotone by pool-adjacent-violators isotonic regression (Barlow et al. 1972)
//!   and a ramp of `1e-9·(G_max − G_min)` per point inside tied blocks \[I\] (the LUT device needs
//!   strict monotonicity).
//! * The cycle-to-cycle σ, NeuroSim style (a fraction of `G_max − G_min` added per pulse): the
//!   RMS over every measured single-pulse step of (measured next conductance − the LUT's
//!   prediction from the measured current conductance), divided by the range. Steps that start
//!   or end at a range end (clipped in the model) are left out. With one cycle the residuals
//!   are those of one cycle around its own mean and the estimate is 0.

use serde::{Deserialize, Serialize};

use crate::lut::LutDevice;
use crate::{NoNoise, PulseResponse};

/// A CSV problem at a place in the file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct CsvError {
    /// File name (as given, for messages).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (field number; 0 when the problem is the whole file).
    pub column: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Which sweep a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// Potentiation (conductance up).
    Ltp,
    /// Depression (conductance down).
    Ltd,
}

/// Measured sweeps: `ltp[c][p]` is the conductance (siemens) after `p` pulses of LTP sweep `c`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Curves {
    /// LTP sweeps, each `pulses + 1` conductances.
    pub ltp: Vec<Vec<f64>>,
    /// LTD sweeps.
    pub ltd: Vec<Vec<f64>>,
}

fn direction(s: &str) -> Option<Direction> {
    match s.trim().to_ascii_lowercase().as_str() {
        "ltp" | "potentiation" | "up" | "set" | "+" => Some(Direction::Ltp),
        "ltd" | "depression" | "down" | "reset" | "-" => Some(Direction::Ltd),
        _ => None,
    }
}

/// Parses a curves CSV (module docs); `file` names it in errors.
///
/// # Errors
///
/// A [`CsvError`] naming the line and column of the first problem.
pub fn parse_csv(text: &str, file: &str) -> Result<Curves, CsvError> {
    let err = |line: usize, column: usize, message: String| CsvError {
        file: file.to_string(),
        line,
        column,
        message,
    };
    let mut curves = Curves::default();
    // Line of the first row of each sweep, for messages.
    let mut starts: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
    let mut first_row = true;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = t.split(',').map(str::trim).collect();
        let header = first_row && fields[0].parse::<f64>().is_err();
        first_row = false;
        if header {
            continue;
        }
        if fields.len() != 3 {
            return Err(err(
                line,
                fields.len().min(3) + 1,
                format!(
                    "expected 3 fields (pulse, conductance_s, direction), found {}",
                    fields.len()
                ),
            ));
        }
        let pulse: usize = fields[0].parse().map_err(|_| {
            err(
                line,
                1,
                format!("pulse index {:?} is not a whole number ≥ 0", fields[0]),
            )
        })?;
        let g: f64 = fields[1].parse().map_err(|_| {
            err(
                line,
                2,
                format!("conductance {:?} is not a number (siemens)", fields[1]),
            )
        })?;
        if !(g.is_finite() && g >= 0.0) {
            return Err(err(
                line,
                2,
                format!("conductance {g} must be finite and ≥ 0 siemens"),
            ));
        }
        let dir = direction(fields[2]).ok_or_else(|| {
            err(
                line,
                3,
                format!(
                    "direction {:?} is neither ltp (potentiation, up, set, +) nor ltd (depression, down, reset, -)",
                    fields[2]
                ),
            )
        })?;
        let (sweeps, st) = match dir {
            Direction::Ltp => (&mut curves.ltp, &mut starts[0]),
            Direction::Ltd => (&mut curves.ltd, &mut starts[1]),
        };
        if pulse == 0 {
            sweeps.push(vec![g]);
            st.push(line);
            continue;
        }
        let Some(cur) = sweeps.last_mut() else {
            return Err(err(
                line,
                1,
                format!("the first {dir:?} row must have pulse index 0 (found {pulse})"),
            ));
        };
        if pulse != cur.len() {
            return Err(err(
                line,
                1,
                format!(
                    "pulse index {pulse} does not follow {} of the current {dir:?} sweep (indices count 0, 1, 2, …; 0 starts a new sweep)",
                    cur.len() - 1
                ),
            ));
        }
        cur.push(g);
    }
    let last_line = text.lines().count().max(1);
    for (dir, sweeps, st) in [
        (Direction::Ltp, &curves.ltp, &starts[0]),
        (Direction::Ltd, &curves.ltd, &starts[1]),
    ] {
        if sweeps.is_empty() {
            return Err(err(
                last_line,
                3,
                format!("no {dir:?} rows: the file needs at least one LTP and one LTD sweep"),
            ));
        }
        let n = sweeps[0].len();
        if n < 2 {
            return Err(err(
                st[0],
                1,
                format!("the {dir:?} sweep has only pulse 0; it needs at least pulses 0 and 1"),
            ));
        }
        if let Some(c) = sweeps.iter().position(|s| s.len() != n) {
            return Err(err(
                st[c],
                1,
                format!(
                    "{dir:?} sweep {} has {} pulses but the first has {}; every sweep of a direction needs the same pulses",
                    c + 1,
                    sweeps[c].len() - 1,
                    n - 1
                ),
            ));
        }
    }
    Ok(curves)
}

/// Mean over sweeps at each pulse index.
pub fn mean_curve(sweeps: &[Vec<f64>]) -> Vec<f64> {
    let n = sweeps[0].len();
    (0..n)
        .map(|p| sweeps.iter().map(|s| s[p]).sum::<f64>() / sweeps.len() as f64)
        .collect()
}

/// The non-decreasing least-squares fit of `y` (pool adjacent violators), made strictly
/// increasing by a ramp of `eps` per point inside tied blocks.
pub fn isotonic_increasing(y: &[f64], eps: f64) -> Vec<f64> {
    // Blocks of (sum, count).
    let mut blocks: Vec<(f64, usize)> = Vec::new();
    for &v in y {
        blocks.push((v, 1));
        while blocks.len() > 1 {
            let (s1, n1) = blocks[blocks.len() - 1];
            let (s0, n0) = blocks[blocks.len() - 2];
            if s0 / n0 as f64 > s1 / n1 as f64 {
                blocks.pop();
                *blocks.last_mut().expect("two blocks") = (s0 + s1, n0 + n1);
            } else {
                break;
            }
        }
    }
    let mut out = Vec::with_capacity(y.len());
    for (s, n) in blocks {
        let m = s / n as f64;
        for j in 0..n {
            out.push(m + eps * (j as f64 - (n - 1) as f64 / 2.0));
        }
    }
    // Ramps of neighbouring blocks could touch; push any non-increase up.
    for i in 1..out.len() {
        if out[i] <= out[i - 1] {
            out[i] = out[i - 1] + eps;
        }
    }
    out
}

/// The LUT (mean, monotone) and c2c estimate of [`import`].
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// LTP conductances per pulse (siemens), strictly increasing.
    pub ltp_g_s: Vec<f64>,
    /// LTD conductances per pulse (siemens), strictly decreasing.
    pub ltd_g_s: Vec<f64>,
    /// Cycle-to-cycle σ as a fraction of `G_max − G_min` (NeuroSim `sigmaCtoC`).
    pub c2c_sigma: f64,
    /// Number of LTP and LTD sweeps.
    pub cycles: (usize, usize),
    /// Single-pulse steps the c2c estimate used.
    pub c2c_steps: usize,
}

/// The LUT and cycle-to-cycle spread of measured curves (module docs).
pub fn import(curves: &Curves) -> Imported {
    let ltp_mean = mean_curve(&curves.ltp);
    let ltd_mean = mean_curve(&curves.ltd);
    let lo = ltp_mean
        .iter()
        .chain(&ltd_mean)
        .copied()
        .fold(f64::INFINITY, f64::min);
    let hi = ltp_mean
        .iter()
        .chain(&ltd_mean)
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let eps = 1e-9 * (hi - lo).max(f64::MIN_POSITIVE);
    let ltp = isotonic_increasing(&ltp_mean, eps);
    let neg: Vec<f64> = ltd_mean.iter().map(|v| -v).collect();
    let ltd: Vec<f64> = isotonic_increasing(&neg, eps)
        .into_iter()
        .map(|v| -v)
        .collect();
    let dev = LutDevice::from_tables(ltp.clone(), ltd.clone(), 0.0);
    let (g_min, g_max) = (dev.g_min_s(), dev.g_max_s());
    let range = g_max - g_min;
    let tol = 1e-12 * range;
    let (mut ss, mut n) = (0.0, 0usize);
    for (sweeps, step) in [(&curves.ltp, 1), (&curves.ltd, -1)] {
        for s in sweeps.iter() {
            for w in s.windows(2) {
                let inside = |g: f64| g > g_min + tol && g < g_max - tol;
                if !inside(w[0]) || !inside(w[1]) {
                    continue;
                }
                let r = w[1] - dev.apply_pulses(w[0], step, &mut NoNoise);
                ss += r * r;
                n += 1;
            }
        }
    }
    let c2c = if n > 0 && range > 0.0 && curves.ltp.len() + curves.ltd.len() > 2 {
        (ss / n as f64).sqrt() / range
    } else {
        0.0
    };
    Imported {
        ltp_g_s: ltp,
        ltd_g_s: ltd,
        c2c_sigma: c2c,
        cycles: (curves.ltp.len(), curves.ltd.len()),
        c2c_steps: n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_line_and_column() {
        let e = parse_csv("pulse,g,dir\n0,1e-6,ltp\n1,abc,ltp\n", "c.csv").unwrap_err();
        assert_eq!((e.line, e.column), (3, 2), "{e}");
        assert!(e.to_string().starts_with("c.csv:3:2: conductance \"abc\""));
        let e = parse_csv("0,1e-6,ltp\n2,2e-6,ltp\n", "c.csv").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1), "{e}");
        let e = parse_csv("0,1e-6,sideways\n", "c.csv").unwrap_err();
        assert_eq!((e.line, e.column), (1, 3), "{e}");
        let e = parse_csv("0,1e-6,ltp\n1,2e-6,ltp\n", "c.csv").unwrap_err();
        assert!(e.message.contains("no Ltd rows"), "{e}");
        let e = parse_csv(
            "0,1,ltp\n1,2,ltp\n0,2,ltd\n1,1,ltd\n0,1,ltp\n1,2,ltp\n2,3,ltp\n0,2,ltd\n1,1,ltd\n",
            "c.csv",
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (5, 1), "{e}");
        let e = parse_csv("0,1,ltp,9\n", "c.csv").unwrap_err();
        assert_eq!((e.line, e.column), (1, 4), "{e}");
    }

    #[test]
    fn isotonic_fit_is_strict_and_keeps_monotone_data() {
        assert_eq!(
            isotonic_increasing(&[1.0, 2.0, 3.0], 1e-9),
            vec![1.0, 2.0, 3.0]
        );
        let y = isotonic_increasing(&[1.0, 3.0, 2.0, 4.0], 1e-9);
        assert!(y.windows(2).all(|w| w[1] > w[0]), "{y:?}");
        assert!((y[1] - 2.5).abs() < 1e-8 && (y[2] - 2.5).abs() < 1e-8);
    }
}
