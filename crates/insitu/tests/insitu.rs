//! Scheme behaviour, NeuroSim parity, accounting, determinism, bad configs and a tiny training
//! run of the in-situ store.

mod common;

use common::*;
use nacsim_core::{Purpose, Stream};
use nacsim_device::{DevicePreset, NoNoise, PulseDevice, PulseDeviceConfig, PulseResponse};
use nacsim_insitu::CrossbarStore;
use nacsim_insitu::store::ChunkNormals;
use nacsim_nn::data::Dataset;
use nacsim_nn::model::Param;
use nacsim_nn::train::{FloatStore, Optimizer, WeightStore};

fn w00(s: &CrossbarStore) -> f32 {
    s.params()[0].as_ref().unwrap().weight[[0, 0]]
}

#[test]
fn ideal_device_with_linear_update_is_sgd() {
    // A linear device with continuous width modulation: every update is exactly ΔW (up to f64
    // conductance rounding), as long as weights stay in range.
    let c = cfg("(device: Preset((preset: IdealLinear)), scheme: ApproxLinear())");
    let init = one_layer(16, 24, 0.0, true);
    let init: Vec<Option<Param>> = init
        .into_iter()
        .map(|p| {
            p.map(|mut p| {
                let mut i = 0u32;
                p.weight.mapv_inplace(|_| {
                    i += 1;
                    ((i * 7919) % 101) as f32 / 200.0 - 0.25
                });
                p
            })
        })
        .collect();
    // Plain SGD, then the digitally kept optimiser states (momentum, Adam with weight decay):
    // the crossbar follows the float store.
    let opts = [
        (SGD, 0.05),
        (
            Optimizer::Sgd {
                momentum: 0.9,
                weight_decay: 1e-3,
            },
            0.02,
        ),
        (
            Optimizer::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 1e-3,
            },
            0.005,
        ),
    ];
    for (opt, lr) in opts {
        let mut xb = CrossbarStore::new(c.clone(), init.clone(), opt, 3).unwrap();
        let mut fl = FloatStore::new(init.clone(), opt);
        for step in 0..20 {
            let g = grads_like(xb.params(), |i| {
                (((i + step) * 31) % 17) as f32 / 17.0 - 0.5
            });
            xb.update(&g, lr);
            fl.update(&g, lr);
        }
        let a = xb.export();
        let b = fl.export();
        let (a, b) = (a[0].as_ref().unwrap(), b[0].as_ref().unwrap());
        let max = a
            .weight
            .iter()
            .zip(&b.weight)
            .chain(a.bias.iter().flatten().zip(b.bias.iter().flatten()))
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(max < 1e-5, "{opt:?}: max |W_xbar − W_float| = {max}");
        let moved = a
            .weight
            .iter()
            .zip(&init[0].as_ref().unwrap().weight)
            .filter(|(x, y)| x != y)
            .count();
        assert!(
            moved > a.weight.len() / 2,
            "{opt:?}: only {moved} weights moved"
        );
        assert!(xb.stats().pulses > 0);
    }
}

#[test]
fn fixed_voltage_sign_moves_each_weight_by_two_device_steps() {
    // IdealLinear: 64 pulses over the range; a differential pair moves both devices one pulse,
    // so |ΔW| = 2·w_max/64 whatever the size of the requested change.
    let c = cfg("(device: Preset((preset: IdealLinear)), scheme: FixedVoltage(magnitude: Sign))");
    let mut s = CrossbarStore::new(c, one_layer(2, 3, 0.0, false), SGD, 1).unwrap();
    for (lr, sign) in [(1e-6f32, -1.0f32), (10.0, -1.0)] {
        let before = w00(&s);
        s.update(&grads_like(s.params(), |_| 1.0), lr);
        let d = w00(&s) - before;
        assert!((d - sign * 2.0 / 64.0).abs() < 1e-6, "{d}");
    }
    let st = s.stats();
    assert_eq!(st.pulses, 2 * 6 * 2); // 2 steps × 6 weights × 2 devices
    assert_eq!(st.max_pulses_per_device, 2);
    // Count magnitude: half a pulse is rounded away, 1.5 pulses become 2.
    let c = cfg("(device: Preset((preset: IdealLinear)), scheme: FixedVoltage(magnitude: Count))");
    let mut s = CrossbarStore::new(c, one_layer(1, 1, 0.0, false), SGD, 1).unwrap();
    let per_pulse = 2.0 / 64.0; // ΔW of one pulse on each device of the pair
    s.update(&grads_like(s.params(), |_| -0.49 * per_pulse), 1.0);
    assert_eq!(w00(&s), 0.0);
    s.update(&grads_like(s.params(), |_| -1.5 * per_pulse), 1.0);
    assert!((w00(&s) - 2.0 * per_pulse).abs() < 1e-6, "{}", w00(&s));
}

