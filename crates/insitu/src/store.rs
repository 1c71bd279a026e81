//! The crossbar weight store: weights held as device conductances, updated by pulses.
//!
//! # Layout
//!
//! A Dense (or lowered Conv2d) layer with weights `[out, fan_in]` and an optional bias is one
//! crossbar: crossbar row `k` is input `k` (the bias is an extra row `k = fan_in` driven at a
//! constant input), crossbar column `c = o·dpw + j` is device `j` of output `o` (`dpw` = 2 for
//! differential pairs, 1 against a reference column). Device `(o, k, j)` has index
//! `(o·cols + k)·dpw + j`, `cols = fan_in + bias`.
//!
//! # Update
//!
//! The optimiser's change `ΔW` (plain SGD, `ΔW = −lr·∇W`, is what in-situ training does; with
//! momentum or Adam the optimiser state is kept digitally in the periphery and only `ΔW` reaches
//! the array) becomes a desired change `ΔG = ±ΔW·(Gmax − Gmin)/(2·w_max)` per device (half the
//! change on each device of a pair, in opposite directions), which the scheme's programmer turns
//! into a [`PulseTrain`] that the device model applies.
//!
//! # Accounting (per update step, summed over layers — layers are programmed one after
//! another)
//!
//! * pulse counts per device (endurance);
//! * write energy `Σ count·V²·Ḡ·t` over driven cells, `Ḡ` the mean of the conductance before and
//!   after (NeuroSim's `V²·Ḡ·PW` per pulse);
//! * half-select energy (V/2 scheme): every pulse puts `V/2` across the other cells of its
//!   crossbar row and column, `count·(V/2)²·t·Ḡ_layer·(cells_per_row − 1 + cells_per_column − 1)`,
//!   with `Ḡ_layer` the layer's mean conductance at the start of the step (so the energy does
//!   not need a per-cell pass);
//! * read-before-write energy `Σ V_read²·G·t_read` over all devices and one read per row;
//! * write latency: rows are written one after another, each in an LTP phase and an LTD phase
//!   whose length is the longest train of that phase in the row (NeuroSim's row-by-row write).
//!
//! Randomness: device-to-device draws from `(seed, DeviceToDevice, layer, 0)` by device index
//! (conductance range at trial 1); per-driver voltage errors from `(seed, ProgrammingVoltage,
//! layer, 0)` (row `k`, column `2^32 + c`). Rounding and coincidence uniforms are keyed
//! counter-based draws ([`nacsim_core::keyed`]) of `(seed, Other(INSITU_ROUNDING), layer, 0)`: word
//! `(step, weight index)`, its low 32 bits for device 0 of the weight, its high 32 bits for
//! device 1 — one cheap hash per weight, independent of order and threads. Gaussian per-step
//! draws come from one generator per fixed block of devices and step,
//! [`Stream::rng`]`(step·blocks + block)`, consumed in device order and only where a device is
//! programmed ([`ChunkNormals`]): c2c noise from `(seed, CycleToCycle, layer, 0)`, per-pulse
//! voltage errors from `(seed, ProgrammingVoltage, layer, 1)`. The blocks are fixed groups of
//! output rows, so results are bit-identical for any thread count.
//!
//! # Speed
//!
//! The update visits every weight every step; the common case is a weight whose change gives
//! no pulse. Pass 1 per block runs over contiguous rows: the optimiser's `ΔW` (the current
//! weight is the store's f32 parameter, which always equals the conductances' weight), the
//! rounding words when the scheme needs them, and a conservative zero-pulse test (f32, 24-bit
//! uniforms, 1e-6 relative margin) in straight-line loops that the compiler vectorises; on
//! x86-64 the loop is compiled for AVX-512 and AVX2 too and picked at run time (same integer
//! and IEEE arithmetic, so the same bits — tested). Pass 2 runs the exact programmer (f64
//! division, rounding against the full 32-bit uniform, device response) only on the weights
//! pass 1 kept, in index order. A test checks that pass 1 never drops a pulse: with the test
//! switched off every weight goes to pass 2 and the results are bit-identical. The sum of
//! conductances for the half-select energy is kept incrementally instead of re-read each step.

use nacsim_core::config::FieldError;
use nacsim_core::{ChaCha8Rng, Purpose, Stream};
use nacsim_device::{NoNoise, Normals, PulseDevice, PulseResponse};
use nacsim_nn::model::Param;
use nacsim_nn::train::{Optimizer, WeightStore};
use ndarray::{Array1, Array2};
use rand::RngCore;
use rayon::prelude::*;
use serde::Serialize;

use crate::config::{
    InSituConfig, Linearization, Magnitude, Modulation, Rounding, Scheme, VoltageError,
};
use crate::program::{DriveModel, Phys, PulseTrain, modulated_train, nominal_train, round_half_up};
use nacsim_core::keyed::{Keyed, Keys32, unit32};

/// `Purpose::Other` code of the rounding and coincidence draws.
pub const INSITU_ROUNDING: u32 = 0x1757;

/// Devices per parallel task of an update (fixed, so results do not depend on thread count).
const CHUNK_DEVICES: usize = 8_192;

/// Steps after which an update history without a single pulse raises a warning.
pub const ZERO_PULSE_WARN_STEPS: u64 = 50;

/// Totals of the write side of training.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WriteStats {
    /// Update steps applied.
    pub steps: u64,
    /// Devices in all crossbars.
    pub devices: u64,
    /// Programming pulses applied in total.
    pub pulses: u64,
    /// Most pulses any one device received (endurance).
    pub max_pulses_per_device: u32,
    /// Mean pulses per device.
    pub mean_pulses_per_device: f64,
    /// Energy of the driven cells, `Σ count·V²·Ḡ·t`, in picojoules.
    pub write_energy_pj: f64,
    /// Energy of half-selected cells (V/2 scheme) in picojoules.
    pub half_select_energy_pj: f64,
    /// Read-before-write energy in picojoules.
    pub read_energy_pj: f64,
    /// Write latency (row-by-row, LTP and LTD phases, plus reads) in seconds.
    pub write_latency_s: f64,
}

/// Errors building the store.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The in-situ config breaks rules (paths relative to the in-situ settings).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
}

impl From<Vec<FieldError>> for StoreError {
    fn from(e: Vec<FieldError>) -> Self {
        StoreError::Invalid(e)
    }
}

enum Bank {
    Shared,
    PerDevice {
        phys: Vec<Phys>,
        // The devices themselves, kept only for the NeuroSim write rule.
        raw: Vec<PulseDevice>,
    },
}

/// Standard normals from one keyed generator, [`Stream::rng`]`(index)`, created on first use
/// (Box–Muller, both branches, 53-bit uniforms).
pub struct ChunkNormals<'a> {
    stream: &'a Stream,
    index: u64,
    rng: Option<ChaCha8Rng>,
    spare: Option<f64>,
}

impl<'a> ChunkNormals<'a> {
    /// The normals of generator `index` of `stream`.
    pub fn new(stream: &'a Stream, index: u64) -> Self {
        ChunkNormals {
            stream,
            index,
            rng: None,
            spare: None,
        }
    }
}

fn unit(w: u64) -> f64 {
    (w >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

impl Normals for ChunkNormals<'_> {
    fn next_normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let rng = self.rng.get_or_insert_with(|| self.stream.rng(self.index));
        let u1 = 1.0 - unit(rng.next_u64());
        let u2 = unit(rng.next_u64());
        let r = (-2.0 * u1.ln()).sqrt();
        let (sn, cs) = (std::f64::consts::TAU * u2).sin_cos();
        self.spare = Some(r * sn);
        r * cs
    }
}

/// Uniforms in `[0, 1)` from one keyed generator, created on first use. (The store's own
/// rounding and coincidence uniforms now come from [`nacsim_core::keyed::Keys32`].)
pub struct ChunkUniforms<'a> {
    stream: &'a Stream,
    index: u64,
    rng: Option<ChaCha8Rng>,
}

impl<'a> ChunkUniforms<'a> {
    /// The uniforms of generator `index` of `stream`.
    pub fn new(stream: &'a Stream, index: u64) -> Self {
        ChunkUniforms {
            stream,
            index,
            rng: None,
        }
    }

