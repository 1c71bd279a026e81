//! IR drop: resistive word and bit lines, solved by nodal analysis.
//!
//! # Circuit
//!
//! An `R×C` array. Row `i` is driven at its left end by an ideal source `V_i` through one wire
//! segment; its crosspoint nodes `r(i,j)` are chained left to right by segments and the right
//! end is open. Column `j` runs top to bottom through nodes `c(i,j)`, and its bottom node
//! reaches the TIA's virtual ground (0 V) through one segment. The device `G_ij` joins `r(i,j)`
//! and `c(i,j)`. Every segment has conductance `g = 1/segment_ohm`. Kirchhoff's current law at
//! the `2·R·C` nodes:
//!
//! ```text
//! r(i,j): g·(r(i,j−1) − r(i,j)) + g·(r(i,j+1) − r(i,j)) + G_ij·(c(i,j) − r(i,j)) = 0   r(i,−1) = V_i, no r(i,C)
//! c(i,j): g·(c(i−1,j) − c(i,j)) + g·(c(i+1,j) − c(i,j)) + G_ij·(r(i,j) − c(i,j)) = 0   no c(−1,j), c(R,j) = 0
//! ```
//!
//! The column current is `I_j = g·c(R−1,j)`.
//!
//! # Solvers
//!
//! * [`solve`]: line Gauss–Seidel (block Gauss–Seidel over lines) with over-relaxation `omega`:
//!   every row line is solved exactly (tridiagonal, Thomas algorithm) with the column voltages
//!   held, then every column line with the row voltages held, until the largest change is below
//!   `tol` times the largest source voltage. Point Gauss–Seidel would need `O(C²)` sweeps on
//!   the strongly coupled wires; line relaxation converges in a few sweeps because the devices
//!   (µS) couple the lines weakly compared with the wires (S). CrossSim's parasitic solver uses
//!   the same nodal model with `Verr_th = 1e-3` \[V\].
//! * [`solve_dense`]: the modified-nodal-analysis matrix built densely and solved by Gaussian
//!   elimination with partial pivoting, the check of validation #13 (use on ≤ 32×32 arrays).
//!
//! # Use in `run`
//!
//! Solving per input vector is too slow for inference sweeps, so a layer linearizes: at
//! programming time each tile is solved once with **every row at `+v_read`** (the worst case),
//! and each device is replaced by its effective conductance `G_ij·(r(i,j) − c(i,j))/V_i`.
//! This is exact for the full-scale input and overestimates the drop for smaller inputs (the
//! line currents are smaller); it keeps `run` a matrix product.

use ndarray::{Array2, ArrayView2};

/// Node voltages of a solved array.
#[derive(Debug, Clone, PartialEq)]
pub struct IrSolution {
    /// Row-line node voltages `r(i,j)` in volts, `[R, C]`.
    pub v_row_v: Array2<f64>,
    /// Column-line node voltages `c(i,j)` in volts, `[R, C]`.
    pub v_col_v: Array2<f64>,
    /// Column currents into the virtual ground in amperes.
    pub i_col_a: Vec<f64>,
    /// Gauss–Seidel sweeps used (0 for the dense solve).
    pub iterations: usize,
    /// Whether the iteration met its tolerance.
    pub converged: bool,
}

impl IrSolution {
    /// Current through device `(i, j)` in amperes, `G_ij·(r − c)`.
    pub fn device_current_a(&self, g_s: ArrayView2<f64>, i: usize, j: usize) -> f64 {
        g_s[[i, j]] * (self.v_row_v[[i, j]] - self.v_col_v[[i, j]])
    }
}

/// Solves a tridiagonal system in place (Thomas algorithm): `lower[k]·x[k−1] + diag[k]·x[k] +
/// upper[k]·x[k+1] = rhs[k]`; `x` is written into `rhs`. Diagonally dominant systems only.
fn thomas(lower: &[f64], diag: &mut [f64], upper: &[f64], rhs: &mut [f64]) {
    let n = diag.len();
    for k in 1..n {
        let m = lower[k] / diag[k - 1];
        diag[k] -= m * upper[k - 1];
        rhs[k] -= m * rhs[k - 1];
    }
    rhs[n - 1] /= diag[n - 1];
    for k in (0..n - 1).rev() {
        rhs[k] = (rhs[k] - upper[k] * rhs[k + 1]) / diag[k];
    }
}

