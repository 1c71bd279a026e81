use proptest::prelude::*;

use super::*;
use crate::data::Dataset;
use crate::forward::{FloatKernel, forward_with};
use crate::model::Model;
use crate::network::NetworkSpec;
use crate::train::accuracy_net;

fn model(layers: &str, seed: u64) -> Model {
    let spec: NetworkSpec = ron::from_str(&format!(
        "(schema_version: 1, name: \"t\", input: (c: 1, h: 12, w: 12), classes: 10, layers: [{layers}])"
    ))
    .expect("spec");
    Model::init(spec, seed).expect("topology")
}

/// An MLP with every epilogue kind: bias + ReLU, no bias + two activations, bias alone, an
/// activation on the input, and a k across matrixmultiply's 256-term blocks (144 + 300).
const MLP: &str = "Flatten, Act(HardTanh(min: 0.0, max: 0.8)), Dense(out: 300), Act(ReLU), \
    Dense(out: 40, bias: false), Act(LeakyReLU(alpha: 0.1)), Act(Tanh), Dense(out: 10)";

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool")
}

fn same_bits(a: &Array2<f32>, b: &Array2<f32>) -> bool {
    a.dim() == b.dim() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn logits_have_the_bits_of_the_generic_pass() {
    let m = model(MLP, 3);
    let data = Dataset::synthetic(333, 12, 12, 10, 5);
    let x = data.batch_range(0, data.len());
    let want = forward_with(&FloatKernel, &m.layers, &m.params, x.clone());
    let chain = DenseChain::new(&m.layers, &m.params).expect("a dense chain");
    assert_eq!(chain.outputs(), 10);
    assert!(same_bits(&chain.logits(x.view()), &want));
    // A row alone gives the bits it has inside the batch.
    for r in [0, 17, 332] {
        let one = chain.logits(x.slice(ndarray::s![r..r + 1, ..]));
        let w = want.slice(ndarray::s![r..r + 1, ..]).to_owned();
        assert!(same_bits(&one, &w), "row {r}");
    }
}

#[test]
fn only_dense_chains_are_fused() {
    let conv = model(
        "Conv2d(out_channels: 2, kernel: 3), Act(ReLU), Flatten, Dense(out: 10)",
        1,
    );
    assert!(DenseChain::new(&conv.layers, &conv.params).is_none());
    let dropout = model(
        "Flatten, Dense(out: 20), Dropout(p: 0.5), Dense(out: 10)",
        1,
    );
    assert!(DenseChain::new(&dropout.layers, &dropout.params).is_none());
    let mlp = model(MLP, 1);
    let mut broken = mlp.params.clone();
    broken[2] = None;
    assert!(DenseChain::new(&mlp.layers, &broken).is_none());
    // Wrong image size: the generic pass runs (and reports it).
    let data = Dataset::synthetic(4, 10, 10, 10, 1);
    assert!(float_accuracy(&mlp.layers, &mlp.params, &data, 2).is_none());
    let empty = Dataset::synthetic(0, 12, 12, 10, 1);
    assert_eq!(
        float_accuracy(&mlp.layers, &mlp.params, &empty, 2),
        Some(0.0)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(nacsim_core::testing::proptest_cases(12)))]

    /// The fused accuracy equals the generic pass's for any image count, batch and thread count
    /// (the counts are integers, so equal accuracy means equal hits).
    #[test]
    fn accuracy_equals_the_generic_pass(
        n in 1usize..700,
        batch in 1usize..400,
        threads in 1usize..4,
        seed in 0u64..1000,
    ) {
        let m = model(MLP, seed);
        let data = Dataset::synthetic(n, 12, 12, 10, seed + 1);
        let want = accuracy_net(&FloatKernel, &m.layers, &m.params, &m.stats, &data, 1000);
        let got = pool(threads).install(|| float_accuracy(&m.layers, &m.params, &data, batch));
        prop_assert_eq!(got, Some(want));
        prop_assert_eq!(m.float_accuracy(&data, batch), want);
    }
}

/// The AVX-512 input copy (where the CPU has it) writes the bits of the scalar one, for shapes
/// with and without whole 16 × 16 tiles.
#[cfg(target_arch = "x86_64")]
#[test]
fn simd_input_copy_equals_the_scalar_one() {
    let lut = Dataset::pixel_values();
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    for (rows, width) in [(1, 784), (16, 16), (33, 784), (40, 20), (17, 5), (100, 33)] {
        let src: Vec<u8> = (0..rows * width)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 56) as u8
            })
            .collect();
        let mut want = vec![0.0; src.len()];
        transpose_into(&src, rows, &mut want, |p| lut[p as usize]);
        let mut got = vec![f32::NAN; src.len()];
        if x86::transpose_pixels(&src, rows, &mut got) {
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{rows} x {width}"
            );
        }
    }
    assert_eq!(lut[255], 1.0);
}
