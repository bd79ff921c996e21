//! mail-parser as an oracle for three classes of damage it reads right:
//! a close delimiter with characters after it (`--b-->`), a stray line
//! that is not a header field inside a part's header, and blanks at the
//! ends of quoted-printable lines (RFC 2045 deletes them). For the
//! fixtures of these classes and for generated variants of each, in LF
//! and CRLF, the text body and every attachment (name and bytes) must be
//! what mail-parser finds.
//!
//! Where mail-parser is wrong (a parameter folded without indentation: it
//! drops the parameter) the golden fixture `header-unindented-parameter`
//! holds what we expect instead.

use std::path::Path;

use mail_parser::{MessageParser, MimeHeaders};
use mailbot::dissect::{Options, dissect_bytes};

/// Text body and attachments (name, bytes), line ends made LF.
type Outcome = (Option<String>, Vec<(Option<String>, Vec<u8>)>);

fn lf(data: &[u8]) -> Vec<u8> {
    data.iter().copied().filter(|&b| b != b'\r').collect()
}

fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in raw {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn oracle(raw: &[u8]) -> Outcome {
    let m = MessageParser::default()
        .parse(raw)
        .expect("mail-parser reads it");
    let text = m
        .body_text(0)
        .map(|t| String::from_utf8(lf(t.as_bytes())).unwrap());
    let attachments = m
        .attachments()
        .map(|a| (a.attachment_name().map(str::to_string), lf(a.contents())))
        .collect();
    (text, attachments)
}

fn ours(raw: &[u8]) -> Outcome {
    let d = dissect_bytes(raw, &Options::all());
    let text = d
        .body_text
        .map(|t| String::from_utf8(lf(t.as_bytes())).unwrap());
    let attachments = d
        .attachments
        .into_iter()
        .map(|a| (a.declared_name, lf(&a.data)))
        .collect();
    (text, attachments)
}

fn agree(what: &str, raw: &[u8]) {
    for (ends, raw) in [("LF", raw.to_vec()), ("CRLF", crlf(raw))] {
        assert_eq!(ours(&raw), oracle(&raw), "{what} ({ends})");
    }
}

#[test]
fn fixtures_agree_with_mail_parser() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dissect");
    for name in [
        "close-delimiter-junk.eml",
        "header-stray-line.eml",
        "qp-trailing-blanks.eml",
    ] {
        let raw = std::fs::read(dir.join(name)).unwrap();
        agree(name, &raw);
    }
}

#[test]
fn close_delimiters_with_trailing_characters() {
    for junk in [
        "-->", "--  end", "--\tjunk", "--=", "---", "--.", "--x", "--;",
    ] {
        let raw = format!(
            "Subject: close\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\n\nbody text\n\
             --b\nContent-Type: application/octet-stream; name=a.bin\nContent-Transfer-Encoding: base64\n\n\
             aGVsbG8gd29ybGQK\n--b{junk}\nZXBpbG9ndWU=\n"
        );
        agree(&format!("--b{junk}"), raw.as_bytes());
    }
}

#[test]
fn stray_lines_inside_a_part_header() {
    for stray in ["X-Junk", "garbage text", "....", "=?broken", "name"] {
        let raw = format!(
            "Subject: stray\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\n\nbody text\n\
             --b\nContent-Type: application/octet-stream\n{stray}\n\
             Content-Disposition: attachment; filename=\"kept.bin\"\nContent-Transfer-Encoding: base64\n\n\
             aGVsbG8gd29ybGQK\n--b--\n"
        );
        agree(&format!("stray line {stray:?}"), raw.as_bytes());
    }
}

#[test]
fn quoted_printable_trailing_blanks() {
    for blanks in [" ", "\t", "  \t ", "=20 ", "=09\t"] {
        let raw = format!(
            "Subject: qp\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n\
             first line{blanks}\nsoft =  \nbreak{blanks}\nlast{blanks}\n"
        );
        agree(&format!("blanks {blanks:?}"), raw.as_bytes());
    }
}
