//! Decoding TNEF (`winmail.dat`, `application/ms-tnef`) into the files
//! and bodies it carries.
//!
//! Outlook and Exchange wrap a message's attachments and its rich-text or
//! HTML body into one TNEF stream (MS-OXTNEF): a signature, then
//! attributes of the form level, id, length, data, checksum; attachment
//! names and embedded objects sit in MAPI property lists inside some of
//! them. [`decode`] walks that stream, reads every length against what is
//! actually left, and keeps whatever is complete: a bad checksum, a
//! truncated attribute or trailing garbage becomes a defect, not an error.
//! Embedded Outlook items (an attachment whose data is itself a message,
//! task, appointment or contact: a TNEF stream of its own) are kept as a
//! file of their own, the item's stream as it was sent, and decoded in
//! turn: their bodies and attachments come out beside them, each saying
//! which item it was inside. Other embedded OLE objects are kept as
//! opaque files. Nothing is dropped without a defect: an attribute this
//! module does not know is reported.
//!
//! It deliberately does not: interpret calendar, contact or task fields
//! (they stay in the item's own file), render RTF to text or HTML (the
//! decompressed RTF is returned as it is), write anything, or judge file
//! names (callers still reduce them to a safe basename).

use std::fmt;

use encoding_rs::{Encoding, UTF_16LE, WINDOWS_1252};

/// One file carried in a TNEF stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TnefFile {
    /// The best name the stream gives: the long file name, else the 8.3
    /// name, else the display name, else `attachment-N`; not sanitised.
    pub name: String,
    /// The file's bytes.
    pub data: Vec<u8>,
    /// The MIME type the sender's client recorded, if any.
    pub mime_type: Option<String>,
    /// The names of the embedded items this file was inside, outermost
    /// first (empty for a file of the message itself).
    pub within: Vec<String>,
    /// For an embedded item's own file (its TNEF stream): the item's
    /// message class (`IPM.Task`, `IPM.Appointment`, `IPM.Note`), or
    /// `IPM` when the stream does not say.
    pub item_class: Option<String>,
}

/// The message body a TNEF stream carries, in whichever forms it has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TnefBody {
    /// Plain text (`attBody` or `PR_BODY`).
    pub text: Option<String>,
    /// HTML bytes in their own charset (`PR_HTML`).
    pub html: Option<Vec<u8>>,
    /// RTF after decompression (`PR_RTF_COMPRESSED`), what Outlook shows.
    pub rtf: Option<Vec<u8>>,
}

/// What a TNEF stream decoded to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tnef {
    /// The attached files in stream order; an embedded item is its own
    /// file, followed by its body (`<item>-body.txt`, `.rtf`, `.html`)
    /// and its files, where the item stood.
    pub files: Vec<TnefFile>,
    /// The top-level message body (embedded items' bodies are files).
    pub body: TnefBody,
    /// The message class (`attMessageClass` or `PR_MESSAGE_CLASS`).
    pub class: Option<String>,
    /// The subject (`attSubject` or `PR_SUBJECT`).
    pub subject: Option<String>,
    /// What had to be tolerated or skipped, one sentence each.
    pub defects: Vec<String>,
}

impl Tnef {
    /// The body in each form the stream has, as files named
    /// `<stem>-body.txt`, `.rtf` and `.html`.
    pub fn body_files(&self, stem: &str) -> Vec<TnefFile> {
        let file = |ext: &str, data: &[u8], mime_type: &str| TnefFile {
            name: format!("{stem}-body.{ext}"),
            data: data.to_vec(),
            mime_type: Some(mime_type.into()),
            ..TnefFile::default()
        };
        let body = &self.body;
        let mut files = Vec::new();
        if let Some(text) = &body.text
            && !text.trim().is_empty()
        {
            files.push(file("txt", text.as_bytes(), "text/plain"));
        }
        if let Some(rtf) = &body.rtf {
            files.push(file("rtf", rtf, "application/rtf"));
        }
        if let Some(html) = &body.html {
            files.push(file("html", html, "text/html"));
        }
        files
    }
}

/// Why a stream could not be decoded at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TnefError {
    /// The data does not start with the TNEF signature.
    NotTnef,
    /// The data ends inside the six-byte header.
    TruncatedHeader,
}

impl fmt::Display for TnefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TnefError::NotTnef => f.write_str("not a TNEF stream (no 0x223E9F78 signature)"),
            TnefError::TruncatedHeader => f.write_str("TNEF stream ends inside its header"),
        }
    }
}

impl std::error::Error for TnefError {}

const SIGNATURE: u32 = 0x223E_9F78;

/// Whether `data` starts with the TNEF signature.
///
/// Use this rather than the part's name or type: `winmail.dat` is
/// sometimes a picture or anything else.
pub fn is_tnef(data: &[u8]) -> bool {
    read_u32(data, 0) == Some(SIGNATURE)
}

/// Decodes a TNEF stream into its files, body and defects.
///
/// Fails only when `data` is not TNEF at all; damage after the header is
/// reported in [`Tnef::defects`] and everything complete before it is
/// kept.
pub fn decode(data: &[u8]) -> Result<Tnef, TnefError> {
    decode_nested(data, 0)
}

/// Embedded messages may nest; past this depth their bytes are kept as
/// files, which bounds the work on hostile input.
const MAX_DEPTH: usize = 8;

/// Attribute ids (the low 16 bits; the high 16 are a type that senders
/// get wrong often enough not to rely on).
mod attribute {
    pub const SUBJECT: u16 = 0x8004;
    pub const MESSAGE_CLASS: u16 = 0x8008;
    pub const BODY: u16 = 0x800C;
    pub const ATTACH_DATA: u16 = 0x800F;
    pub const ATTACH_TITLE: u16 = 0x8010;
    pub const ATTACH_RENDDATA: u16 = 0x9002;
    pub const MAPI_PROPS: u16 = 0x9003;
    pub const ATTACHMENT: u16 = 0x9005;
    pub const OEM_CODEPAGE: u16 = 0x9007;

    /// Attributes known and deliberately not needed: metadata of the
    /// message or of an attachment (senders, dates, ids, status, the icon
    /// Outlook draws for an attachment). Any other id is reported.
    pub fn is_metadata(id: u16) -> bool {
        matches!(
            id,
            0x0000..=0x0009 // owner, sent-for, delegate, dates, aid owner, request response
                | 0x0600 // attOriginalMessageClass
                | 0x8000 // attFrom
                | 0x8005..=0x8007 // dates sent and received, message status
                | 0x8009 // attMessageID
                | 0x800A // attParentID
                | 0x800B // attConversationID
                | 0x800D // attPriority
                | 0x8011 // attAttachMetaFile (the icon)
                | 0x8012 // attAttachCreateDate
                | 0x8013 // attAttachModifyDate
                | 0x8020 // attDateModified
                | 0x9001 // attAttachTransportFilename
                | 0x9004 // attRecipTable
                | 0x9006 // attTnefVersion
        )
    }
}

