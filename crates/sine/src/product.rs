//! Bit-exact product units: `sin a · sin b` (and the exact `a · b` baseline) from adds, absolute
//! values, table reads and wired shifts only (note §1.3, §2.1, §2.5, §2.6).
//!
//! Operand codes `i, j` have value `a = i · 2^-f`, `b = j · 2^-f` rad; a product `P` has value
//! `p = P · 2^-F` (see [`ProductFormat`]). Every unit implements [`SineProduct`]; [`SineUnit`] is
//! the closed enum that selects one, built from a serde [`ProductConfig`].
//!
//! # Why `G[|i+j|] − G[|i−j|]` is `2^F · sin a · sin b`
//!
//! The product-to-sum identity `sin a sin b = [cos(a−b) − cos(a+b)] / 2` (I1), rewritten with the
//! versine `1 − cos θ = 2 sin²(θ/2)`, is
//!
//! ```text
//! sin a sin b = V(a+b) − V(a−b),     V(θ) = sin²(θ/2) = (1 − cos θ) / 2        (I1')
//! ```
//!
//! `V` is even, so `V(θ) = V(|θ|)`, and with `θ = k · 2^-f` its table is
//! `G[k] = round_half_even(2^F · sin²(k · 2^-(f+1)))`. Hence `P = G[|i+j|] − G[|i−j|]` is
//! `2^F · sin a sin b` up to the two entries' rounding (each ≤ ½ LSB, so `|p − sin a sin b| ≤ 2^-F`).
//! The `/2` of I1 is folded into the table, and no integer bit is needed (`0 ≤ V ≤ 1`).
//!
//! Since `V(θ) = θ²/4 − θ⁴/48 + …`, this is the classical quarter-square multiplier
//! `ab = Q(a+b) − Q(a−b)`, `Q(θ) = θ²/4`, with a distorted table: [`QuarterSquareTable`] holds
//! `⌊k²/4⌋` in the same datapath and gives the exact integer product `i · j` (the odd parts of
//! `⌊s²/4⌋` and `⌊d²/4⌋` cancel because `s = i+j` and `d = i−j` have the same parity).
//!
//! # Units
//!
//! | unit | table | `P(i, j)` | accuracy (\|a\|, \|b\| ≤ 0.5) |
//! |---|---|---|---|
//! | [`VersineTable`] (default) | `G[k]`, `K+1` entries, no sign bit | `G[\|i+j\|] − G[\|i−j\|]` | `≤ 2^-F` vs `sin a sin b`; odd, commutative |
//! | [`CosTable`] (paper-literal) | `C[k] = round(2^F cos(k·2^-f))`, needs an integer bit | `(C[\|i−j\|] − C[\|i+j\|]) >> 1` | `≤ 2^-F`; floor breaks odd symmetry |
//! | [`CoarseVersineTable`] | `G_d[m]`, index `\|i ± j\|` rounded to `2^d` | as versine | argument error, up to 300 % relative (§2.4) |
//! | [`QuarterSquareTable`] | `⌊k²/4⌋ · 2^(F−2f)` | `Q[\|i+j\|] − Q[\|i−j\|]` | exactly `a · b` |
//! | [`Cordic`] | none (n arctangent constants) | `(cos\|a−b\| − cos\|a+b\|) / 2` by rotation-mode CORDIC | `≈ 2^-n` |
//! | [`SinCosTable`] (I2 unit) | `S[k] = round(2^F sin(k·2^-f) / 2)`, odd | `S[i+j] + S[i−j]` | `≤ 2^-F` vs `sin a cos b` |

use serde::{Deserialize, Serialize};

pub use crate::config::{ProductConfig, ProductKind};
use crate::error::Error;
use crate::format::{CodeRounding, ProductFormat};

