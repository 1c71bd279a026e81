//! A port of MLP_NeuroSim V3.0's gate-level circuit model for an analog 1T1R MLP (issue #17,
//! NeuroSim parity): area, read latency and read energy per image and per epoch, and the write
//! latency and energy of an image from its pulse counts (summed per epoch of in-situ training by
//! `nacsim_insitu`'s store), computed with NeuroSim's own formulas.
//!
//! | module | NeuroSim source | what it gives |
//! |---|---|---|
//! | [`tech`] | `NeuroSim/Technology.cpp`, `constant.h` | the 32 nm HP table at a temperature |
//! | [`formula`] | `NeuroSim/formula.cpp` | gate/drain caps, cell layout, on-resistance, Horowitz |
//! | [`components`] | `RowDecoder.cpp`, `WLDecoderOutput.cpp`, `SwitchMatrix.cpp`, `DFF.cpp`, `Mux.cpp`, `ReadCircuit.cpp` | the periphery blocks |
//! | [`arith`] | `Subtractor.cpp`, `Adder.cpp` | subtractors and adders |
//! | [`subarray`] | `SubArray.cpp` (analog 1T1R), `NeuroSim.cpp` | one layer's core and neuron periphery |
//! | [`write`](mod@write) | `Train.cpp` weight update, `NeuroSimSubArrayWriteLatency/Energy` | write latency and energy of one image from pulse counts |
//!
//! The MLP-level accounting of `Train.cpp` and `main.cpp` (read iterations per image, the
//! `numColMuxed` clamp, the printed sums) is in [`NeuroSimConfig::evaluate`]. Every formula and
//! each reproduced quirk is listed in docs/engines/crossbar.md ("NeuroSim parity").

pub mod arith;
pub mod components;
pub mod formula;
pub mod subarray;
pub mod tech;
#[cfg(test)]
mod tests;
pub mod write;

use serde::{Deserialize, Serialize};

pub use subarray::{CoreArea, NeuronArea, ReadEnergy, ReadLatency, SubArray};
pub use tech::Technology;
pub use write::WriteCost;

/// The synaptic cell as NeuroSim sees it (`NeuroSimSubArrayInitialize` copies these from the
/// MLP's `RealDevice`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellConfig {
    /// Maximum conductance in S (R_on = 1/G_max).
    pub g_max_s: f64,
    /// Minimum conductance in S.
    pub g_min_s: f64,
    /// Access transistor on-resistance in Ω (`resistanceAccess`); sizes the access transistor.
    pub r_access_ohm: f64,
    /// Read voltage in V.
    pub v_read_v: f64,
    /// Cell read pulse in s (used by the array-side read energy of `Train.cpp` only).
    pub read_pulse_s: f64,
    /// LTP write voltage in V.
    pub v_ltp_v: f64,
    /// LTD write voltage in V.
    pub v_ltd_v: f64,
    /// LTP pulse width in s.
    pub pw_ltp_s: f64,
    /// LTD pulse width in s.
    pub pw_ltd_s: f64,
    /// Gate voltage of the 1T1R access transistor in V (`accessVoltage`).
    pub access_voltage_v: f64,
    /// Cell height in F.
    pub height_f: f64,
    /// Cell width in F.
    pub width_f: f64,
}

/// One layer's synaptic core: `rows` inputs × `cols` outputs, one cell per synapse.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubArrayConfig {
    /// Rows (layer inputs).
    pub rows: usize,
    /// Columns (layer outputs).
    pub cols: usize,
    /// `relaxArrayCellWidth` (MLP_NeuroSim's `main` sets it for the second layer only).
    #[serde(default)]
    pub relax_cell_width: bool,
    /// Mean number of inputs at 1 per image (1-bit inputs), for the data-dependent array read
    /// energy of `nacsim info`; a training run counts them instead.
    pub mean_active_inputs: f64,
}

