//! Reports of a run (`nacsim run`) and of what is known without data (`nacsim info`).
//! The JSON keys are stable and documented in `docs/report-format.md`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::area::{AreaFigures, DesignArea, design_area};
use crate::sim::{LayerCost, SimError, Simulation};

pub use crate::units::eng;

/// Per-layer figures of a run.
#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    /// Layer name.
    pub name: String,
    /// Engine name, or `vector` for layers on the vector unit.
    pub engine: String,
    /// Layer kind.
    pub kind: String,
    /// Cycles (compute + DRAM stalls).
    pub cycles: u64,
    /// Simulated time of the layer over all images: `cycles / clock_hz`, seconds.
    pub time_s: f64,
    /// Operations (2 per MAC).
    pub ops: u64,
    /// `ops / time_s / 1e9`.
    pub gops: f64,
    /// Energy in pJ.
    pub energy_pj: f64,
    /// Energy by component in pJ.
    pub energy_breakdown_pj: BTreeMap<String, f64>,
    /// `ops / energy` in TOPS/W (= ops per pJ).
    pub tops_per_watt: f64,
    /// MACs over (engine MAC slots × cycles); 0 on the vector unit.
    pub utilization: f64,
    /// Cycles spent waiting for DRAM.
    pub stall_cycles: u64,
    /// DRAM bytes read.
    pub dram_read_bytes: u64,
    /// DRAM bytes written.
    pub dram_write_bytes: u64,
    /// SRAM bytes read (weights + activations).
    pub sram_read_bytes: u64,
    /// SRAM bytes written.
    pub sram_write_bytes: u64,
    /// Action counts.
    pub counters: BTreeMap<String, u64>,
    /// Area of the layer's own hardware (a crossbar layer's arrays and periphery), mm²; null
    /// for layers on shared hardware or without a technology file (absent from the JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_mm2: Option<f64>,
    /// The layer's own hardware units (`arrays`, `adcs`, `dacs`, ...); absent when none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub hardware_counts: BTreeMap<String, u64>,
}

/// Area (mm²) and hardware counts of plan layer `li`, if it has hardware of its own.
fn layer_area(area: Option<&DesignArea>, li: usize) -> (Option<f64>, BTreeMap<String, u64>) {
    match area.and_then(|a| a.layers.get(&li)) {
        Some(l) => (Some(l.area.total_area_um2() * 1e-6), l.counts.clone()),
        None => (None, BTreeMap::new()),
    }
}

/// Which images set the int8 scales of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Calibration {
    /// Where they come from (a folder, or the bundled sample).
    pub data: String,
    /// `train` (the training split: no evaluation image sets a scale) or `test` (the evaluation
    /// images themselves, when the data have no training split; the report warns).
    pub split: nacsim_nn::data::Split,
    /// Images calibrated on: the first `quant.calibration_images` of the set, or all of it.
    pub images: usize,
}

impl Calibration {
    /// The same with `images` set to what `sim`'s quantization used of a set of `available`.
    pub fn with_images(mut self, sim: &Simulation, available: usize) -> Self {
        self.images = sim.qnet.config.calibration_images.min(available);
        self
    }
}

/// Where a report's energies come from: the design's energy table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnergyProvenance {
    /// The table's name.
    pub name: String,
    /// Its source (paper, table, scaling rule).
    pub source: String,
    /// Its technology node in nm, if it is for one.
    pub technology_nm: Option<u32>,
    /// True when the table is fitted to a paper's headline figure (a calibration, not a
    /// prediction): every action is folded into few entries and the headline is reproduced by
    /// construction at full utilization.
    pub calibrated: bool,
}

impl EnergyProvenance {
    /// One line for text reports: name, node, the calibration flag in capitals, source.
    pub fn describe(&self) -> String {
        format!(
            "{}{}{}: {}",
            self.name,
            self.technology_nm
                .map_or(String::new(), |nm| format!(", {nm} nm")),
            if self.calibrated {
                ", CALIBRATED to a paper's headline (not a prediction)"
            } else {
                ""
            },
            self.source
        )
    }

