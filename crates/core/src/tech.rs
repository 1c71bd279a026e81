//! Technology files: area (µm²) and leakage (µW) per hardware component at one process node
//! (cost layer, like [`energy`](crate::energy)). See: #17.
//!
//! A design names one with `technology: Preset("../tech/45nm.ron")`; engines turn their
//! component counts into area and static power with it after the run, never inside a cycle
//! loop. Every entry carries its `source` and an `inferred` flag: `false` when the number was
//! read in the cited source (unit conversion at most), `true` when it was derived by the rule
//! the source string states (node scaling, sum of parts, placeholder).
//!
//! ```ron
//! (
//!     schema_version: 1,
//!     name: "cmos45",
//!     source: "…",
//!     node_nm: 45,
//!     pe_int8: (area_um2: 1210.0, leakage_uw: 12.0, source: "…", inferred: true),
//!     …
//! )
//! ```
//!
//! SRAM tables ([`SramTable`]) interpolate area and leakage as power laws in capacity between
//! points (linear in log–log) of one word width and port count, geometrically between widths;
//! tables by resolution ([`BitsTable`]) interpolate area exponentially in
//! bits (linear in log area) and leakage linearly; both extrapolate with their end segments, so
//! a strictly increasing table gives a strictly increasing function everywhere.
//!
//! Off-chip DRAM (its PHY and the device) is **not** in a technology file: a design's area is
//! the die's, and the DRAM channel is a separate chip.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{Checks, FieldError, Validate, num};

/// The technology-file schema version this crate reads.
pub const TECH_SCHEMA_VERSION: u32 = 1;

/// Largest area of one component or one table point accepted, µm² (1e12 µm² = 1 m²).
pub const MAX_AREA_UM2: f64 = 1e12;
/// Largest leakage of one component or one table point accepted, µW (1e9 µW = 1 kW).
pub const MAX_LEAKAGE_UW: f64 = 1e9;

/// Area and leakage of one component, with where the numbers come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// Silicon area of one instance, µm².
    pub area_um2: f64,
    /// Static (leakage or bias) power of one instance, µW, at the source's conditions.
    pub leakage_uw: f64,
    /// Where the numbers come from: paper, table, file key, or the scaling rule used.
    pub source: String,
    /// True when derived by a rule (node scaling, sum of parts, placeholder) rather than read.
    pub inferred: bool,
}

/// A memristor cell type, by its access device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CellKind {
    /// Passive crossbar cell without a selector transistor (0T1R).
    Passive,
    /// One access transistor per resistor (1T1R), NeuroSim's default. The default.
    #[default]
    OneT1R,
}

/// Area of one memristor cell in F², with where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellArea {
    /// Area of one cell in units of F² (`F` = [`Cells::f_nm`]).
    pub f2: f64,
    /// Static power of one cell, µW (0 for a passive cell: no path when unbiased).
    pub leakage_uw: f64,
    /// Where the number comes from.
    pub source: String,
    /// True when derived by a rule.
    pub inferred: bool,
}

/// Memristor cells: the feature size `F` the F² figures mean, and the area per cell type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cells {
    /// The feature size `F` in nm the `f2` figures are multiplied by: the lithographic node
    /// by default; NeuroSim uses its wire width instead (80 nm at its 45 nm node).
    pub f_nm: f64,
    /// What `f_nm` is and where it comes from.
    pub f_source: String,
    /// Area per cell type.
    pub kinds: BTreeMap<CellKind, CellArea>,
}

impl Cells {
    /// Area of one cell of `kind` in µm², if the file has the kind: `f2 · (f_nm/1000)²`.
    pub fn area_um2(&self, kind: CellKind) -> Option<f64> {
        let f_um = self.f_nm * 1e-3;
        self.kinds.get(&kind).map(|c| c.f2 * f_um * f_um)
    }
}

