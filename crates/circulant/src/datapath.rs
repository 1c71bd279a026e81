//! Bit-exact B-MV datapath (note §2.2–2.3): γ = 16 lanes computing one γ×γ circulant block
//! product (a C-MV) per cycle from integer activations and [`ShiftCode`]s — a barrel shift and a
//! conditional negate per lane (the "Basic Shift Unit", BSU), one γ-input adder tree per row and
//! one accumulator per row — and blocks of k = α·γ by the polyphase pseudo-circulant split.
//!
//! All arithmetic is on integers: `x · ŵ = ±(x << e) · 2^n1`, so the datapath accumulates
//! `±(x << e)` and the layer scale `2^n1` (times the activation scale) is applied once,
//! downstream (note §2.2, "exact fixed-point formulation"). The adder trees are sized never to
//! overflow (an inference: the paper gives no widths); only the accumulators have a width and an
//! [`Overflow`] mode.

use serde::{Deserialize, Serialize};

pub use crate::config::{BmvConfig, GAMMA, Overflow, Split};
use crate::reference::check_len;
use crate::timing::BmvCounters;
use crate::{BlockCirculant, Convention, Error, PotLayer, ShiftCode};

impl BmvConfig {
    /// Accumulator width that holds every sum of a layer exactly:
    /// `A + (2^(b−1) − 2) + ⌈log2 n⌉ + 1` for `n` (padded) inputs and `b`-bit codes (note §2.2).
    pub fn required_acc_bits(&self, fan_in: usize, bits: u32) -> u32 {
        let max_shift = (1u32 << (bits - 1)) - 2;
        self.act_bits + max_shift + fan_in.next_power_of_two().trailing_zeros() + 1
    }

    /// Check that a layer can run: `k = γ·2^i ≤ max_k`, the block not larger than both layer
    /// dimensions, adder trees within 64 bits, and (with `require_exact`) the accumulator wide
    /// enough.
    ///
    /// # Errors
    /// [`Error::Param`], [`Error::BlockSize`] or [`Error::AccTooNarrow`].
    pub fn check_layer(&self, layer: &PotLayer) -> Result<(), Error> {
        self.check_shape(&LayerShape::of(layer))
    }

    /// [`check_layer`](Self::check_layer) for a layer given by its shape only.
    ///
    /// # Errors
    /// As [`check_layer`](Self::check_layer); [`Error::Param`] for `bits` outside 2..=8.
    pub fn check_shape(&self, shape: &LayerShape) -> Result<(), Error> {
        self.validate()?;
        let LayerShape {
            rows,
            cols,
            k,
            bits,
        } = *shape;
        if !(2..=8).contains(&bits) {
            return Err(Error::Param {
                field: "bits",
                value: i64::from(bits),
                rule: "must be in 2..=8",
            });
        }
        if rows == 0 || cols == 0 {
            return Err(Error::EmptyShape {
                what: if rows == 0 { "rows" } else { "cols" },
            });
        }
        if !(k.is_multiple_of(self.gamma) && (k / self.gamma).is_power_of_two() && k <= self.max_k)
        {
            return Err(Error::BlockSize {
                k,
                rule: format!(
                    "must be gamma·2^i = {}·2^i and <= max_k = {}",
                    self.gamma, self.max_k
                ),
            });
        }
        if k > rows && k > cols {
            return Err(Error::BlockSize {
                k,
                rule: format!("larger than the layer ({rows}×{cols}); use a smaller block"),
            });
        }
        let tree = self.required_acc_bits(self.gamma, bits);
        if tree > 64 {
            return Err(Error::Param {
                field: "act_bits",
                value: i64::from(self.act_bits),
                rule: "adder tree wider than 64 bits for this code width",
            });
        }
        let fan_in = cols.div_ceil(k) * k;
        let needed = self.required_acc_bits(fan_in, bits);
        if self.require_exact && self.acc_bits < needed {
            return Err(Error::AccTooNarrow {
                acc_bits: self.acc_bits,
                needed,
                fan_in,
                act_bits: self.act_bits,
                bits,
            });
        }
        Ok(())
    }

    /// `a + b` in the accumulator format.
    #[inline]
    pub fn acc_add(&self, a: i64, b: i64) -> i64 {
        self.acc_fit(i128::from(a) + i128::from(b))
    }