/// Distance from a rounding tie, in units of `f64::EPSILON · max(|v|, 1)` (≈ ulps of the
/// pre-rounding value `v`), below which table generation is refused.
///
/// The note (§2.1) asks for a fixed 1e-6 LSB; that rejects valid tables whose entries are
/// *mathematically* close to a tie, e.g. the cosine table at `F = 2f`, where
/// `2^F cos(2^-f) = 2^F − ½ + 2^-F/24 + …` (6.4e-7 LSB from the tie at f = 8). What matters is
/// whether libm error can move `v` across the tie: glibc's `sin`/`cos` are within 1 ulp, squaring
/// and halving add ≤ 1 ulp, scaling by 2^F is exact, so 8 ulps is a 2–4× margin (see
/// `NOTES.md`).
pub const TIE_MARGIN_ULPS: f64 = 8.0;

/// Operations one product costs in a unit's datapath (timing and energy count these; no energy
/// here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct ProductCost {
    /// Table (ROM) reads per product: 2 for the table units, 0 for CORDIC.
    pub table_reads: u32,
    /// Adder/subtractor operations per product, counting each absolute value (conditional negate)
    /// as one: `a+b`, `a−b`, two `|·|`, one final subtract = 5 for the table units (note §2.6
    /// S1–S4); `6n + 5` for CORDIC (note §2.5's `6n + 1` plus the shared `±` and `|·|` stage).
    pub adds: u32,
}

/// A product unit: `P(i, j)` with value `P · 2^-F` from operand codes with value `i · 2^-f`.
pub trait SineProduct {
    /// The unit's formats.
    fn format(&self) -> &ProductFormat;

    /// `P(i, j)`, bit-exact.
    ///
    /// # Panics
    ///
    /// If `|i + j|` or `|i − j|` is beyond the table, i.e. when `|i| > max_abs_a` or
    /// `|j| > max_abs_b` push the index past `K` (use [`SineProduct::try_product`] to get an error).
    fn product(&self, i: i32, j: i32) -> i64;

    /// Operations per product.
    fn cost(&self) -> ProductCost;

    /// `P(i, j)`, or an error if an index falls outside the table.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] with the index and the table's last index.
    fn try_product(&self, i: i32, j: i32) -> Result<i64, Error> {
        let k_max = self.format().k_max();
        let idx = (i as i64).abs() + (j as i64).abs();
        if idx > k_max as i64 {
            return Err(Error::OutOfRange {
                unit: "product",
                index: idx,
                max_index: k_max,
            });
        }
        Ok(self.product(i, j))
    }

    /// `Σ_k P(a_k, b_k)`, the MAC of note §2.1 (`acc += P`), in `i64` (no overflow for ≤ 2^28
    /// terms at `F ≤ 32`).
    ///
    /// # Panics
    ///
    /// If the slices differ in length, or as [`SineProduct::product`].
    fn dot(&self, a: &[i32], b: &[i32]) -> i64 {
        assert_eq!(a.len(), b.len(), "dot: operand lengths differ");
        a.iter().zip(b).map(|(&i, &j)| self.product(i, j)).sum()
    }
}

/// Generates `round_half_even(2^F · value(k))` for `k = 0..entries`, refusing near-ties.
fn gen_table(
    name: &'static str,
    entries: u32,
    scale_bits: u32,
    value: impl Fn(f64) -> f64,
) -> Result<Vec<i64>, Error> {
    let scale = (scale_bits as f64).exp2();
    (0..entries)
        .map(|k| {
            let v = value(k as f64) * scale;
            let frac = v - v.floor();
            if (frac - 0.5).abs() < TIE_MARGIN_ULPS * f64::EPSILON * v.abs().max(1.0) {
                return Err(Error::AmbiguousRounding {
                    table: name,
                    index: k,
                    value: v,
                });
            }
            Ok(v.round_ties_even() as i64)
        })
        .collect()
}

/// Bit width of the largest magnitude in `t` (0 for an all-zero table).
fn width(t: &[i64]) -> u32 {
    t.iter()
        .map(|v| u64::BITS - v.unsigned_abs().leading_zeros())
        .max()
        .unwrap_or(0)
}

