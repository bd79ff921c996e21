//! Composing RFC 5322 / MIME messages: addresses, header encoding
//! (RFC 2047 words, RFC 2231 file names), body and attachment parts, and
//! the few things done to a finished message (`--raw`): reading its
//! envelope from the headers and dropping `Bcc:`.
//!
//! Output is strict and reproducible: CRLF line ends, no line over 998
//! octets (headers folded near 78), text bodies 7bit when they are ASCII
//! with lines under 998 octets and quoted-printable otherwise, every
//! attachment base64 in 76-column lines so its bytes survive any
//! transport. Date, Message-ID and boundaries are generated unless
//! [`Pins`] fixes them, which makes golden files byte-stable.
//!
//! It does not send, queue or parse MIME structure; `smtp`, `queue` and
//! the dissect side do those.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};
use crate::smtp::Envelope;

/// Longest header line we aim for (RFC 5322 "SHOULD"); 998 is the limit.
const FOLD_AT: usize = 78;
/// The hard limit on a line, without its CRLF.
pub const MAX_LINE: usize = 998;

// ---------------------------------------------------------------- addresses

/// A mailbox: an optional display name and an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The display name, decoded text (may be non-ASCII).
    pub name: Option<String>,
    /// `local@domain`, ASCII.
    pub email: String,
}

impl Address {
    /// Parses one mailbox: `Name <a@b>`, `"Name, Jr." <a@b>`, `<a@b>` or
    /// a bare `a@b`. Anything else is bad input (exit 65) naming the text.
    pub fn parse(text: &str) -> Result<Address> {
        let list = parse_address_list(text)?;
        match list.len() {
            1 => Ok(list.into_iter().next().unwrap_or_else(|| unreachable!())),
            0 => Err(bad_address(text, "no address")),
            _ => Err(bad_address(text, "one address expected, found several")),
        }
    }

    /// The mailbox as a header writes it: the name quoted or RFC 2047
    /// encoded as needed, as tokens that may be folded between.
    fn header_tokens(&self) -> Vec<String> {
        let mut tokens = Vec::new();
        if let Some(name) = self.name.as_deref().filter(|n| !n.is_empty()) {
            if !name.is_ascii() || name.contains("=?") || name.chars().any(|c| c.is_control()) {
                tokens.extend(encode_words(name));
            } else if name
                .split(' ')
                .all(|w| !w.is_empty() && w.chars().all(is_atext))
            {
                tokens.extend(name.split(' ').map(str::to_string));
            } else {
                tokens.push(quote_string(name));
            }
            tokens.push(format!("<{}>", self.email));
        } else {
            tokens.push(self.email.clone());
        }
        tokens
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(n) if !n.is_empty() => write!(f, "{n} <{}>", self.email),
            _ => f.write_str(&self.email),
        }
    }
}

fn bad_address(text: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::BadInput,
        format!("address {:?}", text.trim()),
        why.to_string(),
    )
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// Parses a comma-separated address list as headers and command lines
/// write them: display names (quoted or not, RFC 2047 words decoded),
/// comments in parentheses, groups (`team: a@b, c@d;`) flattened.
pub fn parse_address_list(text: &str) -> Result<Vec<Address>> {
    let mut out = Vec::new();
    for item in split_top_level(text, &[',', ';'])? {
        let mut item = item.trim().to_string();
        // A group's name: `name:` before the first member.
        if let Some(colon) = find_top_level(&item, ':')
            && !item[..colon].contains('<')
            && !item[..colon].contains('@')
        {
            item = item[colon + 1..].trim().to_string();
        }
        if item.is_empty() {
            continue;
        }
        out.push(parse_mailbox(&item).map_err(|why| bad_address(&item, &why))?);
    }
    Ok(out)
}

