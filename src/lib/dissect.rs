//! A received message turned back into its original files: which parts
//! are attachments, what they are called, what type they really are, and
//! the message's text and HTML bodies — in memory ([`dissect_bytes`]);
//! writing them out safely is [`write_dissection`].
//!
//! # Which parts are attachments
//!
//! Walking the part tree of [`crate::mime::parse`] in order:
//!
//! - a multipart is a container, never a file;
//! - an attached `message/rfc822` is kept whole as an `.eml` attachment
//!   and also descended: the attachments inside it are listed too (their
//!   inline text bodies are not: they are in the `.eml`);
//! - any other part is an attachment when it declares a file name, or has
//!   `Content-Disposition: attachment`, or is not `text/plain` or
//!   `text/html`;
//! - of the remaining inline `text/plain` and `text/html` parts of the
//!   message itself, the first of each becomes the body (`body.txt`,
//!   `body.html`, decoded to UTF-8); any further one is an attachment
//!   named after its path (`part-1.3.txt`), as its bytes were sent;
//! - a TNEF `winmail.dat` is replaced by the files it carries (see
//!   [`unpack_tnef`]), and uuencoded blocks in every inline text part
//!   become attachments and leave the text (see [`find_uuencoded`]): the
//!   body, a later text part (written without them, or not at all when
//!   nothing else is left), a text part of an attached message.
//!
//! # Names and types
//!
//! A declared name (`filename*`, `filename`, `name*`, `name`, in that
//! order, RFC 2231 and RFC 2047 decoded) is sanitized with
//! [`crate::file_name::sanitize_file_name`]; without one the name is
//! `part-<path>.<ext>` from the real type. The real type is the declared
//! one unless that is generic (`application/octet-stream` and the like),
//! in which case the magic bytes decide, then the name's extension. A
//! declared name without an extension gets the real type's (`scan` holding
//! a PDF becomes `scan.pdf`).
//!
//! With [`Options::types`] set, only attachments of a matching type are
//! kept (either the real or the declared type may match) and no body is
//! produced.

mod sniff;
mod write;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::file_name::sanitize_file_name;
use crate::mime::{self, Defect, DefectKind, Headers, PartKind};

pub use sniff::{extension_for, sniff};
pub use write::{
    Target, Written, WrittenFile, check_output_path, folder_name, remove_stale_temps, sync_output,
    write_dissection,
};

/// What to extract. The default is everything: all attachments, the
/// bodies, default limits.
#[derive(Debug, Clone)]
pub struct Options {
    /// Keep only attachments of these types (`application/pdf`,
    /// `image/*`); empty keeps all.
    pub types: Vec<String>,
    /// Produce `body.txt` / `body.html` (ignored when `types` is set).
    pub bodies: bool,
    /// Parser limits.
    pub limits: mime::Limits,
}

impl Default for Options {
    fn default() -> Self {
        Options::all()
    }
}

impl Options {
    /// All attachments and the bodies, default limits.
    pub fn all() -> Self {
        Options {
            types: Vec::new(),
            bodies: true,
            limits: mime::Limits::default(),
        }
    }

    /// True when `content_type` matches one of [`Options::types`] (or
    /// there are none).
    pub fn wants_type(&self, content_type: &str) -> bool {
        self.types.is_empty()
            || self
                .types
                .iter()
                .any(|p| type_matches(&p.to_ascii_lowercase(), content_type))
    }
}

fn type_matches(pattern: &str, content_type: &str) -> bool {
    match pattern.strip_suffix("/*") {
        Some(major) => major == "*" || content_type.split('/').next() == Some(major),
        None => pattern == content_type || pattern == "*",
    }
}

/// Where an attachment came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A MIME part.
    Mime,
    /// A uuencoded block in a text part.
    Uuencode,
    /// A file inside a TNEF `winmail.dat`.
    Tnef,
    /// An attached message, kept as `.eml`.
    Rfc822,
}

