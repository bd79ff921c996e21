//! Reading mbox files as a stream of messages: mboxo, mboxrd, mboxcl and
//! mboxcl2, LF or CRLF, from any buffered reader, one message in memory
//! at a time (a 10 GB export runs in the memory of its largest message).
//!
//! # Where a message starts
//!
//! At an envelope line ([`is_envelope_line`]): `From `, a sender word, and
//! a date with a month name, a time and a four-digit year, as every mbox
//! writer puts them (`From alice@example.org Mon Jan  5 10:00:00 2026`,
//! `From - Tue Sep 11 ...`). A body line such as `From here on ...` does
//! not split a message. The blank line a writer puts before the next
//! envelope is not part of the message before it.
//!
//! A message whose header has `Content-Length: N` (mboxcl, mboxcl2) ends
//! after N body bytes when they end exactly at the next envelope line
//! (or a blank line and then one) or at the end of the file: then a `From `
//! line inside its body does not split it. A length that points anywhere
//! else is ignored (with a defect) and envelope lines decide.
//!
//! # `>From ` quoting
//!
//! Writers quote body lines that start with `From `: mboxo and mboxcl as
//! `>From ` (a literal `>From ` stays as it is, so the two cannot be told
//! apart), mboxrd every `>*From ` with one more `>`. [`Format::Auto`]
//! undoes mboxrd quoting (one `>` off every `>+From ` line) unless the
//! message has a bare `From ` line, which no quoting writer leaves: then
//! nothing is unquoted (mboxcl2, which protects such lines by
//! `Content-Length` instead). The other formats do exactly what their
//! names say.
//!
//! Deliberately not here: locking a spool file, writing mbox, MMDF
//! (`^A^A^A^A` separators).

use std::io::{self, BufRead};

/// How to split and unquote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `Content-Length` when it fits; mboxrd unquoting unless the message
    /// has a bare `From ` line (see the module documentation).
    #[default]
    Auto,
    /// Envelope lines only; `>From ` becomes `From `.
    Mboxo,
    /// Envelope lines only; one `>` off every `>+From ` line.
    Mboxrd,
    /// `Content-Length` when it fits; `>From ` becomes `From `.
    Mboxcl,
    /// `Content-Length` when it fits; nothing is unquoted.
    Mboxcl2,
}

impl Format {
    /// The format by its name (`auto`, `mboxo`, `mboxrd`, `mboxcl`,
    /// `mboxcl2`).
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name.to_ascii_lowercase().as_str() {
            "auto" => Format::Auto,
            "mboxo" => Format::Mboxo,
            "mboxrd" => Format::Mboxrd,
            "mboxcl" => Format::Mboxcl,
            "mboxcl2" => Format::Mboxcl2,
            _ => return None,
        })
    }

    fn honours_content_length(self) -> bool {
        matches!(self, Format::Auto | Format::Mboxcl | Format::Mboxcl2)
    }
}

/// One message of an mbox.
#[derive(Debug, Clone, Default)]
pub struct Message {
    /// 1-based position in the mbox.
    pub number: usize,
    /// Byte offset of its envelope line (of its first line when it has
    /// none) in the mbox.
    pub offset: u64,
    /// The envelope line after `From `, without its line end (empty when
    /// the message had none).
    pub envelope: Vec<u8>,
    /// The message itself: no envelope line, unquoted, without the blank
    /// line that separated it from the next.
    pub bytes: Vec<u8>,
    /// What had to be guessed while splitting it off.
    pub defects: Vec<String>,
}

/// A `Content-Length` above this is not believed (nor buffered).
const MAX_CONTENT_LENGTH: u64 = 1 << 30;

/// Reads an mbox message by message (see the module documentation).
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    format: Format,
    /// Bytes read ahead and given back, read before `inner`.
    pushed: Vec<u8>,
    pushed_at: usize,
    /// Offset of the next byte [`Reader::line`] hands out.
    offset: u64,
    /// The envelope line that ended the last message, and its offset.
    next_envelope: Option<(Vec<u8>, u64)>,
    number: usize,
    started: bool,
    finished: bool,
    /// Everything read from `inner` while this is set.
    capture: Option<Vec<u8>>,
}

