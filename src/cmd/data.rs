//! Dataset selection shared by the subcommands.

use std::path::{Path, PathBuf};

use nacsim_nn::data::{Dataset, Split};

use crate::CliResult;

/// `--<flag> K` as given, refusing 0 (an evaluation of no image has no accuracy).
///
/// # Errors
/// `K = 0`, naming the flag.
pub fn check_limit(flag: &str, limit: Option<usize>) -> CliResult<Option<usize>> {
    if limit == Some(0) {
        return Err(format!(
            "--{flag} 0: must be at least 1 (an accuracy over no image means nothing); omit --{flag} to use every image"
        )
        .into());
    }
    Ok(limit)
}

/// Where test images come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// The 2,000-image Fashion-MNIST test sample embedded in the binary.
    Bundled,
    /// IDX files in a folder (`t10k-*` / `train-*`, gz or raw).
    Dir(PathBuf),
}

impl Source {
    /// `--data DIR` if given, else the bundled sample.
    pub fn from_arg(data: Option<&Path>) -> Self {
        data.map_or(Source::Bundled, |d| Source::Dir(d.to_path_buf()))
    }

    /// Load the split (the bundled sample has only test images), keeping the first `limit`.
    pub fn load(&self, split: Split, limit: Option<usize>) -> CliResult<Dataset> {
        let mut d = match self {
            Source::Bundled => {
                if split != Split::Test {
                    return Err("the bundled sample holds test images only; pass --data DIR for a training split".into());
                }
                Dataset::bundled_sample()
            }
            Source::Dir(dir) => Dataset::load_dir(dir, split)?,
        };
        if let Some(k) = limit {
            d = d.limit(k);
        }
        Ok(d)
    }

    /// [`Source::load`], checking that the images fit the input of `model` (named `label`).
    pub fn load_for(
        &self,
        split: Split,
        limit: Option<usize>,
        model: &nacsim_nn::model::Model,
        label: &str,
    ) -> CliResult<Dataset> {
        let data = self.load(split, limit)?;
        if data.shape != model.spec.input {
            return Err(format!(
                "{}: images are {} (c x h x w) but the network {label} expects input {}; pass a dataset that fits",
                self.describe(),
                data.shape,
                model.spec.input
            )
            .into());
        }
        Ok(data)
    }

    /// Short description for reports.
    pub fn describe(&self) -> String {
        match self {
            Source::Bundled => "bundled Fashion-MNIST sample (first 2,000 test images)".into(),
            Source::Dir(d) => d.display().to_string(),
        }
    }
}
