//! Content-Transfer-Encoding: base64 (tolerant of bad padding and stray
//! characters), quoted-printable, and the identity encodings. An unknown
//! encoding is treated as binary with a defect.
//!
//! uuencode as a transfer encoding (`x-uuencode`) is recognised here but
//! decoded by the dissector's uuencode hook, not here.

use std::borrow::Cow;

/// A transfer encoding, as understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEncoding {
    /// `7bit`, `8bit`, `binary` and the broken spellings of them.
    Identity,
    /// `base64`.
    Base64,
    /// `quoted-printable`.
    QuotedPrintable,
    /// `x-uuencode`, `uuencode`, `x-uue`.
    Uuencode,
    /// Anything else: passed through as binary.
    Unknown(String),
}

/// Reads a Content-Transfer-Encoding value. The second value notes a
/// spelling that had to be guessed.
pub fn parse_transfer_encoding(value: &str) -> (TransferEncoding, Option<String>) {
    let v = value
        .trim()
        .trim_matches('"')
        .trim_end_matches(';')
        .trim()
        .to_ascii_lowercase();
    match v.as_str() {
        "7bit" | "8bit" | "binary" | "" => (TransferEncoding::Identity, None),
        "base64" => (TransferEncoding::Base64, None),
        "quoted-printable" => (TransferEncoding::QuotedPrintable, None),
        "x-uuencode" | "uuencode" | "x-uue" | "uue" => (TransferEncoding::Uuencode, None),
        "7-bit" | "8-bit" | "8bits" | "7bits" | "plain" | "none" | "text" | "ascii" => (
            TransferEncoding::Identity,
            Some(format!("transfer encoding {v:?} read as 8bit")),
        ),
        "quoted_printable" | "quotedprintable" | "qp" => (
            TransferEncoding::QuotedPrintable,
            Some(format!("transfer encoding {v:?} read as quoted-printable")),
        ),
        "base-64" | "b64" | "x-base64" => (
            TransferEncoding::Base64,
            Some(format!("transfer encoding {v:?} read as base64")),
        ),
        _ => (
            TransferEncoding::Unknown(v.clone()),
            Some(format!("unknown transfer encoding {v:?}: kept as binary")),
        ),
    }
}

/// Decodes a body. Identity, unknown and uuencode bodies are borrowed as
/// they are.
pub fn decode_body<'a>(
    encoding: &TransferEncoding,
    body: &'a [u8],
    defects: &mut Vec<String>,
) -> Cow<'a, [u8]> {
    match encoding {
        TransferEncoding::Base64 => {
            let (data, stats) = decode_base64_counted(body);
            // Mostly not base64 at all (a placeholder text, a part that
            // was never encoded): decoding would only make noise.
            if (stats.stray + stats.blanks) * 4 > stats.valid + 4 {
                defects.push(format!(
                    "not base64 ({} of {} characters invalid): kept as it is",
                    stats.stray,
                    stats.stray + stats.valid
                ));
                return Cow::Borrowed(body);
            }
            defects.extend(stats.defect());
            Cow::Owned(data)
        }
        TransferEncoding::QuotedPrintable => {
            let (data, defect) = decode_quoted_printable(body);
            defects.extend(defect);
            Cow::Owned(data)
        }
        _ => Cow::Borrowed(body),
    }
}

const INVALID: u8 = 0xFF;
const SPACE: u8 = 0xFE;
const PAD: u8 = 0xFD;

static BASE64: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 26 {
        t[b'A' as usize + i] = i as u8;
        t[b'a' as usize + i] = 26 + i as u8;
        i += 1;
    }
    let mut d = 0;
    while d < 10 {
        t[b'0' as usize + d] = 52 + d as u8;
        d += 1;
    }
    t[b'+' as usize] = 62;
    t[b'/' as usize] = 63;
    t[b' ' as usize] = SPACE;
    t[b'\t' as usize] = SPACE;
    t[b'\r' as usize] = SPACE;
    t[b'\n' as usize] = SPACE;
    t[b'=' as usize] = PAD;
    t
};