    /// An exact value brought into the accumulator format (wrapped or saturated).
    #[inline]
    pub fn acc_fit(&self, v: i128) -> i64 {
        let n = self.acc_bits;
        match self.overflow {
            Overflow::Wrap => {
                let sh = 128 - n;
                ((v << sh) >> sh) as i64 // sign-extended low n bits: fits i64 since n ≤ 64
            }
            Overflow::Saturate => {
                let hi = (1i128 << (n - 1)) - 1;
                v.clamp(-hi - 1, hi) as i64 // within the n-bit range, n ≤ 64
            }
        }
    }
}

/// The shape of a block-circulant PoT layer: all that timing needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerShape {
    /// Outputs m.
    pub rows: usize,
    /// Inputs n.
    pub cols: usize,
    /// Block size k.
    pub k: usize,
    /// Code width b in bits.
    pub bits: u32,
}

impl LayerShape {
    /// The shape of a quantized layer.
    pub fn of(layer: &PotLayer) -> Self {
        Self {
            rows: layer.codes.rows(),
            cols: layer.codes.cols(),
            k: layer.codes.k(),
            bits: layer.quantizer.bits,
        }
    }
}

/// One BSU: `±(x << shift)`, or 0 for the zero code. Exact for `|x| < 2^(63 − shift)`.
#[inline]
pub fn bsu(x: i64, code: ShiftCode) -> i64 {
    match code {
        ShiftCode::Zero => 0,
        ShiftCode::Shift { negative, shift } => {
            let v = x << shift;
            if negative { v.wrapping_neg() } else { v }
        }
    }
}

/// Sum of `lanes` by a balanced binary tree of two-input adders (len a power of two).
#[inline]
fn adder_tree(lanes: &mut [i64]) -> i64 {
    let mut n = lanes.len();
    while n > 1 {
        n /= 2;
        for i in 0..n {
            lanes[i] += lanes[i + n];
        }
    }
    lanes[0]
}

/// One C-MV: `out[r] = Σ_s BSU(x[s], p[(s − r) mod γ])` (first-row convention; row r sees the
/// code vector rotated by r, fixed wiring in a parallel unit). `lanes` is scratch of length γ.
pub fn cmv(p: &[ShiftCode], x: &[i64], out: &mut [i64], lanes: &mut [i64]) {
    let g = p.len();
    debug_assert!(x.len() == g && out.len() == g && lanes.len() == g);
    for (r, o) in out.iter_mut().enumerate() {
        for (s, l) in lanes.iter_mut().enumerate() {
            *l = bsu(x[s], p[(s + g - r) % g]);
        }
        *o = adder_tree(lanes);
    }
}

/// `y = Ŵ x / 2^n1` on the B-MV, output-stationary polyphase loop order (note §2.4):
/// `for i { for r in 0..α { acc = 0; for j { for β in 0..α { acc += U^[β<r] · CMV(P_ij^((β−r) mod α), X_j^β) } } write Y_i^r } }`.
/// Returns one accumulator value per output (the integer sums `Σ ±(x << e)`) and the counts.
/// For many inputs through one layer, build a [`PreparedLayer`] once instead.
///
/// # Errors
/// From [`BmvConfig::check_layer`]; [`Error::Length`] unless `x.len() == cols`;
/// [`Error::Activation`] for an `x` outside the `act_bits` range.
pub fn bmv_forward(
    cfg: &BmvConfig,
    layer: &PotLayer,
    x: &[i32],
) -> Result<(Vec<i64>, BmvCounters), Error> {
    PreparedLayer::new(cfg, layer)?.forward(x)
}

/// A layer loaded into the B-MV's weight buffer: codes converted to the first-row convention and
/// split into their polyphase components `P_ij^d[t] = w_ij[d + t·α]` once, so that
/// [`forward`](Self::forward) only streams activations.
#[derive(Clone, Debug)]
pub struct PreparedLayer {
    cfg: BmvConfig,
    rows: usize,
    cols: usize,
    k: usize,
    p: usize,
    q: usize,
    /// Polyphase codes laid out `(i, j, d, t)`.
    codes: Vec<ShiftCode>,
}

