//! Reading IDX files: header, dimensions and bytes, plain or gzip, checked against the kind of
//! file expected; and the two files assembled into a [`Dataset`].

use super::*;

/// Which IDX file is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
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
pub(super) struct Idx {
    /// Dimensions of what `data` holds (the first may be cut by [`Idx::keep`]).
    dims: Vec<usize>,
    data: Vec<u8>,
    /// Items the file's header announces (its first dimension before any cut).
    total: usize,
}

impl Idx {
    /// Keeps the first `k` items along the first dimension.
    fn keep(&mut self, k: usize) {
        if k < self.dims[0] {
            let item: usize = self.dims[1..].iter().product();
            self.dims[0] = k;
            self.data.truncate(k * item);
        }
    }
}

fn open(path: &Path) -> Result<File, DataError> {
    File::open(path).map_err(|source| match source.kind() {
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
    })
}

pub(super) fn read_idx_file(path: &Path, kind: Kind) -> Result<Idx, DataError> {
    let file = open(path)?;
    read_idx(BufReader::with_capacity(1 << 16, file), path, kind)
}

/// The first `k` items of an IDX file (all of them if it holds fewer), after checking, without
/// decoding the rest, that the file holds exactly what its header announces: a plain file's
/// length must be the header's plus the announced data; a gzip file's ISIZE trailer (the
/// uncompressed length modulo 2^32 of its last member, RFC 1952 §2.3.1) must match the same
/// sum. Any mismatch (a truncated, padded or multi-member file) falls back to
/// [`read_idx_file`], which decodes everything and gives the same error it always gave (or
/// succeeds, for a valid multi-member gzip file). Not checked on this path: the gzip CRC and
/// deflate stream of the bytes after the prefix.
pub(super) fn read_idx_file_prefix(path: &Path, kind: Kind, k: usize) -> Result<Idx, DataError> {
    let full = || {
        read_idx_file(path, kind).map(|mut idx| {
            idx.keep(k);
            idx
        })
    };
    let mut file = open(path)?;
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = file.metadata().map_err(io_err)?.len();
    let mut magic = [0u8; 2];
    let got = read_full(&mut file, &mut magic).map_err(io_err)?;
    let is_gzip = got == 2 && magic == GZIP_MAGIC;
    // ISIZE: the last four bytes of a gzip file, little-endian (RFC 1952 §2.3.1).
    let isize = if is_gzip && len >= 18 {
        let mut t = [0u8; 4];
        file.seek(SeekFrom::End(-4)).map_err(io_err)?;
        read_full(&mut file, &mut t).map_err(io_err)?;
        Some(u32::from_le_bytes(t))
    } else {
        None
    };
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let reader = BufReader::with_capacity(1 << 16, file);
    let prefix = if is_gzip {
        let Some(isize) = isize else {
            return full();
        };
        read_prefix(MultiGzDecoder::new(reader), kind, k, |header, data| {
            header.wrapping_add(data) % (1 << 32) == u64::from(isize)
        })
    } else {
        read_prefix(reader, kind, k, |header, data| {
            header.checked_add(data) == Some(len)
        })
    };
    match prefix {
        Ok(Some(idx)) => Ok(idx),
        // Anything unexpected: decode the whole file for the exact error.
        Ok(None) | Err(_) => full(),
    }
}

/// Reads the header of `kind` and the data bytes of the first `k` items when `sizes_agree`
/// (called with the header's length and its announced data bytes) holds; `Ok(None)` when the
/// header is damaged or the sizes disagree, so the caller decodes the whole file instead.
fn read_prefix<R: Read>(
    mut reader: R,
    kind: Kind,
    k: usize,
    sizes_agree: impl Fn(u64, u64) -> bool,
) -> io::Result<Option<Idx>> {
    let rank = kind.rank();
    let need = 4 + 4 * rank;
    let mut header = [0u8; 16];
    let header = &mut header[..need];
    if read_full(&mut reader, header)? < need {
        return Ok(None);
    }
    let word = |i: usize| be_word(header, i);
    if word(0) != kind.magic() {
        return Ok(None);
    }
    let dims: Vec<u64> = (1..=rank).map(|i| u64::from(word(i))).collect();
    let item: u64 = dims[1..].iter().product();
    let Some(data) = dims[0].checked_mul(item) else {
        return Ok(None);
    };
    if !sizes_agree(need as u64, data) {
        return Ok(None);
    }
    let n = dims[0].min(k as u64);
    let (Ok(n_usize), Ok(bytes)) = (usize::try_from(n), usize::try_from(n * item)) else {
        return Ok(None);
    };
    let mut buf = vec![0u8; bytes];
    if read_full(&mut reader, &mut buf)? < bytes {
        return Ok(None);
    }
    let Some(mut dims): Option<Vec<usize>> =
        dims.iter().map(|&d| usize::try_from(d).ok()).collect()
    else {
        return Ok(None);
    };
    let total = dims[0];
    dims[0] = n_usize;
    Ok(Some(Idx {
        dims,
        data: buf,
        total,
    }))
}

/// Decodes one IDX file (plain or gzip) from `reader`; `path` is only used in errors.
pub(super) fn read_idx<R: BufRead>(
    mut reader: R,
    path: &Path,
    kind: Kind,
) -> Result<Idx, DataError> {
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

pub(super) fn read_idx_body<R: Read>(
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
    let word = |i: usize| be_word(header, i);
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
    let total = dims.first().copied().unwrap_or(0);
    Ok(Idx { dims, data, total })
}

/// Reads until `buf` is full or EOF; returns the number of bytes read.
pub(super) fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
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

pub(super) fn assemble(
    name: String,
    img: Idx,
    mut lab: Idx,
    images: &Path,
    labels: &Path,
    classes: usize,
) -> Result<Dataset, DataError> {
    let (kept, rows, cols) = match img.dims.as_slice() {
        &[n, r, c] => (n, r, c),
        _ => unreachable!("images are read with rank 3"),
    };
    let (n_images, n_labels) = (img.total, lab.total);
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
    lab.keep(kept);
    Ok(Dataset {
        name,
        shape: Shape::new(1, rows, cols),
        pixels: img.data,
        labels: lab.data,
        classes,
    })
}

/// The `i`-th big-endian 32-bit word of an IDX header (magic, then the dimension sizes).
fn be_word(header: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([
        header[4 * i],
        header[4 * i + 1],
        header[4 * i + 2],
        header[4 * i + 3],
    ])
}
