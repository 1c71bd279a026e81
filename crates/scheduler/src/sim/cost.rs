//! The analytic cost of a mapping: cycles per layer and pass (with the DRAM schedule), per
//! dataset, and their energy from the design's energy table and the engines' physics.

use nacsim_core::counters::Counters;
use nacsim_core::energy::EnergyTable;
use nacsim_nn::qnet::LayerKind;

use super::{Energy, LayerCost, SimError, Simulation};
use crate::memory::{DramTiming, LayerDemand, schedule};

impl Simulation {
    /// Cost of every layer for one pass of `batch` images (analytic; data-independent).
    pub fn pass_cost(&self, batch: usize) -> Vec<LayerCost> {
        let cfg = &self.design.config;
        let b = batch as u64;
        let cap = cfg.sram.activations.capacity_bytes;
        let last = self.plan.len().saturating_sub(1);
        // Does the tensor entering layer i (i ≥ 1) stay on chip?
        let fits: Vec<bool> = self
            .plan
            .iter()
            .map(|p| {
                let need = if p.kind == LayerKind::Flatten {
                    p.in_features
                } else {
                    p.in_features + p.out_features
                };
                need.saturating_mul(b) <= cap
            })
            .collect();
        let io = cfg.resident.io;
        // The network's input enters at the first layer that moves data (a leading Flatten only
        // renames it), its output leaves at the last: those come from and go to DRAM unless
        // `resident.io` keeps them on chip.
        let first = self
            .plan
            .iter()
            .position(|p| p.kind != LayerKind::Flatten)
            .unwrap_or(0);
        let spilled_in = |i: usize| {
            if i <= first {
                !io
            } else {
                !(fits[i] && fits[i - 1])
            }
        };
        let spilled_out = |i: usize| {
            if i == last {
                !io
            } else {
                !(fits[i] && fits[i + 1])
            }
        };
        // Cycles the engine itself needs per layer (its stall cycles are priced as idle below).
        let mut engine_cycles: Vec<Option<u64>> = vec![None; self.plan.len()];
        let mut costs = Vec::with_capacity(self.plan.len());
        let act_bw = cfg.sram.activations.bytes_per_cycle();
        let w_bw = cfg.sram.weights.bytes_per_cycle();
        for (i, p) in self.plan.iter().enumerate() {
            let mut c = LayerCost::default();
            let in_bytes = p.in_features.saturating_mul(b);
            let out_bytes = p.out_features.saturating_mul(b);
            match (p.kind, p.engine, &p.compiled) {
                (_, Some(e), Some(comp)) => {
                    // A MatMul's "weights" are another activation: one product per sample and
                    // channel, its weight reads from the activation buffer.
                    let mm = p.kind == LayerKind::MatMul;
                    let ec = if mm {
                        self.engines[e]
                            .cost(comp, p.rows_per_image as usize)
                            .times(p.groups.saturating_mul(batch as u64))
                    } else {
                        let eng = &self.engines[e];
                        let at_once = eng.groups_at_once(p.groups as usize) as u64;
                        crate::engine::identical_groups(
                            eng.cost(comp, batch * p.rows_per_image as usize),
                            p.groups,
                            at_once,
                        )
                    };
                    engine_cycles[i] = Some(ec.cycles);
                    c.macs = ec.macs;
                    let (w_reads, a_reads) = if mm {
                        (0, ec.act_sram_read_bytes + ec.weight_sram_read_bytes)
                    } else {
                        (ec.weight_sram_read_bytes, ec.act_sram_read_bytes)
                    };
                    c.sram_weight_read_bytes = w_reads;
                    c.sram_act_read_bytes = a_reads;
                    c.sram_act_write_bytes = ec.act_sram_write_bytes;
                    if !cfg.resident.weights {
                        c.sram_weight_write_bytes = p.param_bytes;
                        c.dram_read_bytes += p.param_bytes;
                    }
                    for (component, action, pj) in ec.physics_pj {
                        *c.physics_pj
                            .entry(format!("{component}/{action}"))
                            .or_default() += pj;
                    }
                    let sram_cycles = (c.sram_act_read_bytes + c.sram_act_write_bytes)
                        .div_ceil(act_bw)
                        .max(c.sram_weight_read_bytes.div_ceil(w_bw));
                    c.compute_cycles = ec.cycles.max(sram_cycles);
                    c.counters = ec.counters;
                }
                (LayerKind::Flatten, _, _) => {}
                _ => {
                    // Vector unit: pooling reads every input element, tables every element;
                    // Softmax and LayerNorm do several operations per element
                    // (`LayerPlan::vector_ops_per_image`).
                    let elems = p.vector_ops_per_image.saturating_mul(b);
                    c.counters.add("vector_ops", elems);
                    c.sram_act_read_bytes = in_bytes;
                    c.sram_act_write_bytes = out_bytes;
                    let vec_cycles = elems.div_ceil(cfg.vector_unit.lanes);
                    c.compute_cycles = vec_cycles.max((in_bytes + out_bytes).div_ceil(act_bw));
                }
            }
            if p.kind != LayerKind::Flatten {
                if spilled_in(i) {
                    c.dram_read_bytes += in_bytes;
                }
                if spilled_out(i) {
                    c.dram_write_bytes += out_bytes;
                }
            }
            costs.push(c);
        }
        let demands: Vec<LayerDemand> = costs.iter().map(LayerCost::demand).collect();
        for (i, (c, t)) in costs
            .iter_mut()
            .zip(schedule(&demands, &self.dram_timing()))
            .enumerate()
        {
            c.cycles = t.cycles;
            c.stall_cycles = t.stall_cycles;
            c.counters.add("control_cycles", t.cycles);
            // The engine waits for its buffer ports or DRAM: its idle actions, priced.
            if let (Some(ec), Some(e)) = (engine_cycles[i], self.plan[i].engine)
                && t.cycles > ec
            {
                for (k, v) in self.engines[e].idle_counters(t.cycles - ec).iter() {
                    c.counters.add(k, v);
                }
            }
        }
        costs
    }

