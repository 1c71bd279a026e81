//! Area and static power of a design (cost layer, after the run): the engines' hardware
//! ([`Engine::area`](crate::engine::Engine::area)), the vector unit's lanes and the SRAM
//! buffers, priced by the design's technology file ([`nacsim_core::tech::Technology`]).
//! See: #17.
//!
//! Component keys are dotted paths: `<engine>.<component>` (`mac.pe_array`, `xbar.adcs`),
//! `vector_unit`, `sram.weights`, `sram.activations`. A buffer of `banks` banks is `banks`
//! macros of `⌈capacity / banks⌉` bytes each. Off-chip DRAM is not on the die and has no area
//! here.

use std::collections::BTreeMap;

use nacsim_core::tech::{AreaPower, Technology};
use serde::Serialize;

use crate::design::SramBuffer;
use crate::engine::LayerArea;
use crate::sim::Simulation;

/// Which technology file the area and leakage come from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TechnologyProvenance {
    /// The file's `name`.
    pub name: String,
    /// Its `source`.
    pub source: String,
    /// Its node, nm.
    pub node_nm: u32,
}

/// Area and static power of a whole design.
#[derive(Clone, Debug, PartialEq)]
pub struct DesignArea {
    /// The technology used.
    pub technology: TechnologyProvenance,
    /// Area (µm²) and leakage (µW) by dotted component key.
    pub parts: AreaPower,
    /// Hardware units by dotted key (`xbar.adcs`, `mac.pes`).
    pub counts: BTreeMap<String, u64>,
    /// Per plan layer (index into [`Simulation::plan`]) with hardware of its own (crossbar).
    pub layers: BTreeMap<usize, LayerArea>,
}

impl DesignArea {
    /// Total area, mm².
    pub fn area_mm2(&self) -> f64 {
        self.parts.total_area_um2() * 1e-6
    }

    /// Total static power, W.
    pub fn static_power_w(&self) -> f64 {
        self.parts.total_leakage_uw() * 1e-6
    }

    /// Area by component, mm².
    pub fn breakdown_mm2(&self) -> BTreeMap<String, f64> {
        self.parts
            .area_um2
            .iter()
            .map(|(k, v)| (k.clone(), v * 1e-6))
            .collect()
    }
}

/// Area (µm²) and leakage (µW) of one SRAM buffer: `banks` macros of `⌈capacity/banks⌉`
/// bytes with `width_bytes`-wide words and `ports` ports from the technology's SRAM table
/// (design loading checks that the table has the port count; a table without it gives 0).
pub fn sram_buffer(tech: &Technology, b: &SramBuffer) -> (f64, f64) {
    let banks = b.banks.max(1);
    let ports = u32::try_from(b.ports).unwrap_or(u32::MAX);
    let (a, l) = tech
        .sram
        .at(b.capacity_bytes.div_ceil(banks), b.width_bytes, ports)
        .unwrap_or((0.0, 0.0));
    (a * banks as f64, l * banks as f64)
}

/// The design's area and static power, or `None` when it names no technology file.
pub fn design_area(sim: &Simulation) -> Option<DesignArea> {
    let tech = sim.design.technology.as_ref()?;
    let cfg = &sim.design.config;
    let mut parts = AreaPower::default();
    let mut counts = BTreeMap::new();
    let mut layers = BTreeMap::new();
    for (ei, e) in sim.engines.iter().enumerate() {
        let own: Vec<(usize, &crate::engine::Compiled)> = sim
            .plan
            .iter()
            .enumerate()
            .filter(|(_, p)| p.engine == Some(ei))
            .filter_map(|(i, p)| p.compiled.as_ref().map(|c| (i, c)))
            .collect();
        let Some(a) = e.area(tech, &own) else {
            continue;
        };
        let name = e.name();
        for (k, v) in &a.total.area_um2 {
            *parts.area_um2.entry(format!("{name}.{k}")).or_default() += v;
        }
        for (k, v) in &a.total.leakage_uw {
            *parts.leakage_uw.entry(format!("{name}.{k}")).or_default() += v;
        }
        for (k, v) in &a.counts {
            *counts.entry(format!("{name}.{k}")).or_default() += v;
        }
        layers.extend(a.layers);
    }
    parts.add(
        "vector_unit",
        cfg.vector_unit.lanes as f64,
        tech.vector_lane.pair(),
    );
    counts.insert("vector_unit.lanes".into(), cfg.vector_unit.lanes);
    parts.add("sram.weights", 1.0, sram_buffer(tech, &cfg.sram.weights));
    parts.add(
        "sram.activations",
        1.0,
        sram_buffer(tech, &cfg.sram.activations),
    );
    Some(DesignArea {
        technology: TechnologyProvenance {
            name: tech.name.clone(),
            source: tech.source.clone(),
            node_nm: tech.node_nm,
        },
        parts,
        counts,
        layers,
    })
}

