//! The product kernels of the training loop, as one closed enum (docs/style.md §2.2).

use nacsim_circulant::training::{BlockCirculantKernel, LayerCompression};
use nacsim_insitu::CrossbarKernel;
use nacsim_nn::model::Param;
use nacsim_nn::network::{LayerSpec, ResolvedLayer};
use nacsim_nn::train::{FloatKernel, ProductKernel};
use nacsim_sine::SineKernel;
use ndarray::{Array2, ArrayView2};

use crate::config::{KernelChoice, PotChoice};

/// A built product kernel: float, or an engine's hardware-aware kernel. Adding an engine adds a
/// variant, and the compiler finds every `match` to extend.
pub enum Kernel {
    /// Float products ([`KernelChoice::Float`]).
    Float(FloatKernel),
    /// Block-circulant Dense layers with optional power-of-two weights
    /// ([`KernelChoice::BlockCirculant`]).
    BlockCirculant(BlockCirculantKernel),
    /// Sine-in-float products ([`KernelChoice::Sine`]).
    Sine(SineKernel),
    /// The crossbar forward pass of in-situ training (the store is a crossbar).
    Crossbar(CrossbarKernel),
}

impl Kernel {
    /// The kernel `choice` describes, for the network `layers` (the layers a block-circulant
    /// choice compresses by default, the first layer with parameters for the sine input
    /// encoding).
    pub fn build(choice: &KernelChoice, layers: &[ResolvedLayer]) -> Self {
        match choice {
            KernelChoice::Float => Kernel::Float(FloatKernel),
            KernelChoice::Sine { input, .. } => {
                let first = layers.iter().position(|l| l.has_params()).unwrap_or(0);
                Kernel::Sine(SineKernel::new(first, *input))
            }
            KernelChoice::BlockCirculant {
                block,
                layers: chosen,
                convention,
                pot,
            } => {
                let pot = match pot {
                    PotChoice::Off => None,
                    PotChoice::Bits { bits, rounding } => Some(nacsim_circulant::PotConfig {
                        bits: *bits,
                        rounding: *rounding,
                        range: nacsim_circulant::ExponentRange::InqMaxAbs,
                    }),
                };
                let chosen: Vec<usize> = if chosen.is_empty() {
                    layers
                        .iter()
                        .enumerate()
                        .filter(|(_, l)| matches!(l.spec, LayerSpec::Dense { .. }))
                        .map(|(i, _)| i)
                        .collect()
                } else {
                    chosen.clone()
                };
                let compressed = chosen
                    .into_iter()
                    .map(|i| {
                        (
                            i,
                            LayerCompression {
                                k: *block,
                                convention: *convention,
                                pot,
                            },
                        )
                    })
                    .collect();
                Kernel::BlockCirculant(BlockCirculantKernel::new(compressed))
            }
        }
    }

    /// Replaces trained `params` by the weights the forward pass of this kernel multiplies by,
    /// so that a saved model is exactly what was evaluated: the block-circulant (and
    /// power-of-two) matrices of the compressed layers, `sin(W)` for the sine kernel (a plain
    /// float evaluation of it is then the sine-in-float forward, exactly with the `Arcsin`
    /// input encoding; `nacsim_sine::SineNetwork` takes `asin` of them back to angles).
    /// Float and crossbar weights are saved as they are.
    pub fn to_effective(&self, params: &mut [Option<Param>]) {
        match self {
            Kernel::BlockCirculant(circ) => {
                for (li, p) in params.iter_mut().enumerate() {
                    if let Some(p) = p
                        && let Some(w) = circ.effective_weight(li, p.weight.view())
                    {
                        p.weight = w;
                    }
                }
            }
            Kernel::Sine(sine) => {
                for p in params.iter_mut().flatten() {
                    p.weight = sine.effective_weight(p.weight.view());
                }
            }
            Kernel::Float(_) | Kernel::Crossbar(_) => {}
        }
    }
}

impl ProductKernel for Kernel {
    fn forward(&self, layer: usize, x: ArrayView2<f32>, w: ArrayView2<f32>) -> Array2<f32> {
        match self {
            Kernel::Float(k) => k.forward(layer, x, w),
            Kernel::BlockCirculant(k) => k.forward(layer, x, w),
            Kernel::Sine(k) => k.forward(layer, x, w),
            Kernel::Crossbar(k) => k.forward(layer, x, w),
        }
    }

    fn backward_input(&self, layer: usize, dy: ArrayView2<f32>, w: ArrayView2<f32>) -> Array2<f32> {
        match self {
            Kernel::Float(k) => k.backward_input(layer, dy, w),
            Kernel::BlockCirculant(k) => k.backward_input(layer, dy, w),
            Kernel::Sine(k) => k.backward_input(layer, dy, w),
            Kernel::Crossbar(k) => k.backward_input(layer, dy, w),
        }
    }

    fn weight_grad(&self, layer: usize, dy: ArrayView2<f32>, x: ArrayView2<f32>) -> Array2<f32> {
        match self {
            Kernel::Float(k) => k.weight_grad(layer, dy, x),
            Kernel::BlockCirculant(k) => k.weight_grad(layer, dy, x),
            Kernel::Sine(k) => k.weight_grad(layer, dy, x),
            Kernel::Crossbar(k) => k.weight_grad(layer, dy, x),
        }
    }
}
