//! The memory and overlap model: DRAM transfers double-buffered against compute.
//!
//! Every layer's work is split into *chunks* of DRAM traffic no larger than half the weight
//! buffer (the other half is being filled), in order, across the whole network. Chunk `i` has a
//! transfer time `X_i = latency + ⌈bytes_i / bandwidth⌉` and a compute time `C_i` (its share of
//! the layer's compute cycles, proportional to its bytes and rounded up). With two buffer halves the transfer of
//! chunk `i+1` overlaps the compute of chunk `i`, also across layer boundaries (the next layer's
//! first weights are prefetched while the current layer finishes), so a pass takes
//!
//! ```text
//! T = X_1 + Σ_{i=1}^{n−1} max(C_i, X_{i+1}) + C_n
//! ```
//!
//! and the stall cycles are `T − Σ C_i`. All sums saturate at `u64::MAX` (never wrap), so an
//! impossible design shows up as a saturated count that the reports refuse. A layer with no DRAM traffic (pooling, activations
//! whose tensors stay on chip) is one chunk with `X = 0`. Because the chunking depends only on the
//! bytes and the buffer size, never on the engine, `T` is monotone: more bandwidth never adds
//! cycles and more compute never removes any (both are property-tested).

/// The DRAM traffic and compute of one layer for one pass (one batch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerDemand {
    /// Compute cycles of the layer on its unit, SRAM-bandwidth limits included.
    pub compute_cycles: u64,
    /// Bytes read from DRAM (weights, biases, spilled or first-layer inputs).
    pub dram_read_bytes: u64,
    /// Bytes written to DRAM (spilled or last-layer outputs).
    pub dram_write_bytes: u64,
}

/// Timing of one layer inside the pass schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerTiming {
    /// Cycles attributed to the layer: its compute plus the stalls spent waiting for its data.
    pub cycles: u64,
    /// Cycles the layer's unit waited for DRAM.
    pub stall_cycles: u64,
    /// DRAM transfers (chunks).
    pub chunks: u64,
}

/// The DRAM parameters the schedule needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DramTiming {
    /// Bytes per cycle.
    pub bytes_per_cycle: f64,
    /// Cycles before the first byte of a transfer.
    pub latency_cycles: u64,
    /// Largest transfer that fits one half of the double buffer, bytes (≥ 1).
    pub chunk_bytes: u64,
}

/// One DRAM transfer of the pass schedule and the compute that uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Layer index.
    pub layer: usize,
    /// Bytes moved (0 for a layer with no DRAM traffic).
    pub bytes: u64,
    /// Transfer cycles `X`.
    pub transfer: u64,
    /// Compute cycles `C`.
    pub compute: u64,
    /// Cycle the transfer starts.
    pub load_start: u64,
    /// Cycle the compute starts (after its transfer and the previous compute).
    pub compute_start: u64,
}

/// `count` consecutive identical chunks of one layer: every chunk of a layer but its last is
/// full and identical, so a pass is a few runs however many bytes it moves (the schedule of a
/// 784 GB layer takes no memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    layer: usize,
    /// Bytes of each chunk.
    bytes: u64,
    /// Transfer cycles `X` of each chunk.
    transfer: u64,
    /// Compute cycles `C` of each chunk.
    compute: u64,
    /// Chunks in the run (≥ 1).
    count: u64,
}

