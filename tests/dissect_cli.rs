//! mail-dissect as users run it: the real binary in a temporary folder.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mail-dissect");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/dissect")
        .join(name)
}

fn original_pdf() -> Vec<u8> {
    fs::read(fixture("invoice.pdf")).unwrap()
}

/// Runs the binary in `dir` with `stdin`; on a surprising status the
/// assertion message shows the command, folder, output and a listing.
fn run(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("MAILBOT_DISSECT_OUT")
        .env("HOME", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn explain(dir: &Path, args: &[&str], out: &Output) -> String {
    let mut listing = Vec::new();
    list(dir, &mut listing);
    format!(
        "command: mail-dissect {args:?}\nin: {}\nstatus: {:?}\nstdout:\n{}\nstderr:\n{}\nfiles:\n{}",
        dir.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        listing.join("\n")
    )
}

fn list(dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let m = fs::symlink_metadata(&p).unwrap();
        out.push(format!("{} ({} bytes)", p.display(), m.len()));
        if m.is_dir() {
            list(&p, out);
        }
    }
}

fn expect(dir: &Path, args: &[&str], stdin: &[u8], code: i32) -> Output {
    let out = run(dir, args, stdin);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        explain(dir, args, &out)
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

fn message_with_pdf_named(name: &str) -> Vec<u8> {
    let raw = fs::read(fixture("pdf-invoice.eml")).unwrap();
    let text = String::from_utf8(raw).unwrap();
    text.replace(
        "filename=\"invoice.pdf\"",
        &format!("filename=\"{}\"", name.replace('"', "\\\"")),
    )
    .into_bytes()
}

#[test]
fn the_course_step_pdf_back_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let eml = fixture("pdf-invoice.eml");
    let out = expect(tmp.path(), &[eml.to_str().unwrap()], b"", 0);
    let paths = lines(&out);
    let pdf = paths.iter().find(|p| p.ends_with("invoice.pdf")).unwrap();
    assert_eq!(fs::read(tmp.path().join(pdf)).unwrap(), original_pdf());
    let folder = tmp.path().join(pdf).parent().unwrap().to_path_buf();
    assert!(folder.join("message.json").is_file());
    assert!(folder.join("body.txt").is_file());
    // --sync flushes with syncfs before the end; the output is the same.
    let out = expect(
        tmp.path(),
        &["--sync", "--out", "synced", eml.to_str().unwrap()],
        b"",
        0,
    );
    let synced = lines(&out);
    let pdf = synced.iter().find(|p| p.ends_with("invoice.pdf")).unwrap();
    assert!(pdf.starts_with("synced/"), "{pdf}");
    assert_eq!(fs::read(tmp.path().join(pdf)).unwrap(), original_pdf());
}

#[test]
fn print_cmd_quotes_a_nasty_name() {
    let tmp = tempfile::tempdir().unwrap();
    let name = "it's a $(touch pwned) `x`.pdf";
    fs::write(tmp.path().join("m.eml"), message_with_pdf_named(name)).unwrap();
    let out = expect(tmp.path(), &["--pdf", "--print-cmd", "m.eml"], b"", 0);
    let cmds = lines(&out);
    assert_eq!(cmds.len(), 1);
    assert!(cmds[0].starts_with("lpr '"), "{}", cmds[0]);
    // The printed command, run by a real shell, reaches exactly that file.
    let out = expect(
        tmp.path(),
        &["--pdf", "--print-cmd=cat {}", "m.eml"],
        b"",
        0,
    );
    let cmd = lines(&out).remove(0);
    let shell = Command::new("sh")
        .args(["-c", &cmd])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(shell.status.success(), "{cmd}");
    assert_eq!(shell.stdout, original_pdf());
    assert!(!tmp.path().join("pwned").exists());
    // --printer gives lpr -P with the printer name quoted too.
    let out = expect(
        tmp.path(),
        &["--pdf", "--printer", "office 2", "m.eml"],
        b"",
        0,
    );
    assert!(lines(&out)[0].starts_with("lpr -P 'office 2' '"));
}

#[test]
fn rerun_writes_nothing_new() {
    let tmp = tempfile::tempdir().unwrap();
    let emls: Vec<String> = ["pdf-invoice.eml", "names.eml", "nested-rfc822.eml"]
        .iter()
        .map(|n| fixture(n).display().to_string())
        .collect();
    let args: Vec<&str> = emls.iter().map(String::as_str).collect();
    let first = expect(tmp.path(), &args, b"", 0);
    let mut before = Vec::new();
    list(tmp.path(), &mut before);
    let json_mtime = |out: &Output| {
        let p = tmp.path().join(&lines(out)[0]);
        fs::metadata(p.parent().unwrap().join("message.json"))
            .unwrap()
            .modified()
            .unwrap()
    };
    let t1 = json_mtime(&first);
    let second = expect(tmp.path(), &args, b"", 0);
    let mut after = Vec::new();
    list(tmp.path(), &mut after);
    assert_eq!(before, after);
    assert_eq!(lines(&first), lines(&second));
    assert_eq!(t1, json_mtime(&second));
    // Flat output too: the same bytes under the same name are reused.
    expect(
        tmp.path(),
        &["--flat", "flat"]
            .iter()
            .copied()
            .chain(args.iter().copied())
            .collect::<Vec<_>>(),
        b"",
        0,
    );
    let n = fs::read_dir(tmp.path().join("flat")).unwrap().count();
    expect(
        tmp.path(),
        &["--flat", "flat"]
            .iter()
            .copied()
            .chain(args.iter().copied())
            .collect::<Vec<_>>(),
        b"",
        0,
    );
    assert_eq!(fs::read_dir(tmp.path().join("flat")).unwrap().count(), n);
}

#[test]
fn a_bad_message_among_good_ones_gives_1() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("empty.eml"), b"").unwrap();
    let good = fixture("pdf-invoice.eml").display().to_string();
    let out = expect(tmp.path(), &["empty.eml", &good], b"", 1);
    assert!(lines(&out).iter().any(|l| l.ends_with("invoice.pdf")));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("mail-dissect: empty.eml: "), "{err}");
    assert!(err.contains("not a message"), "{err}");
    assert_eq!(err.lines().count(), 1);
}

