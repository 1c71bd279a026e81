//! The embedded defaults: the main job runs with no files at all.

use std::path::Path;

use nacsim_nn::model::Model;
use nacsim_scheduler::design::Design;

use crate::CliResult;

const NETWORK: &str = include_str!("../../models/networks/fmnist-mlp.ron");
const WEIGHTS: &[u8] = include_bytes!("../../models/networks/fmnist-mlp.safetensors");
const NETWORK_LABEL: &str = "models/networks/fmnist-mlp.ron (embedded)";
const DESIGN: &str = include_str!("../../models/designs/systolic-int8.ron");
const DESIGN_LABEL: &str = "models/designs/systolic-int8.ron (embedded)";
const ENERGY: &str = include_str!("../../models/energy/horowitz-45nm.ron");
const ENERGY_LABEL: &str = "models/energy/horowitz-45nm.ron (embedded)";
const TECHNOLOGY: &str = include_str!("../../models/tech/45nm.ron");
const TECHNOLOGY_LABEL: &str = "models/tech/45nm.ron (embedded)";

/// The network at `path`, or the embedded default; with its label for reports.
pub fn network(path: Option<&Path>) -> CliResult<(Model, String)> {
    Ok(match path {
        Some(p) => {
            let label = p.display().to_string();
            let spec = nacsim_nn::model::load_spec(p)?;
            super::limits::check_spec(&spec, &label, super::limits::EVAL_BATCH)?;
            (Model::load(p)?, label)
        }
        None => (
            Model::from_bytes(NETWORK, WEIGHTS, NETWORK_LABEL)?,
            NETWORK_LABEL.to_string(),
        ),
    })
}

/// The design at `path`, or the embedded default.
pub fn design(path: Option<&Path>) -> CliResult<Design> {
    Ok(match path {
        Some(p) => Design::load(p)?,
        None => Design::from_texts_with_technology(
            DESIGN,
            ENERGY,
            Path::new(DESIGN_LABEL),
            Path::new(ENERGY_LABEL),
            Some((TECHNOLOGY, Path::new(TECHNOLOGY_LABEL))),
        )?,
    })
}
