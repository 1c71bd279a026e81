//! RON config loading with errors that name the file, the line and column or the dotted field
//! path, the value and the rule (docs/style.md §2.4).
//!
//! [`load`] reads a file, [`parse`] reads text; both deserialize with serde and then run
//! [`Validate::validate`]. Config structs use `#[serde(deny_unknown_fields)]`, so a misspelled
//! field is a parse error that points at its line and column:
//!
//! ```text
//! models/designs/x.ron:4:17: Unexpected field named `adc_bit` in `Periphery`, expected either `adc_bits` or `dac_bits` instead; fix the field name
//! models/designs/x.ron: xbar.periphery.adc_bits = 0: must be in 1..=16
//! ```
//!
//! The loader enables RON's `implicit_some` extension, so an `Option<u8>` field may be written
//! `adc_bits: 8` as well as `adc_bits: Some(8)`.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use ron::extensions::Extensions;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One broken rule of a config value found by [`Validate::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path of the field from the file's root, e.g. `xbar.periphery.adc_bits`.
    pub field: String,
    /// The offending value as written (its `Display`).
    pub value: String,
    /// The rule it breaks, with its limit, e.g. `must be in 1..=16`.
    pub rule: String,
}

impl FieldError {
    /// A field error for `field` holding `value` that breaks `rule`.
    pub fn new(
        field: impl Into<String>,
        value: impl fmt::Display,
        rule: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            value: value.to_string(),
            rule: rule.into(),
        }
    }

    /// The same error seen from a parent struct: `prefix.field`.
    #[must_use]
    pub fn within(mut self, prefix: &str) -> Self {
        if !prefix.is_empty() {
            self.field = format!("{prefix}.{}", self.field);
        }
        self
    }

    /// Every broken rule of `errors` on one line, `; `-separated (`a = 0: must be ≥ 1; b = x:
    /// …`): the message of a crate error that wraps a `Vec<FieldError>`, e.g.
    /// `#[error("device config: {}", FieldError::join(.0))]`. The one such join of the
    /// workspace, so every crate words a list of broken rules alike.
    pub fn join(errors: &[FieldError]) -> String {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}: {}", self.field, self.value, self.rule)
    }
}

/// A float as a reader wants it in a message: plain for ordinary magnitudes, scientific
/// (`1e308`, `1e-16`) for huge or tiny ones, `NaN`/`inf` as Rust writes them.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if v.is_finite() && v != 0.0 && !(1e-6..1e15).contains(&a) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

