//! Analytic timing and action counts of a programmed layer (timing layer); their energy is
//! priced in [`cost`](crate::cost).
//!
//! # Model
//!
//! A layer with fan-in `K` and `N` outputs sits on `T_r = ⌈K/array_rows⌉` row tiles ×
//! `T_c = ⌈N/outputs_per_array⌉` column tiles, each a physical array with its own DACs, TIAs
//! and ADCs, all reading in parallel (per-tile parallelism); `replication` copies of the whole
//! set take different input rows. An input vector is applied in `S` slices (1 parallel, or
//! `⌈8/bits_per_slice⌉` bit-serial). Per slice:
//!
//! ```text
//! read  = ⌈(dac.settle_ns + timing.integration_ns)·f⌉            cycles (DAC settle + integration)
//! adc   = ⌈min(adc.cols_per_adc, outputs in the widest tile)·t_conv·f⌉     (column sharing)
//! t_conv = adc.conversion_ns if given, else bits·adc.decision_ns (SAR) or adc.decision_ns (flash)
//! items = ⌈rows/replication⌉·S
//! with sample-and-hold:  cycles = read + (items − 1)·max(read, adc) + adc + tail
//! without:               cycles = items·(read + adc) + tail
//! tail  = 1 + ⌈log2 T_r⌉       (shift-and-add of the last code, then the adder tree over row tiles)
//! ```
//!
//! With sample-and-hold the array integrates the next slice while the ADCs convert the held
//! previous one (derivation in the module [`stepped`](crate::stepped), which steps exactly this
//! pipeline). `items = 0` costs 0 cycles.
//!
//! # Counters (`n` = rows, all slices)
//!
//! | counter | count |
//! |---|---|
//! | `array_reads` | `n·S·T_r·T_c` physical MVMs |
//! | `device_reads` | `n·S·K·(N·devices_per_weight + T_c)` with the reference column, else `n·S·K·N·devices_per_weight` |
//! | `dac_conversions` | `n·S·K·T_c` (every array has its own row DACs) |
//! | `tia_reads`, `adc_conversions`, `shift_adds` | `n·S·T_r·N` |
//! | `macs` | `n·K·N` useful multiply-accumulates (not priced: the array reads are) |
//!
use nacsim_core::Counters;

use crate::config::{CrossbarConfig, SignedScheme};
use crate::cost::{CrossbarCost, energy};

/// The counter names as constants, so that a reader of a counter (the scheduler's adapter, an
/// energy table) misspelling one fails to compile instead of pricing 0.
pub mod counter {
    /// The `adc_conversions` counter.
    pub const ADC_CONVERSIONS: &str = "adc_conversions";
    /// The `array_reads` counter.
    pub const ARRAY_READS: &str = "array_reads";
    /// The `dac_conversions` counter.
    pub const DAC_CONVERSIONS: &str = "dac_conversions";
    /// The `device_reads` counter.
    pub const DEVICE_READS: &str = "device_reads";
    /// The `macs` counter.
    pub const MACS: &str = "macs";
    /// The `shift_adds` counter.
    pub const SHIFT_ADDS: &str = "shift_adds";
    /// The `tia_reads` counter.
    pub const TIA_READS: &str = "tia_reads";
}

/// Counter names reported by [`cost`](crate::ProgrammedLayer::cost), in lexicographic order.
pub const COUNTER_NAMES: [&str; 7] = [
    counter::ADC_CONVERSIONS,
    counter::ARRAY_READS,
    counter::DAC_CONVERSIONS,
    counter::DEVICE_READS,
    counter::MACS,
    counter::SHIFT_ADDS,
    counter::TIA_READS,
];

/// Shape of a layer on the arrays: everything the timing needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Fan-in `K`.
    pub fan_in: usize,
    /// Outputs `N`.
    pub outputs: usize,
    /// Row tiles `T_r`.
    pub row_tiles: usize,
    /// Column tiles `T_c`.
    pub col_tiles: usize,
    /// Input slices `S`.
    pub slices: usize,
}

impl Geometry {
    /// The geometry of a `[outputs, fan_in]` layer on `cfg`'s arrays.
    pub fn new(cfg: &CrossbarConfig, outputs: usize, fan_in: usize) -> Self {
        Geometry {
            fan_in,
            outputs,
            row_tiles: fan_in.div_ceil(cfg.array_rows.max(1)),
            col_tiles: outputs.div_ceil(cfg.outputs_per_array()),
            slices: cfg.input_slices() as usize,
        }
    }
}

fn ns_to_cycles(ns: f64, clock_mhz: f64) -> u64 {
    // Round the product to 1e-9 first so that 10 ns at 1000 MHz is exactly 10 cycles.
    let c = (ns * clock_mhz / 1000.0 * 1e9).round() / 1e9;
    c.ceil() as u64
}

/// Cycles of one read (DAC settle + integration), at least 1.
pub fn read_cycles(cfg: &CrossbarConfig) -> u64 {
    ns_to_cycles(
        cfg.dac.settle_ns + cfg.timing.integration_ns,
        cfg.timing.clock_mhz,
    )
    .max(1)
}

