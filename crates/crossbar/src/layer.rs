//! A weight matrix programmed onto crossbar tiles, and its fast functional model (datapath).
//!
//! # Programming (static effects, drawn once per `(seed, layer, trial)`)
//!
//! 1. The ideal mapping ([`reference`](crate::reference)) gives each weight an integer code `q`
//!    and each device its target conductance.
//! 2. Every device (index `(o·K + k)·devices_per_weight + d`; reference-column devices after
//!    them at `ct·K + k`) is perturbed, each effect skipped when its knob is 0 so that a zero knob
//!    is bit-identical to no knob:
//!    programming voltage `G = g_off + (G − g_off)(1 + s·ε)` (`ProgrammingVoltage`, per device or
//!    per row driver `ct·K + k`) → programming error `G += σ_p(g_on − g_off)ξ` (`ProgrammingError`)
//!    → d2d `G(1 + σξ)` or `G·e^{σξ}` (`DeviceToDevice`), clamped at 0 S → stuck-at ON/OFF
//!    (`StuckAt`, one uniform per device) → drift `G·(t/t0)^−ν`, `ν ~ N(ν̄, σ_ν)` clamped at 0
//!    (`Drift`).
//! 3. With IR drop on, every physical tile is solved once at full-scale input and its devices
//!    replaced by their effective conductances ([`irdrop`]).
//! 4. The effective weight of each crosspoint in *unit currents per input digit* is
//!    `q + (deviation of the effective weight)/unit` — exactly `q` when nothing deviates.
//!
//! # Read (`run`)
//!
//! For every input slice and row tile: column sums `Σ_k g_eff[k, o]·digit_k` (an f32 matrix
//! product, f64 when an exact sum could exceed 2^24) → read noise → TIA rails → ADC → shift and
//! add. Read noise: every device read as `G(1 + σξ)` makes the column sum Gaussian with
//! variance `σ²·Σ_k digit_k²·Σ_d (∂g_eff/∂G_d·G_d)²`, so one draw per column and read is exact
//! in distribution. The draws of one read are `W` consecutive ziggurat normals (`W` = outputs,
//! plus one per column tile for the shared reference column, whose noise is common to the
//! tile's columns) from counter `(row·S + slice)·T_r + row_tile` (counter `row` for
//! [`ReadNoiseModel::OutputReferred`]) of the `ReadNoise` stream's [`Keyed`] key, by the
//! vectorised keyed ziggurat (`Seq::fill_normals`): a hash, a table look-up and a multiply per
//! draw, no generator set-up per read. Rows are processed in parallel
//! blocks with keys from the global row index, so results do not depend on batching or thread
//! count.
//!
//! The ADC LSB is `2^e` unit currents, `e ≥ 0` the smallest exponent whose `2^(bits−1) − 1`
//! codes cover the range `adc.range` asks for; the TIA gain is set to match, so every
//! partial sum is an integer number of units and the shift-and-add is exact. The ADC rounds to
//! nearest, ties to even; the TIA clamps at `tia.v_sat_v / adc.v_full_scale_v` of full scale.

use ndarray::{Array2, ArrayView2, s};
use rayon::prelude::*;

use nacsim_core::config::Validate;
use nacsim_core::keyed::Keyed;
use nacsim_core::rng::{Purpose, Stream};
use nacsim_core::trace::TraceSink;

use crate::config::{
    AdcKind, AdcRange, CrossbarConfig, D2dDistribution, IrDrop, ReadNoiseModel, SignedScheme,
    VoltageErrorScope,
};
use crate::error::Error;
use crate::irdrop;
use crate::reference::{InputSlice, ideal_mapping, input_slices};
use crate::timing::{self, CrossbarCost, Geometry};

/// Rows per parallel block of `run`.
const BLOCK_ROWS: usize = 256;

/// Largest integer every f32 represents exactly (2^24).
const F32_EXACT: f64 = 16_777_216.0;

/// One row tile: `len` inputs starting at `start`, all outputs (the column tiles are
/// concatenated: they differ only in noise keys and IR drop, already applied).
#[derive(Debug, Clone)]
struct RowTile {
    start: usize,
    len: usize,
    /// Effective weights in unit currents per digit, `[len, outputs]`.
    g32: Array2<f32>,
    /// The same in f64 when the f64 path is needed.
    g64: Option<Array2<f64>>,
    /// Read-noise variance weights `[len, outputs]` (unit² per digit²).
    n2: Option<Array2<f32>>,
    /// Reference-column variance weights `[len, col_tiles]`.
    nref: Option<Array2<f32>>,
}

/// Per-slice ADC and TIA settings.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SliceAdc {
    /// LSB exponent `e` (LSB = 2^e unit currents).
    lsb_exp: u32,
    /// Full scale of the ADC input in unit currents.
    full_scale_units: f64,
    /// TIA rail in unit currents.
    sat_units: f64,
}

/// One Dense weight matrix (or conv im2col matrix) programmed on crossbar tiles.
#[derive(Debug, Clone)]
pub struct ProgrammedLayer {
    cfg: CrossbarConfig,
    geo: Geometry,
    slices: Vec<InputSlice>,
    q: Array2<i32>,
    out_w_scale: Vec<f32>,
    g_dev: Vec<f64>,
    tiles: Vec<RowTile>,
    use_f64: bool,
    adc: Vec<SliceAdc>,
    /// ADC code limit `2^(bits−1) − 1`, `None` for the ideal ADC.
    adc_max: Option<i64>,
    /// Relative read-noise σ and the key of its draws.
    read_noise: Option<(f64, Keyed)>,
    /// Output-referred read noise: variance weights of every input `[fan_in, out]`.
    n2_full: Option<Array2<f32>>,
    /// Output-referred read noise of the reference columns `[fan_in, col_tiles]`.
    nref_full: Option<Array2<f32>>,
    mean_g_s: f64,
    unit_g_s: f64,
    v_unit_v: f64,
}