/// One point of an [`SramTable`]: one SRAM macro (one bank).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SramPoint {
    /// Capacity of the macro, bytes.
    pub capacity_bytes: u64,
    /// Word width of one access in bytes (CACTI's block size and bus width). `None`: the point
    /// stands for any width (a table by capacity only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width_bytes: Option<u64>,
    /// Read/write ports of the macro (default 1).
    #[serde(default = "one_port", skip_serializing_if = "is_one_port")]
    pub ports: u32,
    /// Area of the macro (cells and periphery), µm².
    pub area_um2: f64,
    /// Leakage of the macro, µW.
    pub leakage_uw: f64,
}

fn one_port() -> u32 {
    1
}

fn is_one_port(p: &u32) -> bool {
    *p == 1
}

/// SRAM macros by capacity, word width and ports (one bank each): power laws in capacity
/// between points of one `(ports, width)` group, log-linear in width between groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SramTable {
    /// Points grouped by `(ports, width_bytes)`: each group has at least two points in strictly
    /// increasing capacity with strictly increasing area and non-decreasing leakage. Leakage is
    /// a power law between two positive points, linear in capacity when one is 0. Within one
    /// port count the points either all give a width or none does.
    pub points: Vec<SramPoint>,
    /// Where the numbers come from (model, cell, array efficiency, leakage flavour).
    pub source: String,
    /// True when derived by a rule.
    pub inferred: bool,
}

/// `y` at `x` on the line through `(x0, y0)` and `(x1, y1)`.
fn lerp(x: f64, (x0, y0): (f64, f64), (x1, y1): (f64, f64)) -> f64 {
    if x1 == x0 {
        return y0;
    }
    y0 + (y1 - y0) * (x - x0) / (x1 - x0)
}

/// The segment of `xs` (strictly increasing, at least two) that `x` falls in or extends.
fn segment(xs: &[f64], x: f64) -> usize {
    let last = xs.len().saturating_sub(2);
    (0..=last).find(|&i| x <= xs[i + 1]).unwrap_or(last)
}

/// Area (µm²) and leakage (µW) at `capacity_bytes` on one group of points sorted by capacity
/// (at least one): power laws between the two surrounding points, the end segments' laws
/// outside. 0 bytes is 0.
fn group_at(points: &[SramPoint], capacity_bytes: u64) -> (f64, f64) {
    if capacity_bytes == 0 || points.is_empty() {
        return (0.0, 0.0);
    }
    if points.len() == 1 {
        let p = points[0];
        let r = capacity_bytes as f64 / p.capacity_bytes as f64;
        return (p.area_um2 * r, p.leakage_uw * r);
    }
    let xs: Vec<f64> = points
        .iter()
        .map(|p| (p.capacity_bytes as f64).ln())
        .collect();
    let x = (capacity_bytes as f64).ln();
    let i = segment(&xs, x);
    let (a, b) = (points[i], points[i + 1]);
    let area = lerp(x, (xs[i], a.area_um2.ln()), (xs[i + 1], b.area_um2.ln())).exp();
    // A zero leakage (a table that ignores it) has no logarithm: linear in capacity then.
    let leak = if a.leakage_uw > 0.0 && b.leakage_uw > 0.0 {
        lerp(
            x,
            (xs[i], a.leakage_uw.ln()),
            (xs[i + 1], b.leakage_uw.ln()),
        )
        .exp()
    } else {
        let c = |p: SramPoint| p.capacity_bytes as f64;
        lerp(
            capacity_bytes as f64,
            (c(a), a.leakage_uw),
            (c(b), b.leakage_uw),
        )
        .max(0.0)
    };
    (area, leak)
}

