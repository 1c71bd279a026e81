//! NeuroSim's peripheral circuits: each struct ports one class of MLP_NeuroSim V3.0 (`RowDecoder`,
//! `WLDecoderOutput`, `SwitchMatrix`, `DFF`, `Mux`, `ReadCircuit`; `Subtractor` and `Adder` are in
//! [`arith`](super::arith)) with its
//! `Initialize` (`new`), `CalculateArea` (`layout_*`), `CalculateLatency` and `CalculatePower`
//! (dynamic energy only; leakage is not ported). Lengths in m, areas in m², capacitances in F,
//! resistances in Ω, times in s, energies in J.

use super::formula::{
    Gate, Mos, gate_area, gate_cap, gate_caps, horowitz, on_resistance, pass_gate_area,
};
use super::tech::{
    M3_PITCH, MAX_TRANSISTOR_HEIGHT, MIN_GAP_BET_GATE_POLY, MIN_NMOS_SIZE, POLY_WIDTH,
    RATIO_READ_THRESHOLD_VS_VOLTAGE, Technology,
};

/// Gates per column (or row) of a given side, capped at the count (`(int)(side/gate)`).
pub(super) fn per_line(side: f64, gate: f64, count: usize) -> usize {
    ((side / gate) as usize).min(count)
}

/// `ceil(a / b)` for counts; 0 when `b` is 0.
pub(super) fn lines(count: usize, per: usize) -> usize {
    if per == 0 { 0 } else { count.div_ceil(per) }
}

/// A NeuroSim `FunctionUnit` footprint.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Footprint {
    /// Height in m.
    pub height: f64,
    /// Width in m.
    pub width: f64,
}

impl Footprint {
    /// Area in m² (`height · width`).
    pub fn area(&self) -> f64 {
        self.height * self.width
    }
}

/// `RowDecoder` in `REGULAR_ROW` mode: 2-bit predecode (INV, NAND2), ⌈n/2⌉-input NORs, and an
/// output driver (2 INV) or, with `mux`, the mux-enable NAND + 2 INV.
#[derive(Clone, Debug)]
pub struct RowDecoder {
    n_addr: u32,
    mux: bool,
    num_inv: usize,
    num_nand: usize,
    num_nor: usize,
    num_metal: usize,
    w_inv: (f64, f64),
    w_nand: (f64, f64),
    w_nor: (f64, f64),
    w_drv: (f64, f64),
    /// Layout after `layout`.
    pub fp: Footprint,
    c_inv: (f64, f64),
    c_nand: (f64, f64),
    /// NOR input capacitance (F).
    pub c_nor: (f64, f64),
    c_drv: (f64, f64),
}

