//! `nacsim device`: measured device curves in, device preset files out (issue #21).
//!
//! * `nacsim device import curves.csv --out models/devices/x.ron`: the LUT device (mean curves,
//!   made monotone) with its cycle-to-cycle σ from repeated cycles, the source file's name and
//!   SHA-256 ([`nacsim_device::measured`]).
//! * `nacsim device fit curves.csv [--out DIR]`: NeuroSim exponential, SoftBounds, PowStep and
//!   ExpStep fits with RMSE (siemens) and R², and the distinguishable levels; `--out` writes
//!   each as `DIR/<name>-<model>.ron` ([`nacsim_device::fit`]).
//! * `nacsim device curves --preset AgASi --cycles 5 > curves.csv`: a curves CSV made from a
//!   committed preset (or preset file) with its cycle-to-cycle noise, for checking the loop.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use nacsim_core::{Purpose, Stream};
use nacsim_device::fit::{Target, distinguishable_levels, fit_all};
use nacsim_device::measured::{Curves, import, parse_csv};
use nacsim_device::{
    DeviceFile, DevicePreset, DeviceSource, DriftModel, LutConfig, PulseDeviceConfig,
    PulseResponse, StreamNormals, WritePulses,
};
use sha2::{Digest, Sha256};

use crate::CliResult;

/// Arguments of `nacsim device`.
#[derive(Args, Debug)]
pub struct DeviceArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DeviceCommand,
}

/// `nacsim device` subcommands.
#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// Measured curves (CSV: pulse, conductance_s, direction; one or more cycles) to a LUT device
    /// preset with its cycle-to-cycle spread, the source's name and SHA-256.
    Import(ImportArgs),
    /// Fit NeuroSim's exponential model and aihwkit's SoftBounds / PowStep / ExpStep to measured
    /// curves; report RMSE (S), R² and distinguishable levels; --out writes each as a preset.
    Fit(FitArgs),
    /// Write a curves CSV made from a device preset with its cycle-to-cycle noise.
    Curves(CurvesArgs),
}

/// Arguments of `nacsim device import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The curves CSV.
    pub csv: PathBuf,
    /// Preset file to write (models/devices/*.ron); default: print it.
    #[arg(long, value_name = "FILE.ron")]
    pub out: Option<PathBuf>,
    /// Device name in the preset (default: the CSV's file stem).
    #[arg(long)]
    pub name: Option<String>,
}

/// Arguments of `nacsim device fit`.
#[derive(Args, Debug)]
pub struct FitArgs {
    /// The curves CSV.
    pub csv: PathBuf,
    /// Folder to write one preset per model into, `<name>-<model>.ron`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Device name (default: the CSV's file stem).
    #[arg(long)]
    pub name: Option<String>,
}

/// Arguments of `nacsim device curves`.
#[derive(Args, Debug)]
pub struct CurvesArgs {
    /// A NeuroSim preset by name (AgASi, TaOxHfOx, Pcmo, AlOxHfO2, GstPcm, EpiRam, HzoFeFet,
    /// IdealLinear).
    #[arg(long, conflicts_with = "file")]
    pub preset: Option<String>,
    /// A device preset file instead.
    #[arg(long, value_name = "FILE.ron")]
    pub file: Option<PathBuf>,
    /// Cycles (LTP then LTD sweeps).
    #[arg(long, default_value_t = 5)]
    pub cycles: u32,
    /// Seed of the cycle-to-cycle noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Replace the device's cycle-to-cycle σ (fraction of the range).
    #[arg(long)]
    pub c2c: Option<f64>,
}

/// Run `nacsim device`.
pub fn run(a: &DeviceArgs) -> CliResult<()> {
    match &a.command {
        DeviceCommand::Import(i) => run_import(i),
        DeviceCommand::Fit(f) => run_fit(f),
        DeviceCommand::Curves(c) => run_curves(c),
    }
}

/// The curves, the file name and its SHA-256.
fn read_curves(path: &Path) -> CliResult<(Curves, String, String)> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("{}: cannot read ({e})", path.display()))?;
    let text = String::from_utf8(bytes.clone())
        .map_err(|_| format!("{}: not UTF-8 text; give a CSV file", path.display()))?;
    let curves = parse_csv(&text, &path.display().to_string())?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let digest = Sha256::digest(&bytes)
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
    Ok((curves, name, digest))
}