/// Text without a header (a saved body, a text that starts with a blank
/// line) is a message whose body is the whole text; only an empty file
/// is not a message.
#[test]
fn a_file_without_header_fields_is_still_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["no-header-body-only.eml", "no-header-blank-first.eml"] {
        let eml = fixture(name).display().to_string();
        let out = expect(tmp.path(), &["--json", &eml], b"", 0);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let body = report["files"][0]["path"].as_str().unwrap();
        assert!(body.ends_with("body.txt"), "{name}: {report}");
        let text = fs::read_to_string(tmp.path().join(body)).unwrap();
        assert!(text.starts_with(if name.contains("blank") {
            "A text"
        } else {
            "Hello Bob,"
        }));
        let defects = report["defects"].to_string();
        assert!(defects.contains("no header fields"), "{name}: {defects}");
    }
    let out = expect(
        tmp.path(),
        &[fixture("no-header-body-only.eml").to_str().unwrap()],
        b"",
        0,
    );
    let notes = lines(&out)
        .into_iter()
        .find(|l| l.ends_with("notes.txt"))
        .unwrap();
    assert_eq!(
        fs::read(tmp.path().join(notes)).unwrap(),
        b"the notes for the meeting are in this file.\n"
    );
}

/// Embedded Outlook items in a winmail.dat are files of their own, and
/// message.json says which item each file was inside and what it is.
#[test]
fn tnef_items_are_recorded_in_message_json() {
    let tmp = tempfile::tempdir().unwrap();
    let eml = fixture("tnef-embedded-items.eml").display().to_string();
    let out = expect(tmp.path(), &["--json", &eml], b"", 0);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = report["files"].as_array().unwrap();
    let find = |name: &str| {
        files
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("no {name} in {report}"))
    };
    assert_eq!(find("/Send the report.tnef")["item_class"], "IPM.Task");
    assert_eq!(
        find("/AGENDA.TXT")["within"],
        serde_json::json!(["Fwd: figures.tnef", "Review meeting.tnef"])
    );
    assert!(find("/REPORT.TXT").get("within").is_none());
    let agenda = tmp
        .path()
        .join(find("/AGENDA.TXT")["path"].as_str().unwrap());
    assert_eq!(fs::read(agenda).unwrap(), b"1. figures\r\n2. budget\r\n");
}

