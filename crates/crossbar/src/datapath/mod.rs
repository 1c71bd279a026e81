//! A weight matrix programmed onto crossbar tiles ([`ProgrammedLayer`]) and its fast functional
//! model (datapath layer). Programming, the static effects drawn once per `(seed, layer, trial)`,
//! is in `program.rs`; this file is the read path.
//!
//! # Read (`run`)
//!
//! For every input slice and row tile: column sums `Σ_k g_eff[k, o]·digit_k` (an f32 matrix
//! product that skips zero inputs, `gemm.rs`; f64 when an exact sum could exceed 2^24) → read noise → TIA rails → ADC → shift and
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

use nacsim_core::keyed::Keyed;
use nacsim_core::trace::TraceSink;

use crate::config::{CrossbarConfig, ReadNoiseModel, SignedScheme};
use crate::cost::CrossbarCost;
use crate::error::Error;
use crate::reference::InputSlice;
use crate::timing::{self, Geometry};
use gemm::Operand::{Squares, Values};

mod gemm;
mod program;

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

impl ProgrammedLayer {
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

    /// DAC digit of every int8 code for slice `si` (f32, exact).
    fn digit_table(&self, si: usize) -> [f32; 256] {
        let slice = self.slices[si];
        let mut table = [0f32; 256];
        for (i, t) in table.iter_mut().enumerate() {
            *t = slice.digit((i as u8) as i8) as f32;
        }
        table
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
        let table = self.digit_table(si);
        let mut scratch = Scratch::default();
        for t in 0..self.tiles.len() {
            let inputs = TileInputs::new(xb, &self.tiles[t], &table, self.needs_squares());
            self.accumulate_tile_with(&inputs, row0, si, t, acc, &mut scratch);
        }
    }

    /// Adds row tile `t`'s shifted ADC codes of slice `si` on converted inputs to `acc`,
    /// compiled for the widest vector instructions the CPU has ([`simd`]; the same bits on
    /// every path).
    fn accumulate_tile_with(
        &self,
        inputs: &TileInputs<'_>,
        row0: u64,
        si: usize,
        t: usize,
        acc: &mut Array2<i64>,
        scratch: &mut Scratch,
    ) {
        simd::accumulate(self, inputs, row0, si, t, acc, scratch);
    }

