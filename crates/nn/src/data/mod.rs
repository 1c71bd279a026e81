//! IDX datasets (MNIST, Fashion-MNIST): loading, batching, and the bundled sample.
//!
//! The [IDX format](http://yann.lecun.com/exdb/mnist/) stores a big-endian header (a magic number
//! that encodes element type and rank, then one `u32` per dimension) followed by the raw bytes.
//! Images are magic 2051 (`u8`, rank 3: `n × rows × cols`) and labels are magic 2049 (`u8`,
//! rank 1: `n`). Files may be plain or gzip-compressed; gzip is recognised by its magic bytes
//! `1f 8b`, whatever the file is called.
//!
//! [`Dataset::load_dir`] looks in a folder for `{split}-images-idx3-ubyte[.gz]` and
//! `{split}-labels-idx1-ubyte[.gz]`, where `split` is `train` or `t10k` ([`Split`]).
//! [`Dataset::bundled_sample`] decodes the first 2,000 Fashion-MNIST test images and
//! [`Dataset::bundled_calibration`] the first 1,000 training images, which are embedded in the
//! library (see `crates/nn/data/fmnist-sample/README.md` for provenance and the MIT licence of
//! Fashion-MNIST), so examples run on a fresh clone with no dataset installed and calibrate
//! their int8 scales on training images, never on the images they are evaluated on.
//!
//! Every failure is a [`DataError`] whose message names the file, the problem and the fix.
//!
//! | module | job |
//! |---|---|
//! | this one | [`Dataset`] (batching, subsets, the bundled and synthetic sets), [`Split`] |
//! | `error` | [`DataError`] and its messages |
//! | `idx` | reading and checking IDX files (plain or gzip), whole or their first items |

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use flate2::bufread::MultiGzDecoder;
use ndarray::Array2;

use crate::network::Shape;

mod error;
mod idx;
#[cfg(test)]
mod tests;

pub use error::DataError;
use idx::{Kind, assemble, read_idx, read_idx_file, read_idx_file_prefix};

/// Where the Debian package `dataset-fashion-mnist` installs Fashion-MNIST.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Names of the ten Fashion-MNIST classes, indexed by label.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Number of classes assumed by [`Dataset::load_dir`] and [`Dataset::load_files`] (MNIST and
/// Fashion-MNIST both have ten).
pub const DEFAULT_CLASSES: usize = 10;

/// Number of images in [`Dataset::bundled_sample`].
pub const BUNDLED_SAMPLE_LEN: usize = 2000;

/// Number of images in [`Dataset::bundled_calibration`].
pub const BUNDLED_CALIBRATION_LEN: usize = 1000;

/// IDX magic number of a `u8` rank-3 tensor (images).
pub const IMAGES_MAGIC: u32 = 2051;
/// IDX magic number of a `u8` rank-1 tensor (labels).
pub const LABELS_MAGIC: u32 = 2049;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const BUNDLED_IMAGES: &[u8] = include_bytes!("../../data/fmnist-sample/t10k-images-idx3-ubyte.gz");
const BUNDLED_LABELS: &[u8] = include_bytes!("../../data/fmnist-sample/t10k-labels-idx1-ubyte.gz");
const BUNDLED_TRAIN_IMAGES: &[u8] =
    include_bytes!("../../data/fmnist-sample/train-images-idx3-ubyte.gz");
const BUNDLED_TRAIN_LABELS: &[u8] =
    include_bytes!("../../data/fmnist-sample/train-labels-idx1-ubyte.gz");
const BUNDLED_DIR: &str = "<bundled>/fmnist-sample";
/// Which half of an IDX dataset to load. Serializes as `"train"` / `"test"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The training set, files `train-*`.
    Train,
    /// The test set, files `t10k-*`.
    Test,
}

impl Split {
    /// File-name prefix of the split: `"train"` or `"t10k"`.
    pub const fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }

    /// File names (plain first, then gzip) that [`Dataset::load_dir`] accepts for the images.
    pub fn image_names(self) -> [String; 2] {
        let base = format!("{}-images-idx3-ubyte", self.prefix());
        [base.clone(), base + ".gz"]
    }

    /// File names (plain first, then gzip) that [`Dataset::load_dir`] accepts for the labels.
    pub fn label_names(self) -> [String; 2] {
        let base = format!("{}-labels-idx1-ubyte", self.prefix());
        [base.clone(), base + ".gz"]
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

impl FromStr for Split {
    type Err = String;

    /// Parses `train` or `test` (also `t10k`), ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "test" | "t10k" => Ok(Split::Test),
            _ => Err(format!("unknown split `{s}`: expected `train` or `test`")),
        }
    }
}

