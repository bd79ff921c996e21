//! mbox files as users have them (Thunderbird, spools, Google Takeout),
//! through the real binaries: `mail-dissect FILE.mbox` gives every
//! message its own folder, exactly as the message on its own would get;
//! `mail-inject --raw --mbox FILE --maildir DIR` turns the mbox into a
//! maildir that `mail-index` and `mail-dissect` read.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const DISSECT: &str = env!("CARGO_BIN_EXE_mail-dissect");
const INJECT: &str = env!("CARGO_BIN_EXE_mail-inject");
const INDEX: &str = env!("CARGO_BIN_EXE_mail-index");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/dissect")
        .join(name)
}

/// Runs `bin` in `dir` with `stdin`, with no MAILBOT_ or NOTMUCH_
/// variables of the caller's.
fn run(bin: &str, dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(bin);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("MAILBOT_") || name.starts_with("NOTMUCH_") {
            cmd.env_remove(&name);
        }
    }
    let mut child = cmd
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join(".config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn expect(bin: &str, dir: &Path, args: &[&str], stdin: &[u8], code: i32) -> Output {
    let out = run(bin, dir, args, stdin);
    assert_eq!(
        out.status.code(),
        Some(code),
        "command: {bin} {args:?}\nin: {}\nstdout:\n{}\nstderr:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The message folders under `out`, sorted by name.
fn folders(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn report(folder: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(folder.join("message.json")).unwrap()).unwrap()
}

/// The folder each message of an mbox would get as a file of its own.
fn folders_of_messages_alone(tmp: &Path, messages: &[&str]) -> Vec<String> {
    let alone = tmp.join("alone");
    fs::create_dir_all(&alone).unwrap();
    for (i, m) in messages.iter().enumerate() {
        let file = alone.join(format!("{i}.eml"));
        fs::write(&file, m).unwrap();
        let out = alone.join("out");
        expect(
            DISSECT,
            tmp,
            &["--out", out.to_str().unwrap(), file.to_str().unwrap()],
            b"",
            0,
        );
    }
    folders(&alone.join("out"))
}

#[test]
fn every_message_of_an_mbox_gets_the_folder_it_would_get_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let mbox = fixture("mboxo.mbox");
    let out = expect(DISSECT, tmp.path(), &[mbox.to_str().unwrap()], b"", 0);
    let written = lines(&out);
    let out_dir = tmp.path().join("dissected");
    let got = folders(&out_dir);
    assert_eq!(got.len(), 3, "{got:?}");
    // The invoice (message 2) is pdf-invoice.eml byte for byte.
    let invoice = fs::read_to_string(fixture("pdf-invoice.eml")).unwrap();
    let alone = folders_of_messages_alone(tmp.path(), &[&invoice]);
    assert!(got.contains(&alone[0]), "{got:?} lacks {alone:?}");
    let folder = out_dir.join(&alone[0]);
    assert_eq!(
        fs::read(folder.join("invoice.pdf")).unwrap(),
        fs::read(fixture("invoice.pdf")).unwrap()
    );
    let source = &report(&folder)["source"];
    assert_eq!(source["mbox"], mbox.to_str().unwrap());
    assert_eq!(source["message"], 2);
    assert_eq!(source["offset"], 284);
    assert_eq!(source["envelope"], "- Mon Jan  5 10:00:01 2026");
    // The uuencoded file of message 3 and the unquoted body of message 1.
    assert!(
        written.iter().any(|p| p.ends_with("/notes.txt")),
        "{written:?}"
    );
    let lunch = got.iter().find(|f| f.starts_with("lunch-")).unwrap();
    let body = fs::read_to_string(out_dir.join(lunch).join("body.txt")).unwrap();
    assert!(body.contains("\nFrom what I hear"), "{body}");

    // A re-run writes nothing and reports the same files.
    let json_before = fs::read(folder.join("message.json")).unwrap();
    let again = expect(DISSECT, tmp.path(), &[mbox.to_str().unwrap()], b"", 0);
    assert_eq!(lines(&again), written);
    assert_eq!(folders(&out_dir), got);
    assert_eq!(fs::read(folder.join("message.json")).unwrap(), json_before);

    // On stdin: the same folders, the same files.
    let raw = fs::read(&mbox).unwrap();
    let piped = expect(DISSECT, tmp.path(), &["--out", "piped", "-"], &raw, 0);
    assert_eq!(folders(&tmp.path().join("piped")), got);
    assert_eq!(lines(&piped).len(), written.len());
    assert_eq!(
        report(&tmp.path().join("piped").join(&alone[0]))["source"]["mbox"],
        "-"
    );

    // --json: one object per message, each with its source.
    let json = expect(DISSECT, tmp.path(), &["--json", "--out", "j", "-"], &raw, 0);
    let numbers: Vec<u64> = lines(&json)
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["source"]["message"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(numbers, [1, 2, 3]);

    // --no-mbox: the file is one message, as before mbox reading.
    expect(
        DISSECT,
        tmp.path(),
        &["--no-mbox", "--out", "whole", mbox.to_str().unwrap()],
        b"",
        0,
    );
    assert_eq!(folders(&tmp.path().join("whole")).len(), 1);
}

#[test]
fn a_file_with_a_from_line_and_one_message_stays_one_message() {
    let tmp = tempfile::tempdir().unwrap();
    let eml = fixture("mbox-single-message.eml");
    let path = eml.to_str().unwrap();
    expect(DISSECT, tmp.path(), &["--out", "a", path], b"", 0);
    expect(
        DISSECT,
        tmp.path(),
        &["--no-mbox", "--out", "b", path],
        b"",
        0,
    );
    let a = folders(&tmp.path().join("a"));
    assert_eq!(a.len(), 1);
    assert_eq!(a, folders(&tmp.path().join("b")));
    // Named after the whole file, From_ line and all, as always.
    let d = mailbot::dissect::dissect_bytes(&fs::read(&eml).unwrap(), &Default::default());
    assert_eq!(a[0], mailbot::dissect::folder_name(&d));
    let folder = tmp.path().join("a").join(&a[0]);
    assert!(report(&folder).get("source").is_none());
    assert_eq!(
        fs::read(folder.join("invoice.pdf")).unwrap(),
        fs::read(fixture("invoice.pdf")).unwrap()
    );
    // Forced, it is an mbox of one message: the message without the
    // From_ line, which is what pdf-invoice.eml holds.
    expect(DISSECT, tmp.path(), &["--mbox", "--out", "c", path], b"", 0);
    let c = folders(&tmp.path().join("c"));
    let invoice = fs::read_to_string(fixture("pdf-invoice.eml")).unwrap();
    assert_eq!(c, folders_of_messages_alone(tmp.path(), &[&invoice]));
    assert_eq!(
        report(&tmp.path().join("c").join(&c[0]))["source"]["message"],
        1
    );
}

#[test]
fn a_damaged_message_fails_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let mbox = fixture("mbox-damaged.mbox");
    let out = expect(
        DISSECT,
        tmp.path(),
        &["--json", mbox.to_str().unwrap()],
        b"",
        1,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mbox-damaged.mbox: message 2 (byte 67): not a message"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let reports: Vec<Value> = lines(&out)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let numbers: Vec<u64> = reports
        .iter()
        .map(|r| r["source"]["message"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 3, 4, 5]);
    assert_eq!(folders(&tmp.path().join("dissected")).len(), 4);
    // The guessed Content-Length is a defect of that message.
    let defects = reports[1]["defects"].as_array().unwrap();
    assert_eq!(defects[0]["kind"], "mbox");
    assert!(
        defects[0]["detail"]
            .as_str()
            .unwrap()
            .contains("Content-Length 3")
    );
}

#[test]
fn a_crlf_mbox_on_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = fs::read_to_string(fixture("mboxrd.mbox")).unwrap();
    let crlf = raw.replace('\n', "\r\n");
    let out = expect(DISSECT, tmp.path(), &["--json", "-"], crlf.as_bytes(), 0);
    let reports: Vec<Value> = lines(&out)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["headers"]["subject"], "Quoting");
    assert_eq!(
        reports[1]["source"]["envelope"],
        "erin@example.test Tue Jan  6 09:00:00 2026"
    );
    let folder = Path::new(reports[0]["folder"].as_str().unwrap());
    let body = fs::read_to_string(tmp.path().join(folder).join("body.txt")).unwrap();
    assert!(body.contains(">From the log"), "{body:?}");
    assert!(body.contains("\nFrom  this line"), "{body:?}");
}

