//! Corpus tests: messages written by others, read from `MAILBOT_CORPORA`
//! or `../shared/corpora` (never copied; see tests/support/corpora.rs),
//! compared with what their own
//! test suites expect (see each source's PROVENANCE.txt).
//!
//! Each source's test prints `matched/total`, fails below its recorded
//! level, and lists every case where we differ, with the reason, in
//! `tests/corpus-differences/<source>.txt`. That list must stay as it is
//! committed; `MAILBOT_UPDATE_DIFFERENCES=1` rewrites it after a change
//! that is meant.
//!
//! tnef-verdammelt and roundcube also check the TNEF and uuencode
//! decoders through the dissector. notmuch and mu-maildirs have no
//! expectations and are only in the smoke test.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use mailbot::dissect::{Attachment, Dissection, Options, Origin, dissect_bytes};
use serde_json::Value;

#[path = "support/corpora.rs"]
mod corpora;

/// The source folder, or `None` when there are no corpora.
fn source(name: &str) -> Option<PathBuf> {
    corpora::path(name)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn dissect(path: &Path) -> Option<Dissection> {
    let raw = fs::read(path).ok()?;
    Some(dissect_bytes(&raw, &Options::all()))
}

/// Attachments that are not inside an attached message (what most
/// libraries count as "the attachments").
fn top_level(d: &Dissection) -> Vec<&Attachment> {
    let messages: Vec<String> = d
        .attachments
        .iter()
        .filter(|a| a.origin == Origin::Rfc822)
        .map(|a| format!("{}.", a.part))
        .collect();
    d.attachments
        .iter()
        .filter(|a| !messages.iter().any(|m| a.part.starts_with(m.as_str())))
        .collect()
}

struct Tally {
    source: &'static str,
    total: usize,
    matched: usize,
    differences: Vec<String>,
}

impl Tally {
    fn new(source: &'static str) -> Self {
        Tally {
            source,
            total: 0,
            matched: 0,
            differences: Vec::new(),
        }
    }

    fn case(&mut self, name: &str, problems: Vec<String>) {
        self.total += 1;
        if problems.is_empty() {
            self.matched += 1;
        } else {
            self.differences
                .push(format!("{name}: {}", problems.join("; ")));
        }
    }

    /// Prints the level, fails below `min_matched`, and checks (or with
    /// `MAILBOT_UPDATE_DIFFERENCES=1` rewrites) the list of differences;
    /// `reasons` explain known cases (`case name`, why we differ; `*` for
    /// every case).
    fn finish(mut self, min_matched: usize, reasons: &[(&str, &str)]) {
        println!("{}: {}/{} matched", self.source, self.matched, self.total);
        for d in &mut self.differences {
            if let Some((_, why)) = reasons
                .iter()
                .find(|(case, _)| *case == "*" || d.starts_with(&format!("{case}:")))
            {
                d.push_str(&format!(" -- why: {why}"));
            }
        }
        self.differences.sort();
        let mut text = format!(
            "# {}: {}/{} cases match; each line below is a case where we differ, and why.\n",
            self.source, self.matched, self.total
        );
        for d in &self.differences {
            text.push_str(d);
            text.push('\n');
        }
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus-differences")
            .join(format!("{}.txt", self.source));
        if std::env::var_os("MAILBOT_UPDATE_DIFFERENCES").is_some() {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, &text).unwrap();
        } else {
            let committed = fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                committed,
                text,
                "{} differs from this run; if the change is meant, rerun with MAILBOT_UPDATE_DIFFERENCES=1",
                path.display()
            );
        }
        assert!(
            self.matched >= min_matched,
            "{}: {}/{} matched, below the recorded {min_matched}",
            self.source,
            self.matched,
            self.total
        );
    }
}

fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    decode_entities(&out)
}

