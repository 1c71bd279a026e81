//! The two construction phases of a [`Simulation`] apart, so that a caller can time them
//! (`nacsim run`'s `timings`): quantization with its calibration pass, then the mapping onto
//! the design's engines (compilation; programming for a crossbar).

use nacsim_nn::data::Dataset;
use nacsim_nn::model::Model;
use nacsim_nn::qnet::QNetwork;

use super::{SimError, Simulation};
use crate::design::Design;

impl Simulation {
    /// Phase 1 of [`Simulation::with_trial`]: quantize `model` with `design`'s quantization
    /// settings, calibrating the activation scales on `calib` (a float forward pass over the
    /// calibration images).
    ///
    /// # Errors
    /// As [`Simulation::new`]: a network that cannot be quantized.
    pub fn quantize(design: &Design, model: &Model, calib: &Dataset) -> Result<QNetwork, SimError> {
        QNetwork::quantize(model, calib, &design.config.quant).map_err(|e| SimError::Quantize {
            network: model.spec.name.clone(),
            msg: e.to_string(),
        })
    }

    /// Phase 2 of [`Simulation::with_trial`]: map `qnet` (from [`Simulation::quantize`] of
    /// the same design and `model`) onto `design`, compiling every product for its engine
    /// with trial `trial` of base seed `seed`. `from_quantized(d, quantize(&d, m, c)?, m, s, t)`
    /// equals `with_trial(d, m, c, s, t)` (tested).
    ///
    /// # Errors
    /// As [`Simulation::new`]: mapping and engine errors.
    pub fn from_quantized(
        design: Design,
        qnet: QNetwork,
        model: &Model,
        seed: u64,
        trial: u32,
    ) -> Result<Self, SimError> {
        Self::build(design, qnet, model, seed, trial)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use nacsim_nn::data::Dataset;
    use nacsim_nn::model::Model;

    use crate::design::{Design, EngineConfig};
    use crate::sim::Simulation;

    /// The committed crossbar design with device variation and read noise, so that a wrong
    /// seed or trial would show in the outputs.
    fn noisy_crossbar(root: &Path) -> Design {
        let mut d = Design::load(&root.join("models/designs/crossbar-rram.ron")).expect("design");
        let EngineConfig::Crossbar(x) = &mut d.config.engines[0].engine else {
            panic!("crossbar-rram.ron has a crossbar engine")
        };
        x.nonideal.d2d_sigma_rel = 0.05;
        x.nonideal.read_noise_sigma_rel = 0.02;
        d
    }

    #[test]
    fn the_two_phases_together_equal_with_trial() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let model = Model::load(&root.join("models/networks/fmnist-mlp.ron")).expect("model");
        let design = noisy_crossbar(&root);
        let calib = Dataset::synthetic(64, 28, 28, 10, 1);
        let x = Dataset::synthetic(96, 28, 28, 10, 2).batch_range(0, 96);
        let whole = Simulation::with_trial(design.clone(), &model, &calib, 7, 3).expect("sim");
        let q = Simulation::quantize(&design, &model, &calib).expect("quantize");
        let phased =
            Simulation::from_quantized(design.clone(), q.clone(), &model, 7, 3).expect("sim");
        assert_eq!(whole.forward(x.view()), phased.forward(x.view()));
        // Another trial programs other devices: the comparison above can fail.
        let other = Simulation::from_quantized(design, q, &model, 7, 4).expect("sim");
        assert_ne!(whole.forward(x.view()), other.forward(x.view()));
    }
}