/// A labelled image dataset held in memory as bytes.
///
/// `pixels` holds `len() × shape.len()` bytes, one image after the other, each laid out
/// channel-major then row-major (`c·H·W + y·W + x`, for IDX `c = 1`).
#[derive(Clone, PartialEq, Eq)]
pub struct Dataset {
    /// Human-readable name, e.g. `"fashion-mnist/t10k"`.
    pub name: String,
    /// Shape of one image (IDX images are `(1, rows, cols)`).
    pub shape: Shape,
    /// Pixel bytes, `len() × shape.len()`, image after image.
    pub pixels: Vec<u8>,
    /// One label per image, each below `classes`.
    pub labels: Vec<u8>,
    /// Number of classes.
    pub classes: usize,
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("name", &self.name)
            .field("shape", &self.shape)
            .field("len", &self.len())
            .field("classes", &self.classes)
            .finish_non_exhaustive()
    }
}

impl Dataset {
    /// Loads split `split` from folder `dir`, which must hold
    /// `{split}-images-idx3-ubyte[.gz]` and `{split}-labels-idx1-ubyte[.gz]` (if both the plain
    /// and the `.gz` file exist, the plain one is read). Labels must be below
    /// [`DEFAULT_CLASSES`].
    pub fn load_dir(dir: &Path, split: Split) -> Result<Dataset, DataError> {
        let (images, labels) = Self::split_files(dir, split)?;
        let mut ds = Self::load_files(&images, &labels)?;
        ds.name = Self::dir_name(dir, split);
        Ok(ds)
    }

    /// The images and labels files that [`Dataset::load_dir`] reads for `split` in `dir`
    /// (the plain file if both it and its `.gz` twin exist).
    ///
    /// # Errors
    /// [`DataError::Missing`] naming the folder and the file names looked for.
    pub fn split_files(dir: &Path, split: Split) -> Result<(PathBuf, PathBuf), DataError> {
        if dir.is_file() {
            return Err(DataError::NotAFolder {
                path: dir.to_path_buf(),
            });
        }
        let find = |names: [String; 2]| {
            names
                .iter()
                .map(|n| dir.join(n))
                .find(|p| p.is_file())
                .ok_or(names)
        };
        match (find(split.image_names()), find(split.label_names())) {
            (Ok(i), Ok(l)) => Ok((i, l)),
            (i, l) => {
                let looked_for = [i.err(), l.err()].into_iter().flatten().flatten().collect();
                Err(DataError::Missing {
                    dir: dir.to_path_buf(),
                    dir_exists: dir.is_dir(),
                    looked_for,
                })
            }
        }
    }

    /// The embedded files [`Dataset::bundled_sample`] and [`Dataset::bundled_calibration`]
    /// decode: `(name, gzip bytes)` of the test images and labels, then of the training images
    /// and labels (e.g. to record a digest of the data a run used).
    pub fn bundled_sample_files() -> [(&'static str, &'static [u8]); 4] {
        [
            ("fmnist-sample/t10k-images-idx3-ubyte.gz", BUNDLED_IMAGES),
            ("fmnist-sample/t10k-labels-idx1-ubyte.gz", BUNDLED_LABELS),
            (
                "fmnist-sample/train-images-idx3-ubyte.gz",
                BUNDLED_TRAIN_IMAGES,
            ),
            (
                "fmnist-sample/train-labels-idx1-ubyte.gz",
                BUNDLED_TRAIN_LABELS,
            ),
        ]
    }

    /// Loads an images file and a labels file (each plain or gzip). Labels must be below
    /// [`DEFAULT_CLASSES`].
    pub fn load_files(images: &Path, labels: &Path) -> Result<Dataset, DataError> {
        Self::load_files_with_classes(images, labels, DEFAULT_CLASSES)
    }

