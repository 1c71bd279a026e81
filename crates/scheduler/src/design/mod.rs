//! Hardware design descriptions (`models/designs/*.ron`): clock, engines, on-chip buffers,
//! off-chip DRAM, energy table and the mapping of layers to engines.

use std::path::{Path, PathBuf};

use nacsim_core::config::{Checks, ConfigError, FieldError, Validate, num};
use nacsim_core::energy::{EnergyTable, MAX_ACTION_PJ};
use nacsim_core::tech::Technology;
use nacsim_nn::network::{LayerSpec, ResolvedLayer};
use nacsim_nn::qnet::QuantConfig;
use nacsim_systolic::SystolicConfig;

use crate::engine::CirculantConfig;
use serde::{Deserialize, Serialize};

mod buffers;

pub use buffers::{
    DramConfig, MAX_DRAM_BYTES_PER_CYCLE, MAX_DRAM_LATENCY_CYCLES, MIN_DRAM_BYTES_PER_CYCLE,
    ResidentConfig, SramBuffer, SramConfig, VectorUnitConfig,
};

/// Highest design clock accepted, MHz (1 THz): beyond it a cycle is shorter than any circuit.
pub const MAX_CLOCK_MHZ: f64 = 1e6;

/// Slowest accepted design clock in MHz: 1 kHz. Below it a run's seconds, static energy and
/// energy-delay product leave the range of an f64 (a mutated 1e-308 MHz clock gave an infinite
/// EDP); no accelerator clock is that slow.
pub const MIN_CLOCK_MHZ: f64 = 1e-3;
/// Largest accepted `batch` (images per pass over the weights): 2^20, so that cycle and action
/// counts of a pass stay far from `u64::MAX`.
pub const MAX_BATCH: usize = 1 << 20;

/// The engine of a slot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum EngineConfig {
    /// The int8 systolic MAC array (the baseline).
    Systolic(SystolicConfig),
    /// The block-circulant power-of-two B-MV accelerator (Qin et al., Electronics 2019).
    Circulant(CirculantConfig),
    /// Memristor crossbar arrays (after Liu & Zeng). Boxed: the crossbar has by far the most
    /// knobs, and the other variants should not carry its size.
    Crossbar(Box<nacsim_crossbar::CrossbarConfig>),
    /// The multiplier-free sine datapath (Cai et al., Applied Sciences 2021).
    Sine(crate::engine::SineEngineConfig),
    /// The test-only toy engine (`engine/toy.rs`).
    #[cfg(test)]
    Toy(crate::engine::toy::ToyConfig),
}

impl EngineConfig {
    /// Short kind name for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            EngineConfig::Systolic(_) => "systolic",
            EngineConfig::Circulant(_) => "circulant",
            EngineConfig::Crossbar(_) => "crossbar",
            EngineConfig::Sine(_) => "sine",
            #[cfg(test)]
            EngineConfig::Toy(_) => "toy",
        }
    }
}

/// A named engine instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSlot {
    /// Name used by the mapping and in reports (e.g. `"mac"`).
    pub name: String,
    /// The engine and its parameters.
    pub engine: EngineConfig,
}

/// Kinds of layers with a product, which the mapping can name (`by_kind`); every other layer
/// runs on the vector unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProductKind {
    /// Fully connected.
    Dense,
    /// Convolution (any kernel, stride, padding and groups).
    Conv2d,
    /// Product of two activations (attention scores): only an engine that loads an
    /// activation as its weights at run time takes it (the int8 systolic array).
    MatMul,
}

impl ProductKind {
    /// The kind of a layer with products, if it has any.
    pub fn of(l: &ResolvedLayer) -> Option<ProductKind> {
        match l.spec {
            LayerSpec::Dense { .. } => Some(ProductKind::Dense),
            LayerSpec::Conv2d { .. } => Some(ProductKind::Conv2d),
            LayerSpec::MatMul { .. } => Some(ProductKind::MatMul),
            _ => None,
        }
    }
}

