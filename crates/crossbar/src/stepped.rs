//! The cycle-stepped model of a layer's read pipeline (timing layer).
//!
//! One *item* is one read of the arrays: input slice `s` of a group of up to `replication`
//! input rows (the replicas read their rows together). Items go through three stages:
//!
//! 1. **read**: DAC settle + integration, `read` cycles ([`timing::read_cycles`]); the TIA
//!    holds its output until the sample-and-hold can take it;
//! 2. **ADC**: the sample-and-hold keeps the value while the shared ADCs convert the columns,
//!    `adc` cycles ([`timing::adc_cycles`]); without sample-and-hold the next read waits for
//!    the conversion to finish;
//! 3. **digital tail**: shift-and-add and the adder tree over row tiles
//!    ([`timing::tail_cycles`]), pipelined.
//!
//! Writing `start_k`, `deposit_k` (read done and S&H free) and `end_k` (conversion done):
//! `deposit_k = max(start_k + read, end_{k−1})`, `end_k = deposit_k + adc`,
//! `start_{k+1} = deposit_k` with sample-and-hold and `end_k` without. This gives the
//! closed forms of [`timing`], which the property tests check against this model.
//!
//! When an item's conversion completes, its rows' ADC codes for that slice are computed with
//! the same kernel as [`ProgrammedLayer::run`] (one row at a time, same noise keys), so the
//! outputs are equal, and its actions are counted.
//!
//! # Trace signals (scope `crossbar`)
//!
//! | signal | width | meaning in cycle `c` |
//! |---|---|---|
//! | `read` | 1 | the arrays are integrating |
//! | `adc` | 1 | the ADCs are converting |
//! | `item` | 32 | index of the item being read (holds the last one) |
//! | `slice` | 8 | its input slice |
//! | `out_valid` | 1 | an item left the digital tail |
//!
//! Spans: `read <i>` on track `crossbar`, `adc <i>` on `crossbar.adc`.

use std::collections::VecDeque;

use nacsim_core::Counters;
use nacsim_core::trace::{SignalId, TraceSink};
use ndarray::{Array2, ArrayView2, s};

use crate::cost::CrossbarCost;
use crate::datapath::ProgrammedLayer;
use crate::error::Error;
use crate::timing::{self, Geometry};

enum Read {
    Idle,
    Integrating { item: u64, done_at: u64, start: u64 },
    Waiting { item: u64 },
}

struct Signals {
    read: SignalId,
    adc: SignalId,
    item: SignalId,
    slice: SignalId,
    out_valid: SignalId,
}

