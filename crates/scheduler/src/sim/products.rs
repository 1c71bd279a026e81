//! Compiling the product layers of a network: a grouped convolution group by group
//! ([`Compiled::Groups`]), and a MatMul of two activations as a shape on an engine that loads an
//! activation as its weights at run time; the plan entry of every layer.

use nacsim_nn::network::ResolvedLayer;

use nacsim_nn::qnet::LayerKind;

use super::{LayerPlan, SimError, build_engines};
use crate::design::Design;
use crate::engine::{Compiled, EngineError, EngineImpl, LayerSource, ShapeLayer};

/// Compile a Dense or Conv2d layer `g` (float parameters `p`; network index, seed, trial and
/// weight width in `key`) for `engine`: a grouped convolution group by group
/// ([`Compiled::Groups`], each group's float weights and bias, its accumulator scales in
/// order).
pub(super) fn compile_gemm(
    engine: &EngineImpl,
    g: &nacsim_nn::qnet::QGemm,
    p: &nacsim_nn::model::Param,
    (index, seed, trial, weight_bits): (usize, u64, u32, u32),
) -> Result<(Compiled, Option<Vec<f32>>), EngineError> {
    let groups = g.groups();
    let og = g.out_channels() / groups;
    let mut parts = Vec::with_capacity(groups);
    let mut scales: Option<Vec<f32>> = None;
    for gi in 0..groups {
        let r = gi * og..(gi + 1) * og;
        let qg;
        let q = if groups == 1 {
            g
        } else {
            qg = g.group(gi);
            &qg
        };
        let src = LayerSource {
            q,
            weight: p.weight.slice(ndarray::s![r.clone(), ..]),
            bias: p.bias.as_ref().map(|b| b.slice(ndarray::s![r.clone()])),
            index,
            seed,
            trial,
            weight_bits,
            group: gi,
        };
        let (c, ws) = engine.compile(&src)?;
        if let Some(ws) = ws {
            scales.get_or_insert_with(Vec::new).extend(ws);
        }
        parts.push(c);
    }
    let c = if groups == 1 {
        parts.pop().expect("one group")
    } else {
        Compiled::Groups(parts)
    };
    Ok((c, scales))
}

/// A MatMul node's product as a shape layer: `k → n` over `m` rows (run once per sample and
/// channel, [`LayerPlan::groups`] = channels).
pub(super) fn matmul_shape(fl: &ResolvedLayer, weight_bits: u32) -> ShapeLayer {
    ShapeLayer {
        name: fl.name.clone(),
        kind: nacsim_nn::qnet::GemmKind::Dense,
        fan_in: fl.input.w,
        out: fl.output.w,
        weight_bits,
    }
}

/// A MatMul node needs an engine that loads an activation as its weights at run time.
pub(super) fn check_activation_weights(
    design: &Design,
    engine: &EngineImpl,
    layer: &str,
) -> Result<(), SimError> {
    if engine.takes_activation_weights() {
        return Ok(());
    }
    let fix = design
        .config
        .engines
        .iter()
        .zip(build_engines(design).unwrap_or_default())
        .find(|(_, e)| e.takes_activation_weights())
        .map_or_else(
            || "add an int8 systolic engine to the design and map MatMul to it (`mapping.by_kind: [(MatMul, \"<its name>\")]`)".to_string(),
            |(s, _)| format!("map it to the int8 array: `mapping.by_kind: [(MatMul, {:?})]`", s.name),
        );
    Err(SimError::Engine {
        design: design.path.display().to_string(),
        source: EngineError::Unsupported {
            engine: engine.name().to_string(),
            layer: layer.to_string(),
            msg: format!(
                "a MatMul of two activations needs an engine that loads an activation as its weights at run time, and this one holds compiled weights only; {fix}"
            ),
        },
    })
}

/// Parameter bytes fetched per pass and parameter storage in bits of a layer whose weights take
/// `weight_bits` as `engine` stores them, with `outs` output channels and `bias_count` biases:
/// the codes as stored (whole bytes; none for an engine that holds its weights in its arrays),
/// int32 biases, 8-byte requantization parameters per channel.
pub(super) fn param_storage(
    engine: &EngineImpl,
    weight_bits: u64,
    outs: u64,
    bias_count: u64,
) -> (u64, u64) {
    let code_bytes = if engine.holds_weights() {
        0
    } else {
        weight_bits.div_ceil(8)
    };
    (
        code_bytes + 4 * bias_count + 8 * outs,
        weight_bits + 32 * bias_count,
    )
}

