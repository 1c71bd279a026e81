//! Import of ONNX `Softmax`, `LayerNormalization` and `Transpose` (see the table of
//! [`crate::onnx`]): axes mapped by the input tensor's rank, a permutation decomposed into swaps.

use ndarray::{Array1, Array2};

use super::{NodeProto, TensorProto, attr, float, ints};
use crate::model::Param;
use crate::network::{LayerSpec, TensorAxis};

use super::LayerData;

/// What the conversion of one node needs to know.
pub(super) struct Ctx<'a> {
    /// The node.
    pub n: &'a NodeProto,
    /// Rank of its (first) input: 4 for `[N, C, H, W]`, 2 for `[N, F]`.
    pub rank: usize,
    /// The model's default-domain opset.
    pub opset: i64,
    /// The node's own name (`/ln/LayerNormalization` → `ln_LayerNormalization`).
    pub own: &'a str,
}

impl Ctx<'_> {
    fn refuse(&self, what: &str) -> String {
        format!("node {} ({}): {what}", self.n.name, self.n.op_type)
    }

    /// nacsim's axis for ONNX axis `a` (negative from the end) of a rank-`rank` tensor.
    fn axis(&self, a: i64) -> Result<TensorAxis, String> {
        let r = self.rank as i64;
        let k = if a < 0 { a + r } else { a };
        match (self.rank, k) {
            (4, 1) | (2, 1) => Ok(TensorAxis::C),
            (4, 2) => Ok(TensorAxis::H),
            (4, 3) => Ok(TensorAxis::W),
            (_, 0) => Err(self.refuse(&format!(
                "axis {a} is the batch axis; nacsim computes per sample"
            ))),
            _ => Err(self.refuse(&format!(
                "axis {a} of a rank-{} tensor; nacsim reads [N, C, H, W] (axes 1–3) or [N, F] (axis 1)",
                self.rank
            ))),
        }
    }
}

/// A layer to add: its name, op and data.
pub(super) type Made = (String, LayerSpec, LayerData);

/// The layers of a `Softmax`, `LayerNormalization` or `Transpose` node, in order (none for an
/// identity permutation); `tensor(k)` reads input `k` as an initializer.
pub(super) fn convert<'t>(
    c: &Ctx<'_>,
    tensor: impl Fn(usize) -> Result<Option<(&'t TensorProto, Vec<f32>)>, String>,
) -> Result<Vec<Made>, String> {
    let n = c.n;
    let none = || (None, None);
    match n.op_type.as_str() {
        "Softmax" => {
            let a = attr(n, "axis").map_or(if c.opset >= 13 { -1 } else { 1 }, |a| a.i);
            let axis = c.axis(a)?;
            let last = a == -1 || a == c.rank as i64 - 1;
            if c.opset < 13 && !last {
                return Err(c.refuse(&format!(
                    "axis {a} at opset {}: before opset 13 Softmax flattens the axes from `axis` on; export at opset 13 or later",
                    c.opset
                )));
            }
            Ok(vec![(
                c.own.to_string(),
                LayerSpec::Softmax { axis },
                none(),
            )])
        }
        "LayerNormalization" => {
            let a = attr(n, "axis").map_or(-1, |a| a.i);
            if !(a == -1 || a == c.rank as i64 - 1) {
                return Err(c.refuse(&format!(
                    "axis {a} normalises over every axis from it to the last; nacsim normalises along one axis, so export a LayerNorm over the last axis only (nn.LayerNorm(features) on [..., features])"
                )));
            }
            let axis = c.axis(a)?;
            let Some((st, gamma)) = tensor(1)? else {
                return Err(c.refuse("no Scale initializer"));
            };
            let beta = match tensor(2)? {
                Some((_, b)) => b,
                None => vec![0.0; gamma.len()],
            };
            if beta.len() != gamma.len() {
                return Err(c.refuse("Scale and B differ in length"));
            }
            let name = st
                .name
                .strip_suffix(".weight")
                .map_or_else(|| c.own.to_string(), str::to_string);
            let k = gamma.len();
            Ok(vec![(
                name,
                LayerSpec::LayerNorm {
                    axis,
                    eps: float(n, "epsilon", 1e-5),
                    name: String::new(),
                },
                (
                    Some(Param {
                        weight: Array2::from_shape_vec((k, 1), gamma).map_err(|e| e.to_string())?,
                        bias: Some(Array1::from(beta)),
                    }),
                    None,
                ),
            )])
        }
        _ => {
            let perm = ints(n, "perm");
            let ok = perm.len() == c.rank && {
                let mut s = perm.clone();
                s.sort_unstable();
                s.iter().enumerate().all(|(i, &v)| v == i as i64)
            };
            if !ok || perm.first() != Some(&0) || !(c.rank == 4 || c.rank == 2) {
                return Err(c.refuse(&format!(
                    "perm {perm:?} of a rank-{} tensor; nacsim transposes C, H and W of [N, C, H, W] with the batch axis kept first",
                    c.rank
                )));
            }
            // Decompose the permutation of (C, H, W) into swaps of the current tensor's axes.
            let target: Vec<usize> = perm[1..].iter().map(|&v| v as usize - 1).collect();
            let mut cur: Vec<usize> = (0..target.len()).collect();
            let axes = [TensorAxis::C, TensorAxis::H, TensorAxis::W];
            let mut made = Vec::new();
            for i in 0..cur.len() {
                if cur[i] == target[i] {
                    continue;
                }
                let j = (i + 1..cur.len())
                    .find(|&j| cur[j] == target[i])
                    .expect("a permutation");
                cur.swap(i, j);
                let name = if made.is_empty() {
                    c.own.to_string()
                } else {
                    format!("{}_{}", c.own, made.len() + 1)
                };
                made.push((
                    name,
                    LayerSpec::Transpose {
                        a: axes[i],
                        b: axes[j],
                    },
                    none(),
                ));
            }
            Ok(made)
        }
    }
}
