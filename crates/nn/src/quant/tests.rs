//! Tests of the quantizers: hand values, exhaustive small widths, properties.

use super::*;
use proptest::prelude::*;

const ALL: [Rounding; 5] = [
    Rounding::NearestEven,
    Rounding::NearestAway,
    Rounding::TowardZero,
    Rounding::Floor,
    Rounding::Ceil,
];
const POT: [PotRounding; 2] = [PotRounding::LogDomain, PotRounding::LinearNearest];

/// Proptest cases: 64 unless `PROPTEST_CASES` says otherwise.
fn cases() -> u32 {
    nacsim_core::testing::proptest_cases(64)
}

#[test]
fn rounding_modes_match_hand_values() {
    // x, NearestEven, NearestAway, TowardZero, Floor, Ceil
    let table: [(f64, [f64; 5]); 8] = [
        (2.5, [2.0, 3.0, 2.0, 2.0, 3.0]),
        (-2.5, [-2.0, -3.0, -2.0, -3.0, -2.0]),
        (0.5, [0.0, 1.0, 0.0, 0.0, 1.0]),
        (-0.5, [0.0, -1.0, 0.0, -1.0, 0.0]),
        (1.5, [2.0, 2.0, 1.0, 1.0, 2.0]),
        (2.4, [2.0, 2.0, 2.0, 2.0, 3.0]),
        (-2.6, [-3.0, -3.0, -2.0, -3.0, -2.0]),
        (3.0, [3.0, 3.0, 3.0, 3.0, 3.0]),
    ];
    for (x, want) in table {
        for (mode, w) in ALL.iter().zip(want) {
            assert_eq!(round(x, *mode), w, "round({x}, {mode:?})");
        }
    }
}

#[test]
fn uniform_levels_are_exhaustive_idempotent_and_monotonic() {
    for bits in 1..=6 {
        for signed in [true, false] {
            for mode in ALL {
                let q = UniformQuantizer::new(bits, signed, 0.37, 0, mode).unwrap();
                let codes: Vec<i64> = (q.code_min()..=q.code_max()).collect();
                assert_eq!(codes.len() as u64, q.levels());
                assert_eq!(q.levels(), 1 << bits);
                for &c in &codes {
                    assert_eq!(q.quantize(q.dequantize(c)), c, "{q:?} code {c}");
                }
                let (lo, hi) = (q.min_value() - 3.0, q.max_value() + 3.0);
                let mut prev = i64::MIN;
                for i in 0..=4000 {
                    let x = lo + (hi - lo) * f64::from(i) / 4000.0;
                    let c = q.quantize(x);
                    assert!(c >= prev, "{q:?} not monotonic at {x}");
                    assert_eq!(
                        q.quantize(q.fake_quantize(x)),
                        c,
                        "{q:?} idempotence at {x}"
                    );
                    prev = c;
                }
                assert_eq!(q.quantize(1e300), q.code_max());
                assert_eq!(q.quantize(f64::INFINITY), q.code_max());
                assert_eq!(q.quantize(-1e300), q.code_min());
                assert_eq!(q.quantize(f64::NEG_INFINITY), q.code_min());
                assert_eq!(q.quantize(f64::NAN), 0);
            }
        }
    }
}

#[test]
fn uniform_symmetry_inside_the_range() {
    for bits in 2..=6 {
        let q = |mode| UniformQuantizer::new(bits, true, 0.25, 0, mode).unwrap();
        let top = q(Rounding::Floor).max_value();
        for i in 0..=1000 {
            let x = top * f64::from(i) / 1000.0;
            for mode in [
                Rounding::NearestEven,
                Rounding::NearestAway,
                Rounding::TowardZero,
            ] {
                assert_eq!(
                    q(mode).quantize(-x),
                    -q(mode).quantize(x),
                    "{mode:?} at {x}"
                );
            }
            assert_eq!(
                q(Rounding::Floor).quantize(-x),
                -q(Rounding::Ceil).quantize(x)
            );
        }
    }
}

