//! The memory side of a design: on-chip SRAM buffers, off-chip DRAM, what stays resident, and
//! the vector unit's width (re-exported by [`crate::design`]).

use nacsim_core::config::{Checks, FieldError, Validate, num};
use nacsim_core::energy::MAX_ACTION_PJ;
use serde::{Deserialize, Serialize};

/// Lowest DRAM bandwidth accepted, bytes per cycle (one byte per thousand cycles); below it a
/// pass's transfer time overflows a 64-bit cycle count for ordinary networks.
pub const MIN_DRAM_BYTES_PER_CYCLE: f64 = 1e-3;
/// Highest DRAM bandwidth accepted, bytes per cycle.
pub const MAX_DRAM_BYTES_PER_CYCLE: f64 = 1e9;
/// Longest DRAM latency accepted, cycles.
pub const MAX_DRAM_LATENCY_CYCLES: u64 = 1_000_000_000;

/// One on-chip SRAM buffer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SramBuffer {
    /// Capacity in bytes.
    pub capacity_bytes: u64,
    /// Bytes one bank delivers per cycle.
    pub width_bytes: u64,
    /// Independent banks; peak bandwidth is `width_bytes · banks · ports` bytes per cycle.
    pub banks: u64,
    /// Read/write ports of each bank (default 1): each serves one `width_bytes` access per
    /// cycle, and the technology file prices the extra ports in area and leakage (its SRAM
    /// table must have points for this port count).
    #[serde(default = "one_port", skip_serializing_if = "is_one_port")]
    pub ports: u64,
    /// Read energy in pJ per byte.
    pub read_pj_per_byte: f64,
    /// Write energy in pJ per byte.
    pub write_pj_per_byte: f64,
}

fn one_port() -> u64 {
    1
}

fn is_one_port(p: &u64) -> bool {
    *p == 1
}

impl SramBuffer {
    /// Peak bandwidth in bytes per cycle, `width_bytes · banks · ports` (validation keeps the
    /// product below 2^64; it saturates rather than wraps).
    pub fn bytes_per_cycle(&self) -> u64 {
        self.width_bytes
            .saturating_mul(self.banks)
            .saturating_mul(self.ports)
    }
}

impl Validate for SramBuffer {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        c.check(
            self.capacity_bytes > 0,
            "capacity_bytes",
            self.capacity_bytes,
            "must be at least 1",
        );
        c.check(
            self.width_bytes > 0,
            "width_bytes",
            self.width_bytes,
            "must be at least 1",
        );
        c.check(self.banks > 0, "banks", self.banks, "must be at least 1");
        c.check(
            (1..=64).contains(&self.ports),
            "ports",
            self.ports,
            "must be 1 to 64 read/write ports per bank",
        );
        c.check(
            self.width_bytes
                .checked_mul(self.banks)
                .and_then(|x| x.checked_mul(self.ports))
                .is_some(),
            "width_bytes",
            self.width_bytes,
            &format!(
                "width_bytes x banks x ports ({} x {}) overflows a 64-bit byte count; give the width of one bank in bytes",
                self.banks, self.ports
            ),
        );
        for (f, v) in [
            ("read_pj_per_byte", self.read_pj_per_byte),
            ("write_pj_per_byte", self.write_pj_per_byte),
        ] {
            c.check(
                v.is_finite() && (0.0..=MAX_ACTION_PJ).contains(&v),
                f,
                num(v),
                &format!("must be a finite energy ≥ 0 pJ, at most {MAX_ACTION_PJ:e} pJ"),
            );
        }
        c.finish()
    }
}

/// The on-chip buffers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SramConfig {
    /// Weight buffer (double-buffered: holds two tiles of weights while streaming from DRAM).
    pub weights: SramBuffer,
    /// Activation buffer (inputs and outputs of the current layer, ping-pong).
    pub activations: SramBuffer,
}

/// Off-chip DRAM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DramConfig {
    /// Sustained bandwidth in bytes per cycle of the design clock (so it scales with
    /// `clock_mhz`). Give exactly one of this and `gbytes_per_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_cycle: Option<f64>,
    /// Sustained bandwidth in GB/s (1e9 bytes per second), whatever the clock: a DRAM channel's
    /// datasheet figure (e.g. 25.6 for one LPDDR4-3200 ×64 channel). Give exactly one of this
    /// and `bytes_per_cycle`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gbytes_per_s: Option<f64>,
    /// Latency of a transfer's first byte, in cycles.
    pub latency_cycles: u64,
    /// Energy per bit transferred, in pJ.
    pub pj_per_bit: f64,
}

impl DramConfig {
    /// Bandwidth in bytes per cycle of a `clock_mhz` clock (from whichever of the two fields is
    /// given; validation makes sure exactly one is).
    pub fn bytes_per_cycle_at(&self, clock_mhz: f64) -> f64 {
        match (self.bytes_per_cycle, self.gbytes_per_s) {
            (Some(b), _) => b,
            (None, Some(g)) => g * 1e9 / (clock_mhz * 1e6),
            (None, None) => f64::NAN,
        }
    }
}

/// What stays in on-chip SRAM across passes instead of moving through DRAM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResidentConfig {
    /// Parameters are loaded once (at configuration time, not counted per pass) and stay in the
    /// weight buffer, as in BPCA's design with its codes in 12.7 mm² of SRAM (default false:
    /// fetched from DRAM every pass).
    #[serde(default)]
    pub weights: bool,
    /// The network's input and output stay on chip (another unit produces and consumes them);
    /// default false: the first layer reads its input from DRAM and the last writes to it.
    #[serde(default)]
    pub io: bool,
}

/// The vector unit: pooling, element-wise activations by table, and the layout changes between
/// layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorUnitConfig {
    /// Elements processed per cycle.
    pub lanes: u64,
}
