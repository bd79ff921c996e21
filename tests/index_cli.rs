//! mail-index as users run it, on a maildir of real corpus messages, with
//! the notmuch CLI reading the same database as the referee. The tests
//! that need no particular corpus message run without corpora too, on a
//! generated maildir of the same shape (`built_any`), so a fresh clone
//! covers mail-index; those reading what a corpus message holds skip.

mod index_common;

use std::collections::BTreeSet;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use index_common::{
    Built, EXTRA, NOT_MAIL, build_maildir, describe, expect, index_at, lines, mail_index, notmuch,
    notmuch_tags, own_errors, sorted,
};

/// The corpus maildir, or `None` (the test is skipped) without corpora.
fn built() -> Option<(tempfile::TempDir, Built)> {
    let tmp = tempfile::tempdir().unwrap();
    let built = build_maildir(&tmp.path().join("Mail"))?;
    Some((tmp, built))
}

/// The corpus maildir, or without corpora one of the same shape made of
/// generated messages (see `build_any_maildir`): for the tests that need
/// no particular message, so a fresh clone runs them too.
fn built_any() -> Option<(tempfile::TempDir, Built)> {
    let tmp = tempfile::tempdir().unwrap();
    let built = index_common::build_any_maildir(&tmp.path().join("Mail"));
    Some((tmp, built))
}

fn indexed() -> Option<(tempfile::TempDir, Built)> {
    let (tmp, b) = built()?;
    let out = expect(index_at(&b.root, &["new"], b""), 0, "new");
    assert!(out.stdout.is_empty());
    assert!(own_errors(&out).is_empty(), "{:?}", own_errors(&out));
    Some((tmp, b))
}

/// [`indexed`] on the maildir of `built_any`.
fn indexed_any() -> Option<(tempfile::TempDir, Built)> {
    let (tmp, b) = built_any()?;
    let out = expect(index_at(&b.root, &["new"], b""), 0, "new");
    assert!(out.stdout.is_empty());
    assert!(own_errors(&out).is_empty(), "{:?}", own_errors(&out));
    Some((tmp, b))
}

fn count(root: &Path, query: &str) -> u64 {
    let out = expect(index_at(root, &["count", query], b""), 0, query);
    lines(&out)[0].parse().unwrap()
}

fn notmuch_count(root: &Path, query: &str) -> u64 {
    let out = notmuch(root, &["count", query]);
    lines(&out)[0].parse().unwrap()
}

/// The Message-ID notmuch gives the file (its own id when it has none).
fn id_of(root: &Path, file: &Path) -> String {
    let out = expect(
        index_at(root, &["search", "--output", "json", "*"], b""),
        0,
        "search *",
    );
    for line in lines(&out) {
        let hit: serde_json::Value = serde_json::from_str(&line).unwrap();
        if hit["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| Path::new(f.as_str().unwrap()) == file)
        {
            return hit["message_id"].as_str().unwrap().to_string();
        }
    }
    panic!("{} is not indexed", file.display());
}

fn files_of(root: &Path, query: &str) -> Vec<PathBuf> {
    let out = expect(
        index_at(root, &["search", "--output", "files", query], b""),
        0,
        query,
    );
    lines(&out).into_iter().map(PathBuf::from).collect()
}

#[test]
fn new_indexes_the_corpus_like_notmuch_new() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = index_common::build_any_maildir(&tmp.path().join("ours"));
    let theirs = index_common::build_any_maildir(&tmp.path().join("theirs"));
    let out = expect(index_at(&ours.root, &["new", "--json"], b""), 0, "new");
    assert!(own_errors(&out).is_empty(), "{:?}", own_errors(&out));
    // notmuch new would take a dot file for a message; mail-index skips
    // dot files (.uidvalidity, .mbsyncstate and the like are never mail).
    let hidden = ".Corpus/cur/.hidden:2,";
    assert!(ours.root.join(hidden).exists());
    fs::remove_file(theirs.root.join(hidden)).unwrap();
    notmuch(&theirs.root, &["new", "--quiet"]);

    // Same messages with the same tags (new, unread from the flags,
    // attachment and signed from the content) ...
    let tags = notmuch_tags(&ours.root);
    assert_eq!(tags, notmuch_tags(&theirs.root));
    assert!(tags.len() > 60, "{} messages", tags.len());
    // ... from the same files.
    let relative = |root: &Path| -> Vec<String> {
        let out = notmuch(root, &["search", "--output=files", "*"]);
        sorted(
            lines(&out)
                .iter()
                .map(|l| {
                    Path::new(l)
                        .strip_prefix(root)
                        .unwrap()
                        .display()
                        .to_string()
                })
                .collect(),
        )
    };
    let files = relative(&ours.root);
    assert_eq!(files, relative(&theirs.root));
    assert!(
        files
            .iter()
            .all(|f| !f.contains("tmp/") && !f.contains(".hidden"))
    );

    // The summary adds up: every file is a new message, a copy of one,
    // or not mail.
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["added"].as_u64().unwrap(), tags.len() as u64);
    let not_mail: Vec<&str> = report["not_mail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let expected: Vec<String> = NOT_MAIL
        .iter()
        .map(|&i| ours.extra[i].display().to_string())
        .collect();
    assert_eq!(not_mail, expected);
    assert_eq!(
        report["added"].as_u64().unwrap() + report["duplicate_id"].as_u64().unwrap(),
        files.len() as u64
    );

    // Nothing new: nothing done, nothing printed.
    let again = expect(
        index_at(&ours.root, &["new", "--json"], b""),
        0,
        "new again",
    );
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["added"], 0);
    assert_eq!(report["removed"], 0);
    let quiet = expect(index_at(&ours.root, &["new"], b""), 0, "new quiet");
    assert!(quiet.stdout.is_empty() && quiet.stderr.is_empty());
}

