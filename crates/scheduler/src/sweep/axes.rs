//! The axes of a multi-axis sweep and the list of designs they span.
//!
//! A sweep file's `axes: [...]` is a list of axes; each axis gives a list of *rows*, one value
//! per field it sets: a [`Axis::Grid`] sets one field to each of its values, a [`Axis::Zip`]
//! sets several fields that move together, and a [`Axis::Sample`] draws `count` designs from
//! ranges or lists of names (uniform random or Latin hypercube, seeded). The designs of the
//! sweep are the cartesian product of the axes' rows, the first axis slowest (as nested loops in
//! the order written). [`Grid`] is that list: the fields and one row of values per design.
//!
//! Sampling uses its own counter-based generator (SplitMix64 of `seed`, axis and draw), so the
//! designs of a sweep file never change with a dependency's version.

use serde::{Deserialize, Serialize};

use super::SweepValue;

/// How an [`Axis::Sample`] draws its designs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SampleMethod {
    /// Each field of each design drawn independently, uniformly over its range.
    Random,
    /// Latin hypercube: each field's range is cut into `count` equal strata and every stratum
    /// is used exactly once (in a seeded random order), with a uniform draw inside it.
    LatinHypercube,
}

/// The values a sampled field may take.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SampleRange {
    /// A real number in `[min, max)`.
    Uniform {
        /// Lowest value.
        min: f64,
        /// Highest value (exclusive).
        max: f64,
    },
    /// A real number in `[min, max)`, uniform in its logarithm (`min > 0`).
    LogUniform {
        /// Lowest value (> 0).
        min: f64,
        /// Highest value (exclusive).
        max: f64,
    },
    /// A whole number in `min..=max`, each equally likely.
    Integer {
        /// Lowest value.
        min: u64,
        /// Highest value (inclusive).
        max: u64,
    },
    /// One of the given values (numbers or names), each equally likely.
    Choice(Vec<SweepValue>),
}

/// One sampled field: its dotted path and range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampledField {
    /// Dotted path of the field (as [`super::SweepParameter::path`]).
    pub path: String,
    /// The values it may take.
    pub range: SampleRange,
}

/// One axis of a multi-axis sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Axis {
    /// One field over a list of values.
    Grid {
        /// Dotted path of the field.
        path: String,
        /// Its values, in order.
        values: Vec<SweepValue>,
    },
    /// Fields that move together: row `k` sets `paths[i]` to `rows[k][i]`.
    Zip {
        /// Dotted paths of the fields.
        paths: Vec<String>,
        /// One value per path in each row.
        rows: Vec<Vec<SweepValue>>,
    },
    /// `count` designs drawn from the fields' ranges.
    Sample {
        /// Uniform random or Latin hypercube.
        method: SampleMethod,
        /// Designs drawn (≥ 1).
        count: usize,
        /// Seed of the draw (the same seed gives the same designs).
        seed: u64,
        /// The sampled fields.
        fields: Vec<SampledField>,
    },
}

impl Axis {
    /// The fields this axis sets, in order.
    pub fn paths(&self) -> Vec<String> {
        match self {
            Axis::Grid { path, .. } => vec![path.clone()],
            Axis::Zip { paths, .. } => paths.clone(),
            Axis::Sample { fields, .. } => fields.iter().map(|f| f.path.clone()).collect(),
        }
    }

    /// Number of rows of this axis.
    pub fn len(&self) -> usize {
        match self {
            Axis::Grid { values, .. } => values.len(),
            Axis::Zip { rows, .. } => rows.len(),
            Axis::Sample { count, .. } => *count,
        }
    }

    /// Whether the axis has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows of this axis (one value per path); `index` is the axis's position in the sweep
    /// file (it keys the sample draws, so two sampled axes with one seed differ).
    pub fn rows(&self, index: usize) -> Vec<Vec<SweepValue>> {
        match self {
            Axis::Grid { values, .. } => values.iter().map(|v| vec![v.clone()]).collect(),
            Axis::Zip { rows, .. } => rows.clone(),
            Axis::Sample {
                method,
                count,
                seed,
                fields,
            } => sample(*method, *count, *seed, index, fields),
        }
    }
}

