//! Tests of dataset loading: every error message, gzip, the bundled sample, batching.

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

/// Loads `(i, l)` whole and cut to `k`, and through [`Dataset::load_files_prefix`]: the same
/// dataset, or the same error message.
fn same_as_prefix(i: &Path, l: &Path, k: usize) -> Result<Dataset, String> {
    let whole = Dataset::load_files(i, l).map(|d| d.limit(k));
    let prefix = Dataset::load_files_prefix(i, l, DEFAULT_CLASSES, k);
    match (whole, prefix) {
        (Ok(w), Ok(p)) => {
            assert_eq!(w, p);
            Ok(p)
        }
        (Err(w), Err(p)) => {
            assert_eq!(w.to_string(), p.to_string());
            Err(p.to_string())
        }
        (w, p) => panic!("whole {w:?} but prefix {p:?}"),
    }
}

#[test]
fn a_prefix_is_the_cut_dataset_and_damage_is_the_same_error() {
    let t = tempfile::tempdir().unwrap();
    let (img, lab) = sample();
    for (zip, ext) in [(false, ""), (true, ".gz")] {
        let enc = |raw: &[u8]| if zip { gz(raw) } else { raw.to_vec() };
        let i = write(t.path(), &format!("i{ext}"), &enc(&img));
        let l = write(t.path(), &format!("l{ext}"), &enc(&lab));
        for k in [0, 1, 2, 3, 7] {
            let ds = same_as_prefix(&i, &l, k).unwrap();
            assert_eq!(ds.len(), k.min(3));
        }
        // Truncated data: the message of the whole load (it names the file).
        let cut = write(t.path(), &format!("cut{ext}"), &enc(&img[..img.len() - 5]));
        let e = same_as_prefix(&cut, &l, 1).unwrap_err();
        assert!(e.contains("is truncated") && e.contains("cut"), "{e}");
        // Trailing data, a cut header, a swapped file, too few labels.
        let mut long = img.clone();
        long.push(7);
        let long = write(t.path(), &format!("long{ext}"), &enc(&long));
        assert!(
            same_as_prefix(&long, &l, 1)
                .unwrap_err()
                .contains("trailing")
        );
        let hdr = write(t.path(), &format!("hdr{ext}"), &enc(&img[..10]));
        assert!(same_as_prefix(&hdr, &l, 1).unwrap_err().contains("header"));
        assert!(same_as_prefix(&l, &l, 1).unwrap_err().contains("magic"));
        let two = write(t.path(), &format!("two{ext}"), &enc(&idx_labels(&[1, 2])));
        assert!(same_as_prefix(&i, &two, 1).unwrap_err().contains("labels"));
    }
    // A gzip file cut short, and one damaged after its prefix with an intact trailer.
    let good = gz(&img);
    let l = write(t.path(), "l", &lab);
    let p = write(t.path(), "half.gz", &good[..good.len() / 2]);
    assert!(same_as_prefix(&p, &l, 1).unwrap_err().contains("gzip"));
    let mut bad = good.clone();
    let n = bad.len();
    for b in &mut bad[10..n - 8] {
        *b = 0xff;
    }
    let p = write(t.path(), "bad.gz", &bad);
    assert!(same_as_prefix(&p, &l, 1).unwrap_err().contains("gzip"));
    // Two gzip members (valid gzip; ISIZE covers only the last): decoded whole, same result.
    let mut two = gz(&img[..10]);
    two.extend(gz(&img[10..]));
    let p = write(t.path(), "two.gz", &two);
    assert_eq!(same_as_prefix(&p, &l, 2).unwrap().len(), 2);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    #[test]
    fn a_prefix_of_a_cut_or_padded_file_matches_the_whole_load(
        n in 1u32..6, k in 0usize..8, zip: bool, cut in 0usize..40, pad in 0usize..3,
    ) {
        let t = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..n * 6).map(|v| v as u8).collect();
        let mut img = idx_images(n, 2, 3, &pixels);
        img.truncate(img.len().saturating_sub(cut));
        img.extend(std::iter::repeat_n(9u8, pad));
        let labels: Vec<u8> = (0..n as u8).collect();
        let (img, lab) = if zip {
            (gz(&img), gz(&idx_labels(&labels)))
        } else {
            (img, idx_labels(&labels))
        };
        let i = write(t.path(), "i", &img);
        let l = write(t.path(), "l", &lab);
        let ok = same_as_prefix(&i, &l, k).is_ok();
        // Whole only when the padding makes up for the cut (at most 2 bytes, inside the data).
        proptest::prop_assert_eq!(ok, cut == pad);
    }
}

#[test]
fn fashion_mnist_training_prefix_matches_the_whole_split() {
    let Some(dir) = data_dir("NACSIM_FMNIST_DIR", PathBuf::from(FASHION_MNIST_DIR)) else {
        return;
    };
    let head = Dataset::bundled_calibration().limit(512);
    let prefix = Dataset::load_dir_prefix(&dir, Split::Train, 512).unwrap();
    assert_eq!(prefix.name, "fashion-mnist/train");
    assert_eq!((prefix.pixels, prefix.labels), (head.pixels, head.labels));
}