impl<R: BufRead> Reader<R> {
    /// A reader over `inner`, from its start.
    pub fn new(inner: R, format: Format) -> Self {
        Reader {
            inner,
            format,
            pushed: Vec::new(),
            pushed_at: 0,
            offset: 0,
            next_envelope: None,
            number: 0,
            started: false,
            finished: false,
            capture: None,
        }
    }

    /// Keeps a copy of every byte read from now on, until
    /// [`Reader::take_capture`]: what a caller needs to take a one-message
    /// file as the file it is.
    pub fn start_capture(&mut self) {
        self.capture = Some(Vec::new());
    }

    /// The bytes read since [`Reader::start_capture`]; stops capturing.
    pub fn take_capture(&mut self) -> Vec<u8> {
        self.capture.take().unwrap_or_default()
    }

    /// True when nothing is left to read.
    pub fn at_end(&mut self) -> io::Result<bool> {
        if self.next_envelope.is_some() || self.pushed_at < self.pushed.len() {
            return Ok(false);
        }
        Ok(self.inner.fill_buf()?.is_empty())
    }

    /// Appends the next line (with its line end) to `buf`; 0 at the end.
    fn line(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let start = buf.len();
        if self.pushed_at < self.pushed.len() {
            let rest = &self.pushed[self.pushed_at..];
            match memchr::memchr(b'\n', rest) {
                Some(at) => {
                    buf.extend_from_slice(&rest[..=at]);
                    self.pushed_at += at + 1;
                    self.compact_pushed();
                    self.offset += (at + 1) as u64;
                    return Ok(at + 1);
                }
                None => {
                    buf.extend_from_slice(rest);
                    self.pushed_at = self.pushed.len();
                    self.compact_pushed();
                }
            }
        }
        let from_inner = buf.len();
        self.inner.read_until(b'\n', buf)?;
        if let Some(c) = &mut self.capture {
            c.extend_from_slice(&buf[from_inner..]);
        }
        let n = buf.len() - start;
        self.offset += n as u64;
        Ok(n)
    }

    /// Appends up to `n` bytes to `buf`; fewer only at the end.
    fn exact(&mut self, n: usize, buf: &mut Vec<u8>) -> io::Result<usize> {
        let mut got = 0;
        while got < n {
            let want = n - got;
            if self.pushed_at < self.pushed.len() {
                let rest = &self.pushed[self.pushed_at..];
                let take = rest.len().min(want);
                buf.extend_from_slice(&rest[..take]);
                self.pushed_at += take;
                self.compact_pushed();
                got += take;
                continue;
            }
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            let take = chunk.len().min(want);
            buf.extend_from_slice(&chunk[..take]);
            if let Some(c) = &mut self.capture {
                c.extend_from_slice(&chunk[..take]);
            }
            self.inner.consume(take);
            got += take;
        }
        self.offset += got as u64;
        Ok(got)
    }

    fn compact_pushed(&mut self) {
        if self.pushed_at == self.pushed.len() {
            self.pushed.clear();
            self.pushed_at = 0;
        }
    }

    /// Gives `bytes` back: they are read again before anything else.
    fn push_back(&mut self, bytes: &[u8]) {
        let mut v = Vec::with_capacity(bytes.len() + self.pushed.len() - self.pushed_at);
        v.extend_from_slice(bytes);
        v.extend_from_slice(&self.pushed[self.pushed_at..]);
        self.pushed = v;
        self.pushed_at = 0;
        self.offset -= bytes.len() as u64;
    }

