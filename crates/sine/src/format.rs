//! Operand and table formats, and the table geometry derived from them (note §2.1–§2.2).
//!
//! An operand is a two's-complement integer code `i` with value `a = i · 2^-f` radians (`f` =
//! [`frac_bits`](ProductFormat::frac_bits)). A product is an integer `P` with value `P · 2^-F`
//! (`F` = [`out_frac_bits`](ProductFormat::out_frac_bits)). A table indexed by `|i ± j|` needs
//! `max|i| + max|j| + 1` entries ([`table_entries`]).
//!
//! The `const fn`s here let a design fix its geometry at compile time:
//!
//! ```
//! use nacsim_sine::format::{table_entries, versine_width_bound};
//! // f = 8, |a|, |b| ≤ 0.5 (codes ≤ 128): 257 entries, entries fit in 15 bits (exact: 14).
//! const ENTRIES: u32 = table_entries(128, 128);
//! const _: () = assert!(ENTRIES == 257);
//! const _: () = assert!(versine_width_bound(8, 16, 256) == 15);
//! ```

use fixed::FixedI32;
use fixed::types::extra::LeEqU32;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Largest accepted operand fraction width `f` (bits). With `f ≤ 20` the table for `|a|, |b| ≤ 1`
/// stays ≤ 2^21 + 1 entries.
pub const MAX_FRAC_BITS: u32 = 20;

/// Largest accepted product fraction width `F` (bits): keeps every accumulated sum of up to 2^28
/// products inside `i64`, and the f64 table generation (entries ≤ 2^31, f64 ulp ≤ 2^-21) accurate
/// to well below the 1e-6 LSB tie margin checked at build (note §2.1 "Table generation").
pub const MAX_OUT_FRAC_BITS: u32 = 32;

/// Largest accepted table size (entries), 2^22 + 1 (32 MiB of `i64`); beyond that the design is
/// not a ROM.
pub const MAX_TABLE_ENTRIES: u32 = (1 << 22) + 1;

/// Entries of a table indexed by `|i ± j|` when `|i| ≤ max_a`, `|j| ≤ max_b` (codes):
/// `K + 1` with `K = max_a + max_b` (note §2.1, §2.2 "Rule").
pub const fn table_entries(max_a: u32, max_b: u32) -> u32 {
    max_a + max_b + 1
}

/// Upper bound on the bit width of the versine table's largest entry `G[k_max]`, from
/// `sin² x ≤ x²`: `G[k] ≤ ⌈2^F · k² · 2^-(2f+2)⌉`. The exact width (note §2.2 "max G (width)",
/// e.g. 14 b for f = 8, F = 16) is [`VersineTable::width_bits`](crate::VersineTable::width_bits).
pub const fn versine_width_bound(frac_bits: u32, out_frac_bits: u32, k_max: u32) -> u32 {
    let k2 = (k_max as u128) * (k_max as u128);
    let shift = 2 * frac_bits + 2;
    let scaled = if out_frac_bits >= shift {
        k2 << (out_frac_bits - shift)
    } else {
        let s = shift - out_frac_bits;
        (k2 + (1u128 << s) - 1) >> s
    };
    u128::BITS - scaled.leading_zeros()
}

/// The note's f = 8, F = 16 format, `|a|, |b| ≤ 0.5` (§2.2 row 2, §5.1 golden vectors):
/// 257 entries, largest entry 15 063 (14 bits).
pub const F8_F16: ProductFormat = ProductFormat::half_range(8, 16);
/// The note's f = 10, F = 24 format, `|a|, |b| ≤ 0.5` (§2.2 row 5, the `sine-lut` design):
/// 1 025 entries, largest entry 3 856 224 (22 bits).
pub const F10_F24: ProductFormat = ProductFormat::half_range(10, 24);
/// The note's f = 12, F = 24 format, `|a|, |b| ≤ 0.5` (§2.2 row 6): 4 097 entries, 22 bits.
pub const F12_F24: ProductFormat = ProductFormat::half_range(12, 24);

