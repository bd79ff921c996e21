//! mail-inject without a server: composing (golden files for pinned
//! date, id and boundary; parsing the output back with mail-parser and
//! Python), the local targets (-o, --maildir) and the exit codes for bad
//! input.

mod inject_common;

use std::fs;
use std::path::{Path, PathBuf};

use inject_common::{code, describe, inject, run};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/inject")
}

/// The pinned flags every golden case shares.
const PINS: [&str; 6] = [
    "--date",
    "Mon, 23 Nov 2026 12:00:00 +0000",
    "--message-id",
    "golden@mailbot.test",
    "--boundary",
    "b0undary",
];

struct Golden {
    name: &'static str,
    args: Vec<String>,
    body: &'static str,
}

fn golden_cases() -> Vec<Golden> {
    let f = |n: &str| fixtures().join("files").join(n).display().to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        Golden {
            name: "plain",
            args: s(&[
                "-r",
                "Alice <alice@mailbot.test>",
                "-s",
                "Hello",
                "bob@mailbot.test",
            ]),
            body: "Hi Bob,\n\njust text.\n",
        },
        Golden {
            name: "utf8-headers-and-body",
            args: s(&[
                "-r",
                "J\u{fc}rgen M\u{fc}ller <jm@mailbot.test>",
                "-s",
                "Gr\u{fc}\u{df}e aus M\u{fc}nchen \u{2014} Bericht f\u{fc}r M\u{e4}rz",
                "-c",
                "\"Doe, Jane\" <jane@mailbot.test>",
                "--reply-to",
                "team@mailbot.test",
                "--in-reply-to",
                "<parent@mailbot.test>",
                "-H",
                "X-Mailer-Test: caf\u{e9}",
                "Bob <bob@mailbot.test>",
            ]),
            body: "Gr\u{fc}\u{df}e,\n.leading dot and a long line: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
        },
        Golden {
            name: "pdf-attachment",
            args: vec![
                "-r".into(),
                "alice@mailbot.test".into(),
                "-s".into(),
                "Report".into(),
                "-a".into(),
                f("\u{dc}bersicht M\u{e4}rz.pdf"),
                "-a".into(),
                format!("{};type=text/plain;name=notes.txt", f("scan")),
                "bob@mailbot.test".into(),
            ],
            body: "See attached.\n",
        },
        Golden {
            name: "html-inline",
            args: vec![
                "-r".into(),
                "alice@mailbot.test".into(),
                "-s".into(),
                "Newsletter".into(),
                "--html".into(),
                f("page.html"),
                "--inline".into(),
                f("logo.png"),
                "-a".into(),
                f("\u{dc}bersicht M\u{e4}rz.pdf"),
                "bob@mailbot.test".into(),
            ],
            body: "Text version.\n",
        },
    ]
}

/// Text as decoded from a message (CRLF) with LF line ends.
fn lf(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace("\r\n", "\n")
}

fn compose_golden(case: &Golden, crlf: bool) -> Vec<u8> {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = inject(home.path());
    cmd.args(PINS).args(&case.args).args(["-o", "-"]);
    let body = if crlf {
        case.body.replace('\n', "\r\n")
    } else {
        case.body.to_string()
    };
    let out = run(&mut cmd, body.as_bytes());
    assert_eq!(code(&out), 0, "{}: {}", case.name, describe(&out));
    out.stdout
}

#[test]
fn golden_files_match_byte_for_byte() {
    let cases = golden_cases();
    assert!(!cases.is_empty());
    let mut failed = Vec::new();
    for case in &cases {
        let got = compose_golden(case, false);
        let path = fixtures().join(format!("{}.eml", case.name));
        let failed_path = path.with_extension("eml.failed");
        if std::env::var_os("MAILBOT_BLESS").is_some() {
            fs::write(&path, &got).unwrap();
        }
        match fs::read(&path) {
            Ok(want) if want == got => {
                let _ = fs::remove_file(&failed_path);
            }
            _ => {
                fs::write(&failed_path, &got).unwrap();
                failed.push(failed_path.display().to_string());
            }
        }
        // CRLF input gives the same message as LF input.
        assert_eq!(
            compose_golden(case, true),
            got,
            "{}: CRLF input differs",
            case.name
        );
    }
    assert!(
        failed.is_empty(),
        "output differs from the golden file; see {failed:?} (MAILBOT_BLESS=1 rewrites them)"
    );
}