/// Line Gauss–Seidel / SOR solve of the array (module docs).
///
/// `g_s` `[R, C]` device conductances in siemens, `v_v` one source voltage per row,
/// `segment_ohm` > 0, `omega` in (0, 2) (1 = Gauss–Seidel), `tol` relative to `max |V_i|`.
///
/// # Panics
///
/// If `v_v.len() != R` or the array is empty.
pub fn solve(
    g_s: ArrayView2<f64>,
    v_v: &[f64],
    segment_ohm: f64,
    omega: f64,
    tol: f64,
    max_iterations: usize,
) -> IrSolution {
    let (rows, cols) = g_s.dim();
    assert!(rows > 0 && cols > 0 && v_v.len() == rows, "shape mismatch");
    let g = 1.0 / segment_ohm;
    let scale = v_v
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    // Start from the ideal-wire solution: rows at their source, columns at ground.
    let mut vr = Array2::from_shape_fn((rows, cols), |(i, _)| v_v[i]);
    let mut vc = Array2::<f64>::zeros((rows, cols));
    let mut lower = vec![0.0; rows.max(cols)];
    let mut upper = vec![0.0; rows.max(cols)];
    let mut diag = vec![0.0; rows.max(cols)];
    let mut rhs = vec![0.0; rows.max(cols)];
    let mut iterations = 0;
    let mut converged = false;
    while iterations < max_iterations {
        iterations += 1;
        let mut change = 0.0f64;
        for i in 0..rows {
            for j in 0..cols {
                let gij = g_s[[i, j]];
                lower[j] = if j > 0 { -g } else { 0.0 };
                upper[j] = if j + 1 < cols { -g } else { 0.0 };
                diag[j] = g + if j + 1 < cols { g } else { 0.0 } + gij;
                rhs[j] = gij * vc[[i, j]] + if j == 0 { g * v_v[i] } else { 0.0 };
            }
            thomas(
                &lower[..cols],
                &mut diag[..cols],
                &upper[..cols],
                &mut rhs[..cols],
            );
            for j in 0..cols {
                let new = vr[[i, j]] + omega * (rhs[j] - vr[[i, j]]);
                change = change.max((new - vr[[i, j]]).abs());
                vr[[i, j]] = new;
            }
        }
        for j in 0..cols {
            for i in 0..rows {
                let gij = g_s[[i, j]];
                lower[i] = if i > 0 { -g } else { 0.0 };
                upper[i] = if i + 1 < rows { -g } else { 0.0 };
                diag[i] = if i > 0 { g } else { 0.0 } + g + gij;
                rhs[i] = gij * vr[[i, j]];
            }
            thomas(
                &lower[..rows],
                &mut diag[..rows],
                &upper[..rows],
                &mut rhs[..rows],
            );
            for i in 0..rows {
                let new = vc[[i, j]] + omega * (rhs[i] - vc[[i, j]]);
                change = change.max((new - vc[[i, j]]).abs());
                vc[[i, j]] = new;
            }
        }
        if change <= tol * scale {
            converged = true;
            break;
        }
    }
    let i_col_a = (0..cols).map(|j| g * vc[[rows - 1, j]]).collect();
    IrSolution {
        v_row_v: vr,
        v_col_v: vc,
        i_col_a,
        iterations,
        converged,
    }
}

/// Direct solve of the same circuit: the dense nodal matrix (unknowns `r(i,j)` then `c(i,j)`,
/// row-major) by Gaussian elimination with partial pivoting. `O((2RC)³)`: for checks on small
/// arrays.
///
/// # Panics
///
/// If `v_v.len() != R` or the array is empty.
pub fn solve_dense(g_s: ArrayView2<f64>, v_v: &[f64], segment_ohm: f64) -> IrSolution {
    let (rows, cols) = g_s.dim();
    assert!(rows > 0 && cols > 0 && v_v.len() == rows, "shape mismatch");
    let g = 1.0 / segment_ohm;
    let n = 2 * rows * cols;
    let r = |i: usize, j: usize| i * cols + j;
    let c = |i: usize, j: usize| rows * cols + i * cols + j;
    let mut a = Array2::<f64>::zeros((n, n));
    let mut b = vec![0.0; n];
    for i in 0..rows {
        for j in 0..cols {
            let gij = g_s[[i, j]];
            // Row node.
            let k = r(i, j);
            a[[k, k]] += g + gij; // left segment (or the source) and the device
            if j == 0 {
                b[k] += g * v_v[i];
            } else {
                a[[k, r(i, j - 1)]] -= g;
            }
            if j + 1 < cols {
                a[[k, k]] += g;
                a[[k, r(i, j + 1)]] -= g;
            }
            a[[k, c(i, j)]] -= gij;
            // Column node.
            let k = c(i, j);
            a[[k, k]] += g + gij; // lower segment (or the ground) and the device
            if i + 1 < rows {
                a[[k, c(i + 1, j)]] -= g;
            }
            if i > 0 {
                a[[k, k]] += g;
                a[[k, c(i - 1, j)]] -= g;
            }
            a[[k, r(i, j)]] -= gij;
        }
    }
    // Gaussian elimination with partial pivoting.
    for p in 0..n {
        let piv = (p..n)
            .max_by(|&x, &y| a[[x, p]].abs().total_cmp(&a[[y, p]].abs()))
            .unwrap_or(p);
        if piv != p {
            for k in 0..n {
                a.swap([p, k], [piv, k]);
            }
            b.swap(p, piv);
        }
        let d = a[[p, p]];
        for row in p + 1..n {
            let m = a[[row, p]] / d;
            if m != 0.0 {
                for k in p..n {
                    a[[row, k]] -= m * a[[p, k]];
                }
                b[row] -= m * b[p];
            }
        }
    }
    let mut x = vec![0.0; n];
    for p in (0..n).rev() {
        let s: f64 = (p + 1..n).map(|k| a[[p, k]] * x[k]).sum();
        x[p] = (b[p] - s) / a[[p, p]];
    }
    let v_row_v = Array2::from_shape_fn((rows, cols), |(i, j)| x[r(i, j)]);
    let v_col_v = Array2::from_shape_fn((rows, cols), |(i, j)| x[c(i, j)]);
    let i_col_a = (0..cols).map(|j| g * v_col_v[[rows - 1, j]]).collect();
    IrSolution {
        v_row_v,
        v_col_v,
        i_col_a,
        iterations: 0,
        converged: true,
    }
}

