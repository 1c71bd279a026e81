//! One NeuroSim synaptic core (`SubArray`, analog 1T1R branch) and its neuron periphery
//! (`NeuroSimNeuronInitialize` … in MLP_NeuroSim's `NeuroSim.cpp`): geometry, line parasitics,
//! component layout, and the latency and energy of one read iteration and of one row write.

use super::arith::{Adder, Subtractor};
use super::components::{
    Dff, Mux, ReadCircuit, RowDecoder, Side, SwitchMatrix, SwitchMode, WlDecoderOutput,
};
use super::formula::{Mos, drain_cap, gate_cap, on_resistance};
use super::tech::{MIN_GAP_BET_GATE_POLY, POLY_WIDTH, Technology};
use super::{CellConfig, NeuroSimConfig, SubArrayConfig};

/// Wire capacitance per length NeuroSim uses for array lines (`SubArray::Initialize`), F/m.
const WIRE_CAP_F_PER_M: f64 = 0.2e-15 / 1e-6;

/// NeuroSim's activity placeholders (`activityRowRead`, `activityColWrite`) as baked into the
/// switch matrices at `Initialize` (`NeuroSimSubArrayInitialize` sets them to 1/2).
pub const INIT_ACTIVITY: f64 = 0.5;

/// Area of each block of a synaptic core, in m² (the terms of `SubArray::usedArea`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct CoreArea {
    /// The cell array (lengthRow × lengthCol).
    pub array_m2: f64,
    /// Word-line decoder.
    pub wl_decoder_m2: f64,
    /// Word-line decoder output stage (drivers).
    pub wl_decoder_output_m2: f64,
    /// Source-line switch matrix (column mode, with DFFs).
    pub sl_switch_matrix_m2: f64,
    /// Bit-line switch matrix (row mode, with DFFs).
    pub bl_switch_matrix_m2: f64,
    /// Analog column mux (height overridden to the mux decoder's).
    pub mux_m2: f64,
    /// Mux decoder.
    pub mux_decoder_m2: f64,
    /// Integrate-and-fire read circuits.
    pub read_circuit_m2: f64,
    /// Dummy-column subtractors.
    pub subtractor_m2: f64,
}

impl CoreArea {
    /// `usedArea`: the sum of the blocks in m².
    pub fn used_m2(&self) -> f64 {
        self.array_m2
            + self.wl_decoder_m2
            + self.wl_decoder_output_m2
            + self.sl_switch_matrix_m2
            + self.bl_switch_matrix_m2
            + self.mux_m2
            + self.mux_decoder_m2
            + self.read_circuit_m2
            + self.subtractor_m2
    }
}

/// Area of the neuron periphery of one sub-array, in m² (`NeuroSimNeuronArea`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct NeuronArea {
    /// Adders.
    pub adder_m2: f64,
    /// Digital mux.
    pub mux_m2: f64,
    /// Mux decoder.
    pub mux_decoder_m2: f64,
    /// Output DFFs.
    pub dff_m2: f64,
    /// Subtractors.
    pub subtractor_m2: f64,
}

impl NeuronArea {
    /// The printed sum of the five blocks in m².
    pub fn total_m2(&self) -> f64 {
        self.adder_m2 + self.mux_m2 + self.mux_decoder_m2 + self.dff_m2 + self.subtractor_m2
    }
}

/// A synaptic core with its neuron periphery, built and laid out.
#[derive(Clone, Debug)]
pub struct SubArray {
    /// Rows N_r (inputs).
    pub rows: usize,
    /// Columns N_c (outputs).
    pub cols: usize,
    /// Columns per read circuit M of this sub-array (`subArray->numColMuxed`).
    pub col_muxed: usize,
    /// Array width lengthRow in m.
    pub length_row: f64,
    /// Array height lengthCol in m.
    pub length_col: f64,
    /// Bit-line capacitance capRow1 in F (wire only).
    pub cap_row1: f64,
    /// Word-line capacitance capRow2 in F (wire + access gates).
    pub cap_row2: f64,
    /// Column (source-line) capacitance capCol in F (wire + access drains).
    pub cap_col: f64,
    /// Row wire resistance resRow in Ω.
    pub res_row: f64,
    /// Access transistor width in F (`widthAccessCMOS`).
    pub width_access_f: f64,
    /// R_acc + R_on in Ω (`resMemCellOn`).
    pub res_mem_cell_on: f64,
    wl_decoder: RowDecoder,
    wl_decoder_output: WlDecoderOutput,
    sl_switch: SwitchMatrix,
    bl_switch: SwitchMatrix,
    mux: Mux,
    mux_decoder: RowDecoder,
    read_circuit: ReadCircuit,
    subtractor: Subtractor,
    n_adder: Adder,
    n_mux: Mux,
    n_mux_decoder: RowDecoder,
    n_dff: Dff,
    n_subtractor: Subtractor,
    num_adder: usize,
    /// Block areas of the core.
    pub core_area: CoreArea,
    /// Block areas of the neuron periphery.
    pub neuron_area: NeuronArea,
}

