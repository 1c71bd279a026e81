//! The optimiser of the training loop: hyper-parameters (serde), their validation, and the
//! per-weight step both weight stores apply — [`FloatStore`](crate::train::FloatStore) to its
//! float parameters, the crossbar store of `nacsim-insitu` as the change `ΔW` it programs into
//! conductances (the optimiser state stays digital in the periphery).
//!
//! The update rules are PyTorch's (`torch.optim.SGD`, `torch.optim.Adam`; weight decay is L2
//! added to the gradient). A step is computed in f32 in one fixed order of operations, so every
//! store that uses [`Step`] gets the same bits for the same gradients.

use nacsim_core::config::{FieldError, Validate};
use serde::{Deserialize, Serialize};

/// Largest L2 weight decay λ a training config accepts.
pub const MAX_WEIGHT_DECAY: f32 = 1.0;

/// Moments below this magnitude are flushed to zero. A weight whose gradient is exactly zero
/// (a dead ReLU, an always-black pixel) has its first moment decay geometrically into the f32
/// subnormal range, where every multiply takes a slow microcode path on x86 (measured: the Adam
/// step went from ~1 to ~7 ns per weight). The flushed value is below any update that could
/// change an f32 weight of magnitude ≥ 1e-20.
pub const MOMENT_FLOOR: f32 = 1e-30;

/// Optimiser, with PyTorch's update rules (`torch.optim.SGD`, `torch.optim.Adam`; weight decay
/// is L2 added to the gradient).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Optimizer {
    /// SGD with momentum μ: `v ← μ·v + g + λ·w`, `w ← w − lr·v`; plain SGD
    /// (`w ← w − lr·(g + λ·w)`, no momentum buffer) for μ = 0.
    Sgd {
        /// Momentum μ (0 = plain SGD).
        momentum: f32,
        /// L2 weight decay λ.
        weight_decay: f32,
    },
    /// Adam (Kingma & Ba 2015) with bias correction.
    Adam {
        /// β₁ (PyTorch default 0.9).
        beta1: f32,
        /// β₂ (PyTorch default 0.999).
        beta2: f32,
        /// ε (PyTorch default 1e-8).
        eps: f32,
        /// L2 weight decay λ.
        weight_decay: f32,
    },
}

impl Validate for Optimizer {
    /// The ranges of the hyper-parameters, with paths relative to the optimiser
    /// (`Sgd.momentum`, `Adam.eps`, …); values are printed as Rust writes an `f32`.
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut e = Vec::new();
        let mut rule = |ok: bool, path: &str, value: f32, rule: &str| {
            if !ok {
                e.push(FieldError::new(path, value, rule));
            }
        };
        let decay_rule = format!("must be a finite number in [0, {MAX_WEIGHT_DECAY}]");
        let decay_ok = |wd: f32| wd.is_finite() && (0.0..=MAX_WEIGHT_DECAY).contains(&wd);
        match *self {
            Optimizer::Sgd {
                momentum,
                weight_decay,
            } => {
                rule(
                    (0.0..1.0).contains(&momentum),
                    "Sgd.momentum",
                    momentum,
                    "must be in [0, 1)",
                );
                rule(
                    decay_ok(weight_decay),
                    "Sgd.weight_decay",
                    weight_decay,
                    &decay_rule,
                );
            }
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                rule(
                    (0.0..1.0).contains(&beta1),
                    "Adam.beta1",
                    beta1,
                    "must be in [0, 1)",
                );
                rule(
                    (0.0..1.0).contains(&beta2),
                    "Adam.beta2",
                    beta2,
                    "must be in [0, 1)",
                );
                rule(
                    eps.is_finite() && eps > 0.0 && eps <= 1.0,
                    "Adam.eps",
                    eps,
                    "must be a finite number in (0, 1]",
                );
                rule(
                    decay_ok(weight_decay),
                    "Adam.weight_decay",
                    weight_decay,
                    &decay_rule,
                );
            }
        }
        if e.is_empty() { Ok(()) } else { Err(e) }
    }
}