    /// The next uniform.
    pub fn next_uniform(&mut self) -> f64 {
        let rng = self.rng.get_or_insert_with(|| self.stream.rng(self.index));
        unit(rng.next_u64())
    }
}

struct XLayer {
    out: usize,
    fan_in: usize,
    cols: usize,
    has_bias: bool,
    g: Vec<f64>,
    est: Vec<f64>,
    pulses: Vec<u32>,
    m: Vec<f32>,
    v: Vec<f32>,
    bank: Bank,
    /// Σ of `g` (siemens), updated by each step's changes.
    g_sum: f64,
    row_err: Vec<f64>,
    col_err: Vec<f64>,
    c2c: Stream,
    verr: Stream,
    round: Keyed,
}

/// Which devices may get a pulse from a change of `q` nominal pulses (conservative: `true` when
/// unsure; the exact programmer decides).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Filter {
    /// Every device with a non-zero change is programmed.
    All,
    /// Count with nearest rounding: `q ≥ 1/2`.
    Nearest,
    /// Count with stochastic rounding: `q ≥ u`.
    Stochastic,
    /// Binomial coincidence of `bit_length` trials: zero pulses for `u < (1 − q/BL)^BL`, which
    /// is above `1 − q`.
    Coincidence,
}

/// Relative margin of the quick zero-pulse test against the exact programmer's rounding.
const FILTER_MARGIN: f64 = 1e-9;

impl Ctx<'_> {
    /// False when a device asked for `qa` nominal pulses (approximately: `|ΔG|·(1/ΔG_pulse)`)
    /// with rounding uniform `u` certainly gets none.
    #[inline(always)]
    fn may_pulse(&self, qa: f64, u: f64) -> bool {
        let q = qa * (1.0 + FILTER_MARGIN);
        match self.filter {
            Filter::All => true,
            Filter::Nearest => q >= 0.5,
            Filter::Stochastic => q >= u,
            Filter::Coincidence => u + q + FILTER_MARGIN >= 1.0,
        }
    }
}

/// Shared, read-only context of one update.
struct Ctx<'a> {
    skip_below: f64,
    cfg: &'a InSituConfig,
    model: DriveModel,
    nominal: &'a Phys,
    shared: &'a Phys,
    shared_raw: &'a PulseDevice,
    range: f64,
    mid: f64,
    dpw: usize,
    step_up: f64,
    step_down: f64,
    lr: f32,
    opt: Optimizer,
    adam: (f32, f32),
    step: u64,
    disturb: (f64, f64),
    rbw: bool,
    neurosim: bool,
    filter: Filter,
    needs_uniform: bool,
    inv_step_up: f64,
    inv_step_down: f64,
    simd: Simd,
}

#[derive(Default)]
struct Acc {
    pulses: u64,
    e_write_j: f64,
    hs_factor: f64,
    /// Σ (G after − G before) over the block's programmed devices, in programming order.
    dg_sum: f64,
    row_lat: Vec<[f64; 2]>,
    row_dist: Vec<[f64; 2]>,
    col_dist: Vec<[f64; 2]>,
    own_dist: Vec<(usize, usize, f64)>,
    any: bool,
    max_dw: f64,
}

/// Receiver of warnings as they arise.
pub type WarningSink = Box<dyn Fn(&str) + Send + Sync>;

/// The crossbar weight store (see the module docs).
pub struct CrossbarStore {
    cfg: InSituConfig,
    seed: u64,
    model: DriveModel,
    nominal: Phys,
    shared: Phys,
    shared_raw: PulseDevice,
    range: f64,
    mid: f64,
    step_up: f64,
    step_down: f64,
    pulses_ltp: u32,
    pulses_ltd: u32,
    opt: Optimizer,
    layers: Vec<Option<XLayer>>,
    params: Vec<Option<Param>>,
    step: u64,
    stats: WriteStats,
    warnings: Vec<String>,
    sink: Option<WarningSink>,
    seen_pulse: bool,
    max_dw_seen: f64,
    simd: Simd,
    /// Test switch: no zero-pulse filter (every non-zero change goes to the exact programmer).
    exact_only: bool,
}

impl std::fmt::Debug for CrossbarStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrossbarStore")
            .field("scheme", &self.cfg.scheme)
            .field("step", &self.step)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Builds NeuroSim exponential devices with d2d NL labels like
/// [`ExpDeviceConfig::build`](nacsim_device::ExpDeviceConfig::build) (same draws, same clamp,
/// same `normA`), but with the `normA` table computed once instead of one bisection per device
/// (NeuroSim-table lookup only: the value depends on the label's table index alone).
pub struct FastBuilder {
    cfg: nacsim_device::ExpDeviceConfig,
    table: Vec<f64>,
}

impl FastBuilder {
    /// A builder for `device`, if it is a valid exponential device with the NeuroSim-table
    /// lookup.
    pub fn new(device: &nacsim_device::PulseDeviceConfig) -> Option<Self> {
        use nacsim_core::config::Validate;
        let cfg = match device {
            nacsim_device::PulseDeviceConfig::Preset(p) => p.resolve(),
            nacsim_device::PulseDeviceConfig::Exponential(e) => e.clone(),
            _ => return None,
        };
        if cfg.nl_lookup != nacsim_device::NlLookup::NeuroSimTable || cfg.validate().is_err() {
            return None;
        }
        let table = (1..=900)
            .map(|k| {
                // (k + 0.5)/100 truncates to table index k − 1 exactly (k/100 itself may not:
                // the 53-label quirk).
                let label = (f64::from(k) + 0.5) / 100.0;
                nacsim_device::norm_a(label, nacsim_device::NlLookup::NeuroSimTable)
                    .unwrap_or(f64::NAN)
            })
            .collect();
        Some(FastBuilder { cfg, table })
    }

    fn a(&self, nl: f64, p: u32) -> Option<f64> {
        if nl == 0.0 {
            return None;
        }
        let index = ((nl.abs() * 100.0) as i64 - 1).clamp(0, 899) as usize;
        Some(nl.signum() * self.table[index] * f64::from(p))
    }

    /// Device `device_index` drawn from `d2d`.
    pub fn build(&self, d2d: &Stream, device_index: u64) -> nacsim_device::ExpDevice {
        use nacsim_device::neurosim::NL_TABLE_RANGE;
        let c = &self.cfg;
        let (nl_ltp, nl_ltd) = if c.nl_d2d_sigma == 0.0 {
            (c.nl_ltp, c.nl_ltd)
        } else {
            let draw = |nl: f64, k: u64| {
                let x = d2d.normal(2 * device_index + k, nl, c.nl_d2d_sigma);
                let sign = if x < 0.0 { -1.0 } else { 1.0 };
                sign * x.abs().clamp(NL_TABLE_RANGE.0, NL_TABLE_RANGE.1)
            };
            (draw(c.nl_ltp, 0), draw(c.nl_ltd, 1))
        };
        nacsim_device::ExpDevice {
            g_max_s: c.g_on_s,
            g_min_s: c.g_off_s,
            pulses_ltp: c.pulses_ltp,
            pulses_ltd: c.pulses_ltd,
            a_ltp: self.a(nl_ltp, c.pulses_ltp),
            a_ltd: self.a(nl_ltd, c.pulses_ltd),
            sigma_c2c_s: c.c2c_sigma * (c.g_on_s - c.g_off_s),
            rounding: c.rounding,
        }
    }
}

fn within_device(errs: Vec<FieldError>) -> Vec<FieldError> {
    errs.into_iter().map(|e| e.within("device")).collect()
}

