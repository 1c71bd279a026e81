//! Training-data augmentation: random translation (pad-and-crop with zero fill) and horizontal
//! flip, applied to each training batch by the training loop ([`train`](crate::train)).
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

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use nacsim_core::rng::{Purpose, Stream};

use crate::network::Shape;

/// Largest translation a training config accepts, in pixels (beyond it a 28×28 image is
/// mostly padding).
pub const MAX_SHIFT: usize = 8;

/// Augmentation of the training images (`train.augment` of a training config).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
        for (mut row, &image) in x.rows_mut().into_iter().zip(indices) {
            let t = self.draw(seed, epoch, image);
            if let Some(pixels) = row.as_slice_mut() {
                transform(pixels, &mut scratch, shape, t);
            } else {
                let mut owned = row.to_vec();
                transform(&mut owned, &mut scratch, shape, t);
                row.iter_mut().zip(owned).for_each(|(d, s)| *d = s);
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
}