impl PreparedLayer {
    /// Check the layer against the configuration and load it.
    ///
    /// # Errors
    /// From [`BmvConfig::check_layer`].
    pub fn new(cfg: &BmvConfig, layer: &PotLayer) -> Result<Self, Error> {
        cfg.check_layer(layer)?;
        let codes = layer.codes.to_convention(Convention::FirstRow);
        let (k, g) = (codes.k(), cfg.gamma);
        let (p, q, alpha) = (codes.block_rows(), codes.block_cols(), k / g);
        let mut ps = vec![ShiftCode::Zero; p * q * k];
        for blk in 0..p * q {
            let w = &codes.vectors()[blk * k..(blk + 1) * k];
            for d in 0..alpha {
                for t in 0..g {
                    ps[blk * k + d * g + t] = w[d + t * alpha];
                }
            }
        }
        Ok(Self {
            cfg: *cfg,
            rows: codes.rows(),
            cols: codes.cols(),
            k,
            p,
            q,
            codes: ps,
        })
    }

    /// Run one input vector through the layer; see [`bmv_forward`].
    ///
    /// # Errors
    /// [`Error::Length`] unless `x.len() == cols`; [`Error::Activation`] for an `x` outside the
    /// `act_bits` range.
    pub fn forward(&self, x: &[i32]) -> Result<(Vec<i64>, BmvCounters), Error> {
        let cfg = &self.cfg;
        check_len("x", self.cols, x.len())?;
        let lim = 1i64 << (cfg.act_bits - 1);
        if let Some((index, &v)) = x
            .iter()
            .enumerate()
            .find(|(_, v)| !(-lim..lim).contains(&i64::from(**v)))
        {
            return Err(Error::Activation {
                index,
                value: i64::from(v),
                act_bits: cfg.act_bits,
            });
        }
        let (k, g, p, q) = (self.k, cfg.gamma, self.p, self.q);
        let alpha = k / g;
        // Polyphase components of the input, X_j^β[m] = x[j·k + m·α + β], laid out (j, β, m).
        let mut xs = vec![0i64; q * k];
        for j in 0..q {
            for beta in 0..alpha {
                for m in 0..g {
                    let s = j * k + m * alpha + beta;
                    xs[(j * alpha + beta) * g + m] = x.get(s).map_or(0, |&v| i64::from(v));
                }
            }
        }
        let mut y = vec![0i64; self.rows];
        let (mut acc, mut tree, mut lanes) = (vec![0i64; g], vec![0i64; g], vec![0i64; g]);
        let (mut cmvs, mut writes) = (0u64, 0u64);
        for i in 0..p {
            for r in 0..alpha {
                acc.fill(0);
                for j in 0..q {
                    for beta in 0..alpha {
                        let d = (beta + alpha - r) % alpha;
                        let pv = &self.codes[(i * q + j) * k + d * g..][..g];
                        let xv = &xs[(j * alpha + beta) * g..][..g];
                        cmv(pv, xv, &mut tree, &mut lanes);
                        let rot = usize::from(beta < r); // U: (U v)[m] = v[(m + 1) mod γ], wiring
                        for (m, a) in acc.iter_mut().enumerate() {
                            *a = cfg.acc_add(*a, tree[(m + rot) % g]);
                        }
                        cmvs += 1;
                    }
                }
                for (m, &a) in acc.iter().enumerate() {
                    let row = i * k + m * alpha + r;
                    if row < y.len() {
                        y[row] = a;
                        writes += 1;
                    }
                }
            }
        }
        Ok((y, BmvCounters::of_cmvs(cmvs, writes, g as u64)))
    }
}

/// The writeback stage (note §5 #14: bias in the accumulator at the end of the row, ReLU and
/// requantization at writeback; the paper's own choice is not known).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Writeback {
    /// Apply ReLU before requantization.
    pub relu: bool,
    /// Right shift of requantization: output = `round((acc + bias) / 2^shift)` (0..=63). The
    /// layer scale `2^n1` and the activation scales fold into this shift when they are powers of
    /// two; otherwise a separate float rescale is needed (not modelled).
    pub shift: u32,
    /// Rounding of the shift (never a bare `as` cast).
    pub rounding: nacsim_nn::quant::Rounding,
    /// Output activation width in bits, two's complement, saturating (2..=32).
    pub out_bits: u32,
}