/// MAPI property ids used here.
mod property {
    pub const MESSAGE_CLASS: u16 = 0x001A;
    pub const SUBJECT: u16 = 0x0037;
    pub const BODY: u16 = 0x1000;
    pub const RTF_COMPRESSED: u16 = 0x1009;
    pub const HTML: u16 = 0x1013;
    pub const DISPLAY_NAME: u16 = 0x3001;
    pub const ATTACH_DATA_OBJ: u16 = 0x3701;
    pub const ATTACH_FILENAME: u16 = 0x3704;
    pub const ATTACH_LONG_FILENAME: u16 = 0x3707;
    pub const ATTACH_MIME_TAG: u16 = 0x370E;
}

/// MAPI property types.
mod kind {
    pub const SHORT: u16 = 0x0002;
    pub const LONG: u16 = 0x0003;
    pub const FLOAT: u16 = 0x0004;
    pub const DOUBLE: u16 = 0x0005;
    pub const CURRENCY: u16 = 0x0006;
    pub const APPTIME: u16 = 0x0007;
    pub const ERROR: u16 = 0x000A;
    pub const BOOLEAN: u16 = 0x000B;
    pub const OBJECT: u16 = 0x000D;
    pub const I8: u16 = 0x0014;
    pub const STRING8: u16 = 0x001E;
    pub const UNICODE: u16 = 0x001F;
    pub const SYSTIME: u16 = 0x0040;
    pub const CLSID: u16 = 0x0048;
    pub const BINARY: u16 = 0x0102;
    pub const MULTIPLE: u16 = 0x1000;
}

/// IID_IMessage as stored: the object is an embedded message, which TNEF
/// writes as a TNEF stream of its own.
const IID_IMESSAGE: [u8; 16] = [
    0x07, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
];

fn decode_nested(data: &[u8], depth: usize) -> Result<Tnef, TnefError> {
    if data.len() < 6 {
        return Err(if data.len() >= 4 && is_tnef(data) {
            TnefError::TruncatedHeader
        } else {
            TnefError::NotTnef
        });
    }
    if !is_tnef(data) {
        return Err(TnefError::NotTnef);
    }
    let mut decoder = Decoder {
        depth,
        codepage: None,
        current: None,
        attachments_seen: 0,
        out: Tnef::default(),
    };
    // Signature, then a two-byte legacy key nobody checks.
    let mut pos = 6;
    while pos < data.len() {
        let rest = &data[pos..];
        let header = (rest.first(), read_u32(rest, 1), read_u32(rest, 5));
        let (Some(&level), Some(id), Some(length)) = header else {
            decoder.defect(format!(
                "{} bytes of trailing garbage at offset {pos}, too short for an attribute; \
                 ignored",
                rest.len()
            ));
            break;
        };
        if level != 1 && level != 2 {
            decoder.defect(format!(
                "{} bytes of trailing garbage at offset {pos} (level byte {level:#04x}); ignored",
                rest.len()
            ));
            break;
        }
        let id = (id & 0xFFFF) as u16;
        // The length is checked against what is left before it is used,
        // so a bogus one cannot make us read or allocate past the input.
        let available = rest.len() - 9;
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        if length > available {
            decoder.defect(format!(
                "attribute {id:#06x} at offset {pos} declares {length} bytes but only \
                 {available} remain; the stream is truncated and the attribute was dropped"
            ));
            break;
        }
        let value = &rest[9..9 + length];
        match read_u16(rest, 9 + length) {
            Some(checksum) if checksum != checksum_of(value) => decoder.defect(format!(
                "attribute {id:#06x} at offset {pos} has a bad checksum; its data was kept"
            )),
            Some(_) => {}
            None => decoder.defect(format!(
                "attribute {id:#06x} at offset {pos} lacks its checksum; its data was kept"
            )),
        }
        decoder.attribute(level, id, value);
        pos += 9 + length + 2;
    }
    decoder.finish_attachment();
    Ok(decoder.out)
}

fn checksum_of(bytes: &[u8]) -> u16 {
    bytes
        .iter()
        .fold(0u16, |sum, &b| sum.wrapping_add(u16::from(b)))
}

/// An attachment being collected: TNEF spreads one over several
/// attributes, in no fixed order.
#[derive(Debug, Default)]
struct Attachment {
    title: Option<Vec<u8>>,
    long_name: Option<Text>,
    short_name: Option<Text>,
    display_name: Option<Text>,
    mime_type: Option<Text>,
    data: Option<Vec<u8>>,
    object: Option<Vec<u8>>,
    object_is_message: bool,
}

/// A string property as stored: 8-bit ones need the codepage, which may
/// arrive after them.
#[derive(Debug, Clone)]
enum Text {
    Bytes(Vec<u8>),
    Unicode(String),
}

#[derive(Debug)]
struct Decoder {
    depth: usize,
    codepage: Option<u32>,
    current: Option<Attachment>,
    attachments_seen: usize,
    out: Tnef,
}

impl Decoder {
    fn defect(&mut self, defect: String) {
        self.out.defects.push(defect);
    }

    fn attribute(&mut self, level: u8, id: u16, value: &[u8]) {
        match (level, id) {
            (_, attribute::OEM_CODEPAGE) => self.codepage = read_u32(value, 0),
            (_, attribute::ATTACH_RENDDATA) => {
                self.finish_attachment();
                self.current = Some(Attachment::default());
            }
            (2, attribute::ATTACH_TITLE) => {
                self.attachment().title = Some(trim_nuls(value).to_vec());
            }
            (2, attribute::ATTACH_DATA) => self.attachment().data = Some(value.to_vec()),
            (2, attribute::ATTACHMENT) => {
                for prop in self.properties(value, "attachment") {
                    self.attachment_property(prop);
                }
            }
            (1, attribute::BODY) => {
                let text = self.decode_8bit(trim_nuls(value));
                self.out.body.text.get_or_insert(text);
            }
            (1, attribute::MAPI_PROPS) => {
                for prop in self.properties(value, "message") {
                    self.message_property(prop);
                }
            }
            (1, attribute::SUBJECT) => {
                let subject = self.decode_8bit(trim_nuls(value));
                self.out.subject.get_or_insert(subject);
            }
            (1, attribute::MESSAGE_CLASS) => {
                let class = self.decode_8bit(trim_nuls(value));
                self.out.class.get_or_insert(class);
            }
            (_, id) if attribute::is_metadata(id) => {}
            (_, id) => self.defect(format!(
                "level {level} attribute {id:#06x} ({} bytes) not interpreted: skipped",
                value.len()
            )),
        }
    }

    /// The attachment under construction; attachment attributes before any
    /// attAttachRenddata still belong to one.
    fn attachment(&mut self) -> &mut Attachment {
        self.current.get_or_insert_with(Attachment::default)
    }

