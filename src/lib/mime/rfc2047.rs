//! RFC 2047 encoded words (`=?charset?B|Q?text?=`) decoded wherever they
//! appear, including the places RFC 2047 forbids them (inside quoted
//! parameters, glued to other text): senders put them there and readers
//! expect names decoded. Adjacent words separated only by white space are
//! joined, and their bytes are joined before charset decoding when the
//! charset is the same, so a character split across two words survives.
//!
//! It does not parse addresses or structured fields.

use super::charset;
use super::transfer::decode_base64;

/// Decodes every encoded word in `input`; text around them is read as
/// UTF-8, else windows-1252. Returns the text and what had to be guessed.
pub fn decode(input: &[u8]) -> (String, Vec<String>) {
    let mut out = String::with_capacity(input.len());
    let mut defects = Vec::new();
    let mut pending: Option<(String, Vec<u8>)> = None;
    let mut gap_start = 0;
    let mut search = 0;
    let mut last_was_word = false;
    let finder = memchr::memmem::Finder::new(b"=?");
    while let Some(off) = finder.find(&input[search..]) {
        let at = search + off;
        let Some((end, label, bytes)) = parse_word(input, at) else {
            search = at + 2;
            continue;
        };
        let gap = &input[gap_start..at];
        let gap_is_space = gap.iter().all(|b| b.is_ascii_whitespace());
        if !(last_was_word && gap_is_space) {
            flush(&mut pending, &mut out, &mut defects);
            push_plain(gap, &mut out, &mut defects);
        }
        match &mut pending {
            Some((l, buf)) if l.eq_ignore_ascii_case(&label) => buf.extend_from_slice(&bytes),
            _ => {
                flush(&mut pending, &mut out, &mut defects);
                pending = Some((label, bytes));
            }
        }
        last_was_word = true;
        gap_start = end;
        search = end;
    }
    flush(&mut pending, &mut out, &mut defects);
    push_plain(&input[gap_start..], &mut out, &mut defects);
    (out, defects)
}

/// True when `input` holds something that looks like an encoded word.
pub fn has_encoded_word(input: &[u8]) -> bool {
    memchr::memmem::find(input, b"=?").is_some()
}

fn flush(pending: &mut Option<(String, Vec<u8>)>, out: &mut String, defects: &mut Vec<String>) {
    if let Some((label, bytes)) = pending.take() {
        let (text, defect) = charset::decode(&bytes, Some(&label));
        out.push_str(&text);
        defects.extend(defect);
    }
}

fn push_plain(bytes: &[u8], out: &mut String, defects: &mut Vec<String>) {
    if bytes.is_empty() {
        return;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => out.push_str(text),
        Err(_) => {
            let (text, how) = charset::repair(bytes);
            defects.push(format!("8-bit bytes in a header: {how}"));
            out.push_str(&text);
        }
    }
}

/// Parses one encoded word at `at`: its end, charset label and bytes.
fn parse_word(input: &[u8], at: usize) -> Option<(usize, String, Vec<u8>)> {
    let rest = &input[at + 2..];
    let q1 = memchr::memchr(b'?', rest)?;
    let label = &rest[..q1];
    if label.is_empty() || label.len() > 64 || label.iter().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let enc = *rest.get(q1 + 1)?;
    if rest.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let text_start = q1 + 3;
    let q3 = memchr::memchr(b'?', &rest[text_start..])? + text_start;
    if rest.get(q3 + 1) != Some(&b'=') {
        return None;
    }
    let text = &rest[text_start..q3];
    let bytes = match enc {
        b'B' | b'b' => decode_base64(text).0,
        b'Q' | b'q' => decode_q(text),
        _ => return None,
    };
    // RFC 2231 adds a language after `*`: `=?utf-8*en?Q?...?=`.
    let label = String::from_utf8_lossy(label);
    let label = label.split('*').next().unwrap_or("").to_string();
    Some((at + 2 + q3 + 2, label, bytes))
}

fn decode_q(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'_' => out.push(b' '),
            b'=' => {
                let hex = |b: Option<&u8>| b.and_then(|&b| (b as char).to_digit(16));
                if let (Some(h), Some(l)) = (hex(text.get(i + 1)), hex(text.get(i + 2))) {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                out.push(b'=');
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        let cases: [(&[u8], &str); 12] = [
            (b"plain text", "plain text"),
            (b"=?utf-8?Q?caf=C3=A9?=", "café"),
            (b"=?UTF-8?B?Y2Fmw6k=?=", "café"),
            (b"=?iso-8859-1?q?a_b?= c", "a b c"),
            (b"=?utf-8?Q?a?= =?utf-8?Q?b?=", "ab"),
            (b"=?utf-8?Q?a?=\n =?utf-8?Q?b?=", "ab"),
            (b"x =?utf-8?Q?a?= y", "x a y"),
            (b"=?utf-8?B?w6k=?==?utf-8?B?w6k=?=", "éé"),
            // One character split over two words.
            (b"=?utf-8?B?ww==?= =?utf-8?B?qQ==?=", "é"),
            (b"=?bogus?x?y?=", "=?bogus?x?y?="),
            (b"=?utf-8*en?Q?hi?=", "hi"),
            (b"=?koi8-r?B?8NLJ18XU?=", "Привет"),
        ];
        for (input, want) in cases {
            assert_eq!(
                decode(input).0,
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn inside_quoted_names_and_unknown_charsets() {
        let (s, d) = decode(b"=?windows-1252?Q?Rechnung_M=E4rz?=.pdf");
        assert_eq!(s, "Rechnung März.pdf");
        assert!(d.is_empty());
        let (s, d) = decode(b"=?x-nonsense?Q?ok?=");
        assert_eq!(s, "ok");
        assert!(d.is_empty(), "ASCII decodes without a guess");
        let (_, d) = decode(b"=?x-nonsense?Q?=E9?=");
        assert_eq!(d.len(), 1);
    }
}