/// Cycles of one ADC conversion ([`AdcConfig::conversion_time_ns`](crate::AdcConfig::conversion_time_ns)
/// at the periphery clock, rounded up), at least 1.
pub fn conversion_cycles(cfg: &CrossbarConfig) -> u64 {
    ns_to_cycles(cfg.adc.conversion_time_ns(), cfg.timing.clock_mhz).max(1)
}

/// Conversions one ADC does per read when the widest tile has `tile_outputs` outputs.
pub fn conversions_per_adc(cfg: &CrossbarConfig, tile_outputs: usize) -> u64 {
    cfg.adc.cols_per_adc.clamp(1, tile_outputs.max(1)) as u64
}

/// Cycles of the ADC phase of one read: the back-to-back conversions of one ADC,
/// `⌈conversions · conversion_time_ns · f⌉`, at least 1 (saturating at `u64::MAX`, like every
/// cycle count here: an impossible design shows up as a saturated count that the reports
/// refuse). The ADC runs on its own conversion clock, so only the whole phase is rounded to the
/// periphery clock (until 2026-12 each conversion was rounded up on its own, which made 128
/// conversions of 0.78 ns take 128 cycles at 1 GHz instead of 100).
pub fn adc_cycles(cfg: &CrossbarConfig, tile_outputs: usize) -> u64 {
    let conv = conversions_per_adc(cfg, tile_outputs) as f64;
    let ns = conv * cfg.adc.conversion_time_ns();
    if !ns.is_finite() || ns * cfg.timing.clock_mhz / 1000.0 >= u64::MAX as f64 {
        return u64::MAX;
    }
    ns_to_cycles(ns, cfg.timing.clock_mhz).max(1)
}

/// Cycles per input vector in steady state (all slices), for a widest tile of `tile_outputs`.
pub fn steady_cycles_per_vector(cfg: &CrossbarConfig, tile_outputs: usize) -> u64 {
    let (r, a) = (read_cycles(cfg), adc_cycles(cfg, tile_outputs));
    let per = if cfg.timing.sample_hold {
        r.max(a)
    } else {
        r.saturating_add(a)
    };
    per.saturating_mul(u64::from(cfg.input_slices()))
}

/// Latency of the digital tail: one shift-and-add cycle plus the adder tree over row tiles.
pub fn tail_cycles(row_tiles: usize) -> u64 {
    1 + u64::from(usize::BITS - row_tiles.max(1).saturating_sub(1).leading_zeros())
}

/// Pipeline items (reads) for `rows` input vectors: `⌈rows/replication⌉·S`.
pub fn items(cfg: &CrossbarConfig, geo: &Geometry, rows: usize) -> u64 {
    (rows.div_ceil(cfg.replication.max(1)) * geo.slices) as u64
}

/// Analytic cost of `rows` input vectors (module docs); `mean_g_s` is the layer's mean
/// programmed conductance in siemens.
pub fn analytic(cfg: &CrossbarConfig, geo: &Geometry, rows: usize, mean_g_s: f64) -> CrossbarCost {
    let tile_outputs = geo.outputs.min(cfg.outputs_per_array());
    let (r, a) = (read_cycles(cfg), adc_cycles(cfg, tile_outputs));
    let n = items(cfg, geo, rows);
    let cycles = if n == 0 {
        0
    } else if cfg.timing.sample_hold {
        r.saturating_add((n - 1).saturating_mul(r.max(a)))
            .saturating_add(a)
            .saturating_add(tail_cycles(geo.row_tiles))
    } else {
        n.saturating_mul(r.saturating_add(a))
            .saturating_add(tail_cycles(geo.row_tiles))
    };
    let counters = counts(cfg, geo, rows);
    let energy_pj = energy(cfg, &counters, mean_g_s);
    CrossbarCost {
        cycles,
        counters,
        energy_pj,
    }
}