    fn properties<'a>(&mut self, value: &'a [u8], whose: &str) -> Vec<Property<'a>> {
        let (props, damage) = parse_properties(value);
        if let Some(damage) = damage {
            self.defect(format!(
                "{whose} MAPI properties: {damage}; the properties before it were kept"
            ));
        }
        props
    }

    fn attachment_property(&mut self, prop: Property<'_>) {
        let Some(&first) = prop.values.first() else {
            return;
        };
        let text = || match prop.kind {
            kind::STRING8 => Some(Text::Bytes(trim_nuls(first).to_vec())),
            kind::UNICODE => Some(Text::Unicode(decode_utf16(first))),
            _ => None,
        };
        let attachment = self.attachment();
        match prop.id {
            property::ATTACH_LONG_FILENAME => attachment.long_name = text(),
            property::ATTACH_FILENAME => attachment.short_name = text(),
            property::DISPLAY_NAME => attachment.display_name = text(),
            property::ATTACH_MIME_TAG => attachment.mime_type = text(),
            property::ATTACH_DATA_OBJ => match prop.kind {
                kind::BINARY => attachment.object = Some(first.to_vec()),
                kind::OBJECT => {
                    // An object value starts with the interface id of what
                    // it holds.
                    let (iid, object) = first.split_at(first.len().min(16));
                    attachment.object_is_message = iid == IID_IMESSAGE;
                    attachment.object = Some(object.to_vec());
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn message_property(&mut self, prop: Property<'_>) {
        let Some(&first) = prop.values.first() else {
            return;
        };
        match (prop.id, prop.kind) {
            (property::RTF_COMPRESSED, kind::BINARY) => match decompress_rtf(first) {
                Ok((rtf, defect)) => {
                    if let Some(defect) = defect {
                        self.defect(format!("compressed RTF body: {defect}"));
                    }
                    self.out.body.rtf = Some(rtf);
                }
                Err(damage) => {
                    self.defect(format!("compressed RTF body: {damage}; body dropped"));
                }
            },
            (property::HTML, kind::BINARY | kind::STRING8) => {
                // Only trailing NULs: the HTML may be in a charset with
                // NUL bytes inside.
                let end = first.len() - first.iter().rev().take_while(|&&b| b == 0).count();
                self.out.body.html = Some(first[..end].to_vec());
            }
            (property::BODY, kind::STRING8) => {
                let text = self.decode_8bit(trim_nuls(first));
                self.out.body.text = Some(text);
            }
            (property::BODY, kind::UNICODE) => self.out.body.text = Some(decode_utf16(first)),
            (property::SUBJECT, kind::STRING8) => {
                self.out.subject = Some(self.decode_8bit(trim_nuls(first)));
            }
            (property::SUBJECT, kind::UNICODE) => self.out.subject = Some(decode_utf16(first)),
            (property::MESSAGE_CLASS, kind::STRING8) => {
                self.out.class = Some(self.decode_8bit(trim_nuls(first)));
            }
            (property::MESSAGE_CLASS, kind::UNICODE) => {
                self.out.class = Some(decode_utf16(first));
            }
            _ => {}
        }
    }

    fn finish_attachment(&mut self) {
        let Some(attachment) = self.current.take() else {
            return;
        };
        self.attachments_seen += 1;
        let number = self.attachments_seen;
        let name = [
            &attachment.long_name,
            &attachment.short_name,
            &attachment.title.clone().map(Text::Bytes),
            &attachment.display_name,
        ]
        .into_iter()
        .flatten()
        .map(|text| self.text(text))
        .find(|name| !name.is_empty());
        let mime_type = attachment
            .mime_type
            .as_ref()
            .map(|text| self.text(text))
            .filter(|mime_type| !mime_type.is_empty());
        if attachment.object_is_message
            && let Some(object) = &attachment.object
            && self.embedded_item(object, number, name.as_deref())
        {
            return;
        }
        let data = match (attachment.data, attachment.object) {
            // attAttachData holds the file; the object property, when both
            // are present, is Outlook's copy of the same bytes.
            (Some(data), _) => data,
            (None, Some(object)) => object,
            (None, None) => {
                self.defect(format!("attachment {number} has no data; skipped"));
                return;
            }
        };
        let name = name.unwrap_or_else(|| {
            self.defect(format!(
                "attachment {number} has no file name; named attachment-{number}"
            ));
            format!("attachment-{number}")
        });
        self.out.files.push(TnefFile {
            name,
            data,
            mime_type,
            ..TnefFile::default()
        });
    }

    /// Keeps an embedded item (an attachment that is a message, task,
    /// appointment...) as a file of its own, its TNEF stream as sent, and
    /// puts its body and files after it; `false` when it must be kept as
    /// opaque bytes instead.
    fn embedded_item(&mut self, object: &[u8], number: usize, name: Option<&str>) -> bool {
        if self.depth >= MAX_DEPTH {
            self.defect(format!(
                "attachment {number} is a message nested deeper than {MAX_DEPTH}; \
                 kept undecoded"
            ));
            return false;
        }
        let inner = match decode_nested(object, self.depth + 1) {
            Ok(inner) => inner,
            Err(error) => {
                self.defect(format!(
                    "attachment {number} is an embedded message but {error}; kept undecoded"
                ));
                return false;
            }
        };
        let name = name
            .map(str::to_string)
            .or_else(|| inner.subject.clone())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("item-{number}"));
        let item = format!("{name}.tnef");
        self.out.files.push(TnefFile {
            name: item.clone(),
            data: object.to_vec(),
            mime_type: Some("application/vnd.ms-tnef".into()),
            within: Vec::new(),
            item_class: Some(inner.class.clone().unwrap_or_else(|| "IPM".into())),
        });
        let inside = |mut file: TnefFile| {
            file.within.insert(0, item.clone());
            file
        };
        for file in inner.body_files(&name) {
            self.out.files.push(inside(file));
        }
        for file in inner.files {
            self.out.files.push(inside(file));
        }
        for defect in inner.defects {
            self.defect(format!("embedded item {item:?}: {defect}"));
        }
        true
    }

    fn text(&self, text: &Text) -> String {
        match text {
            Text::Bytes(bytes) => self.decode_8bit(bytes),
            Text::Unicode(string) => string.clone(),
        }
    }

    /// 8-bit strings are in the sender's OEM codepage; without one, or
    /// with one encoding_rs lacks, Windows-1252 is the likeliest guess.
    fn decode_8bit(&self, bytes: &[u8]) -> String {
        let encoding = self
            .codepage
            .and_then(encoding_for_codepage)
            .unwrap_or(WINDOWS_1252);
        encoding.decode_without_bom_handling(bytes).0.into_owned()
    }
}

fn encoding_for_codepage(codepage: u32) -> Option<&'static Encoding> {
    let label = match codepage {
        65001 => "utf-8".to_owned(),
        1200 => "utf-16le".to_owned(),
        1201 => "utf-16be".to_owned(),
        874 | 1250..=1258 => format!("windows-{codepage}"),
        28591..=28606 => format!("iso-8859-{}", codepage - 28590),
        20127 => "us-ascii".to_owned(),
        866 => "ibm866".to_owned(),
        932 => "shift_jis".to_owned(),
        936 => "gbk".to_owned(),
        949 => "euc-kr".to_owned(),
        950 => "big5".to_owned(),
        10000 => "macintosh".to_owned(),
        10007 => "x-mac-cyrillic".to_owned(),
        20866 => "koi8-r".to_owned(),
        21866 => "koi8-u".to_owned(),
        50220..=50222 => "iso-2022-jp".to_owned(),
        51932 => "euc-jp".to_owned(),
        54936 => "gb18030".to_owned(),
        _ => return None,
    };
    Encoding::for_label(label.as_bytes())
}

fn trim_nuls(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

fn decode_utf16(bytes: &[u8]) -> String {
    let mut text = UTF_16LE.decode_without_bom_handling(bytes).0.into_owned();
    if let Some(nul) = text.find('\0') {
        text.truncate(nul);
    }
    text
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let field = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([field[0], field[1]]))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let field = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([field[0], field[1], field[2], field[3]]))
}