/// The canonical versine-table unit (note §2.1): `G[k] = round_half_even(2^F · sin²(k · 2^-(f+1)))`,
/// `k = 0..=K`, `K = max_abs_a + max_abs_b`, and `P(i, j) = G[|i+j|] − G[|i−j|]`.
///
/// Contracts (note §2.3, §5.2; tested exhaustively for f ≤ 8): `|P·2^-F − sin a sin b| ≤ 2^-F`
/// (observed 0.912–0.999 LSB, §2.2); `P(i,j) = P(j,i) = −P(−i,j) = −P(i,−j)`; `P(i,0) = 0`;
/// sign-correct while `|i| + |j| ≤ π·2^f`; with `F = 2f`, `P = i·j` exactly while
/// `|i| + |j| ≤ K0(f)` ([`VersineTable::exactness_window`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersineTable {
    format: ProductFormat,
    g: Vec<i64>,
}

impl VersineTable {
    /// Builds the table for `format`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the format is invalid; [`Error::AmbiguousRounding`] if an entry is
    /// within [`TIE_MARGIN_ULPS`] of a tie.
    pub fn new(format: ProductFormat) -> Result<Self, Error> {
        format.validate()?;
        let q = (-(format.frac_bits as f64 + 1.0)).exp2();
        let g = gen_table("versine", format.entries(), format.out_frac_bits, |k| {
            (k * q).sin().powi(2)
        })?;
        Ok(VersineTable { format, g })
    }

    /// The entries `G[0..=K]`.
    pub fn entries(&self) -> &[i64] {
        &self.g
    }

    /// Bits needed for the largest entry (unsigned; note §2.2 "max G (width)": 14 b at f = 8,
    /// F = 16).
    pub fn width_bits(&self) -> u32 {
        width(&self.g)
    }

    /// With `F = 2f`: the largest `K0` with `G[k] = ⌊k²/4⌋` for every `k ≤ K0`, so that
    /// `P(i, j) = i·j` exactly while `|i| + |j| ≤ K0` (note §2.2: 17, 25, 35, 71, 141 for
    /// f = 6, 7, 8, 10, 12). `None` when `F ≠ 2f`.
    pub fn exactness_window(&self) -> Option<u32> {
        if self.format.out_frac_bits != 2 * self.format.frac_bits {
            return None;
        }
        let first_bad = (0..self.g.len()).find(|&k| self.g[k] != ((k * k) >> 2) as i64);
        Some(match first_bad {
            Some(k) => k as u32 - 1,
            None => self.format.k_max(),
        })
    }
}

impl SineProduct for VersineTable {
    fn format(&self) -> &ProductFormat {
        &self.format
    }

    #[inline]
    fn product(&self, i: i32, j: i32) -> i64 {
        self.g[(i + j).unsigned_abs() as usize] - self.g[(i - j).unsigned_abs() as usize]
    }

    fn cost(&self) -> ProductCost {
        ProductCost {
            table_reads: 2,
            adds: 5,
        }
    }
}

/// The paper-literal cosine-table form (note §2.1 "Equivalent"): `C[k] = round_half_even(2^F ·
/// cos(k · 2^-f))` and `P = (C[|i−j|] − C[|i+j|]) >> 1` (arithmetic shift, floor).
///
/// Same accuracy as [`VersineTable`] (max 0.997 LSB vs `sin a sin b` at f = 8, F = 17), but
/// `C[0] = 2^F` needs an integer bit and the floor shift breaks odd symmetry: `P(−i, j) ≠ −P(i, j)`
/// in 31 640 of 66 049 pairs at f = 8, F = 17; `|P(−i,j) + P(i,j)| ≤ 1` always (note §5.2 item 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosTable {
    format: ProductFormat,
    c: Vec<i64>,
}

