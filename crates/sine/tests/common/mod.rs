//! Shared test helpers: proptest settings and the note's bounds.

#![allow(dead_code)]

use proptest::prelude::*;

/// Proptest settings with `default` cases unless `PROPTEST_CASES` says otherwise (unlike
/// `ProptestConfig::with_cases`, which ignores the variable). Failures persist to
/// `proptest-regressions/properties.txt` (an integration test has no `lib.rs` beside it, so
/// proptest's default `SourceParallel` cannot place the file).
pub fn cases(default: u32) -> ProptestConfig {
    let cases = nacsim_core::testing::proptest_cases(default);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "proptest-regressions/properties.txt",
            ),
        )),
        ..ProptestConfig::default()
    }
}

/// Float slack for comparing a bound computed in f64 (relative 1e-12 plus 1e-18 absolute).
pub fn slack(bound: f64) -> f64 {
    bound * (1.0 + 1e-12) + 1e-18
}
