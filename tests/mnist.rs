//! MNIST: the loader reads the real MNIST sample shipped in the repository (2,000 test images),
//! and a model trained on one half of it classifies the other half (only possible if images and
//! labels decode right).

use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::model::Model;
use nacsim_nn::network::NetworkSpec;
use nacsim_nn::train::{FloatKernel, FloatStore, accuracy, train};

use crate::util::{mnist_dir, nacsim, text};

#[test]
fn mnist_test_set_loads_and_is_learnable() {
    let all = Dataset::load_dir(&mnist_dir(), Split::Test).expect("MNIST sample loads");
    assert_eq!(all.len(), 2000);
    assert_eq!(all.labels_range(0, 5), vec![7, 2, 1, 0, 4]);
    let first = all.subset(&(0..1000).collect::<Vec<_>>());
    let second = all.subset(&(1000..2000).collect::<Vec<_>>());
    let spec: NetworkSpec = ron::from_str(
        "(schema_version: 1, name: \"t\", input: (c: 1, h: 28, w: 28), classes: 10, \
         layers: [Flatten, Dense(out: 64), Act(ReLU), Dense(out: 10)])",
    )
    .unwrap();
    let m = Model::init(spec, 3).unwrap();
    let s = crate::util::adam_settings(3, 10, 32, 2e-3);
    let mut store = FloatStore::new(m.params.clone(), s.optimizer);
    train(
        &m.layers,
        &FloatKernel,
        &mut store,
        &first,
        None,
        &s,
        &mut |_| {},
    )
    .expect("training stays finite");
    let acc = accuracy(
        &FloatKernel,
        &m.layers,
        nacsim_nn::train::WeightStore::params(&store),
        &second,
        1000,
    );
    assert!(
        acc > 0.85,
        "trained on MNIST test[0..1000], accuracy on test[1000..2000] = {acc}"
    );
}

#[test]
fn eval_reads_mnist_through_the_cli() {
    let d = mnist_dir();
    let o = nacsim(&[
        "eval",
        "--network",
        "models/networks/fmnist-mlp.ron",
        "--data",
        d.to_str().unwrap(),
        "--json",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["images"], 2000);
    // A Fashion-MNIST model on digits: it runs; its accuracy is whatever it is, but a fraction.
    let acc = v["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc));
}
