//! A MIME parser over bytes that reports what it had to guess.
//!
//! [`parse`] turns a message into a flat list of [`Part`]s in tree order,
//! each with its decoded body, its declared names (raw and decoded) and an
//! IMAP-like path:
//!
//! - a single-part message's body is `1`;
//! - the multipart that is a message's whole body is `0`; its children
//!   are `1`, `2`, ...; a nested multipart at `2` has children `2.1`, `2.2`;
//! - an attached `message/rfc822` at `3` is itself a part; its body is
//!   numbered below it like a message's: `3.1` for a single part, or `3.0`
//!   for its multipart and `3.1`, `3.2` for that multipart's children.
//!
//! Multipart bodies are split on lines that are `--boundary`, optionally
//! followed by `--`, then only white space: a longer boundary that starts
//! with the outer one does not end the outer part. A missing close
//! delimiter, a missing boundary parameter, a boundary that never appears,
//! depth, part-count and size limits are all recovered from and recorded
//! as [`Defect`]s. Input may be LF or CRLF, any charset, any line length.
//!
//! This module does not decide what is an attachment or write files
//! (see [`crate::dissect`]).

pub mod charset;
pub mod header;
pub mod params;
pub mod rfc2047;
pub mod transfer;

use serde::Serialize;

pub use header::{Header, Headers};
use params::ParamValue;
use transfer::TransferEncoding;

/// Limits that keep hostile input from using unbounded time or memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How deep multiparts and attached messages may nest.
    pub max_depth: usize,
    /// How many parts one message may have.
    pub max_parts: usize,
    /// How many decoded bytes one message may produce in all (attached
    /// messages count too, since each is kept whole as well as decoded).
    pub max_decoded_bytes: usize,
}

impl Default for Limits {
    /// Depth 20, 10,000 parts, 512 MiB decoded: far above what real mail
    /// needs, low enough that nested copies cannot exhaust memory.
    fn default() -> Self {
        Limits {
            max_depth: 20,
            max_parts: 10_000,
            max_decoded_bytes: 512 << 20,
        }
    }
}

/// What kind of thing had to be guessed or was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DefectKind {
    /// A header block that is not well formed.
    Header,
    /// A Content-Type or Content-Disposition parameter problem.
    Parameter,
    /// A charset that was missing, unknown or wrong.
    Charset,
    /// Bad base64.
    Base64,
    /// Bad quoted-printable.
    QuotedPrintable,
    /// An unknown or misspelled transfer encoding.
    TransferEncoding,
    /// A multipart without a boundary parameter.
    MissingBoundary,
    /// A multipart whose boundary never appears.
    BoundaryNotFound,
    /// A multipart without its close delimiter.
    MissingCloseDelimiter,
    /// A close delimiter with characters after it (`--b-->`).
    CloseDelimiterJunk,
    /// The depth limit was hit.
    DepthLimit,
    /// The part-count limit was hit.
    PartLimit,
    /// The decoded-size limit was hit.
    SizeLimit,
    /// A uuencoded block problem.
    Uuencode,
    /// A TNEF problem.
    Tnef,
    /// A message of an mbox whose bounds had to be guessed.
    Mbox,
}

/// Something that had to be guessed, repaired or skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Defect {
    /// The part path it concerns (empty for the message as a whole).
    pub part: String,
    /// What kind of problem.
    pub kind: DefectKind,
    /// What exactly, for a human.
    pub detail: String,
}

/// What a part is in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    /// A multipart container; its children follow it in the list.
    Multipart,
    /// An attached message; its body holds the message bytes and its
    /// parts follow it in the list.
    Message,
    /// A leaf with a decoded body.
    Leaf,
}

/// A declared file name: as written and decoded, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeclaredName {
    /// As written (RFC 2231 continuations joined, still encoded).
    pub raw: String,
    /// Decoded to text.
    pub decoded: String,
    /// `filename*`, `filename`, `name*` or `name`.
    pub source: &'static str,
}

