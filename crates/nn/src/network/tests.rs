//! Tests of the network IR: chain resolution (names, shapes, errors).
use super::*;

fn lenet() -> NetworkSpec {
    NetworkSpec {
        schema_version: 1,
        name: "lenet".into(),
        input: Shape::new(1, 28, 28),
        classes: 10,
        layers: vec![
            LayerSpec::Conv2d {
                out_channels: 6,
                kernel: Hw::square(5),
                stride: Hw::square(1),
                padding: Hw::square(2),
                groups: 1,
                bias: true,
                name: String::new(),
            },
            LayerSpec::Act(Activation::ReLU),
            LayerSpec::MaxPool2d {
                kernel: 2,
                stride: 2,
            },
            LayerSpec::Conv2d {
                out_channels: 16,
                kernel: Hw::square(5),
                stride: Hw::square(1),
                padding: Hw::square(0),
                groups: 1,
                bias: true,
                name: String::new(),
            },
            LayerSpec::Act(Activation::ReLU),
            LayerSpec::AvgPool2d {
                kernel: 2,
                stride: 2,
            },
            LayerSpec::Flatten,
            LayerSpec::Dense {
                out: 120,
                bias: true,
                name: String::new(),
            },
            LayerSpec::Act(Activation::Tanh),
            LayerSpec::Dense {
                out: 10,
                bias: false,
                name: String::new(),
            },
        ],
        nodes: Vec::new(),
        weights: String::new(),
        notes: String::new(),
        trained_for: Default::default(),
    }
}

#[test]
fn lenet_shapes_and_names() {
    let r = lenet().resolve().unwrap();
    assert_eq!(r[0].output, Shape::new(6, 28, 28));
    assert_eq!(r[2].output, Shape::new(6, 14, 14));
    assert_eq!(r[3].output, Shape::new(16, 10, 10));
    assert_eq!(r[5].output, Shape::new(16, 5, 5));
    assert_eq!(r[6].output, Shape::flat(400));
    assert_eq!(r[0].name, "conv1");
    assert_eq!(r[3].name, "conv2");
    assert_eq!(r[7].name, "fc1");
    assert_eq!(r[7].weight_shape(), Some(vec![120, 400]));
    assert_eq!(r[9].bias_len(), None);
    assert_eq!(r[3].macs(), 16 * 100 * 6 * 25);
}

#[test]
fn wrong_class_count_is_named() {
    let mut n = lenet();
    n.classes = 7;
    let e = n.resolve().unwrap_err().to_string();
    assert!(e.contains("classes = 7") && e.contains("10"), "{e}");
}

#[test]
fn zero_stride_is_rejected() {
    let mut n = lenet();
    n.layers[2] = LayerSpec::MaxPool2d {
        kernel: 2,
        stride: 0,
    };
    let e = n.resolve().unwrap_err().to_string();
    assert_eq!(e, "layers[2].stride = 0: must be at least 1");
}

#[test]
fn ron_round_trip() {
    let n = lenet();
    let s = ron::ser::to_string_pretty(&n, Default::default()).unwrap();
    let back: NetworkSpec = ron::from_str(&s).unwrap();
    assert_eq!(n, back);
    let short: NetworkSpec = ron::from_str(
        "(schema_version: 1, name: \"m\", input: (c: 4, h: 1, w: 1), classes: 2, layers: [Dense(out: 2)])",
    )
    .unwrap();
    assert_eq!(short.resolve().unwrap()[0].name, "fc1");
}

fn one_layer(input: Shape, layer: &str) -> NetworkSpec {
    ron::from_str(&format!(
        "(schema_version: 1, name: \"m\", input: (c: {}, h: {}, w: {}), classes: 10, layers: [{layer}, Flatten, Dense(out: 10)])",
        input.c, input.h, input.w
    ))
    .unwrap()
}

#[test]
fn huge_padding_is_an_error_naming_layer_and_field_not_a_wrapped_shape() {
    let n = one_layer(
        Shape::new(1, 28, 28),
        "Conv2d(out_channels: 1, kernel: 3, padding: 4611686018427387904)",
    );
    let e = n.resolve().unwrap_err().to_string();
    assert!(
        e.starts_with("layers[0].padding = 4611686018427387904: "),
        "{e}"
    );
    assert!(e.contains("overflows"), "{e}");
    let n = one_layer(
        Shape::new(1, 28, 28),
        "Conv2d(out_channels: 1, kernel: 40, padding: 2)",
    );
    let e = n.resolve().unwrap_err().to_string();
    assert_eq!(
        e,
        "layers[0].kernel = 40: larger than the padded input 32x32"
    );
}

