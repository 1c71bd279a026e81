//! A full 10,000-image Fashion-MNIST run of the MLP through the baseline int8 systolic engine
//! (functional through the engine + analytic timing and energy), and of the block-circulant
//! power-of-two MLP through the circulant engine (bit-exact B-MV sums + analytic timing and
//! energy, design `bpca-qin2019`), and one Monte Carlo trial of the MLP on the RRAM crossbar
//! (`crossbar-rram` with 5 % d2d variation, 2 % read noise and 8-bit ADCs, programming included),
//! each against float ndarray inference of the same network on the same images, in the same
//! process.
//!
//! Uses `/usr/share/datasets/fashion-mnist` when installed, else 10,000 seeded pseudo-images of
//! the same shape. Run: `cargo bench --bench run_mlp`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::model::Model;
use nacsim_nn::train::{FloatKernel, accuracy};
use nacsim_scheduler::design::Design;
use nacsim_scheduler::report::RunReport;
use nacsim_scheduler::sim::Simulation;

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = Model::load(&root.join("models/networks/fmnist-mlp.ron")).expect("model");
    let design = Design::load(&root.join("models/designs/systolic-int8.ron")).expect("design");
    let test = Dataset::load_dir(Path::new("/usr/share/datasets/fashion-mnist"), Split::Test)
        .unwrap_or_else(|_| Dataset::synthetic(10_000, 28, 28, 10, 1));
    let sim = Simulation::new(design, &model, &test.clone().limit(512)).expect("simulation");

    let mut g = c.benchmark_group("mlp_10k_images");
    g.sample_size(10);
    g.throughput(Throughput::Elements(test.len() as u64));
    g.bench_function("systolic_int8_run", |b| {
        b.iter(|| {
            let acc = sim.accuracy(&test);
            black_box(
                RunReport::build(&sim, "mlp", "test", test.len(), acc, 0.0, 0.0).expect("report"),
            )
        })
    });
    g.bench_function("float_ndarray_inference", |b| {
        b.iter(|| {
            black_box(accuracy(
                &FloatKernel,
                &model.layers,
                &model.params,
                &test,
                1000,
            ))
        })
    });
    let bc = Model::load(&root.join("models/networks/fmnist-mlp-bc16-pot3.ron")).expect("model");
    let bpca = Design::load(&root.join("models/designs/bpca-qin2019.ron")).expect("design");
    let bc_sim = Simulation::new(bpca, &bc, &test.clone().limit(512)).expect("simulation");
    g.bench_function("circulant_bc16_pot3_run", |b| {
        b.iter(|| {
            let acc = bc_sim.accuracy(&test);
            black_box(
                RunReport::build(&bc_sim, "bc", "test", test.len(), acc, 0.0, 0.0).expect("report"),
            )
        })
    });
    g.bench_function("float_ndarray_inference_bc16_pot3", |b| {
        b.iter(|| black_box(accuracy(&FloatKernel, &bc.layers, &bc.params, &test, 1000)))
    });
    // One Monte Carlo trial on the crossbar: program the arrays (d2d draws) and run every image
    // with read noise and 8-bit ADCs. Read noise output-referred (the sweep option, see
    // nacsim_crossbar::ReadNoiseModel) and, separately, before the ADC (the physical default).
    for (label, noise) in [
        (
            "crossbar_trial_d2d5_read2_adc8_output_referred",
            "OutputReferred",
        ),
        ("crossbar_trial_d2d5_read2_adc8_before_adc", "BeforeAdc"),
    ] {
        let mut xbar =
            Design::load(&root.join("models/designs/crossbar-rram.ron")).expect("design");
        let nacsim_scheduler::design::EngineConfig::Crossbar(x) =
            &mut xbar.config.engines[0].engine
        else {
            panic!("crossbar-rram.ron has a crossbar engine")
        };
        x.nonideal.d2d_sigma_rel = 0.05;
        x.nonideal.read_noise_sigma_rel = 0.02;
        x.nonideal.read_noise_model = if noise == "BeforeAdc" {
            nacsim_crossbar::ReadNoiseModel::BeforeAdc
        } else {
            nacsim_crossbar::ReadNoiseModel::OutputReferred
        };
        let calib = test.clone().limit(512);
        let mut trial = 0u32;
        g.bench_function(label, |b| {
            b.iter(|| {
                trial += 1;
                let sim = Simulation::with_trial(xbar.clone(), &model, &calib, 1, trial)
                    .expect("simulation");
                black_box(sim.accuracy(&test))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