impl CosTable {
    /// Builds the table for `format`.
    ///
    /// # Errors
    ///
    /// As [`VersineTable::new`].
    pub fn new(format: ProductFormat) -> Result<Self, Error> {
        format.validate()?;
        // round(2^F cos θ) = 2^F − round(2^(F+1) sin²(θ/2)) (2^F is even, and half-even rounding
        // commutes with negation), computed on the small versine: at θ = 2^-f and F = 2f the
        // cosine form sits 2^-F/24 above a tie, below f64 resolution of 2^F cos θ for f ≥ 12.
        let q = (-(format.frac_bits as f64 + 1.0)).exp2();
        let one = 1i64 << format.out_frac_bits;
        let c = gen_table("cos", format.entries(), format.out_frac_bits + 1, |k| {
            (k * q).sin().powi(2)
        })?
        .into_iter()
        .map(|v| one - v)
        .collect();
        Ok(CosTable { format, c })
    }

    /// The entries `C[0..=K]`.
    pub fn entries(&self) -> &[i64] {
        &self.c
    }

    /// Bits of the largest magnitude (`F + 1`: `C[0] = 2^F`), plus one sign bit when stored
    /// signed (entries go negative once `k · 2^-f > π/2`).
    pub fn width_bits(&self) -> u32 {
        width(&self.c)
    }
}

impl SineProduct for CosTable {
    fn format(&self) -> &ProductFormat {
        &self.format
    }

    #[inline]
    fn product(&self, i: i32, j: i32) -> i64 {
        (self.c[(i - j).unsigned_abs() as usize] - self.c[(i + j).unsigned_abs() as usize]) >> 1
    }

    fn cost(&self) -> ProductCost {
        ProductCost {
            table_reads: 2,
            adds: 5,
        }
    }
}

/// A versine table with a coarsened index (note §2.4): `d` low bits of `|i ± j|` are dropped
/// (rounded half up), `G_d[m] = round_half_even(2^F · sin²(m · 2^d · 2^-(f+1)))`,
/// `P = G_d[(|i+j| + h) >> d] − G_d[(|i−j| + h) >> d]` with `h = 2^(d−1)` (0 for d = 0).
///
/// A design-space option the note advises *against*: the argument error is absolute, so the
/// relative error explodes for small operands (f = 10, F = 24, |a|, |b| ≤ 0.5: max
/// `|p − sin a sin b|` 4.10e-4 at d = 1 … 1.45e-2 at d = 6; relative 5.89 % … 299.9 % for
/// `|a|, |b| ≥ 1/64`). `d = 0` is [`VersineTable`]. Commutative and odd like the full table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoarseVersineTable {
    format: ProductFormat,
    drop_bits: u32,
    g: Vec<i64>,
}

impl CoarseVersineTable {
    /// Largest accepted `drop_bits`.
    pub const MAX_DROP_BITS: u32 = 16;

    /// Builds the table for `format` with `drop_bits = d` index bits dropped.
    ///
    /// # Errors
    ///
    /// As [`VersineTable::new`], and [`Error::Config`] if `drop_bits > 16`.
    pub fn new(format: ProductFormat, drop_bits: u32) -> Result<Self, Error> {
        format.validate()?;
        if drop_bits > Self::MAX_DROP_BITS {
            return Err(Error::config(
                "kind.drop_bits",
                drop_bits,
                format!("must be at most {}", Self::MAX_DROP_BITS),
            ));
        }
        let entries = Self::index(format.k_max(), drop_bits) + 1;
        let q = (drop_bits as f64 - format.frac_bits as f64 - 1.0).exp2();
        let g = gen_table("versine", entries, format.out_frac_bits, |m| {
            (m * q).sin().powi(2)
        })?;
        Ok(CoarseVersineTable {
            format,
            drop_bits,
            g,
        })
    }

    #[inline]
    fn index(k: u32, d: u32) -> u32 {
        (k + ((1u32 << d) >> 1)) >> d
    }

