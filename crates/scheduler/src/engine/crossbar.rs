//! Memristor crossbar arrays (after Liu & Zeng) as an engine: Dense and Conv2d layers (conv by
//! im2col rows) programmed as conductances on tiled arrays, int8 codes through the DAC, analog
//! column sums, ADC codes added digitally ([`nacsim_crossbar::ProgrammedLayer`]).
//!
//! The engine's accumulators are the layer's digital outputs in integer units of
//! [`ProgrammedLayer::out_w_scale`]; the scheduler recomputes the epilogue for that scale.
//! Static device noise (d2d variation, programming errors, stuck-at faults, drift) is drawn at
//! compile time from the run's seed and Monte Carlo trial; read noise per MVM is keyed by the
//! global row index, so results do not depend on batching or threads. Timing and energy come
//! from the crossbar's own physics ([`ProgrammedLayer::cost`]: V²·G·t array energy, DAC, TIA,
//! ADC and shift-add energies of its config), reported as engine physics energies; the design's
//! energy table prices nothing of this engine.
//!
//! A grouped or depthwise convolution is programmed group by group, each group on arrays of its
//! own ([`Compiled::Groups`](super::Compiled::Groups)), and all groups read at the same time
//! ([`Engine::groups_at_once`] = groups): a layer's read time is one group's, its conversions
//! and energy those of every group.

use nacsim_core::trace::TraceSink;
use nacsim_crossbar::cost::action;
use nacsim_crossbar::timing::counter;
use nacsim_crossbar::{CrossbarConfig, CrossbarCost, ProgrammedLayer};
use ndarray::{Array2, ArrayView2};

use super::{
    CompileResult, Engine, EngineArea, EngineCost, EngineError, LayerArea, LayerSource, ShapeLayer,
};

/// The crossbar engine.
#[derive(Clone, Debug)]
pub struct CrossbarEngine {
    /// Parameters (arrays, device range, periphery, non-idealities, timing, energy); boxed like
    /// the design's `EngineConfig::Crossbar`.
    pub config: Box<CrossbarConfig>,
    /// Name in the design.
    pub name: String,
}

/// A layer programmed on crossbar arrays.
#[derive(Clone, Debug)]
pub struct CrossbarLayer {
    /// Layer name.
    pub name: String,
    /// The programmed arrays (boxed: far larger than the other engines' layers).
    pub layer: Box<ProgrammedLayer>,
}

/// Map the crossbar's energy actions to the scheduler's components.
fn component(a: &str) -> &'static str {
    match a {
        action::ARRAY_READ => "array",
        action::ADC | action::DAC | action::TIA => "converters",
        _ => "digital",
    }
}

impl CrossbarEngine {
    fn err(&self, layer: &str, msg: impl std::fmt::Display) -> EngineError {
        EngineError::Unsupported {
            engine: self.name.clone(),
            layer: layer.to_string(),
            msg: msg.to_string(),
        }
    }
}

fn from_cost(c: CrossbarCost, fan_in: usize, out: usize, rows: usize) -> EngineCost {
    let get = |s: &str| c.counters.get(s);
    EngineCost {
        cycles: c.cycles,
        // Inputs are read once per row from the activation buffer; outputs written once.
        weight_sram_read_bytes: 0,
        act_sram_read_bytes: (fan_in * rows) as u64,
        act_sram_write_bytes: (out * rows) as u64,
        macs: get(counter::MACS),
        physics_pj: c
            .energy_pj
            .iter()
            .map(|(a, pj)| (component(a).to_string(), a.clone(), *pj))
            .collect(),
        counters: c.counters,
    }
}

/// The key of a layer's random streams (programming, d2d and read noise): its network index,
/// and for group `g ≥ 1` of a grouped convolution `index + g · 2^20` (each group's arrays draw
/// their own noise; networks have far fewer than 2^20 layers, so keys do not collide).
fn layer_key(index: usize, group: usize) -> u32 {
    u32::try_from(index + (group << 20)).unwrap_or(u32::MAX)
}

impl Engine for CrossbarEngine {
    type Compiled = CrossbarLayer;

    fn compile(&self, src: &LayerSource) -> CompileResult<CrossbarLayer> {
        let q = src.q;
        let layer = ProgrammedLayer::program(
            &self.config,
            src.weight,
            src.seed,
            layer_key(src.index, src.group),
            src.trial,
        )
        .map_err(|e| self.err(&q.name, e))?;
        let w_scale = layer.out_w_scale().to_vec();
        Ok((
            CrossbarLayer {
                name: q.name.clone(),
                layer: Box::new(layer),
            },
            Some(w_scale),
        ))
    }

    fn run(&self, c: &CrossbarLayer, x: ArrayView2<i8>, first_row: u64) -> Array2<i32> {
        c.layer.run(x, first_row)
    }

    fn cost(&self, c: &CrossbarLayer, rows: usize) -> EngineCost {
        let g = c.layer.geometry();
        from_cost(c.layer.cost(rows), g.fan_in, g.outputs, rows)
    }

    fn run_stepped(
        &self,
        c: &CrossbarLayer,
        x: ArrayView2<i8>,
        first_row: u64,
        sink: &mut dyn TraceSink,
    ) -> Result<(Array2<i32>, EngineCost), EngineError> {
        let g = c.layer.geometry();
        let (y, cost) = c
            .layer
            .run_stepped(x, first_row, sink)
            .map_err(|e| self.err(&c.name, e))?;
        Ok((y, from_cost(cost, g.fan_in, g.outputs, x.nrows())))
    }