impl RowDecoder {
    /// `RowDecoder::Initialize(REGULAR_ROW, n_addr, mux)` followed by `CalculateArea` with the
    /// given height (`None`: the compact single-column layout).
    pub fn new(t: &Technology, n_addr: u32, mux: bool, height: Option<f64>) -> Self {
        let f = t.f();
        let pn = t.pn_size_ratio;
        let m = MIN_NMOS_SIZE * f;
        let num_nand = 4 * (n_addr / 2) as usize;
        let num_nor = if n_addr > 2 { 1usize << n_addr } else { 0 };
        let nor_in = n_addr.div_ceil(2);
        let mut d = RowDecoder {
            n_addr,
            mux,
            num_inv: n_addr as usize,
            num_nand,
            num_nor,
            num_metal: if n_addr > 2 {
                num_nand + (n_addr as usize % 2) * 2
            } else {
                0
            },
            w_inv: (m, pn * m),
            w_nand: (2.0 * m, pn * m),
            w_nor: (m, f64::from(nor_in) * pn * m),
            w_drv: (3.0 * m, 3.0 * pn * m),
            fp: Footprint::default(),
            c_inv: (0.0, 0.0),
            c_nand: (0.0, 0.0),
            c_nor: (0.0, 0.0),
            c_drv: (0.0, 0.0),
        };
        let hc = MAX_TRANSISTOR_HEIGHT * f;
        let (h_inv, w_inv) = gate_area(Gate::Inv, 1, d.w_inv.0, d.w_inv.1, hc, t);
        let (h_nand, w_nand) = gate_area(Gate::Nand, 2, d.w_nand.0, d.w_nand.1, hc, t);
        let (h_nor, w_nor) = gate_area(Gate::Nor, nor_in, d.w_nor.0, d.w_nor.1, hc, t);
        let (h_drv, w_drv) = gate_area(Gate::Inv, 1, d.w_drv.0, d.w_drv.1, hc, t);
        let metal = M3_PITCH * d.num_metal as f64 * f;
        let tail = if mux {
            w_nand + w_inv * 2.0
        } else {
            w_drv * 2.0
        };
        d.fp = match height {
            Some(h) if h > 0.0 => {
                let cols_nor = lines(num_nor, per_line(h, h_nor, num_nor));
                let cols_nand = lines(num_nand, per_line(h, h_nand, num_nand));
                let cols_inv = lines(d.num_inv, per_line(h, h_inv, d.num_inv));
                let width = w_inv * cols_inv as f64
                    + w_nand * cols_nand as f64
                    + metal
                    + w_nor * cols_nor as f64
                    + tail * cols_nor as f64;
                Footprint { height: h, width }
            }
            _ => Footprint {
                height: (h_nor * num_nor as f64).max(h_nand * num_nand as f64),
                width: w_inv + w_nand + metal + w_nor + tail,
            },
        };
        d.c_inv = gate_caps(Gate::Inv, 1, d.w_inv.0, d.w_inv.1, h_inv, t);
        if num_nand > 0 {
            d.c_nand = gate_caps(Gate::Nand, 2, d.w_nand.0, d.w_nand.1, h_nand, t);
        }
        if num_nor > 0 {
            d.c_nor = gate_caps(Gate::Nor, nor_in, d.w_nor.0, d.w_nor.1, h_nor, t);
        }
        d.c_drv = gate_caps(Gate::Inv, 1, d.w_drv.0, d.w_drv.1, h_drv, t);
        d
    }

    /// `CalculateLatency` of one decode: (delay in s, output ramp), driving `load1` (and, with
    /// `mux`, `load2` on the last inverter).
    pub fn latency(&self, t: &Technology, ramp_in: f64, load1: f64, load2: f64) -> (f64, f64) {
        let mut lat = 0.0;
        let r_inv = on_resistance(self.w_inv.0, Mos::N, t);
        let tr = if self.num_nand > 0 {
            r_inv * (self.c_inv.1 + self.c_nand.0 * 2.0)
        } else {
            r_inv * (self.c_inv.1 + load1)
        };
        let (d, ramp_inv) = horowitz(tr, ramp_in);
        lat += d;
        let mut ramp_nand = 1e20;
        if self.num_nand > 0 {
            let r = on_resistance(self.w_nand.0, Mos::N, t) * 2.0;
            let tr = if self.num_nor > 0 {
                r * (self.c_nand.1 + self.c_nor.0 * self.num_nor as f64 / 4.0)
            } else {
                r * (self.c_nand.1 + load1)
            };
            let (d, rn) = horowitz(tr, ramp_inv);
            lat += d;
            ramp_nand = rn;
        }
        let mut ramp_nor = 1e20;
        if self.num_nor > 0 {
            let r = on_resistance(self.w_nor.1, Mos::P, t) * 2.0;
            let tr = if self.mux {
                r * (self.c_nor.1 + self.c_nand.0)
            } else {
                r * (self.c_nor.1 + self.c_inv.0)
            };
            let (d, rn) = horowitz(tr, ramp_nand);
            lat += d;
            ramp_nor = rn;
        }
        if self.mux {
            let r = on_resistance(self.w_nand.0, Mos::N, t);
            let (d, rn) = horowitz(r * (self.c_nand.1 + self.c_inv.0), ramp_nor);
            lat += d;
            let r = on_resistance(self.w_inv.1, Mos::P, t);
            let (d, ri) = horowitz(r * (self.c_inv.1 + self.c_inv.0 + load1), rn);
            lat += d;
            let ramp_inv = ri;
            let r = on_resistance(self.w_inv.0, Mos::N, t);
            let (d, ro) = horowitz(r * (self.c_inv.1 + load2), ramp_inv);
            lat += d;
            (lat, ro)
        } else {
            let r = on_resistance(self.w_drv.0, Mos::N, t);
            let (d, ri) = horowitz(r * (self.c_drv.1 + self.c_drv.0), ramp_nor);
            lat += d;
            let r = on_resistance(self.w_drv.1, Mos::P, t);
            let (d, ro) = horowitz(r * (self.c_drv.1 + load1), ri);
            lat += d;
            (lat, ro)
        }
    }

