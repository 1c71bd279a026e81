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
//! The optimiser's change `ΔW` ([`nacsim_nn::optim`]; plain SGD, `ΔW = −lr·∇W`, is what in-situ training does; with
//! momentum or Adam the optimiser state is kept digitally in the periphery and only `ΔW` reaches
//! the array) becomes a desired change `ΔG = ±ΔW·(Gmax − Gmin)/(2·w_max)` per device (half the
//! change on each device of a pair, in opposite directions), which the scheme's programmer turns
//! into a [`PulseTrain`](crate::program::PulseTrain) that the device model applies.
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
//! no pulse. Pass 1 per block (`scan`) runs over contiguous rows: the optimiser's `ΔW` (the
//! shared [`nacsim_nn::optim::Step`]; the current weight is the store's f32 parameter, which
//! always equals the conductances' weight), the rounding words when the scheme needs them, and
//! a conservative zero-pulse test (f32, 24-bit uniforms, 1e-6 relative margin) in
//! straight-line loops that the compiler vectorises, built for AVX-512 and AVX2 too and picked
//! at run time. Pass 2 (`update`) runs the exact programmer (f64 division, rounding against
//! the full 32-bit uniform, device response) only on the weights pass 1 kept, in index order.
//! A test checks that pass 1 never drops a pulse: with the test switched off every weight goes
//! to pass 2 and the results are bit-identical. The sum of conductances for the half-select
//! energy is kept incrementally instead of re-read each step (`accounting`).
//!
//! # Modules
//!
//! | module | job |
//! |---|---|
//! | `layer` | one layer's crossbar and the initial program-and-verify |
//! | `devices` | the device bank with d2d draws, the tabulated NeuroSim builder ([`FastBuilder`]) |
//! | `draws` | per-block normal and uniform sources ([`ChunkNormals`], [`ChunkUniforms`]) |
//! | `scan` | pass 1: optimiser step and zero-pulse test, vector builds |
//! | `update` | pass 2: the exact programmer per device, the block's accumulators |
//! | `accounting` | merging a step's energy and latency, half-select disturb |
//! | `neurosim` | opt-in MLP_NeuroSim write accounting: each step's signed pulses per cell through `SubArray::write_image`, summed per epoch ([`CrossbarStore::enable_neurosim`]) |

mod accounting;
mod devices;
mod draws;
mod layer;
mod neurosim;
#[cfg(test)]
mod neurosim_tests;
mod scan;
#[cfg(test)]
mod tests;
mod update;

use nacsim_core::config::FieldError;
use nacsim_core::{Purpose, Stream};
use nacsim_device::{PulseDevice, PulseResponse};
use nacsim_nn::model::Param;
use nacsim_nn::train::{Optimizer, WeightStore};
use ndarray::{Array1, Array2};
use rayon::prelude::*;
use serde::Serialize;

pub use devices::FastBuilder;
pub use draws::{ChunkNormals, ChunkUniforms};
pub use nacsim_crossbar::neurosim::{NeuroSimConfig, WriteCost};
pub use neurosim::{NeuroSimEpochWrite, NeuroSimWriteLog};

use crate::config::{InSituConfig, Magnitude, PulseCountRounding, Scheme};
use crate::program::{DriveModel, Phys};
use accounting::{StepTotals, merge_layer};
use devices::{Bank, within_device};
use layer::XLayer;
use scan::Filter;
use update::{Acc, BankView, Block, Ctx, Job, LayerView, blocks_of, update_block, weight_of};

/// `Purpose::Other` code of the rounding and coincidence draws.
pub const INSITU_ROUNDING: u32 = 0x1757;