/// The main header fields decoded, plus every raw field.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MainHeaders {
    /// `From`, RFC 2047 decoded.
    pub from: Option<String>,
    /// `To`.
    pub to: Option<String>,
    /// `Cc`.
    pub cc: Option<String>,
    /// `Subject`.
    pub subject: Option<String>,
    /// `Date`, as written.
    pub date: Option<String>,
    /// `Message-ID`, as written.
    pub message_id: Option<String>,
    /// Every header field of the message, raw.
    pub raw: Headers,
}

/// What became of a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A multipart container.
    Container,
    /// The text body.
    BodyText,
    /// The HTML body.
    BodyHtml,
    /// An attachment.
    Attachment,
    /// An inline text part of an attached message (it is in the `.eml`).
    InAttachedMessage,
    /// Left out by the type filter or `--no-bodies`.
    Skipped,
}

/// One part of the tree, for `message.json`.
#[derive(Debug, Clone, Serialize)]
pub struct PartInfo {
    /// IMAP-like path.
    pub path: String,
    /// Container, attached message or leaf.
    pub kind: PartKind,
    /// Declared (or defaulted) content type.
    pub content_type: String,
    /// The type the content really has, when it differs.
    pub detected_type: Option<String>,
    /// Declared disposition.
    pub disposition: Option<String>,
    /// Declared charset.
    pub charset: Option<String>,
    /// Declared transfer encoding.
    pub transfer_encoding: Option<String>,
    /// The declared file name as written.
    pub declared_name_raw: Option<String>,
    /// The declared file name decoded.
    pub declared_name: Option<String>,
    /// Which parameter the name came from.
    pub name_source: Option<&'static str>,
    /// Decoded size in bytes.
    pub size: usize,
    /// What became of it.
    pub role: Role,
}

/// A file to be written.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The path of the part it came from.
    pub part: String,
    /// Its real type.
    pub content_type: String,
    /// The declared name as written.
    pub declared_name_raw: Option<String>,
    /// The declared name decoded.
    pub declared_name: Option<String>,
    /// A safe name (not yet de-duplicated).
    pub file_name: String,
    /// The bytes.
    pub data: Vec<u8>,
    /// Where it came from.
    pub origin: Origin,
    /// The embedded TNEF items (their declared names) it was inside,
    /// outermost first.
    pub within: Vec<String>,
    /// For an embedded TNEF item's own file: the item's message class
    /// (`IPM.Task`, `IPM.Appointment`, `IPM.Note`).
    pub item_class: Option<String>,
}

/// Everything found in one message.
#[derive(Debug, Clone, Default)]
pub struct Dissection {
    /// sha256 of the raw message, hex.
    pub sha256: String,
    /// The main header fields.
    pub headers: MainHeaders,
    /// Every part, in tree order.
    pub parts: Vec<PartInfo>,
    /// The files, in part order.
    pub attachments: Vec<Attachment>,
    /// The text body, decoded.
    pub body_text: Option<String>,
    /// The HTML body, decoded.
    pub body_html: Option<String>,
    /// Everything guessed or cut short.
    pub defects: Vec<Defect>,
    /// What was asked for (recorded in `message.json`, so a re-run with
    /// the same selection can skip the message).
    pub selection: Selection,
    /// The mbox the message came out of, when it did.
    pub source: Option<Source>,
}

/// Where in an mbox a message was (recorded in `message.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Source {
    /// The mbox file (`-` for stdin).
    pub mbox: String,
    /// Its position in the mbox, from 1.
    pub message: usize,
    /// The byte offset of its `From ` line in the mbox.
    pub offset: u64,
    /// Its envelope line after `From ` (sender and date).
    pub envelope: String,
}

/// The part of [`Options`] that decides which files exist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Selection {
    /// [`Options::types`], lowercased.
    pub types: Vec<String>,
    /// Whether bodies were written.
    pub bodies: bool,
}