    /// `CalculatePower`'s dynamic energy of one decode in J (read and write alike).
    pub fn energy(&self, t: &Technology) -> f64 {
        let v2 = t.vdd_v * t.vdd_v;
        let n = self.n_addr as usize;
        let (ci, co) = self.c_inv;
        let (cni, cno) = self.c_nand;
        let nor_in = self.c_nor.0;
        let nn = self.num_nor as f64;
        let mut e = (ci + cni * 2.0) * v2 * ((n / 2) * 2) as f64;
        e += (ci + nor_in * nn / 2.0) * v2 * (n - (n / 2) * 2) as f64;
        e += (cno + nor_in * nn / 4.0) * v2 * self.num_nand as f64 / 4.0;
        e += if self.mux {
            (self.c_nor.1 + cni) * v2
        } else {
            (self.c_nor.1 + ci) * v2
        };
        if self.mux {
            e += (cno + ci) * v2 + (co + ci) * v2 + co * v2;
        } else {
            e += (self.c_drv.0 + self.c_drv.1) * v2 * 2.0;
        }
        e
    }
}

/// `WLDecoderOutput`: per row a NOR2, an INV, a transmission gate and an NMOS, packed in columns
/// beside the array.
#[derive(Clone, Debug)]
pub struct WlDecoderOutput {
    num_rows: usize,
    /// Layout.
    pub fp: Footprint,
    w_nor_p: f64,
    res_tg: f64,
    /// NOR2 (input, output) capacitance in F.
    pub c_nor: (f64, f64),
    c_inv: (f64, f64),
    c_tg_gate_n: f64,
    c_tg_gate_p: f64,
    c_tg_drain: f64,
    c_nmos: (f64, f64),
}

impl WlDecoderOutput {
    /// `Initialize(num_rows)` + `CalculateArea(height, –, NONE)`.
    pub fn new(t: &Technology, num_rows: usize, height: f64) -> Self {
        let f = t.f();
        let pn = t.pn_size_ratio;
        let m = MIN_NMOS_SIZE * f;
        let (nor, inv, tg, nmos) = ((m, 2.0 * pn * m), (m, pn * m), (m, pn * m), m);
        let hc = MAX_TRANSISTOR_HEIGHT * f;
        let (h_nor, w_nor) = gate_area(Gate::Nor, 2, nor.0, nor.1, hc, t);
        let (h_inv, w_inv) = gate_area(Gate::Inv, 1, inv.0, inv.1, hc, t);
        let (h_nmos, w_nmos) = gate_area(Gate::Inv, 1, nmos, 0.0, hc, t);
        let mut tg_h = height / num_rows as f64;
        if tg_h < hc {
            let cols = (hc / tg_h).ceil();
            tg_h = height / (num_rows as f64 / cols).ceil();
        }
        let (h_tg, w_tg) = gate_area(Gate::Inv, 1, tg.0, tg.1, tg_h, t);
        let h_unit = h_inv.max(h_nor).max(h_nmos.max(h_tg));
        let per_col = (height / h_unit) as usize;
        let cols = lines(num_rows, per_col);
        let fp = Footprint {
            height,
            width: (w_nor + w_inv + w_nmos + w_tg) * cols as f64,
        };
        let res_tg =
            1.0 / (1.0 / on_resistance(tg.0, Mos::N, t) + 1.0 / on_resistance(tg.1, Mos::P, t));
        WlDecoderOutput {
            num_rows,
            fp,
            w_nor_p: nor.1,
            res_tg,
            c_nor: gate_caps(Gate::Nor, 2, nor.0, nor.1, h_nor, t),
            c_inv: gate_caps(Gate::Inv, 1, inv.0, inv.1, h_inv, t),
            c_tg_gate_n: gate_cap(tg.0, t),
            c_tg_gate_p: gate_cap(tg.1, t),
            c_tg_drain: gate_caps(Gate::Inv, 1, tg.0, tg.1, h_tg, t).1,
            c_nmos: gate_caps(Gate::Inv, 1, nmos, 0.0, h_nmos, t),
        }
    }

