//! MLP_NeuroSim's write accounting of one training image for one layer (`Train.cpp` weight
//! update with `AnalogNVM::WriteEnergyCalculation`, and `NeuroSimSubArrayWriteLatency` /
//! `NeuroSimSubArrayWriteEnergy` of `NeuroSim.cpp`), given the pulse count of every cell.
//!
//! Each row of the layer (one input, all its output cells) is written in batches of
//! ⌈N_c / numWriteColMuxed⌉ cells; a batch takes its longest LTP train plus its longest LTD
//! train; a batch with any pulse costs array-side energy (cell, selected word and bit lines,
//! source lines of its own and of the unselected columns) and counts as one write operation of
//! the row's source-line switch matrix.

use serde::Serialize;

use super::NeuroSimConfig;
use super::subarray::SubArray;
use super::tech::Technology;

/// Write latency and energy of one image for one layer.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WriteCost {
    /// Σ over batches of the longest LTP plus the longest LTD train, s.
    pub pulse_latency_s: f64,
    /// The whole write latency: decode and word-line select of every row plus the pulses, s.
    pub latency_s: f64,
    /// Array-side energy (`arrayIH/HO->writeEnergy` of `Train.cpp`), J.
    pub array_energy_j: f64,
    /// Periphery energy (`NeuroSimSubArrayWriteEnergy` per row, twice for the first layer when
    /// `double_count`), J.
    pub periphery_energy_j: f64,
    /// Batches with at least one pulse.
    pub changed_batches: u64,
}

impl WriteCost {
    /// Array + periphery energy in J.
    pub fn energy_j(&self) -> f64 {
        self.array_energy_j + self.periphery_energy_j
    }

    /// The periphery part of the latency (decode and word-line select of every row), s.
    pub fn periphery_latency_s(&self) -> f64 {
        self.latency_s - self.pulse_latency_s
    }

    /// Adds `o` field by field (the cost of another image or layer).
    pub fn add(&mut self, o: &WriteCost) {
        self.pulse_latency_s += o.pulse_latency_s;
        self.latency_s += o.latency_s;
        self.array_energy_j += o.array_energy_j;
        self.periphery_energy_j += o.periphery_energy_j;
        self.changed_batches += o.changed_batches;
    }
}

impl SubArray {
    /// The write cost of one image: `pulses[k · cols + j]` is the signed pulse count of the cell
    /// of input `k` and output `j` (LTP > 0), `g_mean_s` the mean of its conductance before and
    /// after, in S. `double_count` reproduces `Train.cpp` calling `NeuroSimSubArrayWriteEnergy`
    /// twice per row for the input-hidden layer.
    ///
    /// # Panics
    /// `pulses` or `g_mean_s` is not `rows · cols` long (a caller bug).
    pub fn write_image(
        &self,
        t: &Technology,
        cfg: &NeuroSimConfig,
        pulses: &[i32],
        g_mean_s: &[f64],
        double_count: bool,
    ) -> WriteCost {
        let (rows, cols) = (self.rows, self.cols);
        assert_eq!(pulses.len(), rows * cols, "pulses must be rows x cols");
        assert_eq!(g_mean_s.len(), rows * cols, "g_mean_s must be rows x cols");
        let c = &cfg.cell;
        let (v_p2, v_d2) = (c.v_ltp_v * c.v_ltp_v, c.v_ltd_v * c.v_ltd_v);
        let b_w = self.write_batch(cfg);
        let batch_overhead = self.cap_row2 * t.vdd_v * t.vdd_v * 2.0
            + self.cap_row1 * v_p2
            + self.cap_col * v_p2 * cols.saturating_sub(b_w) as f64;
        let mut w = WriteCost::default();
        // A row without pulses (an input at 0) costs only its periphery with no write operation.
        let idle_row = self.write_energy_row(t, cfg, 0.0, 0.0);
        for k in 0..rows {
            let row = &pulses[k * cols..(k + 1) * cols];
            if row.iter().all(|&n| n == 0) {
                w.periphery_energy_j += if double_count {
                    2.0 * idle_row
                } else {
                    idle_row
                };
                continue;
            }
            let g = &g_mean_s[k * cols..(k + 1) * cols];
            let mut ops = 0u64;
            for start in (0..cols).step_by(b_w) {
                let end = (start + b_w).min(cols);
                let (mut ltp, mut ltd) = (0.0f64, 0.0f64);
                let mut changed = false;
                for &n in &row[start..end] {
                    if n > 0 {
                        ltp = ltp.max(f64::from(n) * c.pw_ltp_s);
                    } else if n < 0 {
                        ltd = ltd.max(f64::from(-n) * c.pw_ltd_s);
                    }
                    changed |= n != 0;
                }
                w.pulse_latency_s += ltp + ltd;
                if !changed {
                    continue;
                }
                ops += 1;
                for (&n, &gm) in row[start..end].iter().zip(&g[start..end]) {
                    let a = f64::from(n.unsigned_abs());
                    w.array_energy_j += match n.signum() {
                        1 => v_p2 * gm * c.pw_ltp_s * a + v_p2 * self.cap_col * a,
                        -1 => {
                            v_p2 * self.cap_col
                                + v_d2 * self.cap_col * a
                                + v_d2 * gm * c.pw_ltd_s * a
                        }
                        _ => v_p2 * self.cap_col,
                    };
                }
                w.array_energy_j += batch_overhead;
            }
            w.changed_batches += ops;
            // numWritePulse: the row's mean |pulses|, by integer division.
            let total: u64 = row.iter().map(|n| u64::from(n.unsigned_abs())).sum();
            let mean = (total / cols as u64) as f64;
            let e = self.write_energy_row(t, cfg, ops as f64, mean);
            w.periphery_energy_j += if double_count { 2.0 * e } else { e };
        }
        w.latency_s = self.write_latency_static(t) + w.pulse_latency_s;
        w
    }
}
