//! Safe file names from untrusted declared names: [`sanitize_file_name`]
//! and [`numbered`] for de-duplication (`invoice (1).pdf`).
//!
//! A safe name is a basename (no `/`, `\`), without NUL, control or
//! bidirectional-override characters, without a leading dot or trailing
//! dots and spaces, not a Windows reserved device name, valid UTF-8 in NFC,
//! at most 255 bytes with the extension kept, and never empty.
//!
//! This module does not touch the file system; creating files without
//! overwriting or following symlinks is the writer's job
//! ([`crate::dissect`]).

use unicode_normalization::UnicodeNormalization;

/// Longest name in bytes (the usual file-system limit).
pub const MAX_NAME_BYTES: usize = 255;

/// Reduces `name` to a safe file name (see the module documentation);
/// `fallback` is used when nothing is left. Idempotent.
pub fn sanitize_file_name(name: &str, fallback: &str) -> String {
    let mut current = sanitize_once(name);
    // Truncation or normalisation can, in rare cases, expose something the
    // previous pass removed; repeat until nothing changes.
    for _ in 0..4 {
        let next = sanitize_once(&current);
        if next == current {
            break;
        }
        current = next;
    }
    if current.is_empty() {
        let fb = sanitize_once(fallback);
        if fb.is_empty() {
            return "file".to_string();
        }
        return fb;
    }
    current
}

fn sanitize_once(name: &str) -> String {
    let nfc: String = name.nfc().collect();
    let base = nfc
        .split(['/', '\\'])
        .rev()
        .find(|s| !s.trim().is_empty())
        .unwrap_or("");
    let cleaned: String = base.chars().filter(|&c| !is_unsafe_char(c)).collect();
    let trimmed = cleaned
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    if trimmed.is_empty() {
        return String::new();
    }
    let mut out = if is_reserved(trimmed) {
        format!("_{trimmed}")
    } else {
        trimmed.to_string()
    };
    if out.len() > MAX_NAME_BYTES {
        out = truncate_keeping_extension(&out, MAX_NAME_BYTES);
    }
    out
}

fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{061C}'
                | '\u{FFFD}'
        )
}

/// CON, PRN, AUX, NUL, COM1–9, LPT1–9, in any case, with or without an
/// extension (Windows ignores everything from the first dot).
fn is_reserved(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or("").trim_end();
    let upper = stem.to_ascii_uppercase();
    match upper.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" => true,
        _ => {
            let b = upper.as_bytes();
            b.len() == 4
                && (upper.starts_with("COM") || upper.starts_with("LPT"))
                && (b'1'..=b'9').contains(&b[3])
        }
    }
}

/// Cuts the stem (on a character boundary) so the name fits in `max`
/// bytes, keeping a short extension.
fn truncate_keeping_extension(name: &str, max: usize) -> String {
    let (stem, ext) = split_extension(name);
    if ext.len() + 2 > max / 2 {
        return cut(name, max).trim_end_matches(['.', ' ']).to_string();
    }
    let room = max - ext.len();
    let stem = cut(stem, room).trim_end_matches(['.', ' ']);
    format!("{stem}{ext}")
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Splits `name.ext` into `name` and `.ext` (the extension with its dot;
/// empty when there is none).
pub fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 && dot + 1 < name.len() => name.split_at(dot),
        _ => (name, ""),
    }
}

/// The `n`th candidate for a name already taken: `name` itself for 0, then
/// `stem (n).ext`, still within [`MAX_NAME_BYTES`].
pub fn numbered(name: &str, n: usize) -> String {
    if n == 0 {
        return name.to_string();
    }
    let (stem, ext) = split_extension(name);
    let suffix = format!(" ({n})");
    let room = MAX_NAME_BYTES.saturating_sub(suffix.len() + ext.len());
    format!("{}{suffix}{ext}", cut(stem, room))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sanitizing() {
        let long = format!("{}.pdf", "é".repeat(200));
        let long_want = format!("{}.pdf", "é".repeat(125));
        let cases: Vec<(&str, &str)> = vec![
            ("invoice.pdf", "invoice.pdf"),
            ("../../etc/passwd", "passwd"),
            ("C:\\Users\\x\\evil.exe", "evil.exe"),
            ("dir/", "dir"),
            (".hidden", "hidden"),
            ("...", "fallback.bin"),
            ("", "fallback.bin"),
            ("a\0b\r\nc.txt", "abc.txt"),
            ("name. . ", "name"),
            ("CON", "_CON"),
            ("con.txt", "_con.txt"),
            ("Lpt9.pdf", "_Lpt9.pdf"),
            ("COM10.pdf", "COM10.pdf"),
            ("console.txt", "console.txt"),
            ("cafe\u{301}.txt", "café.txt"),
            ("invoice\u{202E}fdp.exe", "invoicefdp.exe"),
            ("  spaced  name .pdf ", "spaced  name .pdf"),
            (&long, &long_want),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize_file_name(input, "fallback.bin"), want, "{input:?}");
        }
    }

    #[test]
    fn numbering() {
        assert_eq!(numbered("invoice.pdf", 0), "invoice.pdf");
        assert_eq!(numbered("invoice.pdf", 1), "invoice (1).pdf");
        assert_eq!(numbered("README", 2), "README (2)");
        let long = format!("{}.pdf", "a".repeat(251));
        assert_eq!(numbered(&long, 12).len(), MAX_NAME_BYTES);
    }

    proptest! {
        #[test]
        fn sanitized_names_are_safe_and_stable(name in any::<String>()) {
            let s = sanitize_file_name(&name, "part-1.bin");
            prop_assert!(!s.is_empty());
            prop_assert!(s.len() <= MAX_NAME_BYTES);
            prop_assert!(!s.contains(['/', '\\', '\0']));
            prop_assert!(!s.chars().any(|c| c.is_control()));
            prop_assert!(!s.starts_with('.'));
            prop_assert!(!s.ends_with(['.', ' ']));
            prop_assert!(!is_reserved(&s));
            prop_assert_eq!(s.nfc().collect::<String>(), s.clone());
            prop_assert_eq!(sanitize_file_name(&s, "part-1.bin"), s.clone());
        }

        #[test]
        fn numbered_names_stay_safe(name in "[a-z.]{0,300}", n in 0usize..1000) {
            let s = sanitize_file_name(&name, "f");
            let candidate = numbered(&s, n);
            prop_assert!(candidate.len() <= MAX_NAME_BYTES);
        }
    }
}