/// One MAPI property with its values (several for multi-valued ones).
#[derive(Debug)]
struct Property<'a> {
    id: u16,
    kind: u16,
    values: Vec<&'a [u8]>,
}

/// A bounds-checked reader over a MAPI property list.
#[derive(Debug)]
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn u32(&mut self) -> Result<u32, String> {
        let value = read_u32(self.bytes, self.pos)
            .ok_or_else(|| format!("ends inside a number at offset {}", self.pos))?;
        self.pos += 4;
        Ok(value)
    }

    fn u16(&mut self) -> Result<u16, String> {
        let value = read_u16(self.bytes, self.pos)
            .ok_or_else(|| format!("ends inside a number at offset {}", self.pos))?;
        self.pos += 2;
        Ok(value)
    }

    /// `length` bytes, then the padding to a four-byte boundary.
    fn padded(&mut self, length: u32) -> Result<&'a [u8], String> {
        let left = self.bytes.len() - self.pos;
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        if length > left {
            return Err(format!(
                "a value at offset {} declares {length} bytes but only {left} remain",
                self.pos
            ));
        }
        let value = &self.bytes[self.pos..self.pos + length];
        // Trailing padding may be missing at the very end; that is harmless.
        self.pos = (self.pos + length.next_multiple_of(4)).min(self.bytes.len());
        Ok(value)
    }
}

/// Parses a MAPI property list; on damage, returns the properties before
/// it and what was wrong. Every value takes at least four bytes, so counts
/// from the data cannot make this loop longer than the data.
fn parse_properties(bytes: &[u8]) -> (Vec<Property<'_>>, Option<String>) {
    let mut props = Vec::new();
    let mut cursor = Cursor { bytes, pos: 0 };
    let result = (|| -> Result<(), String> {
        let count = cursor.u32()?;
        for _ in 0..count {
            let kind_field = cursor.u16()?;
            let id = cursor.u16()?;
            if id >= 0x8000 {
                // Named property: a GUID and a number or a name, which
                // nothing here needs.
                cursor.padded(16)?;
                match cursor.u32()? {
                    0 => {
                        cursor.u32()?;
                    }
                    1 => {
                        let length = cursor.u32()?;
                        cursor.padded(length)?;
                    }
                    other => return Err(format!("unknown property name kind {other}")),
                }
            }
            let multiple = kind_field & kind::MULTIPLE != 0;
            let kind = kind_field & !kind::MULTIPLE;
            let variable = matches!(
                kind,
                kind::STRING8 | kind::UNICODE | kind::BINARY | kind::OBJECT
            );
            let size = match kind {
                _ if variable => 0,
                0x0000
                | 0x0001
                | kind::SHORT
                | kind::LONG
                | kind::FLOAT
                | kind::ERROR
                | kind::BOOLEAN => 4,
                kind::DOUBLE | kind::CURRENCY | kind::APPTIME | kind::I8 | kind::SYSTIME => 8,
                kind::CLSID => 16,
                other => {
                    return Err(format!("property {id:#06x} has unknown type {other:#06x}"));
                }
            };
            // Variable-length values carry a count even when single.
            let count = if multiple || variable {
                cursor.u32()?
            } else {
                1
            };
            let mut values = Vec::new();
            for _ in 0..count {
                let length = if variable { cursor.u32()? } else { size };
                values.push(cursor.padded(length)?);
            }
            props.push(Property { id, kind, values });
        }
        Ok(())
    })();
    (props, result.err())
}

/// The dictionary compressed RTF starts from (MS-OXRTFCP 2.1.2.1).
const RTF_PREBUILT: &[u8] =
    b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \
\\fswiss \\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier\
{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx";

const RTF_COMPRESSED: u32 = 0x7546_5A4C; // "LZFu"
const RTF_UNCOMPRESSED: u32 = 0x414C_454D; // "MELA"

/// Decompresses `PR_RTF_COMPRESSED` (MS-OXRTFCP). Returns the RTF and a
/// defect when it had to tolerate something, or why it gave up.
fn decompress_rtf(bytes: &[u8]) -> Result<(Vec<u8>, Option<String>), String> {
    let header = (
        read_u32(bytes, 0),
        read_u32(bytes, 4),
        read_u32(bytes, 8),
        read_u32(bytes, 12),
    );
    let (Some(compressed_size), Some(raw_size), Some(kind), Some(crc)) = header else {
        return Err("shorter than its 16-byte header".to_owned());
    };
    let body = &bytes[16..];
    let mut defect = None;
    // The size field counts from after itself: the rest of the header
    // plus the data.
    let declared = usize::try_from(compressed_size)
        .unwrap_or(usize::MAX)
        .saturating_sub(12);
    let body = if declared < body.len() {
        &body[..declared]
    } else {
        if declared > body.len() {
            defect = Some(format!(
                "declares {declared} bytes of data but has {}",
                body.len()
            ));
        }
        body
    };
    let raw_size = usize::try_from(raw_size).unwrap_or(usize::MAX);
    match kind {
        RTF_UNCOMPRESSED => Ok((body[..raw_size.min(body.len())].to_vec(), defect)),
        RTF_COMPRESSED => {
            if crc32(body) != crc && defect.is_none() {
                defect = Some("CRC mismatch; decompressed anyway".to_owned());
            }
            let rtf = decompress_lzfu(body, raw_size);
            if rtf.len() != raw_size && defect.is_none() {
                defect = Some(format!(
                    "decompressed to {} bytes, header says {raw_size}",
                    rtf.len()
                ));
            }
            Ok((rtf, defect))
        }
        other => Err(format!("unknown compression type {other:#010x}")),
    }
}

/// The LZ77 variant of MS-OXRTFCP: a 4 KiB ring dictionary preloaded with
/// [`RTF_PREBUILT`], control bytes whose bits (low first) say literal or
/// 12-bit offset + 4-bit length reference; a reference to the write
/// position ends the data.
fn decompress_lzfu(body: &[u8], raw_size: usize) -> Vec<u8> {
    let mut dictionary = [0u8; 4096];
    dictionary[..RTF_PREBUILT.len()].copy_from_slice(RTF_PREBUILT);
    let mut write = RTF_PREBUILT.len();
    // The declared size is only a hint: never reserve more than the input
    // could expand to (each bit yields at most 17 bytes).
    let mut out = Vec::with_capacity(raw_size.min(body.len().saturating_mul(17)));
    let mut pos = 0;
    'control: while let Some(&control) = body.get(pos) {
        pos += 1;
        for bit in 0..8 {
            if control & (1 << bit) == 0 {
                let Some(&literal) = body.get(pos) else {
                    break 'control;
                };
                pos += 1;
                out.push(literal);
                dictionary[write] = literal;
                write = (write + 1) % dictionary.len();
            } else {
                let Some(reference) = read_u16(body, pos).map(u16::swap_bytes) else {
                    break 'control;
                };
                pos += 2;
                let offset = usize::from(reference >> 4);
                let length = usize::from(reference & 0xF) + 2;
                if offset == write {
                    break 'control;
                }
                for i in 0..length {
                    let byte = dictionary[(offset + i) % dictionary.len()];
                    out.push(byte);
                    dictionary[write] = byte;
                    write = (write + 1) % dictionary.len();
                }
            }
        }
    }
    out
}