impl CrossbarStore {
    /// A store holding `params` (programmed ideally, by program-and-verify, before training;
    /// not counted), updated by `opt` (plain SGD for true in-situ training; momentum and Adam
    /// keep their state digitally), with device draws from `seed`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] when the config breaks a rule or a device cannot be built.
    pub fn new(
        cfg: InSituConfig,
        params: Vec<Option<Param>>,
        opt: Optimizer,
        seed: u64,
    ) -> Result<Self, StoreError> {
        use nacsim_core::config::Validate;
        cfg.validate()?;
        let (nominal_dev, pulses) = cfg.build_nominal()?;
        let model = DriveModel {
            pulses,
            exponent: cfg.drive.exponent,
        };
        let range = nominal_dev.g_max_s() - nominal_dev.g_min_s();
        let mid = 0.5 * (nominal_dev.g_max_s() + nominal_dev.g_min_s());
        let pulses_ltp = nominal_dev.pulses_ltp().max(1);
        let pulses_ltd = nominal_dev.pulses_ltd().max(1);
        let step_up = range / f64::from(pulses_ltp);
        let step_down = range / f64::from(nominal_dev.pulses_ltd().max(1));
        let nominal = Phys::new(nominal_dev);
        let shared_raw = cfg
            .device
            .build(&Stream::new(seed, Purpose::DeviceToDevice, 0, 0), 0)
            .map_err(within_device)?;
        let shared = Phys::new(shared_raw.clone());
        let d2d_on = cfg.has_d2d();
        let keep_raw = cfg.scheme == Scheme::NeuroSim;
        let dpw = cfg.mapping.devices_per_weight();
        let mut layers = Vec::with_capacity(params.len());
        for (li, p) in params.iter().enumerate() {
            let Some(p) = p else {
                layers.push(None);
                continue;
            };
            let id = li as u32;
            let (out, fan_in) = p.weight.dim();
            let has_bias = p.bias.is_some();
            let cols = fan_in + usize::from(has_bias);
            let n_dev = out * cols * dpw;
            let bank = if d2d_on {
                let d2d = Stream::new(seed, Purpose::DeviceToDevice, id, 0);
                let gr = Stream::new(seed, Purpose::DeviceToDevice, id, 1);
                let sig = cfg.variation.g_range_d2d_sigma;
                let fast = FastBuilder::new(&cfg.device);
                let raw: Result<Vec<PulseDevice>, Vec<FieldError>> = (0..n_dev)
                    .into_par_iter()
                    .map(|i| {
                        let mut d = match &fast {
                            Some(f) => PulseDevice::Exponential(f.build(&d2d, i as u64)),
                            None => cfg.device.build(&d2d, i as u64).map_err(within_device)?,
                        };
                        if sig > 0.0
                            && let PulseDevice::Exponential(e) = &mut d
                        {
                            let i = i as u64;
                            let hi = e.g_max_s * (1.0 + sig * gr.normal(2 * i, 0.0, 1.0));
                            let lo = e.g_min_s * (1.0 + sig * gr.normal(2 * i + 1, 0.0, 1.0));
                            let lo = lo.max(0.0);
                            let hi = hi.max(lo * (1.0 + 1e-6) + 1e-18);
                            e.sigma_c2c_s *= (hi - lo) / (e.g_max_s - e.g_min_s);
                            e.g_max_s = hi;
                            e.g_min_s = lo;
                        }
                        Ok(d)
                    })
                    .collect();
                let raw = raw?;
                let phys = raw.par_iter().map(|d| Phys::new(d.clone())).collect();
                Bank::PerDevice {
                    phys,
                    raw: if keep_raw { raw } else { Vec::new() },
                }
            } else {
                Bank::Shared
            };
            let (row_err, col_err) = if cfg.variation.voltage_error == VoltageError::PerDriver
                && cfg.variation.voltage_error_sigma > 0.0
            {
                let s = Stream::new(seed, Purpose::ProgrammingVoltage, id, 0);
                let sig = cfg.variation.voltage_error_sigma;
                (
                    (0..cols).map(|k| s.normal(k as u64, 0.0, sig)).collect(),
                    (0..out * dpw)
                        .map(|c| s.normal((1u64 << 32) + c as u64, 0.0, sig))
                        .collect(),
                )
            } else {
                (Vec::new(), Vec::new())
            };
            let mut g = vec![mid; n_dev];
            // Program the initial weights (program-and-verify, ideal, not counted).
            for o in 0..out {
                for k in 0..cols {
                    let w = if k < fan_in {
                        p.weight[[o, k]]
                    } else {
                        p.bias.as_ref().map_or(0.0, |b| b[o])
                    };
                    let half = f64::from(w) * range / (2.0 * cfg.w_max);
                    for j in 0..dpw {
                        let d = (o * cols + k) * dpw + j;
                        let target = match cfg.mapping {
                            crate::config::Mapping::Differential => {
                                if j == 0 {
                                    mid + half
                                } else {
                                    mid - half
                                }
                            }
                            crate::config::Mapping::Reference => mid + 2.0 * half,
                        };
                        let dev = match &bank {
                            Bank::Shared => &shared,
                            Bank::PerDevice { phys, .. } => &phys[d],
                        };
                        g[d] = target.clamp(dev.g_min_s(), dev.g_max_s());
                    }
                }
            }
            let est = if matches!(
                cfg.scheme,
                Scheme::ApproxLinear {
                    read_before_write: false,
                    ..
                }
            ) {
                g.clone()
            } else {
                Vec::new()
            };
            let g_sum = sum_f64(&g);
            let n_w = out * cols;
            let (m, v) = match opt {
                Optimizer::Sgd { momentum, .. } if momentum != 0.0 => (vec![0.0; n_w], Vec::new()),
                Optimizer::Adam { .. } => (vec![0.0; n_w], vec![0.0; n_w]),
                Optimizer::Sgd { .. } => (Vec::new(), Vec::new()),
            };
            layers.push(Some(XLayer {
                out,
                fan_in,
                cols,
                has_bias,
                g,
                est,
                pulses: vec![0; n_dev],
                g_sum,
                m,
                v,
                bank,
                row_err,
                col_err,
                c2c: Stream::new(seed, Purpose::CycleToCycle, id, 0),
                verr: Stream::new(seed, Purpose::ProgrammingVoltage, id, 1),
                round: Keyed::of(&Stream::new(seed, Purpose::Other(INSITU_ROUNDING), id, 0)),
            }));
        }
        let mut store = CrossbarStore {
            cfg,
            seed,
            model,
            nominal,
            shared,
            shared_raw,
            range,
            mid,
            step_up,
            step_down,
            pulses_ltp,
            pulses_ltd,
            opt,
            layers,
            params,
            step: 0,
            stats: WriteStats::default(),
            warnings: Vec::new(),
            sink: None,
            seen_pulse: false,
            max_dw_seen: 0.0,
            simd: Simd::detect(),
            exact_only: false,
        };
        store.stats.devices = store
            .layers
            .iter()
            .flatten()
            .map(|l| l.g.len() as u64)
            .sum();
        for li in 0..store.layers.len() {
            store.refresh_params(li);
        }
        let hs = store.half_select_drive();
        if store.cfg.variation.half_select_disturb && (hs.0 > 0.0 || hs.1 > 0.0) {
            store.warn(format!(
                "device threshold {} V is below half the write amplitude: half-selected cells \
                 are disturbed by every pulse in their row and column (drive {:.3}/{:.3} nominal \
                 pulses per pulse); raise device threshold_v or set \
                 variation.half_select_disturb: false to ignore it",
                store.model.pulses.threshold_v, hs.0, hs.1
            ));
        }
        Ok(store)
    }

    /// Sends warnings to `sink` as they arise (and replays those raised so far); they are also
    /// kept for [`warnings`](Self::warnings).
    pub fn set_warning_sink(&mut self, sink: WarningSink) {
        for w in &self.warnings {
            sink(w);
        }
        self.sink = Some(sink);
    }