fn runs(layers: &[LayerDemand], dram: &DramTiming) -> Vec<Run> {
    let mut runs = Vec::new();
    let chunk = dram.chunk_bytes.max(1);
    for (li, l) in layers.iter().enumerate() {
        let bytes = l.dram_read_bytes.saturating_add(l.dram_write_bytes);
        if bytes == 0 {
            runs.push(Run {
                layer: li,
                bytes: 0,
                transfer: 0,
                compute: l.compute_cycles,
                count: 1,
            });
            continue;
        }
        let one = |b: u64, count: u64| {
            // Compute share proportional to the chunk's bytes, rounded up per chunk so that each
            // share is monotone in the layer's compute (the shares may exceed the layer's
            // compute by less than one cycle per chunk).
            let c =
                (u128::from(l.compute_cycles) * u128::from(b)).div_ceil(u128::from(bytes)) as u64;
            // Saturating: absurd bandwidths or latencies give u64::MAX, which the report refuses,
            // instead of a wrapped count (float-to-int casts saturate too).
            let x = dram
                .latency_cycles
                .saturating_add((b as f64 / dram.bytes_per_cycle).ceil() as u64);
            Run {
                layer: li,
                bytes: b,
                transfer: x,
                compute: c,
                count,
            }
        };
        let (full, rest) = (bytes / chunk, bytes % chunk);
        if full > 0 {
            runs.push(one(chunk, full));
        }
        if rest > 0 {
            runs.push(one(rest, 1));
        }
    }
    runs
}

/// Every chunk of the pass: (layer, bytes, transfer cycles, compute cycles).
fn chunks(layers: &[LayerDemand], dram: &DramTiming) -> Vec<(usize, u64, u64, u64)> {
    runs(layers, dram)
        .into_iter()
        .flat_map(|r| (0..r.count).map(move |_| (r.layer, r.bytes, r.transfer, r.compute)))
        .collect()
}

/// The chunk timeline of one pass: when each transfer and each compute runs. Step `i` starts
/// when chunk `i`'s data are in and chunk `i−1`'s compute is done; chunk `i+1` loads meanwhile.
pub fn timeline(layers: &[LayerDemand], dram: &DramTiming) -> Vec<Chunk> {
    let cs = chunks(layers, dram);
    let mut out = Vec::with_capacity(cs.len());
    let mut t = cs.first().map_or(0, |c| c.2);
    let mut load_start = 0;
    for (i, &(layer, bytes, transfer, compute)) in cs.iter().enumerate() {
        out.push(Chunk {
            layer,
            bytes,
            transfer,
            compute,
            load_start,
            compute_start: t,
        });
        let next_x = cs.get(i + 1).map_or(0, |n| n.2);
        load_start = t;
        t = t.saturating_add(compute.max(next_x));
    }
    out
}