/// One entity of the message.
#[derive(Debug, Clone)]
pub struct Part {
    /// IMAP-like path (see the module documentation).
    pub path: String,
    /// How many attached messages this part is inside (0: the message itself).
    pub message_depth: usize,
    /// The header fields of the part.
    pub headers: Headers,
    /// Lowercased `type/subtype` (default `text/plain`, or
    /// `message/rfc822` inside `multipart/digest`).
    pub content_type: String,
    /// The Content-Type parameters as parsed.
    pub type_params: ParamValue,
    /// The `charset` parameter.
    pub charset: Option<String>,
    /// Lowercased disposition (`inline`, `attachment`), when declared.
    pub disposition: Option<String>,
    /// Lowercased transfer encoding as declared.
    pub transfer_encoding: Option<String>,
    /// The declared file name, by the precedence `filename*`, `filename`,
    /// `name*`, `name`.
    pub declared_name: Option<DeclaredName>,
    /// What kind of part.
    pub kind: PartKind,
    /// True when the transfer encoding is uuencode: the body is still
    /// encoded and needs the uuencode decoder.
    pub uuencoded: bool,
    /// The decoded body (leaves) or the message bytes (attached messages);
    /// empty for multiparts.
    pub body: Vec<u8>,
}

impl Part {
    /// True for `text/*` parts.
    pub fn is_text(&self) -> bool {
        self.content_type.starts_with("text/")
    }
}

/// A parsed message.
#[derive(Debug, Clone, Default)]
pub struct Message {
    /// The top-level header fields.
    pub headers: Headers,
    /// Every part, in tree order.
    pub parts: Vec<Part>,
    /// Everything guessed or cut short.
    pub defects: Vec<Defect>,
}

/// Parses a message. Never fails and never panics: whatever cannot be
/// understood is kept as bytes and recorded as a defect.
pub fn parse(raw: &[u8], limits: &Limits) -> Message {
    let mut p = Parser {
        limits,
        parts: Vec::new(),
        defects: Vec::new(),
        decoded: 0,
        part_limit_noted: false,
    };
    let block = header::split_header_block(raw);
    let headers = block.headers.clone();
    p.note_all("", DefectKind::Header, block.defects.clone());
    p.message_body(block, raw, "", 0, 0);
    Message {
        headers,
        parts: p.parts,
        defects: p.defects,
    }
}

struct Parser<'l> {
    limits: &'l Limits,
    parts: Vec<Part>,
    defects: Vec<Defect>,
    decoded: usize,
    part_limit_noted: bool,
}

fn join(prefix: &str, n: usize) -> String {
    if prefix.is_empty() {
        n.to_string()
    } else {
        format!("{prefix}.{n}")
    }
}

