//! `nacsim train --neurosim DESIGN.ron`: MLP_NeuroSim's write and read latency and energy per
//! epoch of an in-situ training run (issue #17; docs/engines/crossbar.md, "NeuroSim parity";
//! keys in docs/report-format.md).

use std::path::Path;

use nacsim_insitu::store::{NeuroSimConfig, NeuroSimWriteLog, WriteCost};
use nacsim_scheduler::design::Design;
use serde::Serialize;

use crate::CliResult;

/// Write and read figures of one sub-array, one epoch or a whole run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Write latency in s: pulses plus periphery.
    pub write_latency_s: f64,
    /// Σ over write batches of the longest LTP plus the longest LTD pulse train, s.
    pub write_pulse_latency_s: f64,
    /// Decode and word-line select of every row for every image, s.
    pub write_periphery_latency_s: f64,
    /// Write energy in J: array plus periphery.
    pub write_energy_j: f64,
    /// Array side: cells (V²·Ḡ·PW per pulse) and line charging (`arrayIH/HO->writeEnergy`), J.
    pub write_array_energy_j: f64,
    /// Periphery: decoders, WL drivers, switch matrices (`subArrayIH/HO->writeDynamicEnergy`), J.
    pub write_periphery_energy_j: f64,
    /// Write batches with at least one pulse.
    pub write_batches: u64,
    /// Read latency of the epoch's training images (forward passes), s.
    pub read_latency_s: f64,
    /// Read energy of the epoch's training images at the design's mean active inputs, J.
    pub read_energy_j: f64,
}

impl Figures {
    fn write(c: &WriteCost) -> Self {
        Figures {
            write_latency_s: c.latency_s,
            write_pulse_latency_s: c.pulse_latency_s,
            write_periphery_latency_s: c.periphery_latency_s(),
            write_energy_j: c.energy_j(),
            write_array_energy_j: c.array_energy_j,
            write_periphery_energy_j: c.periphery_energy_j,
            write_batches: c.changed_batches,
            ..Figures::default()
        }
    }

    fn add(&mut self, o: &Figures) {
        self.write_latency_s += o.write_latency_s;
        self.write_pulse_latency_s += o.write_pulse_latency_s;
        self.write_periphery_latency_s += o.write_periphery_latency_s;
        self.write_energy_j += o.write_energy_j;
        self.write_array_energy_j += o.write_array_energy_j;
        self.write_periphery_energy_j += o.write_periphery_energy_j;
        self.write_batches += o.write_batches;
        self.read_latency_s += o.read_latency_s;
        self.read_energy_j += o.read_energy_j;
    }
}

/// One sub-array's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerFigures {
    /// Rows (layer inputs).
    pub rows: usize,
    /// Columns (layer outputs).
    pub cols: usize,
    /// The figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// One epoch: the sums over its training images.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EpochFigures {
    /// 1-based epoch.
    pub epoch: usize,
    /// Training images (update steps at batch 1) in the epoch.
    pub images: u64,
    /// All sub-arrays.
    #[serde(flatten)]
    pub figures: Figures,
    /// Per sub-array, input side first.
    pub layers: Vec<LayerFigures>,
}

/// What `nacsim train --neurosim` adds to the report (JSON key `neurosim`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NeuroSimTrainReport {
    /// The design whose `neurosim` block priced the run.
    pub design: String,
    /// The block's `source`.
    pub source: String,
    /// Read latency of one training image, s (data-independent).
    pub read_latency_per_image_s: f64,
    /// Read energy of one training image at the block's `mean_active_inputs`, J.
    pub read_energy_per_image_j: f64,
    /// Per epoch.
    pub epochs: Vec<EpochFigures>,
    /// The whole run.
    pub total: EpochFigures,
}

/// The `neurosim` block of the design at `path`.
///
/// # Errors
/// The design cannot be loaded, or has no `neurosim` block.
pub fn load(path: &Path) -> CliResult<NeuroSimConfig> {
    let d = Design::load(path)?;
    d.config.neurosim.clone().ok_or_else(|| {
        format!(
            "{}: --neurosim needs a design with a `neurosim` block (MLP_NeuroSim's circuit settings), e.g. models/designs/neurosim-mlp-agasi.ron",
            path.display()
        )
        .into()
    })
}