/// Splits at `seps` outside quotes, comments and angle brackets.
fn split_top_level(text: &str, seps: &[char]) -> Result<Vec<String>> {
    let mut parts = vec![String::new()];
    let (mut quoted, mut depth, mut angle, mut escaped) = (false, 0u32, false, false);
    for c in text.chars() {
        let cur = parts.last_mut().unwrap_or_else(|| unreachable!());
        if escaped {
            escaped = false;
            cur.push(c);
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => escaped = true,
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            '<' if !quoted && depth == 0 => angle = true,
            '>' if !quoted && depth == 0 => angle = false,
            c if seps.contains(&c) && !quoted && depth == 0 && !angle => {
                parts.push(String::new());
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if quoted || depth > 0 {
        return Err(bad_address(text, "unbalanced quote or parenthesis"));
    }
    Ok(parts)
}

fn find_top_level(text: &str, needle: char) -> Option<usize> {
    let (mut quoted, mut depth) = (false, 0u32);
    for (i, c) in text.char_indices() {
        match c {
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            c if c == needle && !quoted && depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_mailbox(item: &str) -> std::result::Result<Address, String> {
    let (name, email) = match find_top_level(item, '<') {
        Some(open) => {
            let close = item[open..]
                .find('>')
                .map(|c| c + open)
                .ok_or("missing '>'")?;
            if !item[close + 1..].trim().is_empty() && !item[close + 1..].trim().starts_with('(') {
                return Err("text after '>'".into());
            }
            let name = display_name(&item[..open]);
            (name, item[open + 1..close].trim().to_string())
        }
        None => {
            // A bare address, maybe with a trailing comment `a@b (Name)`.
            let (addr, comment) = match item.find('(') {
                Some(p) => (
                    item[..p].trim(),
                    Some(item[p + 1..].trim_end_matches(')').trim()),
                ),
                None => (item.trim(), None),
            };
            (
                comment.filter(|c| !c.is_empty()).map(str::to_string),
                addr.to_string(),
            )
        }
    };
    check_email(&email)?;
    Ok(Address { name, email })
}

fn display_name(raw: &str) -> Option<String> {
    let mut out = String::new();
    let (mut quoted, mut escaped, mut depth) = (false, false, 0u32);
    for c in raw.trim().chars() {
        if escaped {
            out.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    let out = crate::mime::rfc2047::decode(out.trim().as_bytes()).0;
    (!out.is_empty()).then_some(out)
}

/// Checks `local@domain`: a dot-atom or quoted local part, a domain of
/// letters, digits and hyphens (or an `[address literal]`). ASCII only:
/// SMTPUTF8 addresses are not supported.
fn check_email(email: &str) -> std::result::Result<(), String> {
    let at = email.rfind('@').ok_or("no '@'")?;
    let (local, domain) = (&email[..at], &email[at + 1..]);
    if !email.is_ascii() {
        return Err("non-ASCII addresses are not supported".into());
    }
    if local.is_empty() {
        return Err("empty local part".into());
    }
    if local.len() > 64 {
        return Err("local part longer than 64 octets".into());
    }
    let quoted = local.len() >= 2 && local.starts_with('"') && local.ends_with('"');
    if !quoted
        && (local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || !local.chars().all(|c| is_atext(c) || c == '.'))
    {
        return Err(format!("bad local part {local:?}"));
    }
    if domain.starts_with('[') && domain.ends_with(']') {
        return Ok(());
    }
    if domain.is_empty() || domain.len() > 255 {
        return Err("bad domain".into());
    }
    for label in domain.split('.') {
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(format!("bad domain {domain:?}"));
        }
    }
    Ok(())
}

// ------------------------------------------------------------ encodings

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648) of `data`, on one line.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Base64 in lines of 76 characters, each ended by CRLF (RFC 2045).
pub fn base64_lines(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len() / 57 * 78 + 80);
    for chunk in data.chunks(57) {
        out.extend_from_slice(base64_encode(chunk).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Quoted-printable (RFC 2045) of text whose lines end in CRLF; line
/// breaks stay hard breaks, lines are soft-broken to 76 characters.
pub fn quoted_printable(text: &[u8], out: &mut Vec<u8>) {
    for line in split_crlf_lines(text) {
        let mut col = 0;
        for (i, &b) in line.iter().enumerate() {
            let last = i + 1 == line.len();
            let literal = (b == b' ' || b == b'\t') && !last
                || (33..=126).contains(&b) && b != b'='
                    // A dot alone at the start of a line confuses some
                    // transports that forget to stuff it; encode it.
                    && !(b == b'.' && col == 0);
            let width = if literal { 1 } else { 3 };
            if col + width > 75 {
                out.extend_from_slice(b"=\r\n");
                col = 0;
            }
            if literal {
                out.push(b);
            } else {
                let _ = write_hex(out, b);
            }
            col += width;
        }
        out.extend_from_slice(b"\r\n");
    }
}

fn write_hex(out: &mut Vec<u8>, b: u8) -> std::fmt::Result {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
    Ok(())
}

/// The lines of `text` without their ends (CRLF, LF or a lone CR); a
/// final line without an end counts, an empty tail does not.
fn split_crlf_lines(text: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                if text.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// `text` with every line end turned into CRLF and a final CRLF ensured
/// (unless empty).
pub fn to_crlf(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 40 + 2);
    for line in split_crlf_lines(text) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// RFC 2047 encoded-words for `text`, each at most 75 characters and
/// never splitting a character: Q encoding when the text is mostly ASCII,
/// B otherwise. Whitespace between the words is not part of the text, so
/// the spaces of `text` are encoded inside the words.
pub fn encode_words(text: &str) -> Vec<String> {
    let non_ascii = text.bytes().filter(|b| !b.is_ascii()).count();
    let use_q = non_ascii * 3 < text.len();
    let mut words = Vec::new();
    let mut chunk = String::new();
    let mut encoded_len = 0;
    // "=?utf-8?Q?" + "?=" take 12 of the 75 characters.
    const ROOM: usize = 75 - 12;
    for c in text.chars() {
        let mut buf = [0u8; 4];
        let bytes = c.encode_utf8(&mut buf).as_bytes();
        let add = if use_q {
            bytes
                .iter()
                .map(|&b| if q_literal(b) { 1 } else { 3 })
                .sum()
        } else {
            // Base64 length of the chunk with this character added.
            (chunk.len() + bytes.len()).div_ceil(3) * 4 - encoded_len
        };
        if encoded_len + add > ROOM && !chunk.is_empty() {
            words.push(encoded_word(&chunk, use_q));
            chunk.clear();
            let add = if use_q {
                bytes
                    .iter()
                    .map(|&b| if q_literal(b) { 1 } else { 3 })
                    .sum()
            } else {
                bytes.len().div_ceil(3) * 4
            };
            chunk.push(c);
            encoded_len = add;
            continue;
        }
        chunk.push(c);
        encoded_len += add;
    }
    if !chunk.is_empty() || words.is_empty() {
        words.push(encoded_word(&chunk, use_q));
    }
    words
}

fn q_literal(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!*+-/".contains(&b) || b == b' '
}

fn encoded_word(text: &str, q: bool) -> String {
    if !q {
        return format!("=?utf-8?B?{}?=", base64_encode(text.as_bytes()));
    }
    let mut out = String::from("=?utf-8?Q?");
    for b in text.bytes() {
        match b {
            b' ' => out.push('_'),
            b if q_literal(b) => out.push(b as char),
            b => {
                let _ = write!(out, "={b:02X}");
            }
        }
    }
    out.push_str("?=");
    out
}

fn quote_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

// --------------------------------------------------------------- headers

/// Builds one header field, folding between tokens to stay near 78
/// columns. Tokens never contain line breaks.
struct Field {
    text: String,
    col: usize,
    empty: bool,
}

impl Field {
    fn new(name: &str) -> Field {
        Field {
            text: format!("{name}:"),
            col: name.len() + 1,
            empty: true,
        }
    }

    /// Adds `token` after `sep` (`" "`, `", "`, `"; "`); when the line
    /// would grow past 78 columns, the space of `sep` becomes a fold.
    fn push(&mut self, sep: &str, token: &str) {
        let glue = sep.trim_end();
        if self.col + sep.len() + token.len() > FOLD_AT && !self.empty && !sep.is_empty() {
            self.text.push_str(glue);
            self.text.push_str("\r\n ");
            self.col = 1;
        } else {
            self.text.push_str(sep);
            self.col += sep.len();
        }
        self.text.push_str(token);
        self.col += token.len();
        self.empty = false;
    }

    fn finish(mut self, out: &mut Vec<u8>) {
        self.text.push_str("\r\n");
        out.extend_from_slice(self.text.as_bytes());
    }
}

/// An unstructured header value (Subject, user headers): kept as written
/// and folded at its own spaces when it is plain ASCII, RFC 2047 words
/// when it is not (or has a word too long to fold).
fn write_unstructured(out: &mut Vec<u8>, name: &str, value: &str) {
    let mut field = Field::new(name);
    let plain = value.is_ascii()
        && !value.contains("=?")
        && !value.chars().any(|c| c.is_control() && c != '\t')
        && value.split([' ', '\t']).all(|w| w.len() < MAX_LINE - 100);
    if !plain {
        for word in encode_words(value) {
            field.push(" ", &word);
        }
        field.finish(out);
        return;
    }
    if value.is_empty() {
        field.push(" ", "");
        field.finish(out);
        return;
    }
    // Chunks that start at a space or tab, so folding before one and
    // unfolding again gives back exactly the value.
    let mut chunks: Vec<&str> = Vec::new();
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if (c == ' ' || c == '\t') && i > start {
            chunks.push(&value[start..i]);
            start = i;
        }
    }
    chunks.push(&value[start..]);
    field.text.push(' ');
    field.col += 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        if i > 0 && field.col + chunk.len() > FOLD_AT {
            field.text.push_str("\r\n");
            field.col = 0;
        }
        field.text.push_str(chunk);
        field.col += chunk.len();
    }
    field.finish(out);
}

fn write_addresses(out: &mut Vec<u8>, name: &str, list: &[Address]) {
    let mut field = Field::new(name);
    for (i, addr) in list.iter().enumerate() {
        for (j, token) in addr.header_tokens().iter().enumerate() {
            let sep = if i > 0 && j == 0 { ", " } else { " " };
            field.push(sep, token);
        }
    }
    field.finish(out);
}

/// A header given by the user (`-H 'Name: value'`): a valid field name,
/// a value with no line breaks, and not one of the fields this module
/// writes itself.
pub fn parse_user_header(text: &str) -> Result<(String, String)> {
    let (name, value) = text.split_once(':').ok_or_else(|| {
        Error::new(
            ErrorKind::Usage,
            format!("header {text:?}"),
            "expected 'Name: value'",
        )
    })?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("header {text:?}"),
            "bad field name",
        ));
    }
    if value.contains(['\r', '\n']) {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("header {name:?}"),
            "line breaks in a header value are refused (header injection)",
        ));
    }
    const OWN: [(&str, &str); 12] = [
        ("date", "--date"),
        ("message-id", "--message-id"),
        ("from", "-r/--from"),
        ("to", "the recipients"),
        ("cc", "-c"),
        ("bcc", "-b"),
        ("subject", "-s"),
        ("reply-to", "--reply-to"),
        ("in-reply-to", "--in-reply-to"),
        ("mime-version", "nothing: it is always 1.0"),
        ("content-type", "-a, --html or --inline"),
        (
            "content-transfer-encoding",
            "nothing: it is chosen per part",
        ),
    ];
    if let Some((_, flag)) = OWN.iter().find(|(n, _)| name.eq_ignore_ascii_case(n)) {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("header {name:?}"),
            format!("is written by mail-inject; use {flag}"),
        ));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

// ------------------------------------------------------------ attachments

/// A file to attach (or to show inline, with a Content-ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file's bytes.
    pub data: Vec<u8>,
    /// The MIME type written (`application/pdf`).
    pub content_type: String,
    /// The file name written into the message.
    pub file_name: String,
    /// For `--inline`: the Content-ID without angle brackets.
    pub content_id: Option<String>,
}

impl Attachment {
    /// Reads an attachment from a spec `FILE[;type=T][;name=N][;cid=C]`.
    /// A path that exists as given is taken whole, so names with `;` work.
    /// The path is bytes (any file name a Unix system allows); the name
    /// declared in the message is its last part made valid UTF-8 (bytes
    /// that are not become U+FFFD), which the message carries RFC 2231
    /// encoded. A missing or unreadable file is `InputMissing` (exit 66).
    pub fn from_spec(spec: impl AsRef<OsStr>, inline: bool) -> Result<Attachment> {
        let (path, params) = split_spec(spec.as_ref());
        let mut data = Vec::new();
        fs::File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut data))
            .map_err(|e| Error::reading(&path, e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "attachment".into());
        Attachment::from_data(data, &name, &params, inline, spec.as_ref())
    }

    /// An attachment of `data` read elsewhere (`-a -`: stdin), named
    /// `name` unless `params` (`;type=T;name=N;cid=C`, as in a spec) says
    /// otherwise; `spec` names it in errors.
    pub fn from_data(
        data: Vec<u8>,
        name: &str,
        params: &str,
        inline: bool,
        spec: &OsStr,
    ) -> Result<Attachment> {
        let mut file_name = name.to_string();
        let mut content_type = None;
        let mut content_id = None;
        for param in params.split(';').filter(|p| !p.is_empty()) {
            let (k, v) = param.split_once('=').unwrap_or((param, ""));
            match k {
                "type" if is_mime_type(v) => content_type = Some(v.to_ascii_lowercase()),
                "name" if !v.is_empty() => file_name = v.to_string(),
                "cid" if !v.is_empty() && inline => content_id = Some(v.to_string()),
                _ => {
                    return Err(Error::new(
                        ErrorKind::Usage,
                        format!("attachment {:?}", spec.to_string_lossy()),
                        format!("bad parameter {param:?} (type=TYPE/SUBTYPE, name=NAME, cid=ID)"),
                    ));
                }
            }
        }
        let file_name: String = file_name
            .chars()
            .map(|c| if c.is_control() { '_' } else { c })
            .collect();
        let content_type = content_type.unwrap_or_else(|| sniff_type(&data, &file_name));
        if inline && content_id.is_none() {
            let id: String = file_name
                .chars()
                .map(|c| if is_atext(c) || c == '.' { c } else { '_' })
                .collect();
            content_id = Some(id);
        }
        Ok(Attachment {
            data,
            content_type,
            file_name,
            content_id,
        })
    }
}

