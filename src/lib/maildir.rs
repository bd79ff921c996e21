//! Maildir folders: create them, deliver into them atomically, list what
//! they hold and read or change the `:2,` flags of a message.
//!
//! Delivery follows the maildir rules to the letter: the message is written
//! under `tmp/`, flushed to disk, renamed into `new/` (or `cur/`), and the
//! directory entry is flushed too, so a crash at any point leaves either no
//! message or a complete one. Names written are unique per host, process and
//! call. Reading is lenient: foreign names with `!2,` or `;2,` as the info
//! separator, Dovecot size fields (`,S=`, `,W=`), custom lowercase flags and
//! files in `cur/` without any info are all accepted.
//!
//! Messages are delivered with Unix line ends, as Postfix, Dovecot, mbsync
//! and offlineimap store them and as `grep`, `diff` and mail readers
//! expect: each CRLF of the message becomes LF and nothing else changes
//! ([`LineEnds::Lf`], the default; [`LineEnds::Crlf`] keeps the bytes as
//! given). [`Maildir::stage`] stays byte for byte, for callers that keep
//! exact copies (an outbox).
//!
//! This module does not lock, keep sync state or parse messages; those live
//! with the tools that need them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};

/// The three subdirectories every maildir folder has.
pub const SUBDIRS: [&str; 3] = ["tmp", "new", "cur"];

/// Which of the two message subdirectories a message sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subdir {
    /// `new/`: delivered, not yet seen by a mail reader.
    New,
    /// `cur/`: seen by a mail reader; carries flags in its name.
    Cur,
}

impl Subdir {
    /// The directory name.
    pub fn as_str(self) -> &'static str {
        match self {
            Subdir::New => "new",
            Subdir::Cur => "cur",
        }
    }
}

/// The characters that may separate the unique part of a name from its
/// info: `:` is the standard; `!` (mu, Windows-safe tools) and `;` (some
/// Dovecot set-ups) are met in real maildirs.
const INFO_SEPARATORS: [char; 3] = [':', '!', ';'];

/// A message file in a maildir folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Full path of the file.
    pub path: PathBuf,
    /// The subdirectory it sits in.
    pub subdir: Subdir,
    /// The unique part of the name (before the info separator), size
    /// fields included.
    pub unique: String,
    /// The info separator found in the name, if any.
    pub separator: Option<char>,
    /// The flags, sorted and without duplicates (empty when the name has no
    /// `2,` info).
    pub flags: String,
}

impl Entry {
    /// Whether the message carries `flag` (e.g. `'S'` for seen).
    pub fn has_flag(&self, flag: char) -> bool {
        self.flags.contains(flag)
    }

    /// The value of the `,S=` size field, when the name has one.
    pub fn size_field(&self) -> Option<u64> {
        self.unique
            .split(',')
            .skip(1)
            .find_map(|f| f.strip_prefix("S="))
            .and_then(|v| v.parse().ok())
    }
}

/// Splits a file name into its unique part, the separator and its flags.
///
/// Only `2,` info carries flags; anything else after a separator (the
/// experimental `1,` info) is kept as part of the unique name so nothing
/// is lost when the file is renamed.
pub fn parse_name(name: &str) -> (String, Option<char>, String) {
    let bytes = name.as_bytes();
    let mut at = None;
    for (i, c) in name.char_indices().rev() {
        if INFO_SEPARATORS.contains(&c) && bytes[i + 1..].starts_with(b"2,") {
            at = Some((i, c));
            break;
        }
    }
    match at {
        Some((i, sep)) => {
            let flags = normalize_flags(&name[i + 3..]);
            (name[..i].to_string(), Some(sep), flags)
        }
        None => (name.to_string(), None, String::new()),
    }
}

/// Keeps only ASCII letters, sorted and without duplicates, as the maildir
/// specification asks flags to be written.
pub fn normalize_flags(flags: &str) -> String {
    let mut chars: Vec<char> = flags.chars().filter(|c| c.is_ascii_alphabetic()).collect();
    chars.sort_unstable();
    chars.dedup();
    chars.into_iter().collect()
}

fn file_name_with_flags(unique: &str, separator: Option<char>, flags: &str) -> String {
    let sep = separator.unwrap_or(':');
    format!("{unique}{sep}2,{}", normalize_flags(flags))
}

/// How line ends are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineEnds {
    /// Each CRLF stored as LF, the Unix convention (what Dovecot, Postfix,
    /// mbsync and offlineimap write); bare CRs and everything else stay.
    #[default]
    Lf,
    /// As given: the CRLF a server sends (or a composer writes) is kept.
    Crlf,
}

