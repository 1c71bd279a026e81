//! The certified float fast path of [`SineNetwork`] (see its module docs, "Speed"): the
//! operand features of a bilinear unit (`Bilinear`), each layer's packed weight features
//! (`FastLayer`), and the three levels run on a block of images — an f32 product with its
//! proven bound (`gemm`), a sparse f64 dot product for the outputs it leaves open, and the
//! product-by-product path for what is still open.

use super::{SineLayer, SineNetwork, argmax, argmax_f64, gemm, round_real};
use crate::activation::RectifiedSine;
use crate::format::CodeRounding;
use crate::product::{SineProduct, SineUnit};

/// The weight features `ũ = scale · u(w)` of one layer (exact scaling by a power of two), for
/// the two float levels of the fast path (see [`SineNetwork`] "Speed").
#[derive(Debug, Clone)]
pub(super) struct FastLayer {
    /// Level 1: `ũ` rounded to f32, `[fan_in, out]` in strips.
    strips: gemm::Strips,
    /// Level 2: `ũ` rounded to f32 (half the bytes to fetch), output-major `[out][fan_in]`.
    rows: Vec<f32>,
    /// `‖ũ_o‖₂` per output, raised by a relative `1e-9` over its own f64 rounding.
    norm: Vec<f64>,
    /// `max |ũ|` over the layer.
    max_abs: f64,
}

impl FastLayer {
    /// Packs the features of the weight codes `w` (`[out][fan_in]`).
    pub(super) fn new(fb: &Bilinear, w: &[i32], fan_in: usize, out: usize) -> Self {
        // `scale` is a power of two: `ũ` is the f64 feature times it, exactly.
        let rows: Vec<f64> = w.iter().map(|&i| fb.scale * fb.at(i)).collect();
        let norm = rows
            .chunks_exact(fan_in)
            .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt() * (1.0 + 1e-9))
            .collect();
        let max_abs = rows.iter().fold(0f64, |m, v| m.max(v.abs()));
        FastLayer {
            strips: gemm::Strips::new(fan_in, out, |k, o| rows[o * fan_in + k]),
            rows: rows.iter().map(|&v| v as f32).collect(),
            norm,
            max_abs,
        }
    }
}

/// The fast path of a unit whose product is a bilinear form plus a bounded error:
/// `P(i, j) = scale · u(i) · v(j) + e`, `|e| ≤ e_max` (see [`SineNetwork`] "Speed").
#[derive(Debug, Clone)]
pub(super) struct Bilinear {
    /// `u(i) = v(i)` for codes `i` in `−max..=max`, at index `i + max`.
    feature: Vec<f64>,
    /// `feature` rounded to nearest f32 (level 1's input features).
    feature32: Vec<f32>,
    /// Offset of code 0 in `feature`.
    zero: usize,
    /// `scale`: `2^F` (versine, `u = sin(i · 2^-f)`) or `2^(F − 2f)` (quarter-square, `u = i`).
    scale: f64,
    /// Bound on `|P − scale · u(i) · v(j)|` over the table, in product LSBs.
    e_max: f64,
}

impl SineNetwork {
    /// [`SineNetwork::exact_acc`] over an image's non-zero inputs (the same integer).
    fn exact_acc_sparse(&self, l: &SineLayer, o: usize, row: &SparseRow) -> i64 {
        let w = &l.w[o * l.fan_in..(o + 1) * l.fan_in];
        let mut acc = l.bias[o];
        match &self.diff_table {
            Some(t) => {
                for (&k, &j) in row.k.iter().zip(&row.j) {
                    let i = w[k as usize];
                    acc += t[(i + j).unsigned_abs() as usize] - t[(i - j).unsigned_abs() as usize];
                }
            }
            None => {
                for (&k, &j) in row.k.iter().zip(&row.j) {
                    acc += self.unit.product(w[k as usize], j);
                }
            }
        }
        acc
    }