fn decode_entities(s: &str) -> String {
    let table = [
        ("&nbsp;", " "),
        ("&auml;", "ä"),
        ("&ouml;", "ö"),
        ("&uuml;", "ü"),
        ("&Auml;", "Ä"),
        ("&Ouml;", "Ö"),
        ("&Uuml;", "Ü"),
        ("&szlig;", "ß"),
        ("&quot;", "\""),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&amp;", "&"),
    ];
    let mut out = s.to_string();
    for (entity, text) in table {
        out = out.replace(entity, text);
    }
    out
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => all_files(&p, out),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
}

#[test]
fn smoke_every_corpus_file_dissects_without_panic() {
    let Some(root) = corpora::root() else { return };
    let mut files = Vec::new();
    all_files(&root, &mut files);
    assert!(!files.is_empty(), "no files in {}", root.display());
    files.sort();
    let start = std::time::Instant::now();
    let mut bytes = 0;
    for f in &files {
        let raw = fs::read(f).unwrap();
        bytes += raw.len();
        let result = std::panic::catch_unwind(|| dissect_bytes(&raw, &Options::all()));
        assert!(result.is_ok(), "panic on {}", f.display());
        // And again with CRLF line ends.
        let crlf: Vec<u8> = raw
            .iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![b]
                }
            })
            .collect();
        let result = std::panic::catch_unwind(|| dissect_bytes(&crlf, &Options::all()));
        assert!(result.is_ok(), "panic on {} (CRLF)", f.display());
    }
    println!(
        "smoke: {} files, {} bytes, {:?}",
        files.len(),
        bytes,
        start.elapsed()
    );
}

/// zbateson: attachment counts, attachments byte-identical to the
/// originals in `files/`, and text bodies equal to the original text
/// (whitespace-insensitive, the files are ISO-8859-1).
#[test]
fn zbateson_mail_mime_parser() {
    let Some(dir) = source("zbateson-mail-mime-parser") else {
        return;
    };
    let emails = dir.join("tests/_data/emails");
    let files = emails.join("files");
    let expected = read_json(&dir.join("expected_from_EmailFunctionalTest.json"));
    let mut tally = Tally::new("zbateson-mail-mime-parser");
    for (key, tests) in expected.as_object().unwrap() {
        let path = emails.join(format!("{key}.txt"));
        for (i, t) in tests.as_array().unwrap().iter().enumerate() {
            let name = format!("{key}#{i}");
            let e = &t["expected"];
            let Some(d) = dissect(&path) else {
                tally.case(&name, vec!["message file absent from the corpus".into()]);
                continue;
            };
            let mut problems = Vec::new();
            // Upstream asserts the count only where it gives one.
            let want = e["attachments"].as_u64().map(|n| n as usize);
            let got = top_level(&d).len();
            if let Some(want) = want
                && got != want
            {
                let names: Vec<_> = d
                    .attachments
                    .iter()
                    .map(|a| format!("{}:{}", a.part, a.content_type))
                    .collect();
                problems.push(format!("{got} attachments, expected {want} {names:?}"));
            }
            for a in &d.attachments {
                let Some(n) = &a.declared_name else { continue };
                let original = files.join(n);
                if let Ok(bytes) = fs::read(&original)
                    && bytes != a.data
                {
                    problems.push(format!("{n}: bytes differ from files/{n}"));
                }
            }
            if let Some(text_file) = e["text"].as_str() {
                let want = latin1(&fs::read(files.join(text_file)).unwrap());
                match &d.body_text {
                    Some(t) if squeeze(t) == squeeze(&want) => {}
                    Some(_) => problems.push(format!("text body differs from {text_file}")),
                    None => problems.push("no text body".into()),
                }
            }
            if let Some(html_file) = e["html"].as_str() {
                let want = latin1(&fs::read(files.join(html_file)).unwrap());
                match &d.body_html {
                    Some(h) if squeeze(&strip_tags(h)) == squeeze(&want) => {}
                    Some(_) => problems.push(format!("html body differs from {html_file}")),
                    None => problems.push("no html body".into()),
                }
            }
            tally.case(&name, problems);
        }
    }
    tally.finish(
        67,
        &[
            ("m2011#0", "BinHex (application/mac-binhex40) is not decoded; the part is kept as sent"),
            ("m0020#0", "further inline text/html parts are files for us (part-2.3.html); zbateson joins them into the body"),
            ("m1009#0", "an inline text/plain part with a file name is a file for us; zbateson reads it as body"),
            ("m0022#0", "the original file ends with CRLF that the message does not carry (the QP text ends without a line break)"),
            ("m3005#0", "the message is absent from the stored snapshot"),
            ("m4002#0", "the signature part of multipart/signed is a file for us (.asc); zbateson leaves it out"),
            ("m4004#0", "the signature part of multipart/signed is a file for us (.asc); zbateson leaves it out"),
        ],
    );
}