fn stem(path: &Path, name: Option<&String>) -> String {
    name.cloned().unwrap_or_else(|| {
        path.file_stem()
            .map_or_else(|| "device".into(), |s| s.to_string_lossy().into_owned())
    })
}

fn write_preset(file: &DeviceFile, out: &Path) -> CliResult<()> {
    let text = format!(
        "// Written by `nacsim device` from {} (issue #21); see docs/devices.md.\n{}",
        file.source.as_ref().map_or("-", |s| s.file.as_str()),
        nacsim_core::config::ron_pretty(file)?
    );
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create the folder ({e})", dir.display()))?;
    }
    std::fs::write(out, text).map_err(|e| format!("{}: cannot write ({e})", out.display()))?;
    Ok(())
}

fn run_import(a: &ImportArgs) -> CliResult<()> {
    let (curves, file, sha256) = read_curves(&a.csv)?;
    let imp = import(&curves);
    let range = imp
        .ltp_g_s
        .iter()
        .chain(&imp.ltd_g_s)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &g| {
            (lo.min(g), hi.max(g))
        });
    let levels = distinguishable_levels(&imp.ltp_g_s, imp.c2c_sigma * (range.1 - range.0)).min(
        distinguishable_levels(&imp.ltd_g_s, imp.c2c_sigma * (range.1 - range.0)),
    );
    let preset = DeviceFile {
        schema_version: nacsim_device::file::DEVICE_FILE_SCHEMA,
        name: stem(&a.csv, a.name.as_ref()),
        source: Some(DeviceSource {
            file,
            sha256,
            cycles: imp.cycles.0,
            method: "import".into(),
        }),
        device: PulseDeviceConfig::Lut(LutConfig {
            ltp_g_s: imp.ltp_g_s.clone(),
            ltd_g_s: imp.ltd_g_s.clone(),
            c2c_sigma: imp.c2c_sigma,
            pulses: WritePulses::default(),
        }),
        drift: DriftModel::None,
        fit: None,
        levels: Some(levels),
    };
    match &a.out {
        Some(out) => {
            write_preset(&preset, out)?;
            outln!(
                "{}: LUT of {} LTP / {} LTD pulses, {} cycles, c2c σ {:.4} of the range ({} steps), {} distinguishable levels → {}",
                a.csv.display(),
                imp.ltp_g_s.len() - 1,
                imp.ltd_g_s.len() - 1,
                imp.cycles.0,
                imp.c2c_sigma,
                imp.c2c_steps,
                levels,
                out.display()
            );
        }
        None => out!("{}", nacsim_core::config::ron_pretty(&preset)?),
    }
    Ok(())
}