#[test]
fn neurosim_scheme_replays_the_write_rule_bit_for_bit() {
    // One Ag:a-Si device per weight (Reference), starting at Gmin (W = −1): ΔW = 2·10/97 gives
    // 10 LTP pulses, G(10) = 1.0709e-8 S (note §6 validation #2), then compare a whole
    // sequence with c2c noise against ExpDevice::write driven by the same normals.
    let text = |c2c: f64| {
        format!(
            "(device: Preset((preset: AgASi, overrides: (c2c_sigma: {c2c}))), scheme: NeuroSim, \
             mapping: Reference)"
        )
    };
    let mut s = CrossbarStore::new(cfg(&text(0.0)), one_layer(1, 1, -1.0, false), SGD, 1).unwrap();
    assert_eq!(s.conductances(0).unwrap()[0], 3.0769e-9);
    s.update(&grads_like(s.params(), |_| -20.0 / 97.0), 1.0);
    let g = s.conductances(0).unwrap()[0];
    assert!((g / 1.0709e-8 - 1.0).abs() < 5e-5, "{g}");
    assert_eq!(s.pulse_counts(0).unwrap()[0], 10);

    let seed = 9;
    let c = cfg(&text(0.035));
    let dev = match c
        .device
        .build(&Stream::new(0, Purpose::DeviceToDevice, 0, 0), 0)
        .unwrap()
    {
        PulseDevice::Exponential(d) => d,
        other => panic!("{other:?}"),
    };
    let mut s = CrossbarStore::new(c, one_layer(1, 1, 0.0, false), SGD, seed).unwrap();
    let c2c = Stream::new(seed, Purpose::CycleToCycle, 0, 0);
    let mut g = s.conductances(0).unwrap()[0];
    let deltas = [0.3, -0.05, 0.011, -0.6, 0.2, 0.0723, -0.0103, 0.9];
    for (step, &dw) in deltas.iter().enumerate() {
        s.update(&grads_like(s.params(), |_| -dw as f32), 1.0);
        let out = dev.write(
            g,
            f64::from(dw as f32),
            -1.0,
            1.0,
            &mut ChunkNormals::new(&c2c, step as u64),
        );
        if out.n_pulses != 0 {
            g = out.g_s;
        }
        assert_eq!(s.conductances(0).unwrap()[0], g, "step {step}");
    }
    assert!(s.stats().pulses > 0);
}

#[test]
fn approx_linear_beats_fixed_voltage_in_update_linearity_on_agasi() {
    // Request the same small change many times from the middle of the range: the linear scheme
    // (inversion, read-before-write) delivers it; the fixed-voltage count scheme delivers the
    // nonlinear curve's steps instead.
    let run = |scheme: &str| {
        let c = cfg(&format!(
            "(device: Preset((preset: AgASi, overrides: (c2c_sigma: 0.0))), scheme: {scheme})"
        ));
        let mut s = CrossbarStore::new(c, one_layer(1, 1, 0.0, false), SGD, 1).unwrap();
        let mut errs = Vec::new();
        for _ in 0..10 {
            let before = w00(&s);
            s.update(&grads_like(s.params(), |_| -0.0412), 1.0); // ≈ 2 pulses per device
            errs.push((w00(&s) - before - 0.0412).abs());
        }
        errs.iter().sum::<f32>() / errs.len() as f32
    };
    let linear = run("ApproxLinear(read_before_write: true)");
    let fixed = run("FixedVoltage()");
    assert!(linear < 1e-5, "{linear}");
    assert!(
        fixed > 10.0 * linear.max(1e-7),
        "fixed {fixed} vs linear {linear}"
    );
}