impl LineEnds {
    /// `lf` or `crlf`, as flags and the configuration write it.
    pub fn as_str(self) -> &'static str {
        match self {
            LineEnds::Lf => "lf",
            LineEnds::Crlf => "crlf",
        }
    }
}

/// Turns each CRLF into LF in a stream of chunks, CRs split from their
/// LF at a chunk boundary included, and leaves every other byte as it is.
#[derive(Debug, Default)]
pub struct CrlfToLf {
    /// The last chunk ended in a CR that is not written yet.
    held_cr: bool,
}

impl CrlfToLf {
    /// Converts `chunk`, handing the result to `out` in one or more pieces.
    pub fn feed(
        &mut self,
        mut chunk: &[u8],
        out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.held_cr {
            self.held_cr = false;
            if chunk.first() != Some(&b'\n') {
                out(b"\r")?;
            }
        }
        while let Some(at) = memchr::memchr(b'\r', chunk) {
            match chunk.get(at + 1) {
                Some(b'\n') => {
                    out(&chunk[..at])?;
                    chunk = &chunk[at + 1..];
                }
                Some(_) => {
                    out(&chunk[..=at])?;
                    chunk = &chunk[at + 1..];
                }
                None => {
                    out(&chunk[..at])?;
                    self.held_cr = true;
                    return Ok(());
                }
            }
        }
        if chunk.is_empty() { Ok(()) } else { out(chunk) }
    }

    /// Writes what is held back at the end of the stream (a final CR).
    pub fn finish(&mut self, out: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        if std::mem::take(&mut self.held_cr) {
            out(b"\r")?;
        }
        Ok(())
    }
}

/// `message` with each CRLF made LF (see [`LineEnds::Lf`]).
pub fn crlf_to_lf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    let mut conv = CrlfToLf::default();
    let mut push = |piece: &[u8]| {
        out.extend_from_slice(piece);
        Ok(())
    };
    // Writing into a Vec cannot fail.
    let _ = conv.feed(message, &mut push);
    let _ = conv.finish(&mut push);
    out
}

/// A maildir folder on disk (the directory holding `tmp/`, `new/`, `cur/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maildir {
    root: PathBuf,
    line_ends: LineEnds,
}

/// A message written to `tmp/` and flushed, not yet visible to readers.
///
/// [`Staged::commit`] renames it into place; dropping it without a commit
/// removes the temporary file, so an interrupted delivery never shows up
/// in `new/` or `cur/`.
#[derive(Debug)]
pub struct Staged<'a> {
    maildir: &'a Maildir,
    tmp_path: PathBuf,
    unique: String,
    committed: bool,
}