#[test]
fn uniform_ties_and_zero_point() {
    let q = |mode| UniformQuantizer::new(8, false, 0.5, 10, mode).unwrap();
    // x = 1.25 is 2.5 steps above zero: code 10 + round(2.5).
    assert_eq!(q(Rounding::NearestEven).quantize(1.25), 12);
    assert_eq!(q(Rounding::NearestAway).quantize(1.25), 13);
    assert_eq!(q(Rounding::NearestEven).quantize(-1.25), 8);
    assert_eq!(q(Rounding::NearestAway).quantize(-1.25), 7);
    assert_eq!(q(Rounding::TowardZero).quantize(-1.25), 8);
    assert_eq!(q(Rounding::Floor).quantize(-1.25), 7);
    assert_eq!(q(Rounding::NearestEven).quantize(-100.0), 0);
    assert_eq!(q(Rounding::NearestEven).quantize(f64::NAN), 10);
    assert_eq!(q(Rounding::NearestEven).dequantize(10), 0.0);
    assert_eq!(q(Rounding::NearestEven).max_value(), 0.5 * 245.0);
}

#[test]
fn uniform_for_max_abs_puts_max_on_the_top_level() {
    let q = UniformQuantizer::for_max_abs(3.0, 8, true, Rounding::NearestEven).unwrap();
    assert_eq!((q.quantize(3.0), q.quantize(-3.0)), (127, -127));
    assert_eq!(q.max_value(), 3.0);
    let u = UniformQuantizer::for_max_abs(3.0, 4, false, Rounding::NearestEven).unwrap();
    assert_eq!((u.quantize(3.0), u.scale), (15, 0.2));
    let one = UniformQuantizer::for_max_abs(3.0, 1, true, Rounding::NearestEven).unwrap();
    assert_eq!((one.quantize(-3.0), one.quantize(3.0)), (-1, 0));
    let w = UniformQuantizer::for_max_abs(1.0, 32, true, Rounding::NearestEven).unwrap();
    assert_eq!(w.quantize(1.0), i64::from(i32::MAX));
}

#[test]
fn uniform_validation_errors() {
    let e = |r: Result<UniformQuantizer, QuantError>| r.unwrap_err();
    let ne = Rounding::NearestEven;
    assert_eq!(
        e(UniformQuantizer::new(0, true, 1.0, 0, ne)),
        QuantError::Bits {
            bits: 0,
            min: 1,
            max: 32
        }
    );
    assert!(matches!(
        e(UniformQuantizer::new(33, true, 1.0, 0, ne)),
        QuantError::Bits { .. }
    ));
    for s in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            e(UniformQuantizer::new(8, true, s, 0, ne)),
            QuantError::Scale(_)
        ));
    }
    assert!(matches!(
        e(UniformQuantizer::new(8, true, 1.0, 3, ne)),
        QuantError::ZeroPoint { .. }
    ));
    assert!(matches!(
        e(UniformQuantizer::new(4, false, 1.0, 16, ne)),
        QuantError::ZeroPoint { max: 15, .. }
    ));
    assert!(matches!(
        e(UniformQuantizer::for_max_abs(0.0, 8, true, ne)),
        QuantError::MaxAbs(_)
    ));
    let msg = e(UniformQuantizer::new(8, true, 0.0, 0, ne)).to_string();
    assert_eq!(msg, "scale = 0: must be finite and > 0");
    // Invalid quantizers still never panic.
    let bad = UniformQuantizer {
        bits: 0,
        signed: false,
        scale: 0.0,
        zero_point: -5,
        rounding: Rounding::Floor,
    };
    let _ = (
        bad.quantize(1.0),
        bad.quantize(0.0),
        bad.quantize(-1.0),
        bad.levels(),
    );
}