/// Latency of one read iteration, by block, in s.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ReadLatency {
    /// WL decoder (computed for its output ramp; NeuroSim does not add it).
    pub wl_decoder_s: f64,
    /// WL decoder output stage.
    pub wl_decoder_output_s: f64,
    /// BL switch matrix incl. its DFF.
    pub bl_switch_matrix_s: f64,
    /// Integrate-and-fire pulse width t_read = C_in·V_int/I_max·2^bits.
    pub t_read_s: f64,
    /// Read circuit: t_read + one clock.
    pub read_circuit_s: f64,
    /// Sub-array subtractor.
    pub subtractor_s: f64,
    /// Sum of the sub-array terms NeuroSim adds (L_SA).
    pub subarray_s: f64,
    /// Neuron adder.
    pub neuron_adder_s: f64,
    /// Neuron mux.
    pub neuron_mux_s: f64,
    /// Neuron DFF.
    pub neuron_dff_s: f64,
    /// Neuron subtractor.
    pub neuron_subtractor_s: f64,
    /// Sum of the neuron terms (L_N).
    pub neuron_s: f64,
}

/// Dynamic energy of one read iteration, by block, in J.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ReadEnergy {
    /// WL decoder.
    pub wl_decoder_j: f64,
    /// WL decoder output stage.
    pub wl_decoder_output_j: f64,
    /// BL switch matrix incl. DFFs.
    pub bl_switch_matrix_j: f64,
    /// Analog mux.
    pub mux_j: f64,
    /// Mux decoder.
    pub mux_decoder_j: f64,
    /// Read circuits (1.346 pJ per column).
    pub read_circuit_j: f64,
    /// Sub-array subtractor (0: NeuroSim passes an uninitialised count, see the docs).
    pub subtractor_j: f64,
    /// Sum of the sub-array terms (E_SA).
    pub subarray_j: f64,
    /// Neuron periphery (adder, mux, mux decoder, DFF, subtractor): E_N.
    pub neuron_j: f64,
}

