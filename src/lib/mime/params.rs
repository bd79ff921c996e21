//! Structured header values with parameters (Content-Type,
//! Content-Disposition): the main value, then `name=value` pairs, quoted
//! or not, including RFC 2231 extended values (`name*=charset'lang'%XX`)
//! and continuations (`name*0*=`, `name*1=`), and RFC 2047 words inside
//! values.
//!
//! Lenient: an unterminated quote runs to the end of the field, a value
//! with spaces is taken up to the next `;`, duplicates keep the first,
//! parameters without `=` are skipped — each with a defect.

use super::{charset, rfc2047};

/// A parameter as written: lowercased name (with any `*` suffix) and the
/// value bytes (quotes and escapes removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawParam {
    /// Lowercased name as written, e.g. `filename*0*`.
    pub name: String,
    /// The value, unquoted.
    pub value: Vec<u8>,
}

/// A parsed structured value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamValue {
    /// The main value, lowercased and trimmed (`text/plain`, `attachment`).
    pub value: String,
    /// The parameters, in order.
    pub params: Vec<RawParam>,
    /// What had to be guessed.
    pub defects: Vec<String>,
}

/// A parameter value put together and decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The value as written (continuations joined, still encoded).
    pub raw: String,
    /// The value decoded to text.
    pub decoded: String,
}