/// mikel/mail: attachment counts, names and decoded lengths from the
/// attachments spec.
#[test]
fn mikel_mail() {
    let Some(dir) = source("mikel-mail") else {
        return;
    };
    let expected = read_json(&dir.join("expected_attachments_from_attachments_list_spec.json"));
    let mut tally = Tally::new("mikel-mail");
    for (key, e) in expected.as_object().unwrap() {
        if key.starts_with('_') {
            continue;
        }
        let Some(d) = dissect(&dir.join("spec/fixtures").join(key)) else {
            tally.case(key, vec!["message file absent from the corpus".into()]);
            continue;
        };
        // The mail gem lists attachments depth-first, attached messages and
        // the files inside them included.
        let atts: Vec<&Attachment> = d.attachments.iter().collect();
        let mut problems = Vec::new();
        for (field, want) in e.as_object().unwrap() {
            if field == "why" {
                continue;
            }
            if field == "attachment_count" {
                let want = want.as_u64().unwrap() as usize;
                if atts.len() != want {
                    problems.push(format!("{} attachments, expected {want}", atts.len()));
                }
                continue;
            }
            let Some((index, prop)) = field
                .strip_prefix("attachments[")
                .and_then(|r| r.split_once("]."))
            else {
                continue;
            };
            let index: usize = index.parse().unwrap();
            let Some(a) = atts.get(index) else {
                problems.push(format!("no attachment {index}"));
                continue;
            };
            match prop {
                "filename" => {
                    let got = a.declared_name.as_deref().unwrap_or("");
                    if got != want.as_str().unwrap() {
                        problems.push(format!("name {got:?}, expected {want}"));
                    }
                }
                "decoded_length" => {
                    if a.data.len() as u64 != want.as_u64().unwrap() {
                        problems.push(format!("{} bytes, expected {want}", a.data.len()));
                    }
                }
                "inline" => {}
                other => problems.push(format!("unchecked expectation {other}")),
            }
        }
        tally.case(key, problems);
    }
    tally.finish(
        11,
        &[
            ("emails/attachment_emails/attachment_message_rfc822_inline_image.eml", "we keep the attached message byte for byte (CRLF); the mail gem converts its 36 line ends to LF"),
        ],
    );
}