    /// `CalculateLatency` of one row select in s: NOR2 pull-up, then the TG charging the word
    /// line (`cap_load` F through `res_load` Ω).
    pub fn latency(&self, t: &Technology, ramp_in: f64, cap_load: f64, res_load: f64) -> f64 {
        let r = on_resistance(self.w_nor_p, Mos::P, t) * 2.0;
        let tr = r * (self.c_nor.1 + self.c_inv.0 + self.c_tg_gate_p + self.c_nmos.0);
        let (d1, _) = horowitz(tr, ramp_in);
        let tr =
            self.res_tg * (self.c_tg_drain + self.c_nmos.1 + cap_load) + res_load * cap_load / 2.0;
        let (d2, _) = horowitz(tr, 1e20);
        d1 + d2
    }

    /// Read energy of one operation in J (all rows' NOR inputs, N−1 drivers; `v_access` is the
    /// 1T1R gate voltage).
    pub fn read_energy(&self, t: &Technology, v_access: f64) -> f64 {
        let v2 = t.vdd_v * t.vdd_v;
        let n = self.num_rows as f64;
        self.c_nor.0 * v2 * n
            + (self.c_inv.1 + self.c_tg_gate_n) * v2 * (n - 1.0)
            + self.c_tg_drain * v_access * v_access * (n - 1.0)
    }

    /// Write energy of one row select in J.
    pub fn write_energy(&self, t: &Technology, v_access: f64) -> f64 {
        let v2 = t.vdd_v * t.vdd_v;
        self.c_nor.0 * v2
            + (self.c_inv.1 + self.c_tg_gate_n) * v2
            + self.c_tg_drain * v_access * v_access
    }
}

/// `DFF`: 12 minimum inverter cells per flip-flop.
#[derive(Clone, Debug)]
pub struct Dff {
    num: usize,
    /// Layout.
    pub fp: Footprint,
    c_inv: (f64, f64),
    c_tg_gate: f64,
    /// TG drain capacitance in F.
    pub c_tg_drain: f64,
}

/// Where a block is packed: along a given height (columns) or a given width (rows).
#[derive(Clone, Copy, Debug)]
pub enum Side {
    /// Columns of the given height (m).
    Height(f64),
    /// Rows of the given width (m).
    Width(f64),
    /// The block's own default shape.
    Free,
}

impl Dff {
    /// `Initialize(num)` + `CalculateArea`.
    pub fn new(t: &Technology, num: usize, side: Side) -> Self {
        let f = t.f();
        let m = MIN_NMOS_SIZE * f;
        let w = (m, t.pn_size_ratio * m);
        let (h_inv, w_inv) = gate_area(Gate::Inv, 1, w.0, w.1, MAX_TRANSISTOR_HEIGHT * f, t);
        let (h, wd) = (h_inv, w_inv * 12.0);
        let fp = match side {
            Side::Height(hh) if hh > 0.0 => Footprint {
                height: hh,
                width: wd * lines(num, per_line(hh, h, num)) as f64,
            },
            Side::Width(ww) if ww > 0.0 => Footprint {
                height: h * lines(num, per_line(ww, wd, num)) as f64,
                width: ww,
            },
            _ => Footprint {
                height: h,
                width: wd * num as f64,
            },
        };
        Dff {
            num,
            fp,
            c_inv: gate_caps(Gate::Inv, 1, w.0, w.1, h_inv, t),
            c_tg_gate: gate_cap(w.0, t) + gate_cap(w.1, t),
            c_tg_drain: gate_caps(Gate::Inv, 1, w.0, w.1, h_inv, t).1,
        }
    }

    /// `CalculateLatency`: half a clock period in s (`clk_hz`).
    pub fn latency(clk_hz: f64) -> f64 {
        1.0 / clk_hz / 2.0
    }

