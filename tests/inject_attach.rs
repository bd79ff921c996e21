//! mail-inject's attachments from stdin (`-a -`) and from paths that are
//! not UTF-8, and the batch inputs (`--batch` JSONL, `--batch-csv`),
//! checked by parsing what was written back with mail-parser.

mod inject_common;
mod support;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;

use inject_common::{
    code, describe, inject, mail_parser_attachments, messages_containing, pdf, run, unique,
};
use support::Rig;

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

/// The teacher's case: one PDF to a class list, each message addressed
/// and greeted by its row, over one session to the real servers.
#[test]
fn a_csv_class_list_gets_the_same_pdf_with_a_greeting_per_row() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let tag = unique("csv");
    let syllabus = home.path().join("syllabus.pdf");
    let data = pdf(5000);
    fs::write(&syllabus, &data).unwrap();
    let own = home.path().join("own.txt");
    fs::write(&own, "only for the second\n").unwrap();
    let csv = home.path().join("class.csv");
    let (bob, alice) = (rig.address(1), rig.address(0));
    fs::write(
        &csv,
        format!(
            "to,name,grade,attachments\r\n\
             {bob},\"Bob, Jr.\",A,\r\n\
             \"Alice <{alice}>\",Alice,B,{}\r\n\
             ,Nobody,C,\r\n",
            own.display()
        ),
    )
    .unwrap();
    let mut cmd = inject(home.path());
    cmd.env("MAILBOT_PASSWORD", &rig.users[0].1)
        .arg("--smtp")
        .arg(format!(
            "smtp://{}@{}:{}",
            rig.users[0].0, rig.host, rig.submission_port
        ))
        .arg("--ca-file")
        .arg(&rig.ca)
        .args(["-r", &alice, "-s", &format!("{tag} grade for {{name}}")])
        .args(["--body-text", "Dear {name}, your grade is {grade}.", "-a"])
        .arg(&syllabus)
        .args(["--json", "--batch-csv"])
        .arg(&csv);
    let out = run(&mut cmd, b"");
    // Two sent, the row without a recipient failed: partly done.
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let results: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let status: Vec<(u64, &str)> = results
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(status, [(2, "sent"), (3, "sent"), (4, "failed")]);
    assert_eq!(results[2]["exit"], 65);
    for (maildir, greeting, files) in [
        (&rig.maildirs[1], "Dear Bob, Jr., your grade is A.", 1),
        (&rig.maildirs[0], "Dear Alice, your grade is B.", 2),
    ] {
        let got = support::wait_for(20, || {
            let found = messages_containing(maildir, &format!("{tag} grade for"));
            (!found.is_empty()).then_some(found)
        })
        .unwrap_or_else(|| panic!("nothing arrived in {}", maildir.display()));
        assert_eq!(got.len(), 1, "one message each");
        let message = &got[0].1;
        let text = String::from_utf8_lossy(message);
        assert!(text.contains(greeting), "{text}");
        let parts = mail_parser_attachments(message);
        assert_eq!(parts.len(), files, "{text}");
        assert_eq!(parts[0].0.as_deref(), Some("syllabus.pdf"));
        assert_eq!(parts[0].2, data, "the PDF byte for byte");
    }
}

#[test]
fn csv_mistakes_are_named() {
    let home = tempfile::tempdir().unwrap();
    let csv = home.path().join("bad.csv");
    for (text, code_want, message) in [
        (
            "name,grade\nAnn,A\n",
            65,
            "bad.csv:1: the header row names no to, cc or bcc column",
        ),
        (
            "to,name\n\"open,x\n",
            65,
            "bad.csv: line 2: a quoted field is not closed",
        ),
    ] {
        fs::write(&csv, text).unwrap();
        let out = run(
            inject(home.path())
                .args(["--smtp", "smtp://127.0.0.1:1", "--batch-csv"])
                .arg(&csv),
            b"",
        );
        assert_eq!(code(&out), code_want, "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.trim_end().ends_with(message), "{stderr}");
    }
    // A template field the header lacks fails that row, naming it.
    fs::write(&csv, "to\nb@mailbot.test\n").unwrap();
    let out = run(
        inject(home.path())
            .args([
                "--smtp",
                "smtp://127.0.0.1:1",
                "--retries",
                "0",
                "-r",
                "a@mailbot.test",
            ])
            .args(["--body-text", "Hi {name}", "--batch-csv"])
            .arg(&csv),
        b"",
    );
    assert_eq!(code(&out), 65, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("template field {name}: no such column"),
        "{}",
        describe(&out)
    );
}