    /// The first `k` images of split `split` in `dir` (all of them if it holds fewer), like
    /// [`Dataset::load_dir`] followed by [`Dataset::truncate`] but without decoding the images
    /// after the first `k`: e.g. the 512 calibration images of a run read from the 60,000 of
    /// Fashion-MNIST's training split. The files are still checked whole against their headers
    /// (a plain file's length; a gzip file's ISIZE trailer), so a truncated or padded file is
    /// the same error as with [`Dataset::load_dir`]; all labels are read and range-checked.
    /// Not checked: the gzip checksum and stream of the images after the first `k`.
    pub fn load_dir_prefix(dir: &Path, split: Split, k: usize) -> Result<Dataset, DataError> {
        let (images, labels) = Self::split_files(dir, split)?;
        let mut ds = Self::load_files_prefix(&images, &labels, DEFAULT_CLASSES, k)?;
        ds.name = Self::dir_name(dir, split);
        Ok(ds)
    }

    /// Like [`Dataset::load_files_with_classes`] followed by [`Dataset::truncate`] to `k`
    /// images, reading only the first `k` images (see [`Dataset::load_dir_prefix`]).
    pub fn load_files_prefix(
        images: &Path,
        labels: &Path,
        classes: usize,
        k: usize,
    ) -> Result<Dataset, DataError> {
        let img = read_idx_file_prefix(images, Kind::Images, k)?;
        let lab = read_idx_file(labels, Kind::Labels)?;
        assemble(Self::files_name(images), img, lab, images, labels, classes)
    }

    /// Like [`Dataset::load_files`] for a dataset with `classes` classes.
    pub fn load_files_with_classes(
        images: &Path,
        labels: &Path,
        classes: usize,
    ) -> Result<Dataset, DataError> {
        let img = read_idx_file(images, Kind::Images)?;
        let lab = read_idx_file(labels, Kind::Labels)?;
        assemble(Self::files_name(images), img, lab, images, labels, classes)
    }

    /// The name of a dataset loaded from `images`: `{folder}/{prefix}`.
    fn files_name(images: &Path) -> String {
        let name = images
            .file_name()
            .map(|n| n.to_string_lossy())
            .and_then(|n| n.split("-images").next().map(str::to_owned))
            .unwrap_or_default();
        match images.parent().and_then(Path::file_name) {
            Some(dir) => format!("{}/{name}", dir.to_string_lossy()),
            None => name,
        }
    }

