//! Golden tests: every `fixtures/dissect/*.eml` is dissected in memory and
//! summarised (parts, attachments with size and sha256, bodies, defects);
//! the summary must equal the `.json` next to it. A mismatch writes a
//! `.failed` file beside the fixture; `MAILBOT_UPDATE_FIXTURES=1` rewrites
//! the expectations instead. Each message is also run with CRLF line ends
//! and must give the same summary, line ends aside ([`line_blind`]).
//!
//! Every `fixtures/dissect/*.mbox` is read with [`mbox::Reader`] and each
//! message summarised the same way, with its number, offset, envelope
//! and the reader's defects, against the `.json` next to it; its CRLF
//! variant must give the same messages.

use std::fs;
use std::path::{Path, PathBuf};

use mailbot::dissect::{Dissection, Options, dissect_bytes};
use mailbot::mbox;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dissect")
}

fn summary(d: &Dissection) -> Value {
    json!({
        "subject": d.headers.subject,
        "parts": d.parts.iter().map(|p| json!({
            "path": p.path,
            "type": p.content_type,
            "detected": p.detected_type,
            "name": p.declared_name,
            "name_raw": p.declared_name_raw,
            "role": p.role,
            "size": p.size,
        })).collect::<Vec<_>>(),
        "attachments": d.attachments.iter().map(|a| {
            let mut v = json!({
                "part": a.part,
                "file": a.file_name,
                "type": a.content_type,
                "origin": a.origin,
                "size": a.data.len(),
                "sha256": hex::encode(Sha256::digest(&a.data)),
            });
            // Only files out of embedded TNEF items have these.
            if !a.within.is_empty() {
                v["within"] = json!(a.within);
            }
            if let Some(class) = &a.item_class {
                v["item_class"] = json!(class);
            }
            v
        }).collect::<Vec<_>>(),
        "body_text": d.body_text,
        "body_html": d.body_html,
        "defects": d.defects,
    })
}

fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn lf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for (i, &b) in data.iter().enumerate() {
        if !(b == b'\r' && data.get(i + 1) == Some(&b'\n')) {
            out.push(b);
        }
    }
    out
}

