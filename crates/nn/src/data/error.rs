//! [`DataError`]: every way loading a dataset fails, with the file, the problem and the fix.

use std::io;
use std::path::PathBuf;

use super::{FASHION_MNIST_DIR, IMAGES_MAGIC, LABELS_MAGIC};

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