/// A NeuroSim-style circuit evaluation of an MLP on analog 1T1R sub-arrays (one per layer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeuroSimConfig {
    /// Where the numbers come from.
    pub source: String,
    /// Technology node in nm; only 32 (PTM HP) is ported.
    pub node_nm: u32,
    /// Temperature in K (MLP_NeuroSim: 301).
    pub temperature_k: u32,
    /// Clock in Hz (`clkFreq`).
    pub clock_hz: f64,
    /// Array wire width in nm (`arrayWireWidth`; sets the wire resistance as `Array.h` does).
    pub wire_width_nm: u32,
    /// Columns sharing one read circuit (`numColMuxed`).
    pub num_col_muxed: usize,
    /// Columns sharing one write driver (`numWriteColMuxed`): the write batch is
    /// ⌈cols / this⌉ cells.
    pub num_write_col_muxed: usize,
    /// Bits of the integrate-and-fire counter (`numBitPartialSum`).
    pub num_bit_partial_sum: u32,
    /// Training images per epoch (`numTrainImagesPerEpoch`).
    pub images_per_epoch: u64,
    /// The cell.
    pub cell: CellConfig,
    /// One sub-array per layer, input side first.
    pub layers: Vec<SubArrayConfig>,
}

/// (aspect ratio, resistivity in Ω·m) of array wires by width in nm (`Array.h`, MLP_NeuroSim).
fn wire_params(width_nm: u32) -> Option<(f64, f64)> {
    Some(match width_nm {
        100 => (2.30, 2.73e-8),
        50 => (2.34, 3.91e-8),
        40 => (1.90, 4.03e-8),
        32 => (1.90, 4.51e-8),
        22 => (2.00, 5.41e-8),
        14 => (2.10, 7.43e-8),
        _ => return None,
    })
}

/// What is wrong with a [`NeuroSimConfig`]: the field and the fix.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("neurosim.{field}: {message}")]
pub struct ConfigError {
    /// The field, e.g. `layers[1].cols`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Figures of one layer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerFigures {
    /// Rows × columns.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Core blocks in m².
    pub core_area: CoreArea,
    /// Neuron blocks in m².
    pub neuron_area: NeuronArea,
    /// Read iterations per image (`Train.cpp` loop with the clamped `numColMuxed`).
    pub read_iterations: usize,
    /// One iteration's latency by block.
    pub read_latency: ReadLatency,
    /// One iteration's energy by block.
    pub read_energy: ReadEnergy,
    /// Array-side read energy of one image without the active inputs, J.
    pub array_read_energy_static_j: f64,
    /// Array-side read energy per active input, J.
    pub array_read_energy_per_active_input_j: f64,
    /// Line capacitances capRow1, capRow2, capCol in F.
    pub line_caps_f: [f64; 3],
    /// Static write latency of one image (decode + word-line select per row), s.
    pub write_latency_static_s: f64,
    /// Cells per write batch.
    pub write_batch_cells: usize,
}

/// What MLP_NeuroSim prints for the configuration, from NeuroSim's formulas (never NeuroSim's
/// own output): areas, and read latency and energy per image and per epoch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NeuroSimFigures {
    /// "Total SubArray (synaptic core) area" in m².
    pub core_area_m2: f64,
    /// "Total Neuron (neuron peripheries) area" in m².
    pub neuron_area_m2: f64,
    /// "Total area" in m².
    pub total_area_m2: f64,
    /// Read latency of one training image in s.
    pub read_latency_per_image_s: f64,
    /// Read latency of one epoch in s (the difference of two printed cumulative values).
    pub read_latency_per_epoch_s: f64,
    /// Read energy of one image in J at the configured mean active inputs.
    pub read_energy_per_image_j: f64,
    /// Read energy of one epoch in J.
    pub read_energy_per_epoch_j: f64,
    /// Static write latency per image in s (the pulse trains come from training).
    pub write_latency_static_per_image_s: f64,
    /// Per layer.
    pub layers: Vec<LayerFigures>,
}

