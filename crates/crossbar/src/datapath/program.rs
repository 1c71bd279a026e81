//! Programming a weight matrix onto crossbar tiles: the static effects of the datapath, drawn
//! once per `(seed, layer, trial)` ([`ProgrammedLayer::program`]).
//!
//! # Programming (static effects, drawn once per `(seed, layer, trial)`)
//!
//! 1. The ideal mapping ([`reference`](crate::reference)) gives each weight an integer code `q`
//!    and each device its target conductance.
//! 2. Every device (index `(o·K + k)·devices_per_weight + d`; reference-column devices after
//!    them at `ct·K + k`) is perturbed, each effect skipped when its knob is 0 so that a zero knob
//!    is bit-identical to no knob:
//!    programming voltage `G = g_off + (G − g_off)(1 + s·ε)` (`ProgrammingVoltage`, per device or
//!    per row driver `ct·K + k`) → programming error `G += σ_p(g_on − g_off)ξ` (`ProgrammingError`)
//!    → d2d `G(1 + σξ)` or `G·e^{σξ}` (`DeviceToDevice`), clamped at 0 S → stuck-at ON/OFF
//!    (`StuckAt`, one uniform per device) → drift `G·(t/t0)^−ν`, `ν ~ N(ν̄, σ_ν)` clamped at 0
//!    (`Drift`).
//!    Then drift to `inference_time_s` ([`drift`](crate::drift); off by default) and, with
//!    global drift compensation, one read-out gain per array.
//! 3. With IR drop on, every physical tile is solved once at full-scale input and its devices
//!    replaced by their effective conductances ([`irdrop`]).
//! 4. The effective weight of each crosspoint in *unit currents per input digit* is
//!    `q + (deviation of the effective weight)/unit` — exactly `q` when nothing deviates.

use ndarray::{Array2, ArrayView2, s};
use rayon::prelude::*;

use nacsim_core::config::Validate;
use nacsim_core::keyed::Keyed;
use nacsim_core::rng::{Purpose, Stream};

use super::{F32_EXACT, MAX_UNITS, ProgrammedLayer, RowTile, SliceAdc};
use crate::config::{
    AdcKind, AdcRange, CrossbarConfig, D2dDistribution, IrDrop, ReadNoiseModel, SignedScheme,
    VoltageErrorScope,
};
use crate::drift;
use crate::error::Error;
use crate::irdrop;
use crate::reference::{ideal_mapping, input_slices};
use crate::timing::Geometry;

/// Elements per parallel chunk of [`normals`] (also the draw's counter: changing it changes the
/// draws).
const NORMAL_CHUNK: usize = 1 << 14;

/// Draws `n` standard normals for indices `0..n` of `purpose`, in parallel chunks of
/// [`NORMAL_CHUNK`]: index `i` is element `i mod NORMAL_CHUNK` of counter `i / NORMAL_CHUNK` of
/// the stream's [`Keyed`] key, drawn by the vectorised keyed ziggurat (`Seq::fill_normals`),
/// so the draws do not depend on the thread count.
fn normals(seed: u64, purpose: Purpose, layer: u32, trial: u32, n: usize) -> Vec<f32> {
    let mut v = vec![0f32; n];
    let keyed = Keyed::of(&Stream::new(seed, purpose, layer, trial));
    v.par_chunks_mut(NORMAL_CHUNK)
        .enumerate()
        .for_each(|(i, c)| keyed.at(i as u64).fill_normals(c));
    v
}