/// php-mime-mail-parser: attachment names and decoded sizes.
#[test]
fn php_mime_mail_parser() {
    let Some(dir) = source("php-mime-mail-parser") else {
        return;
    };
    let expected = read_json(&dir.join("expected_from_ParserTest.json"));
    let mut tally = Tally::new("php-mime-mail-parser");
    for (key, e) in expected.as_object().unwrap() {
        let Some(p) = e.get("provideData") else {
            continue;
        };
        let Some(want) = p.get("attachments").and_then(Value::as_array) else {
            continue;
        };
        let mut path = dir.join("tests/mails").join(key);
        if !path.exists() {
            path = path.with_extension("eml");
        }
        let Some(d) = dissect(&path) else {
            tally.case(key, vec!["message file absent from the corpus".into()]);
            continue;
        };
        let atts = top_level(&d);
        let mut problems = Vec::new();
        if atts.len() != want.len() {
            let got: Vec<_> = atts
                .iter()
                .map(|a| format!("{}:{}:{:?}", a.part, a.content_type, a.declared_name))
                .collect();
            problems.push(format!(
                "{} attachments, expected {}: {got:?}",
                atts.len(),
                want.len()
            ));
        }
        // Pair by name; php names unnamed parts `noname*`, so those pair by size.
        let mut ours: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for a in &atts {
            ours.entry(a.declared_name.clone().unwrap_or_default())
                .or_default()
                .push(a.data.len());
        }
        for w in want {
            let name = w["filename"].as_str().unwrap_or("");
            let size = w["size_bytes"].as_u64().unwrap_or(0) as usize;
            let key = if name.starts_with("noname") { "" } else { name };
            match ours
                .get_mut(key)
                .and_then(|v| v.iter().position(|&s| s == size).map(|i| v.remove(i)))
            {
                Some(_) => {}
                None => problems.push(format!("no attachment {name:?} of {size} bytes")),
            }
        }
        tally.case(key, problems);
    }
    tally.finish(
        24,
        &[("m0006", "the message is absent from the stored snapshot")],
    );
}

/// SpamAssassin: the content summary (top type, then each child of the
/// top part with its descendants flattened) and the SHA-1 of the decoded
/// bodies of the first leaf parts, depth first.
#[test]
fn spamassassin() {
    use mailbot::mime::{self, PartKind};
    use sha1::{Digest, Sha1};
    let Some(dir) = source("spamassassin") else {
        return;
    };
    let expected = read_json(&dir.join("expected_from_t_mimeparse.json"));
    let mut tally = Tally::new("spamassassin");
    for (key, e) in expected.as_object().unwrap() {
        if key.starts_with('_') {
            continue;
        }
        let Ok(raw) = fs::read(dir.join("t").join(key)) else {
            tally.case(key, vec!["message file absent from the corpus".into()]);
            continue;
        };
        let m = mime::parse(&raw, &mime::Limits::default());
        let mut problems = Vec::new();
        if let Some(want) = e["content_summary"].as_array() {
            let want: Vec<&str> = want.iter().map(|v| v.as_str().unwrap()).collect();
            let root = &m.parts[0];
            let mut got = vec![root.content_type.clone()];
            if root.kind == PartKind::Multipart {
                let children = m
                    .parts
                    .iter()
                    .filter(|p| !p.path.contains('.') && p.path != "0");
                for child in children {
                    let prefix = format!("{}.", child.path);
                    let mut line = vec![child.content_type.clone()];
                    line.extend(
                        m.parts
                            .iter()
                            .filter(|p| p.path.starts_with(&prefix))
                            .map(|p| p.content_type.clone()),
                    );
                    got.push(line.join(","));
                }
            }
            if got != want {
                problems.push(format!("summary {got:?}, expected {want:?}"));
            }
        }
        let leaves: Vec<String> = m
            .parts
            .iter()
            .filter(|p| p.kind == PartKind::Leaf)
            .map(|p| hex::encode(Sha1::digest(&p.body)))
            .collect();
        for (i, want) in e["leaf_part_sha1"].as_array().unwrap().iter().enumerate() {
            let want = want.as_str().unwrap();
            if leaves.get(i).map(String::as_str) != Some(want) {
                problems.push(format!(
                    "leaf {i}: sha1 {:?}, expected {want}",
                    leaves.get(i)
                ));
            }
        }
        tally.case(key, problems);
    }
    tally.finish(
        8,
        &[
            ("data/nice/base64.txt", "SpamAssassin-specific decoding of the second part (the Python email package differs from it too)"),
            ("data/spam/badmime2.txt", "two Content-Type fields: we take the first (multipart/related), SpamAssassin the last"),
            ("data/spam/badmime3.txt", "the multipart body holds no boundary line at all: we read it as one text/plain part"),
            ("data/nice/mime1", "SpamAssassin reports a text/richtext part as text/plain; we keep the declared type"),
            ("data/nice/mime8", "Content-Type 'binary' is not type/subtype: we read it as text/plain (with a defect), SpamAssassin keeps the word"),
        ],
    );
}

