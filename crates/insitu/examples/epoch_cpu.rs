//! CPU time of the `fmnist_mlp_epoch` bench's in-situ epoch and of the same float epoch, in one
//! process, for the in-situ/float ratio on a loaded machine (issue #20): criterion's wall times
//! move with other jobs, the ratio of CPU times taken in one process moves much less.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo run --release -p nacsim-insitu --example epoch_cpu -- [ROUNDS]
//! ```
//!
//! Per round: one in-situ epoch (784-256-128-10, 60,000 images, batch 64, plain SGD lr 0.1,
//! Ag:a-Si fixed voltage with stochastic rounding, 2 % read noise, 8-bit ADC: the bench's
//! settings) and one float epoch (float store and kernel), each timed by the process CPU time
//! (`/proc/self/stat`, user + system, in clock ticks of 1/100 s: Linux only), then the ratio,
//! the wall times and their ratio (for runs with more than one thread, where CPU time counts
//! the workers' spinning), a 64-bit FNV-1a hash of the trained weights and conductances (equal hashes ⇒ bit-identical
//! training, for checking that a speed-up changed no number) and the write statistics. Data:
//! Fashion-MNIST from `/usr/share/datasets/fashion-mnist` (or `$FMNIST_DIR`). Alternate runs of
//! an old and a new build to compare them. With `EPOCH_CPU_IN_POOL` set, both epochs run inside a
//! rayon pool (`install`), so their parallel loops start on a worker instead of being handed
//! over from the main thread (as `nacsim train` and the bench do).

use std::path::{Path, PathBuf};

use nacsim_insitu::{CrossbarKernel, CrossbarStore, InSituConfig};
use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::model::Model;
use nacsim_nn::network::NetworkSpec;
use nacsim_nn::train::{
    FloatKernel, FloatStore, Optimizer, Schedule, TrainSettings, WeightStore, train,
};

const SGD: Optimizer = Optimizer::Sgd {
    momentum: 0.0,
    weight_decay: 0.0,
};

/// Process CPU seconds (user + system) from `/proc/self/stat` (fields 14 and 15, in USER_HZ
/// ticks, 100 per second on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat (Linux only)");
    let after = stat.rsplit(')').next().expect("stat line");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f[i].parse::<f64>().expect("a tick count");
    (ticks(11) + ticks(12)) / 100.0
}

/// FNV-1a over 64-bit words.
fn fnv(h: u64, word: u64) -> u64 {
    (h ^ word).wrapping_mul(0x100_0000_01b3)
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(1, |s| s.parse().expect("ROUNDS is a count"));
    let dir = std::env::var_os("FMNIST_DIR").map_or_else(
        || PathBuf::from("/usr/share/datasets/fashion-mnist"),
        PathBuf::from,
    );
    let tr = Dataset::load_dir(&dir, Split::Train).expect("Fashion-MNIST (set FMNIST_DIR)");
    let settings: InSituConfig = nacsim_core::config::parse(
        "(device: Preset((preset: AgASi)), \
         scheme: FixedVoltage(magnitude: Count, rounding: Stochastic), \
         periphery: (read_noise_sigma: 0.02, adc_bits: 8))",
        Path::new("epoch_cpu.ron"),
    )
    .expect("settings");
    let spec: NetworkSpec = nacsim_core::config::parse(
        "(schema_version: 1, name: \"mlp\", input: (c: 1, h: 28, w: 28), classes: 10, \
         layers: [Flatten, Dense(out: 256), Act(ReLU), Dense(out: 128), Act(ReLU), Dense(out: 10)])",
        Path::new("epoch_cpu.ron"),
    )
    .expect("network");
    let model = Model::init(spec, 1).expect("model");
    let ts = TrainSettings {
        seed: 1,
        epochs: 1,
        batch_size: 64,
        lr: 0.1,
        optimizer: SGD,
        schedule: Schedule::Constant,
        augment: None,
    };
    let pool = std::env::var_os("EPOCH_CPU_IN_POOL").map(|_| {
        rayon::ThreadPoolBuilder::new()
            .build()
            .expect("a thread pool")
    });
    let run = |f: &mut (dyn FnMut() + Send)| match &pool {
        Some(p) => p.install(f),
        None => f(),
    };
    for _ in 0..rounds {
        let (t0, w0) = (cpu_seconds(), std::time::Instant::now());
        let mut store =
            CrossbarStore::new(settings.clone(), model.params.clone(), SGD, 1).expect("store");
        let kernel = CrossbarKernel::new(settings.periphery, settings.w_max, 1, model.layers.len());
        run(&mut || {
            train(
                &model.layers,
                &kernel,
                &mut store,
                &tr,
                None,
                &ts,
                &mut |_| {},
            )
            .expect("training stays finite");
        });
        let (t1, w1) = (cpu_seconds(), std::time::Instant::now());
        let mut float = FloatStore::new(model.params.clone(), SGD);
        run(&mut || {
            train(
                &model.layers,
                &FloatKernel,
                &mut float,
                &tr,
                None,
                &ts,
                &mut |_| {},
            )
            .expect("training stays finite");
        });
        let (t2, w2) = (cpu_seconds(), std::time::Instant::now());
        let (wall_insitu, wall_float) = ((w1 - w0).as_secs_f64(), (w2 - w1).as_secs_f64());
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for p in store.params().iter().flatten() {
            for w in &p.weight {
                h = fnv(h, u64::from(w.to_bits()));
            }
        }
        for l in 0..model.layers.len() {
            for g in store.conductances(l).unwrap_or(&[]) {
                h = fnv(h, g.to_bits());
            }
        }
        println!(
            "CPU: in situ {:.2} s  float {:.2} s  ratio {:.3}  wall: in situ {wall_insitu:.3} s  \
             float {wall_float:.3} s  ratio {:.3}  hash {h:016x}  {:?}",
            t1 - t0,
            t2 - t1,
            (t1 - t0) / (t2 - t1),
            wall_insitu / wall_float,
            store.stats()
        );
    }
}
