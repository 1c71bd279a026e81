//! The training config (`models/training/*.ron`) and its kernel and store choices.

use std::path::{Path, PathBuf};

use nacsim_nn::augment::MAX_SHIFT;
use nacsim_nn::train::{MAX_LR, Schedule, TrainSettings};
use serde::{Deserialize, Serialize};

/// Power-of-two quantization of the forward weights during training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum PotChoice {
    /// Full-precision weights (default).
    #[default]
    Off,
    /// `bits`-bit power-of-two codes (1 sign + exponent bits, a zero code), straight-through
    /// gradient to the float shadow weights.
    Bits {
        /// Code width b, 2..=8.
        bits: u32,
        /// Rounding between levels (default log-domain).
        #[serde(default = "default_pot_rounding")]
        rounding: nacsim_nn::quant::PotRounding,
    },
}

fn default_pot_rounding() -> nacsim_nn::quant::PotRounding {
    nacsim_nn::quant::PotRounding::LogDomain
}

/// The product kernel the training loop uses: float, or an engine's hardware-aware kernel.
/// The engine variants hold the engines' own config types; [`Kernel::build`](crate::Kernel::build)
/// makes the kernel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum KernelChoice {
    /// Float products (default).
    #[default]
    Float,
    /// Block-circulant Dense layers with optional power-of-two weights (circulant engine,
    /// Qin et al., Electronics 2019).
    BlockCirculant {
        /// Block size k.
        block: usize,
        /// Indices (in `network.layers`) of the Dense layers to compress; empty = all of them.
        #[serde(default)]
        layers: Vec<usize>,
        /// Convention of the defining vectors (default first row; the matrix does not depend
        /// on it).
        #[serde(default)]
        convention: nacsim_circulant::Convention,
        /// Power-of-two quantization of the forward weights.
        #[serde(default)]
        pot: PotChoice,
    },
    /// Sine-approximation products (sine engine, Cai et al., Applied Sciences 2021) in float
    /// ("sine-in-float"): forward `Σ sin(w)·x`, backward error `sin(Σ sin(w)·sin(δ))` (then
    /// `· cos z` by a following `Act(RectSine)`), weight gradient `Σ sin(δ)·x`. Use with
    /// `Act(RectSine)` so that every layer input is a sine.
    Sine {
        /// First-layer input encoding (default `Arcsin`; sine engine note §1.2).
        #[serde(default)]
        input: nacsim_sine::InputEncoding,
        /// Round each epoch's learning rate to the nearest power of two (log domain), so the
        /// update `−η · sin(δ)·x` is a shift (default false).
        #[serde(default)]
        lr_shift: bool,
    },
}

/// Where the weights live during training ([`fit()`](crate::fit()) builds the store).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum StoreChoice {
    /// Float parameters updated by the optimiser (default).
    #[default]
    Float,
    /// In-situ training on memristor crossbars (`nacsim-insitu`): the weights are device
    /// conductances, updates are programming pulses. `settings` names the RON file with the
    /// in-situ settings (device, update scheme, variation, periphery, data options), relative to
    /// the training config, e.g. `"insitu/agasi-linear.ron"`.
    Crossbar {
        /// Path of the in-situ settings file, relative to the training config.
        settings: String,
    },
}

/// A training config (`models/training/*.ron`): the network to train, the data, the loop
/// settings and where the trained model goes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// File format version; must be 1.
    pub schema_version: u32,
    /// Name of the run; also the default stem of the output files.
    pub name: String,
    /// Dataset to train on (its `train` split) and evaluate on (its `t10k` split).
    pub dataset: nacsim_nn::train::DatasetName,
    /// Folder of the IDX files; empty means the dataset's default folder. `--data` overrides.
    #[serde(default)]
    pub data_dir: String,
    /// The network topology to train (weights are initialised from `train.seed`).
    pub network: nacsim_nn::network::NetworkSpec,
    /// Where to write the trained network file (RON; the weights go beside it as
    /// `<stem>.safetensors`), relative to the config file. `--out DIR` overrides the folder.
    pub output: String,
    /// Loop settings.
    pub train: TrainSettings,
    /// Product kernel (default float).
    #[serde(default)]
    pub kernel: KernelChoice,
    /// Start from the weights of a trained network file (relative to the config) instead of
    /// seeded initial weights, e.g. stage 2 of BPCA's two-stage flow: PoT retraining of a
    /// block-circulant model trained at full precision. Its topology must equal `network`'s.
    /// Default: none.
    #[serde(default)]
    pub init: String,
    /// Weight store (default float).
    #[serde(default)]
    pub store: StoreChoice,
}