impl Maildir {
    /// A handle on an existing or future maildir at `root`. Nothing is
    /// checked or created; see [`Maildir::create`] and [`Maildir::open`].
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Maildir {
            root: root.into(),
            line_ends: LineEnds::default(),
        }
    }

    /// The same folder, delivering with `line_ends` (LF by default).
    pub fn with_line_ends(mut self, line_ends: LineEnds) -> Self {
        self.line_ends = line_ends;
        self
    }

    /// Opens an existing maildir, failing with `InputMissing` when any of
    /// `tmp/`, `new/`, `cur/` is absent.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let md = Maildir::at(root);
        for sub in ["new", "cur"] {
            let p = md.root.join(sub);
            if !p.is_dir() {
                return Err(Error::new(
                    ErrorKind::InputMissing,
                    md.root.display().to_string(),
                    format!("not a maildir (no {sub}/ folder)"),
                ));
            }
        }
        Ok(md)
    }

    /// Creates the folder and its `tmp/`, `new/`, `cur/` (mode 0700) when
    /// missing; an existing maildir is left as it is.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self> {
        let md = Maildir::at(root);
        for sub in SUBDIRS {
            let p = md.root.join(sub);
            crate::private::create_dir_all(&p).map_err(|e| Error::writing(&p, e))?;
        }
        Ok(md)
    }

    /// The folder's path.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Creates (or opens) a Maildir++ subfolder: `Sent` becomes `.Sent`,
    /// `Archive/2024` becomes `.Archive.2024`, with the `maildirfolder`
    /// marker file Maildir++ readers expect.
    pub fn create_maildirpp_folder(&self, name: &str) -> Result<Maildir> {
        let dir = self.root.join(maildirpp_dir_name(name)?);
        let sub = Maildir::create(&dir)?;
        let marker = dir.join("maildirfolder");
        if !marker.exists() {
            crate::private::create_marker(&marker).map_err(|e| Error::writing(&marker, e))?;
        }
        Ok(sub)
    }

    /// Creates (or opens) a nested subfolder in the verbatim layout:
    /// `Archive/2024` is the maildir `ROOT/Archive/2024`.
    pub fn create_nested_folder(&self, name: &str) -> Result<Maildir> {
        let mut dir = self.root.clone();
        for part in name.split('/') {
            check_folder_component(name, part)?;
            dir.push(part);
        }
        Maildir::create(dir)
    }

    /// Lists the maildir folders below this one (not this one), by their
    /// path relative to it, sorted: nested folders that hold `cur/` or
    /// `new/`, and Maildir++ dot folders. `tmp`, `new`, `cur` themselves and
    /// other dot entries are not descended into.
    pub fn subfolders(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        collect_subfolders(&self.root, Path::new(""), &mut out, 0)?;
        out.sort();
        Ok(out)
    }

    /// Lists the messages in `new/` and `cur/`, sorted by path. Dot files
    /// and subdirectories are skipped; `tmp/` is never listed.
    pub fn list(&self) -> Result<Vec<Entry>> {
        let mut out = self.list_subdir(Subdir::New)?;
        out.extend(self.list_subdir(Subdir::Cur)?);
        Ok(out)
    }

    /// Lists the messages of one subdirectory, sorted by name. A missing
    /// subdirectory is an empty list.
    pub fn list_subdir(&self, subdir: Subdir) -> Result<Vec<Entry>> {
        let dir = self.root.join(subdir.as_str());
        let read = match fs::read_dir(&dir) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::reading(&dir, e)),
        };
        let mut out = Vec::new();
        for item in read {
            let item = item.map_err(|e| Error::reading(&dir, e))?;
            let name = item.file_name();
            let Some(name) = name.to_str() else {
                // Non-UTF-8 names are still messages; keep them with the
                // lossy name for display but the real path for access.
                let path = item.path();
                if is_message_file(&item)? {
                    let lossy = item.file_name().to_string_lossy().into_owned();
                    let (unique, separator, flags) = parse_name(&lossy);
                    out.push(Entry {
                        path,
                        subdir,
                        unique,
                        separator,
                        flags,
                    });
                }
                continue;
            };
            if name.starts_with('.') || !is_message_file(&item)? {
                continue;
            }
            let (unique, separator, flags) = parse_name(name);
            out.push(Entry {
                path: item.path(),
                subdir,
                unique,
                separator,
                flags,
            });
        }
        // One folder: the parsed names decide (unique part, then flags),
        // far cheaper than comparing paths component by component.
        out.sort_unstable_by(|a, b| {
            (a.unique.as_str(), a.flags.as_str()).cmp(&(b.unique.as_str(), b.flags.as_str()))
        });
        Ok(out)
    }

    /// Delivers `message` into `new/`, with this folder's line ends (each
    /// CRLF made LF unless [`LineEnds::Crlf`]), and returns its path.
    pub fn deliver(&self, message: &[u8]) -> Result<PathBuf> {
        self.stage_delivery(message)?.commit()
    }

    /// Delivers `message` straight into `cur/` with `flags` (as a sync tool
    /// does for a message already seen elsewhere), line ends as
    /// [`Maildir::deliver`], and returns its path.
    pub fn deliver_with_flags(&self, message: &[u8], flags: &str) -> Result<PathBuf> {
        self.stage_delivery(message)?.commit_with_flags(flags)
    }

    fn stage_delivery(&self, message: &[u8]) -> Result<Staged<'_>> {
        match self.line_ends {
            LineEnds::Crlf => self.stage(message),
            LineEnds::Lf => self.stage(&crlf_to_lf(message)),
        }
    }

    /// Writes `message` under `tmp/` byte for byte (whatever the line
    /// ends) and flushes it, without making it visible. See [`Staged`].
    pub fn stage(&self, message: &[u8]) -> Result<Staged<'_>> {
        self.stage_from(&mut &message[..])
    }

    /// Like [`Maildir::stage`], streaming the message from a reader.
    pub fn stage_from(&self, reader: &mut dyn Read) -> Result<Staged<'_>> {
        self.stage_named(reader, "")
    }

    /// Delivers `message` into `new/` byte for byte (whatever this
    /// folder's line ends) under a unique name that carries `tag` (ASCII
    /// letters and digits) after its counter: `SECONDS.M..P..Q..<tag>.HOST`,
    /// so that [`tag_of`] finds it again, also once the message has moved
    /// to `cur/`.
    pub fn deliver_tagged(&self, message: &[u8], tag: &str) -> Result<PathBuf> {
        self.stage_named(&mut &message[..], tag)?.commit()
    }

    fn stage_named(&self, reader: &mut dyn Read, tag: &str) -> Result<Staged<'_>> {
        let tmp_dir = self.root.join("tmp");
        // A unique name can in theory collide with a leftover of an earlier
        // process that had the same pid; `create_new` makes that a retry,
        // never an overwrite.
        for _ in 0..8 {
            let unique = unique_name_tagged(tag);
            let tmp_path = tmp_dir.join(&unique);
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp_path);
            let mut file = match file {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::writing(&tmp_path, e)),
            };
            let staged = Staged {
                maildir: self,
                tmp_path,
                unique,
                committed: false,
            };
            // On any failure below, dropping `staged` removes the file.
            io::copy(reader, &mut file)
                .and_then(|_| file.flush())
                .and_then(|_| file.sync_all())
                .map_err(|e| Error::writing(&staged.tmp_path, e))?;
            return Ok(staged);
        }
        Err(Error::new(
            ErrorKind::CannotCreate,
            tmp_dir.display().to_string(),
            "could not find a unique file name",
        ))
    }

    /// Moves a message from `new/` to `cur/`, adding an empty `2,` info when
    /// it has none, and returns the new entry. A message already in `cur/`
    /// is returned unchanged.
    pub fn move_to_cur(&self, entry: &Entry) -> Result<Entry> {
        if entry.subdir == Subdir::Cur {
            return Ok(entry.clone());
        }
        self.rename_entry(entry, Subdir::Cur, &entry.flags)
    }

    /// Replaces the flags of a message and returns the renamed entry. A
    /// message in `new/` moves to `cur/`, since only `cur/` names carry
    /// info. Flags are sorted and deduplicated; the original separator is
    /// kept.
    pub fn set_flags(&self, entry: &Entry, flags: &str) -> Result<Entry> {
        let flags = normalize_flags(flags);
        if entry.subdir == Subdir::Cur && entry.flags == flags && entry.separator.is_some() {
            return Ok(entry.clone());
        }
        self.rename_entry(entry, Subdir::Cur, &flags)
    }

    /// Adds and removes flags: `add` then `remove`, each a string of flag
    /// letters.
    pub fn change_flags(&self, entry: &Entry, add: &str, remove: &str) -> Result<Entry> {
        let mut flags: String = entry
            .flags
            .chars()
            .filter(|c| !remove.contains(*c))
            .collect();
        flags.extend(add.chars().filter(|c| !remove.contains(*c)));
        self.set_flags(entry, &flags)
    }

    fn rename_entry(&self, entry: &Entry, to: Subdir, flags: &str) -> Result<Entry> {
        let name = file_name_with_flags(&entry.unique, entry.separator, flags);
        let dest_dir = self.root.join(to.as_str());
        let dest = dest_dir.join(&name);
        rename_no_replace(&entry.path, &dest)?;
        sync_dir(&dest_dir)?;
        if entry.subdir != to {
            sync_dir(&self.root.join(entry.subdir.as_str()))?;
        }
        Ok(Entry {
            path: dest,
            subdir: to,
            unique: entry.unique.clone(),
            separator: Some(entry.separator.unwrap_or(':')),
            flags: normalize_flags(flags),
        })
    }

    /// Removes files in `tmp/` older than `max_age_secs` (the maildir rule
    /// is 36 hours): leftovers of deliveries that were interrupted. Returns
    /// how many were removed.
    pub fn clean_tmp(&self, max_age_secs: u64) -> Result<usize> {
        let dir = self.root.join("tmp");
        let read = match fs::read_dir(&dir) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::reading(&dir, e)),
        };
        let now = SystemTime::now();
        let mut removed = 0;
        for item in read {
            let item = item.map_err(|e| Error::reading(&dir, e))?;
            let meta = item
                .metadata()
                .map_err(|e| Error::reading(&item.path(), e))?;
            let old = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age.as_secs() >= max_age_secs);
            if meta.is_file() && old {
                fs::remove_file(item.path()).map_err(|e| Error::writing(&item.path(), e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

impl Staged<'_> {
    /// The temporary file's path.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp_path
    }

    /// Renames the message into `new/`, flushes the directory, and returns
    /// the final path.
    pub fn commit(self) -> Result<PathBuf> {
        let name = self.unique.clone();
        self.finish(Subdir::New, name)
    }

    /// Renames the message into `cur/` with `flags`, flushes the directory,
    /// and returns the final path.
    pub fn commit_with_flags(self, flags: &str) -> Result<PathBuf> {
        let name = file_name_with_flags(&self.unique, None, flags);
        self.finish(Subdir::Cur, name)
    }

    fn finish(mut self, to: Subdir, name: String) -> Result<PathBuf> {
        let dir = self.maildir.root.join(to.as_str());
        let dest = dir.join(name);
        rename_no_replace(&self.tmp_path, &dest)?;
        self.committed = true;
        sync_dir(&dir)?;
        Ok(dest)
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: a leftover is also cleaned by `clean_tmp` later.
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

/// Renames `from` to `to` unless `to` exists. Maildir names are unique, so
/// an existing target means something is wrong; overwriting would lose mail.
fn rename_no_replace(from: &Path, to: &Path) -> Result<()> {
    // Hard link then unlink gives an atomic no-replace rename on every
    // local filesystem; link fails with AlreadyExists instead of replacing.
    match fs::hard_link(from, to) {
        Ok(()) => fs::remove_file(from).map_err(|e| Error::writing(from, e)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Error::new(
            ErrorKind::CannotCreate,
            to.display().to_string(),
            "a message with this name already exists",
        )),
        // Filesystems without hard links: fall back to a checked rename.
        Err(_) if !to.exists() => fs::rename(from, to).map_err(|e| Error::writing(to, e)),
        Err(e) => Err(Error::writing(to, e)),
    }
}

/// Flushes a directory's entries to disk, so a rename into it survives a
/// crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    // The parent of a bare file name (`m1.eml`) is the empty path: the
    // current folder.
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::writing(dir, e))
}

fn is_message_file(item: &fs::DirEntry) -> Result<bool> {
    let ty = item
        .file_type()
        .map_err(|e| Error::reading(&item.path(), e))?;
    if ty.is_file() {
        return Ok(true);
    }
    if ty.is_symlink() {
        return Ok(item.path().is_file());
    }
    Ok(false)
}

fn collect_subfolders(base: &Path, rel: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<()> {
    // Deep enough for any real hierarchy, shallow enough to stop a symlink
    // loop.
    if depth > 32 {
        return Ok(());
    }
    let dir = base.join(rel);
    let read = match fs::read_dir(&dir) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::reading(&dir, e)),
    };
    for item in read {
        let item = item.map_err(|e| Error::reading(&dir, e))?;
        let name = item.file_name();
        let name_str = name.to_string_lossy();
        if rel.as_os_str().is_empty() && SUBDIRS.contains(&name_str.as_ref()) {
            continue;
        }
        let ty = item
            .file_type()
            .map_err(|e| Error::reading(&item.path(), e))?;
        if !ty.is_dir() {
            continue;
        }
        let is_maildirpp = name_str.starts_with('.') && name_str.len() > 1 && name_str != "..";
        if name_str.starts_with('.') && !is_maildirpp {
            continue;
        }
        let child_rel = rel.join(&name);
        let child = base.join(&child_rel);
        let is_folder = child.join("cur").is_dir() || child.join("new").is_dir();
        if is_maildirpp && !is_folder {
            // A dot directory that is not a maildir (.notmuch, .mailbot).
            continue;
        }
        if is_folder {
            out.push(child_rel.clone());
        }
        if !is_maildirpp {
            collect_subfolders(base, &child_rel, out, depth + 1)?;
        }
    }
    Ok(())
}