/// A spec's path and its `;type=`, `;name=`, `;cid=` parameters (lossy
/// UTF-8: they are ASCII keys and a name). A path that exists as given is
/// all path.
pub fn split_spec(spec: &OsStr) -> (PathBuf, String) {
    use std::os::unix::ffi::OsStrExt;
    if Path::new(spec).exists() {
        return (PathBuf::from(spec), String::new());
    }
    let bytes = spec.as_bytes();
    let cut = [&b";type="[..], b";name=", b";cid="]
        .iter()
        .filter_map(|k| bytes.windows(k.len()).position(|w| w == *k))
        .min()
        .unwrap_or(bytes.len());
    (
        PathBuf::from(OsStr::from_bytes(&bytes[..cut])),
        String::from_utf8_lossy(&bytes[cut..]).into_owned(),
    )
}

fn is_mime_type(text: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    matches!(text.split_once('/'), Some((a, b)) if token(a) && token(b))
}

/// The MIME type of a file: its magic bytes first (a PDF called `scan` is
/// still a PDF), then its extension, else `application/octet-stream`.
pub fn sniff_type(data: &[u8], file_name: &str) -> String {
    let by_ext = || {
        mime_guess::from_path(file_name)
            .first()
            .map(|m| m.essence_str().to_string())
    };
    match crate::dissect::sniff(data) {
        // Containers the first bytes cannot name further (a jar or an
        // epub is a ZIP, an old .doc or .xls an OLE file): the extension
        // tells them apart; the container it is in any case.
        Some(container @ ("application/zip" | "application/x-ole-storage")) => match by_ext() {
            Some(t) if t != "application/octet-stream" && !t.starts_with("text/") => t,
            _ => container.into(),
        },
        Some(t) => t.into(),
        None => by_ext().unwrap_or_else(|| "application/octet-stream".into()),
    }
}