/// Which engine runs which layer: by layer name first, then by layer index, then by kind,
/// then the default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// Engine for layers not matched below.
    pub default: String,
    /// `(kind, engine)` pairs.
    #[serde(default)]
    pub by_kind: Vec<(ProductKind, String)>,
    /// `(layer index, engine)` pairs. The index counts the layers of the network **as
    /// mapped**, from 0: every layer of a `layers` chain, every node of a `nodes` graph, with
    /// each BatchNorm2d removed (folded into the product it reads) — so in a network with
    /// batch norm, indices after the first BatchNorm2d are smaller than in the file. Rows of a
    /// topology file count from 0. Prefer `by_name`.
    #[serde(default)]
    pub by_index: Vec<(usize, String)>,
    /// `(layer name, engine)` pairs: a node's `name` in a graph, a layer's parameter name in a
    /// chain (`fc1`, `conv2`, or its `name` field), a row's name in a topology file. Checked
    /// before `by_index`; a name the network does not have is an error that lists the names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_name: Vec<(String, String)>,
}

/// Where the energy table comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum EnergySource {
    /// A preset file (`models/energy/*.ron`), relative to the design file.
    Preset(String),
    /// A table written in the design.
    Table(EnergyTable),
}

/// Where the technology file (area and leakage per component) comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum TechnologySource {
    /// A preset file (`models/tech/*.ron`), relative to the design file.
    Preset(String),
    /// A preset file with some of its fields set by the design, e.g.
    /// `PresetWith(preset: "../tech/45nm.ron", set: {"tia.area_um2": 300.0, "tia.source":
    /// "our test chip"})` ([`crate::techset`]: dotted paths as the file writes them; each changed
    /// entry's `source` says the design set it, unless the design sets that source too).
    PresetWith {
        /// The preset file, relative to the design file.
        preset: String,
        /// Field path → new value.
        set: std::collections::BTreeMap<String, crate::techset::TechValue>,
    },
    /// A technology written in the design.
    Table(Box<Technology>),
}

impl TechnologySource {
    /// The preset file this source names, if any.
    pub fn preset(&self) -> Option<&str> {
        match self {
            TechnologySource::Preset(p) | TechnologySource::PresetWith { preset: p, .. } => Some(p),
            TechnologySource::Table(_) => None,
        }
    }

    /// `tech` (the loaded preset) with the design's `set` applied, for `PresetWith`; `tech`
    /// itself otherwise.
    fn finish(&self, tech: Technology, design: &Path) -> Result<Technology, DesignError> {
        match self {
            TechnologySource::PresetWith { set, .. } => crate::techset::apply(&tech, set, design)
                .map_err(|errors| {
                    DesignError::Config(ConfigError::Invalid {
                        path: design.to_path_buf(),
                        errors,
                    })
                }),
            _ => Ok(tech),
        }
    }
}

/// A design file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesignConfig {
    /// File format version; must be 1.
    pub schema_version: u32,
    /// Design name.
    pub name: String,
    /// Where the design and its numbers come from.
    pub source: String,
    /// Clock in MHz.
    pub clock_mhz: f64,
    /// Engines by name.
    pub engines: Vec<EngineSlot>,
    /// Vector unit.
    pub vector_unit: VectorUnitConfig,
    /// On-chip buffers.
    pub sram: SramConfig,
    /// Off-chip memory.
    pub dram: DramConfig,
    /// What stays on chip (default: nothing; everything streams through DRAM).
    #[serde(default)]
    pub resident: ResidentConfig,
    /// Energy per action (compute and control; memory energies are in `sram` and `dram`).
    pub energy: EnergySource,
    /// Area and leakage per component (`technology: Preset("../tech/45nm.ron")`). Default: none,
    /// and reports then give no area or static power ("no technology file"), never 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub technology: Option<TechnologySource>,
    /// MLP_NeuroSim V3.0's gate-level circuit figures of an analog 1T1R MLP (area, read latency
    /// and energy per image and per epoch), reported by `nacsim info` beside nacsim's own costs
    /// (docs/engines/crossbar.md, "NeuroSim parity"). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neurosim: Option<nacsim_crossbar::neurosim::NeuroSimConfig>,
    /// Layer-to-engine mapping.
    pub mapping: MappingConfig,
    /// Quantization at the network boundary (default: calibrated int8).
    #[serde(default)]
    pub quant: QuantConfig,
    /// Images processed together per pass over the weights (default 64).
    #[serde(default = "default_batch")]
    pub batch: usize,
}