/// The area, power and efficiency figures of a report (`nacsim info` for one pass, `nacsim
/// run` for the whole run). Every field but `energy_per_image_j` and `edp_j_s` is absent from
/// the JSON (`None`, or empty counts) when the design names no technology file: a report
/// holds no nulls.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AreaFigures {
    /// The technology file, or null ("no technology file").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub technology: Option<TechnologyProvenance>,
    /// Die area of the engines, vector unit and SRAM buffers, mm² (DRAM excluded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_mm2: Option<f64>,
    /// Area by component, mm².
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_breakdown_mm2: Option<BTreeMap<String, f64>>,
    /// Static (leakage and bias) power of the whole die, W, drawn for the whole time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_power_w: Option<f64>,
    /// Static energy over the time of the report: `static_power_w × time_s`, J.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_energy_j: Option<f64>,
    /// `(dynamic energy + static energy) / time`, W.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average_power_w: Option<f64>,
    /// `(dynamic energy + static energy) / images`, J (dynamic only without a technology
    /// file, when `static_energy_j` is absent).
    pub energy_per_image_j: f64,
    /// Energy-delay product of the report's time span: `(dynamic + static energy) × time_s`,
    /// J·s (the whole run for `run`, one pass of `batch` images for `info`).
    pub edp_j_s: f64,
    /// Achieved throughput per area: `ops / time_s / 1e12 / area_mm2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tops_per_mm2: Option<f64>,
    /// Peak throughput per area: `peak ops/s / 1e12 / area_mm2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_tops_per_mm2: Option<f64>,
    /// Hardware units by dotted key (`xbar.arrays`, `xbar.adcs`, `xbar.dacs`, `mac.pes`);
    /// empty without a technology file.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub hardware_counts: BTreeMap<String, u64>,
}

impl AreaFigures {
    /// The figures of a span of `time_s` seconds with `energy_pj` of dynamic energy, `ops`
    /// operations and `images` images, for a design of area `area` (None: no technology).
    pub fn new(
        area: Option<&DesignArea>,
        energy_pj: f64,
        time_s: f64,
        ops: u64,
        images: usize,
        peak_ops_per_s: f64,
    ) -> Self {
        let dyn_j = energy_pj * 1e-12;
        let static_j = area.map(|a| a.static_power_w() * time_s);
        let total_j = dyn_j + static_j.unwrap_or(0.0);
        let per = |x: f64, d: f64| if d > 0.0 { x / d } else { 0.0 };
        Self {
            technology: area.map(|a| a.technology.clone()),
            area_mm2: area.map(DesignArea::area_mm2),
            area_breakdown_mm2: area.map(DesignArea::breakdown_mm2),
            static_power_w: area.map(DesignArea::static_power_w),
            static_energy_j: static_j,
            average_power_w: area.map(|_| per(total_j, time_s)),
            energy_per_image_j: per(total_j, images as f64),
            edp_j_s: total_j * time_s,
            tops_per_mm2: area.map(|a| per(per(ops as f64, time_s) / 1e12, a.area_mm2())),
            peak_tops_per_mm2: area.map(|a| per(peak_ops_per_s / 1e12, a.area_mm2())),
            hardware_counts: area.map(|a| a.counts.clone()).unwrap_or_default(),
        }
    }

    /// Text lines for the human reports, each starting with two spaces.
    pub fn lines(&self) -> Vec<String> {
        use crate::report::eng;
        let Some(t) = &self.technology else {
            return vec![
                "  area         no technology file (name one in the design: technology: Preset(\"../tech/45nm.ron\"))".into(),
            ];
        };
        let mut v = vec![format!(
            "  technology   {}, {} nm: {}",
            t.name, t.node_nm, t.source
        )];
        let area = self.area_mm2.unwrap_or(0.0);
        v.push(format!("  area         {}", eng_mm2(area)));
        for (k, a) in self.area_breakdown_mm2.iter().flatten() {
            v.push(format!(
                "    {:<20} {:>12}  {:>5.1} %",
                k,
                eng_mm2(*a),
                if area > 0.0 { 100.0 * a / area } else { 0.0 }
            ));
        }
        if !self.hardware_counts.is_empty() {
            let c: Vec<String> = self
                .hardware_counts
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            v.push(format!("  hardware     {}", c.join(" · ")));
        }
        v.push(format!(
            "  power        static {} · average {} (dynamic + static)",
            eng(self.static_power_w.unwrap_or(0.0), "W"),
            eng(self.average_power_w.unwrap_or(0.0), "W")
        ));
        v.push(format!(
            "  per area     {}/mm² ({}/mm² peak)",
            eng(self.tops_per_mm2.unwrap_or(0.0) * 1e12, "OPS"),
            eng(self.peak_tops_per_mm2.unwrap_or(0.0) * 1e12, "OPS")
        ));
        v.push(format!(
            "  per image    {} (dynamic + static) · EDP {}·s",
            eng(self.energy_per_image_j, "J"),
            eng(self.edp_j_s, "J")
        ));
        v
    }
}

