//! Device preset files (`models/devices/*.ron`, issue #21): a pulse device, its drift model and
//! where it came from, written by `nacsim device import` / `nacsim device fit --out` and named by
//! crossbar and in-situ designs.
//!
//! ```text
//! (
//!     schema_version: 1,
//!     name: "agasi-measured",
//!     source: Some((file: "curves.csv", sha256: "…", cycles: 5, method: "import")),
//!     device: Lut((ltp_g_s: [...], ltd_g_s: [...], c2c_sigma: 0.035)),
//!     drift: None,
//!     fit: None,
//!     levels: 42,
//! )
//! ```

use std::path::Path;

use nacsim_core::config::{Checks, ConfigError, FieldError, Validate};
use serde::{Deserialize, Serialize};

use crate::PulseResponse;
use crate::config::PulseDeviceConfig;
use crate::drift::DriftModel;
use crate::fit::FitQuality;
use nacsim_core::Stream;

/// The schema version this crate reads and writes.
pub const DEVICE_FILE_SCHEMA: u32 = 1;

/// Where a preset's numbers came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSource {
    /// File name of the measured curves (as given on the command line, without folders).
    pub file: String,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
    /// Measured cycles (LTP sweeps; the LTD count is the same or reported in `method`).
    pub cycles: usize,
    /// How the device was made: `import` (LUT) or `fit <model>`.
    pub method: String,
}

/// A device preset file (module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceFile {
    /// Schema version (must be 1).
    pub schema_version: u32,
    /// Name of the device.
    pub name: String,
    /// Provenance (default none: a hand-written preset).
    #[serde(default)]
    pub source: Option<DeviceSource>,
    /// The pulse device (required).
    pub device: PulseDeviceConfig,
    /// Drift for inference (default none).
    #[serde(default)]
    pub drift: DriftModel,
    /// Goodness of fit against the source curves (default none).
    #[serde(default)]
    pub fit: Option<FitQuality>,
    /// Distinguishable levels of the source curves (default none; see
    /// [`distinguishable_levels`](crate::fit::distinguishable_levels)).
    #[serde(default)]
    pub levels: Option<usize>,
}

impl Validate for DeviceFile {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        c.schema_version(self.schema_version, DEVICE_FILE_SCHEMA);
        c.nested("device", &self.device);
        c.nested("drift", &self.drift);
        c.finish()
    }
}

/// Conductance range and state count a crossbar takes from a preset file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceSummary {
    /// Highest conductance (siemens).
    pub g_on_s: f64,
    /// Lowest conductance (siemens).
    pub g_off_s: f64,
    /// The smaller of the LTP and LTD pulse counts, at least 2 (the crossbar's `levels`, as for
    /// a preset).
    pub levels: u32,
}

impl DeviceFile {
    /// Loads and validates a preset file.
    ///
    /// # Errors
    ///
    /// I/O, parse errors with line and column, every broken rule with its field.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        nacsim_core::config::load(path)
    }

    /// Range and levels of the nominal device (no d2d draw).
    ///
    /// # Errors
    ///
    /// The device's broken rules.
    pub fn summary(&self) -> Result<DeviceSummary, Vec<FieldError>> {
        let dev = self.device.build(
            &Stream::new(0, nacsim_core::Purpose::DeviceToDevice, 0, 0),
            0,
        )?;
        Ok(DeviceSummary {
            g_on_s: dev.g_max_s(),
            g_off_s: dev.g_min_s(),
            levels: dev.pulses_ltp().min(dev.pulses_ltd()).max(2),
        })
    }
}

/// Loads the device preset file a config names (`File("…")` of a pulse device, `file: "…"` of
/// a crossbar's device): an absolute path, or a relative one looked for first in the folder of
/// the config that names it, then in the working directory
/// ([`nacsim_core::config::relative_candidates`]).
///
/// # Errors
///
/// A message naming the path, the places tried, the problem and the fix.
pub fn load_named(path: &str) -> Result<DeviceFile, String> {
    let tried = nacsim_core::config::relative_candidates(path);
    let found = tried
        .iter()
        .find(|p| p.is_file())
        .unwrap_or(&tried[tried.len() - 1]);
    DeviceFile::load(found).map_err(|e| match e {
        ConfigError::Io { source, .. } => {
            let places: Vec<String> = tried.iter().map(|p| format!("{}", p.display())).collect();
            format!(
                "device preset file {path:?} cannot be read ({source}; tried {}); give a path relative to the file that names it, relative to the working directory, or absolute",
                places.join(", ")
            )
        }
        other => format!("device preset file {path:?}: {other}"),
    })
}
