//! The output-stationary dataflow of [`SystolicSim`]: inputs hop right, weights hop down, every
//! PE accumulates its own output, and the sums are read out one row per cycle after the tile
//! (through `out_shadow` with `double_buffer`).

use multiversion::multiversion;

use super::{EMPTY, SystolicSim, prod, wrap};
use crate::config::Overflow;
use crate::tiling::Tile;
use crate::timing::compute_cycles;

impl SystolicSim<'_> {
    /// One OS cycle. `ended` receives the compute (slot 0) and read-out (slot 1) that finish in it.
    pub(super) fn step_os(&mut self, now: u64, ended: &mut [Option<(Tile, u64, bool)>; 2]) {
        let db = self.cfg.double_buffer;
        // Start of the cycle: finished sums go to the read-out if it is free.
        if self.xfer.is_none()
            && let Some(t) = self.ready.take()
        {
            if db {
                let c = self.cfg.cols;
                for r in 0..t.rows_used {
                    let s = r * c..r * c + t.cols_used;
                    self.out_shadow[s.clone()].copy_from_slice(&self.psum[s]);
                }
            } else {
                self.draining_accumulators = true;
            }
            self.xfer = Some((t, 0, now));
        }
        // The next tile starts once the accumulators are free.
        if self.compute.is_none()
            && self.ready.is_none()
            && !self.draining_accumulators
            && self.next_compute < self.tiling.len()
        {
            let t = self.tiling.tile(self.next_compute);
            self.clear_moving(&t);
            self.compute = Some((t, 0, now));
        }
        if let Some((t, r, start)) = self.xfer {
            let row = r * self.cfg.cols;
            let src = if db { &self.out_shadow } else { &self.psum };
            for j in 0..t.cols_used {
                self.y[[t.row0 + r, t.col0 + j]] = src[row + j];
            }
            let nc = t.cols_used as u64;
            self.tally.output_writes += nc;
            self.tally.requants += nc;
            self.out_valid = true;
            if r + 1 == t.rows_used {
                self.xfer = None;
                self.draining_accumulators = false;
                ended[1] = Some((t, start, true));
            } else {
                self.xfer = Some((t, r + 1, start));
            }
        }
        if let Some((t, tau, start)) = self.compute {
            self.compute_os(&t, tau);
            if tau + 1 == compute_cycles(&t, self.stream) as usize {
                self.compute = None;
                self.next_compute += 1;
                self.ready = Some(t);
                ended[0] = Some((t, start, false));
            } else {
                self.compute = Some((t, tau + 1, start));
            }
        }
    }

    /// Cycle `tau` of an OS tile: inputs hop right, weights hop down, every PE holding both adds
    /// their product to its accumulator.
    fn compute_os(&mut self, t: &Tile, tau: usize) {
        compute_os_simd(self, t, tau);
    }

    #[inline(always)]
    fn compute_os_any(&mut self, t: &Tile, tau: usize) {
        match self.acc.overflow() {
            Overflow::Wrap => {
                let shift = 32 - self.acc.bits();
                self.compute_os_rows(t, tau, move |a, b| wrap(a, b, shift));
            }
            Overflow::Saturate => {
                let acc = self.acc;
                self.compute_os_rows(t, tau, move |a, b| acc.add(a, b));
            }
        }
    }

    /// Rows bottom-up, so each row takes the weights of the row above from the previous cycle
    /// before that row overwrites them.
    #[inline(always)]
    fn compute_os_rows(&mut self, t: &Tile, tau: usize, add: impl Fn(i32, i32) -> i32 + Copy) {
        let (c, a, nc) = (self.cfg.cols, t.rows_used, t.cols_used);
        let k = self.stream;
        for (j, e) in self.w_edge[..nc].iter_mut().enumerate() {
            *e = match tau.checked_sub(j) {
                Some(kk) if kk < k => {
                    self.tally.weight_reads += 1;
                    i16::from(self.w[[t.col0 + j, kk]])
                }
                _ => EMPTY,
            };
        }
        for r in 0..a {
            self.x_reg[r * (c + 1)] = match tau.checked_sub(r) {
                Some(kk) if kk < k => {
                    self.tally.input_reads += 1;
                    i16::from(self.x[[t.row0 + r, kk]])
                }
                _ => EMPTY,
            };
        }
        for r in (0..a).rev() {
            let (row, xs) = (r * c, r * (c + 1));
            let (above, here) = self.weight.split_at_mut(row);
            let w_in = if r > 0 {
                &above[row - c..row - c + nc]
            } else {
                &self.w_edge[..nc]
            };
            let valid = os_row(
                add,
                w_in,
                &mut here[..nc],
                &self.x_reg[xs..xs + nc],
                &mut self.x_next[xs + 1..xs + 1 + nc],
                &mut self.psum[row..row + nc],
            );
            self.tally.macs += u64::from(valid);
            if valid > 0
                && let Some(tr) = &mut self.trace
            {
                tr.row_busy[r] = true;
            }
        }
        std::mem::swap(&mut self.x_reg, &mut self.x_next);
    }
}

/// One OS row of PEs in one cycle. Inputs hop right as in [`ws_row`]; weights hop down
/// (`w_out = w_in`, the row above or the top edge); each PE holding both adds their product to
/// its own accumulator `sum`. Returns the MACs done.
#[inline(always)]
fn os_row(
    add: impl Fn(i32, i32) -> i32,
    w_in: &[i16],
    w_out: &mut [i16],
    x_old: &[i16],
    x_new: &mut [i16],
    sum: &mut [i32],
) -> u16 {
    let mut valid = 0u16;
    let lanes = x_new.iter_mut().zip(x_old).zip(w_out.iter_mut().zip(w_in));
    for (((xn, &x), (wo, &w)), s) in lanes.zip(sum.iter_mut()) {
        debug_assert_eq!(x == EMPTY, w == EMPTY, "operands out of step");
        *xn = x;
        *wo = w;
        valid += u16::from(x != EMPTY);
        *s = add(*s, if x == EMPTY { 0 } else { prod(x, w) });
    }
    valid
}

/// `compute_os_any` for the widest instruction set the CPU has, chosen at run time by
/// [`multiversion`]: AVX2 (the row loops vectorize 16 `i16` lanes wide) or the baseline. Integer
/// arithmetic only, so every path gives the same bits.
#[multiversion(targets("x86_64+avx2"))]
fn compute_os_simd<'a>(sim: &mut SystolicSim<'a>, t: &Tile, tau: usize) {
    sim.compute_os_any(t, tau);
}