/// [`num`] for an `f32`, in its own shortest form (`1e30`, not the widened f64's digits).
pub fn num32(v: f32) -> String {
    let a = v.abs();
    if v.is_finite() && v != 0.0 && !(1e-6..1e15).contains(&a) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

/// Checks the meaning of a deserialized config (ranges, consistency between fields).
///
/// Implementations report every broken rule, not just the first; [`Checks`] helps.
pub trait Validate {
    /// Returns all broken rules, with field paths relative to `self`.
    ///
    /// # Errors
    ///
    /// A non-empty list of [`FieldError`]s when any rule is broken.
    fn validate(&self) -> Result<(), Vec<FieldError>>;
}

/// Collects [`FieldError`]s while validating a config.
///
/// ```
/// use nacsim_core::config::{Checks, FieldError, Validate};
/// struct Periphery { adc_bits: u32 }
/// impl Validate for Periphery {
///     fn validate(&self) -> Result<(), Vec<FieldError>> {
///         let mut c = Checks::new();
///         c.check((1..=16).contains(&self.adc_bits), "adc_bits", self.adc_bits, "must be in 1..=16");
///         c.finish()
///     }
/// }
/// struct Xbar { periphery: Periphery }
/// impl Validate for Xbar {
///     fn validate(&self) -> Result<(), Vec<FieldError>> {
///         let mut c = Checks::new();
///         c.nested("periphery", &self.periphery);
///         c.finish()
///     }
/// }
/// let errs = Xbar { periphery: Periphery { adc_bits: 0 } }.validate().unwrap_err();
/// assert_eq!(errs[0].to_string(), "periphery.adc_bits = 0: must be in 1..=16");
/// ```
#[derive(Debug, Default)]
pub struct Checks {
    errors: Vec<FieldError>,
}

impl Checks {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error for `field` = `value` unless `ok`; returns `ok`.
    pub fn check(&mut self, ok: bool, field: &str, value: impl fmt::Display, rule: &str) -> bool {
        if !ok {
            self.errors.push(FieldError::new(field, value, rule));
        }
        ok
    }

    /// Records an error on `schema_version` unless `found` is the `supported` file-format version;
    /// returns whether it is.
    pub fn schema_version(&mut self, found: u32, supported: u32) -> bool {
        self.check(
            found == supported,
            "schema_version",
            found,
            &format!("must be {supported}"),
        )
    }

    /// Records an error.
    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    /// Validates a sub-config and records its errors under `prefix`.
    pub fn nested<V: Validate + ?Sized>(&mut self, prefix: &str, value: &V) {
        if let Err(errs) = value.validate() {
            self.errors
                .extend(errs.into_iter().map(|e| e.within(prefix)));
        }
    }

    /// `Ok` if nothing was recorded, else every recorded error.
    ///
    /// # Errors
    ///
    /// The recorded errors, in the order they were found.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

/// A config file that could not be read, parsed or validated (or a config that could not be
/// written).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The text is not valid RON for the expected type (syntax, unknown or missing field,
    /// wrong value type).
    #[error("{}:{line}:{col}: {msg}", path.display())]
    Parse {
        /// The file (or the name given to [`parse`]).
        path: PathBuf,
        /// 1-based line of the start of the offending token.
        line: usize,
        /// 1-based column of the start of the offending token.
        col: usize,
        /// The field involved, when the error names one (unknown, missing or duplicate field);
        /// its name only, not a dotted path.
        field: Option<String>,
        /// The RON/serde message followed by a hint.
        msg: String,
    },
    /// The config parsed but breaks one or more rules.
    #[error("{}", each_on_a_line(path, errors))]
    Invalid {
        /// The file (or the name given to [`parse`]).
        path: PathBuf,
        /// Every broken rule (non-empty).
        errors: Vec<FieldError>,
    },
    /// A value could not be serialized to RON.
    #[error("cannot write RON: {msg}")]
    Serialize {
        /// The serializer's message.
        msg: String,
    },
}

/// `<path>: <rule>`, one broken rule per line.
fn each_on_a_line(path: &Path, errors: &[FieldError]) -> String {
    let lines: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {e}", path.display()))
        .collect();
    lines.join("\n")
}

/// Reads, parses and validates the RON config at `path`.
///
/// # Errors
///
/// [`ConfigError::Io`] if the file cannot be read, [`ConfigError::Parse`] with line and column if
/// it is not valid RON for `T`, [`ConfigError::Invalid`] with every broken rule.
pub fn load<T: DeserializeOwned + Validate>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path)
}

