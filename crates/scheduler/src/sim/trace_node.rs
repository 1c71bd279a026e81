//! Cycle-stepped traces of graph nodes with more than one input: a MatMul of two activations,
//! channel by channel on the engine that loads an activation as its weights.

use nacsim_core::trace::{SignalId, TraceSink};
use nacsim_nn::qnet::{QLayer, matmul_operands};
use ndarray::{Array2, Axis, s};

use super::{SimError, Simulation};
use crate::engine::EngineCost;

impl Simulation {
    /// Run layer `index` of one image on its engine's cycle-stepped model, tracing to `sink`,
    /// given every input of the layer in the order of
    /// [`QNetwork::inputs`](nacsim_nn::qnet::QNetwork::inputs)
    /// ([`QNetwork::inputs_of`](nacsim_nn::qnet::QNetwork::inputs_of)). A Dense or Conv2d
    /// layer is [`Simulation::trace_layer`] of its one input. A MatMul of two activations
    /// `a (c, m, k) · b` runs one product per channel, one after the other as the analytic
    /// model counts them: channel `ch`'s signals are in scopes prefixed `ch<ch>.` and its
    /// cycles start where channel `ch − 1`'s end. Returns the accumulators (`[m, c·n]` for a
    /// MatMul, channel-major) and the stepped cost, equal to the analytic one.
    ///
    /// # Errors
    /// The layer has no engine or runs on the vector unit, its engine cannot step an
    /// activation loaded as weights, the inputs are not one image's, or the stepped model
    /// rejects the run.
    pub fn trace_node(
        &self,
        index: usize,
        mut xs: Vec<Array2<i8>>,
        sink: &mut dyn TraceSink,
    ) -> Result<(Array2<i32>, EngineCost), SimError> {
        let &QLayer::MatMul {
            transpose_b, a, n, ..
        } = &self.qnet.layers[index]
        else {
            let x = xs
                .pop()
                .filter(|_| xs.is_empty())
                .ok_or_else(|| SimError::Data(format!("layer {index} takes one input")))?;
            return self.trace_layer(index, x, sink);
        };
        let name = &self.plan[index].name;
        let (Some(e), [xa, xb]) = (self.plan[index].engine, xs.as_slice()) else {
            return Err(SimError::Data(format!(
                "layer {index} ({name}): a MatMul traces on an engine with its two inputs"
            )));
        };
        let (c, m, k) = (a.c, a.h, a.w);
        if xa.dim() != (1, c * m * k) || xb.dim() != (1, c * k * n) {
            return Err(SimError::Data(format!(
                "layer {index} ({name}): the trace takes one image's inputs, {:?} and {:?} given",
                xa.dim(),
                xb.dim()
            )));
        }
        let engine = &self.engines[e];
        let mut acc = Array2::<i32>::zeros((m, c * n));
        let mut total = EngineCost::default();
        for ch in 0..c {
            let (am, w) = matmul_operands((xa, xb), 0, ch, (a, n, transpose_b));
            let mut shifted = Shifted {
                inner: &mut *sink,
                origin: total.cycles,
                prefix: format!("ch{ch}."),
            };
            let (y, cost) = engine
                .run_activation_weights_stepped(name, am, w.view(), &mut shifted)
                .ok_or_else(|| {
                    SimError::Data(format!(
                        "layer {index} ({name}): engine {} has no cycle-stepped model of a product of two activations",
                        engine.name()
                    ))
                })?
                .map_err(|source| SimError::Engine {
                    design: self.design.path.display().to_string(),
                    source,
                })?;
            acc.slice_mut(s![.., ch * n..(ch + 1) * n]).assign(&y);
            total = total.then(cost);
        }
        debug_assert_eq!(acc.len_of(Axis(1)), c * n);
        Ok((acc, total))
    }
}

/// Forwards to `inner` with every cycle shifted by `origin` and every scope prefixed by
/// `prefix` (one channel's product among a MatMul's).
struct Shifted<'a> {
    inner: &'a mut dyn TraceSink,
    origin: u64,
    prefix: String,
}

impl TraceSink for Shifted<'_> {
    fn enabled(&self) -> bool {
        self.inner.enabled()
    }
    fn declare_signal(&mut self, scope: &str, name: &str, width: u32) -> SignalId {
        let scope = format!("{}{scope}", self.prefix);
        self.inner.declare_signal(&scope, name, width)
    }
    fn change(&mut self, cycle: u64, id: SignalId, value: u64) {
        self.inner.change(cycle + self.origin, id, value);
    }
    fn span(&mut self, name: &str, cat: &str, start_cycle: u64, end_cycle: u64, track: &str) {
        let track = format!("{}{track}", self.prefix);
        self.inner.span(
            name,
            cat,
            start_cycle + self.origin,
            end_cycle + self.origin,
            &track,
        );
    }
    fn finish(&mut self) -> std::io::Result<()> {
        // The caller's sink is finished by the caller.
        Ok(())
    }
}
