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
//! settings, network and epoch, shared with it through `benches/common`) and one float epoch
//! (float store and kernel), each timed by the process CPU time (`/proc/self/stat`, user +
//! system, in clock ticks of 1/100 s: Linux only), then the ratio, the wall times and their
//! ratio (for runs with more than one thread, where CPU time counts the workers' spinning), a
//! 64-bit FNV-1a hash of the trained weights and conductances (equal hashes ⇒ bit-identical
//! training, for checking that a speed-up changed no number) and the write statistics. Data:
//! Fashion-MNIST from `/usr/share/datasets/fashion-mnist` (or `$FMNIST_DIR`). Alternate runs of
//! an old and a new build to compare them. With `EPOCH_CPU_IN_POOL` set, both epochs run inside a
//! rayon pool (`install`), so their parallel loops start on a worker instead of being handed
//! over from the main thread (as `nacsim train` and the bench do).

#[path = "../benches/common/mod.rs"]
mod common;

use std::time::Instant;

use common::{FMNIST_INSITU, FMNIST_MLP, SGD, fmnist_dir, net, settings, train_settings};
use nacsim_insitu::{CrossbarKernel, CrossbarStore};
use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::model::Model;
use nacsim_nn::train::{FloatKernel, FloatStore, ProductKernel, WeightStore};

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

/// One epoch of `model` on `tr` with `kernel` and the store `make` builds, inside `pool` when
/// there is one: the store after the epoch, CPU seconds and wall seconds (both counting the
/// store's construction: the in-situ store programs its devices there).
fn timed_epoch<K: ProductKernel, S: WeightStore + Send>(
    pool: Option<&rayon::ThreadPool>,
    model: &Model,
    kernel: &K,
    make: impl FnOnce() -> S,
    tr: &Dataset,
) -> (S, f64, f64) {
    let ts = train_settings(64, 0.1);
    let (t0, w0) = (cpu_seconds(), Instant::now());
    let mut store = make();
    let mut run = || common::epoch(&model.layers, kernel, &mut store, tr, &ts);
    match pool {
        Some(p) => p.install(run),
        None => run(),
    }
    (store, cpu_seconds() - t0, w0.elapsed().as_secs_f64())
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(1, |s| s.parse().expect("ROUNDS is a count"));
    let tr =
        Dataset::load_dir(&fmnist_dir(), Split::Train).expect("Fashion-MNIST (set FMNIST_DIR)");
    let settings = settings(FMNIST_INSITU);
    let model = Model::init(net(FMNIST_MLP), 1).expect("model");
    let pool = std::env::var_os("EPOCH_CPU_IN_POOL").map(|_| {
        rayon::ThreadPoolBuilder::new()
            .build()
            .expect("a thread pool")
    });
    for _ in 0..rounds {
        let kernel = CrossbarKernel::new(settings.periphery, settings.w_max, 1, model.layers.len());
        let make = || CrossbarStore::new(settings.clone(), model.params.clone(), SGD, 1);
        let (store, cpu_insitu, wall_insitu) = timed_epoch(
            pool.as_ref(),
            &model,
            &kernel,
            || make().expect("store"),
            &tr,
        );
        let make = || FloatStore::new(model.params.clone(), SGD);
        let (_, cpu_float, wall_float) =
            timed_epoch(pool.as_ref(), &model, &FloatKernel, make, &tr);
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
            "CPU: in situ {cpu_insitu:.2} s  float {cpu_float:.2} s  ratio {:.3}  wall: in situ \
             {wall_insitu:.3} s  float {wall_float:.3} s  ratio {:.3}  hash {h:016x}  {:?}",
            cpu_insitu / cpu_float,
            wall_insitu / wall_float,
            store.stats()
        );
    }
}
