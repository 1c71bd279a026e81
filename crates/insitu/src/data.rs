//! Dataset options of in-situ runs: area resize and binarization (NeuroSim MLP V3.0 trains on
//! 20×20 binarized MNIST; we build the same from 28×28 images).

use nacsim_nn::data::Dataset;
use nacsim_nn::network::Shape;

use crate::config::DataOptions;

/// Resizes every image of `ds` to `h`×`w` by area averaging: each output pixel is the mean of
/// the input over its footprint (`H/h` × `W/w` input pixels, fractional pixels weighted by their
/// covered area), rounded to the nearest byte. Channels are resized independently.
pub fn resize_area(ds: &Dataset, h: usize, w: usize) -> Dataset {
    let (c, ih, iw) = (ds.shape.c, ds.shape.h, ds.shape.w);
    let wy = weights(ih, h);
    let wx = weights(iw, w);
    let scale = (h * w) as f64 / (ih * iw) as f64;
    let out_len = c * h * w;
    let mut pixels = Vec::with_capacity(ds.len() * out_len);
    for i in 0..ds.len() {
        let img = ds.image(i);
        for ch in 0..c {
            let plane = &img[ch * ih * iw..(ch + 1) * ih * iw];
            for wy_row in &wy {
                for wx_col in &wx {
                    let mut sum = 0.0f64;
                    for &(y, fy) in wy_row {
                        for &(x, fx) in wx_col {
                            sum += fy * fx * f64::from(plane[y * iw + x]);
                        }
                    }
                    pixels.push((sum * scale).round().clamp(0.0, 255.0) as u8);
                }
            }
        }
    }
    Dataset {
        name: format!("{} ({h}x{w} area)", ds.name),
        shape: Shape::new(c, h, w),
        pixels,
        labels: ds.labels.clone(),
        classes: ds.classes,
    }
}

/// For each of `m` output cells over `n` input cells: the input cells it covers and the covered
/// length of each (in input pixels).
fn weights(n: usize, m: usize) -> Vec<Vec<(usize, f64)>> {
    let r = n as f64 / m as f64;
    (0..m)
        .map(|o| {
            let (a, b) = (o as f64 * r, (o + 1) as f64 * r);
            let mut v = Vec::new();
            let mut i = a.floor() as usize;
            while (i as f64) < b && i < n {
                let lo = a.max(i as f64);
                let hi = b.min((i + 1) as f64);
                if hi > lo {
                    v.push((i, hi - lo));
                }
                i += 1;
            }
            v
        })
        .collect()
}

/// Pixels at or above `threshold·255` become 255, the others 0.
pub fn binarize(ds: &mut Dataset, threshold: f64) {
    let t = threshold * 255.0;
    for p in &mut ds.pixels {
        *p = if f64::from(*p) >= t { 255 } else { 0 };
    }
}

/// Applies `opts` to a dataset: resize, then binarize; `train_images` is applied by
/// [`apply_train`].
pub fn apply(ds: Dataset, opts: &DataOptions) -> Dataset {
    let mut ds = match opts.resize {
        Some((h, w)) if (h, w) != (ds.shape.h, ds.shape.w) => resize_area(&ds, h, w),
        _ => ds,
    };
    if let Some(t) = opts.binarize {
        binarize(&mut ds, t);
    }
    ds
}

/// [`apply`] plus the `train_images` limit, for the training split.
pub fn apply_train(ds: Dataset, opts: &DataOptions) -> Dataset {
    let mut ds = apply(ds, opts);
    if opts.train_images > 0 {
        ds.truncate(opts.train_images);
    }
    ds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_resize_keeps_the_mean_and_sizes() {
        let ds = Dataset::bundled_sample().limit(5);
        let r = resize_area(&ds, 20, 20);
        assert_eq!((r.shape.h, r.shape.w, r.len()), (20, 20, 5));
        for i in 0..5 {
            let m0 = ds.image(i).iter().map(|&p| f64::from(p)).sum::<f64>() / 784.0;
            let m1 = r.image(i).iter().map(|&p| f64::from(p)).sum::<f64>() / 400.0;
            assert!((m0 - m1).abs() < 0.5, "{m0} vs {m1}");
        }
        // The footprints tile the input exactly.
        let w = weights(28, 20);
        let total: f64 = w.iter().flatten().map(|&(_, f)| f).sum();
        assert!((total - 28.0).abs() < 1e-12);
        let mut b = r.clone();
        binarize(&mut b, 0.5);
        assert!(b.pixels.iter().all(|&p| p == 0 || p == 255));
        assert!(b.pixels.contains(&255));
    }
}
