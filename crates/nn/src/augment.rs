//! Training-data augmentation: random translation (pad-and-crop with zero fill), horizontal
//! flip and random erasing, applied to each training batch by the training loop
//! ([`train`](crate::train)).
//!
//! Every draw comes from the keyed stream `(seed, Purpose::Augment, layer 0, trial = epoch)` at
//! the image's index in the training set (draws `3·i`, `3·i + 1`, `3·i + 2`: vertical shift,
//! horizontal shift, flip), so an image gets the same transform in a given epoch whatever the
//! batch it falls in, the batch order or the thread count. The test set is never augmented.
//!
//! The transform of one image (channels × height × width, pixels in `[0, 1]`): first the
//! optional left–right mirror, then the translation by `(dy, dx)` pixels — output pixel
//! `(y, x)` is input pixel `(y − dy, x − dx)`, zero where that falls outside the image. This
//! equals padding by `shift` zeros on every side and cropping a window at a random offset (the
//! usual "pad-and-crop" of CIFAR training, He et al. 2016 §4.2), with `dy, dx` uniform on
//! `−shift..=shift` and the mirror with probability 0.5.
//!
//! Then, with probability `erase`, random erasing (Zhong et al., "Random Erasing Data
//! Augmentation", AAAI 2020, Algorithm 1, with the paper's defaults): a rectangle of area
//! `S_e ~ U(0.02, 0.4)·H·W` and aspect ratio `r_e ~ U(0.3, 1/0.3)` (height `√(S_e·r_e)`,
//! width `√(S_e/r_e)`, rounded) at a uniform position is filled, in every channel, with
//! uniform noise on `[0, 1)`. A draw that does not fit inside the image is redrawn, at most
//! [`ERASE_ATTEMPTS`] times (torchvision's `RandomErasing` limit; the paper loops until one
//! fits). Its draws come from two more keyed streams of the same seed and epoch, so turning it
//! on leaves the shift and mirror draws unchanged: layer 1 holds the geometry (draws `64·i`
//! onward for image `i`: the coin, then four per attempt), layer 2 the fill (draw
//! `i·len + p` for value `p` of the image, `len` its channels × height × width).

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use nacsim_core::rng::{Purpose, Stream};

use crate::network::Shape;

/// Largest translation a training config accepts, in pixels (beyond it a 28×28 image is
/// mostly padding).
pub const MAX_SHIFT: usize = 8;

/// Rectangles drawn per image before random erasing gives up on that image (torchvision's
/// `RandomErasing` uses 10).
pub const ERASE_ATTEMPTS: u64 = 10;

/// Area of the erased rectangle as a fraction of the image, smallest and largest (`s_l`, `s_h`
/// of Zhong et al. 2020).
pub const ERASE_AREA: (f64, f64) = (0.02, 0.4);

/// Smallest aspect ratio (height / width) of the erased rectangle (`r_1` of Zhong et al.
/// 2020); the largest is its inverse.
pub const ERASE_MIN_ASPECT: f64 = 0.3;

fn is_zero(p: &f64) -> bool {
    *p == 0.0
}

/// Augmentation of the training images (`train.augment` of a training config).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// Largest translation along each axis, in pixels: `dy` and `dx` are drawn uniformly from
    /// `−shift..=shift`, with zero fill (0 = no translation; at most [`MAX_SHIFT`] and less
    /// than the image's height and width).
    #[serde(default)]
    pub shift: usize,
    /// Mirror each image left–right with probability 0.5 (default false).
    #[serde(default)]
    pub hflip: bool,
    /// Probability of random erasing per image, in `[0, 1]` (default 0 = off; Zhong et al.
    /// 2020 use 0.5): a random rectangle of 2–40 % of the image filled with uniform noise.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub erase: f64,
}

/// A rectangle of an image to fill with noise: rows `y..y + h`, columns `x..x + w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Erase {
    /// Top row.
    pub y: usize,
    /// Left column.
    pub x: usize,
    /// Height in rows (at least 1).
    pub h: usize,
    /// Width in columns (at least 1).
    pub w: usize,
}

/// The transform drawn for one image: a translation and a mirror.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transform {
    /// Vertical shift in pixels (positive moves the content down).
    pub dy: isize,
    /// Horizontal shift in pixels (positive moves the content right).
    pub dx: isize,
    /// Mirror left–right before the shift.
    pub flip: bool,
}