#[test]
fn a_missing_input_gives_66_and_the_rest_is_done() {
    let tmp = tempfile::tempdir().unwrap();
    let good = fixture("pdf-invoice.eml").display().to_string();
    let out = expect(tmp.path(), &["nope.eml", &good], b"", 66);
    assert!(lines(&out).iter().any(|l| l.ends_with("invoice.pdf")));
}

#[test]
fn an_unwritable_output_gives_73() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("file"), b"").unwrap();
    let good = fixture("pdf-invoice.eml").display().to_string();
    expect(tmp.path(), &["--out", "file/sub", &good], b"", 73);
    expect(tmp.path(), &["--flat", "file", &good], b"", 73);
}

/// Paths are bytes on Unix, but message.json records them as UTF-8: an
/// output folder whose path is not UTF-8 is refused with 64 before
/// anything is written (it used to get body.txt and no message.json).
#[test]
fn an_output_path_that_is_not_utf8_is_refused_up_front() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let bad = std::ffi::OsStr::from_bytes(b"out-\xff");
    let good = fixture("pdf-invoice.eml");
    for flag in ["--out", "--flat"] {
        let out = Command::new(BIN)
            .arg(flag)
            .arg(bad)
            .arg(&good)
            .current_dir(tmp.path())
            .env_remove("MAILBOT_DISSECT_OUT")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{flag}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("mail-dissect: out-"), "{err}");
        assert!(err.contains("not UTF-8"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(out.stdout.is_empty());
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "{flag}: something was written"
        );
    }
    let out = Command::new(BIN)
        .arg(&good)
        .current_dir(tmp.path())
        .env("MAILBOT_DISSECT_OUT", bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
}

#[test]
fn a_planted_symlink_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim.txt");
    fs::write(&victim, b"precious").unwrap();
    fs::create_dir(tmp.path().join("flat")).unwrap();
    std::os::unix::fs::symlink(&victim, tmp.path().join("flat/invoice.pdf")).unwrap();
    let good = fixture("pdf-invoice.eml").display().to_string();
    let out = expect(tmp.path(), &["--flat", "flat", &good], b"", 0);
    assert_eq!(lines(&out), ["flat/invoice (1).pdf"]);
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    assert_eq!(
        fs::read(tmp.path().join("flat/invoice (1).pdf")).unwrap(),
        original_pdf()
    );
    // A symlink in place of a message folder is refused, not followed.
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::create_dir(tmp.path().join("out")).unwrap();
    let d = mailbot::dissect::dissect_bytes(
        &fs::read(fixture("pdf-invoice.eml")).unwrap(),
        &mailbot::dissect::Options::all(),
    );
    let folder = mailbot::dissect::folder_name(&d);
    std::os::unix::fs::symlink(&elsewhere, tmp.path().join("out").join(folder)).unwrap();
    expect(tmp.path(), &["--out", "out", &good], b"", 73);
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn nul_separated_output_and_stdin_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let a = fixture("pdf-invoice.eml").display().to_string();
    let b = fixture("names.eml").display().to_string();
    let input = format!("{a}\0{b}\0");
    let out = expect(tmp.path(), &["--stdin", "-0"], input.as_bytes(), 0);
    let items: Vec<&[u8]> = out
        .stdout
        .split(|&c| c == 0)
        .filter(|s| !s.is_empty())
        .collect();
    assert!(out.stdout.ends_with(b"\0"));
    assert!(items.len() >= 9, "{items:?}");
    assert!(
        items
            .iter()
            .any(|i| i.ends_with(b"Rechnung M\xc3\xa4rz 2024.pdf"))
    );
    let out = expect(
        tmp.path(),
        &["--stdin", "--pdf"],
        format!("{a}\n{b}\n").as_bytes(),
        0,
    );
    assert_eq!(lines(&out).len(), 2);
}