impl NeuroSimConfig {
    /// MLP_NeuroSim V3.0's default run (`Param.cpp`, `Cell.cpp` `RealDevice` = Ag:a-Si,
    /// `Definition.h`, `main.cpp`): 400-100-10 on 1T1R analog sub-arrays, 32 nm HP at 301 K,
    /// 2 GHz, 100 nm wires, `numColMuxed` = `numWriteColMuxed` = 16, 8-bit partial sums, 8 000
    /// images per epoch; the second layer with relaxed cell width. The mean active inputs (100 of
    /// 400 pixels, 50 of 100 hidden units) are an assumption for data-free reports (inferred).
    pub fn mlp_v3_default() -> Self {
        NeuroSimConfig {
            source: "MLP_NeuroSim V3.0 defaults (Param.cpp, Cell.cpp RealDevice Ag:a-Si, main.cpp)"
                .into(),
            node_nm: 32,
            temperature_k: 301,
            clock_hz: 2e9,
            wire_width_nm: 100,
            num_col_muxed: 16,
            num_write_col_muxed: 16,
            num_bit_partial_sum: 8,
            images_per_epoch: 8000,
            cell: CellConfig {
                g_max_s: 3.8462e-8,
                g_min_s: 3.0769e-9,
                r_access_ohm: 15e3,
                v_read_v: 0.5,
                read_pulse_s: 5e-9,
                v_ltp_v: 3.2,
                v_ltd_v: 2.8,
                pw_ltp_s: 300e-6,
                pw_ltd_s: 300e-6,
                access_voltage_v: 1.1,
                height_f: 4.0,
                width_f: 4.0,
            },
            layers: vec![
                SubArrayConfig {
                    rows: 400,
                    cols: 100,
                    relax_cell_width: false,
                    mean_active_inputs: 100.0,
                },
                SubArrayConfig {
                    rows: 100,
                    cols: 10,
                    relax_cell_width: true,
                    mean_active_inputs: 50.0,
                },
            ],
        }
    }