impl Augment {
    /// The transform of training image `image` in epoch `epoch` (0-based) of a run seeded
    /// `seed`.
    pub fn draw(&self, seed: u64, epoch: usize, image: usize) -> Transform {
        let s = Stream::new(seed, Purpose::Augment, 0, epoch as u32);
        let i = 3 * image as u64;
        let span = 2 * self.shift + 1;
        let offset =
            |u: f64| ((u * span as f64) as usize).min(span - 1) as isize - self.shift as isize;
        Transform {
            dy: offset(s.uniform(i)),
            dx: offset(s.uniform(i + 1)),
            flip: self.hflip && s.uniform(i + 2) < 0.5,
        }
    }

    /// The rectangle random erasing fills in training image `image` of epoch `epoch`, for
    /// images of `height × width` pixels; `None` when the coin says no (probability
    /// `1 − erase`) or no drawn rectangle fits in [`ERASE_ATTEMPTS`] tries.
    pub fn draw_erase(
        &self,
        seed: u64,
        epoch: usize,
        image: usize,
        height: usize,
        width: usize,
    ) -> Option<Erase> {
        if self.erase <= 0.0 {
            return None;
        }
        let s = Stream::new(seed, Purpose::Augment, 1, epoch as u32);
        let base = 64 * image as u64;
        if s.uniform(base) >= self.erase {
            return None;
        }
        let area = (height * width) as f64;
        let (lo, hi) = ERASE_AREA;
        let (r_lo, r_hi) = (ERASE_MIN_ASPECT.ln(), (1.0 / ERASE_MIN_ASPECT).ln());
        (0..ERASE_ATTEMPTS).find_map(|k| {
            let d = base + 1 + 4 * k;
            let target = area * (lo + (hi - lo) * s.uniform(d));
            // Log-uniform aspect, as torchvision draws it, so r and 1/r are equally likely.
            let aspect = (r_lo + (r_hi - r_lo) * s.uniform(d + 1)).exp();
            let h = (target * aspect).sqrt().round() as usize;
            let w = (target / aspect).sqrt().round() as usize;
            if h == 0 || w == 0 || h >= height || w >= width {
                return None;
            }
            let pick = |u: f64, span: usize| ((u * span as f64) as usize).min(span - 1);
            Some(Erase {
                y: pick(s.uniform(d + 2), height - h + 1),
                x: pick(s.uniform(d + 3), width - w + 1),
                h,
                w,
            })
        })
    }

    /// Augments a training batch in place: row `r` of `x` is image `indices[r]` of the
    /// training set, laid out as `shape` (channels, then rows, then columns).
    ///
    /// # Panics
    /// If `x` has other than `indices.len()` rows or `shape.len()` columns (a caller bug).
    pub fn apply_batch(
        &self,
        x: &mut Array2<f32>,
        indices: &[usize],
        shape: Shape,
        seed: u64,
        epoch: usize,
    ) {
        assert_eq!(x.nrows(), indices.len(), "one row per image");
        assert_eq!(x.ncols(), shape.len(), "rows of the image's shape");
        let mut scratch = vec![0.0f32; shape.len()];
        let fill = Stream::new(seed, Purpose::Augment, 2, epoch as u32);
        for (mut row, &image) in x.rows_mut().into_iter().zip(indices) {
            let t = self.draw(seed, epoch, image);
            let e = self.draw_erase(seed, epoch, image, shape.h, shape.w);
            let mut apply = |pixels: &mut [f32]| {
                transform(pixels, &mut scratch, shape, t);
                if let Some(e) = e {
                    erase(pixels, shape, e, |p| {
                        fill.uniform((image * shape.len() + p) as u64) as f32
                    });
                }
            };
            if let Some(pixels) = row.as_slice_mut() {
                apply(pixels);
            } else {
                let mut owned = row.to_vec();
                apply(&mut owned);
                row.iter_mut().zip(owned).for_each(|(d, s)| *d = s);
            }
        }
    }
}

/// Fills rectangle `e` of every channel of one image `pixels` (laid out as `shape`) with
/// `noise(p)`, `p` the value's offset in the image.
pub fn erase(pixels: &mut [f32], shape: Shape, e: Erase, noise: impl Fn(usize) -> f32) {
    let plane = shape.h * shape.w;
    for c in 0..shape.c {
        for y in e.y..e.y + e.h {
            let start = c * plane + y * shape.w + e.x;
            for (p, v) in pixels[start..start + e.w].iter_mut().enumerate() {
                *v = noise(start + p);
            }
        }
    }
}