/// Decodes base64, skipping white space silently and any other stray
/// character with a defect. Padding may be missing, and a padded group in
/// the middle (concatenated encodings) ends that group only.
pub fn decode_base64(input: &[u8]) -> (Vec<u8>, Option<String>) {
    let (out, stats) = decode_base64_counted(input);
    (out, stats.defect())
}

/// What base64 decoding met besides the data.
#[derive(Debug, Clone, Copy, Default)]
struct Base64Stats {
    valid: usize,
    stray: usize,
    blanks: usize,
    lost_bits: bool,
    missing_padding: bool,
}

impl Base64Stats {
    fn defect(&self) -> Option<String> {
        let mut notes = Vec::new();
        if self.stray > 0 {
            notes.push(format!("{} stray characters skipped", self.stray));
        }
        if self.lost_bits {
            notes.push("a lone trailing character dropped".to_string());
        } else if self.missing_padding {
            notes.push("padding missing".to_string());
        }
        (!notes.is_empty()).then(|| format!("bad base64: {}", notes.join(", ")))
    }
}

fn decode_base64_counted(input: &[u8]) -> (Vec<u8>, Base64Stats) {
    // Every group written in place, with room for the 8-byte stores of
    // the fast path.
    let mut out = vec![0u8; input.len() / 4 * 3 + 8];
    let mut o = 0;
    let mut acc: u32 = 0;
    let mut n = 0u8;
    let mut stray = 0usize;
    let mut blanks = 0usize;
    let mut lost_bits = false;
    let mut i = 0;
    while i < input.len() {
        if n == 0 {
            // Fast path: eight valid characters at a time, then four (a
            // 76-character line is nine eights and a four).
            while let Some(v) = pack::<8>(input, i) {
                out[o..o + 8].copy_from_slice(&(v << 16).to_be_bytes());
                o += 6;
                i += 8;
            }
            if let Some(v) = pack::<4>(input, i) {
                out[o..o + 8].copy_from_slice(&(v << 40).to_be_bytes());
                o += 3;
                i += 4;
                continue;
            }
            if i >= input.len() {
                break;
            }
        }
        let v = BASE64[usize::from(input[i])];
        i += 1;
        match v {
            SPACE => blanks += usize::from(input[i - 1] == b' ' || input[i - 1] == b'\t'),
            PAD => {
                o += flush_group(&mut out[o..], acc, n, &mut lost_bits);
                acc = 0;
                n = 0;
            }
            INVALID => stray += 1,
            v => {
                acc = (acc << 6) | u32::from(v);
                n += 1;
                if n == 4 {
                    out[o..o + 3].copy_from_slice(&[
                        (acc >> 16) as u8,
                        (acc >> 8) as u8,
                        acc as u8,
                    ]);
                    o += 3;
                    acc = 0;
                    n = 0;
                }
            }
        }
    }
    let missing_padding = n != 0;
    o += flush_group(&mut out[o..], acc, n, &mut lost_bits);
    out.truncate(o);
    let stats = Base64Stats {
        valid: o / 3 * 4 + usize::from(n),
        stray,
        blanks,
        lost_bits,
        missing_padding,
    };
    (out, stats)
}

/// The 6-bit values of the `N` characters at `at` side by side, or None
/// when one of them is not a base64 digit (or the input ends first).
fn pack<const N: usize>(input: &[u8], at: usize) -> Option<u64> {
    let chunk: &[u8; N] = input.get(at..at + N)?.try_into().ok()?;
    let mut v: u64 = 0;
    let mut bad = 0u8;
    for &c in chunk {
        let x = BASE64[usize::from(c)];
        bad |= x;
        v = (v << 6) | u64::from(x & 63);
    }
    (bad < 64).then_some(v)
}