#[test]
fn the_notmuch_cli_reads_the_same_database() {
    let Some((_tmp, b)) = indexed_any() else {
        return;
    };
    for query in [
        "*",
        "attachment:pdf",
        "from:cworth.org",
        "subject:Säying",
        "tag:unread",
        "tag:attachment and not tag:unread",
        "folder:.Corpus",
        "date:2009-11-17..2009-11-18",
    ] {
        let n = count(&b.root, query);
        assert_eq!(n, notmuch_count(&b.root, query), "count {query}");
        let ours = files_of(&b.root, query);
        let theirs = notmuch(&b.root, &["search", "--output=files", query]);
        let theirs: Vec<PathBuf> = lines(&theirs).into_iter().map(PathBuf::from).collect();
        assert_eq!(ours, theirs, "files of {query}");
        // Newest first, as notmuch sorts by default.
        let ids = lines(&expect(
            index_at(&b.root, &["search", "--output", "messages", query], b""),
            0,
            query,
        ));
        let theirs: Vec<String> = lines(&notmuch(&b.root, &["search", "--output=messages", query]))
            .into_iter()
            .map(|l| l.strip_prefix("id:").unwrap().to_string())
            .collect();
        assert_eq!(ids, theirs, "ids of {query}");
        assert_eq!(ids.len() as u64, n);
    }
}

#[test]
fn queries_find_what_the_messages_hold() {
    let Some((_tmp, b)) = indexed() else { return };
    // What the messages hold, read by another parser.
    let mut pdf = BTreeSet::new();
    let mut from_cworth = BTreeSet::new();
    let mut saying = BTreeSet::new();
    let mut all = Vec::new();
    collect_files(&b.root, &mut all);
    for file in all {
        let raw = fs::read(&file).unwrap();
        let Some(msg) = mail_parser::MessageParser::default().parse(&raw) else {
            continue;
        };
        if msg.from().is_none() && msg.subject().is_none() && msg.to().is_none() {
            continue;
        }
        // File names by mailbot's own MIME reader, which, as GMime, also
        // decodes RFC 2047 words inside quotes (m0013's PDF).
        let dissected = mailbot::dissect::dissect_bytes(&raw, &Default::default());
        let has_pdf = dissected.parts.iter().any(|p| {
            p.declared_name
                .as_deref()
                .is_some_and(|n| n.to_ascii_lowercase().ends_with(".pdf"))
        });
        if has_pdf {
            pdf.insert(file.clone());
        }
        let from = msg
            .from()
            .and_then(|f| f.first())
            .and_then(|a| a.address())
            .unwrap_or_default();
        if from.ends_with("@cworth.org") {
            from_cworth.insert(file.clone());
        }
        if msg.subject().is_some_and(|s| s.contains("Säying")) {
            saying.insert(file.clone());
        }
    }
    assert!(pdf.len() >= 3, "{pdf:?}");
    assert!(pdf.contains(&b.invoice));
    let got = |q: &str| -> BTreeSet<PathBuf> { files_of(&b.root, q).into_iter().collect() };
    assert_eq!(got("attachment:pdf"), pdf);
    assert_eq!(got("from:cworth.org"), from_cworth);
    assert_eq!(got("subject:Säying"), saying);
    assert_eq!(saying.len(), 1);
    // 8-bit and encoded headers come back decoded in JSON.
    let out = expect(
        index_at(
            &b.root,
            &["search", "--output", "json", "subject:Säying"],
            b"",
        ),
        0,
        "json",
    );
    let hit: serde_json::Value = serde_json::from_str(&lines(&out)[0]).unwrap();
    assert_eq!(hit["subject"], "Säying Hello");
    assert!(hit["from"].as_str().unwrap().contains("Jöhn Doe"));
    assert!(hit["date"].as_i64().is_some());
    assert!(!hit["thread_id"].as_str().unwrap().is_empty());
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if entry.file_type().unwrap().is_dir() {
            if name != "tmp" && name != ".notmuch" {
                collect_files(&entry.path(), out);
            }
        } else if !name.starts_with('.') && name != "dovecot-uidlist" && name != "maildirfolder" {
            out.push(entry.path());
        }
    }
}

