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

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use flate2::bufread::MultiGzDecoder;
use ndarray::Array2;

use crate::network::Shape;

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
const BUNDLED_IMAGES: &[u8] = include_bytes!("../data/fmnist-sample/t10k-images-idx3-ubyte.gz");
const BUNDLED_LABELS: &[u8] = include_bytes!("../data/fmnist-sample/t10k-labels-idx1-ubyte.gz");
const BUNDLED_TRAIN_IMAGES: &[u8] =
    include_bytes!("../data/fmnist-sample/train-images-idx3-ubyte.gz");
const BUNDLED_TRAIN_LABELS: &[u8] =
    include_bytes!("../data/fmnist-sample/train-labels-idx1-ubyte.gz");
const BUNDLED_DIR: &str = "<bundled>/fmnist-sample";

/// Errors from loading an IDX dataset. Each message names the file, the problem and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// One or more dataset files do not exist.
    #[error(
        "dataset file not found: looked in `{}`{} for {}. Install Fashion-MNIST with \
         `apt-get install dataset-fashion-mnist` (it goes to {FASHION_MNIST_DIR}) or pass \
         --data DIR naming a folder that holds these IDX files (plain or .gz).",
        .dir.display(),
        if *.dir_exists { "" } else { " (the folder does not exist)" },
        list_names(.looked_for)
    )]
    Missing {
        /// Folder that was searched.
        dir: PathBuf,
        /// Whether that folder exists.
        dir_exists: bool,
        /// File names looked for (alternatives and all missing files).
        looked_for: Vec<String>,
    },
    /// A folder of IDX files was expected but the path is a file.
    #[error(
        "`{}` is a file, not a folder: pass --data DIR naming the folder that holds the IDX \
         files (`t10k-images-idx3-ubyte[.gz]` and its siblings), not one of the files.",
        .path.display()
    )]
    NotAFolder {
        /// The path given as a folder.
        path: PathBuf,
    },
    /// The file exists but could not be read.
    #[error(
        "could not read `{}`: {source}. Check that it is a regular file you have permission \
         to read.",
        .path.display()
    )]
    Io {
        /// File being read.
        path: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// The file starts with the gzip magic but does not decompress.
    #[error(
        "`{}` is a corrupt or truncated gzip file: {source}. It was probably cut short while \
         downloading or copying; fetch it again (or reinstall `dataset-fashion-mnist`), or run \
         `gzip -t` on it to see the damage.",
        .path.display()
    )]
    Gzip {
        /// File being decompressed.
        path: PathBuf,
        /// Error reported by the decompressor.
        source: io::Error,
    },
    /// The IDX magic number is not the one expected for this kind of file.
    #[error(
        "`{}` is not an IDX {kind} file: its magic number is {got} (0x{got:08x}), expected \
         {expected} for {kind}{}. Check that you passed the right file (images and labels not \
         swapped) and that it is an IDX file, plain or gzip-compressed.",
        .path.display(),
        magic_hint(*.got)
    )]
    BadMagic {
        /// File being read.
        path: PathBuf,
        /// `"images"` or `"labels"`.
        kind: &'static str,
        /// Expected magic number ([`IMAGES_MAGIC`] or [`LABELS_MAGIC`]).
        expected: u32,
        /// Magic number found in the file.
        got: u32,
    },
    /// The file ends inside the IDX header.
    #[error(
        "`{}` is truncated: an IDX {kind} header needs {need} bytes but the file has only \
         {got}. Fetch the file again (or reinstall `dataset-fashion-mnist`).",
        .path.display()
    )]
    TruncatedHeader {
        /// File being read.
        path: PathBuf,
        /// `"images"` or `"labels"`.
        kind: &'static str,
        /// Header length in bytes.
        need: usize,
        /// Bytes present.
        got: usize,
    },
    /// The file has fewer data bytes than its header announces.
    #[error(
        "`{}` is truncated: its header says {header} = {expected} bytes, but the file has only \
         {actual} bytes after the header. It was probably cut short while downloading or \
         copying; fetch it again (or reinstall `dataset-fashion-mnist`).",
        .path.display()
    )]
    Truncated {
        /// File being read.
        path: PathBuf,
        /// What the header describes, e.g. `"10000 images of 28×28"`.
        header: String,
        /// Data bytes the header announces.
        expected: u64,
        /// Data bytes present.
        actual: u64,
    },
    /// The file has more data bytes than its header announces.
    #[error(
        "`{}` has trailing data: its header says {header} = {expected} bytes, but more bytes \
         follow. The header or the file is damaged, or two files were concatenated; fetch it \
         again (or reinstall `dataset-fashion-mnist`).",
        .path.display()
    )]
    TrailingData {
        /// File being read.
        path: PathBuf,
        /// What the header describes, e.g. `"10000 labels"`.
        header: String,
        /// Data bytes the header announces.
        expected: u64,
    },
    /// The images and labels files hold different numbers of items.
    #[error(
        "`{}` holds {n_images} images but `{}` holds {n_labels} labels. The two files must \
         come from the same split (e.g. both `train` or both `t10k`); check that you did not \
         pair images and labels of different splits or datasets.",
        .images.display(),
        .labels.display()
    )]
    CountMismatch {
        /// Images file.
        images: PathBuf,
        /// Labels file.
        labels: PathBuf,
        /// Number of images.
        n_images: usize,
        /// Number of labels.
        n_labels: usize,
    },
    /// A label is not below the number of classes.
    #[error(
        "`{}`: label {label} at index {index} is out of range for {classes} classes (labels \
         must be below {classes}). The file is damaged or belongs to a dataset with more \
         classes; fetch it again, or load it with `Dataset::load_files_with_classes`.",
        .path.display()
    )]
    LabelOutOfRange {
        /// Labels file.
        path: PathBuf,
        /// Position of the first offending label.
        index: usize,
        /// Its value.
        label: u8,
        /// Number of classes expected.
        classes: usize,
    },
}

