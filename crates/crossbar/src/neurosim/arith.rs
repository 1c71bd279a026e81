//! NeuroSim's arithmetic blocks: `Subtractor` (`NeuroSim/Subtractor.cpp`) and `Adder`
//! (`NeuroSim/Adder.cpp`), with `Initialize` (`new`), `CalculateArea` (row packing along a
//! width), `CalculateLatency` and `CalculatePower` (dynamic energy). Lengths in m, capacitances
//! in F, times in s, energies in J.

use super::components::{Footprint, lines, per_line};
use super::formula::{Gate, Mos, gate_area, gate_caps, horowitz, on_resistance};
use super::tech::{MAX_TRANSISTOR_HEIGHT, MIN_NMOS_SIZE, Technology};

/// `Subtractor`: per bit 10 NAND2 + NOR2 + INV; packed in rows along a width.
#[derive(Clone, Debug)]
pub struct Subtractor {
    num_bit: u32,
    num: usize,
    /// Layout.
    pub fp: Footprint,
    w_nand: (f64, f64),
    w_nor_n: f64,
    w_inv_p: f64,
    c_nand: (f64, f64),
    c_nor: (f64, f64),
    c_inv: (f64, f64),
}

impl Subtractor {
    /// `Initialize(num_bit, num)` + `CalculateArea(–, width, NONE)`.
    pub fn new(t: &Technology, num_bit: u32, num: usize, width: f64) -> Self {
        let f = t.f();
        let pn = t.pn_size_ratio;
        let m = MIN_NMOS_SIZE * f;
        let (nand, inv, nor) = ((2.0 * m, pn * m), (m, pn * m), (m, 2.0 * pn * m));
        let hc = MAX_TRANSISTOR_HEIGHT * f;
        let (h_nand, w_nand) = gate_area(Gate::Nand, 2, nand.0, nand.1, hc, t);
        let (h_inv, w_inv) = gate_area(Gate::Inv, 1, inv.0, inv.1, hc, t);
        let (h_nor, w_nor) = gate_area(Gate::Nor, 2, nor.0, nor.1, hc, t);
        let h_sub = h_nand.max(h_nor) * f64::from(num_bit);
        let w_sub = w_nand * 10.0 + w_nor + w_inv;
        let rows = lines(num, per_line(width, w_sub, num));
        Subtractor {
            num_bit,
            num,
            fp: Footprint {
                height: h_sub * rows as f64,
                width,
            },
            w_nand: nand,
            w_nor_n: nor.0,
            w_inv_p: inv.1,
            c_nand: gate_caps(Gate::Nand, 2, nand.0, nand.1, h_nand, t),
            c_nor: gate_caps(Gate::Nor, 2, nor.0, nor.1, h_nor, t),
            c_inv: gate_caps(Gate::Inv, 1, inv.0, inv.1, h_inv, t),
        }
    }

    /// `CalculateLatency(ramp_in, cap_load, 1)` in s: the 8-stage borrow path, times the bits.
    pub fn latency(&self, t: &Technology, ramp_in: f64, cap_load: f64) -> f64 {
        let (cni, cno) = self.c_nand;
        let rp = on_resistance(self.w_nand.1, Mos::P, t);
        let rn = on_resistance(self.w_nand.0, Mos::N, t) * 2.0;
        let taus = [
            rp * (cno + cni * 2.0),
            rn * (cno + cni * 2.0),
            rp * (cno + cni * 2.0),
            rn * (cno + cni * 2.0),
            rp * (cno + cni * 2.0),
            rn * (cno + self.c_nor.0),
            on_resistance(self.w_nor_n, Mos::N, t) * (self.c_nor.1 + self.c_inv.0),
            on_resistance(self.w_inv_p, Mos::P, t) * (self.c_inv.1 + cap_load),
        ];
        let mut ramp = ramp_in;
        let mut lat = 0.0;
        for tr in taus {
            let (d, r) = horowitz(tr, ramp);
            lat += d;
            ramp = r;
        }
        lat * f64::from(self.num_bit)
    }