fn default_batch() -> usize {
    64
}

impl Validate for DesignConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        c.schema_version(self.schema_version, 1);
        c.check(
            self.clock_mhz.is_finite() && (MIN_CLOCK_MHZ..=MAX_CLOCK_MHZ).contains(&self.clock_mhz),
            "clock_mhz",
            num(self.clock_mhz),
            &format!("must be a frequency from {MIN_CLOCK_MHZ:e} to {MAX_CLOCK_MHZ:e} MHz"),
        );
        c.check(
            !self.engines.is_empty(),
            "engines",
            "[]",
            "name at least one engine",
        );
        for (i, e) in self.engines.iter().enumerate() {
            if self.engines[..i].iter().any(|o| o.name == e.name) {
                c.push(FieldError::new(
                    format!("engines[{i}].name"),
                    format!("{:?}", e.name),
                    "engine names must be unique",
                ));
            }
            match &e.engine {
                EngineConfig::Systolic(s) => {
                    c.nested(&format!("engines[{i}].engine.Systolic"), s);
                    // Checked only for an array of valid size (no overflow; one message).
                    let tile = (s.rows as u64)
                        .saturating_mul(s.cols as u64)
                        .saturating_mul(2);
                    c.check(
                        s.validate().is_err() || self.sram.weights.capacity_bytes >= tile,
                        "sram.weights.capacity_bytes",
                        self.sram.weights.capacity_bytes,
                        &format!(
                            "too small for one double-buffered weight tile of engine {:?} ({}x{} int8 x 2 = {tile} bytes)",
                            e.name, s.rows, s.cols
                        ),
                    );
                }
                EngineConfig::Circulant(k) => {
                    c.nested(&format!("engines[{i}].engine.Circulant"), k);
                }
                EngineConfig::Sine(x) => {
                    c.nested(&format!("engines[{i}].engine.Sine"), x);
                }
                #[cfg(test)]
                EngineConfig::Toy(x) => {
                    c.nested(&format!("engines[{i}].engine.Toy"), x);
                }
                EngineConfig::Crossbar(x) => {
                    let path = format!("engines[{i}].engine.Crossbar");
                    c.nested(&path, x.as_ref());
                    c.check(
                        x.timing.clock_mhz == self.clock_mhz,
                        &format!("{path}.timing.clock_mhz"),
                        x.timing.clock_mhz,
                        &format!(
                            "must equal the design's clock_mhz = {} (the crossbar counts cycles of its periphery clock)",
                            self.clock_mhz
                        ),
                    );
                }
            }
        }
        if let Some(Err(e)) = self.neurosim.as_ref().map(|n| n.validate()) {
            c.push(FieldError::new(
                format!("neurosim.{}", e.field),
                "(see the field)",
                e.message.as_str(),
            ));
        }
        c.nested("sram.weights", &self.sram.weights);
        c.nested("sram.activations", &self.sram.activations);
        let bw_rule = format!(
            "must be a finite number of bytes per cycle in [{MIN_DRAM_BYTES_PER_CYCLE:e}, {MAX_DRAM_BYTES_PER_CYCLE:e}]"
        );
        let bw_ok = |bw: f64| {
            bw.is_finite() && (MIN_DRAM_BYTES_PER_CYCLE..=MAX_DRAM_BYTES_PER_CYCLE).contains(&bw)
        };
        match (self.dram.bytes_per_cycle, self.dram.gbytes_per_s) {
            (Some(b), None) => {
                c.check(bw_ok(b), "dram.bytes_per_cycle", num(b), &bw_rule);
            }
            (None, Some(g)) => {
                if c.check(
                    g.is_finite() && g > 0.0,
                    "dram.gbytes_per_s",
                    num(g),
                    "must be a positive finite bandwidth in GB/s",
                ) {
                    let b = self.dram.bytes_per_cycle_at(self.clock_mhz);
                    c.check(
                        bw_ok(b),
                        "dram.gbytes_per_s",
                        num(g),
                        &format!(
                            "gives {b:e} bytes per cycle at clock_mhz = {}, which {bw_rule}",
                            self.clock_mhz
                        ),
                    );
                }
            }
            (Some(b), Some(g)) => {
                c.check(
                    false,
                    "dram",
                    format!("bytes_per_cycle: {b}, gbytes_per_s: {g}"),
                    "give the bandwidth once: bytes_per_cycle (scales with clock_mhz) or gbytes_per_s (fixed), not both",
                );
            }
            (None, None) => {
                c.check(
                    false,
                    "dram",
                    "no bandwidth",
                    "give bytes_per_cycle (bytes per cycle of the design clock) or gbytes_per_s (GB/s)",
                );
            }
        }
        c.check(
            self.dram.latency_cycles <= MAX_DRAM_LATENCY_CYCLES,
            "dram.latency_cycles",
            self.dram.latency_cycles,
            &format!("must be at most {MAX_DRAM_LATENCY_CYCLES} cycles"),
        );
        c.check(
            self.dram.pj_per_bit.is_finite()
                && (0.0..=MAX_ACTION_PJ).contains(&self.dram.pj_per_bit),
            "dram.pj_per_bit",
            num(self.dram.pj_per_bit),
            &format!("must be a finite energy ≥ 0 pJ, at most {MAX_ACTION_PJ:e} pJ"),
        );
        c.check(
            self.vector_unit.lanes > 0,
            "vector_unit.lanes",
            self.vector_unit.lanes,
            "must be at least 1",
        );
        c.check(
            (1..=MAX_BATCH).contains(&self.batch),
            "batch",
            self.batch,
            &format!("must be in 1..={MAX_BATCH}"),
        );
        let known = |n: &str| self.engines.iter().any(|e| e.name == n);
        let names = self
            .engines
            .iter()
            .map(|e| format!("{:?}", e.name))
            .collect::<Vec<_>>()
            .join(", ");
        c.check(
            known(&self.mapping.default),
            "mapping.default",
            format!("{:?}", self.mapping.default),
            &format!("unknown engine; the design has {names}"),
        );
        for (i, (_, n)) in self.mapping.by_kind.iter().enumerate() {
            c.check(
                known(n),
                &format!("mapping.by_kind[{i}]"),
                format!("{n:?}"),
                &format!("unknown engine; the design has {names}"),
            );
        }
        for (i, (_, n)) in self.mapping.by_index.iter().enumerate() {
            c.check(
                known(n),
                &format!("mapping.by_index[{i}]"),
                format!("{n:?}"),
                &format!("unknown engine; the design has {names}"),
            );
        }
        for (i, (_, n)) in self.mapping.by_name.iter().enumerate() {
            c.check(
                known(n),
                &format!("mapping.by_name[{i}]"),
                format!("{n:?}"),
                &format!("unknown engine; the design has {names}"),
            );
        }
        if let EnergySource::Table(t) = &self.energy {
            c.nested("energy.Table", t);
        }
        if let Some(TechnologySource::Table(t)) = &self.technology {
            c.nested("technology.Table", t.as_ref());
        }
        c.nested("quant", &self.quant);
        c.finish()
    }
}