impl Dissection {
    /// True when the input had no header fields at all (it is still read
    /// as a message: its body is the whole text, with a defect).
    pub fn looks_empty(&self) -> bool {
        self.headers.raw.is_empty()
    }
}

/// Dissects one message in memory. Pure: reads nothing, writes nothing,
/// never panics.
pub fn dissect_bytes(raw: &[u8], opts: &Options) -> Dissection {
    let message = mime::parse(raw, &opts.limits);
    let mut d = Dissection {
        sha256: hex::encode(Sha256::digest(raw)),
        headers: main_headers(&message.headers),
        defects: message.defects,
        ..Dissection::default()
    };
    if d.headers.raw.is_empty() && !raw.is_empty() {
        // Text without a header (a body saved on its own, or a file that
        // starts with a blank line): lenient readers such as mime4j and
        // Python's email package take it as a message all the same.
        d.defects.push(Defect {
            part: String::new(),
            kind: DefectKind::Header,
            detail: "no header fields: read as a message whose body is the whole text".into(),
        });
    }
    let filtering = !opts.types.is_empty();
    let want_bodies = opts.bodies && !filtering;
    d.selection = Selection {
        types: opts.types.iter().map(|t| t.to_ascii_lowercase()).collect(),
        bodies: want_bodies,
    };
    for mut part in message.parts {
        let declared_name = part.declared_name.take();
        let size = part.body.len();
        let detected = detect_type(&part, declared_name.as_ref().map(|n| n.decoded.as_str()));
        let mut info = PartInfo {
            path: part.path.clone(),
            kind: part.kind,
            content_type: part.content_type.clone(),
            detected_type: (detected != part.content_type).then(|| detected.clone()),
            disposition: part.disposition.clone(),
            charset: part.charset.clone(),
            transfer_encoding: part.transfer_encoding.clone(),
            declared_name_raw: declared_name.as_ref().map(|n| n.raw.clone()),
            declared_name: declared_name.as_ref().map(|n| n.decoded.clone()),
            name_source: declared_name.as_ref().map(|n| n.source),
            size,
            role: Role::Container,
        };
        if part.kind == PartKind::Multipart {
            d.parts.push(info);
            continue;
        }
        let is_body_type = matches!(part.content_type.as_str(), "text/plain" | "text/html");
        let attachment_like = part.kind == PartKind::Message
            || declared_name.is_some()
            || part.disposition.as_deref() == Some("attachment")
            || !is_body_type;
        // Uuencoded files in any inline text part (the body, a later
        // text part, one inside an attached message) become attachments
        // and leave the text.
        let mut uuencoded_files = false;
        if !attachment_like && !part.uuencoded {
            let spans = extract_uuencoded(&part.path, &part.body, opts, &mut d);
            if !spans.is_empty() {
                part.body = without_spans(&part.body, &spans);
                uuencoded_files = true;
            }
        }
        if !attachment_like && part.message_depth > 0 {
            info.role = Role::InAttachedMessage;
            d.parts.push(info);
            continue;
        }
        let is_html = part.content_type == "text/html";
        let slot_free = if is_html {
            d.body_html.is_none()
        } else {
            d.body_text.is_none()
        };
        if !attachment_like && uuencoded_files && !slot_free && part.body.trim_ascii().is_empty() {
            // Nothing but the files: no part-N.txt of blank lines.
            info.role = Role::Attachment;
            d.parts.push(info);
            continue;
        }
        if !attachment_like && !part.uuencoded && slot_free {
            let text = if want_bodies {
                // HTML without a charset parameter often names it in a
                // <meta> tag.
                let label = part
                    .charset
                    .clone()
                    .or_else(|| is_html.then(|| html_meta_charset(&part.body)).flatten());
                let (text, defect) = mime::charset::decode(&part.body, label.as_deref());
                if let Some(detail) = defect {
                    d.defects.push(Defect {
                        part: part.path.clone(),
                        kind: DefectKind::Charset,
                        detail,
                    });
                }
                info.role = if is_html {
                    Role::BodyHtml
                } else {
                    Role::BodyText
                };
                text
            } else {
                // Still claim the slot so later parts are not promoted.
                info.role = Role::Skipped;
                String::new()
            };
            if is_html {
                d.body_html = Some(text);
            } else {
                d.body_text = Some(text);
            }
            d.parts.push(info);
            continue;
        }
        if part.uuencoded {
            if !extract_uuencoded(&part.path, &part.body, opts, &mut d).is_empty() {
                info.role = Role::Attachment;
                d.parts.push(info);
                continue;
            }
            d.defects.push(Defect {
                part: part.path.clone(),
                kind: DefectKind::Uuencode,
                detail: "uuencoded part kept as sent: no uuencoded file found in it".into(),
            });
        }
        let origin = if part.kind == PartKind::Message {
            Origin::Rfc822
        } else {
            Origin::Mime
        };
        if !(opts.wants_type(&detected) || opts.wants_type(&part.content_type)) {
            info.role = Role::Skipped;
            d.parts.push(info);
            continue;
        }
        info.role = Role::Attachment;
        let data = std::mem::take(&mut part.body);
        let fallback = format!("part-{}.{}", part.path, extension_for(&detected));
        let is_tnef = matches!(
            detected.as_str(),
            "application/ms-tnef" | "application/vnd.ms-tnef"
        ) || declared_name
            .as_ref()
            .is_some_and(|n| n.decoded.eq_ignore_ascii_case("winmail.dat"));
        if is_tnef && let Some(unpacked) = unpack_tnef(&data) {
            match unpacked {
                Ok((files, defects)) => {
                    for detail in defects {
                        d.defects.push(Defect {
                            part: part.path.clone(),
                            kind: DefectKind::Tnef,
                            detail,
                        });
                    }
                    for f in files {
                        push_extracted(&part.path, f, Origin::Tnef, opts, &mut d);
                    }
                    d.parts.push(info);
                    continue;
                }
                Err(detail) => d.defects.push(Defect {
                    part: part.path.clone(),
                    kind: DefectKind::Tnef,
                    detail: format!("winmail.dat kept as it is: {detail}"),
                }),
            }
        }
        let file_name = match &declared_name {
            Some(n) => with_extension(sanitize_file_name(&n.decoded, &fallback), &detected),
            None => fallback,
        };
        d.attachments.push(Attachment {
            part: part.path.clone(),
            content_type: detected,
            file_name,
            declared_name_raw: declared_name.as_ref().map(|n| n.raw.clone()),
            declared_name: declared_name.map(|n| n.decoded),
            data,
            origin,
            within: Vec::new(),
            item_class: None,
        });
        d.parts.push(info);
    }
    if !want_bodies {
        d.body_text = None;
        d.body_html = None;
    }
    d
}

