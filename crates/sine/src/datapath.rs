//! The built sine MAC datapath ([`Datapath`]: product unit, lanes, issue width, pipeline
//! depth) and a Dense layer compiled for it at the int8 seam ([`DenseLayer`]): weight angle
//! codes, the input-code → angle table, the product-sum loop and its cycle-stepped twin.
//!
//! # The int8 seam
//!
//! A scheduler that carries int8 activation codes between layers (every engine but the native
//! [`SineNetwork`](crate::SineNetwork) path) hands this datapath int8 codes `c` at scale `s`.
//! [`DenseLayer::compile`] turns them into angle codes by a 256-entry table
//! (`asin(clamp(c·s, 0, 1))` quantized at `f` bits, the same table as the `Arcsin` pixel
//! encoding, no multiplier) and the stored sines `sin(W)` into weight angle codes
//! `asin(w)·2^f`; [`DenseLayer::run`] sums the products `P(w, a)` at `2^-F` in `i64` and
//! shifts them right (floor) by `acc_shift` so they fit the scheduler's 32-bit accumulator.

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::config::{DatapathConfig, SineNetworkConfig};
use crate::error::Error;
use crate::product::{ProductCost, SineProduct, SineUnit};
use crate::timing::{TABLE_PIPELINE_STAGES, TimingReport};

/// A built datapath (see [`DatapathConfig`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datapath {
    /// The product unit.
    pub unit: SineUnit,
    /// Lanes `L`.
    pub lanes: u32,
    /// Products issued per cycle, `E = min(L, ⌊ports / 2⌋)` (`L` for CORDIC).
    pub issue_width: u32,
    /// Pipeline depth `D` in stages (cycles from operand read to accumulate, inclusive).
    pub depth: u32,
}

impl Datapath {
    /// Operations per product.
    pub fn cost(&self) -> ProductCost {
        self.unit.cost()
    }
}

impl DatapathConfig {
    /// Builds the datapath.
    ///
    /// # Errors
    ///
    /// [`Error::Config`]: `sine.lanes = 0: must be at least 1`; for table units
    /// `sine.rom.ports_per_copy` with the product `ports_per_copy × copies` below 2 (each product
    /// reads the table twice in one cycle); and every error of [`ProductConfig::build`](crate::ProductConfig::build).
    pub fn build(&self) -> Result<Datapath, Error> {
        if self.lanes == 0 {
            return Err(Error::config("lanes", 0, "must be at least 1"));
        }
        let unit = self.product.build().map_err(|e| match e {
            Error::Config { field, value, rule } => Error::Config {
                field: field.replacen("sine.", "sine.product.", 1),
                value,
                rule,
            },
            other => other,
        })?;
        let reads = unit.cost().table_reads;
        if reads > 0 && self.rom.ports() < reads {
            return Err(Error::config(
                "rom.ports_per_copy",
                self.rom.ports_per_copy,
                format!(
                    "ports_per_copy × copies = {} but each product reads the table {reads} times \
                     in one cycle; needs at least {reads}",
                    self.rom.ports()
                ),
            ));
        }
        let issue_width = self
            .rom
            .ports()
            .checked_div(reads)
            .map_or(self.lanes, |e| self.lanes.min(e));
        let depth = match &unit {
            SineUnit::Cordic(c) => c.iterations() + 5,
            _ => TABLE_PIPELINE_STAGES,
        };
        Ok(Datapath {
            unit,
            lanes: self.lanes,
            issue_width,
            depth,
        })
    }
}

/// A Dense layer compiled for the sine datapath at the int8 seam (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DenseLayer {
    /// Weight angle codes `[out, fan_in]` at `f` fraction bits (`asin` of the stored sines).
    pub weight: Array2<i32>,
    /// Angle code of each int8 input code (index `code + 128`).
    pub input_angle: Vec<i32>,
    /// Right shift (floor) from the datapath's accumulator to a 32-bit accumulator: 0 unless
    /// `F + ⌈log2 fan_in⌉ + 1 > 32` (`|sin a sin b| ≤ 1`).
    pub acc_shift: u32,
}

