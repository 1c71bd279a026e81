//! NeuroSim's 32 nm high-performance (HP) bulk CMOS technology table as data.
//!
//! Source: MLP_NeuroSim V3.0, `NeuroSim/Technology.cpp`, `Technology::Initialize` (PTM 32 nm,
//! `deviceRoadmap = HP`), and the layout constants of `constant.h`. The on/off currents are given
//! every 10 K from 300 K to 400 K and interpolated linearly per kelvin, as `Technology::Initialize`
//! does; MLP_NeuroSim runs at 301 K (`NeuroSimSubArrayInitialize` in `NeuroSim.cpp`).

/// `MIN_NMOS_SIZE` (`constant.h`): the minimum NMOS width, in F.
pub const MIN_NMOS_SIZE: f64 = 2.0;
/// `MAX_TRANSISTOR_HEIGHT` (`constant.h`): the standard-cell height, in F.
pub const MAX_TRANSISTOR_HEIGHT: f64 = 28.0;
/// `MIN_GAP_BET_P_AND_N_DIFFS` (`constant.h`), in F.
pub const MIN_GAP_BET_P_AND_N_DIFFS: f64 = 3.5;
/// `MIN_GAP_BET_GATE_POLY` (`constant.h`), in F.
pub const MIN_GAP_BET_GATE_POLY: f64 = 2.8;
/// `POLY_WIDTH` (`constant.h`), in F.
pub const POLY_WIDTH: f64 = 1.0;
/// `MIN_POLY_EXT_DIFF` (`constant.h`), in F.
pub const MIN_POLY_EXT_DIFF: f64 = 1.0;
/// `MIN_GAP_BET_FIELD_POLY` (`constant.h`), in F.
pub const MIN_GAP_BET_FIELD_POLY: f64 = 1.6;
/// `M3_PITCH` (`constant.h`): metal-3 track pitch between decoder stages, in F.
pub const M3_PITCH: f64 = 2.8;
/// `RATIO_READ_THRESHOLD_VS_VOLTAGE` (`constant.h`): integrate-and-fire threshold / read voltage.
pub const RATIO_READ_THRESHOLD_VS_VOLTAGE: f64 = 0.2;

/// A CMOS technology as NeuroSim's circuit formulas use it (all SI units).
#[derive(Clone, Debug, PartialEq)]
pub struct Technology {
    /// Feature size F in m.
    pub feature_size_m: f64,
    /// Supply voltage in V.
    pub vdd_v: f64,
    /// Ideal gate capacitance per transistor width in F/m.
    pub cap_ideal_gate: f64,
    /// Fringe capacitance per width in F/m.
    pub cap_fringe: f64,
    /// Overlap capacitance per width in F/m (0.2 × ideal for nodes ≥ 22 nm).
    pub cap_overlap: f64,
    /// Bottom junction capacitance in F/m² (BSIM4 grading at V_dd).
    pub cap_junction: f64,
    /// Isolation-edge sidewall junction capacitance in F/m.
    pub cap_sidewall: f64,
    /// Gate-edge (drain-to-channel) sidewall capacitance in F/m.
    pub cap_drain_to_channel: f64,
    /// CACTI's effective-resistance multiplier (dimensionless).
    pub effective_resistance_multiplier: f64,
    /// NMOS on-current per width at the simulated temperature in A/m.
    pub current_on_nmos: f64,
    /// PMOS on-current per width at the simulated temperature in A/m.
    pub current_on_pmos: f64,
    /// NMOS off-current per width at the simulated temperature in A/m.
    pub current_off_nmos: f64,
    /// PMOS off-current per width at the simulated temperature in A/m.
    pub current_off_pmos: f64,
    /// PMOS/NMOS width ratio for equal drive: I_on,n / I_on,p at 300 K.
    pub pn_size_ratio: f64,
}

/// `currentOnNmos` of the 32 nm HP node, 300…400 K every 10 K, in A/m.
const ION_N_32HP: [f64; 11] = [
    1410.0, 1380.0, 1350.0, 1310.0, 1280.0, 1250.0, 1210.0, 1180.0, 1150.0, 1120.0, 1080.0,
];
/// `currentOnPmos` of the 32 nm HP node, in A/m.
const ION_P_32HP: [f64; 11] = [
    1220.0, 1170.0, 1120.0, 1070.0, 1020.0, 980.0, 940.0, 890.0, 860.0, 820.0, 780.0,
];
/// `currentOffNmos` of the 32 nm HP node, in A/m.
const IOFF_N_32HP: [f64; 11] = [
    0.1003, 0.1204, 0.1431, 0.1686, 0.1970, 0.2284, 0.2629, 0.3006, 0.3417, 0.3861, 0.4339,
];
/// `currentOffPmos` of the 32 nm HP node, in A/m.
const IOFF_P_32HP: [f64; 11] = [
    0.1001, 0.1190, 0.1400, 0.1633, 0.1888, 0.2167, 0.2470, 0.2797, 0.3149, 0.3526, 0.3928,
];

/// `Technology::Initialize`'s per-kelvin interpolation of a 10 K table at integer `kelvin`
/// (300…400; clamped).
fn at_temperature(table: &[f64; 11], kelvin: u32) -> f64 {
    let i = kelvin.clamp(300, 400) - 300;
    let (lo, frac) = ((i / 10) as usize, f64::from(i % 10));
    if frac == 0.0 {
        return table[lo];
    }
    let (a, b) = (table[lo], table[lo + 1]);
    a + (b - a) * frac / 10.0
}

impl Technology {
    /// The 32 nm HP node of `Technology::Initialize` at `kelvin` (MLP_NeuroSim uses 301 K).
    pub fn ptm32_hp(kelvin: u32) -> Self {
        let vdd = 0.9;
        let cap_ideal_gate = 3.767721e-10;
        // BSIM4 junction model: cj / (1 + V_dd / 0.9)^m with cjd 1e-3 F/m², cjswd 2.5e-10 F/m,
        // cjswgd 0.5e-10 F/m, m = 0.5 / 0.33 / 0.33.
        let grading = 1.0 + vdd / 0.9;
        Technology {
            feature_size_m: 32e-9,
            vdd_v: vdd,
            cap_ideal_gate,
            cap_fringe: 4.713762e-10,
            cap_overlap: cap_ideal_gate * 0.2,
            cap_junction: 1e-3 / grading.powf(0.5),
            cap_sidewall: 2.5e-10 / grading.powf(0.33),
            cap_drain_to_channel: 0.5e-10 / grading.powf(0.33),
            effective_resistance_multiplier: 1.54,
            current_on_nmos: at_temperature(&ION_N_32HP, kelvin),
            current_on_pmos: at_temperature(&ION_P_32HP, kelvin),
            current_off_nmos: at_temperature(&IOFF_N_32HP, kelvin),
            current_off_pmos: at_temperature(&IOFF_P_32HP, kelvin),
            pn_size_ratio: ION_N_32HP[0] / ION_P_32HP[0],
        }
    }

    /// F in m (shorthand).
    pub fn f(&self) -> f64 {
        self.feature_size_m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_per_kelvin() {
        let t = Technology::ptm32_hp(301);
        assert!((t.current_on_nmos - 1407.0).abs() < 1e-9);
        assert!((t.current_on_pmos - 1215.0).abs() < 1e-9);
        assert_eq!(Technology::ptm32_hp(310).current_on_nmos, 1380.0);
        assert!((t.pn_size_ratio - 1410.0 / 1220.0).abs() < 1e-12);
    }
}
