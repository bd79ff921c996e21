//! The state of one mailbox pair (source mailbox → destination mailbox):
//! for each folder pair, both sides' UIDVALIDITY, UIDNEXT, message count
//! and HIGHESTMODSEQ as the last pass left them, and which source UID
//! became which destination UID with the flags both last agreed on.
//!
//! The state is a cache, never the only truth: a pass that dies before
//! it writes the state leaves copies on the destination that no entry
//! names, and the next pass finds them by Message-ID and size (then
//! sha256) before copying anything. Files are written whole (temporary
//! file, fsync, rename, fsync of the folder), mode 0600 in folders of
//! mode 0700, and a lock keeps two runs off one pair.
//!
//! It does not talk to servers.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// One side of a folder pair as a pass left it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideState {
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// UIDNEXT.
    pub uidnext: u32,
    /// Messages.
    pub messages: u32,
    /// HIGHESTMODSEQ (0 without CONDSTORE).
    pub highestmodseq: u64,
}

/// A copied (or found) message: its destination UID and the flags both
/// sides had when they last agreed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    /// The destination UID.
    pub to: u32,
    /// Index into [`FolderState::flag_sets`].
    pub flags: usize,
}

/// One folder pair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderState {
    /// The destination folder's name (UTF-8).
    pub destination: String,
    /// The source side.
    pub source_side: SideState,
    /// The destination side.
    pub destination_side: SideState,
    /// Source UID → pair.
    pub pairs: BTreeMap<u32, Pair>,
    /// The distinct flag sets the pairs refer to (sorted flag names).
    pub flag_sets: Vec<Vec<String>>,
    /// Pairs whose source message is gone but whose copy was kept (a
    /// pass without `--delete`): a pass with it must look again.
    #[serde(default)]
    pub kept_gone: u64,
    /// A pass was copying into this folder and has not finished: it may
    /// have died with a command the server had read whole but not yet
    /// carried out, whose copies land after the next pass looked.
    #[serde(default)]
    pub copying: bool,
    /// Look for such late copies at the next pass too.
    #[serde(default)]
    pub recheck: bool,
}

impl FolderState {
    /// The index of `flags` (sorted) in the table, added when new.
    pub fn flag_set(&mut self, flags: &[String]) -> usize {
        let mut sorted = flags.to_vec();
        sorted.sort();
        sorted.dedup();
        match self.flag_sets.iter().position(|f| *f == sorted) {
            Some(i) => i,
            None => {
                self.flag_sets.push(sorted);
                self.flag_sets.len() - 1
            }
        }
    }

    /// The flags of a pair.
    pub fn flags_of(&self, pair: &Pair) -> &[String] {
        self.flag_sets.get(pair.flags).map_or(&[], Vec::as_slice)
    }

    /// Records that source `from` is destination `to` with `flags`.
    pub fn record(&mut self, from: u32, to: u32, flags: &[String]) {
        let flags = self.flag_set(flags);
        self.pairs.insert(from, Pair { to, flags });
    }
}

/// A mailbox pair's whole state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MailboxState {
    /// Format version.
    pub version: u32,
    /// Source folder name (UTF-8) → its pair.
    pub folders: BTreeMap<String, FolderState>,
    /// Bytes and seconds of the last pass that copied something, for
    /// `--plan`'s estimate.
    #[serde(default)]
    pub last_rate: Option<(u64, f64)>,
}

const VERSION: u32 = 1;

/// Where the state of a pair lives: `DIR/<source>/<destination>.json`,
/// both as `user@host:port` with unsafe characters as `%XX`.
pub fn path_for(dir: &Path, source: &str, destination: &str) -> PathBuf {
    dir.join(escape(source))
        .join(format!("{}.json", escape(destination)))
}

fn escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"@.:-_+".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.starts_with('.') {
        out.replace_range(0..1, "%2E");
    }
    out
}

/// Creates `dir` and its missing parents mode 0700, and makes `dir`
/// itself 0700 whatever the umask or an earlier run left.
pub fn private_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::writing(dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| Error::writing(dir, e))
}

/// Reads the state at `path`; none when missing. An unreadable or
/// corrupt file is reported in the `Err` text and treated as none by the
/// caller (the next pass re-finds its copies).
pub fn load(path: &Path) -> std::result::Result<Option<MailboxState>, String> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}; starting afresh", path.display())),
    };
    match serde_json::from_slice::<MailboxState>(&text) {
        Ok(s) if s.version == VERSION => Ok(Some(s)),
        Ok(s) => Err(format!(
            "{}: state version {} unknown; starting afresh",
            path.display(),
            s.version
        )),
        Err(e) => Err(format!(
            "{}: corrupt ({e}); starting afresh",
            path.display()
        )),
    }
}

/// Writes the state whole: temporary file (0600), fsync, rename, fsync
/// of the folder (made 0700).
pub fn save(path: &Path, state: &MailboxState) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    private_dir(dir)?;
    let mut state = state.clone();
    state.version = VERSION;
    let text = serde_json::to_vec(&state).map_err(|e| {
        Error::new(
            ErrorKind::CannotCreate,
            path.display().to_string(),
            e.to_string(),
        )
    })?;
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
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(&text)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(ErrorKind::CannotCreate, path.display().to_string(), e)
    })
}

/// Locks the pair whose state is at `path` (a `.lock` beside it) for as
/// long as the file lives; held by another run: `Locked` (exit 75).
pub fn lock(path: &Path, object: &str) -> Result<File> {
    let dir = path.parent().unwrap_or(Path::new("."));
    private_dir(dir)?;
    let mut lock = path.as_os_str().to_owned();
    lock.push(".lock");
    crate::lockfile::try_lock(
        Path::new(&lock),
        object,
        "another mail-migrate is moving this mailbox (its lock is held)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_privately() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(
            &dir.path().join("state"),
            "alice@old.example:993",
            "al/ice@new.example:993",
        );
        assert!(path.ends_with("alice@old.example:993/al%2Fice@new.example:993.json"));
        assert_eq!(load(&path).unwrap(), None);
        let mut st = MailboxState::default();
        let mut f = FolderState {
            destination: "Sent".into(),
            ..FolderState::default()
        };
        f.record(4, 9, &["\\Seen".into(), "$Label1".into()]);
        f.record(5, 10, &["$Label1".into(), "\\Seen".into()]);
        assert_eq!(f.flag_sets.len(), 1);
        st.folders.insert("Sent Items".into(), f);
        save(&path, &st).unwrap();
        let back = load(&path).unwrap().unwrap();
        assert_eq!(back.folders, st.folders);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let held = lock(&path, "alice").unwrap();
        assert_eq!(lock(&path, "alice").unwrap_err().exit().code(), 75);
        drop(held);
        fs::write(&path, b"{not json").unwrap();
        assert!(load(&path).unwrap_err().contains("corrupt"));
    }
}
