//! Shape resolution of a network file: a chain (`layers`) or a graph (`nodes`), each node's
//! output shape from its inputs' and its parameter name.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    ACT_PARAM_MAX, Activation, LayerSpec, NetworkSpec, ResolvedLayer, Shape, TopologyError,
};

fn bad(
    index: usize,
    field: &'static str,
    value: impl ToString,
    rule: impl Into<String>,
) -> TopologyError {
    TopologyError::BadParam {
        index,
        field,
        value: value.to_string(),
        rule: rule.into(),
    }
}

/// Running counts of the kinds that get numbered default names (`fc1`, `conv2`, ...).
#[derive(Default)]
struct Counters {
    fc: usize,
    conv: usize,
    act: usize,
    pool: usize,
    bn: usize,
    ln: usize,
}

/// A multi-input shape error (filled with the node's name by the graph resolver).
fn wiring(index: usize, rule: String) -> TopologyError {
    TopologyError::Graph {
        index,
        node: String::new(),
        rule,
    }
}

/// Output shape and default name of layer `i` reading `inputs` (name, shape of each).
fn layer_output(
    i: usize,
    spec: &LayerSpec,
    inputs: &[(&str, Shape)],
    n: &mut Counters,
) -> Result<(String, Shape), TopologyError> {
    let input = inputs[0].1;
    let named = |name: &String, default: String| {
        if name.is_empty() {
            default
        } else {
            name.clone()
        }
    };
    Ok(match spec {
        LayerSpec::Dense { out, name, .. } => {
            n.fc += 1;
            if *out == 0 {
                return Err(bad(i, "out", out, "must be at least 1"));
            }
            if out.checked_mul(input.len()).is_none() {
                return Err(bad(
                    i,
                    "out",
                    out,
                    format!(
                        "{out} x {} inputs = more weights than a 64-bit count holds",
                        input.len()
                    ),
                ));
            }
            (named(name, format!("fc{}", n.fc)), Shape::flat(*out))
        }
        LayerSpec::Conv2d {
            out_channels,
            kernel,
            stride,
            padding,
            groups,
            name,
            ..
        } => {
            n.conv += 1;
            let square = kernel.as_square().is_some();
            if *out_channels == 0 {
                return Err(bad(i, "out_channels", out_channels, "must be at least 1"));
            }
            if kernel.h == 0 || kernel.w == 0 {
                return Err(bad(i, "kernel", kernel, "must be at least 1"));
            }
            if stride.h == 0 || stride.w == 0 {
                return Err(bad(i, "stride", stride, "must be at least 1"));
            }
            if *groups == 0
                || !input.c.is_multiple_of(*groups)
                || !out_channels.is_multiple_of(*groups)
            {
                return Err(bad(
                    i,
                    "groups",
                    groups,
                    format!(
                        "must be at least 1 and divide both the input channels ({}) and out_channels ({out_channels})",
                        input.c
                    ),
                ));
            }
            let padded = |side: usize, pad: usize| pad.checked_mul(2)?.checked_add(side);
            let (Some(hp), Some(wp)) = (padded(input.h, padding.h), padded(input.w, padding.w))
            else {
                return Err(bad(
                    i,
                    "padding",
                    padding,
                    format!(
                        "the padded input {}+2x{padding} overflows a 64-bit size; use a padding below the kernel side",
                        input.h.max(input.w)
                    ),
                ));
            };
            if kernel.h > hp || kernel.w > wp {
                return Err(bad(
                    i,
                    "kernel",
                    kernel,
                    format!("larger than the padded input {hp}x{wp}"),
                ));
            }
            let oh = (hp - kernel.h) / stride.h + 1;
            let ow = (wp - kernel.w) / stride.w + 1;
            let output = Shape::new(*out_channels, oh, ow);
            if oh
                .checked_mul(ow)
                .and_then(|x| x.checked_mul(input.c))
                .is_none()
            {
                return Err(bad(
                    i,
                    "padding",
                    padding,
                    format!(
                        "the output would be {oh}x{ow} pixels, which overflows a 64-bit count; use a padding below the kernel side"
                    ),
                ));
            }
            let Some(fan_in) = (input.c / groups)
                .checked_mul(kernel.h)
                .and_then(|x| x.checked_mul(kernel.w))
            else {
                let what = if square {
                    "kernel x kernel"
                } else {
                    "kernel h x w"
                };
                return Err(bad(
                    i,
                    "kernel",
                    kernel,
                    format!("{what} x input channels overflows a 64-bit count"),
                ));
            };
            let fits = output
                .checked_len()
                .and_then(|o| o.checked_mul(fan_in))
                .and_then(|_| out_channels.checked_mul(fan_in));
            if fits.is_none() {
                return Err(bad(
                    i,
                    "out_channels",
                    out_channels,
                    format!(
                        "{out_channels} channels of {oh}x{ow} outputs with {fan_in} products each overflow a 64-bit count"
                    ),
                ));
            }
            (named(name, format!("conv{}", n.conv)), output)
        }
        LayerSpec::MaxPool2d { kernel, stride } | LayerSpec::AvgPool2d { kernel, stride } => {
            n.pool += 1;
            if *kernel == 0 {
                return Err(bad(i, "kernel", kernel, "must be at least 1"));
            }
            if *stride == 0 {
                return Err(bad(i, "stride", stride, "must be at least 1"));
            }
            if *kernel > input.h || *kernel > input.w {
                return Err(bad(
                    i,
                    "kernel",
                    kernel,
                    format!("larger than the input {}x{}", input.h, input.w),
                ));
            }
            let oh = (input.h - kernel) / stride + 1;
            let ow = (input.w - kernel) / stride + 1;
            (format!("pool{}", n.pool), Shape::new(input.c, oh, ow))
        }
        LayerSpec::Flatten => (format!("flatten{i}"), Shape::flat(input.len())),
        LayerSpec::Act(a) => {
            n.act += 1;
            if let Activation::HardTanh { min, max } = a
                && min.partial_cmp(max) != Some(std::cmp::Ordering::Less)
            {
                return Err(bad(
                    i,
                    "HardTanh.min",
                    min,
                    format!("must be below max = {max}"),
                ));
            }
            if let Some((field, v)) = a.bad_parameter() {
                return Err(bad(
                    i,
                    field,
                    v,
                    format!("must be a finite number within ±{ACT_PARAM_MAX}"),
                ));
            }
            let base = match a {
                Activation::ReLU => "relu",
                Activation::LeakyReLU { .. } => "leaky_relu",
                Activation::HardTanh { .. } => "hardtanh",
                Activation::Tanh => "tanh",
                Activation::Sigmoid => "sigmoid",
                Activation::Elu { .. } => "elu",
                Activation::Selu => "selu",
                Activation::RectSine => "rect_sine",
                Activation::ReLU6 => "relu6_",
            };
            (format!("{base}{}", n.act), input)
        }
        LayerSpec::BatchNorm2d {
            eps,
            momentum,
            name,
        } => {
            n.bn += 1;
            if !(eps.is_finite() && *eps > 0.0) {
                return Err(bad(i, "eps", eps, "must be a finite number above 0"));
            }
            if !(0.0..=1.0).contains(momentum) {
                return Err(bad(i, "momentum", momentum, "must be within [0, 1]"));
            }
            (named(name, format!("bn{}", n.bn)), input)
        }
        LayerSpec::GlobalAvgPool => (format!("global_pool{i}"), Shape::flat(input.c)),
        LayerSpec::Dropout { p } => {
            if !(0.0..1.0).contains(p) {
                return Err(bad(i, "p", p, "must be within [0, 1)"));
            }
            (format!("dropout{i}"), input)
        }
        LayerSpec::Add => {
            if let Some((nm, s)) = inputs.iter().find(|(_, s)| *s != input) {
                return Err(wiring(
                    i,
                    format!(
                        "Add needs inputs of one shape: {:?} is {input} but {nm:?} is {s}",
                        inputs[0].0
                    ),
                ));
            }
            (format!("add{i}"), input)
        }
        LayerSpec::Concat => {
            if let Some((nm, s)) = inputs
                .iter()
                .find(|(_, s)| (s.h, s.w) != (input.h, input.w))
            {
                return Err(wiring(
                    i,
                    format!(
                        "Concat joins channels of one height and width: {:?} is {input} but {nm:?} is {s}",
                        inputs[0].0
                    ),
                ));
            }
            let c = inputs
                .iter()
                .try_fold(0usize, |a, (_, s)| a.checked_add(s.c))
                .ok_or_else(|| wiring(i, "Concat: the channel count overflows".into()))?;
            (format!("concat{i}"), Shape::new(c, input.h, input.w))
        }
        LayerSpec::MatMul { transpose_b } => {
            let (an, a) = inputs[0];
            let (bn, b) = inputs[1];
            let (bk, bcols) = if *transpose_b { (b.w, b.h) } else { (b.h, b.w) };
            if a.c != b.c || a.w != bk {
                let form = if *transpose_b {
                    "(c, n, k)"
                } else {
                    "(c, k, n)"
                };
                return Err(wiring(
                    i,
                    format!(
                        "MatMul multiplies {an:?} (c, m, k) by {bn:?} {form}: {an:?} is {}x{}x{} and {bn:?} is {}x{}x{}, whose c or k differ",
                        a.c, a.h, a.w, b.c, b.h, b.w
                    ),
                ));
            }
            (format!("matmul{i}"), Shape::new(a.c, a.h, bcols))
        }
        LayerSpec::Softmax { axis } => {
            if axis.len_in(input) < 2 {
                return Err(bad(
                    i,
                    "axis",
                    axis,
                    format!(
                        "the input {input} has length 1 along {axis}, so the softmax would be 1 everywhere; pick the axis the scores run along (C, H or W)"
                    ),
                ));
            }
            (format!("softmax{i}"), input)
        }
        LayerSpec::LayerNorm { axis, eps, name } => {
            n.ln += 1;
            if !(eps.is_finite() && *eps > 0.0) {
                return Err(bad(i, "eps", eps, "must be a finite number above 0"));
            }
            if axis.len_in(input) < 2 {
                return Err(bad(
                    i,
                    "axis",
                    axis,
                    format!(
                        "the input {input} has length 1 along {axis}, so every output would be β; normalise along the features (C for (d, T, 1) tokens, W for (1, T, d))"
                    ),
                ));
            }
            (named(name, format!("ln{}", n.ln)), input)
        }
        LayerSpec::Transpose { a, b } => {
            if a == b {
                return Err(bad(
                    i,
                    "b",
                    b,
                    format!("must differ from a = {a}: Transpose swaps two axes (C, H, W)"),
                ));
            }
            let mut d = [input.c, input.h, input.w];
            d.swap(a.index(), b.index());
            (format!("transpose{i}"), Shape::new(d[0], d[1], d[2]))
        }
    })
}

