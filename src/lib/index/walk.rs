//! The files a scan of a maildir considers, found the way `notmuch new`
//! finds them: every regular file below the root, folder by folder, except
//! dot files, the `tmp/` of a maildir folder, the `.notmuch` and `.mailbot`
//! folders, and the bookkeeping files that IMAP servers and sync tools keep
//! beside the messages. Maildir++ dot folders (`.Sent`) are messages and
//! are walked.
//!
//! A walk is incremental: given the folders of the last complete scan with
//! their modification times ([`Folders`]), a folder whose mtime has not
//! changed since is not listed (a file added, removed or renamed in a
//! folder changes its mtime), only the folders below it are visited, as
//! `notmuch new` does with the directory documents the notmuch crate
//! gives no access to. An mtime less than [`SETTLE`] old is not kept: a
//! file created within the same tick of the file system's clock would
//! leave it unchanged.
//!
//! It does not read the files or decide whether they are mail; libnotmuch
//! does that when it indexes them.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

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

/// How old a folder's mtime must be before a walk trusts it: file systems
/// stamp times from a clock that advances in ticks of a few milliseconds,
/// so a file created in the tick of the listing could leave the mtime as
/// it was. A second is far more than any tick.
pub const SETTLE: Duration = Duration::from_secs(1);

/// What a walk knew of one folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folder {
    /// Its mtime (seconds, nanoseconds) when it was listed, when old
    /// enough to trust ([`SETTLE`]) and every file in it was indexed.
    pub mtime: Option<(i64, i64)>,
    /// The names of the folders in it that the walk visits.
    pub children: Vec<String>,
}

/// The folders of a walk by path relative to the root (`""` is the root).
pub type Folders = BTreeMap<String, Folder>;

/// What [`walk`] found.
#[derive(Debug, Default)]
pub struct Walk {
    /// The folders that were listed (changed since `previous`, or new to
    /// it), each with the candidate message files in it, in inode order
    /// (which reads a cold disk in far fewer seeks than name order, as
    /// notmuch does).
    pub listed: Vec<(PathBuf, Vec<PathBuf>)>,
    /// Folders of `previous` that are gone (each with everything below it).
    pub vanished: Vec<PathBuf>,
    /// Every folder visited, for the next walk.
    pub folders: Folders,
}

/// Walks `root`, listing only the folders that changed since `previous`
/// (all of them when it is empty). A name that is not UTF-8, or a folder
/// that cannot be read, goes to `failed` with the reason, and the walk
/// goes on; only an unreadable root is an error. Mtimes from `settled`
/// on are not kept.
pub fn walk(
    root: &Path,
    previous: &Folders,
    settled: SystemTime,
    failed: &mut Vec<(PathBuf, String)>,
) -> Result<Walk> {
    fs::metadata(root).map_err(|e| Error::reading(root, e))?;
    let mut out = Walk::default();
    let mut walker = Walker {
        root,
        previous,
        settled,
        failed,
        out: &mut out,
    };
    walker.folder("", 0)?;
    Ok(out)
}

/// Lists every candidate message file under `root` (no record kept).
#[cfg(test)]
pub fn message_files(root: &Path, failed: &mut Vec<(PathBuf, String)>) -> Result<Vec<PathBuf>> {
    let walked = walk(root, &Folders::new(), SystemTime::UNIX_EPOCH, failed)?;
    Ok(walked.listed.into_iter().flat_map(|(_, f)| f).collect())
}

struct Walker<'a> {
    root: &'a Path,
    previous: &'a Folders,
    settled: SystemTime,
    failed: &'a mut Vec<(PathBuf, String)>,
    out: &'a mut Walk,
}

impl Walker<'_> {
    fn folder(&mut self, rel: &str, depth: usize) -> Result<()> {
        let dir = if rel.is_empty() {
            self.root.to_path_buf()
        } else {
            self.root.join(rel)
        };
        let meta = match fs::metadata(&dir) {
            Ok(m) => m,
            Err(e) if depth == 0 => return Err(Error::reading(&dir, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.vanish(rel, &dir);
                return Ok(());
            }
            Err(e) => {
                self.failed.push((dir, e.to_string()));
                return Ok(());
            }
        };
        let mtime = (meta.mtime(), meta.mtime_nsec());
        if let Some(known) = self.previous.get(rel)
            && known.mtime == Some(mtime)
        {
            // Nothing came, went or was renamed here: only the folders
            // below can hold news.
            self.out.folders.insert(rel.to_string(), known.clone());
            for child in &known.children {
                self.child(rel, child, depth)?;
            }
            return Ok(());
        }
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if depth == 0 => return Err(Error::reading(&dir, e)),
            Err(e) => {
                self.failed.push((dir, e.to_string()));
                return Ok(());
            }
        };
        let mut files: Vec<(u64, PathBuf)> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.failed.push((dir.clone(), e.to_string()));
                    continue;
                }
            };
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                self.failed.push((path, NOT_UTF8.to_string()));
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
                    self.failed.push((path, e.to_string()));
                    continue;
                }
            };
            if is_dir {
                if !SKIPPED_FOLDERS.contains(&name.as_str()) {
                    names.push(name);
                }
            } else if !name.starts_with('.') && !is_bookkeeping(&name) {
                files.push((entry.ino(), path));
            }
        }
        files.sort_unstable();
        // `tmp/` holds deliveries in progress, but only in a maildir
        // folder; elsewhere a folder called tmp is an ordinary folder.
        let is_maildir = names.iter().any(|n| n == "cur" || n == "new");
        names.retain(|n| !(is_maildir && n == "tmp"));
        names.sort();
        let trusted = SystemTime::UNIX_EPOCH
            .checked_add(Duration::new(
                u64::try_from(mtime.0).unwrap_or(0),
                u32::try_from(mtime.1).unwrap_or(0),
            ))
            .is_some_and(|t| t < self.settled);
        self.out
            .listed
            .push((dir.clone(), files.into_iter().map(|(_, p)| p).collect()));
        self.out.folders.insert(
            rel.to_string(),
            Folder {
                mtime: trusted.then_some(mtime),
                children: names.clone(),
            },
        );
        // Folders the last walk saw here and that are gone now.
        if let Some(known) = self.previous.get(rel) {
            for gone in known.children.iter().filter(|c| !names.contains(c)) {
                let child_rel = join(rel, gone);
                let child_dir = self.root.join(&child_rel);
                if !child_dir.is_dir() {
                    self.vanish(&child_rel, &child_dir);
                }
            }
        }
        for name in &names {
            self.child(rel, name, depth)?;
        }
        Ok(())
    }

    fn child(&mut self, rel: &str, name: &str, depth: usize) -> Result<()> {
        let child = join(rel, name);
        if depth + 1 > MAX_DEPTH {
            self.failed.push((
                self.root.join(&child),
                "folders nested too deep (a symlink loop?)".into(),
            ));
            return Ok(());
        }
        self.folder(&child, depth + 1)
    }

    /// A folder of the last walk is gone, and with it all below it.
    fn vanish(&mut self, rel: &str, dir: &Path) {
        if self.previous.contains_key(rel) {
            self.out.vanished.push(dir.to_path_buf());
        }
    }
}

fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
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