/// Which per-weight state buffers an optimiser keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moments {
    /// A first moment (momentum buffer) per weight.
    pub first: bool,
    /// A second moment per weight (Adam).
    pub second: bool,
}

impl Optimizer {
    /// The state buffers this optimiser needs (none for plain SGD).
    pub fn moments(&self) -> Moments {
        match *self {
            Optimizer::Sgd { momentum, .. } => Moments {
                first: momentum != 0.0,
                second: false,
            },
            Optimizer::Adam { .. } => Moments {
                first: true,
                second: true,
            },
        }
    }

    /// The constants of update step `t` (1-based; Adam's bias correction uses
    /// `min(t, i32::MAX)`) at learning rate `lr`.
    pub fn step(&self, lr: f32, t: u64) -> Step {
        match *self {
            // `0.0` also matches −0.0 (float patterns compare with `==`).
            Optimizer::Sgd {
                momentum: 0.0,
                weight_decay,
            } => Step::Sgd(PlainSgd { lr, weight_decay }),
            Optimizer::Sgd {
                momentum,
                weight_decay,
            } => Step::Momentum(Momentum {
                lr,
                momentum,
                weight_decay,
            }),
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                let t = t.min(i32::MAX as u64) as i32;
                Step::Adam(AdamStep {
                    rate: lr / (1.0 - beta1.powi(t)),
                    c2s: (1.0 - beta2.powi(t)).sqrt(),
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                })
            }
        }
    }
}

/// `x`, or 0 when `|x| <` [`MOMENT_FLOOR`].
#[inline(always)]
pub fn flush(x: f32) -> f32 {
    if x.abs() < MOMENT_FLOOR { 0.0 } else { x }
}

/// One step of plain SGD: `ΔW = −lr·(g + λ·w)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlainSgd {
    /// Learning rate.
    pub lr: f32,
    /// L2 weight decay λ.
    pub weight_decay: f32,
}

impl PlainSgd {
    /// The change of a weight now at `w` with gradient `g`.
    #[inline(always)]
    pub fn delta(&self, g: f32, w: f32) -> f32 {
        -self.lr * (g + self.weight_decay * w)
    }
}

/// One step of SGD with momentum: `m ← flush(μ·m + g + λ·w)`, `ΔW = −lr·m`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Momentum {
    /// Learning rate.
    pub lr: f32,
    /// Momentum μ.
    pub momentum: f32,
    /// L2 weight decay λ.
    pub weight_decay: f32,
}

impl Momentum {
    /// The change of a weight now at `w` with gradient `g`; updates its momentum `m`.
    #[inline(always)]
    pub fn delta(&self, g: f32, w: f32, m: &mut f32) -> f32 {
        let d = g + self.weight_decay * w;
        *m = flush(self.momentum * *m + d);
        -self.lr * *m
    }
}

/// One step of Adam with bias correction: `m ← flush(β₁·m + (1 − β₁)·d)`,
/// `v ← flush(β₂·v + (1 − β₂)·d²)`, `ΔW = −rate·m / (√v / c2s + ε)` with `d = g + λ·w`,
/// `rate = lr/(1 − β₁ᵗ)` and `c2s = √(1 − β₂ᵗ)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    /// `lr/(1 − β₁ᵗ)`.
    pub rate: f32,
    /// `√(1 − β₂ᵗ)`.
    pub c2s: f32,
    /// β₁.
    pub beta1: f32,
    /// β₂.
    pub beta2: f32,
    /// ε.
    pub eps: f32,
    /// L2 weight decay λ.
    pub weight_decay: f32,
}

