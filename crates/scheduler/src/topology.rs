//! SCALE-Sim topology files: the layer shapes of a network without its weights, for shape-only
//! runs (`nacsim info --topology FILE`).
//!
//! Two formats are read, told apart by the header row:
//!
//! | format | header | one row is |
//! |---|---|---|
//! | convolution | `Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides[, Stride width]` | a convolution (a fully connected layer is a 1×1 one on a 1×1 map) |
//! | GEMM | `Layer, M, N, K` | `[M, K] · [K, N]` |
//!
//! The conventions are SCALE-Sim v2's (`scalesim/topology_utils.py`, read for this module):
//!
//! - The IFMAP sizes **include the padding**: the output side is `⌊(IFMAP − Filter) / Stride⌋ + 1`
//!   (SCALE-Sim's `ceil((IFMAP − Filter + Stride) / Stride)`, the same number).
//! - One stride column means the same stride on both axes; a ninth column is the width stride.
//! - A row whose layer name contains `DP` is a **depthwise** convolution: SCALE-Sim expands it into
//!   `Channels` single-channel layers with `Num Filter` filters each. nacsim keeps it as one layer
//!   with [`TopoLayer::groups`] `= Channels` whose cost is `groups ×` the cost of one such layer,
//!   which gives the same totals on one report line (the cycles are `⌈groups/p⌉ ×` one layer's
//!   on an engine that reads `p` groups at once,
//!   [`Engine::groups_at_once`](crate::engine::Engine::groups_at_once): the crossbar).
//! - A GEMM row `M, N, K` is the convolution SCALE-Sim makes of it: an `M × K` map, a `1 × K`
//!   filter, one channel, `N` filters, stride 1 (so `M` output pixels, window `K`).
//! - Blank lines are skipped; leading and trailing blanks of a field are ignored; a trailing comma
//!   is optional; text after the last numeric field that starts with `#` (`#dw` in SCALE-Sim's
//!   own MobileNet file) is a comment.
//!
//! The GEMM the engines see per layer (and per group) is `M × K` inputs by `K × N` weights:
//! `M` = output pixels of one image, `K` = `Filter Height · Filter Width · Channels` (one channel
//! per group for a depthwise row), `N` = `Num Filter`.

use std::fmt;
use std::path::Path;

/// Which of SCALE-Sim's two topology formats a file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TopologyFormat {
    /// The convolution format (`Layer name, IFMAP Height, ...`).
    Conv,
    /// The GEMM format (`Layer, M, N, K`).
    Gemm,
}

/// One layer of a topology file, as a convolution (GEMM rows are converted as SCALE-Sim does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopoLayer {
    /// The layer name as the file gives it (kept in every report).
    pub name: String,
    /// Input feature map `[height, width]` in pixels, padding included.
    pub ifmap: [usize; 2],
    /// Filter `[height, width]` in pixels.
    pub filter: [usize; 2],
    /// Input channels of one group.
    pub channels: usize,
    /// Filters (output channels) of one group.
    pub filters: usize,
    /// Stride `[height, width]` in pixels.
    pub stride: [usize; 2],
    /// Independent groups: `Channels` for a depthwise (`DP`) row, else 1.
    pub groups: usize,
    /// 1-based line of the row in its file.
    pub line: usize,
}

impl TopoLayer {
    /// Output feature map `[height, width]`: `⌊(ifmap − filter) / stride⌋ + 1` per axis.
    #[must_use]
    pub fn ofmap(&self) -> [usize; 2] {
        [0, 1].map(|a| (self.ifmap[a] - self.filter[a]) / self.stride[a] + 1)
    }

    /// `M`: output pixels of one image (the streamed rows of the GEMM).
    #[must_use]
    pub fn m(&self) -> usize {
        let [h, w] = self.ofmap();
        h * w
    }

    /// `K`: the window of one output, `Filter Height · Filter Width · Channels` (of one group).
    #[must_use]
    pub fn k(&self) -> usize {
        self.filter[0] * self.filter[1] * self.channels
    }

