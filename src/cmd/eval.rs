//! `nacsim eval`: float top-1 accuracy of a trained network.

use std::time::Instant;

use clap::Args;
use nacsim_nn::data::Split;
use serde::Serialize;

use super::args::{EvalLimit, NetworkData};
use crate::CliResult;

/// Arguments of `nacsim eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The network and its images.
    #[command(flatten)]
    pub input: NetworkData,
    /// How many images.
    #[command(flatten)]
    pub limit: EvalLimit,
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
    let (model, label) = super::defaults::network(a.input.network())?;
    let src = a.input.source();
    let data = src.load_for(Split::Test, a.limit.checked()?, &model, &label)?;
    let t0 = Instant::now();
    let acc = model.float_accuracy(&data, 1000);
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