/// The Maildir++ directory name for a folder name with `/` as hierarchy
/// separator: `Archive/2024` → `.Archive.2024`.
pub fn maildirpp_dir_name(name: &str) -> Result<String> {
    let mut out = String::from(".");
    for (i, part) in name.split('/').enumerate() {
        check_folder_component(name, part)?;
        if part.contains('.') {
            return Err(Error::new(
                ErrorKind::BadInput,
                name,
                "a Maildir++ folder name part cannot contain '.'",
            ));
        }
        if i > 0 {
            out.push('.');
        }
        out.push_str(part);
    }
    Ok(out)
}

fn check_folder_component(name: &str, part: &str) -> Result<()> {
    let bad = part.is_empty()
        || part == "."
        || part == ".."
        || SUBDIRS.contains(&part)
        || part.chars().any(|c| c.is_control() || c == '\\');
    if bad {
        return Err(Error::new(
            ErrorKind::BadInput,
            name,
            format!("bad folder name part {part:?}"),
        ));
    }
    Ok(())
}

static DELIVERIES: AtomicU64 = AtomicU64::new(0);

/// A new unique maildir name: `SECONDS.M<micros>P<pid>Q<n>.<host>`, the
/// form Dovecot and qmail write. `/` and `:` in the host name are escaped
/// as `\057` and `\072`, as the maildir specification asks.
pub fn unique_name() -> String {
    unique_name_tagged("")
}