/// Applies `t` to one image `pixels` (laid out as `shape`) in place; `scratch` holds a copy
/// (at least `shape.len()` values).
pub fn transform(pixels: &mut [f32], scratch: &mut [f32], shape: Shape, t: Transform) {
    if t.dy == 0 && t.dx == 0 && !t.flip {
        return;
    }
    let (h, w) = (shape.h as isize, shape.w as isize);
    let plane = shape.h * shape.w;
    scratch[..pixels.len()].copy_from_slice(pixels);
    for c in 0..shape.c {
        let src = &scratch[c * plane..(c + 1) * plane];
        let dst = &mut pixels[c * plane..(c + 1) * plane];
        for y in 0..h {
            let sy = y - t.dy;
            for x in 0..w {
                let sx = x - t.dx;
                dst[(y * w + x) as usize] = if (0..h).contains(&sy) && (0..w).contains(&sx) {
                    let sx = if t.flip { w - 1 - sx } else { sx };
                    src[(sy * w + sx) as usize]
                } else {
                    0.0
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;

    fn batch() -> (Dataset, Vec<usize>, Array2<f32>) {
        let data = Dataset::bundled_sample().limit(96);
        let idx: Vec<usize> = (0..96).rev().collect();
        let x = data.batch(&idx);
        (data, idx, x)
    }

    #[test]
    fn no_shift_and_no_flip_is_the_identity() {
        let (data, idx, x) = batch();
        let mut y = x.clone();
        let a = Augment {
            shift: 0,
            hflip: false,
            erase: 0.0,
        };
        a.apply_batch(&mut y, &idx, data.shape, 7, 3);
        assert_eq!(x, y);
    }

    #[test]
    fn a_flipped_image_flipped_back_is_the_original() {
        let (data, _, x) = batch();
        let mut scratch = vec![0.0; data.shape.len()];
        let flip = Transform {
            dy: 0,
            dx: 0,
            flip: true,
        };
        for row in x.rows() {
            let orig = row.to_vec();
            let mut p = orig.clone();
            transform(&mut p, &mut scratch, data.shape, flip);
            assert_ne!(
                p, orig,
                "a Fashion-MNIST image is not mirror-symmetric to the bit"
            );
            transform(&mut p, &mut scratch, data.shape, flip);
            assert_eq!(p, orig);
        }
    }

    #[test]
    fn a_shift_moves_pixels_and_fills_zeros() {
        let shape = Shape { c: 2, h: 3, w: 4 };
        let orig: Vec<f32> = (1..=24).map(|v| v as f32).collect();
        let mut p = orig.clone();
        let mut scratch = vec![0.0; 24];
        let t = Transform {
            dy: 1,
            dx: -1,
            flip: false,
        };
        transform(&mut p, &mut scratch, shape, t);
        // Channel 0: row 0 is fill, row 1 is input row 0 moved left by one, last column fill.
        assert_eq!(&p[..12], &[0., 0., 0., 0., 2., 3., 4., 0., 6., 7., 8., 0.]);
        assert_eq!(&p[12..16], &[0.0; 4]);
        assert_eq!(&p[16..20], &[14., 15., 16., 0.]);
        // The flip mirrors before the shift: (y, x) reads (y - dy, w - 1 - (x - dx)).
        let mut q = orig.clone();
        transform(
            &mut q,
            &mut scratch,
            shape,
            Transform {
                dy: 0,
                dx: 1,
                flip: true,
            },
        );
        assert_eq!(&q[..4], &[0., 4., 3., 2.]);
    }

    #[test]
    fn draws_cover_the_range_and_flip_about_half() {
        let a = Augment {
            shift: 2,
            hflip: true,
            erase: 0.0,
        };
        let ts: Vec<Transform> = (0..4000).map(|i| a.draw(1, 0, i)).collect();
        for v in -2..=2 {
            let n = ts.iter().filter(|t| t.dx == v).count();
            assert!((650..950).contains(&n), "dx = {v}: {n} of 4000");
            let n = ts.iter().filter(|t| t.dy == v).count();
            assert!((650..950).contains(&n), "dy = {v}: {n} of 4000");
        }
        let flips = ts.iter().filter(|t| t.flip).count();
        assert!((1850..2150).contains(&flips), "{flips}");
        // Another epoch draws other transforms.
        assert_ne!(
            ts[..50],
            (0..50).map(|i| a.draw(1, 1, i)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_augmented_batch_is_the_same_for_any_thread_count_and_batch_split() {
        let (data, idx, x) = batch();
        let a = Augment {
            shift: 2,
            hflip: true,
            erase: 0.5,
        };
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut y = x.clone();
                a.apply_batch(&mut y, &idx, data.shape, 5, 2);
                y
            })
        };
        let one = run(1);
        assert_eq!(one, run(3));
        assert_ne!(one, x);
        // Image by image in other batches: the same rows.
        for (r, &i) in idx.iter().enumerate() {
            let mut single = data.batch(&[i]);
            a.apply_batch(&mut single, &[i], data.shape, 5, 2);
            assert_eq!(single.row(0), one.row(r));
        }
    }

    #[test]
    fn erasing_draws_half_the_images_inside_the_bounds_and_the_paper_area() {
        let a = Augment {
            shift: 0,
            hflip: false,
            erase: 0.5,
        };
        let es: Vec<Option<Erase>> = (0..4000).map(|i| a.draw_erase(3, 1, i, 28, 28)).collect();
        let n = es.iter().flatten().count();
        // The coin is 0.5; a few coins that said yes find no fitting rectangle.
        assert!((1800..2100).contains(&n), "{n} of 4000 erased");
        let mut fracs = vec![];
        for e in es.iter().flatten() {
            assert!(
                e.h >= 1 && e.w >= 1 && e.y + e.h <= 28 && e.x + e.w <= 28,
                "{e:?}"
            );
            fracs.push((e.h * e.w) as f64 / 784.0);
        }
        let (lo, hi) = fracs
            .iter()
            .fold((1f64, 0f64), |(l, h), &f| (l.min(f), h.max(f)));
        // Rounding the sides moves the area a little past the paper's 0.02..0.4.
        assert!(
            lo < 0.03 && hi > 0.35 && lo > 0.005 && hi < 0.5,
            "{lo} {hi}"
        );
        // Tall and wide rectangles both occur.
        assert!(es.iter().flatten().any(|e| e.h > 2 * e.w));
        assert!(es.iter().flatten().any(|e| e.w > 2 * e.h));
        // Off draws nothing; always draws nearly always.
        let off = Augment { erase: 0.0, ..a };
        assert!((0..100).all(|i| off.draw_erase(3, 1, i, 28, 28).is_none()));
        let on = Augment { erase: 1.0, ..a };
        let m = (0..1000)
            .filter(|&i| on.draw_erase(3, 1, i, 28, 28).is_some())
            .count();
        assert!(m > 950, "{m}");
    }

    #[test]
    fn erasing_fills_only_its_rectangle_with_noise_and_keeps_the_shift_draws() {
        let (data, idx, x) = batch();
        let plain = Augment {
            shift: 1,
            hflip: true,
            erase: 0.0,
        };
        let erased = Augment {
            erase: 1.0,
            ..plain
        };
        let mut y0 = x.clone();
        plain.apply_batch(&mut y0, &idx, data.shape, 9, 4);
        let mut y1 = x.clone();
        erased.apply_batch(&mut y1, &idx, data.shape, 9, 4);
        let mut changed = 0;
        for (r, &i) in idx.iter().enumerate() {
            assert_eq!(plain.draw(9, 4, i), erased.draw(9, 4, i));
            let e = erased.draw_erase(9, 4, i, 28, 28);
            for y in 0..28 {
                for xx in 0..28 {
                    let (a, b) = (y0[[r, y * 28 + xx]], y1[[r, y * 28 + xx]]);
                    let inside = e.is_some_and(|e| {
                        (e.y..e.y + e.h).contains(&y) && (e.x..e.x + e.w).contains(&xx)
                    });
                    if inside {
                        assert!((0.0..1.0).contains(&b), "{b}");
                        changed += usize::from(a != b);
                    } else {
                        assert_eq!(a, b, "image {i} pixel ({y}, {xx}) outside {e:?}");
                    }
                }
            }
        }
        assert!(changed > 96 * 10, "{changed} pixels replaced");
    }
}