impl SramTable {
    /// The port counts the table has points for, ascending.
    pub fn port_counts(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.points.iter().map(|p| p.ports).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The points of one `(ports, width)` group, in file order.
    fn group(&self, ports: u32, width: Option<u64>) -> Vec<SramPoint> {
        self.points
            .iter()
            .filter(|p| p.ports == ports && p.width_bytes == width)
            .copied()
            .collect()
    }

    /// Area (µm²) and leakage (µW) of one macro of `capacity_bytes` with `width_bytes`-wide
    /// words and `ports` read/write ports, or `None` when the table has no point for `ports`.
    ///
    /// In capacity: power laws between the two surrounding points of the group, the end
    /// segments' laws outside. In width: geometric interpolation (linear in log area, log
    /// width) between the two groups whose widths surround `width_bytes`; outside the table's
    /// widths the nearest group's figures, unscaled. A width-less group serves every width.
    /// 0 bytes is 0.
    pub fn at(&self, capacity_bytes: u64, width_bytes: u64, ports: u32) -> Option<(f64, f64)> {
        let mut widths: Vec<Option<u64>> = self
            .points
            .iter()
            .filter(|p| p.ports == ports)
            .map(|p| p.width_bytes)
            .collect();
        if widths.is_empty() {
            return None;
        }
        if capacity_bytes == 0 {
            return Some((0.0, 0.0));
        }
        widths.sort_unstable();
        widths.dedup();
        let ws: Vec<u64> = widths.iter().flatten().copied().collect();
        if ws.is_empty() {
            return Some(group_at(&self.group(ports, None), capacity_bytes));
        }
        let w = width_bytes.max(1);
        let at_w = |x: u64| group_at(&self.group(ports, Some(x)), capacity_bytes);
        let lo = ws.iter().rev().find(|&&x| x <= w).copied();
        let hi = ws.iter().find(|&&x| x >= w).copied();
        Some(match (lo, hi) {
            (Some(l), Some(h)) if l == h => at_w(l),
            (Some(l), Some(h)) => {
                let (al, ll) = at_w(l);
                let (ah, lh) = at_w(h);
                let x = (w as f64).ln();
                let (xl, xh) = ((l as f64).ln(), (h as f64).ln());
                let geo = |a: f64, b: f64| {
                    if a > 0.0 && b > 0.0 {
                        lerp(x, (xl, a.ln()), (xh, b.ln())).exp()
                    } else {
                        lerp(x, (xl, a), (xh, b)).max(0.0)
                    }
                };
                (geo(al, ah), geo(ll, lh))
            }
            (Some(l), None) => at_w(l),
            (None, Some(h)) => at_w(h),
            (None, None) => (0.0, 0.0),
        })
    }
}

/// One point of a [`BitsTable`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitsPoint {
    /// Resolution in bits.
    pub bits: u32,
    /// Area of one converter, µm².
    pub area_um2: f64,
    /// Static power of one converter, µW.
    pub leakage_uw: f64,
}

/// Converters (ADC, DAC) by resolution: area exponential in bits between points, leakage
/// linear in bits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitsTable {
    /// Points in strictly increasing bits with strictly increasing area and non-decreasing
    /// leakage (at least two).
    pub points: Vec<BitsPoint>,
    /// Where the numbers come from.
    pub source: String,
    /// True when derived by a rule.
    pub inferred: bool,
}

impl BitsTable {
    /// Area (µm²) and leakage (µW, at least 0) of one `bits`-bit converter.
    pub fn at(&self, bits: u32) -> (f64, f64) {
        match self.points.len() {
            0 => (0.0, 0.0),
            1 => (self.points[0].area_um2, self.points[0].leakage_uw),
            _ => {
                let xs: Vec<f64> = self.points.iter().map(|p| f64::from(p.bits)).collect();
                let x = f64::from(bits);
                let i = segment(&xs, x);
                let (a, b) = (self.points[i], self.points[i + 1]);
                let area = lerp(x, (xs[i], a.area_um2.ln()), (xs[i + 1], b.area_um2.ln())).exp();
                let leak = lerp(x, (xs[i], a.leakage_uw), (xs[i + 1], b.leakage_uw)).max(0.0);
                (area, leak)
            }
        }
    }
}