/// Writes `name="value"` or, for non-ASCII or long values, the RFC 2231
/// form `name*=utf-8''...` (continued as `name*0*=`, `name*1*=` ...).
fn push_file_name_param(field: &mut Field, param: &str, value: &str) {
    let simple = value.is_ascii()
        && value.len() <= 60
        && !value.chars().any(|c| c.is_control())
        && !value.contains("=?");
    if simple {
        field.push("; ", &format!("{param}={}", quote_string(value)));
        return;
    }
    // Percent-encoded per character, so that a continuation never splits
    // a UTF-8 sequence: RFC 2231 decoders should join the pieces before
    // decoding, but some (mail-parser 0.11) decode each piece alone.
    let encode_char = |c: char| {
        let mut buf = [0u8; 4];
        let mut out = String::new();
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                out.push(b as char);
            } else {
                let _ = write!(out, "%{b:02X}");
            }
        }
        out
    };
    let encoded: String = value.chars().map(encode_char).collect();
    if encoded.len() + 7 <= 60 {
        field.push("; ", &format!("{param}*=utf-8''{encoded}"));
        return;
    }
    let mut pieces = vec![String::from("utf-8''")];
    for c in value.chars() {
        let e = encode_char(c);
        let last = pieces.last_mut().unwrap_or_else(|| unreachable!());
        if last.len() + e.len() > 60 {
            pieces.push(e);
        } else {
            last.push_str(&e);
        }
    }
    for (i, piece) in pieces.iter().enumerate() {
        field.push("; ", &format!("{param}*{i}*={piece}"));
    }
}

// --------------------------------------------------------------- messages

/// What to compose: everything the flags said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    /// The author (`From:`); also the envelope sender.
    pub from: Option<Address>,
    /// `To:` recipients.
    pub to: Vec<Address>,
    /// `Cc:` recipients.
    pub cc: Vec<Address>,
    /// Blind copies: envelope only, never written into the message.
    pub bcc: Vec<Address>,
    /// `Reply-To:`.
    pub reply_to: Vec<Address>,
    /// `Subject:` (any text; encoded as needed).
    pub subject: Option<String>,
    /// `In-Reply-To:` (and `References:`), a message id with or without `<>`.
    pub in_reply_to: Option<String>,
    /// Extra header fields, in order.
    pub headers: Vec<(String, String)>,
    /// The plain-text body (UTF-8; any line ends).
    pub text: String,
    /// An HTML alternative.
    pub html: Option<String>,
    /// Parts shown inline in the HTML (`cid:` references).
    pub inline: Vec<Attachment>,
    /// Attachments.
    pub attachments: Vec<Attachment>,
}

/// Values that are otherwise generated: fix them for reproducible output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    /// The `Date:` value, as written (RFC 5322), or `@SECONDS` since the epoch.
    pub date: Option<String>,
    /// The `Message-ID:`, with or without angle brackets.
    pub message_id: Option<String>,
    /// The outermost MIME boundary; nested ones are derived from it.
    pub boundary: Option<String>,
    /// The right-hand side of a generated Message-ID when there is no From.
    pub host: String,
}

/// A finished message and what the transports need to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    /// The message, CRLF line ends.
    pub bytes: Vec<u8>,
    /// Its Message-ID, with angle brackets.
    pub message_id: Option<String>,
    /// Sender and every recipient (To, Cc, Bcc).
    pub envelope: Envelope,
}

