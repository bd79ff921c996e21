//! Finding and decoding uuencoded files inside the text of a message.
//!
//! Old mailers (and some scanners and scripts to this day) put files into
//! the body text as `begin 644 name` … data lines … `` ` `` … `end`
//! instead of a MIME part. [`find_blocks`] finds every such block in a text
//! and decodes it, tolerating what mail transport does to long-lived text:
//! CRLF or LF, stripped or added trailing spaces, `` ` `` or space for a
//! zero, a missing `end`. The POSIX `begin-base64 … ====` variant is
//! decoded too, because it costs a few lines.
//!
//! It deliberately does not decode xxencode, yEnc, BinHex or multi-part
//! uuencoded postings split over several messages, does not look inside
//! MIME structure (the caller hands it the decoded text of one part), and
//! does not judge the file name: callers must still reduce it to a safe
//! basename before writing anything.

/// One uuencoded (or `begin-base64`) file found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UuFile {
    /// The name from the `begin` line as written there (UTF-8, or
    /// Windows-1252 when the bytes are not UTF-8); not sanitised.
    pub name: String,
    /// The permission bits from the `begin` line, or `None` when that
    /// field is not octal.
    pub mode: Option<u32>,
    /// The decoded bytes.
    pub data: Vec<u8>,
    /// Byte offset of the start of the `begin` line in the text.
    pub start: usize,
    /// Byte offset just past the block's last line, including that line's
    /// terminator, so `text[..start]` + `text[end..]` is the text without
    /// the block.
    pub end: usize,
    /// What had to be tolerated or guessed while decoding, one sentence
    /// each.
    pub defects: Vec<String>,
}

/// Finds every uuencoded or `begin-base64` block in `text` and decodes it.
///
/// A block needs a `begin <mode> <name>` line (mode: three or four digits)
/// followed by at least one data line, or by the empty-file form
/// `` ` `` + `end`; a line of prose that merely starts with "begin " is
/// not one. Blocks are returned in the order they occur and never overlap.
/// Runs in time linear in `text.len()` and never panics.
pub fn find_blocks(text: &[u8]) -> Vec<UuFile> {
    let mut found = Vec::new();
    let mut lines = Lines::new(text);
    while let Some(line) = lines.next() {
        let Some(begin) = parse_begin_line(line.content) else {
            continue;
        };
        let mut scan = lines.clone();
        let decoded = match begin.kind {
            Kind::Uuencode => decode_uuencode_body(&mut scan),
            Kind::Base64 => decode_base64_body(&mut scan),
        };
        if let Some(body) = decoded {
            let mut defects = begin.defects;
            defects.extend(body.defects);
            found.push(UuFile {
                name: begin.name,
                mode: begin.mode,
                data: body.data,
                start: line.start,
                end: body.end,
                defects,
            });
            // Resume after the block; a line that ended an unterminated
            // block is seen again, since it may begin the next one.
            lines = body.resume;
        }
    }
    found
}

/// One line of the text: where it starts, its content without the line
/// terminator, and where the next line starts.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    start: usize,
    content: &'a [u8],
    end: usize,
    number: usize,
}

