//! The cycle-stepped model of the sine MAC datapath: products move one pipeline stage per
//! [`SineSim::tick`], the product is evaluated bit-exactly in the subtract stage and accumulated in
//! the last stage. Timing model and counters: [`timing`](crate::timing).

use std::collections::VecDeque;

use crate::datapath::Datapath;
use crate::product::SineProduct;
use crate::timing::{Tally, TimingReport};

/// One product in flight.
#[derive(Debug, Clone, Copy)]
struct Op {
    output: usize,
    i: i32,
    j: i32,
    /// `P(i, j)`, set in the subtract stage.
    p: i64,
}

/// A cycle-stepped sine MAC datapath running one job of dot products.
#[derive(Debug)]
pub struct SineSim<'a> {
    dp: &'a Datapath,
    /// Products not yet issued, in stream order.
    pending: VecDeque<Op>,
    /// `stages[s]` holds the products in stage `s` (at most `issue_width` each).
    stages: Vec<Vec<Op>>,
    acc: Vec<i64>,
    /// Products still to accumulate, per output.
    remaining: Vec<usize>,
    tally: Tally,
    cycles: u64,
}

impl<'a> SineSim<'a> {
    /// A simulator of the dot products `Σ_k P(a[o][k], b[o][k])` on `dp`.
    ///
    /// # Panics
    ///
    /// If `a` and `b` differ in shape.
    pub fn new(dp: &'a Datapath, a: &[Vec<i32>], b: &[Vec<i32>]) -> Self {
        assert_eq!(a.len(), b.len(), "SineSim: operand counts differ");
        let mut pending = VecDeque::new();
        let mut remaining = Vec::with_capacity(a.len());
        for (o, (x, y)) in a.iter().zip(b).enumerate() {
            assert_eq!(
                x.len(),
                y.len(),
                "SineSim: output {o}: operand lengths differ"
            );
            remaining.push(x.len());
            pending.extend(x.iter().zip(y).map(|(&i, &j)| Op {
                output: o,
                i,
                j,
                p: 0,
            }));
        }
        // Empty dot products are written without entering the pipeline.
        let tally = Tally {
            output_writes: remaining.iter().filter(|&&n| n == 0).count() as u64,
            ..Tally::default()
        };
        SineSim {
            dp,
            pending,
            stages: vec![Vec::new(); dp.depth as usize],
            acc: vec![0; a.len()],
            remaining,
            tally,
            cycles: 0,
        }
    }

    /// Whether every product has been accumulated.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.stages.iter().all(Vec::is_empty)
    }

    /// Cycles simulated so far.
    pub fn cycles(&self) -> u64 {
        self.cycles
    }

    /// Advances one cycle: issue up to `issue_width` products into S0 (two operand reads each),
    /// then every stage does its work on what it holds. A product enters S0 in cycle `t` and is
    /// accumulated in cycle `t + D − 1`.
    pub fn tick(&mut self) {
        if self.is_idle() {
            return;
        }
        let d = self.stages.len();
        // Shift: what was in stage s moves to s + 1 (the last stage's products retired last cycle).
        for s in (1..d).rev() {
            self.stages[s] = std::mem::take(&mut self.stages[s - 1]);
        }
        let n = (self.dp.issue_width as usize).min(self.pending.len());
        self.stages[0] = self.pending.drain(..n).collect();
        let cost = self.dp.cost();
        self.tally.operand_reads += 2 * self.stages[0].len() as u64;
        // The ±, |·| (and CORDIC) stages: the unit's adds, and the table reads, are charged on entry
        // to S1; the value is formed in the subtract stage D − 2.
        if d > 1 {
            let entering = self.stages[1].len() as u64;
            self.tally.adds += entering * cost.adds as u64;
            self.tally.table_reads += entering * cost.table_reads as u64;
        }
        if d > 2 {
            for op in &mut self.stages[d - 2] {
                op.p = self.dp.unit.product(op.i, op.j);
                self.tally.products += 1;
            }
        }
        for op in std::mem::take(&mut self.stages[d - 1]) {
            self.acc[op.output] += op.p;
            self.tally.accumulates += 1;
            self.remaining[op.output] -= 1;
            if self.remaining[op.output] == 0 {
                self.tally.output_writes += 1;
            }
        }
        self.cycles += 1;
    }

    /// The accumulated outputs so far (final once [`SineSim::is_idle`]).
    pub fn outputs(&self) -> &[i64] {
        &self.acc
    }

    /// The report of the run so far.
    pub fn report(&self) -> TimingReport {
        self.tally.report(self.dp.lanes, self.cycles)
    }
}

/// Runs the dot products of `a`, `b` on `dp` to completion: the outputs (at the unit's `F` fraction
/// bits) and the timing report.
///
/// # Panics
///
/// As [`SineSim::new`], or if an operand is outside the unit's range.
pub fn run_stepped(dp: &Datapath, a: &[Vec<i32>], b: &[Vec<i32>]) -> (Vec<i64>, TimingReport) {
    let mut sim = SineSim::new(dp, a, b);
    while !sim.is_idle() {
        sim.tick();
    }
    (sim.outputs().to_vec(), sim.report())
}
