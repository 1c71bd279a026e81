//! The rules every knob of [`CrossbarConfig`] must follow ([`Validate`] impls): finite and
//! positive physical quantities, bounded phase durations and clock, consistent device ranges
//! and non-idealities. Each broken rule names its field, its value and what would work.

use nacsim_core::config::{Checks, FieldError, Validate};

use super::*;

fn finite_nonneg(c: &mut Checks, v: f64, field: &str) {
    c.check(
        v.is_finite() && v >= 0.0,
        field,
        v,
        "must be finite and >= 0",
    );
}

fn finite_pos(c: &mut Checks, v: f64, field: &str) {
    c.check(v.is_finite() && v > 0.0, field, v, "must be finite and > 0");
}

/// A phase duration: finite, > 0 (`positive`) or >= 0, at most
/// [`MAX_PHASE_NS`].
fn phase_ns(c: &mut Checks, v: f64, field: &str, positive: bool) {
    let low = if positive { v > 0.0 } else { v >= 0.0 };
    let sign = if positive { "> 0" } else { ">= 0" };
    c.check(
        v.is_finite() && low && v <= MAX_PHASE_NS,
        field,
        nacsim_core::config::num(v),
        &format!("must be finite, {sign} and at most {MAX_PHASE_NS:e} ns"),
    );
}

impl Validate for DeviceRange {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        finite_pos(&mut c, self.g_off_s, "g_off_s");
        if finite_pos_ok(self.g_on_s) {
            c.check(
                self.g_on_s > self.g_off_s,
                "g_on_s",
                self.g_on_s,
                &format!(
                    "must be > g_off_s = {} (ON is the high conductance)",
                    self.g_off_s
                ),
            );
        } else {
            finite_pos(&mut c, self.g_on_s, "g_on_s");
        }
        c.check(
            (2..=1 << 24).contains(&self.levels),
            "levels",
            self.levels,
            "must be in 2..=16777216",
        );
        c.nested("drift", &self.drift);
        c.finish()
    }
}

fn finite_pos_ok(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

impl Validate for NonIdealities {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        finite_nonneg(&mut c, self.d2d_sigma_rel, "d2d_sigma_rel");
        finite_nonneg(&mut c, self.programming_sigma_rel, "programming_sigma_rel");
        finite_nonneg(
            &mut c,
            self.programming_voltage_sigma_rel,
            "programming_voltage_sigma_rel",
        );
        c.check(
            self.programming_voltage_sensitivity.is_finite(),
            "programming_voltage_sensitivity",
            self.programming_voltage_sensitivity,
            "must be finite",
        );
        finite_nonneg(&mut c, self.read_noise_sigma_rel, "read_noise_sigma_rel");
        let frac = "must be a fraction in [0, 1]";
        c.check(
            (0.0..=1.0).contains(&self.stuck_on_frac),
            "stuck_on_frac",
            self.stuck_on_frac,
            frac,
        );
        c.check(
            (0.0..=1.0).contains(&self.stuck_off_frac),
            "stuck_off_frac",
            self.stuck_off_frac,
            frac,
        );
        c.check(
            self.stuck_on_frac + self.stuck_off_frac <= 1.0,
            "stuck_off_frac",
            self.stuck_off_frac,
            "stuck_on_frac + stuck_off_frac must be <= 1",
        );
        finite_nonneg(&mut c, self.drift_nu, "drift_nu");
        finite_nonneg(&mut c, self.drift_nu_sigma, "drift_nu_sigma");
        finite_pos(&mut c, self.drift_time_s, "drift_time_s");
        finite_pos(&mut c, self.drift_t0_s, "drift_t0_s");
        if let IrDrop::Lines { segment_ohm } = self.ir_drop {
            finite_pos(&mut c, segment_ohm, "ir_drop.segment_ohm");
        }
        c.finish()
    }
}