    /// The next message, or None at the end.
    pub fn next_message(&mut self) -> io::Result<Option<Message>> {
        if self.finished {
            return Ok(None);
        }
        let mut m = Message::default();
        let mut bytes = Vec::new();
        match self.next_envelope.take() {
            Some((line, offset)) => {
                m.offset = offset;
                m.envelope = envelope_text(&line);
            }
            None => {
                // The start of the input (or what follows a message cut
                // by an envelope line in its header).
                loop {
                    m.offset = self.offset;
                    let mut line = Vec::new();
                    if self.line(&mut line)? == 0 {
                        self.finished = true;
                        return Ok(None);
                    }
                    if is_envelope_line(&line) {
                        m.envelope = envelope_text(&line);
                        break;
                    }
                    if !self.started && trim_eol(&line).is_empty() {
                        // Blank lines before the first envelope are noise.
                        continue;
                    }
                    m.defects
                        .push("the message has no From_ line in front of it".into());
                    bytes = line;
                    break;
                }
            }
        }
        self.started = true;
        self.number += 1;
        m.number = self.number;
        // The header, up to its blank line.
        let mut content_length = None;
        let mut header_done = false;
        if !bytes.is_empty() {
            if trim_eol(&bytes).is_empty() {
                header_done = true;
            } else {
                content_length = content_length.or_else(|| parse_content_length(&bytes));
            }
        }
        while !header_done {
            let start = bytes.len();
            if self.line(&mut bytes)? == 0 {
                break;
            }
            let line = &bytes[start..];
            if is_envelope_line(line) {
                self.next_envelope = Some((line.to_vec(), self.offset - line.len() as u64));
                bytes.truncate(start);
                m.defects
                    .push("the next From_ line came before the header ended".into());
                m.bytes = finish_bytes(bytes, &[], false, self.format, false);
                return Ok(Some(m));
            }
            if trim_eol(line).is_empty() {
                header_done = true;
            } else if content_length.is_none() {
                content_length = parse_content_length(line);
            }
        }
        let header_len = bytes.len();
        if self.format.honours_content_length()
            && let Some(n) = content_length
        {
            if n <= MAX_CONTENT_LENGTH && self.body_by_length(n as usize, &mut bytes)? {
                let bare = has_bare_from(&bytes[header_len..]);
                let quoted = quoted_lines(&bytes, header_len);
                m.bytes = finish_bytes(bytes, &quoted, false, self.format, bare);
                return Ok(Some(m));
            }
            m.defects.push(format!(
                "Content-Length {n} does not end at a From_ line or the end: split at From_ lines"
            ));
        }
        // Envelope lines decide.
        let mut bare = false;
        let mut quoted = Vec::new();
        loop {
            let start = bytes.len();
            if self.line(&mut bytes)? == 0 {
                self.finished = true;
                break;
            }
            let line = &bytes[start..];
            if line.starts_with(b"From ") {
                if is_envelope_line(line) {
                    self.next_envelope = Some((line.to_vec(), self.offset - line.len() as u64));
                    bytes.truncate(start);
                    break;
                }
                bare = true;
            } else if line.first() == Some(&b'>') && is_quoted_from(line) {
                quoted.push(start);
            }
        }
        m.bytes = finish_bytes(bytes, &quoted, true, self.format, bare);
        Ok(Some(m))
    }

    /// Reads a body of `n` bytes into `bytes` when it ends where the next
    /// message starts (or at the end); otherwise gives everything back
    /// and returns false.
    fn body_by_length(&mut self, n: usize, bytes: &mut Vec<u8>) -> io::Result<bool> {
        let start = bytes.len();
        let got = self.exact(n, bytes)?;
        let mut after = Vec::new();
        // The length of a blank line between the body and what follows.
        let mut blank = 0;
        let fits = if got < n {
            false
        } else if self.line(&mut after)? == 0 || is_envelope_line(&after) {
            // The end, or the next message right after the body.
            true
        } else if trim_eol(&after).is_empty() {
            blank = after.len();
            if self.line(&mut after)? == 0 {
                true
            } else {
                is_envelope_line(&after[blank..])
            }
        } else {
            false
        };
        if !fits {
            let mut back = bytes.split_off(start);
            back.extend_from_slice(&after);
            self.push_back(&back);
            return Ok(false);
        }
        // What follows: the next envelope (after a blank line, maybe).
        let line_start = blank;
        let envelope = &after[line_start..];
        if envelope.is_empty() {
            self.finished = true;
        } else {
            self.next_envelope = Some((envelope.to_vec(), self.offset - envelope.len() as u64));
        }
        Ok(true)
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = io::Result<Message>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_message() {
            Ok(Some(m)) => Some(Ok(m)),
            Ok(None) => None,
            Err(e) => {
                self.finished = true;
                Some(Err(e))
            }
        }
    }
}

