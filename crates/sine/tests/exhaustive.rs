//! Note §5.2 statements checked over *every* operand pair for f ≤ 8 (docs/style.md §2.7: domains
//! ≤ 2^20 are enumerated, not sampled).

mod common;

use common::slack;
use nacsim_sine::format::monotone_limit;
use nacsim_sine::reference::{sin_cos_product, sin_product, substitution_bound};
use nacsim_sine::{
    Cordic, CosTable, ProductFormat, QuarterSquareTable, RectifiedSine, SinCosTable, SineProduct,
    VersineTable,
};

/// The (f, F) formats swept: F = 2f (exactness window applies) and F = 2f + 4, f = 6, 7, 8.
fn formats() -> impl Iterator<Item = ProductFormat> {
    [6u32, 7, 8]
        .into_iter()
        .flat_map(|f| [2 * f, 2 * f + 4].map(|ff| ProductFormat::half_range(f, ff)))
}

fn pairs(n: i32) -> impl Iterator<Item = (i32, i32)> {
    (-n..=n).flat_map(move |i| (-n..=n).map(move |j| (i, j)))
}

/// Items 1 (commutative), 2 (odd, G form), 3 (zero), 5 (fidelity ≤ 2^-F), 6 (bound vs ab),
/// 7 (shrinkage), 8 (exactness window) over all pairs with |a|, |b| ≤ 0.5.
#[test]
fn versine_statements_hold_for_every_pair() {
    for fmt in formats() {
        let g = VersineTable::new(fmt).unwrap();
        let (q, lsb) = (fmt.operand_lsb(), fmt.out_lsb());
        let k0 = g.exactness_window();
        let r = 0.5f64;
        for (i, j) in pairs(fmt.max_abs_a as i32) {
            let p_int = g.product(i, j);
            assert_eq!(p_int, g.product(j, i), "commutative {fmt:?} ({i},{j})");
            assert_eq!(g.product(-i, j), -p_int, "odd in i {fmt:?} ({i},{j})");
            assert_eq!(g.product(i, -j), -p_int, "odd in j {fmt:?} ({i},{j})");
            if i == 0 || j == 0 {
                assert_eq!(p_int, 0, "zero {fmt:?} ({i},{j})");
            }
            let (a, b, p) = (i as f64 * q, j as f64 * q, p_int as f64 * lsb);
            assert!(
                (p - sin_product(a, b)).abs() <= slack(lsb),
                "fidelity ({i},{j})"
            );
            let e = (p - a * b).abs();
            assert!(
                e <= slack(substitution_bound(a, b) + lsb),
                "bound ({i},{j})"
            );
            assert!(
                e <= slack((a * b).abs() * r * r / 3.0 + lsb),
                "range bound ({i},{j})"
            );
            assert!(p.abs() <= slack((a * b).abs() + lsb), "shrinkage ({i},{j})");
            if let Some(k0) = k0
                && i.unsigned_abs() + j.unsigned_abs() <= k0
            {
                assert_eq!(p_int, (i * j) as i64, "exactness ({i},{j})");
            }
        }
    }
}

/// Item 4 (sign): with the table extended to `|a| + |b| ≤ π` (monotone), `sign(P) ∈ {sign(ij), 0}`.
#[test]
fn versine_sign_is_never_flipped_while_monotone() {
    for f in [6u32, 7] {
        let half = monotone_limit(f) / 2;
        let fmt = ProductFormat {
            frac_bits: f,
            out_frac_bits: 2 * f + 2,
            max_abs_a: half,
            max_abs_b: half,
        };
        let g = VersineTable::new(fmt).unwrap();
        for (i, j) in pairs(half as i32) {
            let p = g.product(i, j);
            assert!(
                p == 0 || p.signum() == (i * j).signum() as i64,
                "f={f} ({i},{j}): {p}"
            );
        }
    }
}

/// Item 2, paper-literal form: `|P(−i,j) + P(i,j)| ≤ 1`; and its fidelity ≤ 2^-F.
#[test]
fn cos_literal_is_nearly_odd_and_within_one_lsb() {
    for fmt in formats() {
        let c = CosTable::new(fmt).unwrap();
        let (q, lsb) = (fmt.operand_lsb(), fmt.out_lsb());
        for (i, j) in pairs(fmt.max_abs_a as i32) {
            let p = c.product(i, j);
            assert!((c.product(-i, j) + p).abs() <= 1, "{fmt:?} ({i},{j})");
            assert_eq!(p, c.product(j, i));
            let e = (p as f64 * lsb - sin_product(i as f64 * q, j as f64 * q)).abs();
            assert!(e <= slack(lsb), "{fmt:?} ({i},{j}): {} LSB", e / lsb);
        }
    }
}

/// The quarter-square table gives `a · b` exactly through the same datapath.
#[test]
fn quarter_square_is_exact_for_every_pair() {
    for fmt in formats() {
        let u = QuarterSquareTable::new(fmt).unwrap();
        let s = fmt.out_frac_bits - 2 * fmt.frac_bits;
        for (i, j) in pairs(fmt.max_abs_a as i32) {
            assert_eq!(u.product(i, j), ((i * j) as i64) << s, "{fmt:?} ({i},{j})");
        }
    }
}