impl Writeback {
    /// One output: `bias` added with the accumulator's overflow rule, then ReLU, then the
    /// rounded right shift, then saturation to `out_bits`.
    pub fn apply(&self, cfg: &BmvConfig, acc: i64, bias: i64) -> i32 {
        use nacsim_nn::quant::Rounding;
        let mut v = cfg.acc_add(acc, bias);
        if self.relu {
            v = v.max(0);
        }
        let s = self.shift.min(63);
        let v = i128::from(v);
        let q = if s == 0 {
            v
        } else {
            let floor = v >> s;
            let rem = v - (floor << s); // in [0, 2^s)
            let half = 1i128 << (s - 1);
            match self.rounding {
                Rounding::Floor => floor,
                Rounding::Ceil => floor + i128::from(rem != 0),
                Rounding::TowardZero => floor + i128::from(rem != 0 && v < 0),
                Rounding::NearestAway => floor + i128::from(rem > half || (rem == half && v >= 0)),
                Rounding::NearestEven => {
                    floor + i128::from(rem > half || (rem == half && floor & 1 == 1))
                }
            }
        };
        let hi = (1i128 << (self.out_bits.clamp(2, 32) - 1)) - 1;
        q.clamp(-hi - 1, hi) as i32 // within the out_bits range, ≤ 32 bits
    }
}

/// The exact integer product `Σ_s int_value(ŵ[r][s]) · x[s]` with the expanded matrix, in
/// `i128`: the oracle of [`bmv_forward`].
///
/// # Errors
/// [`Error::Length`] unless `x.len() == cols`.
pub fn int_reference(codes: &BlockCirculant<ShiftCode>, x: &[i32]) -> Result<Vec<i128>, Error> {
    check_len("x", codes.cols(), x.len())?;
    let d = codes.to_dense_with(ShiftCode::int_value);
    Ok(d.rows()
        .into_iter()
        .map(|row| {
            row.iter()
                .zip(x)
                .map(|(&w, &v)| i128::from(w) * i128::from(v))
                .sum()
        })
        .collect())
}

/// The `k × k` block rebuilt from the α×α grid of γ×γ circulants of note §2.3 (first-row
/// convention): sub-block `(r, β)` is `P^((β−r) mod α)` for `β ≥ r` and `U·P^((β−r) mod α)` for
/// `β < r`, with `P^d = circ(w[d], w[d+α], …)` and the sub-vectors placed by `split`. Equals the
/// circulant of `w` for [`Split::Polyphase`] and (for α > 1) not for [`Split::Contiguous`].
///
/// # Panics
/// Unless `gamma` divides `w.len()`.
pub fn pseudo_circulant(w: &[f64], gamma: usize, split: Split) -> ndarray::Array2<f64> {
    let k = w.len();
    assert!(gamma > 0 && k.is_multiple_of(gamma), "gamma must divide k");
    let alpha = k / gamma;
    // Position in x (or y) of element m of sub-vector β.
    let place = |beta: usize, m: usize| match split {
        Split::Polyphase => m * alpha + beta,
        Split::Contiguous => beta * gamma + m,
    };
    let pd = |d: usize, t: usize| w[d + t * alpha];
    let mut out = ndarray::Array2::zeros((k, k));
    for r in 0..alpha {
        for beta in 0..alpha {
            let d = (beta + alpha - r) % alpha;
            let rot = usize::from(beta < r);
            for m in 0..gamma {
                let mm = (m + rot) % gamma; // row of P^d feeding output m
                for mp in 0..gamma {
                    out[[place(r, m), place(beta, mp)]] = pd(d, (mp + gamma - mm) % gamma);
                }
            }
        }
    }
    out
}