/// The message's bytes: one trailing blank line off (when `strip_blank`:
/// the separator a writer adds), quoted lines (offsets in `quoted`)
/// unquoted as `format` says.
fn finish_bytes(
    mut bytes: Vec<u8>,
    quoted: &[usize],
    strip_blank: bool,
    format: Format,
    bare_from: bool,
) -> Vec<u8> {
    if strip_blank {
        if bytes == b"\n" || bytes == b"\r\n" {
            bytes.clear();
        } else if bytes.ends_with(b"\n\r\n") {
            bytes.truncate(bytes.len() - 2);
        } else if bytes.ends_with(b"\n\n") {
            bytes.truncate(bytes.len() - 1);
        }
    }
    let unquote_all = match format {
        Format::Mboxcl2 => return bytes,
        Format::Auto if bare_from => return bytes,
        Format::Auto | Format::Mboxrd => true,
        Format::Mboxo | Format::Mboxcl => false,
    };
    let quoted: Vec<usize> = quoted
        .iter()
        .copied()
        .filter(|&at| at < bytes.len() && (unquote_all || bytes[at..].starts_with(b">From ")))
        .collect();
    if quoted.is_empty() {
        return bytes;
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for q in quoted {
        out.extend_from_slice(&bytes[at..q]);
        at = q + 1;
    }
    out.extend_from_slice(&bytes[at..]);
    out
}

/// Offsets of the `>+From ` lines in `bytes[from..]`.
fn quoted_lines(bytes: &[u8], from: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = from;
    while at < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |p| at + p + 1);
        if bytes[at] == b'>' && is_quoted_from(&bytes[at..end]) {
            out.push(at);
        }
        at = end;
    }
    out
}

/// True when a line of `body` starts with `From ` (unquoted).
fn has_bare_from(body: &[u8]) -> bool {
    body.starts_with(b"From ") || memchr::memmem::find(body, b"\nFrom ").is_some()
}

/// `>From `, `>>From `, ...
fn is_quoted_from(line: &[u8]) -> bool {
    let n = line.iter().take_while(|&&b| b == b'>').count();
    n > 0 && line[n..].starts_with(b"From ")
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn envelope_text(line: &[u8]) -> Vec<u8> {
    trim_eol(line).get(5..).unwrap_or_default().to_vec()
}

/// The value of a `Content-Length:` header line.
fn parse_content_length(line: &[u8]) -> Option<u64> {
    let name = b"content-length:";
    if line.len() < name.len() || !line[..name.len()].eq_ignore_ascii_case(name) {
        return None;
    }
    let value = trim_eol(&line[name.len()..]).trim_ascii();
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

const MONTHS: [&[u8]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];

/// True when `line` is an mbox envelope line: `From `, a sender word, and
/// a date with a month name, a time (`H:MM`, `HH:MM:SS`) and a four-digit
/// year, in any order.
pub fn is_envelope_line(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"From ") else {
        return false;
    };
    let rest = trim_eol(rest);
    if rest.len() > 1000 {
        return false;
    }
    let mut words = rest
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|w| !w.is_empty());
    if words.next().is_none() {
        return false;
    }
    let (mut month, mut time, mut year) = (false, false, false);
    for word in words {
        let word = word.strip_suffix(b",").unwrap_or(word);
        if word.len() == 3 && MONTHS.iter().any(|m| word.eq_ignore_ascii_case(m)) {
            month = true;
        } else if word.len() == 4 && word.iter().all(u8::is_ascii_digit) {
            year = true;
        } else if is_time(word) {
            time = true;
        }
    }
    month && time && year
}

