//! Accuracy of a sine-trained network: float forward of the saved model (= sine-in-float, since
//! its weights are sin(W)) and bit-exact fixed point for several formats and product units.
//!
//! ```text
//! cargo run --release -p nacsim-sine --example sine_accuracy -- \
//!     [models/networks/fmnist-mlp-sine.ron] [/usr/share/datasets/fashion-mnist]
//! ```
//!
//! Without the dataset folder it uses the bundled 1 000-image sample.

use std::path::Path;
use std::time::Instant;

use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::model::Model;
use nacsim_nn::train::{FloatKernel, accuracy};
use nacsim_sine::{CodeRounding, ProductKind, RectifiedSine};
use nacsim_sine::{SineNetwork, SineNetworkConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model_path = args
        .first()
        .map_or("models/networks/fmnist-mlp-sine.ron", |s| s.as_str());
    let data_dir = args
        .get(1)
        .map_or("/usr/share/datasets/fashion-mnist", |s| s.as_str());
    let model = Model::load(Path::new(model_path))?;
    let data = match Dataset::load_dir(Path::new(data_dir), Split::Test) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{data_dir}: {e}; using the bundled sample");
            Dataset::bundled_sample()
        }
    };
    let max_w = model
        .params
        .iter()
        .flatten()
        .flat_map(|p| p.weight.iter())
        .fold(0f64, |m, &s| m.max(f64::from(s).abs().asin()));
    println!(
        "model {model_path}: {} images of {}, largest weight angle {max_w:.4} rad",
        data.len(),
        data.name
    );
    let t = Instant::now();
    let float = accuracy(&FloatKernel, &model.layers, &model.params, &data, 1000);
    println!(
        "| sine-in-float (f32, saved sin(W)) | {float:.4} | — | {:.2} s |",
        t.elapsed().as_secs_f64()
    );
    // Round the table's weight range up to 1/16 rad.
    let wmax = (max_w * 16.0).ceil() / 16.0;
    let mut rows: Vec<(String, SineNetworkConfig)> = Vec::new();
    for (f, ff) in [(8, 16), (8, 20), (10, 20), (10, 24), (12, 24), (12, 28)] {
        rows.push((
            format!("versine f = {f}, F = {ff}"),
            SineNetworkConfig::versine(f, ff, wmax),
        ));
    }
    for (f, ff) in [(8, 16), (10, 24), (12, 24)] {
        rows.push((
            format!("quarter-square (exact a·b) f = {f}, F = {ff}"),
            SineNetworkConfig {
                product: ProductKind::QuarterSquare,
                ..SineNetworkConfig::versine(f, ff, wmax)
            },
        ));
    }
    rows.push((
        "cos-literal f = 10, F = 24".into(),
        SineNetworkConfig {
            product: ProductKind::CosLiteral,
            ..SineNetworkConfig::versine(10, 24, wmax)
        },
    ));
    rows.push((
        "versine f = 10, F = 24, requantiser HalfUp".into(),
        SineNetworkConfig {
            rounding: CodeRounding::HalfUp,
            ..SineNetworkConfig::versine(10, 24, wmax)
        },
    ));
    rows.push((
        "versine f = 10, F = 24, rectified sine (B) Periodic".into(),
        SineNetworkConfig {
            activation: RectifiedSine::Periodic,
            angle_max_rad: std::f64::consts::PI,
            ..SineNetworkConfig::versine(10, 24, wmax)
        },
    ));
    for (n, g) in [(12u32, 8u32), (16, 8)] {
        rows.push((
            format!("CORDIC n = {n} f = 10, F = 24"),
            SineNetworkConfig {
                product: ProductKind::Cordic {
                    iterations: n,
                    guard_bits: g,
                },
                ..SineNetworkConfig::versine(10, 24, wmax)
            },
        ));
    }
    println!("| datapath | accuracy | Δ vs sine-in-float (points) | time |");
    println!("|---|---|---|---|");
    for (name, cfg) in rows {
        let t = Instant::now();
        let net = match SineNetwork::new(&cfg, &model) {
            Ok(n) => n,
            Err(e) => {
                println!("| {name} | error: {e} | | |");
                continue;
            }
        };
        let acc = net.accuracy(&data)?;
        println!(
            "| {name} (table {} entries) | {acc:.4} | {:+.2} | {:.2} s |",
            net.format().entries(),
            100.0 * (acc - float),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
