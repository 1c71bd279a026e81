//! Generative robustness test (#14): every committed design, energy preset, network (RON and
//! safetensors), training config (and in-situ settings) and sweep file is mutated — truncated,
//! an entry deleted or duplicated, a value's type swapped, a number made extreme or non-finite,
//! safetensors headers flipped — and the matching command is run on each mutant in a temporary
//! copy of the `models/` layout. Every mutant must end with exit status 0 and finite numbers in
//! the JSON it prints (or the sweep points it writes), or with exit status 2 and an `error:`
//! message; never a panic, a signal or a hang.
//!
//! Each proptest case mutates every file of a kind once (so every file is covered in CI);
//! `PROPTEST_CASES=N` asks for about N mutants per kind (rounded up to whole rounds over the
//! kind's files), e.g. `PROPTEST_CASES=2000 cargo test --test integration mutants`. A failing
//! mutant is also written to `target/tmp/mutants-failures/` for reproduction, and its seed to
//! `tests/proptest-regressions/mutants.txt` (replayed first by later runs).
//!
//! The mutators are in `mutate`; this module runs and judges the binary on each file kind.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::util::root;

mod mutate;

use mutate::{Mutation, mutate_safetensors, mutate_text, mutation, set_field};

/// A child that runs longer than this is a hang.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Memory limit of the child processes: mutants that ask for huge networks are refused early.
const MEMORY_LIMIT: &str = "2G";

/// Test images (and training images) of the small data folder.
const SMALL_IMAGES: usize = 128;

// ---------------------------------------------------------------------------------------------
// Running and judging the binary.

/// A folder with the first `SMALL_IMAGES` bundled images as both the test and training split.
fn small_data() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mutants-data");
        let src = root().join("crates/nn/data/fmnist-sample");
        let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        for (kind, header, item) in [("images-idx3", 16, 784), ("labels-idx1", 8, 1)] {
            let gz = std::fs::read(src.join(format!("t10k-{kind}-ubyte.gz"))).unwrap();
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut raw)
                .unwrap();
            let mut cut = raw[..header + SMALL_IMAGES * item].to_vec();
            cut[4..8].copy_from_slice(&(SMALL_IMAGES as u32).to_be_bytes());
            for split in ["t10k", "train"] {
                std::fs::write(tmp.path().join(format!("{split}-{kind}-ubyte")), &cut).unwrap();
            }
        }
        // Another test process may have made it already; either copy will do.
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::rename(tmp.keep(), &dir);
        dir
    })
}

fn failures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mutants-failures")
}

/// Fields of the reports that are null when absent (not numbers that came out non-finite).
const OPTIONAL: &[&str] = &["technology_nm", "eval_accuracy"];

/// Null values (non-finite numbers are written as null) in a JSON document, by path, but for
/// the [`OPTIONAL`] fields.
fn nulls(v: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Null if !OPTIONAL.iter().any(|k| path.ends_with(&format!(".{k}"))) => {
            out.push(path.to_owned());
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                nulls(x, &format!("{path}[{i}]"), out);
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                nulls(x, &format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

fn check_json(text: &str, what: &str) -> Result<(), String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{what} is not JSON ({e}):\n{text}"))?;
    let mut bad = Vec::new();
    nulls(&v, "", &mut bad);
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what}: null (non-finite) at {}:\n{text}",
            bad.join(", ")
        ))
    }
}

/// Runs `nacsim args` in `cwd` and judges it: exit 0 with finite JSON on stdout (and in the
/// `points` folder of a sweep), or exit 2 with an `error:` message; no panic, signal or hang.
fn run_and_judge(args: &[&str], cwd: &Path, points: Option<&Path>) -> Result<(), String> {
    let out_path = cwd.join("stdout.txt");
    let err_path = cwd.join("stderr.txt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_nacsim"))
        .args(args)
        .current_dir(cwd)
        .env("NACSIM_MEMORY_LIMIT", MEMORY_LIMIT)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("the nacsim binary runs");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("nacsim {args:?}: still running after {TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = String::from_utf8_lossy(&std::fs::read(&out_path).unwrap()).into_owned();
    let err = String::from_utf8_lossy(&std::fs::read(&err_path).unwrap()).into_owned();
    let ctx = || format!("nacsim {args:?}: {status}\nstderr: {err}");
    if err.lines().any(|l| l.contains("panicked at")) {
        return Err(format!("panic: {}", ctx()));
    }
    match status.code() {
        Some(0) => {
            if args.contains(&"--json") {
                check_json(&out, "stdout").map_err(|e| format!("{e}\n{}", ctx()))?;
            }
            if let Some(p) = points {
                for e in std::fs::read_dir(p).map_err(|e| format!("{}: {e}", p.display()))? {
                    let f = e.unwrap().path();
                    if f.extension().is_some_and(|x| x == "json") {
                        let t = std::fs::read_to_string(&f).unwrap();
                        check_json(&t, &f.display().to_string())
                            .map_err(|e| format!("{e}\n{}", ctx()))?;
                    }
                }
            }
            Ok(())
        }
        Some(2) if err.starts_with("error: ") && !err.contains("panicked") => Ok(()),
        _ => Err(format!("unexpected end: {}\nstdout: {out}", ctx())),
    }
}