#[test]
fn energy_latency_and_half_select_accounting() {
    // One LTP pulse on one device of an ideal-linear 1×1 reference cell.
    let c =
        cfg("(device: Preset((preset: IdealLinear)), scheme: FixedVoltage(), mapping: Reference)");
    let mut s = CrossbarStore::new(c, one_layer(1, 1, 0.0, false), SGD, 1).unwrap();
    let g0 = s.conductances(0).unwrap()[0];
    s.update(&grads_like(s.params(), |_| -2.0 / 64.0), 1.0);
    let g1 = s.conductances(0).unwrap()[0];
    let st = s.stats();
    let want = 4.0 * 0.5 * (g0 + g1) * 10e-9 * 1e12; // V²·Ḡ·t in pJ
    assert!((st.write_energy_pj / want - 1.0).abs() < 1e-12, "{st:?}");
    assert_eq!(st.half_select_energy_pj, 0.0); // a 1×1 array has no half-selected cell
    assert!((st.write_latency_s - 10e-9).abs() < 1e-20);
    // A 2×3 array: each pulse half-selects (2·1 − 1) + (3 − 1) = 3 cells... with pairs, the
    // row holds 4 devices: 3 + 2 = 5 half-selected cells per pulse.
    let c = cfg("(device: Preset((preset: IdealLinear)), scheme: FixedVoltage(magnitude: Sign))");
    let mut s = CrossbarStore::new(c, one_layer(2, 3, 0.0, false), SGD, 1).unwrap();
    let gm = s.conductances(0).unwrap().iter().sum::<f64>() / 12.0;
    s.update(&grads_like(s.params(), |_| 1.0), 0.01);
    let st = s.stats();
    let want = 12.0 * 1.0 * 10e-9 * gm * 5.0 * 1e12; // 12 pulses × (V/2)² × t × Ḡ × 5
    assert!(
        (st.half_select_energy_pj / want - 1.0).abs() < 1e-9,
        "{st:?}"
    );
    // Rows written one after another, LTP and LTD phases: 3 rows × 2 phases × 10 ns.
    assert!((st.write_latency_s - 60e-9).abs() < 1e-18, "{st:?}");
}

#[test]
fn half_select_disturb_only_above_threshold() {
    let base = "(device: Preset((preset: IdealLinear{o})), scheme: FixedVoltage(magnitude: Sign), \
                variation: (half_select_disturb: true))";
    let run = |o: &str| {
        let c = cfg(&base.replace("{o}", o));
        let mut s = CrossbarStore::new(c, one_layer(3, 3, 0.0, false), SGD, 1).unwrap();
        let g0 = s.conductances(0).unwrap().to_vec();
        // Only weight (o 0, k 0) changes: devices 0 (G+, LTP) and 1 (G−, LTD).
        s.update(
            &grads_like(s.params(), |i| if i == 1 { 1.0 } else { 0.0 }),
            0.01,
        );
        let moved: Vec<usize> = (0..18)
            .filter(|&d| s.conductances(0).unwrap()[d] != g0[d])
            .collect();
        (moved, s.warnings().len())
    };
    let (moved, warns) = run("");
    assert_eq!(warns, 0);
    assert_eq!(moved, vec![0, 1]);
    // Threshold 0.5 V < V/2 = 1 V: the cells of the two driven columns (output 0's devices at
    // k = 1, 2: 2, 3, 4, 5) move too. Row k = 0 carried one LTP and one LTD pulse, whose equal
    // V/2 drives cancel on this linear device (devices 6, 7, 12, 13 end where they were); the
    // cells in neither the row nor a driven column never move.
    let (moved, warns) = run(", overrides: (threshold_v: 0.5)");
    assert_eq!(warns, 1);
    assert_eq!(moved, vec![0, 1, 2, 3, 4, 5]);
}

