//! What lets a pass leave a folder alone: `DIR/.mailbot/sync/unchanged.json`
//! holds, per server folder, what the server's STATUS said (UIDVALIDITY,
//! UIDNEXT, HIGHESTMODSEQ, MESSAGES) and the modification times of the
//! local folder's `cur/` and `new/` when a pass last found both sides in
//! step. A later pass whose LIST-STATUS (or STATUS) answer and directory
//! times are the same skips the folder: no SELECT, no listing.
//!
//! It is a cache and errs towards syncing. An entry is written only for a
//! folder a pass changed nothing in locally (the directory times after
//! the pass are those before its listing), with nothing left to do (no
//! failure, no upload pending, every UID below UIDNEXT looked at), and
//! whose directory times were more than [`SETTLED`] old when read: a
//! change made within the same timestamp tick as the recorded time (a
//! file system with one-second times, a coarse kernel clock) could not
//! be told from it. A HIGHESTMODSEQ of 0 (no CONDSTORE) never skips, as a
//! flag change could not be seen. The entry also names the folder's state
//! file by size and time, so a state written since (by a killed run) is
//! never taken for the one the entry describes. A missing or unreadable
//! file means "sync everything".
//!
//! It does not replace the state ([`super::state`]): a skipped folder's
//! state is not even read.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::state;
use crate::imap::MailboxStatus;

/// How old a directory time must be, when read, to be trusted: longer
/// than any file system's timestamp granularity.
pub const SETTLED: Duration = Duration::from_secs(2);

/// A file's or directory's size and modification time (nanoseconds since
/// the epoch); `None` when it cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
}

impl Stamp {
    /// The stamp of `path`.
    pub fn of(path: &Path) -> Option<Stamp> {
        let m = fs::metadata(path).ok()?;
        Some(Stamp {
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        })
    }
}

/// The times of a local folder's `cur/` and `new/`, and when they were
/// read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirStamps {
    /// `cur/`.
    pub cur: Option<Stamp>,
    /// `new/`.
    pub new: Option<Stamp>,
    /// When they were read (nanoseconds since the epoch).
    pub read_ns: i128,
}

impl DirStamps {
    /// Reads them now.
    pub fn read(local: &Path) -> DirStamps {
        let read_ns = now_ns();
        DirStamps {
            cur: Stamp::of(&local.join("cur")),
            new: Stamp::of(&local.join("new")),
            read_ns,
        }
    }

    /// The same directories, unchanged (sizes are left out: a directory's
    /// size says nothing its time does not).
    pub fn same_times(&self, other: &DirStamps) -> bool {
        let t = |s: &Option<Stamp>| s.map(|s| s.mtime_ns);
        t(&self.cur) == t(&other.cur) && t(&self.new) == t(&other.new)
    }

    /// Both directories exist and their times were more than [`SETTLED`]
    /// old when read.
    pub fn settled(&self) -> bool {
        let limit = self.read_ns - SETTLED.as_nanos() as i128;
        [self.cur, self.new]
            .iter()
            .all(|s| s.is_some_and(|s| s.mtime_ns < limit))
    }
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// One folder found in step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The local folder, relative to the maildir root.
    pub local: String,
    /// What the server said then.
    pub uidvalidity: u32,
    /// UIDNEXT.
    pub uidnext: u32,
    /// HIGHESTMODSEQ (never 0 in an entry).
    pub highestmodseq: u64,
    /// MESSAGES.
    pub messages: u32,
    /// The folder's state file then.
    pub state: Stamp,
    /// `cur/` then.
    pub cur: Stamp,
    /// `new/` then.
    pub new: Stamp,
    /// The folder held local messages not uploaded (only a pass that
    /// does not upload leaves them).
    pub uploads_left: bool,
}

/// The entries of a maildir.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unchanged {
    /// Server folder name → entry.
    pub folders: BTreeMap<String, Entry>,
}

/// `DIR/.mailbot/sync/unchanged.json`.
pub fn path(maildir: &Path) -> PathBuf {
    state::state_dir(maildir).join("unchanged.json")
}

impl Unchanged {
    /// Reads the file; empty when it is missing or does not parse.
    pub fn load(maildir: &Path) -> Unchanged {
        fs::read(path(maildir))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes it atomically (errors only warned about: it is a cache).
    pub fn save(&self, maildir: &Path) {
        let text = serde_json::to_vec(self).unwrap_or_default();
        if let Err(e) = state::write_file(&path(maildir), &text) {
            tracing::warn!("{}", crate::error::chain(&e));
        }
    }

    /// Whether `folder` (server name), mapped to `local`, is as the entry
    /// says on both sides: `status` the server's answer now. `pushes`:
    /// this pass uploads new local messages.
    pub fn can_skip(
        &self,
        maildir: &Path,
        folder: &str,
        local: &Path,
        status: Option<&MailboxStatus>,
        pushes: bool,
    ) -> bool {
        let (Some(e), Some(s)) = (self.folders.get(folder), status) else {
            return false;
        };
        let rel = local
            .strip_prefix(maildir)
            .unwrap_or(local)
            .to_string_lossy();
        let server_same = s.uidvalidity == Some(e.uidvalidity)
            && s.uidnext == Some(e.uidnext)
            && s.highestmodseq == Some(e.highestmodseq)
            && e.highestmodseq != 0
            && s.messages == Some(e.messages);
        server_same
            && e.local == rel
            && !(pushes && e.uploads_left)
            && Stamp::of(&local.join("cur")) == Some(e.cur)
            && Stamp::of(&local.join("new")) == Some(e.new)
            && Stamp::of(&state::state_path(maildir, folder)) == Some(e.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_directory_times_are_not_settled() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("cur")).unwrap();
        fs::create_dir_all(dir.path().join("new")).unwrap();
        let now = DirStamps::read(dir.path());
        assert!(
            !now.settled(),
            "just made: a change this tick would not show"
        );
        let later = DirStamps {
            read_ns: now.read_ns + 3_000_000_000,
            ..now
        };
        assert!(later.settled());
        assert!(later.same_times(&now));
        let missing = DirStamps::read(&dir.path().join("none"));
        assert!(
            !DirStamps {
                read_ns: i128::MAX,
                ..missing
            }
            .settled()
        );
    }

    #[test]
    fn unreadable_files_mean_sync_everything() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Unchanged::load(dir.path()), Unchanged::default());
        fs::create_dir_all(state::state_dir(dir.path())).unwrap();
        fs::write(path(dir.path()), b"{\"folders\": {\"INBOX\": 1").unwrap();
        assert_eq!(Unchanged::load(dir.path()), Unchanged::default());
    }
}