impl DenseLayer {
    /// Compiles the stored sines `weight` `[out, fan_in]` of layer `name`, whose int8 inputs
    /// have scale `in_scale`. Returns the layer and the real value of one accumulator LSB
    /// divided by `in_scale`, `2^(acc_shift − F) / in_scale` (the weight scale of the
    /// scheduler's epilogue).
    ///
    /// # Errors
    /// [`Error::Unsupported`] naming the first weight that is not a sine (`|w| > 1`) or whose
    /// angle exceeds `numerics.weight_max_rad`.
    pub fn compile(
        numerics: &SineNetworkConfig,
        name: &str,
        weight: ArrayView2<f32>,
        in_scale: f32,
    ) -> Result<(Self, f64), Error> {
        let n = numerics;
        let fmt = n.format();
        let f = n.frac_bits;
        let unsupported = |reason: String| Error::Unsupported {
            layer: name.to_string(),
            reason,
        };
        let mut codes = Array2::<i32>::zeros(weight.dim());
        for ((o, k), &w) in weight.indexed_iter() {
            if !(-1.0..=1.0).contains(&w) {
                return Err(unsupported(format!(
                    "weight [{o}, {k}] = {w} is not a sine (|w| > 1): the sine engine runs models trained with `kernel: Sine(...)`, which saves sin(W)"
                )));
            }
            let a = f64::from(w).asin();
            if a.abs() > n.weight_max_rad {
                return Err(unsupported(format!(
                    "weight angle {a:.6} rad exceeds numerics.weight_max_rad = {}; raise it to at least {:.6}",
                    n.weight_max_rad,
                    a.abs()
                )));
            }
            codes[[o, k]] = crate::quantize(a, f, fmt.max_abs_a, n.rounding);
        }
        let s = f64::from(in_scale);
        let input_angle = (-128i32..128)
            .map(|c| {
                let x = (f64::from(c) * s).clamp(0.0, 1.0);
                crate::quantize(x.asin(), f, fmt.max_abs_b, n.rounding)
            })
            .collect();
        let fan_in = weight.ncols().max(1);
        let need = n.out_frac_bits + fan_in.next_power_of_two().trailing_zeros() + 1;
        let acc_shift = need.saturating_sub(32);
        let w_scale = (f64::from(acc_shift) - f64::from(n.out_frac_bits)).exp2() / s;
        Ok((
            DenseLayer {
                weight: codes,
                input_angle,
                acc_shift,
            },
            w_scale,
        ))
    }

    /// The angle codes of one row of int8 input codes.
    fn angles(&self, xr: impl IntoIterator<Item = i8>) -> Vec<i32> {
        xr.into_iter()
            .map(|v| self.input_angle[(i32::from(v) + 128) as usize])
            .collect()
    }

    /// `y [rows, out]`: every dot product `Σ_k P(w_ok, a(x_rk))` on `unit`, shifted right by
    /// `acc_shift` and saturated to `i32`. Rows run in parallel; each is independent.
    pub fn run(&self, unit: &SineUnit, x: ArrayView2<i8>) -> Array2<i32> {
        let mut y = Array2::<i32>::zeros((x.nrows(), self.weight.nrows()));
        y.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(x.axis_iter(Axis(0)).into_par_iter())
            .for_each(|(mut yr, xr)| {
                let a = self.angles(xr.iter().copied());
                for (o, wr) in self.weight.axis_iter(Axis(0)).enumerate() {
                    let acc: i64 = wr.iter().zip(&a).map(|(&w, &j)| unit.product(w, j)).sum();
                    yr[o] = to_i32(acc >> self.acc_shift);
                }
            });
        y
    }