    /// Index bits dropped, `d`.
    pub fn drop_bits(&self) -> u32 {
        self.drop_bits
    }

    /// The entries `G_d[0..]` (`((K + h) >> d) + 1` of them).
    pub fn entries(&self) -> &[i64] {
        &self.g
    }
}

impl SineProduct for CoarseVersineTable {
    fn format(&self) -> &ProductFormat {
        &self.format
    }

    #[inline]
    fn product(&self, i: i32, j: i32) -> i64 {
        let d = self.drop_bits;
        self.g[Self::index((i + j).unsigned_abs(), d) as usize]
            - self.g[Self::index((i - j).unsigned_abs(), d) as usize]
    }

    /// As [`VersineTable`]: the rounding add is folded into the `|·|` incrementer, the shift is
    /// wired.
    fn cost(&self) -> ProductCost {
        ProductCost {
            table_reads: 2,
            adds: 5,
        }
    }
}

/// The exact baseline (note §1.3): the same datapath with the quarter-square table
/// `Q[k] = ⌊k²/4⌋ · 2^(F−2f)`, giving `P = i · j · 2^(F−2f)`, i.e. `p = a · b` exactly.
///
/// Needs `F ≥ 2f` (otherwise the product is not representable); entries reach
/// `⌊K²/4⌋ · 2^(F−2f)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarterSquareTable {
    format: ProductFormat,
    q: Vec<i64>,
}

impl QuarterSquareTable {
    /// Builds the table for `format`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the format is invalid or `out_frac_bits < 2 · frac_bits`.
    pub fn new(format: ProductFormat) -> Result<Self, Error> {
        format.validate()?;
        if format.out_frac_bits < 2 * format.frac_bits {
            return Err(Error::config(
                "format.out_frac_bits",
                format.out_frac_bits,
                format!(
                    "the exact quarter-square unit needs at least 2 · frac_bits = {}",
                    2 * format.frac_bits
                ),
            ));
        }
        let s = format.out_frac_bits - 2 * format.frac_bits;
        let q = (0..format.entries() as i64)
            .map(|k| ((k * k) >> 2) << s)
            .collect();
        Ok(QuarterSquareTable { format, q })
    }

    /// The entries `Q[0..=K]`.
    pub fn entries(&self) -> &[i64] {
        &self.q
    }

    /// Bits of the largest entry.
    pub fn width_bits(&self) -> u32 {
        width(&self.q)
    }
}

impl SineProduct for QuarterSquareTable {
    fn format(&self) -> &ProductFormat {
        &self.format
    }

    #[inline]
    fn product(&self, i: i32, j: i32) -> i64 {
        self.q[(i + j).unsigned_abs() as usize] - self.q[(i - j).unsigned_abs() as usize]
    }

    fn cost(&self) -> ProductCost {
        ProductCost {
            table_reads: 2,
            adds: 5,
        }
    }
}

/// Default CORDIC guard bits below the product LSB (internal width `W = F + guard`). With 8 guard
/// bits and `n ≤ 32` iterations the accumulated truncation stays below `2^-F / 4`.
pub const DEFAULT_CORDIC_GUARD_BITS: u32 = 8;

/// Largest internal CORDIC fraction width `W = F + guard` (keeps `x, y ≤ 2 · 2^W` in `i64`).
pub const MAX_CORDIC_WIDTH: u32 = 60;

/// Angle covered by `n` CORDIC iterations, `Σ_{i<n} atan 2^-i` rad (→ 1.743 rad, note §2.5).
pub fn cordic_coverage(iterations: u32) -> f64 {
    (0..iterations).map(|i| (-(i as f64)).exp2().atan()).sum()
}

/// CORDIC gain compensation `K_n = Π_{i<n} (1 + 2^-2i)^-½` (note §2.5).
pub fn cordic_gain(iterations: u32) -> f64 {
    (0..iterations)
        .map(|i| 1.0 / (1.0 + (-2.0 * i as f64).exp2()).sqrt())
        .product()
}