impl SubArray {
    /// `NeuroSimSubArrayInitialize` + `SubArray::CalculateArea` + `NeuroSimNeuronInitialize` +
    /// `NeuroSimNeuronArea` for one layer.
    pub fn new(t: &Technology, cfg: &NeuroSimConfig, layer: &SubArrayConfig) -> Self {
        let f = t.f();
        let cell: &CellConfig = &cfg.cell;
        let (rows, cols, m) = (layer.rows, layer.cols, cfg.num_col_muxed);
        let min_cell_width = (MIN_GAP_BET_GATE_POLY + POLY_WIDTH) * 2.0;
        let cell_w = if layer.relax_cell_width {
            cell.width_f.max(min_cell_width * 2.0)
        } else {
            cell.width_f
        };
        let length_row = cols as f64 * cell_w * f;
        let length_col = rows as f64 * cell.height_f * f;
        let r_wire = cfg.unit_wire_resistance_ohm_per_m();
        let width_access_f = on_resistance(f, Mos::N, t) / cell.r_access_ohm;
        let res_mem_cell_on = cell.r_access_ohm + 1.0 / cell.g_max_s;
        let cap_row1 = length_row * WIRE_CAP_F_PER_M;
        let cap_row2 = cap_row1 + gate_cap(width_access_f * f, t) * cols as f64;
        let cap_col = length_col * WIRE_CAP_F_PER_M
            + drain_cap(width_access_f * f, Mos::N, cell.width_f * f, t) * rows as f64;
        let (h, w) = (length_col, length_row);
        let n_addr = (rows as f64).log2().ceil() as u32;
        let wl_decoder_output = WlDecoderOutput::new(t, rows, h);
        let wl_decoder = RowDecoder::new(t, n_addr, false, Some(h));
        let sl_switch = SwitchMatrix::new(t, SwitchMode::Col, cols, res_mem_cell_on / 2.0, w);
        let bl_switch = SwitchMatrix::new(
            t,
            SwitchMode::Row,
            rows,
            res_mem_cell_on / cols as f64 / 2.0,
            h,
        );
        let num_input = cols.div_ceil(m);
        let mux = Mux::analog(t, num_input, m, res_mem_cell_on / rows as f64 / 2.0, w);
        let sel_bits = (m as f64).log2().ceil() as u32;
        let mux_decoder = RowDecoder::new(t, sel_bits, true, None);
        let read_circuit =
            ReadCircuit::new(t, num_input, cfg.num_bit_partial_sum, cell.v_read_v, w);
        let subtractor = Subtractor::new(t, cfg.num_bit_partial_sum, num_input, w);
        // Neuron periphery: 2 bits more than the partial sum (×2 in 2w'−1, two's complement).
        let adder_bits = cfg.num_bit_partial_sum + 2;
        let num_adder = cols.div_ceil(m);
        let n_adder = Adder::new(t, adder_bits, num_adder, w);
        let n_mux = Mux::digital(t, num_adder, m, w);
        let n_mux_decoder = RowDecoder::new(t, sel_bits, true, Some(n_mux.fp.height * 4.0));
        let n_dff = Dff::new(t, cols, Side::Width(w));
        let n_subtractor = Subtractor::new(t, adder_bits, num_adder, w);
        let mux_h = mux_decoder.fp.height.max(mux.fp.height);
        let core_area = CoreArea {
            array_m2: h * w,
            wl_decoder_m2: wl_decoder.fp.area(),
            wl_decoder_output_m2: wl_decoder_output.fp.area(),
            sl_switch_matrix_m2: sl_switch.fp.area(),
            bl_switch_matrix_m2: bl_switch.fp.area(),
            mux_m2: mux_h * w,
            mux_decoder_m2: mux_decoder.fp.area(),
            read_circuit_m2: read_circuit.fp.area(),
            subtractor_m2: subtractor.fp.area(),
        };
        let neuron_area = NeuronArea {
            adder_m2: n_adder.fp.area(),
            mux_m2: n_mux.fp.area(),
            mux_decoder_m2: n_mux_decoder.fp.area(),
            dff_m2: n_dff.fp.area(),
            subtractor_m2: n_subtractor.fp.area(),
        };
        SubArray {
            rows,
            cols,
            col_muxed: m,
            length_row,
            length_col,
            cap_row1,
            cap_row2,
            cap_col,
            res_row: length_row * r_wire,
            width_access_f,
            res_mem_cell_on,
            wl_decoder,
            wl_decoder_output,
            sl_switch,
            bl_switch,
            mux,
            mux_decoder,
            read_circuit,
            subtractor,
            n_adder,
            n_mux,
            n_mux_decoder,
            n_dff,
            n_subtractor,
            num_adder,
            core_area,
            neuron_area,
        }
    }

    /// The WL decoder's single-decode delay and output ramp (loaded by the driver NOR inputs).
    fn decode(&self, t: &Technology) -> (f64, f64) {
        self.wl_decoder
            .latency(t, 1e20, self.wl_decoder_output.c_nor.0, 0.0)
    }

    /// `NeuroSimSubArrayReadLatency` + `NeuroSimNeuronReadLatency` of one read iteration
    /// (1-bit input: one read pulse).
    pub fn read_latency(&self, t: &Technology, cfg: &NeuroSimConfig) -> ReadLatency {
        let clk = cfg.clock_hz;
        let (dec, ramp) = self.decode(t);
        let wl_out = self
            .wl_decoder_output
            .latency(t, ramp, self.cap_row2, self.res_row);
        let bl = self
            .bl_switch
            .read_latency(1e20, self.cap_row1, self.res_row, clk);
        let c_in = self.cap_col
            + self.mux.c_tg_drain * (2 + self.col_muxed - 1) as f64
            + self.read_circuit.c_tg_drain
            + self.read_circuit.c_pmos_gate;
        let i_max = self.rows as f64 * cfg.cell.v_read_v / self.res_mem_cell_on;
        let t_read =
            c_in * self.read_circuit.v_int_threshold / i_max * self.read_circuit.max_num_int;
        let rc = t_read + 1.0 / clk;
        let sub = self.subtractor.latency(t, 1e20, 0.0);
        let (adder, adder_ramp) = self.n_adder.latency(t, 1e20, self.n_mux.c_tg_drain);
        let _ = adder_ramp; // the digital mux's delay does not use its input ramp
        let n_mux = self.n_mux.latency(self.n_dff.c_tg_drain);
        let n_sub = self.n_subtractor.latency(t, 1e20, self.n_mux.c_tg_drain);
        let n_dff = Dff::latency(clk);
        ReadLatency {
            wl_decoder_s: dec,
            wl_decoder_output_s: wl_out,
            bl_switch_matrix_s: bl,
            t_read_s: t_read,
            read_circuit_s: rc,
            subtractor_s: sub,
            subarray_s: wl_out + bl + rc + sub,
            neuron_adder_s: adder,
            neuron_mux_s: n_mux,
            neuron_dff_s: n_dff,
            neuron_subtractor_s: n_sub,
            neuron_s: adder + n_mux + n_dff + n_sub,
        }
    }