/// The designs of a sweep: the fields it sets and one row of values per design, in design
/// order (a design's index is its position here).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Dotted paths of the swept fields.
    pub fields: Vec<String>,
    /// One value per field for each design.
    pub rows: Vec<Vec<SweepValue>>,
}

impl Grid {
    /// The cartesian product of the axes' rows, the first axis slowest.
    pub fn of_axes(axes: &[Axis]) -> Self {
        let fields = axes.iter().flat_map(Axis::paths).collect();
        let mut rows: Vec<Vec<SweepValue>> = vec![Vec::new()];
        for (i, a) in axes.iter().enumerate() {
            let ar = a.rows(i);
            rows = rows
                .iter()
                .flat_map(|r| {
                    ar.iter().map(move |x| {
                        let mut r = r.clone();
                        r.extend(x.iter().cloned());
                        r
                    })
                })
                .collect();
        }
        Grid { fields, rows }
    }

    /// Number of designs (the product of the axes' lengths, saturating), without building them.
    pub fn count(axes: &[Axis]) -> usize {
        axes.iter().fold(1usize, |n, a| n.saturating_mul(a.len()))
    }

    /// A design's values as `field=value` pairs joined by `, ` (for messages).
    pub fn describe(&self, design: usize) -> String {
        self.fields
            .iter()
            .zip(&self.rows[design])
            .map(|(f, v)| format!("{f}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// SplitMix64: a well-mixed 64-bit value of `x` (Steele, Lea and Flood 2014).
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A uniform number in `[0, 1)` keyed by `(seed, axis, field, draw, purpose)`.
fn unit(seed: u64, axis: usize, field: usize, draw: usize, purpose: u64) -> f64 {
    let mut h = splitmix(seed);
    for k in [axis as u64, field as u64, draw as u64, purpose] {
        h = splitmix(h ^ k);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// `count` rows of the sampled `fields`.
fn sample(
    method: SampleMethod,
    count: usize,
    seed: u64,
    axis: usize,
    fields: &[SampledField],
) -> Vec<Vec<SweepValue>> {
    // q[f][d]: the position in [0, 1) of field f of design d.
    let q: Vec<Vec<f64>> = (0..fields.len())
        .map(|f| match method {
            SampleMethod::Random => (0..count).map(|d| unit(seed, axis, f, d, 0)).collect(),
            SampleMethod::LatinHypercube => {
                // A seeded Fisher–Yates permutation of the strata.
                let mut strata: Vec<usize> = (0..count).collect();
                for i in (1..count).rev() {
                    let j = (unit(seed, axis, f, i, 1) * (i + 1) as f64) as usize;
                    strata.swap(i, j.min(i));
                }
                (0..count)
                    .map(|d| (strata[d] as f64 + unit(seed, axis, f, d, 0)) / count as f64)
                    .collect()
            }
        })
        .collect();
    (0..count)
        .map(|d| {
            fields
                .iter()
                .enumerate()
                .map(|(f, sf)| at(&sf.range, q[f][d]))
                .collect()
        })
        .collect()
}

/// The value of `range` at position `q` in `[0, 1)`.
fn at(range: &SampleRange, q: f64) -> SweepValue {
    match range {
        SampleRange::Uniform { min, max } => SweepValue::Number(min + q * (max - min)),
        SampleRange::LogUniform { min, max } => {
            SweepValue::Number((min.ln() + q * (max.ln() - min.ln())).exp())
        }
        SampleRange::Integer { min, max } => {
            let span = max.saturating_sub(*min).saturating_add(1);
            let k = ((q * span as f64) as u64).min(span - 1);
            SweepValue::Number((min + k) as f64)
        }
        SampleRange::Choice(vs) => {
            let k = ((q * vs.len() as f64) as usize).min(vs.len().saturating_sub(1));
            vs[k].clone()
        }
    }
}

/// The problems of a list of axes, as `(field, value, rule)` for [`nacsim_core::config::Checks`].
pub(super) fn problems(axes: &[Axis]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut bad = |f: String, v: String, r: &str| out.push((f, v, r.to_string()));
    let mut seen: Vec<String> = Vec::new();
    for (i, a) in axes.iter().enumerate() {
        let at = format!("axes[{i}]");
        if a.is_empty() {
            bad(
                at.clone(),
                "0 rows".into(),
                "give at least one value (or count ≥ 1)",
            );
        }
        for p in a.paths() {
            if p.is_empty() {
                bad(format!("{at}.path"), "\"\"".into(), "name a field");
            } else if seen.contains(&p) {
                bad(
                    format!("{at}.path"),
                    format!("{p:?}"),
                    "this field is set by an earlier axis; set each field on one axis",
                );
            } else {
                seen.push(p);
            }
        }
        let finite = |v: &SweepValue| v.as_f64().is_none_or(f64::is_finite);
        match a {
            Axis::Grid { values, .. } => {
                for (k, v) in values.iter().enumerate() {
                    if !finite(v) {
                        bad(format!("{at}.values[{k}]"), v.to_string(), "must be finite");
                    }
                }
            }
            Axis::Zip { paths, rows } => {
                if paths.is_empty() {
                    bad(
                        format!("{at}.paths"),
                        "[]".into(),
                        "name at least one field",
                    );
                }
                for (k, r) in rows.iter().enumerate() {
                    if r.len() != paths.len() {
                        bad(
                            format!("{at}.rows[{k}]"),
                            format!("{} values", r.len()),
                            &format!("give one value per path ({})", paths.len()),
                        );
                    }
                    for v in r {
                        if !finite(v) {
                            bad(format!("{at}.rows[{k}]"), v.to_string(), "must be finite");
                        }
                    }
                }
            }
            Axis::Sample { fields, .. } => {
                if fields.is_empty() {
                    bad(
                        format!("{at}.fields"),
                        "[]".into(),
                        "name at least one field",
                    );
                }
                for (k, f) in fields.iter().enumerate() {
                    let here = format!("{at}.fields[{k}].range");
                    match &f.range {
                        SampleRange::Uniform { min, max } => {
                            if !(min.is_finite() && max.is_finite() && min < max) {
                                bad(here, format!("{min}..{max}"), "need finite min < max");
                            }
                        }
                        SampleRange::LogUniform { min, max } => {
                            if !(min.is_finite() && max.is_finite() && *min > 0.0 && min < max) {
                                bad(here, format!("{min}..{max}"), "need 0 < min < max (finite)");
                            }
                        }
                        SampleRange::Integer { min, max } => {
                            if min > max {
                                bad(here, format!("{min}..={max}"), "need min ≤ max");
                            }
                        }
                        SampleRange::Choice(vs) => {
                            if vs.is_empty() {
                                bad(here.clone(), "[]".into(), "give at least one value");
                            }
                            for v in vs {
                                if !finite(v) {
                                    bad(here.clone(), v.to_string(), "must be finite");
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(x: f64) -> SweepValue {
        SweepValue::Number(x)
    }

    #[test]
    fn a_grid_is_the_product_with_the_first_axis_slowest() {
        let axes = vec![
            Axis::Grid {
                path: "a".into(),
                values: vec![n(1.0), n(2.0)],
            },
            Axis::Zip {
                paths: vec!["b".into(), "c".into()],
                rows: vec![vec![n(10.0), n(20.0)], vec![n(11.0), n(21.0)]],
            },
            Axis::Grid {
                path: "d".into(),
                values: vec![SweepValue::Text("X".into()), SweepValue::Text("Y".into())],
            },
        ];
        let g = Grid::of_axes(&axes);
        assert_eq!(g.fields, ["a", "b", "c", "d"]);
        assert_eq!(g.rows.len(), Grid::count(&axes));
        assert_eq!(g.rows.len(), 8);
        assert_eq!(
            g.rows[0],
            [n(1.0), n(10.0), n(20.0), SweepValue::Text("X".into())]
        );
        assert_eq!(g.rows[1][3], SweepValue::Text("Y".into()));
        assert_eq!(g.rows[2][1], n(11.0));
        assert_eq!(g.rows[4][0], n(2.0));
        assert_eq!(g.describe(7), "a=2, b=11, c=21, d=Y");
    }

    #[test]
    fn latin_hypercube_uses_every_stratum_once_and_is_seeded() {
        for count in [1usize, 2, 7, 50] {
            let fields = vec![
                SampledField {
                    path: "x".into(),
                    range: SampleRange::Uniform { min: 2.0, max: 4.0 },
                },
                SampledField {
                    path: "k".into(),
                    range: SampleRange::Integer {
                        min: 0,
                        max: count as u64 - 1,
                    },
                },
            ];
            let rows = sample(SampleMethod::LatinHypercube, count, 9, 0, &fields);
            let mut strata: Vec<usize> = rows
                .iter()
                .map(|r| ((r[0].as_f64().unwrap() - 2.0) / 2.0 * count as f64) as usize)
                .collect();
            strata.sort_unstable();
            assert_eq!(strata, (0..count).collect::<Vec<_>>());
            // With as many integers as strata, every integer appears once.
            let mut ks: Vec<u64> = rows.iter().map(|r| r[1].as_f64().unwrap() as u64).collect();
            ks.sort_unstable();
            assert_eq!(ks, (0..count as u64).collect::<Vec<_>>());
            assert_eq!(
                rows,
                sample(SampleMethod::LatinHypercube, count, 9, 0, &fields)
            );
            if count > 2 {
                assert_ne!(
                    rows,
                    sample(SampleMethod::LatinHypercube, count, 10, 0, &fields)
                );
            }
        }
    }

    #[test]
    fn random_draws_stay_in_range() {
        let fields = vec![
            SampledField {
                path: "x".into(),
                range: SampleRange::LogUniform {
                    min: 1e-3,
                    max: 1.0,
                },
            },
            SampledField {
                path: "p".into(),
                range: SampleRange::Choice(vec![SweepValue::Text("A".into()), n(3.0)]),
            },
        ];
        let rows = sample(SampleMethod::Random, 200, 1, 3, &fields);
        assert!(rows.iter().all(|r| {
            let x = r[0].as_f64().unwrap();
            (1e-3..1.0).contains(&x)
        }));
        assert!(rows.iter().any(|r| r[1] == n(3.0)));
        assert!(rows.iter().any(|r| r[1] == SweepValue::Text("A".into())));
        assert_ne!(
            rows,
            sample(SampleMethod::Random, 200, 1, 4, &fields),
            "keyed by axis"
        );
    }

    #[test]
    fn bad_axes_are_named() {
        let axes = vec![
            Axis::Grid {
                path: "a".into(),
                values: vec![],
            },
            Axis::Zip {
                paths: vec!["a".into()],
                rows: vec![vec![n(1.0), n(2.0)]],
            },
            Axis::Sample {
                method: SampleMethod::Random,
                count: 3,
                seed: 0,
                fields: vec![SampledField {
                    path: "b".into(),
                    range: SampleRange::LogUniform { min: 0.0, max: 1.0 },
                }],
            },
        ];
        let p = problems(&axes);
        let fields: Vec<&str> = p.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            fields,
            [
                "axes[0]",
                "axes[1].path",
                "axes[1].rows[0]",
                "axes[2].fields[0].range"
            ]
        );
    }
}