impl Parser<'_> {
    fn note(&mut self, part: &str, kind: DefectKind, detail: impl Into<String>) {
        self.defects.push(Defect {
            part: part.to_string(),
            kind,
            detail: detail.into(),
        });
    }

    fn note_all(&mut self, part: &str, kind: DefectKind, details: Vec<String>) {
        for d in details {
            self.note(part, kind, d);
        }
    }

    /// The body of a message (top level or attached) whose header block is
    /// `block`, numbered under `prefix`.
    fn message_body(
        &mut self,
        block: header::HeaderBlock,
        raw: &[u8],
        prefix: &str,
        depth: usize,
        message_depth: usize,
    ) {
        let body = &raw[block.body_start.min(raw.len())..];
        let is_multipart = block
            .headers
            .get_unfolded("content-type")
            .is_some_and(|v| params::parse(&v).value.starts_with("multipart/"));
        let (path, child_prefix) = if is_multipart {
            (join(prefix, 0), Some(prefix.to_string()))
        } else {
            (join(prefix, 1), None)
        };
        self.entity(
            block.headers,
            body,
            path,
            child_prefix,
            "text/plain",
            depth,
            message_depth,
        );
    }

    /// One entity; `child_prefix` numbers its children when it is a
    /// multipart (`None`: use its own path).
    #[allow(clippy::too_many_arguments)]
    fn entity(
        &mut self,
        headers: Headers,
        body: &[u8],
        mut path: String,
        child_prefix: Option<String>,
        default_type: &str,
        depth: usize,
        message_depth: usize,
    ) {
        if self.parts.len() >= self.limits.max_parts {
            if !self.part_limit_noted {
                self.part_limit_noted = true;
                let max = self.limits.max_parts;
                self.note(
                    &path,
                    DefectKind::PartLimit,
                    format!("more than {max} parts: the rest is not read"),
                );
            }
            return;
        }
        // Defects noted from here on are this entity's (or its children's).
        let first_defect = self.defects.len();
        let mut type_params = headers
            .get_unfolded("content-type")
            .map(|v| params::parse(&v))
            .unwrap_or_default();
        let declared = !type_params.value.is_empty();
        if !declared || !type_params.value.contains('/') {
            if declared {
                let v = type_params.value.clone();
                self.note(
                    &path,
                    DefectKind::Header,
                    format!("content type {v:?} is not type/subtype: read as {default_type}"),
                );
            }
            type_params.value = default_type.to_string();
        }
        let content_type = type_params.value.clone();
        let disp = headers
            .get_unfolded("content-disposition")
            .map(|v| params::parse(&v));
        let transfer_encoding = headers
            .get_unfolded("content-transfer-encoding")
            .map(|v| String::from_utf8_lossy(&v).trim().to_ascii_lowercase());
        let mut param_defects = type_params.defects.clone();
        if let Some(d) = &disp {
            param_defects.extend(d.defects.iter().cloned());
        }
        let declared_name = declared_name(disp.as_ref(), &type_params, &mut param_defects);
        self.note_all(&path, DefectKind::Parameter, param_defects);
        let (cte, cte_defect) =
            transfer::parse_transfer_encoding(transfer_encoding.as_deref().unwrap_or(""));
        if let Some(d) = cte_defect {
            self.note(&path, DefectKind::TransferEncoding, d);
        }
        for field in [
            "content-type",
            "content-transfer-encoding",
            "content-disposition",
        ] {
            if headers.get_all(field).nth(1).is_some() {
                self.note(
                    &path,
                    DefectKind::Header,
                    format!("several {field} fields: the first is used"),
                );
            }
        }
        let charset = type_params.get_plain("charset");
        if let Some(cs) = &charset
            && content_type.starts_with("text/")
            && !charset::is_known(cs)
        {
            self.note(
                &path,
                DefectKind::Charset,
                format!("unknown charset {cs:?}: text read as UTF-8, else windows-1252"),
            );
        }
        let idx = self.parts.len();
        self.parts.push(Part {
            path: path.clone(),
            message_depth,
            headers,
            content_type: content_type.clone(),
            type_params,
            charset,
            disposition: disp.map(|d| d.value).filter(|v| !v.is_empty()),
            transfer_encoding,
            declared_name,
            kind: PartKind::Leaf,
            uuencoded: cte == TransferEncoding::Uuencode,
            body: Vec::new(),
        });

        let too_deep = depth >= self.limits.max_depth;
        if content_type.starts_with("multipart/") {
            if too_deep {
                self.note(
                    &path,
                    DefectKind::DepthLimit,
                    "too deeply nested: kept as bytes",
                );
            } else if self.multipart(
                idx,
                body,
                &cte,
                &path,
                child_prefix.as_deref(),
                depth,
                message_depth,
            ) {
                return;
            }
            // A message body that turned out not to be a multipart is a
            // single part: number it `1`, not `0`.
            if child_prefix.is_some()
                && let Some(stem) = path.strip_suffix('0')
            {
                let single = format!("{stem}1");
                for d in self.defects[first_defect..]
                    .iter_mut()
                    .filter(|d| d.part == path)
                {
                    d.part = single.clone();
                }
                self.parts[idx].path = single.clone();
                path = single;
            }
        } else if matches!(content_type.as_str(), "message/rfc822" | "message/global") {
            if too_deep {
                self.note(
                    &path,
                    DefectKind::DepthLimit,
                    "too deeply nested: kept as bytes",
                );
            } else {
                let mut defects = Vec::new();
                let data = transfer::decode_body(&cte, body, &mut defects).into_owned();
                self.note_body_defects(&path, &cte, defects);
                let data = self.charge(&path, data);
                self.parts[idx].kind = PartKind::Message;
                let block = header::split_header_block(&data);
                self.note_all(&path, DefectKind::Header, block.defects.clone());
                self.message_body(block, &data, &path, depth + 1, message_depth + 1);
                self.parts[idx].body = data;
                return;
            }
        }
        let mut defects = Vec::new();
        let data = transfer::decode_body(&cte, body, &mut defects).into_owned();
        self.note_body_defects(&path, &cte, defects);
        self.parts[idx].body = self.charge(&path, data);
    }

    fn note_body_defects(&mut self, path: &str, cte: &TransferEncoding, defects: Vec<String>) {
        let kind = match cte {
            TransferEncoding::QuotedPrintable => DefectKind::QuotedPrintable,
            _ => DefectKind::Base64,
        };
        self.note_all(path, kind, defects);
    }

    /// Counts decoded bytes against the limit; over it, the data is dropped.
    fn charge(&mut self, path: &str, data: Vec<u8>) -> Vec<u8> {
        if self.decoded.saturating_add(data.len()) > self.limits.max_decoded_bytes {
            let n = data.len();
            self.note(
                path,
                DefectKind::SizeLimit,
                format!("decoded size limit reached: {n} bytes dropped"),
            );
            return Vec::new();
        }
        self.decoded += data.len();
        data
    }

    /// Splits and parses a multipart; false when it turned out not to be
    /// one (no boundary found), so the caller keeps it as a leaf.
    #[allow(clippy::too_many_arguments)]
    fn multipart(
        &mut self,
        idx: usize,
        body: &[u8],
        cte: &TransferEncoding,
        path: &str,
        child_prefix: Option<&str>,
        depth: usize,
        message_depth: usize,
    ) -> bool {
        let mut defects = Vec::new();
        // A multipart may not be encoded, but some senders do it.
        let body = transfer::decode_body(cte, body, &mut defects);
        self.note_body_defects(path, cte, defects);
        let declared = self.parts[idx].type_params.get_plain("boundary");
        let mut split = None;
        match &declared {
            Some(b) if !b.is_empty() => {
                let s = split_multipart(&body, b.as_bytes());
                if s.parts.is_empty() {
                    self.note(
                        path,
                        DefectKind::BoundaryNotFound,
                        format!("boundary {b:?} not found in the body"),
                    );
                } else {
                    split = Some(s);
                }
            }
            _ => self.note(path, DefectKind::MissingBoundary, "no boundary parameter"),
        }
        if split.is_none()
            && let Some(guess) = guess_boundary(&body)
        {
            let s = split_multipart(&body, &guess);
            if !s.parts.is_empty() {
                let g = String::from_utf8_lossy(&guess).into_owned();
                self.note(
                    path,
                    DefectKind::MissingBoundary,
                    format!("used the boundary {g:?} found in the body"),
                );
                split = Some(s);
            }
        }
        let Some(split) = split else {
            self.note(
                path,
                DefectKind::MissingBoundary,
                "no boundary line: read as one text/plain part",
            );
            let part = &mut self.parts[idx];
            part.content_type = "text/plain".into();
            return false;
        };
        if !split.closed {
            self.note(
                path,
                DefectKind::MissingCloseDelimiter,
                "no close delimiter: the rest of the body is the last part",
            );
        }
        if let Some(junk) = &split.close_junk {
            let junk = String::from_utf8_lossy(&junk[..junk.len().min(40)]).into_owned();
            self.note(
                path,
                DefectKind::CloseDelimiterJunk,
                format!("close delimiter followed by {junk:?}: taken as the close delimiter"),
            );
        }
        self.parts[idx].kind = PartKind::Multipart;
        let own = child_prefix.unwrap_or(path).to_string();
        let digest = self.parts[idx].content_type == "multipart/digest";
        let default_type = if digest {
            "message/rfc822"
        } else {
            "text/plain"
        };
        for (n, (start, end)) in split.parts.into_iter().enumerate() {
            if self.parts.len() >= self.limits.max_parts {
                // Let `entity` record the limit once.
                self.entity(
                    Headers::default(),
                    b"",
                    join(&own, n + 1),
                    None,
                    default_type,
                    depth + 1,
                    message_depth,
                );
                break;
            }
            let slice = &body[start..end];
            let block = header::split_header_block(slice);
            let child_path = join(&own, n + 1);
            self.note_all(&child_path, DefectKind::Header, block.defects.clone());
            let child_body = &slice[block.body_start.min(slice.len())..];
            self.entity(
                block.headers,
                child_body,
                child_path,
                None,
                default_type,
                depth + 1,
                message_depth,
            );
        }
        true
    }
}