#[test]
fn output_parses_back_into_the_same_parts() {
    let case = &golden_cases()[3];
    let message = compose_golden(case, false);
    let files = fixtures().join("files");
    let pdf = fs::read(files.join("\u{dc}bersicht M\u{e4}rz.pdf")).unwrap();
    let png = fs::read(files.join("logo.png")).unwrap();
    let html = fs::read_to_string(files.join("page.html")).unwrap();

    let parts = inject_common::python_parts(&message);
    let types: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        types,
        ["text/plain", "text/html", "image/png", "application/pdf"]
    );
    assert_eq!(lf(&parts[0].2), case.body);
    assert_eq!(lf(&parts[1].2), html);
    assert_eq!(parts[2].2, png);
    assert_eq!(parts[2].1.as_deref(), Some("logo.png"));
    assert_eq!(parts[3].2, pdf);
    assert_eq!(parts[3].1.as_deref(), Some("\u{dc}bersicht M\u{e4}rz.pdf"));

    let parsed = mail_parser::MessageParser::default()
        .parse(&message)
        .unwrap();
    assert_eq!(
        parsed.body_text(0).unwrap().replace("\r\n", "\n"),
        case.body
    );
    assert!(parsed.body_html(0).unwrap().contains("cid:logo.png"));
    let atts = inject_common::mail_parser_attachments(&message);
    let names: Vec<_> = atts
        .iter()
        .map(|a| a.0.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["logo.png", "\u{dc}bersicht M\u{e4}rz.pdf"]);
    assert_eq!(atts[0].2, png);
    assert_eq!(atts[1].2, pdf);
}

#[test]
fn every_line_is_within_998_octets_and_crlf_terminated() {
    let home = tempfile::tempdir().unwrap();
    let long_name = format!("{}.pdf", "\u{e4}\u{f6}\u{fc}".repeat(30));
    let file = home.path().join(&long_name);
    fs::write(&file, inject_common::pdf(5000)).unwrap();
    let mut cmd = inject(home.path());
    cmd.args([
        "-r",
        "a@mailbot.test",
        "-s",
        &"long subject ".repeat(100),
        "-a",
        file.to_str().unwrap(),
        "-o",
        "-",
        "b@mailbot.test",
    ]);
    let body = format!("{}\n{}\n", "x".repeat(5000), "\u{fc}".repeat(2000));
    let out = run(&mut cmd, body.as_bytes());
    assert_eq!(code(&out), 0, "{}", describe(&out));
    for line in out.stdout.split_inclusive(|b| *b == b'\n') {
        assert!(
            line.ends_with(b"\r\n"),
            "bare LF in {:?}",
            String::from_utf8_lossy(line)
        );
        assert!(line.len() <= 1000, "line of {} octets", line.len());
    }
    let parts = inject_common::python_parts(&out.stdout);
    assert!(lf(&parts[0].2) == body, "text body changed");
    assert_eq!(parts[1].1.as_deref(), Some(long_name.as_str()));
    let atts = inject_common::mail_parser_attachments(&out.stdout);
    assert_eq!(atts[0].0.as_deref(), Some(long_name.as_str()));
}