/// Composes `draft` into a MIME message.
pub fn compose(draft: &Draft, pins: &Pins) -> Result<Composed> {
    let from = draft.from.as_ref().ok_or_else(|| {
        Error::new(
            ErrorKind::Usage,
            "From",
            "no sender: give -r ADDRESS (or set the account's address)",
        )
    })?;
    let mut out = Vec::with_capacity(
        draft.text.len()
            + draft
                .attachments
                .iter()
                .map(|a| a.data.len() * 4 / 3)
                .sum::<usize>()
            + 2048,
    );
    let date = match &pins.date {
        Some(d) => match d.strip_prefix('@') {
            Some(secs) => format_date(secs.parse().map_err(|_| {
                Error::new(ErrorKind::Usage, "--date", format!("bad timestamp {d:?}"))
            })?),
            None => {
                check_header_text("--date", d)?;
                d.clone()
            }
        },
        None => format_date(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
        ),
    };
    let message_id = match &pins.message_id {
        Some(id) => {
            check_header_text("--message-id", id)?;
            angle(id)
        }
        None => {
            let domain = from
                .email
                .rsplit_once('@')
                .map_or(pins.host.as_str(), |(_, d)| d);
            format!("<{}@{}>", random_token(24), domain)
        }
    };
    let mut field = Field::new("Date");
    field.push(" ", &date);
    field.finish(&mut out);
    write_addresses(&mut out, "From", std::slice::from_ref(from));
    if !draft.reply_to.is_empty() {
        write_addresses(&mut out, "Reply-To", &draft.reply_to);
    }
    if !draft.to.is_empty() {
        write_addresses(&mut out, "To", &draft.to);
    }
    if !draft.cc.is_empty() {
        write_addresses(&mut out, "Cc", &draft.cc);
    }
    if let Some(subject) = &draft.subject {
        write_unstructured(&mut out, "Subject", subject);
    }
    let mut field = Field::new("Message-ID");
    field.push(" ", &message_id);
    field.finish(&mut out);
    if let Some(parent) = &draft.in_reply_to {
        check_header_text("--in-reply-to", parent)?;
        let parent = angle(parent);
        for name in ["In-Reply-To", "References"] {
            let mut field = Field::new(name);
            field.push(" ", &parent);
            field.finish(&mut out);
        }
    }
    for (name, value) in &draft.headers {
        write_unstructured(&mut out, name, value);
    }
    out.extend_from_slice(b"MIME-Version: 1.0\r\n");

    let mut boundaries = Boundaries::new(pins.boundary.clone())?;
    let body = body_tree(draft);
    write_part(&body, &mut out, &mut boundaries)?;

    let mut to: Vec<String> = Vec::new();
    for a in draft.to.iter().chain(&draft.cc).chain(&draft.bcc) {
        if !to.iter().any(|t| t.eq_ignore_ascii_case(&a.email)) {
            to.push(a.email.clone());
        }
    }
    Ok(Composed {
        bytes: out,
        message_id: Some(message_id),
        envelope: Envelope {
            from: from.email.clone(),
            to,
        },
    })
}

fn check_header_text(what: &str, text: &str) -> Result<()> {
    if text.is_empty() || !text.is_ascii() || text.chars().any(|c| c.is_control()) {
        return Err(Error::new(
            ErrorKind::Usage,
            what.to_string(),
            format!("{text:?} must be non-empty printable ASCII"),
        ));
    }
    Ok(())
}

fn angle(id: &str) -> String {
    let id = id.trim();
    if id.starts_with('<') && id.ends_with('>') {
        id.to_string()
    } else {
        format!("<{id}>")
    }
}

/// The body as a tree of MIME parts.
enum Node<'a> {
    Text {
        subtype: &'static str,
        text: &'a str,
    },
    File {
        file: &'a Attachment,
        inline: bool,
    },
    Multi {
        subtype: &'static str,
        parts: Vec<Node<'a>>,
    },
}

fn body_tree(draft: &Draft) -> Node<'_> {
    let text = Node::Text {
        subtype: "plain",
        text: &draft.text,
    };
    let mut body = match &draft.html {
        Some(html) => Node::Multi {
            subtype: "alternative",
            parts: vec![
                text,
                Node::Text {
                    subtype: "html",
                    text: html,
                },
            ],
        },
        None => text,
    };
    if !draft.inline.is_empty() {
        let mut parts = vec![body];
        parts.extend(
            draft
                .inline
                .iter()
                .map(|file| Node::File { file, inline: true }),
        );
        body = Node::Multi {
            subtype: "related",
            parts,
        };
    }
    if !draft.attachments.is_empty() {
        let mut parts = vec![body];
        parts.extend(draft.attachments.iter().map(|file| Node::File {
            file,
            inline: false,
        }));
        body = Node::Multi {
            subtype: "mixed",
            parts,
        };
    }
    body
}

/// Boundaries: random, or the pinned one and `N.pinned` for nested levels.
struct Boundaries {
    pinned: Option<String>,
    count: usize,
}

impl Boundaries {
    fn new(pinned: Option<String>) -> Result<Boundaries> {
        if let Some(b) = &pinned {
            let ok = !b.is_empty()
                && b.len() <= 60
                && b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"'()+_,-./:=?".contains(&c));
            if !ok {
                return Err(Error::new(
                    ErrorKind::Usage,
                    "--boundary",
                    format!("{b:?}: 1 to 60 of letters, digits and '()+_,-./:=?"),
                ));
            }
        }
        Ok(Boundaries { pinned, count: 0 })
    }

    fn next(&mut self) -> String {
        self.count += 1;
        match &self.pinned {
            Some(b) if self.count == 1 => b.clone(),
            Some(b) => format!("{}.{b}", self.count - 1),
            // "=_" never occurs in base64 or quoted-printable text.
            None => format!("=_{}", random_token(24)),
        }
    }
}