#[test]
fn shapes_that_overflow_a_count_are_errors() {
    let n = one_layer(Shape::new(1 << 32, 1 << 32, 1), "Act(ReLU)");
    let e = n.resolve().unwrap_err().to_string();
    assert!(e.starts_with("input = ") && e.contains("overflows"), "{e}");
    let n = one_layer(
        Shape::new(1, 28, 28),
        "Flatten, Dense(out: 18446744073709551615)",
    );
    let e = n.resolve().unwrap_err().to_string();
    assert!(
        e.starts_with("layers[1].out = 18446744073709551615: "),
        "{e}"
    );
    let n = one_layer(
        Shape::new(1, 65536, 65536),
        "Conv2d(out_channels: 4294967296, kernel: 3, padding: 1)",
    );
    let e = n.resolve().unwrap_err().to_string();
    assert!(
        e.starts_with("layers[0].out_channels = 4294967296: "),
        "{e}"
    );
}

#[test]
fn activation_parameters_must_be_finite_and_bounded() {
    for (act, field) in [
        ("Elu(alpha: inf)", "Elu.alpha"),
        ("LeakyReLU(alpha: NaN)", "LeakyReLU.alpha"),
        ("HardTanh(min: -1.0, max: 1e30)", "HardTanh.max"),
    ] {
        let n = one_layer(Shape::new(1, 28, 28), &format!("Act({act})"));
        let e = n.resolve().unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("layers[0].{field} = ")),
            "{act}: {e}"
        );
        assert!(e.contains("finite"), "{e}");
    }
    let n = one_layer(Shape::new(1, 28, 28), "Act(Elu(alpha: 1.0))");
    assert!(n.resolve().is_ok());
}

fn graph(nodes: &str) -> Result<Vec<ResolvedLayer>, String> {
    let spec: NetworkSpec = ron::from_str(&format!(
        "(schema_version: 1, name: \"g\", input: (c: 2, h: 4, w: 4), classes: 3, nodes: [{nodes}])"
    ))
    .map_err(|e| format!("parse: {e}"))?;
    spec.resolve().map_err(|e| e.to_string())
}

#[test]
fn kernel_stride_and_padding_take_a_number_or_a_pair_and_round_trip() {
    let r = graph(
        r#"(name: "c", op: Conv2d(out_channels: 3, kernel: (3, 1), stride: (1, 2), padding: (1, 0))),
           (name: "f", op: Flatten), (name: "fc", op: Dense(out: 3))"#,
    )
    .unwrap();
    assert_eq!(r[0].output, Shape::new(3, 4, 2));
    let LayerSpec::Conv2d { kernel, .. } = &r[0].spec else {
        panic!()
    };
    assert_eq!(*kernel, Hw::new(3, 1));
    let text = ron::to_string(&r[0].spec).unwrap();
    assert!(
        text.contains("kernel:(3,1)") && !text.contains("groups"),
        "{text}"
    );
    let square = ron::to_string(&lenet().layers[0]).unwrap();
    assert!(square.contains("kernel:5,stride:1,padding:2,"), "{square}");
    assert!(ron::from_str::<LayerSpec>("Conv2d(out_channels: 1, kernel: (3, 1, 2))").is_err());
    assert!(ron::from_str::<LayerSpec>("Conv2d(out_channels: 1, kernel: -3)").is_err());
}

