//! Real-arithmetic references and the note's error bounds (note §2.3, §5.2). No time, no
//! rounding: the oracle the bit-exact units are tested against.
//!
//! Two references, as note §5.2 asks: `sin a · sin b` (tight, 1 LSB: tests the hardware) and
//! `a · b` (loose: tests the approximation).

/// `sin a · sin b`.
pub fn sin_product(a: f64, b: f64) -> f64 {
    a.sin() * b.sin()
}

/// `sin a · cos b` (identity I2).
pub fn sin_cos_product(a: f64, b: f64) -> f64 {
    a.sin() * b.cos()
}

/// Bound on `|ab − sin a sin b|`, valid for `|a|, |b| ≤ √6` (note §2.3, with
/// `s(x) = sin x / x ∈ [1 − x²/6, 1]`): `|ab| · ((a² + b²)/6 − a²b²/36)`.
pub fn substitution_bound(a: f64, b: f64) -> f64 {
    let (a2, b2) = (a * a, b * b);
    (a * b).abs() * ((a2 + b2) / 6.0 - a2 * b2 / 36.0)
}

/// Max of `|ab − sin a sin b|` over `[−R, R]²`, reached at `a = b = R` (note §5.1):
/// `R² − sin² R`.
pub fn worst_substitution_error(r: f64) -> f64 {
    r * r - r.sin().powi(2)
}

/// `cos θ` by `n` rotation-mode CORDIC iterations in real arithmetic (note §2.5):
/// `x0 = K_n`, `d_i = sign(z_i)` (`+1` at 0), `x −= d·y·2^-i`, `y += d·x·2^-i`, `z −= d·atan 2^-i`.
pub fn cordic_cos(theta: f64, iterations: u32) -> f64 {
    let (mut x, mut y, mut z) = (crate::product::cordic_gain(iterations), 0.0f64, theta);
    for i in 0..iterations {
        let d = if z >= 0.0 { 1.0 } else { -1.0 };
        let t = (-(i as f64)).exp2();
        (x, y, z) = (x - d * y * t, y + d * x * t, z - d * t.atan());
    }
    x
}

/// `sin a · sin b` via I1 with CORDIC cosines, real arithmetic (note §2.5):
/// `(cordic_cos(a−b) − cordic_cos(a+b)) / 2`.
pub fn cordic_sin_product(a: f64, b: f64, iterations: u32) -> f64 {
    (cordic_cos(a - b, iterations) - cordic_cos(a + b, iterations)) / 2.0
}

/// Mitchell's (1962) logarithmic product of mantissas `(1+x)(1+y)`, `x, y ∈ [0, 1)`: `1 + x + y`
/// if `x + y < 1`, else `2(x + y)`. Relative error −11.111 % at `x = y = 0.5` (note §4, §5.1).
pub fn mitchell_product(x: f64, y: f64) -> f64 {
    if x + y < 1.0 {
        1.0 + x + y
    } else {
        2.0 * (x + y)
    }
}
