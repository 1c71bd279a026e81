//! Power-of-two quantization of the defining vectors (note §1.5), through
//! [`nacsim_nn::quant::PotQuantizer`], with a per-layer exponent range, and the hardware code
//! format the B-MV datapath reads.

use nacsim_nn::quant::{PotCode, PotQuantizer, PotRounding};
use serde::{Deserialize, Serialize};

use crate::{BlockCirculant, Error};

/// How a layer's largest exponent `exp_max` (n2) is chosen. The paper's rule is not known
/// (note §5 #5); this is a config option.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ExponentRange {
    /// INQ's per-layer rule `exp_max = ⌊log2(4·s/3)⌋`, `s = max|w|` over the layer (Zhou et al.,
    /// ICLR 2017, §2.1; [`PotQuantizer::for_max_abs`]). The default (note §5 #5, an inference for
    /// BPCA): the largest weight rounds to the top level under either rounding.
    #[default]
    InqMaxAbs,
    /// `exp_max = round(log2 s)` (the exponent the log-domain rule gives the largest weight).
    Log2MaxAbs,
    /// A fixed `exp_max`, the same for every layer (the summary's 4-bit example uses 0).
    Fixed {
        /// Largest exponent n2.
        exp_max: i32,
    },
}

/// Power-of-two quantization of a layer's defining vectors: b bits = 1 sign + (b − 1) exponent
/// bits with one code reserved for zero, `2^b − 1` levels `{0, ±2^n1 … ±2^n2}`,
/// `n1 = n2 − (2^(b−1) − 2)` (note §1.5, source \[S1\], unverified).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PotConfig {
    /// Code width b in bits, sign included (2..=8; the paper uses 3 and 4).
    pub bits: u32,
    /// Rounding between levels. The summary \[S1\] rounds `log2|w|`
    /// ([`PotRounding::LogDomain`], the recommended default, note §5 #3); INQ rounds linearly
    /// ([`PotRounding::LinearNearest`]).
    pub rounding: PotRounding,
    /// Choice of the per-layer exponent range.
    pub range: ExponentRange,
}

impl PotConfig {
    /// `bits` with log-domain rounding and the INQ exponent range.
    pub fn new(bits: u32) -> Self {
        Self {
            bits,
            rounding: PotRounding::LogDomain,
            range: ExponentRange::InqMaxAbs,
        }
    }

    /// The quantizer for a layer whose largest magnitude is `max_abs`.
    ///
    /// # Errors
    /// [`Error::Quant`] for bits outside 2..=8 or exponents outside the `f64` range;
    /// [`Error::MaxAbs`] when the range is calibrated and `max_abs` is not finite and > 0.
    pub fn quantizer(&self, max_abs: f64) -> Result<PotQuantizer, Error> {
        let calibrated = !matches!(self.range, ExponentRange::Fixed { .. });
        if calibrated && !(max_abs.is_finite() && max_abs > 0.0) {
            // Check the bit width first so that its message wins.
            PotQuantizer::new(self.bits, 0, self.rounding)?;
            return Err(Error::MaxAbs(max_abs));
        }
        Ok(match self.range {
            ExponentRange::InqMaxAbs => {
                PotQuantizer::for_max_abs(max_abs, self.bits, self.rounding)?
            }
            ExponentRange::Log2MaxAbs => {
                PotQuantizer::new(self.bits, round_log2(max_abs), self.rounding)?
            }
            ExponentRange::Fixed { exp_max } => {
                PotQuantizer::new(self.bits, exp_max, self.rounding)?
            }
        })
    }

    /// Quantize every defining vector of a layer with one per-layer quantizer.
    ///
    /// # Errors
    /// As [`quantizer`](Self::quantizer), with `max_abs` the largest finite `|w|` of the layer.
    pub fn quantize(&self, bc: &BlockCirculant<f64>) -> Result<PotLayer, Error> {
        let max_abs = bc
            .vectors()
            .iter()
            .map(|v| v.abs())
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        let q = self.quantizer(max_abs)?;
        let exp_min = q.exp_min();
        let codes = bc.map(|v| ShiftCode::from_pot(q.quantize(v), exp_min));
        Ok(PotLayer {
            quantizer: q,
            codes,
        })
    }
}

/// `round(log2 a)` for finite `a > 0`, exact: the threshold between `2^e` and `2^(e+1)` is
/// `√2·2^e`, as in [`PotRounding::LogDomain`].
fn round_log2(a: f64) -> i32 {
    let (a, bias) = if a < f64::MIN_POSITIVE {
        (a * 2f64.powi(64), 64)
    } else {
        (a, 0)
    };
    let bits = a.to_bits();
    let k = ((bits >> 52) & 0x7ff) as i32 - 1023 - bias;
    let m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    k + i32::from(m >= std::f64::consts::SQRT_2)
}

