//! Reference layer: the ideal mapping of weights to conductance levels, the input slicing of the
//! DAC, and plain f64 / exact-integer MVMs. No time, no noise: these are the oracles of the
//! tests and the definitions the fast path in [`datapath`](crate::datapath) must reproduce.
//!
//! # Ideal mapping
//!
//! With `L = levels`, `w_max` = the `clip_percentile` of `|w|` (per layer or per column) and
//! weights clipped to `[−w_max, w_max]`:
//!
//! ```text
//! differential:  q = round(w/w_max·(L−1))                    G⁺ − G⁻ = q·Δg,    Δg = (g_on−g_off)/(L−1)
//! reference:     k = round((w/w_max+1)/2·(L−1)), q = 2k−(L−1)  G − G_ref = q·Δg/2
//! bridge:        q as for the reference scheme, k = ((L−1)−q)/2  ψ = q·ΔR/(R_on+R_off)
//!                (R_a = R_on + k·ΔR, R_b = R_off − k·ΔR, ΔR = (R_off−R_on)/(L−1))
//! ```
//!
//! so in every scheme `w ≈ q·w_max/(L−1)` and the column current is an integer `Σ q·d` times
//! one *unit current*. `out_w_scale = w_max/(L−1)` (the weight of one unit). Rounding is
//! half away from zero (`f64::round`).

use ndarray::{Array2, ArrayView2, Zip};

use crate::config::{CrossbarConfig, InputEncoding, SignedScheme};

/// One read of the array for a slice of the input code (see [`input_slices`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSlice {
    /// Left shift of this slice's ADC result in the digital shift-and-add.
    pub shift: u32,
    /// Bits of the code this slice covers, starting at `shift` (its DAC width).
    pub width: u32,
    /// Whether the digit is signed (the top slice of a two's-complement code).
    pub signed: bool,
    /// Parallel DAC with fewer than 8 bits: the code is rounded to the DAC grid.
    pub rounded: bool,
    /// Largest `|digit|` the slice can take.
    pub max_abs: i32,
}

impl InputSlice {
    /// The digit this slice applies for int8 `code`.
    ///
    /// Bit-serial: bits `shift .. shift+width` of the two's-complement code, signed for the top
    /// slice, so `code = Σ digit·2^shift` exactly. Parallel with `b < 8` DAC bits: the code
    /// rounded half up to a multiple of `2^(8−b)` and saturated, `digit·2^shift ≈ code`.
    #[inline]
    pub fn digit(&self, code: i8) -> i32 {
        let c = i32::from(code);
        if self.rounded {
            let half = 1i32 << (self.shift - 1);
            ((c + half) >> self.shift).clamp(-self.max_abs, self.max_abs - 1)
        } else if self.signed {
            c >> self.shift
        } else {
            (i32::from(code as u8) >> self.shift) & ((1 << self.width) - 1)
        }
    }
}

/// The slices one int8 input vector is applied in, lowest first.
pub fn input_slices(cfg: &CrossbarConfig) -> Vec<InputSlice> {
    match cfg.dac.encoding {
        InputEncoding::Parallel => {
            let b = cfg.dac.bits.clamp(1, 16);
            if b >= 8 {
                vec![InputSlice {
                    shift: 0,
                    width: 8,
                    signed: true,
                    rounded: false,
                    max_abs: 128,
                }]
            } else {
                vec![InputSlice {
                    shift: 8 - b,
                    width: b,
                    signed: true,
                    rounded: true,
                    max_abs: 1 << (b - 1),
                }]
            }
        }
        InputEncoding::BitSerial { bits_per_slice } => {
            let s = bits_per_slice.clamp(1, 8);
            let n = 8u32.div_ceil(s);
            (0..n)
                .map(|m| {
                    let shift = s * m;
                    let width = s.min(8 - shift);
                    let top = m == n - 1;
                    InputSlice {
                        shift,
                        width,
                        signed: top,
                        rounded: false,
                        max_abs: if top {
                            1 << (width - 1)
                        } else {
                            (1 << width) - 1
                        },
                    }
                })
                .collect()
        }
    }
}