    /// Warnings raised so far (bad settings that do not stop training).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn warn(&mut self, msg: String) {
        if let Some(s) = &self.sink {
            s(&msg);
        }
        self.warnings.push(msg);
    }

    /// The seed the devices were drawn from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The settings.
    pub fn config(&self) -> &InSituConfig {
        &self.cfg
    }

    /// Write totals so far.
    pub fn stats(&self) -> WriteStats {
        let mut s = self.stats.clone();
        let mut max = 0;
        let mut sum = 0u64;
        for l in self.layers.iter().flatten() {
            for &p in &l.pulses {
                max = max.max(p);
                sum += u64::from(p);
            }
        }
        s.max_pulses_per_device = max;
        s.mean_pulses_per_device = if s.devices > 0 {
            sum as f64 / s.devices as f64
        } else {
            0.0
        };
        s
    }

    /// Conductances (siemens) of layer `layer`'s devices in the module's device order.
    pub fn conductances(&self, layer: usize) -> Option<&[f64]> {
        self.layers.get(layer)?.as_ref().map(|l| l.g.as_slice())
    }

    /// Pulses each device of layer `layer` received.
    pub fn pulse_counts(&self, layer: usize) -> Option<&[u32]> {
        self.layers
            .get(layer)?
            .as_ref()
            .map(|l| l.pulses.as_slice())
    }

    /// Drive of a half-selected cell per write pulse, `(LTP, LTD)`, in nominal pulses.
    fn half_select_drive(&self) -> (f64, f64) {
        let p = &self.model.pulses;
        (
            self.model
                .drive(true, 0.5 * p.ltp.amplitude_v, p.ltp.width_s),
            self.model
                .drive(false, 0.5 * p.ltd.amplitude_v, p.ltd.width_s),
        )
    }

    fn refresh_params(&mut self, li: usize) {
        let dpw = self.cfg.mapping.devices_per_weight();
        let Some(l) = &self.layers[li] else {
            return;
        };
        let mut w = Array2::<f32>::zeros((l.out, l.fan_in));
        let mut b = l.has_bias.then(|| Array1::<f32>::zeros(l.out));
        for o in 0..l.out {
            for k in 0..l.cols {
                let d = (o * l.cols + k) * dpw;
                let x = weight_of(&self.cfg, self.range, self.mid, &l.g[d..d + dpw]) as f32;
                if k < l.fan_in {
                    w[[o, k]] = x;
                } else if let Some(b) = &mut b {
                    b[o] = x;
                }
            }
        }
        self.params[li] = Some(Param { weight: w, bias: b });
    }
}

#[inline]
fn weight_of(cfg: &InSituConfig, range: f64, mid: f64, g: &[f64]) -> f64 {
    match cfg.mapping {
        crate::config::Mapping::Differential => cfg.w_max * (g[0] - g[1]) / range,
        crate::config::Mapping::Reference => cfg.w_max * (g[0] - mid) * 2.0 / range,
    }
}

/// Binomial(n, p) by inversion of the CDF with one uniform `u`.
fn binomial(n: u32, p: f64, u: f64) -> u32 {
    if p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    let q = 1.0 - p;
    let mut prob = q.powi(n as i32);
    let mut cdf = prob;
    let mut k = 0;
    while u >= cdf && k < n {
        prob *= f64::from(n - k) / f64::from(k + 1) * p / q;
        k += 1;
        cdf += prob;
    }
    k
}

/// Sum of `x` in eight interleaved partial sums (vectorisable; a fixed order, so the result
/// does not depend on threads).
fn sum_f64(x: &[f64]) -> f64 {
    let mut p = [0.0f64; 8];
    let mut it = x.chunks_exact(8);
    for c in &mut it {
        for (a, v) in p.iter_mut().zip(c) {
            *a += v;
        }
    }
    let tail: f64 = it.remainder().iter().sum();
    ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7])) + tail
}

/// One block of an update: (index into the step's layer views, the block, its weight
/// gradients, its bias gradients).
type Job<'a> = (usize, Block<'a>, &'a [f32], Option<&'a [f32]>);

/// The mutable slices of one block of output rows.
struct Block<'a> {
    index: usize,
    o0: usize,
    g: &'a mut [f64],
    est: &'a mut [f64],
    pulses: &'a mut [u32],
    m: &'a mut [f32],
    v: &'a mut [f32],
    w: &'a mut [f32],
    b: &'a mut [f32],
}

/// Per-block Gaussian sources (created on first use).
struct Draws<'a> {
    c2c: ChunkNormals<'a>,
    verr: ChunkNormals<'a>,
}

/// One block of a layer's update.
fn update_block(
    ctx: &Ctx<'_>,
    l: &LayerView<'_>,
    blk: Block<'_>,
    gw: &[f32],
    gb: Option<&[f32]>,
) -> Acc {
    let dpw = ctx.dpw;
    let cols = l.cols;
    let rows = blk.g.len() / (cols * dpw);
    let mut acc = Acc {
        row_lat: vec![[0.0; 2]; cols],
        ..Acc::default()
    };
    if ctx.disturb != (0.0, 0.0) {
        acc.row_dist = vec![[0.0; 2]; cols];
        acc.col_dist = vec![[0.0; 2]; rows * dpw];
    }
    let dev0 = blk.o0 * cols * dpw;
    let gen_index = ctx.step * l.n_blocks as u64 + blk.index as u64;
    let mut draws = Draws {
        c2c: ChunkNormals::new(l.c2c, gen_index),
        verr: ChunkNormals::new(l.verr, gen_index),
    };
    let keys: Keys32 = l.round.at(ctx.step).keys32();
    let scale = ctx.range / (2.0 * ctx.cfg.w_max);
    // Pass 1: the optimiser over every weight of the block and a conservative zero-pulse test;
    // the weights that may be programmed, in index order, with their ΔW.
    let mut cand: Vec<(u32, f32)> = Vec::new();
    let mut buf = ScanBuf::default();
    let mut max_bits = 0u32;
    let w0 = (dev0 / dpw) as u64; // layer-wide index of the block's first weight
    let fan_in = l.fan_in;
    for r in 0..rows {
        let row = r * cols;
        let (m_w, m_b) = split_row(blk.m, row, fan_in, cols);
        let (v_w, v_b) = split_row(blk.v, row, fan_in, cols);
        let ws = &blk.w[r * fan_in..(r + 1) * fan_in];
        let gs = &gw[r * fan_in..(r + 1) * fan_in];
        scan(
            ctx,
            keys,
            w0,
            row,
            gs,
            ws,
            m_w,
            v_w,
            &mut buf,
            &mut cand,
            &mut max_bits,
        );
        if cols > fan_in {
            let b = blk.b.get(r).copied().unwrap_or(0.0);
            let g = gb.map_or(0.0, |gb| gb[r]);
            let (bs, gs) = ([b], [g]);
            scan(
                ctx,
                keys,
                w0,
                row + fan_in,
                &gs,
                &bs,
                m_b,
                v_b,
                &mut buf,
                &mut cand,
                &mut max_bits,
            );
        }
    }
    // Pass 2: the exact programmer on the candidates' devices (device order, so the c2c and
    // voltage-error normals are consumed in a fixed order).
    // Touch the candidates' conductances and pulse counters first: independent loads overlap
    // their cache misses, which the long per-device loop below would take one at a time.
    let mut warm = 0.0f64;
    for &(wi, _) in &cand {
        let d = wi as usize * dpw;
        warm += blk.g[d] + f64::from(blk.pulses[d]);
    }
    std::hint::black_box(warm);
    let est = blk.est;
    for &(wi, dw) in &cand {
        let wi = wi as usize;
        let (r, k) = (wi / cols, wi % cols);
        let o = blk.o0 + r;
        let index = (w0 + wi as u64) as u32;
        let a = f64::from(dw.abs()) * scale;
        let base = wi * dpw;
        let mut programmed = false;
        for j in 0..dpw {
            let sign = if j == 0 { 1.0 } else { -1.0 };
            let up = (dw > 0.0) == (j == 0);
            let u = if ctx.needs_uniform {
                let (w0, w1) = keys.words(index);
                unit32(if j == 0 { w0 } else { w1 })
            } else {
                0.0
            };
            let inv = if up {
                ctx.inv_step_up
            } else {
                ctx.inv_step_down
            };
            if !ctx.may_pulse(a * inv, u) {
                continue;
            }
            programmed = true;
            let di = base + j;
            let (dev, raw) = match l.bank {
                BankView::Shared => (ctx.shared, ctx.shared_raw),
                BankView::PerDevice { phys, raw } => (
                    &phys[dev0 + di],
                    raw.get(dev0 + di).unwrap_or(ctx.shared_raw),
                ),
            };
            let vf = if l.row_err.is_empty() {
                1.0
            } else {
                1.0 + 0.5 * (l.row_err[k] + l.col_err[o * dpw + j])
            };
            let est_slot = est.get_mut(di);
            program_device(
                ctx,
                dev,
                raw,
                &mut blk.g[di],
                est_slot,
                &mut blk.pulses[di],
                sign * f64::from(dw) * scale,
                sign * f64::from(dw),
                vf,
                u,
                &mut draws,
                (k, r * dpw + j, dev0 + di),
                &mut acc,
            );
        }
        if programmed {
            let w = weight_of(ctx.cfg, ctx.range, ctx.mid, &blk.g[base..base + dpw]) as f32;
            if k < fan_in {
                blk.w[r * fan_in + k] = w;
            } else if let Some(b) = blk.b.get_mut(r) {
                *b = w;
            }
        }
    }
    acc.max_dw = f64::from(f32::from_bits(max_bits));
    acc
}