#[test]
fn bad_input_has_its_exit_code() {
    let home = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["-a", "/nonexistent/report.pdf", "b@x.test"],
            66,
            "/nonexistent/report.pdf",
        ),
        (vec!["-a", "/tmp", "b@x.test"], 66, "/tmp"),
        (vec!["not-an-address"], 65, "not-an-address"),
        (vec!["-c", "a@@x.test", "b@x.test"], 65, "a@@x.test"),
        (
            vec!["-H", "X-A: 1\nBcc: v@x.test", "b@x.test"],
            64,
            "header injection",
        ),
        (
            vec!["-H", "Content-Type: text/html", "b@x.test"],
            64,
            "Content-Type",
        ),
        (
            vec!["--boundary", "bad boundary", "b@x.test"],
            64,
            "--boundary",
        ),
        (
            vec!["--body", "/nonexistent/body.txt", "b@x.test"],
            66,
            "body.txt",
        ),
    ];
    for (args, want, mention) in cases {
        let mut cmd = inject(home.path());
        cmd.args(["-r", "a@x.test", "-o", "-"]).args(&args);
        let out = run(&mut cmd, b"body\n");
        assert_eq!(code(&out), want, "{args:?}: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("mail-inject: "), "{err}");
        assert!(err.contains(mention), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(out.stdout.is_empty(), "no message on failure");
    }
}

#[test]
fn no_target_is_a_usage_error_with_a_hint() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = inject(home.path());
    cmd.args(["-r", "a@x.test", "b@x.test"]);
    let out = run(&mut cmd, b"x\n");
    assert_eq!(code(&out), 64, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--smtp") && err.contains("--maildir") && err.contains("-o"),
        "{err}"
    );
}

#[test]
fn maildir_and_file_targets_get_the_same_bytes() {
    let home = tempfile::tempdir().unwrap();
    let md = home.path().join("Mail/inbox");
    let file = home.path().join("out/msg.eml");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    let mut cmd = inject(home.path());
    cmd.args(["-r", "a@x.test", "-s", "both", "--maildir"])
        .arg(&md)
        .arg("-o")
        .arg(&file)
        .args(["--json", "b@x.test"]);
    let out = run(&mut cmd, b"hello\n");
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = stdout.lines();
    let delivered = PathBuf::from(lines.next().unwrap());
    assert!(delivered.starts_with(md.join("new")), "{stdout}");
    let summary: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert!(
        summary["message_id"]
            .as_str()
            .unwrap()
            .ends_with("@x.test>")
    );
    assert_eq!(summary["targets"].as_array().unwrap().len(), 2);
    // The same message; the maildir stores it with Unix line ends, as
    // every maildir writer does, the file as composed (CRLF).
    let composed = String::from_utf8(fs::read(&file).unwrap()).unwrap();
    assert!(composed.contains("\r\n"));
    assert_eq!(
        String::from_utf8(fs::read(&delivered).unwrap()).unwrap(),
        composed.replace("\r\n", "\n")
    );
    assert!(out.stderr.is_empty(), "silent on success");
    // No temporary file left next to the output.
    assert_eq!(fs::read_dir(file.parent().unwrap()).unwrap().count(), 1);
}

#[test]
fn raw_keeps_the_message_but_drops_bcc() {
    let home = tempfile::tempdir().unwrap();
    let raw = b"From: a@x.test\nTo: b@x.test\nBcc: secret@x.test,\n other@x.test\nSubject: raw\n\nBcc: in the body stays\n";
    let mut cmd = inject(home.path());
    cmd.args(["--raw", "-t", "-o", "-"]);
    let out = run(&mut cmd, raw);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(
        out.stdout,
        b"From: a@x.test\nTo: b@x.test\nSubject: raw\n\nBcc: in the body stays\n".to_vec()
    );
}

#[test]
fn stdin_terminal_is_not_waited_for_when_a_body_flag_is_given() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = inject(home.path());
    cmd.args([
        "-r",
        "a@x.test",
        "--body-text",
        "given",
        "-o",
        "-",
        "b@x.test",
    ]);
    let out = run(&mut cmd, b"ignored stdin\n");
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\r\n\r\ngiven\r\n") && !text.contains("ignored"),
        "{text}"
    );
}