impl ProgrammedLayer {
    /// Programs `weight` `[out, fan_in]` onto `cfg`'s arrays. `seed`, `layer` and `trial` key
    /// every static noise stream (module docs).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a config that breaks a rule, [`Error::EmptyWeight`] for a
    /// weight matrix with no rows or columns, [`Error::NonFiniteWeight`] for a NaN or infinite
    /// weight.
    pub fn program(
        cfg: &CrossbarConfig,
        weight: ArrayView2<f32>,
        seed: u64,
        layer: u32,
        trial: u32,
    ) -> Result<Self, Error> {
        cfg.validate().map_err(Error::InvalidConfig)?;
        let (out, fan_in) = weight.dim();
        if out == 0 || fan_in == 0 {
            return Err(Error::EmptyWeight { out, fan_in });
        }
        if !weight.iter().all(|w| w.is_finite())
            && let Some(((o, k), &w)) = weight.indexed_iter().find(|(_, w)| !w.is_finite())
        {
            return Err(Error::NonFiniteWeight {
                out: o,
                fan_in: k,
                value: w,
            });
        }
        let geo = Geometry::new(cfg, out, fan_in);
        let slices = input_slices(cfg);
        let map = ideal_mapping(cfg, weight);
        let q = map.q;
        let dev = cfg.devices_per_weight();
        let opa = cfg.outputs_per_array();
        let d = &cfg.device;
        let l1 = f64::from(d.levels - 1);
        let dg = (d.g_on_s - d.g_off_s) / l1;
        let (r_on, r_off) = (1.0 / d.g_on_s, 1.0 / d.g_off_s);
        let dr = (r_off - r_on) / l1;
        let g_ref = 0.5 * (d.g_on_s + d.g_off_s);

        // 1. Ideal device conductances.
        let n_main = out * fan_in * dev;
        let n_ref = if cfg.signed == SignedScheme::Reference {
            geo.col_tiles * fan_in
        } else {
            0
        };
        let mut g_ideal = vec![0.0f64; n_main + n_ref];
        let q_rows = q.as_slice().expect("ideal codes in standard layout");
        g_ideal[..n_main]
            .par_chunks_mut(fan_in * dev)
            .zip(q_rows.par_chunks(fan_in))
            .for_each(|(g_row, q_row)| {
                for (g, &qv) in g_row.chunks_exact_mut(dev).zip(q_row) {
                    match cfg.signed {
                        SignedScheme::Differential => {
                            let m = f64::from(qv.unsigned_abs());
                            let (p, n) = if qv >= 0 {
                                (d.g_off_s + m * dg, d.g_off_s)
                            } else {
                                (d.g_off_s, d.g_off_s + m * dg)
                            };
                            g[0] = p;
                            g[1] = n;
                        }
                        SignedScheme::Reference => {
                            let level = f64::from((qv + d.levels as i32 - 1) / 2);
                            g[0] = d.g_off_s + level * dg;
                        }
                        SignedScheme::Bridge => {
                            let level = f64::from((d.levels as i32 - 1 - qv) / 2);
                            let ra = r_on + level * dr;
                            let rb = r_off - level * dr;
                            // M1 = M4 = R_a, M2 = M3 = R_b.
                            g[0] = 1.0 / ra;
                            g[1] = 1.0 / rb;
                            g[2] = 1.0 / rb;
                            g[3] = 1.0 / ra;
                        }
                    }
                }
            });
        g_ideal[n_main..].fill(g_ref);

        // 2. Static perturbations.
        let row_driver = |idx: usize| -> usize {
            if idx < n_main {
                let w = idx / dev;
                (w / fan_in / opa) * fan_in + w % fan_in
            } else {
                idx - n_main
            }
        };
        let g_dev = perturb(
            cfg,
            &g_ideal,
            seed,
            layer,
            trial,
            row_driver,
            geo.col_tiles * fan_in,
        );
        // 2b. Drift to `inference_time_s` and its compensation gains (`crate::drift`).
        let (g_dev, comp) = if drift::is_active(cfg) {
            let g = drift::apply(
                cfg,
                &geo,
                n_main,
                &g_ideal,
                g_dev.clone(),
                seed,
                layer,
                trial,
            );
            let comp = drift::compensation_gains(cfg, &geo, n_main, &g_dev, &g);
            (g, comp)
        } else {
            (g_dev, None)
        };
        let mean_g_s = g_dev.iter().sum::<f64>() / g_dev.len() as f64;

        // 3. IR drop.
        let g_ir;
        let mut g_eff: &[f64] = match cfg.nonideal.ir_drop {
            IrDrop::Off => &g_dev,
            IrDrop::Lines { segment_ohm } => {
                g_ir = apply_ir_drop(cfg, &geo, &g_dev, n_main, dev, segment_ohm);
                &g_ir
            }
        };
        let g_comp: Vec<f64>;
        if let Some(gain) = comp {
            g_comp = g_eff.iter().zip(gain).map(|(g, a)| g * a).collect();
            g_eff = &g_comp;
        }

        // 4. Effective weights in units, and read-noise weights.
        let (unit_g_s, dpsi) = match cfg.signed {
            SignedScheme::Differential => (dg, 0.0),
            SignedScheme::Reference => (dg / 2.0, 0.0),
            SignedScheme::Bridge => {
                let dpsi = dr / (r_on + r_off);
                (d.g_on_s * dpsi, dpsi)
            }
        };
        // Divider ratio of a series pair; a pair with both devices at 0 S (clamped or stuck)
        // floats, read as mid-rail.
        let ratio = |a: f64, b: f64| if a + b > 0.0 { a / (a + b) } else { 0.5 };
        let sens = |a: f64, b: f64| {
            if a + b > 0.0 {
                a * b / ((a + b) * (a + b))
            } else {
                0.0
            }
        };
        let psi = |g: &[f64]| ratio(g[0], g[1]) - ratio(g[2], g[3]);
        let sigma_read = cfg.nonideal.read_noise_sigma_rel;
        // Per output row (in parallel): effective weights and read-noise weights, then
        // transposed to the arrays' [fan_in, out] layout.
        let mut w_t = Array2::<f64>::zeros((out, fan_in));
        let mut n2_t = Array2::<f32>::zeros((if sigma_read > 0.0 { out } else { 0 }, fan_in));
        let n2_rows: Vec<&mut [f32]> = if sigma_read > 0.0 {
            n2_t.as_slice_mut()
                .expect("standard layout")
                .chunks_mut(fan_in)
                .collect()
        } else {
            (0..out).map(|_| &mut [][..]).collect()
        };
        w_t.as_slice_mut()
            .expect("standard layout")
            .par_chunks_mut(fan_in)
            .zip(n2_rows)
            .enumerate()
            .for_each(|(o, (w_row, n2_row))| {
                let ct = o / opa;
                for k in 0..fan_in {
                    let base = (o * fan_in + k) * dev;
                    let a = &g_eff[base..base + dev];
                    let i = &g_ideal[base..base + dev];
                    let qv = f64::from(q_rows[o * fan_in + k]);
                    let (value, var) = match cfg.signed {
                        SignedScheme::Differential => (
                            qv + ((a[0] - i[0]) - (a[1] - i[1])) / dg,
                            (a[0] * a[0] + a[1] * a[1]) / (dg * dg),
                        ),
                        SignedScheme::Reference => {
                            let r = n_main + ct * fan_in + k;
                            let u = dg / 2.0;
                            (
                                qv + ((a[0] - i[0]) - (g_eff[r] - g_ideal[r])) / u,
                                a[0] * a[0] / (u * u),
                            )
                        }
                        SignedScheme::Bridge => {
                            let sa = sens(a[0], a[1]);
                            let sb = sens(a[2], a[3]);
                            (
                                qv + (psi(a) - psi(i)) / dpsi,
                                2.0 * (sa * sa + sb * sb) / (dpsi * dpsi),
                            )
                        }
                    };
                    w_row[k] = value;
                    if let Some(n) = n2_row.get_mut(k) {
                        *n = var as f32;
                    }
                }
            });
        // Transposed into fresh arrays: standard layout with standard strides, whatever the
        // shape (the read loops slice rows of products with these).
        let w_eff = transposed(&w_t);
        let n2 = (sigma_read > 0.0).then(|| transposed(&n2_t));
        let nref = (sigma_read > 0.0 && n_ref > 0).then(|| {
            let u = dg / 2.0;
            Array2::from_shape_fn((fan_in, geo.col_tiles), |(k, ct)| {
                let g = g_eff[n_main + ct * fan_in + k];
                (g * g / (u * u)) as f32
            })
        });

        // 5. Precision and ADC ranges from the worst case of the ideal codes.
        let q_max = f64::from(d.levels - 1);
        let rows_t = cfg.array_rows.min(fan_in) as f64;
        let max_digit = slices.iter().map(|s| s.max_abs).max().unwrap_or(1);
        let use_f64 = rows_t * q_max * f64::from(max_digit) >= F32_EXACT;
        // Max over tiles and columns of Σ|q| and of Σq² (integer maxima: any order gives the
        // same result, so the columns are scanned in parallel).
        let (worst_abs, worst_sq) = q_rows
            .par_chunks_exact(fan_in)
            .map(|q_row| {
                q_row
                    .chunks(cfg.array_rows)
                    .map(|q_tile| {
                        let s: i64 = q_tile.iter().map(|&v| i64::from(v.abs())).sum();
                        let s2: i64 = q_tile.iter().map(|&v| i64::from(v).pow(2)).sum();
                        (s, s2)
                    })
                    .fold((0i64, 0i64), |(a, b), (s, s2)| (a.max(s), b.max(s2)))
            })
            .reduce(|| (0, 0), |(a, b), (s, s2)| (a.max(s), b.max(s2)));
        // A 1-bit ADC is a comparator with a dead zone: codes −1, 0, 1.
        let cmax = ((1i64 << (cfg.adc.bits - 1)) - 1).max(1);
        let ideal_adc = cfg.adc.kind == AdcKind::Ideal;
        let rail = cfg.tia.v_sat_v / cfg.adc.v_full_scale_v;
        let adc = slices
            .iter()
            .map(|s| {
                let worst = (worst_abs * i64::from(s.max_abs)) as f64;
                let range = match cfg.adc.range {
                    AdcRange::WorstCase { frac } => frac * worst,
                    AdcRange::Statistical { sigmas } => {
                        (sigmas * (worst_sq as f64).sqrt() * f64::from(s.max_abs) / 3f64.sqrt())
                            .min(worst)
                    }
                };
                if ideal_adc {
                    // The ideal ADC never clips: its full scale is the worst case.
                    let fs = worst.max(1.0);
                    SliceAdc {
                        lsb_exp: 0,
                        full_scale_units: fs,
                        sat_units: rail * fs,
                    }
                } else {
                    let mut e = 0u32;
                    while ((cmax as f64) * 2f64.powi(e as i32)) < range
                        && (cmax as f64) * 2f64.powi(e as i32 + 1) <= MAX_UNITS
                    {
                        e += 1;
                    }
                    let fs = cmax as f64 * 2f64.powi(e as i32);
                    SliceAdc {
                        lsb_exp: e,
                        full_scale_units: fs,
                        sat_units: rail * fs,
                    }
                }
            })
            .collect();

        let before_adc = cfg.nonideal.read_noise_model == ReadNoiseModel::BeforeAdc;
        let tiles = (0..geo.row_tiles)
            .into_par_iter()
            .map(|t| {
                let start = t * cfg.array_rows;
                let len = cfg.array_rows.min(fan_in - start);
                let w = w_eff.slice(s![start..start + len, ..]);
                RowTile {
                    start,
                    len,
                    g32: w.mapv(|v| v as f32),
                    g64: use_f64.then(|| w.to_owned()),
                    n2: n2
                        .as_ref()
                        .map(|n| n.slice(s![start..start + len, ..]).to_owned()),
                    nref: nref
                        .as_ref()
                        .map(|n| n.slice(s![start..start + len, ..]).to_owned()),
                }
            })
            .collect();
        let read_noise = (sigma_read > 0.0).then(|| {
            (
                sigma_read,
                Keyed::of(&Stream::new(seed, Purpose::ReadNoise, layer, trial)),
            )
        });
        Ok(ProgrammedLayer {
            cfg: cfg.clone(),
            geo,
            v_unit_v: cfg.dac.v_read_v / f64::from(max_digit),
            slices,
            q,
            out_w_scale: map.out_w_scale,
            g_dev,
            tiles,
            use_f64,
            adc,
            adc_max: (!ideal_adc).then_some(cmax),
            read_noise,
            n2_full: n2.filter(|_| !before_adc),
            nref_full: nref.filter(|_| !before_adc),
            mean_g_s,
            unit_g_s,
        })
    }
}

