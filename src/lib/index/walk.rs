//! The files a scan of a maildir considers, found the way `notmuch new`
//! finds them: every regular file below the root, folder by folder, except
//! dot files, the `tmp/` of a maildir folder, the `.notmuch` and `.mailbot`
//! folders, and the bookkeeping files that IMAP servers and sync tools keep
//! beside the messages. Maildir++ dot folders (`.Sent`) are messages and
//! are walked.
//!
//! It does not read the files or decide whether they are mail; libnotmuch
//! does that when it indexes them.

use std::fs;
use std::os::unix::fs::DirEntryExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Folders below the root that never hold mail: the notmuch database and
/// mailbot's own state.
const SKIPPED_FOLDERS: [&str; 2] = [".notmuch", ".mailbot"];

/// Files that servers and sync tools keep inside maildir folders, beside
/// every `dovecot.*` and `dovecot-*` file. notmuch would try each of them
/// as a message on every run and note that it is not one; skipping them by
/// name saves the parse.
const BOOKKEEPING_FILES: [&str; 4] = [
    "maildirfolder",
    "subscriptions",
    "courierimapuiddb",
    "courierimapkeywords",
];

/// Deep enough for any real folder tree, shallow enough to end a symlink
/// loop.
const MAX_DEPTH: usize = 64;

/// Lists the candidate message files under `root`.
///
/// Within a folder, files come in inode order, which reads a cold disk in
/// far fewer seeks than name order (notmuch does the same). A name that is
/// not UTF-8, or a subfolder that cannot be read, goes to `failed` with
/// the reason, and the walk goes on; only an unreadable root is an error.
pub fn message_files(root: &Path, failed: &mut Vec<(PathBuf, String)>) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries = fs::read_dir(root).map_err(|e| Error::reading(root, e))?;
    walk(root, entries, 0, &mut out, failed);
    Ok(out)
}

fn walk(
    dir: &Path,
    entries: fs::ReadDir,
    depth: usize,
    out: &mut Vec<PathBuf>,
    failed: &mut Vec<(PathBuf, String)>,
) {
    let mut files: Vec<(u64, PathBuf)> = Vec::new();
    let mut folders: Vec<PathBuf> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                failed.push((dir.to_path_buf(), e.to_string()));
                continue;
            }
        };
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            failed.push((path, NOT_UTF8.to_string()));
            continue;
        };
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_dir() => true,
            Ok(t) if t.is_file() => false,
            // A symlink counts as what it points to; anything else (a
            // socket, a fifo) is not mail.
            Ok(t) if t.is_symlink() => match fs::metadata(&path) {
                Ok(m) if m.is_dir() => true,
                Ok(m) if m.is_file() => false,
                _ => continue,
            },
            Ok(_) => continue,
            Err(e) => {
                failed.push((path, e.to_string()));
                continue;
            }
        };
        if is_dir {
            if !SKIPPED_FOLDERS.contains(&name.as_str()) {
                names.push(name);
                folders.push(path);
            }
        } else if !name.starts_with('.') && !is_bookkeeping(&name) {
            files.push((entry.ino(), path));
        }
    }
    files.sort_unstable();
    out.extend(files.into_iter().map(|(_, p)| p));
    // `tmp/` holds deliveries in progress, but only in a maildir folder;
    // elsewhere a folder called tmp is an ordinary folder.
    let is_maildir = names.iter().any(|n| n == "cur" || n == "new");
    let mut folders: Vec<(String, PathBuf)> = names.into_iter().zip(folders).collect();
    folders.sort();
    for (name, path) in folders {
        if is_maildir && name == "tmp" {
            continue;
        }
        if depth >= MAX_DEPTH {
            failed.push((path, "folders nested too deep (a symlink loop?)".into()));
            continue;
        }
        match fs::read_dir(&path) {
            Ok(entries) => walk(&path, entries, depth + 1, out, failed),
            Err(e) => failed.push((path, e.to_string())),
        }
    }
}

/// The reason given for a file whose name is not UTF-8.
pub const NOT_UTF8: &str =
    "file name is not UTF-8; libnotmuch through the notmuch crate cannot take it (rename the file)";

/// What a scan skips, as notmuch's `new.ignore` writes it: mailbot's
/// state folder, the bookkeeping files by name, and the `dovecot-*` and
/// `dovecot.*` files by a regular expression over the relative path.
pub fn notmuch_ignore() -> String {
    let mut entries: Vec<&str> = SKIPPED_FOLDERS
        .iter()
        .filter(|f| **f != ".notmuch")
        .copied()
        .collect();
    entries.extend(BOOKKEEPING_FILES);
    entries.push("/(^|/)dovecot[-.]/");
    entries.join(";")
}

fn is_bookkeeping(name: &str) -> bool {
    BOOKKEEPING_FILES.contains(&name)
        || name.starts_with("dovecot.")
        || name.starts_with("dovecot-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn walks_like_notmuch_new() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in [
            "cur",
            "new",
            "tmp",
            ".Sent/cur",
            ".Sent/tmp",
            ".notmuch/xapian",
            ".mailbot",
            "Lists/rust/cur",
            "notes/tmp",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in [
            "cur/1:2,S",
            "new/2",
            "tmp/3",
            ".Sent/cur/4:2,S",
            ".Sent/tmp/5",
            ".Sent/maildirfolder",
            ".notmuch/xapian/x",
            ".mailbot/state",
            "Lists/rust/cur/6",
            "notes/tmp/7",
            "cur/.hidden",
            "dovecot-uidlist",
            "dovecot.index.log",
            "dovecot-uidvalidity.5f3a",
            "courierimapuiddb",
        ] {
            fs::write(root.join(f), b"x").unwrap();
        }
        let bad = root.join(std::ffi::OsStr::from_bytes(b"new/caf\xe9"));
        fs::write(&bad, b"x").unwrap();
        let mut failed = Vec::new();
        let mut got: Vec<String> = message_files(root, &mut failed)
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().display().to_string())
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ".Sent/cur/4:2,S",
                "Lists/rust/cur/6",
                "cur/1:2,S",
                "new/2",
                "notes/tmp/7"
            ]
        );
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, bad);
        assert_eq!(failed[0].1, NOT_UTF8);
    }
}
