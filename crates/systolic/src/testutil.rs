//! Test helpers: seeded matrices and proptest strategies for configs and GEMM shapes.

use ndarray::Array2;
use proptest::prelude::*;

use crate::config::{Dataflow, Overflow, SystolicConfig};

/// A deterministic `rows × cols` int8 matrix covering the whole range (a hash of the position).
pub fn matrix(rows: usize, cols: usize, seed: u64) -> Array2<i8> {
    Array2::from_shape_fn((rows, cols), |(r, c)| {
        let mut h = (r as u64) << 32 ^ c as u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 29;
        h as i8
    })
}

/// Both dataflows, small arrays (1..=12 × 1..=12), both double-buffer settings, and sometimes a
/// 16-bit or saturating accumulator.
pub fn arb_cfg() -> impl Strategy<Value = SystolicConfig> {
    (
        1usize..=12,
        1usize..=12,
        prop::bool::ANY,
        prop::bool::ANY,
        prop_oneof![3 => Just(32u32), 1 => Just(16u32), 1 => 17u32..=31],
        prop::bool::weighted(0.3),
    )
        .prop_map(|(rows, cols, os, double_buffer, acc_bits, saturate)| {
            let dataflow = if os {
                Dataflow::OutputStationary
            } else {
                Dataflow::WeightStationary
            };
            SystolicConfig {
                acc_bits,
                overflow: if saturate {
                    Overflow::Saturate
                } else {
                    Overflow::Wrap
                },
                double_buffer,
                ..SystolicConfig::new(rows, cols, dataflow)
            }
        })
}

/// `(x [m, k], w [n, k])` with `m, k, n` in `1..=max` (half of them in `1..=3`); a quarter of the cases use only the
/// extreme values −128 and 127, so narrow accumulators overflow.
pub fn arb_gemm(max: usize) -> impl Strategy<Value = (Array2<i8>, Array2<i8>)> {
    // Half the dimensions are tiny, so that latency-bound tiles and transfer stalls show up.
    let dim = move || prop_oneof![1..=3usize, 1..=max];
    (
        dim(),
        dim(),
        dim(),
        any::<u64>(),
        prop::bool::weighted(0.25),
    )
        .prop_map(|(m, k, n, seed, extreme)| {
            let (mut x, mut w) = (matrix(m, k, seed), matrix(n, k, seed ^ 1));
            if extreme {
                let ext = |v: &mut i8| *v = if *v < 0 { -128 } else { 127 };
                x.map_inplace(ext);
                w.map_inplace(ext);
            }
            (x, w)
        })
}

/// Proptest settings with `default` cases unless `PROPTEST_CASES` says otherwise (unlike
/// `ProptestConfig::with_cases`, which ignores the variable).
pub fn cases(default: u32) -> ProptestConfig {
    let cases = nacsim_core::testing::proptest_cases(default);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Like [`arb_cfg`] with rows and cols in `1..=max_dim`.
pub fn arb_cfg_up_to(max_dim: usize) -> impl Strategy<Value = SystolicConfig> {
    (arb_cfg(), 1..=max_dim, 1..=max_dim).prop_map(|(cfg, rows, cols)| SystolicConfig {
        rows,
        cols,
        ..cfg
    })
}