    /// The energy table of `sim`'s design.
    pub fn of(sim: &Simulation) -> Self {
        let t = &sim.design.energy;
        Self {
            name: t.name.clone(),
            source: t.source.clone(),
            technology_nm: t.technology_nm,
            calibrated: t.calibrated,
        }
    }
}

/// What a run measured or was told, besides the costs [`RunReport::build`] computes.
#[derive(Clone, Debug)]
pub struct RunFacts {
    /// Network label (file or embedded name).
    pub network: String,
    /// Data description.
    pub data: String,
    /// Images evaluated.
    pub images: usize,
    /// Top-1 accuracy of the hardware run (fraction).
    pub accuracy: f64,
    /// Top-1 accuracy of the float model on the same images (fraction); `None` when the
    /// float reference pass was skipped (`nacsim run --no-float-reference`, sweeps).
    pub float_accuracy: Option<f64>,
    /// The calibration images.
    pub calibration: Calibration,
    /// Simulator wall time in seconds (see [`RunReport::wall_seconds`]).
    pub wall_seconds: f64,
    /// Where the wall time went, by phase; `None` where nobody measured it (sweeps, benches).
    pub timings: Option<RunTimings>,
}

/// Where the simulator's wall time of one `nacsim run` went, in seconds of wall time (not
/// simulated time), phase by phase. Their sum is at most [`RunReport::wall_seconds`]; the rest
/// is argument handling and the analytic costing (cycles, energy, area) of the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct RunTimings {
    /// Reading the design, the network and the images (evaluation and calibration sets), s.
    pub load_s: f64,
    /// Quantization: the float calibration pass over the calibration images that sets the
    /// activation scales, and the weight quantization, s.
    pub calibrate_s: f64,
    /// Mapping the quantized network onto the engines: compilation, and for stochastic
    /// engines the programming of the trial (device-to-device draws), s.
    pub compile_s: f64,
    /// The functional simulation of every image through the engines (the `accuracy`), s.
    pub simulate_s: f64,
    /// The float model over the same images (the `float_accuracy`); 0 when skipped, s.
    pub float_reference_s: f64,
}

impl RunTimings {
    /// Sum of the phases, s.
    pub fn total_s(&self) -> f64 {
        self.load_s + self.calibrate_s + self.compile_s + self.simulate_s + self.float_reference_s
    }
}

/// A run report.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Design name.
    pub design: String,
    /// Network name.
    pub network: String,
    /// Data description.
    pub data: String,
    /// The images that set the int8 scales.
    pub calibration: Calibration,
    /// The energy table the energies come from.
    pub energy_table: EnergyProvenance,
    /// Warnings about the run (a network trained for another engine geometry, calibration on
    /// the evaluation images, ...); empty when there are none.
    pub warnings: Vec<String>,
    /// Top-1 accuracy of the hardware run (fraction).
    pub accuracy: f64,
    /// Top-1 accuracy of the float model on the same images (fraction); `null` in the JSON
    /// when the float pass was skipped (`--no-float-reference`).
    pub float_accuracy: Option<f64>,
    /// Images evaluated.
    pub images: usize,
    /// Design clock in Hz.
    pub clock_hz: f64,
    /// Images per pass over the weights.
    pub batch: usize,
    /// Total cycles for all images.
    pub cycles: u64,
    /// Simulated time for all images: `cycles / clock_hz`, seconds.
    pub time_s: f64,
    /// One batch alone, from its first input to its last output: the cycles of one pass of
    /// `min(batch, images)` images, in seconds.
    pub batch_latency_s: f64,
    /// One image alone (a pass of batch 1), in seconds.
    pub image_latency_s: f64,
    /// Throughput over the run: `images / time_s`.
    pub images_per_s: f64,
    /// Operations (2 per MAC).
    pub ops: u64,
    /// `ops / time_s / 1e9`.
    pub gops: f64,
    /// Peak GOPS of the design's engines.
    pub peak_gops: f64,
    /// Energy in pJ.
    pub energy_pj: f64,
    /// Energy by component in pJ.
    pub energy_breakdown_pj: BTreeMap<String, f64>,
    /// Energy by unit and action in pJ.
    pub energy_by_action_pj: BTreeMap<String, f64>,
    /// The part of `energy_pj` (pJ) spent by units clocked while they do no useful work: the
    /// engines' idle actions (`pe_cycles_idle` of the systolic PEs, `bmv_idle_cycles`,
    /// `lane_cycles_idle`), from under-used units during compute and from every unit while a
    /// layer stalls on a buffer port or DRAM ([`idle_energy_pj`]).
    pub idle_energy_pj: f64,
    /// TOPS/W.
    pub tops_per_watt: f64,
    /// Overall MAC utilization.
    pub utilization: f64,
    /// DRAM bytes read.
    pub dram_read_bytes: u64,
    /// DRAM bytes written.
    pub dram_write_bytes: u64,
    /// SRAM bytes read.
    pub sram_read_bytes: u64,
    /// SRAM bytes written.
    pub sram_write_bytes: u64,
    /// Simulator wall time in seconds (not simulated time): for `nacsim run`, from the start
    /// of the command to the assembled report (loading, quantization, mapping, the
    /// functional run, the float reference unless skipped, and the analytic costing), before
    /// printing.
    pub wall_seconds: f64,
    /// The phases of `wall_seconds` ([`RunTimings`]); absent from the JSON where not measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<RunTimings>,
    /// Per-layer figures.
    pub layers: Vec<LayerReport>,
    /// Area, static and average power, energy per image, EDP and TOPS/mm² of the run.
    #[serde(flatten)]
    pub area: AreaFigures,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// Build the per-layer reports and the totals for `images` images.