/// Action counts of `rows` input vectors (module docs).
pub fn counts(cfg: &CrossbarConfig, geo: &Geometry, rows: usize) -> Counters {
    let ns = (rows * geo.slices) as u64;
    let (k, n) = (geo.fan_in as u64, geo.outputs as u64);
    let (tr, tc) = (geo.row_tiles as u64, geo.col_tiles as u64);
    let per_weight = cfg.devices_per_weight() as u64;
    let ref_cols = if cfg.signed == SignedScheme::Reference {
        tc
    } else {
        0
    };
    let conv = ns * tr * n;
    let values = [
        conv,
        ns * tr * tc,
        ns * k * tc,
        ns * k * (n * per_weight + ref_cols),
        rows as u64 * k * n,
        conv,
        conv,
    ];
    COUNTER_NAMES.into_iter().zip(values).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_and_adc_phases_in_cycles() {
        let cfg = CrossbarConfig::default();
        assert_eq!(read_cycles(&cfg), 11); // 1 ns settle + 10 ns integration at 1 GHz
        assert_eq!(conversion_cycles(&cfg), 1); // 8 bits × 0.098 ns = 0.78 ns → 1 cycle
        assert_eq!(adc_cycles(&cfg, 64), 50); // 64 outputs on one ADC: 64 × 0.78125 ns
        assert_eq!(tail_cycles(1), 1);
        assert_eq!(tail_cycles(2), 2);
        assert_eq!(tail_cycles(7), 4);
        let geo = Geometry::new(&cfg, 256, 784);
        assert_eq!((geo.row_tiles, geo.col_tiles), (7, 4));
        let c = analytic(&cfg, &geo, 3, 5e-6);
        assert_eq!(c.cycles, 11 + 2 * 50 + 50 + 4);
        assert_eq!(c.counters.get("adc_conversions"), 3 * 7 * 256);
        assert_eq!(c.counters.get("device_reads"), 3 * 784 * 256 * 2);
        assert_eq!(c.counters.get("macs"), 3 * 784 * 256);
        let adc = c.energy_pj["adc"];
        assert!((adc - 3.0 * 7.0 * 256.0 * 1.5625).abs() < 1e-6);
        assert_eq!(analytic(&cfg, &geo, 0, 5e-6).cycles, 0);
    }

    #[test]
    fn sar_conversions_take_a_decision_per_bit_and_flash_one() {
        use crate::config::AdcArch;
        let mut cfg = CrossbarConfig::default();
        cfg.timing.clock_mhz = 10_000.0; // 0.1 ns cycles: each decision costs ~1 cycle
        let per_bit: Vec<u64> = (3..=10)
            .map(|b| {
                cfg.adc.bits = b;
                adc_cycles(&cfg, 128)
            })
            .collect();
        assert!(per_bit.windows(2).all(|w| w[0] < w[1]), "{per_bit:?}");
        // 128 conversions × 8 decisions × 0.09765625 ns = 100 ns = 1000 cycles at 10 GHz.
        assert_eq!(per_bit[5], 1000);
        cfg.adc.architecture = AdcArch::Flash;
        let flash: Vec<u64> = (3..=10)
            .map(|b| {
                cfg.adc.bits = b;
                adc_cycles(&cfg, 128)
            })
            .collect();
        assert!(flash.iter().all(|&c| c == 125), "{flash:?}"); // 128 × 0.0977 ns
        // A given conversion time overrides the architecture: bits no longer matter.
        cfg.adc.conversion_ns = Some(0.5);
        cfg.adc.bits = 4;
        assert_eq!(adc_cycles(&cfg, 128), 640);
        cfg.adc.bits = 9;
        assert_eq!(adc_cycles(&cfg, 128), 640);
    }

    #[test]
    fn shared_adcs_round_the_phase_not_each_conversion() {
        let mut cfg = CrossbarConfig::default();
        // 128 conversions of 0.78125 ns at 1 GHz: 100 cycles (was 128 with per-conversion rounding).
        assert_eq!(adc_cycles(&cfg, 128), 100);
        cfg.adc.cols_per_adc = 1;
        assert_eq!(adc_cycles(&cfg, 128), 1);
        cfg.adc.cols_per_adc = 16;
        assert_eq!(adc_cycles(&cfg, 128), 13); // 12.5 ns
    }

    #[test]
    fn flash_energy_counts_every_comparator() {
        use crate::config::AdcArch;
        let mut cfg = CrossbarConfig::default();
        cfg.adc.architecture = AdcArch::Flash;
        cfg.adc.bits = 6;
        let e = crate::cost::adc_conversion_pj(&cfg);
        assert!((e - 63.0 * 0.0615).abs() < 1e-12, "{e}");
        cfg.adc.architecture = AdcArch::Sar;
        assert!((crate::cost::adc_conversion_pj(&cfg) - 1.5625 / 4.0).abs() < 1e-12);
    }

    #[test]
    fn cycle_counts_saturate_instead_of_overflowing() {
        // Phases beyond any valid design (validation refuses them) saturate, never wrap.
        let mut cfg = CrossbarConfig::default();
        cfg.adc.conversion_ns = Some(1e19);
        let geo = Geometry::new(&cfg, 256, 784);
        assert_eq!(adc_cycles(&cfg, 64), u64::MAX);
        assert_eq!(analytic(&cfg, &geo, 3, 5e-6).cycles, u64::MAX);
        cfg.timing.sample_hold = false;
        assert_eq!(steady_cycles_per_vector(&cfg, 64), u64::MAX);
        assert_eq!(analytic(&cfg, &geo, 3, 5e-6).cycles, u64::MAX);
    }

    #[test]
    fn replication_divides_latency_not_energy() {
        let mut cfg = CrossbarConfig::default();
        let geo = Geometry::new(&cfg, 64, 128);
        let one = analytic(&cfg, &geo, 100, 5e-6);
        cfg.replication = 4;
        let four = analytic(&cfg, &geo, 100, 5e-6);
        assert!(
            four.cycles * 3 < one.cycles,
            "{} vs {}",
            four.cycles,
            one.cycles
        );
        assert_eq!(four.energy_pj, one.energy_pj);
    }
}