/// Splits a text into lines ending in LF or CRLF (a lone last line too).
/// Cloning it is how the decoder looks ahead without rescanning.
#[derive(Debug, Clone)]
struct Lines<'a> {
    text: &'a [u8],
    pos: usize,
    number: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a [u8]) -> Self {
        Lines {
            text,
            pos: 0,
            number: 0,
        }
    }

    fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        if self.pos >= self.text.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.text[start..];
        let (mut content, end) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], start + i + 1),
            None => (rest, self.text.len()),
        };
        if let [head @ .., b'\r'] = content {
            content = head;
        }
        self.pos = end;
        self.number += 1;
        Some(Line {
            start,
            content,
            end,
            number: self.number,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Uuencode,
    Base64,
}

#[derive(Debug)]
struct BeginLine {
    kind: Kind,
    mode: Option<u32>,
    name: String,
    defects: Vec<String>,
}

/// Parses `begin[-base64] <mode> <name>`; `None` for anything else.
fn parse_begin_line(line: &[u8]) -> Option<BeginLine> {
    let (kind, rest) = if let Some(rest) = line.strip_prefix(b"begin-base64") {
        (Kind::Base64, rest)
    } else {
        (Kind::Uuencode, line.strip_prefix(b"begin")?)
    };
    let rest = skip_blanks(rest);
    // At least one blank must separate the keyword from the mode.
    if rest.len() == line.len() - keyword_len(kind) {
        return None;
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(3..=4).contains(&digits) {
        return None;
    }
    let (mode_field, rest) = rest.split_at(digits);
    let after_mode = skip_blanks(rest);
    if after_mode.len() == rest.len() {
        return None;
    }
    let name_bytes = after_mode.trim_ascii_end();
    if name_bytes.is_empty() {
        return None;
    }
    let mut defects = Vec::new();
    let name = match std::str::from_utf8(name_bytes) {
        Ok(name) => name.to_owned(),
        Err(_) => {
            // Names from the era of uuencode are mostly Latin-1 or
            // windows-1252, which is what uuencode users expect and no
            // defect; newer encoders write UTF-8, and a name that is
            // UTF-8 but for a cut character is damage.
            let (name, how) = crate::mime::charset::repair(name_bytes);
            if how != crate::mime::charset::Repair::Windows1252 {
                defects.push(format!("8-bit bytes in the file name: {how}"));
            }
            name
        }
    };
    let mode = parse_octal(mode_field);
    if mode.is_none() {
        defects.push(format!(
            "begin line has a mode that is not octal ({})",
            String::from_utf8_lossy(mode_field)
        ));
    }
    Some(BeginLine {
        kind,
        mode,
        name,
        defects,
    })
}

fn keyword_len(kind: Kind) -> usize {
    match kind {
        Kind::Uuencode => b"begin".len(),
        Kind::Base64 => b"begin-base64".len(),
    }
}

fn skip_blanks(bytes: &[u8]) -> &[u8] {
    let blanks = bytes
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    &bytes[blanks..]
}

fn parse_octal(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |mode, &d| match d {
        b'0'..=b'7' => Some(mode * 8 + u32::from(d - b'0')),
        _ => None,
    })
}

/// What a block body decoded to, and where scanning goes on.
#[derive(Debug)]
struct Body<'a> {
    data: Vec<u8>,
    end: usize,
    defects: Vec<String>,
    resume: Lines<'a>,
}

/// Tallies lines whose length character disagrees with their length, so a
/// long block with a systematic fault yields one defect, not hundreds.
#[derive(Debug, Default)]
struct LengthMismatches {
    short: usize,
    long: usize,
    first_short: usize,
    first_long: usize,
}

impl LengthMismatches {
    fn into_defects(self, defects: &mut Vec<String>) {
        if self.short > 0 {
            defects.push(format!(
                "{} data line(s) shorter than their length character says, first at line {}; \
                 the missing characters were taken as zero",
                self.short, self.first_short
            ));
        }
        if self.long > 0 {
            defects.push(format!(
                "{} data line(s) longer than their length character says, first at line {}; \
                 the extra characters were ignored",
                self.long, self.first_long
            ));
        }
    }
}

/// Value of one uuencode character; both `` ` `` and space mean zero.
fn uu_value(c: u8) -> u8 {
    c.wrapping_sub(b' ') & 0x3f
}

fn is_uu_char(c: u8) -> bool {
    (b' '..=b'`').contains(&c)
}

fn is_end_line(content: &[u8]) -> bool {
    content.trim_ascii() == b"end"
}

