//! Training math for block-circulant layers: the exact gradient of the defining vectors (direct
//! and FFT forms), the FFT form of the forward product, and a
//! [`ProductKernel`](nacsim_nn::forward::ProductKernel) that trains Dense layers as
//! block-circulant (optionally with power-of-two forward weights and a straight-through
//! estimator).
//!
//! For one block in the first-column convention (`y = w ⊛ x`) and `g = ∂L/∂y`
//! (note §1.3, derived there and checked here by finite differences):
//! `∂L/∂w[t] = Σ_r g[r] · x[(r − t) mod k] = IFFT(FFT(g) ∘ conj(FFT(x)))[t]`, and in general
//! `∂L/∂w[t]` is the sum of `g[r] · x[s]` over the wrap-diagonal `{(r, s) : index(r, s) = t}`.
//! Over a layer, `∂L/∂w_ij` uses `(g_i, x_j)`.

use std::collections::BTreeMap;
use std::sync::Arc;

use ndarray::{Array2, ArrayView2};
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use crate::reference::{check_len, pad};
use crate::{BlockCirculant, Convention, Error};

impl BlockCirculant<f64> {
    /// `∂L/∂w` for every defining vector (same layout as [`vectors`](Self::vectors)) of the
    /// loss with `∂L/∂y = g` at input `x`, in the direct form: `k²` multiply-adds per block.
    ///
    /// # Errors
    /// [`Error::Length`] unless `x.len() == cols` and `g.len() == rows`.
    pub fn vector_grad(&self, x: &[f64], g: &[f64]) -> Result<Vec<f64>, Error> {
        check_len("x", self.cols(), x.len())?;
        check_len("g", self.rows(), g.len())?;
        let (k, p, q, conv) = (
            self.k(),
            self.block_rows(),
            self.block_cols(),
            self.convention(),
        );
        let (xp, gp) = (pad(x, q * k), pad(g, p * k));
        let mut dw = vec![0.0; p * q * k];
        for i in 0..p {
            let gi = &gp[i * k..(i + 1) * k];
            for j in 0..q {
                let xj = &xp[j * k..(j + 1) * k];
                let d = &mut dw[(i * q + j) * k..(i * q + j + 1) * k];
                for (r, &gr) in gi.iter().enumerate() {
                    for (s, &xs) in xj.iter().enumerate() {
                        d[conv.index(r, s, k)] += gr * xs;
                    }
                }
            }
        }
        Ok(dw)
    }
}

/// FFT plans for one block size k (forward and inverse, `f64`), shared by the FFT forms.
pub struct FftPlan {
    k: usize,
    fwd: Arc<dyn Fft<f64>>,
    inv: Arc<dyn Fft<f64>>,
}

impl std::fmt::Debug for FftPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FftPlan").field("k", &self.k).finish()
    }
}

impl FftPlan {
    /// Plans for length `k` (any k ≥ 1; rustfft handles non-powers of two).
    pub fn new(k: usize) -> Self {
        let mut planner = FftPlanner::new();
        Self {
            k,
            fwd: planner.plan_fft_forward(k),
            inv: planner.plan_fft_inverse(k),
        }
    }

    fn spectrum(&self, v: &[f64]) -> Vec<Complex<f64>> {
        let mut c: Vec<Complex<f64>> = v.iter().map(|&a| Complex::new(a, 0.0)).collect();
        self.fwd.process(&mut c);
        c
    }

    /// Real part of the inverse transform, scaled by 1/k (rustfft does not normalize).
    fn inverse_real(&self, mut c: Vec<Complex<f64>>) -> Vec<f64> {
        self.inv.process(&mut c);
        let s = 1.0 / self.k as f64;
        c.iter().map(|z| z.re * s).collect()
    }

    fn spectra(&self, v: &[f64], blocks: usize) -> Vec<Vec<Complex<f64>>> {
        (0..blocks)
            .map(|b| self.spectrum(&v[b * self.k..(b + 1) * self.k]))
            .collect()
    }
}