/// A temporary copy of the `models/` layout: `m/designs`, `m/energy`, `m/networks`,
/// `m/training/insitu`, `m/sweeps`, `m/workloads`.
struct Layout {
    dir: tempfile::TempDir,
}

impl Layout {
    fn new() -> Layout {
        let dir = tempfile::tempdir().unwrap();
        for sub in [
            "designs",
            "energy",
            "tech",
            "networks",
            "training/insitu",
            "sweeps",
            "workloads",
        ] {
            std::fs::create_dir_all(dir.path().join("m").join(sub)).unwrap();
        }
        Layout { dir }
    }

    /// Path of a `models/`-relative file in the copy.
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join("m").join(rel)
    }

    fn arg(&self, rel: &str) -> String {
        self.path(rel).to_str().unwrap().to_owned()
    }

    /// Copies `models/<rel>` unchanged.
    fn copy(&self, rel: &str) {
        std::fs::copy(root().join("models").join(rel), self.path(rel)).unwrap();
    }

    fn write(&self, rel: &str, bytes: &[u8]) {
        std::fs::write(self.path(rel), bytes).unwrap();
    }

    /// Copies a network and its weights file.
    fn copy_network(&self, name: &str) {
        self.copy(&format!("networks/{name}.ron"));
        let w = format!("networks/{name}.safetensors");
        if root().join("models").join(&w).exists() {
            self.copy(&w);
        }
    }

    /// Copies every energy preset, technology file and in-situ settings file.
    fn copy_presets(&self) {
        for sub in ["energy", "tech", "training/insitu"] {
            for e in std::fs::read_dir(root().join("models").join(sub)).unwrap() {
                let f = e.unwrap().file_name().into_string().unwrap();
                if f.ends_with(".ron") {
                    self.copy(&format!("{sub}/{f}"));
                }
            }
        }
    }

    fn cwd(&self) -> &Path {
        self.dir.path()
    }
}

/// Names of the `.ron` files of `models/<sub>`, sorted.
fn committed(sub: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("models").join(sub))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|f| f.strip_suffix(".ron").map(str::to_owned))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no files in models/{sub}");
    v
}

/// Runs `check` on every target with its mutation; the first failure saves the mutant and
/// fails the case. With `MUTANTS_KEEP_GOING=1` (bug hunting) every failure is saved, with its
/// message, and the cases go on.
fn each<T: std::fmt::Debug>(
    targets: &[T],
    ms: &[Mutation],
    mut check: impl FnMut(&T, &Mutation) -> Result<(), Failure>,
) -> Result<(), TestCaseError> {
    let keep_going = std::env::var_os("MUTANTS_KEEP_GOING").is_some();
    for (t, m) in targets.iter().zip(ms) {
        if let Err((what, mutant, msg)) = check(t, m) {
            let d = failures_dir();
            std::fs::create_dir_all(&d).unwrap();
            let mut name = format!("{t:?}").replace(['"', '/', ' ', '(', ')', ','], "_");
            if keep_going {
                name = format!("{name}-{:016x}", rand_id());
            }
            let saved = d.join(name);
            let report = format!(
                "{t:?}, {what} (mutant saved as {}):\n{msg}",
                saved.display()
            );
            std::fs::write(&saved, mutant).unwrap();
            if keep_going {
                std::fs::write(saved.with_extension("txt"), &report).unwrap();
                continue;
            }
            return Err(TestCaseError::fail(report));
        }
    }
    Ok(())
}