/// Read latency and energy of one image per sub-array (`NeuroSimConfig::evaluate`: read
/// iterations × (sub-array + neuron) per iteration, plus the array-side read energy at the
/// block's mean active inputs).
fn read_per_image(cfg: &NeuroSimConfig) -> CliResult<Vec<(f64, f64)>> {
    let f = cfg.evaluate().map_err(|e| e.to_string())?;
    Ok(f.layers
        .iter()
        .zip(&cfg.layers)
        .map(|(l, s)| {
            let it = l.read_iterations as f64;
            (
                it * (l.read_latency.subarray_s + l.read_latency.neuron_s),
                it * (l.read_energy.subarray_j + l.read_energy.neuron_j)
                    + l.array_read_energy_static_j
                    + l.array_read_energy_per_active_input_j * s.mean_active_inputs,
            )
        })
        .collect())
}

/// The report from the write log of a run.
///
/// # Errors
/// The block does not evaluate (validated before training, so not expected).
pub fn report(
    design: &Path,
    cfg: &NeuroSimConfig,
    log: &NeuroSimWriteLog,
) -> CliResult<NeuroSimTrainReport> {
    let read = read_per_image(cfg)?;
    let shape = |figures: Figures, i: usize| LayerFigures {
        rows: cfg.layers[i].rows,
        cols: cfg.layers[i].cols,
        figures,
    };
    let mut total = EpochFigures {
        epoch: 0,
        images: 0,
        figures: Figures::default(),
        layers: (0..cfg.layers.len())
            .map(|i| shape(Figures::default(), i))
            .collect(),
    };
    let mut epochs = Vec::new();
    for (e, ep) in log.epochs.iter().enumerate() {
        let n = ep.steps as f64;
        let mut sum = Figures::default();
        let layers: Vec<LayerFigures> = ep
            .layers
            .iter()
            .zip(&read)
            .enumerate()
            .map(|(i, (c, (rl, re)))| {
                let mut f = Figures::write(c);
                f.read_latency_s = rl * n;
                f.read_energy_j = re * n;
                sum.add(&f);
                total.layers[i].figures.add(&f);
                shape(f, i)
            })
            .collect();
        total.figures.add(&sum);
        total.images += ep.steps;
        epochs.push(EpochFigures {
            epoch: e + 1,
            images: ep.steps,
            figures: sum,
            layers,
        });
    }
    total.epoch = epochs.len();
    Ok(NeuroSimTrainReport {
        design: design.display().to_string(),
        source: cfg.source.clone(),
        read_latency_per_image_s: read.iter().map(|r| r.0).sum(),
        read_energy_per_image_j: read.iter().map(|r| r.1).sum(),
        epochs,
        total,
    })
}

/// The text block of `nacsim train`.
pub fn print(r: &NeuroSimTrainReport) -> CliResult<()> {
    outln!(
        "NeuroSim circuit model ({}; MLP_NeuroSim's formulas, not its output):",
        r.design
    );
    outln!(
        "{:>5} {:>7} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}",
        "epoch",
        "images",
        "write lat s",
        "pulses s",
        "write E J",
        "array J",
        "periph. J",
        "read lat s",
        "read E J"
    );
    let row = |label: &str, images: u64, f: &Figures| -> CliResult<()> {
        outln!(
            "{:>5} {:>7} {:>11.4e} {:>11.4e} {:>11.4e} {:>11.4e} {:>11.4e} {:>11.4e} {:>11.4e}",
            label,
            images,
            f.write_latency_s,
            f.write_pulse_latency_s,
            f.write_energy_j,
            f.write_array_energy_j,
            f.write_periphery_energy_j,
            f.read_latency_s,
            f.read_energy_j
        );
        Ok(())
    };
    for e in &r.epochs {
        row(&e.epoch.to_string(), e.images, &e.figures)?;
    }
    if r.epochs.len() > 1 {
        row("all", r.total.images, &r.total.figures)?;
    }
    for l in &r.total.layers {
        outln!(
            "  sub-array {}x{} (all epochs): write {:.4e} s, {:.4e} J ({} batches written); read {:.4e} s, {:.4e} J",
            l.rows,
            l.cols,
            l.figures.write_latency_s,
            l.figures.write_energy_j,
            l.figures.write_batches,
            l.figures.read_latency_s,
            l.figures.read_energy_j
        );
    }
    Ok(())
}