#[test]
fn help_ends_with_examples_and_exit_codes() {
    let home = tempfile::tempdir().unwrap();
    let out = run(inject(home.path()).arg("--help"), b"");
    assert_eq!(code(&out), 0);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Examples:") && help.contains("Exit status:"),
        "{help}"
    );
    assert!(help.trim_end().ends_with("configuration error"), "{help}");
}

/// The local examples of `--help`, run as written (the SMTP ones are run
/// against the rig in tests/inject_rig.rs).
#[test]
fn help_examples_without_a_server_work() {
    let home = tempfile::tempdir().unwrap();
    let sh = |script: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .env(
                "PATH",
                format!(
                    "{}:/usr/bin:/bin",
                    inject_common::bin().parent().unwrap().display()
                ),
            )
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {}", describe(&out));
        out.stdout
    };
    let printed = sh(
        "mail-inject -r a@example.org -s Hello --body-text 'Hi there' --date @0 \
        --message-id 1@example.org --boundary b1 -o - b@example.org",
    );
    assert!(String::from_utf8_lossy(&printed).contains("Message-ID: <1@example.org>"));
    let path = sh(
        "echo 'backup done' | mail-inject -r cron@example.org -s 'backup' --maildir ~/Mail/inbox me@example.org",
    );
    let path = String::from_utf8(path).unwrap();
    assert!(Path::new(path.trim()).is_file(), "{path}");
}

#[test]
fn sendmail_gets_the_envelope_in_argv_and_the_message_on_stdin() {
    let home = tempfile::tempdir().unwrap();
    let stub = home.path().join("sendmail");
    fs::write(
        &stub,
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$0.args\"\ncat > \"$0.msg\"\nexit \"${STUB_EXIT:-0}\"\n",
    )
    .unwrap();
    fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let args = [
        "-r",
        "A <a@x.test>",
        "-s",
        "s",
        "-b",
        "hidden@x.test",
        "--date",
        "@0",
        "--message-id",
        "m@x",
    ];
    let mut cmd = inject(home.path());
    cmd.args(args)
        .arg(format!("--sendmail={}", stub.display()))
        .args(["b@x.test", "c@x.test"]);
    let out = run(&mut cmd, b"body\n");
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(
        fs::read_to_string(home.path().join("sendmail.args")).unwrap(),
        "-oi\n-f\na@x.test\n--\nb@x.test\nc@x.test\nhidden@x.test\n"
    );
    let mut cmd = inject(home.path());
    cmd.args(args).args(["-o", "-", "b@x.test", "c@x.test"]);
    let printed = run(&mut cmd, b"body\n").stdout;
    assert_eq!(fs::read(home.path().join("sendmail.msg")).unwrap(), printed);
    assert!(!String::from_utf8_lossy(&printed).contains("hidden"));
    // sendmail's own exit status keeps its meaning.
    let mut cmd = inject(home.path());
    cmd.env("STUB_EXIT", "75")
        .args(args)
        .arg(format!("--sendmail={}", stub.display()))
        .arg("b@x.test");
    let out = run(&mut cmd, b"body\n");
    assert_eq!(code(&out), 75, "{}", describe(&out));
}

/// `-o m1.eml`: a bare file name is a file in the current folder. Its
/// parent is the empty path, which once made the final directory sync
/// fail with exit 73 after the file was written.
#[test]
fn a_bare_output_file_name_is_written_in_the_current_folder() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = inject(home.path());
    cmd.current_dir(home.path())
        .args(["-r", "a@x.test", "-s", "bare", "--body-text", "hi"])
        .args(["-o", "m1.eml", "b@x.test"]);
    let out = run(&mut cmd, b"");
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(out.stderr.is_empty(), "{}", describe(&out));
    let written = fs::read_to_string(home.path().join("m1.eml")).unwrap();
    assert!(written.contains("Subject: bare\r\n"), "{written}");
    assert!(written.ends_with("hi\r\n"), "{written}");
}