/// An ADC architecture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AdcArch {
    /// Successive approximation (one comparator, a C-DAC; one decision per bit). The default.
    #[default]
    Sar,
    /// Flash (`2^bits − 1` comparators, one decision).
    Flash,
}

/// Area and leakage per component at one process node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Technology {
    /// File format version; must be [`TECH_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Short identifier used in reports, e.g. `cmos45`.
    pub name: String,
    /// Where the numbers come from overall (entries cite their own).
    pub source: String,
    /// Process node in nanometres.
    pub node_nm: u32,
    /// One int8 MAC processing element with its registers (weight, activation, partial sum).
    pub pe_int8: Component,
    /// One register-file / flip-flop bit.
    pub register_bit: Component,
    /// One vector-unit lane (pooling, activation, layout).
    pub vector_lane: Component,
    /// One ROM / look-up-table bit (the sine engine's tables).
    pub lut_bit: Component,
    /// One lane of the sine datapath's logic (adders, accumulator), without its tables.
    pub sine_lane: Component,
    /// One B-MV unit of the block-circulant accelerator at γ = 16 (256 shift units, 16 adder
    /// trees, 16 accumulators); other γ scale by (γ/16)².
    pub bmv_unit: Component,
    /// One shift-and-add unit after a crossbar ADC.
    pub shift_add: Component,
    /// One transimpedance amplifier (per crossbar output column).
    pub tia: Component,
    /// One sample-and-hold (per crossbar output column when the design samples).
    pub sample_hold: Component,
    /// SRAM macros by capacity.
    pub sram: SramTable,
    /// Memristor cells.
    pub cells: Cells,
    /// ADCs by architecture and bits.
    pub adc: BTreeMap<AdcArch, BitsTable>,
    /// Row DACs by bits.
    pub dac: BitsTable,
}

fn check_component(c: &mut Checks, f: &str, x: &Component) {
    check_area_leak(c, f, x.area_um2, x.leakage_uw);
    check_source(c, &format!("{f}.source"), &x.source);
}

fn check_area_leak(c: &mut Checks, f: &str, area: f64, leak: f64) {
    c.check(
        area.is_finite() && (0.0..=MAX_AREA_UM2).contains(&area),
        &format!("{f}.area_um2"),
        num(area),
        &format!("must be a finite area >= 0 um2, at most {MAX_AREA_UM2:e}"),
    );
    c.check(
        leak.is_finite() && (0.0..=MAX_LEAKAGE_UW).contains(&leak),
        &format!("{f}.leakage_uw"),
        num(leak),
        &format!("must be a finite power >= 0 uW, at most {MAX_LEAKAGE_UW:e}"),
    );
}

fn check_source(c: &mut Checks, f: &str, s: &str) {
    c.check(
        !s.trim().is_empty(),
        f,
        "\"\"",
        "must cite where the number comes from (or the rule that derived it)",
    );
}

fn check_bits(c: &mut Checks, f: &str, t: &BitsTable) {
    check_source(c, &format!("{f}.source"), &t.source);
    c.check(
        t.points.len() >= 2,
        &format!("{f}.points"),
        t.points.len(),
        "give at least two points (bits, area_um2, leakage_uw)",
    );
    for (i, p) in t.points.iter().enumerate() {
        let pf = format!("{f}.points[{i}]");
        check_area_leak(c, &pf, p.area_um2, p.leakage_uw);
        c.check(
            p.area_um2 > 0.0,
            &format!("{pf}.area_um2"),
            num(p.area_um2),
            "must be > 0 (areas are interpolated in log scale)",
        );
        c.check(
            (1..=32).contains(&p.bits),
            &format!("{pf}.bits"),
            p.bits,
            "must be in 1..=32",
        );
        if i > 0 {
            let q = t.points[i - 1];
            c.check(
                p.bits > q.bits && p.area_um2 > q.area_um2 && p.leakage_uw >= q.leakage_uw,
                &pf,
                format!("bits {} after {}", p.bits, q.bits),
                "points must have strictly increasing bits and area and non-decreasing leakage; sort them and fix the outlier",
            );
        }
    }
}

