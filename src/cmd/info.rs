//! `nacsim info`: what can be known about a design running a network without data.

use std::path::{Path, PathBuf};

use clap::Args;
use nacsim_nn::data::Dataset;
use nacsim_nn::model::{Model, load_spec};
use nacsim_nn::network::NetworkSpec;
use nacsim_scheduler::design::Design;
use nacsim_scheduler::report::{InfoReport, eng};
use nacsim_scheduler::sim::Simulation;

use crate::CliResult;

/// Arguments of `nacsim info`.
#[derive(Args, Debug, Default)]
pub struct InfoArgs {
    /// Design file (RON). Default: the embedded models/designs/systolic-int8.ron.
    #[arg(long, value_name = "D.ron")]
    pub design: Option<PathBuf>,
    /// Network file (RON); its weights are not needed (a topology-only file works). Default:
    /// the embedded models/networks/fmnist-mlp.ron.
    #[arg(long, value_name = "N.ron")]
    pub network: Option<PathBuf>,
    /// A SCALE-Sim topology file (CSV, convolution format `Layer name, IFMAP Height, IFMAP
    /// Width, Filter Height, Filter Width, Channels, Num Filter, Strides,` or GEMM format
    /// `Layer, M, N, K,`) instead of a network: each row is costed by its shape, with the file's
    /// layer names; IFMAP sizes include padding, and a row whose name contains `DP` is
    /// depthwise (see docs/workloads.md). Shipped: models/workloads/*.csv.
    #[arg(long, value_name = "T.csv", conflicts_with = "network")]
    pub topology: Option<PathBuf>,
    /// Seed of the weights drawn for engines whose costs follow weight values (the crossbar's
    /// conductances) when the network has none (a topology file, or a network file without
    /// weights).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    /// Print one JSON object (keys: peak_gops, clock_hz, cycles, storage_bits,
    /// weight_storage_bits, compression_ratio, energy_pj, tops_per_watt, utilization,
    /// layers[name, engine, cycles, ops, storage_bits, compression_ratio, energy_pj, ...],
    /// technology, area_mm2, area_breakdown_mm2, static_power_w, average_power_w,
    /// energy_per_image_j, edp_j_s, tops_per_mm2, hardware_counts, and neurosim when the design
    /// has a neurosim block; docs/report-format.md).
    #[arg(long)]
    pub json: bool,
}

/// Run `nacsim info`.
pub fn run(a: &InfoArgs) -> CliResult<()> {
    print(a, &report(a)?)
}

/// The report `nacsim info` prints for `a`.
///
/// # Errors
/// Bad input, as `nacsim info` reports it.
pub fn report(a: &InfoArgs) -> CliResult<InfoReport> {
    let design = super::defaults::design(a.design.as_deref())?;
    if let Some(path) = &a.topology {
        return topology_report(design, path, a.seed);
    }
    // Timing, storage and the energy of digital engines do not depend on weight values: the
    // network's shapes are enough, whatever their size. Engines whose costs follow the weights
    // (the crossbar's conductances) get the network's weights, or seeded ones for a
    // topology-only file, calibrated on the bundled sample.
    let (spec, label, embedded) = match &a.network {
        Some(p) => (load_spec(p)?, p.display().to_string(), None),
        None => {
            let (m, label) = super::defaults::network(None)?;
            (m.spec.clone(), label, Some(m))
        }
    };
    network_report(design, &spec, &label, a.seed, || {
        Ok(match (embedded, &a.network) {
            (Some(m), _) => Some(m),
            (None, Some(p)) if !spec.weights.is_empty() => Some(Model::load(p)?),
            (None, _) => None,
        })
    })
}

/// The info report of `design` on the SCALE-Sim topology file `path` (weights seeded with
/// `seed` where an engine's costs follow them).
///
/// # Errors
/// The file does not load, or the design does not fit it.
pub fn topology_report(design: Design, path: &Path, seed: u64) -> CliResult<InfoReport> {
    let topo = nacsim_scheduler::topology::load(path)?;
    let sim = Simulation::from_topology(design, &topo, seed)?;
    Ok(InfoReport::build(&sim, &path.display().to_string())?)
}