fn write_part(node: &Node<'_>, out: &mut Vec<u8>, boundaries: &mut Boundaries) -> Result<()> {
    match node {
        Node::Text { subtype, text } => {
            let bytes = to_crlf(text.as_bytes());
            let seven_bit = bytes.is_ascii()
                && !bytes.contains(&0)
                && split_crlf_lines(&bytes).iter().all(|l| l.len() <= MAX_LINE);
            let _ = write!(
                Vec8(out),
                "Content-Type: text/{subtype}; charset=utf-8\r\nContent-Transfer-Encoding: {}\r\n\r\n",
                if seven_bit {
                    "7bit"
                } else {
                    "quoted-printable"
                }
            );
            if seven_bit {
                out.extend_from_slice(&bytes);
            } else {
                quoted_printable(&bytes, out);
            }
        }
        Node::File { file, inline } => {
            let mut field = Field::new("Content-Type");
            field.push(" ", &file.content_type);
            // Old clients read only `name=`, and only as RFC 2047 words.
            let name = if file.file_name.is_ascii() && !file.file_name.contains("=?") {
                quote_string(&file.file_name)
            } else {
                quote_string(&encode_words(&file.file_name).join(" "))
            };
            field.push("; ", &format!("name={name}"));
            field.finish(out);
            let mut field = Field::new("Content-Disposition");
            field.push(" ", if *inline { "inline" } else { "attachment" });
            push_file_name_param(&mut field, "filename", &file.file_name);
            field.finish(out);
            if let Some(id) = &file.content_id {
                let mut field = Field::new("Content-ID");
                field.push(" ", &angle(id));
                field.finish(out);
            }
            out.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n\r\n");
            base64_lines(&file.data, out);
        }
        Node::Multi { subtype, parts } => {
            let boundary = boundaries.next();
            let mut field = Field::new("Content-Type");
            field.push(" ", &format!("multipart/{subtype}"));
            field.push("; ", &format!("boundary=\"{boundary}\""));
            field.finish(out);
            out.extend_from_slice(b"\r\n");
            let mut bodies = Vec::new();
            for part in parts {
                let mut body = Vec::new();
                write_part(part, &mut body, boundaries)?;
                if contains_delimiter(&body, &boundary) {
                    return Err(Error::new(
                        ErrorKind::BadInput,
                        "--boundary",
                        format!("{boundary:?} occurs in the content; choose another"),
                    ));
                }
                bodies.push(body);
            }
            // The CRLF before a delimiter belongs to the delimiter, so one
            // is added after each part: a part's own last line end survives.
            for (i, body) in bodies.iter().enumerate() {
                let lead = if i == 0 { "" } else { "\r\n" };
                out.extend_from_slice(format!("{lead}--{boundary}\r\n").as_bytes());
                out.extend_from_slice(body);
            }
            out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        }
    }
    Ok(())
}

struct Vec8<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Vec8<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn contains_delimiter(body: &[u8], boundary: &str) -> bool {
    let needle = format!("--{boundary}");
    split_crlf_lines(body)
        .iter()
        .any(|l| l.starts_with(needle.as_bytes()))
}

/// `Date:` text for seconds since the epoch, in UTC (`+0000`).
pub fn format_date(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A random string of `len` letters and digits, from the system's
/// random source (with a time-and-hash fallback).
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; len];
    let ok = fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    if !ok {
        use std::hash::{BuildHasher, Hasher};
        for (i, b) in bytes.iter_mut().enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_u128(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            );
            *b = h.finish() as u8;
        }
    }
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

// ---------------------------------------------------- finished messages

/// The header block of a message: unfolded fields (name, value) and the
/// offset where the body starts.
pub fn header_fields(message: &[u8]) -> (Vec<(String, String)>, usize) {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut pos = 0;
    while pos < message.len() {
        let end = message[pos..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(message.len(), |p| pos + p + 1);
        let line = &message[pos..end];
        let content = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if content.is_empty() {
            return (fields, end);
        }
        let text = String::from_utf8_lossy(content);
        if content[0] == b' ' || content[0] == b'\t' {
            if let Some(last) = fields.last_mut() {
                last.1.push_str(&text);
            }
        } else if let Some((name, value)) = text.split_once(':') {
            fields.push((name.trim().to_string(), value.trim().to_string()));
        } else {
            // Not a header line: the header block ended without a blank line.
            return (fields, pos);
        }
        pos = end;
    }
    (fields, pos)
}

/// The message with every `Bcc:` field (and its folded lines) removed;
/// the body is untouched.
pub fn strip_bcc(message: &[u8]) -> Vec<u8> {
    let (_, body_start) = header_fields(message);
    let mut out = Vec::with_capacity(message.len());
    let mut skipping = false;
    let mut pos = 0;
    while pos < body_start {
        let end = message[pos..body_start]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(body_start, |p| pos + p + 1);
        let line = &message[pos..end];
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            skipping = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"bcc:");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
        pos = end;
    }
    out.extend_from_slice(&message[body_start..]);
    out
}

/// What a finished message's headers say about its envelope (`sendmail
/// -t`): the From address and every To, Cc and Bcc recipient.
pub fn envelope_from_headers(message: &[u8]) -> Result<(Option<Address>, Vec<Address>)> {
    let (fields, _) = header_fields(message);
    let mut from = None;
    let mut rcpt = Vec::new();
    for (name, value) in &fields {
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "from" if from.is_none() => {
                from = parse_address_list(value)?.into_iter().next();
            }
            "to" | "cc" | "bcc" => rcpt.extend(parse_address_list(value)?),
            _ => {}
        }
    }
    Ok((from, rcpt))
}