#[test]
fn graph_errors_name_the_node_the_input_and_the_shapes() {
    let e =
        graph(r#"(name: "a", op: Act(ReLU), inputs: ["nope"]), (name: "fc", op: Dense(out: 3))"#)
            .unwrap_err();
    assert!(
        e.starts_with("nodes[0] (\"a\"): input \"nope\" is not a node"),
        "{e}"
    );
    let e = graph(
        r#"(name: "a", op: Act(ReLU), inputs: ["b"]), (name: "b", op: Act(Tanh), inputs: ["a"]),
           (name: "fc", op: Dense(out: 3), inputs: ["b"])"#,
    )
    .unwrap_err();
    assert!(e.contains("cycle") && e.contains("a, b"), "{e}");
    let e = graph(
        r#"(name: "c", op: Conv2d(out_channels: 3, kernel: 3), inputs: ["input"]),
           (name: "s", op: Add, inputs: ["c", "input"]), (name: "f", op: Flatten), (name: "fc", op: Dense(out: 3))"#,
    )
    .unwrap_err();
    assert_eq!(
        e,
        "nodes[1] (\"s\"): Add needs inputs of one shape: \"c\" is 3x2x2 but \"input\" is 2x4x4"
    );
    let e = graph(
        r#"(name: "c", op: Conv2d(out_channels: 3, kernel: 3, padding: 1), inputs: ["input"]),
           (name: "k", op: Concat, inputs: ["c", "input"]), (name: "m", op: MatMul(), inputs: ["k", "c"]),
           (name: "f", op: Flatten), (name: "fc", op: Dense(out: 3))"#,
    )
    .unwrap_err();
    assert!(
        e.starts_with("nodes[2] (\"m\"): MatMul multiplies \"k\" (c, m, k)") && e.contains("5x4x4"),
        "{e}"
    );
    let e = graph(r#"(name: "x", op: Act(ReLU)), (name: "y", op: Act(ReLU), inputs: ["input"]), (name: "f", op: Flatten), (name: "fc", op: Dense(out: 3))"#)
        .unwrap_err();
    assert!(
        e.starts_with("nodes[0] (\"x\"): the node does not feed the network output"),
        "{e}"
    );
    let e =
        graph(r#"(name: "s", op: Add), (name: "f", op: Flatten), (name: "fc", op: Dense(out: 3))"#)
            .unwrap_err();
    assert!(e.contains("reads at least 2 input(s)"), "{e}");
    let e = graph(r#"(name: "c", op: Conv2d(out_channels: 3, kernel: 3, groups: 3)), (name: "f", op: Flatten), (name: "fc", op: Dense(out: 3))"#)
        .unwrap_err();
    assert!(
        e.starts_with("nodes[0] (\"c\"): op.groups = 3: must be at least 1 and divide"),
        "{e}"
    );
    let e = graph(r#"(name: "fc", op: Dense(out: 3, name: "other"))"#).unwrap_err();
    assert!(e.contains("differs from the node name"), "{e}");
    let e = graph(r#"(name: "f", op: Flatten), (name: "f", op: Dense(out: 3))"#).unwrap_err();
    assert!(e.contains("name already used by nodes[0]"), "{e}");
}

#[test]
fn a_chain_cannot_hold_multi_input_ops_and_a_file_gives_layers_or_nodes() {
    let n = one_layer(Shape::new(1, 28, 28), "Add");
    let e = n.resolve().unwrap_err().to_string();
    assert!(
        e.starts_with("layers[0].op = Add: reads 2 or more inputs") && e.contains("nodes: [...]"),
        "{e}"
    );
    let mut n = lenet();
    n.nodes = vec![NodeSpec {
        name: "x".into(),
        op: LayerSpec::Flatten,
        inputs: vec![],
    }];
    assert!(n.resolve().unwrap_err().to_string().contains("not both"));
}

#[test]
fn graphs_resolve_in_topological_order_with_the_output_last() {
    // "late" is written first but reads "early".
    let r = graph(
        r#"(name: "late", op: Act(Tanh), inputs: ["early"]),
           (name: "early", op: Conv2d(out_channels: 2, kernel: 1), inputs: ["input"]),
           (name: "sum", op: Add, inputs: ["late", "early", "input"]),
           (name: "gap", op: GlobalAvgPool), (name: "fc", op: Dense(out: 3))"#,
    );
    // "gap" defaults to reading "sum" (the node before it in the file).
    let r = r.unwrap();
    let names: Vec<&str> = r.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["early", "late", "sum", "gap", "fc"]);
    assert_eq!(r[2].inputs, vec![Some(1), Some(0), None]);
    assert_eq!(r[3].output, Shape::flat(2));
    assert!(!is_chain(&r));
}