/// The shipped technology files, embedded: `(file name, text)`.
pub const EMBEDDED_TECHNOLOGIES: [(&str, &str); 3] = [
    ("45nm.ron", include_str!("../../../../models/tech/45nm.ron")),
    ("40nm.ron", include_str!("../../../../models/tech/40nm.ron")),
    ("32nm.ron", include_str!("../../../../models/tech/32nm.ron")),
];

/// The embedded technology file a preset path `…/tech/<name>` names, if it is a shipped one.
fn embedded_technology(p: &str) -> Option<(&'static str, &'static str)> {
    let path = Path::new(p);
    let name = path.file_name()?.to_str()?;
    let dir = path.parent()?.file_name()?.to_str()?;
    (dir == "tech")
        .then(|| {
            EMBEDDED_TECHNOLOGIES
                .iter()
                .find(|(n, _)| *n == name)
                .copied()
        })
        .flatten()
}

/// Load the preset `p` named by the design at `design` in `field` (a `kind` for messages),
/// relative to the design's folder.
fn preset<T: serde::de::DeserializeOwned + Validate>(
    design: &Path,
    field: &str,
    kind: &str,
    p: &str,
) -> Result<T, DesignError> {
    let noun = kind.rsplit(' ').next().unwrap_or(kind);
    let resolved = design.parent().unwrap_or_else(|| Path::new(".")).join(p);
    match nacsim_core::config::load(&resolved) {
        Err(ConfigError::Io { source, .. }) => Err(DesignError::Mapping {
            path: design.to_path_buf(),
            error: FieldError::new(
                field,
                format!("Preset({p:?})"),
                format!(
                    "the {kind} {} cannot be read ({source}); a preset path is relative to the design file's folder: fix the path, or copy the {noun} beside the design",
                    resolved.display()
                ),
            ),
        }),
        other => Ok(other?),
    }
}