impl Validate for Technology {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        c.schema_version(self.schema_version, TECH_SCHEMA_VERSION);
        c.check(
            !self.name.trim().is_empty(),
            "name",
            "\"\"",
            "must not be empty",
        );
        check_source(&mut c, "source", &self.source);
        c.check(
            self.node_nm > 0,
            "node_nm",
            self.node_nm,
            "must be at least 1",
        );
        for (f, x) in [
            ("pe_int8", &self.pe_int8),
            ("register_bit", &self.register_bit),
            ("vector_lane", &self.vector_lane),
            ("lut_bit", &self.lut_bit),
            ("sine_lane", &self.sine_lane),
            ("bmv_unit", &self.bmv_unit),
            ("shift_add", &self.shift_add),
            ("tia", &self.tia),
            ("sample_hold", &self.sample_hold),
        ] {
            check_component(&mut c, f, x);
        }
        check_source(&mut c, "sram.source", &self.sram.source);
        c.check(
            self.sram.points.len() >= 2,
            "sram.points",
            self.sram.points.len(),
            "give at least two points (capacity_bytes, area_um2, leakage_uw)",
        );
        c.check(
            self.sram.points.iter().any(|p| p.ports == 1),
            "sram.points",
            self.sram.points.len(),
            "give points for single-port macros (ports: 1, the default); designs use them unless a buffer asks for more ports",
        );
        // The previous point of each (ports, width) group, and whether a port count has points
        // with and without a width.
        let mut last: BTreeMap<(u32, Option<u64>), (usize, SramPoint)> = BTreeMap::new();
        for (i, p) in self.sram.points.iter().enumerate() {
            let pf = format!("sram.points[{i}]");
            check_area_leak(&mut c, &pf, p.area_um2, p.leakage_uw);
            c.check(
                p.capacity_bytes > 0 && p.area_um2 > 0.0,
                &pf,
                format!(
                    "({} bytes, {} um2, {} uW)",
                    p.capacity_bytes,
                    num(p.area_um2),
                    num(p.leakage_uw)
                ),
                "capacity and area must be > 0 (interpolated in log scale)",
            );
            c.check(
                (1..=64).contains(&p.ports),
                &format!("{pf}.ports"),
                p.ports,
                "must be 1 to 64 read/write ports",
            );
            c.check(
                p.width_bytes.is_none_or(|w| w > 0),
                &format!("{pf}.width_bytes"),
                format!("{:?}", p.width_bytes),
                "must be at least 1 byte, or left out for a table by capacity only",
            );
            c.check(
                !self.sram.points.iter().any(|q| {
                    q.ports == p.ports && q.width_bytes.is_some() != p.width_bytes.is_some()
                }),
                &format!("{pf}.width_bytes"),
                format!("{:?}", p.width_bytes),
                "within one port count give a width on every point or on none",
            );
            if let Some((_, q)) = last.get(&(p.ports, p.width_bytes)) {
                c.check(
                    p.capacity_bytes > q.capacity_bytes
                        && p.area_um2 > q.area_um2
                        && p.leakage_uw >= q.leakage_uw,
                    &pf,
                    format!("{} bytes after {}", p.capacity_bytes, q.capacity_bytes),
                    "points of one (ports, width) group must have strictly increasing capacity and area and non-decreasing leakage; sort them and fix the outlier",
                );
            }
            last.insert((p.ports, p.width_bytes), (i, *p));
        }
        for ((ports, width), (i, _)) in &last {
            c.check(
                self.sram.points[..=*i]
                    .iter()
                    .filter(|q| q.ports == *ports && q.width_bytes == *width)
                    .count()
                    >= 2,
                &format!("sram.points[{i}]"),
                format!("ports {ports}, width {width:?}"),
                "each (ports, width) group needs at least two points",
            );
        }
        c.check(
            self.cells.f_nm.is_finite() && self.cells.f_nm > 0.0 && self.cells.f_nm <= 1e4,
            "cells.f_nm",
            num(self.cells.f_nm),
            "must be a feature size in (0, 1e4] nm",
        );
        check_source(&mut c, "cells.f_source", &self.cells.f_source);
        for (k, x) in &self.cells.kinds {
            let f = format!("cells.kinds.{k:?}");
            c.check(
                x.f2.is_finite() && x.f2 > 0.0 && x.f2 <= 1e6,
                &format!("{f}.f2"),
                num(x.f2),
                "must be a cell area in (0, 1e6] F^2",
            );
            check_area_leak(&mut c, &f, 0.0, x.leakage_uw);
            check_source(&mut c, &format!("{f}.source"), &x.source);
        }
        c.check(
            self.adc.contains_key(&AdcArch::Sar),
            "adc",
            format!("{:?}", self.adc.keys().collect::<Vec<_>>()),
            "must have a Sar table (the crossbar's ADCs are priced as SAR converters)",
        );
        for (k, t) in &self.adc {
            check_bits(&mut c, &format!("adc.{k:?}"), t);
        }
        check_bits(&mut c, "dac", &self.dac);
        c.finish()
    }
}