/// Writes what a partial group of `n` characters holds; returns how many
/// bytes that was.
fn flush_group(out: &mut [u8], acc: u32, n: u8, lost_bits: &mut bool) -> usize {
    match n {
        2 => {
            out[0] = (acc >> 4) as u8;
            1
        }
        3 => {
            out[..2].copy_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]);
            2
        }
        1 => {
            *lost_bits = true;
            0
        }
        _ => 0,
    }
}

/// Decodes quoted-printable: `=XX` escapes, soft line breaks (`=` at the
/// end of a line, also with white space after it). White space at the end
/// of a line is deleted, as RFC 2045 says (transport may have added it;
/// meaningful trailing blanks are sent as `=20`). A malformed `=` is kept
/// literally, with a defect. Hard line breaks stay as they are in the input.
pub fn decode_quoted_printable(input: &[u8]) -> (Vec<u8>, Option<String>) {
    let mut out = Vec::with_capacity(input.len());
    let mut bad = 0usize;
    let mut start = 0;
    while start < input.len() {
        let (end, next) = match memchr::memchr(b'\n', &input[start..]) {
            Some(i) => (start + i, start + i + 1),
            None => (input.len(), input.len()),
        };
        let mut line = &input[start..end];
        let mut eol: &[u8] = &input[end..next];
        if let Some(l) = line.strip_suffix(b"\r")
            && !eol.is_empty()
        {
            line = l;
            eol = &input[end - 1..next];
        }
        let line = trim_end_blanks(line);
        let soft = line.last() == Some(&b'=');
        let line = if soft { &line[..line.len() - 1] } else { line };
        bad += decode_qp_line(line, &mut out);
        if !soft {
            out.extend_from_slice(eol);
        }
        start = next;
    }
    let defect = (bad > 0).then(|| format!("bad quoted-printable: {bad} stray '=' kept"));
    (out, defect)
}

/// Decodes the escapes of one line (without its line break and any soft
/// break) into `out`; returns how many `=` were not escapes.
fn decode_qp_line(line: &[u8], out: &mut Vec<u8>) -> usize {
    let mut bad = 0;
    let mut i = 0;
    while let Some(eq) = memchr::memchr(b'=', &line[i..]) {
        out.extend_from_slice(&line[i..i + eq]);
        i += eq + 1;
        let hex = |b: Option<&u8>| b.and_then(|&b| (b as char).to_digit(16));
        if let (Some(h), Some(l)) = (hex(line.get(i)), hex(line.get(i + 1))) {
            out.push((h * 16 + l) as u8);
            i += 2;
        } else {
            bad += 1;
            out.push(b'=');
        }
    }
    out.extend_from_slice(&line[i..]);
    bad
}