    /// [`run`](Self::run) on the cycle-stepped datapath ([`run_stepped`](crate::run_stepped)):
    /// one dot product per (row, output), in the order the datapath issues them. Same outputs,
    /// plus the job's cycles and counters.
    pub fn run_stepped(&self, dp: &Datapath, x: ArrayView2<i8>) -> (Array2<i32>, TimingReport) {
        let out = self.weight.nrows();
        let mut a = Vec::with_capacity(x.nrows() * out);
        let mut b = Vec::with_capacity(x.nrows() * out);
        for xr in x.axis_iter(Axis(0)) {
            let angles = self.angles(xr.iter().copied());
            for wr in self.weight.axis_iter(Axis(0)) {
                a.push(wr.to_vec());
                b.push(angles.clone());
            }
        }
        let (sums, t) = crate::stepped::run_stepped(dp, &a, &b);
        let y = Array2::from_shape_fn((x.nrows(), out), |(r, o)| {
            to_i32(sums[r * out + o] >> self.acc_shift)
        });
        (y, t)
    }

    /// Bits of the stored weight codes: signed angle codes up to `max_abs_a`, `f + 2` bits each
    /// (weights `|w| < 2` rad).
    pub fn storage_bits(numerics: &SineNetworkConfig, weights: usize) -> u64 {
        weights as u64 * u64::from(numerics.frac_bits + 2)
    }
}

/// `v` in `i32` (the shift makes it fit; saturating all the same).
fn to_i32(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProductKind;

    fn numerics() -> SineNetworkConfig {
        SineNetworkConfig::versine(8, 16, 1.0)
    }

    #[test]
    fn dense_layer_runs_equal_stepped_and_names_bad_weights() {
        let n = numerics();
        let w = Array2::from_shape_fn((5, 300), |(o, k)| {
            ((o * 7 + k * 3) % 13) as f32 / 16.0 - 0.4
        });
        let (layer, w_scale) = DenseLayer::compile(&n, "fc1", w.view(), 1.0 / 127.0).unwrap();
        // 16 + ⌈log2 300⌉ + 1 = 26 bits: no shift; one LSB is 2^-16 per input step 1/127.
        assert_eq!(layer.acc_shift, 0);
        assert_eq!(w_scale, 2f64.powi(-16) / f64::from(1.0f32 / 127.0));
        assert_eq!(layer.input_angle[128], 0); // code 0 → angle 0
        assert_eq!(layer.input_angle[0], 0); // negative codes clamp to 0
        let dp = DatapathConfig {
            product: crate::ProductConfig {
                format: n.format(),
                kind: ProductKind::Versine,
            },
            lanes: 4,
            rom: crate::RomConfig::default(),
        }
        .build()
        .unwrap();
        let x = Array2::from_shape_fn((3, 300), |(r, k)| ((r * 31 + k * 17) % 255) as u8 as i8);
        let y = layer.run(&dp.unit, x.view());
        let (ys, t) = layer.run_stepped(&dp, x.view());
        assert_eq!(y, ys);
        assert_eq!(t, crate::timing::dense_layer(&dp, 3, 300, 5));
        assert!(y.iter().any(|&v| v != 0));
        assert_eq!(DenseLayer::storage_bits(&n, 1500), 1500 * 10);

        let bad = Array2::from_elem((1, 2), 1.5f32);
        let e = DenseLayer::compile(&n, "fc1", bad.view(), 1.0).unwrap_err();
        assert!(
            e.to_string().contains("weight [0, 0] = 1.5 is not a sine"),
            "{e}"
        );
        let far = Array2::from_elem((1, 2), 0.9f32); // asin 0.9 ≈ 1.12 rad > 1.0
        let e = DenseLayer::compile(&n, "fc1", far.view(), 1.0).unwrap_err();
        assert!(
            e.to_string()
                .contains("exceeds numerics.weight_max_rad = 1"),
            "{e}"
        );
    }
}