fn declared_name(
    disp: Option<&ParamValue>,
    ctype: &ParamValue,
    defects: &mut Vec<String>,
) -> Option<DeclaredName> {
    let from = |pv: &ParamValue,
                name: &str,
                star: &'static str,
                plain: &'static str,
                defects: &mut Vec<String>| {
        pv.get_decoded(name, defects).map(|(d, ext)| DeclaredName {
            raw: d.raw,
            decoded: d.decoded,
            source: if ext { star } else { plain },
        })
    };
    disp.and_then(|d| from(d, "filename", "filename*", "filename", defects))
        .filter(|n| !n.decoded.trim().is_empty())
        .or_else(|| from(ctype, "name", "name*", "name", defects))
        .filter(|n| !n.decoded.trim().is_empty())
}

/// Where the parts of a multipart body lie.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    /// Byte ranges of the parts' contents (headers and body).
    pub parts: Vec<(usize, usize)>,
    /// True when the close delimiter was found.
    pub closed: bool,
    /// What followed the close delimiter's `--` on its line, when that
    /// was more than blanks.
    pub close_junk: Option<Vec<u8>>,
}

/// Splits a multipart body on `--boundary` lines (see the module
/// documentation). Linear in the body length.
///
/// A close delimiter may carry junk after its `--` (`--b-->`, `--b-- end`):
/// it still closes, so an epilogue is never read as part of the last part.
/// The one exception is a line that is the delimiter of a longer boundary
/// starting with `b--` (an inner multipart's `--b--x`, which appears at
/// least twice: opened and closed).
pub fn split_multipart(body: &[u8], boundary: &[u8]) -> Split {
    let mut delim = Vec::with_capacity(boundary.len() + 2);
    delim.extend_from_slice(b"--");
    delim.extend_from_slice(boundary);
    let finder = memchr::memmem::Finder::new(&delim);
    let mut split = Split::default();
    // Counted on first need: how often each `--b--X` line's X appears.
    let mut longer: Option<std::collections::HashMap<&[u8], usize>> = None;
    let mut open: Option<usize> = None;
    for pos in finder.find_iter(body) {
        if pos != 0 && body[pos - 1] != b'\n' {
            continue;
        }
        let after = pos + delim.len();
        let eol = memchr::memchr(b'\n', &body[after..]).map_or(body.len(), |i| after + i);
        let rest = &body[after..eol];
        let close = match rest.strip_prefix(b"--") {
            Some(junk) if !is_blank(junk) && starts_like_boundary(junk) => {
                let counts = longer.get_or_insert_with(|| close_look_alikes(body, &finder, &delim));
                if counts.get(longer_key(junk)).is_some_and(|&n| n >= 2) {
                    continue;
                }
                true
            }
            Some(_) => true,
            None if is_blank(rest) => false,
            None => continue,
        };
        if let Some(start) = open {
            split.parts.push((start, content_end(body, start, pos)));
        }
        if close {
            split.closed = true;
            let junk = &rest[2..];
            if !is_blank(junk) {
                split.close_junk = Some(junk.trim_ascii().to_vec());
            }
            return split;
        }
        open = Some((eol + 1).min(body.len()));
    }
    if let Some(start) = open {
        split.parts.push((start, body.len()));
    }
    split
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == b' ' || b == b'\t' || b == b'\r')
}

