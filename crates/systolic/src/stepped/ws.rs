//! The weight-stationary dataflow of [`SystolicSim`]: weights stay in the PEs (loaded row by
//! row, through the shadow registers with `double_buffer`), inputs hop right, partial sums hop
//! down, and the bottom used row hands its sums to the accumulator buffer.

use multiversion::multiversion;

use super::{EMPTY, SystolicSim, prod, wrap};
use crate::config::Overflow;
use crate::tiling::Tile;
use crate::timing::compute_cycles;

impl SystolicSim<'_> {
    /// One WS cycle. `ended` receives the compute (slot 0) and load (slot 1) that finish in it.
    pub(super) fn step_ws(&mut self, now: u64, ended: &mut [Option<(Tile, u64, bool)>; 2]) {
        let db = self.cfg.double_buffer;
        // Start of the cycle: a loaded tile starts computing (its weights swap in).
        if self.compute.is_none()
            && let Some(t) = self.ready.take()
        {
            if db {
                self.swap_in_weights(&t);
            }
            self.clear_moving(&t);
            self.compute = Some((t, 0, now));
        }
        // The next load may start once its target registers are free.
        if self.xfer.is_none()
            && self.ready.is_none()
            && self.next_load < self.tiling.len()
            && (db || self.compute.is_none())
        {
            self.xfer = Some((self.tiling.tile(self.next_load), 0, now));
            self.next_load += 1;
        }
        if let Some((t, r, start)) = self.xfer {
            // Write one row of weights: PE row r holds fan-in k0 + r, column j output n0 + j.
            let row = r * self.cfg.cols;
            for j in 0..t.cols_used {
                let v = self.w[[t.col0 + j, t.row0 + r]];
                let target = if db {
                    &mut self.weight_shadow
                } else {
                    &mut self.weight
                };
                target[row + j] = i16::from(v);
            }
            let nc = t.cols_used as u64;
            self.tally.weight_reads += nc;
            self.tally.weight_loads += nc;
            if r + 1 == t.rows_used {
                self.xfer = None;
                self.ready = Some(t);
                ended[1] = Some((t, start, true));
            } else {
                self.xfer = Some((t, r + 1, start));
            }
        }
        if let Some((t, tau, start)) = self.compute {
            self.compute_ws(&t, tau);
            if tau + 1 == compute_cycles(&t, self.stream) as usize {
                self.compute = None;
                self.next_compute += 1;
                ended[0] = Some((t, start, false));
            } else {
                self.compute = Some((t, tau + 1, start));
            }
        }
    }

    fn swap_in_weights(&mut self, t: &Tile) {
        let c = self.cfg.cols;
        for r in 0..t.rows_used {
            let s = r * c..r * c + t.cols_used;
            self.weight[s.clone()].copy_from_slice(&self.weight_shadow[s]);
        }
    }

    /// Cycle `tau` of a WS tile: inputs hop right, partial sums hop down, the bottom row's sums
    /// go to the accumulator buffer.
    fn compute_ws(&mut self, t: &Tile, tau: usize) {
        compute_ws_simd(self, t, tau);
    }

    #[inline(always)]
    fn compute_ws_any(&mut self, t: &Tile, tau: usize) {
        match self.acc.overflow() {
            Overflow::Wrap => {
                let shift = 32 - self.acc.bits();
                self.compute_ws_rows(t, tau, move |a, b| wrap(a, b, shift));
            }
            Overflow::Saturate => {
                let acc = self.acc;
                self.compute_ws_rows(t, tau, move |a, b| acc.add(a, b));
            }
        }
    }

    /// Rows bottom-up, so each row reads the partial sums of the row above from the previous
    /// cycle before that row overwrites them.
    #[inline(always)]
    fn compute_ws_rows(&mut self, t: &Tile, tau: usize, add: impl Fn(i32, i32) -> i32 + Copy) {
        let (c, a, nc) = (self.cfg.cols, t.rows_used, t.cols_used);
        let physical_row0 = self.cfg.rows - a;
        // The left edge of every row first (x[m, k0 + r] enters row r in cycle m + r).
        for r in 0..a {
            self.x_reg[r * (c + 1)] = match tau.checked_sub(r) {
                Some(m) if m < self.stream => {
                    self.tally.input_reads += 1;
                    i16::from(self.x[[m, t.row0 + r]])
                }
                _ => EMPTY,
            };
        }
        for r in (0..a).rev() {
            let (row, xs) = (r * c, r * (c + 1));
            let (above, here) = self.psum.split_at_mut(row);
            let above = (r > 0).then(|| &above[row - c..row - c + nc]);
            let valid = ws_row(
                add,
                above,
                &self.weight[row..row + nc],
                &self.x_reg[xs..xs + nc],
                &mut self.x_next[xs + 1..xs + 1 + nc],
                &mut here[..nc],
            );
            self.tally.macs += u64::from(valid);
            if valid > 0 {
                if let Some(tr) = &mut self.trace {
                    tr.row_busy[physical_row0 + r] = true;
                }
                if r + 1 == a {
                    self.emit_ws(t, tau);
                }
            }
        }
        std::mem::swap(&mut self.x_reg, &mut self.x_next);
    }

    /// Hands the valid sums of the bottom used row to the accumulator buffer.
    fn emit_ws(&mut self, t: &Tile, tau: usize) {
        let (c, a) = (self.cfg.cols, t.rows_used);
        let row = (a - 1) * c;
        for j in 0..t.cols_used {
            if self.x_next[(a - 1) * (c + 1) + 1 + j] == EMPTY {
                continue;
            }
            let m = tau - (a - 1) - j;
            let sum = self.psum[row + j];
            let y = &mut self.y[[m, t.col0 + j]];
            if !t.first_in_block {
                self.tally.psum_reads += 1;
                *y = self.acc.add(*y, sum);
            } else {
                *y = sum;
            }
            if t.last_in_block {
                self.tally.output_writes += 1;
                self.tally.requants += 1;
            } else {
                self.tally.psum_writes += 1;
            }
            self.out_valid = true;
        }
    }
}