/// nodemailer/mailparser: attachment counts and checksums, text bodies.
#[test]
fn nodemailer_mailparser() {
    use sha2::{Digest, Sha256};
    let Some(dir) = source("nodemailer-mailparser") else {
        return;
    };
    let expected = read_json(&dir.join("expected_from_tests.json"));
    let mut tally = Tally::new("nodemailer-mailparser");
    for (key, e) in expected.as_object().unwrap() {
        if key.starts_with('_') {
            continue;
        }
        let Some(d) = dissect(&dir.join("test/fixtures").join(key)) else {
            tally.case(key, vec!["message file absent from the corpus".into()]);
            continue;
        };
        let atts = top_level(&d);
        let mut problems = Vec::new();
        if let Some(want) = e["attachment_count"].as_u64()
            && atts.len() as u64 != want
        {
            problems.push(format!("{} attachments, expected {want}", atts.len()));
        }
        if let Some(want) = e["attachments[0].sha256"].as_str() {
            let got = atts.first().map(|a| hex::encode(Sha256::digest(&a.data)));
            if got.as_deref() != Some(want) {
                problems.push(format!("attachment 0 sha256 {got:?}, expected {want}"));
            }
        }
        let text = d.body_text.as_deref().unwrap_or("").replace("\r\n", "\n");
        if let Some(want) = e["text"].as_str()
            && text.trim() != want.trim()
        {
            problems.push(format!("text body {:?}, expected {want:?}", text));
        }
        if let Some(want) = e["text_first_line"].as_str()
            && text.lines().next() != Some(want)
        {
            problems.push(format!("text starts {:?}", text.lines().next()));
        }
        if let Some(want) = e["text_contains"].as_str()
            && !text.contains(want)
        {
            problems.push(format!("text lacks {want:?}"));
        }
        if e["has_html"].as_bool() == Some(false) && d.body_html.is_some() {
            problems.push("an HTML body where none is expected".into());
        }
        if e["html_non_empty"].as_bool() == Some(true)
            && d.body_html.as_deref().unwrap_or("").is_empty()
        {
            problems.push("no HTML body".into());
        }
        tally.case(key, problems);
    }
    tally.finish(
        7,
        &[
            ("delivery-status.eml", "message/delivery-status is a file for us (part-N.txt), not part of the text body"),
            ("mixed.eml", "mailparser joins all inline text parts; the first is the body for us and later ones are files"),
            ("nested.eml", "mailparser joins all inline text parts; the first is the body for us and later ones are files"),
        ],
    );
}

/// postal-mime: attachment counts.
#[test]
fn postal_mime() {
    let Some(dir) = source("postal-mime") else {
        return;
    };
    let expected = read_json(&dir.join("expected_from_tests.json"));
    let mut tally = Tally::new("postal-mime");
    for (key, e) in expected.as_object().unwrap() {
        let Some(want) = e.get("attachment_count").and_then(Value::as_u64) else {
            continue;
        };
        let Some(d) = dissect(&dir.join("test/fixtures").join(key)) else {
            tally.case(key, vec!["message file absent from the corpus".into()]);
            continue;
        };
        // postal-mime inlines attached messages: count what is inside them.
        let got = d
            .attachments
            .iter()
            .filter(|a| a.origin != Origin::Rfc822)
            .count();
        let mut problems = Vec::new();
        if got as u64 != want {
            let list: Vec<_> = d
                .attachments
                .iter()
                .map(|a| format!("{}:{}", a.part, a.content_type))
                .collect();
            problems.push(format!("{got} attachments, expected {want}: {list:?}"));
        }
        tally.case(key, problems);
    }
    tally.finish(
        2,
        &[
            ("bounce.eml", "postal-mime counts the returned message/rfc822 here; we keep it as .eml (left out of this count, as postal-mime inlines attached messages elsewhere)"),
        ],
    );
}