fn run_fit(a: &FitArgs) -> CliResult<()> {
    let (curves, file, sha256) = read_curves(&a.csv)?;
    let imp = import(&curves);
    let target = Target {
        ltp: curves.ltp.clone(),
        ltd: curves.ltd.clone(),
        c2c_sigma: imp.c2c_sigma,
        pulses: WritePulses::default(),
    };
    let (lo, hi) = target.range();
    let sigma_s = imp.c2c_sigma * (hi - lo);
    let levels = distinguishable_levels(&target.ltp_mean(), sigma_s)
        .min(distinguishable_levels(&target.ltd_mean(), sigma_s));
    outln!(
        "{}: {} cycles, {} LTP / {} LTD pulses, G {lo:.4e}..{hi:.4e} S, c2c σ {:.4} of the range, {levels} distinguishable levels (2σ apart)",
        a.csv.display(),
        imp.cycles.0,
        curves.ltp[0].len() - 1,
        curves.ltd[0].len() - 1,
        imp.c2c_sigma
    );
    outln!("model        RMSE (S)     R²        parameters");
    let name = stem(&a.csv, a.name.as_ref());
    for f in fit_all(&target) {
        let params = match &f.device {
            PulseDeviceConfig::Exponential(c) => {
                format!("NL_LTP {:.2}, NL_LTD {:.2}", c.nl_ltp, c.nl_ltd)
            }
            PulseDeviceConfig::Step(c) => format!(
                "{:?}, dw_min {:.4e}, up_down {:.4}, dw_min_std {:.3}, G {:.4e}..{:.4e} S",
                c.model, c.dw_min, c.up_down, c.dw_min_std, c.g_off_s, c.g_on_s
            ),
            other => format!("{other:?}"),
        };
        outln!(
            "{:<12} {:<12.4e} {:<9.6} {params}",
            f.name,
            f.quality.rmse_s,
            f.quality.r2
        );
        if let Some(dir) = &a.out {
            let out = dir.join(format!("{name}-{}.ron", f.name));
            write_preset(
                &DeviceFile {
                    schema_version: nacsim_device::file::DEVICE_FILE_SCHEMA,
                    name: format!("{name}-{}", f.name),
                    source: Some(DeviceSource {
                        file: file.clone(),
                        sha256: sha256.clone(),
                        cycles: imp.cycles.0,
                        method: format!("fit {}", f.name),
                    }),
                    device: f.device.clone(),
                    drift: DriftModel::None,
                    fit: Some(f.quality),
                    levels: Some(levels),
                },
                &out,
            )?;
            outln!("             → {}", out.display());
        }
    }
    Ok(())
}

fn run_curves(a: &CurvesArgs) -> CliResult<()> {
    let mut device = match (&a.preset, &a.file) {
        (Some(p), None) => {
            let key: String = p
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_ascii_lowercase();
            let preset = DevicePreset::ALL
                .into_iter()
                .find(|d| {
                    let n: String = format!("{d:?}").to_ascii_lowercase();
                    let m: String = d
                        .name()
                        .chars()
                        .filter(char::is_ascii_alphanumeric)
                        .collect::<String>()
                        .to_ascii_lowercase();
                    n == key || m == key
                })
                .ok_or_else(|| {
                    format!(
                        "--preset {p:?}: unknown; valid: {}",
                        DevicePreset::ALL.map(|d| format!("{d:?}")).join(", ")
                    )
                })?;
            PulseDeviceConfig::Preset(nacsim_device::PresetConfig::new(preset))
        }
        (None, Some(f)) => DeviceFile::load(f)?.device,
        _ => return Err("give --preset NAME or --file FILE.ron".into()),
    };
    if let Some(c2c) = a.c2c {
        if !(c2c.is_finite() && c2c >= 0.0) {
            return Err(format!("--c2c {c2c}: give a σ ≥ 0 (fraction of the range)").into());
        }
        match &mut device {
            PulseDeviceConfig::Preset(p) => p.overrides.c2c_sigma = Some(c2c),
            PulseDeviceConfig::Exponential(e) => e.c2c_sigma = c2c,
            PulseDeviceConfig::Lut(l) => l.c2c_sigma = c2c,
            PulseDeviceConfig::Step(s) => s.dw_min_std = c2c,
            PulseDeviceConfig::Tabulated(_) => {
                return Err("--c2c: a tabulated state device has no c2c knob".into());
            }
        }
    }
    let dev = device
        .build(&Stream::new(a.seed, Purpose::DeviceToDevice, 0, 0), 0)
        .map_err(|e| nacsim_core::config::FieldError::join(&e))?;
    let c2c = Stream::new(a.seed, Purpose::CycleToCycle, 0, 0);
    let mut g = dev.g_min_s();
    outln!("pulse,conductance_s,direction");
    for c in 0..a.cycles.max(1) {
        let mut noise = StreamNormals::new(&c2c, u64::from(c));
        outln!("0,{g:e},ltp");
        for p in 1..=dev.pulses_ltp() {
            g = dev.apply_pulses(g, 1, &mut noise);
            outln!("{p},{g:e},ltp");
        }
        outln!("0,{g:e},ltd");
        for p in 1..=dev.pulses_ltd() {
            g = dev.apply_pulses(g, -1, &mut noise);
            outln!("{p},{g:e},ltd");
        }
    }
    Ok(())
}