#[test]
fn voltage_error_changes_updates_and_zero_sigma_is_exact() {
    let run = |v: &str| {
        let c = cfg(&format!(
            "(device: Preset((preset: AgASi, overrides: (c2c_sigma: 0.0))), \
             scheme: ApproxLinear(modulate: Amplitude), variation: ({v}))"
        ));
        let mut s = CrossbarStore::new(c, one_layer(4, 4, 0.0, false), SGD, 2).unwrap();
        s.update(&grads_like(s.params(), |i| i as f32 / 16.0 - 0.5), 0.1);
        bits(&s.export())
    };
    let none = run("");
    assert_eq!(
        none,
        run("voltage_error_sigma: 0.0, voltage_error: PerDriver")
    );
    assert_ne!(none, run("voltage_error_sigma: 0.05"));
    assert_ne!(
        none,
        run("voltage_error_sigma: 0.05, voltage_error: PerDriver")
    );
}

fn determinism_config() -> nacsim_insitu::InSituConfig {
    cfg(
        "(device: Preset((preset: AgASi, overrides: (nl_d2d_sigma: 0.3))), \
         scheme: FixedVoltage(rounding: Stochastic), \
         variation: (g_range_d2d_sigma: 0.05, voltage_error_sigma: 0.03), \
         periphery: (read_noise_sigma: 0.05, adc_bits: 8, dac_bits: 4))",
    )
}

#[test]
fn same_seed_same_bits_for_one_and_two_threads() {
    let data = Dataset::bundled_sample().limit(256);
    let c = determinism_config();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let (p, acc, s) = train_insitu(&c, &mlp(16), &data, &data, 1, 0.2, 32, 4);
                (bits(&p), acc, s.stats())
            })
    };
    let one = run(1);
    let two = run(2);
    assert_eq!(one.0, two.0);
    assert_eq!(one.1, two.1);
    assert_eq!(one.2, two.2);
    assert!(one.2.pulses > 0);
}

#[test]
fn bad_configs_name_the_field_and_the_consequence() {
    let e = cfg_err(
        "(device: Preset((preset: AgASi, overrides: (ltp_amplitude_v: 1.0))), scheme: FixedVoltage())",
    );
    assert!(
        e.contains("device.Preset.overrides.ltp_amplitude_v = 1: magnitude must exceed threshold_v = 1.4 V, or no pulse can write the device"),
        "{e}"
    );
    let e = cfg_err(
        "(device: Preset((preset: AgASi, overrides: (ltd_width_s: -1e-6))), scheme: FixedVoltage())",
    );
    assert!(
        e.contains("ltd_width_s = -0.000001: must be a positive pulse width"),
        "{e}"
    );
    let e = cfg_err("(device: Preset((preset: AgASi)), scheme: NeuroSim)");
    assert!(
        e.contains("mapping = Differential: NeuroSim parity uses one device"),
        "{e}"
    );
    let e = cfg_err(
        "(device: Step((model: SoftBounds, g_on_s: 1e-5, g_off_s: 1e-6)), scheme: NeuroSim, mapping: Reference)",
    );
    assert!(
        e.contains("scheme = NeuroSim: NeuroSim's write rule needs an exponential device"),
        "{e}"
    );
    let e = cfg_err(
        "(device: Preset((preset: AgASi)), scheme: ApproxLinear(max_drive: 0.0), w_max: -1.0, \
         periphery: (read_v: 2.0, adc_bits: 40))",
    );
    for f in [
        "scheme.ApproxLinear.max_drive = 0",
        "w_max = -1",
        "periphery.read_v = 2",
        "periphery.adc_bits = 40",
    ] {
        assert!(e.contains(f), "{f} missing in {e}");
    }
    // A learning rate that maps every update to zero pulses: a warning naming train.lr.
    let c = cfg("(device: Preset((preset: AgASi)), scheme: NeuroSim, mapping: Reference)");
    let mut s = CrossbarStore::new(c, one_layer(4, 4, 0.0, true), SGD, 1).unwrap();
    for _ in 0..nacsim_insitu::store::ZERO_PULSE_WARN_STEPS {
        s.update(&grads_like(s.params(), |_| 0.01), 1e-3);
    }
    assert_eq!(s.stats().pulses, 0);
    let w = s.warnings().join("\n");
    assert!(
        w.starts_with("train.lr = 0.001: the first 50 updates gave zero programming pulses"),
        "{w}"
    );
    assert!(w.contains("the weights never change"), "{w}");
}

