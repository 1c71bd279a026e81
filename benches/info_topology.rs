//! `nacsim info` on the shipped ResNet-50 topology (`models/workloads/resnet50.csv`): parsing,
//! mapping and costing every layer by its shape ([`Simulation::from_topology`] +
//! [`InfoReport::build`]) on the baseline systolic design and on the BPCA design's BERT-base
//! encoder layer. Run: `cargo bench --bench info_topology`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use nacsim_scheduler::design::Design;
use nacsim_scheduler::report::InfoReport;
use nacsim_scheduler::sim::Simulation;
use nacsim_scheduler::topology;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn info(c: &mut Criterion) {
    let mut g = c.benchmark_group("info_topology");
    for (design, workload) in [
        ("systolic-int8.ron", "resnet50.csv"),
        ("systolic-int8.ron", "mobilenet_v1.csv"),
        ("bpca-qin2019.ron", "bert_base_encoder.csv"),
    ] {
        let d = Design::load(&root().join("models/designs").join(design)).unwrap();
        let path = root().join("models/workloads").join(workload);
        g.bench_function(format!("{workload}@{design}"), |b| {
            b.iter(|| {
                let t = topology::load(&path).unwrap();
                let sim = Simulation::from_topology(d.clone(), &t, 0).unwrap();
                black_box(InfoReport::build(&sim, workload).unwrap())
            });
        });
    }
    g.finish();
}

criterion_group!(benches, info);
criterion_main!(benches);
