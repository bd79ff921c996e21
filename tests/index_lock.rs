//! The database's write lock: a second writer is told to retry (75),
//! readers go on. A test binary of its own: the lock is an OFD lock, and
//! a child that other tests spawn in parallel could share its file
//! description for a moment and keep it held after the holder closes.

mod index_common;

use std::path::Path;

use index_common::{build_any_maildir, expect, index_at, lines, own_errors};

fn count(root: &Path, query: &str) -> u64 {
    let out = expect(index_at(root, &["count", query], b""), 0, query);
    lines(&out)[0].parse().unwrap()
}

#[test]
fn a_second_writer_is_told_to_retry_75() {
    let tmp = tempfile::tempdir().unwrap();
    let b = build_any_maildir(&tmp.path().join("Mail"));
    expect(index_at(&b.root, &["new"], b""), 0, "new");
    let holder = mailbot::index::Index::open(&b.root, Default::default()).unwrap();
    // Even in the same process a second writer is refused, not left
    // waiting for itself.
    let second = mailbot::index::Index::open(&b.root, Default::default()).unwrap_err();
    assert!(second.is_locked(), "{second}");
    for args in [
        &["new"][..],
        &["add", b.extra[0].to_str().unwrap()],
        &["tag", "+x", "--", "*"],
    ] {
        let out = expect(index_at(&b.root, args, b""), 75, "writer");
        assert!(
            own_errors(&out)[0].contains("another process is writing"),
            "{:?}",
            own_errors(&out)
        );
    }
    // Readers are never held up.
    assert!(count(&b.root, "*") > 60);
    drop(holder);
    expect(
        index_at(&b.root, &["tag", "+x", "--", "*"], b""),
        0,
        "after the holder closed",
    );
}
