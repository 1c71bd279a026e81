//! Test helpers: proptest case count and seeded values.

/// Proptest cases: 64 unless `PROPTEST_CASES` says otherwise (`ProptestConfig::with_cases`
/// alone ignores the variable).
pub fn cases() -> u32 {
    nacsim_core::testing::proptest_cases(64)
}

/// `n` deterministic values in [−1, 1) from a hash of `(seed, index)`.
pub fn values(n: usize, seed: u64) -> Vec<f64> {
    (0..n as u64)
        .map(|i| {
            let mut h = i ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
            h = (h ^ (h >> 29)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            h ^= h >> 32;
            (h >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

/// `|a − b| ≤ tol · max(1, |a|, |b|)`.
pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}
