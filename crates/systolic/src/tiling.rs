//! How a GEMM `[M, K] · [N, K]ᵀ` is cut into tiles that fit the R×C array, and in which order
//! the tiles run.
//!
//! Both dataflows put outputs `n` on the columns: an *N-block* is `C` consecutive outputs (the
//! last block may be narrower). The rows take the other dimension: fan-in `k` under WS (a
//! *K-tile* of up to `R` indices), output rows `m` under OS (an *M-tile* of up to `R` rows).
//! Order: N-blocks outer, row tiles inner, both ascending (SCALE-Sim's fold order), so under WS
//! the K-tiles of one N-block run back to back and their partial sums meet in the accumulator
//! buffer.

use crate::config::{Dataflow, SystolicConfig};

/// One tile: a `rows_used × cols_used` corner of the array doing one step of the GEMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// Position in the run order, from 0.
    pub index: u64,
    /// First index of the row dimension: fan-in `k0` (WS) or output row `m0` (OS).
    pub row0: usize,
    /// Array rows used, `1..=R`: the K-tile (WS) or M-tile (OS) size.
    pub rows_used: usize,
    /// First output `n0` of the N-block.
    pub col0: usize,
    /// Array columns used, `1..=C`: the N-block width.
    pub cols_used: usize,
    /// Whether this is the first row tile of its N-block (WS: no partial sum to read yet).
    pub first_in_block: bool,
    /// Whether this is the last row tile of its N-block (WS: its sums are final outputs).
    pub last_in_block: bool,
}

/// The tiles of an `m × k × n` GEMM on `cfg`'s array, in run order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    rows: usize,
    cols: usize,
    /// Length of the row dimension: `K` (WS) or `M` (OS).
    row_dim: usize,
    n: usize,
    row_tiles: usize,
    col_tiles: usize,
}

impl Tiling {
    /// The tiling of an `m × k × n` GEMM (`x: [m, k]`, `w: [n, k]`) on `cfg`'s array.
    ///
    /// # Panics
    ///
    /// If `cfg.rows` or `cfg.cols` is 0 (an invalid config).
    pub fn new(cfg: &SystolicConfig, m: usize, k: usize, n: usize) -> Self {
        assert!(cfg.rows > 0 && cfg.cols > 0, "systolic: zero-sized array");
        let row_dim = match cfg.dataflow {
            Dataflow::WeightStationary => k,
            Dataflow::OutputStationary => m,
        };
        // An empty GEMM has no tiles (and no cycles).
        let empty = m == 0 || k == 0 || n == 0;
        Tiling {
            rows: cfg.rows,
            cols: cfg.cols,
            row_dim,
            n,
            row_tiles: if empty { 0 } else { row_dim.div_ceil(cfg.rows) },
            col_tiles: if empty { 0 } else { n.div_ceil(cfg.cols) },
        }
    }

    /// Row tiles per N-block: `⌈K/R⌉` (WS) or `⌈M/R⌉` (OS).
    pub fn row_tiles(&self) -> usize {
        self.row_tiles
    }

    /// N-blocks: `⌈N/C⌉`.
    pub fn col_tiles(&self) -> usize {
        self.col_tiles
    }

    /// Number of tiles, `row_tiles · col_tiles`.
    pub fn len(&self) -> u64 {
        (self.row_tiles * self.col_tiles) as u64
    }

    /// Whether there are no tiles (an empty GEMM).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tile number `index` (< [`len`](Self::len)).
    pub fn tile(&self, index: u64) -> Tile {
        debug_assert!(index < self.len());
        let i = index as usize;
        let (nb, rt) = (i / self.row_tiles, i % self.row_tiles);
        let row0 = rt * self.rows;
        let col0 = nb * self.cols;
        Tile {
            index,
            row0,
            rows_used: self.rows.min(self.row_dim - row0),
            col0,
            cols_used: self.cols.min(self.n - col0),
            first_in_block: rt == 0,
            last_in_block: rt + 1 == self.row_tiles,
        }
    }

    /// Every tile in run order.
    pub fn iter(&self) -> impl Iterator<Item = Tile> + '_ {
        (0..self.len()).map(|i| self.tile(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_tiles_k_inner_n_outer_with_partial_edges() {
        let cfg = SystolicConfig::new(4, 3, Dataflow::WeightStationary);
        let t = Tiling::new(&cfg, 7, 10, 5);
        assert_eq!((t.row_tiles(), t.col_tiles(), t.len()), (3, 2, 6));
        let v: Vec<_> = t
            .iter()
            .map(|t| (t.row0, t.rows_used, t.col0, t.cols_used))
            .collect();
        assert_eq!(
            v,
            [
                (0, 4, 0, 3),
                (4, 4, 0, 3),
                (8, 2, 0, 3),
                (0, 4, 3, 2),
                (4, 4, 3, 2),
                (8, 2, 3, 2)
            ]
        );
        assert!(t.tile(3).first_in_block && !t.tile(3).last_in_block);
        assert!(t.tile(5).last_in_block);
        let os = SystolicConfig::new(4, 3, Dataflow::OutputStationary);
        assert_eq!(Tiling::new(&os, 7, 10, 5).row_tiles(), 2);
        assert!(Tiling::new(&os, 7, 0, 5).is_empty());
    }
}