    fn dram_timing(&self) -> DramTiming {
        let cfg = &self.design.config;
        DramTiming {
            bytes_per_cycle: cfg.dram.bytes_per_cycle_at(cfg.clock_mhz),
            latency_cycles: cfg.dram.latency_cycles,
            chunk_bytes: (cfg.sram.weights.capacity_bytes / 2).max(1),
        }
    }

    /// The DRAM/compute chunk timeline of one pass of `batch` images (for traces).
    pub fn pass_timeline(&self, batch: usize) -> Vec<crate::memory::Chunk> {
        let demands: Vec<LayerDemand> = self
            .pass_cost(batch)
            .iter()
            .map(LayerCost::demand)
            .collect();
        crate::memory::timeline(&demands, &self.dram_timing())
    }

    /// Cost of every layer for `images` images processed in passes of the design's batch.
    pub fn dataset_cost(&self, images: usize) -> Vec<LayerCost> {
        let b = self.design.config.batch.max(1);
        let (full, rem) = (images / b, images % b);
        let mut total: Vec<LayerCost> = vec![LayerCost::default(); self.plan.len()];
        if full > 0 {
            for (t, c) in total.iter_mut().zip(self.pass_cost(b)) {
                t.add_scaled(&c, full as u64);
            }
        }
        if rem > 0 {
            for (t, c) in total.iter_mut().zip(self.pass_cost(rem)) {
                t.add_scaled(&c, 1);
            }
        }
        total
    }

    /// `costs` if every count of every layer, and their sums over the layers (cycles, ops =
    /// 2·MACs, DRAM and SRAM bytes), fit in a u64: a saturated or overflowing total is refused
    /// rather than reported as a number.
    ///
    /// # Errors
    /// [`SimError::Overflow`] naming the total and the layer.
    pub fn check_costs(&self, costs: Vec<LayerCost>) -> Result<Vec<LayerCost>, SimError> {
        let overflow = |what: String, value: String| SimError::Overflow {
            design: self.design.path.display().to_string(),
            what,
            value,
        };
        let mut sums = [0u64; 5];
        for (p, c) in self.plan.iter().zip(&costs) {
            if let Some(what) = c.saturated() {
                return Err(overflow(
                    format!("{what} of layer {}", p.name),
                    "2^64 or more".into(),
                ));
            }
            let parts = [
                ("cycles", c.cycles),
                ("ops", c.macs.saturating_mul(2)),
                (
                    "DRAM bytes",
                    c.dram_read_bytes.saturating_add(c.dram_write_bytes),
                ),
                (
                    "SRAM read bytes",
                    c.sram_weight_read_bytes
                        .saturating_add(c.sram_act_read_bytes),
                ),
                (
                    "SRAM write bytes",
                    c.sram_weight_write_bytes
                        .saturating_add(c.sram_act_write_bytes),
                ),
            ];
            for (sum, (what, v)) in sums.iter_mut().zip(parts) {
                match sum.checked_add(v) {
                    Some(t) if t < u64::MAX => *sum = t,
                    _ => {
                        return Err(overflow(
                            format!("the total {what} (at layer {})", p.name),
                            "2^64 or more".into(),
                        ));
                    }
                }
            }
        }
        Ok(costs)
    }