/// `a` transposed into a fresh standard-layout array (the read loops slice rows of products
/// with it), its rows filled in parallel: each element is copied, so the result does not
/// depend on the thread count.
fn transposed<T: Copy + Send + Sync + Default>(a: &Array2<T>) -> Array2<T> {
    let (rows, cols) = a.dim();
    let mut t = Array2::<T>::default((cols, rows));
    if rows == 0 || cols == 0 {
        return t;
    }
    let src = a.as_slice().expect("standard layout");
    // Blocks of 64 output rows: each reads a 64-column strip of every source row.
    const B: usize = 64;
    t.as_slice_mut()
        .expect("standard layout")
        .par_chunks_mut(B * rows)
        .enumerate()
        .for_each(|(b, block)| {
            let c0 = b * B;
            let n = block.len() / rows;
            for (r, src_row) in src.chunks_exact(cols).enumerate() {
                for (j, &v) in src_row[c0..c0 + n].iter().enumerate() {
                    block[j * rows + r] = v;
                }
            }
        });
    t
}

/// The static perturbation pipeline of the module docs, over all devices.
fn perturb(
    cfg: &CrossbarConfig,
    g_ideal: &[f64],
    seed: u64,
    layer: u32,
    trial: u32,
    row_driver: impl Fn(usize) -> usize + Sync,
    n_drivers: usize,
) -> Vec<f64> {
    let ni = &cfg.nonideal;
    let d = &cfg.device;
    let n = g_ideal.len();
    let mut g = g_ideal.to_vec();
    if ni.programming_voltage_sigma_rel > 0.0 {
        let eps = match ni.programming_voltage_scope {
            VoltageErrorScope::Device => {
                normals(seed, Purpose::ProgrammingVoltage, layer, trial, n)
            }
            VoltageErrorScope::RowDriver => {
                let per = normals(seed, Purpose::ProgrammingVoltage, layer, trial, n_drivers);
                (0..n).into_par_iter().map(|i| per[row_driver(i)]).collect()
            }
        };
        let s = ni.programming_voltage_sensitivity * ni.programming_voltage_sigma_rel;
        g.par_iter_mut().zip(eps).for_each(|(g, e)| {
            *g = d.g_off_s + (*g - d.g_off_s) * (1.0 + s * f64::from(e));
        });
    }
    if ni.programming_sigma_rel > 0.0 {
        let sd = ni.programming_sigma_rel * (d.g_on_s - d.g_off_s);
        g.par_iter_mut()
            .zip(normals(seed, Purpose::ProgrammingError, layer, trial, n))
            .for_each(|(g, e)| *g += sd * f64::from(e));
    }
    let clamp = ni.programming_voltage_sigma_rel > 0.0
        || ni.programming_sigma_rel > 0.0
        || ni.d2d_sigma_rel > 0.0;
    if ni.d2d_sigma_rel > 0.0 {
        let sigma = ni.d2d_sigma_rel;
        // The d2d factor and the clamp at 0 S in one pass (each element on its own: the same
        // values as two passes).
        g.par_iter_mut()
            .zip(normals(seed, Purpose::DeviceToDevice, layer, trial, n))
            .for_each(|(g, e)| {
                *g *= match ni.d2d_distribution {
                    D2dDistribution::Normal => 1.0 + sigma * f64::from(e),
                    D2dDistribution::LogNormal => (sigma * f64::from(e)).exp(),
                };
                *g = g.max(0.0);
            });
    } else if clamp {
        g.par_iter_mut().for_each(|g| *g = g.max(0.0));
    }
    if ni.stuck_on_frac > 0.0 || ni.stuck_off_frac > 0.0 {
        let mut u = vec![0f64; n];
        Stream::new(seed, Purpose::StuckAt, layer, trial).fill_uniform_at(&mut u, 0);
        g.par_iter_mut().zip(u).for_each(|(g, u)| {
            if u < ni.stuck_on_frac {
                *g = d.g_on_s;
            } else if u < ni.stuck_on_frac + ni.stuck_off_frac {
                *g = d.g_off_s;
            }
        });
    }
    if ni.drift_nu > 0.0 || ni.drift_nu_sigma > 0.0 {
        let ratio = ni.drift_time_s / ni.drift_t0_s;
        let z = if ni.drift_nu_sigma > 0.0 {
            normals(seed, Purpose::Drift, layer, trial, n)
        } else {
            vec![0.0; n]
        };
        g.par_iter_mut().zip(z).for_each(|(g, z)| {
            let nu = (ni.drift_nu + ni.drift_nu_sigma * f64::from(z)).max(0.0);
            *g *= ratio.powf(-nu);
        });
    }
    g
}