#[test]
fn tags_and_flags_follow_each_other() {
    let Some((_tmp, b)) = indexed() else { return };
    let utf8 = &b.extra[12];
    let id = id_of(&b.root, utf8);
    let q = format!("id:{id}");
    assert_eq!(
        count(&b.root, &format!("{q} and tag:unread and tag:new")),
        1
    );

    // +flagged: the file gets F, the notmuch CLI sees the new name.
    expect(
        index_at(&b.root, &["tag", "+flagged", "+keep", "--", &q], b""),
        0,
        "tag",
    );
    let flagged = PathBuf::from(format!("{}F", utf8.display()));
    assert!(!utf8.exists() && flagged.exists(), "{}", flagged.display());
    assert_eq!(
        fs::read(&flagged).unwrap(),
        fs::read(index_common::corpora().unwrap().join(EXTRA[12])).unwrap()
    );
    let theirs = notmuch(&b.root, &["search", "--output=files", &q]);
    assert_eq!(lines(&theirs), [flagged.display().to_string()]);
    assert_eq!(notmuch_count(&b.root, &format!("{q} and tag:flagged")), 1);

    // -unread on a message in new/: it moves to cur/ with S.
    let invoice_id = id_of(&b.root, &b.invoice);
    expect(
        index_at(
            &b.root,
            &["tag", "-unread", &format!("id:{invoice_id}")],
            b"",
        ),
        0,
        "tag -unread",
    );
    let name = b.invoice.file_name().unwrap().to_str().unwrap();
    let seen = b.root.join(format!(".Corpus/cur/{name}:2,S"));
    assert!(seen.exists() && !b.invoice.exists());
    assert_eq!(files_of(&b.root, &format!("id:{invoice_id}")), [seen]);

    // A mail reader marks the first one read and unflags it: after a scan
    // the tags follow the flags, and the other tags stay.
    let read = PathBuf::from(format!("{}S", utf8.display()));
    fs::rename(&flagged, &read).unwrap();
    let out = expect(index_at(&b.root, &["new", "--json"], b""), 0, "rescan");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["added"].as_u64(), report["renamed"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(count(&b.root, &format!("{q} and tag:unread")), 0);
    assert_eq!(count(&b.root, &format!("{q} and tag:flagged")), 0);
    assert_eq!(count(&b.root, &format!("{q} and tag:keep and tag:new")), 1);
    assert_eq!(
        notmuch_count(&b.root, &format!("{q} and tag:keep and not tag:unread")),
        1
    );
}

#[test]
fn rescan_after_removal_rename_and_copy() {
    let Some((_tmp, b)) = indexed_any() else {
        return;
    };
    let total = count(&b.root, "*");
    let report = |root: &Path| -> serde_json::Value {
        let out = expect(index_at(root, &["new", "--json"], b""), 0, "rescan");
        serde_json::from_slice(&out.stdout).unwrap()
    };

    // Removed: the message goes.
    let gone = &b.extra[13];
    let gone_id = id_of(&b.root, gone);
    fs::remove_file(gone).unwrap();
    let r = report(&b.root);
    assert_eq!(
        (r["removed"].as_u64(), r["renamed"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(count(&b.root, "*"), total - 1);
    assert_eq!(notmuch_count(&b.root, "*"), total - 1);
    assert_eq!(count(&b.root, &format!("id:{gone_id}")), 0);

    // Moved to another folder: same message, tags kept, new path.
    let moved_from = &b.extra[14];
    let id = id_of(&b.root, moved_from);
    expect(
        index_at(
            &b.root,
            &["tag", "+archived", "--", &format!("id:{id}")],
            b"",
        ),
        0,
        "tag",
    );
    let moved_to = b.root.join("foo/cur/moved.mailbot.test:2,S");
    fs::rename(moved_from, &moved_to).unwrap();
    let r = report(&b.root);
    assert_eq!(
        (
            r["added"].as_u64(),
            r["removed"].as_u64(),
            r["renamed"].as_u64()
        ),
        (Some(0), Some(0), Some(1))
    );
    assert_eq!(
        files_of(&b.root, &format!("id:{id}")),
        std::slice::from_ref(&moved_to)
    );
    assert_eq!(count(&b.root, &format!("id:{id} and tag:archived")), 1);
    assert_eq!(count(&b.root, "*"), total - 1);

    // Copied: one message, two files.
    let copy = b.root.join("bar/cur/copy.mailbot.test:2,S");
    fs::copy(&moved_to, &copy).unwrap();
    let r = report(&b.root);
    assert_eq!(
        (r["added"].as_u64(), r["duplicate_id"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(count(&b.root, "*"), total - 1);
    let mut files = files_of(&b.root, &format!("id:{id}"));
    files.sort();
    assert_eq!(files, [copy, moved_to]);
    assert_eq!(notmuch_tags(&b.root).len() as u64, total - 1);
}

#[test]
fn names_that_are_not_utf8_are_reported_not_panics() {
    let Some((_tmp, b)) = built() else { return };
    let bad = b
        .root
        .join(".Corpus/cur")
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9.mailbot.test:2,"));
    fs::copy(&b.extra[12], &bad).unwrap();
    let shown = bad.display().to_string();

    let out = expect(index_at(&b.root, &["new"], b""), 1, "new with a bad name");
    let errors = own_errors(&out);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!("mail-index: {shown}: file name is not UTF-8")),
        "{errors:?}"
    );
    assert!(count(&b.root, "*") > 60);

    // The name as an argument: reported, not a panic.
    let out = std::process::Command::new(index_common::BIN)
        .arg("--maildir")
        .arg(&b.root)
        .arg("add")
        .arg(&bad)
        .env("HOME", b.root.parent().unwrap())
        .output()
        .unwrap();
    let out = expect(out, 1, "add of the bad name");
    let errors = own_errors(&out);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!("mail-index: {shown}: file name is not UTF-8")),
        "{errors:?}"
    );
    // The real bytes through stdin.
    let mut stdin = bad.as_os_str().as_bytes().to_vec();
    stdin.push(0);
    let out = expect(
        index_at(&b.root, &["add", "--stdin", "-0"], &stdin),
        1,
        "add --stdin -0",
    );
    let errors = own_errors(&out);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("not UTF-8"), "{errors:?}");

    // notmuch itself indexes the name; reading it back through the crate
    // is an error naming the message, never a panic.
    notmuch(&b.root, &["new", "--quiet"]);
    let id = lines(&notmuch(
        &b.root,
        &["search", "--output=messages", "subject:Säying"],
    ))
    .iter()
    .map(|l| l.strip_prefix("id:").unwrap().to_string())
    .next()
    .unwrap();
    let out = expect(
        index_at(&b.root, &["search", "subject:Säying"], b""),
        65,
        "search",
    );
    let errors = own_errors(&out);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!("mail-index: id:{id}: a file name")),
        "{errors:?}"
    );
    assert_eq!(count(&b.root, "subject:Säying"), 1);
    let out = expect(index_at(&b.root, &["new"], b""), 1, "rescan");
    assert_eq!(own_errors(&out).len(), 1, "{:?}", own_errors(&out));
}