/// A unique-enough id for saved mutants.
fn rand_id() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

/// Proptest cases so that each of `files` files gets about `PROPTEST_CASES` (default
/// `default`) mutants in total, at least one.
fn rounds(default: u32, files: usize) -> u32 {
    nacsim_core::testing::proptest_cases(default).div_ceil(files as u32)
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: 64,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "tests/proptest-regressions/mutants.txt",
            ),
        )),
        ..ProptestConfig::default()
    }
}

type Failure = (String, Vec<u8>, String);

// ---------------------------------------------------------------------------------------------
// The file kinds.

/// The network a design is run with (one it can map), and whether `run` applies (the
/// topology-only network of the k = 256 design has no weights).
fn design_network(design: &str) -> (&'static str, bool) {
    match design {
        "bpca-hybrid-cnn" => ("fmnist-cnn-bc16-pot3", true),
        "bpca-qin2019-bc16-pot4" => ("fmnist-mlp-bc16-pot4", true),
        "bpca-qin2019-bc64-pot4" => ("fmnist-mlp-bc64-pot4", true),
        "bpca-qin2019-bc256-pot3" => ("fc256", false),
        d if d.starts_with("bpca") => ("fmnist-mlp256-bc16-pot3", true),
        d if d.starts_with("sine") => ("fmnist-mlp-sine", true),
        _ => ("fmnist-mlp", true),
    }
}

const FC256: &str = "(schema_version: 1, name: \"fc256\", input: (c: 1, h: 16, w: 16), \
                     classes: 256, layers: [Flatten, Dense(out: 256, bias: false)])";

/// `info` (and `run --limit 20`) of `design` in `l` with its network.
fn run_design(l: &Layout, design: &str) -> Result<(), String> {
    let (net, run) = design_network(design);
    let net_arg = if net == "fc256" {
        l.write("networks/fc256.ron", FC256.as_bytes());
        l.arg("networks/fc256.ron")
    } else {
        l.copy_network(net);
        l.arg(&format!("networks/{net}.ron"))
    };
    let d = l.arg(&format!("designs/{design}.ron"));
    run_and_judge(
        &["info", "--design", &d, "--network", &net_arg, "--json"],
        l.cwd(),
        None,
    )?;
    if run {
        run_and_judge(
            &[
                "run",
                "--design",
                &d,
                "--network",
                &net_arg,
                "--limit",
                "20",
                "--json",
            ],
            l.cwd(),
            None,
        )?;
    }
    Ok(())
}

fn design_case(design: &String, m: &Mutation) -> Result<(), Failure> {
    let l = Layout::new();
    l.copy_presets();
    let rel = format!("designs/{design}.ron");
    let (mutant, what) = mutate_text(
        &std::fs::read(root().join("models").join(&rel)).unwrap(),
        m,
        true,
    );
    l.write(&rel, &mutant);
    run_design(&l, design).map_err(|e| (what, mutant, e))
}

/// A design that uses energy preset `energy`.
fn energy_design(energy: &str) -> &'static str {
    match energy {
        "bpca-derived-45nm" => "bpca-derived-45nm",
        "bpca-qin2019-calibrated" => "bpca-qin2019",
        "sine-45nm" => "sine-lut",
        _ => "systolic-int8",
    }
}

fn energy_case(energy: &String, m: &Mutation) -> Result<(), Failure> {
    let l = Layout::new();
    l.copy_presets();
    let design = energy_design(energy);
    l.copy(&format!("designs/{design}.ron"));
    let rel = format!("energy/{energy}.ron");
    let (mutant, what) = mutate_text(
        &std::fs::read(root().join("models").join(&rel)).unwrap(),
        m,
        true,
    );
    l.write(&rel, &mutant);
    run_design(&l, design).map_err(|e| (what, mutant, e))
}

/// A technology file (#17) through a design that names it: the crossbar design (cells, ADC,
/// DAC, TIA, SRAM, vector unit) for 45 and 32 nm, the BPCA design (B-MV unit) for 40 nm.
fn tech_case(tech: &String, m: &Mutation) -> Result<(), Failure> {
    let l = Layout::new();
    l.copy_presets();
    let design = if tech == "40nm" {
        "bpca-qin2019"
    } else {
        "crossbar-rram"
    };
    let rel = format!("designs/{design}.ron");
    let text = std::fs::read_to_string(root().join("models").join(&rel))
        .unwrap()
        .replace("../tech/45nm.ron", &format!("../tech/{tech}.ron"));
    l.write(&rel, text.as_bytes());
    let rel = format!("tech/{tech}.ron");
    let (mutant, what) = mutate_text(
        &std::fs::read(root().join("models").join(&rel)).unwrap(),
        m,
        true,
    );
    l.write(&rel, &mutant);
    run_design(&l, design).map_err(|e| (what, mutant, e))
}

