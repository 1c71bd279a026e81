//! A tokenizer-level RON (and JSON) mutator and the safetensors header mutator of the
//! generative robustness test.

use proptest::prelude::*;
use proptest::sample::Index;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tok {
    Num,
    Str,
    Ident,
    Punct(u8),
}

/// Tokens of `s` with their byte ranges; comments and whitespace are skipped.
fn tokenize(s: &[u8]) -> Vec<(Tok, usize, usize)> {
    let mut t = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
        } else if s[i..].starts_with(b"//") {
            while i < s.len() && s[i] != b'\n' {
                i += 1;
            }
        } else if s[i..].starts_with(b"/*") {
            i += 2;
            while i < s.len() && !s[i..].starts_with(b"*/") {
                i += 1;
            }
            i = (i + 2).min(s.len());
        } else if c == b'"' {
            i += 1;
            while i < s.len() && s[i] != b'"' {
                i += if s[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(s.len());
            t.push((Tok::Str, start, i));
        } else if c.is_ascii_digit()
            || ((c == b'-' || c == b'+' || c == b'.')
                && s.get(i + 1)
                    .is_some_and(|d| d.is_ascii_digit() || *d == b'.'))
        {
            i += 1;
            while i < s.len() {
                let d = s[i];
                let exp_sign = (d == b'-' || d == b'+') && matches!(s[i - 1], b'e' | b'E');
                if d.is_ascii_alphanumeric() || d == b'.' || d == b'_' || exp_sign {
                    i += 1;
                } else {
                    break;
                }
            }
            t.push((Tok::Num, start, i));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'_') {
                i += 1;
            }
            t.push((Tok::Ident, start, i));
        } else {
            i += 1;
            t.push((Tok::Punct(c), start, i));
        }
    }
    t
}

/// An entry of a bracketed group: a `key: value` field or map entry, or a list/tuple element.
#[derive(Clone, Copy, Debug)]
struct Item {
    /// Byte range of the whole entry.
    span: (usize, usize),
    /// Byte range of its value.
    value: (usize, usize),
    /// Byte range of the comma that follows it, if any.
    comma: Option<(usize, usize)>,
    /// Byte range of its key, if it is a `key: value` entry.
    key: Option<(usize, usize)>,
    /// Nesting depth of its group (1 = the top-level group).
    depth: usize,
}

/// The entries of every bracketed group of `s`.
fn items(s: &[u8]) -> Vec<Item> {
    let toks = tokenize(s);
    let mut out = Vec::new();
    // Open brackets: (token index).
    let mut stack: Vec<usize> = Vec::new();
    // Start token of the current entry of each open group.
    let mut entry_start: Vec<usize> = Vec::new();
    let mut push_item = |toks: &[(Tok, usize, usize)], a: usize, b: usize, depth: usize| {
        if a >= b {
            return;
        }
        let comma = match toks.get(b) {
            Some(&(Tok::Punct(b','), x, y)) => Some((x, y)),
            _ => None,
        };
        let keyed = b - a >= 3
            && matches!(toks[a].0, Tok::Ident | Tok::Str)
            && toks[a + 1].0 == Tok::Punct(b':');
        let (key, vstart) = if keyed {
            (Some((toks[a].1, toks[a].2)), a + 2)
        } else {
            (None, a)
        };
        out.push(Item {
            span: (toks[a].1, toks[b - 1].2),
            value: (toks[vstart].1, toks[b - 1].2),
            comma,
            key,
            depth,
        });
    };
    for (k, &(tok, _, _)) in toks.iter().enumerate() {
        match tok {
            Tok::Punct(b'(' | b'[' | b'{') => {
                stack.push(k);
                entry_start.push(k + 1);
            }
            Tok::Punct(b')' | b']' | b'}') if !stack.is_empty() => {
                stack.pop();
                let a = entry_start.pop().expect("pushed with the bracket");
                push_item(&toks, a, k, stack.len() + 1);
            }
            Tok::Punct(b',') => {
                if let Some(a) = entry_start.last_mut() {
                    let start = *a;
                    *a = k + 1;
                    push_item(&toks, start, k, stack.len());
                }
            }
            _ => {}
        }
    }
    out
}

/// Replacement numbers: extreme, non-finite, negative, out of every integer range.
const EXTREMES: &[&str] = &[
    "1e308",
    "-1e308",
    "inf",
    "-inf",
    "NaN",
    "-0.0",
    "0",
    "-1",
    "18446744073709551615",
    "9223372036854775808",
    "4294967295",
    "1e-308",
    "0.5",
];

/// Values of other types for type swaps.
const SWAPS: &[&str] = &[
    "0", "1.5", "\"x\"", "\"\"", "[]", "[1, 2]", "true", "()", "None", "Some(1)", "(a: 1)",
];

/// One mutation: its kind and two positions, resolved against the file it is applied to.
#[derive(Clone, Debug)]
pub(super) struct Mutation {
    op: u8,
    a: Index,
    b: Index,
}

pub(super) fn mutation() -> impl Strategy<Value = Mutation> {
    (0u8..6, any::<Index>(), any::<Index>()).prop_map(|(op, a, b)| Mutation { op, a, b })
}

fn splice(s: &[u8], (a, b): (usize, usize), with: &[u8]) -> Vec<u8> {
    let mut v = s[..a].to_vec();
    v.extend_from_slice(with);
    v.extend_from_slice(&s[b..]);
    v
}

fn show(s: &[u8], (a, b): (usize, usize)) -> String {
    let t = String::from_utf8_lossy(&s[a..b]);
    if t.len() > 60 {
        format!("{}…", t.chars().take(60).collect::<String>())
    } else {
        t.into_owned()
    }
}