/// A character that can go on a boundary (RFC 2046 `bcharsnospace`).
fn starts_like_boundary(junk: &[u8]) -> bool {
    junk.first()
        .is_some_and(|&b| b.is_ascii_alphanumeric() || b"'()+_,-./:=?".contains(&b))
}

/// The X of a `--b--X` line as a longer boundary would be written: without
/// trailing blanks or the `--` of its own close delimiter.
fn longer_key(junk: &[u8]) -> &[u8] {
    let end = junk
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |e| e + 1);
    let junk = &junk[..end];
    junk.strip_suffix(b"--").unwrap_or(junk)
}

/// How often each X of a `--b--X` line occurs in `body`.
fn close_look_alikes<'a>(
    body: &'a [u8],
    finder: &memchr::memmem::Finder<'_>,
    delim: &[u8],
) -> std::collections::HashMap<&'a [u8], usize> {
    let mut counts = std::collections::HashMap::new();
    for pos in finder.find_iter(body) {
        if pos != 0 && body[pos - 1] != b'\n' {
            continue;
        }
        let after = pos + delim.len();
        let eol = memchr::memchr(b'\n', &body[after..]).map_or(body.len(), |i| after + i);
        if let Some(junk) = body[after..eol].strip_prefix(b"--")
            && starts_like_boundary(junk)
        {
            *counts.entry(longer_key(junk)).or_insert(0) += 1;
        }
    }
    counts
}

