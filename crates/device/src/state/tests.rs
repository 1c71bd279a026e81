use super::*;
use crate::{Pulse, PulseResponse};

fn hp(window: Window, integrator: Integrator) -> LinearIonDrift {
    LinearIonDrift::new(HpConfig {
        window,
        integrator,
        ..HpConfig::default()
    })
    .unwrap()
}

#[test]
fn adaptive_and_rk4_agree_on_windowed_pulses() {
    // Biolek p = 2 over 0.2 s at 1 V from x = 0.1: a reference with 20000 RK4 steps.
    let reference =
        hp(Window::Biolek { p: 2 }, Integrator::Rk4 { steps: 20_000 }).apply_pulse(0.1, 1.0, 0.2);
    let adaptive = hp(Window::Biolek { p: 2 }, Integrator::default()).apply_pulse(0.1, 1.0, 0.2);
    let coarse =
        hp(Window::Biolek { p: 2 }, Integrator::Rk4 { steps: 20 }).apply_pulse(0.1, 1.0, 0.2);
    assert!(reference > 0.1 && reference < 1.0, "{reference}");
    assert!(
        (adaptive - reference).abs() < 1e-9,
        "{adaptive} vs {reference}"
    );
    assert!((coarse - reference).abs() < 1e-4, "{coarse} vs {reference}");
    // Without a window the integrator reproduces the closed form.
    let closed = hp(Window::None, Integrator::default()).apply_pulse(0.1, 1.0, 0.2);
    let numeric = integrate(
        &hp(Window::None, Integrator::default()),
        0.1,
        1.0,
        0.2,
        Integrator::default(),
    );
    assert!((closed - numeric).abs() < 1e-9, "{closed} vs {numeric}");
}

#[test]
fn windows_have_their_textbook_values() {
    assert_eq!(Window::Joglekar { p: 1 }.value(0.0, true), 0.0);
    assert_eq!(Window::Joglekar { p: 1 }.value(0.5, true), 1.0);
    assert_eq!(Window::Biolek { p: 1 }.value(0.0, true), 1.0);
    assert_eq!(Window::Biolek { p: 1 }.value(1.0, true), 0.0);
    assert_eq!(Window::Biolek { p: 1 }.value(0.0, false), 0.0);
    assert_eq!(Window::Prodromakis { p: 1, j: 1.0 }.value(0.5, true), 0.25);
    assert!(Window::Prodromakis { p: 1, j: 1.0 }.value(0.0, true).abs() < 1e-15);
    // Boundary lock: a Joglekar device at x = 0 never moves.
    assert_eq!(
        hp(Window::Joglekar { p: 1 }, Integrator::default()).apply_pulse(0.0, 1.0, 1.0),
        0.0
    );
}

#[test]
fn tabulation_rules_are_reported() {
    let cfg = TabulateConfig {
        model: StateModelConfig::Hp(HpConfig {
            window: Window::Joglekar { p: 1 },
            ..HpConfig::default()
        }),
        ltp: Pulse {
            amplitude_v: 1.0,
            width_s: 0.01,
        },
        ltd: Pulse {
            amplitude_v: -1.0,
            width_s: 0.01,
        },
        max_pulses: 0,
        start_margin: 0.0,
    };
    let e: Vec<String> = tabulate(&cfg)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(e.iter().any(|s| s.starts_with("max_pulses = 0")), "{e:?}");
    assert!(
        e.iter()
            .any(|s| s.starts_with("start_margin = 0: must be > 0")),
        "{e:?}"
    );
    let bad = HpConfig {
        r_off_ohm: 50.0,
        integrator: Integrator::Rk4 { steps: 0 },
        ..HpConfig::default()
    };
    let e: Vec<String> = bad
        .validate()
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        e.iter()
            .any(|s| s.starts_with("r_off_ohm = 50: must exceed r_on_ohm")),
        "{e:?}"
    );
    assert!(
        e.iter().any(|s| s.starts_with("integrator.steps = 0")),
        "{e:?}"
    );
}

#[test]
fn model_inversion_round_trips() {
    let v = Vteam::new(VteamConfig::default()).unwrap();
    for (x0, dx, t) in [
        (0.5e-9, 1e-9, 50e-9),
        (2.5e-9, -1e-9, 1e-12),
        (1e-9, 0.3e-9, 5e-9),
    ] {
        let volts = v.voltage_for_step(dx, t).unwrap();
        let x1 = v.apply_pulse(x0, volts, t);
        assert!(
            (x1 - (x0 + dx)).abs() < 1e-12 * 3e-9 + 1e-22,
            "{x0} {dx}: {x1}"
        );
        assert!(volts >= v.p.v_off_v || volts <= v.p.v_on_v);
    }
    assert_eq!(v.voltage_for_step(0.0, 1e-9), None);
    let h = hp(Window::None, Integrator::default());
    let volts = h.voltage_for_memristance(16e3, 8e3, 0.3).unwrap();
    let m = h.memristance_ohm(h.apply_pulse(h.state_of(16e3), volts, 0.3));
    assert!((m - 8e3).abs() < 1e-6, "{m}");
    // A tiny change needs a sub-threshold voltage at this width: not writable.
    assert_eq!(h.voltage_for_memristance(16e3, 15_999.0, 1.0), None);
    assert!(h.voltage_for_memristance(8e3, 16e3, 0.3).unwrap() < -0.55);
}

#[test]
fn hp_table_saturates_at_full_swing() {
    let tab = tabulate(&TabulateConfig {
        model: StateModelConfig::Hp(HpConfig::default()),
        ltp: Pulse {
            amplitude_v: 1.0,
            width_s: 0.1,
        },
        ltd: Pulse {
            amplitude_v: -1.0,
            width_s: 0.1,
        },
        max_pulses: 100,
        start_margin: 0.0,
    })
    .unwrap();
    // 0.805 s full switch in 0.1 s pulses: 8 moving pulses, the 9th reaches R_on.
    assert_eq!(tab.ltp_states.len(), 10);
    assert_eq!(*tab.ltp_states.last().unwrap(), 1.0);
    assert_eq!(tab.lut.g_max_s(), 1.0 / 100.0);
}
