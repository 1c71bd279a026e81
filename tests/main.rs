//! Workspace integration tests: one binary, a module per topic.

mod attention;
mod bad_input;
mod circulant;
mod conformance;
mod determinism;
mod devices;
mod dse;
mod end_to_end;
mod golden;
mod graph;
mod graph_engines;
mod groups;
mod mnist;
mod mutants;
mod neurosim;
mod onnx;
mod onnx_models;
mod presets;
mod run_timings;
mod scheduler;
mod sine;
mod sweep;
mod topology;
mod trust;
mod util;