/// `line` without the blanks (space and tab) at its end.
fn trim_end_blanks(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |e| e + 1);
    &line[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_cases() {
        let cases: [(&[u8], &[u8], bool); 10] = [
            (b"aGVsbG8=", b"hello", false),
            (b"aGVs\r\nbG8=\r\n", b"hello", false),
            (b"aGVsbG8", b"hello", true),
            (b"aGVs*bG8=", b"hello", true),
            (b"aGVsbG8=aGk=", b"hellohi", false),
            (b"", b"", false),
            (b"QQ", b"A", true),
            (b"QUJD\nR", b"ABC", true),
            (b"  QUJD  ", b"ABC", false),
            (b"QU\x00JD", b"ABC", true),
        ];
        for (input, want, defect) in cases {
            let (got, d) = decode_base64(input);
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(input));
            assert_eq!(
                d.is_some(),
                defect,
                "{:?}: {d:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn base64_round_trips_all_bytes() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut enc = Vec::new();
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for k in 0..4 {
                if k <= chunk.len() {
                    enc.push(table[((v >> (18 - 6 * k)) & 63) as usize]);
                } else {
                    enc.push(b'=');
                }
            }
            if enc.len() % 77 == 76 {
                enc.extend_from_slice(b"\r\n");
            }
        }
        let (got, d) = decode_base64(&enc);
        assert_eq!(got, data);
        assert!(d.is_none());
    }

    /// The decoder one character at a time: what the fast paths must
    /// give on any input.
    fn decode_base64_slowly(input: &[u8]) -> (Vec<u8>, Option<String>) {
        let mut out = vec![0u8; input.len() + 8];
        let (mut o, mut acc, mut n) = (0, 0u32, 0u8);
        let mut stats = Base64Stats::default();
        for &c in input {
            match BASE64[usize::from(c)] {
                SPACE => stats.blanks += usize::from(c == b' ' || c == b'\t'),
                PAD => {
                    o += flush_group(&mut out[o..], acc, n, &mut stats.lost_bits);
                    (acc, n) = (0, 0);
                }
                INVALID => stats.stray += 1,
                v => {
                    acc = (acc << 6) | u32::from(v);
                    n += 1;
                    if n == 4 {
                        out[o..o + 3].copy_from_slice(&acc.to_be_bytes()[1..]);
                        (o, acc, n) = (o + 3, 0, 0);
                    }
                }
            }
        }
        stats.missing_padding = n != 0;
        o += flush_group(&mut out[o..], acc, n, &mut stats.lost_bits);
        out.truncate(o);
        (out, stats.defect())
    }

    proptest::proptest! {
        #[test]
        fn base64_fast_paths_agree_with_one_character_at_a_time(
            input in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => proptest::sample::select(
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".to_vec()),
                    1 => proptest::sample::select(b"=\r\n \t*-\x00\xff".to_vec()),
                ],
                0..300,
            )
        ) {
            proptest::prop_assert_eq!(decode_base64(&input), decode_base64_slowly(&input));
        }
    }

    #[test]
    fn text_that_is_not_base64_is_kept() {
        let body = b"... base64-encoded image data goes here ...\n";
        let mut defects = Vec::new();
        let out = decode_body(&TransferEncoding::Base64, body, &mut defects);
        assert_eq!(&*out, body);
        assert_eq!(defects.len(), 1);
    }

    #[test]
    fn quoted_printable_cases() {
        let cases: [(&[u8], &[u8], bool); 13] = [
            (b"caf=C3=A9", "café".as_bytes(), false),
            (b"long=\r\nline", b"longline", false),
            (b"long=\nline", b"longline", false),
            (b"soft= \t\nbreak", b"softbreak", false),
            (b"a=3db", b"a=b", false),
            (b"50% =zz off", b"50% =zz off", true),
            (b"end=", b"end", false),
            // RFC 2045 rule 3: trailing white space is deleted.
            (b"one  \ntwo\t\r\nthree \t", b"one\ntwo\r\nthree", false),
            (b"kept=20 \n", b"kept \n", false),
            (b"tab=09\t\t\n", b"tab\t\n", false),
            (b"  \n", b"\n", false),
            (b"a=\r\n", b"a", false),
            (b"bare\rcr \n", b"bare\rcr\n", false),
        ];
        for (input, want, defect) in cases {
            let (got, d) = decode_quoted_printable(input);
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(input));
            assert_eq!(d.is_some(), defect);
        }
    }

    #[test]
    fn transfer_encoding_names() {
        let cases = [
            ("base64", TransferEncoding::Base64, false),
            (" Base64 ", TransferEncoding::Base64, false),
            ("7-bit", TransferEncoding::Identity, true),
            ("x-uuencode", TransferEncoding::Uuencode, false),
            ("spam", TransferEncoding::Unknown("spam".into()), true),
            (
                "quoted-printable;",
                TransferEncoding::QuotedPrintable,
                false,
            ),
        ];
        for (v, want, defect) in cases {
            let (got, d) = parse_transfer_encoding(v);
            assert_eq!(got, want, "{v}");
            assert_eq!(d.is_some(), defect, "{v}");
        }
    }
}