// Build-time checks of the presets' geometry (exact widths are tested against the note).
const _: () = assert!(F8_F16.entries() == 257 && F10_F24.entries() == 1025);
const _: () = assert!(F12_F24.entries() == 4097);
const _: () = assert!(versine_width_bound(8, 16, F8_F16.k_max()) <= 15);
const _: () = assert!(versine_width_bound(10, 24, F10_F24.k_max()) <= 23);
const _: () = assert!(versine_width_bound(12, 24, F12_F24.k_max()) <= 23);

/// Code of the angle `π/2` at `frac_bits` fraction bits, `round(π/2 · 2^f)` (half-even; never a
/// tie since π is irrational). The clamp point of [`RectifiedSine::Clamped`](crate::RectifiedSine).
pub fn half_pi_code(frac_bits: u32) -> u32 {
    (std::f64::consts::FRAC_PI_2 * (1u64 << frac_bits) as f64).round_ties_even() as u32
}

/// Largest `|i| + |j|` for which the versine table is monotone (`|a| + |b| ≤ π`), so that
/// `sign(P) ∈ {sign(i·j), 0}` (note §5.2 item 4): `⌊π · 2^f⌋`.
pub fn monotone_limit(frac_bits: u32) -> u32 {
    (std::f64::consts::PI * (1u64 << frac_bits) as f64).floor() as u32
}

/// The formats of one product unit: operand fraction bits `f`, product fraction bits `F`, and the
/// operand range the table must cover.
///
/// Defaults of the note (§2.2): `f = 8, F = 16` or `f = 10, F = 24`, `|a|, |b| ≤ 0.5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductFormat {
    /// Operand fraction bits `f` (1..=20): operand value `a = i · 2^-f` rad.
    pub frac_bits: u32,
    /// Product fraction bits `F` (`f..=32`): product value `P · 2^-F`. `F < f` makes every
    /// product of two 1-LSB operands vanish.
    pub out_frac_bits: u32,
    /// Largest `|i|` of the first operand (weight or error), as a code (≥ 1).
    pub max_abs_a: u32,
    /// Largest `|j|` of the second operand (angle), as a code (≥ 1).
    pub max_abs_b: u32,
}

impl ProductFormat {
    /// `f` fraction bits, `F` product bits, and `|a|, |b| ≤ 0.5` (codes ≤ `2^(f−1)`), the range
    /// of note §2.2.
    pub const fn half_range(frac_bits: u32, out_frac_bits: u32) -> Self {
        let half = 1u32 << (frac_bits.saturating_sub(1));
        ProductFormat {
            frac_bits,
            out_frac_bits,
            max_abs_a: half,
            max_abs_b: half,
        }
    }

    /// Largest table index `K = max_abs_a + max_abs_b`.
    pub const fn k_max(&self) -> u32 {
        self.max_abs_a + self.max_abs_b
    }

    /// Entries `K + 1` of a table indexed by `|i ± j|` ([`table_entries`]).
    pub const fn entries(&self) -> u32 {
        table_entries(self.max_abs_a, self.max_abs_b)
    }

    /// Value of one operand LSB, `2^-f`.
    pub fn operand_lsb(&self) -> f64 {
        (-(self.frac_bits as f64)).exp2()
    }

    /// Value of one product LSB, `2^-F`.
    pub fn out_lsb(&self) -> f64 {
        (-(self.out_frac_bits as f64)).exp2()
    }