/// Runs `x` through `layer` on the cycle-stepped pipeline (module docs).
///
/// # Errors
///
/// [`Error::ShapeMismatch`] if `x.ncols()` is not the layer's fan-in.
pub fn run_stepped(
    layer: &ProgrammedLayer,
    x: ArrayView2<i8>,
    first_row: u64,
    sink: &mut dyn TraceSink,
) -> Result<(Array2<i32>, CrossbarCost), Error> {
    let geo = layer.geometry();
    if x.ncols() != geo.fan_in {
        return Err(Error::ShapeMismatch {
            cols: x.ncols(),
            fan_in: geo.fan_in,
        });
    }
    let cfg = layer.config();
    let rows = x.nrows();
    let rep = cfg.replication.max(1);
    let n_slices = geo.slices as u64;
    let n_items = timing::items(cfg, &geo, rows);
    let read_c = timing::read_cycles(cfg);
    let adc_c = timing::adc_cycles(cfg, geo.outputs.min(cfg.outputs_per_array()));
    let tail_c = timing::tail_cycles(geo.row_tiles);
    let one_slice = Geometry { slices: 1, ..geo };

    let sig = sink.enabled().then(|| Signals {
        read: sink.declare_signal("crossbar", "read", 1),
        adc: sink.declare_signal("crossbar", "adc", 1),
        item: sink.declare_signal("crossbar", "item", 32),
        slice: sink.declare_signal("crossbar", "slice", 8),
        out_valid: sink.declare_signal("crossbar", "out_valid", 1),
    });

    let mut acc = Array2::<i64>::zeros((rows, geo.outputs));
    let mut counters = Counters::new();
    for name in timing::COUNTER_NAMES {
        counters.add(name, 0);
    }
    let mut read = Read::Idle;
    let mut held = false;
    let mut adc: Option<(u64, u64, u64)> = None; // item, done_at, start
    let mut tail: VecDeque<u64> = VecDeque::new(); // ready cycles
    let mut next = 0u64;
    let mut done = 0u64;
    let mut t = 0u64;
    let mut last = (false, false, false);
    loop {
        // 1. A conversion completes: compute and count its rows, free the S&H.
        if let Some((item, done_at, start)) = adc
            && done_at == t
        {
            let group = (item / n_slices) as usize;
            let si = (item % n_slices) as usize;
            let r0 = group * rep;
            let r1 = (r0 + rep).min(rows);
            for r in r0..r1 {
                let mut one = Array2::<i64>::zeros((1, geo.outputs));
                layer.accumulate_slice(
                    x.slice(s![r..r + 1, ..]),
                    first_row + r as u64,
                    si,
                    &mut one,
                );
                let mut dst = acc.row_mut(r);
                dst += &one.row(0);
            }
            // Every read counts its actions; the useful MACs count once per row, on its last slice.
            let read_counts = timing::counts(cfg, &one_slice, r1 - r0);
            let last_slice = si + 1 == geo.slices;
            counters.merge(
                &read_counts
                    .iter()
                    .map(|(k, v)| (k, if k == "macs" && !last_slice { 0 } else { v }))
                    .collect(),
            );
            if sink.enabled() {
                sink.span(&format!("adc {item}"), "convert", start, t, "crossbar.adc");
            }
            tail.push_back(t + tail_c);
            adc = None;
            held = false;
        }
        // 2. Integration ends.
        if let Read::Integrating {
            item,
            done_at,
            start,
        } = read
            && done_at == t
        {
            if sink.enabled() {
                sink.span(&format!("read {item}"), "compute", start, t, "crossbar");
            }
            read = Read::Waiting { item };
        }
        // 3. The TIA output moves into the free sample-and-hold; conversion starts.
        if let Read::Waiting { item } = read
            && !held
        {
            held = true;
            adc = Some((item, t + adc_c, t));
            read = Read::Idle;
        }
        // 4. The next read starts.
        if matches!(read, Read::Idle) && next < n_items && (cfg.timing.sample_hold || !held) {
            read = Read::Integrating {
                item: next,
                done_at: t + read_c,
                start: t,
            };
            if let Some(sig) = &sig {
                sink.change(t, sig.item, next);
                sink.change(t, sig.slice, next % n_slices);
            }
            next += 1;
        }
        // 5. The digital tail delivers.
        let mut valid = false;
        while tail.front() == Some(&t) {
            tail.pop_front();
            done += 1;
            valid = true;
        }
        if let Some(sig) = &sig {
            let now = (
                matches!(read, Read::Integrating { .. }),
                adc.is_some(),
                valid,
            );
            if now != last || t == 0 {
                sink.change(t, sig.read, u64::from(now.0));
                sink.change(t, sig.adc, u64::from(now.1));
                sink.change(t, sig.out_valid, u64::from(now.2));
                last = now;
            }
        }
        if done == n_items {
            break;
        }
        t += 1;
    }
    // Output-referred read noise joins each finished row (integer additions commute).
    for r in 0..rows {
        let mut one = acc.slice(s![r..r + 1, ..]).to_owned();
        layer.add_output_noise(x.slice(s![r..r + 1, ..]), first_row + r as u64, &mut one);
        acc.row_mut(r).assign(&one.row(0));
    }
    let energy_pj = crate::cost::energy(cfg, &counters, layer.mean_conductance_s());
    let y = acc.mapv(|v| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32);
    Ok((
        y,
        CrossbarCost {
            cycles: t,
            counters,
            energy_pj,
        },
    ))
}