/// The table-free option (note §1.4, §2.5): `P = (cos|a−b| − cos|a+b|) / 2` with each cosine
/// from `n` rotation-mode CORDIC iterations in `W = F + guard` fraction bits.
///
/// Datapath: `x0 = round(K_n · 2^W)`, `y0 = 0`, `z0 = |θ| · 2^(W−f)`; iteration `i`:
/// `d = +1 if z ≥ 0 else −1`, `x −= d·(y >> i)`, `y += d·(x >> i)`, `z −= d·round(atan 2^-i · 2^W)`
/// (arithmetic shifts, i.e. floor). `cos θ ≈ x_n`; `P = (x_n(|a−b|) − x_n(|a+b|)) · 2^-(guard+1)`
/// rounded half up. Feeding `|θ|` (the S2 stage of note §2.6) keeps `P` commutative.
///
/// Error (tested): `|p − sin a sin b| ≤ 2^-(n−1) + 2^-F` for `|a|, |b| ≤ 0.5`; the `2^-(n−1)`
/// term is note §5.2 item 13 (real arithmetic), the `2^-F` the datapath rounding. Costs
/// `6n + 5` adds and no table reads per product (no multiplier; CORDIC-for-cos is dearer than a
/// shift-add multiplier, note §1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cordic {
    format: ProductFormat,
    iterations: u32,
    guard_bits: u32,
    x0: i64,
    atan: Vec<i64>,
}

impl Cordic {
    /// Builds an `iterations`-stage CORDIC unit with `guard_bits` below the product LSB.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the format is invalid, `iterations` is 0, `F + guard_bits > 60`, or
    /// `n` iterations do not cover `|a ± b| ≤ (max_abs_a + max_abs_b) · 2^-f` (the message names
    /// the minimum `n`).
    pub fn new(format: ProductFormat, iterations: u32, guard_bits: u32) -> Result<Self, Error> {
        format.validate()?;
        if iterations == 0 {
            return Err(Error::config(
                "kind.iterations",
                iterations,
                "must be at least 1",
            ));
        }
        let w = format.out_frac_bits + guard_bits;
        if w > MAX_CORDIC_WIDTH {
            return Err(Error::config(
                "kind.guard_bits",
                guard_bits,
                format!(
                    "out_frac_bits + guard_bits must be at most {MAX_CORDIC_WIDTH}, so at most {}",
                    MAX_CORDIC_WIDTH.saturating_sub(format.out_frac_bits)
                ),
            ));
        }
        let theta_max = format.k_max() as f64 * format.operand_lsb();
        if cordic_coverage(iterations) < theta_max {
            let need = (1..=64).find(|&n| cordic_coverage(n) >= theta_max);
            let rule = match need {
                Some(n) => format!(
                    "covers |a±b| ≤ {:.4} rad but operands reach {theta_max:.4} rad; needs at least {n}",
                    cordic_coverage(iterations)
                ),
                None => format!(
                    "CORDIC covers at most 1.7433 rad but operands reach {theta_max:.4} rad; lower max_abs_a + max_abs_b"
                ),
            };
            return Err(Error::config("kind.iterations", iterations, rule));
        }
        let scale = (w as f64).exp2();
        let x0 = (cordic_gain(iterations) * scale).round_ties_even() as i64;
        let atan = (0..iterations.min(63))
            .map(|i| ((-(i as f64)).exp2().atan() * scale).round_ties_even() as i64)
            .collect();
        Ok(Cordic {
            format,
            iterations,
            guard_bits,
            x0,
            atan,
        })
    }

    /// Number of iterations `n`.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Guard bits below the product LSB.
    pub fn guard_bits(&self) -> u32 {
        self.guard_bits
    }