#[test]
fn a_missing_database_is_66_and_is_not_created_by_readers() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Mail");
    fs::create_dir_all(root.join("cur")).unwrap();
    for args in [&["count"][..], &["search", "*"]] {
        let out = expect(index_at(&root, args, b""), 66, "reader");
        let errors = own_errors(&out);
        assert!(
            errors[0].contains(".notmuch: no notmuch database"),
            "{errors:?}"
        );
    }
    assert!(!root.join(".notmuch").exists());
    let out = expect(
        index_at(&tmp.path().join("nowhere"), &["new"], b""),
        66,
        "no maildir",
    );
    assert!(own_errors(&out)[0].contains("nowhere"));
    // A writer creates it; an empty maildir is fine.
    expect(index_at(&root, &["new"], b""), 0, "new");
    assert!(root.join(".notmuch/xapian").is_dir());
    assert_eq!(count(&root, "*"), 0);
}

#[test]
fn add_stdin_indexes_exactly_the_given_files() {
    let Some((_tmp, b)) = built_any() else { return };
    let first: Vec<&PathBuf> = [0, 1, 2, 4, 12].iter().map(|&i| &b.extra[i]).collect();
    let stdin: String = first.iter().map(|p| format!("{}\n", p.display())).collect();
    let out = expect(
        index_at(&b.root, &["add", "--stdin"], stdin.as_bytes()),
        0,
        "add --stdin",
    );
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        index_common::describe(&out)
    );
    let mut want: Vec<PathBuf> = first.iter().map(|p| p.to_path_buf()).collect();
    want.sort();
    let mut got = files_of(&b.root, "*");
    got.sort();
    assert_eq!(got, want);
    assert_eq!(notmuch_count(&b.root, "*"), 5);

    // NUL-separated, a name with a newline in it, relative paths, and
    // files given twice or already indexed.
    let odd = b.root.join(".Corpus/cur/odd\nname:2,");
    fs::copy(&b.extra[3], &odd).unwrap();
    let mut stdin = Vec::new();
    for p in [
        odd.as_path(),
        b.extra[5].as_path(),
        b.extra[0].as_path(),
        b.extra[5].as_path(),
    ] {
        stdin.extend_from_slice(p.as_os_str().as_bytes());
        stdin.push(0);
    }
    expect(
        index_at(&b.root, &["add", "--stdin", "-0"], &stdin),
        0,
        "add -0",
    );
    assert_eq!(count(&b.root, "*"), 7);
    let out = expect(
        index_at(
            &b.root,
            &["search", "-0", "--output", "files", "tag:new"],
            b"",
        ),
        0,
        "-0",
    );
    assert!(
        out.stdout
            .split(|&c| c == 0)
            .any(|p| p == odd.as_os_str().as_bytes())
    );

    // A copy of a known message is no new message.
    let copy = b.root.join("cur/copy-of-utf8:2,S");
    fs::copy(&b.extra[12], &copy).unwrap();
    expect(
        index_at(&b.root, &["add", copy.to_str().unwrap()], b""),
        0,
        "add copy",
    );
    assert_eq!(count(&b.root, "*"), 7);

    // A missing file: 66, named, and the others still indexed.
    let missing = b.root.join("cur/not-there:2,");
    let stdin = format!("{}\n{}\n", missing.display(), b.extra[13].display());
    let out = expect(
        index_at(&b.root, &["add", "--stdin"], stdin.as_bytes()),
        66,
        "missing",
    );
    let errors = own_errors(&out);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!("mail-index: {}: ", missing.display())),
        "{errors:?}"
    );
    assert_eq!(count(&b.root, "*"), 8);
    // Not mail: exit 1, named.
    let out = expect(
        index_at(
            &b.root,
            &["add", b.extra[NOT_MAIL[0]].to_str().unwrap()],
            b"",
        ),
        1,
        "not mail",
    );
    assert!(own_errors(&out)[0].contains("not a mail message"));
    assert_eq!(count(&b.root, "*"), 8);
    assert!(
        files_of(&b.root, "*")
            .iter()
            .all(|f| !f.starts_with(b.root.join("foo")))
    );
}