/// Replaces every device's conductance by its IR-drop effective value, per physical tile.
fn apply_ir_drop(
    cfg: &CrossbarConfig,
    geo: &Geometry,
    g_dev: &[f64],
    n_main: usize,
    dev: usize,
    segment_ohm: f64,
) -> Vec<f64> {
    let mut g_eff = g_dev.to_vec();
    let fan_in = geo.fan_in;
    let opa = cfg.outputs_per_array();
    let reference = cfg.signed == SignedScheme::Reference;
    let tiles: Vec<(usize, usize)> = (0..geo.row_tiles)
        .flat_map(|rt| (0..geo.col_tiles).map(move |ct| (rt, ct)))
        .collect();
    // Each tile is independent: solve in parallel, write back in order.
    let solved: Vec<(usize, usize, Array2<f64>)> = tiles
        .par_iter()
        .map(|&(rt, ct)| {
            let k0 = rt * cfg.array_rows;
            let rows = cfg.array_rows.min(fan_in - k0);
            let o0 = ct * opa;
            let outs = opa.min(geo.outputs - o0);
            let cols = outs * dev + usize::from(reference);
            let g = Array2::from_shape_fn((rows, cols), |(i, c)| {
                if reference && c == cols - 1 {
                    g_dev[n_main + ct * fan_in + k0 + i]
                } else {
                    let (lo, d) = (c / dev, c % dev);
                    g_dev[((o0 + lo) * fan_in + k0 + i) * dev + d]
                }
            });
            (
                rt,
                ct,
                irdrop::effective_conductance(g.view(), cfg.dac.v_read_v, segment_ohm),
            )
        })
        .collect();
    for (rt, ct, eff) in solved {
        let k0 = rt * cfg.array_rows;
        let o0 = ct * opa;
        let cols = eff.ncols();
        for ((i, c), &v) in eff.indexed_iter() {
            if reference && c == cols - 1 {
                g_eff[n_main + ct * fan_in + k0 + i] = v;
            } else {
                let (lo, d) = (c / dev, c % dev);
                g_eff[((o0 + lo) * fan_in + k0 + i) * dev + d] = v;
            }
        }
    }
    g_eff
}