/// The layer's vectors in the first-column convention (where the FFT identities hold).
fn first_column(bc: &BlockCirculant<f64>) -> BlockCirculant<f64> {
    bc.to_convention(Convention::FirstColumn)
}

/// `y = W x` in the FFT form of CirCNN/C-LSTM (note §1.2): `y_i = Σ_j IFFT(FFT(w_ij) ∘ FFT(x_j))`
/// with first-column vectors (first-row layers are converted first). `O(p·q·k log k)`.
///
/// # Errors
/// [`Error::Length`] unless `x.len() == cols`.
pub fn matvec_fft(bc: &BlockCirculant<f64>, x: &[f64]) -> Result<Vec<f64>, Error> {
    check_len("x", bc.cols(), x.len())?;
    let (k, p, q) = (bc.k(), bc.block_rows(), bc.block_cols());
    let plan = FftPlan::new(k);
    let col = first_column(bc);
    let xs = plan.spectra(&pad(x, q * k), q);
    let mut y = Vec::with_capacity(p * k);
    for i in 0..p {
        let mut acc = vec![Complex::new(0.0, 0.0); k];
        for (j, xj) in xs.iter().enumerate() {
            let wf = plan.spectrum(col.block(i, j));
            for ((a, w), x) in acc.iter_mut().zip(&wf).zip(xj) {
                *a += w * x;
            }
        }
        y.extend(plan.inverse_real(acc));
    }
    y.truncate(bc.rows());
    Ok(y)
}

/// [`vector_grad`](BlockCirculant::vector_grad) in the FFT form (note §1.3):
/// `∂L/∂w_ij = IFFT(FFT(g_i) ∘ conj(FFT(x_j)))` in the first-column convention, index-reversed
/// for first-row layers. One FFT per input block and per output block, one inverse per block
/// pair: `O(p·q·k log k)` instead of `O(p·q·k²)`, the better choice from k ≈ 32 up.
///
/// # Errors
/// [`Error::Length`] unless `x.len() == cols` and `g.len() == rows`.
pub fn vector_grad_fft(bc: &BlockCirculant<f64>, x: &[f64], g: &[f64]) -> Result<Vec<f64>, Error> {
    check_len("x", bc.cols(), x.len())?;
    check_len("g", bc.rows(), g.len())?;
    let (k, p, q) = (bc.k(), bc.block_rows(), bc.block_cols());
    let plan = FftPlan::new(k);
    let xs = plan.spectra(&pad(x, q * k), q);
    let gs = plan.spectra(&pad(g, p * k), p);
    let mut dw = Vec::with_capacity(p * q * k);
    for gi in &gs {
        for xj in &xs {
            let prod = gi.iter().zip(xj).map(|(a, b)| a * b.conj()).collect();
            let d = plan.inverse_real(prod);
            match bc.convention() {
                Convention::FirstColumn => dw.extend(d),
                Convention::FirstRow => dw.extend(crate::reference::reverse_index(&d)),
            }
        }
    }
    Ok(dw)
}

/// The weights a forward matrix was computed from, and the matrix.
type CachedWeight = (Vec<f32>, Array2<f32>);

/// Block-circulant settings of one Dense layer trained through [`BlockCirculantKernel`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerCompression {
    /// Block size k.
    pub k: usize,
    /// Convention of the defining vectors (the matrix does not depend on it; kept so that the
    /// exported vectors match the datapath's).
    pub convention: Convention,
    /// Power-of-two quantization of the forward weights, or `None` for full precision (stage 1
    /// of BPCA's two-stage flow, note §1.4).
    pub pot: Option<crate::PotConfig>,
}