/// Renders file names for a message: a plain name followed by its `.gz` twin reads
/// "`a` or `a.gz`", and such groups are joined with ", and ".
fn list_names(names: &[String]) -> String {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < names.len() {
        match names.get(i + 1) {
            Some(next) if *next == format!("{}.gz", names[i]) => {
                groups.push(format!("`{}` or `{next}`", names[i]));
                i += 2;
            }
            _ => {
                groups.push(format!("`{}`", names[i]));
                i += 1;
            }
        }
    }
    if groups.is_empty() {
        String::from("(nothing)")
    } else {
        groups.join(", and ")
    }
}

fn magic_hint(got: u32) -> &'static str {
    match got {
        IMAGES_MAGIC => " (this looks like an images file)",
        LABELS_MAGIC => " (this looks like a labels file)",
        _ => "",
    }
}

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
        let folder = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| dir.display().to_string());
        ds.name = format!("{folder}/{}", split.prefix());
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

    /// Like [`Dataset::load_files`] for a dataset with `classes` classes.
    pub fn load_files_with_classes(
        images: &Path,
        labels: &Path,
        classes: usize,
    ) -> Result<Dataset, DataError> {
        let img = read_idx_file(images, Kind::Images)?;
        let lab = read_idx_file(labels, Kind::Labels)?;
        let name = images
            .file_name()
            .map(|n| n.to_string_lossy())
            .and_then(|n| n.split("-images").next().map(str::to_owned))
            .unwrap_or_default();
        let name = match images.parent().and_then(Path::file_name) {
            Some(dir) => format!("{}/{name}", dir.to_string_lossy()),
            None => name,
        };
        assemble(name, img, lab, images, labels, classes)
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

/// Which IDX file is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Images,
    Labels,
}

impl Kind {
    const fn magic(self) -> u32 {
        match self {
            Kind::Images => IMAGES_MAGIC,
            Kind::Labels => LABELS_MAGIC,
        }
    }
    const fn rank(self) -> usize {
        match self {
            Kind::Images => 3,
            Kind::Labels => 1,
        }
    }
    const fn name(self) -> &'static str {
        match self {
            Kind::Images => "images",
            Kind::Labels => "labels",
        }
    }
}

/// A decoded IDX tensor of bytes.
struct Idx {
    dims: Vec<usize>,
    data: Vec<u8>,
}

fn read_idx_file(path: &Path, kind: Kind) -> Result<Idx, DataError> {
    let file = File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into(),
            );
            DataError::Missing {
                dir_exists: dir.is_dir(),
                dir,
                looked_for: vec![name],
            }
        }
        _ => DataError::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    read_idx(BufReader::with_capacity(1 << 16, file), path, kind)
}

