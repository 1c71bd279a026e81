//! Number formatting for the text reports: engineering notation with SI prefixes.

/// `x` in engineering notation: 4 significant digits, an SI prefix (a … T) and `unit`, e.g.
/// `eng(2.5e-6, "s") == "2.500 µs"`; outside the prefixes' range, scientific notation
/// (`eng(3.2e-21, "J") == "3.200e-21 J"`), never a rounded-away `0.000`. Zero prints as
/// `0 unit`; non-finite values as they are.
///
/// ```
/// use nacsim_scheduler::report::eng;
/// assert_eq!(eng(2.5e-6, "s"), "2.500 µs");
/// assert_eq!(eng(999.96e-9, "s"), "1.000 µs");
/// assert_eq!(eng(3.2e-16, "J"), "320.0 aJ");
/// assert_eq!(eng(3.2e-21, "J"), "3.200e-21 J");
/// assert_eq!(eng(0.0, "W"), "0 W");
/// ```
pub fn eng(x: f64, unit: &str) -> String {
    if x == 0.0 {
        return format!("0 {unit}");
    }
    if !x.is_finite() {
        return format!("{x} {unit}");
    }
    if !(1e-18..1e15).contains(&x.abs()) {
        return format!("{x:.3e} {unit}");
    }
    const PREFIXES: [(i32, &str); 11] = [
        (-18, "a"),
        (-15, "f"),
        (-12, "p"),
        (-9, "n"),
        (-6, "µ"),
        (-3, "m"),
        (0, ""),
        (3, "k"),
        (6, "M"),
        (9, "G"),
        (12, "T"),
    ];
    let exp3 = ((x.abs().log10() / 3.0).floor() as i32 * 3).clamp(-18, 12);
    // Rounding to 4 digits may carry into the next prefix (999.96 → 1000): step up then.
    let mut exp3 = exp3;
    let mut m = x / 10f64.powi(exp3);
    if format!("{:.*}", digits_after(m), m.abs()).starts_with("1000") && exp3 < 12 {
        exp3 += 3;
        m = x / 10f64.powi(exp3);
    }
    let prefix = PREFIXES
        .iter()
        .find(|(e, _)| *e == exp3)
        .map_or("", |(_, p)| p);
    format!("{:.*} {prefix}{unit}", digits_after(m), m)
}

/// Decimals that give 4 significant digits for a mantissa in [1, 1000).
fn digits_after(m: f64) -> usize {
    let a = m.abs();
    if a >= 100.0 {
        1
    } else if a >= 10.0 {
        2
    } else {
        3
    }
}