/// Elements per parallel chunk of [`normals`] (also the draw's counter: changing it changes the
/// draws).
const NORMAL_CHUNK: usize = 1 << 14;

/// Draws `n` standard normals for indices `0..n` of `purpose`, in parallel chunks of
/// [`NORMAL_CHUNK`]: index `i` is element `i mod NORMAL_CHUNK` of counter `i / NORMAL_CHUNK` of
/// the stream's [`Keyed`] key, drawn by the vectorised keyed ziggurat (`Seq::fill_normals`),
/// so the draws do not depend on the thread count.
fn normals(seed: u64, purpose: Purpose, layer: u32, trial: u32, n: usize) -> Vec<f32> {
    let mut v = vec![0f32; n];
    let keyed = Keyed::of(&Stream::new(seed, purpose, layer, trial));
    v.par_chunks_mut(NORMAL_CHUNK)
        .enumerate()
        .for_each(|(i, c)| keyed.at(i as u64).fill_normals(c));
    v
}

impl ProgrammedLayer {
    /// Programs `weight` `[out, fan_in]` onto `cfg`'s arrays. `seed`, `layer` and `trial` key
    /// every static noise stream (module docs).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a config that breaks a rule, [`Error::EmptyWeight`] for a
    /// weight matrix with no rows or columns, [`Error::NonFiniteWeight`] for a NaN or infinite
    /// weight.
    pub fn program(
        cfg: &CrossbarConfig,
        weight: ArrayView2<f32>,
        seed: u64,
        layer: u32,
        trial: u32,
    ) -> Result<Self, Error> {
        cfg.validate().map_err(Error::InvalidConfig)?;
        let (out, fan_in) = weight.dim();
        if out == 0 || fan_in == 0 {
            return Err(Error::EmptyWeight { out, fan_in });
        }
        if !weight.iter().all(|w| w.is_finite())
            && let Some(((o, k), &w)) = weight.indexed_iter().find(|(_, w)| !w.is_finite())
        {
            return Err(Error::NonFiniteWeight {
                out: o,
                fan_in: k,
                value: w,
            });
        }
        let geo = Geometry::new(cfg, out, fan_in);
        let slices = input_slices(cfg);
        let map = ideal_mapping(cfg, weight);
        let q = map.q;
        let dev = cfg.devices_per_weight();
        let opa = cfg.outputs_per_array();
        let d = &cfg.device;
        let l1 = f64::from(d.levels - 1);
        let dg = (d.g_on_s - d.g_off_s) / l1;
        let (r_on, r_off) = (1.0 / d.g_on_s, 1.0 / d.g_off_s);
        let dr = (r_off - r_on) / l1;
        let g_ref = 0.5 * (d.g_on_s + d.g_off_s);

        // 1. Ideal device conductances.
        let n_main = out * fan_in * dev;
        let n_ref = if cfg.signed == SignedScheme::Reference {
            geo.col_tiles * fan_in
        } else {
            0
        };
        let mut g_ideal = vec![0.0f64; n_main + n_ref];
        let q_rows = q.as_slice().expect("ideal codes in standard layout");
        g_ideal[..n_main]
            .par_chunks_mut(fan_in * dev)
            .zip(q_rows.par_chunks(fan_in))
            .for_each(|(g_row, q_row)| {
                for (g, &qv) in g_row.chunks_exact_mut(dev).zip(q_row) {
                    match cfg.signed {
                        SignedScheme::Differential => {
                            let m = f64::from(qv.unsigned_abs());
                            let (p, n) = if qv >= 0 {
                                (d.g_off_s + m * dg, d.g_off_s)
                            } else {
                                (d.g_off_s, d.g_off_s + m * dg)
                            };
                            g[0] = p;
                            g[1] = n;
                        }
                        SignedScheme::Reference => {
                            let level = f64::from((qv + d.levels as i32 - 1) / 2);
                            g[0] = d.g_off_s + level * dg;
                        }
                        SignedScheme::Bridge => {
                            let level = f64::from((d.levels as i32 - 1 - qv) / 2);
                            let ra = r_on + level * dr;
                            let rb = r_off - level * dr;
                            // M1 = M4 = R_a, M2 = M3 = R_b.
                            g[0] = 1.0 / ra;
                            g[1] = 1.0 / rb;
                            g[2] = 1.0 / rb;
                            g[3] = 1.0 / ra;
                        }
                    }
                }
            });
        g_ideal[n_main..].fill(g_ref);

        // 2. Static perturbations.
        let row_driver = |idx: usize| -> usize {
            if idx < n_main {
                let w = idx / dev;
                (w / fan_in / opa) * fan_in + w % fan_in
            } else {
                idx - n_main
            }
        };
        let g_dev = perturb(
            cfg,
            &g_ideal,
            seed,
            layer,
            trial,
            row_driver,
            geo.col_tiles * fan_in,
        );
        let mean_g_s = g_dev.iter().sum::<f64>() / g_dev.len() as f64;

        // 3. IR drop.
        let g_ir;
        let g_eff: &[f64] = match cfg.nonideal.ir_drop {
            IrDrop::Off => &g_dev,
            IrDrop::Lines { segment_ohm } => {
                g_ir = apply_ir_drop(cfg, &geo, &g_dev, n_main, dev, segment_ohm);
                &g_ir
            }
        };

        // 4. Effective weights in units, and read-noise weights.
        let (unit_g_s, dpsi) = match cfg.signed {
            SignedScheme::Differential => (dg, 0.0),
            SignedScheme::Reference => (dg / 2.0, 0.0),
            SignedScheme::Bridge => {
                let dpsi = dr / (r_on + r_off);
                (d.g_on_s * dpsi, dpsi)
            }
        };
        // Divider ratio of a series pair; a pair with both devices at 0 S (clamped or stuck)
        // floats, read as mid-rail.
        let ratio = |a: f64, b: f64| if a + b > 0.0 { a / (a + b) } else { 0.5 };
        let sens = |a: f64, b: f64| {
            if a + b > 0.0 {
                a * b / ((a + b) * (a + b))
            } else {
                0.0
            }
        };
        let psi = |g: &[f64]| ratio(g[0], g[1]) - ratio(g[2], g[3]);
        let sigma_read = cfg.nonideal.read_noise_sigma_rel;
        // Per output row (in parallel): effective weights and read-noise weights, then
        // transposed to the arrays' [fan_in, out] layout.
        let mut w_t = Array2::<f64>::zeros((out, fan_in));
        let mut n2_t = Array2::<f32>::zeros((if sigma_read > 0.0 { out } else { 0 }, fan_in));
        let n2_rows: Vec<&mut [f32]> = if sigma_read > 0.0 {
            n2_t.as_slice_mut()
                .expect("standard layout")
                .chunks_mut(fan_in)
                .collect()
        } else {
            (0..out).map(|_| &mut [][..]).collect()
        };
        w_t.as_slice_mut()
            .expect("standard layout")
            .par_chunks_mut(fan_in)
            .zip(n2_rows)
            .enumerate()
            .for_each(|(o, (w_row, n2_row))| {
                let ct = o / opa;
                for k in 0..fan_in {
                    let base = (o * fan_in + k) * dev;
                    let a = &g_eff[base..base + dev];
                    let i = &g_ideal[base..base + dev];
                    let qv = f64::from(q_rows[o * fan_in + k]);
                    let (value, var) = match cfg.signed {
                        SignedScheme::Differential => (
                            qv + ((a[0] - i[0]) - (a[1] - i[1])) / dg,
                            (a[0] * a[0] + a[1] * a[1]) / (dg * dg),
                        ),
                        SignedScheme::Reference => {
                            let r = n_main + ct * fan_in + k;
                            let u = dg / 2.0;
                            (
                                qv + ((a[0] - i[0]) - (g_eff[r] - g_ideal[r])) / u,
                                a[0] * a[0] / (u * u),
                            )
                        }
                        SignedScheme::Bridge => {
                            let sa = sens(a[0], a[1]);
                            let sb = sens(a[2], a[3]);
                            (
                                qv + (psi(a) - psi(i)) / dpsi,
                                2.0 * (sa * sa + sb * sb) / (dpsi * dpsi),
                            )
                        }
                    };
                    w_row[k] = value;
                    if let Some(n) = n2_row.get_mut(k) {
                        *n = var as f32;
                    }
                }
            });
        // `assign` into fresh arrays: standard layout with standard strides, whatever the
        // shape (the read loops slice rows of products with these).
        let mut w_eff = Array2::<f64>::zeros((fan_in, out));
        w_eff.assign(&w_t.t());
        let n2 = (sigma_read > 0.0).then(|| {
            let mut n2 = Array2::<f32>::zeros((fan_in, out));
            n2.assign(&n2_t.t());
            n2
        });
        let nref = (sigma_read > 0.0 && n_ref > 0).then(|| {
            let u = dg / 2.0;
            Array2::from_shape_fn((fan_in, geo.col_tiles), |(k, ct)| {
                let g = g_eff[n_main + ct * fan_in + k];
                (g * g / (u * u)) as f32
            })
        });

        // 5. Precision and ADC ranges from the worst case of the ideal codes.
        let q_max = f64::from(d.levels - 1);
        let rows_t = cfg.array_rows.min(fan_in) as f64;
        let max_digit = slices.iter().map(|s| s.max_abs).max().unwrap_or(1);
        let use_f64 = rows_t * q_max * f64::from(max_digit) >= F32_EXACT;
        let mut worst_abs = 0i64; // max over tiles and columns of Σ|q|
        let mut worst_sq = 0i64; // max over tiles and columns of Σq²
        for t in 0..geo.row_tiles {
            let start = t * cfg.array_rows;
            let end = (start + cfg.array_rows).min(fan_in);
            for q_row in q_rows.chunks_exact(fan_in) {
                let q_tile = &q_row[start..end];
                let s: i64 = q_tile.iter().map(|&v| i64::from(v.abs())).sum();
                let s2: i64 = q_tile.iter().map(|&v| i64::from(v).pow(2)).sum();
                worst_abs = worst_abs.max(s);
                worst_sq = worst_sq.max(s2);
            }
        }
        // A 1-bit ADC is a comparator with a dead zone: codes −1, 0, 1.
        let cmax = ((1i64 << (cfg.adc.bits - 1)) - 1).max(1);
        let ideal_adc = cfg.adc.kind == AdcKind::Ideal;
        let rail = cfg.tia.v_sat_v / cfg.adc.v_full_scale_v;
        let adc = slices
            .iter()
            .map(|s| {
                let worst = (worst_abs * i64::from(s.max_abs)) as f64;
                let range = match cfg.adc.range {
                    AdcRange::WorstCase { frac } => frac * worst,
                    AdcRange::Statistical { sigmas } => {
                        (sigmas * (worst_sq as f64).sqrt() * f64::from(s.max_abs) / 3f64.sqrt())
                            .min(worst)
                    }
                };
                if ideal_adc {
                    // The ideal ADC never clips: its full scale is the worst case.
                    let fs = worst.max(1.0);
                    SliceAdc {
                        lsb_exp: 0,
                        full_scale_units: fs,
                        sat_units: rail * fs,
                    }
                } else {
                    let mut e = 0u32;
                    while ((cmax as f64) * 2f64.powi(e as i32)) < range
                        && (cmax as f64) * 2f64.powi(e as i32 + 1) <= MAX_UNITS
                    {
                        e += 1;
                    }
                    let fs = cmax as f64 * 2f64.powi(e as i32);
                    SliceAdc {
                        lsb_exp: e,
                        full_scale_units: fs,
                        sat_units: rail * fs,
                    }
                }
            })
            .collect();

        let before_adc = cfg.nonideal.read_noise_model == ReadNoiseModel::BeforeAdc;
        let tiles = (0..geo.row_tiles)
            .map(|t| {
                let start = t * cfg.array_rows;
                let len = cfg.array_rows.min(fan_in - start);
                let w = w_eff.slice(s![start..start + len, ..]);
                RowTile {
                    start,
                    len,
                    g32: w.mapv(|v| v as f32),
                    g64: use_f64.then(|| w.to_owned()),
                    n2: n2
                        .as_ref()
                        .map(|n| n.slice(s![start..start + len, ..]).to_owned()),
                    nref: nref
                        .as_ref()
                        .map(|n| n.slice(s![start..start + len, ..]).to_owned()),
                }
            })
            .collect();
        let read_noise = (sigma_read > 0.0).then(|| {
            (
                sigma_read,
                Keyed::of(&Stream::new(seed, Purpose::ReadNoise, layer, trial)),
            )
        });
        Ok(ProgrammedLayer {
            cfg: cfg.clone(),
            geo,
            v_unit_v: cfg.dac.v_read_v / f64::from(max_digit),
            slices,
            q,
            out_w_scale: map.out_w_scale,
            g_dev,
            tiles,
            use_f64,
            adc,
            adc_max: (!ideal_adc).then_some(cmax),
            read_noise,
            n2_full: n2.filter(|_| !before_adc),
            nref_full: nref.filter(|_| !before_adc),
            mean_g_s,
            unit_g_s,
        })
    }