/// Devices per parallel task of an update (fixed, so results do not depend on thread count).
pub(super) const CHUNK_DEVICES: usize = 8_192;

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
    /// Test switch: pass 1 without extra target features.
    baseline_scan: bool,
    /// Test switch: no zero-pulse filter (every non-zero change goes to the exact programmer).
    exact_only: bool,
    /// MLP_NeuroSim write accounting, when enabled.
    neurosim: Option<neurosim::Tracker>,
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
        let shared_layer = layer::Shared {
            cfg: &cfg,
            seed,
            device: &shared,
            range,
            mid,
            opt,
        };
        let layers = params
            .iter()
            .enumerate()
            .map(|(li, p)| {
                p.as_ref()
                    .map(|p| XLayer::build(&shared_layer, li as u32, p))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
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
            baseline_scan: false,
            exact_only: false,
            neurosim: None,
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

    /// Turns on MLP_NeuroSim's write accounting (issue #17): from now on every update step is
    /// priced as one training image by `SubArray::write_image` of the sub-arrays of `cfg` (one
    /// per crossbar layer, input side first) and summed per epoch of `steps_per_epoch` steps
    /// ([`neurosim_write`](Self::neurosim_write)). Training itself is unchanged.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] naming the field: the scheme is not `NeuroSim` (NeuroSim's
    /// pulse counts), the mapping not `Reference` (one cell per weight), `cfg` is invalid or its
    /// sub-arrays do not match the layers (`neurosim.layers[i].rows` = inputs (+ bias),
    /// `cols` = outputs), or `steps_per_epoch` is 0.
    pub fn enable_neurosim(
        &mut self,
        cfg: &nacsim_crossbar::neurosim::NeuroSimConfig,
        steps_per_epoch: u64,
    ) -> Result<(), StoreError> {
        let mut e = Vec::new();
        if self.cfg.scheme != Scheme::NeuroSim {
            e.push(FieldError::new(
                "scheme",
                format!("{:?}", self.cfg.scheme),
                "NeuroSim write figures need scheme: NeuroSim (NeuroSim's integer pulse count per cell)",
            ));
        }
        if self.cfg.mapping != crate::config::Mapping::Reference {
            e.push(FieldError::new(
                "mapping",
                format!("{:?}", self.cfg.mapping),
                "NeuroSim's sub-arrays hold one cell per weight: use mapping: Reference",
            ));
        }
        match neurosim::Tracker::new(cfg, &self.layers, steps_per_epoch) {
            Ok(t) if e.is_empty() => {
                self.neurosim = Some(t);
                Ok(())
            }
            Ok(_) => Err(StoreError::Invalid(e)),
            Err(more) => {
                e.extend(more);
                Err(StoreError::Invalid(e))
            }
        }
    }

    /// NeuroSim's write cost per epoch and sub-array so far, when
    /// [`enable_neurosim`](Self::enable_neurosim) turned it on.
    pub fn neurosim_write(&self) -> Option<&NeuroSimWriteLog> {
        self.neurosim.as_ref().map(|t| &t.log)
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

    /// The read-only context of update step `self.step` (1-based, already counted) at
    /// learning rate `lr`.
    fn context(&self, lr: f32) -> Ctx<'_> {
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
                rounding: PulseCountRounding::Nearest,
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
                PulseCountRounding::Nearest => Filter::Nearest,
                PulseCountRounding::Stochastic => Filter::Stochastic,
            },
            Scheme::Stochastic { .. } => Filter::Coincidence,
            _ => Filter::All,
        };
        Ctx {
            skip_below,
            cfg: &self.cfg,
            model: self.model,
            nominal: &self.nominal,
            shared: &self.shared,
            shared_raw: &self.shared_raw,
            range: self.range,
            mid: self.mid,
            dpw: self.cfg.mapping.devices_per_weight(),
            step_up: self.step_up,
            step_down: self.step_down,
            opt_step: self.opt.step(lr, self.step),
            step: self.step - 1,
            disturb,
            rbw,
            neurosim: self.cfg.scheme == Scheme::NeuroSim,
            filter: if self.exact_only { Filter::All } else { filter },
            needs_uniform: matches!(filter, Filter::Stochastic | Filter::Coincidence),
            inv_step_up: 1.0 / self.step_up,
            inv_step_down: 1.0 / self.step_down,
            baseline_scan: self.baseline_scan,
            ns_trace: false,
        }
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

impl WeightStore for CrossbarStore {
    fn params(&self) -> &[Option<Param>] {
        &self.params
    }

    fn update(&mut self, grads: &[Option<Param>], lr: f32) {
        self.step += 1;
        // The layers and parameters leave the store for the step, so the context can borrow
        // the rest of it.
        let mut layers = std::mem::take(&mut self.layers);
        let mut params = std::mem::take(&mut self.params);
        let mut tracker = self.neurosim.take();
        let mut ctx = self.context(lr);
        ctx.ns_trace = tracker.is_some();
        let dpw = ctx.dpw;
        let mut totals = StepTotals::default();
        let mut disturbed = Vec::new();
        // All blocks of all layers in one parallel pass (one fork-join per step); the layers'
        // accounting is merged afterwards, layer by layer, in block order.
        let mut views: Vec<(usize, LayerView<'_>)> = Vec::new();
        let mut work: Vec<Job<'_>> = Vec::new();
        for (li, ((layer, grad), param)) in layers
            .iter_mut()
            .zip(grads)
            .zip(params.iter_mut())
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
        let mut accs: Vec<(usize, Acc)> = work
            .into_par_iter()
            .map(|(vi, blk, gwc, gbc)| (vi, update_block(&ctx, &views[vi].1, blk, gwc, gbc)))
            .collect();
        let done: Vec<usize> = views.iter().map(|v| v.0).collect();
        drop(views);
        if let Some(t) = tracker.as_mut() {
            for (vi, a) in &mut accs {
                t.record(done[*vi], &a.ns_cells);
                a.ns_cells = Vec::new();
            }
        }
        let mut accs = accs.into_iter().peekable();
        let read = ctx.rbw.then_some(&self.cfg.periphery);
        for (vi, li) in done.into_iter().enumerate() {
            let Some(l) = layers[li].as_mut() else {
                continue;
            };
            let layer_accs = std::iter::from_fn(|| accs.next_if(|(v, _)| *v == vi).map(|a| a.1));
            if merge_layer(&ctx, l, layer_accs, read, &mut totals) {
                disturbed.push(li);
            }
        }
        self.layers = layers;
        self.params = params;
        for li in disturbed {
            self.refresh_params(li);
        }
        if let Some(mut t) = tracker {
            t.finish_step(self.step - 1);
            self.neurosim = Some(t);
        }
        self.stats.steps += 1;
        self.stats.pulses += totals.pulses;
        self.stats.write_energy_pj += totals.write_j * 1e12;
        self.stats.half_select_energy_pj += totals.half_select_j * 1e12;
        self.stats.read_energy_pj += totals.read_j * 1e12;
        self.stats.write_latency_s += totals.latency_s;
        self.seen_pulse |= totals.any;
        self.max_dw_seen = self.max_dw_seen.max(totals.max_dw);
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