/// The weight-part and bias-part slices of row `row` (block-local weight index of its first
/// column) of an optimiser buffer (empty slices when the buffer is unused).
fn split_row(buf: &mut [f32], row: usize, fan_in: usize, cols: usize) -> (&mut [f32], &mut [f32]) {
    if buf.is_empty() {
        return (&mut [], &mut []);
    }
    buf[row..row + cols].split_at_mut(fan_in)
}

/// Reusable buffers of pass 1.
#[derive(Default)]
struct ScanBuf {
    dw: Vec<f32>,
    flag: Vec<u8>,
}

/// Pass 1 of a block update over one contiguous run of weights: gradients `gs`, current
/// weights `ws`, optimiser buffers `m`, `v` (empty when unused), block-local weight index
/// `wi0` of the first, layer-wide index `w0 + wi0`; pushes `(block-local index, ΔW)` of every
/// weight whose devices may get a pulse and raises `max_bits` to the bits of the largest
/// finite `|ΔW|`. The zero-pulse test runs in f32 on 24-bit uniforms with a 1e-6 relative
/// margin, in straight-line loops the compiler vectorises; pass 2 decides exactly.
#[allow(clippy::too_many_arguments)]
fn scan(
    ctx: &Ctx<'_>,
    keys: Keys32,
    w0: u64,
    wi0: usize,
    gs: &[f32],
    ws: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    buf: &mut ScanBuf,
    cand: &mut Vec<(u32, f32)>,
    max_bits: &mut u32,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if ctx.simd == Simd::Avx512 {
            // SAFETY: `Simd::Avx512` is only set after detecting the features at run time.
            unsafe { x86::scan_avx512(ctx, keys, w0, wi0, gs, ws, m, v, buf, cand, max_bits) };
            return;
        }
        if ctx.simd == Simd::Avx2 {
            // SAFETY: `Simd::Avx2` is only set after detecting AVX2 at run time.
            unsafe { x86::scan_avx2(ctx, keys, w0, wi0, gs, ws, m, v, buf, cand, max_bits) };
            return;
        }
    }
    scan_impl(ctx, keys, w0, wi0, gs, ws, m, v, buf, cand, max_bits);
}

/// Vector instruction sets [`scan`] can be compiled for (the same arithmetic: integer hashes
/// and IEEE f32/f64 operations without contraction, so every path gives the same bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Simd {
    Baseline,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx512,
}