    /// Integer outputs `[rows, out]` of int8 input codes `x` `[rows, fan_in]`, such that
    /// `Σ_k w[o,k]·code[k] ≈ out[n,o]·out_w_scale()[o]`. `first_row` is the global index of
    /// `x`'s first row in the run: it keys the read noise, so splitting a run into several calls
    /// with the right `first_row` gives the same result as one call, for any thread count.
    /// Outputs saturate at the `i32` range.
    ///
    /// # Panics
    ///
    /// If `x.ncols() != fan_in` (a caller bug; the scheduler shapes `x` from the layer).
    pub fn run(&self, x: ArrayView2<i8>, first_row: u64) -> Array2<i32> {
        assert_eq!(
            x.ncols(),
            self.geo.fan_in,
            "crossbar: x has {} columns, the layer's fan-in is {}",
            x.ncols(),
            self.geo.fan_in
        );
        run_blocks(&[self], x, first_row)
            .pop()
            .expect("one output per layer")
    }

    /// Monte Carlo batch axis: the outputs of several programmings (trials) of the same weight
    /// matrix on the same input `x`, in one pass over `x`. Each row block's DAC digits (and
    /// their squares for the read-noise variances) are computed once and every trial is
    /// evaluated on the block while it is in cache. Output `t` is bit-identical to
    /// `layers[t].run(x, first_row)` (tested): every draw is keyed by the trial's own streams
    /// and the global row, as in [`run`](Self::run).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `x.ncols()` is not the fan-in of every layer;
    /// [`Error::IncompatibleTrials`] if the layers do not share their geometry and input
    /// slices (DAC and array rows), i.e. were not programmed from the same weight shape and
    /// periphery. An empty `layers` gives an empty result.
    pub fn run_trials(
        layers: &[&ProgrammedLayer],
        x: ArrayView2<i8>,
        first_row: u64,
    ) -> Result<Vec<Array2<i32>>, Error> {
        let Some(first) = layers.first() else {
            return Ok(Vec::new());
        };
        for l in layers {
            if x.ncols() != l.geo.fan_in {
                return Err(Error::ShapeMismatch {
                    cols: x.ncols(),
                    fan_in: l.geo.fan_in,
                });
            }
        }
        if let Some(l) = layers.iter().find(|l| !first.shares_inputs_with(l)) {
            return Err(Error::IncompatibleTrials(format!(
                "a layer of geometry {:?} with {} input slices cannot share inputs with one of geometry {:?} with {} slices",
                l.geo,
                l.slices.len(),
                first.geo,
                first.slices.len()
            )));
        }
        Ok(run_blocks(layers, x, first_row))
    }