impl nacsim_core::config::Validate for TrainConfig {
    fn validate(&self) -> Result<(), Vec<nacsim_core::config::FieldError>> {
        use nacsim_core::config::FieldError;
        let mut e = Vec::new();
        let mut rule =
            |path: &str, value: String, rule: &str| e.push(FieldError::new(path, value, rule));
        if self.schema_version != 1 {
            rule(
                "schema_version",
                self.schema_version.to_string(),
                "must be 1",
            );
        }
        if self.train.epochs == 0 {
            rule("train.epochs", "0".into(), "must be at least 1");
        }
        if self.train.batch_size == 0 {
            rule("train.batch_size", "0".into(), "must be at least 1");
        }
        let lr = self.train.lr;
        if !(lr.is_finite() && lr > 0.0 && lr <= MAX_LR) {
            rule(
                "train.lr",
                nacsim_core::config::num32(lr),
                &format!("must be a positive finite number ≤ {MAX_LR}"),
            );
        }
        match self.train.schedule {
            Schedule::Constant => {}
            Schedule::Step {
                every_epochs,
                gamma,
            } => {
                if every_epochs == 0 {
                    rule(
                        "train.schedule.Step.every_epochs",
                        "0".into(),
                        "must be at least 1",
                    );
                }
                if !(gamma.is_finite() && gamma > 0.0 && gamma <= 1.0) {
                    rule(
                        "train.schedule.Step.gamma",
                        nacsim_core::config::num32(gamma),
                        "must be in (0, 1] (a factor that lowers the rate)",
                    );
                }
            }
            Schedule::Cosine { min_lr } => {
                if !(min_lr.is_finite() && min_lr >= 0.0 && min_lr <= lr) {
                    rule(
                        "train.schedule.Cosine.min_lr",
                        nacsim_core::config::num32(min_lr),
                        &format!("must be a finite rate in [0, train.lr = {lr}]"),
                    );
                }
            }
        }
        if let Some(a) = &self.train.augment {
            let (h, w) = (self.network.input.h, self.network.input.w);
            if a.shift > MAX_SHIFT || a.shift >= h.min(w) {
                rule(
                    "train.augment.shift",
                    a.shift.to_string(),
                    &format!(
                        "must be at most {MAX_SHIFT} pixels and below the image's height and width ({h}×{w}); 2 is usual for 28×28 images"
                    ),
                );
            }
            if !(a.erase.is_finite() && (0.0..=1.0).contains(&a.erase)) {
                rule(
                    "train.augment.erase",
                    a.erase.to_string(),
                    "must be a probability in [0, 1] (0 = off; 0.5 is Zhong et al.'s setting)",
                );
            }
        }
        if self.output.is_empty() {
            rule(
                "output",
                "\"\"".into(),
                "must name the network file to write, e.g. \"../networks/x.ron\"",
            );
        }
        if let Err(t) = self.network.resolve() {
            let f = t.to_field_error().within("network");
            rule(&f.field, f.value, &f.rule);
        }
        if let Err(errs) = self.train.optimizer.validate() {
            for f in errs {
                let f = f.within("train.optimizer");
                rule(&f.field, f.value, &f.rule);
            }
        }
        // The block-circulant kernel is per Dense layer (a layer index), so it runs on graphs
        // as the float one does; the sine kernel's input encoding and the crossbar store's
        // per-layer arrays assume a chain.
        let chain_only = !matches!(
            self.kernel,
            KernelChoice::Float | KernelChoice::BlockCirculant { .. }
        ) || !matches!(self.store, StoreChoice::Float);
        if chain_only
            && let Ok(resolved) = self.network.resolve()
            && !nacsim_nn::graph::is_plain(&resolved)
        {
            rule(
                "network.nodes",
                format!("{} nodes", resolved.len()),
                "graph networks (and BatchNorm2d, Dropout) train with kernel: Float or BlockCirculant and store: Float only; the sine kernel and the crossbar stores run chains of Dense, Conv2d, pooling and activations",
            );
        }
        if let KernelChoice::BlockCirculant {
            block, layers, pot, ..
        } = &self.kernel
        {
            if *block == 0 {
                rule(
                    "kernel.BlockCirculant.block",
                    "0".into(),
                    "must be at least 1",
                );
            } else if let Ok(resolved) = self.network.resolve() {
                // A block larger than both sides of a compressed layer is all padding (and its
                // k² index table alone could exhaust memory).
                let compressed = |i: usize| layers.is_empty() || layers.contains(&i);
                if let Some(l) = resolved.iter().enumerate().find_map(|(i, l)| {
                    let dense = matches!(l.spec, nacsim_nn::network::LayerSpec::Dense { .. });
                    (dense && compressed(i) && *block > l.input.len().max(l.output.len()))
                        .then_some(l)
                }) {
                    rule(
                        "kernel.BlockCirculant.block",
                        block.to_string(),
                        &format!(
                            "larger than layer {} ({} -> {} features); use a block no larger than the larger side of every compressed layer",
                            l.name,
                            l.input.len(),
                            l.output.len()
                        ),
                    );
                }
            }
            if let PotChoice::Bits { bits, .. } = pot
                && !(2..=8).contains(bits)
            {
                rule(
                    "kernel.BlockCirculant.pot.Bits.bits",
                    bits.to_string(),
                    "must be in 2..=8",
                );
            }
            for (i, li) in layers.iter().enumerate() {
                let dense = matches!(
                    self.network.layers.get(*li),
                    Some(nacsim_nn::network::LayerSpec::Dense { .. })
                );
                if !dense {
                    rule(
                        &format!("kernel.BlockCirculant.layers[{i}]"),
                        li.to_string(),
                        "must be the index of a Dense layer in network.layers",
                    );
                }
            }
        }
        if let KernelChoice::Sine {
            input: nacsim_sine::InputEncoding::Scale { shift },
            ..
        } = self.kernel
            && shift > 8
        {
            rule(
                "kernel.Sine.input.Scale.shift",
                shift.to_string(),
                "must be in 0..=8",
            );
        }
        if let StoreChoice::Crossbar { settings } = &self.store {
            if settings.is_empty() {
                rule(
                    "store.Crossbar.settings",
                    "\"\"".into(),
                    "must name the in-situ settings file, e.g. \"insitu/agasi-linear.ron\"",
                );
            }
            if self.kernel != KernelChoice::Float {
                rule(
                    "kernel",
                    format!("{:?}", self.kernel),
                    "in-situ training uses the crossbar kernel of the settings file; set kernel: Float",
                );
            }
        }
        if e.is_empty() { Ok(()) } else { Err(e) }
    }
}