/// A [`ProductKernel`](nacsim_nn::forward::ProductKernel) that constrains chosen Dense layers to
/// be block-circulant; other layers use [`FloatKernel`](nacsim_nn::forward::FloatKernel).
///
/// The training loop keeps dense `[out, in]` weights. This kernel treats them as an
/// over-parametrization of the defining vectors:
/// - forward and `backward_input` use the projection of `W` onto block-circulant matrices
///   ([`BlockCirculant::project`], the identity when `W` already is one), PoT-quantized when the
///   layer has a [`PotConfig`](crate::PotConfig);
/// - `weight_grad` returns, at every entry, the gradient of the defining-vector entry it belongs
///   to (the wrap-diagonal sum). A plain SGD step on the dense `W` then equals the SGD step on the
///   vectors, so a block-circulant `W` stays block-circulant. With PoT the gradient is taken at the
///   quantized forward weights and applied to the float shadow: the straight-through estimator
///   of BPCA's retraining stage (note §1.4, source \[S1\], unverified).
///
/// The products themselves are dense float products of the expanded matrix (the training
/// loop's batches make that the fast path); the per-vector gradient forms are
/// [`BlockCirculant::vector_grad`] and [`vector_grad_fft`]. A dense initial `W` need not be
/// block-circulant: its off-circulant part is never seen by the forward pass and never touched
/// by the gradient (which is constant along wrap-diagonals), so SGD, Adam and weight decay all
/// act on the projection exactly.
#[derive(Debug, Default)]
pub struct BlockCirculantKernel {
    /// Compressed layers by index in the network.
    pub layers: BTreeMap<usize, LayerCompression>,
    /// The last forward matrix of each layer with the weights it came from: the training loop
    /// asks for the same matrix in `forward` and `backward_input` of one step, and the
    /// projection and quantization cost as much as a product at batch 64.
    cache: std::sync::Mutex<BTreeMap<usize, CachedWeight>>,
}

impl Clone for BlockCirculantKernel {
    fn clone(&self) -> Self {
        Self::new(self.layers.clone())
    }
}

impl BlockCirculantKernel {
    /// A kernel compressing `layers` (by index in the network).
    pub fn new(layers: BTreeMap<usize, LayerCompression>) -> Self {
        Self {
            layers,
            cache: std::sync::Mutex::default(),
        }
    }

    /// The forward matrix of `layer` for dense weights `w [out, in]` (projected, maybe quantized),
    /// as `f32`; `None` for an uncompressed layer. Computed once per distinct `w` (the last one
    /// per layer is cached, compared by value, so the result never depends on the cache).
    ///
    /// # Panics
    /// If `k = 0` or the quantizer cannot be calibrated (a config bug the caller validates).
    pub fn effective_weight(&self, layer: usize, w: ArrayView2<f32>) -> Option<Array2<f32>> {
        self.layers.get(&layer)?;
        let key = w.as_slice().map(<[f32]>::to_vec);
        if let Some(k) = &key
            && let Some((cw, m)) = self.cache.lock().ok()?.get(&layer)
            && cw == k
        {
            return Some(m.clone());
        }
        let m = self.compute_effective_weight(layer, w)?;
        if let (Some(k), Ok(mut c)) = (key, self.cache.lock()) {
            c.insert(layer, (k, m.clone()));
        }
        Some(m)
    }

    fn compute_effective_weight(&self, layer: usize, w: ArrayView2<f32>) -> Option<Array2<f32>> {
        let c = self.layers.get(&layer)?;
        let bc = BlockCirculant::project(w.mapv(f64::from).view(), c.k, c.convention)
            .expect("block size validated by the caller");
        let bc = match &c.pot {
            Some(pot) => pot
                .quantize(&bc)
                .expect("pot config validated by the caller")
                .values(),
            None => bc,
        };
        Some(bc.to_dense_with(|v| v as f32))
    }
}

impl nacsim_nn::forward::ProductKernel for BlockCirculantKernel {
    fn forward(&self, layer: usize, x: ArrayView2<f32>, w: ArrayView2<f32>) -> Array2<f32> {
        match self.effective_weight(layer, w) {
            Some(we) => nacsim_nn::forward::par_matmul(x, we.t()),
            None => nacsim_nn::forward::FloatKernel.forward(layer, x, w),
        }
    }