/// Parses `value; a=b; c="d"` from an unfolded field value.
pub fn parse(input: &[u8]) -> ParamValue {
    let mut out = ParamValue::default();
    // Names seen so far: a header with thousands of parameters must not
    // cost a scan of all earlier ones per parameter.
    let mut seen = std::collections::HashSet::new();
    let main_end = memchr::memchr(b';', input).unwrap_or(input.len());
    out.value = String::from_utf8_lossy(strip_comment(&input[..main_end]))
        .trim()
        .to_ascii_lowercase();
    let mut i = main_end;
    while i < input.len() {
        while i < input.len() && (input[i] == b';' || input[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= input.len() {
            break;
        }
        let name_start = i;
        while i < input.len() && input[i] != b'=' && input[i] != b';' {
            i += 1;
        }
        let name = String::from_utf8_lossy(&input[name_start..i])
            .trim()
            .to_ascii_lowercase();
        if i >= input.len() || input[i] == b';' {
            if !name.is_empty() {
                out.defects
                    .push(format!("parameter {name:?} without a value"));
            }
            continue;
        }
        i += 1; // '='
        while i < input.len() && (input[i] == b' ' || input[i] == b'\t') {
            i += 1;
        }
        let mut value = Vec::new();
        if input.get(i) == Some(&b'"') {
            i += 1;
            let mut closed = false;
            while i < input.len() {
                match input[i] {
                    b'\\' if i + 1 < input.len() => {
                        value.push(input[i + 1]);
                        i += 2;
                    }
                    b'"' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    b => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
            if !closed {
                out.defects
                    .push(format!("unterminated quote in parameter {name:?}"));
                while value.last().is_some_and(|b| b.is_ascii_whitespace()) {
                    value.pop();
                }
            }
            // Anything between the closing quote and the next ';' is junk.
            while i < input.len() && input[i] != b';' {
                i += 1;
            }
        } else {
            let start = i;
            while i < input.len() && input[i] != b';' {
                i += 1;
            }
            let v = &input[start..i];
            let end = v
                .iter()
                .rposition(|b| !b.is_ascii_whitespace())
                .map_or(0, |e| e + 1);
            value.extend_from_slice(&v[..end]);
        }
        if name.is_empty() {
            out.defects.push("parameter without a name".into());
            continue;
        }
        if !seen.insert(name.clone()) {
            out.defects
                .push(format!("duplicate parameter {name:?}: first kept"));
            continue;
        }
        out.params.push(RawParam { name, value });
    }
    out
}

fn strip_comment(v: &[u8]) -> &[u8] {
    match memchr::memchr(b'(', v) {
        Some(p) => &v[..p],
        None => v,
    }
}

impl ParamValue {
    /// The plain value of parameter `name` (no RFC 2231 handling), as
    /// lossy text; for tokens like `boundary` and `charset`.
    pub fn get_plain(&self, name: &str) -> Option<String> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .map(|p| String::from_utf8_lossy(&p.value).into_owned())
    }

    /// The value of parameter `name` put together from its RFC 2231 form
    /// (`name*`, `name*0*`, `name*1`...) when there is one, else the plain
    /// `name=`, decoded to text (RFC 2047 words included). Defects are
    /// appended to `defects`. The flag says the RFC 2231 form was used.
    pub fn get_decoded(&self, name: &str, defects: &mut Vec<String>) -> Option<(Decoded, bool)> {
        if let Some(d) = self.extended(name, defects) {
            return Some((d, true));
        }
        let p = self.params.iter().find(|p| p.name == name)?;
        let raw = charset::utf8_or_windows_1252(&p.value).0;
        let decoded = if rfc2047::has_encoded_word(&p.value) {
            let (text, ds) = rfc2047::decode(&p.value);
            defects.extend(ds);
            text
        } else {
            let (text, guessed) = charset::utf8_or_windows_1252(&p.value);
            if guessed {
                defects.push(format!(
                    "8-bit bytes in parameter {name:?}: guessed windows-1252"
                ));
            }
            text
        };
        Some((Decoded { raw, decoded }, false))
    }

    fn extended(&self, name: &str, defects: &mut Vec<String>) -> Option<Decoded> {
        // (section, encoded, value)
        let mut sections: Vec<(u32, bool, &[u8])> = Vec::new();
        for p in &self.params {
            let Some(rest) = p.name.strip_prefix(name).and_then(|r| r.strip_prefix('*')) else {
                continue;
            };
            if rest.is_empty() {
                sections.push((0, true, &p.value));
                continue;
            }
            let (num, encoded) = match rest.strip_suffix('*') {
                Some(n) => (n, true),
                None => (rest, false),
            };
            if let Ok(n) = num.parse::<u32>() {
                sections.push((n, encoded, &p.value));
            }
        }
        if sections.is_empty() {
            return None;
        }
        sections.sort_by_key(|s| s.0);
        sections.dedup_by_key(|s| s.0);
        if sections.iter().enumerate().any(|(i, s)| s.0 != i as u32) {
            defects.push(format!("gap in the continuations of parameter {name:?}"));
        }
        let mut raw = Vec::new();
        let mut bytes = Vec::new();
        let mut label: Option<String> = None;
        for (i, (_, encoded, value)) in sections.iter().enumerate() {
            raw.extend_from_slice(value);
            let mut value: &[u8] = value;
            if i == 0 && *encoded {
                // charset'language'text; a value without the quotes is
                // taken as text in an unnamed charset.
                let mut it = value.splitn(3, |&b| b == b'\'');
                if let (Some(cs), Some(_lang), Some(text)) = (it.next(), it.next(), it.next()) {
                    label = Some(String::from_utf8_lossy(cs).into_owned());
                    value = text;
                }
            }
            if *encoded {
                percent_decode(value, &mut bytes);
            } else {
                bytes.extend_from_slice(value);
            }
        }
        let label = label.filter(|l| !l.is_empty());
        let (mut decoded, defect) = charset::decode(&bytes, label.as_deref());
        defects.extend(defect);
        if rfc2047::has_encoded_word(decoded.as_bytes()) {
            let (text, ds) = rfc2047::decode(decoded.as_bytes());
            defects.extend(ds);
            decoded = text;
        }
        Some(Decoded {
            raw: charset::utf8_or_windows_1252(&raw).0,
            decoded,
        })
    }
}

fn percent_decode(input: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%'
            && let (Some(h), Some(l)) = (
                input.get(i + 1).and_then(|&b| (b as char).to_digit(16)),
                input.get(i + 2).and_then(|&b| (b as char).to_digit(16)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_value_and_params() {
        let v = parse(b"Text/Plain; charset=\"UTF-8\"; format=flowed");
        assert_eq!(v.value, "text/plain");
        assert_eq!(v.get_plain("charset").as_deref(), Some("UTF-8"));
        assert_eq!(v.get_plain("format").as_deref(), Some("flowed"));
        assert!(v.defects.is_empty());
    }

    #[test]
    fn names() {
        // (field value, param, decoded, raw, defects)
        let cases: [(&[u8], &str, &str, &str, usize); 12] = [
            (
                b"attachment; filename=a.pdf",
                "filename",
                "a.pdf",
                "a.pdf",
                0,
            ),
            (
                b"attachment; filename=\"a b.pdf\"",
                "filename",
                "a b.pdf",
                "a b.pdf",
                0,
            ),
            (
                b"attachment; filename=a b.pdf; size=3",
                "filename",
                "a b.pdf",
                "a b.pdf",
                0,
            ),
            (
                b"attachment; filename=\"x\\\"y.pdf\"",
                "filename",
                "x\"y.pdf",
                "x\"y.pdf",
                0,
            ),
            (
                b"attachment; filename*=UTF-8''Gr%C3%B6%C3%9Fe.pdf",
                "filename",
                "Größe.pdf",
                "UTF-8''Gr%C3%B6%C3%9Fe.pdf",
                0,
            ),
            (
                b"attachment; filename*0*=iso-8859-1''M%E4rz; filename*1=\" 2024.pdf\"",
                "filename",
                "März 2024.pdf",
                "iso-8859-1''M%E4rz 2024.pdf",
                0,
            ),
            (
                b"attachment; filename*1=\"b.pdf\"; filename*0=\"a\"",
                "filename",
                "ab.pdf",
                "ab.pdf",
                0,
            ),
            (
                b"attachment; filename=\"=?utf-8?B?w6kucGRm?=\"",
                "filename",
                "é.pdf",
                "=?utf-8?B?w6kucGRm?=",
                0,
            ),
            (
                b"attachment; filename=\"unterminated.pdf",
                "filename",
                "unterminated.pdf",
                "unterminated.pdf",
                1,
            ),
            (
                b"attachment; filename=a.pdf; filename=b.pdf",
                "filename",
                "a.pdf",
                "a.pdf",
                1,
            ),
            (
                b"attachment; filename=caf\xe9.txt",
                "filename",
                "café.txt",
                "café.txt",
                1,
            ),
            (
                b"attachment; filename*0=a; filename*2=c",
                "filename",
                "ac",
                "ac",
                1,
            ),
        ];
        for (input, name, want, raw, ndefects) in cases {
            let v = parse(input);
            let mut defects = v.defects.clone();
            let (d, _) = v.get_decoded(name, &mut defects).unwrap();
            assert_eq!(d.decoded, want, "{:?}", String::from_utf8_lossy(input));
            assert_eq!(d.raw, raw, "{:?}", String::from_utf8_lossy(input));
            assert_eq!(defects.len(), ndefects, "{defects:?}");
        }
    }
}