/// A Dense layer compiled for the B-MV at the int8 seam: its power-of-two codes and their
/// expanded integer values, for a scheduler that carries int8 activation codes.
///
/// Compiling projects the float weights onto block-circulant matrices of block size `k`
/// ([`BlockCirculant::project`], the identity for a model trained block-circulant with the same
/// `k` and convention) and quantizes the defining vectors to `b`-bit power-of-two codes
/// ([`PotConfig::quantize`](crate::PotConfig::quantize), idempotent on a model trained with the
/// same settings). The accumulators are the integer sums `Σ ±(x << e)` of the B-MV, at weight
/// scale `2^n1` (the layer's smallest exponent).
///
/// [`run`](Self::run) computes those sums as the exact integer product with the expanded
/// matrix of code values `±2^e`: the caller's int8 GEMM when every `|±2^e| ≤ 64` (`b ≤ 4`; the
/// scheduler passes the systolic crate's fast GEMM, engine crates do not depend on each other),
/// else an `i32` loop. The property tests of this module prove it equal to the shift-add
/// datapath ([`PreparedLayer`]) for every shape, `k` and `b`.
#[derive(Clone, Debug)]
pub struct DenseLayer {
    /// The codes as loaded in the weight buffer.
    pub codes: PotLayer,
    /// Shape for the timing model.
    pub shape: LayerShape,
    /// Expanded code values `±2^e` `[out, fan_in]` as int8, when every one fits (b ≤ 4).
    dense_i8: Option<ndarray::Array2<i8>>,
    /// Expanded code values `[out, fan_in]` (always present; used when `dense_i8` is not).
    dense: ndarray::Array2<i32>,
    /// Largest `|W − expand(codes)·2^n1| / max|W|` of the compilation (0 for a model trained
    /// with the engine's settings).
    pub relative_change: f64,
}

impl DenseLayer {
    /// Compiles the float weights `[out, fan_in]` under `cfg`. Returns the layer and its weight
    /// scale `2^n1` (the real value of one accumulator LSB per unit of input).
    ///
    /// # Errors
    /// [`Error::Compile`] wrapping the projection's (`block`) or quantizer's (`pot`) error;
    /// those of [`CirculantConfig::check_shape`](crate::CirculantConfig::check_shape).
    pub fn compile(
        cfg: &crate::CirculantConfig,
        weight: ndarray::ArrayView2<f32>,
    ) -> Result<(Self, f64), Error> {
        let stage = |stage| {
            move |e| Error::Compile {
                stage,
                source: Box::new(e),
            }
        };
        let w = weight.mapv(f64::from);
        let bc =
            BlockCirculant::project(w.view(), cfg.block, cfg.convention).map_err(stage("block"))?;
        let codes = cfg.pot.quantize(&bc).map_err(stage("pot"))?;
        let shape = LayerShape::of(&codes);
        cfg.check_shape(&shape)?;
        let dense64 = codes.codes.to_dense_with(ShiftCode::int_value);
        let dense = dense64.mapv(|v| i32::try_from(v).expect("|±2^e| < 2^31 checked above"));
        let dense_i8 = dense
            .iter()
            .all(|&v| v.abs() <= 64)
            .then(|| dense.mapv(|v| i8::try_from(v).expect("|v| ≤ 64")));
        let scale = 2f64.powi(codes.quantizer.exp_min());
        let max_abs = weight.iter().fold(0f32, |m, v| m.max(v.abs()));
        let relative_change = if max_abs > 0.0 {
            weight
                .iter()
                .zip(dense.iter())
                .map(|(&a, &b)| (f64::from(a) - f64::from(b) * scale).abs())
                .fold(0.0, f64::max)
                / f64::from(max_abs)
        } else {
            0.0
        };
        debug_assert_eq!(dense.dim(), weight.dim());
        Ok((
            DenseLayer {
                codes,
                shape,
                dense_i8,
                dense,
                relative_change,
            },
            scale,
        ))
    }

