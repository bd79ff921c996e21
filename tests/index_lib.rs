//! mailbot::index as mail-sync and mail-bot call it, on real corpus
//! messages, with the notmuch CLI as the referee.

mod index_common;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use index_common::{NOT_MAIL, build_any_maildir, build_maildir, lines, notmuch};
use mailbot::error::ErrorKind;
use mailbot::index::{self, Index, IndexOptions, TagChange};

fn notmuch_count(root: &Path, query: &str) -> u64 {
    lines(&notmuch(root, &["count", query]))[0].parse().unwrap()
}

#[test]
fn add_tells_new_known_copies_and_failures_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let b = build_any_maildir(&tmp.path().join("Mail"));
    assert_eq!(index::database_path(&b.root), b.root.join(".notmuch"));
    let mut index = Index::open(&b.root, IndexOptions::default()).unwrap();
    assert!(b.root.join(".notmuch/xapian").is_dir());

    let dup_a = b.extra[15].clone(); // duplicate/msg-1-1
    let dup_b = b.extra[16].clone(); // duplicate/msg-1-2, same Message-ID
    let missing = b.root.join("cur/missing:2,");
    let not_utf8 = b
        .root
        .join(".Corpus/cur")
        .join(std::ffi::OsStr::from_bytes(b"\xff.mailbot.test:2,"));
    fs::copy(&b.extra[0], &not_utf8).unwrap();
    let not_mail = b.extra[NOT_MAIL[0]].clone();
    let report = index
        .add(&[
            b.extra[0].clone(),
            dup_a.clone(),
            dup_b.clone(),
            missing.clone(),
            not_utf8.clone(),
            not_mail.clone(),
            b.extra[0].clone(),
        ])
        .unwrap();
    assert_eq!(report.added, [b.extra[0].clone(), dup_a]);
    assert_eq!(report.duplicate_id, [dup_b]);
    assert_eq!(report.already_indexed, [b.extra[0].clone()]);
    let failed: Vec<(PathBuf, ErrorKind)> = report
        .failed
        .iter()
        .map(|(p, e)| (p.clone(), e.kind()))
        .collect();
    assert_eq!(
        failed,
        [
            (missing.clone(), ErrorKind::InputMissing),
            (not_utf8.clone(), ErrorKind::BadInput),
            (not_mail.clone(), ErrorKind::BadInput),
        ]
    );
    // Each error names its file.
    for (path, err) in &report.failed {
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{err}"
        );
    }
    assert_eq!(index.count("*").unwrap(), 2);
    index.close().unwrap();
    assert_eq!(notmuch_count(&b.root, "*"), 2);
    assert_eq!(notmuch_count(&b.root, "tag:new and tag:unread"), 2);
}

#[test]
fn files_reached_through_a_symlink_are_recorded_under_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let b = build_any_maildir(&tmp.path().join("Mail"));
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&b.root, &link).unwrap();
    let mut index = Index::open(&link, IndexOptions::default()).unwrap();
    assert_eq!(index.root(), fs::canonicalize(&b.root).unwrap());
    let through_link = link
        .join(".Corpus/cur")
        .join(b.extra[1].file_name().unwrap());
    let report = index.add(&[through_link]).unwrap();
    assert_eq!(report.added.len(), 1);
    let hits = index.search("*").unwrap();
    assert_eq!(hits[0].files, [fs::canonicalize(&b.extra[1]).unwrap()]);
    index.close().unwrap();
    // notmuch new, scanning the real folder, sees the same file, not a
    // second copy under another path.
    notmuch(&b.root, &["new", "--quiet"]);
    assert_eq!(
        notmuch_count(&b.root, &format!("id:{}", hits[0].message_id)),
        1
    );
    let files = lines(&notmuch(
        &b.root,
        &[
            "search",
            "--output=files",
            &format!("id:{}", hits[0].message_id),
        ],
    ));
    assert_eq!(files.len(), 1, "{files:?}");
}

#[test]
fn scan_reports_and_search_hits() {
    let tmp = tempfile::tempdir().unwrap();
    // The counts are the corpus's.
    let Some(b) = build_maildir(&tmp.path().join("Mail")) else {
        return;
    };
    let mut index = Index::open(&b.root, IndexOptions::default()).unwrap();
    let mut calls = Vec::new();
    let report = index
        .scan(&mut |done, total| calls.push((done, total)))
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.not_mail.len(), NOT_MAIL.len());
    assert_eq!((report.removed, report.renamed), (0, 0));
    let (last_done, last_total) = *calls.last().unwrap();
    assert_eq!(last_done, last_total);
    assert_eq!(
        last_total,
        report.added + report.duplicate_id + report.not_mail.len()
    );
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));

    let hits = index.search("*").unwrap();
    assert_eq!(hits.len(), report.added);
    assert_eq!(index.count("*").unwrap(), report.added as u64);
    assert!(
        hits.windows(2).all(|w| w[0].date >= w[1].date),
        "newest first"
    );
    for hit in &hits {
        assert!(!hit.files.is_empty());
        assert!(hit.files.iter().all(|f| f.is_absolute() && f.exists()));
        assert!(hit.tags.contains(&"new".to_string()));
        assert!(hit.tags.windows(2).all(|w| w[0] < w[1]));
    }
    let invoice = hits.iter().find(|h| h.files.contains(&b.invoice)).unwrap();
    assert_eq!(invoice.subject, "Invoice 42");
    assert!(invoice.tags.contains(&"attachment".to_string()));

    // Tagging returns how many matched; the CLI agrees after close.
    let n = index
        .tag(
            "attachment:pdf",
            &[
                TagChange::Add("print".into()),
                TagChange::Remove("new".into()),
            ],
        )
        .unwrap();
    assert_eq!(n as u64, index.count("attachment:pdf").unwrap());
    assert!(n >= 3);
    index.close().unwrap();
    assert_eq!(
        notmuch_count(&b.root, "tag:print and not tag:new"),
        n as u64
    );

    // Read-only handles search but refuse to write.
    let mut ro = Index::open_read_only(&b.root).unwrap();
    assert_eq!(ro.count("tag:print").unwrap(), n as u64);
    assert_eq!(
        ro.add(&[b.extra[0].clone()]).unwrap_err().kind(),
        ErrorKind::Usage
    );
    assert_eq!(
        ro.tag("*", &[TagChange::Add("x".into())])
            .unwrap_err()
            .kind(),
        ErrorKind::Usage
    );
}

#[test]
fn opening_errors_have_their_kinds() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let err = Index::open_read_only(&empty).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InputMissing);
    assert_eq!(err.exit().code(), 66);
    let err = Index::open(&tmp.path().join("none"), IndexOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InputMissing);
    let bad = tmp.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    fs::create_dir(&bad).unwrap();
    let err = Index::open(&bad, IndexOptions::default()).unwrap_err();
    assert_eq!((err.kind(), err.exit().code()), (ErrorKind::BadInput, 65));
    let options = IndexOptions {
        new_tags: vec!["a\0b".into()],
        synchronize_flags: true,
    };
    assert_eq!(
        Index::open(&empty, options).unwrap_err().kind(),
        ErrorKind::Usage
    );
    let index = Index::open(&empty, IndexOptions::default()).unwrap();
    assert_eq!(index.count("a\0b").unwrap_err().kind(), ErrorKind::Usage);
    let defaults = IndexOptions::default();
    assert_eq!(defaults.new_tags, ["new"]);
    assert!(defaults.synchronize_flags);
}