/// A loaded design with its energy table resolved.
#[derive(Clone, Debug)]
pub struct Design {
    /// The design as written.
    pub config: DesignConfig,
    /// The energy table in force.
    pub energy: EnergyTable,
    /// The technology (area, leakage) in force, if the design names one.
    pub technology: Option<Technology>,
    /// File the design came from (for messages).
    pub path: PathBuf,
}

/// Errors of design loading and mapping.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DesignError {
    /// The design or its energy preset does not load.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The design does not fit the network (mapping index out of range, buffers too small).
    #[error("{path}: {error}")]
    Mapping {
        /// Design file.
        path: PathBuf,
        /// The broken rule.
        error: FieldError,
    },
}

/// A buffer's `ports` must be a port count the technology's SRAM table prices.
fn check_sram_ports(
    config: &DesignConfig,
    technology: Option<&Technology>,
    path: &Path,
) -> Result<(), DesignError> {
    let Some(t) = technology else {
        return Ok(());
    };
    let have = t.sram.port_counts();
    for (name, b) in [
        ("sram.weights.ports", &config.sram.weights),
        ("sram.activations.ports", &config.sram.activations),
    ] {
        if !have.iter().any(|&p| u64::from(p) == b.ports) {
            return Err(DesignError::Mapping {
                path: path.to_path_buf(),
                error: FieldError::new(
                    name,
                    b.ports,
                    format!(
                        "the technology file {:?} prices SRAM macros with {have:?} ports only; give one of those, or add points with this port count to its sram table",
                        t.name
                    ),
                ),
            });
        }
    }
    Ok(())
}