/// Effective conductances under IR drop at full-scale input: every row at `v_read_v`, each
/// device replaced by `G_ij·(r(i,j) − c(i,j))/v_read` (module docs, *Use in `run`*).
pub fn effective_conductance(g_s: ArrayView2<f64>, v_read_v: f64, segment_ohm: f64) -> Array2<f64> {
    let v = vec![v_read_v; g_s.nrows()];
    let s = solve(g_s, &v, segment_ohm, 1.0, 1e-12, 10_000);
    Array2::from_shape_fn(g_s.dim(), |(i, j)| {
        g_s[[i, j]] * (s.v_row_v[[i, j]] - s.v_col_v[[i, j]]) / v_read_v
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array(rows: usize, cols: usize) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            1e-6 + 9e-6 * (((i * 31 + j * 17) % 23) as f64 / 22.0)
        })
    }

    fn rel_err(a: &[f64], b: &[f64]) -> f64 {
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
            / scale
    }

    #[test]
    fn gauss_seidel_matches_dense_mna_to_1e9() {
        // Validation #13: on arrays up to 32×32, several wire resistances and input patterns.
        for &(rows, cols, ohm) in &[(8, 8, 1.0), (16, 12, 10.0), (32, 32, 2.5), (5, 32, 100.0)] {
            let g = array(rows, cols);
            let v: Vec<f64> = (0..rows)
                .map(|i| 0.2 * ((i % 5) as f64 - 1.5) / 3.5)
                .collect();
            let it = solve(g.view(), &v, ohm, 1.0, 1e-14, 10_000);
            assert!(
                it.converged,
                "{rows}x{cols} {ohm} Ω: {} sweeps",
                it.iterations
            );
            let dense = solve_dense(g.view(), &v, ohm);
            let e = rel_err(&it.i_col_a, &dense.i_col_a);
            assert!(
                e < 1e-9,
                "{rows}x{cols} {ohm} Ω: column currents differ by {e:e}"
            );
            let e = rel_err(
                it.v_row_v.as_slice().unwrap(),
                dense.v_row_v.as_slice().unwrap(),
            );
            assert!(e < 1e-9, "row voltages differ by {e:e}");
            // Over-relaxation reaches the same answer.
            let sor = solve(g.view(), &v, ohm, 1.2, 1e-14, 10_000);
            assert!(rel_err(&sor.i_col_a, &dense.i_col_a) < 1e-9);
        }
    }

    #[test]
    fn drop_grows_with_wire_resistance_and_vanishes_without_it() {
        let g = array(32, 32);
        let v = vec![0.2; 32];
        let ideal = crate::reference::kirchhoff_currents(g.view(), &v);
        let tiny = solve(g.view(), &v, 1e-9, 1.0, 1e-14, 1000);
        assert!(rel_err(&tiny.i_col_a, &ideal) < 1e-6);
        let mut last = 0.0;
        for ohm in [1.0, 10.0, 100.0] {
            let s = solve(g.view(), &v, ohm, 1.0, 1e-13, 1000);
            let loss = 1.0 - s.i_col_a.iter().sum::<f64>() / ideal.iter().sum::<f64>();
            assert!(loss > last, "{ohm} Ω: loss {loss}");
            last = loss;
        }
        let eff = effective_conductance(g.view(), 0.2, 10.0);
        // The far corner (last row, last column) loses the most; every device loses something.
        assert!(eff.iter().zip(g.iter()).all(|(e, g)| e < g));
        assert!(eff[[0, 31]] / g[[0, 31]] < eff[[31, 0]] / g[[31, 0]]);
    }
}