    fn backward_input(&self, layer: usize, dy: ArrayView2<f32>, w: ArrayView2<f32>) -> Array2<f32> {
        match self.effective_weight(layer, w) {
            Some(we) => nacsim_nn::forward::par_matmul(dy, we.view()),
            None => nacsim_nn::forward::FloatKernel.backward_input(layer, dy, w),
        }
    }

    fn weight_grad(&self, layer: usize, dy: ArrayView2<f32>, x: ArrayView2<f32>) -> Array2<f32> {
        let dense = nacsim_nn::forward::par_matmul(dy.t(), x);
        let Some(c) = self.layers.get(&layer) else {
            return dense;
        };
        // The wrap-diagonal sums are the vector gradient summed over the batch, whichever form
        // computes them; summing the dense batch gradient is exact and O(m·n).
        let (rows, cols) = dense.dim();
        let k = c.k;
        let q = cols.div_ceil(k);
        let mut sums = vec![0.0f64; rows.div_ceil(k) * q * k];
        // Entry (r, s) belongs to vector entry `((r/k)·q + s/k)·k + index(r mod k, s mod k)`;
        // the in-block index is tabulated once (k² entries) so the loops carry no division.
        let idx: Vec<usize> = (0..k * k)
            .map(|i| c.convention.index(i / k, i % k, k))
            .collect();
        let dense = dense.as_standard_layout();
        for (r, row) in dense.rows().into_iter().enumerate() {
            let (br, rr) = (r / k, r % k);
            let row = row.as_slice().expect("standard layout");
            for (bs, chunk) in row.chunks(k).enumerate() {
                let base = (br * q + bs) * k;
                let tab = &idx[rr * k..rr * k + chunk.len()];
                for (&v, &t) in chunk.iter().zip(tab) {
                    sums[base + t] += f64::from(v);
                }
            }
        }
        let mut out = Array2::<f32>::zeros((rows, cols));
        for (r, mut row) in out.rows_mut().into_iter().enumerate() {
            let (br, rr) = (r / k, r % k);
            let row = row.as_slice_mut().expect("fresh array");
            for (bs, chunk) in row.chunks_mut(k).enumerate() {
                let base = (br * q + bs) * k;
                let tab = &idx[rr * k..rr * k + chunk.len()];
                for (o, &t) in chunk.iter_mut().zip(tab) {
                    *o = sums[base + t] as f32;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{cases, close, values};
    use nacsim_nn::forward::ProductKernel;
    use proptest::prelude::*;

    fn conv(first_row: bool) -> Convention {
        if first_row {
            Convention::FirstRow
        } else {
            Convention::FirstColumn
        }
    }

    /// Loss L = ½‖W x − y*‖², so g = W x − y*.
    fn loss(bc: &BlockCirculant<f64>, x: &[f64], target: &[f64]) -> f64 {
        let y = bc.matvec(x).unwrap();
        0.5 * y
            .iter()
            .zip(target)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
    }

    #[test]
    fn gradient_matches_central_finite_differences() {
        for (rows, cols, k) in [
            (8usize, 8usize, 4usize),
            (10, 7, 4),
            (32, 48, 16),
            (5, 3, 8),
        ] {
            for first_row in [true, false] {
                let n = rows.div_ceil(k) * cols.div_ceil(k) * k;
                let mut bc =
                    BlockCirculant::new(rows, cols, k, conv(first_row), values(n, 7)).unwrap();
                let x = values(cols, 8);
                let target = values(rows, 9);
                let y = bc.matvec(&x).unwrap();
                let g: Vec<f64> = y.iter().zip(&target).map(|(a, b)| a - b).collect();
                let direct = bc.vector_grad(&x, &g).unwrap();
                let fft = vector_grad_fft(&bc, &x, &g).unwrap();
                let h = 1e-5;
                let mut max_err = 0.0f64;
                for t in 0..n {
                    let v = bc.vectors()[t];
                    bc.vectors_mut()[t] = v + h;
                    let lp = loss(&bc, &x, &target);
                    bc.vectors_mut()[t] = v - h;
                    let lm = loss(&bc, &x, &target);
                    bc.vectors_mut()[t] = v;
                    let fd = (lp - lm) / (2.0 * h);
                    max_err = max_err.max((fd - direct[t]).abs());
                    assert!(
                        close(direct[t], fft[t], 1e-9),
                        "{t}: {} vs {}",
                        direct[t],
                        fft[t]
                    );
                }
                assert!(max_err < 1e-6, "{rows}x{cols} k={k}: {max_err}");
            }
        }
    }

    #[test]
    fn kernel_weight_grad_is_the_batch_sum_of_vector_gradients() {
        for (rows, cols, k, first_row) in [
            (10, 13, 4, true),
            (10, 13, 4, false),
            (32, 48, 16, true),
            (7, 5, 3, false),
            (20, 33, 16, false),
        ] {
            let mut layers = BTreeMap::new();
            layers.insert(
                0,
                LayerCompression {
                    k,
                    convention: conv(first_row),
                    pot: None,
                },
            );
            let kernel = BlockCirculantKernel::new(layers);
            let n = 3;
            let x = Array2::from_shape_vec(
                (n, cols),
                values(n * cols, 7).iter().map(|&v| v as f32).collect(),
            )
            .unwrap();
            let dy = Array2::from_shape_vec(
                (n, rows),
                values(n * rows, 8).iter().map(|&v| v as f32).collect(),
            )
            .unwrap();
            let dw = kernel.weight_grad(0, dy.view(), x.view());
            let bc = BlockCirculant::new(
                rows,
                cols,
                k,
                conv(first_row),
                vec![0.0; rows.div_ceil(k) * cols.div_ceil(k) * k],
            )
            .unwrap();
            let mut want = vec![0.0f64; bc.vectors().len()];
            for s in 0..n {
                let xs: Vec<f64> = x.row(s).iter().map(|&v| f64::from(v)).collect();
                let gs: Vec<f64> = dy.row(s).iter().map(|&v| f64::from(v)).collect();
                for (w, g) in want.iter_mut().zip(bc.vector_grad(&xs, &gs).unwrap()) {
                    *w += g;
                }
            }
            let expanded = BlockCirculant::new(rows, cols, k, conv(first_row), want)
                .unwrap()
                .to_dense();
            for ((r, c), &v) in dw.indexed_iter() {
                assert!(
                    close(f64::from(v), expanded[[r, c]], 1e-5),
                    "({rows},{cols},{k}) at ({r},{c}): {v} vs {}",
                    expanded[[r, c]]
                );
            }
        }
    }

    #[test]
    fn pot_forward_uses_quantized_levels_with_straight_through_gradient() {
        let (rows, cols, k): (usize, usize, usize) = (16, 32, 16);
        let n = rows.div_ceil(k) * cols.div_ceil(k) * k;
        let bc = BlockCirculant::new(rows, cols, k, Convention::FirstRow, values(n, 4)).unwrap();
        let pot = crate::PotConfig::new(3);
        let mut kernel = BlockCirculantKernel::default();
        kernel.layers.insert(
            2,
            LayerCompression {
                k,
                convention: Convention::FirstRow,
                pot: Some(pot),
            },
        );
        let w = bc.to_dense().mapv(|v| v as f32);
        let we = kernel.effective_weight(2, w.view()).unwrap();
        let want = pot.quantize(&bc).unwrap().values().to_dense();
        let levels = pot.quantize(&bc).unwrap().quantizer.levels();
        for (a, b) in we.iter().zip(want.iter()) {
            assert_eq!(f64::from(*a), *b);
            assert!(levels.contains(b));
        }
        // The weight gradient does not depend on the quantization (straight-through).
        let x = Array2::from_shape_vec((2, cols), values(2 * cols, 5))
            .unwrap()
            .mapv(|v| v as f32);
        let dy = Array2::from_shape_vec((2, rows), values(2 * rows, 6))
            .unwrap()
            .mapv(|v| v as f32);
        let mut plain = kernel.clone();
        plain.layers.get_mut(&2).unwrap().pot = None;
        assert_eq!(
            kernel.weight_grad(2, dy.view(), x.view()),
            plain.weight_grad(2, dy.view(), x.view())
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        #[test]
        fn fft_forms_equal_direct_forms(
            rows in 1usize..70, cols in 1usize..70,
            k in prop_oneof![1usize..20, Just(16), Just(32), Just(64)],
            first_row: bool, seed: u64,
        ) {
            let n = rows.div_ceil(k) * cols.div_ceil(k) * k;
            let bc = BlockCirculant::new(rows, cols, k, conv(first_row), values(n, seed)).unwrap();
            let x = values(cols, seed ^ 3);
            let g = values(rows, seed ^ 4);
            let y = bc.matvec(&x).unwrap();
            let yf = matvec_fft(&bc, &x).unwrap();
            for (a, b) in y.iter().zip(&yf) {
                prop_assert!(close(*a, *b, 1e-9), "{a} vs {b}");
            }
            let d = bc.vector_grad(&x, &g).unwrap();
            let f = vector_grad_fft(&bc, &x, &g).unwrap();
            for (a, b) in d.iter().zip(&f) {
                prop_assert!(close(*a, *b, 1e-9), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn kernel_gradient_is_the_batch_sum_of_vector_gradients() {
        let (rows, cols, k): (usize, usize, usize) = (12, 20, 8);
        let n = rows.div_ceil(k) * cols.div_ceil(k) * k;
        let bc = BlockCirculant::new(rows, cols, k, Convention::FirstRow, values(n, 1)).unwrap();
        let mut kernel = BlockCirculantKernel::default();
        kernel.layers.insert(
            0,
            LayerCompression {
                k,
                convention: Convention::FirstRow,
                pot: None,
            },
        );
        let batch = 3;
        let x = Array2::from_shape_vec((batch, cols), values(batch * cols, 2)).unwrap();
        let dy = Array2::from_shape_vec((batch, rows), values(batch * rows, 3)).unwrap();
        let w = bc.to_dense();
        let (x32, dy32, w32) = (
            x.mapv(|v| v as f32),
            dy.mapv(|v| v as f32),
            w.mapv(|v| v as f32),
        );
        // Forward equals the block product.
        let y = kernel.forward(0, x32.view(), w32.view());
        for b in 0..batch {
            let want = bc.matvec(x.row(b).as_slice().unwrap()).unwrap();
            for (a, w) in y.row(b).iter().zip(&want) {
                assert!((f64::from(*a) - w).abs() < 1e-5);
            }
        }
        // Weight gradient: every entry carries its vector entry's gradient.
        let dw = kernel.weight_grad(0, dy32.view(), x32.view());
        let mut want = vec![0.0; n];
        for b in 0..batch {
            let g = bc
                .vector_grad(x.row(b).as_slice().unwrap(), dy.row(b).as_slice().unwrap())
                .unwrap();
            want.iter_mut().zip(g).for_each(|(a, v)| *a += v);
        }
        let want = BlockCirculant::new(rows, cols, k, Convention::FirstRow, want).unwrap();
        for ((r, c), &v) in dw.indexed_iter() {
            assert!((f64::from(v) - want.entry(r, c)).abs() < 1e-5);
        }
        // An SGD step keeps the matrix block-circulant.
        let stepped = &w32 - &(dw * 0.1f32);
        let proj = BlockCirculant::project(stepped.mapv(f64::from).view(), k, Convention::FirstRow)
            .unwrap()
            .to_dense();
        for (a, b) in proj.iter().zip(stepped.iter()) {
            assert!((a - f64::from(*b)).abs() < 1e-5);
        }
        // Uncompressed layers fall back to the float kernel.
        assert_eq!(kernel.effective_weight(1, w32.view()), None);
    }
}