/// [`unique_name`] with `tag` after the counter (see
/// [`Maildir::deliver_tagged`]).
fn unique_name_tagged(tag: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = DELIVERIES.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}.M{:06}P{}Q{}{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        n,
        tag,
        host_for_names()
    )
}

/// The tag [`Maildir::deliver_tagged`] put into a unique name: the
/// letters and digits after the `Q` counter's digits, when they start
/// with `prefix`.
pub fn tag_of<'a>(unique: &'a str, prefix: &str) -> Option<&'a str> {
    let middle = unique.split('.').nth(1)?;
    let (_, after_q) = middle.rsplit_once('Q')?;
    let tag = after_q.trim_start_matches(|c: char| c.is_ascii_digit());
    (tag.starts_with(prefix) && tag.len() > prefix.len()).then_some(tag)
}

/// A sort key that puts unique names in delivery order: the seconds,
/// the microseconds (`M`) and the per-process counter (`Q`) compared as
/// numbers, so `Q10` comes after `Q9` and `M1000` after `M999`. Names
/// in another shape sort after these, by name.
pub fn delivery_order_key(unique: &str) -> (u64, u64, u64, u64, String) {
    let mut parts = unique.splitn(3, '.');
    let secs = parts.next().and_then(|s| s.parse::<u64>().ok());
    let middle = parts.next().unwrap_or("");
    let field = |tag: char| -> u64 {
        middle
            .split_once(tag)
            .map(|(_, rest)| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().unwrap_or(0)
            })
            .unwrap_or(0)
    };
    match secs {
        Some(secs) => (0, secs, field('M'), field('Q'), unique.to_string()),
        None => (1, 0, 0, 0, unique.to_string()),
    }
}