/// enmime: each low-quality message must yield the kind of warning enmime
/// gives (mapped to our defect kinds).
#[test]
fn enmime_low_quality_warnings() {
    use mailbot::mime::DefectKind as K;
    let Some(dir) = source("enmime") else {
        return;
    };
    let refs = read_json(&dir.join("upstream_test_refs.json"));
    let mut tally = Tally::new("enmime");
    for (file, warning) in refs["low_quality_expected_warnings"].as_object().unwrap() {
        if file.starts_with('_') {
            continue;
        }
        let warning = warning.as_str().unwrap();
        let kinds: &[K] = match warning {
            "Missing Boundary" => &[
                K::MissingBoundary,
                K::BoundaryNotFound,
                K::MissingCloseDelimiter,
            ],
            "Malformed Header" => &[K::Header],
            "Missing Content-Type" => &[K::Header],
            "Content Encoding" => &[K::TransferEncoding],
            "Character Set Conversion" | "Character Set Declaration Mismatch" => &[K::Charset],
            "Malformed Base64" => &[K::Base64],
            _ => &[],
        };
        let Some(d) = dissect(&dir.join("testdata/low-quality").join(file)) else {
            tally.case(file, vec!["message file absent from the corpus".into()]);
            continue;
        };
        let mut problems = Vec::new();
        if !d.defects.iter().any(|x| kinds.contains(&x.kind)) {
            let got: Vec<_> = d.defects.iter().map(|x| format!("{:?}", x.kind)).collect();
            problems.push(format!("no defect for {warning:?}; got {got:?}"));
        }
        tally.case(file, problems);
    }
    tally.finish(
        6,
        &[
            (
                "empty-header.raw",
                "a part without Content-Type is text/plain by RFC 2045: not a defect for us",
            ),
            (
                "missing-content-type2.raw",
                "a part without Content-Type is text/plain by RFC 2045: not a defect for us",
            ),
            (
                "html-only-inline.raw",
                "we never derive a text body from HTML, so there is nothing to warn about",
            ),
            (
                "unk-charset-html-only.raw",
                "the unknown charset named in the <meta> tag changes nothing: the text is all ASCII, so nothing had to be guessed",
            ),
        ],
    );
}

