//! Physical-quantity newtypes and the report conversions between them.
//!
//! Energy stays in picojoules and time in cycles until a report converts them (docs/style.md §2.3). All
//! newtypes serialize as their bare number (`#[serde(transparent)]`), so a config or report field
//! named `energy_pj` holds a plain float.
//!
//! The report formulas (see `docs/energy-model.md`):
//!
//! ```text
//! t      = cycles / f_clk                       (Cycles::at)
//! GOPS   = ops / t / 1e9                         (gops)
//! TOPS/W = ops / (E_pJ · 1e-12) / 1e12 = ops/E_pJ (tops_per_watt)
//! ```

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Mul};

use serde::{Deserialize, Serialize};

/// A count of clock cycles of the simulated hardware (dimensionless, integer).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Cycles(pub u64);

/// An energy in picojoules (pJ, 1e-12 J), the unit of every energy table and counter cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Picojoules(pub f64);

/// A frequency in hertz (Hz, 1/s), used for the simulated clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hertz(pub f64);

/// A duration in seconds (s) of simulated time.
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seconds(pub f64);

macro_rules! additive {
    ($t:ident, $zero:expr) => {
        impl Add for $t {
            type Output = $t;
            fn add(self, rhs: $t) -> $t {
                $t(self.0 + rhs.0)
            }
        }
        impl AddAssign for $t {
            fn add_assign(&mut self, rhs: $t) {
                self.0 += rhs.0;
            }
        }
        impl Sum for $t {
            fn sum<I: Iterator<Item = $t>>(iter: I) -> $t {
                iter.fold($t($zero), Add::add)
            }
        }
        impl<'a> Sum<&'a $t> for $t {
            fn sum<I: Iterator<Item = &'a $t>>(iter: I) -> $t {
                iter.copied().sum()
            }
        }
    };
}
additive!(Cycles, 0);
additive!(Picojoules, 0.0);
additive!(Hertz, 0.0);
additive!(Seconds, 0.0);

/// Writes the number with the caller's format options (so `{:.2}` works), then the unit.
macro_rules! display_with_unit {
    ($t:ident, $unit:literal) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)?;
                f.write_str($unit)
            }
        }
    };
}
display_with_unit!(Cycles, " cycles");
display_with_unit!(Picojoules, " pJ");
display_with_unit!(Seconds, " s");

impl fmt::Display for Hertz {
    /// Shown in MHz, the unit configs use (`clock_mhz`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.mhz(), f)?;
        f.write_str(" MHz")
    }
}

impl Cycles {
    /// Wall-clock time of this many cycles at clock `clock`: `cycles / f_clk`.
    ///
    /// A zero clock gives infinite seconds (no panic).
    pub fn at(self, clock: Hertz) -> Seconds {
        Seconds(self.0 as f64 / clock.0)
    }
}

impl Picojoules {
    /// The same energy in joules (`pJ · 1e-12`).
    pub fn joules(self) -> f64 {
        self.0 * 1e-12
    }
}

impl Mul<f64> for Picojoules {
    type Output = Picojoules;
    fn mul(self, rhs: f64) -> Picojoules {
        Picojoules(self.0 * rhs)
    }
}

impl Hertz {
    /// A frequency given in megahertz (`mhz · 1e6` Hz), as configs write `clock_mhz`.
    pub fn from_mhz(mhz: f64) -> Hertz {
        Hertz(mhz * 1e6)
    }

    /// The frequency in megahertz.
    pub fn mhz(self) -> f64 {
        self.0 / 1e6
    }

    /// The clock period in seconds (`1 / f`).
    pub fn period(self) -> Seconds {
        Seconds(1.0 / self.0)
    }
}

impl Seconds {
    /// The duration in nanoseconds.
    pub fn ns(self) -> f64 {
        self.0 * 1e9
    }
}

/// Throughput in giga-operations per second: `ops / seconds / 1e9`.
///
/// Zero seconds gives infinity (or NaN for zero ops); callers print the clock beside the result.
pub fn gops(ops: u64, seconds: Seconds) -> f64 {
    ops as f64 / seconds.0 / 1e9
}

/// Energy efficiency in tera-operations per watt: `ops / E_J / 1e12`, which equals ops per pJ.
///
/// Zero energy gives infinity (or NaN for zero ops).
pub fn tops_per_watt(ops: u64, energy: Picojoules) -> f64 {
    ops as f64 / energy.joules() / 1e12
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_conversions_match_formulas() {
        let clock = Hertz::from_mhz(500.0);
        assert_eq!(clock.mhz(), 500.0);
        let t = Cycles(1000).at(clock);
        assert!((t.0 - 2e-6).abs() < 1e-18);
        assert!((t.ns() - 2000.0).abs() < 1e-9);
        // 2e6 ops in 2 us = 1e12 ops/s = 1000 GOPS.
        assert!((gops(2_000_000, t) - 1000.0).abs() < 1e-9);
        // 1e6 ops for 1e6 pJ (1 uJ) = 1 op/pJ = 1 TOPS/W.
        assert!((tops_per_watt(1_000_000, Picojoules(1e6)) - 1.0).abs() < 1e-12);
        assert_eq!(Picojoules(2.5e12).joules(), 2.5);
    }

    #[test]
    fn add_sum_and_display_carry_units() {
        let mut c = Cycles(3) + Cycles(4);
        c += Cycles(1);
        assert_eq!(c, Cycles(8));
        let e: Picojoules = [Picojoules(1.0), Picojoules(2.5)].iter().sum();
        assert_eq!(e, Picojoules(3.5));
        assert_eq!(format!("{c}"), "8 cycles");
        assert_eq!(format!("{:.2}", e), "3.50 pJ");
        assert_eq!(format!("{}", Hertz::from_mhz(250.0)), "250 MHz");
        assert_eq!(format!("{}", Seconds(0.5)), "0.5 s");
    }

    #[test]
    fn serde_is_transparent() {
        assert_eq!(serde_json::to_string(&Picojoules(1.5)).unwrap(), "1.5");
        assert_eq!(serde_json::from_str::<Cycles>("42").unwrap(), Cycles(42));
    }
}
