//! The real type of a part from its first bytes (a PDF declared as
//! `application/octet-stream` is still a PDF), and a file extension for a
//! type.
//!
//! It does not look deeper than the first few kilobytes, and never runs
//! or opens anything.

/// The type the magic bytes say, when they say one.
pub fn sniff(data: &[u8]) -> Option<&'static str> {
    let starts = |m: &[u8]| data.starts_with(m);
    let t = if starts(b"%PDF-") {
        "application/pdf"
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if starts(b"\xFF\xD8\xFF") {
        "image/jpeg"
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        "image/gif"
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        "image/tiff"
    } else if starts(b"RIFF") && data.get(8..12) == Some(b"WEBP") {
        "image/webp"
    } else if starts(b"RIFF") && data.get(8..12) == Some(b"WAVE") {
        "audio/wav"
    } else if starts(b"PK\x03\x04") {
        zip_kind(data)
    } else if starts(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        "application/x-ole-storage"
    } else if starts(b"\x78\x9F\x3E\x22") {
        "application/ms-tnef"
    } else if starts(b"%!PS") {
        "application/postscript"
    } else if starts(b"\x1F\x8B") {
        "application/gzip"
    } else if starts(b"BZh") && data.get(3).is_some_and(u8::is_ascii_digit) {
        "application/x-bzip2"
    } else if starts(b"\xFD7zXZ\0") {
        "application/x-xz"
    } else if starts(b"OggS") {
        "audio/ogg"
    } else if starts(b"ID3") {
        "audio/mpeg"
    } else if data.len() > 12 && data.get(4..8) == Some(b"ftyp") {
        "video/mp4"
    } else if starts(b"Rar!\x1A\x07") {
        "application/vnd.rar"
    } else if starts(b"7z\xBC\xAF\x27\x1C") {
        "application/x-7z-compressed"
    } else if starts(b"{\\rtf") {
        "application/rtf"
    } else if starts(b"BEGIN:VCALENDAR") {
        "text/calendar"
    } else if starts(b"BEGIN:VCARD") {
        "text/vcard"
    } else {
        return None;
    };
    Some(t)
}

/// Office Open XML and OpenDocument files are ZIP archives; tell them
/// apart by the names near the start.
fn zip_kind(data: &[u8]) -> &'static str {
    let head = &data[..data.len().min(4096)];
    let has = |needle: &[u8]| memchr::memmem::find(head, needle).is_some();
    if has(b"word/") {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    } else if has(b"xl/") {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    } else if has(b"ppt/") {
        "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    } else if has(b"mimetypeapplication/vnd.oasis.opendocument.text") {
        "application/vnd.oasis.opendocument.text"
    } else {
        "application/zip"
    }
}

/// True for declared types that say nothing about the content.
pub fn is_generic(content_type: &str) -> bool {
    matches!(
        content_type,
        "application/octet-stream"
            | "application/unknown"
            | "application/x-unknown"
            | "application/binary"
            | "application/force-download"
            | "application/x-download"
            | "binary/octet-stream"
            | "unknown/unknown"
    )
}

/// A file extension (without the dot) for a content type.
pub fn extension_for(content_type: &str) -> &'static str {
    match content_type {
        "text/plain" => "txt",
        "text/html" => "html",
        "text/calendar" => "ics",
        "text/vcard" | "text/x-vcard" => "vcf",
        "text/csv" => "csv",
        "text/xml" | "application/xml" => "xml",
        "message/rfc822" | "message/global" => "eml",
        "application/pdf" => "pdf",
        "image/png" => "png",
        "image/jpeg" | "image/jpg" | "image/pjpeg" => "jpg",
        "image/gif" => "gif",
        "image/tiff" => "tif",
        "image/webp" => "webp",
        "image/svg+xml" => "svg",
        "audio/wav" => "wav",
        "application/zip" => "zip",
        "application/gzip" => "gz",
        "application/msword" => "doc",
        "application/vnd.ms-excel" => "xls",
        "application/x-ole-storage" => "ole",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => "pptx",
        "application/vnd.oasis.opendocument.text" => "odt",
        "application/ms-tnef" | "application/vnd.ms-tnef" => "dat",
        "application/postscript" => "ps",
        "application/rtf" | "text/rtf" => "rtf",
        "application/pgp-signature" => "asc",
        "application/pkcs7-signature" | "application/x-pkcs7-signature" => "p7s",
        "application/vnd.rar" => "rar",
        "application/x-7z-compressed" => "7z",
        "text/rfc822-headers" => "txt",
        "message/delivery-status" => "txt",
        t if is_generic(t) => "bin",
        _ => mime_guess::get_mime_extensions_str(content_type)
            .and_then(|exts| exts.first().copied())
            .unwrap_or(if content_type.starts_with("text/") {
                "txt"
            } else {
                "bin"
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic() {
        let cases: [(&[u8], Option<&str>); 6] = [
            (b"%PDF-1.4\n", Some("application/pdf")),
            (b"\x89PNG\r\n\x1a\n....", Some("image/png")),
            (b"\xFF\xD8\xFF\xE0", Some("image/jpeg")),
            (
                b"PK\x03\x04....word/document.xml",
                Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            ),
            (b"PK\x03\x04....", Some("application/zip")),
            (b"hello", None),
        ];
        for (data, want) in cases {
            assert_eq!(sniff(data), want);
        }
    }

    #[test]
    fn extensions() {
        let cases = [
            ("application/pdf", "pdf"),
            ("image/jpeg", "jpg"),
            ("text/plain", "txt"),
            ("text/x-unheard-of", "txt"),
            ("application/x-unheard-of", "bin"),
            ("application/octet-stream", "bin"),
        ];
        for (t, want) in cases {
            assert_eq!(extension_for(t), want, "{t}");
        }
    }
}