/// An area in mm², 4 significant digits (no SI prefix: mm² is the unit architects quote).
fn eng_mm2(x: f64) -> String {
    if x == 0.0 {
        return "0 mm²".into();
    }
    let digits = (3 - x.abs().log10().floor() as i32).clamp(0, 12) as usize;
    format!("{x:.digits$} mm²")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::{Design, EngineConfig};
    use nacsim_core::tech::Technology;
    use nacsim_nn::data::Dataset;
    use nacsim_nn::model::Model;
    use nacsim_nn::network::NetworkSpec;
    use proptest::prelude::*;
    use std::path::Path;

    const SYSTOLIC: &str = include_str!("../../../models/designs/systolic-int8.ron");
    const XBAR: &str = include_str!("../../../models/designs/crossbar-rram.ron");
    const ENERGY: &str = include_str!("../../../models/energy/horowitz-45nm.ron");

    fn design(text: &str) -> Design {
        Design::from_texts(text, ENERGY, Path::new("d.ron"), Path::new("e.ron")).unwrap()
    }

    fn model(hidden: usize) -> Model {
        let spec: NetworkSpec = ron::from_str(&format!(
            "(schema_version: 1, name: \"p\", input: (c: 1, h: 28, w: 28), classes: 10, layers: [Flatten, Dense(out: {hidden}), Act(ReLU), Dense(out: 10)])"
        ))
        .unwrap();
        Model::init(spec, 1).unwrap()
    }

    fn sim(d: Design, hidden: usize) -> Simulation {
        let calib = Dataset::bundled_sample().limit(8);
        Simulation::new(d, &model(hidden), &calib).unwrap()
    }

    fn cases() -> ProptestConfig {
        ProptestConfig::with_cases(nacsim_core::testing::proptest_cases(8))
    }

    /// `PresetWith` changes exactly the fields it sets: the crossbar's TIAs at 300 µm² instead
    /// of 260 add 40 µm² per TIA to the area and nothing else, and the TIA's source says so.
    #[test]
    fn a_technology_preset_with_set_fields_changes_those_fields_only() {
        let base = sim(design(XBAR), 24);
        let text = XBAR.replace(
            "technology: Preset(\"../tech/45nm.ron\")",
            "technology: PresetWith(preset: \"../tech/45nm.ron\", set: {\"tia.area_um2\": 300.0})",
        );
        assert_ne!(text, XBAR, "crossbar-rram.ron names ../tech/45nm.ron");
        let d = design(&text);
        let t = d.technology.as_ref().unwrap();
        assert_eq!(t.tia.area_um2, 300.0);
        assert!(
            t.tia
                .source
                .ends_with("[set by design d.ron: tia.area_um2 = 300]"),
            "{}",
            t.tia.source
        );
        let (a0, a1) = (
            design_area(&base).unwrap(),
            design_area(&sim(d, 24)).unwrap(),
        );
        let tias = a0.counts["xbar.tias"] as f64;
        let grew = a1.parts.area_um2["xbar.tias"] - a0.parts.area_um2["xbar.tias"];
        assert!(
            (grew - 40.0 * tias).abs() < 1e-6 * grew,
            "{grew} vs {tias} TIAs"
        );
        for (k, v) in &a0.parts.area_um2 {
            if k != "xbar.tias" {
                assert_eq!(a1.parts.area_um2[k], *v, "{k}");
            }
        }
    }

    #[test]
    fn committed_designs_name_their_technology() {
        let s = sim(design(SYSTOLIC), 16);
        let a = design_area(&s).expect("systolic-int8 names models/tech/45nm.ron");
        assert_eq!(a.technology.node_nm, 45);
        assert_eq!(a.counts["mac.pes"], 32 * 32);
        assert!(a.area_mm2() > 0.0 && a.static_power_w() > 0.0);
    }

    #[test]
    fn no_technology_gives_no_area_never_zero() {
        let mut d = design(SYSTOLIC);
        d.technology = None;
        d.config.technology = None;
        let s = sim(d, 16);
        let f = AreaFigures::new(design_area(&s).as_ref(), 1e6, 1e-3, 1000, 10, 1e12);
        assert_eq!(f.area_mm2, None);
        assert_eq!(f.static_power_w, None);
        assert!(f.lines()[0].contains("no technology file"));
        assert_eq!(f.energy_per_image_j, 1e-7);
    }

    #[test]
    fn zero_leakage_gives_zero_static_power() {
        let mut d = design(SYSTOLIC);
        let t: &mut Technology = d.technology.as_mut().unwrap();
        for c in [
            &mut t.pe_int8,
            &mut t.register_bit,
            &mut t.vector_lane,
            &mut t.lut_bit,
            &mut t.sine_lane,
            &mut t.bmv_unit,
            &mut t.shift_add,
            &mut t.tia,
            &mut t.sample_hold,
        ] {
            c.leakage_uw = 0.0;
        }
        t.sram.points.iter_mut().for_each(|p| p.leakage_uw = 0.0);
        t.dac.points.iter_mut().for_each(|p| p.leakage_uw = 0.0);
        t.adc
            .values_mut()
            .for_each(|a| a.points.iter_mut().for_each(|p| p.leakage_uw = 0.0));
        t.cells.kinds.values_mut().for_each(|c| c.leakage_uw = 0.0);
        nacsim_core::config::Validate::validate(&*t).unwrap();
        let s = sim(d, 16);
        let a = design_area(&s).unwrap();
        assert_eq!(a.static_power_w(), 0.0);
        let f = AreaFigures::new(Some(&a), 2e6, 1e-3, 1000, 10, 1e12);
        assert_eq!(f.static_energy_j, Some(0.0));
        assert_eq!(f.average_power_w, Some(2e-6 / 1e-3));
        assert!(f.area_mm2.unwrap() > 0.0);
    }

    #[test]
    fn a_second_sram_port_doubles_bandwidth_and_costs_area() {
        let mut s = sim(design(SYSTOLIC), 8);
        let one = design_area(&s).unwrap();
        let bw1 = s.design.config.sram.weights.bytes_per_cycle();
        s.design.config.sram.weights.ports = 2;
        let two = design_area(&s).unwrap();
        assert_eq!(s.design.config.sram.weights.bytes_per_cycle(), 2 * bw1);
        let part = |a: &DesignArea| a.breakdown_mm2()["sram.weights"];
        assert!(part(&two) > part(&one), "{} vs {}", part(&two), part(&one));
        assert_eq!(
            two.breakdown_mm2()["sram.activations"],
            one.breakdown_mm2()["sram.activations"]
        );
    }

    proptest! {
        #![proptest_config(cases())]

        #[test]
        fn more_sram_is_more_area_and_leakage(k in 1u64..(1 << 18), d in 1u64..(1 << 18), act: bool) {
            let mut s = sim(design(SYSTOLIC), 8);
            let set = |s: &mut Simulation, per_bank: u64| {
                let b = if act { &mut s.design.config.sram.activations } else { &mut s.design.config.sram.weights };
                b.capacity_bytes = per_bank * b.banks;
            };
            set(&mut s, k);
            let small = design_area(&s).unwrap();
            set(&mut s, k + d);
            let big = design_area(&s).unwrap();
            prop_assert!(big.area_mm2() > small.area_mm2());
            prop_assert!(big.static_power_w() > small.static_power_w());
        }

        #[test]
        fn more_adc_bits_is_more_area_and_energy_per_conversion_never_fewer_cycles(
            bits in 3u32..10,
            flash in any::<bool>(),
        ) {
            let run = |b: u32| {
                let mut d = design(XBAR);
                let EngineConfig::Crossbar(x) = &mut d.config.engines[0].engine else {
                    unreachable!("crossbar-rram has a crossbar engine")
                };
                x.adc.bits = b;
                if flash {
                    x.adc.architecture = nacsim_crossbar::AdcArch::Flash;
                }
                let s = sim(d, 24);
                let a = design_area(&s).unwrap();
                let costs = s.pass_cost(4);
                let cycles: u64 = costs.iter().map(|c| c.cycles).sum();
                let conversions: u64 = costs
                    .iter()
                    .map(|c| c.counters.get(nacsim_crossbar::timing::counter::ADC_CONVERSIONS))
                    .sum();
                let adc_pj: f64 = costs
                    .iter()
                    .flat_map(|c| c.physics_pj.iter())
                    .filter(|(k, _)| k.ends_with(nacsim_crossbar::cost::action::ADC))
                    .map(|(_, v)| v)
                    .sum();
                (a.parts.area_um2["xbar.adcs"], adc_pj / conversions as f64, cycles)
            };
            let (a0, e0, c0) = run(bits);
            let (a1, e1, c1) = run(bits + 1);
            prop_assert!(a1 > a0, "area {a0} -> {a1}");
            prop_assert!(e1 > e0, "pJ per conversion {e0} -> {e1}");
            prop_assert!(c1 >= c0, "cycles {c0} -> {c1}");
            // A SAR ADC takes one decision per bit and the MLP's wide layers wait on their
            // ADCs: strictly more cycles; a flash ADC decides in one step at any resolution.
            if flash {
                prop_assert_eq!(c1, c0);
            } else {
                prop_assert!(c1 > c0, "SAR cycles {c0} -> {c1}");
            }
        }
    }
}