impl NetworkSpec {
    /// Resolve shapes and parameter names, checking that every layer fits its input. A graph
    /// (`nodes`) is returned in topological order (file order where the wiring allows it), with
    /// the output node last.
    ///
    /// # Errors
    /// A [`TopologyError`] naming the layer (or node) index, the field, its value and the rule;
    /// for graphs also unknown inputs, cycles and mismatched input shapes, with the node and
    /// input names and their shapes.
    pub fn resolve(&self) -> Result<Vec<ResolvedLayer>, TopologyError> {
        if self.schema_version != 1 {
            return Err(TopologyError::SchemaVersion(self.schema_version));
        }
        let Some(input_len) = self.input.checked_len() else {
            return Err(TopologyError::Input {
                value: format!("{:?}", self.input),
                rule: "c·h·w overflows a 64-bit count; give a realistic image size".into(),
            });
        };
        if input_len == 0 {
            return Err(TopologyError::Input {
                value: format!("{:?}", self.input),
                rule: "input shape must be non-empty (c, h and w at least 1)".into(),
            });
        }
        let out = if self.nodes.is_empty() {
            self.resolve_chain()?
        } else {
            if !self.layers.is_empty() {
                return Err(TopologyError::Layout(
                    "give either `layers` (a chain) or `nodes` (a graph), not both".into(),
                ));
            }
            self.resolve_graph()?
        };
        let got = out.last().map_or(self.input.len(), |l| l.output.len());
        if got != self.classes {
            return Err(TopologyError::Classes {
                classes: self.classes,
                got,
            });
        }
        Ok(out)
    }

