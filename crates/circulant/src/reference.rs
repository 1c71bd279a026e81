//! Reference block-circulant matrices: layout, both conventions, zero padding, expansion to a
//! dense matrix and the block matrix-vector product. Pure functions with no time; the oracle for
//! the datapath and for training.
//!
//! An FC layer `y = W x` with `W` of `rows × cols` (m × n) is zero-padded to `p·k × q·k` with
//! `p = ⌈m/k⌉`, `q = ⌈n/k⌉` and cut into `p × q` circulant `k × k` blocks `W_ij`, each defined by
//! one length-k vector `w_ij` (note §1.1, after CirCNN and C-LSTM).

use serde::{Deserialize, Serialize};

use crate::Error;

/// Which vector defines a circulant block (note §1.1). The two differ by an index reversal,
/// `w_col[t] = w_row[(−t) mod k]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Convention {
    /// First-row (correlation) form: `W[r][s] = w[(s − r) mod k]`; each row is the previous one
    /// rotated right by one. The default, since the pseudo-circulant equations of the BPCA
    /// summary (note §2.3, source \[S1\], unverified) are written in it — an inference (note §5 #1).
    #[default]
    FirstRow,
    /// First-column (convolution) form: `W[r][s] = w[(r − s) mod k]`, so `y = w ⊛ x` and
    /// `y = IFFT(FFT(w) ∘ FFT(x))` exactly (CirCNN; Liao's `block_circulant_cell.py`).
    FirstColumn,
}

impl Convention {
    /// Index into the defining vector of entry `(r, s)` of a `k × k` block.
    #[inline]
    pub fn index(self, r: usize, s: usize, k: usize) -> usize {
        match self {
            Self::FirstRow => (s + k - r) % k,
            Self::FirstColumn => (r + k - s) % k,
        }
    }

    /// The other convention.
    pub fn other(self) -> Self {
        match self {
            Self::FirstRow => Self::FirstColumn,
            Self::FirstColumn => Self::FirstRow,
        }
    }
}

/// The defining vector of the same block in the other convention: `v[t] = w[(−t) mod k]`
/// (an involution, so the same function converts both ways).
pub fn reverse_index<T: Copy>(w: &[T]) -> Vec<T> {
    let k = w.len();
    (0..k).map(|t| w[(k - t) % k]).collect()
}

/// A block-circulant `rows × cols` matrix: `⌈rows/k⌉ × ⌈cols/k⌉` circulant `k × k` blocks, each
/// stored as its length-k defining vector, row-major over blocks (block `(i, j)` at
/// `(i·q + j)·k`). Entries beyond `rows`/`cols` are the zero padding and never read by the
/// products; the padded vectors still exist and are counted in [`storage_bits`](crate::storage_bits).
///
/// `T` is `f64` for the reference and training, [`ShiftCode`](crate::ShiftCode) for the datapath.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockCirculant<T> {
    rows: usize,
    cols: usize,
    k: usize,
    convention: Convention,
    vectors: Vec<T>,
}

impl<T: Copy> BlockCirculant<T> {
    /// A matrix from its defining vectors (`⌈rows/k⌉ · ⌈cols/k⌉ · k` values).
    ///
    /// # Errors
    /// [`Error::BlockSize`] if `k = 0`, [`Error::EmptyShape`] for a zero dimension,
    /// [`Error::Length`] if `vectors` has the wrong length. A block larger than the layer is
    /// allowed here (it is only padding); architectures that forbid it check in their own config.
    pub fn new(
        rows: usize,
        cols: usize,
        k: usize,
        convention: Convention,
        vectors: Vec<T>,
    ) -> Result<Self, Error> {
        check_shape(rows, cols, k)?;
        let expected = rows.div_ceil(k) * cols.div_ceil(k) * k;
        if vectors.len() != expected {
            return Err(Error::Length {
                what: "defining vectors",
                expected,
                got: vectors.len(),
            });
        }
        Ok(Self {
            rows,
            cols,
            k,
            convention,
            vectors,
        })
    }