#[test]
fn tiny_in_situ_run_learns() {
    let all = Dataset::bundled_sample();
    let idx: Vec<usize> = (0..600).collect();
    let test_idx: Vec<usize> = (1500..2000).collect();
    let (tr, te) = (all.subset(&idx), all.subset(&test_idx));
    let c = cfg(
        "(device: Preset((preset: AgASi)), scheme: ApproxLinear(read_before_write: true), \
                 periphery: (read_noise_sigma: 0.02, adc_bits: 8))",
    );
    let (_, acc, s) = train_insitu(&c, &mlp(32), &tr, &te, 3, 0.1, 16, 5);
    // Chance is 0.1. Over seeds 1–8 this run gives 0.52–0.68 (0.55–0.68 without read noise),
    // so the bound checks learning, not one noise realisation.
    assert!(acc > 0.45, "accuracy {acc}");
    let st = s.stats();
    assert!(st.pulses > 0 && st.write_energy_pj > 0.0 && st.write_latency_s > 0.0);
    assert!(st.max_pulses_per_device as f64 >= st.mean_pulses_per_device);
}

#[test]
fn ode_programmer_integrates_a_vteam_train() {
    use nacsim_device::{StateDevice, Vteam, VteamConfig};
    use nacsim_insitu::program::ode;
    let d = Vteam::new(VteamConfig::default()).unwrap();
    // Model inversion: one pulse of 1 ns that moves x by 0.1 nm, integrated exactly.
    let t = ode::vteam_inversion(&d, 1e-10, 1e-9, true).unwrap();
    let x = ode::apply_train(&d, 1e-9, &t, &mut |_| 0.0);
    assert!((x - 1.1e-9).abs() < 1e-15, "{x}");
    // Fixed voltage: 5 pulses of that amplitude move it 5 times as far (window-free VTEAM).
    let f = ode::fixed_voltage(t.amplitude_v, 1e-9, 5, true);
    let x5 = ode::apply_train(&d, 1e-9, &f, &mut |_| 0.0);
    assert!((x5 - 1.5e-9).abs() < 1e-15, "{x5}");
    // A 10 % voltage error changes it; below-threshold pulses do nothing.
    assert!(ode::apply_train(&d, 1e-9, &f, &mut |_| 0.1) != x5);
    let g = d.conductance_s(x5);
    assert!(g > 0.0);
    let _ = (
        NoNoise,
        PulseDeviceConfig::Preset(nacsim_device::PresetConfig::new(DevicePreset::AgASi))
            .validate_ok(),
    );
}

trait ValidateOk {
    fn validate_ok(&self) -> bool;
}

impl ValidateOk for PulseDeviceConfig {
    fn validate_ok(&self) -> bool {
        use nacsim_core::config::Validate;
        self.validate().is_ok()
    }
}

#[test]
fn device_preset_pulse_model_is_used_for_step_devices_too() {
    // aihwkit SoftBounds through the generic path: fixed-voltage count moves the weight.
    let c = cfg(
        "(device: Step((model: SoftBounds, g_on_s: 1e-5, g_off_s: 1e-6, dw_min_std: 0.0, \
                 dw_min_dtod: 0.0, up_down_dtod: 0.0, w_max_dtod: 0.0, w_min_dtod: 0.0)), \
                 scheme: ApproxLinear(read_before_write: true))",
    );
    let mut s = CrossbarStore::new(c, one_layer(1, 2, 0.0, false), SGD, 1).unwrap();
    s.update(&grads_like(s.params(), |_| -0.01), 1.0);
    let w = w00(&s);
    assert!((w - 0.01).abs() < 1e-4, "{w}");
    let d = s.conductances(0).unwrap();
    assert!(d[0] > d[1]);
    let _ = PulseResponse::g_min_s(&nacsim_device::PulseDevice::Lut(
        nacsim_device::LutDevice::from_tables(vec![1.0, 2.0], vec![2.0, 1.0], 0.0),
    ));
}