/// The end of a part's content: the line break before the delimiter line
/// belongs to the delimiter.
fn content_end(body: &[u8], start: usize, delim: usize) -> usize {
    let mut end = delim;
    if end > start && body[end - 1] == b'\n' {
        end -= 1;
        if end > start && body[end - 1] == b'\r' {
            end -= 1;
        }
    }
    end.max(start)
}

/// The boundary of a multipart whose declared boundary is missing or
/// never appears, read from the body: the token of a `--token` line.
///
/// Lines that merely start with dashes (a signature's `-- `, a rule of
/// dashes) are not candidates. Among the candidates, the first one that
/// looks like a delimiter wins: used twice or closed with `--token--`,
/// and followed by a header field or the blank line that starts a part;
/// failing that, the first that opens a part or is used twice; failing
/// that, the first. Linear in the body length.
fn guess_boundary(body: &[u8]) -> Option<Vec<u8>> {
    #[derive(Default)]
    struct Seen {
        first: usize,
        uses: usize,
        closed: bool,
        opens_part: bool,
    }
    let mut seen: std::collections::HashMap<&[u8], Seen> = std::collections::HashMap::new();
    let mut pos = 0;
    while pos < body.len() {
        let next = header::next_line(body, pos);
        let line = header::trim_eol(&body[pos..next]);
        if let Some(token) = boundary_token(line) {
            let (token, closed) = match token.strip_suffix(b"--") {
                Some(open) if !open.is_empty() && !open.iter().all(|&b| b == b'-') => (open, true),
                _ => (token, false),
            };
            let following = header::trim_eol(&body[next..header::next_line(body, next)]);
            let opens_part = !closed
                && (following.is_empty()
                    || memchr::memchr(b':', following).is_some_and(|c| {
                        c > 0 && following[..c].iter().all(|&b| b.is_ascii_graphic())
                    }));
            let order = seen.len();
            let s = seen.entry(token).or_insert_with(|| Seen {
                first: order,
                ..Seen::default()
            });
            s.uses += 1;
            s.closed |= closed;
            s.opens_part |= opens_part;
        }
        pos = next;
    }
    let pick = |good: &dyn Fn(&Seen) -> bool| {
        seen.iter()
            .filter(|(_, s)| good(s))
            .min_by_key(|(_, s)| s.first)
            .map(|(t, _)| t.to_vec())
    };
    pick(&|s| s.opens_part && (s.closed || s.uses >= 2))
        .or_else(|| pick(&|s| s.opens_part || s.uses >= 2))
        .or_else(|| pick(&|_| true))
}