    /// The fast path on a block of images (see "Speed" in the module docs). Level 1: an f32
    /// product gives each accumulator to within its proven bound; an output whose requantised,
    /// rectified code (or, for the logits, the argmax) is the same at both ends of its interval
    /// takes that value. Level 2: every other output is recomputed as an f64 dot product, with
    /// the tighter f64 bound. Level 3: what is still open is computed product by product. The
    /// result equals the exact path.
    pub(super) fn predict_block_fast(
        &self,
        fb: &Bilinear,
        images: &[&[u8]],
        preds: &mut [usize],
        simd: bool,
    ) {
        let n = images.len();
        let mut x = vec![0i32; n * self.input_len];
        let codes: &[i32; 256] = self.input_codes[..]
            .try_into()
            .expect("one code per 8-bit pixel");
        for (xb, img) in x.chunks_exact_mut(self.input_len).zip(images) {
            for (c, &p) in xb.iter_mut().zip(*img) {
                *c = codes[p as usize];
            }
        }
        let last = self.layers.len() - 1;
        let shift = self.format.out_frac_bits - self.format.frac_bits;
        let rounding = self.config.rounding;
        let monotone = self.config.activation != RectifiedSine::Periodic;
        let max_b = self.format.max_abs_b as i32;
        let inv_step = (-(shift as f64)).exp2();
        // Codes as reals: the requantised value is clamped to the activation's range, whose
        // ends are integers, so float clamping and comparing is exact.
        let (clo, chi) = match self.config.activation {
            RectifiedSine::Clamped => (0.0, self.half_pi.min(max_b) as f64),
            RectifiedSine::Unclamped => (0.0, max_b as f64),
            RectifiedSine::Periodic => (f64::NEG_INFINITY, f64::INFINITY),
        };
        let mut row = SparseRow::default();
        let code_of = |c: f64| {
            if monotone {
                c as i32
            } else {
                self.clamp_code(c as i32)
            }
        };
        for (li, l) in self.layers.iter().enumerate() {
            let fl = l.fast.as_ref().expect("fast path has features");
            let (fan_in, out) = (l.fan_in, l.out);
            let groups = gemm::Groups::new(n, fan_in, &x, &fb.feature32, fb.zero);
            let mut s = vec![0f32; n * out];
            gemm::product(&groups, &fl.strips, &mut s, simd);
            if li < last {
                let mut next = vec![0i32; n * out];
                let mut lo_c = vec![0f64; out];
                let mut ok = vec![false; out];
                for b in 0..n {
                    let (r2, vnorm) = row.load(&x[b * fan_in..(b + 1) * fan_in], fb, fl, simd);
                    let bound = Bound {
                        table: r2,
                        f32_per_norm: gemm::rel_bound(groups.terms(b)) * vnorm,
                        inv_step,
                        clo,
                        chi,
                    };
                    certify(
                        &bound,
                        rounding,
                        &s[b * out..(b + 1) * out],
                        &l.bias_f64,
                        &fl.norm,
                        &mut lo_c,
                        &mut ok,
                    );
                    let nb = &mut next[b * out..(b + 1) * out];
                    for (o, (d, (&c, &k))) in nb.iter_mut().zip(lo_c.iter().zip(&ok)).enumerate() {
                        if k {
                            *d = code_of(c);
                            continue;
                        }
                        let mid = row.dot(fl, o, simd) + l.bias_f64[o];
                        // Plus the f32 rounding of `ũ` and the rounding of the bias add and of
                        // mid ± r.
                        let r = r2 + F32_ROWS * fl.norm[o] * vnorm;
                        let r = r + 8.0 * f64::EPSILON * (mid.abs() + r);
                        let cl = round_real(rounding, (mid - r) * inv_step).max(clo).min(chi);
                        let ch = round_real(rounding, (mid + r) * inv_step).max(clo).min(chi);
                        *d = if cl == ch {
                            code_of(cl)
                        } else {
                            self.activate(self.exact_acc_sparse(l, o, &row))
                        };
                    }
                }
                x = next;
            } else {
                let mut mid = vec![0f64; out];
                let mut rad = vec![0f64; out];
                for (b, p) in preds.iter_mut().enumerate() {
                    let (r2, vnorm) = row.load(&x[b * fan_in..(b + 1) * fan_in], fb, fl, simd);
                    let f32_per_norm = gemm::rel_bound(groups.terms(b)) * vnorm;
                    for (o, (m, r)) in mid.iter_mut().zip(&mut rad).enumerate() {
                        *m = f64::from(s[b * out + o]) + l.bias_f64[o];
                        let r1 = r2 + f32_per_norm * fl.norm[o];
                        *r = r1 + 8.0 * f64::EPSILON * (m.abs() + r1);
                    }
                    if let Some(best) = certain_argmax(&mid, &rad) {
                        *p = best;
                        continue;
                    }
                    for (o, (m, r)) in mid.iter_mut().zip(&mut rad).enumerate() {
                        *m = row.dot(fl, o, simd) + l.bias_f64[o];
                        let r1 = r2 + F32_ROWS * fl.norm[o] * vnorm;
                        *r = r1 + 8.0 * f64::EPSILON * (m.abs() + r1);
                    }
                    *p = certain_argmax(&mid, &rad).unwrap_or_else(|| {
                        let acc: Vec<i64> = (0..out)
                            .map(|o| self.exact_acc_sparse(l, o, &row))
                            .collect();
                        argmax(&acc)
                    });
                }
            }
        }
    }
}

