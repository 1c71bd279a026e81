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

impl Model {
    /// The model with every foldable BatchNorm2d folded into the Dense or Conv2d before it (see
    /// the module doc); other BatchNorm2d layers stay. A model without BatchNorm2d comes back
    /// unchanged. Layers keep their names; the spec is rewritten as nodes named as the layers.
    pub fn fold_batch_norm(&self) -> Model {
        let n = self.layers.len();
        let mut readers = vec![0usize; n];
        for l in &self.layers {
            for j in l.inputs.iter().flatten() {
                readers[*j] += 1;
            }
        }
        // fold_into[i] = Some(j): BN layer i folds into product j.
        let fold_into: Vec<Option<usize>> = self
            .layers
            .iter()
            .map(|l| match (&l.spec, l.inputs.as_slice()) {
                (LayerSpec::BatchNorm2d { .. }, [Some(j)])
                    if self.layers[*j].has_product() && readers[*j] == 1 =>
                {
                    Some(*j)
                }
                _ => None,
            })
            .collect();
        if fold_into.iter().all(Option::is_none) {
            return self.clone();
        }
        let mut params = self.params.clone();
        let mut specs: Vec<LayerSpec> = self.layers.iter().map(|l| l.spec.clone()).collect();
        for (i, j) in fold_into.iter().enumerate() {
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
            match &mut specs[j] {
                LayerSpec::Dense { bias, .. } | LayerSpec::Conv2d { bias, .. } => *bias = true,
                _ => {}
            }
        }
        // Drop the folded layers; readers of a folded BN read its product.
        let redirect = |s: Option<usize>| s.map(|k| fold_into[k].unwrap_or(k));
        let keep: Vec<usize> = (0..n).filter(|&i| fold_into[i].is_none()).collect();
        let mut new_index = vec![usize::MAX; n];
        for (ni, &i) in keep.iter().enumerate() {
            new_index[i] = ni;
        }
        let layers: Vec<ResolvedLayer> = keep
            .iter()
            .map(|&i| {
                let l = &self.layers[i];
                ResolvedLayer {
                    spec: specs[i].clone(),
                    name: l.name.clone(),
                    input: l.input,
                    output: l.output,
                    inputs: l
                        .inputs
                        .iter()
                        .map(|s| redirect(*s).map(|k| new_index[k]))
                        .collect(),
                }
            })
            .collect();
        let spec = spec_of(&self.spec, &layers);
        Model {
            spec,
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
