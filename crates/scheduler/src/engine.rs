//! The engine seam: one trait every compute engine implements for the scheduler, and the closed
//! enum over the engines of this build.
//!
//! The trait lives in the scheduler (not in `nn`) so that engine crates stay free of scheduler
//! types: each engine crate exposes its own API (config, datapath, timing) and the scheduler
//! adapts it here. Adding an engine means adding a variant to [`EngineConfig`](crate::design::EngineConfig),
//! [`EngineImpl`] and [`Compiled`], and the compiler checks every `match`.

use nacsim_core::counters::Counters;
use nacsim_core::trace::TraceSink;
use nacsim_nn::qnet::{GemmKind, QGemm};
use nacsim_systolic::SystolicConfig;
use ndarray::{Array2, ArrayView2};

use crate::design::EngineConfig;

/// Cycles and actions of one engine run (one layer, one batch).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineCost {
    /// Cycles from the first operand to the last output written.
    pub cycles: u64,
    /// Action counts, by the engine's own names.
    pub counters: Counters,
    /// Bytes read from the weight buffer.
    pub weight_sram_read_bytes: u64,
    /// Bytes read from the activation buffer.
    pub act_sram_read_bytes: u64,
    /// Bytes written to the activation buffer.
    pub act_sram_write_bytes: u64,
    /// Useful multiply-accumulates.
    pub macs: u64,
}

/// Why an engine cannot take a layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The engine's own error.
    #[error("{engine}: layer {layer}: {msg}")]
    Unsupported {
        /// Engine name.
        engine: String,
        /// Layer name.
        layer: String,
        /// What is wrong.
        msg: String,
    },
}

/// The seam between the scheduler and a compute engine.
pub trait Engine {
    /// The engine's own form of a layer (weights laid out for it, tables, codes).
    type Compiled: Send + Sync;
    /// Compile a quantized Dense/Conv2d layer into the engine's form.
    ///
    /// # Errors
    /// [`EngineError`] when the engine cannot run the layer.
    fn compile(&self, layer: &QGemm) -> Result<Self::Compiled, EngineError>;
    /// Run a batch functionally: `x` is `[rows, fan_in]` int8 (rows = batch · output pixels),
    /// the result `[rows, out]` exact int32 accumulators.
    fn run(&self, c: &Self::Compiled, x: ArrayView2<i8>) -> Array2<i32>;
    /// Cycles and actions of a run over `rows` rows (the analytic fast path).
    fn cost(&self, c: &Self::Compiled, rows: usize) -> EngineCost;
    /// The same run on the cycle-stepped model, tracing to `sink`; returns the result and a
    /// cost equal to [`Engine::cost`].
    ///
    /// # Errors
    /// [`EngineError`] when the stepped model rejects the run.
    fn run_stepped(
        &self,
        c: &Self::Compiled,
        x: ArrayView2<i8>,
        sink: &mut dyn TraceSink,
    ) -> Result<(Array2<i32>, EngineCost), EngineError>;
    /// Peak operations (2 per MAC) per cycle.
    fn peak_ops_per_cycle(&self) -> u64;
}

/// The int8 systolic array as an engine.
#[derive(Clone, Debug)]
pub struct SystolicEngine {
    /// Array parameters.
    pub config: SystolicConfig,
    /// Name in the design.
    pub name: String,
}

/// A layer compiled for the systolic array: its weights `[out, fan_in]`.
#[derive(Clone, Debug)]
pub struct SystolicLayer {
    /// Weight codes.
    pub weight: Array2<i8>,
    /// Layer name.
    pub name: String,
}

fn from_timing(t: nacsim_systolic::TimingReport) -> EngineCost {
    let get = |s: &str| t.counters.get(s);
    EngineCost {
        cycles: t.cycles,
        weight_sram_read_bytes: get("weight_reads"),
        act_sram_read_bytes: get("input_reads"),
        act_sram_write_bytes: get("output_writes"),
        macs: get("macs"),
        counters: t.counters,
    }
}

impl Engine for SystolicEngine {
    type Compiled = SystolicLayer;

    fn compile(&self, layer: &QGemm) -> Result<SystolicLayer, EngineError> {
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
        Ok(SystolicLayer {
            weight: layer.weight.clone(),
            name: layer.name.clone(),
        })
    }

    fn run(&self, c: &SystolicLayer, x: ArrayView2<i8>) -> Array2<i32> {
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
}

/// The closed set of engines.
#[derive(Clone, Debug)]
pub enum EngineImpl {
    /// The int8 systolic array.
    Systolic(SystolicEngine),
}

/// A layer compiled for one of the engines.
#[derive(Clone, Debug)]
pub enum Compiled {
    /// For [`EngineImpl::Systolic`].
    Systolic(SystolicLayer),
}

impl EngineImpl {
    /// Build the engine of a design slot.
    pub fn build(name: &str, cfg: &EngineConfig) -> Self {
        match cfg {
            EngineConfig::Systolic(c) => EngineImpl::Systolic(SystolicEngine {
                config: c.clone(),
                name: name.to_string(),
            }),
        }
    }

    /// Name of the engine in the design.
    pub fn name(&self) -> &str {
        match self {
            EngineImpl::Systolic(e) => &e.name,
        }
    }

    /// See [`Engine::compile`].
    ///
    /// # Errors
    /// As [`Engine::compile`].
    pub fn compile(&self, layer: &QGemm) -> Result<Compiled, EngineError> {
        match self {
            EngineImpl::Systolic(e) => e.compile(layer).map(Compiled::Systolic),
        }
    }

    /// See [`Engine::run`].
    pub fn run(&self, c: &Compiled, x: ArrayView2<i8>) -> Array2<i32> {
        match (self, c) {
            (EngineImpl::Systolic(e), Compiled::Systolic(c)) => e.run(c, x),
        }
    }

    /// See [`Engine::cost`].
    pub fn cost(&self, c: &Compiled, rows: usize) -> EngineCost {
        match (self, c) {
            (EngineImpl::Systolic(e), Compiled::Systolic(c)) => e.cost(c, rows),
        }
    }

    /// See [`Engine::run_stepped`].
    ///
    /// # Errors
    /// As [`Engine::run_stepped`].
    pub fn run_stepped(
        &self,
        c: &Compiled,
        x: ArrayView2<i8>,
        sink: &mut dyn TraceSink,
    ) -> Result<(Array2<i32>, EngineCost), EngineError> {
        match (self, c) {
            (EngineImpl::Systolic(e), Compiled::Systolic(c)) => e.run_stepped(c, x, sink),
        }
    }

    /// See [`Engine::peak_ops_per_cycle`].
    pub fn peak_ops_per_cycle(&self) -> u64 {
        match self {
            EngineImpl::Systolic(e) => e.peak_ops_per_cycle(),
        }
    }
}

/// Rows of the product for a layer over `batch` samples (`batch · output pixels` for a conv).
pub fn gemm_rows(q: &QGemm, batch: usize) -> usize {
    match q.kind {
        GemmKind::Dense => batch,
        GemmKind::Conv { .. } => batch * q.output.h * q.output.w,
    }
}