    /// A matrix whose every defining-vector entry is `f(i, j, t)` (block row, block column, index).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_fn(
        rows: usize,
        cols: usize,
        k: usize,
        convention: Convention,
        mut f: impl FnMut(usize, usize, usize) -> T,
    ) -> Result<Self, Error> {
        check_shape(rows, cols, k)?;
        let (p, q) = (rows.div_ceil(k), cols.div_ceil(k));
        let mut v = Vec::with_capacity(p * q * k);
        for i in 0..p {
            for j in 0..q {
                for t in 0..k {
                    v.push(f(i, j, t));
                }
            }
        }
        Self::new(rows, cols, k, convention, v)
    }

    /// Output count m (unpadded).
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Input count n (unpadded).
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Block size k.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Block rows p = ⌈m/k⌉.
    pub fn block_rows(&self) -> usize {
        self.rows.div_ceil(self.k)
    }
    /// Block columns q = ⌈n/k⌉.
    pub fn block_cols(&self) -> usize {
        self.cols.div_ceil(self.k)
    }
    /// The convention the vectors are stored in.
    pub fn convention(&self) -> Convention {
        self.convention
    }
    /// All defining vectors, block `(i, j)` at `(i·q + j)·k`.
    pub fn vectors(&self) -> &[T] {
        &self.vectors
    }
    /// Mutable defining vectors (training updates them in place).
    pub fn vectors_mut(&mut self) -> &mut [T] {
        &mut self.vectors
    }
    /// Defining vector of block `(i, j)`.
    pub fn block(&self, i: usize, j: usize) -> &[T] {
        let o = (i * self.block_cols() + j) * self.k;
        &self.vectors[o..o + self.k]
    }

    /// Entry `(r, c)` of the padded matrix (`r < p·k`, `c < q·k`).
    pub fn entry(&self, r: usize, c: usize) -> T {
        let k = self.k;
        self.block(r / k, c / k)[self.convention.index(r % k, c % k, k)]
    }

    /// The same matrix with every vector entry mapped by `f`.
    pub fn map<U: Copy>(&self, f: impl FnMut(T) -> U) -> BlockCirculant<U> {
        BlockCirculant {
            rows: self.rows,
            cols: self.cols,
            k: self.k,
            convention: self.convention,
            vectors: self.vectors.iter().copied().map(f).collect(),
        }
    }

    /// The same matrix stored in `convention` (vectors index-reversed if it differs).
    pub fn to_convention(&self, convention: Convention) -> Self {
        if convention == self.convention {
            return self.clone();
        }
        let vectors = self
            .vectors
            .chunks(self.k)
            .flat_map(reverse_index)
            .collect();
        Self {
            convention,
            vectors,
            ..self.clone()
        }
    }

    /// The dense `rows × cols` matrix (padding dropped), entries mapped by `f`.
    pub fn to_dense_with<U>(&self, mut f: impl FnMut(T) -> U) -> ndarray::Array2<U> {
        ndarray::Array2::from_shape_fn((self.rows, self.cols), |(r, c)| f(self.entry(r, c)))
    }
}

fn check_shape(rows: usize, cols: usize, k: usize) -> Result<(), Error> {
    if k == 0 {
        return Err(Error::BlockSize {
            k,
            rule: "must be > 0".into(),
        });
    }
    if rows == 0 {
        return Err(Error::EmptyShape { what: "rows" });
    }
    if cols == 0 {
        return Err(Error::EmptyShape { what: "cols" });
    }
    Ok(())
}

impl BlockCirculant<f64> {
    /// The dense `rows × cols` matrix.
    pub fn to_dense(&self) -> ndarray::Array2<f64> {
        self.to_dense_with(|v| v)
    }

