//! A damaged notmuch database is damage: exit 65 with the database named
//! and `mail-index rebuild` as the way out, from every mail-index command
//! and from mail-bot; never "another process is writing" (75, which a cron
//! job retries forever) and never a panic (101). `mail-index rebuild`
//! makes the database again from the maildir with the tags of the maildir
//! flags, which the notmuch CLI, indexing a copy with no new tags, agrees
//! with.

mod index_common;

use std::fs;
use std::path::Path;
use std::process::Command;

use index_common::{
    build_any_maildir, copy_tree, describe, expect, index_at, lines, notmuch_tags, own_errors,
};

/// Every command that opens the database, readers and writers.
fn commands(root: &Path) -> Vec<Vec<String>> {
    let file = root.join(".Corpus/cur/01.corpus.mailbot.test:2,");
    [
        vec!["new"],
        vec!["search", "*"],
        vec!["count"],
        vec!["add", file.to_str().unwrap()],
        vec!["tag", "+x", "--", "*"],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(str::to_string).collect())
    .collect()
}

/// Each command exits 65 with one line naming the database, saying it is
/// damaged and how to rebuild it.
fn assert_damage_reported(root: &Path) {
    let db = root.join(".notmuch");
    for args in commands(root) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = index_at(root, &args, b"");
        assert_eq!(out.status.code(), Some(65), "{args:?}: {}", describe(&out));
        let errors = own_errors(&out);
        assert_eq!(errors.len(), 1, "{args:?}: {}", describe(&out));
        let line = &errors[0];
        assert!(
            line.starts_with(&format!(
                "mail-index: {}: the notmuch database is damaged",
                db.display()
            )) && line.contains("mail-index rebuild")
                && !line.contains("another process"),
            "{args:?}: {line}"
        );
    }
}

/// The tags notmuch itself gives the messages of `root` when it indexes a
/// copy with no new tags and flags synchronized: the tags of the flags.
fn tags_of_the_flags(root: &Path) -> Vec<(String, Vec<String>)> {
    let copy = root.with_file_name("flags-only");
    copy_tree(root, &copy);
    fs::remove_dir_all(copy.join(".notmuch")).unwrap();
    let _ = fs::remove_dir_all(copy.join(".mailbot"));
    // notmuch new would take a dot file for a message; mail-index does not.
    fs::remove_file(copy.join(".Corpus/cur/.hidden:2,")).unwrap();
    let config = copy.with_extension("notmuch-config");
    fs::write(
        &config,
        format!(
            "[database]\npath={}\n[new]\ntags=\n[maildir]\nsynchronize_flags=true\n",
            copy.display()
        ),
    )
    .unwrap();
    let out = Command::new("notmuch")
        .args(["new", "--quiet"])
        .env("NOTMUCH_CONFIG", &config)
        .env("HOME", root.parent().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    notmuch_tags(&copy)
}

fn rebuild_and_check(root: &Path, messages: u64) {
    let want = tags_of_the_flags(root);
    let out = expect(index_at(root, &["rebuild", "--json"], b""), 0, "rebuild");
    let summary: serde_json::Value = serde_json::from_str(&lines(&out)[0]).unwrap();
    assert!(summary["added"].as_u64().unwrap() > 0, "{summary}");
    let count = expect(index_at(root, &["count"], b""), 0, "count");
    assert_eq!(lines(&count)[0].parse::<u64>().unwrap(), messages);
    // The tags are those of the flags: no `new`, nothing else.
    assert_eq!(notmuch_tags(root), want);
    assert!(root.join(".mailbot/damaged-notmuch/xapian").is_dir());
    // And the database works again, for mail-index and notmuch alike.
    expect(index_at(root, &["new"], b""), 0, "new after rebuild");
    expect(index_at(root, &["tag", "+kept", "--", "*"], b""), 0, "tag");
    assert!(
        notmuch_tags(root)
            .iter()
            .all(|(_, t)| t.contains(&"kept".into()))
    );
}

/// The corpus maildir indexed, with its message count; `None` (the test
/// is skipped) without corpora.
fn indexed_maildir(tmp: &Path) -> Option<(std::path::PathBuf, u64)> {
    let built = build_any_maildir(&tmp.join("Mail"));
    expect(index_at(&built.root, &["new"], b""), 0, "new");
    let out = expect(index_at(&built.root, &["count"], b""), 0, "count");
    Some((built.root, lines(&out)[0].parse().unwrap()))
}

#[test]
fn a_truncated_table_is_damage_not_a_lock_and_rebuild_mends_it() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((root, messages)) = indexed_maildir(tmp.path()) else {
        return;
    };
    // Xapian says "EOF reading block 0": the word "block" once made this
    // a lock held by another writer, retried by cron for ever.
    let table = root.join(".notmuch/xapian/postlist.glass");
    let file = fs::OpenOptions::new().write(true).open(&table).unwrap();
    file.set_len(100).unwrap();
    drop(file);
    assert_damage_reported(&root);
    rebuild_and_check(&root, messages);
}

#[test]
fn a_lost_table_is_damage_not_a_panic_and_rebuild_mends_it() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((root, messages)) = indexed_maildir(tmp.path()) else {
        return;
    };
    // Read-only opens still succeed; every message read then comes back
    // NULL, on which the notmuch crate asserts.
    fs::remove_file(root.join(".notmuch/xapian/termlist.glass")).unwrap();
    assert_damage_reported(&root);
    rebuild_and_check(&root, messages);
}

#[test]
fn mail_bot_reports_a_damaged_index_instead_of_keeping_quiet() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    // mail-bot's embedded default: the maildir is HOME/maildir.
    let Some((root, _)) = indexed_maildir(&home) else {
        return;
    };
    fs::rename(&root, home.join("maildir")).unwrap();
    let root = home.join("maildir");
    let table = root.join(".notmuch/xapian/postlist.glass");
    fs::OpenOptions::new()
        .write(true)
        .open(&table)
        .unwrap()
        .set_len(100)
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mail-bot"))
        .arg("--home")
        .arg(&home)
        .arg("run")
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join("no-config"))
        .env_remove("MAILBOT_CONFIG")
        .env_remove("MAILBOT_ACCOUNT")
        .env_remove("MAILBOT_HOME")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(65), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the notmuch database is damaged") && err.contains("mail-index rebuild"),
        "{}",
        describe(&out)
    );
}
