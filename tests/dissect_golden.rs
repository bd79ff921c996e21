//! Golden tests: every `fixtures/dissect/*.eml` is dissected in memory and
//! summarised (parts, attachments with size and sha256, bodies, defects);
//! the summary must equal the `.json` next to it. A mismatch writes a
//! `.failed` file beside the fixture; `MAILBOT_UPDATE_FIXTURES=1` rewrites
//! the expectations instead. Each message is also run with CRLF line ends
//! and must give the same attachments.

use std::fs;
use std::path::{Path, PathBuf};

use mailbot::dissect::{Dissection, Options, dissect_bytes};
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

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(fixture_dir())
        .expect("fixtures/dissect exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    v.sort();
    v
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
    let update = std::env::var_os("MAILBOT_UPDATE_FIXTURES").is_some();
    let mut failed = Vec::new();
    for eml in fixtures() {
        let raw = fs::read(&eml).unwrap();
        let d = dissect_bytes(&raw, &Options::all());
        let got = summary(&d);
        let expected_path = eml.with_extension("json");
        let failed_path = eml.with_extension("failed");
        let text = serde_json::to_string_pretty(&got).unwrap() + "\n";
        if update {
            fs::write(&expected_path, &text).unwrap();
            continue;
        }
        let expected: Option<Value> = fs::read_to_string(&expected_path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok());
        if expected.as_ref() != Some(&got) {
            fs::write(&failed_path, &text).unwrap();
            failed.push(eml.display().to_string());
        } else {
            let _ = fs::remove_file(&failed_path);
        }

        // The CRLF variant gives the same files (text compared by lines).
        let crlf = dissect_bytes(&to_crlf(&raw), &Options::all());
        let names = |d: &Dissection| {
            d.attachments
                .iter()
                .map(|a| {
                    (
                        a.part.clone(),
                        a.file_name.clone(),
                        a.content_type.clone(),
                        lf(&a.data),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&d), names(&crlf), "{} with CRLF", eml.display());
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