/// The Message-ID of a finished message, if it has one.
pub fn message_id_of(message: &[u8]) -> Option<String> {
    header_fields(message)
        .0
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("message-id"))
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_or_are_refused_by_name() {
        let ok = [
            ("a@b.example", None, "a@b.example"),
            ("<a@b.example>", None, "a@b.example"),
            ("Alice <alice@x.test>", Some("Alice"), "alice@x.test"),
            ("\"Doe, Jane\" <j@x.test>", Some("Doe, Jane"), "j@x.test"),
            (
                "J\u{fc}rgen M\u{fc}ller <jm@x.test>",
                Some("J\u{fc}rgen M\u{fc}ller"),
                "jm@x.test",
            ),
            (
                "=?utf-8?Q?J=C3=BCrgen?= <jm@x.test>",
                Some("J\u{fc}rgen"),
                "jm@x.test",
            ),
            ("bob@x.test (Bob)", Some("Bob"), "bob@x.test"),
            (
                "first.last+tag@sub.x-y.test",
                None,
                "first.last+tag@sub.x-y.test",
            ),
        ];
        for (text, name, email) in ok {
            let a = Address::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(a.name.as_deref(), name, "{text}");
            assert_eq!(a.email, email, "{text}");
        }
        let bad = [
            "",
            "alice",
            "alice@",
            "@x.test",
            "a..b@x.test",
            "a@-x.test",
            "a@x..test",
            "Alice <alice@x.test",
            "a b@x.test",
            "a@x.test, b@x.test",
            "\"unterminated <a@x.test>",
            "j\u{fc}@x.test",
        ];
        for text in bad {
            let err = Address::parse(text).expect_err(text);
            assert_eq!(err.exit().code(), 65, "{text}");
            assert!(err.to_string().contains("address"), "{err}");
        }
    }

    #[test]
    fn address_lists_with_groups_and_quotes() {
        let list =
            parse_address_list("team: a@x.test, \"B, b\" <b@x.test>;, c@x.test, undisclosed:;")
                .unwrap();
        let emails: Vec<_> = list.iter().map(|a| a.email.as_str()).collect();
        assert_eq!(emails, ["a@x.test", "b@x.test", "c@x.test"]);
    }

    /// The words we write, read back by the reader mail-dissect uses.
    fn decode_words(text: &str) -> String {
        crate::mime::rfc2047::decode(text.as_bytes()).0
    }

    #[test]
    fn rfc2047_words() {
        let cases = [
            ("Gr\u{fc}\u{df}e", "=?utf-8?B?R3LDvMOfZQ==?="),
            ("caf\u{e9} au lait", "=?utf-8?Q?caf=C3=A9_au_lait?="),
            ("a=b?", "=?utf-8?Q?a=3Db=3F?="),
        ];
        for (text, want) in cases {
            assert_eq!(encode_words(text).join(" "), want, "{text}");
            assert_eq!(decode_words(want), text);
        }
        // Long text: every word within 75 characters, no character split.
        let long = "\u{dc}bersicht M\u{e4}rz ".repeat(12);
        let words = encode_words(&long);
        assert!(words.len() > 1);
        assert!(words.iter().all(|w| w.len() <= 75), "{words:?}");
        assert_eq!(decode_words(&words.join(" ")), long);
        let greek = "\u{3b1}\u{3b2}\u{3b3}".repeat(40);
        let words = encode_words(&greek);
        assert!(
            words
                .iter()
                .all(|w| w.starts_with("=?utf-8?B?") && w.len() <= 75)
        );
        assert_eq!(decode_words(&words.join("\r\n ")), greek);
    }

    #[test]
    fn subjects_fold_and_encode() {
        let mut out = Vec::new();
        write_unstructured(&mut out, "Subject", &"word ".repeat(30));
        let text = String::from_utf8(out).unwrap();
        assert!(text.lines().all(|l| l.len() <= 78), "{text}");
        let unfolded = text.replace("\r\n", "");
        assert_eq!(unfolded, format!("Subject: {}", "word ".repeat(30)));
        let mut out = Vec::new();
        write_unstructured(&mut out, "Subject", "Rechnung f\u{fc}r M\u{e4}rz");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Subject: =?utf-8?Q?Rechnung_f=C3=BCr_M=C3=A4rz?=\r\n"
        );
    }

    #[test]
    fn display_names_are_quoted_or_encoded() {
        let cases = [
            ("Alice Smith", "alice@x.test", "Alice Smith <alice@x.test>"),
            ("Doe, Jane", "j@x.test", "\"Doe, Jane\" <j@x.test>"),
            (
                "J\u{fc}rgen",
                "j@x.test",
                "=?utf-8?Q?J=C3=BCrgen?= <j@x.test>",
            ),
        ];
        for (name, email, want) in cases {
            let a = Address {
                name: Some(name.into()),
                email: email.into(),
            };
            assert_eq!(a.header_tokens().join(" "), want);
        }
    }

    #[test]
    fn types_by_magic_then_extension() {
        let cases: [(&[u8], &str, &str); 18] = [
            (b"%PDF-1.4\n", "scan", "application/pdf"),
            (b"%PDF-1.4\n", "x.txt", "application/pdf"),
            (b"\x89PNG\r\n\x1a\n....", "logo", "image/png"),
            (b"\xff\xd8\xff\xe0", "photo.bin", "image/jpeg"),
            (b"GIF89a..", "a", "image/gif"),
            (b"\x1f\x8b\x08\x00", "a.tar.gz", "application/gzip"),
            (
                b"PK\x03\x04....",
                "r.docx",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ),
            (b"PK\x03\x04....", "r", "application/zip"),
            (
                b"PK\x03\x04....",
                "b.odt",
                "application/vnd.oasis.opendocument.text",
            ),
            (b"PK\x03\x04....", "app.jar", "application/java-archive"),
            (
                b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1....",
                "old.doc",
                "application/msword",
            ),
            (
                b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1....",
                "old",
                "application/x-ole-storage",
            ),
            (b"BZh91AY&SY", "a.tar.bz2", "application/x-bzip2"),
            (b"\xFD7zXZ\0...", "a", "application/x-xz"),
            (b"BEGIN:VCALENDAR\r\n", "invite", "text/calendar"),
            (b"hello", "notes.txt", "text/plain"),
            (b"hello", "data", "application/octet-stream"),
            (b"\x00\x01", "x.csv", "text/csv"),
        ];
        for (data, name, want) in cases {
            assert_eq!(sniff_type(data, name), want, "{name}");
        }
    }

    #[test]
    fn quoted_printable_keeps_lines_short_and_round_trips() {
        let text = format!("caf\u{e9} = {}\r\n. dot\r\ntrail \r\n", "x".repeat(200));
        let mut out = Vec::new();
        quoted_printable(text.as_bytes(), &mut out);
        let s = String::from_utf8(out.clone()).unwrap();
        assert!(s.split("\r\n").all(|l| l.len() <= 76), "{s}");
        assert!(s.contains("caf=C3=A9 =3D "));
        assert!(s.contains("\r\n=2E dot\r\n"));
        assert!(s.contains("trail=20\r\n"));
    }

    #[test]
    fn paths_that_are_not_utf8_are_read_and_named_lossily() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        // "café.pdf" in Latin-1: the é is one byte that is not UTF-8.
        let mut path = dir.path().as_os_str().as_bytes().to_vec();
        path.extend_from_slice(b"/caf\xe9.pdf");
        let path = OsStr::from_bytes(&path);
        fs::write(path, b"%PDF-1.4 x").unwrap();
        let a = Attachment::from_spec(path, false).unwrap();
        assert_eq!(a.data, b"%PDF-1.4 x");
        assert_eq!(a.file_name, "caf\u{fffd}.pdf");
        assert_eq!(a.content_type, "application/pdf");
        // With parameters after the bytes, too.
        let mut spec = path.as_bytes().to_vec();
        spec.extend_from_slice(b";name=r\xc3\xa9sum\xc3\xa9.pdf");
        let a = Attachment::from_spec(OsStr::from_bytes(&spec), false).unwrap();
        assert_eq!(a.file_name, "r\u{e9}sum\u{e9}.pdf");
        let draft = Draft {
            from: Some(Address::parse("a@x.test").unwrap()),
            to: vec![Address::parse("b@x.test").unwrap()],
            attachments: vec![Attachment::from_spec(path, false).unwrap()],
            ..Draft::default()
        };
        let pins = Pins {
            date: Some("@0".into()),
            message_id: Some("1@x.test".into()),
            boundary: Some("b".into()),
            host: "x.test".into(),
        };
        let text = String::from_utf8(compose(&draft, &pins).unwrap().bytes).unwrap();
        assert!(text.contains("filename*=utf-8''caf%EF%BF%BD.pdf"), "{text}");
    }

    #[test]
    fn file_names_use_rfc2231_when_needed() {
        let cases = [
            ("a.pdf", "filename=\"a.pdf\""),
            (
                "\u{dc}bersicht M\u{e4}rz.pdf",
                "filename*=utf-8''%C3%9Cbersicht%20M%C3%A4rz.pdf",
            ),
        ];
        for (name, want) in cases {
            let mut f = Field::new("Content-Disposition");
            f.push(" ", "attachment");
            push_file_name_param(&mut f, "filename", name);
            assert!(f.text.contains(want), "{}", f.text);
        }
        let long = format!("{}.pdf", "\u{e4}".repeat(50));
        let mut f = Field::new("Content-Disposition");
        f.push(" ", "attachment");
        push_file_name_param(&mut f, "filename", &long);
        assert!(f.text.contains("filename*0*=utf-8''%C3%A4"), "{}", f.text);
        assert!(f.text.contains("filename*4*="), "{}", f.text);
        assert!(f.text.split("\r\n").all(|l| l.len() <= 78), "{}", f.text);
    }

    #[test]
    fn user_headers_refuse_injection_and_own_fields() {
        assert_eq!(
            parse_user_header("X-Tag: one").unwrap(),
            ("X-Tag".into(), "one".into())
        );
        for (text, code) in [
            ("X-Evil: a\r\nBcc: victim@x.test", 64),
            ("X-Evil: a\nb", 64),
            ("Subject: hi", 64),
            ("no colon", 64),
            ("Bad Name: v", 64),
        ] {
            assert_eq!(
                parse_user_header(text).unwrap_err().exit().code(),
                code,
                "{text}"
            );
        }
    }

    #[test]
    fn dates_format_in_utc() {
        assert_eq!(format_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            format_date(1_700_000_000),
            "Tue, 14 Nov 2023 22:13:20 +0000"
        );
        assert_eq!(format_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn bcc_is_stripped_with_its_folded_lines() {
        let msg = b"From: a@x.test\r\nBcc: b@x.test,\r\n c@x.test\r\nTo: d@x.test\r\n\r\nBcc: body stays\r\n";
        let out = strip_bcc(msg);
        assert_eq!(
            out,
            b"From: a@x.test\r\nTo: d@x.test\r\n\r\nBcc: body stays\r\n".to_vec()
        );
        let (from, rcpt) = envelope_from_headers(msg).unwrap();
        assert_eq!(from.unwrap().email, "a@x.test");
        let emails: Vec<_> = rcpt.iter().map(|a| a.email.as_str()).collect();
        assert_eq!(emails, ["b@x.test", "c@x.test", "d@x.test"]);
    }

    #[test]
    fn composed_lines_stay_within_998_octets() {
        let draft = Draft {
            from: Some(Address::parse("A <a@x.test>").unwrap()),
            to: vec![Address::parse("b@x.test").unwrap()],
            subject: Some("x".repeat(2000)),
            text: format!("{}\n", "y".repeat(3000)),
            ..Draft::default()
        };
        let m = compose(&draft, &Pins::default()).unwrap();
        for line in m.bytes.split(|b| *b == b'\n') {
            assert!(line.len() <= MAX_LINE + 1, "{}", line.len());
        }
        assert!(!String::from_utf8_lossy(&m.bytes).contains("Bcc"));
    }
}
