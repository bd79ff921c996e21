//! Header blocks: where they end, their fields with the raw bytes kept,
//! unfolding, and case-insensitive lookup.
//!
//! Lenient on purpose: LF or CRLF, an mbox `From ` line in front, a block
//! that ends without the blank line (the first line that is not a field
//! starts the body, with a defect), continuation lines before any field,
//! and between fields a parameter line folded without indentation (joined
//! to its field) or a stray line that is not a field (skipped), each with
//! a defect.
//! It does not decode values (see [`super::rfc2047`] and [`super::params`]).

use serde::Serialize;

/// One header field as it appeared: the name and the raw value (everything
/// after the colon, folds included, final line break excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The field name as written (not case-folded).
    pub name: String,
    /// The raw value bytes, folds kept.
    pub value: Vec<u8>,
}

impl Header {
    /// The value unfolded and trimmed, still undecoded bytes.
    pub fn unfolded(&self) -> Vec<u8> {
        unfold(&self.value)
    }
}

impl Serialize for Header {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Header", 2)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("value", &String::from_utf8_lossy(&self.value))?;
        st.end()
    }
}

/// The fields of one header block, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Headers {
    /// The fields, in the order they appeared.
    pub fields: Vec<Header>,
}

impl Headers {
    /// The first field called `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Header> {
        self.fields
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
    }

    /// Every field called `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Header> + 'a {
        self.fields
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
    }

    /// The first field called `name`, unfolded and trimmed.
    pub fn get_unfolded(&self, name: &str) -> Option<Vec<u8>> {
        self.get(name).map(Header::unfolded)
    }

    /// True when the block holds no field.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// A header block split off the front of an entity.
#[derive(Debug, Clone, Default)]
pub struct HeaderBlock {
    /// The fields.
    pub headers: Headers,
    /// Where the body starts in the input.
    pub body_start: usize,
    /// What had to be guessed, as human-readable notes.
    pub defects: Vec<String>,
}

/// Removes line breaks that are followed by white space (the white space
/// stays), then trims white space at both ends.
pub fn unfold(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        if b == b'\r' && value.get(i + 1) == Some(&b'\n') {
            i += 2;
            continue;
        }
        if b == b'\n' || b == b'\r' {
            i += 1;
            continue;
        }
        out.push(b);
        i += 1;
    }
    let start = out
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(out.len());
    let end = out
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    out[start..end].to_vec()
}

/// Splits the header block off `raw`: fields up to the first empty line.
pub fn split_header_block(raw: &[u8]) -> HeaderBlock {
    let mut block = HeaderBlock::default();
    let mut pos = 0;
    // A UTF-8 byte order mark in front of a message is noise.
    if raw.starts_with(b"\xEF\xBB\xBF") {
        pos = 3;
    }
    // An mbox separator line ("From addr date") is not a header field.
    if raw[pos..].starts_with(b"From ") {
        pos = next_line(raw, pos);
    }
    let fields = &mut block.headers.fields;
    while pos < raw.len() {
        let next = next_line(raw, pos);
        let line = trim_eol(&raw[pos..next]);
        if line.is_empty() {
            block.body_start = next;
            return block;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            match fields.last_mut() {
                Some(last) => {
                    last.value.extend_from_slice(b"\n");
                    last.value.extend_from_slice(line);
                }
                None => block
                    .defects
                    .push("continuation line before the first header field".into()),
            }
            pos = next;
            continue;
        }
        if let Some((name, value)) = field(line) {
            fields.push(Header {
                name: String::from_utf8_lossy(name).into_owned(),
                value: value.to_vec(),
            });
            pos = next;
            continue;
        }
        // A line that is neither a field nor indented. Between fields it
        // is damage inside the header block, not the start of the body:
        // a parameter list folded without indentation goes on in it, and
        // anything else is skipped. Otherwise the body starts here.
        let following = trim_eol(&raw[next..next_line(raw, next)]);
        // A boundary line is never damage: the part's body starts there.
        let inside = !line.starts_with(b"--")
            && next < raw.len()
            && (following.is_empty()
                || following[0] == b' '
                || following[0] == b'\t'
                || field(following).is_some()
                || looks_like_parameter(following));
        match fields.last_mut() {
            Some(last) if inside && continues_parameters(last) && looks_like_parameter(line) => {
                block.defects.push(format!(
                    "continuation line of {} without indentation: joined to it",
                    last.name
                ));
                last.value.extend_from_slice(b"\n");
                last.value.extend_from_slice(line);
            }
            Some(_) if inside && field(following).is_some() => {
                block.defects.push(format!(
                    "line that is not a header field inside the header block: skipped ({:?})",
                    String::from_utf8_lossy(&line[..line.len().min(40)])
                ));
            }
            _ => {
                block.defects.push(
                    "header block ended by a line that is not a header field (no blank line)"
                        .into(),
                );
                block.body_start = pos;
                return block;
            }
        }
        pos = next;
    }
    block.body_start = raw.len();
    block
}