/// Stalwart mail-parser: every part it calls an attachment must be among
/// ours with the same bytes (binary parts) or text (text parts). The
/// expectations were made from the LF-only input, so that is what we read.
#[test]
fn stalwart_mail_parser() {
    let Some(dir) = source("stalwart-mail-parser") else {
        return;
    };
    let mut files = Vec::new();
    all_files(&dir.join("resources/eml"), &mut files);
    files.retain(|f| f.extension().is_some_and(|e| e == "eml"));
    files.sort();
    let mut tally = Tally::new("stalwart-mail-parser");
    for eml in files {
        let name = eml
            .strip_prefix(dir.join("resources/eml"))
            .unwrap()
            .display()
            .to_string();
        let Ok(json) = fs::read(eml.with_extension("json")) else {
            continue;
        };
        let expected: Value = serde_json::from_slice(&json).unwrap();
        let raw: Vec<u8> = fs::read(&eml)
            .unwrap()
            .into_iter()
            .filter(|&b| b != b'\r')
            .collect();
        let d = dissect_bytes(&raw, &Options::all());
        let mut problems = Vec::new();
        let parts = expected["parts"].as_array().unwrap();
        for index in expected["attachments"].as_array().unwrap() {
            let part = &parts[index.as_u64().unwrap() as usize];
            let body = part["body"].as_object().unwrap();
            let (kind, value) = body.iter().next().unwrap();
            match kind.as_str() {
                "Binary" | "InlineBinary" => {
                    let bytes: Vec<u8> = value
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|b| b.as_u64().unwrap() as u8)
                        .collect();
                    if !d.attachments.iter().any(|a| a.data == bytes) {
                        problems.push(format!(
                            "part {index}: no attachment with its {} bytes",
                            bytes.len()
                        ));
                    }
                }
                "Text" | "Html" => {
                    let text = value.as_str().unwrap();
                    let found =
                        d.attachments.iter().any(|a| {
                            mailbot::mime::charset::utf8_or_windows_1252(&a.data).0 == text
                        }) || d.body_text.as_deref() == Some(text)
                            || d.body_html.as_deref() == Some(text);
                    if !found {
                        problems.push(format!("part {index}: no attachment with its text"));
                    }
                }
                "Message" => {
                    if !d.attachments.iter().any(|a| a.origin == Origin::Rfc822) {
                        problems.push(format!("part {index}: attached message missing"));
                    }
                }
                other => problems.push(format!("part {index}: unchecked body kind {other}")),
            }
        }
        tally.case(&name, problems);
    }
    tally.finish(
        100,
        &[
            ("legacy/017.eml", "x-uuencode parts: stalwart keeps the encoded text, we decode the files"),
            ("legacy/048.eml", "x-uuencode parts: stalwart keeps the encoded text, we decode the files"),
            ("legacy/026.eml", "x-uuencode part: stalwart keeps it as text with U+FFFD for 8-bit bytes; we decode the uuencoded file"),
            ("malformed/009.eml", "an outer boundary line ends the unclosed inner multipart for us (as Dovecot does); mail-parser runs the inner part on"),
            ("malformed/011.eml", "an outer boundary line ends the unclosed inner multipart for us (as Dovecot does); mail-parser runs the inner part on"),
            ("malformed/016.eml", "an outer boundary line ends the unclosed inner multipart for us (as Dovecot does); mail-parser runs the inner part on"),
            ("thirdparty/002.eml", "'?garbage' as base64: we skip the stray '?' and decode the rest (with a defect); mail-parser keeps the text"),
        ],
    );
}

/// Roundcube: name precedence over six differently declared leaf parts,
/// a part's name and size, base64 and uuencode decoding to the original
/// PDF, and TNEF streams unpacked by the dissector.
#[test]
fn roundcube() {
    use mailbot::dissect::{find_uuencoded, unpack_tnef};
    use mailbot::mime::{self, PartKind};
    let Some(dir) = source("roundcube") else {
        return;
    };
    let src = dir.join("tests/src");
    let expected = read_json(&dir.join("expected_from_tests.json"));
    let mut tally = Tally::new("roundcube");
    let pdf = fs::read(src.join("test.pdf")).unwrap();

    let raw = fs::read(src.join("filename.eml")).unwrap();
    let m = mime::parse(&raw, &mime::Limits::default());
    let got: Vec<String> = m
        .parts
        .iter()
        .filter(|p| p.kind == PartKind::Leaf)
        .map(|p| {
            p.declared_name
                .as_ref()
                .map(|n| n.decoded.clone())
                .unwrap_or_default()
        })
        .collect();
    let want: Vec<String> = expected["filename.eml"]["leaf_part_filenames_in_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let problems = if got == want {
        vec![]
    } else {
        vec![format!("names {got:?}, expected {want:?}")]
    };
    tally.case("filename.eml", problems);

    let d = dissect(&src.join("mail0.eml")).unwrap();
    let e = &expected["mail0.eml"]["parts[2]"];
    let found = d.attachments.iter().any(|a| {
        a.declared_name.as_deref() == e["filename"].as_str()
            && a.data.len() as u64 == e["size"].as_u64().unwrap()
            && a.content_type == e["mimetype"].as_str().unwrap()
    });
    let problems = if found {
        vec![]
    } else {
        vec!["no lines_lf.txt of 11 bytes".to_string()]
    };
    tally.case("mail0.eml", problems);

    let (data, _) = mime::transfer::decode_base64(&fs::read(src.join("test.base64")).unwrap());
    let problems = if data == pdf {
        vec![]
    } else {
        vec!["does not decode to test.pdf".to_string()]
    };
    tally.case("test.base64", problems);

    let files = find_uuencoded(&fs::read(src.join("test.uuencode")).unwrap());
    let problems = match files.first() {
        Some(f) if f.data == pdf => vec![],
        Some(_) => vec!["decodes to other bytes than test.pdf".to_string()],
        None => vec!["no uuencoded file found".to_string()],
    };
    tally.case("test.uuencode", problems);

    for name in ["body.tnef", "one-file.tnef"] {
        let want = &expected[name]["tnef_decoded_parts"][0];
        let data = fs::read(src.join(name)).unwrap();
        let problems = match unpack_tnef(&data) {
            Some(Ok((files, _))) => {
                let ok = files.iter().any(|f| {
                    let size = f.data.len() as u64;
                    let want_size = want["size"].as_u64().unwrap();
                    // roundcube pads the HTML body to four bytes.
                    (size == want_size || size.div_ceil(4) * 4 == want_size)
                        && String::from_utf8_lossy(&f.data).contains(
                            want["body_contains"]
                                .as_str()
                                .or(want["body_starts_with"].as_str())
                                .unwrap(),
                        )
                });
                if ok {
                    vec![]
                } else {
                    vec!["no file of the expected size and content".to_string()]
                }
            }
            Some(Err(e)) => vec![format!("not unpacked: {e}")],
            None => vec!["not recognised as TNEF".to_string()],
        };
        tally.case(name, problems);
    }
    tally.finish(6, &[]);
}