#[test]
fn new_tags_and_flag_sync_can_be_changed() {
    let Some((tmp, b)) = built_any() else { return };
    let seen = &b.extra[5]; // fake-pdf, copied as ...:2, (not seen)
    let seen_name = PathBuf::from(format!("{}S", seen.display()));
    fs::rename(seen, &seen_name).unwrap();
    let root = b.root.to_str().unwrap();
    let out = mail_index(
        tmp.path(),
        &[
            "--maildir",
            root,
            "add",
            seen_name.to_str().unwrap(),
            b.extra[0].to_str().unwrap(),
        ],
        b"",
    );
    expect(out, 0, "add");
    // Default: new, and unread only where there is no S.
    assert_eq!(count(&b.root, "tag:new"), 2);
    assert_eq!(count(&b.root, "tag:unread"), 1);

    let mut cmd = std::process::Command::new(index_common::BIN);
    cmd.args([
        "--maildir",
        root,
        "add",
        b.extra[1].to_str().unwrap(),
        b.extra[2].to_str().unwrap(),
    ])
    .env("MAILBOT_INDEX_TAGS", "inbox,todo")
    .env("MAILBOT_INDEX_NO_SYNC_FLAGS", "true")
    .env("HOME", tmp.path());
    let out = cmd.output().unwrap();
    expect(out, 0, "add with MAILBOT_INDEX_TAGS");
    assert_eq!(count(&b.root, "tag:inbox and tag:todo"), 2);
    assert_eq!(count(&b.root, "tag:inbox and (tag:new or tag:unread)"), 0);

    // Without flag sync a tag change renames nothing.
    let file = &b.extra[1];
    let id = id_of(&b.root, file);
    let out = mail_index(
        tmp.path(),
        &[
            "--maildir",
            root,
            "--no-sync-flags",
            "tag",
            "+flagged",
            "--",
            &format!("id:{id}"),
        ],
        b"",
    );
    expect(out, 0, "tag without sync");
    assert!(file.exists());
    assert_eq!(count(&b.root, &format!("id:{id} and tag:flagged")), 1);
    // --tag '' gives no tags at all.
    expect(
        mail_index(
            tmp.path(),
            &[
                "--maildir",
                root,
                "--tag",
                "",
                "add",
                b.extra[4].to_str().unwrap(),
            ],
            b"",
        ),
        0,
        "--tag ''",
    );
    let id = id_of(&b.root, &b.extra[4]);
    assert_eq!(
        count(&b.root, &format!("id:{id} and (tag:new or tag:inbox)")),
        0
    );
}

