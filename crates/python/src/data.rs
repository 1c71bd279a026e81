//! Images and labels handed over from Python arrays (numpy `uint8[N, C, H, W]` or `float32`
//! in [0, 1], labels `int[N]`), checked and turned into the simulator's 8-bit [`Dataset`].

use nacsim_nn::data::Dataset;
use nacsim_nn::network::Shape;

use crate::errors::PyInputError;

/// Element type of an image array as the Python side passes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelType {
    /// `uint8`: pixel values 0..=255, as in IDX files.
    U8,
    /// `float32` (little-endian) in [0, 1]: pixel `p` is `round(255 · x)`, so an image that an
    /// 8-bit dataset scaled by 1/255 comes back exactly.
    F32,
}

impl PixelType {
    /// `"uint8"` or `"float32"` (the names the Python side passes).
    pub fn parse(s: &str) -> Result<Self, PyInputError> {
        match s {
            "uint8" => Ok(PixelType::U8),
            "float32" => Ok(PixelType::F32),
            other => Err(PyInputError::data(
                "images.dtype",
                other,
                "give uint8 pixels (0..255) or float32 pixels in [0, 1]",
            )),
        }
    }

    fn size(self) -> usize {
        match self {
            PixelType::U8 => 1,
            PixelType::F32 => 4,
        }
    }
}

/// An image array: raw bytes, element type, shape `[N, C, H, W]`.
#[derive(Clone, Debug)]
pub struct ImageArray {
    /// The elements, C order.
    pub bytes: Vec<u8>,
    /// Their type.
    pub pixel: PixelType,
    /// `[N, C, H, W]`.
    pub shape: [usize; 4],
}

impl ImageArray {
    /// The images as 8-bit pixels, `field` naming the argument in errors.
    ///
    /// # Errors
    /// A byte count that does not match the shape, an empty array, a float pixel outside
    /// [0, 1] or not finite.
    pub fn pixels(&self, field: &str) -> Result<Vec<u8>, PyInputError> {
        let [n, c, h, w] = self.shape;
        let count = n
            .checked_mul(c)
            .and_then(|x| x.checked_mul(h))
            .and_then(|x| x.checked_mul(w));
        if count.and_then(|x| x.checked_mul(self.pixel.size())) != Some(self.bytes.len()) {
            return Err(PyInputError::data(
                field,
                format!("{} bytes", self.bytes.len()),
                format!("do not make an array of shape {:?}", self.shape),
            ));
        }
        if n == 0 || c == 0 || h == 0 || w == 0 {
            return Err(PyInputError::data(
                &format!("{field}.shape"),
                format!("{:?}", self.shape),
                "give at least one image of at least one pixel",
            ));
        }
        match self.pixel {
            PixelType::U8 => Ok(self.bytes.clone()),
            PixelType::F32 => self
                .bytes
                .chunks_exact(4)
                .enumerate()
                .map(|(i, b)| {
                    let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    if x.is_finite() && (0.0..=1.0).contains(&x) {
                        // In range, so the rounded product is an exact integer in 0..=255.
                        Ok((x * 255.0).round() as u8)
                    } else {
                        Err(PyInputError::data(
                            &format!("{field}[{}]", flat_index(i, self.shape)),
                            x,
                            "float pixels must be in [0, 1] (pixel / 255); pass uint8 arrays for 0..255 values",
                        ))
                    }
                })
                .collect(),
        }
    }
}

/// `i`, a flat C-order index into `shape`, as `n, c, y, x`.
fn flat_index(i: usize, shape: [usize; 4]) -> String {
    let [_, c, h, w] = shape;
    let (img, rest) = (i / (c * h * w), i % (c * h * w));
    format!(
        "{img}, {}, {}, {}",
        rest / (h * w),
        rest % (h * w) / w,
        rest % w
    )
}

/// A labelled dataset (and optional calibration images) from Python arrays.
#[derive(Clone, Debug)]
pub struct ArrayData {
    /// The evaluation images.
    pub images: ImageArray,
    /// One label per image.
    pub labels: Vec<i64>,
    /// Images that set the int8 scales (none: the evaluation images do, and the report warns).
    pub calibration: Option<ImageArray>,
}

impl ArrayData {
    /// The report's description of the images.
    pub fn describe(&self) -> String {
        let [n, c, h, w] = self.images.shape;
        format!("arrays ({n} images of {c}x{h}x{w})")
    }

    /// The evaluation images as a dataset of `classes` classes.
    ///
    /// # Errors
    /// As [`ImageArray::pixels`]; a label count that is not one per image; a label outside
    /// `0..classes`.
    pub fn dataset(&self, classes: usize) -> Result<Dataset, PyInputError> {
        let pixels = self.images.pixels("images")?;
        let [n, c, h, w] = self.images.shape;
        if self.labels.len() != n {
            return Err(PyInputError::data(
                "labels",
                format!("{} labels", self.labels.len()),
                format!("give one label per image ({n} images)"),
            ));
        }
        let limit = classes.min(256);
        let labels = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                u8::try_from(l)
                    .ok()
                    .filter(|&b| usize::from(b) < limit)
                    .ok_or_else(|| {
                        PyInputError::data(
                            &format!("labels[{i}]"),
                            l,
                            format!("labels must be in 0..{limit} (the network's classes)"),
                        )
                    })
            })
            .collect::<Result<Vec<u8>, _>>()?;
        Ok(Dataset {
            name: self.describe(),
            shape: Shape::new(c, h, w),
            pixels,
            labels,
            classes,
        })
    }

    /// The calibration images as an unlabelled dataset (labels 0), if given.
    ///
    /// # Errors
    /// As [`ImageArray::pixels`]; images of another shape than the evaluation images.
    pub fn calibration_set(&self, classes: usize) -> Result<Option<Dataset>, PyInputError> {
        let Some(cal) = &self.calibration else {
            return Ok(None);
        };
        let pixels = cal.pixels("calibration")?;
        let [n, c, h, w] = cal.shape;
        if cal.shape[1..] != self.images.shape[1..] {
            return Err(PyInputError::data(
                "calibration.shape",
                format!("{:?}", cal.shape),
                format!(
                    "calibration images must have the evaluation images' shape (C, H, W) = {:?}",
                    &self.images.shape[1..]
                ),
            ));
        }
        Ok(Some(Dataset {
            name: format!("arrays ({n} calibration images of {c}x{h}x{w})"),
            shape: Shape::new(c, h, w),
            pixels,
            labels: vec![0; n],
            classes,
        }))
    }
}
