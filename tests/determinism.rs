//! Same config and seed give bit-identical trained weights for any thread count.

use nacsim_nn::data::Dataset;
use nacsim_nn::model::Model;
use nacsim_nn::train::{FloatKernel, FloatStore, WeightStore, train};
use nacsim_train::TrainConfig;

use crate::util::{nacsim_env, root, text};

fn train_in_pool(threads: usize, cfg: &TrainConfig, data: &Dataset) -> Vec<u8> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut m = Model::init(cfg.network.clone(), cfg.train.seed).unwrap();
        let mut store = FloatStore::new(m.params.clone(), cfg.train.optimizer);
        train(
            &m.layers,
            &FloatKernel,
            &mut store,
            data,
            None,
            &cfg.train,
            &mut |_| {},
        )
        .expect("training stays finite");
        m.params = store.export();
        m.to_safetensors()
    })
}

/// The CNN config exercises conv, pooling and dense layers; 512 bundled images, one epoch.
#[test]
fn cnn_weights_identical_with_one_and_two_threads() {
    let mut cfg: TrainConfig =
        nacsim_core::config::load(&root().join("models/training/fmnist-cnn.ron")).unwrap();
    cfg.train.epochs = 1;
    let data = Dataset::bundled_sample().limit(512);
    let one = train_in_pool(1, &cfg, &data);
    let two = train_in_pool(2, &cfg, &data);
    let four = train_in_pool(4, &cfg, &data);
    assert!(one == two, "1 vs 2 threads differ");
    assert!(one == four, "1 vs 4 threads differ");
    let init = Model::init(cfg.network.clone(), cfg.train.seed)
        .unwrap()
        .to_safetensors();
    assert!(one != init, "training changed nothing");
}

/// Through the binary with RAYON_NUM_THREADS, as a user would run it.
#[test]
fn cli_training_is_bit_identical_across_rayon_num_threads() {
    let d = crate::util::fashion_mnist_dir();
    let mut outs = Vec::new();
    for threads in ["1", "2"] {
        let dir = tempfile::tempdir().unwrap();
        let o = nacsim_env(
            &[
                "train",
                "models/training/fmnist-mlp.ron",
                "--out",
                dir.path().to_str().unwrap(),
                "--data",
                d.to_str().unwrap(),
                "--limit",
                "2000",
                "--eval-limit",
                "200",
                "--epochs",
                "1",
                "--quiet",
            ],
            &[("RAYON_NUM_THREADS", threads)],
        );
        assert!(o.status.success(), "{}", text(&o).1);
        outs.push(std::fs::read(dir.path().join("fmnist-mlp.safetensors")).unwrap());
    }
    assert!(
        outs[0] == outs[1],
        "weights differ between RAYON_NUM_THREADS=1 and 2"
    );
}

#[test]
fn store_export_round_trips_through_safetensors() {
    let cfg: TrainConfig =
        nacsim_core::config::load(&root().join("models/training/fmnist-mlp.ron")).unwrap();
    let m = Model::init(cfg.network.clone(), 7).unwrap();
    let store = FloatStore::new(m.params.clone(), cfg.train.optimizer);
    assert_eq!(store.export(), m.params);
}
