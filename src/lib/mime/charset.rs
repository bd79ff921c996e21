//! Text in a declared charset to UTF-8: encoding_rs labels, a few aliases
//! real mail uses, UTF-7 by hand, and guesses when the label is missing,
//! unknown or wrong (UTF-8 if the bytes are valid UTF-8, else
//! windows-1252), each guess reported. Text that is UTF-8 but for a few
//! bad bytes (a name cut in the middle of a character) keeps its UTF-8:
//! only the bad bytes are read as windows-1252.
//!
//! It does not detect charsets statistically.

use encoding_rs::Encoding;

/// Decodes `bytes` declared as `label` (or undeclared) to a string. The
/// second value says what had to be guessed, if anything.
pub fn decode(bytes: &[u8], label: Option<&str>) -> (String, Option<String>) {
    let label = label
        .map(|l| {
            l.trim()
                .trim_matches(|c| c == '"' || c == '\'')
                .to_ascii_lowercase()
        })
        .filter(|l| !l.is_empty());
    let Some(label) = label else {
        return match std::str::from_utf8(bytes) {
            Ok(s) => (s.to_string(), None),
            Err(_) => {
                let (text, how) = repair(bytes);
                (text, Some(format!("8-bit text without a charset: {how}")))
            }
        };
    };
    if matches!(
        label.as_str(),
        "utf-7" | "utf7" | "x-utf-7" | "unicode-1-1-utf-7" | "csunicode11utf7"
    ) {
        return (decode_utf7(bytes), None);
    }
    let Some(encoding) = lookup(&label) else {
        return match std::str::from_utf8(bytes) {
            Ok(s) => (
                s.to_string(),
                (!bytes.is_ascii()).then(|| format!("unknown charset {label:?}: guessed UTF-8")),
            ),
            Err(_) => {
                let (text, how) = repair(bytes);
                (text, Some(format!("unknown charset {label:?}: {how}")))
            }
        };
    };
    if bytes.is_ascii() && encoding.is_ascii_compatible() {
        // Fast path, and always right for ASCII-compatible charsets.
        return (String::from_utf8_lossy(bytes).into_owned(), None);
    }
    if encoding == encoding_rs::WINDOWS_1252
        && let Ok(s) = std::str::from_utf8(bytes)
    {
        // Declared ASCII or Latin-1 but the 8-bit bytes form valid UTF-8:
        // real Latin-1 text almost never does.
        return (
            s.to_string(),
            Some(format!("declared {label:?} but the text is UTF-8")),
        );
    }
    let (text, used, had_errors) = encoding.decode(bytes);
    if had_errors {
        if encoding == encoding_rs::UTF_8 {
            let (text, how) = repair(bytes);
            return (
                text,
                Some(format!("declared {label:?} but not valid UTF-8: {how}")),
            );
        }
        return (
            text.into_owned(),
            Some(format!("malformed {} text", used.name())),
        );
    }
    (text.into_owned(), None)
}

/// Bytes as UTF-8 when they are valid UTF-8, else repaired (see
/// [`repair`]); the flag says the second happened.
pub fn utf8_or_windows_1252(bytes: &[u8]) -> (String, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), false),
        Err(_) => (repair(bytes).0, true),
    }
}

/// How [`repair`] read bytes that are not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// No UTF-8 beyond ASCII in them: all read as windows-1252.
    Windows1252,
    /// UTF-8 but for this many bad sequences, each replaced by U+FFFD.
    Utf8Except(usize),
}

impl std::fmt::Display for Repair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Repair::Windows1252 => f.write_str("guessed windows-1252"),
            Repair::Utf8Except(n) => {
                write!(
                    f,
                    "UTF-8 but for {n} bad byte sequence(s), replaced by U+FFFD"
                )
            }
        }
    }
}

/// Text from bytes that are not valid UTF-8. When they hold UTF-8 beyond
/// ASCII they are UTF-8 text with damage (a name cut in the middle of a
/// character): the valid runs are kept and each bad sequence becomes
/// U+FFFD, so one cut character spoils one character, not the whole name.
/// Otherwise they are 8-bit text of the Latin-1 era: windows-1252.
pub fn repair(bytes: &[u8]) -> (String, Repair) {
    let mut bad = 0;
    let mut has_utf8 = false;
    for chunk in bytes.utf8_chunks() {
        has_utf8 |= !chunk.valid().is_ascii();
        bad += usize::from(!chunk.invalid().is_empty());
    }
    if has_utf8 {
        (
            String::from_utf8_lossy(bytes).into_owned(),
            Repair::Utf8Except(bad),
        )
    } else {
        (windows_1252(bytes), Repair::Windows1252)
    }
}

/// True when `label` names a charset this module can decode.
pub fn is_known(label: &str) -> bool {
    let l = label.trim().to_ascii_lowercase();
    lookup(&l).is_some() || l.contains("utf-7") || l == "utf7"
}

