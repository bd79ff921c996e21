//! The per-folder sync state under `DIR/.mailbot/sync/`: the server's
//! UIDVALIDITY, HIGHESTMODSEQ and UIDNEXT as of the last complete sync,
//! the flags each UID had on both sides then (the base of the three-way
//! flag merge), and the uploads begun but not yet confirmed.
//!
//! The state is a cache over the file names, which carry the UIDs: it is
//! written atomically (temporary file, fsync, rename, fsync of the
//! folder) and only after the messages it lists are on disk. A missing,
//! truncated or corrupt file reads as "no state", and the sync rebuilds it
//! by matching local files to the server's messages; it never makes the
//! sync fail.
//!
//! The format is line-based text ending in a count, so a torn write is
//! always noticed:
//!
//! ```text
//! mailbot-sync-state 1
//! folder "INBOX"
//! local "INBOX"
//! uidvalidity 1795467232
//! highestmodseq 120
//! uidnext 57
//! append 57 2048 <sha256 hex> "1700000000.M1P2Q3.host"
//! m 1 S
//! m 2 -
//! m 3 Sx
//! end 3
//! ```

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::names::{DELETED_HERE, FLAG_MASK, FlagBits, bits_from_letters, letters};
use crate::error::{Error, ErrorKind, Result};

const MAGIC: &str = "mailbot-sync-state 1";

/// An upload begun: recorded before the APPEND so that a crash before
/// the local file is renamed does not upload it twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAppend {
    /// The server's UIDNEXT before the APPEND: the copy's UID is at least this.
    pub uidnext: u32,
    /// The bytes sent (line ends made CRLF).
    pub size: u64,
    /// Their sha256, in hex.
    pub sha256: String,
    /// The local file's unique name part (without `:2,` flags).
    pub unique: String,
}

/// One folder's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderState {
    /// The server folder's name (decoded).
    pub folder: String,
    /// The local folder, relative to the maildir root.
    pub local: String,
    /// UIDVALIDITY the UIDs below belong to.
    pub uidvalidity: u32,
    /// HIGHESTMODSEQ as of the last complete sync (0: none).
    pub highestmodseq: u64,
    /// Every UID below this was looked at.
    pub uidnext: u32,
    /// UID → the synced flags both sides had when last synced. A UID here
    /// with no local file was deleted locally.
    pub messages: BTreeMap<u32, FlagBits>,
    /// Uploads begun.
    pub appends: Vec<PendingAppend>,
}