///
/// # Errors
/// An action missing from the energy table.
pub fn layer_reports(
    sim: &Simulation,
    images: usize,
) -> Result<(Vec<LayerReport>, LayerCost, crate::sim::Energy), SimError> {
    let hz = sim.design.clock_hz();
    let costs = sim.check_costs(sim.dataset_cost(images))?;
    let mut out = Vec::new();
    let mut total = LayerCost::default();
    let mut energy = crate::sim::Energy::default();
    let area = design_area(sim);
    for (li, (p, c)) in sim.plan.iter().zip(&costs).enumerate() {
        let (area_mm2, hardware_counts) = layer_area(area.as_ref(), li);
        let e = sim.energy(c, p.engine)?;
        let ops = 2 * c.macs;
        let time_s = c.cycles as f64 / hz;
        let slots = match (p.engine, &p.compiled) {
            (Some(i), Some(comp)) => sim.engines[i].peak_ops_per_cycle_for(comp) / 2,
            _ => 0,
        };
        out.push(LayerReport {
            name: p.name.clone(),
            engine: sim.unit_name(li),
            kind: p.kind.to_string(),
            cycles: c.cycles,
            time_s,
            ops,
            gops: ratio(ops as f64, time_s) / 1e9,
            energy_pj: e.total_pj,
            energy_breakdown_pj: e.by_component_pj.clone(),
            tops_per_watt: ratio(ops as f64, e.total_pj),
            utilization: ratio(c.macs as f64, slots as f64 * c.cycles as f64),
            stall_cycles: c.stall_cycles,
            dram_read_bytes: c.dram_read_bytes,
            dram_write_bytes: c.dram_write_bytes,
            sram_read_bytes: c.sram_weight_read_bytes + c.sram_act_read_bytes,
            sram_write_bytes: c.sram_weight_write_bytes + c.sram_act_write_bytes,
            counters: c.counters.iter().map(|(k, v)| (k.to_string(), v)).collect(),
            area_mm2,
            hardware_counts,
        });
        total.add_scaled(c, 1);
        energy.total_pj += e.total_pj;
        for (k, v) in e.by_component_pj {
            *energy.by_component_pj.entry(k).or_default() += v;
        }
        for (k, v) in e.by_action_pj {
            *energy.by_action_pj.entry(k).or_default() += v;
        }
    }
    Ok((out, total, energy))
}