/// One image's non-zero inputs of a layer (buffers reused from image to image).
#[derive(Debug, Default)]
struct SparseRow {
    /// Input indices `k`.
    k: Vec<u32>,
    /// Their codes `j`.
    j: Vec<i32>,
    /// Their f64 features `ṽ = u(j)`.
    v: Vec<f64>,
    /// The features of all `len` inputs (`ṽ`, 0 for a zero input), filled by the first
    /// level-2 dot product of the image (`dense_ready`).
    dense: Vec<f64>,
    /// Whether `dense` holds the current image's features.
    dense_ready: bool,
    /// The number of inputs of the current image.
    len: usize,
}

impl SparseRow {
    /// Loads the non-zero inputs of `xb`; returns `(r2, ‖ṽ‖₂)`: `r2` is the table error of
    /// every non-zero product plus the f64 error of the level-2 dot product, `(len + 8)·2^-53`
    /// relative to `Σ |ũ · ṽ|` (sin and products ≤ 1 ulp each) bounded by `max|ũ| · Σ|ṽ|`,
    /// doubled for margin (it also covers the f64 features' own error for level 1);
    /// `‖ṽ‖₂` (raised by a relative `1e-9` over its rounding) gives level 1's
    /// `Σ|ũṽ| ≤ ‖ũ_o‖₂ ‖ṽ‖₂`.
    fn load(&mut self, xb: &[i32], fb: &Bilinear, fl: &FastLayer, simd: bool) -> (f64, f64) {
        let len = xb.len();
        self.len = len;
        self.dense_ready = false;
        #[cfg(target_arch = "x86_64")]
        if simd
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
        {
            // SAFETY: the features the function is compiled for are present.
            let (pos, sum, sq) = unsafe { self.load_avx512(xb, fb) };
            return Self::bounds(pos, len, sum, sq, fb, fl);
        }
        let _ = simd;
        self.k.resize(len, 0);
        self.j.resize(len, 0);
        self.v.resize(len, 0.0);
        // Branch-free compaction.
        let mut pos = 0;
        {
            let (kb, jb, vb) = (&mut self.k[..], &mut self.j[..], &mut self.v[..]);
            for (k, &c) in xb.iter().enumerate() {
                kb[pos] = k as u32;
                jb[pos] = c;
                vb[pos] = fb.at(c);
                pos += usize::from(c != 0);
            }
        }
        self.k.truncate(pos);
        self.j.truncate(pos);
        self.v.truncate(pos);
        // Four partial sums (their order does not matter: rounded up below).
        let (mut sum, mut sq) = ([0f64; 4], [0f64; 4]);
        let chunks = self.v.chunks_exact(4);
        for &v in chunks.remainder() {
            sum[0] += v.abs();
            sq[0] += v * v;
        }
        for c in chunks {
            for i in 0..4 {
                sum[i] += c[i].abs();
                sq[i] += c[i] * c[i];
            }
        }
        let sum: f64 = sum.iter().sum();
        let sq: f64 = sq.iter().sum();
        Self::bounds(pos, len, sum, sq, fb, fl)
    }

    /// `(r2, ‖ṽ‖₂)` of [`SparseRow::load`] from the count of non-zero inputs, `Σ|ṽ|` and
    /// `Σṽ²` (each computed in f64 in some order; the margins cover their rounding).
    fn bounds(
        pos: usize,
        len: usize,
        sum: f64,
        sq: f64,
        fb: &Bilinear,
        fl: &FastLayer,
    ) -> (f64, f64) {
        let r2 = pos as f64 * fb.e_max
            + 2.0 * (len as f64 + 8.0) * f64::EPSILON * fl.max_abs * sum
            + 1e-6;
        (r2, sq.sqrt() * (1.0 + 1e-9))
    }

