//! `nacsim eval`: float top-1 accuracy of a trained network.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use nacsim_nn::data::Split;
use nacsim_nn::train::{FloatKernel, accuracy};
use serde::Serialize;

use super::data::Source;
use crate::CliResult;

/// Arguments of `nacsim eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Network file (RON) naming its safetensors weights. Default: the embedded
    /// models/networks/fmnist-mlp.ron.
    #[arg(long, value_name = "N.ron")]
    pub network: Option<PathBuf>,
    /// Folder with IDX files (`t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`),
    /// e.g. /usr/share/datasets/fashion-mnist. Default: the bundled 2,000-image Fashion-MNIST
    /// test sample.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Evaluate only the first K images.
    #[arg(long, value_name = "K")]
    pub limit: Option<usize>,
    /// Print one JSON object (keys: network, data, images, correct, accuracy, seconds) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct EvalReport {
    network: String,
    data: String,
    images: usize,
    correct: usize,
    accuracy: f64,
    seconds: f64,
}

/// Run `nacsim eval`.
pub fn run(a: &EvalArgs) -> CliResult<()> {
    let (model, label) = super::defaults::network(a.network.as_deref())?;
    let src = Source::from_arg(a.data.as_deref());
    let data = src.load_for(
        Split::Test,
        super::data::check_limit("limit", a.limit)?,
        &model,
        &label,
    )?;
    let t0 = Instant::now();
    let acc = accuracy(&FloatKernel, &model.layers, &model.params, &data, 1000);
    let seconds = t0.elapsed().as_secs_f64();
    let r = EvalReport {
        network: label,
        data: src.describe(),
        images: data.len(),
        correct: (acc * data.len() as f64).round() as usize,
        accuracy: acc,
        seconds,
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        outln!("nacsim eval — float reference model");
        outln!("  network   {}", r.network);
        outln!("  data      {}", r.data);
        outln!("  images    {}", r.images);
        outln!("  correct   {}", r.correct);
        outln!("  accuracy  {:.2} %", 100.0 * r.accuracy);
        outln!("  time      {:.3} s", r.seconds);
    }
    Ok(())
}
