//! Simulator speed of bit-exact sine inference against float ndarray inference of the same
//! network (`models/networks/fmnist-mlp-sine.ron`) on the 10 000-image Fashion-MNIST test set
//! (the bundled 1 000-image sample if `/usr/share/datasets/fashion-mnist` is missing).
//!
//! Besides criterion's report, prints `ratio sine/float` from interleaved medians measured in this
//! process (issue 7 target: ≤ 3).
//!
//! ```text
//! cargo bench -p nacsim-sine --bench infer
//! ```

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::model::Model;
use nacsim_nn::train::{FloatKernel, accuracy};
use nacsim_sine::{ProductKind, SineProduct};
use nacsim_sine::{SineNetwork, SineNetworkConfig};

fn setup() -> (Model, Dataset) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = Model::load(&root.join("models/networks/fmnist-mlp-sine.ron"))
        .expect("models/networks/fmnist-mlp-sine.ron loads");
    let data = Dataset::load_dir(Path::new("/usr/share/datasets/fashion-mnist"), Split::Test)
        .unwrap_or_else(|_| Dataset::bundled_sample());
    (model, data)
}

fn float_accuracy(model: &Model, data: &Dataset) -> f64 {
    accuracy(&FloatKernel, &model.layers, &model.params, data, 1000)
}

fn main() {
    let (model, data) = setup();
    let macs: usize = model
        .params
        .iter()
        .flatten()
        .map(|p| p.weight.len())
        .sum::<usize>()
        * data.len();
    let nets: Vec<(&str, SineNetwork)> = [
        ("versine_f8_F16", SineNetworkConfig::versine(8, 16, 1.0)),
        ("versine_f10_F24", SineNetworkConfig::versine(10, 24, 1.0)),
        (
            "quarter_square_f10_F24",
            SineNetworkConfig {
                product: ProductKind::QuarterSquare,
                ..SineNetworkConfig::versine(10, 24, 1.0)
            },
        ),
    ]
    .into_iter()
    .map(|(n, c)| {
        (
            n,
            SineNetwork::new(&c, &model).expect("sine network builds"),
        )
    })
    .collect();

    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group(format!("infer_{}", data.len()));
        g.throughput(Throughput::Elements(macs as u64));
        g.sample_size(10);
        g.bench_function("float_ndarray", |b| {
            b.iter(|| float_accuracy(black_box(&model), &data))
        });
        for (name, net) in &nets {
            g.bench_function(*name, |b| {
                b.iter(|| net.accuracy(black_box(&data)).expect("sizes match"))
            });
        }
        g.finish();
    }
    c.final_summary();

    // The ratio, from interleaved runs in this process (medians of 7).
    let net = &nets[1].1;
    let (mut tf, mut ts) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let t = Instant::now();
        black_box(float_accuracy(&model, &data));
        tf.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        black_box(net.accuracy(&data).expect("sizes match"));
        ts.push(t.elapsed().as_secs_f64());
    }
    tf.sort_by(f64::total_cmp);
    ts.sort_by(f64::total_cmp);
    let (f, s) = (tf[3], ts[3]);
    println!(
        "sine bit-exact ({:?}, f = {}, F = {}) {:.3} s vs float ndarray {:.3} s on {} images \
         ({} threads): ratio sine/float = {:.2} (target ≤ 3)",
        net.config().product,
        net.format().frac_bits,
        net.format().out_frac_bits,
        s,
        f,
        data.len(),
        rayon::current_num_threads(),
        s / f
    );
    black_box(net.unit().cost());
}
