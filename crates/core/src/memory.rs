//! The memory guard: an estimate of what a request will allocate, checked against a limit
//! before anything large is allocated, so that an absurd network, batch or epoch count is
//! refused with a message instead of aborting the process on a failed allocation.
//!
//! The limit is `NACSIM_MEMORY_LIMIT` (bytes, or a number with `K`, `M`, `G` or `T`, binary
//! multiples: `8G` = 8·2³⁰ bytes) when set, else 3/4 of the machine's physical memory
//! (`MemTotal` of `/proc/meminfo` on Linux), else [`FALLBACK_LIMIT`].

/// Environment variable that sets the limit.
pub const ENV: &str = "NACSIM_MEMORY_LIMIT";
/// Limit used when neither the variable nor the physical memory is known: 8 GiB.
pub const FALLBACK_LIMIT: u64 = 8 << 30;

/// The limit in force and where it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Bytes.
    pub bytes: u64,
    /// Where it comes from, for messages (`NACSIM_MEMORY_LIMIT=8G`, `3/4 of physical memory`).
    pub source: String,
}

/// A request's memory estimate: named parts in bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Estimate {
    /// `(what, bytes)` parts, e.g. `("parameters", 4_000_000)`.
    pub parts: Vec<(String, u64)>,
}

impl Estimate {
    /// No parts.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a part of `bytes` bytes (0-byte parts are dropped).
    pub fn add(&mut self, what: impl Into<String>, bytes: u64) -> &mut Self {
        if bytes > 0 {
            self.parts.push((what.into(), bytes));
        }
        self
    }
    /// The sum of the parts in bytes, saturating at `u64::MAX`.
    pub fn total(&self) -> u64 {
        self.parts
            .iter()
            .fold(0u64, |a, (_, b)| a.saturating_add(*b))
    }
}

/// Errors of the memory guard.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// The estimate exceeds the limit.
    #[error(
        "{what} would need about {} of memory ({}), above the limit of {} ({}); make the network, \
         batch or epoch count smaller, or raise the limit with {ENV}=<bytes, or e.g. 32G> if the \
         machine has the memory",
        human(estimate.total()),
        estimate_parts(estimate),
        human(limit.bytes),
        limit.source
    )]
    TooLarge {
        /// What was asked (`nacsim info on net.ron`).
        what: String,
        /// The estimate.
        estimate: Estimate,
        /// The limit in force.
        limit: Limit,
    },
    /// `NACSIM_MEMORY_LIMIT` does not parse.
    #[error(
        "{ENV} = {value:?}: not a size; write a number of bytes, or one with K, M, G or T \
         (binary multiples), e.g. {ENV}=16G"
    )]
    BadSetting {
        /// The value found.
        value: String,
    },
}

/// Bytes in human units (`1.5 GiB`); sizes of 2⁶⁴ bytes or more read `≥ 16 EiB`.
pub fn human(bytes: u64) -> String {
    if bytes == u64::MAX {
        return "≥ 16 EiB (more than a 64-bit count)".into();
    }
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The parts of an estimate for a message (`weights 1.0 MiB + activations 2.0 MiB`).
fn estimate_parts(estimate: &Estimate) -> String {
    let parts: Vec<String> = estimate
        .parts
        .iter()
        .map(|(w, b)| format!("{w} {}", human(*b)))
        .collect();
    parts.join(" + ")
}

/// Parses a size: bytes (`1048576`) or a number with a binary suffix `K`, `M`, `G`, `T`
/// (optionally followed by `B` or `iB`, any case; `1.5G`). `None` if it does not parse or
/// exceeds `u64`.
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let body = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (num, shift) = match body.chars().last()? {
        'k' => (&body[..body.len() - 1], 10),
        'm' => (&body[..body.len() - 1], 20),
        'g' => (&body[..body.len() - 1], 30),
        't' => (&body[..body.len() - 1], 40),
        _ => (body, 0),
    };
    let num = num.trim();
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(1u64 << shift);
    }
    let v: f64 = num.parse().ok()?;
    let bytes = v * (1u64 << shift) as f64;
    (v.is_finite() && v >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Physical memory in bytes (`MemTotal` of `/proc/meminfo`), if known.
pub fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The limit in force: `NACSIM_MEMORY_LIMIT`, else 3/4 of physical memory, else
/// [`FALLBACK_LIMIT`].
///
/// # Errors
/// [`MemoryError::BadSetting`] if the variable is set but is not a size.
pub fn limit() -> Result<Limit, MemoryError> {
    if let Ok(v) = std::env::var(ENV) {
        let bytes = parse_size(&v).ok_or_else(|| MemoryError::BadSetting { value: v.clone() })?;
        return Ok(Limit {
            bytes,
            source: format!("{ENV}={v}"),
        });
    }
    Ok(match physical_memory() {
        Some(m) => Limit {
            bytes: m / 4 * 3,
            source: format!(
                "3/4 of the {} of physical memory; set {ENV} to change it",
                human(m)
            ),
        },
        None => Limit {
            bytes: FALLBACK_LIMIT,
            source: format!("physical memory unknown; set {ENV} to change it"),
        },
    })
}

/// `Ok` if `estimate` fits the [`limit`]; `what` names the request in the message.
///
/// # Errors
/// [`MemoryError::TooLarge`] with the estimate, its parts, the limit and how to raise it;
/// [`MemoryError::BadSetting`] for an unreadable `NACSIM_MEMORY_LIMIT`.
pub fn check(what: &str, estimate: &Estimate) -> Result<(), MemoryError> {
    let limit = limit()?;
    if estimate.total() > limit.bytes {
        return Err(MemoryError::TooLarge {
            what: what.to_string(),
            estimate: estimate.clone(),
            limit,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("8G"), Some(8 << 30));
        assert_eq!(parse_size("8GiB"), Some(8 << 30));
        assert_eq!(parse_size("512m"), Some(512 << 20));
        assert_eq!(parse_size("1.5K"), Some(1536));
        assert_eq!(parse_size("2T"), Some(2 << 40));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("-1G"), None);
        assert_eq!(parse_size("99999999999T"), None);
    }

    #[test]
    fn the_message_gives_estimate_parts_limit_and_the_fix() {
        let mut e = Estimate::new();
        e.add("parameters", 3 << 30).add("activations", 1 << 30);
        assert_eq!(e.total(), 4 << 30);
        let err = MemoryError::TooLarge {
            what: "nacsim info on n.ron".into(),
            estimate: e,
            limit: Limit {
                bytes: 1 << 30,
                source: "NACSIM_MEMORY_LIMIT=1G".into(),
            },
        }
        .to_string();
        assert!(err.contains("about 4.0 GiB"), "{err}");
        assert!(
            err.contains("parameters 3.0 GiB + activations 1.0 GiB"),
            "{err}"
        );
        assert!(
            err.contains("limit of 1.0 GiB (NACSIM_MEMORY_LIMIT=1G)"),
            "{err}"
        );
        assert!(err.contains("NACSIM_MEMORY_LIMIT=<bytes"), "{err}");
        let mut big = Estimate::new();
        big.add("a", u64::MAX).add("b", 5);
        assert_eq!(big.total(), u64::MAX);
    }

    #[test]
    fn physical_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(physical_memory().is_some_and(|m| m > 1 << 20));
        }
    }
}