thread_local! {
    /// Folders of the config files being parsed on this thread, innermost last (a design that
    /// names a device file parses that file inside its own parse).
    static BASES: std::cell::RefCell<Vec<PathBuf>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Pops the folder [`parse`] pushed, also when deserialization unwinds.
struct BaseGuard;

impl Drop for BaseGuard {
    fn drop(&mut self) {
        BASES.with(|b| b.borrow_mut().pop());
    }
}

/// The files a relative `path` named inside the config being parsed may mean, in the order to
/// try: relative to that config's folder, then to the working directory (the form the shipped
/// files use, `models/devices/x.ron` from the repository root). An absolute path is itself.
/// Outside a parse, only the working-directory reading.
pub fn relative_candidates(path: &str) -> Vec<PathBuf> {
    let p = Path::new(path);
    if p.is_absolute() {
        return vec![p.to_path_buf()];
    }
    let mut v = Vec::new();
    if let Some(base) = BASES.with(|b| b.borrow().last().cloned())
        && !base.as_os_str().is_empty()
    {
        v.push(base.join(p));
    }
    v.push(p.to_path_buf());
    v
}

/// Parses and validates RON `text`; `path` names the file in error messages, and its folder is
/// where a relative file path inside the text is looked for first ([`relative_candidates`]).
///
/// # Errors
///
/// As [`load`], without the I/O case.
pub fn parse<T: DeserializeOwned + Validate>(text: &str, path: &Path) -> Result<T, ConfigError> {
    BASES.with(|b| {
        b.borrow_mut()
            .push(path.parent().map(Path::to_path_buf).unwrap_or_default())
    });
    let _guard = BaseGuard;
    let options = ron::Options::default().with_default_extension(Extensions::IMPLICIT_SOME);
    // As `options.from_str`, with the deserializer wrapped to track the field path: RON's errors
    // give the line and column, the path says which field (`train.optimizer.Adam.eps`).
    let mut de = ron::Deserializer::from_str_with_options(text, &options)
        .map_err(|e| parse_error(path, e, None))?;
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let spanned = de.span_error(e.into_inner());
        parse_error(path, spanned, Some(field))
    })?;
    de.end()
        .map_err(|e| parse_error(path, de.span_error(e), None))?;
    value.validate().map_err(|errors| ConfigError::Invalid {
        path: path.to_owned(),
        errors,
    })?;
    Ok(value)
}

fn parse_error(path: &Path, e: ron::error::SpannedError, at: Option<String>) -> ConfigError {
    use ron::error::Error as E;
    let (field, hint) = match &e.code {
        E::NoSuchStructField { found, .. } => (Some(found.clone()), Some("fix the field name")),
        E::MissingStructField { field, .. } => (Some((*field).to_owned()), Some("add the field")),
        E::DuplicateStructField { field, .. } => {
            (Some((*field).to_owned()), Some("remove the duplicate"))
        }
        E::NoSuchEnumVariant { .. } => (None, Some("use one of the listed variants")),
        E::InvalidValueForType { .. } | E::Message(_) | E::IntegerOutOfBounds => {
            (None, Some("fix the value"))
        }
        _ => (None, None),
    };
    // The dotted path of the value being read (serde_path_to_error writes `.` for the root and
    // `?` for a step it cannot name).
    let at = at.filter(|p| !p.is_empty() && p != "." && p != "?");
    let code = match &at {
        Some(p) => format!("at {p}: {}", e.code),
        None => e.code.to_string(),
    };
    let msg = match hint {
        Some(h) => format!("{code}; {h}"),
        None => code,
    };
    ConfigError::Parse {
        path: path.to_owned(),
        line: e.span.start.line,
        col: e.span.start.col,
        field,
        msg,
    }
}