/// A network target: its RON file or its weights.
#[derive(Debug)]
enum NetFile {
    Ron(String),
    Weights(String),
}

fn network_targets() -> Vec<NetFile> {
    let mut v = Vec::new();
    for n in committed("networks") {
        if root()
            .join(format!("models/networks/{n}.safetensors"))
            .exists()
        {
            v.push(NetFile::Weights(n.clone()));
        }
        v.push(NetFile::Ron(n));
    }
    v
}

/// The committed network text; fc4096 shrunk to 16×16 → 256 first so that its cases stay fast.
fn network_text(name: &str) -> String {
    let t = std::fs::read_to_string(root().join(format!("models/networks/{name}.ron"))).unwrap();
    if name == "fc4096" {
        t.replace("h: 64, w: 64", "h: 16, w: 16")
            .replace("4096", "256")
    } else {
        t
    }
}

fn network_case(t: &NetFile, m: &Mutation) -> Result<(), Failure> {
    let l = Layout::new();
    let (name, mutant, what) = match t {
        NetFile::Ron(n) => {
            l.copy_network(n);
            let (mutant, what) = mutate_text(network_text(n).as_bytes(), m, true);
            l.write(&format!("networks/{n}.ron"), &mutant);
            (n, mutant, what)
        }
        NetFile::Weights(n) => {
            l.write(&format!("networks/{n}.ron"), network_text(n).as_bytes());
            let rel = format!("networks/{n}.safetensors");
            let (mutant, what) =
                mutate_safetensors(&std::fs::read(root().join("models").join(&rel)).unwrap(), m);
            l.write(&rel, &mutant);
            (n, mutant, what)
        }
    };
    let net = l.arg(&format!("networks/{name}.ron"));
    let data = small_data().to_str().unwrap();
    let r = run_and_judge(&["info", "--network", &net, "--json"], l.cwd(), None).and_then(|()| {
        run_and_judge(
            &[
                "eval",
                "--network",
                &net,
                "--data",
                data,
                "--limit",
                "20",
                "--json",
            ],
            l.cwd(),
            None,
        )
    });
    r.map_err(|e| (what, mutant, e))
}

/// A training target: a training config or an in-situ settings file.
#[derive(Debug)]
enum TrainFile {
    Config(String),
    Settings(String),
}

fn training_targets() -> Vec<TrainFile> {
    let mut v: Vec<TrainFile> = committed("training")
        .into_iter()
        .map(TrainFile::Config)
        .collect();
    v.extend(
        committed("training/insitu")
            .into_iter()
            .map(TrainFile::Settings),
    );
    v
}

/// A training config that uses in-situ settings `settings`.
fn settings_config(settings: &str) -> &'static str {
    match settings {
        "agasi-fixed" => "insitu-agasi-fixed-fmnist-mlp",
        "agasi-linear" => "insitu-agasi-linear-fmnist-mlp",
        "neurosim-agasi" => "neurosim-agasi-fmnist20",
        _ => "insitu-ideal-fmnist-mlp",
    }
}

fn train(l: &Layout, config: &str) -> Result<(), String> {
    let c = l.arg(&format!("training/{config}.ron"));
    let out = l.cwd().join("out");
    run_and_judge(
        &[
            "train",
            &c,
            "--epochs",
            "1",
            "--limit",
            "64",
            "--eval-limit",
            "64",
            "--out",
            out.to_str().unwrap(),
            "--data",
            small_data().to_str().unwrap(),
            "--quiet",
            "--json",
        ],
        l.cwd(),
        None,
    )
}

