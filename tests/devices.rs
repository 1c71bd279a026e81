//! The device researcher's loop end to end (issue #21): a noisy curves CSV made from a
//! committed preset → `nacsim device import` and `fit --out` → preset files → an in-situ training
//! sweep and a crossbar inference sweep that name those files, with no hand editing.

use std::path::Path;

use crate::util::{committed_design_text, nacsim, root};

fn ok(args: &[&str]) -> String {
    let o = nacsim(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Mean accuracy of the merged sweep in `out` (column 3 of its one row).
fn merged_accuracy(out: &Path) -> f64 {
    let csv = out.join("table.csv");
    ok(&[
        "merge",
        out.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    let t = std::fs::read_to_string(csv).unwrap();
    t.lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn curves_from_a_preset_go_through_import_and_fit_into_training_and_inference() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 1. Noisy curves from the committed Ag:a-Si preset (its 3.5 % c2c), 6 cycles.
    let csv = ok(&["device", "curves", "--preset", "AgASi", "--cycles", "6"]);
    let csv_path = d.join("agasi.csv");
    std::fs::write(&csv_path, &csv).unwrap();
    // 2. Import: a LUT preset with the source's name and digest.
    let lut = d.join("devices/agasi-lut.ron");
    let report = ok(&[
        "device",
        "import",
        csv_path.to_str().unwrap(),
        "--out",
        lut.to_str().unwrap(),
    ]);
    assert!(
        report.contains("97 LTP / 100 LTD pulses, 6 cycles"),
        "{report}"
    );
    let file = nacsim_device::DeviceFile::load(&lut).unwrap();
    let src = file.source.as_ref().unwrap();
    assert_eq!(src.file, "agasi.csv");
    assert_eq!(src.sha256.len(), 64);
    let nacsim_device::PulseDeviceConfig::Lut(l) = &file.device else {
        panic!("{:?}", file.device)
    };
    assert!((0.02..0.06).contains(&l.c2c_sigma), "{}", l.c2c_sigma);
    // 3. Fit: one preset per model, NeuroSim's labels near the preset's 2.40 / −4.88.
    let fitted = d.join("devices");
    let report = ok(&[
        "device",
        "fit",
        csv_path.to_str().unwrap(),
        "--out",
        fitted.to_str().unwrap(),
    ]);
    for m in ["neurosim", "softbounds", "powstep", "expstep"] {
        assert!(fitted.join(format!("agasi-{m}.ron")).exists(), "{report}");
    }
    let ns = nacsim_device::DeviceFile::load(&fitted.join("agasi-neurosim.ron")).unwrap();
    let nacsim_device::PulseDeviceConfig::Exponential(e) = &ns.device else {
        panic!("{:?}", ns.device)
    };
    assert!(
        (e.nl_ltp - 2.4).abs() < 0.6 && (e.nl_ltd + 4.88).abs() < 1.0,
        "{e:?}"
    );
    assert!(ns.fit.unwrap().r2 > 0.9, "{report}");

    // 4. In-situ training on the fitted device (the tiny training sweep of the sweep tests,
    //    its settings naming the preset file).
    let fixtures = root().join("tests/fixtures/sweeps");
    let settings = std::fs::read_to_string(fixtures.join("tiny-insitu-settings.ron"))
        .unwrap()
        .replace(
            "device: Preset((preset: AgASi)),",
            &format!(
                "device: File({:?}),",
                fitted.join("agasi-neurosim.ron").display()
            ),
        );
    assert!(settings.contains("File("), "{settings}");
    std::fs::write(d.join("tiny-insitu-settings.ron"), settings).unwrap();
    std::fs::copy(
        fixtures.join("tiny-insitu-train.ron"),
        d.join("tiny-insitu-train.ron"),
    )
    .unwrap();
    let train_sweep = std::fs::read_to_string(fixtures.join("tiny-train.ron"))
        .unwrap()
        .replace("values: [0.0, 0.3]", "values: [0.0]")
        .replace("trials: 2", "trials: 1");
    std::fs::write(d.join("train-sweep.ron"), train_sweep).unwrap();
    let out = d.join("train-out");
    ok(&[
        "sweep",
        d.join("train-sweep.ron").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let acc = merged_accuracy(&out);
    assert!(
        acc > 0.2,
        "in-situ training on the fitted device learns: {acc}"
    );

    // 5. Inference on a crossbar whose devices are the imported LUT.
    let design = committed_design_text("crossbar-rram.ron").replace(
        "device: (g_on_s: 1e-5, g_off_s: 1e-6, levels: 128),",
        &format!("device: (file: {:?}),", lut.display()),
    );
    assert!(design.contains("file:"), "{design}");
    std::fs::write(d.join("xbar.ron"), design).unwrap();
    let sweep = format!(
        "(schema_version: 1, name: \"lut\", design: \"xbar.ron\", network: {:?}, limit: 200,
          parameter: (path: \"engines[0].engine.Crossbar.nonideal.d2d_sigma_rel\", values: [0.05]),
          trials: 1, seed: 1)",
        root().join("models/networks/fmnist-mlp.ron").display()
    );
    std::fs::write(d.join("infer.ron"), sweep).unwrap();
    let out = d.join("infer-out");
    ok(&[
        "sweep",
        d.join("infer.ron").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let acc = merged_accuracy(&out);
    assert!(acc > 0.7, "inference on the imported device: {acc}");
}

#[test]
fn bad_curves_name_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.csv");
    std::fs::write(&p, "pulse,conductance_s,direction\n0,1e-6,ltp\n1,x,ltp\n").unwrap();
    let o = nacsim(&["device", "import", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.csv:3:2: conductance \"x\""), "{err}");
}

/// A design's `device: (file: …)` is found next to the design (whatever the working directory),
/// and a missing one names the places tried.
#[test]
fn a_device_file_is_found_next_to_the_design_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("designs")).unwrap();
    std::fs::create_dir_all(d.join("devices")).unwrap();
    std::fs::copy(
        root().join("models/devices/agasi-measured-lut.ron"),
        d.join("devices/lut.ron"),
    )
    .unwrap();
    let design = committed_design_text("crossbar-rram.ron").replace(
        "device: (g_on_s: 1e-5, g_off_s: 1e-6, levels: 128),",
        "device: (file: \"../devices/lut.ron\"),",
    );
    assert!(design.contains("../devices/lut.ron"), "{design}");
    let p = d.join("designs/xbar.ron");
    std::fs::write(&p, &design).unwrap();
    // The test binary's working directory is the repository root, not `d`.
    let out = ok(&["info", "--design", p.to_str().unwrap(), "--json"]);
    assert!(out.contains("\"design\""), "{out}");

    std::fs::remove_file(d.join("devices/lut.ron")).unwrap();
    let o = nacsim(&["info", "--design", p.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("device.file"), "{err}");
    assert!(
        err.contains(&format!(
            "{}",
            d.join("designs/../devices/lut.ron").display()
        )),
        "{err}"
    );
}