#[test]
fn json_lines_parse_and_list_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let a = fixture("pdf-invoice.eml").display().to_string();
    let b = fixture("broken-structure.eml").display().to_string();
    let out = expect(tmp.path(), &["--json", &a, &b], b"", 0);
    let objs: Vec<serde_json::Value> = lines(&out)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 2);
    let files = objs[0]["files"].as_array().unwrap();
    let pdf = files
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("invoice.pdf"))
        .unwrap();
    assert_eq!(pdf["size"], 590);
    assert_eq!(pdf["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(objs[0]["headers"]["subject"], "Invoice 42");
    assert!(!objs[1]["defects"].as_array().unwrap().is_empty());
    // The same object is in message.json.
    let folder = objs[0]["folder"].as_str().unwrap();
    let on_disk: serde_json::Value =
        serde_json::from_slice(&fs::read(tmp.path().join(folder).join("message.json")).unwrap())
            .unwrap();
    assert_eq!(on_disk, objs[0]);
}

#[test]
fn one_message_on_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = fs::read(fixture("pdf-invoice.eml")).unwrap();
    let out = expect(tmp.path(), &["--pdf", "-"], &raw, 0);
    let paths = lines(&out);
    assert_eq!(paths.len(), 1);
    assert_eq!(
        fs::read(tmp.path().join(&paths[0])).unwrap(),
        original_pdf()
    );
}

#[test]
fn maildirs_and_recursion() {
    let tmp = tempfile::tempdir().unwrap();
    let md = mailbot::maildir::Maildir::create(tmp.path().join("Mail")).unwrap();
    md.deliver(&fs::read(fixture("pdf-invoice.eml")).unwrap())
        .unwrap();
    let sub = md.create_maildirpp_folder("Archive").unwrap();
    sub.deliver(&fs::read(fixture("single-base64-pdf.eml")).unwrap())
        .unwrap();
    let out = expect(tmp.path(), &["--pdf", "Mail"], b"", 0);
    assert_eq!(lines(&out).len(), 1);
    let out = expect(tmp.path(), &["--pdf", "-r", "Mail"], b"", 0);
    assert_eq!(lines(&out).len(), 2);
    fs::create_dir(tmp.path().join("plain")).unwrap();
    expect(tmp.path(), &["plain"], b"", 66);
}

#[test]
fn exec_runs_without_a_shell_and_counts_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let good = fixture("pdf-invoice.eml").display().to_string();
    let out = expect(
        tmp.path(),
        &["--pdf", "--exec", "cp {} copy.pdf", &good],
        b"",
        0,
    );
    assert!(out.stdout.is_empty());
    assert_eq!(
        fs::read(tmp.path().join("copy.pdf")).unwrap(),
        original_pdf()
    );
    // A re-run finds the message done: nothing runs again.
    fs::remove_file(tmp.path().join("copy.pdf")).unwrap();
    expect(
        tmp.path(),
        &["--pdf", "--exec", "cp {} copy.pdf", &good],
        b"",
        0,
    );
    assert!(!tmp.path().join("copy.pdf").exists());
    let other = tmp.path().join("other");
    expect(
        tmp.path(),
        &["--pdf", "--out", "other", "--exec", "false", &good],
        b"",
        1,
    );
    assert!(other.is_dir());
}

#[test]
fn every_help_example_works() {
    let tmp = tempfile::tempdir().unwrap();
    fs::copy(fixture("pdf-invoice.eml"), tmp.path().join("message.eml")).unwrap();
    fs::copy(fixture("mboxo.mbox"), tmp.path().join("All mail.mbox")).unwrap();
    let md = mailbot::maildir::Maildir::create(tmp.path().join("Maildir")).unwrap();
    md.deliver(&fs::read(fixture("names.eml")).unwrap())
        .unwrap();
    let help = expect(tmp.path(), &["--help"], b"", 0);
    let help = String::from_utf8(help.stdout).unwrap();
    let examples: Vec<&str> = help
        .split("Examples:")
        .nth(1)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   ") && l.contains("mail-dissect"))
        .map(str::trim)
        .collect();
    assert!(examples.len() >= 5, "{examples:?}");
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for example in examples {
        let out = Command::new("sh")
            .args(["-c", example])
            .current_dir(tmp.path())
            .env("PATH", &path)
            .env("HOME", tmp.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.stdout.is_empty() || example.contains("--exec") || example.contains("--flat"),
            "{example}"
        );
    }
}

#[test]
fn no_input_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = expect(tmp.path(), &[], b"", 64);
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("mail-dissect: "));
    expect(tmp.path(), &["--no-such-flag", "x"], b"", 64);
}