/// Schedule the layers of one pass; returns the per-layer timing (the total is their sum).
/// Works on runs of identical chunks, so its time and memory do not grow with the bytes moved
/// (equal to the chunk-by-chunk schedule: tested).
pub fn schedule(layers: &[LayerDemand], dram: &DramTiming) -> Vec<LayerTiming> {
    let runs = runs(layers, dram);
    let mut out = vec![LayerTiming::default(); layers.len()];
    let Some(first) = runs.first() else {
        return out;
    };
    // X_1 is charged to the first chunk's layer as a stall.
    let t = &mut out[first.layer];
    t.stall_cycles = t.stall_cycles.saturating_add(first.transfer);
    t.cycles = t.cycles.saturating_add(first.transfer);
    for (i, r) in runs.iter().enumerate() {
        let t = &mut out[r.layer];
        t.chunks = t.chunks.saturating_add(r.count);
        // Each step is the compute of its chunk; any excess is waiting for the next chunk's
        // data, which is charged to the layer that needs it: within the run, this layer.
        t.cycles = t.cycles.saturating_add(r.compute.saturating_mul(r.count));
        let inner_wait = r
            .transfer
            .saturating_sub(r.compute)
            .saturating_mul(r.count - 1);
        t.cycles = t.cycles.saturating_add(inner_wait);
        t.stall_cycles = t.stall_cycles.saturating_add(inner_wait);
        if let Some(next) = runs.get(i + 1) {
            let wait = next.transfer.saturating_sub(r.compute);
            let n = &mut out[next.layer];
            n.cycles = n.cycles.saturating_add(wait);
            n.stall_cycles = n.stall_cycles.saturating_add(wait);
        }
    }
    for (o, l) in out.iter_mut().zip(layers) {
        if l.dram_read_bytes.saturating_add(l.dram_write_bytes) == 0 {
            o.chunks = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn total(l: &[LayerDemand], d: &DramTiming) -> u64 {
        schedule(l, d).iter().map(|t| t.cycles).sum()
    }

    /// The schedule chunk by chunk, as the module doc states it: the oracle of [`schedule`].
    fn schedule_by_chunk(layers: &[LayerDemand], dram: &DramTiming) -> Vec<LayerTiming> {
        let chunks = chunks(layers, dram);
        let mut out = vec![LayerTiming::default(); layers.len()];
        if chunks.is_empty() {
            return out;
        }
        out[chunks[0].0].stall_cycles += chunks[0].2;
        out[chunks[0].0].cycles += chunks[0].2;
        for (i, &(li, _, _, c)) in chunks.iter().enumerate() {
            out[li].chunks += 1;
            let next_x = chunks.get(i + 1).map_or(0, |n| n.2);
            out[li].cycles += c;
            if next_x > c {
                let nl = chunks[i + 1].0;
                out[nl].cycles += next_x - c;
                out[nl].stall_cycles += next_x - c;
            }
        }
        for (o, l) in out.iter_mut().zip(layers) {
            if l.dram_read_bytes + l.dram_write_bytes == 0 {
                o.chunks = 0;
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(nacsim_core::testing::proptest_cases(64)))]

        #[test]
        fn runs_schedule_equals_the_chunk_by_chunk_schedule(
            demands in proptest::collection::vec((0u64..5000, 0u64..3000, 0u64..700), 0..6),
            bw in 0.25f64..32.0, latency in 0u64..200, chunk in 1u64..900,
        ) {
            let layers: Vec<LayerDemand> = demands
                .iter()
                .map(|&(c, r, w)| LayerDemand {
                    compute_cycles: c,
                    dram_read_bytes: r,
                    dram_write_bytes: w,
                })
                .collect();
            let d = DramTiming { bytes_per_cycle: bw, latency_cycles: latency, chunk_bytes: chunk };
            prop_assert_eq!(schedule(&layers, &d), schedule_by_chunk(&layers, &d));
        }
    }

    #[test]
    fn one_chunk_is_load_then_compute() {
        let d = DramTiming {
            bytes_per_cycle: 8.0,
            latency_cycles: 10,
            chunk_bytes: 1024,
        };
        let l = [LayerDemand {
            compute_cycles: 100,
            dram_read_bytes: 800,
            dram_write_bytes: 0,
        }];
        let t = schedule(&l, &d);
        assert_eq!(t[0].cycles, 10 + 100 + 100);
        assert_eq!(t[0].stall_cycles, 110);
    }

    #[test]
    fn compute_bound_chunks_hide_all_but_the_first_transfer() {
        let d = DramTiming {
            bytes_per_cycle: 8.0,
            latency_cycles: 0,
            chunk_bytes: 80,
        };
        // 4 chunks of 80 bytes = 10 cycles each; compute 400 = 100 per chunk.
        let l = [LayerDemand {
            compute_cycles: 400,
            dram_read_bytes: 320,
            dram_write_bytes: 0,
        }];
        assert_eq!(total(&l, &d), 10 + 400);
    }

    #[test]
    fn memory_bound_is_transfer_time_plus_last_compute() {
        let d = DramTiming {
            bytes_per_cycle: 1.0,
            latency_cycles: 0,
            chunk_bytes: 100,
        };
        let l = [LayerDemand {
            compute_cycles: 40,
            dram_read_bytes: 400,
            dram_write_bytes: 0,
        }];
        assert_eq!(total(&l, &d), 400 + 10);
    }

    #[test]
    fn next_layer_prefetch_overlaps_current_compute() {
        let d = DramTiming {
            bytes_per_cycle: 1.0,
            latency_cycles: 0,
            chunk_bytes: 1000,
        };
        let l = [
            LayerDemand {
                compute_cycles: 500,
                dram_read_bytes: 100,
                dram_write_bytes: 0,
            },
            LayerDemand {
                compute_cycles: 50,
                dram_read_bytes: 300,
                dram_write_bytes: 0,
            },
        ];
        // X1=100, step max(500, 300)=500, C2=50.
        let t = schedule(&l, &d);
        assert_eq!(t[0].cycles + t[1].cycles, 100 + 500 + 50);
        assert_eq!(t[1].stall_cycles, 0);
    }

    #[test]
    fn timeline_ends_when_the_schedule_does() {
        let d = DramTiming {
            bytes_per_cycle: 2.0,
            latency_cycles: 7,
            chunk_bytes: 100,
        };
        let l = [
            LayerDemand {
                compute_cycles: 90,
                dram_read_bytes: 250,
                dram_write_bytes: 0,
            },
            LayerDemand {
                compute_cycles: 30,
                dram_read_bytes: 0,
                dram_write_bytes: 0,
            },
            LayerDemand {
                compute_cycles: 500,
                dram_read_bytes: 120,
                dram_write_bytes: 40,
            },
        ];
        let tl = timeline(&l, &d);
        let last = tl.last().unwrap();
        assert_eq!(last.compute_start + last.compute, total(&l, &d));
        for w in tl.windows(2) {
            // A chunk computes after its own transfer and after the previous compute.
            assert!(w[1].compute_start >= w[1].load_start + w[1].transfer);
            assert!(w[1].compute_start >= w[0].compute_start + w[0].compute);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(nacsim_core::testing::proptest_cases(128)))]

        #[test]
        fn more_bandwidth_never_adds_cycles(
            ls in proptest::collection::vec((0u64..5000, 0u64..20_000, 0u64..3000), 1..6),
            bw in 0.25f64..64.0, lat in 0u64..200, chunk in 1u64..8192,
        ) {
            let l: Vec<_> = ls.iter().map(|&(c, r, w)| LayerDemand { compute_cycles: c, dram_read_bytes: r, dram_write_bytes: w }).collect();
            let d1 = DramTiming { bytes_per_cycle: bw, latency_cycles: lat, chunk_bytes: chunk };
            let d2 = DramTiming { bytes_per_cycle: 2.0 * bw, ..d1 };
            prop_assert!(total(&l, &d2) <= total(&l, &d1));
        }

        #[test]
        fn more_compute_never_removes_cycles(
            ls in proptest::collection::vec((0u64..5000, 0u64..20_000, 0u64..3000, 0u64..5000), 1..6),
            bw in 0.25f64..64.0, lat in 0u64..200, chunk in 1u64..8192,
        ) {
            let a: Vec<_> = ls.iter().map(|&(c, r, w, _)| LayerDemand { compute_cycles: c, dram_read_bytes: r, dram_write_bytes: w }).collect();
            let b: Vec<_> = ls.iter().map(|&(c, r, w, e)| LayerDemand { compute_cycles: c + e, dram_read_bytes: r, dram_write_bytes: w }).collect();
            let d = DramTiming { bytes_per_cycle: bw, latency_cycles: lat, chunk_bytes: chunk };
            prop_assert!(total(&b, &d) >= total(&a, &d));
        }

        #[test]
        fn total_is_at_least_compute_and_at_least_transfer(
            ls in proptest::collection::vec((0u64..5000, 0u64..20_000, 0u64..3000), 1..6),
            bw in 0.25f64..64.0, chunk in 1u64..8192,
        ) {
            let l: Vec<_> = ls.iter().map(|&(c, r, w)| LayerDemand { compute_cycles: c, dram_read_bytes: r, dram_write_bytes: w }).collect();
            let d = DramTiming { bytes_per_cycle: bw, latency_cycles: 0, chunk_bytes: chunk };
            let t = total(&l, &d);
            let c: u64 = l.iter().map(|x| x.compute_cycles).sum();
            let x: f64 = l.iter().map(|x| (x.dram_read_bytes + x.dram_write_bytes) as f64).sum::<f64>() / bw;
            prop_assert!(t >= c);
            prop_assert!(t as f64 >= x.floor());
        }
    }
}