    /// Least-squares projection of a dense `rows × cols` matrix onto block-circulant matrices:
    /// each vector entry is the mean of the (unpadded) entries that share it, i.e. of one
    /// wrap-diagonal. Padded positions do not take part (entries that only multiply padding
    /// become 0). Unlike lz1313's `make_block_circulant`, which overwrites where it should
    /// accumulate (note §1.3), this averages.
    ///
    /// # Errors
    /// As [`BlockCirculant::new`].
    pub fn project(
        dense: ndarray::ArrayView2<f64>,
        k: usize,
        convention: Convention,
    ) -> Result<Self, Error> {
        let (rows, cols) = dense.dim();
        let mut bc = Self::from_fn(rows, cols, k, convention, |_, _, _| 0.0)?;
        let mut count = vec![0u32; bc.vectors.len()];
        let q = bc.block_cols();
        for ((r, c), &v) in dense.indexed_iter() {
            let o = ((r / k) * q + c / k) * k + convention.index(r % k, c % k, k);
            bc.vectors[o] += v;
            count[o] += 1;
        }
        for (v, &n) in bc.vectors.iter_mut().zip(&count) {
            if n > 0 {
                *v /= f64::from(n);
            }
        }
        Ok(bc)
    }

    /// `y = W x` block by block in the direct (spatial) form, `k²` multiply-adds per block
    /// (note §1.2): `y_i = Σ_j W_ij x_j`.
    ///
    /// # Errors
    /// [`Error::Length`] unless `x.len() == cols`.
    pub fn matvec(&self, x: &[f64]) -> Result<Vec<f64>, Error> {
        check_len("x", self.cols, x.len())?;
        let (k, p, q) = (self.k, self.block_rows(), self.block_cols());
        let xp = pad(x, q * k);
        let mut y = vec![0.0; p * k];
        for i in 0..p {
            for j in 0..q {
                let w = self.block(i, j);
                let xj = &xp[j * k..(j + 1) * k];
                for r in 0..k {
                    let mut acc = 0.0;
                    for (s, &xs) in xj.iter().enumerate() {
                        acc += w[self.convention.index(r, s, k)] * xs;
                    }
                    y[i * k + r] += acc;
                }
            }
        }
        y.truncate(self.rows);
        Ok(y)
    }

    /// `dx = Wᵀ g`, the error to the input (note §1.3: `∂L/∂x_j = Σ_i W_ijᵀ g_i`).
    ///
    /// # Errors
    /// [`Error::Length`] unless `g.len() == rows`.
    pub fn matvec_transposed(&self, g: &[f64]) -> Result<Vec<f64>, Error> {
        check_len("g", self.rows, g.len())?;
        let (k, p, q) = (self.k, self.block_rows(), self.block_cols());
        let gp = pad(g, p * k);
        let mut dx = vec![0.0; q * k];
        for i in 0..p {
            for j in 0..q {
                let w = self.block(i, j);
                let gi = &gp[i * k..(i + 1) * k];
                for s in 0..k {
                    let mut acc = 0.0;
                    for (r, &gr) in gi.iter().enumerate() {
                        acc += w[self.convention.index(r, s, k)] * gr;
                    }
                    dx[j * k + s] += acc;
                }
            }
        }
        dx.truncate(self.cols);
        Ok(dx)
    }
}

/// `x` zero-padded (or cut) to `len`.
pub(crate) fn pad(x: &[f64], len: usize) -> Vec<f64> {
    let mut v = x.to_vec();
    v.resize(len, 0.0);
    v
}

pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), Error> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::Length {
            what,
            expected,
            got,
        })
    }
}