#[test]
fn the_maildir_comes_from_the_flag_the_variable_or_the_account() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let b = index_common::build_any_maildir(&home.join("Mail/school"));
    let config = home.join(".config/mailbot/config.toml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::write(&config, "[account.school]\nmaildir = \"~/Mail/school\"\n").unwrap();
    expect(mail_index(home, &["new"], b""), 0, "new from the config");
    assert!(b.root.join(".notmuch/xapian").is_dir());
    let n = lines(&expect(
        mail_index(home, &["--account", "school", "count"], b""),
        0,
        "count",
    ))[0]
        .clone();
    assert_eq!(n, notmuch_count(&b.root, "*").to_string());

    fs::remove_file(&config).unwrap();
    let out = expect(mail_index(home, &["count"], b""), 64, "no maildir");
    assert!(
        own_errors(&out)[0].contains("--maildir DIR, MAILBOT_MAILDIR"),
        "{:?}",
        own_errors(&out)
    );
    let mut cmd = std::process::Command::new(index_common::BIN);
    cmd.args(["count", "*"])
        .env("MAILBOT_MAILDIR", &b.root)
        .env("HOME", home);
    let out = expect(cmd.output().unwrap(), 0, "MAILBOT_MAILDIR");
    assert_eq!(lines(&out)[0], n);
}

#[test]
fn tag_needs_changes_and_a_query() {
    let Some((_tmp, b)) = indexed_any() else {
        return;
    };
    for (args, what) in [
        (&["tag", "--", "*"][..], "no tag changes"),
        (&["tag", "+a"][..], "no query"),
        (&["tag", "+", "--", "*"][..], "not a tag change"),
    ] {
        let out = expect(index_at(&b.root, args, b""), 64, what);
        assert!(own_errors(&out)[0].contains(what), "{:?}", own_errors(&out));
    }
    // notmuch's form without -- works too.
    expect(
        index_at(&b.root, &["tag", "+a", "-b", "from:cworth.org"], b""),
        0,
        "tag",
    );
    assert_eq!(count(&b.root, "tag:a"), count(&b.root, "from:cworth.org"));
    assert_eq!(count(&b.root, "tag:a"), notmuch_count(&b.root, "tag:a"));
}

#[test]
fn help_ends_with_examples_and_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = expect(mail_index(tmp.path(), &["--help"], b""), 0, "--help");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Examples:\n  mail-index --maildir ~/Mail new"),
        "{text}"
    );
    assert!(text.contains("mail-index --account school add --stdin"));
    assert!(text.contains(" 75  temporary"));
    expect(
        mail_index(tmp.path(), &["frobnicate"], b""),
        64,
        "unknown command",
    );
}