    /// `y [rows, out]`: the accumulator sums `Σ ±(x << e)` of every input row, exactly.
    /// `gemm_i8(x, w)` must return the exact product `x [M, K] · w [N, K]ᵀ` (any int8 GEMM; it
    /// runs when the codes fit int8). Otherwise rows run in parallel; each is independent.
    pub fn run(
        &self,
        x: ndarray::ArrayView2<i8>,
        gemm_i8: impl FnOnce(ndarray::ArrayView2<i8>, ndarray::ArrayView2<i8>) -> ndarray::Array2<i32>,
    ) -> ndarray::Array2<i32> {
        use ndarray::Axis;
        use rayon::prelude::*;
        if let Some(w) = &self.dense_i8 {
            return gemm_i8(x, w.view());
        }
        let (m, n) = (x.nrows(), self.dense.nrows());
        let mut y = ndarray::Array2::<i32>::zeros((m, n));
        y.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(x.axis_iter(Axis(0)).into_par_iter())
            .for_each(|(mut yr, xr)| {
                for (o, wr) in self.dense.axis_iter(Axis(0)).enumerate() {
                    yr[o] = wr
                        .iter()
                        .zip(xr.iter())
                        .map(|(&w, &v)| w * i32::from(v))
                        .sum();
                }
            });
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{cases, values};
    use crate::{ExponentRange, PotConfig};
    use nacsim_nn::quant::PotRounding;
    use proptest::prelude::*;

    fn layer(
        rows: usize,
        cols: usize,
        k: usize,
        bits: u32,
        conv: Convention,
        seed: u64,
    ) -> PotLayer {
        let n = rows.div_ceil(k) * cols.div_ceil(k) * k;
        // Magnitudes spread over many binades so every shift occurs.
        let v: Vec<f64> = values(n, seed)
            .iter()
            .map(|u| u.signum() * (8.0 * u.abs()).exp2() / 256.0)
            .collect();
        let bc = BlockCirculant::new(rows, cols, k, conv, v).unwrap();
        PotConfig {
            bits,
            rounding: PotRounding::LogDomain,
            range: ExponentRange::InqMaxAbs,
        }
        .quantize(&bc)
        .unwrap()
    }

    fn acts(n: usize, bits: u32, seed: u64, extreme: bool) -> Vec<i32> {
        let lim = 1i64 << (bits - 1);
        values(n, seed)
            .iter()
            .map(|u| {
                if extreme {
                    if *u < 0.0 { -lim } else { lim - 1 }
                } else {
                    ((u * lim as f64).floor() as i64).clamp(-lim, lim - 1)
                }
            } as i32)
            .collect()
    }

    #[test]
    fn polyphase_identity_holds_and_contiguous_split_fails() {
        for (k, gamma) in [(256, 16), (64, 16), (32, 16), (12, 4)] {
            let w = values(k, k as u64);
            for conv in [Convention::FirstRow, Convention::FirstColumn] {
                // Store in `conv`, convert to first-row for the hardware form.
                let stored = BlockCirculant::new(k, k, k, conv, w.clone()).unwrap();
                let row = stored.to_convention(Convention::FirstRow);
                let dense = stored.to_dense();
                assert_eq!(
                    pseudo_circulant(row.vectors(), gamma, Split::Polyphase),
                    dense
                );
                assert_ne!(
                    pseudo_circulant(row.vectors(), gamma, Split::Contiguous),
                    dense
                );
            }
        }
        // With α = 1 both splits are the plain circulant.
        let w = values(16, 3);
        assert_eq!(
            pseudo_circulant(&w, 16, Split::Contiguous),
            pseudo_circulant(&w, 16, Split::Polyphase)
        );
    }

    #[test]
    fn shift_add_equals_multiply_for_every_code() {
        for shift in 0..=62u8 {
            for negative in [false, true] {
                let c = ShiftCode::Shift { negative, shift };
                for x in [-3i64, -1, 0, 1, 2, 12345, -(1 << 31), (1 << 31) - 1] {
                    if x.unsigned_abs().leading_zeros() > u32::from(shift) + 1 {
                        assert_eq!(bsu(x, c), x * c.int_value(), "{x} {c:?}");
                    }
                }
            }
        }
        assert_eq!(bsu(77, ShiftCode::Zero), 0);
    }

    #[test]
    fn full_utilization_counts_512_ops_per_cycle() {
        let l = layer(64, 64, 16, 3, Convention::FirstRow, 1);
        let (_, n) = bmv_forward(&BmvConfig::default(), &l, &acts(64, 16, 2, false)).unwrap();
        assert_eq!(n.cmvs, 16); // m·n / 256
        assert_eq!(n.ops(), 512 * n.cmvs);
        assert_eq!(n.output_writes, 64);
        let l = layer(64, 64, 64, 3, Convention::FirstRow, 1);
        let (_, n) = bmv_forward(&BmvConfig::default(), &l, &acts(64, 16, 2, false)).unwrap();
        assert_eq!(n.cmvs, 16); // α² = 16 per 64×64 block
    }

    #[test]
    fn bad_configs_give_errors() {
        let cfg = BmvConfig::default();
        let x = vec![0; 48];
        let l = layer(48, 48, 24, 3, Convention::FirstRow, 1);
        let e = bmv_forward(&cfg, &l, &x).unwrap_err().to_string();
        assert_eq!(e, "k = 24: must be gamma·2^i = 16·2^i and <= max_k = 256");
        let l = layer(10, 12, 16, 3, Convention::FirstRow, 1);
        assert!(matches!(
            bmv_forward(&cfg, &l, &x[..12]),
            Err(Error::BlockSize { k: 16, .. })
        ));
        let l = layer(48, 48, 16, 4, Convention::FirstRow, 1);
        let narrow = BmvConfig {
            acc_bits: 20,
            ..cfg
        };
        let e = bmv_forward(&narrow, &l, &x).unwrap_err().to_string();
        assert_eq!(
            e,
            "circulant.acc_bits = 20: too narrow for a layer with 48 inputs, 16-bit activations \
             and 4-bit codes (needs 29)"
        );
        let e = bmv_forward(&cfg, &l, &[70000; 48]).unwrap_err().to_string();
        assert_eq!(
            e,
            "activation x[0] = 70000: outside the 16-bit two's-complement range"
        );
        let bad = BmvConfig { gamma: 12, ..cfg };
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "circulant.gamma = 12: must be a power of two in 2..=64"
        );
        // The 37-bit example of note §2.2: A = 16, b = 4, n = 9216.
        assert_eq!(cfg.required_acc_bits(9216, 4), 37);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        #[test]
        fn shift_add_matches_dense_integer_reference(
            k in prop_oneof![Just(16usize), Just(32), Just(64), Just(128), Just(256)],
            rows_blocks in 1usize..=3, cols_blocks in 1usize..=3,
            rows_cut in 0usize..16, cols_cut in 0usize..16,
            bits in 2u32..=6, act_bits in 2u32..=16, first_row: bool,
            extreme: bool, seed: u64,
        ) {
            // Keep the work per case small for k = 256 (≤ 2×2 blocks of 256 C-MVs).
            let (pb, qb) = if k >= 128 { (rows_blocks.min(2), cols_blocks.min(2)) } else { (rows_blocks, cols_blocks) };
            let rows = (pb * k - rows_cut).max(1);
            let mut cols = (qb * k - cols_cut).max(1);
            if rows < k && cols < k {
                cols = k; // a block larger than the whole layer is refused (tested elsewhere)
            }
            let conv = if first_row { Convention::FirstRow } else { Convention::FirstColumn };
            let l = layer(rows, cols, k, bits, conv, seed);
            let x = acts(cols, act_bits, seed ^ 5, extreme);
            let cfg = BmvConfig { act_bits, acc_bits: 64, ..BmvConfig::default() };
            prop_assert!(cfg.check_layer(&l).is_ok());
            let (y, n) = bmv_forward(&cfg, &l, &x).unwrap();
            let want = int_reference(&l.codes, &x).unwrap();
            prop_assert_eq!(y.len(), want.len());
            for (a, b) in y.iter().zip(&want) {
                prop_assert_eq!(i128::from(*a), *b);
            }
            prop_assert_eq!(n.cmvs as usize, pb * qb * (k / 16) * (k / 16));
        }

        #[test]
        fn narrow_accumulators_wrap_modulo_or_saturate(
            k in prop_oneof![Just(16usize), Just(32)],
            bits in 2u32..=6, acc_bits in 6u32..=24, saturate: bool, seed: u64,
        ) {
            let l = layer(2 * k, 3 * k, k, bits, Convention::FirstRow, seed);
            let x = acts(3 * k, 16, seed ^ 9, true);
            let cfg = BmvConfig {
                acc_bits,
                overflow: if saturate { Overflow::Saturate } else { Overflow::Wrap },
                require_exact: false,
                ..BmvConfig::default()
            };
            let (y, _) = bmv_forward(&cfg, &l, &x).unwrap();
            let want = int_reference(&l.codes, &x).unwrap();
            let hi = (1i128 << (acc_bits - 1)) - 1;
            // Independent model of the accumulation order: per output, one exact partial sum
            // per input sub-vector (j, β) in loop order, each added with the overflow rule.
            let dense = l.codes.to_dense_with(ShiftCode::int_value);
            let alpha = k / 16;
            for (row, (a, b)) in y.iter().zip(&want).enumerate() {
                let a = i128::from(*a);
                prop_assert!((-hi - 1..=hi).contains(&a));
                let mut acc = 0i64;
                for j in 0..3 {
                    for beta in 0..alpha {
                        let part: i128 = (0..16)
                            .map(|m| j * k + m * alpha + beta)
                            .map(|s| i128::from(dense[[row, s]]) * i128::from(x[s]))
                            .sum();
                        acc = cfg.acc_fit(i128::from(acc) + part);
                    }
                }
                prop_assert_eq!(i128::from(acc), a);
                if !saturate {
                    prop_assert_eq!(i128::from(cfg.acc_fit(*b)), a);
                }
            }
        }

        #[test]
        fn writeback_rounds_like_the_float_reference(
            acc in -(1i64 << 38)..(1i64 << 38), bias in -(1i64 << 20)..(1i64 << 20),
            shift in 0u32..=24, mode in 0usize..5, relu: bool, out_bits in 2u32..=32,
        ) {
            use nacsim_nn::quant::{Rounding, round};
            let rounding = [Rounding::NearestEven, Rounding::NearestAway, Rounding::TowardZero,
                Rounding::Floor, Rounding::Ceil][mode];
            let wb = Writeback { relu, shift, rounding, out_bits };
            let cfg = BmvConfig::default();
            let mut v = (acc + bias) as f64; // |v| < 2^41: exact
            if relu {
                v = v.max(0.0);
            }
            let hi = ((1i64 << (out_bits - 1)) - 1) as f64;
            let want = round(v / f64::from(1u32 << shift), rounding).clamp(-hi - 1.0, hi);
            prop_assert_eq!(f64::from(wb.apply(&cfg, acc, bias)), want);
        }

        #[test]
        fn bsu_equals_multiplication(x in -(1i64 << 31)..(1i64 << 31), shift in 0u8..=30, negative: bool) {
            let c = ShiftCode::Shift { negative, shift };
            prop_assert_eq!(bsu(x, c), x * c.int_value());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        /// The int8 seam's exact product (int8 GEMM for b ≤ 4, the i32 loop above) equals the
        /// shift-add datapath on the same codes, and compiling codes already on the grid
        /// changes nothing.
        #[test]
        fn dense_layer_equals_the_shift_add_datapath(
            rows in 32usize..70, cols in 32usize..70, kexp in 0u32..2, bits in 2u32..=5,
            batch in 1usize..4, seed in any::<u64>(),
        ) {
            let k = 16 << kexp;
            let l = layer(rows, cols, k, bits, Convention::FirstRow, seed);
            let scale = 2f64.powi(l.quantizer.exp_min());
            let w = l.codes.to_dense_with(ShiftCode::int_value).mapv(|v| (v as f64 * scale) as f32);
            let cfg = crate::CirculantConfig {
                arch: crate::ArchConfig::default(),
                block: k,
                pot: PotConfig::new(bits),
                convention: Convention::FirstRow,
            };
            let (dl, s) = DenseLayer::compile(&cfg, w.view()).unwrap();
            prop_assert_eq!(s, scale);
            prop_assert!(dl.relative_change < 1e-6, "{}", dl.relative_change);
            let x = ndarray::Array2::from_shape_fn((batch, cols), |(r, c)| {
                (values(1, seed ^ (r * 1000 + c) as u64)[0] * 127.0) as i8
            });
            let y = dl.run(x.view(), |x, w| x.mapv(i32::from).dot(&w.mapv(i32::from).t()));
            let prepared = PreparedLayer::new(&BmvConfig::default(), &dl.codes).unwrap();
            for r in 0..batch {
                let xr: Vec<i32> = x.row(r).iter().map(|&v| i32::from(v)).collect();
                let (want, _) = prepared.forward(&xr).unwrap();
                let got: Vec<i64> = y.row(r).iter().map(|&v| i64::from(v)).collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}