    fn peak_ops_per_cycle(&self) -> u64 {
        self.config.peak_ops_per_cycle()
    }

    fn peak_ops_per_cycle_for(&self, c: &CrossbarLayer) -> u64 {
        let g = c.layer.geometry();
        self.config.peak_ops_per_cycle() * (g.row_tiles * g.col_tiles).max(1) as u64
    }

    fn holds_weights(&self) -> bool {
        true
    }

    /// All of them: every group is programmed on arrays of its own, each array with its own row
    /// DACs, column TIAs and ADCs (`adc.cols_per_adc` shares an ADC only among the columns of
    /// one array), and the config has no array or tile budget, so no two groups wait for the
    /// same converter. (A group's own row and column tiles already read in parallel, the same
    /// assumption for the same reason.)
    fn groups_at_once(&self, groups: usize) -> usize {
        groups
    }

    fn run_trials(
        &self,
        layers: &[&CrossbarLayer],
        x: ArrayView2<i8>,
        first_row: u64,
    ) -> Option<Vec<Array2<i32>>> {
        let programmed: Vec<&ProgrammedLayer> = layers.iter().map(|l| l.layer.as_ref()).collect();
        ProgrammedLayer::run_trials(&programmed, x, first_row).ok()
    }

    /// None: the crossbar's energies are its own physics (read pulses, DAC, ADC, TIA), and the
    /// idle power of its periphery (leakage, bias) is not modelled yet; waiting costs only the
    /// design's `control_cycles`.
    fn idle_counters(&self, _cycles: u64) -> nacsim_core::counters::Counters {
        nacsim_core::counters::Counters::new()
    }

    fn priced_actions(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    fn weight_storage_bits(&self, c: &CrossbarLayer) -> u64 {
        let g = c.layer.geometry();
        self.config.weight_storage_bits(g.fan_in, g.outputs)
    }

    /// None: the array energy of a read follows the programmed conductances (V²·G·t), so a
    /// crossbar layer is costed with its weights.
    fn shape_cost(&self, _s: &ShapeLayer, _rows: usize) -> Option<Result<EngineCost, EngineError>> {
        None
    }

    fn shape_storage_bits(&self, s: &ShapeLayer) -> u64 {
        self.config.weight_storage_bits(s.fan_in, s.out)
    }

    /// Every layer has arrays of its own: per layer, `arrays = row_tiles · col_tiles ·
    /// replication`, each with `array_rows · array_cols` cells of the config's cell type
    /// (`f2 · F²`), `array_rows` row DACs of `dac_bits` bits, one TIA (and one sample-and-hold
    /// when `timing.sample_hold`) per output column, `⌈outputs / min(cols_per_adc, outputs)⌉`
    /// ADCs of `adc.bits` bits and the config's architecture (the technology file's SAR or
    /// flash table) and one shift-and-add per ADC. The engine's total is the sum
    /// over its layers.
    fn area(
        &self,
        tech: &nacsim_core::tech::Technology,
        layers: &[(usize, &CrossbarLayer)],
    ) -> Option<EngineArea> {
        let cfg = &self.config;
        let cell = tech.cells.area_um2(cfg.cell)?;
        let cell_leak = tech
            .cells
            .kinds
            .get(&cfg.cell)
            .map_or(0.0, |c| c.leakage_uw);
        let adc_table = tech.adc.get(&cfg.adc.architecture)?;
        let outs = cfg.outputs_per_array();
        let adcs_per_array = outs.div_ceil(cfg.adc.cols_per_adc.clamp(1, outs)) as u64;
        let mut total = EngineArea::default();
        for &(i, l) in layers {
            let g = l.layer.geometry();
            let arrays = (g.row_tiles * g.col_tiles * cfg.replication.max(1)) as u64;
            let cells = arrays * (cfg.array_rows * cfg.array_cols) as u64;
            let dacs = arrays * cfg.array_rows as u64;
            let tias = arrays * outs as u64;
            let adcs = arrays * adcs_per_array;
            let mut la = LayerArea::default();
            la.area.add("arrays", cells as f64, (cell, cell_leak));
            la.area
                .add("dacs", dacs as f64, tech.dac.at(cfg.dac_bits()));
            la.area.add("tias", tias as f64, tech.tia.pair());
            if cfg.timing.sample_hold {
                la.area
                    .add("sample_holds", tias as f64, tech.sample_hold.pair());
                la.counts.insert("sample_holds".into(), tias);
            }
            la.area.add("adcs", adcs as f64, adc_table.at(cfg.adc.bits));
            la.area
                .add("shift_adds", adcs as f64, tech.shift_add.pair());
            for (k, v) in [
                ("arrays", arrays),
                ("cells", cells),
                ("dacs", dacs),
                ("tias", tias),
                ("adcs", adcs),
                ("shift_adds", adcs),
            ] {
                la.counts.insert(k.into(), v);
            }
            total.total.merge(&la.area);
            for (k, v) in &la.counts {
                *total.counts.entry(k.clone()).or_default() += v;
            }
            // The groups of a grouped convolution share the layer's index: add them up.
            let entry = total.layers.entry(i).or_default();
            entry.area.merge(&la.area);
            for (k, v) in la.counts {
                *entry.counts.entry(k).or_default() += v;
            }
        }
        Some(total)
    }
}