#[test]
fn fast_builder_draws_the_same_devices_as_the_device_crate() {
    use nacsim_insitu::store::FastBuilder;
    let dev = PulseDeviceConfig::Preset(nacsim_device::PresetConfig {
        preset: DevicePreset::AgASi,
        overrides: nacsim_device::PresetOverrides {
            nl_d2d_sigma: Some(1.5),
            ..Default::default()
        },
    });
    let f = FastBuilder::new(&dev).unwrap();
    let s = Stream::new(7, Purpose::DeviceToDevice, 1, 0);
    for i in 0..300 {
        let want = dev.build(&s, i).unwrap();
        assert_eq!(PulseDevice::Exponential(f.build(&s, i)), want, "device {i}");
    }
}

#[test]
fn committed_insitu_settings_load_and_build() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/training/insitu");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "ron") {
            let c: nacsim_insitu::InSituConfig =
                nacsim_core::config::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            CrossbarStore::new(c, one_layer(2, 2, 0.1, true), SGD, 1)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 4, "{n} settings files in {}", dir.display());
}

/// A small CNN (MCNN): Conv2d layers are lowered to products, so the store holds them as
/// crossbars of `out_channels` × `in_channels·k²` (+ bias) weights like Dense layers.
fn tiny_cnn() -> nacsim_nn::network::NetworkSpec {
    nacsim_core::config::parse(
        "(schema_version: 1, name: \"mcnn\", input: (c: 1, h: 28, w: 28), classes: 10, \
         layers: [Conv2d(out_channels: 4, kernel: 3), Act(ReLU), MaxPool2d(kernel: 2, stride: 2), \
         Conv2d(out_channels: 8, kernel: 3), Act(ReLU), MaxPool2d(kernel: 2, stride: 2), \
         Flatten, Dense(out: 10)])",
        std::path::Path::new("net.ron"),
    )
    .expect("valid network")
}

#[test]
fn conv_net_trains_in_situ_and_is_deterministic_across_threads() {
    use nacsim_insitu::CrossbarKernel;
    use nacsim_nn::model::Model;
    use nacsim_nn::train::{Schedule, TrainSettings, train};
    let data = Dataset::bundled_sample().limit(320);
    let c = cfg(
        "(device: Preset((preset: AgASi, overrides: (nl_d2d_sigma: 0.2))), \
         scheme: FixedVoltage(magnitude: Count, rounding: Stochastic), \
         periphery: (read_noise_sigma: 0.02, adc_bits: 8))",
    );
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let model = Model::init(tiny_cnn(), 2).unwrap();
                let mut store =
                    CrossbarStore::new(c.clone(), model.params.clone(), SGD, 2).unwrap();
                let kernel = CrossbarKernel::new(c.periphery, c.w_max, 2, model.layers.len());
                let settings = TrainSettings {
                    seed: 2,
                    epochs: 4,
                    batch_size: 16,
                    lr: 0.1,
                    optimizer: SGD,
                    schedule: Schedule::Constant,
                    augment: None,
                };
                let rec = train(
                    &model.layers,
                    &kernel,
                    &mut store,
                    &data,
                    None,
                    &settings,
                    &mut |_| {},
                )
                .expect("training stays finite");
                let conv_pulses: u64 = store
                    .pulse_counts(0)
                    .unwrap()
                    .iter()
                    .map(|&p| u64::from(p))
                    .sum();
                let losses: Vec<f32> = rec.iter().map(|r| r.loss).collect();
                (bits(&store.export()), losses, store.stats(), conv_pulses)
            })
    };
    let one = run(1);
    let two = run(2);
    let (first, last) = (one.1[0], one.1[one.1.len() - 1]);
    assert!(last < 0.9 * first, "loss per epoch {:?}", one.1);
    assert!(one.3 > 0, "the first conv layer was programmed");
    assert_eq!(one.0, two.0, "weights, 1 vs 2 threads");
    assert_eq!(one.1, two.1, "losses, 1 vs 2 threads");
    assert_eq!(one.2, two.2, "write stats, 1 vs 2 threads");
}