/// Area (µm²) and static power (µW) by component, summed over instances.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AreaPower {
    /// Area by component, µm².
    pub area_um2: BTreeMap<String, f64>,
    /// Static power by component, µW.
    pub leakage_uw: BTreeMap<String, f64>,
}

impl AreaPower {
    /// Add `count` instances of `(area_um2, leakage_uw)` under `component`.
    pub fn add(&mut self, component: &str, count: f64, (area_um2, leakage_uw): (f64, f64)) {
        *self.area_um2.entry(component.to_string()).or_default() += count * area_um2;
        *self.leakage_uw.entry(component.to_string()).or_default() += count * leakage_uw;
    }

    /// Add every component of `other`.
    pub fn merge(&mut self, other: &AreaPower) {
        for (k, v) in &other.area_um2 {
            *self.area_um2.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.leakage_uw {
            *self.leakage_uw.entry(k.clone()).or_default() += v;
        }
    }

    /// Total area, µm².
    pub fn total_area_um2(&self) -> f64 {
        self.area_um2.values().sum()
    }

    /// Total static power, µW.
    pub fn total_leakage_uw(&self) -> f64 {
        self.leakage_uw.values().sum()
    }
}

impl Component {
    /// `(area_um2, leakage_uw)` of one instance.
    pub fn pair(&self) -> (f64, f64) {
        (self.area_um2, self.leakage_uw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigError, load};
    use proptest::prelude::*;
    use std::path::Path;

    fn tech45() -> Technology {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/tech/45nm.ron");
        load(&root).expect("models/tech/45nm.ron loads")
    }

    #[test]
    fn shipped_files_load_and_validate() {
        for n in ["45nm", "40nm", "32nm"] {
            let p =
                Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../models/tech/{n}.ron"));
            let t: Technology = load(&p).unwrap_or_else(|e| panic!("{e}"));
            assert!(t.cells.area_um2(CellKind::OneT1R).is_some(), "{n}");
            assert!(t.adc.contains_key(&AdcArch::Sar), "{n}");
        }
    }

    #[test]
    fn sram_table_hits_its_points() {
        let t = tech45();
        for p in &t.sram.points {
            let w = p.width_bytes.expect("the shipped tables give widths");
            let (a, l) = t.sram.at(p.capacity_bytes, w, p.ports).unwrap();
            assert!((a / p.area_um2 - 1.0).abs() < 1e-9, "{p:?}");
            assert!((l / p.leakage_uw - 1.0).abs() < 1e-9, "{p:?}");
        }
        assert_eq!(t.sram.at(0, 16, 1), Some((0.0, 0.0)));
        assert_eq!(t.sram.at(1024, 16, 3), None, "no 3-port points");
    }

    #[test]
    fn a_width_between_two_groups_lies_between_them_and_a_widthless_table_ignores_width() {
        let t = tech45();
        for cap in [2048u64, 50_000, 1 << 20] {
            let (a16, l16) = t.sram.at(cap, 16, 1).unwrap();
            let (a32, l32) = t.sram.at(cap, 32, 1).unwrap();
            let (a24, l24) = t.sram.at(cap, 24, 1).unwrap();
            let between = |x: f64, a: f64, b: f64| x >= a.min(b) && x <= a.max(b);
            assert!(between(a24, a16, a32) && between(l24, l16, l32), "{cap}");
            // Outside the widths: the nearest group's figures.
            assert_eq!(t.sram.at(cap, 1, 1), t.sram.at(cap, 8, 1));
            assert_eq!(t.sram.at(cap, 4096, 1), t.sram.at(cap, 64, 1));
        }
        let mut plain = t.sram.clone();
        plain
            .points
            .retain(|p| p.ports == 1 && p.width_bytes == Some(16));
        plain.points.iter_mut().for_each(|p| p.width_bytes = None);
        assert_eq!(plain.at(5000, 1, 1), plain.at(5000, 64, 1));
    }

    #[test]
    fn sram_groups_are_validated_by_field() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/tech/45nm.ron");
        let text = std::fs::read_to_string(&p).unwrap();
        // A width on one point of a port count whose other points have none.
        let bad = text.replacen("width_bytes: 8, ports: 2, ", "ports: 2, ", 1);
        let err = crate::config::parse::<Technology>(&bad, Path::new("t.ron")).unwrap_err();
        assert!(
            err.to_string()
                .contains("within one port count give a width on every point or on none"),
            "{err}"
        );
        // No single-port points at all.
        let bad = text.replace("ports: 1, ", "ports: 4, ");
        let err = crate::config::parse::<Technology>(&bad, Path::new("t.ron")).unwrap_err();
        assert!(
            err.to_string()
                .contains("give points for single-port macros"),
            "{err}"
        );
    }