/// The ideal mapping of a weight matrix: integer conductance-difference codes and their scale.
#[derive(Debug, Clone, PartialEq)]
pub struct IdealMapping {
    /// `q[o, k]` in unit conductances, `|q| ≤ levels − 1` (see the module docs).
    pub q: Array2<i32>,
    /// `w_max` per output column (all equal unless `per_column_scale`).
    pub w_max: Vec<f64>,
    /// Weight of one unit per output column: `w_max/(levels−1)`.
    pub out_w_scale: Vec<f32>,
}

/// Linear-interpolated percentile `p ∈ (0, 100]` of `values` (which it reorders: the two order
/// statistics are found by selection, O(n), with the values a full sort would give); 0 if
/// empty.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let pos = (p / 100.0).clamp(0.0, 1.0) * (values.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (_, &mut v_lo, rest) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let v_hi = if hi > lo {
        // The next order statistic is the smallest value above position `lo`.
        rest.iter().copied().min_by(f64::total_cmp).unwrap_or(v_lo)
    } else {
        v_lo
    };
    v_lo + (v_hi - v_lo) * (pos - lo as f64)
}

/// The ideal mapping of `weight` `[out, fan_in]` under `cfg` (module docs). Non-finite weights
/// count as 0; an all-zero layer or column gets `w_max = 1`.
pub fn ideal_mapping(cfg: &CrossbarConfig, weight: ArrayView2<f32>) -> IdealMapping {
    let (out, fan_in) = weight.dim();
    let l1 = f64::from(cfg.device.levels.max(2) - 1);
    let p = cfg.mapping.clip_percentile;
    let clean = |w: f32| if w.is_finite() { f64::from(w) } else { 0.0 };
    let fix = |m: f64| if m > 0.0 && m.is_finite() { m } else { 1.0 };
    let w_max: Vec<f64> = if cfg.mapping.per_column_scale {
        (0..out)
            .map(|o| {
                let mut v: Vec<f64> = weight.row(o).iter().map(|&w| clean(w).abs()).collect();
                fix(percentile(&mut v, p))
            })
            .collect()
    } else {
        let mut v: Vec<f64> = weight.iter().map(|&w| clean(w).abs()).collect();
        vec![fix(percentile(&mut v, p)); out]
    };
    let mut q = Array2::<i32>::zeros((out, fan_in));
    Zip::from(q.rows_mut())
        .and(weight.rows())
        .and(&w_max[..])
        .par_for_each(|mut q_row, w_row, &m| {
            for (q, &w) in q_row.iter_mut().zip(w_row) {
                let r = (clean(w) / m).clamp(-1.0, 1.0);
                let code = match cfg.signed {
                    SignedScheme::Differential => (r * l1).round(),
                    SignedScheme::Reference | SignedScheme::Bridge => {
                        2.0 * ((r + 1.0) / 2.0 * l1).round() - l1
                    }
                };
                *q = code as i32;
            }
        });
    let out_w_scale = w_max.iter().map(|&m| (m / l1) as f32).collect();
    IdealMapping {
        q,
        w_max,
        out_w_scale,
    }
}

/// Exact integer `y[n, o] = Σ_k q[o, k]·x[n, k]` (i64), the ideal array with an exact DAC.
///
/// # Panics
///
/// If `q` and `x` disagree on the fan-in.
pub fn int_mvm(q: ArrayView2<i32>, x: ArrayView2<i32>) -> Array2<i64> {
    let (n, k) = x.dim();
    let out = q.nrows();
    assert_eq!(q.ncols(), k, "q and x disagree on the fan-in");
    let mut y = Array2::zeros((n, out));
    for r in 0..n {
        for o in 0..out {
            let mut s = 0i64;
            for i in 0..k {
                s += i64::from(q[[o, i]]) * i64::from(x[[r, i]]);
            }
            y[[r, o]] = s;
        }
    }
    y
}

/// Column currents in amperes of an ideal crossbar, `I_j = Σ_i G_ij·V_i` (Kirchhoff with ideal
/// wires), in f64: the reference of validation #12.
///
/// # Panics
///
/// If `v_v` does not have one voltage per row of `g_s`.
pub fn kirchhoff_currents(g_s: ArrayView2<f64>, v_v: &[f64]) -> Vec<f64> {
    let (rows, cols) = g_s.dim();
    assert_eq!(rows, v_v.len(), "one voltage per row");
    (0..cols)
        .map(|j| (0..rows).map(|i| g_s[[i, j]] * v_v[i]).sum())
        .collect()
}