impl RunReport {
    /// Assemble a run report from what the run measured (`facts`) and the analytic costs of
    /// `facts.images` images.
    ///
    /// # Errors
    /// An action missing from the energy table.
    pub fn build(sim: &Simulation, facts: RunFacts) -> Result<Self, SimError> {
        let hz = sim.design.clock_hz();
        let images = facts.images;
        let (layers, t, e) = layer_reports(sim, images)?;
        sim.check_energy("energy_pj (total)", e.total_pj)?;
        let ops = 2 * t.macs;
        let time_s = t.cycles as f64 / hz;
        let slots: u64 = sim.peak_ops_per_cycle() / 2;
        let batch = sim.design.config.batch.max(1);
        let pass_s = |n: usize| -> f64 {
            sim.pass_cost(n).iter().map(|c| c.cycles).sum::<u64>() as f64 / hz
        };
        let mut warnings = sim.warnings.clone();
        if facts.calibration.split != nacsim_nn::data::Split::Train {
            warnings.push(format!(
                "the int8 scales were calibrated on the evaluation images ({}: no training split); pass --data with a folder that holds train-* files for an unbiased accuracy",
                facts.calibration.data
            ));
        }
        Ok(Self {
            design: sim.design.config.name.clone(),
            network: facts.network,
            data: facts.data,
            calibration: facts.calibration,
            energy_table: EnergyProvenance::of(sim),
            warnings,
            accuracy: facts.accuracy,
            float_accuracy: facts.float_accuracy,
            images,
            clock_hz: hz,
            batch: sim.design.config.batch,
            cycles: t.cycles,
            time_s,
            batch_latency_s: if images > 0 {
                pass_s(batch.min(images))
            } else {
                0.0
            },
            image_latency_s: pass_s(1),
            images_per_s: ratio(images as f64, time_s),
            ops,
            gops: ratio(ops as f64, time_s) / 1e9,
            peak_gops: sim.peak_gops(),
            energy_pj: e.total_pj,
            energy_breakdown_pj: e.by_component_pj,
            idle_energy_pj: idle_energy_pj(sim, &e.by_action_pj),
            energy_by_action_pj: e.by_action_pj,
            tops_per_watt: ratio(ops as f64, e.total_pj),
            utilization: ratio(t.macs as f64, slots as f64 * t.cycles as f64),
            dram_read_bytes: t.dram_read_bytes,
            dram_write_bytes: t.dram_write_bytes,
            sram_read_bytes: t.sram_weight_read_bytes + t.sram_act_read_bytes,
            sram_write_bytes: t.sram_weight_write_bytes + t.sram_act_write_bytes,
            wall_seconds: facts.wall_seconds,
            timings: facts.timings,
            layers,
            area: AreaFigures::new(
                design_area(sim).as_ref(),
                e.total_pj,
                time_s,
                ops,
                images,
                sim.peak_gops() * 1e9,
            ),
        })
    }

