//! `nacsim trace`: a cycle trace of one layer for one image.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use clap::Args;
use nacsim_core::trace::{PerfettoSink, TraceSink, VcdSink};
use nacsim_core::units::Hertz;
use nacsim_nn::data::Split;
use nacsim_scheduler::sim::Simulation;

use super::args::{DesignArg, NetworkData};
use super::run::calibration_set_for;
use crate::CliResult;

/// Arguments of `nacsim trace`.
#[derive(Args, Debug)]
pub struct TraceArgs {
    /// The design.
    #[command(flatten)]
    pub design: DesignArg,
    /// The network and its images.
    #[command(flatten)]
    pub input: NetworkData,
    /// Layer to trace on its engine's cycle-stepped model, by name (`fc1`, `conv2`, a MatMul
    /// such as `qk`: its channels one after the other, scopes `ch0.`, `ch1.`, …) or by index
    /// among the quantized layers. Default: the first layer with products.
    #[arg(long, value_name = "L")]
    pub layer: Option<String>,
    /// Index of the test image whose activations drive the trace (default 0).
    #[arg(long, value_name = "I", default_value_t = 0)]
    pub image: usize,
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
    let design = super::defaults::design(a.design.path())?;
    let (model, label) = super::defaults::network(a.input.network())?;
    let src = a.input.source();
    let data = src.load_for(Split::Test, None, &model, &label)?;
    if a.image >= data.len() {
        return Err(format!(
            "--image {}: the data hold {} images (0..{})",
            a.image,
            data.len(),
            data.len()
        )
        .into());
    }
    let (calib, _) =
        calibration_set_for(&src, &data, Some(design.config.quant.calibration_images))?;
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
    let x = sim.qnet.quantize_input(data.batch(&[a.image]).view());
    let h = sim.qnet.inputs_of(&nacsim_nn::qnet::RefGemm, x, layer);
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
    // The one-image schedule: which layer computes, DRAM transfers, and the weight buffer's
    // occupancy, cycle by cycle; the traced layer's array signals sit at their place in it.
    let timeline = sim.pass_timeline(1);
    let origin = timeline
        .iter()
        .find(|c| c.layer == layer)
        .map_or(0, |c| c.compute_start);
    let cost = {
        let mut sinks: Vec<&mut dyn TraceSink> = vec![&mut vcd];
        if let Some(p) = perfetto.as_mut() {
            sinks.push(p);
        }
        let mut tee = nacsim_core::trace::Tee::new(sinks);
        schedule_trace(&sim, &timeline, &mut tee);
        let mut shifted = Offset {
            inner: &mut tee,
            origin,
        };
        sim.trace_node(layer, h, &mut shifted)?.1
    };
    if let Some(p) = perfetto.as_mut() {
        p.finish()
            .map_err(|e| format!("writing the Perfetto trace: {e}"))?;
    }
    vcd.finish()
        .map_err(|e| format!("{}: {e}", a.vcd.display()))?;
    outln!(
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

/// Forwards to `inner` with every cycle shifted by `origin`.
struct Offset<'a> {
    inner: &'a mut dyn TraceSink,
    origin: u64,
}

impl TraceSink for Offset<'_> {
    fn enabled(&self) -> bool {
        self.inner.enabled()
    }
    fn declare_signal(
        &mut self,
        scope: &str,
        name: &str,
        width: u32,
    ) -> nacsim_core::trace::SignalId {
        self.inner.declare_signal(scope, name, width)
    }
    fn change(&mut self, cycle: u64, id: nacsim_core::trace::SignalId, value: u64) {
        self.inner.change(cycle + self.origin, id, value);
    }
    fn span(&mut self, name: &str, cat: &str, start_cycle: u64, end_cycle: u64, track: &str) {
        self.inner.span(
            name,
            cat,
            start_cycle + self.origin,
            end_cycle + self.origin,
            track,
        );
    }
    fn finish(&mut self) -> std::io::Result<()> {
        self.inner.finish()
    }
}

/// Schedule-level signals and spans of a one-image pass: `schedule.layer` (1-based index of the
/// computing layer, 0 when waiting), `dram.busy`, `dram.transfer_bytes`, and
/// `sram.weights.occupancy_bytes` (bytes of chunks loaded and not yet consumed).
fn schedule_trace(
    sim: &Simulation,
    timeline: &[nacsim_scheduler::memory::Chunk],
    sink: &mut dyn TraceSink,
) {
    let layer_sig = sink.declare_signal("schedule", "layer", 16);
    let busy = sink.declare_signal("dram", "busy", 1);
    let bytes_sig = sink.declare_signal("dram", "transfer_bytes", 32);
    let occ = sink.declare_signal("sram.weights", "occupancy_bytes", 32);
    // Occupancy events: +bytes at load start, −bytes at compute end.
    let mut events: Vec<(u64, i64)> = Vec::new();
    sink.change(0, layer_sig, 0);
    sink.change(0, busy, 0);
    sink.change(0, occ, 0);
    for c in timeline {
        let end = c.compute_start + c.compute;
        if c.compute > 0 {
            sink.change(c.compute_start, layer_sig, c.layer as u64 + 1);
            sink.change(end, layer_sig, 0);
            let p = &sim.plan[c.layer];
            sink.span(
                &p.name,
                p.kind.as_str(),
                c.compute_start,
                end,
                "schedule (1 image)",
            );
        }
        if c.bytes > 0 {
            sink.change(c.load_start, busy, 1);
            sink.change(c.load_start, bytes_sig, c.bytes);
            sink.change(c.load_start + c.transfer, busy, 0);
            sink.span(
                "transfer",
                "dram",
                c.load_start,
                c.load_start + c.transfer,
                "dram",
            );
            events.push((c.load_start, c.bytes as i64));
            events.push((end, -(c.bytes as i64)));
        }
    }
    events.sort();
    let mut level = 0i64;
    let mut i = 0;
    while i < events.len() {
        let t = events[i].0;
        while i < events.len() && events[i].0 == t {
            level += events[i].1;
            i += 1;
        }
        sink.change(t, occ, level.max(0) as u64);
    }
}