/// One b-bit weight code as the B-MV reads it: zero, or a sign and a shift
/// `e = n − n1 ∈ 0..=2^(b−1) − 2`, so that `x · ŵ = ±(x << e) · 2^n1` (note §2.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ShiftCode {
    /// The reserved zero code.
    #[default]
    Zero,
    /// `±2^(n1 + shift)`.
    Shift {
        /// Sign bit (1 = negate after the shift).
        negative: bool,
        /// Left shift e.
        shift: u8,
    },
}

impl ShiftCode {
    /// The code of a quantized level, relative to the layer's smallest exponent `exp_min` (n1).
    ///
    /// # Panics
    /// If `code` lies below `exp_min` or more than 255 above it (not a level of the layer).
    pub fn from_pot(code: PotCode, exp_min: i32) -> Self {
        match code {
            PotCode::Zero => Self::Zero,
            PotCode::Pow { negative, exp } => Self::Shift {
                negative,
                shift: u8::try_from(exp - exp_min).expect("exponent within the layer's range"),
            },
        }
    }

    /// The integer weight `±2^shift` (0 for the zero code): the level divided by `2^n1`.
    pub fn int_value(self) -> i64 {
        match self {
            Self::Zero => 0,
            Self::Shift { negative, shift } => {
                let m = 1i64 << shift;
                if negative { -m } else { m }
            }
        }
    }

    /// The raw `bits`-bit code: bit `bits − 1` is the sign, the low `bits − 1` bits hold
    /// `shift + 1`, and a zero field means the value 0 (so `2^bits − 1` distinct levels). The
    /// paper's bit assignment is not known; this one is an inference (note §5 #6) and only
    /// matters for traces and storage dumps.
    ///
    /// # Panics
    /// Unless `bits` is in 2..=8 and `shift + 1` fits `bits − 1` bits.
    pub fn to_bits(self, bits: u32) -> u8 {
        assert!((2..=8).contains(&bits), "bits = {bits}: must be in 2..=8");
        match self {
            Self::Zero => 0,
            Self::Shift { negative, shift } => {
                let field = u16::from(shift) + 1;
                assert!(
                    field < 1 << (bits - 1),
                    "shift {shift} does not fit {bits} bits"
                );
                ((u16::from(negative) << (bits - 1)) | field) as u8 // < 2^bits ≤ 256
            }
        }
    }

    /// Decode a raw `bits`-bit code written by [`to_bits`](Self::to_bits); bits above
    /// `bits − 1` are ignored.
    pub fn from_bits(raw: u8, bits: u32) -> Self {
        let bits = bits.clamp(2, 8);
        let field = u16::from(raw) & ((1 << (bits - 1)) - 1);
        if field == 0 {
            Self::Zero
        } else {
            Self::Shift {
                negative: (u16::from(raw) >> (bits - 1)) & 1 != 0,
                shift: (field - 1) as u8, // field < 128
            }
        }
    }
}

/// A block-circulant layer with PoT-quantized defining vectors: the quantizer (bits, n1, n2,
/// rounding) and one [`ShiftCode`] per vector entry.
#[derive(Clone, Debug, PartialEq)]
pub struct PotLayer {
    /// The per-layer quantizer.
    pub quantizer: PotQuantizer,
    /// Codes, in the layer's convention and layout.
    pub codes: BlockCirculant<ShiftCode>,
}

impl PotLayer {
    /// The quantized real weights `int_value · 2^n1`.
    pub fn values(&self) -> BlockCirculant<f64> {
        let scale = PotCode::Pow {
            negative: false,
            exp: self.quantizer.exp_min(),
        }
        .value();
        self.codes.map(|c| c.int_value() as f64 * scale)
    }

    /// Bits of weight storage: `p·q·k·b` (padding included; note §4 item 1).
    pub fn storage_bits(&self) -> u64 {
        storage_bits(&self.codes, self.quantizer.bits)
    }

    /// Dense fp32 bits over [`storage_bits`](Self::storage_bits): `m·n·32 / (p·q·k·b)`, which is
    /// `k·32/b` when k divides the shape (note §4 item 1).
    pub fn compression_ratio(&self) -> f64 {
        compression_ratio(&self.codes, self.quantizer.bits)
    }
}

/// Bits to store a layer's defining vectors at `bits` per entry: `p·q·k·bits`.
pub fn storage_bits<T: Copy>(bc: &BlockCirculant<T>, bits: u32) -> u64 {
    bc.vectors().len() as u64 * u64::from(bits)
}

