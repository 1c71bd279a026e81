//! `nacsim trace`: a cycle trace of one layer for one image.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use clap::Args;
use nacsim_core::trace::{PerfettoSink, TraceSink, VcdSink};
use nacsim_core::units::Hertz;
use nacsim_nn::data::Split;
use nacsim_scheduler::sim::Simulation;

use super::data::Source;
use super::run::calibration_set;
use crate::CliResult;

/// Arguments of `nacsim trace`.
#[derive(Args, Debug)]
pub struct TraceArgs {
    /// Design file (RON). Default: the embedded models/designs/systolic-int8.ron.
    #[arg(long, value_name = "D.ron")]
    pub design: Option<PathBuf>,
    /// Network file (RON) with weights. Default: the embedded models/networks/fmnist-mlp.ron.
    #[arg(long, value_name = "N.ron")]
    pub network: Option<PathBuf>,
    /// Layer to trace on its engine's cycle-stepped model, by name (`fc1`, `conv2`) or by index
    /// among the quantized layers. Default: the first layer with products.
    #[arg(long, value_name = "L")]
    pub layer: Option<String>,
    /// Index of the test image whose activations drive the trace (default 0).
    #[arg(long, value_name = "I", default_value_t = 0)]
    pub image: usize,
    /// Folder with IDX files; default: the bundled sample.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Write the per-cycle signals (busy/valid of the array rows, output edge, tile index) as
    /// VCD (opens in GTKWave or Surfer).
    #[arg(long, value_name = "F.vcd")]
    pub vcd: PathBuf,
    /// Also write Chrome/Perfetto trace-event JSON: spans per layer of the whole one-image
    /// schedule, and the traced layer's tiles (open in ui.perfetto.dev).
    #[arg(long, value_name = "F.json")]
    pub perfetto: Option<PathBuf>,
}

/// Run `nacsim trace`.
pub fn run(a: &TraceArgs) -> CliResult<()> {
    let design = super::defaults::design(a.design.as_deref())?;
    let (model, _label) = super::defaults::network(a.network.as_deref())?;
    let src = Source::from_arg(a.data.as_deref());
    let data = src.load(Split::Test, None)?;
    if a.image >= data.len() {
        return Err(format!(
            "--image {}: the data hold {} images (0..{})",
            a.image,
            data.len(),
            data.len()
        )
        .into());
    }
    let (calib, _) = calibration_set(&src, &data);
    let sim = Simulation::new(design, &model, &calib)?;
    let layer = match &a.layer {
        None => sim
            .plan
            .iter()
            .position(|p| p.engine.is_some())
            .ok_or("the network has no layer with products")?,
        Some(s) => match s.parse::<usize>() {
            Ok(i) if i < sim.plan.len() => i,
            Ok(i) => {
                return Err(format!(
                    "--layer {i}: the quantized network has {} layers (0..{})",
                    sim.plan.len(),
                    sim.plan.len()
                )
                .into());
            }
            Err(_) => sim.plan.iter().position(|p| &p.name == s).ok_or_else(|| {
                let names: Vec<&str> = sim.plan.iter().map(|p| p.name.as_str()).collect();
                format!(
                    "--layer {s}: no such layer; layers are {}",
                    names.join(", ")
                )
            })?,
        },
    };
    // Activations entering the layer, for this one image.
    let mut h = sim.qnet.quantize_input(data.batch(&[a.image]).view());
    for i in 0..layer {
        h = sim.qnet.layer_forward(&nacsim_nn::qnet::RefGemm, i, h);
    }
    let clock = Hertz::from_mhz(sim.design.config.clock_mhz);
    let vcd_file =
        File::create(&a.vcd).map_err(|e| format!("{}: cannot create: {e}", a.vcd.display()))?;
    let mut vcd = VcdSink::with_clock(BufWriter::new(vcd_file), clock);
    let mut perfetto = match &a.perfetto {
        Some(p) => {
            let f = File::create(p).map_err(|e| format!("{}: cannot create: {e}", p.display()))?;
            Some(PerfettoSink::new(BufWriter::new(f), clock))
        }
        None => None,
    };
    let cost = {
        let mut sinks: Vec<&mut dyn TraceSink> = vec![&mut vcd];
        if let Some(p) = perfetto.as_mut() {
            sinks.push(p);
        }
        let mut tee = nacsim_core::trace::Tee::new(sinks);
        sim.trace_layer(layer, h, &mut tee)?.1
    };
    if let Some(p) = perfetto.as_mut() {
        // The whole one-image schedule, layer by layer, on its own track.
        let mut t = 0u64;
        for (pl, c) in sim.plan.iter().zip(sim.pass_cost(1)) {
            if c.cycles > 0 {
                p.span(&pl.name, pl.kind, t, t + c.cycles, "schedule (1 image)");
                if c.stall_cycles > 0 {
                    p.span("dram stall", "dram", t, t + c.stall_cycles, "dram");
                }
            }
            t += c.cycles;
        }
        p.finish()
            .map_err(|e| format!("writing the Perfetto trace: {e}"))?;
    }
    vcd.finish()
        .map_err(|e| format!("{}: {e}", a.vcd.display()))?;
    println!(
        "traced layer {} ({}) of image {}: {} cycles, {} MACs on the cycle-stepped model; wrote {}{}",
        layer,
        sim.plan[layer].name,
        a.image,
        cost.cycles,
        cost.macs,
        a.vcd.display(),
        a.perfetto
            .as_ref()
            .map_or(String::new(), |p| format!(" and {}", p.display()))
    );
    Ok(())
}