    /// Whether `other` converts inputs exactly as `self` (same geometry, slices and row
    /// tiles), so that [`run_trials`](Self::run_trials) may share the conversions.
    pub fn shares_inputs_with(&self, other: &ProgrammedLayer) -> bool {
        self.geo == other.geo
            && self.slices == other.slices
            && self.tiles.len() == other.tiles.len()
            && self
                .tiles
                .iter()
                .zip(&other.tiles)
                .all(|(a, b)| a.start == b.start && a.len == b.len)
    }

    /// Whether reads of this layer need the squared digits (read noise before the ADC).
    fn needs_squares(&self) -> bool {
        self.read_noise.is_some() && self.cfg.nonideal.read_noise_model == ReadNoiseModel::BeforeAdc
    }

    /// DAC digits of slice `si` for the rows `xb` (f32, exact), and their squares when
    /// `squares` is set.
    fn slice_inputs(&self, xb: ArrayView2<i8>, si: usize, squares: bool) -> SliceInputs {
        let slice = self.slices[si];
        let mut table = [0f32; 256];
        for (i, t) in table.iter_mut().enumerate() {
            *t = slice.digit((i as u8) as i8) as f32;
        }
        let digits = xb.mapv(|c| table[usize::from(c as u8)]);
        let squares = squares.then(|| digits.mapv(|d| d * d));
        SliceInputs { digits, squares }
    }

    /// Adds slice `si`'s shifted ADC codes, summed over row tiles, of the rows `xb` (global
    /// index of the first: `row0`) into `acc` `[rows, out]` (standard layout).
    pub(crate) fn accumulate_slice(
        &self,
        xb: ArrayView2<i8>,
        row0: u64,
        si: usize,
        acc: &mut Array2<i64>,
    ) {
        let inputs = self.slice_inputs(xb, si, self.needs_squares());
        self.accumulate_slice_with(&inputs, row0, si, acc);
    }