/// `H:MM`, `HH:MM`, `HH:MM:SS`.
fn is_time(word: &[u8]) -> bool {
    let mut fields = word.split(|&b| b == b':');
    let Some(hours) = fields.next() else {
        return false;
    };
    let mut n = 0;
    for f in fields {
        if f.len() != 2 || !f.iter().all(u8::is_ascii_digit) {
            return false;
        }
        n += 1;
    }
    (1..=2).contains(&hours.len()) && hours.iter().all(u8::is_ascii_digit) && (1..=2).contains(&n)
}

/// True when `start` (the first bytes of a file) begins with an envelope
/// line, after any blank lines: the file may be an mbox.
pub fn starts_like_mbox(start: &[u8]) -> bool {
    let mut at = 0;
    while at < start.len() {
        let end = memchr::memchr(b'\n', &start[at..]).map_or(start.len(), |p| at + p + 1);
        let line = &start[at..end];
        if !trim_eol(line).is_empty() {
            return is_envelope_line(line);
        }
        at = end;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &[u8], format: Format) -> Vec<Message> {
        Reader::new(raw, format).map(|m| m.unwrap()).collect()
    }

    fn bodies(raw: &[u8], format: Format) -> Vec<String> {
        read(raw, format)
            .into_iter()
            .map(|m| String::from_utf8(m.bytes).unwrap())
            .collect()
    }

    #[test]
    fn envelope_lines() {
        for yes in [
            "From alice@example.org Mon Jan  5 10:00:00 2026\n",
            "From - Tue Sep 11 08:12:00 2001\r\n",
            "From 1601234567890123456@xxx Wed Sep 23 14:15:16 +0000 2020\n",
            "From MAILER-DAEMON Thu Jan  1 00:00 1970",
            "From bob Mon, 5 Jan 2026 10:00:00 +0100\n",
        ] {
            assert!(is_envelope_line(yes.as_bytes()), "{yes:?}");
        }
        for no in [
            "From here on we meet at 10:00 every day.\n",
            "From: alice@example.org\n",
            ">From alice Mon Jan  5 10:00:00 2026\n",
            "From  \n",
            "From Jan 10:00 2026\n",
            "from alice Mon Jan  5 10:00:00 2026\n",
        ] {
            assert!(!is_envelope_line(no.as_bytes()), "{no:?}");
        }
    }

    const MBOXRD: &str = "From a@x Mon Jan  5 10:00:00 2026\nSubject: one\n\n>From the start\n>>From quoted\nFrom is not a separator here\n\nFrom b@x Mon Jan  5 11:00:00 2026\nSubject: two\n\n>From the start\n>>From quoted\nend\n\n";

    #[test]
    fn split_and_unquote() {
        let msgs = read(MBOXRD.as_bytes(), Format::Mboxrd);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].number, 1);
        assert_eq!(msgs[0].offset, 0);
        assert_eq!(msgs[0].envelope, b"a@x Mon Jan  5 10:00:00 2026");
        assert_eq!(msgs[1].offset, MBOXRD.find("From b@x").unwrap() as u64);
        assert_eq!(
            String::from_utf8_lossy(&msgs[1].bytes),
            "Subject: two\n\nFrom the start\n>From quoted\nend\n"
        );
        // mboxo: only >From loses its >.
        assert_eq!(
            bodies(MBOXRD.as_bytes(), Format::Mboxo)[1],
            "Subject: two\n\nFrom the start\n>>From quoted\nend\n"
        );
        // Auto: message 1 has a bare From line, so nothing is unquoted in it.
        let auto = bodies(MBOXRD.as_bytes(), Format::Auto);
        assert_eq!(
            auto[0],
            "Subject: one\n\n>From the start\n>>From quoted\nFrom is not a separator here\n"
        );
        assert_eq!(
            auto[1],
            "Subject: two\n\nFrom the start\n>From quoted\nend\n"
        );
    }

    #[test]
    fn content_length_protects_a_from_line() {
        let body = "From a@x Mon Jan  5 10:00:00 2026 is in the body\n>From too\n";
        let raw = format!(
            "From a@x Mon Jan  5 10:00:00 2026\nContent-Length: {}\nSubject: one\n\n{body}\nFrom b@x Mon Jan  5 11:00:00 2026\nSubject: two\n\nhi\n",
            body.len()
        );
        let msgs = bodies(raw.as_bytes(), Format::Auto);
        assert_eq!(msgs.len(), 2);
        assert!(msgs[0].ends_with(body), "{:?}", msgs[0]);
        assert_eq!(msgs[1], "Subject: two\n\nhi\n");
        let envelopes: Vec<_> = read(raw.as_bytes(), Format::Auto)
            .into_iter()
            .map(|m| m.envelope)
            .collect();
        assert_eq!(envelopes[1], b"b@x Mon Jan  5 11:00:00 2026");
        // A wrong length is ignored: envelope lines decide.
        let wrong = raw.replace(&format!("Length: {}", body.len()), "Length: 5");
        let msgs = read(wrong.as_bytes(), Format::Auto);
        assert_eq!(msgs.len(), 3);
        assert!(msgs[0].defects[0].contains("Content-Length 5"));
        // mboxo never looks at it.
        assert_eq!(read(raw.as_bytes(), Format::Mboxo).len(), 3);
        // A length running past the end is ignored too.
        let long = raw.replace(&format!("Length: {}", body.len()), "Length: 99999");
        assert_eq!(read(long.as_bytes(), Format::Mboxcl2).len(), 3);
    }

    #[test]
    fn crlf_and_noise() {
        let raw = MBOXRD.replace('\n', "\r\n");
        let msgs = bodies(raw.as_bytes(), Format::Mboxrd);
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            msgs[1],
            "Subject: two\r\n\r\nFrom the start\r\n>From quoted\r\nend\r\n"
        );
        // Text before the first envelope is a message of its own, said so.
        let msgs = read(
            b"\nSubject: stray\n\nx\nFrom a Mon Jan  5 10:00:00 2026\n\ny\n",
            Format::Auto,
        );
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].bytes, b"Subject: stray\n\nx\n");
        assert_eq!(msgs[0].defects.len(), 1);
        assert_eq!(msgs[1].bytes, b"\ny\n");
        assert!(read(b"", Format::Auto).is_empty());
        // A header cut short by the next envelope ends that message.
        let msgs = read(
            b"From a Mon Jan  5 10:00:00 2026\nSubject: cut\nFrom b Mon Jan  5 10:00:00 2026\nSubject: b\n\nz",
            Format::Auto,
        );
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].bytes, b"Subject: cut\n");
        assert_eq!(msgs[1].bytes, b"Subject: b\n\nz");
    }

    #[test]
    fn capture_and_at_end() {
        let mut r = Reader::new(MBOXRD.as_bytes(), Format::Auto);
        r.start_capture();
        r.next_message().unwrap().unwrap();
        assert!(!r.at_end().unwrap());
        r.next_message().unwrap().unwrap();
        assert!(r.at_end().unwrap());
        assert_eq!(r.take_capture(), MBOXRD.as_bytes());
        assert!(starts_like_mbox(b"\n\nFrom a Mon Jan  5 10:00:00 2026\n"));
        assert!(!starts_like_mbox(b"Subject: x\n"));
    }

    proptest::proptest! {
        /// Whatever the bytes, reading ends and every byte is accounted
        /// for: no panic, offsets increase.
        #[test]
        fn arbitrary_input(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..500), cl in 0usize..5) {
            let mut text = b"From a Mon Jan  5 10:00:00 2026\nContent-Length: ".to_vec();
            text.extend_from_slice(cl.to_string().as_bytes());
            text.extend_from_slice(b"\n\n");
            text.extend_from_slice(&raw);
            let mut last = None;
            for m in Reader::new(&text[..], Format::Auto) {
                let m = m.unwrap();
                proptest::prop_assert!(last.is_none_or(|l| m.offset > l));
                last = Some(m.offset);
            }
        }
    }
}