/// The charset an HTML document names in a `<meta>` tag near its start.
fn html_meta_charset(html: &[u8]) -> Option<String> {
    let head = &html[..html.len().min(4096)];
    let lower = head.to_ascii_lowercase();
    let at = memchr::memmem::find(&lower, b"charset=")? + b"charset=".len();
    let rest = &head[at..];
    let rest = rest
        .strip_prefix(b"\"")
        .or_else(|| rest.strip_prefix(b"'"))
        .unwrap_or(rest);
    let end = rest
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b"-_.:".contains(&b)))
        .unwrap_or(rest.len());
    (end > 0).then(|| String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// A declared name without any extension gets the one of the real type
/// (`scan` holding a PDF is written as `scan.pdf`), so the file opens and
/// prints as what it is; a name with an extension is kept as declared.
fn with_extension(name: String, content_type: &str) -> String {
    let (_, ext) = crate::file_name::split_extension(&name);
    let real = extension_for(content_type);
    if !ext.is_empty() || real == "bin" || real == "txt" {
        return name;
    }
    sanitize_file_name(&format!("{name}.{real}"), &name)
}

/// The real type of a part: the declared one unless it is generic, then
/// the magic bytes, then the declared name's extension.
fn detect_type(part: &mime::Part, name: Option<&str>) -> String {
    if part.kind != PartKind::Leaf || !sniff::is_generic(&part.content_type) {
        return part.content_type.clone();
    }
    if let Some(t) = sniff(&part.body) {
        return t.to_string();
    }
    if let Some(guess) = name.and_then(|n| mime_guess::from_path(n).first_raw()) {
        return guess.to_string();
    }
    part.content_type.clone()
}

fn main_headers(h: &Headers) -> MainHeaders {
    let decoded = |name: &str| h.get_unfolded(name).map(|v| mime::rfc2047::decode(&v).0);
    let plain = |name: &str| {
        h.get_unfolded(name)
            .map(|v| mime::charset::utf8_or_windows_1252(&v).0)
    };
    MainHeaders {
        from: decoded("from"),
        to: decoded("to"),
        cc: decoded("cc"),
        subject: decoded("subject"),
        date: plain("date"),
        message_id: plain("message-id"),
        raw: h.clone(),
    }
}

/// A file found inside a part by the uuencode or TNEF decoders.
#[derive(Debug, Clone, Default)]
pub struct Extracted {
    /// The name the encoder gave it.
    pub name: String,
    /// Its bytes.
    pub data: Vec<u8>,
    /// Its type, when the container says.
    pub mime_type: Option<String>,
    /// What had to be guessed while decoding it.
    pub defects: Vec<String>,
    /// Where it sat in the text it was found in (uuencoded blocks), so
    /// the body can be written without it.
    pub span: Option<std::ops::Range<usize>>,
    /// The embedded TNEF items it was inside, outermost first.
    pub within: Vec<String>,
    /// For an embedded TNEF item's own file: its message class.
    pub item_class: Option<String>,
}

/// The files a container carries, and what had to be guessed.
pub type Unpacked = (Vec<Extracted>, Vec<String>);

/// The files a TNEF `winmail.dat` carries: `None` when `data` is not
/// TNEF, else the files (embedded Outlook items as files of their own,
/// with their bodies and files beside them; the message body it holds as
/// `winmail-body.txt`, `.rtf`, `.html`) and the defects, or why it could
/// not be decoded at all.
pub fn unpack_tnef(data: &[u8]) -> Option<Result<Unpacked, String>> {
    if !crate::tnef::is_tnef(data) {
        return None;
    }
    Some(match crate::tnef::decode(data) {
        Ok(t) => {
            // The body is often the only readable form of the message.
            let body = t.body_files("winmail");
            let files = t
                .files
                .into_iter()
                .chain(body)
                .map(|f| Extracted {
                    name: f.name,
                    data: f.data,
                    mime_type: f.mime_type,
                    within: f.within,
                    item_class: f.item_class,
                    ..Extracted::default()
                })
                .collect();
            Ok((files, t.defects))
        }
        Err(e) => Err(e.to_string()),
    })
}

/// The uuencoded files found in `text`, with where each block sat.
pub fn find_uuencoded(text: &[u8]) -> Vec<Extracted> {
    crate::uuencode::find_blocks(text)
        .into_iter()
        .map(|u| Extracted {
            name: u.name,
            data: u.data,
            defects: u.defects,
            span: Some(u.start..u.end),
            ..Extracted::default()
        })
        .collect()
}

/// Adds the uuencoded files in `text` as attachments; returns where the
/// blocks were.
fn extract_uuencoded(
    path: &str,
    text: &[u8],
    opts: &Options,
    d: &mut Dissection,
) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    for f in find_uuencoded(text) {
        spans.extend(f.span.clone());
        for detail in &f.defects {
            d.defects.push(Defect {
                part: path.to_string(),
                kind: DefectKind::Uuencode,
                detail: detail.clone(),
            });
        }
        push_extracted(path, f, Origin::Uuencode, opts, d);
    }
    spans
}