    /// `CalculatePower(1, per_op)` dynamic energy in J.
    pub fn energy(&self, t: &Technology, per_op: f64) -> f64 {
        let v2 = t.vdd_v * t.vdd_v;
        let b = f64::from(self.num_bit);
        let (cni, cno) = self.c_nand;
        let mut e = cni * 4.0 * v2 * b + self.c_inv.1 * v2 * b;
        e += (cno + cni * 2.0) * v2
            + (cno + cni) * v2
            + (cno + cni * 2.0) * v2
            + (cno + cni) * v2
            + (cno + cni * 3.0) * v2
            + (cno + self.c_nor.0) * v2;
        e *= b - 1.0;
        e * per_op.min(self.num as f64)
    }
}

/// `Adder`: a ripple-carry adder of 9 NAND2 per bit, packed in rows along a width.
#[derive(Clone, Debug)]
pub struct Adder {
    num_bit: u32,
    num: usize,
    /// Layout.
    pub fp: Footprint,
    w_nand: (f64, f64),
    c_nand: (f64, f64),
}

impl Adder {
    /// `Initialize(num_bit, num)` + `CalculateArea(–, width, NONE)`.
    pub fn new(t: &Technology, num_bit: u32, num: usize, width: f64) -> Self {
        let f = t.f();
        let m = MIN_NMOS_SIZE * f;
        let nand = (2.0 * m, t.pn_size_ratio * m);
        let (h_nand, w_nand) =
            gate_area(Gate::Nand, 2, nand.0, nand.1, MAX_TRANSISTOR_HEIGHT * f, t);
        let rows = lines(num, per_line(width, w_nand * 9.0, num));
        Adder {
            num_bit,
            num,
            fp: Footprint {
                height: h_nand * f64::from(num_bit) * rows as f64,
                width,
            },
            w_nand: nand,
            c_nand: gate_caps(Gate::Nand, 2, nand.0, nand.1, h_nand, t),
        }
    }

    /// `CalculateLatency(ramp_in, cap_load, 1)` in s: (delay, output ramp).
    pub fn latency(&self, t: &Technology, ramp_in: f64, cap_load: f64) -> (f64, f64) {
        let (cni, cno) = self.c_nand;
        let rn = on_resistance(self.w_nand.0, Mos::N, t) * 2.0;
        let rp = on_resistance(self.w_nand.1, Mos::P, t);
        let (d1, r1) = horowitz(rn * (cno + cni * 3.0), ramp_in);
        let (d2, r2) = horowitz(rp * (cno + cni * 2.0), r1);
        let (d3, r3) = horowitz(rn * (cno + cni * 3.0), r2);
        let (d4, r4) = horowitz(rp * (cno + cni * 2.0), r3);
        let mut lat = d1 + d2;
        if self.num_bit > 2 {
            lat += (d3 + d4) * f64::from(self.num_bit - 2);
        }
        let (d5, r5) = horowitz(rn * (cno + cni * 3.0), r4);
        let (d6, r6) = horowitz(rp * (cno + cni), r5);
        let (d7, r7) = horowitz(rn * (cno + cap_load), r6);
        (lat + d5 + d6 + d7, r7)
    }

    /// `CalculatePower(1, per_op)` dynamic energy in J.
    pub fn energy(&self, t: &Technology, per_op: f64) -> f64 {
        let v2 = t.vdd_v * t.vdd_v;
        let k = f64::from(self.num_bit) - 1.0;
        let (ci, co) = self.c_nand;
        let mut e = ci * 6.0 * v2 + co * 2.0 * v2;
        e += ci * 7.0 * v2 * k + co * 3.0 * v2 * k;
        e += (co + ci) * v2 * 2.0 + (co + ci * 2.0) * v2 + (co + ci * 3.0) * v2 + (co + ci) * v2;
        e += (co + ci * 3.0) * v2 * k + (co + ci) * v2 * k + (co + ci) * v2 * 2.0 * k;
        e * per_op.min(self.num as f64)
    }
}