#[test]
fn quantize_slice_matches_scalar_path() {
    let x: Vec<f32> = (-50..50)
        .map(|i| i as f32 * 0.173)
        .chain([f32::NAN, f32::INFINITY])
        .collect();
    for mode in ALL {
        let q = UniformQuantizer::for_max_abs(4.0, 5, true, mode).unwrap();
        let mut out = vec![0; x.len()];
        q.quantize_slice(&x, &mut out).unwrap();
        for (&v, &c) in x.iter().zip(&out) {
            assert_eq!(i64::from(c), q.quantize(f64::from(v)));
        }
    }
    let q = UniformQuantizer::for_max_abs(1.0, 8, true, Rounding::Floor).unwrap();
    assert_eq!(
        q.quantize_slice(&x, &mut [0; 3]),
        Err(QuantError::SliceLen {
            input: 102,
            output: 3
        })
    );
    let u = UniformQuantizer::for_max_abs(1.0, 32, false, Rounding::Floor).unwrap();
    assert_eq!(
        u.quantize_slice(&x, &mut [0; 102]),
        Err(QuantError::CodeWidth { bits: 32 })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// The branch-free ties-to-even rounding gives `round_ties_even`'s bits for any f64
    /// (any bit pattern: subnormals, ±0, ±∞, NaN, halves near 2^51 and 2^52).
    #[test]
    fn nearest_even_equals_round_ties_even(bits: u64, half in -(1i64 << 53)..(1i64 << 53)) {
        for x in [f64::from_bits(bits), half as f64 + 0.5, half as f64 / 2.0] {
            let want = x.round_ties_even();
            let got = round(x, Rounding::NearestEven);
            prop_assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{x}: {got} vs {want}");
        }
    }

    #[test]
    fn uniform_round_trip_error_is_within_half_a_step(
        bits in 1u32..=32,
        signed: bool,
        log_scale in -20.0f64..20.0,
        frac in 0.0f64..=1.0,
        mode_i in 0usize..5,
    ) {
        let mode = ALL[mode_i];
        let q = UniformQuantizer::new(bits, signed, log_scale.exp2(), 0, mode).unwrap();
        let x = q.min_value() + frac * (q.max_value() - q.min_value());
        let err = (q.fake_quantize(x) - x).abs();
        let bound = match mode {
            Rounding::NearestEven | Rounding::NearestAway => 0.5,
            _ => 1.0,
        } * q.scale * (1.0 + 1e-9);
        prop_assert!(err <= bound, "{q:?}: x = {x}, error {err} > {bound}");
        let code = q.quantize(x);
        prop_assert!((q.code_min()..=q.code_max()).contains(&code));
    }
}

#[test]
fn pot_levels_count_and_exponent_range() {
    for bits in 2..=8 {
        let q = PotQuantizer::new(bits, 0, PotRounding::LogDomain).unwrap();
        let lv = q.levels();
        assert_eq!(lv.len(), (1 << bits) - 1);
        assert!(lv.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(q.exp_min(), -((1 << (bits - 1)) - 2));
        assert_eq!(lv[lv.len() - 1], 1.0);
    }
    assert_eq!(
        PotQuantizer::new(3, 1, PotRounding::LogDomain)
            .unwrap()
            .levels(),
        [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]
    );
}

#[test]
fn pot_exhaustive_small_bits() {
    for bits in 2..=6 {
        for exp_max in [-7, 0, 3] {
            for rounding in POT {
                let q = PotQuantizer::new(bits, exp_max, rounding).unwrap();
                let levels = q.levels();
                // Every level is representable and maps to itself.
                for &v in &levels {
                    assert_eq!(q.fake_quantize(v), v, "{q:?} level {v}");
                }
                // Monotonic, idempotent, odd; saturating at both ends.
                let top = 4.0 * levels[levels.len() - 1];
                let mut prev = f64::NEG_INFINITY;
                for i in -20000..=20000 {
                    let s = f64::from(i) / 20000.0;
                    let x = top * s.signum() * s.abs().powi(6);
                    let y = q.fake_quantize(x);
                    assert!(y >= prev, "{q:?} not monotonic at {x}");
                    assert!(levels.contains(&y));
                    assert_eq!(q.fake_quantize(y), y, "{q:?} idempotence at {x}");
                    assert_eq!(q.quantize(-x), -q.quantize(x), "{q:?} symmetry at {x}");
                    prev = y;
                }
                let big = PotCode::Pow {
                    negative: false,
                    exp: exp_max,
                };
                assert_eq!(q.quantize(1e300), big);
                assert_eq!(q.quantize(f64::INFINITY), big);
                assert_eq!(q.quantize(f64::NEG_INFINITY), -big);
                assert_eq!(q.quantize(f64::MIN_POSITIVE / 1e10), PotCode::Zero);
                assert_eq!(q.quantize(f64::NAN), PotCode::Zero);
                assert_eq!(q.quantize(-0.0), PotCode::Zero);
            }
        }
    }
}

#[test]
fn pot_thresholds() {
    let log = PotQuantizer::new(3, 0, PotRounding::LogDomain).unwrap(); // 0, ±¼, ±½, ±1
    let lin = PotQuantizer::new(3, 0, PotRounding::LinearNearest).unwrap();
    // Between 2^-2 and 2^-1: log threshold √2/4 ≈ 0.35355, linear threshold 0.375 (tie up).
    assert_eq!(log.fake_quantize(0.3535), 0.25);
    assert_eq!(log.fake_quantize(0.3536), 0.5);
    assert_eq!(lin.fake_quantize(0.3536), 0.25);
    assert_eq!(lin.fake_quantize(0.375), 0.5);
    assert_eq!(lin.fake_quantize(0.374_999_999), 0.25);
    // Zero thresholds: log 2^-2/√2 ≈ 0.17678, linear 2^-3 = 0.125 (tie to 2^-2).
    assert_eq!(log.fake_quantize(0.1767), 0.0);
    assert_eq!(log.fake_quantize(0.1768), 0.25);
    assert_eq!(lin.fake_quantize(0.125), 0.25);
    assert_eq!(lin.fake_quantize(0.124_999_999), 0.0);
    assert_eq!(lin.fake_quantize(-0.125), -0.25);
    // Saturation above the top level.
    assert_eq!(log.fake_quantize(1.9), 1.0);
    assert_eq!(lin.fake_quantize(-1.9), -1.0);
    assert_eq!(
        PotCode::Pow {
            negative: true,
            exp: -3
        }
        .value(),
        -0.125
    );
    assert_eq!(
        PotCode::Pow {
            negative: false,
            exp: -1074
        }
        .value(),
        f64::from_bits(1)
    );
    assert_eq!(
        PotCode::Pow {
            negative: false,
            exp: 1024
        }
        .value(),
        f64::INFINITY
    );
}

#[test]
fn pot_for_max_abs_follows_inq() {
    let q = |m| PotQuantizer::for_max_abs(m, 5, PotRounding::LinearNearest).unwrap();
    assert_eq!(q(1.0).exp_max, 0); // floor(log2(4/3))
    assert_eq!(q(0.75).exp_max, 0); // 4·0.75/3 = 1
    assert_eq!(q(0.74).exp_max, -1);
    assert_eq!(q(1.49).exp_max, 0);
    assert_eq!(q(1.5).exp_max, 1);
    assert_eq!(q(1.0).exp_min(), -14);
    for m in [0.01, 0.3, 0.75, 1.0, 1.4999, 7.0] {
        assert_eq!(
            q(m).fake_quantize(m),
            q(m).levels().last().copied().unwrap(),
            "max_abs {m}"
        );
    }
}

#[test]
fn pot_validation_errors() {
    let r = PotRounding::LogDomain;
    assert_eq!(
        PotQuantizer::new(1, 0, r),
        Err(QuantError::Bits {
            bits: 1,
            min: 2,
            max: 8
        })
    );
    assert!(matches!(
        PotQuantizer::new(9, 0, r),
        Err(QuantError::Bits { .. })
    ));
    assert_eq!(
        PotQuantizer::new(4, 1024, r),
        Err(QuantError::Exponent {
            exp_min: 1018,
            exp_max: 1024
        })
    );
    assert!(matches!(
        PotQuantizer::new(4, -1020, r),
        Err(QuantError::Exponent { .. })
    ));
    for m in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::MAX] {
        assert!(
            matches!(
                PotQuantizer::for_max_abs(m, 4, r),
                Err(QuantError::MaxAbs(_))
            ),
            "{m}"
        );
    }
    assert_eq!(
        PotQuantizer::new(4, 1024, r).unwrap_err().to_string(),
        "exponents 1018..=1024: must lie within -1022..=1023"
    );
    let bad = PotQuantizer {
        bits: 0,
        exp_max: i32::MIN,
        rounding: PotRounding::LinearNearest,
    };
    let _ = (bad.quantize(1.0), bad.quantize(1e-300), bad.levels().len());
}
