//! The default MLP_NeuroSim run against the figures re-derived from NeuroSim's formulas by hand
//! (a scratch calculation following the C++, recorded in docs/engines/crossbar.md) — not
//! NeuroSim's printed output, which could not be obtained (see the docs).

use super::*;

/// Relative difference.
fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

fn assert_near(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        rel(got, want) <= tol,
        "{what}: {got:e} vs {want:e} (tolerance {tol})"
    );
}

#[test]
fn default_run_areas_match_the_rederived_figures() {
    let f = NeuroSimConfig::mlp_v3_default().evaluate().unwrap();
    let um2 = 1e-12;
    let ih = &f.layers[0].core_area;
    let ho = &f.layers[1].core_area;
    for (what, got, want) in [
        ("IH array", ih.array_m2, 655.36),
        ("IH wlDecoder", ih.wl_decoder_m2, 674.04),
        ("IH wlDecoderOutput", ih.wl_decoder_output_m2, 448.27),
        ("IH slSwitchMatrix", ih.sl_switch_matrix_m2, 298.36),
        ("IH blSwitchMatrix", ih.bl_switch_matrix_m2, 1394.61),
        ("IH mux", ih.mux_m2, 183.50),
        ("IH muxDecoder", ih.mux_decoder_m2, 36.42),
        ("IH readCircuit", ih.read_circuit_m2, 206.44),
        ("IH subtractor", ih.subtractor_m2, 275.25),
        ("HO array", ho.array_m2, 62.26),
        ("HO wlDecoder", ho.wl_decoder_m2, 163.92),
        ("HO wlDecoderOutput", ho.wl_decoder_output_m2, 112.07),
        ("HO slSwitchMatrix", ho.sl_switch_matrix_m2, 44.69),
        ("HO blSwitchMatrix", ho.bl_switch_matrix_m2, 348.65),
        ("HO mux", ho.mux_m2, 69.73),
        ("HO readCircuit", ho.read_circuit_m2, 39.22),
        ("HO subtractor", ho.subtractor_m2, 34.87),
        ("IH neuron", f.layers[0].neuron_area.total_m2(), 1049.6),
        ("HO neuron", f.layers[1].neuron_area.total_m2(), 158.6),
    ] {
        assert_near(what, got / um2, want, 5e-4);
    }
    assert_near("core", f.core_area_m2, 5.084e-9, 5e-4);
    assert_near("neuron", f.neuron_area_m2, 1.208e-9, 5e-4);
    assert_near("total", f.total_area_m2, 6.292e-9, 5e-4);
    assert_eq!(f.total_area_m2, f.core_area_m2 + f.neuron_area_m2);
}