/// The ideal mapping's output with an ideal ADC: every input slice applied, column sums per
/// row tile (`array_rows` inputs) exact, shifted and added. Equals the exact integer product
/// `q·code` when the DAC is exact (parallel ≥ 8 bits, or bit-serial).
///
/// # Panics
///
/// If `q` and `x` disagree on the fan-in.
pub fn ideal_output(cfg: &CrossbarConfig, q: ArrayView2<i32>, x: ArrayView2<i8>) -> Array2<i64> {
    let mut y = Array2::<i64>::zeros((x.nrows(), q.nrows()));
    for s in input_slices(cfg) {
        let d = x.mapv(|c| s.digit(c));
        y += &int_mvm(q, d.view()).mapv(|v| v << s.shift);
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn bit_serial_slices_rebuild_every_code() {
        for bits in 1..=8 {
            let mut cfg = CrossbarConfig::default();
            cfg.dac.encoding = InputEncoding::BitSerial {
                bits_per_slice: bits,
            };
            let slices = input_slices(&cfg);
            assert_eq!(slices.len() as u32, cfg.input_slices());
            for c in i8::MIN..=i8::MAX {
                let sum: i32 = slices.iter().map(|s| s.digit(c) << s.shift).sum();
                assert_eq!(sum, i32::from(c), "bits {bits} code {c}");
                for s in &slices {
                    assert!(s.digit(c).abs() <= s.max_abs);
                }
            }
        }
    }

    #[test]
    fn narrow_parallel_dac_rounds_to_its_grid() {
        let mut cfg = CrossbarConfig::default();
        cfg.dac.bits = 4;
        let s = input_slices(&cfg)[0];
        assert_eq!(s.shift, 4);
        for c in i8::MIN..=i8::MAX {
            let v = s.digit(c) << s.shift;
            let err = (v - i32::from(c)).abs();
            // Half a step inside the range; the top saturates at 112.
            assert!(err <= 8 || c > 112, "code {c} → {v}");
        }
    }

    #[test]
    fn percentile_by_selection_equals_the_sorted_definition() {
        // Pseudo-random values with ties, every percentile of a grid, several lengths.
        for n in [1usize, 2, 3, 7, 100, 1001] {
            let v: Vec<f64> = (0..n)
                .map(|i| ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as f64 / 7.0)
                .collect();
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            for p in [0.5, 1.0, 12.5, 33.3, 50.0, 99.0, 99.9, 100.0] {
                let pos = p / 100.0 * (n - 1) as f64;
                let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
                let want = sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64);
                let mut w = v.clone();
                assert_eq!(
                    percentile(&mut w, p).to_bits(),
                    want.to_bits(),
                    "n {n} p {p}"
                );
            }
        }
        assert_eq!(percentile(&mut [], 50.0), 0.0);
    }

    #[test]
    fn mapping_levels_and_scales() {
        let w = array![[1.0f32, -0.5, 0.25], [0.0, -1.0, 0.1]];
        let mut cfg = CrossbarConfig::default();
        cfg.device.levels = 5; // q in −4..=4
        let m = ideal_mapping(&cfg, w.view());
        assert_eq!(m.q, array![[4, -2, 1], [0, -4, 0]]);
        assert_eq!(m.out_w_scale, vec![0.25, 0.25]);
        cfg.signed = SignedScheme::Reference;
        let m = ideal_mapping(&cfg, w.view());
        // k = round((r+1)/2·4): 1.0→4, −0.5→1, 0.25→round(2.5)=3 ; q = 2k−4.
        assert_eq!(m.q.row(0).to_vec(), vec![4, -2, 2]);
        cfg.signed = SignedScheme::Bridge;
        let m = ideal_mapping(&cfg, w.view());
        assert_eq!(m.q.row(0).to_vec(), vec![4, -2, 2]);
        cfg.mapping.per_column_scale = true;
        cfg.signed = SignedScheme::Differential;
        let m = ideal_mapping(&cfg, w.view());
        assert_eq!(m.w_max, vec![1.0, 1.0]);
        cfg.mapping.clip_percentile = 50.0;
        let m = ideal_mapping(&cfg, w.view());
        assert_eq!(m.w_max, vec![0.5, f64::from(0.1f32)]);
        assert_eq!(m.q.row(0).to_vec(), vec![4, -4, 2]);
    }
}
