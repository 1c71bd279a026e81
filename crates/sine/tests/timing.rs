//! Timing: the cycle-stepped model equals the analytic path in cycles and every counter, its
//! outputs equal the unit's bit-exact dot products, and a product is accumulated exactly `D − 1`
//! cycles after its operands are read.

mod common;

use common::cases;
use nacsim_sine::{
    COUNTER_NAMES, DatapathConfig, ProductConfig, ProductFormat, ProductKind, RomConfig,
    SineProduct, SineSim, analytic, run_stepped,
};
use proptest::prelude::*;

fn arb_cfg() -> impl Strategy<Value = DatapathConfig> {
    let kind = prop_oneof![
        3 => Just(ProductKind::Versine),
        1 => Just(ProductKind::CosLiteral),
        1 => Just(ProductKind::QuarterSquare),
        1 => (0u32..=4).prop_map(|d| ProductKind::CoarseVersine { drop_bits: d }),
        1 => (2u32..=20).prop_map(|n| ProductKind::Cordic { iterations: n, guard_bits: 8 }),
    ];
    (kind, 1u32..=8, 1u32..=4, 1u32..=4, 6u32..=10).prop_map(|(kind, lanes, ports, copies, f)| {
        DatapathConfig {
            product: ProductConfig {
                format: ProductFormat::half_range(f, 2 * f + 2),
                kind,
            },
            lanes,
            rom: RomConfig {
                ports_per_copy: ports.max(2),
                copies,
            },
        }
    })
}

/// Up to 12 dot products of length 0..=40 (a quarter of them empty-or-short), operands in range.
fn arb_job() -> impl Strategy<Value = Vec<Vec<(i32, i32)>>> {
    let len = prop_oneof![1 => 0usize..=2, 3 => 0usize..=40];
    prop::collection::vec(
        len.prop_flat_map(|n| prop::collection::vec((-32i32..=32, -32i32..=32), n)),
        0..=12,
    )
}

fn split(job: &[Vec<(i32, i32)>]) -> (Vec<Vec<i32>>, Vec<Vec<i32>>) {
    job.iter().map(|v| v.iter().copied().unzip()).unzip()
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn stepped_matches_analytic_and_datapath(cfg in arb_cfg(), job in arb_job()) {
        let dp = cfg.build().unwrap();
        let (a, b) = split(&job);
        let (y, stepped) = run_stepped(&dp, &a, &b);
        let lengths: Vec<usize> = job.iter().map(Vec::len).collect();
        let fast = analytic(&dp, &lengths);
        prop_assert_eq!(&stepped, &fast);
        for name in COUNTER_NAMES {
            prop_assert!(fast.counters.contains(name));
        }
        for (o, (x, w)) in a.iter().zip(&b).enumerate() {
            prop_assert_eq!(y[o], dp.unit.dot(x, w), "output {}", o);
        }
        let t: u64 = lengths.iter().map(|&n| n as u64).sum();
        prop_assert_eq!(fast.counters.get("table_reads"), t * dp.cost().table_reads as u64);
        prop_assert_eq!(fast.counters.get("products"), t);
    }
}

#[test]
fn product_accumulated_exactly_at_depth() {
    for kind in [
        ProductKind::Versine,
        ProductKind::Cordic {
            iterations: 12,
            guard_bits: 8,
        },
    ] {
        let dp = DatapathConfig {
            product: ProductConfig {
                format: ProductFormat::half_range(8, 16),
                kind,
            },
            lanes: 1,
            rom: RomConfig::default(),
        }
        .build()
        .unwrap();
        let depth = match kind {
            ProductKind::Cordic { iterations, .. } => iterations + 5,
            _ => 6,
        };
        assert_eq!(dp.depth, depth);
        let mut sim = SineSim::new(&dp, &[vec![100]], &[vec![7]]);
        for _ in 0..depth - 1 {
            sim.tick();
        }
        assert_eq!(sim.outputs()[0], 0, "not valid at D − 1");
        assert!(!sim.is_idle());
        sim.tick();
        assert_eq!(sim.outputs()[0], dp.unit.product(100, 7), "valid at D");
        assert!(sim.is_idle());
        assert_eq!(sim.cycles(), depth as u64);
    }
}

#[test]
fn rom_ports_limit_issue_width() {
    let product = ProductConfig {
        format: ProductFormat::half_range(10, 24),
        kind: ProductKind::Versine,
    };
    let mk = |lanes, ports_per_copy, copies| {
        DatapathConfig {
            product,
            lanes,
            rom: RomConfig {
                ports_per_copy,
                copies,
            },
        }
        .build()
    };
    assert_eq!(mk(8, 2, 1).unwrap().issue_width, 1);
    assert_eq!(mk(8, 2, 3).unwrap().issue_width, 3);
    assert_eq!(mk(8, 4, 4).unwrap().issue_width, 8);
    let r = analytic(&mk(8, 2, 2).unwrap(), &[64; 4]);
    assert_eq!(r.cycles, 128 + 5);
    assert_eq!(r.counters.get("lane_cycles_idle"), 8 * 133 - 256);
    let e = mk(4, 1, 1).unwrap_err().to_string();
    assert!(
        e.starts_with("sine.rom.ports_per_copy = 1:") && e.contains("needs at least 2"),
        "{e}"
    );
    let e = mk(0, 2, 1).unwrap_err().to_string();
    assert_eq!(e, "sine.lanes = 0: must be at least 1");
    // CORDIC has no table: ports do not matter.
    let cordic = DatapathConfig {
        product: ProductConfig {
            kind: ProductKind::Cordic {
                iterations: 16,
                guard_bits: 8,
            },
            ..product
        },
        lanes: 4,
        rom: RomConfig {
            ports_per_copy: 0,
            copies: 0,
        },
    };
    let dp = cordic.build().unwrap();
    assert_eq!(dp.issue_width, 4);
    assert_eq!(analytic(&dp, &[8]).counters.get("table_reads"), 0);
}

#[test]
fn config_parses_and_bad_configs_name_field_and_minimum() {
    use std::path::Path;
    let p = Path::new("sine-lut.ron");
    let text = "(product: (format: (frac_bits: 10, out_frac_bits: 24, max_abs_a: 512, max_abs_b: 512), \
                kind: Cordic(iterations: 16, guard_bits: 8)), lanes: 4)";
    let cfg: DatapathConfig = nacsim_core::config::parse(text, p).unwrap();
    assert_eq!(cfg.rom, RomConfig::default());
    assert_eq!(
        cfg.product.kind,
        ProductKind::Cordic {
            iterations: 16,
            guard_bits: 8
        }
    );
    let bad = |t: &str| {
        nacsim_core::config::parse::<DatapathConfig>(t, p)
            .unwrap_err()
            .to_string()
    };
    let e = bad(
        "(product: (format: (frac_bits: 10, out_frac_bits: 24, max_abs_a: 512, max_abs_b: 512)), lanes: 4, lane: 2)",
    );
    assert!(e.contains("lane"), "{e}");
    let e = bad(
        "(product: (format: (frac_bits: 10, out_frac_bits: 8, max_abs_a: 512, max_abs_b: 512)), lanes: 4)",
    );
    assert!(
        e.contains("product.format.out_frac_bits = 8: must be at least frac_bits = 10"),
        "{e}"
    );
    let e = bad(
        "(product: (format: (frac_bits: 10, out_frac_bits: 24, max_abs_a: 512, max_abs_b: 512), \
                 kind: Cordic(iterations: 0, guard_bits: 8)), lanes: 4)",
    );
    assert!(
        e.contains("product.kind.iterations = 0: must be at least 1"),
        "{e}"
    );
}