/// libnotmuch prints GLib assertion noise for some broken messages (an
/// empty attached message); `notmuch new` passes it on to stderr, and in
/// cron that would mail the user about nothing. mail-index indexes the
/// same messages and says nothing.
#[test]
fn broken_messages_leave_stderr_silent() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(corpora) = index_common::corpora() else {
        return;
    };
    let broken = corpora.join("notmuch/test/corpora/broken");
    let make = |name: &str| {
        let root = tmp.path().join(name);
        fs::create_dir_all(root.join("INBOX/tmp")).unwrap();
        fs::create_dir_all(root.join("INBOX/new")).unwrap();
        for f in fs::read_dir(&broken).unwrap() {
            let f = f.unwrap().path();
            if f.is_file() {
                fs::copy(&f, root.join("INBOX/new").join(f.file_name().unwrap())).unwrap();
            }
        }
        root
    };
    let ours = make("ours");
    let theirs = make("theirs");
    let out = notmuch(&theirs, &["new"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("gmime-CRITICAL"),
        "notmuch new no longer shows the noise: {}",
        index_common::describe(&out)
    );
    let out = expect(index_at(&ours, &["new"], b""), 0, "new");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "mail-index new printed on stderr"
    );
    assert_eq!(count(&ours, "*"), notmuch_count(&theirs, "*"));
    // Added one by one as well.
    let again = make("again");
    let files: Vec<String> = fs::read_dir(again.join("INBOX/new"))
        .unwrap()
        .map(|f| f.unwrap().path().display().to_string())
        .collect();
    let mut args = vec!["add"];
    args.extend(files.iter().map(String::as_str));
    let out = expect(index_at(&again, &args, b""), 0, "add");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "mail-index add printed on stderr"
    );
}

/// The README's recipe for the notmuch CLI, as a user pastes it: the
/// code block holding `notmuch-config > ~/.notmuch-config`, run by `sh`
/// with HOME in a temporary folder holding `~/Mail`, mailbot's binaries
/// first in PATH and no notmuch configuration anywhere.
#[test]
fn the_readme_recipe_for_the_notmuch_cli_runs_as_written() {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```sh\n")
        .skip(1)
        .filter_map(|b| b.split_once("\n```").map(|(code, _)| code))
        .filter(|code| code.contains("notmuch-config > ~/.notmuch-config"))
        .collect();
    assert_eq!(blocks.len(), 1, "one recipe in the README");
    let recipe = blocks[0];

    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let b = index_common::build_any_maildir(&home.join("Mail"));
    // What mail-sync leaves beside the mail, which notmuch new must pass
    // over without a word.
    fs::create_dir_all(b.root.join(".mailbot/sync")).unwrap();
    fs::write(
        b.root.join(".mailbot/sync/INBOX.state"),
        b"mailbot-sync-state 1\n",
    )
    .unwrap();
    fs::write(b.root.join(".mailbot/lock"), b"").unwrap();
    let bins = Path::new(index_common::BIN).parent().unwrap();
    let path = format!("{}:{}", bins.display(), std::env::var("PATH").unwrap());
    let sh = |script: &str| {
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-e", "-c", script]).current_dir(home);
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if name.starts_with("MAILBOT_") || name.starts_with("NOTMUCH_") {
                cmd.env_remove(&name);
            }
        }
        cmd.env("HOME", home)
            .env("PATH", &path)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .output()
            .unwrap()
    };
    let out = sh(recipe);
    assert_eq!(out.status.code(), Some(0), "{recipe}\n{}", describe(&out));
    // notmuch search found every thread mail-index knows as new.
    let threads: BTreeSet<String> = lines(&expect(
        index_at(&b.root, &["search", "--output", "json", "tag:new"], b""),
        0,
        "search",
    ))
    .iter()
    .map(|l| {
        let hit: serde_json::Value = serde_json::from_str(l).unwrap();
        hit["thread_id"].as_str().unwrap().to_string()
    })
    .collect();
    let listed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("thread:"))
        .count();
    assert!(threads.len() > 30, "{} threads", threads.len());
    assert_eq!(listed, threads.len(), "{}", describe(&out));
    // notmuch new noted no file of mailbot's or of the servers'.
    let err = String::from_utf8_lossy(&out.stderr);
    for noise in ["/.mailbot/", "dovecot", "maildirfolder"] {
        assert!(!err.contains(noise), "{noise}: {err}");
    }
    // New mail found by the notmuch CLI is tagged as mail-index tags it.
    let arrived = b
        .root
        .join(".Corpus/new/1795500000.M1P1Q1.later.mailbot.test");
    fs::write(
        &arrived,
        b"From: a@example.org\nTo: b@example.org\nSubject: later\nMessage-ID: <later@mailbot.test>\n\nhi\n",
    )
    .unwrap();
    let out = sh("notmuch new --quiet && notmuch search --output=tags id:later@mailbot.test");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .collect::<Vec<_>>(),
        ["new", "unread"],
        "{}",
        describe(&out)
    );
    // And mail-index goes on with the database notmuch wrote.
    expect(index_at(&b.root, &["new"], b""), 0, "new after notmuch new");
}