    /// The body of [`accumulate_tile_with`](Self::accumulate_tile_with). Rows whose digits in
    /// the tile are all zero are skipped: their column sums and read-noise variances are
    /// exactly zero, so they add nothing (and draw no noise: a zero variance times any draw
    /// is zero).
    #[inline(always)]
    fn accumulate_tile_impl(
        &self,
        inputs: &TileInputs<'_>,
        row0: u64,
        si: usize,
        t: usize,
        acc: &mut Array2<i64>,
        scratch: &mut Scratch,
    ) {
        let Scratch {
            sums: sums32,
            var: var_buf,
            var_ref: var_ref_buf,
            z,
            e,
        } = scratch;
        let slice = self.slices[si];
        let adc = self.adc[si];
        let tile = &self.tiles[t];
        let n_rows = inputs.digits.rows;
        let out = self.geo.outputs;
        let opa = self.cfg.outputs_per_array();
        let n_tr = self.tiles.len() as u64;
        let n_slices = self.slices.len() as u64;
        let n_ref = self.n_ref_cols();
        let before_adc = self
            .read_noise
            .as_ref()
            .filter(|_| self.cfg.nonideal.read_noise_model == ReadNoiseModel::BeforeAdc);
        let z = fit(z, out + n_ref);
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
        let sums64;
        let sums: Sums<'_> = match &tile.g64 {
            Some(g) => {
                let table = inputs.table;
                sums64 = inputs
                    .xb
                    .slice(s![.., tile.start..tile.start + tile.len])
                    .mapv(|c| f64::from(table[usize::from(c as u8)]))
                    .dot(g);
                Sums::F64(sums64.as_slice().expect("standard layout"))
            }
            None => {
                let sums32 = fit(sums32, n_rows * out);
                gemm::product(&inputs.digits, Values, standard(&tile.g32), out, sums32);
                Sums::F32(sums32)
            }
        };
        let sq = &inputs.digits;
        let noise = before_adc
            .filter(|_| sq.has_squares())
            .and_then(|(sigma, stream)| {
                tile.n2.as_ref().map(|n2| {
                    let var = fit(var_buf, n_rows * out);
                    gemm::product(sq, Squares, standard(n2), out, var);
                    let var_ref = tile.nref.as_ref().map(|nr| {
                        let v = fit(var_ref_buf, n_rows * n_ref);
                        gemm::product(sq, Squares, standard(nr), n_ref, v);
                        &*v
                    });
                    (*sigma, stream, &*var, var_ref)
                })
            });
        let row_any = &inputs.digits.row_any;
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
                let e = fit(e, out);
                for n in (0..n_rows).filter(|&n| row_any[n]) {
                    let key = ((row0 + n as u64) * n_slices + si as u64) * n_tr + t as u64;
                    read_normals(**stream, key, z);
                    let var = &var[n * out..(n + 1) * out];
                    for ((e, &v), &z) in e.iter_mut().zip(var).zip(&*z) {
                        *e = v.sqrt() * z;
                    }
                    if let Some(vr) = var_ref {
                        for (ct, chunk) in e.chunks_mut(opa).enumerate() {
                            let r = vr[n * n_ref + ct].sqrt() * z[out + ct];
                            for e in chunk {
                                *e -= r;
                            }
                        }
                    }
                    let arow = &mut acc[n * out..(n + 1) * out];
                    let range = n * out..(n + 1) * out;
                    match sums {
                        Sums::F32(v) => {
                            for ((a, &v), &e) in arow.iter_mut().zip(&v[range]).zip(&*e) {
                                *a += quantize(f64::from(v) + sigma * f64::from(e));
                            }
                        }
                        Sums::F64(v) => {
                            for ((a, &v), &e) in arow.iter_mut().zip(&v[range]).zip(&*e) {
                                *a += quantize(v + sigma * f64::from(e));
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
            self.add_output_noise_with(&d2, row0, acc, &mut Scratch::default());
        }
    }

    /// Whether the layer adds output-referred read noise.
    fn needs_output_noise(&self) -> bool {
        self.read_noise.is_some() && self.n2_full.is_some()
    }

    /// Per input code, `Σ_s 4^shift·digit_s²` (the variance weight of each input over all
    /// slices) for the rows `xb`, ready for [`gemm::product`] (codes and table, no copy).
    fn output_noise_inputs<'a>(&self, xb: ArrayView2<'a, i8>) -> gemm::Packed<'a> {
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
        gemm::Packed::new(xb, 0, xb.ncols(), &table, false)
    }

    /// [`add_output_noise`](Self::add_output_noise) on converted inputs `d2`
    /// ([`output_noise_inputs`](Self::output_noise_inputs)), compiled for the widest vector
    /// instructions the CPU has ([`simd`]; the same bits on every path).
    fn add_output_noise_with(
        &self,
        d2: &gemm::Packed<'_>,
        row0: u64,
        acc: &mut Array2<i64>,
        scratch: &mut Scratch,
    ) {
        simd::output_noise(self, d2, row0, acc, scratch);
    }