    /// `pj` if it is a finite energy.
    ///
    /// # Errors
    /// [`SimError::Overflow`] naming `what` (e.g. `energy_pj`) when `pj` is infinite or NaN.
    pub fn check_energy(&self, what: &str, pj: f64) -> Result<f64, SimError> {
        if pj.is_finite() {
            Ok(pj)
        } else {
            Err(SimError::Overflow {
                design: self.design.path.display().to_string(),
                what: what.to_string(),
                value: format!("{pj} pJ"),
            })
        }
    }

    /// Energy of a layer cost.
    ///
    /// # Errors
    /// An action the run performed is missing from the energy table; [`SimError::Overflow`]
    /// when the energy is not finite.
    pub fn energy(&self, c: &LayerCost, engine: Option<usize>) -> Result<Energy, SimError> {
        let cfg = &self.design.config;
        let table: &EnergyTable = &self.design.energy;
        let mut e = Energy::default();
        let mut add = |component: &str, action: String, pj: f64| {
            *e.by_component_pj.entry(component.to_string()).or_default() += pj;
            *e.by_action_pj.entry(action).or_default() += pj;
            e.total_pj += pj;
        };
        let unit = engine.map_or("vector".to_string(), |i| self.engines[i].name().to_string());
        let actions: &[(&str, &str)] = engine.map_or(&[], |i| self.engines[i].priced_actions());
        let mut priced = Counters::new();
        for (name, _) in actions {
            if c.counters.get(name) > 0 {
                priced.add(name, c.counters.get(name));
            }
        }
        for name in ["vector_ops", "control_cycles"] {
            if c.counters.get(name) > 0 {
                priced.add(name, c.counters.get(name));
            }
        }
        let rep = table.cost(&priced).map_err(|source| SimError::Energy {
            design: self.design.path.display().to_string(),
            source,
        })?;
        for (action, pj) in &rep.by_action {
            let component = actions
                .iter()
                .find(|(a, _)| a == action)
                .map(|(_, c)| *c)
                .unwrap_or(if action == "vector_ops" {
                    "vector"
                } else {
                    "control"
                });
            let who = if component == "control" {
                "control"
            } else {
                unit.as_str()
            };
            add(component, format!("{who}.{action}"), pj.0);
        }
        for (key, pj) in &c.physics_pj {
            let (component, action) = key.split_once('/').unwrap_or(("compute", key));
            add(component, format!("{unit}.{action}"), *pj);
        }
        let (sw, sa) = (&cfg.sram.weights, &cfg.sram.activations);
        for (action, bytes, pj) in [
            (
                "sram.weights.read_bytes",
                c.sram_weight_read_bytes,
                sw.read_pj_per_byte,
            ),
            (
                "sram.weights.write_bytes",
                c.sram_weight_write_bytes,
                sw.write_pj_per_byte,
            ),
            (
                "sram.activations.read_bytes",
                c.sram_act_read_bytes,
                sa.read_pj_per_byte,
            ),
            (
                "sram.activations.write_bytes",
                c.sram_act_write_bytes,
                sa.write_pj_per_byte,
            ),
        ] {
            add("sram", action.into(), bytes as f64 * pj);
        }
        add(
            "dram",
            "dram.read_bytes".into(),
            c.dram_read_bytes as f64 * 8.0 * cfg.dram.pj_per_bit,
        );
        add(
            "dram",
            "dram.write_bytes".into(),
            c.dram_write_bytes as f64 * 8.0 * cfg.dram.pj_per_bit,
        );
        self.check_energy("energy_pj", e.total_pj)?;
        Ok(e)
    }
}