/// `y = D x` for a dense row-major matrix; the plain oracle the block products are checked against.
pub fn dense_matvec(d: ndarray::ArrayView2<f64>, x: &[f64]) -> Vec<f64> {
    d.rows()
        .into_iter()
        .map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{cases, close, values};
    use proptest::prelude::*;

    #[test]
    fn conventions_give_the_textbook_pictures() {
        let w = [1.0, 2.0, 3.0];
        let row = BlockCirculant::new(3, 3, 3, Convention::FirstRow, w.to_vec()).unwrap();
        let col = BlockCirculant::new(3, 3, 3, Convention::FirstColumn, w.to_vec()).unwrap();
        let r = row.to_dense();
        let c = col.to_dense();
        assert_eq!(r.row(0).to_vec(), [1.0, 2.0, 3.0]);
        assert_eq!(r.row(1).to_vec(), [3.0, 1.0, 2.0]); // rotated right by one
        assert_eq!(c.column(0).to_vec(), [1.0, 2.0, 3.0]);
        assert_eq!(c, r.t());
        // Converting the convention keeps the matrix.
        assert_eq!(row.to_convention(Convention::FirstColumn).to_dense(), r);
        assert_eq!(
            row.to_convention(Convention::FirstColumn).vectors(),
            [1.0, 3.0, 2.0]
        );
    }

    #[test]
    fn padding_and_shape_errors() {
        let bc = BlockCirculant::from_fn(5, 7, 4, Convention::FirstRow, |i, j, t| {
            (i * 100 + j * 10 + t) as f64
        })
        .unwrap();
        assert_eq!((bc.block_rows(), bc.block_cols()), (2, 2));
        assert_eq!(bc.vectors().len(), 16);
        assert_eq!(bc.to_dense().dim(), (5, 7));
        assert!(matches!(
            BlockCirculant::new(4, 4, 0, Convention::FirstRow, vec![0.0]),
            Err(Error::BlockSize { k: 0, .. })
        ));
        assert!(matches!(
            BlockCirculant::<f64>::new(0, 4, 2, Convention::FirstRow, vec![]),
            Err(Error::EmptyShape { what: "rows" })
        ));
        let e = BlockCirculant::new(4, 4, 2, Convention::FirstRow, vec![0.0; 3]).unwrap_err();
        assert_eq!(e.to_string(), "defining vectors: expected 8 values, got 3");
        assert!(bc.matvec(&[0.0; 3]).is_err());
    }

    #[test]
    fn projection_recovers_a_block_circulant_matrix() {
        for conv in [Convention::FirstRow, Convention::FirstColumn] {
            let bc = BlockCirculant::from_fn(8, 12, 4, conv, |i, j, t| {
                (i as f64) - 0.5 * j as f64 + 0.25 * t as f64
            })
            .unwrap();
            let back = BlockCirculant::project(bc.to_dense().view(), 4, conv).unwrap();
            assert_eq!(back, bc);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        #[test]
        fn block_matvec_matches_dense_reference(
            rows in 1usize..40, cols in 1usize..40, k in 1usize..12,
            row_first: bool, seed: u64,
        ) {
            let conv = if row_first { Convention::FirstRow } else { Convention::FirstColumn };
            let p = rows.div_ceil(k) * cols.div_ceil(k) * k;
            let bc = BlockCirculant::new(rows, cols, k, conv, values(p, seed)).unwrap();
            let x = values(cols, seed ^ 1);
            let d = bc.to_dense();
            let y = bc.matvec(&x).unwrap();
            let want = dense_matvec(d.view(), &x);
            for (a, b) in y.iter().zip(&want) {
                prop_assert!(close(*a, *b, 1e-12), "{a} vs {b}");
            }
            let g = values(rows, seed ^ 2);
            let dx = bc.matvec_transposed(&g).unwrap();
            let want = dense_matvec(d.t(), &g);
            for (a, b) in dx.iter().zip(&want) {
                prop_assert!(close(*a, *b, 1e-12), "{a} vs {b}");
            }
            // The other convention stores a different vector but the same matrix.
            prop_assert_eq!(bc.to_convention(conv.other()).to_dense(), d);
        }
    }
}