    /// Checks the formats.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first broken field and the limit: `frac_bits` in 1..=20,
    /// `out_frac_bits` at least `frac_bits` and at most 32, `max_abs_a`/`max_abs_b` at least 1,
    /// and the table at most [`MAX_TABLE_ENTRIES`].
    pub fn validate(&self) -> Result<(), Error> {
        if !(1..=MAX_FRAC_BITS).contains(&self.frac_bits) {
            return Err(Error::config(
                "format.frac_bits",
                self.frac_bits,
                format!("must be in 1..={MAX_FRAC_BITS}"),
            ));
        }
        if self.out_frac_bits < self.frac_bits {
            return Err(Error::config(
                "format.out_frac_bits",
                self.out_frac_bits,
                format!("must be at least frac_bits = {}", self.frac_bits),
            ));
        }
        if self.out_frac_bits > MAX_OUT_FRAC_BITS {
            return Err(Error::config(
                "format.out_frac_bits",
                self.out_frac_bits,
                format!("must be at most {MAX_OUT_FRAC_BITS}"),
            ));
        }
        for (name, v) in [("max_abs_a", self.max_abs_a), ("max_abs_b", self.max_abs_b)] {
            if v == 0 {
                return Err(Error::config(
                    &format!("format.{name}"),
                    v,
                    "must be at least 1",
                ));
            }
        }
        let entries = self.max_abs_a as u64 + self.max_abs_b as u64 + 1;
        if entries > MAX_TABLE_ENTRIES as u64 {
            return Err(Error::config(
                "format.max_abs_a",
                self.max_abs_a,
                format!(
                    "with max_abs_b = {} the table needs {entries} entries, more than {MAX_TABLE_ENTRIES}",
                    self.max_abs_b
                ),
            ));
        }
        Ok(())
    }
}

/// How the sine datapath rounds to an integer code: a real angle to an operand code
/// ([`quantize`], [`CodeRounding::round`]) and an accumulator to fewer fraction bits by a right
/// shift ([`requantize`], [`CodeRounding::shift_right`]); both give the same integer for the same
/// value. Never a bare `as` cast (docs/style.md §2.2).
///
/// Not the same choice as the other two rounding enums of the workspace:
/// [`nacsim_nn::quant::Rounding`] (int8 quantization of reals, which has no ties-toward-+∞
/// mode, the one a hardware `(acc + ½) >> s` gives) and the in-situ trainer's pulse-count
/// rounding (nearest or stochastic). RON names the variants: `HalfEven`, `HalfUp`, `Floor`.
///
/// | variant | 2.5 | −2.5 | −2.4 | hardware |
/// |---|---|---|---|---|
/// | `HalfEven` | 2 | −2 | −2 | round to nearest, ties to even |
/// | `HalfUp` | 3 | −2 | −2 | `(v + (1 << (s−1))) >> s` |
/// | `Floor` | 2 | −3 | −3 | `v >> s` |
///
/// ```
/// use nacsim_sine::CodeRounding;
/// assert_eq!(CodeRounding::HalfUp.round(-2.5), -2.0);
/// assert_eq!(CodeRounding::HalfUp.shift_right(-5, 1), -2); // −5/2 = −2.5 → −2
/// assert_eq!(CodeRounding::HalfEven.shift_right(5, 1), 2);
/// assert_eq!(CodeRounding::Floor.shift_right(-5, 1), -3);
/// let r: CodeRounding = ron::from_str("HalfUp").unwrap();
/// assert_eq!(r, CodeRounding::HalfUp);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum CodeRounding {
    /// Round to nearest, ties to even (IEEE default; the tables use this, note §2.1).
    #[default]
    HalfEven,
    /// Round to nearest, ties toward +∞ (`(x + ½) >> s` in hardware, note §2.1 requantiser).
    HalfUp,
    /// Round toward −∞ (a bare arithmetic right shift).
    Floor,
}

impl CodeRounding {
    /// Rounds `x` to an integer.
    pub fn round(self, x: f64) -> f64 {
        match self {
            CodeRounding::HalfEven => x.round_ties_even(),
            CodeRounding::HalfUp => (x + 0.5).floor(),
            CodeRounding::Floor => x.floor(),
        }
    }

