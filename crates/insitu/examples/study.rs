//! Seed study of in-situ training: accuracy mean ± std over seeds for one in-situ settings file.
//!
//! ```text
//! cargo run --release -p nacsim-insitu --example study -- \
//!     SETTINGS.ron NETWORK_CONFIG.ron LR EPOCHS BATCH SEEDS [TRAIN_LIMIT]
//! ```
//!
//! `NETWORK_CONFIG.ron` is any training config (its `network` is used; its optimizer is
//! replaced by plain SGD at `LR` with a constant schedule); `SEEDS` is a comma list, e.g.
//! `1,2,3,4,5`. Data: Fashion-MNIST from `/usr/share/datasets/fashion-mnist` (or `$FMNIST_DIR`),
//! after the settings' data options. Prints one line per seed and a summary line.

use std::path::{Path, PathBuf};
use std::time::Instant;

use nacsim_insitu::{CrossbarKernel, CrossbarStore, InSituConfig};
use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::model::Model;
use nacsim_nn::network::NetworkSpec;
use nacsim_nn::train::{
    FloatKernel, Optimizer, Schedule, TrainSettings, WeightStore, accuracy, train,
};

fn network_of(path: &Path) -> NetworkSpec {
    // The `network: ( … )` part of a training config, cut out by matching parentheses (so this
    // works whatever else the config holds).
    let text = std::fs::read_to_string(path).expect("readable training config");
    let start = text.find("network:").expect("config has a network") + "network:".len();
    let open = start + text[start..].find('(').expect("network is a struct");
    let mut depth = 0usize;
    let mut end = open;
    for (i, ch) in text[open..].char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    end = open + i + 1;
                    break;
                }
            }
            _ => {}
        }
    }
    nacsim_core::config::parse(&text[open..end], path).unwrap_or_else(|e| panic!("{e}"))
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 6 {
        eprintln!(
            "usage: study SETTINGS.ron NETWORK_CONFIG.ron LR EPOCHS BATCH SEEDS [TRAIN_LIMIT]"
        );
        std::process::exit(2);
    }
    let settings: InSituConfig =
        nacsim_core::config::load(Path::new(&a[0])).unwrap_or_else(|e| panic!("{e}"));
    let spec = network_of(Path::new(&a[1]));
    let lr: f32 = a[2].parse().expect("LR");
    let epochs: usize = a[3].parse().expect("EPOCHS");
    let batch: usize = a[4].parse().expect("BATCH");
    let seeds: Vec<u64> = a[5].split(',').map(|s| s.parse().expect("seed")).collect();
    let limit: Option<usize> = a.get(6).map(|s| s.parse().expect("TRAIN_LIMIT"));
    let dir = std::env::var("FMNIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/usr/share/datasets/fashion-mnist"));
    let mut tr = nacsim_insitu::data::apply_train(
        Dataset::load_dir(&dir, Split::Train).expect("training set"),
        &settings.data,
    );
    if let Some(k) = limit {
        tr.truncate(k);
    }
    let te = nacsim_insitu::data::apply(
        Dataset::load_dir(&dir, Split::Test).expect("test set"),
        &settings.data,
    );
    let sgd = Optimizer::Sgd {
        momentum: 0.0,
        weight_decay: 0.0,
    };
    let mut accs = Vec::new();
    for &seed in &seeds {
        let model = Model::init(spec.clone(), seed).expect("network");
        let mut store =
            CrossbarStore::new(settings.clone(), model.params.clone(), sgd, seed).expect("store");
        let kernel =
            CrossbarKernel::new(settings.periphery, settings.w_max, seed, model.layers.len());
        let ts = TrainSettings {
            seed,
            epochs,
            batch_size: batch,
            lr,
            optimizer: sgd,
            schedule: Schedule::Constant,
            augment: None,
        };
        let t0 = Instant::now();
        let hist = train(
            &model.layers,
            &kernel,
            &mut store,
            &tr,
            Some(&te),
            &ts,
            &mut |_| {},
        )
        .expect("training stays finite");
        let secs = t0.elapsed().as_secs_f64();
        let params = store.export();
        let float_acc = accuracy(&FloatKernel, &model.layers, &params, &te, 1000);
        let per_epoch: Vec<String> = hist
            .iter()
            .map(|h| format!("{:.4}", h.eval_accuracy.unwrap_or(0.0)))
            .collect();
        let st = store.stats();
        println!(
            "seed {seed}: accuracy {float_acc:.4} (noisy-forward per epoch [{}]), {secs:.1} s, \
             {} pulses (max {}/device), write {:.3e} pJ, half-select {:.3e} pJ, latency {:.3e} s",
            per_epoch.join(", "),
            st.pulses,
            st.max_pulses_per_device,
            st.write_energy_pj,
            st.half_select_energy_pj,
            st.write_latency_s
        );
        for w in store.warnings() {
            println!("  warning: {w}");
        }
        accs.push(float_acc);
    }
    let n = accs.len() as f64;
    let mean = accs.iter().sum::<f64>() / n;
    let std = if accs.len() > 1 {
        (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    println!(
        "summary {}: lr {lr} epochs {epochs} batch {batch} seeds {:?}: accuracy {:.4} ± {:.4} (sample std)",
        a[0], seeds, mean, std
    );
}