    /// `cos(k · 2^-f)` for `k ≥ 0` as an integer at `W = F + guard` fraction bits.
    pub fn cos_code(&self, k: u32) -> i64 {
        let w = self.format.out_frac_bits + self.guard_bits;
        let (mut x, mut y) = (self.x0, 0i64);
        let mut z = (k as i64) << (w - self.format.frac_bits);
        for (i, &a) in self.atan.iter().enumerate() {
            let (dx, dy) = (y >> i, x >> i);
            if z >= 0 {
                x -= dx;
                y += dy;
                z -= a;
            } else {
                x += dx;
                y -= dy;
                z += a;
            }
        }
        x
    }
}

impl SineProduct for Cordic {
    fn format(&self) -> &ProductFormat {
        &self.format
    }

    fn product(&self, i: i32, j: i32) -> i64 {
        let k_max = self.format.k_max();
        let (s, d) = ((i + j).unsigned_abs(), (i - j).unsigned_abs());
        assert!(s <= k_max && d <= k_max, "cordic: |i±j| beyond {k_max}");
        CodeRounding::HalfUp.shift_right(self.cos_code(d) - self.cos_code(s), self.guard_bits + 1)
    }

    fn cost(&self) -> ProductCost {
        ProductCost {
            table_reads: 0,
            adds: 6 * self.iterations + 5,
        }
    }
}

/// The signed-odd table unit for `sin a · cos b` (identity I2, local gradient `e · φ'(z)`,
/// note §2.6): `S[k] = round_half_even(2^F · sin(k · 2^-f) / 2)` stored for `k = 0..=K`,
/// `S[−k] = −S[k]`, and `P = S[i+j] + S[i−j]`.
///
/// `sin(a+b) + sin(a−b) = 2 sin a cos b`, so `|P·2^-F − sin a cos b| ≤ 2^-F` (two ½-LSB entries).
/// Odd in `i` (`P(−i,j) = −P(i,j)`), even in `j`, zero at `i = 0`. The table is signed (one sign
/// bit beyond [`SinCosTable::width_bits`] if stored as signed values; the mirror is a conditional
/// negate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinCosTable {
    format: ProductFormat,
    s: Vec<i64>,
}

impl SinCosTable {
    /// Builds the table for `format` (`max_abs_a` bounds the error operand, `max_abs_b` the
    /// angle).
    ///
    /// # Errors
    ///
    /// As [`VersineTable::new`].
    pub fn new(format: ProductFormat) -> Result<Self, Error> {
        format.validate()?;
        let q = (-(format.frac_bits as f64)).exp2();
        let s = gen_table("sin", format.entries(), format.out_frac_bits, |k| {
            (k * q).sin() / 2.0
        })?;
        Ok(SinCosTable { format, s })
    }

    /// The unit's formats.
    pub fn format(&self) -> &ProductFormat {
        &self.format
    }

    /// The stored entries `S[0..=K]` (magnitudes side; `S[−k] = −S[k]`).
    pub fn entries(&self) -> &[i64] {
        &self.s
    }

    /// Bits of the largest magnitude.
    pub fn width_bits(&self) -> u32 {
        width(&self.s)
    }

    #[inline]
    fn odd(&self, k: i32) -> i64 {
        let v = self.s[k.unsigned_abs() as usize];
        if k < 0 { -v } else { v }
    }

    /// `P(i, j)` with value `P · 2^-F ≈ sin(i·2^-f) · cos(j·2^-f)`.
    ///
    /// # Panics
    ///
    /// If `|i ± j|` is beyond the table.
    #[inline]
    pub fn product(&self, i: i32, j: i32) -> i64 {
        self.odd(i + j) + self.odd(i - j)
    }

    /// Operations per product: two reads, `i+j`, `i−j`, two conditional negates, one add.
    pub fn cost(&self) -> ProductCost {
        ProductCost {
            table_reads: 2,
            adds: 5,
        }
    }
}