    /// The body of [`add_output_noise_with`](Self::add_output_noise_with). Rows whose inputs
    /// are all zero have zero variance and get no noise (and draw none).
    #[inline(always)]
    fn add_output_noise_impl(
        &self,
        d2: &gemm::Packed<'_>,
        row0: u64,
        acc: &mut Array2<i64>,
        scratch: &mut Scratch,
    ) {
        let Scratch {
            var: var_buf,
            var_ref: var_ref_buf,
            z,
            e,
            ..
        } = scratch;
        let (Some((sigma, stream)), Some(n2)) = (self.read_noise.as_ref(), self.n2_full.as_ref())
        else {
            return;
        };
        let n_rows = d2.rows;
        let out = self.geo.outputs;
        let opa = self.cfg.outputs_per_array();
        let n_ref = self.n_ref_cols();
        let var = fit(var_buf, n_rows * out);
        gemm::product(d2, Values, standard(n2), out, var);
        let var_ref = self.nref_full.as_ref().map(|nr| {
            let v = fit(var_ref_buf, n_rows * n_ref);
            gemm::product(d2, Values, standard(nr), n_ref, v);
            &*v
        });
        let z = fit(z, out + n_ref);
        let e = fit(e, out);
        let acc = acc.as_slice_mut().expect("accumulator in standard layout");
        for n in (0..n_rows).filter(|&n| d2.row_any[n]) {
            read_normals(*stream, row0 + n as u64, z);
            let v = &var[n * out..(n + 1) * out];
            for ((e, &v), &z) in e.iter_mut().zip(v).zip(&*z) {
                *e = v.sqrt() * z;
            }
            if let Some(vr) = var_ref {
                for (ct, chunk) in e.chunks_mut(opa).enumerate() {
                    let r = vr[n * n_ref + ct].sqrt() * z[out + ct];
                    for e in chunk {
                        *e -= r;
                    }
                }
            }
            for (a, &e) in acc[n * out..(n + 1) * out].iter_mut().zip(&*e) {
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

/// One row tile's DAC digits for a block of rows, ready for [`gemm::product`] (the codes, the
/// digit table, and the squared table when read noise before the ADC needs it); shared by the
/// trials of
/// [`ProgrammedLayer::run_trials`].
struct TileInputs<'a> {
    /// The block's int8 codes (the f64 path converts its tile from them).
    xb: ArrayView2<'a, i8>,
    /// DAC digit of every code for this slice.
    table: &'a [f32; 256],
    digits: gemm::Packed<'a>,
}

impl<'a> TileInputs<'a> {
    fn new(xb: ArrayView2<'a, i8>, tile: &RowTile, table: &'a [f32; 256], squares: bool) -> Self {
        Self {
            xb,
            table,
            digits: gemm::Packed::new(xb, tile.start, tile.len, table, squares),
        }
    }
}

/// Buffers of one row block's reads (column sums, read-noise variances, draws), reused across
/// its slices, row tiles and trials. Every use writes the part it reads before reading it (the
/// products overwrite their outputs, the draws and noise loops every element), so the buffers
/// are zeroed only when they first grow.
#[derive(Debug, Default)]
struct Scratch {
    sums: Vec<f32>,
    var: Vec<f32>,
    var_ref: Vec<f32>,
    z: Vec<f32>,
    e: Vec<f32>,
}

/// The first `n` elements of `v`, grown (zero-filled) if shorter; the caller overwrites them.
fn fit(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

/// The contiguous row-major data of a standard-layout matrix.
fn standard(a: &Array2<f32>) -> &[f32] {
    a.as_slice()
        .expect("programmed matrices are in standard layout")
}

/// Outputs of `layers` (which share their input conversions, see
/// [`ProgrammedLayer::shares_inputs_with`]) on `x`: row blocks in parallel, each block's inputs
/// converted once per row tile and run through every layer.
fn run_blocks(layers: &[&ProgrammedLayer], x: ArrayView2<i8>, first_row: u64) -> Vec<Array2<i32>> {
    let Some(first) = layers.first() else {
        return Vec::new();
    };
    let rows = x.nrows();
    let out = first.geo.outputs;
    let squares = layers.iter().any(|l| l.needs_squares());
    let output_noise = layers.iter().any(|l| l.needs_output_noise());
    let mut ys = vec![Array2::<i32>::zeros((rows, out)); layers.len()];
    // Per row block, its rows of every layer's output (written in place, in parallel).
    let mut parts: Vec<Vec<&mut [i32]>> = (0..rows.div_ceil(BLOCK_ROWS))
        .map(|_| Vec::with_capacity(layers.len()))
        .collect();
    for y in &mut ys {
        let y = y
            .as_slice_mut()
            .expect("fresh arrays are in standard layout");
        for (part, chunk) in parts.iter_mut().zip(y.chunks_mut(BLOCK_ROWS * out)) {
            part.push(chunk);
        }
    }
    parts.into_par_iter().enumerate().for_each(|(b, mut part)| {
        let start = b * BLOCK_ROWS;
        let end = (start + BLOCK_ROWS).min(rows);
        let xb = x.slice(s![start..end, ..]);
        let row0 = first_row + start as u64;
        let mut accs = vec![Array2::<i64>::zeros((end - start, out)); layers.len()];
        let mut scratch = Scratch::default();
        for si in 0..first.slices.len() {
            let table = first.digit_table(si);
            for (t, tile) in first.tiles.iter().enumerate() {
                let inputs = TileInputs::new(xb, tile, &table, squares);
                for (l, acc) in layers.iter().zip(&mut accs) {
                    l.accumulate_tile_with(&inputs, row0, si, t, acc, &mut scratch);
                }
            }
        }
        if output_noise {
            let d2 = first.output_noise_inputs(xb);
            for (l, acc) in layers.iter().zip(&mut accs) {
                l.add_output_noise_with(&d2, row0, acc, &mut scratch);
            }
        }
        for (y, acc) in part.iter_mut().zip(&accs) {
            saturate_into(acc, y);
        }
    });
    ys
}

/// The ADC and read-noise loops of [`ProgrammedLayer`] compiled for AVX-512 (F, BW, VL, DQ),
/// AVX2 and the baseline, one chosen at run time by [`multiversion`] (feature detection once,
/// then an indirect call). Their arithmetic is IEEE f32/f64 without contraction and integer
/// operations, so every path gives the same bits; the wider vectors only make the per-element
/// loops (clamp, round, shift; `sqrt(var)·z`) faster. The bodies are the `#[inline(always)]`
/// `*_impl` methods, so each clone compiles the whole loop for its features. (The products
/// inside dispatch on their own: [`gemm::product`].)
mod simd {
    use multiversion::multiversion;
    use ndarray::Array2;

    use super::{ProgrammedLayer, Scratch, TileInputs, gemm};

    /// `accumulate_tile_impl`, for the widest instruction set the CPU has.
    #[multiversion(targets("x86_64+avx2+avx512f+avx512bw+avx512vl+avx512dq", "x86_64+avx2"))]
    pub(super) fn accumulate<'a>(
        l: &ProgrammedLayer,
        inputs: &TileInputs<'a>,
        row0: u64,
        si: usize,
        t: usize,
        acc: &mut Array2<i64>,
        scratch: &mut Scratch,
    ) {
        l.accumulate_tile_impl(inputs, row0, si, t, acc, scratch);
    }

    /// `add_output_noise_impl`, for the widest instruction set the CPU has.
    #[multiversion(targets("x86_64+avx2+avx512f+avx512bw+avx512vl+avx512dq", "x86_64+avx2"))]
    pub(super) fn output_noise<'a>(
        l: &ProgrammedLayer,
        d2: &gemm::Packed<'a>,
        row0: u64,
        acc: &mut Array2<i64>,
        scratch: &mut Scratch,
    ) {
        l.add_output_noise_impl(d2, row0, acc, scratch);
    }
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

/// `acc` saturated to the `i32` range, written to `y` (the same number of elements, row-major).
fn saturate_into(acc: &Array2<i64>, y: &mut [i32]) {
    let acc = acc.as_slice().expect("accumulator in standard layout");
    for (y, &v) in y.iter_mut().zip(acc) {
        *y = v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    }
}