    /// [`accumulate_slice`](Self::accumulate_slice) on converted inputs, compiled for the
    /// widest vector instructions the CPU has ([`simd`]; the same bits on every path).
    fn accumulate_slice_with(
        &self,
        inputs: &SliceInputs,
        row0: u64,
        si: usize,
        acc: &mut Array2<i64>,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if nacsim_core::cpu::has_avx512() {
                // SAFETY: the CPU has the features (checked at run time).
                unsafe { simd::accumulate_avx512(self, inputs, row0, si, acc) };
                return;
            }
            if nacsim_core::cpu::has_avx2() {
                // SAFETY: as above.
                unsafe { simd::accumulate_avx2(self, inputs, row0, si, acc) };
                return;
            }
        }
        self.accumulate_slice_impl(inputs, row0, si, acc);
    }

    /// The body of [`accumulate_slice_with`](Self::accumulate_slice_with).
    #[inline(always)]
    fn accumulate_slice_impl(
        &self,
        inputs: &SliceInputs,
        row0: u64,
        si: usize,
        acc: &mut Array2<i64>,
    ) {
        let slice = self.slices[si];
        let adc = self.adc[si];
        let n_rows = inputs.digits.nrows();
        let out = self.geo.outputs;
        let opa = self.cfg.outputs_per_array();
        let n_tr = self.tiles.len() as u64;
        let n_slices = self.slices.len() as u64;
        let before_adc = self
            .read_noise
            .as_ref()
            .filter(|_| self.cfg.nonideal.read_noise_model == ReadNoiseModel::BeforeAdc);
        let width = out + self.n_ref_cols();
        let mut z = vec![0f32; width];
        // ADC: clamp at the TIA rail, scale to LSBs, round (ties to even), clamp to the codes.
        // Scaling by the power-of-two LSB is exact, so one clamp at min(rail, last code) in
        // LSBs equals clamping at the rail, rounding, then clamping to the codes.
        let inv_lsb = 0.5f64.powi(adc.lsb_exp as i32);
        let limit = (adc.sat_units.min(MAX_UNITS) * inv_lsb)
            .min(self.adc_max.map_or(f64::INFINITY, |c| c as f64));
        let total_shift = adc.lsb_exp + slice.shift;
        let quantize = move |v: f64| -> i64 {
            round_ties_even((v * inv_lsb).clamp(-limit, limit)) << total_shift
        };
        let acc = acc.as_slice_mut().expect("accumulator in standard layout");
        let digits = &inputs.digits;
        let squares = before_adc.and(inputs.squares.as_ref());
        for (t, tile) in self.tiles.iter().enumerate() {
            let d = digits.slice(s![.., tile.start..tile.start + tile.len]);
            let sums64;
            let sums32;
            let sums: Sums<'_> = match &tile.g64 {
                Some(g) => {
                    sums64 = d.mapv(f64::from).dot(g);
                    Sums::F64(sums64.as_slice().expect("standard layout"))
                }
                None => {
                    sums32 = d.dot(&tile.g32);
                    Sums::F32(sums32.as_slice().expect("standard layout"))
                }
            };
            let noise = before_adc.zip(squares).and_then(|((sigma, stream), sq)| {
                tile.n2.as_ref().map(|n2| {
                    let sq = sq.slice(s![.., tile.start..tile.start + tile.len]);
                    let var = sq.dot(n2);
                    let var_ref = tile.nref.as_ref().map(|nr| sq.dot(nr));
                    (*sigma, stream, var, var_ref)
                })
            });
            match (&noise, sums) {
                (None, Sums::F32(v)) => {
                    for (a, &v) in acc.iter_mut().zip(v) {
                        *a += quantize(f64::from(v));
                    }
                }
                (None, Sums::F64(v)) => {
                    for (a, &v) in acc.iter_mut().zip(v) {
                        *a += quantize(v);
                    }
                }
                (Some((sigma, stream, var, var_ref)), _) => {
                    let mut e = vec![0f32; out];
                    for n in 0..n_rows {
                        let key = ((row0 + n as u64) * n_slices + si as u64) * n_tr + t as u64;
                        read_normals(**stream, key, &mut z);
                        let var = var.row(n);
                        let var = var.as_slice().expect("standard layout");
                        for ((e, &v), &z) in e.iter_mut().zip(var).zip(&z) {
                            *e = v.sqrt() * z;
                        }
                        if let Some(vr) = var_ref {
                            for (ct, chunk) in e.chunks_mut(opa).enumerate() {
                                let r = vr[[n, ct]].sqrt() * z[out + ct];
                                for e in chunk {
                                    *e -= r;
                                }
                            }
                        }
                        let arow = &mut acc[n * out..(n + 1) * out];
                        let range = n * out..(n + 1) * out;
                        match sums {
                            Sums::F32(v) => {
                                for ((a, &v), &e) in arow.iter_mut().zip(&v[range]).zip(&e) {
                                    *a += quantize(f64::from(v) + sigma * f64::from(e));
                                }
                            }
                            Sums::F64(v) => {
                                for ((a, &v), &e) in arow.iter_mut().zip(&v[range]).zip(&e) {
                                    *a += quantize(v + sigma * f64::from(e));
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Number of reference columns (one per column tile with [`SignedScheme::Reference`]).
    fn n_ref_cols(&self) -> usize {
        if self.cfg.signed == SignedScheme::Reference {
            self.geo.col_tiles
        } else {
            0
        }
    }

    /// With [`ReadNoiseModel::OutputReferred`]: adds the read noise of every slice and tile of
    /// rows `xb` (global index of the first: `row0`) to their finished outputs `acc`, one draw
    /// per row and column (plus one per reference column), from generator `row`.
    pub(crate) fn add_output_noise(&self, xb: ArrayView2<i8>, row0: u64, acc: &mut Array2<i64>) {
        if self.needs_output_noise() {
            let d2 = self.output_noise_inputs(xb);
            self.add_output_noise_with(&d2, row0, acc);
        }
    }

    /// Whether the layer adds output-referred read noise.
    fn needs_output_noise(&self) -> bool {
        self.read_noise.is_some() && self.n2_full.is_some()
    }

    /// Per input code, `Σ_s 4^shift·digit_s²` (the variance weight of each input over all
    /// slices) for the rows `xb`.
    fn output_noise_inputs(&self, xb: ArrayView2<i8>) -> Array2<f32> {
        let mut table = [0f32; 256];
        for (i, t) in table.iter_mut().enumerate() {
            let c = (i as u8) as i8;
            *t = self
                .slices
                .iter()
                .map(|s| {
                    let v = s.digit(c) as f32;
                    (1u64 << (2 * s.shift)) as f32 * v * v
                })
                .sum();
        }
        xb.mapv(|c| table[usize::from(c as u8)])
    }

    /// [`add_output_noise`](Self::add_output_noise) on converted inputs `d2`
    /// ([`output_noise_inputs`](Self::output_noise_inputs)), compiled for the widest vector
    /// instructions the CPU has ([`simd`]; the same bits on every path).
    fn add_output_noise_with(&self, d2: &Array2<f32>, row0: u64, acc: &mut Array2<i64>) {
        #[cfg(target_arch = "x86_64")]
        {
            if nacsim_core::cpu::has_avx512() {
                // SAFETY: the CPU has the features (checked at run time).
                unsafe { simd::output_noise_avx512(self, d2, row0, acc) };
                return;
            }
            if nacsim_core::cpu::has_avx2() {
                // SAFETY: as above.
                unsafe { simd::output_noise_avx2(self, d2, row0, acc) };
                return;
            }
        }
        self.add_output_noise_impl(d2, row0, acc);
    }

    /// The body of [`add_output_noise_with`](Self::add_output_noise_with).
    #[inline(always)]
    fn add_output_noise_impl(&self, d2: &Array2<f32>, row0: u64, acc: &mut Array2<i64>) {
        let (Some((sigma, stream)), Some(n2)) = (self.read_noise.as_ref(), self.n2_full.as_ref())
        else {
            return;
        };
        let n_rows = d2.nrows();
        let out = self.geo.outputs;
        let opa = self.cfg.outputs_per_array();
        let var = d2.dot(n2);
        let var_ref = self.nref_full.as_ref().map(|nr| d2.dot(nr));
        let width = out + self.n_ref_cols();
        let mut z = vec![0f32; width];
        let mut e = vec![0f32; out];
        let acc = acc.as_slice_mut().expect("accumulator in standard layout");
        for n in 0..n_rows {
            read_normals(*stream, row0 + n as u64, &mut z);
            let v = var.row(n);
            let v = v.as_slice().expect("standard layout");
            for ((e, &v), &z) in e.iter_mut().zip(v).zip(&z) {
                *e = v.sqrt() * z;
            }
            if let Some(vr) = &var_ref {
                for (ct, chunk) in e.chunks_mut(opa).enumerate() {
                    let r = vr[[n, ct]].sqrt() * z[out + ct];
                    for e in chunk {
                        *e -= r;
                    }
                }
            }
            for (a, &e) in acc[n * out..(n + 1) * out].iter_mut().zip(&e) {
                *a += round_ties_even((sigma * f64::from(e)).clamp(-MAX_UNITS, MAX_UNITS));
            }
        }
    }

    /// Per output column, the weight of one output unit (`w_max/(levels−1)`).
    pub fn out_w_scale(&self) -> &[f32] {
        &self.out_w_scale
    }

    /// Analytic cycles, action counts and energy of `rows` input vectors (data-independent;
    /// see [`timing`]).
    pub fn cost(&self, rows: usize) -> CrossbarCost {
        timing::analytic(&self.cfg, &self.geo, rows, self.mean_g_s)
    }

    /// The cycle-stepped model of the same run: outputs equal to [`run`](Self::run), cost equal
    /// to [`cost`](Self::cost), trace to `sink` (see [`stepped`](crate::stepped)).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `x.ncols()` is not the fan-in.
    pub fn run_stepped(
        &self,
        x: ArrayView2<i8>,
        first_row: u64,
        sink: &mut dyn TraceSink,
    ) -> Result<(Array2<i32>, CrossbarCost), Error> {
        crate::stepped::run_stepped(self, x, first_row, sink)
    }

    /// The config the layer was programmed with.
    pub fn config(&self) -> &CrossbarConfig {
        &self.cfg
    }

    /// The layer's shape on the arrays.
    pub fn geometry(&self) -> Geometry {
        self.geo
    }

    /// The input slices (one per read of an input vector).
    pub fn slices(&self) -> &[InputSlice] {
        &self.slices
    }

    /// The ideal integer codes `q` `[out, fan_in]` (see [`reference`](crate::reference)).
    pub fn ideal_codes(&self) -> ArrayView2<'_, i32> {
        self.q.view()
    }

    /// Effective weights `[fan_in, out]` in unit currents per input digit, after every static
    /// effect and IR drop (equal to `qᵀ` when nothing deviates).
    pub fn effective_weights(&self) -> Array2<f64> {
        let mut w = Array2::zeros((self.geo.fan_in, self.geo.outputs));
        for t in &self.tiles {
            let src = match &t.g64 {
                Some(g) => g.clone(),
                None => t.g32.mapv(f64::from),
            };
            w.slice_mut(s![t.start..t.start + t.len, ..]).assign(&src);
        }
        w
    }

    /// Programmed conductance in siemens of device `d` of weight `(o, k)` after the static
    /// effects (before IR drop). Devices: differential `[G⁺, G⁻]`; reference `[G]`; bridge
    /// `[M1, M2, M3, M4]` as conductances. `None` out of range.
    pub fn device_conductance_s(&self, o: usize, k: usize, d: usize) -> Option<f64> {
        let dev = self.cfg.devices_per_weight();
        (o < self.geo.outputs && k < self.geo.fan_in && d < dev)
            .then(|| self.g_dev[(o * self.geo.fan_in + k) * dev + d])
    }

    /// Mean programmed conductance of the layer's devices in siemens (used for array energy).
    pub fn mean_conductance_s(&self) -> f64 {
        self.mean_g_s
    }

    /// Current in amperes of one output unit for an input digit of 1: `unit_g · v_unit`
    /// (differential `Δg`, reference `Δg/2`, bridge `g_on·ΔR/(R_on+R_off)`, times
    /// `v_read / max|digit|`).
    pub fn unit_current_a(&self) -> f64 {
        self.unit_g_s * self.v_unit_v
    }

    /// ADC LSB of slice `si` in unit currents (a power of two; 1 for the ideal ADC).
    pub fn adc_lsb_units(&self, si: usize) -> Option<u64> {
        self.adc.get(si).map(|a| 1u64 << a.lsb_exp)
    }

    /// TIA feedback resistance in ohms for slice `si`: the ADC full scale
    /// `adc.v_full_scale_v` over the full-scale column current.
    pub fn tia_gain_ohm(&self, si: usize) -> Option<f64> {
        self.adc
            .get(si)
            .map(|a| self.cfg.adc.v_full_scale_v / (a.full_scale_units * self.unit_current_a()))
    }

    /// Whether column sums use f64 (when an exact integer sum could exceed 2^24).
    pub fn uses_f64(&self) -> bool {
        self.use_f64
    }
}

/// DAC digits of one slice for a block of rows, and their squares when read noise before the
/// ADC needs them.
struct SliceInputs {
    digits: Array2<f32>,
    squares: Option<Array2<f32>>,
}

/// Outputs of `layers` (which share their input conversions, see
/// [`ProgrammedLayer::shares_inputs_with`]) on `x`: row blocks in parallel, each block's inputs
/// converted once and run through every layer.
fn run_blocks(layers: &[&ProgrammedLayer], x: ArrayView2<i8>, first_row: u64) -> Vec<Array2<i32>> {
    let Some(first) = layers.first() else {
        return Vec::new();
    };
    let rows = x.nrows();
    let out = first.geo.outputs;
    let squares = layers.iter().any(|l| l.needs_squares());
    let output_noise = layers.iter().any(|l| l.needs_output_noise());
    let blocks: Vec<Vec<Array2<i32>>> = (0..rows.div_ceil(BLOCK_ROWS))
        .into_par_iter()
        .map(|b| {
            let start = b * BLOCK_ROWS;
            let end = (start + BLOCK_ROWS).min(rows);
            let xb = x.slice(s![start..end, ..]);
            let row0 = first_row + start as u64;
            let mut accs = vec![Array2::<i64>::zeros((end - start, out)); layers.len()];
            for si in 0..first.slices.len() {
                let inputs = first.slice_inputs(xb, si, squares);
                for (l, acc) in layers.iter().zip(&mut accs) {
                    l.accumulate_slice_with(&inputs, row0, si, acc);
                }
            }
            if output_noise {
                let d2 = first.output_noise_inputs(xb);
                for (l, acc) in layers.iter().zip(&mut accs) {
                    l.add_output_noise_with(&d2, row0, acc);
                }
            }
            accs.iter().map(saturate).collect()
        })
        .collect();
    let mut ys = vec![Array2::<i32>::zeros((rows, out)); layers.len()];
    for (b, blk) in blocks.into_iter().enumerate() {
        let start = b * BLOCK_ROWS;
        for (y, part) in ys.iter_mut().zip(blk) {
            y.slice_mut(s![start..start + part.nrows(), ..])
                .assign(&part);
        }
    }
    ys
}

/// The ADC and read-noise loops of [`ProgrammedLayer`] compiled for AVX-512 and AVX2 (chosen at
/// run time). Their arithmetic is IEEE f32/f64 without contraction and integer operations, so
/// every path gives the same bits; the wider vectors only make the per-element loops (clamp,
/// round, shift; `sqrt(var)·z`) faster.
#[cfg(target_arch = "x86_64")]
mod simd {
    use ndarray::Array2;

    use super::{ProgrammedLayer, SliceInputs};

    /// Wrappers of one body compiled with the given target features.
    macro_rules! with_features {
        ($features:literal, $acc:ident, $noise:ident) => {
            /// `accumulate_slice_impl` compiled for these features.
            #[target_feature(enable = $features)]
            pub(super) fn $acc(
                l: &ProgrammedLayer,
                inputs: &SliceInputs,
                row0: u64,
                si: usize,
                acc: &mut Array2<i64>,
            ) {
                l.accumulate_slice_impl(inputs, row0, si, acc);
            }

            /// `add_output_noise_impl` compiled for these features.
            #[target_feature(enable = $features)]
            pub(super) fn $noise(
                l: &ProgrammedLayer,
                d2: &Array2<f32>,
                row0: u64,
                acc: &mut Array2<i64>,
            ) {
                l.add_output_noise_impl(d2, row0, acc);
            }
        };
    }

    with_features!(
        "avx2,avx512f,avx512bw,avx512vl,avx512dq",
        accumulate_avx512,
        output_noise_avx512
    );
    with_features!("avx2", accumulate_avx2, output_noise_avx2);
}

/// Column sums of one tile, in the precision the layer uses.
#[derive(Clone, Copy)]
enum Sums<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

/// Standard normal read-noise draws for one read of one tile: counter `key` of the read-noise
/// stream's [`Keyed`] key, through the vectorised ziggurat [`Seq::fill_normals`], so a pure
/// function of `(seed, layer, trial, key)` and of the draw's position in the read.
///
/// [`Seq::fill_normals`]: nacsim_core::keyed::Seq::fill_normals
fn read_normals(keyed: Keyed, key: u64, out: &mut [f32]) {
    keyed.at(key).fill_normals(out);
}

/// Largest column value in unit currents the ADC path handles (2^50; [`round_ties_even`] is
/// exact below 2^51).
const MAX_UNITS: f64 = (1u64 << 50) as f64;

/// Rounds to the nearest integer, ties to even, for `|v| < 2^51`: the `1.5·2^52` trick (adding
/// it leaves the rounded integer in the low mantissa bits). Branch-free, so the ADC loops
/// vectorize; exact on every integer, which keeps the ideal path integer-exact.
#[inline(always)]
fn round_ties_even(v: f64) -> i64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2^52
    (v + MAGIC).to_bits() as i64 - MAGIC.to_bits() as i64
}

fn saturate(acc: &Array2<i64>) -> Array2<i32> {
    acc.mapv(|v| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
}

/// The static perturbation pipeline of the module docs, over all devices.
fn perturb(
    cfg: &CrossbarConfig,
    g_ideal: &[f64],
    seed: u64,
    layer: u32,
    trial: u32,
    row_driver: impl Fn(usize) -> usize,
    n_drivers: usize,
) -> Vec<f64> {
    let ni = &cfg.nonideal;
    let d = &cfg.device;
    let n = g_ideal.len();
    let mut g = g_ideal.to_vec();
    if ni.programming_voltage_sigma_rel > 0.0 {
        let eps = match ni.programming_voltage_scope {
            VoltageErrorScope::Device => {
                normals(seed, Purpose::ProgrammingVoltage, layer, trial, n)
            }
            VoltageErrorScope::RowDriver => {
                let per = normals(seed, Purpose::ProgrammingVoltage, layer, trial, n_drivers);
                (0..n).map(|i| per[row_driver(i)]).collect()
            }
        };
        let s = ni.programming_voltage_sensitivity * ni.programming_voltage_sigma_rel;
        for (g, e) in g.iter_mut().zip(eps) {
            *g = d.g_off_s + (*g - d.g_off_s) * (1.0 + s * f64::from(e));
        }
    }
    if ni.programming_sigma_rel > 0.0 {
        let sd = ni.programming_sigma_rel * (d.g_on_s - d.g_off_s);
        for (g, e) in g
            .iter_mut()
            .zip(normals(seed, Purpose::ProgrammingError, layer, trial, n))
        {
            *g += sd * f64::from(e);
        }
    }
    if ni.d2d_sigma_rel > 0.0 {
        let sigma = ni.d2d_sigma_rel;
        for (g, e) in g
            .iter_mut()
            .zip(normals(seed, Purpose::DeviceToDevice, layer, trial, n))
        {
            *g *= match ni.d2d_distribution {
                D2dDistribution::Normal => 1.0 + sigma * f64::from(e),
                D2dDistribution::LogNormal => (sigma * f64::from(e)).exp(),
            };
        }
    }
    if ni.programming_voltage_sigma_rel > 0.0
        || ni.programming_sigma_rel > 0.0
        || ni.d2d_sigma_rel > 0.0
    {
        for g in &mut g {
            *g = g.max(0.0);
        }
    }
    if ni.stuck_on_frac > 0.0 || ni.stuck_off_frac > 0.0 {
        let mut u = vec![0f64; n];
        Stream::new(seed, Purpose::StuckAt, layer, trial).fill_uniform_at(&mut u, 0);
        for (g, u) in g.iter_mut().zip(u) {
            if u < ni.stuck_on_frac {
                *g = d.g_on_s;
            } else if u < ni.stuck_on_frac + ni.stuck_off_frac {
                *g = d.g_off_s;
            }
        }
    }
    if ni.drift_nu > 0.0 || ni.drift_nu_sigma > 0.0 {
        let ratio = ni.drift_time_s / ni.drift_t0_s;
        let z = if ni.drift_nu_sigma > 0.0 {
            normals(seed, Purpose::Drift, layer, trial, n)
        } else {
            vec![0.0; n]
        };
        for (g, z) in g.iter_mut().zip(z) {
            let nu = (ni.drift_nu + ni.drift_nu_sigma * f64::from(z)).max(0.0);
            *g *= ratio.powf(-nu);
        }
    }
    g
}

/// Replaces every device's conductance by its IR-drop effective value, per physical tile.
fn apply_ir_drop(
    cfg: &CrossbarConfig,
    geo: &Geometry,
    g_dev: &[f64],
    n_main: usize,
    dev: usize,
    segment_ohm: f64,
) -> Vec<f64> {
    let mut g_eff = g_dev.to_vec();
    let fan_in = geo.fan_in;
    let opa = cfg.outputs_per_array();
    let reference = cfg.signed == SignedScheme::Reference;
    let tiles: Vec<(usize, usize)> = (0..geo.row_tiles)
        .flat_map(|rt| (0..geo.col_tiles).map(move |ct| (rt, ct)))
        .collect();
    // Each tile is independent: solve in parallel, write back in order.
    let solved: Vec<(usize, usize, Array2<f64>)> = tiles
        .par_iter()
        .map(|&(rt, ct)| {
            let k0 = rt * cfg.array_rows;
            let rows = cfg.array_rows.min(fan_in - k0);
            let o0 = ct * opa;
            let outs = opa.min(geo.outputs - o0);
            let cols = outs * dev + usize::from(reference);
            let g = Array2::from_shape_fn((rows, cols), |(i, c)| {
                if reference && c == cols - 1 {
                    g_dev[n_main + ct * fan_in + k0 + i]
                } else {
                    let (lo, d) = (c / dev, c % dev);
                    g_dev[((o0 + lo) * fan_in + k0 + i) * dev + d]
                }
            });
            (
                rt,
                ct,
                irdrop::effective_conductance(g.view(), cfg.dac.v_read_v, segment_ohm),
            )
        })
        .collect();
    for (rt, ct, eff) in solved {
        let k0 = rt * cfg.array_rows;
        let o0 = ct * opa;
        let cols = eff.ncols();
        for ((i, c), &v) in eff.indexed_iter() {
            if reference && c == cols - 1 {
                g_eff[n_main + ct * fan_in + k0 + i] = v;
            } else {
                let (lo, d) = (c / dev, c % dev);
                g_eff[((o0 + lo) * fan_in + k0 + i) * dev + d] = v;
            }
        }
    }
    g_eff
}