/// The plan entry of the quantized layer `kind` made of float layer `fl` (index `fi`), run by
/// `engine` as `compiled` (products) or by the vector unit.
pub(super) fn plan_entry(
    engines: &[EngineImpl],
    fl: &ResolvedLayer,
    fi: usize,
    kind: LayerKind,
    engine: Option<usize>,
    compiled: Option<Compiled>,
) -> LayerPlan {
    use nacsim_nn::network::LayerSpec as S;
    let (outs, has_bias) = match fl.spec {
        S::Dense { out, bias, .. } => (out as u64, bias),
        S::Conv2d {
            out_channels, bias, ..
        } => (out_channels as u64, bias),
        _ => (0, false),
    };
    let weight_count = fl
        .weight_shape()
        .map_or(0, |s| s.iter().map(|&d| d as u64).product());
    let bias_count = if has_bias { outs } else { 0 };
    let (param_bytes, storage_bits, weight_storage_bits) = match (engine, &compiled) {
        // A MatMul's "weights" are an activation: no parameters.
        _ if kind == LayerKind::MatMul => (0, 0, 0),
        (Some(e), Some(c)) => {
            let wb = engines[e].weight_storage_bits(c);
            let (param_bytes, storage_bits) = param_storage(&engines[e], wb, outs, bias_count);
            (param_bytes, storage_bits, wb)
        }
        _ => (0, 0, 0),
    };
    LayerPlan {
        name: fl.name.clone(),
        kind,
        network_index: fi,
        engine,
        compiled,
        // Add reads each of its inputs; Concat reads them all (its output's width).
        in_features: match kind {
            LayerKind::Add => (fl.input.len() * fl.inputs.len()) as u64,
            LayerKind::Concat => fl.output.len() as u64,
            _ => fl.input.len() as u64,
        },
        out_features: fl.output.len() as u64,
        macs_per_image: fl.macs(),
        rows_per_image: match kind {
            LayerKind::Dense => 1,
            LayerKind::Conv2d => (fl.output.h * fl.output.w) as u64,
            LayerKind::MatMul => fl.input.h as u64,
            _ => 0,
        },
        // A MatMul runs one product per channel of each sample.
        groups: if kind == LayerKind::MatMul {
            fl.input.c as u64
        } else {
            1
        },
        weight_count,
        bias_count,
        param_bytes,
        storage_bits,
        weight_storage_bits,
        vector_ops_per_image: vector_ops_per_image(fl, kind),
    }
}

/// Operations per element of a Softmax on the vector unit's float datapath: dequantize, max
/// compare, subtract, exp, sum, multiply by the reciprocal of the sum, requantize (an exp
/// counts as one operation: the design's energy table prices one `vector_ops` action; an
/// inferred count, not a measured one).
pub const SOFTMAX_OPS_PER_ELEMENT: u64 = 7;
/// Operations per element of a LayerNorm: dequantize, add to the mean, subtract the mean,
/// square and accumulate (2), multiply by `1/σ`, by γ, add β, requantize (inferred, as
/// [`SOFTMAX_OPS_PER_ELEMENT`]).
pub const LAYERNORM_OPS_PER_ELEMENT: u64 = 9;

/// Vector-unit operations per image of float layer `fl` of quantized kind `kind`: one per
/// input element (pooling, tables, Flatten, Transpose; Add and Concat per element of every
/// input, as [`LayerPlan::in_features`]); a Softmax `7·E + E/n` (one reciprocal per vector of
/// `n` along its axis), a LayerNorm `9·E + 2·E/n` (the mean's `1/n` and `1/√(σ² + eps)` per
/// vector), `E` = input elements.
pub fn vector_ops_per_image(fl: &ResolvedLayer, kind: LayerKind) -> u64 {
    use nacsim_nn::network::LayerSpec as S;
    let e = fl.input.len() as u64;
    match fl.spec {
        S::Softmax { axis } => {
            let n = axis.len_in(fl.input).max(1) as u64;
            SOFTMAX_OPS_PER_ELEMENT * e + e / n
        }
        S::LayerNorm { axis, .. } => {
            let n = axis.len_in(fl.input).max(1) as u64;
            LAYERNORM_OPS_PER_ELEMENT * e + 2 * (e / n)
        }
        _ => match kind {
            LayerKind::Add => (fl.input.len() * fl.inputs.len()) as u64,
            LayerKind::Concat => fl.output.len() as u64,
            _ => e,
        },
    }
}