    /// The name of split `split` loaded from folder `dir`: `{folder name}/{prefix}`.
    fn dir_name(dir: &Path, split: Split) -> String {
        let folder = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| dir.display().to_string());
        format!("{folder}/{}", split.prefix())
    }

    /// The first [`BUNDLED_SAMPLE_LEN`] images of the Fashion-MNIST test set, embedded in the
    /// library. Named `"fmnist-sample/t10k"`, shape `(1, 28, 28)`, ten classes. Decodes the
    /// embedded gzip data on each call (milliseconds); keep the result rather than calling it in
    /// a loop.
    pub fn bundled_sample() -> Dataset {
        Self::bundled(Split::Test, BUNDLED_IMAGES, BUNDLED_LABELS)
    }

    /// The first [`BUNDLED_CALIBRATION_LEN`] images of the Fashion-MNIST *training* set,
    /// embedded in the library: the calibration set of runs on [`Dataset::bundled_sample`], so
    /// that no evaluation image sets a quantization scale. Named `"fmnist-sample/train"`.
    pub fn bundled_calibration() -> Dataset {
        Self::bundled(Split::Train, BUNDLED_TRAIN_IMAGES, BUNDLED_TRAIN_LABELS)
    }

    fn bundled(split: Split, images_gz: &[u8], labels_gz: &[u8]) -> Dataset {
        let dir = PathBuf::from(BUNDLED_DIR);
        let images = dir.join(&split.image_names()[1]);
        let labels = dir.join(&split.label_names()[1]);
        let loaded = read_idx(images_gz, &images, Kind::Images).and_then(|img| {
            let lab = read_idx(labels_gz, &labels, Kind::Labels)?;
            let name = format!("fmnist-sample/{}", split.prefix());
            assemble(name, img, lab, &images, &labels, DEFAULT_CLASSES)
        });
        match loaded {
            Ok(ds) => ds,
            // The embedded bytes are fixed at compile time and checked by the tests.
            Err(e) => unreachable!("bundled Fashion-MNIST sample is damaged: {e}"),
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the dataset holds no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image, `shape.len()`.
    pub fn image_len(&self) -> usize {
        self.shape.len()
    }

    /// Keeps only the first `k` images (no-op if `k >= len()`).
    pub fn truncate(&mut self, k: usize) {
        if k < self.len() {
            self.labels.truncate(k);
            self.pixels.truncate(k * self.image_len());
        }
    }

    /// Returns the dataset cut to its first `k` images (builder form of [`Dataset::truncate`]).
    #[must_use]
    pub fn limit(mut self, k: usize) -> Self {
        self.truncate(k);
        self
    }

    /// A new dataset holding the samples at `indices`, in that order.
    ///
    /// # Panics
    /// If an index is `>= len()`.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let il = self.image_len();
        let mut pixels = Vec::with_capacity(indices.len() * il);
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        Dataset {
            name: format!("{} (subset of {})", self.name, indices.len()),
            shape: self.shape,
            pixels,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes,
        }
    }

    /// `n` seeded pseudo-images of `h`×`w` with uniform pixels and labels: a stand-in of the
    /// right shape for speed measurements when no real data is installed (not for accuracy).
    pub fn synthetic(n: usize, h: usize, w: usize, classes: usize, seed: u64) -> Dataset {
        Self::synthetic_shaped(n, Shape::new(1, h, w), classes, seed)
    }

    /// [`Dataset::synthetic`] of any image shape (`c` channels of `h`×`w`).
    pub fn synthetic_shaped(n: usize, shape: Shape, classes: usize, seed: u64) -> Dataset {
        use rand::RngCore;
        let s = nacsim_core::rng::Stream::new(seed, nacsim_core::rng::Purpose::Other(0), 0, 0);
        let mut rng = s.rng(0);
        let mut pixels = vec![0u8; n * shape.len()];
        rng.fill_bytes(&mut pixels);
        let labels = (0..n)
            .map(|_| (rng.next_u32() % classes.max(1) as u32) as u8)
            .collect();
        let Shape { c, h, w } = shape;
        Dataset {
            name: if c == 1 {
                format!("synthetic-{n}x{h}x{w}")
            } else {
                format!("synthetic-{n}x{c}x{h}x{w}")
            },
            shape,
            pixels,
            labels,
            classes,
        }
    }

    /// Pixel bytes of image `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Label of image `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn label(&self, i: usize) -> usize {
        usize::from(self.labels[i])
    }

    /// The images at `indices` as a `[indices.len(), shape.len()]` float batch, one image per
    /// row in the layout of [`Dataset::pixels`], each pixel scaled to `pixel / 255.0`.
    ///
    /// # Panics
    /// If an index is `>= len()`.
    pub fn batch(&self, indices: &[usize]) -> Array2<f32> {
        let n = self.image_len();
        let mut out = Vec::with_capacity(indices.len() * n);
        for &i in indices {
            out.extend(self.image(i).iter().map(|&p| scale(p)));
        }
        to_array(out, indices.len(), n)
    }

    /// Images `start..end` as a float batch like [`Dataset::batch`]. `end` is clamped to
    /// `len()` and an empty range gives a batch of zero rows, so
    /// `batch_range(s, s + batch_size)` also serves the last, short batch.
    pub fn batch_range(&self, start: usize, end: usize) -> Array2<f32> {
        let (start, end) = self.clamp(start, end);
        let n = self.image_len();
        let out = self.pixels[start * n..end * n]
            .iter()
            .map(|&p| scale(p))
            .collect();
        to_array(out, end - start, n)
    }

    /// The float value of every pixel byte (`table[p] = p / 255.0`, as [`Dataset::batch`]
    /// scales it), for callers that scale pixels in their own layout.
    pub fn pixel_values() -> [f32; 256] {
        std::array::from_fn(|p| scale(p as u8))
    }

    /// Labels of the images at `indices`.
    ///
    /// # Panics
    /// If an index is `>= len()`.
    pub fn labels_of(&self, indices: &[usize]) -> Vec<usize> {
        indices.iter().map(|&i| self.label(i)).collect()
    }

    /// Labels of images `start..end`, clamped like [`Dataset::batch_range`].
    pub fn labels_range(&self, start: usize, end: usize) -> Vec<usize> {
        let (start, end) = self.clamp(start, end);
        self.labels[start..end]
            .iter()
            .map(|&l| usize::from(l))
            .collect()
    }

    fn clamp(&self, start: usize, end: usize) -> (usize, usize) {
        let end = end.min(self.len());
        (start.min(end), end)
    }
}

#[inline]
fn scale(p: u8) -> f32 {
    f32::from(p) / 255.0
}

fn to_array(data: Vec<f32>, rows: usize, cols: usize) -> Array2<f32> {
    match Array2::from_shape_vec((rows, cols), data) {
        Ok(a) => a,
        Err(e) => unreachable!("batch buffer has rows × cols elements: {e}"),
    }
}