/// Decodes the lines after a `begin` line up to `end`. `None` when not a
/// single data line follows, which is what tells prose from a block.
fn decode_uuencode_body<'a>(lines: &mut Lines<'a>) -> Option<Body<'a>> {
    let mut data = Vec::new();
    let mut defects = Vec::new();
    let mut mismatches = LengthMismatches::default();
    let mut data_lines = 0usize;
    loop {
        let before = lines.clone();
        let Some(line) = lines.next() else {
            if data_lines == 0 {
                return None;
            }
            defects.push("no end line; decoded up to the end of the text".to_owned());
            mismatches.into_defects(&mut defects);
            return Some(Body {
                data,
                end: before.position(),
                defects,
                resume: before,
            });
        };
        if is_end_line(line.content) {
            if data_lines == 0 {
                return None;
            }
            mismatches.into_defects(&mut defects);
            return Some(Body {
                data,
                end: line.end,
                defects,
                resume: lines.clone(),
            });
        }
        // Tabs and CRs at the end are transport damage; trailing spaces
        // may be data (a space is a zero), so they stay.
        let content = trim_end_matches(line.content, |b| b == b'\t' || b == b'\r');
        let Some((&length_char, chars)) = content.split_first() else {
            // An empty line is a zero-length line whose space was
            // stripped: the encoder's terminator.
            return finish_after_terminator(data, defects, mismatches, data_lines, line, lines);
        };
        if !is_uu_char(length_char) || !chars.iter().all(|&c| is_uu_char(c)) {
            if data_lines == 0 {
                return None;
            }
            defects.push(format!(
                "no end line; the block stops at line {}, which is not uuencoded data",
                line.number
            ));
            mismatches.into_defects(&mut defects);
            return Some(Body {
                data,
                end: line.start,
                defects,
                resume: before,
            });
        }
        let length = usize::from(uu_value(length_char));
        if length == 0 {
            return finish_after_terminator(data, defects, mismatches, data_lines, line, lines);
        }
        let needed = length.div_ceil(3) * 4;
        let meaningful = trim_end_matches(chars, |b| b == b' ').len();
        if chars.len() < needed {
            mismatches.short += 1;
            if mismatches.short == 1 {
                mismatches.first_short = line.number;
            }
        } else if meaningful > needed + 1 {
            // One extra character is the old per-line checksum; more than
            // that is damage.
            mismatches.long += 1;
            if mismatches.long == 1 {
                mismatches.first_long = line.number;
            }
        }
        decode_uu_line(chars, length, &mut data);
        data_lines += 1;
    }
}

/// After the zero-length line, expects `end`; without it the block still
/// stands, ending at the zero-length line.
fn finish_after_terminator<'a>(
    data: Vec<u8>,
    mut defects: Vec<String>,
    mismatches: LengthMismatches,
    data_lines: usize,
    terminator: Line<'a>,
    lines: &mut Lines<'a>,
) -> Option<Body<'a>> {
    let after_terminator = lines.clone();
    match lines.next() {
        Some(line) if is_end_line(line.content) => {
            mismatches.into_defects(&mut defects);
            Some(Body {
                data,
                end: line.end,
                defects,
                resume: lines.clone(),
            })
        }
        // An empty line after `begin` is just prose spacing, unless the
        // empty-file form follows.
        _ if data_lines == 0 => None,
        _ => {
            defects.push(format!(
                "no end line after the zero-length line {}",
                terminator.number
            ));
            mismatches.into_defects(&mut defects);
            Some(Body {
                data,
                end: terminator.end,
                defects,
                resume: after_terminator,
            })
        }
    }
}

/// Decodes `length` bytes from the characters of one line; characters
/// missing at the end count as zero (stripped trailing spaces).
fn decode_uu_line(chars: &[u8], length: usize, out: &mut Vec<u8>) {
    let value = |i: usize| chars.get(i).map_or(0, |&c| uu_value(c));
    let start = out.len();
    let mut i = 0;
    while out.len() - start < length {
        let (a, b, c, d) = (value(i), value(i + 1), value(i + 2), value(i + 3));
        let group = [a << 2 | b >> 4, b << 4 | c >> 2, c << 6 | d];
        let take = (length - (out.len() - start)).min(3);
        out.extend_from_slice(&group[..take]);
        i += 4;
    }
}

fn trim_end_matches(bytes: &[u8], strip: impl Fn(u8) -> bool) -> &[u8] {
    let keep = bytes.len() - bytes.iter().rev().take_while(|&&b| strip(b)).count();
    &bytes[..keep]
}

