//! Property tests: every pulse model is monotone in the pulse count and stays within its
//! conductance bounds; the tabulated adapter equals exact integration at its table points.
//! Case counts follow `PROPTEST_CASES` (`nacsim_core::testing::proptest_cases`).

use nacsim_core::testing::proptest_cases;
use nacsim_core::{Purpose, Stream};
use nacsim_device::neurosim::{ExpDeviceConfig, NlLookup, PulseRounding};
use nacsim_device::state::{
    HpConfig, Integrator, StateModelConfig, TabulateConfig, VteamConfig, Window,
    apply_pulses_exact, tabulate,
};
use nacsim_device::step::{StepDeviceConfig, StepModel};
use nacsim_device::{
    DevicePreset, LutConfig, NoNoise, Pulse, PulseResponse, StreamNormals, WritePulses,
};
use proptest::prelude::*;

fn cfg(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: proptest_cases(default),
        // Integration tests have no lib.rs beside them: keep regressions next to this file.
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    }
}

/// Monotone in `n` and within bounds, without noise; within bounds with noise.
fn check_model(
    dev: &dyn PulseResponse,
    g_frac: f64,
    n: i32,
    seed: u64,
) -> Result<(), TestCaseError> {
    let (lo, hi) = (dev.g_min_s(), dev.g_max_s());
    prop_assert!(lo < hi, "range {lo}..{hi}");
    let g = lo + g_frac * (hi - lo);
    let up = dev.apply_pulses(g, n.abs(), &mut NoNoise);
    let up_more = dev.apply_pulses(g, n.abs() + 1, &mut NoNoise);
    let down = dev.apply_pulses(g, -n.abs(), &mut NoNoise);
    let down_more = dev.apply_pulses(g, -n.abs() - 1, &mut NoNoise);
    for x in [up, up_more, down, down_more] {
        prop_assert!((lo..=hi).contains(&x), "{x} outside {lo}..{hi}");
    }
    // A tolerance of a few ulps of the range absorbs the curve/inverse round trip.
    let eps = 1e-12 * (hi - lo);
    prop_assert!(up >= g - eps, "LTP lowered G: {g} → {up}");
    prop_assert!(
        up_more >= up - eps,
        "{n}+1 LTP pulses below {n}: {up_more} < {up}"
    );
    prop_assert!(down <= g + eps, "LTD raised G: {g} → {down}");
    prop_assert!(down_more <= down + eps, "{down_more} > {down}");
    prop_assert_eq!(dev.apply_pulses(g, 0, &mut NoNoise), g);
    let s = Stream::new(seed, Purpose::CycleToCycle, 0, 0);
    for (i, k) in [n, -n, 3 * n].into_iter().enumerate() {
        let noisy = dev.apply_pulses(g, k, &mut StreamNormals::new(&s, i as u64));
        prop_assert!(
            (lo..=hi).contains(&noisy),
            "noisy {noisy} outside {lo}..{hi}"
        );
        let again = dev.apply_pulses(g, k, &mut StreamNormals::new(&s, i as u64));
        prop_assert_eq!(noisy, again, "same event, same draws");
    }
    Ok(())
}

fn nl() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), 0.01f64..9.0, -9.0f64..-0.01]
}