    fn resolve_chain(&self) -> Result<Vec<ResolvedLayer>, TopologyError> {
        let mut shape = self.input;
        let mut n = Counters::default();
        let mut names = BTreeSet::new();
        let mut out: Vec<ResolvedLayer> = Vec::with_capacity(self.layers.len());
        for (i, spec) in self.layers.iter().enumerate() {
            let (least, _) = spec.arity();
            if least > 1 {
                return Err(bad(
                    i,
                    "op",
                    format!("{spec:?}"),
                    format!(
                        "reads {least} or more inputs, but a `layers` chain feeds each layer one; write the network as `nodes: [...]` with named inputs"
                    ),
                ));
            }
            let prev = out.last().map_or("input", |l| l.name.as_str());
            let (name, output) = layer_output(i, spec, &[(prev, shape)], &mut n)?;
            if !names.insert(name.clone()) {
                return Err(TopologyError::DuplicateName { index: i, name });
            }
            out.push(ResolvedLayer {
                spec: spec.clone(),
                name,
                input: shape,
                output,
                inputs: vec![i.checked_sub(1)],
            });
            shape = output;
        }
        Ok(out)
    }

    fn resolve_graph(&self) -> Result<Vec<ResolvedLayer>, TopologyError> {
        let nodes = &self.nodes;
        let graph_err = |index: usize, rule: String| TopologyError::Graph {
            index,
            node: nodes[index].name.clone(),
            rule,
        };
        // Names, and each node's inputs as file indices (None: the network input).
        let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, nd) in nodes.iter().enumerate() {
            if nd.name.is_empty() || nd.name == "input" {
                return Err(graph_err(
                    i,
                    "a node needs a name, other than \"input\" (which names the network input)"
                        .into(),
                ));
            }
            if let Some(j) = by_name.insert(nd.name.as_str(), i) {
                return Err(graph_err(
                    i,
                    format!("name already used by nodes[{j}]; give each node its own name"),
                ));
            }
            let inner = match &nd.op {
                LayerSpec::Dense { name, .. }
                | LayerSpec::Conv2d { name, .. }
                | LayerSpec::BatchNorm2d { name, .. }
                | LayerSpec::LayerNorm { name, .. } => name.as_str(),
                _ => "",
            };
            if !inner.is_empty() && inner != nd.name {
                return Err(graph_err(
                    i,
                    format!(
                        "op.name = {inner:?} differs from the node name; leave op.name empty (the node name names the parameters)"
                    ),
                ));
            }
        }
        let mut reads: Vec<Vec<Option<usize>>> = Vec::with_capacity(nodes.len());
        for (i, nd) in nodes.iter().enumerate() {
            let (least, most) = nd.op.arity();
            let r: Vec<Option<usize>> = if nd.inputs.is_empty() {
                vec![i.checked_sub(1)]
            } else {
                nd.inputs
                    .iter()
                    .map(|s| {
                        if s == "input" {
                            Ok(None)
                        } else {
                            by_name.get(s.as_str()).map(|&j| Some(j)).ok_or_else(|| {
                                graph_err(
                                    i,
                                    format!(
                                        "input {s:?} is not a node of this network (nor \"input\"); known nodes: {}",
                                        nodes
                                            .iter()
                                            .map(|n| n.name.as_str())
                                            .collect::<Vec<_>>()
                                            .join(", ")
                                    ),
                                )
                            })
                        }
                    })
                    .collect::<Result<_, _>>()?
            };
            if r.len() < least || r.len() > most {
                let want = if least == most {
                    format!("{least}")
                } else {
                    format!("at least {least}")
                };
                return Err(graph_err(
                    i,
                    format!(
                        "{:?} reads {want} input(s) but inputs names {}; list them in `inputs`",
                        nd.op,
                        r.len()
                    ),
                ));
            }
            if r.contains(&Some(i)) {
                return Err(graph_err(i, "the node reads itself (a cycle)".into()));
            }
            reads.push(r);
        }
        // Topological order: Kahn's algorithm, always taking the ready node first in the file.
        let mut pending: Vec<usize> = reads
            .iter()
            .map(|r| r.iter().filter(|s| s.is_some()).count())
            .collect();
        let mut readers: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        for (i, r) in reads.iter().enumerate() {
            for &j in r.iter().flatten() {
                readers[j].push(i);
            }
        }
        let mut ready: BTreeSet<usize> = (0..nodes.len()).filter(|&i| pending[i] == 0).collect();
        let mut order = Vec::with_capacity(nodes.len());
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for &k in &readers[i] {
                pending[k] -= 1;
                if pending[k] == 0 {
                    ready.insert(k);
                }
            }
        }
        if order.len() < nodes.len() {
            let stuck: Vec<&str> = (0..nodes.len())
                .filter(|&i| pending[i] > 0)
                .map(|i| nodes[i].name.as_str())
                .collect();
            let first = (0..nodes.len()).find(|&i| pending[i] > 0).unwrap_or(0);
            return Err(graph_err(
                first,
                format!(
                    "the inputs form a cycle through the nodes {}; a network must be acyclic",
                    stuck.join(", ")
                ),
            ));
        }
        // Every node must feed the output (the last node of the file).
        let out_node = nodes.len() - 1;
        let mut live = vec![false; nodes.len()];
        live[out_node] = true;
        for &i in order.iter().rev() {
            if live[i] {
                for &j in reads[i].iter().flatten() {
                    live[j] = true;
                }
            }
        }
        if let Some(dead) = live.iter().position(|l| !l) {
            return Err(graph_err(
                dead,
                format!(
                    "the node does not feed the network output (the last node, {:?}); remove it or use it",
                    nodes[out_node].name
                ),
            ));
        }
        // Resolve in order; `pos[file index]` = position in the resolved list.
        let mut pos = vec![usize::MAX; nodes.len()];
        let mut n = Counters::default();
        let mut out: Vec<ResolvedLayer> = Vec::with_capacity(nodes.len());
        for &i in &order {
            let nd = &nodes[i];
            let ins: Vec<(&str, Shape)> = reads[i]
                .iter()
                .map(|s| match s {
                    None => ("input", self.input),
                    Some(j) => (nodes[*j].name.as_str(), out[pos[*j]].output),
                })
                .collect();
            let (_, output) = layer_output(i, &nd.op, &ins, &mut n).map_err(|e| match e {
                TopologyError::BadParam {
                    index,
                    field,
                    value,
                    rule,
                } => TopologyError::NodeParam {
                    index,
                    node: nd.name.clone(),
                    field,
                    value,
                    rule,
                },
                TopologyError::Graph { index, rule, .. } => graph_err(index, rule),
                other => other,
            })?;
            pos[i] = out.len();
            out.push(ResolvedLayer {
                spec: nd.op.clone(),
                name: nd.name.clone(),
                input: ins[0].1,
                output,
                inputs: reads[i].iter().map(|s| s.map(|j| pos[j])).collect(),
            });
        }
        Ok(out)
    }
}