#[test]
fn default_run_read_figures_match_the_rederived_figures() {
    let f = NeuroSimConfig::mlp_v3_default().evaluate().unwrap();
    let (ih, ho) = (&f.layers[0], &f.layers[1]);
    // The numColMuxed clamp: 10 iterations per layer, not 7 + 1 (⌈100/16⌉, ⌈10/16⌉) or 15.
    assert_eq!((ih.read_iterations, ho.read_iterations), (10, 10));
    assert_near("IH capRow2", ih.line_caps_f[1], 8.625e-15, 1e-3);
    assert_near("IH capCol", ih.line_caps_f[2], 70.80e-15, 1e-3);
    assert_near("HO capCol", ho.line_caps_f[2], 17.70e-15, 1e-3);
    assert_near("IH t_read", ih.read_latency.t_read_s, 2.4306e-7, 1e-3);
    assert_near("HO t_read", ho.read_latency.t_read_s, 2.6327e-7, 1e-3);
    assert_near("IH L_SA", ih.read_latency.subarray_s, 2.4464e-7, 1e-3);
    assert_near("HO L_SA", ho.read_latency.subarray_s, 2.6564e-7, 1e-3);
    assert_near("L_N", ih.read_latency.neuron_s, 1.186e-9, 2e-3);
    assert_near(
        "IH blSwitchMatrix",
        ih.read_latency.bl_switch_matrix_s,
        5.01e-10,
        5e-3,
    );
    assert_near("per image", f.read_latency_per_image_s, 5.127e-6, 1e-3);
    assert_near("per epoch", f.read_latency_per_epoch_s, 4.10e-2, 2e-3);
    // Read energy per iteration (J).
    let e = &ih.read_energy;
    assert_near("IH wlDecoder E", e.wl_decoder_j, 2.55e-13, 5e-3);
    assert_near(
        "IH wlDecoderOutput E",
        e.wl_decoder_output_j,
        1.74e-13,
        5e-3,
    );
    assert_near("IH blSwitchMatrix E", e.bl_switch_matrix_j, 7.09e-13, 5e-3);
    assert_near("IH readCircuit E", e.read_circuit_j, 9.422e-12, 1e-9);
    assert_near("IH neuron E", e.neuron_j, 8.94e-13, 5e-3);
    assert_near("HO neuron E", ho.read_energy.neuron_j, 1.27e-13, 5e-3);
    assert_near("IH all-WL", ih.array_read_energy_static_j, 2.794e-10, 1e-3);
    assert_near("HO all-WL", ho.array_read_energy_static_j, 1.28e-12, 5e-3);
    // Per active input: the selected bit line (6.40e-14 J) plus the cell current at mean G.
    assert!(ih.array_read_energy_per_active_input_j > 6.40e-14);
    assert_near(
        "IH per active input",
        ih.array_read_energy_per_active_input_j,
        6.40e-14,
        0.05,
    );
    // Static part ≈ 4.13e-10 J per image.
    let static_j: f64 = f
        .layers
        .iter()
        .map(|l| {
            l.read_iterations as f64 * (l.read_energy.subarray_j + l.read_energy.neuron_j)
                + l.array_read_energy_static_j
        })
        .sum();
    assert_near("static read energy per image", static_j, 4.13e-10, 2e-3);
    assert_eq!(
        f.read_energy_per_epoch_j,
        f.read_energy_per_image_j * 8000.0
    );
}

#[test]
fn default_run_static_write_parts_match_the_rederived_figures() {
    let cfg = NeuroSimConfig::mlp_v3_default();
    let f = cfg.evaluate().unwrap();
    assert_near(
        "IH write static",
        f.layers[0].write_latency_static_s,
        2.70e-7,
        2e-3,
    );
    assert_near(
        "HO write static",
        f.layers[1].write_latency_static_s,
        1.74e-8,
        3e-3,
    );
    assert_eq!(
        (f.layers[0].write_batch_cells, f.layers[1].write_batch_cells),
        (7, 1)
    );
    // One IH row: decoder + driver + BL switch matrix without column writes ≈ 2.55e-13 +
    // 4.3e-16 + 6.96e-13 + 1.74e-13 (the SL switch matrix's DFFs).
    let t = Technology::ptm32_hp(cfg.temperature_k);
    let ih = SubArray::new(&t, &cfg, &cfg.layers[0]);
    let e0 = ih.write_energy_row(&t, &cfg, 0.0, 0.0);
    assert_near(
        "IH row write, no batch",
        e0,
        2.55e-13 + 4.3e-16 + 6.96e-13 + 1.74e-13,
        5e-3,
    );
    // Each changed batch adds 7·c·P + 96.5·c (+ the TG gates), c = 3·C_TG,drain·V_w². The hand
    // calculation has 5.42e-14·P + 7.46e-13, twice ours: the SL pass gate's drain sits on a
    // rounding knife-edge (its cell height minus the fixed gaps equals its width, so
    // `CalculateGateCapacitance` folds it or not by one ulp); we follow the C++ operation order,
    // which does not fold here. Documented in docs/engines/crossbar.md.
    let e1 = ih.write_energy_row(&t, &cfg, 1.0, 10.0);
    let ratio = (e1 - e0) / (5.42e-14 * 10.0 + 7.46e-13);
    assert!((0.49..0.51).contains(&ratio), "per batch ratio {ratio}");
}