    /// The human table. Every real number is printed in one format: engineering notation with
    /// an SI prefix and 4 significant digits ([`eng`]).
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "nacsim run — design {} · network {}",
            self.design, self.network
        );
        let _ = writeln!(
            s,
            "  data         {} ({} images, batch {})",
            self.data, self.images, self.batch
        );
        let _ = writeln!(
            s,
            "  calibration  {} images of the {} split of {}",
            self.calibration.images, self.calibration.split, self.calibration.data
        );
        let _ = match self.float_accuracy {
            Some(f) => writeln!(
                s,
                "  accuracy     {:.2} % (float model {:.2} %)",
                100.0 * self.accuracy,
                100.0 * f
            ),
            None => writeln!(
                s,
                "  accuracy     {:.2} % (float model not run)",
                100.0 * self.accuracy
            ),
        };
        let _ = writeln!(s, "  clock        {}", eng(self.clock_hz, "Hz"));
        let _ = writeln!(s, "  cycles       {}", self.cycles);
        let _ = writeln!(
            s,
            "  time         {} for all images · {}",
            eng(self.time_s, "s"),
            eng(self.images_per_s, "images/s")
        );
        let _ = writeln!(
            s,
            "  latency      {} per image alone · {} per batch of {}",
            eng(self.image_latency_s, "s"),
            eng(self.batch_latency_s, "s"),
            self.batch.min(self.images)
        );
        let _ = writeln!(s, "  ops          {}", self.ops);
        let _ = writeln!(
            s,
            "  throughput   {} (peak {}, utilization {:.1} %)",
            eng(self.gops * 1e9, "OPS"),
            eng(self.peak_gops * 1e9, "OPS"),
            100.0 * self.utilization
        );
        let _ = writeln!(
            s,
            "  energy       {} ({} per image)",
            eng(self.energy_pj * 1e-12, "J"),
            eng(self.energy_pj * 1e-12 / self.images.max(1) as f64, "J")
        );
        let _ = writeln!(
            s,
            "  idle         {} of it ({:.1} %: units clocked without work, stalls included)",
            eng(self.idle_energy_pj * 1e-12, "J"),
            100.0 * ratio(self.idle_energy_pj, self.energy_pj)
        );
        let _ = writeln!(
            s,
            "  efficiency   {}/W",
            eng(self.tops_per_watt * 1e12, "OPS")
        );
        let t = &self.energy_table;
        let _ = writeln!(s, "  energy table {}", t.describe());
        let _ = writeln!(
            s,
            "  DRAM         {} read, {} written",
            eng(self.dram_read_bytes as f64, "B"),
            eng(self.dram_write_bytes as f64, "B")
        );
        let _ = writeln!(
            s,
            "  SRAM         {} read, {} written",
            eng(self.sram_read_bytes as f64, "B"),
            eng(self.sram_write_bytes as f64, "B")
        );
        let _ = writeln!(s, "  energy split");
        for (k, v) in &self.energy_breakdown_pj {
            let note = if t.calibrated && *v == 0.0 && self.energy_pj > 0.0 {
                "  (folded into the calibrated table)"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "    {:<13} {:>12}  {:>5.1} %{note}",
                k,
                eng(v * 1e-12, "J"),
                100.0 * ratio(*v, self.energy_pj)
            );
        }
        let _ = writeln!(
            s,
            "  {:<8} {:<8} {:<8} {:>12} {:>8} {:>12} {:>12} {:>12} {:>6}",
            "layer",
            "kind",
            "engine",
            "cycles",
            "stall %",
            "throughput",
            "energy",
            "per watt",
            "util %"
        );
        for l in &self.layers {
            let _ = writeln!(
                s,
                "  {:<8} {:<8} {:<8} {:>12} {:>8.1} {:>12} {:>12} {:>12} {:>6.1}",
                l.name,
                l.kind,
                l.engine,
                l.cycles,
                100.0 * ratio(l.stall_cycles as f64, l.cycles as f64),
                eng(l.gops * 1e9, "OPS"),
                eng(l.energy_pj * 1e-12, "J"),
                eng(l.tops_per_watt * 1e12, "OPS"),
                100.0 * l.utilization
            );
        }
        for line in self.area.lines() {
            let _ = writeln!(s, "{line}");
        }
        for w in &self.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
        let _ = writeln!(s, "  (simulated in {})", eng(self.wall_seconds, "s"));
        if let Some(t) = &self.timings {
            let _ = writeln!(
                s,
                "  (wall time: load {} · calibrate {} · compile {} · simulate {} · float reference {})",
                eng(t.load_s, "s"),
                eng(t.calibrate_s, "s"),
                eng(t.compile_s, "s"),
                eng(t.simulate_s, "s"),
                eng(t.float_reference_s, "s")
            );
        }
        s
    }
}

