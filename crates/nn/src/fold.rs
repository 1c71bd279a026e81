//! BatchNorm folding: a BatchNorm2d whose only input is a Dense or Conv2d layer read by it alone
//! becomes part of that layer's weights, as integer engines run it.
//!
//! At inference BatchNorm2d is the per-channel affine map `y = s·x + t` with
//! `s = γ/√(σ² + eps)` and `t = β − μ·s` ([`crate::ops::bn_affine`]). Applied to a product
//! `x = W·a + b`, it gives `y = (s·W)·a + (s·b + t)`: each output row of the weights is scaled by
//! its channel's `s` and the bias becomes `s·b + t` (a layer without bias gets one). The folded
//! network computes the same function up to f32 rounding (tested against the unfolded float
//! forward).

use ndarray::{Array1, Axis};

use crate::model::Model;
use crate::network::{LayerSpec, NetworkSpec, NodeSpec, ResolvedLayer};
use crate::ops::bn_affine;

/// `targets[i] = Some(j)`: BatchNorm2d layer `i` folds into product `j` (a Dense or Conv2d that
/// only `i` reads).
pub fn fold_targets(layers: &[ResolvedLayer]) -> Vec<Option<usize>> {
    let mut readers = vec![0usize; layers.len()];
    for l in layers {
        for j in l.inputs.iter().flatten() {
            readers[*j] += 1;
        }
    }
    layers
        .iter()
        .map(|l| match (&l.spec, l.inputs.as_slice()) {
            (LayerSpec::BatchNorm2d { .. }, [Some(j)])
                if layers[*j].has_product() && readers[*j] == 1 =>
            {
                Some(*j)
            }
            _ => None,
        })
        .collect()
}

/// The layers after folding (topology only): folded BatchNorm2d layers removed, their products
/// given a bias, their readers reading the products. Returns the layers and, for each, its
/// index in `layers`.
pub fn folded_layers(layers: &[ResolvedLayer]) -> (Vec<ResolvedLayer>, Vec<usize>) {
    let targets = fold_targets(layers);
    let n = layers.len();
    let keep: Vec<usize> = (0..n).filter(|&i| targets[i].is_none()).collect();
    let mut new_index = vec![usize::MAX; n];
    for (ni, &i) in keep.iter().enumerate() {
        new_index[i] = ni;
    }
    let folded: Vec<ResolvedLayer> = keep
        .iter()
        .map(|&i| {
            let l = &layers[i];
            let mut spec = l.spec.clone();
            if targets.contains(&Some(i)) {
                match &mut spec {
                    LayerSpec::Dense { bias, .. } | LayerSpec::Conv2d { bias, .. } => {
                        *bias = true;
                    }
                    _ => {}
                }
            }
            ResolvedLayer {
                spec,
                name: l.name.clone(),
                input: l.input,
                output: l.output,
                inputs: l
                    .inputs
                    .iter()
                    .map(|s| s.map(|k| new_index[targets[k].unwrap_or(k)]))
                    .collect(),
            }
        })
        .collect();
    (folded, keep)
}

impl Model {
    /// The model with every foldable BatchNorm2d folded into the Dense or Conv2d before it (see
    /// the module doc and [`fold_targets`]); other BatchNorm2d layers stay. A model without
    /// foldable BatchNorm2d comes back unchanged. Layers keep their names; the spec is
    /// rewritten as nodes named as the layers.
    pub fn fold_batch_norm(&self) -> Model {
        let targets = fold_targets(&self.layers);
        if targets.iter().all(Option::is_none) {
            return self.clone();
        }
        let mut params = self.params.clone();
        for (i, j) in targets.iter().enumerate() {
            let Some(j) = *j else { continue };
            let (LayerSpec::BatchNorm2d { eps, .. }, Some(bn), Some(st)) =
                (&self.layers[i].spec, &self.params[i], &self.stats[i])
            else {
                continue;
            };
            let (scale, shift) = bn_affine(bn, st, *eps);
            let p = params[j].as_mut().expect("a product has parameters");
            for (o, mut row) in p.weight.axis_iter_mut(Axis(0)).enumerate() {
                row *= scale[o];
            }
            let b = p.bias.take().unwrap_or_else(|| Array1::zeros(scale.len()));
            p.bias = Some(Array1::from_shape_fn(b.len(), |o| {
                b[o] * scale[o] + shift[o]
            }));
        }
        let (layers, keep) = folded_layers(&self.layers);
        Model {
            spec: spec_of(&self.spec, &layers),
            params: keep.iter().map(|&i| params[i].clone()).collect(),
            stats: keep.iter().map(|&i| self.stats[i].clone()).collect(),
            layers,
        }
    }
}

/// A network spec whose resolution gives `layers`: a graph file whose node names are the
/// layer names (each node reads its inputs by name).
fn spec_of(base: &NetworkSpec, layers: &[ResolvedLayer]) -> NetworkSpec {
    let mut spec = base.clone();
    spec.layers = Vec::new();
    spec.nodes = layers
        .iter()
        .map(|l| NodeSpec {
            name: l.name.clone(),
            op: l.spec.clone(),
            inputs: l
                .inputs
                .iter()
                .map(|s| s.map_or_else(|| "input".to_string(), |j| layers[j].name.clone()))
                .collect(),
        })
        .collect();
    spec
}