fn host_for_names() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let host = if host.is_empty() {
        "localhost".into()
    } else {
        host
    };
    host.replace('/', "\\057").replace(':', "\\072")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_order_compares_numbers_not_text() {
        let mut names = vec![
            "101.M5P1Q0.h",
            "100.M999999P1Q9.h",
            "100.M1000P1Q10.h",
            "100.M1000P1Q9.h",
            "100.M999P1Q11.h",
            "foreign",
        ];
        names.sort_by_key(|n| delivery_order_key(n));
        assert_eq!(
            names,
            [
                "100.M999P1Q11.h",
                "100.M1000P1Q9.h",
                "100.M1000P1Q10.h",
                "100.M999999P1Q9.h",
                "101.M5P1Q0.h",
                "foreign"
            ]
        );
        let name = unique_name();
        let micros = name.split_once(".M").unwrap().1.split_once('P').unwrap().0;
        assert_eq!(micros.len(), 6, "{name}");
    }

    fn corpus(rel: &str) -> Option<PathBuf> {
        crate::test_corpora::path(rel)
    }

    #[test]
    fn parses_names_of_every_flavour() {
        let cases = [
            ("1234.M1P2.host", "1234.M1P2.host", None, ""),
            ("1234.M1P2.host:2,", "1234.M1P2.host", Some(':'), ""),
            ("1234.M1P2.host:2,SRF", "1234.M1P2.host", Some(':'), "FRS"),
            (
                "1220863087.12663_15.mindcrime!2,PS",
                "1220863087.12663_15.mindcrime",
                Some('!'),
                "PS",
            ),
            ("special!2,Sabc", "special", Some('!'), "Sabc"),
            (
                "1035478339.27041_118.foo.org,S=1000,W=1030;2,RDF,",
                "1035478339.27041_118.foo.org,S=1000,W=1030",
                Some(';'),
                "DFR",
            ),
            ("x:1,experimental", "x:1,experimental", None, ""),
            ("a:2,SS", "a", Some(':'), "S"),
        ];
        for (name, unique, sep, flags) in cases {
            let (u, s, f) = parse_name(name);
            assert_eq!((u.as_str(), s, f.as_str()), (unique, sep, flags), "{name}");
        }
    }

    #[test]
    fn size_field_is_read() {
        let (unique, separator, flags) = parse_name("1.M2P3.h,S=10956,W=11000:2,S");
        let e = Entry {
            path: PathBuf::new(),
            subdir: Subdir::Cur,
            unique,
            separator,
            flags,
        };
        assert_eq!(e.size_field(), Some(10956));
    }

    #[test]
    fn crlf_becomes_lf_and_nothing_else_changes_at_any_chunk_boundary() {
        let cases: [(&[u8], &[u8]); 9] = [
            (b"a\r\nb\r\n", b"a\nb\n"),
            (b"bare\rcr\r\n", b"bare\rcr\n"),
            (b"cr cr lf\r\r\n", b"cr cr lf\r\n"),
            (b"lf\nalready\n", b"lf\nalready\n"),
            (b"ends in cr\r", b"ends in cr\r"),
            (b"\r\r\r", b"\r\r\r"),
            (b"\r\n\r\n", b"\n\n"),
            (b"8bit \xe9\xff\r\n\x01\x7f", b"8bit \xe9\xff\n\x01\x7f"),
            (b"", b""),
        ];
        for (input, want) in cases {
            assert_eq!(
                crlf_to_lf(input),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
            for size in 1..=4 {
                let mut out = Vec::new();
                let mut conv = CrlfToLf::default();
                let mut push = |p: &[u8]| {
                    out.extend_from_slice(p);
                    Ok(())
                };
                for chunk in input.chunks(size) {
                    conv.feed(chunk, &mut push).unwrap();
                }
                conv.finish(&mut push).unwrap();
                assert_eq!(
                    out,
                    want,
                    "chunks of {size}: {:?}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn deliver_writes_lf_unless_told_to_keep_crlf() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path().join("INBOX")).unwrap();
        let msg = b"Subject: hi\r\n\r\nbody\r\n";
        let path = md.deliver(msg).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"Subject: hi\n\nbody\n");
        let kept = md
            .clone()
            .with_line_ends(LineEnds::Crlf)
            .deliver(msg)
            .unwrap();
        assert_eq!(fs::read(&kept).unwrap(), msg);
        let staged = md.stage(msg).unwrap().commit().unwrap();
        assert_eq!(
            fs::read(&staged).unwrap(),
            msg,
            "stage keeps bytes as given"
        );
        for p in [&path, &kept, &staged] {
            fs::remove_file(p).unwrap();
        }
        let path = md.deliver(msg).unwrap();
        assert_eq!(path.parent().unwrap(), md.path().join("new"));
        assert!(
            fs::read_dir(md.path().join("tmp"))
                .unwrap()
                .next()
                .is_none()
        );
        let listed = md.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].path, path);
        assert_eq!(listed[0].subdir, Subdir::New);
    }

    #[test]
    fn names_are_unique_within_a_process() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path()).unwrap();
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            let p = md.deliver(format!("n: {i}\n\n").as_bytes()).unwrap();
            assert!(seen.insert(p));
        }
        assert_eq!(md.list().unwrap().len(), 200);
    }

    #[test]
    fn interrupted_delivery_leaves_nothing_in_new() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path()).unwrap();
        // Dropped before commit: as if the delivering code failed after
        // writing but before the rename.
        let staged = md.stage(b"Subject: lost\n\nx\n").unwrap();
        let tmp = staged.tmp_path().to_path_buf();
        assert!(tmp.exists());
        drop(staged);
        assert!(!tmp.exists());
        assert!(md.list().unwrap().is_empty());

        // Never committed nor cleaned up: as if the process was killed
        // between the write and the rename. The file stays in tmp/ only.
        let staged = md.stage(b"Subject: killed\n\nx\n").unwrap();
        let tmp = staged.tmp_path().to_path_buf();
        std::mem::forget(staged);
        assert!(tmp.exists());
        assert!(md.list_subdir(Subdir::New).unwrap().is_empty());
        assert!(md.list_subdir(Subdir::Cur).unwrap().is_empty());
        assert_eq!(md.clean_tmp(0).unwrap(), 1);
        assert!(!tmp.exists());
    }

    #[test]
    fn failed_write_removes_the_temporary_file() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path()).unwrap();
        let err = md.stage_from(&mut Failing).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CannotCreate);
        assert!(
            fs::read_dir(md.path().join("tmp"))
                .unwrap()
                .next()
                .is_none()
        );
    }

    #[test]
    fn flags_move_new_to_cur_and_keep_separator() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path()).unwrap();
        md.deliver(b"a: b\n\nc\n").unwrap();
        let e = md.list().unwrap().remove(0);
        let e = md.move_to_cur(&e).unwrap();
        assert_eq!(e.subdir, Subdir::Cur);
        assert!(e.path.to_str().unwrap().ends_with(":2,"));
        let e = md.change_flags(&e, "SF", "").unwrap();
        assert_eq!(e.flags, "FS");
        let e = md.change_flags(&e, "R", "F").unwrap();
        assert_eq!(e.flags, "RS");
        assert!(e.path.exists());
        assert_eq!(md.list().unwrap(), vec![e.clone()]);

        // A foreign `!` name keeps its separator when its flags change.
        let foreign = md.path().join("cur/special!2,Sabc");
        fs::write(&foreign, b"x: y\n\n").unwrap();
        let f = md
            .list()
            .unwrap()
            .into_iter()
            .find(|e| e.unique == "special")
            .unwrap();
        let f = md.change_flags(&f, "F", "b").unwrap();
        assert_eq!(f.path, md.path().join("cur/special!2,FSac"));
    }

    #[test]
    fn file_in_cur_without_info_gets_flags() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path()).unwrap();
        fs::write(md.path().join("cur/test1"), b"a: b\n\n").unwrap();
        let e = md.list().unwrap().remove(0);
        assert_eq!((e.separator, e.flags.as_str()), (None, ""));
        let e = md.set_flags(&e, "S").unwrap();
        assert_eq!(e.path, md.path().join("cur/test1:2,S"));
    }

    #[test]
    fn rename_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path()).unwrap();
        fs::write(md.path().join("new/m1"), b"one").unwrap();
        fs::write(md.path().join("cur/m1:2,S"), b"two").unwrap();
        let e = md.list_subdir(Subdir::New).unwrap().remove(0);
        let err = md.set_flags(&e, "S").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CannotCreate);
        assert_eq!(fs::read(md.path().join("new/m1")).unwrap(), b"one");
        assert_eq!(fs::read(md.path().join("cur/m1:2,S")).unwrap(), b"two");
    }

    #[test]
    fn subfolders_in_both_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path()).unwrap();
        md.create_maildirpp_folder("Archive/2024").unwrap();
        md.create_maildirpp_folder("Sent").unwrap();
        md.create_nested_folder("Lists/rust").unwrap();
        fs::create_dir_all(md.path().join(".notmuch/xapian")).unwrap();
        assert!(md.path().join(".Archive.2024/maildirfolder").exists());
        let subs = md.subfolders().unwrap();
        let subs: Vec<_> = subs.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(subs, vec![".Archive.2024", ".Sent", "Lists/rust"]);
        assert!(md.create_nested_folder("../evil").is_err());
        assert!(md.create_maildirpp_folder("a.b").is_err());
    }

    #[test]
    fn reads_the_mu_corpus_maildir() {
        let Some(root) = corpus("mu-maildirs/testdata/testdir") else {
            return;
        };
        let md = Maildir::open(&root).unwrap();
        let all = md.list().unwrap();
        let new = all.iter().filter(|e| e.subdir == Subdir::New).count();
        let cur = all.iter().filter(|e| e.subdir == Subdir::Cur).count();
        assert_eq!((new, cur), (4, 15));
        assert!(all.iter().all(|e| !e.path.starts_with(root.join("tmp"))));
        let special = all.iter().find(|e| e.unique == "special").unwrap();
        assert_eq!(
            (special.separator, special.flags.as_str()),
            (Some('!'), "Sabc")
        );
        let nested = Maildir::at(corpus("mu-maildirs/testdata/testdir2").unwrap());
        let subs = nested.subfolders().unwrap();
        let subs: Vec<_> = subs.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(subs, vec!["Foo", "bar", "wom_bat"]);
    }

    #[test]
    fn reads_the_stalwart_corpus_maildir() {
        let Some(dir) = corpus("stalwart-mail-parser/resources/maildir") else {
            return;
        };
        let md = Maildir::open(dir).unwrap();
        let all = md.list().unwrap();
        assert_eq!(all.len(), 2);
        let cur = all.iter().find(|e| e.subdir == Subdir::Cur).unwrap();
        assert_eq!(cur.flags, "STln");
        assert_eq!(cur.size_field(), Some(10956));
        let subs = md.subfolders().unwrap();
        let subs: Vec<_> = subs.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(subs, vec![".My Folder", ".My Folder.Nested Folder"]);
        let nested = Maildir::open(md.path().join(".My Folder.Nested Folder")).unwrap();
        let e = nested.list_subdir(Subdir::New).unwrap().remove(0);
        assert_eq!((e.separator, e.flags.as_str()), (Some(';'), "DFR"));
    }
}
