//! Arguments shared by several subcommands (flattened into each with `#[command(flatten)]`).

use std::path::{Path, PathBuf};

use clap::Args;

use super::data::Source;
use crate::CliResult;

/// `--design`: the hardware to simulate.
#[derive(Args, Debug, Default)]
pub struct DesignArg {
    /// Design file (RON, models/designs/*.ron). Default: the embedded
    /// models/designs/systolic-int8.ron (32x32 int8 weight-stationary array).
    #[arg(long, value_name = "D.ron")]
    pub design: Option<PathBuf>,
}

impl DesignArg {
    /// The design file given, if any.
    pub fn path(&self) -> Option<&Path> {
        self.design.as_deref()
    }
}

/// `--network` and `--data`: the trained network and the images it runs on.
#[derive(Args, Debug, Default)]
pub struct NetworkData {
    /// Network file (RON) naming its safetensors weights. Default: the embedded
    /// models/networks/fmnist-mlp.ron.
    #[arg(long, value_name = "N.ron")]
    pub network: Option<PathBuf>,
    /// Folder with IDX files, gz or raw (`t10k-*` for evaluation; `train-*`, if present, for
    /// the simulator's calibration), e.g. /usr/share/datasets/fashion-mnist. Default: the
    /// bundled 2,000-image Fashion-MNIST test sample.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

impl NetworkData {
    /// The network file given, if any.
    pub fn network(&self) -> Option<&Path> {
        self.network.as_deref()
    }

    /// Where the images come from: `--data DIR`, else the bundled sample.
    pub fn source(&self) -> Source {
        Source::from_arg(self.data.as_deref())
    }
}

/// `--limit`: how many test images to evaluate.
#[derive(Args, Debug, Default)]
pub struct EvalLimit {
    /// Evaluate only the first K test images.
    #[arg(long, value_name = "K")]
    pub limit: Option<usize>,
}

impl EvalLimit {
    /// The limit given, if any.
    ///
    /// # Errors
    /// `--limit 0` (an accuracy over no image means nothing).
    pub fn checked(&self) -> CliResult<Option<usize>> {
        super::data::check_limit("limit", self.limit)
    }
}