#[test]
fn message_json_lists_each_part_with_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let eml = fixture("pdf-invoice.eml").display().to_string();
    let out = expect(tmp.path(), &["--json", &eml], b"", 0);
    let v: serde_json::Value = serde_json::from_str(&lines(&out)[0]).unwrap();
    let parts = v["parts"].as_array().unwrap();
    let pdf = parts.iter().find(|p| p["path"] == "2").unwrap();
    assert_eq!(pdf["declared_name"], "invoice.pdf");
    assert_eq!(pdf["transfer_encoding"], "base64");
    assert_eq!(pdf["files"][0]["file"], "invoice.pdf");
    assert_eq!(pdf["files"][0]["size"], 590);
    let body = parts.iter().find(|p| p["path"] == "1").unwrap();
    assert_eq!(body["files"][0]["file"], "body.txt");
    assert_eq!(v["headers"]["raw"][0]["name"], "From");
}

#[test]
fn stdin_paths_are_dissected_as_they_come() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["--stdin", "--pdf"])
        .current_dir(tmp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", fixture("pdf-invoice.eml").display()).unwrap();
    stdin.flush().unwrap();
    // The path comes back while stdin is still open (a producer such as
    // `mail-sync --watch` never closes it).
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        tx.send(line).unwrap();
    });
    let line = rx.recv_timeout(std::time::Duration::from_secs(20));
    drop(stdin);
    let status = child.wait().unwrap();
    let line = line.expect("no output before stdin was closed");
    assert!(line.trim_end().ends_with("invoice.pdf"), "{line}");
    assert!(status.success());
}

/// A message with one PDF attachment called `name` holding `data`.
fn message_with(subject: &str, name: &str, data: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "From: a@example.org\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
         Content-Type: text/plain\r\n\r\n{subject}\r\n--b\r\n\
         Content-Type: application/pdf\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    mailbot::compose::base64_lines(data, &mut m);
    m.extend_from_slice(b"\r\n--b--\r\n");
    m
}

/// Many messages of very different sizes (one bigger than the window of
/// bytes in work at once) are dissected on all workers, and everything
/// comes out as one message at a time would give it: stdout in input
/// order, and flat output numbering same-named files in input order.
#[test]
fn many_messages_on_all_workers_come_out_in_input_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("msgs");
    fs::create_dir(&dir).unwrap();
    let mut files = Vec::new();
    let mut contents = Vec::new();
    for i in 0..48usize {
        let size = if i == 17 {
            17 << 20
        } else {
            (i * 7919 % 53) * 3000 + 100
        };
        let data: Vec<u8> = (0..size).map(|k| (k * 31 + i * 7) as u8).collect();
        // Four names in turn, so flat output has to number them.
        let name = format!("invoice-{}.pdf", i % 4);
        let path = dir.join(format!("{i:03}.eml"));
        fs::write(&path, message_with(&format!("Message {i}"), &name, &data)).unwrap();
        files.push(path.display().to_string());
        contents.push(data);
    }
    let args =
        |mode: &str, out: &str| -> Vec<String> { vec!["--pdf".into(), mode.into(), out.into()] };
    for mode in ["--flat", "--out"] {
        // All at once, on all workers.
        let mut all = args(mode, "together");
        all.extend(files.iter().cloned());
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let together = lines(&expect(tmp.path(), &all, b"", 0));
        // One process per message, in order.
        let mut apart = Vec::new();
        for f in &files {
            let mut one = args(mode, "apart");
            one.push(f.clone());
            let one: Vec<&str> = one.iter().map(String::as_str).collect();
            apart.extend(lines(&expect(tmp.path(), &one, b"", 0)));
        }
        let apart: Vec<String> = apart
            .iter()
            .map(|p| p.replacen("apart/", "together/", 1))
            .collect();
        assert_eq!(together, apart, "{mode}");
        assert_eq!(together.len(), files.len(), "{mode}");
        for (path, data) in together.iter().zip(&contents) {
            assert!(
                fs::read(tmp.path().join(path)).unwrap() == *data,
                "{mode}: {path} holds other bytes"
            );
        }
        fs::remove_dir_all(tmp.path().join("together")).unwrap();
        fs::remove_dir_all(tmp.path().join("apart")).unwrap();
    }
}
