//! Bare op names in network files: `MatMul`, `Softmax` and `LayerNorm` written like the unit
//! kinds (`Add`, `Flatten`).
//!
//! RON (the `ron` crate, 0.12) reads a struct variant only with parentheses, so `MatMul`, whose
//! one field `transpose_b` has a default, would have to be written `MatMul()`. Before parsing,
//! [`bare_ops`] rewrites every bare `MatMul` token (and `Softmax`, `LayerNorm`, whose fields
//! also all have defaults; outside strings and comments, not followed by `(`) to `MatMul()`;
//! `MatMul()` and `MatMul(transpose_b: true)` are left as written. A
//! parse error later on the same line reports a column 2 further right per rewritten token.

use std::borrow::Cow;

/// Op names that may be written bare: struct variants of
/// [`LayerSpec`](super::LayerSpec) whose fields all have defaults.
pub const BARE_OPS: [&str; 3] = ["MatMul", "Softmax", "LayerNorm"];

/// `text` with every bare op of [`BARE_OPS`] given its `()` (see the module doc); borrowed when
/// nothing changes.
pub fn bare_ops(text: &str) -> Cow<'_, str> {
    if !BARE_OPS.iter().any(|op| text.contains(op)) {
        return Cow::Borrowed(text);
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 8);
    let mut i = 0;
    let mut copied = 0;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        match b[i] {
            b'"' => {
                // A string: skip to its closing quote (escapes included).
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            c if ident(c) => {
                let start = i;
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
                let word = &text[start..i];
                if BARE_OPS.contains(&word) {
                    let next = b[i..].iter().find(|c| !c.is_ascii_whitespace());
                    if next != Some(&b'(') {
                        out.push_str(&text[copied..i]);
                        out.push_str("()");
                        copied = i;
                    }
                }
            }
            _ => i += 1,
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied.min(text.len())..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::bare_ops;

    #[test]
    fn bare_matmul_gets_parentheses_and_nothing_else_changes() {
        assert_eq!(bare_ops("op: MatMul, x"), "op: MatMul(), x");
        assert_eq!(bare_ops("op: MatMul}"), "op: MatMul()}");
        assert_eq!(bare_ops("op: MatMul"), "op: MatMul()");
        assert_eq!(
            bare_ops("op: Softmax, op: LayerNorm)"),
            "op: Softmax(), op: LayerNorm())"
        );
        assert_eq!(bare_ops("Softmax(axis: H)"), "Softmax(axis: H)");
        for same in [
            "op: MatMul()",
            "op: MatMul (transpose_b: true)",
            "name: \"MatMul\"",
            "// MatMul here\n",
            "/* MatMul */",
            "op: MatMulX, MyMatMul",
            "name: \"a \\\" MatMul\"",
        ] {
            assert_eq!(bare_ops(same), same, "{same}");
        }
    }
}