/// CRC-32 as MS-OXRTFCP uses it: the usual polynomial, but starting from
/// zero and with no final inversion.
fn crc32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0u32, |mut crc, &b| {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
        crc
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes TNEF streams for the tests, checksums included.
    struct Stream(Vec<u8>);

    impl Stream {
        fn new() -> Self {
            let mut bytes = SIGNATURE.to_le_bytes().to_vec();
            bytes.extend_from_slice(&0x0102u16.to_le_bytes());
            Stream(bytes)
        }

        fn attribute(mut self, level: u8, id: u32, data: &[u8]) -> Self {
            self.0.push(level);
            self.0.extend_from_slice(&id.to_le_bytes());
            self.0.extend_from_slice(&(data.len() as u32).to_le_bytes());
            self.0.extend_from_slice(data);
            self.0.extend_from_slice(&checksum_of(data).to_le_bytes());
            self
        }

        fn codepage(self, codepage: u32) -> Self {
            let mut data = codepage.to_le_bytes().to_vec();
            data.extend_from_slice(&[0; 4]);
            self.attribute(1, 0x0006_9007, &data)
        }

        fn start_attachment(self) -> Self {
            self.attribute(
                2,
                0x0006_9002,
                &[1, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0],
            )
        }

        fn title(self, title: &[u8]) -> Self {
            let mut data = title.to_vec();
            data.push(0);
            self.attribute(2, 0x0001_8010, &data)
        }

        fn data(self, data: &[u8]) -> Self {
            self.attribute(2, 0x0006_800F, data)
        }

        fn properties(self, level: u8, props: &[(u16, u16, &[u8])]) -> Self {
            let id = if level == 1 { 0x0006_9003 } else { 0x0006_9005 };
            self.attribute(level, id, &property_list(props))
        }
    }

    /// A MAPI property list of single-valued (type, id, value) properties.
    fn property_list(props: &[(u16, u16, &[u8])]) -> Vec<u8> {
        let mut out = (props.len() as u32).to_le_bytes().to_vec();
        for &(kind, id, value) in props {
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&id.to_le_bytes());
            if matches!(
                kind,
                kind::STRING8 | kind::UNICODE | kind::BINARY | kind::OBJECT
            ) {
                out.extend_from_slice(&1u32.to_le_bytes());
                out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            }
            out.extend_from_slice(value);
            out.resize(out.len().next_multiple_of(4), 0);
        }
        out
    }

    fn utf16(text: &str) -> Vec<u8> {
        text.encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect()
    }

    fn names(tnef: &Tnef) -> Vec<&str> {
        tnef.files.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn recognises_the_signature() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let cases: &[(&[u8], bool)] = &[
            (b"\x78\x9f\x3e\x22\x01\x00", true),
            (b"\x78\x9f\x3e\x22", true),
            (b"\x22\x3e\x9f\x78\x01\x00", false),
            (png, false),
            (b"", false),
            (b"\x78\x9f\x3e", false),
        ];
        for (data, expected) in cases {
            assert_eq!(is_tnef(data), *expected, "{data:?}");
        }
        assert_eq!(decode(png), Err(TnefError::NotTnef));
        assert_eq!(
            decode(b"\x78\x9f\x3e\x22\x01"),
            Err(TnefError::TruncatedHeader)
        );
        assert!(
            decode(b"\x78\x9f\x3e\x22\x01\x00")
                .unwrap()
                .files
                .is_empty()
        );
    }

    #[test]
    fn file_names_by_preference() {
        let long8 = (
            kind::STRING8,
            property::ATTACH_LONG_FILENAME,
            &b"Long name.pdf\0"[..],
        );
        let long16 = utf16("Długa nazwa.pdf");
        let long16 = (kind::UNICODE, property::ATTACH_LONG_FILENAME, &long16[..]);
        let short = (
            kind::STRING8,
            property::ATTACH_FILENAME,
            &b"LONGNA~1.PDF\0"[..],
        );
        let display = (kind::STRING8, property::DISPLAY_NAME, &b"Shown name\0"[..]);
        let mime = (
            kind::STRING8,
            property::ATTACH_MIME_TAG,
            &b"application/pdf\0"[..],
        );
        // (case, 8.3 title, properties, expected name, expected defects)
        type Case<'a> = (
            &'a str,
            Option<&'a [u8]>,
            Vec<(u16, u16, &'a [u8])>,
            &'a str,
            usize,
        );
        let cases: Vec<Case> = vec![
            ("title only", Some(b"REPORT.PDF"), vec![], "REPORT.PDF", 0),
            (
                "long string8",
                Some(b"LONGNA~1.PDF"),
                vec![short, long8, mime],
                "Long name.pdf",
                0,
            ),
            (
                "long unicode",
                Some(b"DUGANA~1.PDF"),
                vec![long16, mime],
                "Długa nazwa.pdf",
                0,
            ),
            (
                "short name property",
                None,
                vec![short, display],
                "LONGNA~1.PDF",
                0,
            ),
            ("display name", None, vec![display], "Shown name", 0),
            ("no name", None, vec![], "attachment-1", 1),
        ];
        for (case, title, props, name, defects) in cases {
            let mut stream = Stream::new().start_attachment();
            if let Some(title) = title {
                stream = stream.title(title);
            }
            let stream = stream.data(b"%PDF-1.4").properties(2, &props);
            let tnef = decode(&stream.0).unwrap();
            assert_eq!(names(&tnef), [name], "{case}");
            assert_eq!(tnef.files[0].data, b"%PDF-1.4", "{case}");
            assert_eq!(tnef.defects.len(), defects, "{case}: {:?}", tnef.defects);
            let has_mime = props.iter().any(|p| p.1 == property::ATTACH_MIME_TAG);
            assert_eq!(
                tnef.files[0].mime_type.as_deref(),
                has_mime.then_some("application/pdf"),
                "{case}"
            );
        }
    }

    #[test]
    fn titles_follow_the_oem_codepage() {
        // (codepage, title bytes, expected name)
        let cases: &[(Option<u32>, &[u8], &str)] = &[
            (None, b"CAF\xc9.TXT", "CAFÉ.TXT"),
            (Some(1252), b"CAF\xc9.TXT", "CAFÉ.TXT"),
            (Some(1251), b"\xc4\xce\xca.TXT", "ДОК.TXT"),
            (Some(932), b"\x83\x65\x83\x58\x83\x67.TXT", "テスト.TXT"),
            (Some(437), b"PLAIN.TXT", "PLAIN.TXT"),
        ];
        for (codepage, title, name) in cases {
            let mut stream = Stream::new();
            if let Some(codepage) = codepage {
                stream = stream.codepage(*codepage);
            }
            let stream = stream.start_attachment().title(title).data(b"x");
            assert_eq!(names(&decode(&stream.0).unwrap()), [*name], "{codepage:?}");
        }
    }

    #[test]
    fn damage_becomes_defects() {
        let good = Stream::new()
            .start_attachment()
            .title(b"A.TXT")
            .data(b"first");
        let with_second = |tail: &[u8]| {
            let mut bytes = Stream::new()
                .start_attachment()
                .title(b"A.TXT")
                .data(b"first")
                .start_attachment()
                .title(b"B.TXT")
                .0;
            bytes.extend_from_slice(tail);
            bytes
        };
        let mut bad_checksum = good.0.clone();
        *bad_checksum.last_mut().unwrap() ^= 0xff;
        let mut missing_checksum = good.0.clone();
        missing_checksum.truncate(missing_checksum.len() - 2);
        let mut trailing_garbage = good.0.clone();
        trailing_garbage.extend_from_slice(b"\0\0\0garbage after the stream");
        let mut short_garbage = good.0.clone();
        short_garbage.extend_from_slice(b"\x01\x02");
        // A data attribute claiming 4 GiB with a few bytes behind it.
        let bogus_length = with_second(b"\x02\x0f\x80\x06\x00\xff\xff\xff\xffabc");
        let truncated = with_second(b"\x02\x0f\x80\x06\x00\x10\x00\x00\x00abc");
        let mut broken_props = good.0.clone();
        let mut props =
            property_list(&[(kind::STRING8, property::ATTACH_LONG_FILENAME, b"kept.txt\0")]);
        props[0] = 2; // claims a second property that is not there
        broken_props = Stream(broken_props).attribute(2, 0x0006_9005, &props).0;
        // (case, stream, expected names, expected data of the first file, defects)
        type Case<'a> = (&'a str, Vec<u8>, &'a [&'a str], &'a [u8], usize);
        let cases: Vec<Case> = vec![
            ("clean", good.0.clone(), &["A.TXT"], b"first", 0),
            ("bad checksum", bad_checksum, &["A.TXT"], b"first", 1),
            (
                "missing checksum",
                missing_checksum,
                &["A.TXT"],
                b"first",
                1,
            ),
            (
                "trailing garbage",
                trailing_garbage,
                &["A.TXT"],
                b"first",
                1,
            ),
            (
                "short trailing garbage",
                short_garbage,
                &["A.TXT"],
                b"first",
                1,
            ),
            // The second attachment has no data: one defect for the cut,
            // one for the empty attachment.
            ("bogus length", bogus_length, &["A.TXT"], b"first", 2),
            ("truncated data", truncated, &["A.TXT"], b"first", 2),
            (
                "broken property list",
                broken_props,
                &["kept.txt"],
                b"first",
                1,
            ),
        ];
        for (case, stream, expected_names, first, defects) in cases {
            let tnef = decode(&stream).unwrap();
            assert_eq!(names(&tnef), expected_names, "{case}");
            assert_eq!(tnef.files[0].data, first, "{case}");
            assert_eq!(tnef.defects.len(), defects, "{case}: {:?}", tnef.defects);
        }
    }

    #[test]
    fn data_before_the_renddata_still_counts() {
        let stream = Stream::new().title(b"EARLY.TXT").data(b"early");
        let tnef = decode(&stream.0).unwrap();
        assert_eq!(names(&tnef), ["EARLY.TXT"]);
    }

    #[test]
    fn embedded_objects() {
        let inner = Stream::new()
            .start_attachment()
            .title(b"INNER.PDF")
            .data(b"%PDF inner")
            .0;
        let mut message_object = IID_IMESSAGE.to_vec();
        message_object.extend_from_slice(&inner);
        let mut broken_message = IID_IMESSAGE.to_vec();
        broken_message.extend_from_slice(b"not tnef");
        let iid_istorage = [0x0B, 0, 0, 0, 0, 0, 0, 0, 0xC0, 0, 0, 0, 0, 0, 0, 0x46];
        let mut ole_object = iid_istorage.to_vec();
        ole_object.extend_from_slice(b"\xd0\xcf\x11\xe0 compound file");
        // (case, object value, expected (name, data), defects)
        type Case<'a> = (&'a str, Vec<u8>, Vec<(&'a str, &'a [u8])>, usize);
        let cases: Vec<Case> = vec![
            (
                "embedded message: the item's own file, then what it holds",
                message_object,
                vec![("Outer.tnef", &inner), ("INNER.PDF", b"%PDF inner")],
                0,
            ),
            (
                "broken message",
                broken_message,
                vec![("Outer", b"not tnef")],
                1,
            ),
            (
                "OLE object",
                ole_object,
                vec![("Outer", b"\xd0\xcf\x11\xe0 compound file")],
                0,
            ),
        ];
        for (case, object, expected, defects) in cases {
            let stream = Stream::new().start_attachment().properties(
                2,
                &[
                    (kind::STRING8, property::DISPLAY_NAME, b"Outer\0"),
                    (kind::OBJECT, property::ATTACH_DATA_OBJ, &object),
                ],
            );
            let tnef = decode(&stream.0).unwrap();
            let files: Vec<_> = tnef
                .files
                .iter()
                .map(|f| (f.name.as_str(), f.data.as_slice()))
                .collect();
            assert_eq!(files, expected, "{case}");
            assert_eq!(tnef.defects.len(), defects, "{case}: {:?}", tnef.defects);
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let mut stream = Stream::new()
            .start_attachment()
            .title(b"DEEP.TXT")
            .data(b"deep")
            .0;
        for _ in 0..MAX_DEPTH + 2 {
            let mut object = IID_IMESSAGE.to_vec();
            object.extend_from_slice(&stream);
            stream = Stream::new()
                .start_attachment()
                .properties(2, &[(kind::OBJECT, property::ATTACH_DATA_OBJ, &object)])
                .0;
        }
        let tnef = decode(&stream).unwrap();
        // One file per item down to the limit, then the item too deep,
        // kept as its stream under a made-up name.
        assert_eq!(tnef.files.len(), MAX_DEPTH + 1);
        assert_eq!(tnef.defects.len(), 2, "{:?}", tnef.defects);
        let deepest = tnef.files.last().unwrap();
        assert!(is_tnef(&deepest.data));
        assert_eq!(deepest.within.len(), MAX_DEPTH);
        assert!(
            tnef.files[..MAX_DEPTH]
                .iter()
                .all(|f| f.item_class.is_some())
        );
    }

    /// An embedded task: its own file (the item's stream), its body and
    /// its attachment beside it, each saying which item it was inside;
    /// the class and subject come from the item's attributes.
    #[test]
    fn embedded_items_are_files_with_their_contents_beside_them() {
        let task = Stream::new()
            .attribute(1, 0x0007_8008, b"IPM.Task\0")
            .attribute(1, 0x0001_8004, b"Send the figures\0")
            .attribute(1, 0x0002_800C, b"Due on Friday.\0")
            .start_attachment()
            .title(b"FIGURES.CSV")
            .data(b"q,total\n1,10\n")
            .0;
        let mut object = IID_IMESSAGE.to_vec();
        object.extend_from_slice(&task);
        let stream = Stream::new()
            .start_attachment()
            .title(b"REPORT.TXT")
            .data(b"report")
            .start_attachment()
            .properties(2, &[(kind::OBJECT, property::ATTACH_DATA_OBJ, &object)])
            .0;
        let tnef = decode(&stream).unwrap();
        let got: Vec<_> = tnef
            .files
            .iter()
            .map(|f| (f.name.as_str(), f.within.clone(), f.item_class.as_deref()))
            .collect();
        let item = "Send the figures.tnef".to_string();
        assert_eq!(
            got,
            [
                ("REPORT.TXT", vec![], None),
                ("Send the figures.tnef", vec![], Some("IPM.Task")),
                ("Send the figures-body.txt", vec![item.clone()], None),
                ("FIGURES.CSV", vec![item], None),
            ]
        );
        assert_eq!(tnef.files[1].data, task);
        assert_eq!(tnef.files[2].data, b"Due on Friday.");
        assert!(tnef.defects.is_empty(), "{:?}", tnef.defects);
        // An attribute nobody knows is reported, not dropped in silence.
        let odd = Stream::new().attribute(1, 0x0006_8777, b"mystery").0;
        let tnef = decode(&odd).unwrap();
        assert_eq!(tnef.defects.len(), 1, "{:?}", tnef.defects);
    }

    #[test]
    fn message_bodies() {
        // MS-OXRTFCP's own example of a compressed RTF body.
        let compressed: &[u8] = b"\x2d\x00\x00\x00\x2b\x00\x00\x00\x4c\x5a\x46\x75\xf1\xc5\xc7\xa7\
            \x03\x00\x0a\x00\x72\x63\x70\x67\x31\x32\x35\x42\x32\x0a\xf3\x20\x68\x65\x6c\x09\x00\
            \x20\x62\x77\x05\xb0\x6c\x64\x7d\x0a\x80\x0f\xa0";
        let mut uncompressed = Vec::new();
        for field in [17u32 + 12, 17, RTF_UNCOMPRESSED, 0] {
            uncompressed.extend_from_slice(&field.to_le_bytes());
        }
        uncompressed.extend_from_slice(b"{\\rtf1 plain}\r\n\0\0");
        let stream = |props: &[(u16, u16, &[u8])]| {
            Stream::new()
                .attribute(1, 0x0002_800C, b"plain text\0")
                .properties(1, props)
                .0
        };
        // (case, properties, expected body, defects)
        let cases: Vec<(&str, Vec<u8>, TnefBody, usize)> = vec![
            (
                "compressed rtf",
                stream(&[(kind::BINARY, property::RTF_COMPRESSED, compressed)]),
                TnefBody {
                    text: Some("plain text".into()),
                    html: None,
                    rtf: Some(b"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n".to_vec()),
                },
                0,
            ),
            (
                "uncompressed rtf",
                stream(&[(kind::BINARY, property::RTF_COMPRESSED, &uncompressed)]),
                TnefBody {
                    text: Some("plain text".into()),
                    html: None,
                    rtf: Some(b"{\\rtf1 plain}\r\n\0\0".to_vec()),
                },
                0,
            ),
            (
                "html",
                stream(&[(kind::BINARY, property::HTML, b"<p>hi</p>\0")]),
                TnefBody {
                    text: Some("plain text".into()),
                    html: Some(b"<p>hi</p>".to_vec()),
                    rtf: None,
                },
                0,
            ),
            (
                "unknown rtf compression",
                stream(&[(kind::BINARY, property::RTF_COMPRESSED, &[0u8; 20])]),
                TnefBody {
                    text: Some("plain text".into()),
                    html: None,
                    rtf: None,
                },
                1,
            ),
        ];
        for (case, stream, body, defects) in cases {
            let tnef = decode(&stream).unwrap();
            assert_eq!(tnef.body, body, "{case}");
            assert_eq!(tnef.defects.len(), defects, "{case}: {:?}", tnef.defects);
        }
    }

    /// A file of the corpora; only called once [`crate::test_corpora::root`]
    /// said they are there.
    fn corpus(path: &str) -> Vec<u8> {
        let file = crate::test_corpora::path(path).expect("the corpora");
        std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
    }

    /// Every stream of tnef-verdammelt, against the `.list` of files the
    /// `tnef` tool extracts and its baselines of their bytes.
    ///
    /// Differences, on purpose:
    /// - MAPI_OBJECT: `tnef` writes the OLE object with the 16-byte
    ///   IID_IStorage in front; we drop it, so the file is the OLE compound
    ///   document itself (starting D0 CF 11 E0) that Office opens.
    /// - long-filename and missing-filenames: their `.list` names only the
    ///   RTF body, but the streams carry files with data (and, for
    ///   missing-filenames, baselines of their bytes exist); we extract them.
    #[test]
    fn tnef_verdammelt_streams() {
        let Some(corpora) = crate::test_corpora::root() else {
            return;
        };
        let base = "tnef-verdammelt/tests/files";
        // (stream, [(file name, baseline, bytes to skip at its start)], body baseline)
        type Case<'a> = (
            &'a str,
            &'a [(&'a str, Option<&'a str>, usize)],
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            (
                "MAPI_ATTACH_DATA_OBJ",
                &[
                    ("VIA_Nytt_1402.doc", Some("VIA_Nytt_1402.doc"), 0),
                    ("VIA_Nytt_1402.pdf", Some("VIA_Nytt_1402.pdf"), 0),
                    ("VIA_Nytt_14021.htm", Some("VIA_Nytt_14021.htm"), 0),
                ],
                Some("MAPI_ATTACH_DATA_OBJ-body.rtf"),
            ),
            (
                "MAPI_OBJECT",
                &[("Untitled_Attachment", Some("Untitled_Attachment"), 16)],
                Some("MAPI_OBJECT-body.rtf"),
            ),
            ("body", &[], Some("body-body.html")),
            (
                "data-before-name",
                &[
                    ("AUTOEXEC.BAT", Some("AUTOEXEC.BAT"), 0),
                    ("CONFIG.SYS", Some("CONFIG.SYS"), 0),
                    ("boot.ini", Some("boot.ini"), 0),
                ],
                Some("data-before-name-body.rtf"),
            ),
            ("garbage-at-end", &[], None),
            (
                "long-filename",
                &[("allproductsmar2000.dat", None, 0)],
                Some("long-filename-body.rtf"),
            ),
            (
                "missing-filenames",
                &[
                    ("generpts.src", Some("generpts.src"), 0),
                    ("TechlibDEC99.doc", Some("TechlibDEC99.doc"), 0),
                    ("TechlibDEC99-JAN00.doc", Some("TechlibDEC99-JAN00.doc"), 0),
                    ("TechlibNOV99.doc", Some("TechlibNOV99.doc"), 0),
                ],
                Some("missing-filenames-body.rtf"),
            ),
            ("multi-name-property", &[], None),
            (
                "multi-value-attribute",
                &[(
                    "208225__5_seconds__Voice_Mail.mp3",
                    Some("208225__5_seconds__Voice_Mail.mp3"),
                    0,
                )],
                Some("multi-value-attribute-body.rtf"),
            ),
            ("one-file", &[("AUTHORS", Some("AUTHORS"), 0)], None),
            ("rtf", &[], Some("rtf-body.rtf")),
            ("triples", &[], Some("triples-body.rtf")),
            (
                "two-files",
                &[
                    ("AUTHORS", Some("AUTHORS"), 0),
                    ("README", Some("README"), 0),
                ],
                None,
            ),
            (
                "unicode-mapi-attr-name",
                &[
                    ("spaconsole2.cfg", Some("spaconsole2.cfg"), 0),
                    ("image001.png", Some("image001.png"), 0),
                    ("image002.png", Some("image002.png"), 0),
                    ("image003.png", Some("image003.png"), 0),
                ],
                None,
            ),
            (
                "unicode-mapi-attr",
                &[("example.dat", Some("example.dat"), 0)],
                None,
            ),
        ];
        let streams = std::fs::read_dir(corpora.join(base).join("datafiles"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("tnef".as_ref()))
            .count();
        assert_eq!(
            streams,
            cases.len(),
            "a stream of the corpus has no case here"
        );
        for (stream, files, body) in cases {
            let tnef = decode(&corpus(&format!("{base}/datafiles/{stream}.tnef"))).unwrap();
            let expected_names: Vec<&str> = files.iter().map(|f| f.0).collect();
            assert_eq!(names(&tnef), expected_names, "{stream}");
            for (file, (name, baseline, skip)) in tnef.files.iter().zip(files.iter()) {
                if let Some(baseline) = baseline {
                    let expected = corpus(&format!("{base}/baselines/{baseline}.baseline"));
                    assert!(file.data == expected[*skip..], "{stream}: {name} differs");
                }
            }
            if let Some(body) = body {
                let expected = corpus(&format!("{base}/baselines/{body}.baseline"));
                let actual = if body.ends_with(".html") {
                    &tnef.body.html
                } else {
                    &tnef.body.rtf
                };
                assert!(
                    actual.as_deref() == Some(&expected[..]),
                    "{stream}: body differs"
                );
            }
            let expected_defects = usize::from(*stream == "garbage-at-end");
            assert_eq!(
                tnef.defects.len(),
                expected_defects,
                "{stream}: {:?}",
                tnef.defects
            );
        }
    }

    /// roundcube's raw TNEF streams. Its test reports the HTML body of
    /// body.tnef as 5,360 bytes: that is the stored value padded to four
    /// bytes; the value itself, which we return, is 5,358 bytes.
    #[test]
    fn roundcube_streams() {
        let Some(_) = crate::test_corpora::root() else {
            return;
        };
        let body = decode(&corpus("roundcube/tests/src/body.tnef")).unwrap();
        assert!(body.files.is_empty());
        let html = body.body.html.unwrap();
        assert_eq!(html.len(), 5358);
        assert!(html.starts_with(b"<!DOCTYPE HTML"));

        let one = decode(&corpus("roundcube/tests/src/one-file.tnef")).unwrap();
        assert_eq!(names(&one), ["AUTHORS"]);
        assert_eq!(one.files[0].data.len(), 244);
        assert!(one.files[0].data.windows(11).any(|w| w == b" Authors of"));

        let winmail = decode(&corpus("roundcube/tests/src/winmail-10193.tnef")).unwrap();
        assert_eq!(names(&winmail), ["image.png", "image.png", "image.png"]);
        for file in &winmail.files {
            assert!(file.data.starts_with(b"\x89PNG\r\n\x1a\n"));
            assert_eq!(file.mime_type.as_deref(), Some("image/png"));
        }
        assert!(winmail.defects.is_empty(), "{:?}", winmail.defects);
    }

    #[test]
    fn a_png_named_winmail_dat_is_not_tnef() {
        let Some(_) = crate::test_corpora::root() else {
            return;
        };
        let fake = corpus("zbateson-mail-mime-parser/tests/_data/emails/files/winmail.dat");
        assert!(!is_tnef(&fake));
        assert_eq!(decode(&fake), Err(TnefError::NotTnef));
    }

    /// Every prefix and many single-byte corruptions of real streams
    /// decode without panicking.
    #[test]
    fn damaged_corpus_streams_never_panic() {
        let Some(_) = crate::test_corpora::root() else {
            return;
        };
        for stream in ["one-file", "unicode-mapi-attr", "rtf", "triples"] {
            let data = corpus(&format!(
                "tnef-verdammelt/tests/files/datafiles/{stream}.tnef"
            ));
            for cut in 0..data.len() {
                let _ = decode(&data[..cut]);
            }
            for at in (6..data.len()).step_by(3) {
                for value in [0x00, 0xff, 0x7f, 0x80] {
                    let mut damaged = data.clone();
                    damaged[at] = value;
                    let _ = decode(&damaged);
                }
            }
        }
    }
}