/// Per-layer entry of `nacsim info`.
#[derive(Clone, Debug, Serialize)]
pub struct InfoLayer {
    /// Layer name.
    pub name: String,
    /// Engine name or `vector`.
    pub engine: String,
    /// Layer kind.
    pub kind: String,
    /// Analytic cycles for one pass of the design's batch.
    pub cycles: u64,
    /// Operations per pass (2 per MAC).
    pub ops: u64,
    /// Parameter storage in bits (weights as the engine stores them, biases at 32).
    pub storage_bits: u64,
    /// Weight storage in bits as the engine stores them (int8 codes, power-of-two codes of
    /// the defining vectors, ...).
    pub weight_storage_bits: u64,
    /// The same weights at fp32, in bits.
    pub fp32_weight_bits: u64,
    /// `fp32_weight_bits / weight_storage_bits` (k·32/b for a block-circulant layer); 0 for
    /// layers without weights.
    pub compression_ratio: f64,
    /// Parameter bytes: what one pass fetches from DRAM, or what stays resident in the weight
    /// buffer with `resident.weights`.
    pub weight_bytes: u64,
    /// Activation bytes moved to or from DRAM per pass.
    pub activation_dram_bytes: u64,
    /// Energy of one pass in pJ (analytic; data-independent).
    pub energy_pj: f64,
    /// Share of the design's peak the layer reaches: `ops / (peak ops per cycle · cycles)`
    /// (0 for a layer without cycles).
    pub utilization: f64,
    /// Area of the layer's own hardware, mm² (see [`LayerReport::area_mm2`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_mm2: Option<f64>,
    /// The layer's own hardware units (see [`LayerReport::hardware_counts`]).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub hardware_counts: BTreeMap<String, u64>,
}

/// `nacsim info`: what is known without data.
#[derive(Clone, Debug, Serialize)]
pub struct InfoReport {
    /// Design name.
    pub design: String,
    /// Network name.
    pub network: String,
    /// Peak GOPS of the engines.
    pub peak_gops: f64,
    /// Clock in Hz.
    pub clock_hz: f64,
    /// Images per pass.
    pub batch: usize,
    /// Total analytic cycles of one pass.
    pub cycles: u64,
    /// Parameter storage in bits.
    pub storage_bits: u64,
    /// Float32 storage of the same parameters in bits.
    pub fp32_storage_bits: u64,
    /// Weight storage in bits as the engines store them (biases excluded).
    pub weight_storage_bits: u64,
    /// The same weights at fp32, in bits.
    pub fp32_weight_bits: u64,
    /// Weight compression against fp32: `fp32_weight_bits / weight_storage_bits`.
    pub compression_ratio: f64,
    /// Energy of one pass in pJ (analytic).
    pub energy_pj: f64,
    /// Operations per pass (2 per MAC).
    pub ops: u64,
    /// `ops / energy`: TOPS/W of one pass (compute and memory as modelled).
    pub tops_per_watt: f64,
    /// Utilization of the engines' peak over the pass: `ops / (peak ops per cycle · cycles)`.
    pub utilization: f64,
    /// The energy table the energies come from.
    pub energy_table: EnergyProvenance,
    /// Warnings about the mapping (see [`RunReport::warnings`]).
    pub warnings: Vec<String>,
    /// Per-layer figures.
    pub layers: Vec<InfoLayer>,
    /// Area, static and average power, energy per image, EDP and TOPS/mm² of one pass.
    #[serde(flatten)]
    pub area: AreaFigures,
    /// MLP_NeuroSim V3.0's circuit figures when the design has a `neurosim` block (absent
    /// otherwise; docs/report-format.md, `neurosim`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub neurosim: Option<nacsim_crossbar::neurosim::NeuroSimFigures>,
}

