//! The fused pass's input copy with AVX-512: pixel bytes, 16 samples × 16 features at a time,
//! scaled to `p / 255.0` (a correctly rounded division, the bits of [`Dataset::batch`]) and
//! transposed in registers into the feature-major buffer.
//!
//! [`Dataset::batch`]: crate::data::Dataset::batch

use std::arch::x86_64::*;

/// Scales and transposes `rows` rows of `width` pixel bytes (`src`, row-major) into `dst`
/// (`dst[f · rows + i] = src[i · width + f] / 255`): whole 16 × 16 tiles with AVX-512, the
/// rest by `scalar`. Returns false (and writes nothing) when the CPU lacks AVX-512F.
pub(crate) fn transpose_pixels(src: &[u8], rows: usize, dst: &mut [f32]) -> bool {
    if !std::is_x86_feature_detected!("avx512f") {
        return false;
    }
    assert!(rows > 0 && src.len().is_multiple_of(rows) && dst.len() == src.len());
    // SAFETY: AVX-512F is present (checked above); the sizes are checked.
    unsafe { tiles(src, rows, src.len() / rows, dst) };
    true
}

#[target_feature(enable = "avx512f")]
unsafe fn tiles(src: &[u8], rows: usize, width: usize, dst: &mut [f32]) {
    let (rt, wt) = (rows / 16 * 16, width / 16 * 16);
    let d = _mm512_set1_ps(255.0);
    for i0 in (0..rt).step_by(16) {
        for k0 in (0..wt).step_by(16) {
            let mut r = [_mm512_setzero_ps(); 16];
            for (i, v) in r.iter_mut().enumerate() {
                let at = (i0 + i) * width + k0;
                let bytes = &src[at..at + 16];
                // SAFETY: 16 bytes in bounds (sliced above).
                let b = unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) };
                *v = _mm512_div_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b)), d);
            }
            let t = transpose(&r);
            for (k, v) in t.iter().enumerate() {
                let at = (k0 + k) * rows + i0;
                let out = &mut dst[at..at + 16];
                // SAFETY: 16 floats in bounds (sliced above).
                unsafe { _mm512_storeu_ps(out.as_mut_ptr(), *v) };
            }
        }
    }
    // Edges: the last rows % 16 samples, and the last width % 16 features of the rest.
    let scalar = |i: usize, k: usize, dst: &mut [f32]| {
        dst[k * rows + i] = f32::from(src[i * width + k]) / 255.0;
    };
    for i in rt..rows {
        for k in 0..width {
            scalar(i, k, dst);
        }
    }
    for i in 0..rt {
        for k in wt..width {
            scalar(i, k, dst);
        }
    }
}

/// 16 × 16 transpose: `out[c]` lane `i` = `r[i]` lane `c`.
#[target_feature(enable = "avx512f")]
fn transpose(r: &[__m512; 16]) -> [__m512; 16] {
    // Pairs of rows interleaved per 128-bit lane.
    let mut t = [_mm512_setzero_ps(); 16];
    for p in 0..8 {
        t[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
        t[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
    }
    // u[4g + j], lane L: rows 4g..4g+4 of column 4L + j.
    let mut u = [_mm512_setzero_ps(); 16];
    let pd = _mm512_castps_pd;
    for g in 0..4 {
        let (a, b, c, e) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
        u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(a), pd(c)));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(a), pd(c)));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(b), pd(e)));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(b), pd(e)));
    }
    let mut out = [_mm512_setzero_ps(); 16];
    for j in 0..4 {
        let v0 = _mm512_shuffle_f32x4::<0x88>(u[j], u[4 + j]);
        let v1 = _mm512_shuffle_f32x4::<0xDD>(u[j], u[4 + j]);
        let v2 = _mm512_shuffle_f32x4::<0x88>(u[8 + j], u[12 + j]);
        let v3 = _mm512_shuffle_f32x4::<0xDD>(u[8 + j], u[12 + j]);
        out[j] = _mm512_shuffle_f32x4::<0x88>(v0, v2);
        out[8 + j] = _mm512_shuffle_f32x4::<0xDD>(v0, v2);
        out[4 + j] = _mm512_shuffle_f32x4::<0x88>(v1, v3);
        out[12 + j] = _mm512_shuffle_f32x4::<0xDD>(v1, v3);
    }
    out
}