fn training_case(t: &TrainFile, m: &Mutation) -> Result<(), Failure> {
    let l = Layout::new();
    l.copy_presets();
    let (rel, config) = match t {
        TrainFile::Config(c) => (format!("training/{c}.ron"), c.as_str()),
        TrainFile::Settings(s) => {
            let c = settings_config(s);
            l.copy(&format!("training/{c}.ron"));
            (format!("training/insitu/{s}.ron"), c)
        }
    };
    let (mutant, what) = mutate_text(
        &std::fs::read(root().join("models").join(&rel)).unwrap(),
        m,
        true,
    );
    l.write(&rel, &mutant);
    train(&l, config).map_err(|e| (what, mutant, e))
}

/// The sweep file with cheap settings (one trial, 64 images from the small data folder, 64
/// training images), before mutation; copies what it refers to into `l`.
fn cheap_sweep(l: &Layout, name: &str) -> String {
    let text = std::fs::read_to_string(root().join(format!("models/sweeps/{name}.ron"))).unwrap();
    let cfg: nacsim_scheduler::sweep::SweepConfig =
        ron::from_str(&text).expect("a committed sweep parses");
    let rel = |p: &str| {
        p.strip_prefix("../")
            .expect("relative to models/sweeps")
            .to_owned()
    };
    if !cfg.topology.is_empty() {
        // Shape-only: the design and the topology file.
        l.copy(&rel(&cfg.design));
        l.copy(&rel(&cfg.topology));
        l.copy_presets();
    } else if cfg.train.is_empty() {
        let design = rel(&cfg.design);
        l.copy(&design);
        l.copy_presets();
        let net = rel(&cfg.network);
        l.copy_network(
            net.strip_prefix("networks/")
                .and_then(|n| n.strip_suffix(".ron"))
                .unwrap(),
        );
    } else {
        l.copy(&rel(&cfg.train));
        l.copy_presets();
    }
    let data = format!("{:?}", small_data().to_str().unwrap());
    let mut t = set_field(&text, "trials", "1");
    t = set_field(&t, "data", &data);
    t = set_field(&t, "limit", "64");
    if !cfg.train.is_empty() {
        t = set_field(&t, "train_limit", "64");
    }
    t
}

fn sweep_case(name: &String, m: &Mutation) -> Result<(), Failure> {
    let l = Layout::new();
    let text = cheap_sweep(&l, name);
    let (mutant, what) = mutate_text(text.as_bytes(), m, true);
    let rel = format!("sweeps/{name}.ron");
    l.write(&rel, &mutant);
    let out = l.cwd().join("out");
    run_and_judge(
        &[
            "sweep",
            &l.arg(&rel),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        l.cwd(),
        Some(&out.join("points")),
    )
    .map_err(|e| (what, mutant, e))
}

// ---------------------------------------------------------------------------------------------
// The tests.

proptest! {
    #![proptest_config(config(rounds(44, committed("designs").len())))]
    #[test]
    fn design_mutants_run_or_fail_cleanly(
        ms in prop::collection::vec(mutation(), committed("designs").len())
    ) {
        each(&committed("designs"), &ms, design_case)?;
    }
}

proptest! {
    #![proptest_config(config(rounds(32, committed("energy").len())))]
    #[test]
    fn energy_mutants_run_or_fail_cleanly(
        ms in prop::collection::vec(mutation(), committed("energy").len())
    ) {
        each(&committed("energy"), &ms, energy_case)?;
    }
}

proptest! {
    #![proptest_config(config(rounds(24, committed("tech").len())))]
    #[test]
    fn tech_mutants_run_or_fail_cleanly(
        ms in prop::collection::vec(mutation(), committed("tech").len())
    ) {
        each(&committed("tech"), &ms, tech_case)?;
    }
}

proptest! {
    #![proptest_config(config(rounds(105, network_targets().len())))]
    #[test]
    fn network_mutants_run_or_fail_cleanly(
        ms in prop::collection::vec(mutation(), network_targets().len())
    ) {
        each(&network_targets(), &ms, network_case)?;
    }
}

proptest! {
    #![proptest_config(config(rounds(78, training_targets().len())))]
    #[test]
    fn training_mutants_run_or_fail_cleanly(
        ms in prop::collection::vec(mutation(), training_targets().len())
    ) {
        each(&training_targets(), &ms, training_case)?;
    }
}

proptest! {
    #![proptest_config(config(rounds(34, committed("sweeps").len())))]
    #[test]
    fn sweep_mutants_run_or_fail_cleanly(
        ms in prop::collection::vec(mutation(), committed("sweeps").len())
    ) {
        each(&committed("sweeps"), &ms, sweep_case)?;
    }
}