/// Decodes one IDX file (plain or gzip) from `reader`; `path` is only used in errors.
fn read_idx<R: BufRead>(mut reader: R, path: &Path, kind: Kind) -> Result<Idx, DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    // A file holds at least two bytes unless it is empty, so one fill_buf suffices here.
    let is_gzip = reader.fill_buf().map_err(io_err)?.starts_with(&GZIP_MAGIC);
    if is_gzip {
        read_idx_body(MultiGzDecoder::new(reader), path, kind, |source| {
            DataError::Gzip {
                path: path.to_path_buf(),
                source,
            }
        })
    } else {
        read_idx_body(reader, path, kind, io_err)
    }
}

fn read_idx_body<R: Read>(
    mut reader: R,
    path: &Path,
    kind: Kind,
    err: impl Fn(io::Error) -> DataError,
) -> Result<Idx, DataError> {
    let rank = kind.rank();
    let need = 4 + 4 * rank;
    let mut header = [0u8; 16];
    let header = &mut header[..need];
    let got = read_full(&mut reader, header).map_err(&err)?;
    let truncated_header = || DataError::TruncatedHeader {
        path: path.to_path_buf(),
        kind: kind.name(),
        need,
        got,
    };
    if got < 4 {
        return Err(truncated_header());
    }
    let word = |i: usize| {
        u32::from_be_bytes([
            header[4 * i],
            header[4 * i + 1],
            header[4 * i + 2],
            header[4 * i + 3],
        ])
    };
    let magic = word(0);
    if magic != kind.magic() {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            kind: kind.name(),
            expected: kind.magic(),
            got: magic,
        });
    }
    if got < need {
        return Err(truncated_header());
    }
    let dims: Vec<u64> = (1..=rank).map(|i| u64::from(word(i))).collect();
    let describe = || match dims.as_slice() {
        [n, r, c] => format!("{n} images of {r}×{c}"),
        [n] => format!("{n} labels"),
        d => format!("{d:?}"),
    };
    // Each dimension is below 2^32, so the product of three fits in u128 without overflow.
    let expected_wide: u128 = dims.iter().map(|&d| u128::from(d)).product();
    let expected = u64::try_from(expected_wide).unwrap_or(u64::MAX);
    let dims_usize: Option<Vec<usize>> = dims.iter().map(|&d| usize::try_from(d).ok()).collect();
    let limit = expected.saturating_add(1);
    // Reserve the announced size (capped so a damaged header cannot force a huge allocation).
    let reserve = usize::try_from(expected.min(1 << 28)).unwrap_or(0);
    let mut data = Vec::with_capacity(reserve);
    reader
        .by_ref()
        .take(limit)
        .read_to_end(&mut data)
        .map_err(&err)?;
    let actual = data.len() as u64;
    if actual < expected {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            header: describe(),
            expected,
            actual,
        });
    }
    if actual > expected {
        return Err(DataError::TrailingData {
            path: path.to_path_buf(),
            header: describe(),
            expected,
        });
    }
    // `actual == expected` bytes are in memory, so every dimension fits in usize.
    let dims = dims_usize.unwrap_or_default();
    Ok(Idx { dims, data })
}