impl Design {
    /// Load a design file and its energy preset.
    ///
    /// # Errors
    /// Parse errors with line and column, and every broken rule with its field path.
    pub fn load(path: &Path) -> Result<Self, DesignError> {
        let config: DesignConfig = nacsim_core::config::load(path)?;
        let energy = match &config.energy {
            EnergySource::Table(t) => t.clone(),
            EnergySource::Preset(p) => preset(path, "energy", "energy table", p)?,
        };
        let technology = match &config.technology {
            None => None,
            Some(TechnologySource::Table(t)) => Some(t.as_ref().clone()),
            Some(src) => {
                let p = src.preset().unwrap_or_default();
                let t = preset(path, "technology", "technology file", p)?;
                Some(src.finish(t, path)?)
            }
        };
        check_sram_ports(&config, technology.as_ref(), path)?;
        Ok(Self {
            config,
            energy,
            technology,
            path: path.to_path_buf(),
        })
    }

    /// Build from in-memory texts (embedded presets). `energy_text` is used when the design names
    /// an energy preset. A technology preset is one of the shipped `models/tech/*.ron`
    /// ([`EMBEDDED_TECHNOLOGIES`], matched by the path's last two components); another needs
    /// [`Design::from_texts_with_technology`].
    ///
    /// # Errors
    /// As [`Design::load`].
    pub fn from_texts(
        design: &str,
        energy_text: &str,
        label: &Path,
        energy_label: &Path,
    ) -> Result<Self, DesignError> {
        Self::from_texts_with_technology(design, energy_text, label, energy_label, None)
    }

    /// [`Design::from_texts`] with the text and label of the technology preset the design
    /// names, if any.
    ///
    /// # Errors
    /// As [`Design::load`]; a design naming a technology preset without `technology` given.
    pub fn from_texts_with_technology(
        design: &str,
        energy_text: &str,
        label: &Path,
        energy_label: &Path,
        technology: Option<(&str, &Path)>,
    ) -> Result<Self, DesignError> {
        let config: DesignConfig = nacsim_core::config::parse(design, label)?;
        let energy = match &config.energy {
            EnergySource::Table(t) => t.clone(),
            EnergySource::Preset(_) => nacsim_core::config::parse(energy_text, energy_label)?,
        };
        let technology = match (&config.technology, technology) {
            (None, _) => None,
            (Some(TechnologySource::Table(t)), _) => Some(t.as_ref().clone()),
            (Some(src), Some((text, tl))) => {
                Some(src.finish(nacsim_core::config::parse(text, tl)?, label)?)
            }
            (Some(src), None) if src.preset().and_then(embedded_technology).is_some() => {
                let (name, text) = src
                    .preset()
                    .and_then(embedded_technology)
                    .unwrap_or_default();
                let t = nacsim_core::config::parse(
                    text,
                    Path::new(&format!("models/tech/{name} (embedded)")),
                )?;
                Some(src.finish(t, label)?)
            }
            (Some(src), None) => {
                let p = src.preset().unwrap_or_default();
                return Err(DesignError::Mapping {
                    path: label.to_path_buf(),
                    error: FieldError::new(
                        "technology",
                        format!("Preset({p:?})"),
                        "an in-memory design cannot resolve a technology preset; load the design from its file, or write the technology as Table(...)",
                    ),
                });
            }
        };
        check_sram_ports(&config, technology.as_ref(), label)?;
        Ok(Self {
            config,
            energy,
            technology,
            path: label.to_path_buf(),
        })
    }

    /// The clock in Hz.
    pub fn clock_hz(&self) -> f64 {
        self.config.clock_mhz * 1e6
    }