    /// [`SparseRow::load`] with AVX-512: sixteen codes at a time compressed into registers,
    /// the features gathered eight at a time. Returns the count, `Σ|ṽ|` and `Σṽ²`.
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX-512VL.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl")]
    unsafe fn load_avx512(&mut self, xb: &[i32], fb: &Bilinear) -> (usize, f64, f64) {
        use std::arch::x86_64::*;
        let len = xb.len();
        // Room for a full register past the last value.
        self.k.resize(len + 16, 0);
        self.j.resize(len + 16, 0);
        let mut pos = 0;
        let mut iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let sixteen = _mm512_set1_epi32(16);
        let chunks = xb.chunks_exact(16);
        let rest = chunks.remainder();
        for c in chunks {
            // SAFETY: `c` holds 16 codes; `k`, `j` hold at least `pos + 16` values.
            unsafe {
                let cv = _mm512_loadu_si512(c.as_ptr().cast());
                let m = _mm512_test_epi32_mask(cv, cv);
                _mm512_storeu_si512(
                    self.k.as_mut_ptr().add(pos).cast(),
                    _mm512_maskz_compress_epi32(m, iota),
                );
                _mm512_storeu_si512(
                    self.j.as_mut_ptr().add(pos).cast(),
                    _mm512_maskz_compress_epi32(m, cv),
                );
                pos += m.count_ones() as usize;
            }
            iota = _mm512_add_epi32(iota, sixteen);
        }
        let k0 = len - rest.len();
        for (k, &c) in rest.iter().enumerate() {
            self.k[pos] = (k0 + k) as u32;
            self.j[pos] = c;
            pos += usize::from(c != 0);
        }
        self.v.resize(pos + 8, 0.0);
        let zero = _mm256_set1_epi32(fb.zero as i32);
        let (mut sum, mut sq) = (_mm512_setzero_pd(), _mm512_setzero_pd());
        let mut i = 0;
        while i < pos {
            let m: u8 = if pos - i >= 8 {
                0xff
            } else {
                (1u8 << (pos - i)) - 1
            };
            // SAFETY: `j` (`len + 16` values) and `v` (`pos + 8`) hold `i + 8` values; the
            // masked lanes are neither read nor gathered; every code indexes `feature` (codes
            // are clamped to the table's range).
            unsafe {
                let idx = _mm256_add_epi32(
                    _mm256_maskz_loadu_epi32(m, self.j.as_ptr().add(i).cast()),
                    zero,
                );
                let v = _mm512_mask_i32gather_pd::<8>(
                    _mm512_setzero_pd(),
                    m,
                    idx,
                    fb.feature.as_ptr().cast(),
                );
                _mm512_storeu_pd(self.v.as_mut_ptr().add(i), v);
                sum = _mm512_add_pd(sum, _mm512_abs_pd(v));
                sq = _mm512_fmadd_pd(v, v, sq);
            }
            i += 8;
        }
        self.k.truncate(pos);
        self.j.truncate(pos);
        self.v.truncate(pos);
        (pos, _mm512_reduce_add_pd(sum), _mm512_reduce_add_pd(sq))
    }

    /// Level 2: `Σ_k ũ_ok ṽ_k` in f64 over all inputs (a zero input adds exactly 0; its bound
    /// in `r2` counts `len` terms), contiguous rather than gathered.
    fn dot(&mut self, fl: &FastLayer, o: usize, simd: bool) -> f64 {
        let fan_in = fl.rows.len() / fl.norm.len();
        if !self.dense_ready {
            self.dense.clear();
            self.dense.resize(self.len, 0.0);
            for (&k, &v) in self.k.iter().zip(&self.v) {
                self.dense[k as usize] = v;
            }
            self.dense_ready = true;
        }
        gemm::dense_dot(&fl.rows[o * fan_in..(o + 1) * fan_in], &self.dense, simd)
    }
}

/// Level 1's interval of one image's accumulators: `mid = ŝ + bias`, radius
/// `table + f32_per_norm · ‖ũ_o‖₂` plus the rounding of the bias add and of `mid ± r`.
struct Bound {
    /// Table error and f64 errors of the image (product LSBs).
    table: f64,
    /// `rel_bound(m) · ‖ṽ‖₂`, to be multiplied by `‖ũ_o‖₂`.
    f32_per_norm: f64,
    /// `2^-(F − f)`, accumulator LSB → code.
    inv_step: f64,
    /// The activation's code range.
    clo: f64,
    /// The activation's code range.
    chi: f64,
}

impl Bound {
    /// For every output: the code at the interval's low end (`code`), and whether the high
    /// end gives the same (`ok`). Branch-free, so that it vectorises.
    #[inline(always)]
    fn certify(
        &self,
        round: impl Fn(f64) -> f64,
        s: &[f32],
        bias: &[f64],
        norm: &[f64],
        code: &mut [f64],
        ok: &mut [bool],
    ) {
        for ((((c, k), &sv), &bias), &nu) in code.iter_mut().zip(ok).zip(s).zip(bias).zip(norm) {
            let mid = f64::from(sv) + bias;
            let r1 = self.table + self.f32_per_norm * nu;
            let r = r1 + 8.0 * f64::EPSILON * (mid.abs() + r1);
            let cl = round((mid - r) * self.inv_step).max(self.clo).min(self.chi);
            let ch = round((mid + r) * self.inv_step).max(self.clo).min(self.chi);
            *c = cl;
            *k = cl == ch;
        }
    }
}