    #[test]
    fn an_unsorted_table_and_a_negative_area_are_refused_by_field() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/tech/45nm.ron");
        let text = std::fs::read_to_string(&p).unwrap();
        let bad = text.replacen("area_um2: 1210.0", "area_um2: -1.0", 1);
        let err = crate::config::parse::<Technology>(&bad, Path::new("t.ron")).unwrap_err();
        let ConfigError::Invalid { errors, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(errors[0].field, "pe_int8.area_um2", "{err}");
        assert!(err.to_string().contains("t.ron: pe_int8.area_um2 = -1"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn more_sram_capacity_is_more_area_and_leakage(
            a in 1u64..(1 << 26),
            d in 1u64..(1 << 26),
            w in 1u64..128,
            ports in 1u32..3,
        ) {
            let t = tech45();
            let (a0, l0) = t.sram.at(a, w, ports).unwrap();
            let (a1, l1) = t.sram.at(a + d, w, ports).unwrap();
            prop_assert!(a1 > a0 && l1 > l0, "{a} -> {} ({w} B, {ports} ports): {a0} {a1} {l0} {l1}", a + d);
        }

        #[test]
        fn a_second_port_costs_area(a in 1u64..(1 << 26), w in 1u64..128) {
            let t = tech45();
            let (a1, _) = t.sram.at(a, w, 1).unwrap();
            let (a2, _) = t.sram.at(a, w, 2).unwrap();
            prop_assert!(a2 > a1, "{a} B x {w} B: 1 port {a1} um2, 2 ports {a2} um2");
        }

        #[test]
        fn more_adc_bits_is_more_area(b in 1u32..16) {
            let t = tech45();
            for table in t.adc.values() {
                prop_assert!(table.at(b + 1).0 > table.at(b).0);
                prop_assert!(table.at(b + 1).1 >= table.at(b).1);
            }
        }
    }
}