    /// `CalculatePower(1, per_op)`: dynamic energy in J of one clock with `per_op` DFFs passing
    /// data.
    pub fn energy(&self, t: &Technology, per_op: f64) -> f64 {
        let v2 = t.vdd_v * t.vdd_v;
        let n = self.num as f64;
        let (ci, co) = self.c_inv;
        let sel = per_op.min(n);
        (ci + co) * v2 * 4.0 * n
            + self.c_tg_gate * v2 * 2.0 * n
            + (self.c_tg_drain * 3.0 + ci) * v2 * sel
            + (self.c_tg_drain + co) * v2 * sel
            + (ci + co) * v2 * sel
    }
}

/// `SwitchMatrix` mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchMode {
    /// `ROW_MODE`: drives rows (the 1T1R bit lines).
    Row,
    /// `COL_MODE`: drives columns (the 1T1R source lines).
    Col,
}

/// `SwitchMatrix`: a transmission-gate pair and a DFF per line.
#[derive(Clone, Debug)]
pub struct SwitchMatrix {
    mode: SwitchMode,
    num: usize,
    /// On resistance of a TG in Ω.
    pub res_tg: f64,
    /// The DFFs.
    pub dff: Dff,
    /// Layout (TGs and DFFs).
    pub fp: Footprint,
    c_tg_gate: f64,
    c_tg_drain: f64,
}

impl SwitchMatrix {
    /// `Initialize(mode, num, res_tg)` + `CalculateArea` along the array's height (row mode) or
    /// width (column mode).
    pub fn new(t: &Technology, mode: SwitchMode, num: usize, res_tg: f64, side: f64) -> Self {
        let f = t.f();
        let wn = on_resistance(f, Mos::N, t) * f / (res_tg * 2.0);
        let wp = on_resistance(f, Mos::P, t) * f / (res_tg * 2.0);
        let (h_tg, fp, dff) = match mode {
            SwitchMode::Row => {
                let hc = MAX_TRANSISTOR_HEIGHT * f;
                let per = (side / hc) as usize;
                let cols = lines(num, per);
                let per = num.div_ceil(cols);
                let tg_h = side / per as f64;
                let (h_tg, w_tg) = gate_area(Gate::Inv, 1, wn, wp, tg_h, t);
                let dff = Dff::new(t, num, Side::Height(side));
                let fp = Footprint {
                    height: side,
                    width: w_tg * 2.0 * cols as f64 + dff.fp.width,
                };
                (h_tg, fp, dff)
            }
            SwitchMode::Col => {
                let min_w = 2.0 * (POLY_WIDTH + MIN_GAP_BET_GATE_POLY) * f;
                let per = (side / (min_w * 2.0)) as usize;
                let rows = lines(num, per);
                let per = num.div_ceil(rows);
                let tg_w = side / per as f64 / 2.0;
                let fold = (tg_w / (0.5 * min_w)) as i64 - 1;
                let (h_tg, _) = pass_gate_area(wn, wp, fold, t);
                let dff = Dff::new(t, num, Side::Width(side));
                let fp = Footprint {
                    height: h_tg * rows as f64 + dff.fp.height,
                    width: side,
                };
                (h_tg, fp, dff)
            }
        };
        SwitchMatrix {
            mode,
            num,
            res_tg,
            dff,
            fp,
            c_tg_gate: gate_cap(wn, t) + gate_cap(wp, t),
            c_tg_drain: gate_caps(Gate::Inv, 1, wn, wp, h_tg, t).1,
        }
    }

    /// `CalculateLatency` of one read in s: the TG charging `cap_load` through `res_load`, plus
    /// the DFF's half clock.
    pub fn read_latency(&self, ramp_in: f64, cap_load: f64, res_load: f64, clk_hz: f64) -> f64 {
        let tr = self.res_tg * (self.c_tg_drain * 3.0 + cap_load) + res_load * cap_load / 2.0;
        horowitz(tr, ramp_in).0 + Dff::latency(clk_hz)
    }

    /// `CalculatePower(1, –)` read energy in J with NeuroSim's `activityRowRead` (`activity`,
    /// fixed at 0.5 when the switch matrix is initialized) and read voltage `v_read`.
    pub fn read_energy(&self, t: &Technology, activity: f64, v_read: f64) -> f64 {
        let n = self.num as f64;
        let mut e = 0.0;
        if self.mode == SwitchMode::Row {
            e += self.c_tg_drain * 3.0 * v_read * v_read * n * activity;
            e += self.c_tg_gate * t.vdd_v * t.vdd_v * n * activity;
        }
        e + self.dff.energy(t, n)
    }