/// The token of a line that could be a boundary line: `--` then at least
/// one character that is not a dash, no blanks inside (blanks at the end
/// are transport padding).
fn boundary_token(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(b"--")?;
    let end = rest
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |e| e + 1);
    let token = &rest[..end];
    let usable = !token.is_empty()
        && !token.iter().all(|&b| b == b'-')
        && !token.iter().any(|b| b.is_ascii_whitespace());
    usable.then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(m: &Message) -> Vec<(String, String, String)> {
        m.parts
            .iter()
            .map(|p| {
                (
                    p.path.clone(),
                    p.content_type.clone(),
                    String::from_utf8_lossy(&p.body).into_owned(),
                )
            })
            .collect()
    }

    fn kinds(m: &Message) -> Vec<DefectKind> {
        m.defects.iter().map(|d| d.kind).collect()
    }

    fn t(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
        items
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect()
    }

    #[test]
    fn structures() {
        struct Case {
            name: &'static str,
            raw: &'static str,
            parts: &'static [(&'static str, &'static str, &'static str)],
            defects: &'static [DefectKind],
        }
        let cases = [
            Case {
                name: "single part",
                raw: "Subject: x\n\nhello\n",
                parts: &[("1", "text/plain", "hello\n")],
                defects: &[],
            },
            Case {
                name: "simple multipart",
                raw: "Content-Type: multipart/mixed; boundary=b\n\npre\n--b\n\none\n--b\nContent-Type: text/html\n\n<p>two</p>\n--b--\nepilogue\n",
                parts: &[
                    ("0", "multipart/mixed", ""),
                    ("1", "text/plain", "one"),
                    ("2", "text/html", "<p>two</p>"),
                ],
                defects: &[],
            },
            Case {
                name: "boundary that is a prefix of the inner boundary",
                raw: "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: multipart/alternative; boundary=b2\n\n--b2\n\ninner\n--b2--\n--b\n\nlast\n--b--\n",
                parts: &[
                    ("0", "multipart/mixed", ""),
                    ("1", "multipart/alternative", ""),
                    ("1.1", "text/plain", "inner"),
                    ("2", "text/plain", "last"),
                ],
                defects: &[],
            },
            Case {
                name: "missing close delimiter",
                raw: "Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo\n",
                parts: &[
                    ("0", "multipart/mixed", ""),
                    ("1", "text/plain", "one"),
                    ("2", "text/plain", "two\n"),
                ],
                defects: &[DefectKind::MissingCloseDelimiter],
            },
            Case {
                name: "no boundary parameter",
                raw: "Content-Type: multipart/mixed\n\n--zz\n\none\n--zz--\n",
                parts: &[("0", "multipart/mixed", ""), ("1", "text/plain", "one")],
                defects: &[DefectKind::MissingBoundary, DefectKind::MissingBoundary],
            },
            Case {
                name: "no boundary at all",
                raw: "Content-Type: multipart/mixed\n\njust text\n",
                parts: &[("1", "text/plain", "just text\n")],
                defects: &[DefectKind::MissingBoundary, DefectKind::MissingBoundary],
            },
            Case {
                name: "boundary line with trailing blanks and CRLF",
                raw: "Content-Type: multipart/mixed; boundary=\"b c\"\r\n\r\n--b c  \r\n\r\none\r\n--b c--\r\n",
                parts: &[("0", "multipart/mixed", ""), ("1", "text/plain", "one")],
                defects: &[],
            },
            Case {
                name: "nested message",
                raw: "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nhi\n--b\nContent-Type: message/rfc822\n\nSubject: inner\nContent-Type: multipart/mixed; boundary=c\n\n--c\n\nin1\n--c\n\nin2\n--c--\n--b--\n",
                parts: &[
                    ("0", "multipart/mixed", ""),
                    ("1", "text/plain", "hi"),
                    (
                        "2",
                        "message/rfc822",
                        "Subject: inner\nContent-Type: multipart/mixed; boundary=c\n\n--c\n\nin1\n--c\n\nin2\n--c--",
                    ),
                    ("2.0", "multipart/mixed", ""),
                    ("2.1", "text/plain", "in1"),
                    ("2.2", "text/plain", "in2"),
                ],
                defects: &[],
            },
            Case {
                name: "base64-encoded nested message",
                // "Subject: b\n\nbody\n"
                raw: "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogYgoKYm9keQo=\n",
                parts: &[
                    ("1", "message/rfc822", "Subject: b\n\nbody\n"),
                    ("1.1", "text/plain", "body\n"),
                ],
                defects: &[],
            },
            Case {
                name: "digest defaults to message/rfc822",
                raw: "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: a\n\nA\n--d--\n",
                parts: &[
                    ("0", "multipart/digest", ""),
                    ("1", "message/rfc822", "Subject: a\n\nA"),
                    ("1.1", "text/plain", "A"),
                ],
                defects: &[],
            },
            Case {
                name: "base64 with garbage",
                raw: "Content-Transfer-Encoding: base64\n\naGVs!bG8\n",
                parts: &[("1", "text/plain", "hello")],
                defects: &[DefectKind::Base64],
            },
            Case {
                name: "close delimiter with junk after it",
                raw: "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Transfer-Encoding: base64\n\naGk=\n--b-->\nZXBpbG9ndWU=\n",
                parts: &[("0", "multipart/mixed", ""), ("1", "text/plain", "hi")],
                defects: &[DefectKind::CloseDelimiterJunk],
            },
            Case {
                name: "close delimiter with words after it",
                raw: "Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b--end of message\nepilogue\n",
                parts: &[("0", "multipart/mixed", ""), ("1", "text/plain", "one")],
                defects: &[DefectKind::CloseDelimiterJunk],
            },
            Case {
                name: "an inner boundary that starts with the outer one and --",
                raw: "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: multipart/alternative; boundary=\"b--x\"\n\n--b--x\n\ninner\n--b--x--\n--b\n\nlast\n--b--\n",
                parts: &[
                    ("0", "multipart/mixed", ""),
                    ("1", "multipart/alternative", ""),
                    ("1.1", "text/plain", "inner"),
                    ("2", "text/plain", "last"),
                ],
                defects: &[],
            },
            Case {
                name: "quoted-printable soft breaks",
                raw: "Content-Transfer-Encoding: quoted-printable\n\nsoft=\nbreak =3D ok\n",
                parts: &[("1", "text/plain", "softbreak = ok\n")],
                defects: &[],
            },
        ];
        for c in cases {
            let m = parse(c.raw.as_bytes(), &Limits::default());
            assert_eq!(summary(&m), t(c.parts), "{}", c.name);
            assert_eq!(kinds(&m), c.defects, "{}: {:?}", c.name, m.defects);
        }
    }

    #[test]
    fn duplicate_fields_are_noted() {
        let m = parse(
            b"Content-Type: text/plain\nContent-Type: text/html\n\nx",
            &Limits::default(),
        );
        assert_eq!(m.parts[0].content_type, "text/plain");
        assert_eq!(kinds(&m), [DefectKind::Header]);
    }

    #[test]
    fn limits() {
        // 30 nested messages: the depth limit stops the descent.
        let mut raw = String::from("Subject: leaf\n\nleaf\n");
        for _ in 0..30 {
            raw = format!("Content-Type: message/rfc822\n\n{raw}");
        }
        let m = parse(raw.as_bytes(), &Limits::default());
        assert!(m.defects.iter().any(|d| d.kind == DefectKind::DepthLimit));
        assert!(m.parts.len() <= 22);

        let mut raw = String::from("Content-Type: multipart/mixed; boundary=b\n\n");
        for i in 0..50 {
            raw.push_str(&format!("--b\n\n{i}\n"));
        }
        let limits = Limits {
            max_parts: 10,
            ..Limits::default()
        };
        let m = parse(raw.as_bytes(), &limits);
        assert_eq!(m.parts.len(), 10);
        assert_eq!(
            m.defects
                .iter()
                .filter(|d| d.kind == DefectKind::PartLimit)
                .count(),
            1
        );

        let limits = Limits {
            max_decoded_bytes: 3,
            ..Limits::default()
        };
        let m = parse(b"\n12345", &limits);
        assert!(m.parts[0].body.is_empty());
        assert_eq!(kinds(&m), [DefectKind::SizeLimit]);
    }

    #[test]
    fn declared_names_precedence() {
        let raw = "Content-Type: application/pdf; name=\"n.pdf\"; name*=utf-8''ns.pdf\nContent-Disposition: attachment; filename=\"f.pdf\"; filename*=utf-8''fs.pdf\n\n";
        let m = parse(raw.as_bytes(), &Limits::default());
        let n = m.parts[0].declared_name.as_ref().unwrap();
        assert_eq!((n.decoded.as_str(), n.source), ("fs.pdf", "filename*"));
        let raw = "Content-Type: application/pdf; name=\"=?utf-8?Q?r=C3=A9sum=C3=A9?=\n .pdf\"\nContent-Disposition: attachment\n\n";
        let m = parse(raw.as_bytes(), &Limits::default());
        let n = m.parts[0].declared_name.as_ref().unwrap();
        assert_eq!((n.decoded.as_str(), n.source), ("résumé .pdf", "name"));
    }

    #[test]
    fn adversarial_input_stays_linear() {
        // Many lines that start like the boundary but are not it.
        let mut raw = String::from("Content-Type: multipart/mixed; boundary=b\n\n--b\n\n");
        for _ in 0..200_000 {
            raw.push_str("--bx\n");
        }
        let start = std::time::Instant::now();
        let m = parse(raw.as_bytes(), &Limits::default());
        assert_eq!(m.parts.len(), 2);
        assert!(start.elapsed().as_secs() < 5);
    }
}
