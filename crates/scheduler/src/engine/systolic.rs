//! The int8 systolic array (the baseline) as an engine.

use nacsim_core::trace::TraceSink;
use nacsim_systolic::SystolicConfig;
use nacsim_systolic::timing::counter;
use ndarray::{Array2, ArrayView2};

use super::{CompileResult, Engine, EngineArea, EngineCost, EngineError, LayerSource, ShapeLayer};

/// The int8 systolic array as an engine.
#[derive(Clone, Debug)]
pub struct SystolicEngine {
    /// Array parameters.
    pub config: SystolicConfig,
    /// Name in the design.
    pub name: String,
}

/// A layer compiled for the systolic array: its int8 weight codes `[out, fan_in]`.
#[derive(Clone, Debug)]
pub struct SystolicLayer {
    /// Weight codes.
    pub weight: Array2<i8>,
    /// Layer name.
    pub name: String,
    /// Width of the codes in bits.
    pub bits: u32,
}

fn from_timing(t: nacsim_systolic::TimingReport) -> EngineCost {
    let get = |s: &str| t.counters.get(s);
    EngineCost {
        cycles: t.cycles,
        weight_sram_read_bytes: get(counter::WEIGHT_READS),
        act_sram_read_bytes: get(counter::INPUT_READS),
        act_sram_write_bytes: get(counter::OUTPUT_WRITES),
        macs: get(counter::MACS),
        counters: t.counters,
        physics_pj: Vec::new(),
    }
}

/// Systolic counters priced by the energy table, and their component.
const ACTIONS: [(&str, &str); 6] = [
    (counter::MACS, "compute"),
    (counter::PE_CYCLES_IDLE, "compute"),
    (counter::WEIGHT_LOADS, "compute"),
    (counter::PSUM_READS, "accumulators"),
    (counter::PSUM_WRITES, "accumulators"),
    (counter::REQUANTS, "requant"),
];

impl Engine for SystolicEngine {
    type Compiled = SystolicLayer;

    fn compile(&self, src: &LayerSource) -> CompileResult<SystolicLayer> {
        let layer = src.q;
        let k = layer.weight.ncols();
        if k > self.config.max_exact_fan_in() {
            return Err(EngineError::Unsupported {
                engine: self.name.clone(),
                layer: layer.name.clone(),
                msg: format!(
                    "fan-in {k} can overflow the {}-bit accumulator (exact up to {}); raise acc_bits",
                    self.config.acc_bits,
                    self.config.max_exact_fan_in()
                ),
            });
        }
        Ok((
            SystolicLayer {
                weight: layer.weight.clone(),
                name: layer.name.clone(),
                bits: src.weight_bits,
            },
            None,
        ))
    }

    fn run(&self, c: &SystolicLayer, x: ArrayView2<i8>, _first_row: u64) -> Array2<i32> {
        nacsim_systolic::gemm_fast(x, c.weight.view())
    }

    fn cost(&self, c: &SystolicLayer, rows: usize) -> EngineCost {
        let (n, k) = c.weight.dim();
        from_timing(nacsim_systolic::analytic(&self.config, rows, k, n))
    }

    fn run_stepped(
        &self,
        c: &SystolicLayer,
        x: ArrayView2<i8>,
        _first_row: u64,
        sink: &mut dyn TraceSink,
    ) -> Result<(Array2<i32>, EngineCost), EngineError> {
        let (y, t) =
            nacsim_systolic::run_stepped(&self.config, x, c.weight.view(), sink).map_err(|e| {
                EngineError::Unsupported {
                    engine: self.name.clone(),
                    layer: c.name.clone(),
                    msg: e.to_string(),
                }
            })?;
        Ok((y, from_timing(t)))
    }

    fn peak_ops_per_cycle(&self) -> u64 {
        nacsim_systolic::peak_ops_per_cycle(&self.config)
    }

    /// The activation `w` is loaded into the array as weights are (weight-stationary: once
    /// per fold of every sample and channel; see docs/workloads.md).
    fn run_activation_weights(&self, x: ArrayView2<i8>, w: ArrayView2<i8>) -> Option<Array2<i32>> {
        Some(nacsim_systolic::gemm_fast(x, w))
    }

    fn takes_activation_weights(&self) -> bool {
        true
    }

    /// The activation `w` is loaded as the weights of a layer and stepped as one (the same
    /// folds, weight loads and pipeline as a Dense layer of that shape).
    fn run_activation_weights_stepped(
        &self,
        layer: &str,
        x: ArrayView2<i8>,
        w: ArrayView2<i8>,
        sink: &mut dyn TraceSink,
    ) -> Option<Result<(Array2<i32>, EngineCost), EngineError>> {
        let l = SystolicLayer {
            weight: w.to_owned(),
            name: layer.to_string(),
            bits: 8,
        };
        Some(self.run_stepped(&l, x, 0, sink))
    }

    fn idle_counters(&self, cycles: u64) -> nacsim_core::counters::Counters {
        // Every PE is clocked and idle (`pe_cycles_idle`, as in the array's own timing).
        let pes = (self.config.rows * self.config.cols) as u64;
        [(counter::PE_CYCLES_IDLE, pes.saturating_mul(cycles))]
            .into_iter()
            .collect()
    }

    fn priced_actions(&self) -> &'static [(&'static str, &'static str)] {
        &ACTIONS
    }

    fn weight_storage_bits(&self, c: &SystolicLayer) -> u64 {
        u64::from(c.bits) * c.weight.len() as u64
    }

    fn shape_cost(&self, s: &ShapeLayer, rows: usize) -> Option<Result<EngineCost, EngineError>> {
        Some(Ok(from_timing(nacsim_systolic::analytic(
            &self.config,
            rows,
            s.fan_in,
            s.out,
        ))))
    }

    fn shape_storage_bits(&self, s: &ShapeLayer) -> u64 {
        u64::from(s.weight_bits) * (s.fan_in * s.out) as u64
    }

    /// `rows · cols` int8 PEs with their registers (`pe_array`); the buffers and the vector
    /// unit are the design's.
    fn area(
        &self,
        tech: &nacsim_core::tech::Technology,
        _layers: &[(usize, &SystolicLayer)],
    ) -> Option<EngineArea> {
        let pes = (self.config.rows * self.config.cols) as u64;
        let mut a = EngineArea::default();
        a.total.add("pe_array", pes as f64, tech.pe_int8.pair());
        a.counts.insert("pes".into(), pes);
        Some(a)
    }
}