    /// `NeuroSimSubArrayReadEnergy` + `NeuroSimNeuronReadEnergy` of one read iteration.
    pub fn read_energy(&self, t: &Technology, cfg: &NeuroSimConfig) -> ReadEnergy {
        let v_r = cfg.cell.v_read_v;
        let wl_decoder_j = self.wl_decoder.energy(t);
        let wl_decoder_output_j = self
            .wl_decoder_output
            .read_energy(t, cfg.cell.access_voltage_v);
        let bl_switch_matrix_j = self.bl_switch.read_energy(t, INIT_ACTIVITY, v_r);
        let mux_j = self.mux.energy(t);
        let mux_decoder_j = self.mux_decoder.energy(t);
        let read_circuit_j = self.read_circuit.energy();
        let subtractor_j = 0.0;
        let na = self.num_adder as f64;
        let neuron_j = self.n_adder.energy(t, na)
            + self.n_mux.energy(t)
            + self.n_mux_decoder.energy(t)
            + self.n_dff.energy(t, na)
            + self.n_subtractor.energy(t, na);
        ReadEnergy {
            wl_decoder_j,
            wl_decoder_output_j,
            bl_switch_matrix_j,
            mux_j,
            mux_decoder_j,
            read_circuit_j,
            subtractor_j,
            subarray_j: wl_decoder_j
                + wl_decoder_output_j
                + bl_switch_matrix_j
                + mux_j
                + mux_decoder_j
                + read_circuit_j
                + subtractor_j,
            neuron_j,
        }
    }

    /// Train.cpp's array-side read energy of one image for this layer in J, with
    /// `active_inputs` inputs at 1 and every cell at conductance `g_s`: for each output column,
    /// all word lines (capRow2·V_dd²·N_r), the active bit lines (capRow1·V_r²) and the cell
    /// currents for the cell's read pulse. Wire resistance in the cell current is neglected
    /// (NeuroSim adds it per cell; below 0.01 % here).
    pub fn array_read_energy(
        &self,
        t: &Technology,
        cfg: &NeuroSimConfig,
        active_inputs: f64,
        g_s: f64,
    ) -> f64 {
        let v_r = cfg.cell.v_read_v;
        let i_cell = v_r / (1.0 / g_s + cfg.cell.r_access_ohm);
        self.cols as f64
            * (self.cap_row2 * t.vdd_v * t.vdd_v * self.rows as f64
                + active_inputs
                    * (self.cap_row1 * v_r * v_r + i_cell * v_r * cfg.cell.read_pulse_s))
    }

    /// The part of [`SubArray::array_read_energy`] that does not depend on the data, in J.
    pub fn array_read_energy_static(&self, t: &Technology) -> f64 {
        self.cols as f64 * self.cap_row2 * t.vdd_v * t.vdd_v * self.rows as f64
    }

    /// The static part of `NeuroSimSubArrayWriteLatency` for one image in s: a decode and a
    /// word-line select per row (N_r·(t_dec + t_wlOut)); the pulse trains come on top.
    pub fn write_latency_static(&self, t: &Technology) -> f64 {
        let (dec, ramp) = self.decode(t);
        let wl_out = self
            .wl_decoder_output
            .latency(t, ramp, self.cap_row2, self.res_row);
        self.rows as f64 * (dec + wl_out)
    }

    /// `NeuroSimSubArrayWriteEnergy` of one row in J: `num_write_ops` batches of the row changed,
    /// `pulses` = the row's mean pulse count (`numWritePulse`, integer division in Train.cpp).
    pub fn write_energy_row(
        &self,
        t: &Technology,
        cfg: &NeuroSimConfig,
        num_write_ops: f64,
        pulses: f64,
    ) -> f64 {
        let c = &cfg.cell;
        let v_w = (c.v_ltp_v * c.v_ltp_v + c.v_ltd_v * c.v_ltd_v).sqrt();
        let cells_per_op = self.cols.div_ceil(cfg.num_write_col_muxed) as f64;
        self.wl_decoder.energy(t)
            + self.wl_decoder_output.write_energy(t, c.access_voltage_v)
            + self
                .bl_switch
                .write_energy(t, 1.0, 1.0, cells_per_op, INIT_ACTIVITY, v_w)
            + self.sl_switch.write_energy(
                t,
                num_write_ops,
                pulses,
                cells_per_op,
                INIT_ACTIVITY,
                v_w,
            )
    }

    /// Cells per write batch (⌈N_c / numWriteColMuxed⌉).
    pub fn write_batch(&self, cfg: &NeuroSimConfig) -> usize {
        self.cols.div_ceil(cfg.num_write_col_muxed)
    }
}