impl ProductConfig {
    /// Builds the unit.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the field and the limit (e.g. `sine.format.out_frac_bits = 6: must be
    /// at least frac_bits = 8`, `sine.kind.iterations = 0: must be at least 1`), or
    /// [`Error::AmbiguousRounding`].
    pub fn build(&self) -> Result<SineUnit, Error> {
        Ok(match self.kind {
            ProductKind::Versine => SineUnit::Versine(VersineTable::new(self.format)?),
            ProductKind::CosLiteral => SineUnit::CosLiteral(CosTable::new(self.format)?),
            ProductKind::QuarterSquare => {
                SineUnit::QuarterSquare(QuarterSquareTable::new(self.format)?)
            }
            ProductKind::CoarseVersine { drop_bits } => {
                SineUnit::CoarseVersine(CoarseVersineTable::new(self.format, drop_bits)?)
            }
            ProductKind::Cordic {
                iterations,
                guard_bits,
            } => SineUnit::Cordic(Cordic::new(self.format, iterations, guard_bits)?),
        })
    }
}

/// The closed set of product units (docs/style.md §2.2: a choice is an enum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SineUnit {
    /// Versine table, `≈ sin a sin b`.
    Versine(VersineTable),
    /// Paper-literal cosine table, `≈ sin a sin b`.
    CosLiteral(CosTable),
    /// Quarter-square table, `= a b`.
    QuarterSquare(QuarterSquareTable),
    /// Versine table with a coarsened index, `≈ sin a sin b` with argument error.
    CoarseVersine(CoarseVersineTable),
    /// Rotation-mode CORDIC, `≈ sin a sin b`.
    Cordic(Cordic),
}

impl SineProduct for SineUnit {
    fn format(&self) -> &ProductFormat {
        match self {
            SineUnit::Versine(u) => u.format(),
            SineUnit::CosLiteral(u) => u.format(),
            SineUnit::QuarterSquare(u) => u.format(),
            SineUnit::CoarseVersine(u) => u.format(),
            SineUnit::Cordic(u) => u.format(),
        }
    }

    #[inline]
    fn product(&self, i: i32, j: i32) -> i64 {
        match self {
            SineUnit::Versine(u) => u.product(i, j),
            SineUnit::CosLiteral(u) => u.product(i, j),
            SineUnit::QuarterSquare(u) => u.product(i, j),
            SineUnit::CoarseVersine(u) => u.product(i, j),
            SineUnit::Cordic(u) => u.product(i, j),
        }
    }

    fn cost(&self) -> ProductCost {
        match self {
            SineUnit::Versine(u) => u.cost(),
            SineUnit::CosLiteral(u) => u.cost(),
            SineUnit::QuarterSquare(u) => u.cost(),
            SineUnit::CoarseVersine(u) => u.cost(),
            SineUnit::Cordic(u) => u.cost(),
        }
    }
}

/// The weight update of note §1.2 / §5.2 item 12 with learning rate `η = 2^-shift`:
/// `Δw = −(P(δ, z) >> shift)` (arithmetic shift, floor), at the product's `F` fraction bits.
pub fn weight_update<U: SineProduct + ?Sized>(unit: &U, delta: i32, z: i32, shift: u32) -> i64 {
    -(unit.product(delta, z) >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configs_name_field_and_minimum() {
        let fmt = ProductFormat::half_range(8, 16);
        let e = Cordic::new(fmt, 0, 8).unwrap_err();
        assert_eq!(
            e.to_string(),
            "sine.kind.iterations = 0: must be at least 1"
        );
        let e = Cordic::new(fmt, 1, 8).unwrap_err().to_string();
        assert!(e.contains("needs at least 2"), "{e}");
        let e = QuarterSquareTable::new(ProductFormat::half_range(8, 12))
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 2 · frac_bits = 16"), "{e}");
        let e = VersineTable::new(fmt).unwrap();
        assert!(matches!(
            e.try_product(200, 100),
            Err(Error::OutOfRange {
                index: 300,
                max_index: 256,
                ..
            })
        ));
    }
}
