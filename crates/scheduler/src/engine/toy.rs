//! A toy engine, compiled for tests only: the proof that adding an engine touches only its
//! adapter (this file) and the closed enums ([`EngineConfig`](crate::design::EngineConfig),
//! [`EngineImpl`](super::EngineImpl), [`Compiled`](super::Compiled)) — every other place that
//! must learn of it is a `match` the compiler lists.
//!
//! The toy is `lanes` int8 multipliers that take one output at a time: `⌈fan_in / lanes⌉`
//! cycles per output and row, weights read once per use. Its numerics are the exact integer
//! product, so a network runs on it with the same outputs as on the systolic array.

use nacsim_core::config::{Checks, FieldError, Validate};
use nacsim_core::counters::Counters;
use nacsim_core::trace::TraceSink;
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::{CompileResult, Engine, EngineCost, EngineError, LayerSource, ShapeLayer};

/// The toy's config (design files write `Toy(lanes: 16)`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToyConfig {
    /// Multipliers working on one output (≥ 1).
    pub lanes: usize,
}

impl Validate for ToyConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        c.check(self.lanes >= 1, "lanes", self.lanes, "must be at least 1");
        c.finish()
    }
}

/// The toy as an engine.
#[derive(Clone, Debug)]
pub struct ToyEngine {
    /// Its parameters.
    pub config: ToyConfig,
    /// Name in the design.
    pub name: String,
}

/// A layer compiled for the toy: the int8 weight codes `[out, fan_in]`.
#[derive(Clone, Debug)]
pub struct ToyLayer {
    weight: Array2<i8>,
}

/// The toy's one action, priced as `macs` by the design's energy table.
const MACS: &str = "macs";

impl ToyEngine {
    fn cost_of(&self, out: usize, fan_in: usize, rows: usize) -> EngineCost {
        let per_output = fan_in.div_ceil(self.config.lanes) as u64;
        let macs = (rows * out * fan_in) as u64;
        EngineCost {
            cycles: per_output * (rows * out) as u64,
            counters: [(MACS, macs)].into_iter().collect(),
            weight_sram_read_bytes: macs,
            act_sram_read_bytes: (rows * fan_in) as u64,
            act_sram_write_bytes: (rows * out * 4) as u64,
            macs,
            physics_pj: Vec::new(),
        }
    }
}

impl Engine for ToyEngine {
    type Compiled = ToyLayer;

    fn compile(&self, src: &LayerSource) -> CompileResult<ToyLayer> {
        Ok((
            ToyLayer {
                weight: src.q.weight.clone(),
            },
            None,
        ))
    }

    fn run(&self, c: &ToyLayer, x: ArrayView2<i8>, _first_row: u64) -> Array2<i32> {
        x.mapv(i32::from).dot(&c.weight.mapv(i32::from).t())
    }

    fn cost(&self, c: &ToyLayer, rows: usize) -> EngineCost {
        let (out, fan_in) = c.weight.dim();
        self.cost_of(out, fan_in, rows)
    }

    fn run_stepped(
        &self,
        c: &ToyLayer,
        x: ArrayView2<i8>,
        first_row: u64,
        _sink: &mut dyn TraceSink,
    ) -> Result<(Array2<i32>, EngineCost), EngineError> {
        Ok((self.run(c, x, first_row), self.cost(c, x.nrows())))
    }

    fn peak_ops_per_cycle(&self) -> u64 {
        2 * self.config.lanes as u64
    }

    fn idle_counters(&self, _cycles: u64) -> Counters {
        Counters::new()
    }

    fn priced_actions(&self) -> &'static [(&'static str, &'static str)] {
        &[(MACS, "compute")]
    }

    fn weight_storage_bits(&self, c: &ToyLayer) -> u64 {
        8 * c.weight.len() as u64
    }

    fn shape_cost(&self, s: &ShapeLayer, rows: usize) -> Option<Result<EngineCost, EngineError>> {
        Some(Ok(self.cost_of(s.out, s.fan_in, rows)))
    }

    fn shape_storage_bits(&self, s: &ShapeLayer) -> u64 {
        8 * (s.out * s.fan_in) as u64
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use nacsim_nn::data::Dataset;
    use nacsim_nn::model::Model;
    use nacsim_nn::network::NetworkSpec;

    use super::ToyConfig;
    use crate::design::{Design, EngineConfig};
    use crate::sim::Simulation;
    use nacsim_core::config::Validate;

    const DESIGN: &str = include_str!("../../../../models/designs/systolic-int8.ron");
    const ENERGY: &str = include_str!("../../../../models/energy/horowitz-45nm.ron");

    fn mlp() -> Model {
        let spec: NetworkSpec = ron::from_str(
            "(schema_version: 1, name: \"t\", input: (c: 1, h: 28, w: 28), classes: 10, \
             layers: [Flatten, Dense(out: 32), Act(ReLU), Dense(out: 10)])",
        )
        .unwrap();
        Model::init(spec, 7).unwrap()
    }

    fn design(engine: Option<EngineConfig>) -> Design {
        let mut d =
            Design::from_texts(DESIGN, ENERGY, Path::new("d.ron"), Path::new("e.ron")).unwrap();
        if let Some(e) = engine {
            d.config.engines[0].engine = e;
        }
        d
    }

    /// The toy runs a whole network through the scheduler (mapping, memory, cost, energy,
    /// accuracy) with nothing but its adapter and the enum variants: the same outputs as the
    /// systolic array (both are exact integer products), its own cycles.
    #[test]
    fn a_toy_engine_runs_a_network_through_the_seam() {
        let m = mlp();
        let calib = Dataset::bundled_sample().limit(16);
        let toy = EngineConfig::Toy(ToyConfig { lanes: 4 });
        let sys = Simulation::new(design(None), &m, &calib).unwrap();
        let sim = Simulation::new(design(Some(toy)), &m, &calib).unwrap();
        let data = Dataset::bundled_sample().limit(32);
        let x = data.batch_range(0, data.len());
        assert_eq!(sim.forward(x.view()), sys.forward(x.view()));
        assert_eq!(sim.accuracy(&data), sys.accuracy(&data));
        assert_eq!(sim.peak_ops_per_cycle(), 8);
        // One image: 784·32 + 32·10 MACs at ⌈fan_in / 4⌉ cycles per output.
        let cost = sim.dataset_cost(1);
        let macs: u64 = cost.iter().map(|c| c.macs).sum();
        assert_eq!(macs, 784 * 32 + 32 * 10);
        let compute: u64 = cost.iter().map(|c| c.compute_cycles).sum();
        assert_eq!(compute, 32 * 196 + 10 * 8);
        for (c, p) in cost.iter().zip(&sim.plan) {
            assert!(sim.energy(c, p.engine).is_ok());
        }
        assert!(
            design(Some(EngineConfig::Toy(ToyConfig { lanes: 0 })))
                .config
                .validate()
                .is_err()
        );
    }
}
