//! The groups of a grouped convolution ([`Compiled::Groups`](super::Compiled::Groups)): how
//! their im2col columns are split, how their outputs are joined, and how their costs add up in
//! time.
//!
//! # Timing of the groups
//!
//! An engine says how many groups it reads at the same time
//! ([`Engine::groups_at_once`](super::Engine::groups_at_once)): `p`. The groups are read in
//! waves of `p` (in group order); a wave takes as long as its slowest group, and the waves run
//! one after the other:
//!
//! ```text
//! cycles = Σ_waves max_{g ∈ wave} cycles_g      = ⌈G/p⌉ · cycles_1   (identical groups)
//! every count, byte, MAC and energy              = Σ_g (as before: the same reads happen)
//! ```
//!
//! `p = 1` (the default: one shared array, the systolic array, takes the groups in turn) is the
//! plain sum over groups, and an ungrouped layer is not a [`Compiled::Groups`] at all, so
//! neither changes. The crossbar gives `p = G`: each group is programmed on arrays of its own
//! with their own DACs, TIAs and ADCs, and the design has no array budget, so all groups read
//! at once.

use ndarray::{Array2, ArrayView2};

use super::EngineCost;

/// The im2col columns of group `g` of `groups` equal slices of `x`.
pub(super) fn group_cols(x: ArrayView2<'_, i8>, g: usize, groups: usize) -> ArrayView2<'_, i8> {
    let kg = x.ncols() / groups;
    x.slice_move(ndarray::s![.., g * kg..(g + 1) * kg])
}

/// The per-group outputs side by side, `[rows, Σ outs]`.
pub(super) fn concat_cols(parts: &[Array2<i32>]) -> Array2<i32> {
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(ndarray::Axis(1), &views).expect("groups have the same rows")
}

impl EngineCost {
    /// The cost of `self` and `o` run at the same time on hardware of their own (two groups of
    /// a grouped convolution on arrays with their own converters): the cycles are the longer
    /// of the two, every count, byte, MAC and energy is summed.
    #[must_use]
    pub fn alongside(self, o: EngineCost) -> EngineCost {
        let cycles = self.cycles.max(o.cycles);
        EngineCost {
            cycles,
            ..self.then(o)
        }
    }
}

/// The cost of a grouped layer from its groups' costs (in group order) when the engine reads
/// `at_once` groups at the same time (module docs): waves of `at_once` groups, each as long as
/// its slowest group, one after the other; counts and energies summed. `at_once` is clamped to
/// `1..=costs.len()`; no groups cost nothing.
pub fn combine_groups(costs: Vec<EngineCost>, at_once: usize) -> EngineCost {
    let p = at_once.clamp(1, costs.len().max(1));
    let mut waves: Vec<EngineCost> = Vec::with_capacity(costs.len().div_ceil(p));
    for (g, c) in costs.into_iter().enumerate() {
        if g % p == 0 {
            waves.push(c);
        } else {
            let w = waves.pop().expect("a wave was started");
            waves.push(w.alongside(c));
        }
    }
    waves
        .into_iter()
        .reduce(EngineCost::then)
        .unwrap_or_default()
}

/// [`combine_groups`] of `groups` identical groups of cost `one` (a depthwise row of a topology
/// file): `⌈groups/at_once⌉ · one.cycles` cycles, every count and energy `groups ×`.
#[must_use]
pub fn identical_groups(one: EngineCost, groups: u64, at_once: u64) -> EngineCost {
    let p = at_once.clamp(1, groups.max(1));
    let cycles = one.cycles.saturating_mul(groups.div_ceil(p));
    EngineCost {
        cycles,
        ..one.times(groups)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use nacsim_core::counters::Counters;

    fn cost(cycles: u64, n: u64) -> EngineCost {
        let mut counters = Counters::new();
        counters.add("adc_conversions", 3 * n);
        EngineCost {
            cycles,
            counters,
            weight_sram_read_bytes: 0,
            act_sram_read_bytes: 5 * n,
            act_sram_write_bytes: n,
            macs: 7 * n,
            physics_pj: vec![("converters".into(), "adc".into(), 1.5 * n as f64)],
        }
    }

    fn energy(c: &EngineCost) -> f64 {
        c.physics_pj.iter().map(|(_, _, pj)| pj).sum()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Waves of `p` identical groups take `⌈G/p⌉` times one group's cycles: one group's
        /// when all fit, never more than the serialized sum, with the same counts and energy.
        #[test]
        fn waves_of_identical_groups(cycles in 0u64..10_000, n in 1u64..50, g in 1usize..40, p in 1usize..50) {
            let serial = combine_groups(vec![cost(cycles, n); g], 1);
            let waves = combine_groups(vec![cost(cycles, n); g], p);
            let all = combine_groups(vec![cost(cycles, n); g], g);
            prop_assert_eq!(serial.cycles, g as u64 * cycles);
            prop_assert_eq!(all.cycles, cycles);
            prop_assert_eq!(waves.cycles, g.div_ceil(p.min(g)) as u64 * cycles);
            prop_assert!(waves.cycles <= serial.cycles);
            for c in [&waves, &all] {
                prop_assert_eq!(&c.counters, &serial.counters);
                prop_assert_eq!(c.macs, serial.macs);
                prop_assert_eq!(c.act_sram_read_bytes, serial.act_sram_read_bytes);
                prop_assert_eq!(c.act_sram_write_bytes, serial.act_sram_write_bytes);
                prop_assert!((energy(c) - energy(&serial)).abs() <= 1e-9 * energy(&serial));
            }
            let id = identical_groups(cost(cycles, n), g as u64, p as u64);
            prop_assert_eq!(id.cycles, waves.cycles);
            prop_assert_eq!(&id.counters, &waves.counters);
            prop_assert_eq!(id.macs, waves.macs);
        }

        /// Groups of different lengths: a wave lasts as long as its slowest group.
        #[test]
        fn a_wave_lasts_as_long_as_its_slowest_group(cs in proptest::collection::vec(0u64..1000, 1..20), p in 1usize..8) {
            let costs: Vec<_> = cs.iter().map(|&c| cost(c, 1)).collect();
            let want: u64 = cs.chunks(p).map(|w| *w.iter().max().unwrap()).sum();
            prop_assert_eq!(combine_groups(costs, p).cycles, want);
        }
    }

    #[test]
    fn one_group_and_no_group() {
        let one = cost(123, 4);
        assert_eq!(combine_groups(vec![one.clone()], 1), one);
        assert_eq!(combine_groups(vec![one.clone()], 9), one);
        assert_eq!(identical_groups(one.clone(), 1, 1), one);
        assert_eq!(combine_groups(Vec::new(), 3), EngineCost::default());
    }
}