/// The summary with what line ends change taken out: part sizes go,
/// bodies and attachment bytes are compared with LF line ends.
fn line_blind(d: &Dissection) -> Value {
    let mut v = summary(d);
    for p in v["parts"].as_array_mut().unwrap() {
        p.as_object_mut().unwrap().remove("size");
    }
    for (a, original) in v["attachments"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .zip(&d.attachments)
    {
        let data = lf(&original.data);
        a["size"] = json!(data.len());
        a["sha256"] = json!(hex::encode(Sha256::digest(&data)));
    }
    for key in ["body_text", "body_html"] {
        if let Some(text) = v[key].as_str() {
            v[key] = json!(String::from_utf8(lf(text.as_bytes())).unwrap());
        }
    }
    v
}

fn fixtures() -> Vec<PathBuf> {
    fixtures_ending("eml")
}

fn fixtures_ending(ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(fixture_dir())
        .expect("fixtures/dissect exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// Compares `got` with the `.json` beside `fixture` (or rewrites it);
/// false on a mismatch, with a `.failed` file written.
fn check_golden(fixture: &Path, got: &Value) -> bool {
    let expected_path = fixture.with_extension("json");
    let failed_path = fixture.with_extension("failed");
    let text = serde_json::to_string_pretty(got).unwrap() + "\n";
    if std::env::var_os("MAILBOT_UPDATE_FIXTURES").is_some() {
        fs::write(&expected_path, &text).unwrap();
        return true;
    }
    let expected: Option<Value> = fs::read_to_string(&expected_path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok());
    if expected.as_ref() != Some(got) {
        fs::write(&failed_path, &text).unwrap();
        false
    } else {
        let _ = fs::remove_file(&failed_path);
        true
    }
}

#[test]
fn fixture_folder_is_not_empty() {
    assert!(
        fixtures().len() >= 5,
        "no golden fixtures found in {}",
        fixture_dir().display()
    );
}

#[test]
fn golden_summaries() {
    let mut failed = Vec::new();
    for eml in fixtures() {
        let raw = fs::read(&eml).unwrap();
        let d = dissect_bytes(&raw, &Options::all());
        if !check_golden(&eml, &summary(&d)) {
            failed.push(eml.display().to_string());
        }
        // The CRLF variant: the same parts, files, bodies and defects.
        let crlf = dissect_bytes(&to_crlf(&raw), &Options::all());
        assert_eq!(
            line_blind(&d),
            line_blind(&crlf),
            "{} with CRLF line ends",
            eml.display()
        );
        for (a, b) in d.attachments.iter().zip(&crlf.attachments) {
            if a.content_type == "application/pdf" {
                assert_eq!(
                    a.data,
                    b.data,
                    "{}: PDF bytes differ with CRLF",
                    eml.display()
                );
            }
        }
    }
    assert!(
        failed.is_empty(),
        "golden mismatches (see the .failed files): {failed:?}"
    );
}

/// An mbox with CRLF line ends, as a CRLF writer makes it: each
/// `Content-Length` that was right counts the CRs it adds.
fn mbox_to_crlf(raw: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(raw.to_vec()).expect("mbox fixtures are UTF-8");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("\nContent-Length: ") {
        let value_at = at + "\nContent-Length: ".len();
        let digits = rest[value_at..].find('\n').unwrap() + value_at;
        let n: usize = rest[value_at..digits].parse().unwrap();
        let body = rest[digits..].find("\n\n").unwrap() + digits + 2;
        let crs = rest
            .get(body..body + n)
            .map_or(0, |b| b.matches('\n').count());
        out.push_str(&rest[..value_at]);
        out.push_str(&(n + crs).to_string());
        rest = &rest[digits..];
    }
    out.push_str(rest);
    to_crlf(out.as_bytes())
}

/// Each message of an mbox: where it was, what the reader guessed, and
/// the summary of its dissection.
fn mbox_summary(raw: &[u8]) -> Vec<(mbox::Message, Dissection)> {
    mbox::Reader::new(raw, mbox::Format::Auto)
        .map(|m| {
            let m = m.unwrap();
            let d = dissect_bytes(&m.bytes, &Options::all());
            (m, d)
        })
        .collect()
}

#[test]
fn mbox_golden_summaries() {
    let boxes = fixtures_ending("mbox");
    assert!(boxes.len() >= 4, "mbox fixtures missing");
    let mut failed = Vec::new();
    for path in boxes {
        let raw = fs::read(&path).unwrap();
        let messages = mbox_summary(&raw);
        let got: Vec<Value> = messages
            .iter()
            .map(|(m, d)| {
                json!({
                    "number": m.number,
                    "offset": m.offset,
                    "envelope": String::from_utf8_lossy(&m.envelope),
                    "mbox_defects": m.defects,
                    "size": m.bytes.len(),
                    "sha256": hex::encode(Sha256::digest(&m.bytes)),
                    "dissection": summary(d),
                })
            })
            .collect();
        if !check_golden(&path, &json!(got)) {
            failed.push(path.display().to_string());
        }
        // CRLF: the same messages, line ends aside.
        let crlf = mbox_summary(&mbox_to_crlf(&raw));
        assert_eq!(crlf.len(), messages.len(), "{} with CRLF", path.display());
        for ((m, d), (cm, cd)) in messages.iter().zip(&crlf) {
            let what = format!("{} message {} with CRLF", path.display(), m.number);
            assert_eq!(m.envelope, cm.envelope, "{what}");
            assert_eq!(m.defects, cm.defects, "{what}");
            // (Only the Content-Length values differ where there are any.)
            if memchr::memmem::find(&m.bytes, b"Content-Length:").is_none() {
                assert_eq!(m.bytes, lf(&cm.bytes), "{what}");
            }
            assert_eq!(line_blind(d), line_blind(cd), "{what}");
        }
    }
    assert!(
        failed.is_empty(),
        "golden mismatches (see the .failed files): {failed:?}"
    );
}

/// The PDF in the middle of an mbox comes back byte for byte.
#[test]
fn the_pdf_in_an_mbox_comes_back_byte_identical() {
    let original = fs::read(fixture_dir().join("invoice.pdf")).unwrap();
    let raw = fs::read(fixture_dir().join("mboxo.mbox")).unwrap();
    for raw in [raw.clone(), to_crlf(&raw)] {
        let pdfs: Vec<Vec<u8>> = mbox_summary(&raw)
            .into_iter()
            .flat_map(|(_, d)| d.attachments)
            .filter(|a| a.content_type == "application/pdf")
            .map(|a| a.data)
            .collect();
        assert_eq!(pdfs.len(), 1);
        assert_eq!(pdfs[0], original);
    }
}

#[test]
fn the_course_step_pdf_comes_back_byte_identical() {
    let original = fs::read(fixture_dir().join("invoice.pdf")).unwrap();
    for name in [
        "pdf-invoice.eml",
        "single-base64-pdf.eml",
        "nested-rfc822.eml",
        "names.eml",
        "uuencode-later-parts.eml",
        "no-boundary-one-character.eml",
        "mbox-single-message.eml",
    ] {
        let raw = fs::read(fixture_dir().join(name)).unwrap();
        for raw in [raw.clone(), to_crlf(&raw)] {
            let d = dissect_bytes(
                &raw,
                &Options {
                    types: vec!["application/pdf".into()],
                    ..Options::all()
                },
            );
            assert_eq!(d.attachments.len(), 1, "{name}");
            assert_eq!(d.attachments[0].data, original, "{name}");
        }
    }
}