impl FolderState {
    /// The state as text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(64 + self.messages.len() * 12);
        out.push_str(MAGIC);
        out.push('\n');
        out.push_str(&format!("folder {}\n", json_string(&self.folder)));
        out.push_str(&format!("local {}\n", json_string(&self.local)));
        out.push_str(&format!("uidvalidity {}\n", self.uidvalidity));
        out.push_str(&format!("highestmodseq {}\n", self.highestmodseq));
        out.push_str(&format!("uidnext {}\n", self.uidnext));
        for a in &self.appends {
            out.push_str(&format!(
                "append {} {} {} {}\n",
                a.uidnext,
                a.size,
                a.sha256,
                json_string(&a.unique)
            ));
        }
        for (uid, bits) in &self.messages {
            let mut l = letters(*bits & FLAG_MASK);
            if bits & DELETED_HERE != 0 {
                l.push('x');
            }
            out.push_str(&format!(
                "m {uid} {}\n",
                if l.is_empty() { "-" } else { l.as_str() }
            ));
        }
        out.push_str(&format!("end {}\n", self.messages.len()));
        out
    }

    /// Parses state text; `None` for anything that is not a complete,
    /// well-formed state.
    pub fn parse(text: &str) -> Option<FolderState> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let mut st = FolderState::default();
        let mut seen = [false; 5];
        let mut ended = false;
        for line in lines {
            if ended {
                return None;
            }
            let (key, rest) = line.split_once(' ')?;
            match key {
                "folder" => {
                    st.folder = serde_json::from_str(rest).ok()?;
                    seen[0] = true;
                }
                "local" => {
                    st.local = serde_json::from_str(rest).ok()?;
                    seen[1] = true;
                }
                "uidvalidity" => {
                    st.uidvalidity = rest.parse().ok()?;
                    seen[2] = true;
                }
                "highestmodseq" => {
                    st.highestmodseq = rest.parse().ok()?;
                    seen[3] = true;
                }
                "uidnext" => {
                    st.uidnext = rest.parse().ok()?;
                    seen[4] = true;
                }
                "append" => {
                    let mut f = rest.splitn(4, ' ');
                    let uidnext = f.next()?.parse().ok()?;
                    let size = f.next()?.parse().ok()?;
                    let sha256 = f.next()?.to_string();
                    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return None;
                    }
                    let unique = serde_json::from_str(f.next()?).ok()?;
                    st.appends.push(PendingAppend {
                        uidnext,
                        size,
                        sha256,
                        unique,
                    });
                }
                "m" => {
                    let (uid, flags) = rest.split_once(' ')?;
                    let uid: u32 = uid.parse().ok()?;
                    if uid == 0 {
                        return None;
                    }
                    let bits = if flags == "-" {
                        0
                    } else if flags.bytes().all(|b| b"DFRSTx".contains(&b)) {
                        bits_from_letters(flags)
                            | if flags.contains('x') { DELETED_HERE } else { 0 }
                    } else {
                        return None;
                    };
                    st.messages.insert(uid, bits);
                }
                "end" => {
                    if rest.parse::<usize>().ok()? != st.messages.len() {
                        return None;
                    }
                    ended = true;
                }
                _ => return None,
            }
        }
        (ended && seen.iter().all(|s| *s)).then_some(st)
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Where a folder's state lives: `DIR/.mailbot/sync/<name>.state`, the
/// server name with everything but ASCII letters, digits, `-` and `_`
/// written as `%XX` (a hash when that grows too long for a file name).
pub fn state_path(maildir: &Path, folder: &str) -> PathBuf {
    let mut name = String::new();
    for b in folder.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    if name.len() > 200 {
        use sha2::Digest;
        name = format!(
            "hash-{}",
            hex::encode(sha2::Sha256::digest(folder.as_bytes()))
        );
    }
    state_dir(maildir).join(format!("{name}.state"))
}

/// `DIR/.mailbot/sync`.
pub fn state_dir(maildir: &Path) -> PathBuf {
    maildir.join(".mailbot").join("sync")
}

/// Reads a folder's state. `Ok(None)` when there is none; a state that
/// does not parse is `Err` with the reason (the caller warns and goes on
/// without it).
pub fn load(path: &Path) -> std::result::Result<Option<FolderState>, String> {
    match fs::read_to_string(path) {
        Ok(text) => FolderState::parse(&text).map(Some).ok_or_else(|| {
            format!(
                "{}: corrupt sync state; rebuilding it from the file names",
                path.display()
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!(
            "{}: {e}; rebuilding the sync state from the file names",
            path.display()
        )),
    }
}

/// Writes a folder's state atomically: a temporary file, fsync, rename
/// over the old one, fsync of the folder.
pub fn save(path: &Path, state: &FolderState) -> Result<()> {
    write_atomically(path, state.render().as_bytes())
}

/// Writes a small file of the state folder atomically (see [`save`]).
pub fn write_file(path: &Path, text: &[u8]) -> Result<()> {
    write_atomically(path, text)
}

fn write_atomically(path: &Path, text: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    crate::private::create_dir_all(dir).map_err(|e| Error::writing(dir, e))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(ErrorKind::CannotCreate, path.display().to_string(), e)
    })
}

/// A message moved out of a synced local folder on purpose (mail-bot's
/// `move`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedOut {
    /// The local folder it left, relative to the maildir (as
    /// [`FolderState::local`]).
    pub local: String,
    /// The UIDVALIDITY its UID belongs to.
    pub uidvalidity: u32,
    /// Its UID in that folder.
    pub uid: u32,
}

/// `DIR/.mailbot/sync/moved-out`: the messages moved out of synced local
/// folders on purpose, one per line, `uidvalidity uid "local"`. mail-bot
/// writes it (under its own lock); each folder sync reads it and takes
/// them for deletions on this side: never fetched again, not even when
/// the folder is now empty, and never expunged on the server.
pub fn moved_out_path(maildir: &Path) -> PathBuf {
    state_dir(maildir).join("moved-out")
}