    /// Check the fields.
    ///
    /// # Errors
    /// The first field out of range, with its fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field: &str, message: &str| {
            Err(ConfigError {
                field: field.into(),
                message: message.into(),
            })
        };
        if self.node_nm != 32 {
            return err("node_nm", "only NeuroSim's 32 nm HP node is ported; use 32");
        }
        if !(300..=400).contains(&self.temperature_k) {
            return err("temperature_k", "NeuroSim tables cover 300..=400 K");
        }
        if wire_params(self.wire_width_nm).is_none() {
            return err(
                "wire_width_nm",
                "use one of NeuroSim's widths: 100, 50, 40, 32, 22, 14",
            );
        }
        if !(self.clock_hz.is_finite() && self.clock_hz > 0.0) {
            return err("clock_hz", "must be a positive frequency in Hz");
        }
        if self.num_col_muxed == 0 || self.num_write_col_muxed == 0 {
            return err(
                "num_col_muxed",
                "num_col_muxed and num_write_col_muxed must be at least 1",
            );
        }
        if !(1..=16).contains(&self.num_bit_partial_sum) {
            return err("num_bit_partial_sum", "must be 1..=16 bits");
        }
        let c = &self.cell;
        let pos = [
            c.g_max_s,
            c.g_min_s,
            c.r_access_ohm,
            c.v_read_v,
            c.read_pulse_s,
            c.v_ltp_v,
            c.v_ltd_v,
            c.pw_ltp_s,
            c.pw_ltd_s,
            c.access_voltage_v,
            c.height_f,
            c.width_f,
        ];
        if pos.iter().any(|v| !(v.is_finite() && *v > 0.0)) || c.g_min_s >= c.g_max_s {
            return err(
                "cell",
                "all cell values must be positive and finite, g_min_s < g_max_s",
            );
        }
        if self.layers.is_empty() {
            return err("layers", "name at least one sub-array");
        }
        let t = Technology::ptm32_hp(self.temperature_k);
        let w_acc = formula::on_resistance(t.f(), formula::Mos::N, &t) / c.r_access_ohm;
        if w_acc > c.width_f {
            return err(
                "cell.r_access_ohm",
                &format!(
                    "the access transistor would be {w_acc:.2}F wide, more than the cell width: raise r_access_ohm or width_f (NeuroSim exits here)"
                ),
            );
        }
        let f = t.f();
        for (i, l) in self.layers.iter().enumerate() {
            if l.rows < 2 || l.cols == 0 {
                return err(
                    &format!("layers[{i}]"),
                    "rows must be at least 2 and cols at least 1",
                );
            }
            // The switch matrices pack their gates along the array's height and width
            // (`SwitchMatrix::CalculateArea`): an array shorter than one transistor or narrower
            // than two gate pitches leaves no room for a single gate.
            let height = l.rows as f64 * c.height_f * f;
            if ((height / (tech::MAX_TRANSISTOR_HEIGHT * f)) as usize) < 1 {
                return err(
                    &format!("layers[{i}].rows"),
                    &format!(
                        "rows × cell.height_f = {} F is less than one transistor height (28 F): NeuroSim cannot lay out the bit-line switch matrix; use at least {} rows",
                        l.rows as f64 * c.height_f,
                        (tech::MAX_TRANSISTOR_HEIGHT / c.height_f).ceil() as usize + 1
                    ),
                );
            }
            let pitch = 2.0 * (tech::POLY_WIDTH + tech::MIN_GAP_BET_GATE_POLY);
            let cell_w = if l.relax_cell_width {
                c.width_f.max(pitch * 2.0)
            } else {
                c.width_f
            };
            if ((l.cols as f64 * cell_w * f / (pitch * f * 2.0)) as usize) < 1 {
                return err(
                    &format!("layers[{i}].cols"),
                    &format!(
                        "cols × cell width = {} F is less than two gate pitches ({} F): NeuroSim cannot lay out the source-line switch matrix; use more columns",
                        l.cols as f64 * cell_w,
                        pitch * 2.0
                    ),
                );
            }
            if !(l.mean_active_inputs >= 0.0 && l.mean_active_inputs <= l.rows as f64) {
                return err(
                    &format!("layers[{i}].mean_active_inputs"),
                    "must be in 0..=rows",
                );
            }
        }
        Ok(())
    }

    /// Wire resistance per length in Ω/m: ρ / (w² · AR) (`Array.h`).
    pub fn unit_wire_resistance_ohm_per_m(&self) -> f64 {
        let (ar, rho) = wire_params(self.wire_width_nm).unwrap_or((2.30, 2.73e-8));
        let w = f64::from(self.wire_width_nm) * 1e-9;
        rho / (w * w * ar)
    }

    /// The global `param->numColMuxed` after every sub-array's initialisation clamped it to its
    /// column count (`NeuroSimSubArrayInitialize`), which `Train.cpp` uses for its read loop.
    pub fn clamped_col_muxed(&self) -> usize {
        self.layers
            .iter()
            .fold(self.num_col_muxed, |m, l| m.min(l.cols))
    }

    /// Build the sub-arrays and compute the figures.
    ///
    /// # Errors
    /// The configuration is invalid ([`NeuroSimConfig::validate`]).
    pub fn evaluate(&self) -> Result<NeuroSimFigures, ConfigError> {
        self.validate()?;
        let t = Technology::ptm32_hp(self.temperature_k);
        let m_global = self.clamped_col_muxed();
        let g_mean = (self.cell.g_max_s + self.cell.g_min_s) / 2.0;
        let mut layers = Vec::new();
        let (mut core, mut neuron, mut lat, mut energy, mut wlat) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for l in &self.layers {
            let sa = SubArray::new(&t, self, l);
            // for (j = 0; j < n_out; j += ceil(n_out / numColMuxed))
            let step = l.cols.div_ceil(m_global);
            let iterations = l.cols.div_ceil(step);
            let rl = sa.read_latency(&t, self);
            let re = sa.read_energy(&t, self);
            let a_static = sa.array_read_energy_static(&t);
            let a_per = sa.array_read_energy(&t, self, 1.0, g_mean) - a_static;
            core += sa.core_area.used_m2();
            neuron += sa.neuron_area.total_m2();
            lat += iterations as f64 * (rl.subarray_s + rl.neuron_s);
            energy += iterations as f64 * (re.subarray_j + re.neuron_j)
                + a_static
                + a_per * l.mean_active_inputs;
            let wl = sa.write_latency_static(&t);
            wlat += wl;
            layers.push(LayerFigures {
                rows: l.rows,
                cols: l.cols,
                core_area: sa.core_area.clone(),
                neuron_area: sa.neuron_area.clone(),
                read_iterations: iterations,
                read_latency: rl,
                read_energy: re,
                array_read_energy_static_j: a_static,
                array_read_energy_per_active_input_j: a_per,
                line_caps_f: [sa.cap_row1, sa.cap_row2, sa.cap_col],
                write_latency_static_s: wl,
                write_batch_cells: sa.write_batch(self),
            });
        }
        let n = self.images_per_epoch as f64;
        Ok(NeuroSimFigures {
            core_area_m2: core,
            neuron_area_m2: neuron,
            total_area_m2: core + neuron,
            read_latency_per_image_s: lat,
            read_latency_per_epoch_s: lat * n,
            read_energy_per_image_j: energy,
            read_energy_per_epoch_j: energy * n,
            write_latency_static_per_image_s: wlat,
            layers,
        })
    }
}