impl AdamStep {
    /// The change of a weight now at `w` with gradient `g`; updates its moments `m`, `v`.
    #[inline(always)]
    pub fn delta(&self, g: f32, w: f32, m: &mut f32, v: &mut f32) -> f32 {
        let d = g + self.weight_decay * w;
        *m = flush(self.beta1 * *m + (1.0 - self.beta1) * d);
        *v = flush(self.beta2 * *v + (1.0 - self.beta2) * d * d);
        -self.rate * *m / (v.sqrt() / self.c2s + self.eps)
    }
}

/// The constants of one optimiser step ([`Optimizer::step`]); a store matches once per step
/// and runs the variant's `delta` over its weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// Plain SGD (no state).
    Sgd(PlainSgd),
    /// SGD with momentum (first moment).
    Momentum(Momentum),
    /// Adam (first and second moments).
    Adam(AdamStep),
}

impl Step {
    /// The change of a weight now at `w` with gradient `g`, updating the moments the variant
    /// keeps (`m`, `v` are ignored where it keeps none).
    #[inline(always)]
    pub fn delta(&self, g: f32, w: f32, m: &mut f32, v: &mut f32) -> f32 {
        match self {
            Step::Sgd(s) => s.delta(g, w),
            Step::Momentum(s) => s.delta(g, w, m),
            Step::Adam(s) => s.delta(g, w, m, v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_each_broken_hyper_parameter() {
        let bad = Optimizer::Sgd {
            momentum: 1.0,
            weight_decay: f32::INFINITY,
        };
        let e: Vec<String> = bad
            .validate()
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            e,
            [
                "Sgd.momentum = 1: must be in [0, 1)",
                "Sgd.weight_decay = inf: must be a finite number in [0, 1]",
            ]
        );
        let bad = Optimizer::Adam {
            beta1: -0.1,
            beta2: 1.0,
            eps: 0.0,
            weight_decay: 2.0,
        };
        let fields: Vec<String> = bad
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.within("train.optimizer").field)
            .collect();
        assert_eq!(
            fields,
            [
                "train.optimizer.Adam.beta1",
                "train.optimizer.Adam.beta2",
                "train.optimizer.Adam.eps",
                "train.optimizer.Adam.weight_decay",
            ]
        );
        let good = Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        assert!(good.validate().is_ok());
    }

    #[test]
    fn steps_follow_the_pytorch_rules() {
        let (g, w, lr) = (0.5f32, 2.0f32, 0.1f32);
        let plain = Optimizer::Sgd {
            momentum: 0.0,
            weight_decay: 0.01,
        };
        assert_eq!(
            plain.moments(),
            Moments {
                first: false,
                second: false
            }
        );
        let (mut m, mut v) = (0.0, 0.0);
        let d = plain.step(lr, 1).delta(g, w, &mut m, &mut v);
        assert_eq!(d, -lr * (g + 0.01 * w));
        assert_eq!((m, v), (0.0, 0.0), "plain SGD keeps no state");
        let mom = Optimizer::Sgd {
            momentum: 0.9,
            weight_decay: 0.0,
        };
        let s = mom.step(lr, 1);
        assert_eq!(s.delta(g, w, &mut m, &mut v), -lr * g);
        assert_eq!(s.delta(g, w, &mut m, &mut v), -lr * (0.9 * g + g));
        // A vanishing momentum is flushed to zero, not left subnormal.
        let mut tiny = 1e-35f32;
        let _ = s.delta(0.0, 0.0, &mut tiny, &mut v);
        assert_eq!(tiny, 0.0);
        let adam = Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        assert_eq!(
            adam.moments(),
            Moments {
                first: true,
                second: true
            }
        );
        // Step 1 with bias correction: m̂ = g, v̂ = g², so ΔW ≈ −lr·sign(g).
        let (mut m, mut v) = (0.0, 0.0);
        let d = adam.step(lr, 1).delta(g, w, &mut m, &mut v);
        assert!((d + lr).abs() < 1e-6, "{d}");
        assert!(
            (m - 0.05).abs() < 1e-6 && (v / 0.00025 - 1.0).abs() < 1e-4,
            "{m} {v}"
        );
    }
}