/// Applies `m` to RON (or JSON) text; returns the mutant and what was done. `truncate: false`
/// leaves truncation out (for safetensors headers, whose truncation is done on the bytes).
pub(super) fn mutate_text(s: &[u8], m: &Mutation, truncate: bool) -> (Vec<u8>, String) {
    let its = items(s);
    let nums: Vec<(usize, usize)> = tokenize(s)
        .into_iter()
        .filter(|t| t.0 == Tok::Num)
        .map(|t| (t.1, t.2))
        .collect();
    let op = if truncate { m.op % 6 } else { 1 + m.op % 5 };
    match op {
        1 | 2 if !its.is_empty() => {
            let it = its[m.a.index(its.len())];
            if op == 1 {
                let end = it.comma.map_or(it.span.1, |c| c.1);
                (
                    splice(s, (it.span.0, end), b""),
                    format!("deleted entry `{}` at byte {}", show(s, it.span), it.span.0),
                )
            } else {
                let mut copy = s[it.span.0..it.span.1].to_vec();
                copy.extend_from_slice(b", ");
                (
                    splice(s, (it.span.0, it.span.0), &copy),
                    format!(
                        "duplicated entry `{}` at byte {}",
                        show(s, it.span),
                        it.span.0
                    ),
                )
            }
        }
        3 if !its.is_empty() => {
            let it = its[m.a.index(its.len())];
            let with = SWAPS[m.b.index(SWAPS.len())];
            (
                splice(s, it.value, with.as_bytes()),
                format!(
                    "value `{}` at byte {} swapped for `{with}`",
                    show(s, it.value),
                    it.value.0
                ),
            )
        }
        4 | 5 if !nums.is_empty() => {
            let n = nums[m.a.index(nums.len())];
            let with = EXTREMES[m.b.index(EXTREMES.len())];
            (
                splice(s, n, with.as_bytes()),
                format!("number `{}` at byte {} set to `{with}`", show(s, n), n.0),
            )
        }
        _ if truncate && !s.is_empty() => {
            let at = m.a.index(s.len());
            (s[..at].to_vec(), format!("truncated at byte {at}"))
        }
        _ => (s.to_vec(), "unchanged".into()),
    }
}

/// Applies `m` to a safetensors file: truncation, a flipped header byte, or a mutation of the
/// JSON header (with the length prefix updated).
pub(super) fn mutate_safetensors(s: &[u8], m: &Mutation) -> (Vec<u8>, String) {
    let hlen = u64::from_le_bytes(s[..8].try_into().expect("8 bytes")) as usize;
    let header_end = (8 + hlen).min(s.len());
    match m.op % 3 {
        0 => {
            let at = m.a.index(s.len());
            (s[..at].to_vec(), format!("truncated at byte {at}"))
        }
        1 => {
            let at = m.a.index(header_end);
            let mask = 1 + m.b.index(255) as u8;
            let mut v = s.to_vec();
            v[at] ^= mask;
            (v, format!("header byte {at} xor {mask:#04x}"))
        }
        _ => {
            let inner = Mutation {
                op: m.op / 3,
                a: m.a,
                b: m.b,
            };
            let (h, what) = mutate_text(&s[8..header_end], &inner, false);
            let mut v = (h.len() as u64).to_le_bytes().to_vec();
            v.extend_from_slice(&h);
            v.extend_from_slice(&s[header_end..]);
            (v, format!("header: {what}"))
        }
    }
}

/// Sets the top-level field `key` of a RON file to `value` (added when missing): the cheap
/// settings applied to sweep files before they are mutated.
pub(super) fn set_field(text: &str, key: &str, value: &str) -> String {
    let s = text.as_bytes();
    let found = items(s)
        .into_iter()
        .find(|it| it.depth == 1 && it.key.is_some_and(|k| &s[k.0..k.1] == key.as_bytes()));
    match found {
        Some(it) => String::from_utf8(splice(s, it.value, value.as_bytes())).expect("utf-8"),
        None => {
            let open = tokenize(s)
                .into_iter()
                .find(|t| t.0 == Tok::Punct(b'('))
                .expect("a RON struct")
                .2;
            String::from_utf8(splice(
                s,
                (open, open),
                format!(" {key}: {value},").as_bytes(),
            ))
            .expect("utf-8")
        }
    }
}

#[test]
fn the_mutator_finds_fields_list_entries_and_numbers() {
    let s = br#"( a: 1, b: [2.5, -3e-4], c: {"k": 4}, d: Some((1, 2)), e: "x,y" ) // c: 9"#;
    let its = items(s);
    let keys: Vec<String> = its
        .iter()
        .filter_map(|i| i.key.map(|k| show(s, k)))
        .collect();
    let mut keys = keys;
    keys.sort();
    assert_eq!(keys, ["\"k\"", "a", "b", "c", "d", "e"]);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut idx = || {
        use proptest::strategy::ValueTree as _;
        any::<Index>().new_tree(&mut runner).unwrap().current()
    };
    let m = Mutation {
        op: 3,
        a: idx(),
        b: idx(),
    };
    let swapped = mutate_text(s, &m, true);
    assert!(swapped.1.starts_with("value `"), "{}", swapped.1);
    let nums: Vec<String> = tokenize(s)
        .iter()
        .filter(|t| t.0 == Tok::Num)
        .map(|t| show(s, (t.1, t.2)))
        .collect();
    assert_eq!(nums, ["1", "2.5", "-3e-4", "4", "1", "2"]);
    assert_eq!(set_field("(a: 1, b: 2)", "b", "7"), "(a: 1, b: 7)");
    assert_eq!(set_field("(a: 1)", "z", "3"), "( z: 3,a: 1)");
}