proptest! {
    #![proptest_config(cfg(64))]

    #[test]
    fn exponential_model_is_monotone_and_bounded(
        nl_ltp in nl(), nl_ltd in nl(), p_ltp in 1u32..300, p_ltd in 1u32..300,
        g_off in 1e-9f64..1e-6, ratio in 1.5f64..100.0, g_frac in 0.0f64..=1.0,
        n in 1i32..400, c2c in 0.0f64..0.1, exact in any::<bool>(), seed: u64,
    ) {
        let cfg = ExpDeviceConfig {
            g_on_s: g_off * ratio, g_off_s: g_off, pulses_ltp: p_ltp, pulses_ltd: p_ltd,
            nl_ltp, nl_ltd, c2c_sigma: c2c, nl_d2d_sigma: 0.0,
            nl_lookup: if exact { NlLookup::Exact } else { NlLookup::NeuroSimTable },
            rounding: PulseRounding::NeuroSim, pulses: WritePulses::default(),
        };
        let d = cfg.build_nominal().unwrap();
        check_model(&d, g_frac, n, seed)?;
    }

    #[test]
    fn step_models_are_monotone_and_bounded(
        which in 0usize..5, gamma in 0.0f64..3.0, g_frac in 0.0f64..=1.0, n in 1i32..2000,
        device in 0u64..1000, seed: u64, up_down in -0.3f64..0.3,
    ) {
        let model = match which {
            0 => StepModel::ConstantStep,
            1 => StepModel::SoftBounds,
            // γ ≤ 1: with γ > 1 aihwkit's LinearStep step changes sign before the bound (documented).
            2 => StepModel::LinearStep { gamma_up: gamma.min(1.0), gamma_down: gamma.min(1.0), gamma_up_dtod: 0.0, gamma_down_dtod: 0.0 },
            3 => StepModel::PowStep { gamma, gamma_dtod: 0.1, up_down: 0.0, up_down_dtod: 0.05 },
            // aihwkit ReRamESPresetDevice fit (note §4.3).
            _ => StepModel::ExpStep { a: -0.5, b: -0.5, a_up: -1.18445, a_down: -0.0814, gamma_up: 5.0, gamma_down: 5.0 },
        };
        let mut c = StepDeviceConfig::new(model, 2e-5, 1e-6);
        c.up_down = up_down;
        // d2d drawn: every device must still be monotone and bounded.
        let d = c.build(&Stream::new(seed, Purpose::DeviceToDevice, 0, 0), device).unwrap();
        check_model(&d, g_frac, n, seed)?;
    }

    #[test]
    fn lut_model_is_monotone_and_bounded(
        steps_up in proptest::collection::vec(1e-9f64..1e-6, 1..40),
        steps_down in proptest::collection::vec(1e-9f64..1e-6, 1..40),
        g_frac in 0.0f64..=1.0, n in 1i32..60, seed: u64,
    ) {
        let mut ltp = vec![1e-7];
        for s in &steps_up { ltp.push(ltp[ltp.len() - 1] + s); }
        let top = ltp[ltp.len() - 1];
        let scale = 0.9 * top / steps_down.iter().sum::<f64>();
        let mut ltd = vec![top];
        for s in &steps_down { ltd.push(ltd[ltd.len() - 1] - s * scale); }
        let d = LutConfig { ltp_g_s: ltp, ltd_g_s: ltd, c2c_sigma: 0.01, pulses: WritePulses::default() }
            .build().unwrap();
        check_model(&d, g_frac, n, seed)?;
    }

    #[test]
    fn every_preset_is_monotone_and_bounded(which in 0usize..8, g_frac in 0.0f64..=1.0, n in 1i32..300, seed: u64) {
        let d = DevicePreset::ALL[which].config().build_nominal().unwrap();
        check_model(&d, g_frac, n, seed)?;
    }
}

fn hp_model(window: Window) -> StateModelConfig {
    StateModelConfig::Hp(HpConfig {
        window,
        ..HpConfig::default()
    })
}

proptest! {
    #![proptest_config(cfg(12))]

    /// The LUT adapter at table point k, moved by n pulses, is bit-identical to integrating n
    /// pulses exactly from the state of table point k.
    #[test]
    fn tabulated_adapter_equals_exact_integration_at_table_points(
        which in 0usize..4, k_frac in 0.0f64..1.0, n in 1u32..30, ltd in any::<bool>(),
    ) {
        let (model, ltp, ltd_p, margin) = match which {
            0 => (hp_model(Window::None), Pulse { amplitude_v: 1.0, width_s: 0.01 }, Pulse { amplitude_v: -1.0, width_s: 0.01 }, 0.0),
            1 => (hp_model(Window::Biolek { p: 2 }), Pulse { amplitude_v: 1.0, width_s: 0.01 }, Pulse { amplitude_v: -1.0, width_s: 0.01 }, 0.0),
            2 => (hp_model(Window::Joglekar { p: 1 }), Pulse { amplitude_v: 1.0, width_s: 0.02 }, Pulse { amplitude_v: -1.0, width_s: 0.02 }, 0.01),
            _ => (
                StateModelConfig::Vteam(VteamConfig { window: Window::Biolek { p: 1 }, integrator: Integrator::Rk4 { steps: 8 }, ..VteamConfig::default() }),
                // VTEAM: negative voltage lowers x, i.e. raises G.
                Pulse { amplitude_v: -0.3, width_s: 0.05e-9 }, Pulse { amplitude_v: 1.0, width_s: 2e-9 }, 0.0,
            ),
        };
        let cfg = TabulateConfig { model, ltp, ltd: ltd_p, max_pulses: 400, start_margin: margin };
        let tab = tabulate(&cfg).unwrap();
        let dev = model.build().unwrap();
        let (table, states, pulse, sign) = if ltd {
            (tab.lut.ltd_g_s(), &tab.ltd_states, ltd_p, -1)
        } else {
            (tab.lut.ltp_g_s(), &tab.ltp_states, ltp, 1)
        };
        prop_assert!(table.len() > 5, "table of {} points", table.len());
        let last = table.len() - 1;
        let k = ((k_frac * last as f64) as usize).min(last);
        let n = n.min((last - k) as u32);
        let via_lut = tab.lut.apply_pulses(table[k], sign * n as i32, &mut NoNoise);
        let x = apply_pulses_exact(dev.as_ref(), states[k], pulse.amplitude_v, pulse.width_s, n);
        prop_assert_eq!(via_lut, dev.conductance_s(x), "k {} n {}", k, n);
        // The adapter is itself a monotone, bounded pulse device.
        check_model(&tab.lut, k_frac, n.max(1) as i32, 0)?;
    }
}