    /// `v · 2^-s` rounded to an integer, in integer arithmetic (`s ≤ 62`).
    pub fn shift_right(self, v: i64, s: u32) -> i64 {
        if s == 0 {
            return v;
        }
        match self {
            CodeRounding::Floor => v >> s,
            CodeRounding::HalfUp => (v + (1i64 << (s - 1))) >> s,
            CodeRounding::HalfEven => {
                let q = v >> s;
                let rem = v - (q << s);
                let half = 1i64 << (s - 1);
                if rem > half || (rem == half && q & 1 == 1) {
                    q + 1
                } else {
                    q
                }
            }
        }
    }
}

/// Quantises a real angle `x` (rad) to an operand code `round(x · 2^f)`, saturated to
/// `±max_abs`.
pub fn quantize(x: f64, frac_bits: u32, max_abs: u32, rounding: CodeRounding) -> i32 {
    let c = rounding.round(x * (frac_bits as f64).exp2());
    c.clamp(-(max_abs as f64), max_abs as f64) as i32
}

/// The operand code of a `fixed` number with `Frac` fraction bits: its raw bits (the value is
/// `bits · 2^-Frac`, exactly the operand format with `f = Frac`).
///
/// ```
/// use fixed::types::I24F8;
/// use nacsim_sine::format::fixed_code;
/// assert_eq!(fixed_code(I24F8::from_num(0.25)), 64);
/// ```
pub fn fixed_code<Frac: LeEqU32>(x: FixedI32<Frac>) -> i32 {
    x.to_bits()
}

/// Requantises an accumulator at `F` fraction bits to an operand code at `f` bits:
/// `acc · 2^-(F−f)` with `rounding`. The note's frozen choice (§2.1) is [`CodeRounding::HalfUp`],
/// `(acc + (1 << (F−f−1))) >> (F−f)`.
///
/// # Panics
///
/// If `out_frac_bits < frac_bits`.
pub fn requantize(acc: i64, out_frac_bits: u32, frac_bits: u32, rounding: CodeRounding) -> i64 {
    assert!(out_frac_bits >= frac_bits, "requantize: F < f");
    rounding.shift_right(acc, out_frac_bits - frac_bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requantize_rounds_as_documented() {
        assert_eq!(requantize(0b1_1000, 4, 0, CodeRounding::HalfUp), 2);
        assert_eq!(requantize(0b0_1000, 4, 0, CodeRounding::HalfEven), 0);
        assert_eq!(requantize(0b1_1000, 4, 0, CodeRounding::HalfEven), 2);
        assert_eq!(requantize(-0b1000, 4, 0, CodeRounding::HalfUp), 0);
        assert_eq!(requantize(-0b1000, 4, 0, CodeRounding::Floor), -1);
        assert_eq!(requantize(-0b1_1000, 4, 0, CodeRounding::HalfEven), -2);
        for v in -300i64..300 {
            for r in [
                CodeRounding::HalfEven,
                CodeRounding::HalfUp,
                CodeRounding::Floor,
            ] {
                assert_eq!(
                    r.shift_right(v, 3) as f64,
                    r.round(v as f64 / 8.0),
                    "{v} {r:?}"
                );
            }
        }
    }

    #[test]
    fn bad_formats_name_field_and_minimum() {
        let e = ProductFormat::half_range(8, 6).validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "sine.format.out_frac_bits = 6: must be at least frac_bits = 8"
        );
        let e = ProductFormat::half_range(0, 6).validate().unwrap_err();
        assert!(e.to_string().starts_with("sine.format.frac_bits = 0"));
    }

    #[test]
    fn width_bound_covers_note_widths() {
        // (f, F, exact width from note §2.2)
        for (f, ff, w) in [
            (7, 14, 12),
            (8, 16, 14),
            (8, 20, 18),
            (10, 24, 22),
            (12, 24, 22),
        ] {
            let b = versine_width_bound(f, ff, 1 << f);
            assert!(b >= w && b <= w + 1, "f={f} F={ff}: bound {b} vs {w}");
        }
        assert_eq!(half_pi_code(8), 402);
        assert_eq!(monotone_limit(8), 804);
    }
}