/// tnef-verdammelt: each raw winmail.dat stream, wrapped in a message as
/// Outlook sends it, must yield the files its `.list` names, with the
/// baseline bytes where a baseline exists. Bodies come out as
/// `winmail-body.rtf` / `winmail-body.html`.
#[test]
fn tnef_verdammelt() {
    let Some(dir) = source("tnef-verdammelt") else {
        return;
    };
    let files_dir = dir.join("tests/files");
    let mut streams: Vec<PathBuf> = fs::read_dir(files_dir.join("datafiles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tnef"))
        .collect();
    streams.sort();
    let mut tally = Tally::new("tnef-verdammelt");
    for stream in streams {
        let stem = stream.file_stem().unwrap().to_string_lossy().into_owned();
        let data = fs::read(&stream).unwrap();
        let mut message = b"Subject: tnef\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nsee attachment\n--b\nContent-Type: application/ms-tnef; name=winmail.dat\nContent-Transfer-Encoding: base64\n\n".to_vec();
        let encoded = mailbot::compose::base64_encode(&data);
        for line in encoded.as_bytes().chunks(76) {
            message.extend_from_slice(line);
            message.push(b'\n');
        }
        message.extend_from_slice(b"--b--\n");
        let d = dissect_bytes(&message, &Options::all());
        let list = fs::read_to_string(stream.with_extension("list")).unwrap_or_default();
        let mut problems = Vec::new();
        for name in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let ours = if name == format!("{stem}-body.rtf") {
                "winmail-body.rtf".to_string()
            } else if name == format!("{stem}-body.html") {
                "winmail-body.html".to_string()
            } else {
                name.to_string()
            };
            let Some(a) = d
                .attachments
                .iter()
                .find(|a| a.declared_name.as_deref() == Some(ours.as_str()))
            else {
                problems.push(format!("no file {name}"));
                continue;
            };
            if let Ok(baseline) =
                fs::read(files_dir.join("baselines").join(format!("{name}.baseline")))
                && baseline != a.data
            {
                problems.push(format!("{name}: bytes differ from its baseline"));
            }
        }
        tally.case(&stem, problems);
    }
    tally.finish(
        14,
        &[(
            "MAPI_OBJECT",
            "the embedded OLE object: the baseline keeps its 16-byte IID_IStorage prefix; \
             we write the compound document itself (starts D0 CF 11 E0), which Office opens",
        )],
    );
}