impl TrainConfig {
    /// The folder of the IDX files: `given` (`--data`), else `data_dir` relative to `base` (the
    /// config's folder), else the dataset's standard folder; `None` when there is none.
    pub fn data_dir(&self, base: &Path, given: Option<&Path>) -> Option<PathBuf> {
        match (given, self.data_dir.as_str(), self.dataset.default_dir()) {
            (Some(d), _, _) => Some(d.to_path_buf()),
            (None, d, _) if !d.is_empty() => Some(base.join(d)),
            (None, _, Some(d)) => Some(PathBuf::from(d)),
            (None, _, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nacsim train` writes `kernel {:?}` into the saved model's notes, so the Debug form of
    /// a kernel choice is part of the committed model files.
    #[test]
    fn kernel_choices_read_and_print_as_before_the_engine_types() {
        let cases = [
            (
                "BlockCirculant(block: 16, pot: Bits(bits: 3))",
                "BlockCirculant { block: 16, layers: [], convention: FirstRow, pot: Bits { bits: 3, rounding: LogDomain } }",
            ),
            (
                "BlockCirculant(block: 4, layers: [1], convention: FirstColumn, pot: Off)",
                "BlockCirculant { block: 4, layers: [1], convention: FirstColumn, pot: Off }",
            ),
            (
                "Sine(input: Arcsin, lr_shift: false)",
                "Sine { input: Arcsin, lr_shift: false }",
            ),
            (
                "Sine(input: Scale(shift: 2), lr_shift: true)",
                "Sine { input: Scale { shift: 2 }, lr_shift: true }",
            ),
            ("Float", "Float"),
        ];
        for (ron_text, debug) in cases {
            let k: KernelChoice = ron::from_str(ron_text).expect(ron_text);
            assert_eq!(format!("{k:?}"), debug);
        }
        assert!(ron::from_str::<KernelChoice>("Sine(input: Scale(shift: 2, x: 1))").is_err());
    }
}