    /// `N`: filters of one group.
    #[must_use]
    pub fn n(&self) -> usize {
        self.filters
    }

    /// Multiply-accumulates of one image over all groups: `groups · M · K · N`.
    #[must_use]
    pub fn macs(&self) -> u64 {
        (self.groups * self.m()) as u64 * (self.k() * self.n()) as u64
    }

    /// Weights over all groups: `groups · K · N`.
    #[must_use]
    pub fn weights(&self) -> u64 {
        (self.groups * self.k() * self.n()) as u64
    }
}

/// A parsed topology file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// The file stem (SCALE-Sim's topology name).
    pub name: String,
    /// The format the header named.
    pub format: TopologyFormat,
    /// The layers in file order.
    pub layers: Vec<TopoLayer>,
}

/// Why a topology file was refused: the file, the line, the column and the fix.
#[derive(Debug, PartialEq, Eq)]
pub struct TopologyFileError {
    /// The file.
    pub path: String,
    /// 1-based line (0 when the whole file is at fault).
    pub line: usize,
    /// The column's header name, when one column is at fault.
    pub column: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for TopologyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if let Some(c) = &self.column {
            write!(f, ": column `{c}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for TopologyFileError {}

/// The convolution format's columns, in order (the ninth is optional).
pub const CONV_COLUMNS: [&str; 9] = [
    "Layer name",
    "IFMAP Height",
    "IFMAP Width",
    "Filter Height",
    "Filter Width",
    "Channels",
    "Num Filter",
    "Strides",
    "Stride width",
];

/// The GEMM format's columns, in order.
pub const GEMM_COLUMNS: [&str; 4] = ["Layer", "M", "N", "K"];

/// Read and parse a topology file.
///
/// # Errors
/// The file cannot be read or is not a valid topology ([`parse`]).
pub fn load(path: &Path) -> Result<Topology, TopologyFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| TopologyFileError {
        path: path.display().to_string(),
        line: 0,
        column: None,
        message: format!("cannot read the topology file: {e}"),
    })?;
    let name = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    parse(&path.display().to_string(), &name, &text)
}

/// The fields of one row: split on commas, blanks trimmed, a trailing empty field and a trailing
/// `#` comment dropped.
fn fields(row: &str) -> Vec<&str> {
    let mut f: Vec<&str> = row.split(',').map(str::trim).collect();
    while f.last().is_some_and(|s| s.is_empty() || s.starts_with('#')) {
        f.pop();
    }
    f
}

/// Parse a topology file's text. `path` names the file in errors; `name` is the topology's name.
///
/// # Errors
/// The header names neither format; a row has the wrong number of fields, a field that is not
/// a positive integer, a filter larger than its map; the file has no layers.
pub fn parse(path: &str, name: &str, text: &str) -> Result<Topology, TopologyFileError> {
    let err = |line: usize, column: Option<&str>, message: String| TopologyFileError {
        path: path.to_string(),
        line,
        column: column.map(str::to_string),
        message,
    };
    let mut rows = text
        .lines()
        .enumerate()
        .map(|(i, r)| (i + 1, r.trim()))
        .filter(|(_, r)| !r.is_empty());
    let Some((hline, header)) = rows.next() else {
        return Err(err(
            0,
            None,
            "the file is empty; a topology starts with a header row, \
             `Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, \
             Num Filter, Strides,` or `Layer, M, N, K,`"
                .into(),
        ));
    };
    let head: Vec<String> = fields(header)
        .iter()
        .map(|h| h.to_ascii_lowercase().replace(' ', ""))
        .collect();
    let format = if head.len() == 4 && head[1..] == ["m", "n", "k"] {
        TopologyFormat::Gemm
    } else if head.len() >= 8 && head[1].starts_with("ifmap") {
        TopologyFormat::Conv
    } else {
        return Err(err(
            hline,
            None,
            format!(
                "the header `{header}` names neither SCALE-Sim format; the first row must be \
                 `Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, \
                 Num Filter, Strides,` (convolutions) or `Layer, M, N, K,` (GEMMs)"
            ),
        ));
    };
    let mut layers = Vec::new();
    for (line, row) in rows {
        let f = fields(row);
        let columns: &[&str] = match format {
            TopologyFormat::Conv => &CONV_COLUMNS,
            TopologyFormat::Gemm => &GEMM_COLUMNS,
        };
        let (lo, hi) = match format {
            TopologyFormat::Conv => (8, 9),
            TopologyFormat::Gemm => (4, 4),
        };
        if f.len() < lo || f.len() > hi {
            let want = if lo == hi {
                format!("{lo}")
            } else {
                format!("{lo} or {hi}")
            };
            return Err(err(
                line,
                None,
                format!(
                    "{} fields where the {} format has {want} ({}); a comment after the last \
                     field starts with `#`",
                    f.len(),
                    match format {
                        TopologyFormat::Conv => "convolution",
                        TopologyFormat::Gemm => "GEMM",
                    },
                    columns[..hi].join(", ")
                ),
            ));
        }
        let name = f[0].to_string();
        if name.is_empty() {
            return Err(err(
                line,
                Some(columns[0]),
                "the layer has no name; give every row a name (it is kept in every report)".into(),
            ));
        }
        let mut num = Vec::with_capacity(f.len() - 1);
        for (i, v) in f.iter().enumerate().skip(1) {
            match v.parse::<usize>() {
                Ok(n) if n > 0 => num.push(n),
                _ => {
                    return Err(err(
                        line,
                        Some(columns[i]),
                        format!("`{v}` is not a positive integer; sizes and strides are ≥ 1"),
                    ));
                }
            }
        }
        let layer = match format {
            TopologyFormat::Gemm => {
                let (m, n, k) = (num[0], num[1], num[2]);
                TopoLayer {
                    name,
                    ifmap: [m, k],
                    filter: [1, k],
                    channels: 1,
                    filters: n,
                    stride: [1, 1],
                    groups: 1,
                    line,
                }
            }
            TopologyFormat::Conv => {
                let depthwise = name.contains("DP");
                let stride = [num[6], *num.get(7).unwrap_or(&num[6])];
                for (a, axis) in ["Height", "Width"].iter().enumerate() {
                    if num[2 + a] > num[a] {
                        return Err(err(
                            line,
                            Some(columns[3 + a]),
                            format!(
                                "the filter ({}) is larger than the input map ({}); IFMAP sizes \
                                 include the padding (SCALE-Sim's convention): add 2·padding to \
                                 IFMAP {axis}",
                                num[2 + a],
                                num[a]
                            ),
                        ));
                    }
                }
                TopoLayer {
                    name,
                    ifmap: [num[0], num[1]],
                    filter: [num[2], num[3]],
                    channels: if depthwise { 1 } else { num[4] },
                    filters: num[5],
                    stride,
                    groups: if depthwise { num[4] } else { 1 },
                    line,
                }
            }
        };
        layers.push(layer);
    }
    if layers.is_empty() {
        return Err(err(
            0,
            None,
            "the file has a header but no layers; add one row per layer".into(),
        ));
    }
    Ok(Topology {
        name: name.to_string(),
        format,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONV: &str = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n\
        \n\
        conv1, 230, 230, 7, 7, 3, 64, 2,\n\
        \tconv2_DP, 114, 114, 3, 3, 32, 1, 1,#dw\n\
        rect, 10, 20, 3, 5, 4, 8, 2, 3\n\
        fc, 1, 1, 1, 1, 2048, 1000, 1\n";

    #[test]
    fn conv_rows_follow_scale_sim_conventions() {
        let t = parse("t.csv", "t", CONV).unwrap();
        assert_eq!(t.format, TopologyFormat::Conv);
        assert_eq!(t.layers.len(), 4);
        let c1 = &t.layers[0];
        // (230 − 7) / 2 + 1 = 112: ResNet's 224 map with padding 3 on each side.
        assert_eq!(c1.ofmap(), [112, 112]);
        assert_eq!((c1.m(), c1.k(), c1.n(), c1.groups), (112 * 112, 147, 64, 1));
        assert_eq!(c1.line, 3);
        let dw = &t.layers[1];
        assert_eq!((dw.groups, dw.channels, dw.k(), dw.n()), (32, 1, 9, 1));
        assert_eq!(dw.macs(), 32 * 112 * 112 * 9);
        let r = &t.layers[2];
        assert_eq!(r.stride, [2, 3]);
        assert_eq!(r.ofmap(), [4, 6]);
        assert_eq!(r.k(), 3 * 5 * 4);
        let fc = &t.layers[3];
        assert_eq!((fc.m(), fc.k(), fc.n()), (1, 2048, 1000));
    }

    #[test]
    fn gemm_rows_are_scale_sims_convolutions() {
        let t = parse("g.csv", "g", "Layer, M, N, K,\nq, 128, 768, 64,\n").unwrap();
        assert_eq!(t.format, TopologyFormat::Gemm);
        let q = &t.layers[0];
        assert_eq!((q.m(), q.k(), q.n()), (128, 64, 768));
        assert_eq!(q.macs(), 128 * 64 * 768);
    }

    #[test]
    fn bad_files_name_line_column_and_fix() {
        let e = parse("x.csv", "x", "").unwrap_err();
        assert!(e.to_string().starts_with("x.csv: the file is empty"), "{e}");
        let e = parse("x.csv", "x", "a,b,c\n").unwrap_err();
        assert!(
            e.to_string().contains("names neither SCALE-Sim format"),
            "{e}"
        );
        let e = parse("x.csv", "x", "Layer, M, N, K,\n").unwrap_err();
        assert!(e.to_string().contains("no layers"), "{e}");
        let e = parse("x.csv", "x", "Layer, M, N, K,\nq, 128, 0, 64,\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.csv:2: column `N`: `0` is not a positive integer; sizes and strides are ≥ 1"
        );
        let e = parse("x.csv", "x", "Layer, M, N, K,\nq, 128, 64,\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("x.csv:2: 3 fields where the GEMM format has 4"),
            "{e}"
        );
        let head = CONV.lines().next().unwrap();
        let e = parse("x.csv", "x", &format!("{head}\nc, 5, 5, 7, 3, 1, 1, 1,\n")).unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.column.as_deref(), Some("Filter Height"));
        assert!(e.message.contains("include the padding"), "{e}");
        let e = parse("x.csv", "x", &format!("{head}\nc, 5, 5, 1, 1, x, 1, 1,\n")).unwrap_err();
        assert_eq!(e.column.as_deref(), Some("Channels"));
    }

    /// The shipped workloads parse and carry their published multiply-accumulate counts:
    /// ResNet-50 4.09 G (torchvision's figure for v1.5), MobileNet-v1 569 M (Howard et al.,
    /// Table 1), one BERT-base encoder layer at sequence 128 931 M (4·128·768² + 2·128·768·3072
    /// + 2·12·128²·64).
    #[test]
    fn shipped_workloads_have_their_published_mac_counts() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/workloads");
        for (file, layers, macs) in [
            ("resnet50.csv", 54, 4_089_184_256_u64),
            ("mobilenet_v1.csv", 28, 568_740_352),
            ("bert_base_encoder.csv", 30, 931_135_488),
        ] {
            let t = load(&Path::new(dir).join(file)).unwrap();
            assert_eq!(t.layers.len(), layers, "{file}");
            assert_eq!(
                t.layers.iter().map(TopoLayer::macs).sum::<u64>(),
                macs,
                "{file}"
            );
        }
        let bert = 4 * 128 * 768 * 768 + 2 * 128 * 768 * 3072 + 2 * 12 * 128 * 128 * 64;
        assert_eq!(bert, 931_135_488);
    }
}