    /// `CalculatePower(1, num_write)` write energy in J for a 1T1R array: row mode switches the
    /// selected row (LTP and LTD); column mode charges the selected columns `pulses` times and
    /// the unselected ones once per write operation. `cells_per_op` is
    /// `numWriteCellPerOperationNeuro`, `activity` the init-time `activityColWrite` (0.5),
    /// `v_write` NeuroSim's √(V_LTP² + V_LTD²).
    pub fn write_energy(
        &self,
        t: &Technology,
        num_write: f64,
        pulses: f64,
        cells_per_op: f64,
        activity: f64,
        v_write: f64,
    ) -> f64 {
        let v2 = t.vdd_v * t.vdd_v;
        let n = self.num as f64;
        let e = match self.mode {
            SwitchMode::Row => self.c_tg_gate * v2 * 2.0,
            SwitchMode::Col => {
                let sel = cells_per_op.min(n * activity);
                let cw = self.c_tg_drain * 3.0 * v_write * v_write;
                cw * pulses * sel / 2.0
                    + cw * (n - sel / 2.0)
                    + cw * pulses * sel / 2.0
                    + self.c_tg_gate * v2 * n
            }
        };
        e * num_write + self.dff.energy(t, n)
    }
}

/// `Mux`: analog (sized by a target resistance, pass gates packed along the array width) or
/// digital (minimum transmission gates).
#[derive(Clone, Debug)]
pub struct Mux {
    num_input: usize,
    /// On resistance of a TG in Ω.
    pub res_tg: f64,
    /// Layout.
    pub fp: Footprint,
    /// NMOS gate capacitance of one TG in F.
    pub c_tg_gate_n: f64,
    /// PMOS gate capacitance of one TG in F.
    pub c_tg_gate_p: f64,
    /// Drain capacitance of one TG in F.
    pub c_tg_drain: f64,
}

impl Mux {
    /// The analog mux of a sub-array: `Initialize(num_input, num_sel, res_tg, false)`, then
    /// `CalculateArea(–, width, NONE)`; the caller overrides the height (see `SubArray`).
    pub fn analog(
        t: &Technology,
        num_input: usize,
        num_sel: usize,
        res_tg: f64,
        width: f64,
    ) -> Self {
        let f = t.f();
        let wn = on_resistance(f, Mos::N, t) * f / (res_tg * 2.0);
        let wp = on_resistance(f, Mos::P, t) * f / (res_tg * 2.0);
        let num_tg = num_input * num_sel;
        let min_w = 2.0 * (POLY_WIDTH + MIN_GAP_BET_GATE_POLY) * f;
        let per = (width / min_w) as usize;
        let rows = lines(num_tg, per);
        let per = num_tg.div_ceil(rows);
        let tg_w = width / per as f64;
        let fold = (tg_w / (0.5 * min_w)) as i64 - 1;
        let (h_tg, _) = pass_gate_area(wn, wp, fold, t);
        // The final OVERRIDE call recomputes the pass gate unfolded before the capacitances.
        let (h_tg1, _) = pass_gate_area(wn, wp, 1, t);
        Mux {
            num_input,
            res_tg,
            fp: Footprint {
                height: h_tg * rows as f64,
                width,
            },
            c_tg_gate_n: gate_cap(wn, t),
            c_tg_gate_p: gate_cap(wp, t),
            c_tg_drain: gate_caps(Gate::Inv, 1, wn, wp, h_tg1, t).1,
        }
    }