impl Simd {
    fn detect() -> Self {
        if nacsim_core::cpu::has_avx512() {
            Simd::Avx512
        } else if nacsim_core::cpu::has_avx2() {
            Simd::Avx2
        } else {
            Simd::Baseline
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Ctx, Keys32, ScanBuf, scan_impl};

    /// One wrapper of [`scan_impl`] compiled with the given target features.
    macro_rules! scan_with_features {
        ($(#[$doc:meta])* $name:ident, $features:literal) => {
            $(#[$doc])*
            #[allow(clippy::too_many_arguments)]
            #[target_feature(enable = $features)]
            pub(super) fn $name(
                ctx: &Ctx<'_>,
                keys: Keys32,
                w0: u64,
                wi0: usize,
                gs: &[f32],
                ws: &[f32],
                m: &mut [f32],
                v: &mut [f32],
                buf: &mut ScanBuf,
                cand: &mut Vec<(u32, f32)>,
                max_bits: &mut u32,
            ) {
                scan_impl(ctx, keys, w0, wi0, gs, ws, m, v, buf, cand, max_bits);
            }
        };
    }

    scan_with_features!(
        /// [`scan_impl`] compiled for AVX-512.
        scan_avx512,
        "avx2,avx512f,avx512bw,avx512vl,avx512dq"
    );
    scan_with_features!(
        /// [`scan_impl`] compiled for AVX2.
        scan_avx2,
        "avx2"
    );
}

/// The body of [`scan`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn scan_impl(
    ctx: &Ctx<'_>,
    keys: Keys32,
    w0: u64,
    wi0: usize,
    gs: &[f32],
    ws: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    buf: &mut ScanBuf,
    cand: &mut Vec<(u32, f32)>,
    max_bits: &mut u32,
) {
    let n = gs.len().min(ws.len());
    buf.flag.clear();
    buf.flag.resize(n, 0);
    match ctx.opt {
        Optimizer::Sgd {
            momentum: 0.0,
            weight_decay,
        } => {
            // Plain SGD: ΔW is recomputed where needed instead of stored.
            let lr = ctx.lr;
            let dw = |j: usize| -lr * (gs[j] + weight_decay * ws[j]);
            flag_run(ctx, keys, w0 + wi0 as u64, n, &dw, &mut buf.flag, max_bits);
            push_flagged(&buf.flag, wi0, &dw, cand);
        }
        _ => {
            buf.dw.clear();
            buf.dw.extend(
                gs.iter()
                    .zip(ws)
                    .enumerate()
                    // `m`, `v` are this run's slices: index `j`.
                    .map(|(j, (&g, &w))| optimizer_delta(ctx, g, w, m, v, j)),
            );
            let dws = &buf.dw[..];
            let dw = |j: usize| dws[j];
            flag_run(ctx, keys, w0 + wi0 as u64, n, &dw, &mut buf.flag, max_bits);
            push_flagged(&buf.flag, wi0, &dw, cand);
        }
    }
}

/// Sets `flags[j]` for the weights `j < n` of a run (layer-wide index `first + j`, change
/// `dw(j)`) whose devices may get a pulse, and raises `max_bits` to the bits of the largest
/// finite `|ΔW|`: one straight-line loop the compiler vectorises.
#[inline(always)]
fn flag_run(
    ctx: &Ctx<'_>,
    keys: Keys32,
    first: u64,
    n: usize,
    dw: &impl Fn(usize) -> f32,
    flags: &mut [u8],
    max_bits: &mut u32,
) {
    let flags = &mut flags[..n];
    let mut mx = *max_bits;
    match ctx.filter {
        Filter::All | Filter::Nearest => {
            let sb = ctx.skip_below;
            for (j, f) in flags.iter_mut().enumerate() {
                let a = dw(j).abs();
                let b = a.to_bits();
                // NaN (bits above +inf) does not count, as `f32::max` would ignore it.
                mx = mx.max(if b > 0x7F80_0000 { 0 } else { b });
                *f = u8::from(a > 0.0 && !(sb > 0.0 && f64::from(a) < sb));
            }
        }
        Filter::Stochastic | Filter::Coincidence => {
            // t = q·2^24·(1 + 2e-6) per device; u24 = word >> 8.
            let c = (ctx.range / (2.0 * ctx.cfg.w_max) * 16_777_216.0 * (1.0 + 1e-6)) as f32;
            let (cu, cd) = (
                c * ctx.inv_step_up as f32 * (1.0 + 1e-6),
                c * ctx.inv_step_down as f32 * (1.0 + 1e-6),
            );
            let two = ctx.dpw == 2;
            let coinc = ctx.filter == Filter::Coincidence;
            let base = first as u32;
            for (j, f) in flags.iter_mut().enumerate() {
                let d = dw(j);
                let a = d.abs();
                let b = a.to_bits();
                mx = mx.max(if b > 0x7F80_0000 { 0 } else { b });
                let (w0, w1) = keys.words(base.wrapping_add(j as u32));
                let (u0, u1) = ((w0 >> 8) as i32 as f32, (w1 >> 8) as i32 as f32);
                // Device 0 moves up for ΔW > 0, device 1 the other way.
                let (t0, t1) = if d > 0.0 {
                    (a * cu, a * cd)
                } else {
                    (a * cd, a * cu)
                };
                let hit = if coinc {
                    // u + q ≥ 1 − 1e-9 with u ≤ (u24 + 1)·2^-24; 16 = 1e-6·2^24 of slack.
                    (u0 + 1.0 + t0 + 16.0 >= 16_777_216.0)
                        | (two & (u1 + 1.0 + t1 + 16.0 >= 16_777_216.0))
                } else {
                    // q ≥ u, with u ≥ u24·2^-24.
                    (t0 >= u0) | (two & (t1 >= u1))
                };
                *f = u8::from(hit & (a > 0.0));
            }
        }
    }
    *max_bits = mx;
}

/// Pushes `(wi0 + j, dw(j))` for every set flag, in order (eight flags tested at a time).
#[inline(always)]
fn push_flagged(flags: &[u8], wi0: usize, dw: &impl Fn(usize) -> f32, cand: &mut Vec<(u32, f32)>) {
    let mut j = 0;
    for chunk in flags.chunks(8) {
        if chunk.iter().fold(0u8, |a, &f| a | f) != 0 {
            for (k, &f) in chunk.iter().enumerate() {
                if f != 0 {
                    cand.push(((wi0 + j + k) as u32, dw(j + k)));
                }
            }
        }
        j += chunk.len();
    }
}

/// The optimiser's weight change for gradient `grad` of a weight now at `w`.
#[inline]
fn optimizer_delta(
    ctx: &Ctx<'_>,
    grad: f32,
    w: f32,
    m: &mut [f32],
    v: &mut [f32],
    i: usize,
) -> f32 {
    match ctx.opt {
        Optimizer::Sgd {
            momentum,
            weight_decay,
        } => {
            let d = grad + weight_decay * w;
            if momentum == 0.0 {
                -ctx.lr * d
            } else {
                m[i] = momentum * m[i] + d;
                -ctx.lr * m[i]
            }
        }
        Optimizer::Adam {
            beta1,
            beta2,
            eps,
            weight_decay,
        } => {
            let (step, c2s) = ctx.adam;
            let d = grad + weight_decay * w;
            let fl = |x: f32| {
                if x.abs() < nacsim_nn::train::MOMENT_FLOOR {
                    0.0
                } else {
                    x
                }
            };
            m[i] = fl(beta1 * m[i] + (1.0 - beta1) * d);
            v[i] = fl(beta2 * v[i] + (1.0 - beta2) * d * d);
            -step * m[i] / (v[i].sqrt() / c2s + eps)
        }
    }
}

/// Plans and applies the pulses of one device; `u` is its rounding/coincidence uniform, `at`
/// is (crossbar row, block-local column, layer-wide device index).
#[allow(clippy::too_many_arguments)]
#[inline]
fn program_device(
    ctx: &Ctx<'_>,
    dev: &Phys,
    raw: &PulseDevice,
    g: &mut f64,
    est: Option<&mut f64>,
    count: &mut u32,
    dg: f64,
    dw_dev: f64,
    vf: f64,
    u: f64,
    draws: &mut Draws<'_>,
    at: (usize, usize, usize),
    acc: &mut Acc,
) {
    let up = dg > 0.0;
    let q = dg.abs() / if up { ctx.step_up } else { ctx.step_down };
    let g_old = *g;
    let (train, g_new) = if ctx.neurosim {
        let PulseDevice::Exponential(d) = raw else {
            return; // validated: NeuroSim needs an exponential device
        };
        let w = ctx.cfg.w_max;
        let out = d.write(g_old, dw_dev, -w, w, &mut draws.c2c);
        let Some(t) = nominal_train(&ctx.model, out.n_pulses > 0, out.n_pulses.unsigned_abs())
        else {
            return;
        };
        (t, out.g_s)
    } else {
        let train = match ctx.cfg.scheme {
            Scheme::FixedVoltage {
                magnitude,
                rounding,
                max_pulses,
            } => match magnitude {
                Magnitude::Sign => nominal_train(&ctx.model, up, 1),
                Magnitude::Count => {
                    let n = match rounding {
                        Rounding::Nearest => round_half_up(q),
                        Rounding::Stochastic => {
                            let f = (q as u64) as f64; // q ≥ 0: truncation is floor
                            f + f64::from(u8::from(u < q - f))
                        }
                    };
                    nominal_train(&ctx.model, up, n.min(f64::from(max_pulses)) as u32)
                }
                Magnitude::Width => {
                    let s = q.min(f64::from(max_pulses));
                    (s > 0.0).then(|| {
                        let p = ctx.model.nominal(up);
                        PulseTrain {
                            amplitude_v: p.amplitude_v,
                            width_s: p.width_s * s,
                            count: 1,
                            up,
                        }
                    })
                }
            },
            Scheme::ApproxLinear {
                method,
                modulate,
                max_drive,
                max_pulses,
                ..
            } => {
                let base = if ctx.rbw {
                    g_old
                } else {
                    est.as_deref().copied().unwrap_or(g_old)
                };
                let cap = max_drive * f64::from(max_pulses);
                let s = match method {
                    Linearization::Inversion => ctx.nominal.drive_to_reach(base, base + dg, cap),
                    Linearization::SmallSignal => {
                        let sl = ctx.nominal.slope(base, up);
                        if sl == 0.0 {
                            0.0
                        } else {
                            (dg / sl).abs().min(cap)
                        }
                    }
                };
                let t = modulated_train(
                    &ctx.model,
                    up,
                    s,
                    max_drive,
                    max_pulses,
                    modulate == Modulation::Amplitude,
                );
                if let (Some(t), Some(e)) = (&t, est) {
                    let s_cmd = f64::from(t.count) * ctx.model.drive(up, t.amplitude_v, t.width_s);
                    *e = ctx.nominal.respond(base, up, s_cmd, &mut NoNoise);
                }
                t
            }
            Scheme::Stochastic { bit_length } => {
                let p = q / f64::from(bit_length);
                nominal_train(&ctx.model, up, binomial(bit_length, p, u))
            }
            Scheme::NeuroSim => None,
        };
        let Some(train) = train else { return };
        // Physics: the actual pulse with its voltage error.
        let v = train.amplitude_v * vf;
        let r = ctx.model.drive(up, v, train.width_s);
        let n = f64::from(train.count);
        let mut s = n * r;
        let sig = ctx.cfg.variation.voltage_error_sigma;
        if sig > 0.0 && ctx.cfg.variation.voltage_error == VoltageError::PerPulse {
            let sd = n.sqrt() * ctx.model.drive_slope(up, v, train.width_s) * v.abs() * sig;
            s = (s + sd * draws.verr.next_normal()).max(0.0);
        }
        (train, dev.respond(g_old, up, s, &mut draws.c2c))
    };
    *g = g_new;
    acc.dg_sum += g_new - g_old;
    acc.any = true;
    *count = count.saturating_add(train.count);
    acc.pulses += u64::from(train.count);
    let v = train.amplitude_v * vf;
    let n = f64::from(train.count);
    acc.e_write_j += n * v * v * 0.5 * (g_old + g_new) * train.width_s;
    acc.hs_factor += n * 0.25 * v * v * train.width_s;
    let phase = usize::from(!train.up);
    let (row, col, d) = at;
    let dur = train.duration_s();
    if dur > acc.row_lat[row][phase] {
        acc.row_lat[row][phase] = dur;
    }
    if !acc.row_dist.is_empty() {
        let nominal_w = ctx.model.nominal(train.up).width_s;
        let widths = n * train.width_s / nominal_w;
        acc.row_dist[row][phase] += widths;
        acc.col_dist[col][phase] += widths;
        acc.own_dist.push((d, phase, widths));
    }
}

enum BankView<'a> {
    Shared,
    PerDevice {
        phys: &'a [Phys],
        raw: &'a [PulseDevice],
    },
}

struct LayerView<'a> {
    fan_in: usize,
    cols: usize,
    n_blocks: usize,
    bank: BankView<'a>,
    row_err: &'a [f64],
    col_err: &'a [f64],
    c2c: &'a Stream,
    verr: &'a Stream,
    round: Keyed,
}