/// Reads until `buf` is full or EOF; returns the number of bytes read.
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn assemble(
    name: String,
    img: Idx,
    lab: Idx,
    images: &Path,
    labels: &Path,
    classes: usize,
) -> Result<Dataset, DataError> {
    let (n_images, rows, cols) = match img.dims.as_slice() {
        &[n, r, c] => (n, r, c),
        _ => unreachable!("images are read with rank 3"),
    };
    let n_labels = lab.data.len();
    if n_images != n_labels {
        return Err(DataError::CountMismatch {
            images: images.to_path_buf(),
            labels: labels.to_path_buf(),
            n_images,
            n_labels,
        });
    }
    if let Some((index, &label)) = lab
        .data
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= classes)
    {
        return Err(DataError::LabelOutOfRange {
            path: labels.to_path_buf(),
            index,
            label,
            classes,
        });
    }
    Ok(Dataset {
        name,
        shape: Shape::new(1, rows, cols),
        pixels: img.data,
        labels: lab.data,
        classes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;
    use std::time::Instant;

    fn idx_images(n: u32, r: u32, c: u32, pixels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [IMAGES_MAGIC, n, r, c] {
            v.extend_from_slice(&w.to_be_bytes());
        }
        v.extend_from_slice(pixels);
        v
    }

    fn idx_labels(labels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [LABELS_MAGIC, labels.len() as u32] {
            v.extend_from_slice(&w.to_be_bytes());
        }
        v.extend_from_slice(labels);
        v
    }

    fn gz(raw: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(raw).unwrap();
        e.finish().unwrap()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// 3 images of 2×3 with distinct pixels, labels 0, 9, 4.
    fn sample() -> (Vec<u8>, Vec<u8>) {
        let pixels: Vec<u8> = (0..18).map(|i| (i * 15) as u8).collect();
        (idx_images(3, 2, 3, &pixels), idx_labels(&[0, 9, 4]))
    }

    fn check_sample(ds: &Dataset) {
        assert_eq!(ds.len(), 3);
        assert!(!ds.is_empty());
        assert_eq!(ds.shape, Shape::new(1, 2, 3));
        assert_eq!(ds.classes, 10);
        assert_eq!(ds.labels, [0, 9, 4]);
        assert_eq!(ds.image(1), &[90, 105, 120, 135, 150, 165]);
    }

    fn msg_has_path(e: &DataError, p: &Path) {
        let m = e.to_string();
        assert!(m.contains(&p.display().to_string()), "{p:?} not in: {m}");
    }

    #[test]
    fn reads_raw_and_gz_files() {
        let t = tempfile::tempdir().unwrap();
        let (img, lab) = sample();
        // Raw files.
        let i = write(t.path(), "a-images", &img);
        let l = write(t.path(), "a-labels", &lab);
        check_sample(&Dataset::load_files(&i, &l).unwrap());
        // Gzip detected by magic, whatever the extension.
        let i = write(t.path(), "b-images.raw", &gz(&img));
        let l = write(t.path(), "b-labels.gz", &gz(&lab));
        check_sample(&Dataset::load_files(&i, &l).unwrap());
        // A raw file named .gz is read as raw.
        let i = write(t.path(), "c-images.gz", &img);
        check_sample(&Dataset::load_files(&i, &l).unwrap());
    }

    #[test]
    fn load_dir_finds_both_spellings() {
        let t = tempfile::tempdir().unwrap();
        let (img, lab) = sample();
        write(t.path(), "train-images-idx3-ubyte.gz", &gz(&img));
        write(t.path(), "train-labels-idx1-ubyte", &lab);
        write(t.path(), "t10k-images-idx3-ubyte", &img);
        write(t.path(), "t10k-labels-idx1-ubyte.gz", &gz(&lab));
        let tr = Dataset::load_dir(t.path(), Split::Train).unwrap();
        check_sample(&tr);
        assert!(tr.name.ends_with("/train"), "{}", tr.name);
        let te = Dataset::load_dir(t.path(), Split::Test).unwrap();
        check_sample(&te);
        assert!(te.name.ends_with("/t10k"), "{}", te.name);
    }

    #[test]
    fn batches_scale_and_lay_out_rows() {
        let t = tempfile::tempdir().unwrap();
        let (img, lab) = sample();
        let i = write(t.path(), "i", &img);
        let l = write(t.path(), "l", &lab);
        let ds = Dataset::load_files(&i, &l).unwrap();
        let b = ds.batch(&[2, 0]);
        assert_eq!(b.dim(), (2, 6));
        assert_eq!(b[[0, 0]], 180.0 / 255.0);
        assert_eq!(b[[1, 5]], 75.0 / 255.0);
        assert_eq!(ds.labels_of(&[2, 0]), [4, 0]);
        let r = ds.batch_range(1, 10);
        assert_eq!(r.dim(), (2, 6));
        assert_eq!(r.row(0), ds.batch(&[1]).row(0));
        assert_eq!(ds.labels_range(1, 10), [9, 4]);
        assert_eq!(ds.batch_range(5, 7).dim(), (0, 6));
        assert!(ds.labels_range(3, 2).is_empty());
        let small = ds.clone().limit(1);
        assert_eq!((small.len(), small.pixels.len()), (1, 6));
        let mut same = ds.clone();
        same.truncate(99);
        assert_eq!(same, ds);
        assert!(format!("{ds:?}").contains("len: 3"));
    }

    #[test]
    fn missing_files_list_names_and_fix() {
        let t = tempfile::tempdir().unwrap();
        let (_, lab) = sample();
        write(t.path(), "t10k-labels-idx1-ubyte", &lab);
        let e = Dataset::load_dir(t.path(), Split::Test).unwrap_err();
        let DataError::Missing { looked_for, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(looked_for, &Split::Test.image_names());
        msg_has_path(&e, t.path());
        let m = e.to_string();
        assert!(
            m.contains("`t10k-images-idx3-ubyte` or `t10k-images-idx3-ubyte.gz`"),
            "{m}"
        );
        assert!(m.contains("apt-get install dataset-fashion-mnist"), "{m}");
        assert!(m.contains("--data DIR"), "{m}");

        let e = Dataset::load_dir(t.path(), Split::Train).unwrap_err();
        let DataError::Missing { looked_for, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(looked_for.len(), 4);
        let m = e.to_string();
        assert!(
            m.contains("`train-images-idx3-ubyte.gz`, and `train-labels-idx1-ubyte` or"),
            "{m}"
        );

        let nowhere = t.path().join("nope");
        let e = Dataset::load_dir(&nowhere, Split::Train).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");

        let l = t.path().join("t10k-labels-idx1-ubyte");
        let i = t.path().join("imgs.gz");
        let e = Dataset::load_files(&i, &l).unwrap_err();
        assert!(matches!(e, DataError::Missing { .. }), "{e:?}");
        msg_has_path(&e, t.path());
        assert!(e.to_string().contains("`imgs.gz`"), "{e}");
    }

    #[test]
    fn wrong_magic_is_reported() {
        let t = tempfile::tempdir().unwrap();
        let (img, lab) = sample();
        // Swapped files.
        let i = write(t.path(), "i", &img);
        let l = write(t.path(), "l", &lab);
        let e = Dataset::load_files(&l, &i).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::BadMagic {
                    expected: 2051,
                    got: 2049,
                    ..
                }
            ),
            "{e:?}"
        );
        msg_has_path(&e, &l);
        assert!(e.to_string().contains("expected 2051"), "{e}");
        assert!(e.to_string().contains("looks like a labels file"), "{e}");
        // Not an IDX file at all, gzip-compressed.
        let junk = write(t.path(), "junk.gz", &gz(b"hello, world, this is text"));
        let e = Dataset::load_files(&i, &junk).unwrap_err();
        assert!(
            matches!(e, DataError::BadMagic { expected: 2049, .. }),
            "{e:?}"
        );
        msg_has_path(&e, &junk);
    }

    #[test]
    fn truncated_files_are_reported() {
        let t = tempfile::tempdir().unwrap();
        let (img, lab) = sample();
        let l = write(t.path(), "l", &lab);
        let cut = write(t.path(), "cut", &img[..img.len() - 5]);
        let e = Dataset::load_files(&cut, &l).unwrap_err();
        let DataError::Truncated {
            expected, actual, ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!((*expected, *actual), (18, 13));
        msg_has_path(&e, &cut);
        assert!(e.to_string().contains("3 images of 2×3 = 18 bytes"), "{e}");
        // Same through gzip (a complete gzip stream of a short IDX file).
        let cutgz = write(t.path(), "cut.gz", &gz(&img[..img.len() - 5]));
        let e = Dataset::load_files(&cutgz, &l).unwrap_err();
        assert!(matches!(e, DataError::Truncated { .. }), "{e:?}");
        msg_has_path(&e, &cutgz);
        // Cut inside the header, and empty.
        for (name, bytes) in [("hdr", &img[..10]), ("empty", &img[..0])] {
            let p = write(t.path(), name, bytes);
            let e = Dataset::load_files(&p, &l).unwrap_err();
            assert!(matches!(e, DataError::TruncatedHeader { .. }), "{e:?}");
            msg_has_path(&e, &p);
        }
        // Extra bytes.
        let mut long = lab.clone();
        long.push(1);
        let p = write(t.path(), "long", &long);
        let e = Dataset::load_files(&cut, &p);
        assert!(matches!(e, Err(DataError::Truncated { .. })));
        let i = write(t.path(), "i", &img);
        let e = Dataset::load_files(&i, &p).unwrap_err();
        assert!(matches!(e, DataError::TrailingData { .. }), "{e:?}");
        msg_has_path(&e, &p);
    }

    #[test]
    fn huge_header_on_small_file_is_truncated_not_oom() {
        let t = tempfile::tempdir().unwrap();
        let (_, lab) = sample();
        let l = write(t.path(), "l", &lab);
        let p = write(
            t.path(),
            "huge",
            &idx_images(u32::MAX, u32::MAX, u32::MAX, &[1, 2, 3]),
        );
        let e = Dataset::load_files(&p, &l).unwrap_err();
        assert!(matches!(e, DataError::Truncated { actual: 3, .. }), "{e:?}");
    }

    #[test]
    fn corrupt_gzip_is_reported() {
        let t = tempfile::tempdir().unwrap();
        let (img, lab) = sample();
        let l = write(t.path(), "l", &lab);
        let good = gz(&img);
        // Cut-off stream.
        let p = write(t.path(), "cut.gz", &good[..good.len() / 2]);
        let e = Dataset::load_files(&p, &l).unwrap_err();
        assert!(matches!(e, DataError::Gzip { .. }), "{e:?}");
        msg_has_path(&e, &p);
        // Garbage after a gzip magic.
        let mut bad = good.clone();
        for b in &mut bad[10..] {
            *b = 0xff;
        }
        let p = write(t.path(), "bad.gz", &bad);
        let e = Dataset::load_files(&p, &l).unwrap_err();
        assert!(matches!(e, DataError::Gzip { .. }), "{e:?}");
        msg_has_path(&e, &p);
        assert!(e.to_string().contains("gzip"), "{e}");
    }

    #[test]
    fn count_mismatch_and_label_range() {
        let t = tempfile::tempdir().unwrap();
        let (img, _) = sample();
        let i = write(t.path(), "i", &img);
        let l = write(t.path(), "l", &idx_labels(&[1, 2]));
        let e = Dataset::load_files(&i, &l).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::CountMismatch {
                    n_images: 3,
                    n_labels: 2,
                    ..
                }
            ),
            "{e:?}"
        );
        msg_has_path(&e, &i);
        msg_has_path(&e, &l);
        let l = write(t.path(), "l10", &idx_labels(&[1, 10, 2]));
        let e = Dataset::load_files(&i, &l).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::LabelOutOfRange {
                    index: 1,
                    label: 10,
                    classes: 10,
                    ..
                }
            ),
            "{e:?}"
        );
        msg_has_path(&e, &l);
        let ds = Dataset::load_files_with_classes(&i, &l, 11).unwrap();
        assert_eq!(ds.classes, 11);
    }

    #[test]
    fn directory_as_file_is_an_io_error() {
        let t = tempfile::tempdir().unwrap();
        let (_, lab) = sample();
        let l = write(t.path(), "l", &lab);
        let e = Dataset::load_files(t.path(), &l).unwrap_err();
        assert!(matches!(e, DataError::Io { .. }), "{e:?}");
        msg_has_path(&e, t.path());
    }

    #[test]
    fn split_parses_and_names() {
        assert_eq!("Train".parse::<Split>(), Ok(Split::Train));
        assert_eq!("t10k".parse::<Split>(), Ok(Split::Test));
        assert!("val".parse::<Split>().is_err());
        assert_eq!(Split::Test.to_string(), "test");
        assert_eq!(Split::Test.prefix(), "t10k");
    }

    #[test]
    fn bundled_sample_is_fashion_mnist_head() {
        let ds = Dataset::bundled_sample();
        assert_eq!(ds.len(), BUNDLED_SAMPLE_LEN);
        assert_eq!(ds.shape, Shape::new(1, 28, 28));
        assert_eq!(ds.pixels.len(), 2000 * 784);
        assert_eq!(ds.classes, 10);
        assert!(ds.labels.iter().all(|&l| l < 10));
        // Every class occurs; Fashion-MNIST's first test labels are 9, 2, 1, 1, 6.
        assert!((0..10).all(|c| ds.labels.contains(&c)));
        assert_eq!(ds.labels_range(0, 5), [9, 2, 1, 1, 6]);
        assert_eq!(ds.batch_range(0, 64).dim(), (64, 784));
    }

    /// A data directory from env var `var`, else `default`. A missing directory fails the test
    /// (CI installs Fashion-MNIST; the MNIST sample ships in the repository); it is never skipped.
    fn data_dir(var: &str, default: PathBuf) -> Option<PathBuf> {
        let dir = std::env::var_os(var).map_or(default, PathBuf::from);
        assert!(
            dir.is_dir(),
            "{} not found: install `dataset-fashion-mnist`, or set {var}",
            dir.display()
        );
        Some(dir)
    }

    #[test]
    fn mnist_sample_reads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-sample");
        let ds = Dataset::load_dir(&dir, Split::Test).unwrap();
        assert_eq!(ds.len(), 2000);
        assert_eq!(ds.shape, Shape::new(1, 28, 28));
        // MNIST's first test labels, and every digit occurs.
        assert_eq!(ds.labels_range(0, 5), [7, 2, 1, 0, 4]);
        assert!((0..10).all(|c| ds.labels.contains(&c)));
        // Digits are mostly background: a mean pixel near MNIST's 33.8 (Fashion-MNIST's is 73).
        let mean = ds.pixels.iter().map(|&p| f64::from(p)).sum::<f64>() / ds.pixels.len() as f64;
        assert!((30.0..38.0).contains(&mean), "mean pixel {mean}");
        // The sample holds no training split: the error names the missing files.
        let e = Dataset::load_dir(&dir, Split::Train).unwrap_err();
        let DataError::Missing { looked_for, .. } = &e else {
            panic!("{e:?}")
        };
        let mut both = Split::Train.image_names().to_vec();
        both.extend(Split::Train.label_names());
        assert_eq!(looked_for, &both);
    }

    #[test]
    fn bundled_calibration_is_fashion_mnist_training_head() {
        let ds = Dataset::bundled_calibration();
        assert_eq!(ds.len(), BUNDLED_CALIBRATION_LEN);
        assert_eq!(ds.shape, Shape::new(1, 28, 28));
        assert_eq!(ds.name, "fmnist-sample/train");
        // Fashion-MNIST's first training labels are 9, 0, 0, 3, 0.
        assert_eq!(ds.labels_range(0, 5), [9, 0, 0, 3, 0]);
        assert!((0..10).all(|c| ds.labels.contains(&c)));
        // Not the test sample: no calibration image is an evaluation image.
        let test = Dataset::bundled_sample();
        assert_ne!(ds.pixels[..784], test.pixels[..784]);
    }

    #[test]
    fn fashion_mnist_test_set_matches_bundled_sample() {
        let Some(dir) = data_dir("NACSIM_FMNIST_DIR", PathBuf::from(FASHION_MNIST_DIR)) else {
            return;
        };
        let t0 = Instant::now();
        let test = Dataset::load_dir(&dir, Split::Test).unwrap();
        assert_eq!(test.len(), 10_000);
        assert_eq!(test.shape, Shape::new(1, 28, 28));
        let sample = Dataset::bundled_sample();
        assert!(test.pixels[..sample.pixels.len()] == sample.pixels[..]);
        assert_eq!(test.labels[..BUNDLED_SAMPLE_LEN], sample.labels[..]);
        let t1 = Instant::now();
        let train = Dataset::load_dir(&dir, Split::Train).unwrap();
        eprintln!(
            "fashion-mnist: test+sample {:?}, train {:?}",
            t1 - t0,
            t1.elapsed()
        );
        assert_eq!(train.len(), 60_000);
        assert_eq!(train.name, "fashion-mnist/train");
        let calib = Dataset::bundled_calibration();
        assert!(train.pixels[..calib.pixels.len()] == calib.pixels[..]);
        assert_eq!(train.labels[..BUNDLED_CALIBRATION_LEN], calib.labels[..]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
        #[test]
        fn roundtrip_any_shape(
            n in 0u32..6, r in 1u32..5, c in 1u32..5, zip: bool, seed: u8,
        ) {
            let t = tempfile::tempdir().unwrap();
            let len = (n * r * c) as usize;
            let pixels: Vec<u8> = (0..len).map(|k| (k as u8).wrapping_mul(seed)).collect();
            let labels: Vec<u8> = (0..n as u8).map(|k| k % 10).collect();
            let (mut img, mut lab) = (idx_images(n, r, c, &pixels), idx_labels(&labels));
            if zip {
                (img, lab) = (gz(&img), gz(&lab));
            }
            let i = write(t.path(), "i", &img);
            let l = write(t.path(), "l", &lab);
            let ds = Dataset::load_files(&i, &l).unwrap();
            proptest::prop_assert_eq!(ds.len(), n as usize);
            proptest::prop_assert_eq!(ds.is_empty(), n == 0);
            proptest::prop_assert_eq!(&ds.pixels, &pixels);
            proptest::prop_assert_eq!(&ds.labels, &labels);
            let all: Vec<usize> = (0..n as usize).collect();
            proptest::prop_assert_eq!(ds.batch(&all), ds.batch_range(0, n as usize));
        }
    }
}
