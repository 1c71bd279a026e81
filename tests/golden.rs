//! Golden traces: the cycle-stepped array's per-cycle events for tiny layers, byte for byte.
//!
//! The traces are [`insta`] binary snapshots kept as plain CSV files in `traces/golden/`
//! (`<name>.snap.csv`, with insta's metadata in `<name>.snap`). On a mismatch insta writes the
//! new trace beside the old one (`.snap.new.csv`) and the test fails; if the change is intended,
//! run `cargo insta review` (or `INSTA_UPDATE=always cargo test --test integration golden`) and
//! review the diff of `traces/golden/` before committing.

use nacsim_core::trace::{CsvSink, TraceSink};
use nacsim_core::units::Hertz;
use nacsim_systolic::{Dataflow, SystolicConfig, gemm_ref, run_stepped};
use ndarray::Array2;

use crate::util::root;

fn check(name: &str, cfg: &SystolicConfig, m: usize, k: usize, n: usize) {
    // Small deterministic operands with both signs.
    let x = Array2::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 11) as i8 - 5);
    let w = Array2::from_shape_fn((n, k), |(i, j)| ((i * 5 + j * 2) % 9) as i8 - 4);
    let mut sink = CsvSink::new(
        Vec::new(),
        Hertz::from_mhz(500.0),
        &format!("tests/golden.rs:{name}"),
    );
    let (y, report) = run_stepped(cfg, x.view(), w.view(), &mut sink).expect("stepped run");
    sink.finish().unwrap();
    assert_eq!(
        y,
        gemm_ref(x.view(), w.view()),
        "{name}: stepped result equals the reference"
    );
    let got = String::from_utf8(sink.into_inner()).unwrap();
    let got = format!(
        "{got}# cycles={} tiles={} macs={}\n",
        report.cycles,
        report.tiles,
        report.counters.get("macs")
    );
    // The trace is an insta binary snapshot so that it stays a plain CSV file (the `.snap.csv`
    // beside insta's small `.snap` metadata file) in `traces/golden/`, where the docs point.
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("traces/golden"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_binary_snapshot!(&format!("{name}.csv"), got.into_bytes()));
}

#[test]
fn golden_tiny_dense_ws_2x2() {
    check(
        "tiny-dense-ws-2x2",
        &SystolicConfig::new(2, 2, Dataflow::WeightStationary),
        3,
        3,
        3,
    );
}

#[test]
fn golden_tiny_dense_os_2x2() {
    check(
        "tiny-dense-os-2x2",
        &SystolicConfig::new(2, 2, Dataflow::OutputStationary),
        3,
        3,
        3,
    );
}