/// The name and raw value of a header field line, or None when the line
/// is not one.
fn field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = memchr::memchr(b':', line)?;
    let name = trim_end_ws(&line[..colon]);
    is_field_name(name).then(|| (name, &line[colon + 1..]))
}

fn is_field_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b) && b != b':')
}

/// `name=value` (or `name*0*=...`) at the start of a line.
fn looks_like_parameter(line: &[u8]) -> bool {
    let name = line
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || b"-_*.".contains(&b))
        .count();
    name > 0 && line.get(name) == Some(&b'=')
}

/// A field whose value may go on with more parameters: a parameter
/// list (Content-Type, Content-Disposition) or a value ending in `;`.
fn continues_parameters(h: &Header) -> bool {
    h.name.eq_ignore_ascii_case("content-type")
        || h.name.eq_ignore_ascii_case("content-disposition")
        || h.value.trim_ascii_end().ends_with(b";")
}

/// The index just after the line starting at `pos` (after its `\n`).
pub(crate) fn next_line(raw: &[u8], pos: usize) -> usize {
    memchr::memchr(b'\n', &raw[pos..]).map_or(raw.len(), |i| pos + i + 1)
}

/// The line without its `\n` or `\r\n`.
pub(crate) fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim_end_ws(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |e| e + 1);
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfolding() {
        let cases: [(&[u8], &[u8]); 5] = [
            (b" plain", b"plain"),
            (b" a\r\n b", b"a b"),
            (b" a\n\tb\n c ", b"a\tb c"),
            (b"", b""),
            (
                b" =?utf-8?Q?a?=\r\n =?utf-8?Q?b?=",
                b"=?utf-8?Q?a?= =?utf-8?Q?b?=",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(unfold(input), want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn blocks() {
        struct Case {
            raw: &'static [u8],
            names: &'static [&'static str],
            body: &'static [u8],
            defects: usize,
        }
        let cases = [
            Case {
                raw: b"A: 1\nB: 2\n\nbody",
                names: &["A", "B"],
                body: b"body",
                defects: 0,
            },
            Case {
                raw: b"A: 1\r\n x\r\nB : 2\r\n\r\nbody\r\n",
                names: &["A", "B"],
                body: b"body\r\n",
                defects: 0,
            },
            Case {
                raw: b"From a@b Mon Jan 1\nA: 1\n\nb",
                names: &["A"],
                body: b"b",
                defects: 0,
            },
            Case {
                raw: b"A: 1\nthis is body\n",
                names: &["A"],
                body: b"this is body\n",
                defects: 1,
            },
            Case {
                raw: b"\nonly body",
                names: &[],
                body: b"only body",
                defects: 0,
            },
            Case {
                raw: b"A: 1",
                names: &["A"],
                body: b"",
                defects: 0,
            },
            Case {
                raw: b" x\nA: 1\n\n",
                names: &["A"],
                body: b"",
                defects: 1,
            },
            Case {
                raw: b"A: 1\nContent-Type: text/plain;\nname=x\nB: 2\n\nbody",
                names: &["A", "Content-Type", "B"],
                body: b"body",
                defects: 1,
            },
            Case {
                raw: b"Content-Disposition: attachment;\r\nfilename=\"x.txt\"\r\n\r\nbody",
                names: &["Content-Disposition"],
                body: b"body",
                defects: 1,
            },
            Case {
                raw: b"A: 1\nX-Junk\nB: 2\n\nbody",
                names: &["A", "B"],
                body: b"body",
                defects: 1,
            },
            Case {
                raw: b"A: 1\nthis is body\nmore body\n\nend",
                names: &["A"],
                body: b"this is body\nmore body\n\nend",
                defects: 1,
            },
            Case {
                raw: b"A: 1\n--b\nB: 2\n",
                names: &["A"],
                body: b"--b\nB: 2\n",
                defects: 1,
            },
            Case {
                raw: b"A: 1\nx=5 in the body\nB: 2\n",
                names: &["A", "B"],
                body: b"",
                defects: 1,
            },
        ];
        for c in cases {
            let b = split_header_block(c.raw);
            let names: Vec<&str> = b.headers.fields.iter().map(|h| h.name.as_str()).collect();
            assert_eq!(names, c.names, "{:?}", String::from_utf8_lossy(c.raw));
            assert_eq!(&c.raw[b.body_start..], c.body);
            assert_eq!(b.defects.len(), c.defects, "{:?}", b.defects);
        }
    }

    #[test]
    fn lookup_is_case_insensitive_and_keeps_raw() {
        let b = split_header_block(b"Content-Type: text/plain;\r\n charset=utf-8\r\n\r\n");
        let h = b.headers.get("content-type").unwrap();
        assert_eq!(h.value, b" text/plain;\n charset=utf-8");
        assert_eq!(
            b.headers.get_unfolded("CONTENT-TYPE").unwrap(),
            b"text/plain; charset=utf-8"
        );
        assert!(b.headers.get("x").is_none());
    }
}
