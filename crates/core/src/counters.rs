//! Named action counters, bumped by timing models and costed afterwards by an
//! [`EnergyTable`](crate::EnergyTable).
//!
//! Names are plural action nouns (`shift_adds`, `adc_conversions`, `sram_reads`, `write_pulses`),
//! the same keys an energy table prices. Storage is a `BTreeMap`, so iteration, sums and serialized
//! output are in a deterministic (lexicographic) order.

use std::collections::BTreeMap;
use std::collections::btree_map;

use serde::{Deserialize, Serialize};

/// Counts of hardware actions by name (`shift_adds` → 1024).
///
/// Counts saturate at `u64::MAX` instead of wrapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Counters {
    counts: BTreeMap<String, u64>,
}

impl Counters {
    /// An empty set of counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` occurrences of action `name`, creating the counter if needed.
    ///
    /// Adding 0 still registers the name, so a report can show an action that never happened.
    pub fn add(&mut self, name: &str, n: u64) {
        match self.counts.get_mut(name) {
            Some(c) => *c = c.saturating_add(n),
            None => {
                self.counts.insert(name.to_owned(), n);
            }
        }
    }

    /// The count of action `name`, or 0 if it was never counted.
    pub fn get(&self, name: &str) -> u64 {
        self.counts.get(name).copied().unwrap_or(0)
    }

    /// Whether action `name` has been registered (even with a count of 0).
    pub fn contains(&self, name: &str) -> bool {
        self.counts.contains_key(name)
    }

    /// Adds every count of `other` into `self`.
    pub fn merge(&mut self, other: &Counters) {
        for (name, &n) in &other.counts {
            self.add(name, n);
        }
    }

    /// `(name, count)` pairs in lexicographic name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.counts.iter().map(|(k, &v)| (k.as_str(), v))
    }

    /// Number of distinct action names.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether no action has been registered.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The underlying map, for serialization-adjacent uses.
    pub fn as_map(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }
}

impl<'a> IntoIterator for &'a Counters {
    type Item = (&'a String, &'a u64);
    type IntoIter = btree_map::Iter<'a, String, u64>;
    fn into_iter(self) -> Self::IntoIter {
        self.counts.iter()
    }
}

impl<'a> FromIterator<(&'a str, u64)> for Counters {
    /// Collects `(name, count)` pairs, summing repeated names.
    fn from_iter<I: IntoIterator<Item = (&'a str, u64)>>(iter: I) -> Self {
        let mut c = Counters::new();
        for (name, n) in iter {
            c.add(name, n);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_get_merge_in_name_order() {
        let mut a = Counters::new();
        a.add("sram_reads", 3);
        a.add("shift_adds", 10);
        a.add("sram_reads", 2);
        assert_eq!(a.get("sram_reads"), 5);
        assert_eq!(a.get("adc_conversions"), 0);
        let b: Counters = [("adc_conversions", 7), ("shift_adds", 1)]
            .into_iter()
            .collect();
        a.merge(&b);
        let names: Vec<_> = a.iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["adc_conversions", "shift_adds", "sram_reads"]);
        assert_eq!(a.get("shift_adds"), 11);
        assert_eq!(a.len(), 3);
    }

    #[test]
    fn counts_saturate() {
        let mut a = Counters::new();
        a.add("x", u64::MAX);
        a.add("x", 5);
        assert_eq!(a.get("x"), u64::MAX);
    }

    #[test]
    fn serializes_as_a_sorted_map() {
        let c: Counters = [("b_ops", 2), ("a_ops", 1)].into_iter().collect();
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"a_ops":1,"b_ops":2}"#
        );
    }
}
