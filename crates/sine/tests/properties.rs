//! Note §5.2 statements as property tests at f = 9..=12 (beyond exhaustive reach), plus the
//! statements that involve more than one product (dot product, forward, local gradient, weight
//! update) and the CORDIC unit. 64 cases by default; raise with `PROPTEST_CASES`.

mod common;

use common::{cases, slack};
use nacsim_sine::format::{half_pi_code, monotone_limit};
use nacsim_sine::reference::{
    cordic_sin_product, sin_cos_product, sin_product, substitution_bound,
};
use nacsim_sine::{
    CoarseVersineTable, CodeRounding, Cordic, ProductConfig, ProductFormat, ProductKind,
    QuarterSquareTable, RectifiedSine, SinCosTable, SineProduct, VersineTable, requantize,
    weight_update,
};
use proptest::prelude::*;

/// `(f, F)` with f in 9..=12 and F in f..=min(2f + 6, 32).
fn arb_fmt() -> impl Strategy<Value = ProductFormat> {
    (9u32..=12)
        .prop_flat_map(|f| (Just(f), f..=(2 * f + 6).min(32)))
        .prop_map(|(f, ff)| ProductFormat::half_range(f, ff))
}

/// A format and 32 operand pairs in its range (|a|, |b| ≤ 0.5), a third of them tiny.
fn arb_fmt_pairs() -> impl Strategy<Value = (ProductFormat, Vec<(i32, i32)>)> {
    arb_fmt().prop_flat_map(|fmt| {
        let n = fmt.max_abs_a as i32;
        let op = prop_oneof![2 => -n..=n, 1 => -8..=8i32];
        (Just(fmt), prop::collection::vec((op.clone(), op), 32))
    })
}