impl Validate for CrossbarConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        c.check(
            (1..=MAX_ARRAY_DIM).contains(&self.array_rows),
            "array_rows",
            self.array_rows,
            "must be in 1..=4096",
        );
        c.check(
            (2..=MAX_ARRAY_DIM).contains(&self.array_cols),
            "array_cols",
            self.array_cols,
            "must be in 2..=4096 (a signed weight needs two columns or a reference column)",
        );
        c.nested("device", &self.device);
        c.check(
            !(self.drift_compensation == DriftCompensation::Global
                && self.signed == SignedScheme::Bridge),
            "drift_compensation",
            "Global",
            "is not modelled for the bridge (its ratio output has no common gain to restore); use None or a Differential/Reference scheme",
        );
        c.check(
            self.inference_time_s.is_finite() && self.inference_time_s >= 0.0,
            "inference_time_s",
            self.inference_time_s,
            "must be a finite time >= 0 in seconds since programming (0: no drift)",
        );
        let p = self.mapping.clip_percentile;
        c.check(
            p.is_finite() && p > 0.0 && p <= 100.0,
            "mapping.clip_percentile",
            p,
            "must be in (0, 100]",
        );
        c.check(
            (1..=16).contains(&self.dac.bits),
            "dac.bits",
            self.dac.bits,
            "must be in 1..=16",
        );
        if let InputEncoding::BitSerial { bits_per_slice } = self.dac.encoding {
            c.check(
                (1..=8).contains(&bits_per_slice),
                "dac.encoding.bits_per_slice",
                bits_per_slice,
                "must be in 1..=8",
            );
        }
        finite_pos(&mut c, self.dac.v_read_v, "dac.v_read_v");
        finite_pos(&mut c, self.read_disturb_v, "read_disturb_v");
        if let Some(p) = self.device.preset {
            let limit = p.read_disturb_limit_v();
            c.check(
                !self.dac.v_read_v.is_finite() || self.dac.v_read_v < limit,
                "dac.v_read_v",
                self.dac.v_read_v,
                &format!(
                    "must be < {limit} V, the read-disturb limit of device preset {} (half its smaller write amplitude)",
                    p.name()
                ),
            );
        }
        if self.dac.v_read_v.is_finite() && self.read_disturb_v.is_finite() {
            c.check(
                self.dac.v_read_v <= self.read_disturb_v,
                "dac.v_read_v",
                self.dac.v_read_v,
                &format!(
                    "must be <= read_disturb_v = {} V (reads would disturb the stored state)",
                    self.read_disturb_v
                ),
            );
        }
        phase_ns(&mut c, self.dac.settle_ns, "dac.settle_ns", false);
        finite_pos(&mut c, self.tia.v_sat_v, "tia.v_sat_v");
        c.check(
            (1..=16).contains(&self.adc.bits),
            "adc.bits",
            self.adc.bits,
            "must be in 1..=16",
        );
        match self.adc.range {
            AdcRange::WorstCase { frac } => {
                c.check(
                    frac.is_finite() && frac > 0.0 && frac <= 1.0,
                    "adc.range.frac",
                    frac,
                    "must be in (0, 1]",
                );
            }
            AdcRange::Statistical { sigmas } => finite_pos(&mut c, sigmas, "adc.range.sigmas"),
        }
        finite_pos(&mut c, self.adc.v_full_scale_v, "adc.v_full_scale_v");
        c.check(
            self.adc.cols_per_adc >= 1,
            "adc.cols_per_adc",
            self.adc.cols_per_adc,
            "must be at least 1",
        );
        phase_ns(&mut c, self.adc.decision_ns, "adc.decision_ns", true);
        if let Some(t) = self.adc.conversion_ns {
            phase_ns(&mut c, t, "adc.conversion_ns", true);
        } else if self.adc.decision_ns.is_finite() && self.adc.decision_ns <= MAX_PHASE_NS {
            // bits × decision_ns of a SAR ADC must itself stay a plausible phase.
            let t = self.adc.conversion_time_ns();
            c.check(
                t <= MAX_PHASE_NS,
                "adc.decision_ns",
                nacsim_core::config::num(self.adc.decision_ns),
                &format!(
                    "gives a conversion of {t} ns (bits × decision_ns), above {MAX_PHASE_NS:e} ns"
                ),
            );
        }
        c.nested("nonideal", self.nonideal.as_ref());
        if self.signed == SignedScheme::Bridge && self.nonideal.ir_drop != IrDrop::Off {
            c.push(FieldError::new(
                "nonideal.ir_drop",
                "Lines",
                "is not modelled for signed: Bridge; use Off",
            ));
        }
        c.check(
            self.replication >= 1,
            "replication",
            self.replication,
            "must be at least 1",
        );
        c.check(
            self.timing.clock_mhz.is_finite()
                && self.timing.clock_mhz > 0.0
                && self.timing.clock_mhz <= MAX_CLOCK_MHZ,
            "timing.clock_mhz",
            nacsim_core::config::num(self.timing.clock_mhz),
            &format!("must be finite, > 0 and at most {MAX_CLOCK_MHZ:e} MHz"),
        );
        phase_ns(
            &mut c,
            self.timing.integration_ns,
            "timing.integration_ns",
            false,
        );
        finite_nonneg(&mut c, self.energy.adc_8bit_pj, "energy.adc_8bit_pj");
        finite_nonneg(&mut c, self.energy.dac_1bit_pj, "energy.dac_1bit_pj");
        finite_nonneg(&mut c, self.energy.tia_pj, "energy.tia_pj");
        finite_nonneg(&mut c, self.energy.shift_add_pj, "energy.shift_add_pj");
        finite_nonneg(
            &mut c,
            self.energy.flash_comparator_pj,
            "energy.flash_comparator_pj",
        );
        c.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn errs(cfg: &CrossbarConfig) -> String {
        cfg.validate()
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn phase_durations_and_the_clock_are_bounded() {
        let mut cfg = CrossbarConfig::default();
        cfg.adc.conversion_ns = Some(9.223_372_036_854_776e18);
        cfg.dac.settle_ns = f64::INFINITY;
        cfg.timing.integration_ns = 2e6;
        cfg.timing.clock_mhz = 1e308;
        let e = errs(&cfg);
        assert!(
            e.contains(
                "adc.conversion_ns = 9.223372036854776e18: must be finite, > 0 and at most 1e6 ns"
            ),
            "{e}"
        );
        assert!(
            e.contains("dac.settle_ns = inf: must be finite, >= 0"),
            "{e}"
        );
        assert!(
            e.contains("timing.integration_ns = 2000000: must be finite"),
            "{e}"
        );
        assert!(
            e.contains("timing.clock_mhz = 1e308: must be finite, > 0 and at most 1e6 MHz"),
            "{e}"
        );
        cfg = CrossbarConfig::default();
        cfg.adc.conversion_ns = Some(MAX_PHASE_NS);
        cfg.timing.integration_ns = 0.0;
        cfg.validate().unwrap();
    }

    #[test]
    fn default_and_ideal_validate_and_round_trip() {
        CrossbarConfig::default().validate().unwrap();
        CrossbarConfig::ideal().validate().unwrap();
        let text = nacsim_core::config::ron_pretty(&CrossbarConfig::default()).unwrap();
        let back: CrossbarConfig = nacsim_core::config::parse(&text, Path::new("x.ron")).unwrap();
        assert_eq!(back, CrossbarConfig::default());
        let empty: CrossbarConfig = nacsim_core::config::parse("()", Path::new("x.ron")).unwrap();
        assert_eq!(empty, CrossbarConfig::default());
    }

    #[test]
    fn device_presets_resolve_by_name_and_old_files_still_parse() {
        let parse = |t: &str| nacsim_core::config::parse::<CrossbarConfig>(t, Path::new("x.ron"));
        // The explicit form (every committed design) is unchanged.
        let c = parse("(device: (g_on_s: 2e-5, g_off_s: 1e-6, levels: 64))").unwrap();
        assert_eq!(
            (c.device.g_on_s, c.device.levels, c.device.preset),
            (2e-5, 64, None)
        );
        // A preset gives its range (NeuroSim V3.0 Table II: AlOx/HfO2, R_on 16.9 kΩ,
        // on/off 4.43, 40 states).
        let c = parse("(device: (preset: \"AlOx/HfO2\"))").unwrap();
        assert_eq!(c.device.g_on_s, 1.0 / 16.9e3);
        assert!((c.device.g_off_s - 1.0 / 16.9e3 / 4.43).abs() < 1e-15);
        assert_eq!(c.device.levels, 40);
        assert_eq!(c.device.preset, Some(DevicePreset::AlOxHfO2));
        c.validate().unwrap();
        // Names ignore case and punctuation; fields beside the preset override it.
        let c = parse("(device: (preset: \"taox-hfox\", levels: 16))").unwrap();
        assert_eq!(c.device.g_on_s, 1e-5);
        assert!((c.device.g_off_s - 1e-6).abs() < 1e-18);
        assert_eq!(c.device.levels, 16);
        assert_eq!(c.device.preset, Some(DevicePreset::TaOxHfOx));
        // Ag:a-Si has 97 LTP and 100 LTD states: the smaller is the level count.
        assert_eq!(DeviceRange::from_preset(DevicePreset::AgASi).levels, 97);
        for p in DevicePreset::ALL {
            assert_eq!(device_preset(p.name()).unwrap(), p);
            assert_eq!(device_preset(&format!("{p:?}")).unwrap(), p);
            let c = CrossbarConfig {
                device: DeviceRange::from_preset(p),
                ..CrossbarConfig::default()
            };
            c.validate().unwrap();
            // A preset round-trips through RON.
            let text = nacsim_core::config::ron_pretty(&c).unwrap();
            assert_eq!(parse(&text).unwrap(), c, "{text}");
        }
        assert_eq!(device_preset("ideal").unwrap(), DevicePreset::IdealLinear);
        // An unknown name is an error naming the field and listing the valid names.
        let e = parse("(device: (preset: \"NbOx\"))")
            .unwrap_err()
            .to_string();
        assert!(e.contains("device.preset"), "{e}");
        assert!(e.contains("NbOx"), "{e}");
        assert!(
            e.contains("\"TaOx/HfOx\"") && e.contains("\"EpiRAM\""),
            "{e}"
        );
        // Reads above the preset's read-disturb limit (GST PCM: 0.35 V) are refused.
        let mut c = parse("(device: (preset: \"GST PCM\"))").unwrap();
        c.dac.v_read_v = 0.4;
        let e = errs(&c);
        assert!(e.contains("dac.v_read_v = 0.4: must be < 0.35 V"), "{e}");
    }

    #[test]
    fn bad_values_name_their_field() {
        let mut c = CrossbarConfig::default();
        c.device.g_on_s = 1e-7; // below g_off
        c.nonideal.d2d_sigma_rel = -0.1;
        c.adc.bits = 0;
        c.array_rows = 0;
        c.dac.v_read_v = 0.8;
        let e = errs(&c);
        assert!(
            e.contains("device.g_on_s = 0.0000001: must be > g_off_s"),
            "{e}"
        );
        assert!(
            e.contains("nonideal.d2d_sigma_rel = -0.1: must be finite and >= 0"),
            "{e}"
        );
        assert!(e.contains("adc.bits = 0: must be in 1..=16"), "{e}");
        assert!(e.contains("array_rows = 0: must be in 1..=4096"), "{e}");
        assert!(
            e.contains("dac.v_read_v = 0.8: must be <= read_disturb_v = 0.5 V"),
            "{e}"
        );
        let mut c = CrossbarConfig::default();
        c.adc.bits = 17;
        c.array_cols = 0;
        c.signed = SignedScheme::Bridge;
        c.nonideal.ir_drop = IrDrop::Lines { segment_ohm: 1.0 };
        c.nonideal.stuck_on_frac = 0.7;
        c.nonideal.stuck_off_frac = 0.7;
        let e = errs(&c);
        assert!(e.contains("adc.bits = 17"), "{e}");
        assert!(e.contains("array_cols = 0"), "{e}");
        assert!(e.contains("nonideal.ir_drop = Lines"), "{e}");
        assert!(
            e.contains("stuck_on_frac + stuck_off_frac must be <= 1"),
            "{e}"
        );
        let err = nacsim_core::config::parse::<CrossbarConfig>("(adc_bits: 8)", Path::new("x.ron"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("adc_bits"), "{err}");
    }

    #[test]
    fn outputs_and_slices_follow_scheme_and_encoding() {
        let mut c = CrossbarConfig::default();
        assert_eq!(c.outputs_per_array(), 64);
        c.signed = SignedScheme::Reference;
        assert_eq!(c.outputs_per_array(), 127);
        assert_eq!(c.input_slices(), 1);
        c.dac.encoding = InputEncoding::BitSerial { bits_per_slice: 3 };
        assert_eq!(c.input_slices(), 3);
        assert_eq!(c.dac_bits(), 3);
        assert!(c.peak_ops_per_cycle() >= 1);
    }
}