/// The records of [`moved_out_path`]; a line that does not parse is
/// skipped.
pub fn read_moved_out(maildir: &Path) -> Vec<MovedOut> {
    let Ok(text) = fs::read_to_string(moved_out_path(maildir)) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ' ');
            Some(MovedOut {
                uidvalidity: fields.next()?.parse().ok()?,
                uid: fields.next()?.parse().ok()?,
                local: serde_json::from_str(fields.next()?).ok()?,
            })
        })
        .collect()
}

/// Marks in `st` the messages moved out of its folder as deleted on this
/// side; returns how many were not marked yet.
pub fn apply_moved_out(st: &mut FolderState, moved: &[MovedOut]) -> usize {
    let mut marked = 0;
    for m in moved {
        if m.local == st.local
            && m.uidvalidity == st.uidvalidity
            && let Some(bits) = st.messages.get_mut(&m.uid)
            && *bits & DELETED_HERE == 0
        {
            *bits |= DELETED_HERE;
            marked += 1;
        }
    }
    marked
}

/// The states of every synced folder of `maildir` (unreadable ones left
/// out).
fn all_states(maildir: &Path) -> Vec<FolderState> {
    let Ok(entries) = fs::read_dir(state_dir(maildir)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "state"))
        .filter_map(|p| load(&p).ok().flatten())
        .collect()
}

/// The records of [`moved_out_path`] with the sync states they refer
/// to, read once for a run of moves (a mail-bot pass) rather than once
/// per move.
#[derive(Debug)]
pub struct MovedOutLog {
    maildir: PathBuf,
    states: Vec<FolderState>,
    records: Vec<MovedOut>,
}

impl MovedOutLog {
    /// Reads the states and the records still to be seen by a sync (its
    /// folder's state lists the UID under the same UIDVALIDITY and not yet
    /// as deleted here); the others are dropped at the next write, so the
    /// file stays small.
    pub fn open(maildir: &Path) -> MovedOutLog {
        let states = all_states(maildir);
        let records = read_moved_out(maildir)
            .into_iter()
            .filter(|m| {
                states.iter().any(|st| {
                    st.local == m.local
                        && st.uidvalidity == m.uidvalidity
                        && st
                            .messages
                            .get(&m.uid)
                            .is_some_and(|b| b & DELETED_HERE == 0)
                })
            })
            .collect();
        MovedOutLog {
            maildir: maildir.to_path_buf(),
            states,
            records,
        }
    }

    /// Records that the message with `uid` left the synced local folder
    /// `local` on purpose (see [`moved_out_path`]), writing the file
    /// atomically before returning. Nothing is recorded when no sync
    /// state lists that UID for the folder (nothing syncs it, so nothing
    /// would fetch it again). Returns whether a record was written.
    pub fn record(&mut self, local: &Path, uid: u32) -> Result<bool> {
        let rel = local
            .strip_prefix(&self.maildir)
            .unwrap_or(local)
            .to_string_lossy()
            .into_owned();
        let Some(st) = self
            .states
            .iter()
            .find(|st| st.local == rel && st.messages.contains_key(&uid))
        else {
            return Ok(false);
        };
        let new = MovedOut {
            local: rel,
            uidvalidity: st.uidvalidity,
            uid,
        };
        if !self.records.contains(&new) {
            self.records.push(new);
        }
        let mut text = String::new();
        for m in &self.records {
            text.push_str(&format!(
                "{} {} {}\n",
                m.uidvalidity,
                m.uid,
                json_string(&m.local)
            ));
        }
        write_atomically(&moved_out_path(&self.maildir), text.as_bytes())?;
        Ok(true)
    }
}