impl InfoReport {
    /// Build from a simulation (one pass of the design's batch).
    ///
    /// # Errors
    /// The energy table lacks an action of the pass.
    pub fn build(sim: &Simulation, network: &str) -> Result<Self, SimError> {
        let b = sim.design.config.batch;
        let costs = sim.check_costs(sim.pass_cost(b))?;
        let resident = sim.design.config.resident.weights;
        let ratio = |fp32: u64, stored: u64| {
            if stored == 0 {
                0.0
            } else {
                fp32 as f64 / stored as f64
            }
        };
        let peak_ops = sim.peak_ops_per_cycle();
        let area = design_area(sim);
        let layers: Vec<InfoLayer> = sim
            .plan
            .iter()
            .zip(&costs)
            .enumerate()
            .map(|(li, (p, c))| {
                let fp32 = 32 * p.weight_count;
                let (area_mm2, hardware_counts) = layer_area(area.as_ref(), li);
                let fetched = if resident { 0 } else { p.param_bytes };
                Ok(InfoLayer {
                    name: p.name.clone(),
                    engine: sim.unit_name(li),
                    kind: p.kind.to_string(),
                    cycles: c.cycles,
                    ops: 2 * c.macs,
                    storage_bits: p.storage_bits,
                    weight_storage_bits: p.weight_storage_bits,
                    fp32_weight_bits: fp32,
                    compression_ratio: ratio(fp32, p.weight_storage_bits),
                    weight_bytes: p.param_bytes,
                    activation_dram_bytes: c.dram_read_bytes + c.dram_write_bytes - fetched,
                    energy_pj: sim.energy(c, p.engine)?.total_pj,
                    utilization: if c.cycles > 0 {
                        (2 * c.macs) as f64 / (peak_ops as f64 * c.cycles as f64)
                    } else {
                        0.0
                    },
                    area_mm2,
                    hardware_counts,
                })
            })
            .collect::<Result<_, SimError>>()?;
        let fp32: u64 = sim
            .plan
            .iter()
            .map(|p| 32 * (p.weight_count + p.bias_count))
            .sum();
        let wsb: u64 = layers.iter().map(|l| l.weight_storage_bits).sum();
        let fp32w: u64 = layers.iter().map(|l| l.fp32_weight_bits).sum();
        let energy_pj: f64 = sim.check_energy(
            "energy_pj (total)",
            layers.iter().map(|l| l.energy_pj).sum(),
        )?;
        let ops: u64 = layers.iter().map(|l| l.ops).sum();
        let cycles: u64 = layers.iter().map(|l| l.cycles).sum();
        Ok(Self {
            design: sim.design.config.name.clone(),
            network: network.to_string(),
            peak_gops: sim.peak_gops(),
            clock_hz: sim.design.clock_hz(),
            batch: b,
            cycles: layers.iter().map(|l| l.cycles).sum(),
            storage_bits: layers.iter().map(|l| l.storage_bits).sum(),
            fp32_storage_bits: fp32,
            weight_storage_bits: wsb,
            fp32_weight_bits: fp32w,
            compression_ratio: ratio(fp32w, wsb),
            energy_pj,
            ops,
            tops_per_watt: if energy_pj > 0.0 {
                ops as f64 / energy_pj
            } else {
                0.0
            },
            utilization: if cycles > 0 {
                ops as f64 / (peak_ops as f64 * cycles as f64)
            } else {
                0.0
            },
            energy_table: EnergyProvenance::of(sim),
            warnings: sim.warnings.clone(),
            layers,
            area: AreaFigures::new(
                area.as_ref(),
                energy_pj,
                cycles as f64 / sim.design.clock_hz(),
                ops,
                b,
                sim.peak_gops() * 1e9,
            ),
            // Validated with the design, so evaluation cannot fail here.
            neurosim: sim
                .design
                .config
                .neurosim
                .as_ref()
                .and_then(|n| n.evaluate().ok()),
        })
    }
}
/// The energy (pJ) of the engines' idle actions in `by_action` (keys `<engine>.<action>`, as
/// [`RunReport::energy_by_action_pj`]): every action an engine's
/// [`idle_counters`](crate::engine::EngineImpl::idle_counters) names, priced by the design's
/// table. Engines without idle actions (the crossbar: its periphery idle power is not
/// modelled) add 0.
pub fn idle_energy_pj(sim: &Simulation, by_action: &BTreeMap<String, f64>) -> f64 {
    sim.engines
        .iter()
        .flat_map(|e| {
            e.idle_counters(1)
                .iter()
                .map(|(k, _)| format!("{}.{k}", e.name()))
                .collect::<Vec<_>>()
        })
        .filter_map(|k| by_action.get(&k))
        .sum()
}