/// Sets the mtime of every folder under `root` to one moment in 2024, as
/// if the maildir had last changed long before the scan (a scan does not
/// trust an mtime less than a second old).
fn age_folders(root: &Path) {
    let past = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_717_000_000);
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            }
        }
        fs::File::open(&dir).unwrap().set_modified(past).unwrap();
    }
}

fn scan(root: &Path) -> serde_json::Value {
    let out = expect(index_at(root, &["new", "--json"], b""), 0, "new");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn new_lists_only_the_folders_that_changed() {
    let Some((_tmp, b)) = built_any() else {
        return;
    };
    age_folders(&b.root);
    let first = scan(&b.root);
    let folders = first["folders_listed"].as_u64().unwrap();
    assert!(folders > 10, "{first}");
    assert_eq!(first["folders_unchanged"], 0, "{first}");
    let messages = count(&b.root, "*");
    // The first scan made .notmuch/ and .mailbot/ in the root, so the
    // root's mtime was too fresh to keep: listed once more.
    age_folders(&b.root);
    assert_eq!(scan(&b.root)["folders_listed"], 1);

    // Nothing changed: no folder is listed, nothing is done.
    let again = scan(&b.root);
    assert_eq!(again["folders_listed"], 0, "{again}");
    assert_eq!(
        again["folders_unchanged"].as_u64(),
        Some(folders),
        "{again}"
    );
    assert_eq!(
        (again["added"].as_u64(), again["removed"].as_u64()),
        (Some(0), Some(0))
    );

    // A message arrives: only its folder is listed, and it is indexed.
    let arrived = b
        .root
        .join(".Corpus/new/1795500000.M1P1Q1.later.mailbot.test");
    fs::write(
        &arrived,
        b"From: a@example.org\nTo: b@example.org\nSubject: later\nMessage-ID: <later@mailbot.test>\n\nhi\n",
    )
    .unwrap();
    let news = scan(&b.root);
    assert_eq!(news["folders_listed"], 1, "{news}");
    assert_eq!(news["added"], 1, "{news}");
    assert_eq!(count(&b.root, "id:later@mailbot.test"), 1);
    // The folder changed less than a second ago: its mtime is not trusted
    // yet, so it is listed again until it has settled.
    assert_eq!(scan(&b.root)["folders_listed"], 1);
    age_folders(&b.root);
    assert_eq!(scan(&b.root)["folders_listed"], 1);
    assert_eq!(scan(&b.root)["folders_listed"], 0);

    // A file deleted and a whole folder removed: their messages go.
    fs::remove_file(&arrived).unwrap();
    let nested = b.root.join("bar/baz");
    let in_nested = files_of(&b.root, "path:bar/baz/**").len() as u64;
    assert!(in_nested > 0);
    fs::remove_dir_all(&nested).unwrap();
    let removed = scan(&b.root);
    assert_eq!(
        removed["removed"].as_u64(),
        Some(1 + in_nested),
        "{removed}"
    );
    assert_eq!(count(&b.root, "*"), messages - in_nested);

    // The incremental scans left the database as a full scan makes it.
    fs::remove_file(b.root.join(".mailbot/index-folders.json")).unwrap();
    let full = scan(&b.root);
    assert_eq!(
        (full["added"].as_u64(), full["removed"].as_u64()),
        (Some(0), Some(0)),
        "{full}"
    );
    assert_eq!(full["folders_unchanged"], 0, "{full}");
}

/// `mail-sync --account A | mail-index --account A add --stdin` on a new
/// account: the maildir does not exist until mail-sync makes it, so
/// `add --stdin` opens the database at the first path (it failed with 66
/// at once); with no path at all it makes nothing and exits 0.
#[test]
fn add_stdin_waits_for_the_producer_to_make_the_maildir() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Mail/new-account");
    let out = expect(index_at(&root, &["add", "--stdin"], b""), 0, "no paths");
    assert!(out.stderr.is_empty(), "{}", describe(&out));
    assert!(!root.exists(), "made a maildir for nothing");

    // The producer makes the maildir and a message before the first path.
    let mut child = std::process::Command::new(index_common::BIN)
        .arg("--maildir")
        .arg(&root)
        .args(["add", "--stdin"])
        .env("HOME", tmp.path())
        .env_remove("MAILBOT_MAILDIR")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let file = root.join("INBOX/new/1700000000.M1P1Q1.host");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::create_dir_all(root.join("INBOX/cur")).unwrap();
    fs::write(
        &file,
        "From: a@example.org\nTo: b@example.org\nSubject: first\nMessage-ID: <first@mailbot.test>\n\nhi\n",
    )
    .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}", file.display()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(count(&root, "id:first@mailbot.test"), 1);
}