/// [`MovedOutLog::record`] for a single move.
pub fn record_moved_out(maildir: &Path, local: &Path, uid: u32) -> Result<bool> {
    MovedOutLog::open(maildir).record(local, uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FolderState {
        let mut st = FolderState {
            folder: "Re\u{e7}us.\"Factures\"".into(),
            local: "Re\u{e7}us/\"Factures\"".into(),
            uidvalidity: 1795467232,
            highestmodseq: 120,
            uidnext: 57,
            ..FolderState::default()
        };
        st.messages.insert(1, bits_from_letters("S"));
        st.messages.insert(2, 0);
        st.messages.insert(40, bits_from_letters("DFRST"));
        st.messages
            .insert(41, bits_from_letters("S") | DELETED_HERE);
        st.appends.push(PendingAppend {
            uidnext: 57,
            size: 2048,
            sha256: "ab".repeat(32),
            unique: "1700000000.M1P2Q3.h\u{e9}st".into(),
        });
        st
    }

    #[test]
    fn round_trip() {
        let st = sample();
        let text = st.render();
        assert_eq!(FolderState::parse(&text), Some(st.clone()));
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), &st.folder);
        save(&path, &st).unwrap();
        assert_eq!(load(&path).unwrap(), Some(st));
        assert!(!path.with_extension("state.tmp").exists());
        assert_eq!(load(&dir.path().join("none.state")).unwrap(), None);
    }

    #[test]
    fn every_truncation_and_corruption_is_refused() {
        let text = sample().render();
        // Cut anywhere (a torn write): never accepted as a state.
        // (Only the final line end missing is still a whole state.)
        for cut in 0..text.len() - 1 {
            if !text.is_char_boundary(cut) {
                continue;
            }
            assert!(FolderState::parse(&text[..cut]).is_none(), "cut at {cut}");
        }
        let corruptions = [
            text.replace("m 2 -", "m 2 Q"),
            text.replace("m 2 -", "m 0 -"),
            text.replace("end 4", "end 3"),
            text.replace("uidnext 57", "uidnext x"),
            text.replace("uidvalidity 1795467232\n", ""),
            text.clone() + "m 9 S\n",
            text.replace(MAGIC, "mailbot-sync-state 2"),
            "\u{0}\u{1}garbage".to_string(),
        ];
        for bad in corruptions {
            assert!(FolderState::parse(&bad).is_none(), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.state");
        fs::write(&path, &text[..text.len() / 2]).unwrap();
        assert!(load(&path).unwrap_err().contains("corrupt"));
    }

    #[test]
    fn state_file_names_are_safe() {
        let root = Path::new("/m");
        assert_eq!(
            state_path(root, "INBOX"),
            Path::new("/m/.mailbot/sync/INBOX.state")
        );
        assert_eq!(
            state_path(root, "../Re\u{e7}us/x"),
            Path::new("/m/.mailbot/sync/%2E%2E%2FRe%C3%A7us%2Fx.state")
        );
        let long = "x".repeat(300);
        let p = state_path(root, &long);
        assert!(p.file_name().unwrap().len() < 100);
    }

    #[test]
    fn moved_out_records_mark_deletions_and_are_dropped_once_seen() {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path();
        let mut inbox = FolderState {
            folder: "INBOX".into(),
            local: "INBOX".into(),
            uidvalidity: 7,
            uidnext: 4,
            ..FolderState::default()
        };
        for uid in 1..4 {
            inbox.messages.insert(uid, bits_from_letters("S"));
        }
        let path = state_path(maildir, "INBOX");
        save(&path, &inbox).unwrap();
        let local = maildir.join("INBOX");
        // No state lists the folder or the UID: nothing to record.
        assert!(!record_moved_out(maildir, &maildir.join("Other"), 1).unwrap());
        assert!(!record_moved_out(maildir, &local, 9).unwrap());
        assert!(read_moved_out(maildir).is_empty());
        assert!(record_moved_out(maildir, &local, 1).unwrap());
        assert!(record_moved_out(maildir, &local, 2).unwrap());
        assert!(record_moved_out(maildir, &local, 2).unwrap());
        let moved = read_moved_out(maildir);
        assert_eq!(
            moved.iter().map(|m| m.uid).collect::<Vec<_>>(),
            [1, 2],
            "one record per message"
        );
        // Another UIDVALIDITY: the records are not for this state.
        let mut other = inbox.clone();
        other.uidvalidity = 8;
        assert_eq!(apply_moved_out(&mut other, &moved), 0);
        // A sync applies them and saves the state...
        assert_eq!(apply_moved_out(&mut inbox, &moved), 2);
        assert_eq!(apply_moved_out(&mut inbox, &moved), 0);
        assert_eq!(inbox.messages[&1] & DELETED_HERE, DELETED_HERE);
        assert_eq!(inbox.messages[&3] & DELETED_HERE, 0);
        save(&path, &inbox).unwrap();
        // ...and the next record drops the ones the state now carries.
        assert!(record_moved_out(maildir, &local, 3).unwrap());
        assert_eq!(
            read_moved_out(maildir),
            [MovedOut {
                local: "INBOX".into(),
                uidvalidity: 7,
                uid: 3
            }]
        );
    }
}