/// `text` without the byte ranges in `spans` (sorted, not overlapping).
fn without_spans(text: &[u8], spans: &[std::ops::Range<usize>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    for span in spans {
        let start = span.start.clamp(at, text.len());
        out.extend_from_slice(&text[at..start]);
        at = span.end.clamp(start, text.len());
    }
    out.extend_from_slice(&text[at..]);
    out
}

fn push_extracted(path: &str, f: Extracted, origin: Origin, opts: &Options, d: &mut Dissection) {
    let content_type = sniff(&f.data)
        .map(str::to_string)
        .or(f.mime_type.clone())
        .or_else(|| {
            mime_guess::from_path(&f.name)
                .first_raw()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "application/octet-stream".to_string());
    if !opts.wants_type(&content_type) {
        return;
    }
    let n = d.attachments.len() + 1;
    let fallback = format!("part-{path}-{n}.{}", extension_for(&content_type));
    d.attachments.push(Attachment {
        part: path.to_string(),
        file_name: sanitize_file_name(&f.name, &fallback),
        content_type,
        declared_name_raw: Some(f.name.clone()),
        declared_name: Some(f.name),
        data: f.data,
        origin,
        within: f.within,
        item_class: f.item_class,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(d: &Dissection) -> Vec<(String, String, String)> {
        d.attachments
            .iter()
            .map(|a| (a.part.clone(), a.content_type.clone(), a.file_name.clone()))
            .collect()
    }

    #[test]
    fn attachment_rule() {
        let raw = b"Subject: t\nContent-Type: multipart/mixed; boundary=b\n\n\
--b\nContent-Type: multipart/alternative; boundary=c\n\n\
--c\n\nplain\n--c\nContent-Type: text/html\n\n<p>html</p>\n--c--\n\
--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n\
--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename=\"../notes.txt\"\n\nnotes\n\
--b\n\nfooter\n\
--b\nContent-Type: message/rfc822\n\nSubject: inner\nContent-Type: multipart/mixed; boundary=i\n\n--i\n\ninner text\n--i\nContent-Type: image/png; name=dot.png\n\nPNG\n--i--\n\
--b--\n";
        let d = dissect_bytes(raw, &Options::all());
        assert_eq!(d.body_text.as_deref(), Some("plain"));
        assert_eq!(d.body_html.as_deref(), Some("<p>html</p>"));
        let want = [
            ("2", "application/pdf", "part-2.pdf"),
            ("3", "text/plain", "notes.txt"),
            ("4", "text/plain", "part-4.txt"),
            ("5", "message/rfc822", "part-5.eml"),
            ("5.2", "image/png", "dot.png"),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect();
        assert_eq!(names(&d), want);
        assert_eq!(d.attachments[0].data, b"%PDF-1.4\n");
        let roles: Vec<Role> = d.parts.iter().map(|p| p.role).collect();
        use Role::*;
        assert_eq!(
            roles,
            [
                Container,
                Container,
                BodyText,
                BodyHtml,
                Attachment,
                Attachment,
                Attachment,
                Attachment,
                Container,
                InAttachedMessage,
                Attachment
            ]
        );
    }

    #[test]
    fn names_without_extension_get_the_real_one() {
        let raw = b"Content-Type: application/octet-stream; name=scan\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n";
        let d = dissect_bytes(raw, &Options::all());
        assert_eq!(d.attachments[0].file_name, "scan.pdf");
        assert_eq!(d.attachments[0].declared_name.as_deref(), Some("scan"));
        let raw = b"Content-Type: application/octet-stream; name=notes\n\nplain words";
        assert_eq!(
            dissect_bytes(raw, &Options::all()).attachments[0].file_name,
            "notes"
        );
    }

    #[test]
    fn html_charset_from_meta() {
        let raw = b"Content-Type: text/html\n\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\"><p>\x80</p>";
        let d = dissect_bytes(raw, &Options::all());
        assert!(d.body_html.unwrap().contains('\u{20AC}'));
        assert_eq!(
            html_meta_charset(b"<meta charset='UTF-8'>").as_deref(),
            Some("UTF-8")
        );
        assert_eq!(html_meta_charset(b"<p>no meta</p>"), None);
    }

    #[test]
    fn type_filter_and_no_bodies() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\ntext\n--b\nContent-Type: application/pdf; name=a.pdf\n\n%PDF-\n--b\nContent-Type: image/gif; name=a.gif\n\nGIF89a\n--b--\n";
        let opts = Options {
            types: vec!["application/pdf".into()],
            ..Options::all()
        };
        let d = dissect_bytes(raw, &opts);
        assert_eq!(d.attachments.len(), 1);
        assert_eq!(d.attachments[0].file_name, "a.pdf");
        assert!(d.body_text.is_none());
        let opts = Options {
            types: vec!["image/*".into()],
            ..Options::all()
        };
        assert_eq!(dissect_bytes(raw, &opts).attachments[0].file_name, "a.gif");
        let opts = Options {
            bodies: false,
            ..Options::all()
        };
        let d = dissect_bytes(raw, &opts);
        assert_eq!(d.attachments.len(), 2);
        assert!(d.body_text.is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Random bytes never make the dissector panic.
        #[test]
        fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000)) {
            let _ = dissect_bytes(&raw, &Options::all());
        }

        /// Nor do messages assembled from the lines MIME parsers trip on.
        #[test]
        fn hostile_line_soup_never_panics(lines in proptest::collection::vec(0usize..LINES.len(), 0..60), crlf in proptest::prelude::any::<bool>()) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let raw: String = lines.iter().map(|&i| format!("{}{eol}", LINES[i])).collect();
            let d = dissect_bytes(raw.as_bytes(), &Options::all());
            for a in &d.attachments {
                proptest::prop_assert!(!a.file_name.contains('/'));
            }
        }
    }

    const LINES: &[&str] = &[
        "",
        "Content-Type: multipart/mixed; boundary=b",
        "Content-Type: multipart/alternative; boundary=b2",
        "Content-Type: multipart/mixed",
        "Content-Type: message/rfc822",
        "Content-Type: multipart/digest; boundary=d",
        "Content-Transfer-Encoding: base64",
        "Content-Transfer-Encoding: quoted-printable",
        "Content-Transfer-Encoding: x-uuencode",
        "Content-Disposition: attachment; filename*0*=utf-8''%E2%82; filename*1*=%AC.pdf",
        "Content-Disposition: attachment; filename=\"../../x=?utf-8?B?w6k=?=",
        "Content-Type: application/octet-stream; name=\"=?utf-8?Q?a=",
        " continued",
        "--b",
        "--b--",
        "--b2",
        "--b2--",
        "--d",
        "JVBERi0xLjQK",
        "=?utf-8?B?",
        "soft=",
        "=ZZ",
        "begin 644 x.bin",
        "end",
        "From someone",
        "Subject: =?koi8-r?B?8NLJ18XU?=",
    ];

    #[test]
    fn headers_are_decoded() {
        let d = dissect_bytes(
            b"From: =?utf-8?Q?J=C3=BCrg?= <j@x>\nSubject: =?iso-8859-1?Q?M=E4rz?=\nMessage-ID: <a@b>\n\nx",
            &Options::all(),
        );
        assert_eq!(d.headers.from.as_deref(), Some("Jürg <j@x>"));
        assert_eq!(d.headers.subject.as_deref(), Some("März"));
        assert_eq!(d.headers.message_id.as_deref(), Some("<a@b>"));
        assert!(!d.looks_empty());
        assert!(dissect_bytes(b"", &Options::all()).looks_empty());
    }
}
