//! Shared by the mail-index tests: a maildir built from real messages of
//! the corpora (`MAILBOT_CORPORA` or `../shared/corpora`: notmuch's own
//! test maildir plus malformed, 8-bit and attachment-carrying messages
//! from other suites; without them those tests are skipped), the mail-index
//! binary run in a clean environment, and the notmuch CLI pointed at the
//! same database through a configuration file of its own.

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_mail-index");

#[path = "../support/corpora.rs"]
mod corpus_root;

/// The corpora, or `None` (the test is skipped) when there are none.
pub fn corpora() -> Option<PathBuf> {
    corpus_root::path("notmuch/test/corpora/default")?;
    corpus_root::root()
}

/// Messages copied into `.Corpus/cur/` of the test maildir, beside the
/// notmuch corpus: attachments (PDFs among them), 8-bit and RFC 2047
/// headers, broken MIME, a duplicate Message-ID, reference loops, and two
/// files notmuch does not take for mail (no From, To or Subject).
pub const EXTRA: &[&str] = &[
    "php-mime-mail-parser/tests/mails/m0001",
    "php-mime-mail-parser/tests/mails/m0013",
    "php-mime-mail-parser/tests/mails/m0014",
    "php-mime-mail-parser/tests/mails/m0018",
    "php-mime-mail-parser/tests/mails/m0024",
    "notmuch/test/corpora/indexing/fake-pdf:2,S",
    "stalwart-mail-parser/resources/eml/malformed/000.eml",
    "stalwart-mail-parser/resources/eml/malformed/001.eml",
    "enmime/testdata/low-quality/bad-final-boundary.raw",
    "enmime/testdata/low-quality/incorrect-charset.raw",
    "enmime/testdata/low-quality/malformed-base64-attach.raw",
    "enmime/testdata/low-quality/unk-charset-part.raw",
    "mikel-mail/spec/fixtures/emails/rfc6532/utf8_headers.eml",
    "mikel-mail/spec/fixtures/emails/error_emails/trademark_character_in_subject.eml",
    "mikel-mail/spec/fixtures/emails/multi_charset/japanese_attachment.eml",
    "notmuch/test/corpora/duplicate/msg-1-1:2,",
    "notmuch/test/corpora/duplicate/msg-1-2:2,",
    "notmuch/test/corpora/broken/broken-cc",
    "notmuch/test/corpora/broken/empty-part",
    "notmuch/test/corpora/broken/loop/loop-12",
    "notmuch/test/corpora/broken/loop/loop-21",
];

/// The two entries of [`EXTRA`] notmuch does not take for mail.
pub const NOT_MAIL: [usize; 2] = [6, 7];

/// The test maildir: notmuch's default corpus (nested folders, cur/ and
/// new/) with [`EXTRA`] in the Maildir++ folder `.Corpus`, plus files a
/// scan must skip (a delivery in progress in `tmp/`, a dot file, server
/// bookkeeping).
#[derive(Debug)]
pub struct Built {
    pub root: PathBuf,
    /// Where each entry of [`EXTRA`] was put, in order.
    pub extra: Vec<PathBuf>,
    /// The pdf-invoice fixture of mail-dissect, in `.Corpus/new/`.
    pub invoice: PathBuf,
}

/// The test maildir at `root`, or `None` when there are no corpora.
pub fn build_maildir(root: &Path) -> Option<Built> {
    let corpora = corpora()?;
    copy_tree(&corpora.join("notmuch/test/corpora/default"), root);
    let corpus = root.join(".Corpus");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(corpus.join(sub)).unwrap();
    }
    fs::write(corpus.join("maildirfolder"), b"").unwrap();
    let mut extra = Vec::new();
    for (i, rel) in EXTRA.iter().enumerate() {
        let to = corpus.join(format!("cur/{:02}.corpus.mailbot.test:2,", i + 1));
        fs::copy(corpora.join(rel), &to).unwrap();
        extra.push(to);
    }
    let invoice = corpus.join("new/1795428000.M1P1Q1.fixture.mailbot.test");
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dissect/pdf-invoice.eml"),
        &invoice,
    )
    .unwrap();
    // Never indexed: a delivery still in tmp/, a dot file, bookkeeping.
    fs::copy(&extra[0], corpus.join("tmp/1.in-progress")).unwrap();
    fs::copy(&extra[0], corpus.join("cur/.hidden:2,")).unwrap();
    fs::write(root.join("dovecot-uidlist"), b"3 V1 N2\n1 :1.M1.h\n").unwrap();
    Some(Built {
        root: root.to_path_buf(),
        extra,
        invoice,
    })
}