/// The info report of `design` running the network `spec` (named `label` in the report). Its
/// weights are asked of `weights` only when an engine's costs follow them; `None` (a
/// topology-only network) draws them with `seed`.
///
/// # Errors
/// The topology does not resolve, the design does not fit it, the weights do not load.
pub fn network_report(
    design: Design,
    spec: &NetworkSpec,
    label: &str,
    seed: u64,
    weights: impl FnOnce() -> CliResult<Option<Model>>,
) -> CliResult<InfoReport> {
    let layers = spec.resolve().map_err(|e| format!("{label}: {e}"))?;
    let sim = match Simulation::from_shapes(design.clone(), spec, &layers)? {
        Some(sim) => sim,
        None => {
            let model = match weights()? {
                Some(m) => m,
                None => {
                    // Calibration runs 64 images through the float network.
                    super::limits::check_spec(spec, label, 64)?;
                    Model::init(spec.clone(), seed)?
                }
            };
            let calib = Dataset::bundled_calibration();
            let calib = if calib.shape == model.spec.input {
                calib.limit(64)
            } else {
                Dataset::synthetic_shaped(64, model.spec.input, model.spec.classes, 0)
            };
            Simulation::new(design, &model, &calib)?
        }
    };
    Ok(InfoReport::build(&sim, label)?)
}

/// Print an info report as text or JSON.
fn print(a: &InfoArgs, r: &InfoReport) -> CliResult<()> {
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    outln!("nacsim info — design {} · network {}", r.design, r.network);
    outln!("  clock        {}", eng(r.clock_hz, "Hz"));
    outln!("  peak         {}", eng(r.peak_gops * 1e9, "OPS"));
    outln!("  batch        {} images per pass", r.batch);
    outln!("  cycles/pass  {}", r.cycles);
    outln!(
        "  storage      {} bits with biases ({:.1}x smaller than fp32's {} bits)",
        r.storage_bits,
        r.fp32_storage_bits as f64 / r.storage_bits.max(1) as f64,
        r.fp32_storage_bits
    );
    outln!(
        "  weights      {} bits stored, {} at fp32: compression {:.2}x",
        r.weight_storage_bits,
        r.fp32_weight_bits,
        r.compression_ratio
    );
    outln!(
        "  energy/pass  {} · {}/W · utilization {:.1} %",
        eng(r.energy_pj * 1e-12, "J"),
        eng(r.tops_per_watt * 1e12, "OPS"),
        100.0 * r.utilization
    );
    outln!("  energy table {}", r.energy_table.describe());
    for line in r.area.lines() {
        outln!("{line}");
    }
    // Names as long as the file gives them (a topology's `conv2_1_proj`).
    let nw = r
        .layers
        .iter()
        .map(|l| l.name.len())
        .max()
        .unwrap_or(0)
        .max(8);
    outln!(
        "  {:<nw$} {:<8} {:<8} {:>12} {:>12} {:>12} {:>9} {:>12} {:>7}",
        "layer",
        "kind",
        "engine",
        "cycles",
        "ops",
        "weight B",
        "compress",
        "act DRAM B",
        "util %"
    );
    for l in &r.layers {
        outln!(
            "  {:<nw$} {:<8} {:<8} {:>12} {:>12} {:>12} {:>9} {:>12} {:>7.1}",
            l.name,
            l.kind,
            l.engine,
            l.cycles,
            l.ops,
            l.weight_bytes,
            if l.compression_ratio > 0.0 {
                format!("{:.2}x", l.compression_ratio)
            } else {
                "-".into()
            },
            l.activation_dram_bytes,
            100.0 * l.utilization
        );
    }
    if let Some(n) = &r.neurosim {
        // What MLP_NeuroSim V3.0 prints, from its formulas.
        outln!("  NeuroSim circuit model (MLP_NeuroSim V3.0 formulas; docs/engines/crossbar.md)");
        outln!("    synaptic core area   {:.4e} m^2", n.core_area_m2);
        outln!("    neuron periphery     {:.4e} m^2", n.neuron_area_m2);
        outln!("    total area           {:.4e} m^2", n.total_area_m2);
        outln!(
            "    read latency         {:.4e} s/image · {:.4e} s/epoch",
            n.read_latency_per_image_s,
            n.read_latency_per_epoch_s
        );
        outln!(
            "    read energy          {:.4e} J/image · {:.4e} J/epoch (at the preset's mean active inputs)",
            n.read_energy_per_image_j,
            n.read_energy_per_epoch_j
        );
        outln!(
            "    write latency        {:.4e} s/image, static part (the pulse trains come from training)",
            n.write_latency_static_per_image_s
        );
    }
    for w in &r.warnings {
        outln!("  warning: {w}");
    }
    Ok(())
}