#[test]
fn mbox_to_maildir_then_index_and_dissect() {
    let tmp = tempfile::tempdir().unwrap();
    let mbox = fixture("mboxo.mbox");
    let md = tmp.path().join("Mail");
    let md_arg = md.to_str().unwrap();
    let args = [
        "--raw",
        "--mbox",
        mbox.to_str().unwrap(),
        "--maildir",
        md_arg,
    ];
    let out = expect(INJECT, tmp.path(), &args, b"", 0);
    let delivered = lines(&out);
    assert_eq!(delivered.len(), 3, "{delivered:?}");
    for p in &delivered {
        let p = Path::new(p);
        assert_eq!(p.parent().unwrap(), md.join("new"));
        assert_eq!(fs::metadata(p).unwrap().permissions().mode() & 0o777, 0o600);
        let text = fs::read(p).unwrap();
        assert!(!text.starts_with(b"From "), "{}", p.display());
    }
    for sub in ["", "new", "cur", "tmp"] {
        let mode = fs::metadata(md.join(sub)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{sub}");
    }
    assert_eq!(
        fs::read(&delivered[1]).unwrap(),
        fs::read(fixture("pdf-invoice.eml")).unwrap()
    );
    // A re-run adds nothing: the messages are there.
    let again = expect(INJECT, tmp.path(), &args, b"", 0);
    assert!(again.stdout.is_empty());
    assert_eq!(fs::read_dir(md.join("new")).unwrap().count(), 3);
    // Still nothing once a reader has moved them to cur/.
    for p in &delivered {
        let name = Path::new(p)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        fs::rename(p, md.join("cur").join(format!("{name}:2,S"))).unwrap();
    }
    let third = expect(INJECT, tmp.path(), &args, b"", 0);
    assert!(third.stdout.is_empty());

    // mail-index reads the maildir.
    expect(INDEX, tmp.path(), &["--maildir", md_arg, "new"], b"", 0);
    let count = expect(
        INDEX,
        tmp.path(),
        &["--maildir", md_arg, "count", "*"],
        b"",
        0,
    );
    assert_eq!(lines(&count), ["3"]);
    let found = expect(
        INDEX,
        tmp.path(),
        &[
            "--maildir",
            md_arg,
            "search",
            "--output",
            "files",
            "subject:invoice",
        ],
        b"",
        0,
    );
    assert_eq!(lines(&found).len(), 1);

    // mail-dissect on the maildir gives the folders of the mbox.
    expect(
        DISSECT,
        tmp.path(),
        &["--out", "from-maildir", md_arg],
        b"",
        0,
    );
    expect(
        DISSECT,
        tmp.path(),
        &["--out", "from-mbox", mbox.to_str().unwrap()],
        b"",
        0,
    );
    assert_eq!(
        folders(&tmp.path().join("from-maildir")),
        folders(&tmp.path().join("from-mbox"))
    );
}

#[test]
fn mail_inject_mbox_reports_a_damaged_message_and_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let mbox = fixture("mbox-damaged.mbox");
    let out = expect(
        INJECT,
        tmp.path(),
        &[
            "--raw",
            "--mbox",
            mbox.to_str().unwrap(),
            "--maildir",
            "Mail",
        ],
        b"",
        1,
    );
    assert_eq!(lines(&out).len(), 4);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("message 2 (byte 67): not a message"),
        "{stderr}"
    );
    // CRLF on stdin: delivered with LF line ends.
    let crlf = fs::read_to_string(fixture("mboxrd.mbox"))
        .unwrap()
        .replace('\n', "\r\n");
    let out = expect(
        INJECT,
        tmp.path(),
        &["--raw", "--mbox", "-", "--maildir", "Lf"],
        crlf.as_bytes(),
        0,
    );
    for p in lines(&out) {
        assert!(!fs::read(tmp.path().join(p)).unwrap().contains(&b'\r'));
    }
}