/// The test maildir at `root`: the corpus one of [`build_maildir`] when
/// there are corpora, else one of the same shape generated here (the core
/// tier, so a fresh clone tests mail-index too): messages in the same
/// nested folders (`bar/baz`, `foo/baz`, each with `cur/` and `new/`), 40
/// threads, [`EXTRA`]'s places in `.Corpus/cur/` taken by generated
/// messages (those of [`NOT_MAIL`] not mail, 15 and 16 one Message-ID
/// twice), and the same invoice and files to skip.
/// `MAILBOT_TEST_GENERATED_MAILDIR=1` takes the generated one even with
/// corpora, to check it.
pub fn build_any_maildir(root: &Path) -> Built {
    let generated = std::env::var_os("MAILBOT_TEST_GENERATED_MAILDIR").is_some_and(|v| v == "1");
    let have_corpora = std::env::var_os("MAILBOT_CORPORA").is_some_and(|v| !v.is_empty())
        || Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpora")).is_dir()
        || std::env::var_os("MAILBOT_REQUIRE_CORPORA").is_some_and(|v| !v.is_empty() && v != "0");
    if have_corpora && !generated {
        return build_maildir(root).expect("corpora");
    }
    generate_maildir(root)
}

/// A message of the generated maildir: `n` picks its sender, date and
/// Message-ID; every fourth answers the one before (a thread of two).
fn generated_message(n: usize) -> String {
    let reply = if n % 4 == 1 {
        format!("In-Reply-To: <gen-{}@mailbot.test>\n", n - 1)
    } else {
        String::new()
    };
    format!(
        "From: Sender {n} <sender{n}@example.org>\nTo: me@example.org\n\
         Subject: generated message {n}\nDate: Mon, {day} Jan 2024 10:00:00 +0000\n\
         Message-ID: <gen-{n}@mailbot.test>\n{reply}MIME-Version: 1.0\n\
         Content-Type: text/plain; charset=utf-8\n\nThe body of message {n}.\n",
        day = 1 + n % 28
    )
}

fn generate_maildir(root: &Path) -> Built {
    let mut n = 0;
    let mut put = |folder: &Path, sub: &str, flags: &str| {
        fs::create_dir_all(folder.join("cur")).unwrap();
        fs::create_dir_all(folder.join("new")).unwrap();
        let name = if sub == "new" {
            format!("{}.M{n}P1Q1.gen.mailbot.test", 1_700_000_000 + n)
        } else {
            format!("{}.M{n}P1Q1.gen.mailbot.test:2,{flags}", 1_700_000_000 + n)
        };
        fs::write(folder.join(sub).join(name), generated_message(n)).unwrap();
        n += 1;
    };
    // 52 messages over the folders notmuch's default corpus has: 39 + 13
    // replies, so 39 threads, and 40 with the invoice.
    let flags = ["", "S", "F", "RS", "S", "PS"];
    for (folder, many) in [
        ("", 12),
        ("bar", 10),
        ("bar/baz", 10),
        ("foo", 10),
        ("foo/baz", 10),
    ] {
        for i in 0..many {
            let sub = if i % 3 == 0 { "new" } else { "cur" };
            put(&root.join(folder), sub, flags[i % flags.len()]);
        }
    }
    let corpus = root.join(".Corpus");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(corpus.join(sub)).unwrap();
    }
    fs::write(corpus.join("maildirfolder"), b"").unwrap();
    let mut extra = Vec::new();
    for i in 0..EXTRA.len() {
        let to = corpus.join(format!("cur/{:02}.corpus.mailbot.test:2,", i + 1));
        let text = if NOT_MAIL.contains(&i) {
            // No From, To or Subject: not mail, for notmuch and mail-index.
            format!("X-Note: not a message {i}\n\nplain text\n")
        } else if i == 16 {
            fs::read_to_string(&extra[15]).unwrap()
        } else {
            generated_message(1000 + i)
        };
        fs::write(&to, text).unwrap();
        extra.push(to);
    }
    let invoice = corpus.join("new/1795428000.M1P1Q1.fixture.mailbot.test");
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dissect/pdf-invoice.eml"),
        &invoice,
    )
    .unwrap();
    fs::copy(&extra[0], corpus.join("tmp/1.in-progress")).unwrap();
    fs::copy(&extra[0], corpus.join("cur/.hidden:2,")).unwrap();
    fs::write(root.join("dovecot-uidlist"), b"3 V1 N2\n1 :1.M1.h\n").unwrap();
    Built {
        root: root.to_path_buf(),
        extra,
        invoice,
    }
}

pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// mail-index with `args`, `stdin`, no MAILBOT_* variables from the
/// caller and HOME inside `home`.
pub fn mail_index(home: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    run(clean(&mut cmd, home), stdin)
}

/// mail-index on the maildir `root`.
pub fn index_at(root: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut all = vec!["--maildir", root.to_str().unwrap()];
    all.extend_from_slice(args);
    mail_index(root.parent().unwrap(), &all, stdin)
}

fn clean<'a>(cmd: &'a mut Command, home: &Path) -> &'a mut Command {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("MAILBOT_") || name.starts_with("NOTMUCH_") {
            cmd.env_remove(&name);
        }
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env_remove("XDG_DATA_HOME")
}

fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// The notmuch CLI on the database of `root`, through a configuration
/// file that names it (and nothing of the user's): new messages tagged
/// `new`, flags synchronized, no excluded tags.
pub fn notmuch(root: &Path, args: &[&str]) -> Output {
    let config = root.with_extension("notmuch-config");
    if !config.exists() {
        fs::write(
            &config,
            format!(
                "[database]\npath={}\n[new]\ntags=new\n[maildir]\nsynchronize_flags=true\n",
                root.display()
            ),
        )
        .unwrap();
    }
    let mut cmd = Command::new("notmuch");
    cmd.args(args);
    clean(&mut cmd, root.parent().unwrap()).env("NOTMUCH_CONFIG", &config);
    let out = run(&mut cmd, b"");
    assert_eq!(
        out.status.code(),
        Some(0),
        "notmuch {args:?}: {}",
        describe(&out)
    );
    out
}

pub fn describe(out: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts the exit status, showing the output otherwise.
pub fn expect(out: Output, code: i32, what: &str) -> Output {
    assert_eq!(out.status.code(), Some(code), "{what}: {}", describe(&out));
    out
}

pub fn lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// mail-index's own lines on stderr (libgmime may print warnings of its
/// own about broken messages, as it does under notmuch new).
pub fn own_errors(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("mail-index:") || l.contains("panicked"))
        .map(str::to_string)
        .collect()
}

/// `notmuch dump` as (message id, sorted tags), sorted: the whole state of
/// the tags in a database.
pub fn notmuch_tags(root: &Path) -> Vec<(String, Vec<String>)> {
    let out = notmuch(root, &["dump"]);
    let mut all: Vec<(String, Vec<String>)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(" -- id:"))
        .map(|(tags, id)| {
            let mut tags: Vec<String> = tags
                .split_whitespace()
                .map(|t| t.trim_start_matches('+').to_string())
                .collect();
            tags.sort();
            (id.to_string(), tags)
        })
        .collect();
    all.sort();
    all
}