    /// Index into `config.engines` of the engine that runs layer `index`, or `None` for layers
    /// without products (they run on the vector unit).
    ///
    /// # Errors
    /// A mapping entry naming a layer index outside the network, or a `by_name`/`by_index`
    /// entry that names a layer without products (pooling, activations, `Add`, …: they run
    /// on the vector unit, so the entry would be ignored).
    pub fn engine_for(
        &self,
        layers: &[ResolvedLayer],
        index: usize,
    ) -> Result<Option<usize>, DesignError> {
        // `index` may be past the end: a network without layers has none to map.
        let kind = layers.get(index).and_then(ProductKind::of);
        let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        let m = &self.config.mapping;
        // An entry that names a layer without products would be silently ignored: refuse it.
        let by_name = m.by_name.iter().enumerate().filter_map(|(i, (name, _))| {
            let l = layers.iter().find(|l| &l.name == name)?;
            Some((format!("mapping.by_name[{i}]"), format!("{name:?}"), l))
        });
        let by_index = m.by_index.iter().enumerate().filter_map(|(i, (li, _))| {
            let l = layers.get(*li)?;
            Some((format!("mapping.by_index[{i}]"), li.to_string(), l))
        });
        for (field, value, l) in by_name.chain(by_index) {
            if ProductKind::of(l).is_none() {
                return Err(DesignError::Mapping {
                    path: self.path.clone(),
                    error: FieldError::new(
                        field,
                        value,
                        format!(
                            "layer {:?} ({}) has no weight or activation product, so no engine runs it: it runs on the design's vector unit whatever the mapping says; only Dense, Conv2d and MatMul layers map to an engine, so remove this entry",
                            l.name,
                            nacsim_nn::qnet::LayerKind::of_spec(&l.spec)
                        ),
                    ),
                });
            }
        }
        self.engine_for_named(&names, index, kind)
    }

    /// [`Design::engine_for`] for layer `index` of the layers named `names` (in mapping
    /// order), whose product kind is `kind` (`None`: no product, no engine). The form for
    /// layers that are not a network's (a topology file's rows).
    ///
    /// # Errors
    /// A `by_index` entry outside `0..names.len()`, or a `by_name` entry naming no layer.
    pub fn engine_for_named(
        &self,
        names: &[&str],
        index: usize,
        kind: Option<ProductKind>,
    ) -> Result<Option<usize>, DesignError> {
        let m = &self.config.mapping;
        for (i, (name, _)) in m.by_name.iter().enumerate() {
            if !names.contains(&name.as_str()) {
                return Err(DesignError::Mapping {
                    path: self.path.clone(),
                    error: FieldError::new(
                        format!("mapping.by_name[{i}]"),
                        format!("{name:?}"),
                        format!(
                            "no layer of the network has this name (BatchNorm2d layers are folded into the product they read and cannot be mapped); the names are: {}",
                            names.join(", ")
                        ),
                    ),
                });
            }
        }
        if kind.is_some()
            && let Some((_, engine)) = m
                .by_name
                .iter()
                .find(|(n, _)| names.get(index) == Some(&n.as_str()))
        {
            return Ok(self.config.engines.iter().position(|e| &e.name == engine));
        }
        self.engine_for_kind(names.len(), index, kind)
    }

    /// [`Design::engine_for`] for layer `index` of `count` layers whose product kind is `kind`
    /// (`None`: no product, no engine), without `by_name` (use [`Design::engine_for_named`]
    /// for layers with names).
    ///
    /// # Errors
    /// A mapping entry naming a layer index outside `0..count`.
    pub fn engine_for_kind(
        &self,
        count: usize,
        index: usize,
        kind: Option<ProductKind>,
    ) -> Result<Option<usize>, DesignError> {
        let m = &self.config.mapping;
        for (i, (li, _)) in m.by_index.iter().enumerate() {
            if *li >= count {
                return Err(DesignError::Mapping {
                    path: self.path.clone(),
                    error: FieldError::new(
                        format!("mapping.by_index[{i}]"),
                        li,
                        format!(
                            "layer index out of range: the network has {count} layers (0..{count})"
                        ),
                    ),
                });
            }
        }
        let Some(kind) = kind else {
            return Ok(None);
        };
        let name = m
            .by_index
            .iter()
            .find(|(li, _)| *li == index)
            .map(|(_, n)| n)
            .or_else(|| m.by_kind.iter().find(|(k, _)| *k == kind).map(|(_, n)| n))
            .unwrap_or(&m.default);
        Ok(self.config.engines.iter().position(|e| &e.name == name))
    }
}