fn lookup(label: &str) -> Option<&'static Encoding> {
    if let Some(e) = Encoding::for_label(label.as_bytes()) {
        return Some(e);
    }
    let alias = match label {
        "maccyrillic" | "mac-cyrillic" | "x-mac-cyrillic" => "x-mac-cyrillic",
        "macintosh" | "mac" | "macroman" | "mac-roman" => "macintosh",
        "ansi_x3.4-1968" | "ascii" | "us_ascii" | "iso646-us" => "us-ascii",
        "latin-1" | "iso8859-1" | "iso_8859_1" | "8859-1" => "iso-8859-1",
        "utf8" | "utf_8" | "unicode-1-1-utf-8" => "utf-8",
        "ks_c_5601" | "ks_c_5601-1987" | "ksc5601" | "cp949" | "uhc" => "euc-kr",
        "sjis" | "shift-jis" | "cp932" | "x-sjis" => "shift_jis",
        "cp936" | "gb2312-80" => "gbk",
        "big5-hkscs" | "cp950" => "big5",
        _ => {
            // `cp1252`, `win-1251`, `windows1250` and the like.
            let digits: String = label.chars().filter(|c| c.is_ascii_digit()).collect();
            if (label.starts_with("cp") || label.starts_with("win")) && digits.len() == 4 {
                return Encoding::for_label(format!("windows-{digits}").as_bytes());
            }
            if label.starts_with("iso") && label.contains("8859") {
                let rest = label.rsplit(['-', '_']).next().unwrap_or("");
                return Encoding::for_label(format!("iso-8859-{rest}").as_bytes());
            }
            return None;
        }
    };
    Encoding::for_label(alias.as_bytes())
}

fn windows_1252(bytes: &[u8]) -> String {
    encoding_rs::WINDOWS_1252
        .decode_without_bom_handling(bytes)
        .0
        .into_owned()
}

/// UTF-7 (RFC 2152): `+` starts modified base64 of UTF-16, `-` or any
/// non-base64 character ends it, `+-` is a plus sign.
pub fn decode_utf7(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'+' {
            out.push(if b.is_ascii() { b as char } else { '\u{FFFD}' });
            i += 1;
            continue;
        }
        i += 1;
        if bytes.get(i) == Some(&b'-') {
            out.push('+');
            i += 1;
            continue;
        }
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut units: Vec<u16> = Vec::new();
        while i < bytes.len() {
            let v = match bytes[i] {
                c @ b'A'..=b'Z' => c - b'A',
                c @ b'a'..=b'z' => c - b'a' + 26,
                c @ b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => break,
            };
            bits = (bits << 6) | u32::from(v);
            nbits += 6;
            if nbits >= 16 {
                nbits -= 16;
                units.push((bits >> nbits) as u16);
                bits &= (1 << nbits) - 1;
            }
            i += 1;
        }
        out.push_str(&String::from_utf16_lossy(&units));
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        let cases: [(&[u8], Option<&str>, &str, bool); 15] = [
            // UTF-8 cut in the middle of a character: only that byte is
            // guessed, the rest stays UTF-8.
            (b"R\xc3\xa9sum\xc3.pdf", None, "Résum\u{FFFD}.pdf", true),
            (b"Gr\xc3\xbc\xdf", Some("utf-8"), "Grü\u{FFFD}", true),
            (
                b"\xe2\x82\xac and \xe2\x82",
                Some("x-unknown"),
                "€ and \u{FFFD}",
                true,
            ),
            (b"plain", None, "plain", false),
            (b"caf\xc3\xa9", None, "café", false),
            (b"caf\xe9", None, "café", true),
            (b"caf\xe9", Some("ISO-8859-1"), "café", false),
            (b"caf\xc3\xa9", Some("us-ascii"), "café", true),
            (b"caf\xe9", Some("utf-8"), "café", true),
            (b"caf\xe9", Some("x-unknown"), "café", true),
            (b"\xcf\xf0\xe8", Some("windows-1251"), "При", false),
            (b"\xcf\xf0\xe8", Some("cp1251"), "При", false),
            (b"Hi Mom -+Jjo--!", Some("utf-7"), "Hi Mom -☺-!", false),
            (b"\x1b$B$3$s\x1b(B", Some("iso-2022-jp"), "こん", false),
            (b"\xb0\xa1", Some("ks_c_5601-1987"), "가", false),
        ];
        for (bytes, label, want, guessed) in cases {
            let (got, defect) = decode(bytes, label);
            assert_eq!(got, want, "{label:?}");
            assert_eq!(defect.is_some(), guessed, "{label:?}: {defect:?}");
        }
    }

    #[test]
    fn utf7_edge_cases() {
        assert_eq!(decode_utf7(b"1 +- 1"), "1 + 1");
        assert_eq!(decode_utf7(b"+AGEAYgBj-"), "abc");
        assert_eq!(decode_utf7(b"+AGE"), "a");
    }
}