/// Serializes `value` as pretty RON (4-space indent, trailing newline) for writing a config.
///
/// # Errors
///
/// [`ConfigError::Serialize`] if serde reports an error for the value.
pub fn ron_pretty<T: Serialize + ?Sized>(value: &T) -> Result<String, ConfigError> {
    let pretty = ron::ser::PrettyConfig::default().indentor("    ");
    let mut s = ron::ser::to_string_pretty(value, pretty)
        .map_err(|e| ConfigError::Serialize { msg: e.to_string() })?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Periphery {
        adc_bits: u32,
        #[serde(default)]
        dac_bits: Option<u32>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Xbar {
        schema_version: u32,
        rows: u32,
        periphery: Periphery,
    }

    impl Validate for Periphery {
        fn validate(&self) -> Result<(), Vec<FieldError>> {
            let mut c = Checks::new();
            c.check(
                (1..=16).contains(&self.adc_bits),
                "adc_bits",
                self.adc_bits,
                "must be in 1..=16",
            );
            c.finish()
        }
    }

    impl Validate for Xbar {
        fn validate(&self) -> Result<(), Vec<FieldError>> {
            let mut c = Checks::new();
            c.check(self.rows > 0, "rows", self.rows, "must be at least 1");
            c.nested("periphery", &self.periphery);
            c.finish()
        }
    }

    fn p() -> &'static Path {
        Path::new("models/designs/x.ron")
    }

    #[test]
    fn field_errors_join_on_one_line() {
        let e = [
            FieldError::new("a", 0, "must be ≥ 1"),
            FieldError::new("b.c", "x", "must be y"),
        ];
        assert_eq!(
            FieldError::join(&e),
            "a = 0: must be ≥ 1; b.c = x: must be y"
        );
        assert_eq!(FieldError::join(&e[..1]), "a = 0: must be ≥ 1");
        assert_eq!(FieldError::join(&[]), "");
    }

    #[test]
    fn misspelled_field_reports_line_col_and_field() {
        let text = "(\n    schema_version: 1,\n    rows: 4,\n    periphery: (adc_bit: 8),\n)\n";
        let err = parse::<Xbar>(text, p()).unwrap_err();
        let ConfigError::Parse {
            line, col, field, ..
        } = &err
        else {
            panic!("expected a parse error, got {err:?}");
        };
        assert_eq!((*line, *col), (4, 17));
        assert_eq!(field.as_deref(), Some("adc_bit"));
        let s = err.to_string();
        assert!(s.starts_with("models/designs/x.ron:4:17: "), "{s}");
        assert!(s.contains("Unexpected field named `adc_bit`"), "{s}");
        assert!(s.contains("fix the field name"), "{s}");
    }

    #[test]
    fn missing_field_and_bad_value_are_parse_errors() {
        let err = parse::<Xbar>("(schema_version: 1, periphery: (adc_bits: 8))", p()).unwrap_err();
        assert!(matches!(&err, ConfigError::Parse { field: Some(f), .. } if f == "rows"));
        let err = parse::<Xbar>(
            "(schema_version: 1, rows: -3, periphery: (adc_bits: 8))",
            p(),
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::Parse { line: 1, .. }), "{err}");
        let err = parse::<Xbar>("(schema_version: 1, rows: 4, ", p()).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
    }

    #[test]
    fn type_errors_name_the_field_path_as_well_as_line_and_column() {
        let text =
            "(\n    schema_version: 1,\n    rows: 4,\n    periphery: (adc_bits: \"8\"),\n)\n";
        let err = parse::<Xbar>(text, p()).unwrap_err();
        let s = err.to_string();
        assert!(matches!(err, ConfigError::Parse { line: 4, .. }), "{s}");
        assert!(s.contains("at periphery.adc_bits: "), "{s}");
    }

    #[test]
    fn validation_errors_name_file_path_value_and_rule() {
        let err = parse::<Xbar>(
            "(schema_version: 1, rows: 0, periphery: (adc_bits: 0))",
            p(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "models/designs/x.ron: rows = 0: must be at least 1\n\
             models/designs/x.ron: periphery.adc_bits = 0: must be in 1..=16"
        );
    }

    #[test]
    fn implicit_some_and_pretty_round_trip() {
        let x: Xbar = parse(
            "(schema_version: 1, rows: 4, periphery: (adc_bits: 8, dac_bits: 4))",
            p(),
        )
        .unwrap();
        assert_eq!(x.periphery.dac_bits, Some(4));
        let text = ron_pretty(&x).unwrap();
        assert!(text.contains("    rows: 4,"), "{text}");
        let back: Xbar = parse(&text, p()).unwrap();
        assert_eq!(back, x);
    }

    #[test]
    fn load_reports_missing_file_and_reads_real_file() {
        let err = load::<Xbar>(Path::new("/nonexistent/x.ron")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read /nonexistent/x.ron: "),
            "{err}"
        );
        assert!(std::error::Error::source(&err).is_some());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.ron");
        std::fs::write(
            &path,
            "(schema_version: 1, rows: 2, periphery: (adc_bits: 6))",
        )
        .unwrap();
        let x: Xbar = load(&path).unwrap();
        assert_eq!(x.periphery.adc_bits, 6);
    }
}