/// `n` slices of `v` of `per` elements each (the last shorter), or `n` empty slices when `v`
/// is empty.
fn blocks_of<T>(v: &mut [T], per: usize, n: usize) -> Vec<&mut [T]> {
    if v.is_empty() {
        (0..n).map(|_| &mut [][..]).collect()
    } else {
        v.chunks_mut(per.max(1)).collect()
    }
}

impl WeightStore for CrossbarStore {
    fn params(&self) -> &[Option<Param>] {
        &self.params
    }

    fn update(&mut self, grads: &[Option<Param>], lr: f32) {
        self.step += 1;
        let dpw = self.cfg.mapping.devices_per_weight();
        let adam = match self.opt {
            Optimizer::Adam { beta1, beta2, .. } => {
                let t = self.step.min(i32::MAX as u64) as i32;
                (lr / (1.0 - beta1.powi(t)), (1.0 - beta2.powi(t)).sqrt())
            }
            Optimizer::Sgd { .. } => (0.0, 1.0),
        };
        let disturb = if self.cfg.variation.half_select_disturb {
            self.half_select_drive()
        } else {
            (0.0, 0.0)
        };
        let rbw = matches!(
            self.cfg.scheme,
            Scheme::ApproxLinear {
                read_before_write: true,
                ..
            }
        );
        // |ΔG| = |ΔW|·range/(2·w_max) rounds to zero pulses below half the smaller step.
        let skip_below = match self.cfg.scheme {
            Scheme::FixedVoltage {
                magnitude: Magnitude::Count,
                rounding: Rounding::Nearest,
                ..
            } => 0.5 * self.step_up.min(self.step_down) * 2.0 * self.cfg.w_max / self.range,
            // NeuroSim: nPulse = round_half_up(|ΔW|/(2·w_max)·P) is 0 below w_max/P.
            Scheme::NeuroSim => self.cfg.w_max / f64::from(self.pulses_ltp.max(self.pulses_ltd)),
            _ => 0.0,
        };
        let filter = match self.cfg.scheme {
            Scheme::FixedVoltage {
                magnitude: Magnitude::Count,
                rounding,
                ..
            } => match rounding {
                Rounding::Nearest => Filter::Nearest,
                Rounding::Stochastic => Filter::Stochastic,
            },
            Scheme::Stochastic { .. } => Filter::Coincidence,
            _ => Filter::All,
        };
        let ctx = Ctx {
            skip_below,
            cfg: &self.cfg,
            model: self.model,
            nominal: &self.nominal,
            shared: &self.shared,
            shared_raw: &self.shared_raw,
            range: self.range,
            mid: self.mid,
            dpw,
            step_up: self.step_up,
            step_down: self.step_down,
            lr,
            opt: self.opt,
            adam,
            step: self.step - 1,
            disturb,
            rbw,
            neurosim: self.cfg.scheme == Scheme::NeuroSim,
            filter: if self.exact_only { Filter::All } else { filter },
            needs_uniform: matches!(filter, Filter::Stochastic | Filter::Coincidence),
            inv_step_up: 1.0 / self.step_up,
            inv_step_down: 1.0 / self.step_down,
            simd: self.simd,
        };
        let mut any = false;
        let mut max_dw = 0.0f64;
        let mut step_latency = 0.0;
        let mut e_write = 0.0;
        let mut e_hs = 0.0;
        let mut e_read = 0.0;
        let mut disturbed = Vec::new();
        // All blocks of all layers in one parallel pass (one fork-join per step); the layers'
        // accounting is merged afterwards, layer by layer, in block order.
        let mut views: Vec<(usize, LayerView<'_>)> = Vec::new();
        let mut work: Vec<Job<'_>> = Vec::new();
        for (li, ((layer, grad), param)) in self
            .layers
            .iter_mut()
            .zip(grads)
            .zip(self.params.iter_mut())
            .enumerate()
        {
            let (Some(l), Some(gr), Some(param)) = (layer, grad, param) else {
                continue;
            };
            let n_dev = l.g.len();
            let rows_per_block = (CHUNK_DEVICES / (l.cols * dpw)).max(1);
            let per = rows_per_block * l.cols * dpw;
            let n_blocks = n_dev.div_ceil(per);
            let vi = views.len();
            views.push((
                li,
                LayerView {
                    fan_in: l.fan_in,
                    cols: l.cols,
                    n_blocks,
                    bank: match &l.bank {
                        Bank::Shared => BankView::Shared,
                        Bank::PerDevice { phys, raw } => BankView::PerDevice { phys, raw },
                    },
                    row_err: &l.row_err,
                    col_err: &l.col_err,
                    c2c: &l.c2c,
                    verr: &l.verr,
                    round: l.round,
                },
            ));
            let sl = "parameters are standard-layout arrays";
            let gw = gr.weight.as_slice().expect(sl);
            let gb = gr.bias.as_ref().map(|b| b.as_slice().expect(sl));
            let w_per = rows_per_block * l.cols;
            let pw = param.weight.as_slice_mut().expect(sl);
            let pb: &mut [f32] = match &mut param.bias {
                Some(b) => b.as_slice_mut().expect(sl),
                None => &mut [],
            };
            let (cols, fan_in) = (l.cols, l.fan_in);
            work.extend(
                l.g.chunks_mut(per)
                    .zip(l.pulses.chunks_mut(per))
                    .zip(blocks_of(&mut l.est, per, n_blocks))
                    .zip(blocks_of(&mut l.m, w_per, n_blocks))
                    .zip(blocks_of(&mut l.v, w_per, n_blocks))
                    .zip(blocks_of(pw, rows_per_block * fan_in, n_blocks))
                    .zip(blocks_of(pb, rows_per_block, n_blocks))
                    .enumerate()
                    .map(|(index, ((((((g, pulses), est), m), v), w), b))| {
                        let o0 = index * rows_per_block;
                        let rows = g.len() / (cols * dpw);
                        let blk = Block {
                            index,
                            o0,
                            g,
                            est,
                            pulses,
                            m,
                            v,
                            w,
                            b,
                        };
                        let gwc = &gw[o0 * fan_in..(o0 + rows) * fan_in];
                        let gbc = gb.map(|b| &b[o0..o0 + rows]);
                        (vi, blk, gwc, gbc)
                    }),
            );
        }
        let accs: Vec<(usize, Acc)> = work
            .into_par_iter()
            .map(|(vi, blk, gwc, gbc)| (vi, update_block(&ctx, &views[vi].1, blk, gwc, gbc)))
            .collect();
        let done: Vec<usize> = views.iter().map(|v| v.0).collect();
        drop(views);
        let mut accs = accs.into_iter().peekable();
        for (vi, li) in done.into_iter().enumerate() {
            let Some(l) = self.layers[li].as_mut() else {
                continue;
            };
            let n_dev = l.g.len();
            let mut row_lat = vec![[0.0f64; 2]; l.cols];
            let mut row_dist = vec![[0.0f64; 2]; l.cols];
            let mut col_dist: Vec<[f64; 2]> = Vec::new();
            let mut own: Vec<(usize, usize, f64)> = Vec::new();
            let mut hs = 0.0;
            // Σ G at the start of the step, kept incrementally (recomputed after disturb).
            let g_sum = l.g_sum;
            while let Some((_, a)) = accs.next_if(|(v, _)| *v == vi) {
                any |= a.any;
                max_dw = max_dw.max(a.max_dw);
                self.stats.pulses += a.pulses;
                e_write += a.e_write_j;
                hs += a.hs_factor;
                l.g_sum += a.dg_sum;
                for (t, s) in row_lat.iter_mut().zip(&a.row_lat) {
                    t[0] = t[0].max(s[0]);
                    t[1] = t[1].max(s[1]);
                }
                for (t, s) in row_dist.iter_mut().zip(&a.row_dist) {
                    t[0] += s[0];
                    t[1] += s[1];
                }
                col_dist.extend_from_slice(&a.col_dist);
                own.extend_from_slice(&a.own_dist);
            }
            let g_mean = g_sum / n_dev.max(1) as f64;
            let cells_per_row = (l.out * dpw) as f64;
            let cells_per_col = l.cols as f64;
            e_hs += hs * g_mean * (cells_per_row - 1.0 + cells_per_col - 1.0);
            step_latency += row_lat.iter().map(|r| r[0] + r[1]).sum::<f64>();
            if rbw {
                let p = &self.cfg.periphery;
                e_read += p.read_v * p.read_v * g_sum * p.read_width_s;
                step_latency += l.cols as f64 * p.read_width_s;
            }
            if disturb != (0.0, 0.0) && !col_dist.is_empty() {
                apply_disturb(&ctx, l, &row_dist, &col_dist, &own);
                disturbed.push(li);
            }
        }
        for li in disturbed {
            self.refresh_params(li);
        }
        self.stats.steps += 1;
        self.stats.write_energy_pj += e_write * 1e12;
        self.stats.half_select_energy_pj += e_hs * 1e12;
        self.stats.read_energy_pj += e_read * 1e12;
        self.stats.write_latency_s += step_latency;
        self.seen_pulse |= any;
        self.max_dw_seen = self.max_dw_seen.max(max_dw);
        if self.step == ZERO_PULSE_WARN_STEPS && !self.seen_pulse {
            let per_pulse = 2.0 * self.cfg.w_max / f64::from(self.pulses_ltp);
            self.warn(format!(
                "train.lr = {lr}: the first {ZERO_PULSE_WARN_STEPS} updates gave zero programming \
                 pulses (largest |ΔW| {:.3e}, one nominal pulse is ΔW ≈ {per_pulse:.3e} and \
                 rounding needs half of it), so the weights never change; raise train.lr, lower \
                 w_max, or use stochastic rounding",
                self.max_dw_seen
            ));
        }
    }

    fn export(&self) -> Vec<Option<Param>> {
        self.params.clone()
    }
}

/// Half-select disturb: every cell moves by the drive of the `V/2` pulses that its row and
/// column carried for other cells (noise-free), LTP first.
fn apply_disturb(
    ctx: &Ctx<'_>,
    l: &mut XLayer,
    row: &[[f64; 2]],
    col: &[[f64; 2]],
    own: &[(usize, usize, f64)],
) {
    let dpw = ctx.dpw;
    let cols = l.cols;
    let (hs_up, hs_down) = ctx.disturb;
    // A selected cell does not see V/2 from its own pulses: they are counted once in its row's
    // and once in its column's sum, so subtract them twice.
    let mut own_w = vec![[0.0f64; 2]; l.g.len()];
    for &(d, phase, w) in own {
        own_w[d][phase] += 2.0 * w;
    }
    let bank = &l.bank;
    l.g.par_chunks_mut(CHUNK_DEVICES)
        .enumerate()
        .for_each(|(ci, g)| {
            for (i, gv) in g.iter_mut().enumerate() {
                let d = ci * CHUNK_DEVICES + i;
                let k = (d / dpw) % cols;
                let c = (d / (dpw * cols)) * dpw + d % dpw;
                let dev = match bank {
                    Bank::Shared => ctx.shared,
                    Bank::PerDevice { phys, .. } => &phys[d],
                };
                let up = hs_up * (row[k][0] + col[c][0] - own_w[d][0]).max(0.0);
                let down = hs_down * (row[k][1] + col[c][1] - own_w[d][1]).max(0.0);
                let x = dev.respond(*gv, true, up, &mut NoNoise);
                *gv = dev.respond(x, false, down, &mut NoNoise);
            }
        });
    l.g_sum = sum_f64(&l.g);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn store(settings: &str, simd: Simd, exact_only: bool) -> CrossbarStore {
        let cfg: InSituConfig =
            nacsim_core::config::parse(settings, Path::new("t.ron")).expect("settings");
        // 40 outputs × (300 inputs + bias): several row blocks per layer.
        let w = Array2::from_shape_fn((40, 300), |(o, k)| {
            ((o * 31 + k * 7) % 97) as f32 / 97.0 - 0.5
        });
        let b = Array1::from_shape_fn(40, |o| o as f32 / 80.0 - 0.25);
        let params = vec![Some(Param {
            weight: w,
            bias: Some(b),
        })];
        let sgd = Optimizer::Sgd {
            momentum: 0.0,
            weight_decay: 0.0,
        };
        let mut s = CrossbarStore::new(cfg, params, sgd, 3).expect("store");
        s.simd = simd;
        s.exact_only = exact_only;
        s
    }

    /// Weight and conductance bits and pulse counts after `steps` updates with varied gradients
    /// (many small, some large, some zero).
    fn run(
        mut s: CrossbarStore,
        steps: usize,
        lr: f32,
    ) -> (Vec<u32>, Vec<u64>, Vec<u32>, WriteStats) {
        for t in 0..steps {
            let grads: Vec<Option<Param>> = s
                .params()
                .iter()
                .map(|p| {
                    p.as_ref().map(|p| {
                        let mut i = t as u64 * 1_000_003;
                        let mut g = || {
                            i = i.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                            let x = (i >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                            match (i >> 20) % 5 {
                                0 => 0.0,
                                1 => x * 2.0,
                                _ => x * 0.02,
                            }
                        };
                        Param {
                            weight: p.weight.mapv(|_| g()),
                            bias: p.bias.as_ref().map(|b| b.mapv(|_| g())),
                        }
                    })
                })
                .collect();
            s.update(&grads, lr);
        }
        let bits = s
            .params()
            .iter()
            .flatten()
            .flat_map(|p| {
                p.weight
                    .iter()
                    .chain(p.bias.iter().flatten())
                    .map(|x| x.to_bits())
            })
            .collect();
        let g = s
            .conductances(0)
            .expect("layer")
            .iter()
            .map(|x| x.to_bits())
            .collect();
        let pulses = s.pulse_counts(0).expect("layer").to_vec();
        (bits, g, pulses, s.stats())
    }

    const SCHEMES: [&str; 4] = [
        "(device: Preset((preset: AgASi)), scheme: FixedVoltage(magnitude: Count, rounding: Stochastic))",
        "(device: Preset((preset: AgASi)), scheme: FixedVoltage(magnitude: Count, rounding: Nearest))",
        "(device: Preset((preset: AgASi)), scheme: Stochastic(bit_length: 10))",
        "(device: Preset((preset: AgASi)), scheme: FixedVoltage(magnitude: Count, rounding: Stochastic), mapping: Reference)",
    ];

    #[test]
    fn zero_pulse_filter_never_drops_a_pulse() {
        for settings in SCHEMES {
            let fast = run(store(settings, Simd::detect(), false), 12, 0.05);
            let exact = run(store(settings, Simd::detect(), true), 12, 0.05);
            assert!(fast.3.pulses > 100, "{settings}: {:?}", fast.3);
            assert_eq!(fast.0, exact.0, "{settings}");
            assert_eq!(fast.1, exact.1, "{settings}");
            assert_eq!(fast.2, exact.2, "{settings}");
            assert_eq!(fast.3, exact.3, "{settings}");
        }
    }

    #[test]
    fn vector_paths_give_the_same_bits_as_the_baseline() {
        for settings in SCHEMES {
            let base = run(store(settings, Simd::Baseline, false), 8, 0.05);
            let mut paths = vec![Simd::detect()];
            if nacsim_core::cpu::has_avx2() {
                paths.push(Simd::Avx2);
            }
            for simd in paths {
                let v = run(store(settings, simd, false), 8, 0.05);
                assert_eq!(base.0, v.0, "{settings} {simd:?}");
                assert_eq!(base.1, v.1, "{settings} {simd:?}");
                assert_eq!(base.3, v.3, "{settings} {simd:?}");
            }
        }
    }

    #[test]
    fn incremental_conductance_sum_tracks_the_full_sum() {
        let mut s = store(SCHEMES[0], Simd::detect(), false);
        for _ in 0..3 {
            let grads = vec![s.params()[0].as_ref().map(|p| Param {
                weight: p.weight.mapv(|w| w - 0.1),
                bias: p.bias.as_ref().map(|b| b.mapv(|w| w + 0.3)),
            })];
            s.update(&grads, 0.5);
        }
        let l = s.layers[0].as_ref().expect("layer");
        let full = sum_f64(&l.g);
        assert!(s.stats().pulses > 0);
        assert!(
            (l.g_sum - full).abs() <= 1e-12 * full.abs(),
            "{} vs {full}",
            l.g_sum
        );
    }
}