#[test]
fn bad_configs_name_the_field() {
    let mut c = NeuroSimConfig::mlp_v3_default();
    c.node_nm = 45;
    assert_eq!(c.evaluate().unwrap_err().field, "node_nm");
    let mut c = NeuroSimConfig::mlp_v3_default();
    c.cell.r_access_ohm = 1e3; // a 30F-wide access transistor does not fit a 4F cell
    assert_eq!(c.evaluate().unwrap_err().field, "cell.r_access_ohm");
    let mut c = NeuroSimConfig::mlp_v3_default();
    c.layers[1].mean_active_inputs = 101.0;
    assert_eq!(
        c.evaluate().unwrap_err().field,
        "layers[1].mean_active_inputs"
    );
}

#[test]
fn more_columns_per_read_circuit_mean_fewer_read_circuits_and_more_iterations() {
    let base = NeuroSimConfig::mlp_v3_default();
    let mut c = base.clone();
    c.num_col_muxed = 4;
    let (a, b) = (base.evaluate().unwrap(), c.evaluate().unwrap());
    assert!(b.layers[0].core_area.read_circuit_m2 > a.layers[0].core_area.read_circuit_m2);
    assert!(b.layers[0].read_iterations < a.layers[0].read_iterations);
}

#[test]
fn write_accounting_of_one_image() {
    let cfg = NeuroSimConfig::mlp_v3_default();
    let t = Technology::ptm32_hp(cfg.temperature_k);
    let ih = SubArray::new(&t, &cfg, &cfg.layers[0]);
    let n = ih.rows * ih.cols;
    let g = vec![2e-8; n];
    // No pulse: the static latency, and the periphery energy of every row (twice for IH).
    let zero = ih.write_image(&t, &cfg, &vec![0; n], &g, true);
    assert_eq!(zero.pulse_latency_s, 0.0);
    assert_eq!(zero.array_energy_j, 0.0);
    assert_eq!(zero.latency_s, ih.write_latency_static(&t));
    let row0 = ih.write_energy_row(&t, &cfg, 0.0, 0.0);
    assert_near(
        "no-pulse periphery",
        zero.periphery_energy_j,
        2.0 * 400.0 * row0,
        1e-12,
    );
    // One LTP pulse of 3 in cell (input 5, output 9) and one LTD pulse of 2 in (5, 10): the
    // same batch of 7 (outputs 7..14) takes 3·300 µs + 2·300 µs; one changed batch.
    let mut p = vec![0; n];
    p[5 * 100 + 9] = 3;
    p[5 * 100 + 10] = -2;
    let w = ih.write_image(&t, &cfg, &p, &g, true);
    assert_eq!(w.changed_batches, 1);
    assert_near("pulse latency", w.pulse_latency_s, 5.0 * 300e-6, 1e-12);
    // Array side: the cells (V²·G·PW·n and their SL charging) plus the batch's fixed part, which
    // the hand calculation gives as 1.4e-14 + 2.6e-14 + 6.74e-11 J.
    let (cc, vp2, vd2) = (ih.cap_col, 3.2f64 * 3.2, 2.8f64 * 2.8);
    let cells = vp2 * 2e-8 * 300e-6 * 3.0
        + vp2 * cc * 3.0
        + (vp2 * cc + vd2 * cc * 2.0 + vd2 * 2e-8 * 300e-6 * 2.0)
        + 5.0 * vp2 * cc;
    let fixed = w.array_energy_j - cells;
    assert_near(
        "batch fixed part",
        fixed,
        1.4e-14 + 2.6e-14 + 6.74e-11,
        2e-3,
    );
    // The row's periphery: one write operation, mean pulses ⌊5/100⌋ = 0.
    let row1 = ih.write_energy_row(&t, &cfg, 1.0, 0.0);
    assert_near(
        "periphery",
        w.periphery_energy_j,
        2.0 * (399.0 * row0 + row1),
        1e-12,
    );
    // HO is counted once, and its batches are single cells.
    let ho = SubArray::new(&t, &cfg, &cfg.layers[1]);
    let mut p = vec![0; 1000];
    p[3] = 1;
    p[4] = 1;
    let w = ho.write_image(&t, &cfg, &p, &vec![2e-8; 1000], false);
    assert_eq!(w.changed_batches, 2);
    assert_near("HO pulse latency", w.pulse_latency_s, 600e-6, 1e-12);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
    /// The batch sum of the longest trains lies between the longest single train and the sum of
    /// all trains; more pulses never cost less energy.
    #[test]
    fn write_latency_is_bounded_by_the_trains(p in proptest::collection::vec(-20i32..20, 1000)) {
        let cfg = NeuroSimConfig::mlp_v3_default();
        let t = Technology::ptm32_hp(cfg.temperature_k);
        let ho = SubArray::new(&t, &cfg, &cfg.layers[1]);
        let g = vec![2e-8; 1000];
        let w = ho.write_image(&t, &cfg, &p, &g, false);
        let trains: Vec<f64> = p.iter().map(|n| f64::from(n.unsigned_abs()) * 300e-6).collect();
        let max = trains.iter().copied().fold(0.0, f64::max);
        let sum: f64 = trains.iter().sum();
        proptest::prop_assert!(w.pulse_latency_s >= max - 1e-15);
        proptest::prop_assert!(w.pulse_latency_s <= sum + 1e-12);
        let more: Vec<i32> = p.iter().map(|n| n + n.signum()).collect();
        let w2 = ho.write_image(&t, &cfg, &more, &g, false);
        proptest::prop_assert!(w2.energy_j() >= w.energy_j());
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    /// More pulses in any one cell — a longer train of the same sign, or a first pulse of either
    /// sign in an idle cell — never lower the write latency or any part of the write energy of
    /// an image (batches of 3 cells on an 8 × 7 sub-array, conductances anywhere in range).
    #[test]
    fn more_pulses_never_cost_less(
        p in proptest::collection::vec(-6i32..=6, 56),
        g in proptest::collection::vec(3.0769e-9f64..3.8462e-8, 56),
        cell in 0usize..56,
        extra in 1i32..=5,
        up in proptest::bool::ANY,
    ) {
        let mut cfg = NeuroSimConfig::mlp_v3_default();
        cfg.num_write_col_muxed = 3;
        cfg.layers = vec![SubArrayConfig {
            rows: 8,
            cols: 7,
            relax_cell_width: false,
            mean_active_inputs: 3.0,
        }];
        let t = Technology::ptm32_hp(cfg.temperature_k);
        let sa = SubArray::new(&t, &cfg, &cfg.layers[0]);
        let mut more = p.clone();
        more[cell] += match p[cell].signum() {
            0 => if up { extra } else { -extra },
            s => s * extra,
        };
        for double in [false, true] {
            let a = sa.write_image(&t, &cfg, &p, &g, double);
            let b = sa.write_image(&t, &cfg, &more, &g, double);
            proptest::prop_assert!(b.latency_s >= a.latency_s);
            proptest::prop_assert!(b.pulse_latency_s >= a.pulse_latency_s);
            proptest::prop_assert!(b.array_energy_j >= a.array_energy_j);
            proptest::prop_assert!(b.periphery_energy_j >= a.periphery_energy_j);
            proptest::prop_assert!(b.changed_batches >= a.changed_batches);
        }
    }
}

#[test]
fn arrays_too_small_to_lay_out_are_field_errors() {
    let mut cfg = NeuroSimConfig::mlp_v3_default();
    cfg.layers[1].rows = 6;
    cfg.layers[1].mean_active_inputs = 3.0;
    let e = cfg.validate().unwrap_err();
    assert_eq!(e.field, "layers[1].rows");
    cfg.layers[1].rows = 8;
    cfg.layers[0].cols = 3;
    let e = cfg.validate().unwrap_err();
    assert_eq!(e.field, "layers[0].cols");
    cfg.layers[0].cols = 4;
    assert_eq!(cfg.validate(), Ok(()));
}