fn base64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes the lines after `begin-base64` up to `====`.
fn decode_base64_body<'a>(lines: &mut Lines<'a>) -> Option<Body<'a>> {
    let mut data = Vec::new();
    let mut defects = Vec::new();
    let mut data_lines = 0usize;
    // Bits carried across lines: base64 groups may straddle line breaks.
    let mut accumulator = 0u32;
    let mut bits = 0u32;
    let mut padded = false;
    loop {
        let before = lines.clone();
        let line = lines.next();
        let content = line.map(|l| l.content.trim_ascii());
        let stop = match (line, content) {
            (Some(line), Some(b"====")) => Some((line.end, lines.clone(), None)),
            (None, _) => Some((
                before.position(),
                before.clone(),
                Some("no ==== line; decoded up to the end of the text".to_owned()),
            )),
            (Some(line), Some(content))
                if content.is_empty()
                    || !content
                        .iter()
                        .all(|&c| c == b'=' || base64_value(c).is_some()) =>
            {
                Some((
                    line.start,
                    before.clone(),
                    Some(format!(
                        "no ==== line; the block stops at line {}, which is not base64",
                        line.number
                    )),
                ))
            }
            _ => None,
        };
        if let Some((end, resume, defect)) = stop {
            if data_lines == 0 && defect.is_some() {
                return None;
            }
            defects.extend(defect);
            if bits >= 6 {
                defects.push("base64 data ends with a partial group".to_owned());
            }
            return Some(Body {
                data,
                end,
                defects,
                resume,
            });
        }
        for &c in content.unwrap_or_default() {
            let Some(value) = base64_value(c) else {
                padded = true;
                continue;
            };
            if padded {
                // Data after padding is a second stream glued on; keep
                // decoding, as the bytes are still the sender's.
                padded = false;
                accumulator = 0;
                bits = 0;
            }
            accumulator = accumulator << 6 | u32::from(value);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                data.push((accumulator >> bits) as u8);
                accumulator &= (1 << bits) - 1;
            }
        }
        data_lines += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a uuencoded block the way the classic encoder does.
    fn encode(name: &str, data: &[u8]) -> Vec<u8> {
        let char_of = |v: u8| if v == 0 { b'`' } else { v + b' ' };
        let mut out = format!("begin 644 {name}\n").into_bytes();
        for chunk in data.chunks(45) {
            out.push(char_of(chunk.len() as u8));
            for group in chunk.chunks(3) {
                let g = [
                    group[0],
                    *group.get(1).unwrap_or(&0),
                    *group.get(2).unwrap_or(&0),
                ];
                out.push(char_of(g[0] >> 2));
                out.push(char_of((g[0] << 4 | g[1] >> 4) & 0x3f));
                out.push(char_of((g[1] << 2 | g[2] >> 6) & 0x3f));
                out.push(char_of(g[2] & 0x3f));
            }
            out.push(b'\n');
        }
        out.extend_from_slice(b"`\nend\n");
        out
    }

    fn sample() -> Vec<u8> {
        (0..=255u8).cycle().take(1000).collect()
    }

    #[test]
    fn round_trips_through_the_classic_encoding() {
        let data = sample();
        let block = encode("file.pdf", &data);
        let found = find_blocks(&block);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "file.pdf");
        assert_eq!(found[0].mode, Some(0o644));
        assert_eq!(found[0].data, data);
        assert_eq!((found[0].start, found[0].end), (0, block.len()));
        assert!(found[0].defects.is_empty(), "{:?}", found[0].defects);
    }

    #[test]
    fn tolerated_damage() {
        let data = sample();
        let clean = encode("x.bin", &data);
        let clean_text = String::from_utf8(clean.clone()).unwrap();
        let crlf = clean_text.replace('\n', "\r\n");
        let spaces_for_backticks = clean_text.replace('`', " ");
        let stripped_trailing_spaces: String = spaces_for_backticks
            .lines()
            .map(|l| format!("{}\n", l.trim_end_matches(' ')))
            .collect();
        let no_end = clean_text.replace("`\nend\n", "");
        let no_terminator = clean_text.replace("`\nend\n", "end\n");
        // (case, text, expected defect count)
        let cases: Vec<(&str, String, usize)> = vec![
            ("crlf", crlf, 0),
            ("space for zero", spaces_for_backticks, 0),
            ("trailing spaces stripped", stripped_trailing_spaces, 1),
            ("missing end", no_end, 1),
            ("end without zero-length line", no_terminator, 0),
        ];
        for (case, text, defects) in cases {
            let found = find_blocks(text.as_bytes());
            assert_eq!(found.len(), 1, "{case}");
            assert_eq!(found[0].data, data, "{case}");
            assert_eq!(
                found[0].defects.len(),
                defects,
                "{case}: {:?}",
                found[0].defects
            );
            assert_eq!(found[0].end, text.len(), "{case}");
        }
    }

    #[test]
    fn short_and_long_lines() {
        // (case, data line, expected bytes, expected defects); a missing
        // character counts as zero, so "#86)" ends in '@' (0x40).
        let cases: &[(&str, &str, &[u8], usize)] = &[
            ("exact", "#86)C", b"abc", 0),
            ("checksum char", "#86)CX", b"abc", 0),
            ("too long", "#86)C86)C", b"abc", 1),
            ("too short", "#86)", b"ab@", 1),
            ("trailing spaces added", "#86)C      ", b"abc", 0),
        ];
        for (case, line, bytes, defects) in cases {
            let text = format!("begin 600 t\n{line}\n`\nend\n");
            let found = find_blocks(text.as_bytes());
            assert_eq!(found.len(), 1, "{case}");
            assert_eq!(found[0].data, *bytes, "{case}");
            assert_eq!(
                found[0].defects.len(),
                *defects,
                "{case}: {:?}",
                found[0].defects
            );
        }
    }

    #[test]
    fn prose_is_not_a_block() {
        let cases: &[&str] = &[
            "begin the meeting at noon\nend\n",
            "begin 644\nM86)C\nend\n",
            "begin 12 apples\nM86)C\nend\n",
            "begin 644 notes.txt\nthis is ordinary prose in lower case\nend\n",
            "begin 644 notes.txt\n\nWe will begin soon.\n",
            "begin 644 notes.txt\n",
            "begin644 x\n#86)C\n`\nend\n",
            "  begin 644 x\n#86)C\n`\nend\n",
        ];
        for text in cases {
            assert!(find_blocks(text.as_bytes()).is_empty(), "{text:?}");
        }
    }

    #[test]
    fn finds_several_blocks_with_ranges() {
        let one = encode("one", b"first file");
        let two = encode("two", b"second");
        let mut text = b"Hello,\n\n".to_vec();
        let start_one = text.len();
        text.extend_from_slice(&one);
        text.extend_from_slice(b"\nbetween\n");
        let start_two = text.len();
        text.extend_from_slice(&two);
        text.extend_from_slice(b"bye\n");
        let found = find_blocks(&text);
        let summary: Vec<_> = found
            .iter()
            .map(|f| (f.name.as_str(), f.data.as_slice(), f.start, f.end))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("one", &b"first file"[..], start_one, start_one + one.len()),
                ("two", &b"second"[..], start_two, start_two + two.len()),
            ]
        );
    }

    #[test]
    fn block_cut_short_by_another_begin() {
        let text = b"begin 644 a\n#86)C\nbegin 644 b\n#86)C\n`\nend\n";
        let found = find_blocks(text);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].defects.len(), 1);
        assert_eq!(found[0].end, b"begin 644 a\n#86)C\n".len());
        assert_eq!(found[1].name, "b");
    }

    #[test]
    fn begin_line_fields() {
        // (begin line, name, mode, defects)
        let cases: &[(&[u8], &str, Option<u32>, usize)] = &[
            (b"begin 644 file.pdf", "file.pdf", Some(0o644), 0),
            (
                b"begin\t0600  two words.txt  ",
                "two words.txt",
                Some(0o600),
                0,
            ),
            (b"begin 999 odd", "odd", None, 1),
            (b"begin 644 Fr\xf6sche.txt", "Frösche.txt", Some(0o644), 0),
            ("begin 644 żółć.png".as_bytes(), "żółć.png", Some(0o644), 0),
            (
                b"begin 644 \xc5\xbc\xc3\xb3\xc5.png",
                "żó\u{FFFD}.png",
                Some(0o644),
                1,
            ),
        ];
        for (line, name, mode, defects) in cases {
            let mut text = line.to_vec();
            text.extend_from_slice(b"\n#86)C\n`\nend\n");
            let found = find_blocks(&text);
            assert_eq!(found.len(), 1, "{line:?}");
            assert_eq!(found[0].name, *name);
            assert_eq!(found[0].mode, *mode);
            assert_eq!(found[0].defects.len(), *defects);
        }
    }

    #[test]
    fn empty_file_form() {
        let found = find_blocks(b"begin 644 empty\n`\nend\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].data.is_empty());
        assert!(found[0].defects.is_empty());
    }

    #[test]
    fn begin_base64() {
        // (case, text, data, defects)
        let cases: &[(&str, &str, &[u8], usize)] = &[
            (
                "terminated",
                "begin-base64 644 a.txt\naGVsbG8g\nd29ybGQ=\n====\n",
                b"hello world",
                0,
            ),
            (
                "unterminated",
                "begin-base64 644 a.txt\naGVsbG8g\nd29ybGQ=\n",
                b"hello world",
                1,
            ),
            (
                "crlf",
                "begin-base64 600 a.txt\r\naGVsbG8gd29ybGQ=\r\n====\r\n",
                b"hello world",
                0,
            ),
        ];
        for (case, text, data, defects) in cases {
            let found = find_blocks(text.as_bytes());
            assert_eq!(found.len(), 1, "{case}");
            assert_eq!(found[0].data, *data, "{case}");
            assert_eq!(
                found[0].defects.len(),
                *defects,
                "{case}: {:?}",
                found[0].defects
            );
            assert_eq!(found[0].end, text.len(), "{case}");
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        let mut inputs: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"begin".to_vec(),
            b"begin 644 x".to_vec(),
            b"begin 644 x\n".to_vec(),
            b"begin 644 x\n\xff\xfe".to_vec(),
            b"begin 644 x\nM".to_vec(),
            b"begin 644 x\n`".to_vec(),
            b"begin-base64 644 x\n====".to_vec(),
            b"begin-base64 644 x\n=\nQQ\n".to_vec(),
        ];
        const ALPHABET: &[u8] = b" `!\"#M\n\r\tendbegin 644 =A";
        let mut state = 0x2545_f491_u32;
        for _ in 0..300 {
            let len = (state % 200) as usize;
            let mut input = b"begin 644 r\n".to_vec();
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                input.push(ALPHABET[state as usize % ALPHABET.len()]);
            }
            inputs.push(input);
        }
        for input in inputs {
            for block in find_blocks(&input) {
                assert!(block.start < block.end && block.end <= input.len());
            }
        }
    }

    #[test]
    fn corpus_blocks_decode_to_the_original_files() {
        let Some(corpora) = crate::test_corpora::root() else {
            return;
        };
        let zbateson = "zbateson-mail-mime-parser/tests/_data/emails";
        // (message, [(name in the begin line, original file)]); an original
        // without a folder is in zbateson's files/.
        let cases: &[(String, &[(&str, &str)])] = &[
            (
                format!("{zbateson}/m0018.txt"),
                &[
                    ("blueball.png", "blueball.png"),
                    ("greenball.png", "greenball.png"),
                    ("redball.png", "redball.png"),
                ],
            ),
            (
                format!("{zbateson}/m1014.txt"),
                &[
                    ("redball.png", "redball.png"),
                    ("greenball.png", "greenball.png"),
                    ("blueball.png", "blueball.png"),
                ],
            ),
            (
                format!("{zbateson}/m2010.txt"),
                &[
                    ("greenball.png", "greenball.png"),
                    ("blueball.png", "blueball.png"),
                ],
            ),
            (
                format!("{zbateson}/m2013.txt"),
                &[("HasenundFrösche.txt", "HasenundFrosche.txt")],
            ),
            (
                format!("{zbateson}/m3007.txt"),
                &[
                    ("greenball.png", "greenball.png"),
                    ("blueball.png", "blueball.png"),
                    ("HasenundFrösche.txt", "HasenundFrosche.txt"),
                ],
            ),
            (
                "roundcube/tests/src/test.uuencode".to_owned(),
                &[("test.pdf", "roundcube/tests/src/test.pdf")],
            ),
        ];
        for (message, expected) in cases {
            let text = std::fs::read(corpora.join(message)).unwrap();
            let found = find_blocks(&text);
            let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
            let expected_names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
            assert_eq!(names, expected_names, "{message}");
            for (block, (_, original)) in found.iter().zip(expected.iter()) {
                let original = if original.contains('/') {
                    corpora.join(original)
                } else {
                    corpora.join(zbateson).join("files").join(original)
                };
                let original = std::fs::read(original).unwrap();
                assert!(block.data == original, "{message}: {} differs", block.name);
                assert!(block.defects.is_empty(), "{message}: {:?}", block.defects);
            }
        }
    }
}
