//! mail-inject's attachments from stdin (`-a -`) and from paths that are
//! not UTF-8, and the batch inputs (`--batch` JSONL, `--batch-csv`),
//! checked by parsing what was written back with mail-parser.

mod inject_common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;

use inject_common::{code, describe, inject, mail_parser_attachments, pdf, run};

#[test]
fn stdin_is_an_attachment_with_a_name_given_or_made_from_its_type() {
    let home = tempfile::tempdir().unwrap();
    let data = pdf(3000);
    for (spec, name) in [
        ("-;name=scan.pdf", "scan.pdf"),
        ("-", "attachment.pdf"),
        ("-;type=application/octet-stream;name=raw.bin", "raw.bin"),
    ] {
        let out = run(
            inject(home.path()).args([
                "-r",
                "a@mailbot.test",
                "-s",
                "piped",
                "--body-text",
                "see attached",
                "-a",
                spec,
                "-o",
                "-",
                "b@mailbot.test",
            ]),
            &data,
        );
        assert_eq!(code(&out), 0, "{spec}: {}", describe(&out));
        let parts = mail_parser_attachments(&out.stdout);
        assert_eq!(parts.len(), 1, "{spec}");
        assert_eq!(parts[0].0.as_deref(), Some(name), "{spec}");
        assert_eq!(parts[0].2, data, "{spec}: bytes");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("see attached"),
            "{spec}: the body is the flag's"
        );
    }
    // Stdin can be read once only.
    let out = run(
        inject(home.path()).args(["-a", "-", "-a", "-;name=x", "-o", "-", "b@mailbot.test"]),
        b"x",
    );
    assert_eq!(code(&out), 64, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("mail-inject: -a -: "),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_file_name_that_is_not_utf8_is_attached_under_a_lossy_rfc2231_name() {
    let home = tempfile::tempdir().unwrap();
    // "Übersicht.pdf" in Latin-1 (0xDC is not UTF-8 on its own).
    let mut path = home.path().as_os_str().as_bytes().to_vec();
    path.extend_from_slice(b"/\xdcbersicht.pdf");
    let path = OsStr::from_bytes(&path);
    let data = pdf(2000);
    fs::write(path, &data).unwrap();
    let out = run(
        inject(home.path())
            .args([
                "-r",
                "a@mailbot.test",
                "-s",
                "latin1",
                "--body-text",
                "x",
                "-a",
            ])
            .arg(path)
            .args(["-o", "-", "b@mailbot.test"]),
        b"",
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("filename*=utf-8''%EF%BF%BDbersicht.pdf"),
        "{text}"
    );
    let parts = mail_parser_attachments(&out.stdout);
    assert_eq!(parts[0].0.as_deref(), Some("\u{fffd}bersicht.pdf"));
    assert_eq!(parts[0].2, data);
    // A missing one is named with its bytes shown lossily, exit 66.
    let mut missing = path.as_bytes().to_vec();
    missing.extend_from_slice(b".gone");
    let out = run(
        inject(home.path())
            .args(["--body-text", "x", "-a"])
            .arg(OsStr::from_bytes(&missing))
            .args(["-o", "-", "b@mailbot.test"]),
        b"",
    );
    assert_eq!(code(&out), 66, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\u{fffd}bersicht.pdf.gone"),
        "{}",
        describe(&out)
    );
}