/// Item 11 (local gradient, I2 unit) and its 1-LSB fidelity, with the angle `z` over the whole
/// clamped rectified-sine range `[0, π/2]` and negative angles too.
#[test]
fn sin_cos_unit_statements_hold_for_every_pair() {
    let f = 8;
    let zmax = nacsim_sine::format::half_pi_code(f);
    let fmt = ProductFormat {
        frac_bits: f,
        out_frac_bits: 20,
        max_abs_a: 128,
        max_abs_b: zmax,
    };
    let s = SinCosTable::new(fmt).unwrap();
    let (q, lsb) = (fmt.operand_lsb(), fmt.out_lsb());
    for i in -128..=128 {
        for j in -(zmax as i32)..=zmax as i32 {
            let p_int = s.product(i, j);
            assert_eq!(s.product(-i, j), -p_int, "odd in e ({i},{j})");
            assert_eq!(s.product(i, -j), p_int, "even in z ({i},{j})");
            let (e, z, p) = (i as f64 * q, j as f64 * q, p_int as f64 * lsb);
            assert!(
                (p - sin_cos_product(e, z)).abs() <= slack(lsb),
                "fidelity ({i},{j})"
            );
            let bound = z.cos().abs() * e.abs().powi(3) / 6.0 + lsb;
            assert!((p - e * z.cos()).abs() <= slack(bound), "item 11 ({i},{j})");
        }
    }
}

/// Item 10 (forward): weight `w` against the clamped rectified sine of every angle code.
#[test]
fn forward_bound_holds_for_every_weight_and_angle() {
    let f = 8;
    let zmax = nacsim_sine::format::half_pi_code(f);
    let fmt = ProductFormat {
        frac_bits: f,
        out_frac_bits: 18,
        max_abs_a: 128,
        max_abs_b: zmax,
    };
    let g = VersineTable::new(fmt).unwrap();
    let (q, lsb) = (fmt.operand_lsb(), fmt.out_lsb());
    let act = RectifiedSine::Clamped;
    for i in -128..=128 {
        for k in -40..=(zmax as i32 + 40) {
            let zc = act.angle_code(k, f);
            let (w, z) = (i as f64 * q, zc as f64 * q);
            let p = g.product(i, zc) as f64 * lsb;
            let bound = z.sin().abs() * w.abs().powi(3) / 6.0 + lsb;
            assert!((p - w * act.value(z)).abs() <= slack(bound), "({i},{k})");
        }
    }
}

/// Item 13 for the bit-exact CORDIC unit: `|p − sin a sin b| ≤ 2^-(n−1) + 2^-F` (the note's
/// real-arithmetic bound plus the datapath rounding), commutative, zero at 0.
#[test]
fn cordic_unit_is_within_its_bound_for_every_pair() {
    let fmt = ProductFormat::half_range(7, 24);
    let (q, lsb) = (fmt.operand_lsb(), fmt.out_lsb());
    for n in [4u32, 8, 12, 16, 20] {
        let u = Cordic::new(fmt, n, 8).unwrap();
        let bound = (-(n as f64 - 1.0)).exp2() + lsb;
        for (i, j) in pairs(64) {
            let p = u.product(i, j);
            assert_eq!(p, u.product(j, i));
            if i == 0 || j == 0 {
                assert_eq!(p, 0, "n={n} ({i},{j})");
            }
            let e = (p as f64 * lsb - sin_product(i as f64 * q, j as f64 * q)).abs();
            assert!(e <= bound, "n={n} ({i},{j}): {e:.3e} > {bound:.3e}");
        }
    }
}

/// Item 12 (weight update, η = 2^-k): `Δw = −(P(δ, z) >> k)` bit-exactly, within
/// `η(|δ sin z|·δ²/6 + 2^-F) + 2^-F` of `−η·δ·sin z`, for every error code, every angle in
/// `[0, π/2]` and k = 0..=8.
#[test]
fn weight_update_bound_holds_for_every_pair_and_shift() {
    let f = 8;
    let zmax = nacsim_sine::format::half_pi_code(f);
    let fmt = ProductFormat {
        frac_bits: f,
        out_frac_bits: 20,
        max_abs_a: 128,
        max_abs_b: zmax,
    };
    let g = VersineTable::new(fmt).unwrap();
    let (q, lsb) = (fmt.operand_lsb(), fmt.out_lsb());
    for k in 0..=8u32 {
        let eta = (-(k as f64)).exp2();
        for i in -128..=128 {
            for j in 0..=zmax as i32 {
                let dw = nacsim_sine::weight_update(&g, i, j, k);
                assert_eq!(dw, -(g.product(i, j) >> k));
                let (d, z) = (i as f64 * q, j as f64 * q);
                let bound = eta * ((d * z.sin()).abs() * d * d / 6.0 + lsb) + lsb;
                assert!(
                    (dw as f64 * lsb + eta * d * z.sin()).abs() <= slack(bound),
                    "k={k} ({i},{j})"
                );
            }
        }
    }
}

/// Item 9 (dot product) over every pair, as 257 dot products of length 257 (each row `i` against
/// all `j`), f = 8, F = 16.
#[test]
fn dot_product_bound_holds_for_every_row() {
    let fmt = ProductFormat::half_range(8, 16);
    let g = VersineTable::new(fmt).unwrap();
    let (q, lsb) = (fmt.operand_lsb(), fmt.out_lsb());
    let b: Vec<i32> = (-128..=128).collect();
    for i in -128..=128 {
        let a = vec![i; b.len()];
        let acc = g.dot(&a, &b) as f64 * lsb;
        let (mut exact, mut bound) = (0.0, 0.0);
        for &j in &b {
            let (x, y) = (i as f64 * q, j as f64 * q);
            exact += x * y;
            bound += (x * y).abs() * (x * x + y * y) / 6.0 + lsb;
        }
        assert!((acc - exact).abs() <= slack(bound) + 1e-15, "row {i}");
    }
}