/// `rows·cols·32 / storage_bits(bc, bits)`: compression against dense fp32 weights (FC weights
/// only, as the paper's ratios, note §3).
pub fn compression_ratio<T: Copy>(bc: &BlockCirculant<T>, bits: u32) -> f64 {
    (bc.rows() as f64 * bc.cols() as f64 * 32.0) / storage_bits(bc, bits) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Convention;
    use crate::testutil::{cases, values};
    use proptest::prelude::*;

    #[test]
    fn compression_ratios_match_the_paper() {
        for (k, b, want) in [(16, 3, 170.666), (256, 3, 2730.666), (16, 4, 128.0)] {
            let bc = BlockCirculant::from_fn(4096, 4096, k, Convention::FirstRow, |_, _, _| 0u8)
                .unwrap();
            assert_eq!(storage_bits(&bc, b), 4096 * 4096 / k as u64 * u64::from(b));
            assert!((compression_ratio(&bc, b) - want).abs() < 1e-3);
        }
        // AlexNet FC example (note §4 item 2): 9216-4096-4096-1000, k = 16, b = 4, 1000 → 1008.
        let shapes = [(4096, 9216), (4096, 4096), (1000, 4096)];
        let (mut dense, mut codes) = (0u64, 0u64);
        for (m, n) in shapes {
            let bc =
                BlockCirculant::from_fn(m, n, 16, Convention::FirstRow, |_, _, _| 0u8).unwrap();
            dense += (m * n) as u64;
            codes += bc.vectors().len() as u64;
        }
        assert_eq!((dense, codes), (58_621_952, 3_665_920));
        assert!((dense as f64 * 32.0 / (codes as f64 * 4.0) - 127.93).abs() < 0.01);
    }

    #[test]
    fn codebook_of_the_summary_example() {
        // b = 4, n2 = 0: {0, ±2^−6 … ±1}, 15 values; b = 3: 7 values (note §4 item 10).
        let c = PotConfig {
            range: ExponentRange::Fixed { exp_max: 0 },
            ..PotConfig::new(4)
        };
        let q = c.quantizer(1.0).unwrap();
        assert_eq!(q.exp_min(), -6);
        assert_eq!(q.levels().len(), 15);
        assert_eq!(PotConfig::new(3).quantizer(1.0).unwrap().levels().len(), 7);
        assert!(matches!(
            PotConfig::new(1).quantizer(1.0),
            Err(Error::Quant(_))
        ));
        assert!(matches!(
            PotConfig::new(3).quantizer(0.0),
            Err(Error::MaxAbs(_))
        ));
        let lg = PotConfig {
            range: ExponentRange::Log2MaxAbs,
            ..PotConfig::new(3)
        };
        assert_eq!(lg.quantizer(0.7).unwrap().exp_max, -1);
        assert_eq!(lg.quantizer(0.71).unwrap().exp_max, 0);
        assert_eq!(PotConfig::new(3).quantizer(0.7).unwrap().exp_max, -1);
    }

    #[test]
    fn raw_codes_round_trip() {
        for bits in 2..=8u32 {
            let mut seen = std::collections::BTreeSet::new();
            for negative in [false, true] {
                for shift in 0..=((1u8 << (bits - 1)) - 2) {
                    let c = ShiftCode::Shift { negative, shift };
                    let raw = c.to_bits(bits);
                    assert!(u32::from(raw) < 1 << bits);
                    assert_eq!(ShiftCode::from_bits(raw, bits), c);
                    seen.insert(raw);
                }
            }
            seen.insert(ShiftCode::Zero.to_bits(bits));
            assert_eq!(seen.len(), (1 << bits) - 1, "{bits} bits");
            assert_eq!(ShiftCode::from_bits(1 << (bits - 1), bits), ShiftCode::Zero);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        #[test]
        fn quantized_vectors_are_in_the_codebook_sign_kept_and_monotone(
            n in 1usize..200, bits in 2u32..=6, linear: bool, inq: bool, seed: u64,
            scale in -8.0f64..8.0,
        ) {
            let cfg = PotConfig {
                bits,
                rounding: if linear { PotRounding::LinearNearest } else { PotRounding::LogDomain },
                range: if inq { ExponentRange::InqMaxAbs } else { ExponentRange::Log2MaxAbs },
            };
            let v: Vec<f64> = values(n, seed).iter().map(|x| x * scale.exp2()).collect();
            prop_assume!(v.iter().any(|x| *x != 0.0));
            let bc = BlockCirculant::new(1, n, n, Convention::FirstRow, v.clone()).unwrap();
            let layer = cfg.quantize(&bc).unwrap();
            let levels = layer.quantizer.levels();
            prop_assert_eq!(levels.len(), (1usize << bits) - 1);
            let q = layer.values();
            let max_shift = (1u8 << (bits - 1)) - 2;
            for (c, _) in layer.codes.vectors().iter().zip(&v) {
                if let ShiftCode::Shift { shift, .. } = c {
                    prop_assert!(*shift <= max_shift);
                }
            }
            for (a, w) in q.vectors().iter().zip(&v) {
                prop_assert!(levels.contains(a), "{a} not a level");
                prop_assert!(*a == 0.0 || a.signum() == w.signum(), "sign of {w} lost: {a}");
            }
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&i, &j| v[i].abs().total_cmp(&v[j].abs()));
            for w in order.windows(2) {
                prop_assert!(q.vectors()[w[0]].abs() <= q.vectors()[w[1]].abs());
            }
        }
    }
}