    /// The neuron's digital mux: `Initialize(num_input, num_sel, –, true)` +
    /// `CalculateArea(–, width, NONE)`.
    pub fn digital(t: &Technology, num_input: usize, num_sel: usize, width: f64) -> Self {
        let f = t.f();
        let m = MIN_NMOS_SIZE * f;
        let (wn, wp) = (m, t.pn_size_ratio * m);
        let res_tg =
            1.0 / (1.0 / on_resistance(wn, Mos::N, t) + 1.0 / on_resistance(wp, Mos::P, t));
        let (h_tg, w_tg) = gate_area(Gate::Inv, 1, wn, wp, MAX_TRANSISTOR_HEIGHT * f, t);
        let num_tg = num_input * num_sel;
        let rows = lines(num_tg, per_line(width, w_tg, num_tg));
        Mux {
            num_input,
            res_tg,
            fp: Footprint {
                height: h_tg * rows as f64,
                width,
            },
            c_tg_gate_n: gate_cap(wn, t),
            c_tg_gate_p: gate_cap(wp, t),
            c_tg_drain: gate_caps(Gate::Inv, 1, wn, wp, h_tg, t).1,
        }
    }

    /// `CalculateLatency` in s: 2.3 · 2R_TG · (C_drain + ½C_gN + ½C_gP + `cap_load`).
    pub fn latency(&self, cap_load: f64) -> f64 {
        2.3 * self.res_tg
            * 2.0
            * (self.c_tg_drain + 0.5 * self.c_tg_gate_n + 0.5 * self.c_tg_gate_p + cap_load)
    }

    /// `CalculatePower(1)` read energy in J: the selected pass gates' gates.
    pub fn energy(&self, t: &Technology) -> f64 {
        (self.c_tg_gate_n + self.c_tg_gate_p) * self.num_input as f64 * t.vdd_v * t.vdd_v
    }
}

/// `ReadCircuit` in CMOS mode: the integrate-and-fire neuron with `max_int_bit` counter DFFs.
#[derive(Clone, Debug)]
pub struct ReadCircuit {
    num_col: usize,
    /// Layout.
    pub fp: Footprint,
    /// TG drain capacitance at the input in F.
    pub c_tg_drain: f64,
    /// PMOS gate capacitance at the input in F.
    pub c_pmos_gate: f64,
    /// Integration threshold in V (0.2 × read voltage).
    pub v_int_threshold: f64,
    /// Counts per read (2^max_int_bit).
    pub max_num_int: f64,
}

/// `ReadCircuit::CalculatePower`'s dynamic energy per column per read in CMOS mode, in J: a
/// 65 nm SPICE value NeuroSim imports unscaled.
pub const READ_CIRCUIT_ENERGY_J: f64 = 1.346e-12;

impl ReadCircuit {
    /// `Initialize(CMOS, num_col, max_int_bit, NONSPIKING)`, `CalculateUnitArea`,
    /// `CalculateArea(width)`. The body's TG drain is taken unfolded: NeuroSim computes it with an
    /// uninitialised cell height (its `CalculateGateArea` calls are commented out).
    pub fn new(t: &Technology, num_col: usize, max_int_bit: u32, v_read: f64, width: f64) -> Self {
        let f = t.f();
        let h_body = MAX_TRANSISTOR_HEIGHT * f;
        let w_body = 20.0 * (POLY_WIDTH + MIN_GAP_BET_GATE_POLY) * f;
        let m = MIN_NMOS_SIZE * f;
        let (h_min, w_min) = gate_area(
            Gate::Inv,
            1,
            m,
            t.pn_size_ratio * m,
            MAX_TRANSISTOR_HEIGHT * f,
            t,
        );
        let (h_dff, w_dff) = (h_min, w_min * 12.0);
        let h_unit = h_body + h_dff * f64::from(max_int_bit);
        let w_unit = w_body.max(w_dff);
        let rows = lines(num_col, per_line(width, w_unit, num_col));
        let w_tg = 33.33 * f;
        ReadCircuit {
            num_col,
            fp: Footprint {
                height: h_unit * rows as f64,
                width,
            },
            c_tg_drain: gate_caps(Gate::Inv, 1, w_tg, w_tg, f64::INFINITY, t).1,
            c_pmos_gate: gate_cap(3.33 * f, t),
            v_int_threshold: v_read * RATIO_READ_THRESHOLD_VS_VOLTAGE,
            max_num_int: 2f64.powi(max_int_bit as i32),
        }
    }

    /// Read energy in J of one read (all columns).
    pub fn energy(&self) -> f64 {
        READ_CIRCUIT_ENERGY_J * self.num_col as f64
    }
}