/// A forward-pass format: weight |w| ≤ 0.5, angle 0 ≤ z ≤ π/2 (clamped rectified sine).
fn forward_fmt(f: u32, ff: u32) -> ProductFormat {
    ProductFormat {
        frac_bits: f,
        out_frac_bits: ff,
        max_abs_a: 1 << (f - 1),
        max_abs_b: half_pi_code(f),
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// Items 1, 2 (G form), 3, 5, 6 (both forms), 7.
    #[test]
    fn versine_single_product_statements((fmt, pairs) in arb_fmt_pairs()) {
        let g = VersineTable::new(fmt).unwrap();
        let (q, lsb) = (fmt.operand_lsb(), fmt.out_lsb());
        for (i, j) in pairs {
            let p_int = g.product(i, j);
            prop_assert_eq!(p_int, g.product(j, i));
            prop_assert_eq!(g.product(-i, j), -p_int);
            prop_assert_eq!(g.product(i, -j), -p_int);
            prop_assert_eq!(g.product(i, 0), 0);
            prop_assert_eq!(g.product(0, j), 0);
            let (a, b, p) = (i as f64 * q, j as f64 * q, p_int as f64 * lsb);
            prop_assert!((p - sin_product(a, b)).abs() <= slack(lsb));
            let e = (p - a * b).abs();
            prop_assert!(e <= slack(substitution_bound(a, b) + lsb));
            prop_assert!(e <= slack((a * b).abs() * 0.25 / 3.0 + lsb));
            prop_assert!(p.abs() <= slack((a * b).abs() + lsb));
        }
    }

    /// Item 4: sign correct for |i| + |j| ≤ π·2^f.
    #[test]
    fn versine_sign_while_monotone(f in 9u32..=11, seeds in prop::collection::vec((any::<u32>(), any::<u32>()), 32)) {
        let half = monotone_limit(f) / 2;
        let fmt = ProductFormat { frac_bits: f, out_frac_bits: 2 * f, max_abs_a: half, max_abs_b: half };
        let g = VersineTable::new(fmt).unwrap();
        let span = 2 * half + 1;
        for (x, y) in seeds {
            let (i, j) = ((x % span) as i32 - half as i32, (y % span) as i32 - half as i32);
            let p = g.product(i, j);
            prop_assert!(p == 0 || p.signum() == ((i as i64) * (j as i64)).signum(), "({i},{j}) -> {p}");
        }
    }

    /// Item 8: F = 2f and |i| + |j| ≤ K0(f) ⇒ P = i·j.
    #[test]
    fn versine_exact_inside_window(f in 6u32..=12, x in any::<u32>(), y in any::<u32>(), si: bool, sj: bool) {
        let g = VersineTable::new(ProductFormat::half_range(f, 2 * f)).unwrap();
        let k0 = g.exactness_window().unwrap();
        let i = x % (k0 + 1);
        let j = y % (k0 + 1 - i);
        let (i, j) = (if si { -(i as i32) } else { i as i32 }, if sj { -(j as i32) } else { j as i32 });
        prop_assert_eq!(g.product(i, j), (i * j) as i64);
    }

    /// Item 9: |Σp − Σab| ≤ Σ|ab|(a² + b²)/6 + N·2^-F, for the MAC `acc += P`.
    #[test]
    fn dot_product_bound((fmt, pairs) in arb_fmt_pairs()) {
        let g = VersineTable::new(fmt).unwrap();
        let (q, lsb) = (fmt.operand_lsb(), fmt.out_lsb());
        let (a, b): (Vec<i32>, Vec<i32>) = pairs.iter().copied().unzip();
        let acc = g.dot(&a, &b) as f64 * lsb;
        let (mut exact, mut bound) = (0.0, 0.0);
        for (&i, &j) in a.iter().zip(&b) {
            let (x, y) = (i as f64 * q, j as f64 * q);
            exact += x * y;
            bound += (x * y).abs() * (x * x + y * y) / 6.0 + lsb;
        }
        prop_assert!((acc - exact).abs() <= slack(bound) + 1e-15);
    }

    /// Item 10: |p(w, ẑ) − w·φ(z)| ≤ |sin ẑ|·|w|³/6 + 2^-F, for every rectified-sine variant's
    /// angle inside the table.
    #[test]
    fn forward_bound(f in 9u32..=12, extra in 4u32..=10, w in any::<i32>(), z in any::<i32>()) {
        let fmt = forward_fmt(f, (2 * f + extra).min(32).max(f));
        let g = VersineTable::new(fmt).unwrap();
        let (q, lsb) = (fmt.operand_lsb(), fmt.out_lsb());
        let i = w.rem_euclid(2 * fmt.max_abs_a as i32 + 1) - fmt.max_abs_a as i32;
        let k = z.rem_euclid(3 * fmt.max_abs_b as i32) - fmt.max_abs_b as i32;
        let act = RectifiedSine::Clamped;
        let zc = act.angle_code(k, f);
        let (wr, zr) = (i as f64 * q, zc as f64 * q);
        let p = g.product(i, zc) as f64 * lsb;
        let bound = zr.sin().abs() * wr.abs().powi(3) / 6.0 + lsb;
        prop_assert!((p - wr * act.value(zr)).abs() <= slack(bound));
    }

    /// Item 11: the I2 unit, |p − e·cos z| ≤ |cos z|·|e|³/6 + 2^-F, and 1-LSB fidelity.
    #[test]
    fn local_gradient_bound(f in 9u32..=12, extra in 4u32..=10, e in any::<i32>(), z in any::<i32>()) {
        let fmt = forward_fmt(f, (2 * f + extra).min(32));
        let s = SinCosTable::new(fmt).unwrap();
        let (q, lsb) = (fmt.operand_lsb(), fmt.out_lsb());
        let i = e.rem_euclid(2 * fmt.max_abs_a as i32 + 1) - fmt.max_abs_a as i32;
        let j = z.rem_euclid(2 * fmt.max_abs_b as i32 + 1) - fmt.max_abs_b as i32;
        let (er, zr) = (i as f64 * q, j as f64 * q);
        let p = s.product(i, j) as f64 * lsb;
        prop_assert!((p - sin_cos_product(er, zr)).abs() <= slack(lsb));
        let bound = zr.cos().abs() * er.abs().powi(3) / 6.0 + lsb;
        prop_assert!((p - er * zr.cos()).abs() <= slack(bound));
    }

    /// Item 12: Δw = −(P(δ, z) >> k) bit-exactly, and
    /// |Δw·2^-F + η·δ·sin z| ≤ η(|δ sin z|·δ²/6 + 2^-F) + 2^-F with η = 2^-k.
    #[test]
    fn weight_update_is_a_shift(f in 9u32..=12, k in 0u32..=12, d in any::<i32>(), z in any::<i32>()) {
        let fmt = forward_fmt(f, (2 * f + 4).min(32));
        let g = VersineTable::new(fmt).unwrap();
        let (q, lsb) = (fmt.operand_lsb(), fmt.out_lsb());
        let i = d.rem_euclid(2 * fmt.max_abs_a as i32 + 1) - fmt.max_abs_a as i32;
        let j = z.rem_euclid(fmt.max_abs_b as i32 + 1);
        let dw = weight_update(&g, i, j, k);
        prop_assert_eq!(dw, -(g.product(i, j) >> k));
        let (dr, zr, eta) = (i as f64 * q, j as f64 * q, (-(k as f64)).exp2());
        let bound = eta * ((dr * zr.sin()).abs() * dr * dr / 6.0 + lsb) + lsb;
        prop_assert!((dw as f64 * lsb + eta * dr * zr.sin()).abs() <= slack(bound));
    }

    /// Item 13: CORDIC, real arithmetic ≤ 2^-(n−1); bit-exact unit ≤ 2^-(n−1) + 2^-F.
    #[test]
    fn cordic_bound(n in 2u32..=28, f in 8u32..=12, extra in 8u32..=14, pairs in prop::collection::vec((any::<i32>(), any::<i32>()), 8)) {
        let fmt = ProductFormat::half_range(f, (f + extra).min(32));
        let u = Cordic::new(fmt, n, 8).unwrap();
        let (q, lsb) = (fmt.operand_lsb(), fmt.out_lsb());
        let m = fmt.max_abs_a as i32;
        let tol = (-(n as f64 - 1.0)).exp2();
        for (x, y) in pairs {
            let (i, j) = (x.rem_euclid(2 * m + 1) - m, y.rem_euclid(2 * m + 1) - m);
            let (a, b) = (i as f64 * q, j as f64 * q);
            prop_assert!((cordic_sin_product(a, b, n) - sin_product(a, b)).abs() <= tol);
            let p = u.product(i, j) as f64 * lsb;
            prop_assert!((p - sin_product(a, b)).abs() <= tol + lsb, "n={n} ({i},{j})");
            prop_assert_eq!(u.product(i, j), u.product(j, i));
        }
    }

    /// The quarter-square unit is exact (`P = i·j·2^(F−2f)`), through the enum as well.
    #[test]
    fn quarter_square_exact(f in 6u32..=12, extra in 0u32..=6, x in any::<i32>(), y in any::<i32>()) {
        let fmt = ProductFormat::half_range(f, 2 * f + extra);
        let direct = QuarterSquareTable::new(fmt).unwrap();
        let unit = ProductConfig { format: fmt, kind: ProductKind::QuarterSquare }.build().unwrap();
        let m = fmt.max_abs_a as i32;
        let (i, j) = (x.rem_euclid(2 * m + 1) - m, y.rem_euclid(2 * m + 1) - m);
        prop_assert_eq!(direct.product(i, j), ((i as i64) * (j as i64)) << extra);
        prop_assert_eq!(unit.product(i, j), direct.product(i, j));
    }

    /// The coarsened-index table (note §2.4) stays commutative, odd and zero at 0, and with
    /// `d = 0` equals the full table.
    #[test]
    fn coarse_versine_symmetries((fmt, pairs) in arb_fmt_pairs(), d in 0u32..=6) {
        let u = CoarseVersineTable::new(fmt, d).unwrap();
        let full = VersineTable::new(fmt).unwrap();
        let u0 = CoarseVersineTable::new(fmt, 0).unwrap();
        for (i, j) in pairs {
            let p = u.product(i, j);
            prop_assert_eq!(p, u.product(j, i));
            prop_assert_eq!(u.product(-i, j), -p);
            prop_assert_eq!(u.product(i, 0), 0);
            prop_assert_eq!(u0.product(i, j), full.product(i, j));
        }
    }

    /// The requantiser rounds like the real-valued rule it names.
    #[test]
    fn requantize_matches_real_rounding(acc in -(1i64 << 40)..(1i64 << 40), f in 1u32..=12, extra in 0u32..=20) {
        let ff = f + extra;
        for r in [CodeRounding::HalfEven, CodeRounding::HalfUp, CodeRounding::Floor] {
            let want = r.round(acc as f64 / (extra as f64).exp2());
            prop_assert_eq!(requantize(acc, ff, f, r) as f64, want);
        }
    }
}