/// One WS row of PEs in one cycle. Inputs hop right (`x_new[j] = x_old[j]`, where `x_old` is
/// the row's edge slot and registers, see `SystolicSim::x_reg`); each PE adds its product to
/// the partial sum from the PE above (`above`, or 0 for the top row) into `sum`. PEs without an
/// input compute garbage that is never read: the PE below is empty in the next cycle too.
/// Returns the MACs done (PEs holding an input); rows are at most 4096 wide, so 16 bits count
/// them (and the count vectorizes 16 lanes wide).
#[inline(always)]
fn ws_row(
    add: impl Fn(i32, i32) -> i32,
    above: Option<&[i32]>,
    w: &[i16],
    x_old: &[i16],
    x_new: &mut [i16],
    sum: &mut [i32],
) -> u16 {
    let mut valid = 0u16;
    let lanes = x_new.iter_mut().zip(x_old).zip(w).zip(sum.iter_mut());
    match above {
        Some(above) => {
            for ((((xn, &x), &w), s), &a) in lanes.zip(above) {
                *xn = x;
                valid += u16::from(x != EMPTY);
                *s = add(a, prod(x, w));
            }
        }
        None => {
            for (((xn, &x), &w), s) in lanes {
                *xn = x;
                valid += u16::from(x != EMPTY);
                *s = add(0, prod(x, w));
            }
        }
    }
    valid
}

/// `compute_ws_any` for the widest instruction set the CPU has, chosen at run time by
/// [`multiversion`]: AVX2 (the row loops vectorize 16 `i16` lanes wide) or the baseline. Integer
/// arithmetic only, so every path gives the same bits.
#[multiversion(targets("x86_64+avx2"))]
fn compute_ws_simd<'a>(sim: &mut SystolicSim<'a>, t: &Tile, tau: usize) {
    sim.compute_ws_any(t, tau);
}
