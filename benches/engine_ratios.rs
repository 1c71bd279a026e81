//! The bit-exact engines against float inference of the same network, in the same process:
//! a full 10,000-image Fashion-MNIST run (functional results through the engine, analytic
//! timing and energy, the report) of
//!
//! | engine | design | network |
//! |---|---|---|
//! | systolic | `systolic-int8.ron` | `fmnist-mlp.ron` |
//! | circulant | `bpca-qin2019.ron` | `fmnist-mlp-bc16-pot3.ron` |
//! | sine | `sine-lut.ron` (versine, f = 10, F = 24) | `fmnist-mlp-sine.ron` |
//! | sine | `sine-quarter-square.ron` | `fmnist-mlp-sine.ron` |
//!
//! each next to float ndarray inference of its own network (`FloatKernel`, batch 1,000), and
//! then (issue #20: every ratio ≤ 1.5×) interleaved rounds: every round runs each engine and
//! each float reference once, so all see the same machine load, and the bench prints the
//! median wall time of each and its ratio to the float reference of the same network in the
//! same rounds. Rounds: `NACSIM_ROUNDS` (default 7); `-- NOMATCH` skips criterion's part.
//!
//! Uses `/usr/share/datasets/fashion-mnist` when installed (calibration on the first 512
//! training images, as `nacsim run` does), else 10,000 seeded pseudo-images of the same shape.
//! Run: `cargo bench --bench engine_ratios`.

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::model::Model;
use nacsim_scheduler::design::Design;
use nacsim_scheduler::report::RunReport;
use nacsim_scheduler::sim::Simulation;

/// `(label, design, network)` of every engine measured.
const ENGINES: [(&str, &str, &str); 4] = [
    ("systolic_int8", "systolic-int8.ron", "fmnist-mlp.ron"),
    (
        "circulant_bc16_pot3",
        "bpca-qin2019.ron",
        "fmnist-mlp-bc16-pot3.ron",
    ),
    ("sine_versine_f10", "sine-lut.ron", "fmnist-mlp-sine.ron"),
    (
        "sine_quarter_square",
        "sine-quarter-square.ron",
        "fmnist-mlp-sine.ron",
    ),
];

/// One engine's simulation and its network.
struct Case {
    label: &'static str,
    network: &'static str,
    model: Model,
    sim: Simulation,
}

/// The test images, and the engines built on calibration images.
fn setup() -> (Dataset, Vec<Case>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = Path::new(nacsim_nn::data::FASHION_MNIST_DIR);
    let test = Dataset::load_dir(dir, Split::Test)
        .unwrap_or_else(|_| Dataset::synthetic(10_000, 28, 28, 10, 1));
    let calib = Dataset::load_dir_prefix(dir, Split::Train, 512)
        .unwrap_or_else(|_| test.clone().limit(512));
    let cases = ENGINES
        .iter()
        .map(|&(label, design, network)| {
            let model = Model::load(&root.join("models/networks").join(network)).expect("model");
            let design = Design::load(&root.join("models/designs").join(design)).expect("design");
            let sim = Simulation::new(design, &model, &calib).expect("simulation");
            Case {
                label,
                network,
                model,
                sim,
            }
        })
        .collect();
    (test, cases)
}

fn run(case: &Case, test: &Dataset) -> RunReport {
    let acc = case.sim.accuracy(test);
    RunReport::build(
        &case.sim,
        common::facts(case.network, "train", test.len(), acc),
    )
    .expect("report")
}

/// The float pass `nacsim eval` and `run` use (the fused pass for a chain of Dense layers).
fn float(model: &Model, test: &Dataset) -> f64 {
    model.float_accuracy(test, 1000)
}

fn bench(c: &mut Criterion) {
    let (test, cases) = setup();
    let mut g = c.benchmark_group("engines_10k_images");
    g.sample_size(10);
    g.throughput(Throughput::Elements(test.len() as u64));
    let mut floats_done = Vec::new();
    for case in &cases {
        if !floats_done.contains(&case.network) {
            floats_done.push(case.network);
            let name = format!("float_{}", case.network.trim_end_matches(".ron"));
            g.bench_function(name, |b| b.iter(|| black_box(float(&case.model, &test))));
        }
        g.bench_function(case.label, |b| b.iter(|| black_box(run(case, &test))));
    }
    g.finish();
}

/// Interleaved rounds (see the module doc): median wall time of each engine and of the float
/// reference of its network, and their ratio.
fn ratios(c: &mut Criterion) {
    let _ = c;
    let rounds = std::env::var("NACSIM_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(7)
        .max(1);
    let (test, cases) = setup();
    let mut eng = vec![Vec::new(); cases.len()];
    let mut flt = vec![Vec::new(); cases.len()];
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    for _ in 0..rounds {
        for (i, case) in cases.iter().enumerate() {
            flt[i].push(time(&mut || {
                black_box(float(&case.model, &test));
            }));
            eng[i].push(time(&mut || {
                black_box(run(case, &test));
            }));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "engines against float inference of the same network, {} images, {} threads, medians of \
         {rounds} interleaved rounds (issue #20 target: ≤ 1.5×):",
        test.len(),
        rayon::current_num_threads()
    );
    for (i, case) in cases.iter().enumerate() {
        let (e, f) = (median(&mut eng[i]), median(&mut flt[i]));
        println!(
            "  {:22} {:8.1} ms   float {:28} {:8.1} ms   ratio {:4.2}x",
            case.label,
            e * 1e3,
            case.network,
            f * 1e3,
            e / f
        );
    }
}

criterion_group!(benches, bench, ratios);
criterion_main!(benches);