/// [`Bound::certify`] of one image's outputs with `rounding`, compiled for AVX-512 and AVX2
/// as well (the loop vectorises).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn certify(
    bound: &Bound,
    rounding: CodeRounding,
    s: &[f32],
    bias: &[f64],
    norm: &[f64],
    code: &mut [f64],
    ok: &mut [bool],
) {
    match rounding {
        CodeRounding::HalfEven => bound.certify(
            |t| round_real(CodeRounding::HalfEven, t),
            s,
            bias,
            norm,
            code,
            ok,
        ),
        CodeRounding::HalfUp => bound.certify(
            |t| round_real(CodeRounding::HalfUp, t),
            s,
            bias,
            norm,
            code,
            ok,
        ),
        CodeRounding::Floor => bound.certify(
            |t| round_real(CodeRounding::Floor, t),
            s,
            bias,
            norm,
            code,
            ok,
        ),
    }
}

/// The argmax of reals known to within `rad` each, if certain: the best lower bound beats
/// every other upper bound (so the exact argmax, first on ties, is the same index).
fn certain_argmax(mid: &[f64], rad: &[f64]) -> Option<usize> {
    let best = argmax_f64(mid);
    let lo = mid[best] - rad[best];
    mid.iter()
        .zip(rad)
        .enumerate()
        .all(|(o, (m, r))| o == best || m + r < lo)
        .then_some(best)
}

/// Level 2's relative error from `ũ` rounded to f32: `|fl32(ũ) − ũ| ≤ 2^-24 |ũ|`, so
/// `|Σ fl32(ũ)ṽ − Σ ũṽ| ≤ 2^-24 Σ|ũṽ| ≤ 2^-24 ‖ũ_o‖₂ ‖ṽ‖₂`; the products and sums in f64
/// are in `r2` (whose `max|ũ|` term has a factor 2 of margin, covering `fl32(ũ) ≤ (1 + 2^-24) ũ`).
/// Raised by `2^-20` relative for margin.
const F32_ROWS: f64 = (1.0 + 1.0 / 1_048_576.0) / 16_777_216.0;

impl Bilinear {
    /// The fast path of `unit`, if its product has the form `scale · u(i) · v(j) + e`.
    ///
    /// Versine: `G[|i+j|] − G[|i−j|] = 2^F (sin²((i+j)θ) − sin²((i−j)θ)) + r_s − r_d
    /// = 2^F sin a sin b + r_s − r_d` (`θ = 2^-(f+1)`, `sin²x − sin²y = sin(x+y) sin(x−y)`),
    /// with `r_k = G[k] − 2^F sin²(kθ)` the table's rounding, so `e_max = 2 max |r_k|` (≤ 1).
    /// Quarter-square: `Q[|i+j|] − Q[|i−j|] = i·j · 2^(F−2f)` exactly, `e_max = 0`.
    pub(super) fn for_unit(unit: &SineUnit) -> Option<Self> {
        let fmt = *unit.format();
        let max = fmt.max_abs_a.max(fmt.max_abs_b) as i64;
        let q = fmt.operand_lsb();
        let (feature, scale, e_max): (Vec<f64>, f64, f64) = match unit {
            SineUnit::Versine(t) => {
                let scale = fmt.out_lsb().recip();
                let theta = (-(fmt.frac_bits as f64 + 1.0)).exp2();
                let r = t
                    .entries()
                    .iter()
                    .enumerate()
                    .map(|(k, &g)| (g as f64 - scale * (k as f64 * theta).sin().powi(2)).abs())
                    .fold(0f64, f64::max);
                let feature = (-max..=max).map(|i| (i as f64 * q).sin()).collect();
                // Margin for the f64 evaluation of r_k itself (entries ≤ 2^32, ulp ≤ 2^-20).
                (feature, scale, 2.0 * r + 1e-5)
            }
            SineUnit::QuarterSquare(_) => {
                let scale = (fmt.out_frac_bits as f64 - 2.0 * fmt.frac_bits as f64).exp2();
                ((-max..=max).map(|i| i as f64).collect(), scale, 0.0)
            }
            _ => return None,
        };
        Some(Bilinear {
            feature32: feature.iter().map(|&v| v as f32).collect(),
            feature,
            zero: max as usize,
            scale,
            e_max,
        })
    }

    /// The feature of code `i`.
    #[inline]
    fn at(&self, i: i32) -> f64 {
        self.feature[(self.zero as i64 + i as i64) as usize]
    }
}
