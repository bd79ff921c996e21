//! mail-index: the notmuch index of a maildir, kept with libnotmuch (the
//! `notmuch` crate) in the database that the `notmuch` CLI, emacs and
//! neomutt read: `MAILDIR/.notmuch`, with `MAILDIR` as the mail root.
//!
//! [`Index::add`] indexes exactly the files it is handed (what a sync has
//! just fetched) with no scan; [`Index::scan`] walks the maildir as
//! `notmuch new` does, adding what is new and dropping what is gone. New
//! messages get the configured tags and, as notmuch's `synchronize_flags`
//! does, tags from their maildir flags; [`Index::tag`] writes tag changes
//! back as flags by renaming the files. Queries are notmuch's.
//!
//! A scan lists only the folders whose mtime changed since the last one
//! (`walk`, with the mtimes kept by `record` in `.mailbot`: the crate
//! has no API for notmuch's directory documents). The settings notmuch
//! needs to index as we do are written into the database's own
//! configuration, so the notmuch CLI pointed at it ([`notmuch_config`])
//! agrees with us.
//!
//! Deliberately not here: notmuch's own configuration file (`new.tags`,
//! `new.ignore`, `search.exclude_tags`; callers pass what they want and
//! libnotmuch is opened with no configuration file), hooks, decryption.
//!
//! Two traps of the crate are handled here: it panics on a path that is not
//! UTF-8 and on every NULL libnotmuch hands back from a damaged database,
//! so every path is checked before it is handed over and everything read
//! back from a message is read under `catch_unwind`
//! ([`install_panic_filter`] keeps those caught panics off stderr); and it
//! reports a file whose Message-ID is already indexed as plain success,
//! so duplicates are told apart by the message's file count. A damaged
//! database ([`is_damaged`]) is bad data, never a lock: [`Index::rebuild`]
//! makes it again from the maildir. Handles are not `Send`: an [`Index`]
//! stays on the thread that opened it.

mod record;
mod walk;

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use notmuch::{
    AtomicOperation, ConfigKey, Database, DatabaseMode, Message, MessageFlag, Sort, Status,
};
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};

/// How new messages are tagged.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// Tags every new message gets (`notmuch new`'s `new.tags`).
    pub new_tags: Vec<String>,
    /// Keep maildir flags and tags in step (`maildir.synchronize_flags`):
    /// flags become tags when a file is indexed, tag changes rename files.
    pub synchronize_flags: bool,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            new_tags: vec!["new".to_string()],
            synchronize_flags: true,
        }
    }
}

/// Where the notmuch database of `maildir` lives: `maildir/.notmuch`.
pub fn database_path(maildir: &Path) -> PathBuf {
    maildir.join(".notmuch")
}

/// A notmuch configuration file for the database of `maildir` (made
/// absolute, symlinks resolved): only `database.path`, since the settings that matter
/// (`new.tags`, `new.ignore`, `maildir.synchronize_flags`) are kept in
/// the database itself, where [`Index::open`] puts them. notmuch refuses
/// to run without a configuration file; this is the one it needs,
/// `mail-index notmuch-config > ~/.notmuch-config`.
pub fn notmuch_config(maildir: &Path) -> Result<String> {
    let root = mail_root(maildir)?;
    Ok(format!(
        "# The notmuch index of {root}, kept by mail-index.\n\
         # new.tags, new.ignore and maildir.synchronize_flags are in the database\n\
         # itself (notmuch config list shows them; notmuch config set --database\n\
         # changes them).\n\
         [database]\n\
         path={root}\n",
        root = root.display()
    ))
}

/// Where [`Index::rebuild`] moves the database it replaces:
/// `maildir/.mailbot/damaged-notmuch`, out of the way of scans and syncs.
pub fn damaged_copy_path(maildir: &Path) -> PathBuf {
    maildir.join(".mailbot").join("damaged-notmuch")
}

/// An open notmuch database over one maildir.
pub struct Index {
    db: Database,
    root: PathBuf,
    options: IndexOptions,
    writable: bool,
    /// The folders of a scan, to record (with the database's UUID) once
    /// the database has committed them.
    scanned: Option<(String, walk::Folders)>,
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index")
            .field("root", &self.root)
            .field("options", &self.options)
            .field("writable", &self.writable)
            .finish()
    }
}

/// One tag change: `+tag` or `-tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagChange {
    /// Add the tag.
    Add(String),
    /// Remove the tag.
    Remove(String),
}

impl TagChange {
    /// Reads `+tag` or `-tag`; anything else (no sign, an empty tag) is
    /// `None`.
    pub fn parse(arg: &str) -> Option<TagChange> {
        let (sign, tag) = arg.split_at_checked(1)?;
        if tag.is_empty() {
            return None;
        }
        match sign {
            "+" => Some(TagChange::Add(tag.to_string())),
            "-" => Some(TagChange::Remove(tag.to_string())),
            _ => None,
        }
    }

    /// The tag it adds or removes.
    pub fn tag(&self) -> &str {
        match self {
            TagChange::Add(t) | TagChange::Remove(t) => t,
        }
    }
}

/// One message found by a search.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    /// The Message-ID without angle brackets (notmuch makes one up for a
    /// message that has none).
    pub message_id: String,
    /// notmuch's thread id (without the `thread:` prefix).
    pub thread_id: String,
    /// Every file of the message, absolute.
    pub files: Vec<PathBuf>,
    /// Its tags, sorted.
    pub tags: Vec<String>,
    /// The Date header as seconds since the epoch.
    pub date: i64,
    /// The From header as written (decoded).
    pub from: String,
    /// The Subject header (decoded).
    pub subject: String,
}

/// What [`Index::add`] did with each file.
#[derive(Debug, Default)]
pub struct AddReport {
    /// Files that were new messages.
    pub added: Vec<PathBuf>,
    /// Files the database already had.
    pub already_indexed: Vec<PathBuf>,
    /// New files of a Message-ID the database already had (a copy, or a
    /// message renamed by something else); indexed as another file of
    /// that message.
    pub duplicate_id: Vec<PathBuf>,
    /// Files that could not be indexed, with the reason (`InputMissing`
    /// for a file that is not there, `BadInput` for one that is not mail
    /// or whose name is not UTF-8).
    pub failed: Vec<(PathBuf, Error)>,
}

/// What [`Index::scan`] did.
#[derive(Debug, Default, Serialize)]
pub struct ScanReport {
    /// New messages indexed.
    pub added: usize,
    /// Messages dropped because none of their files is left.
    pub removed: usize,
    /// Files gone whose message is still there through another file: a
    /// rename (a flag change by a mail reader, a move between folders), or
    /// one copy of several deleted.
    pub renamed: usize,
    /// New files of a message already indexed that are not the other half
    /// of a rename (a copy in another folder).
    pub duplicate_id: usize,
    /// Files that could not be indexed or read, with the reason.
    #[serde(serialize_with = "paths_with_reasons")]
    pub failed: Vec<(PathBuf, String)>,
    /// Files that are not mail (libnotmuch found no headers); notmuch new
    /// ignores them too. They are tried again when their folder changes.
    #[serde(serialize_with = "paths_lossy")]
    pub not_mail: Vec<PathBuf>,
    /// Folders listed: new, or changed since the last scan.
    pub folders_listed: usize,
    /// Folders passed over because their mtime says nothing changed.
    pub folders_unchanged: usize,
}

fn paths_with_reasons<S: serde::Serializer>(
    items: &[(PathBuf, String)],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(items.len()))?;
    for (path, reason) in items {
        seq.serialize_element(&(path.to_string_lossy(), reason))?;
    }
    seq.end()
}

fn paths_lossy<S: serde::Serializer>(
    items: &[PathBuf],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(items.iter().map(|p| p.to_string_lossy()))
}

/// How often [`Index::scan`] reports progress, in files.
const PROGRESS_EVERY: usize = 64;

impl Index {
    /// Opens the database of `maildir` for reading and writing, creating
    /// it (`maildir/.notmuch`) when it is missing. A database another
    /// writer has open (another `Index`, in this process too, `notmuch
    /// new`, a mail reader tagging) is [`ErrorKind::Locked`] (exit 75);
    /// a maildir that is not there is [`ErrorKind::InputMissing`]. The
    /// write lock is held until the index is closed or dropped.
    pub fn open(maildir: &Path, options: IndexOptions) -> Result<Index> {
        for tag in &options.new_tags {
            check_tag(tag)?;
        }
        let root = mail_root(maildir)?;
        let db = if has_database(&root) {
            check_write_lock(&root)?;
            open_database(&root, DatabaseMode::ReadWrite)?
        } else {
            // Made here, not by libnotmuch, so that the full text of every
            // message is in a folder only its owner can open.
            let dir = database_path(&root);
            crate::private::create_dir_all(&dir).map_err(|e| Error::writing(&dir, e))?;
            match Database::create(&root) {
                Ok(db) => db,
                // Another process created it in the meantime.
                Err(_) if has_database(&root) => open_database(&root, DatabaseMode::ReadWrite)?,
                Err(e) => {
                    return Err(notmuch_error(
                        ErrorKind::CannotCreate,
                        database_path(&root).display().to_string(),
                        e,
                    ));
                }
            }
        };
        let index = Index {
            db,
            root,
            options,
            writable: true,
            scanned: None,
        };
        index.check_health()?;
        index.record_config()?;
        Ok(index)
    }

    /// Writes the notmuch settings mail-index works by into the
    /// database's own configuration (libnotmuch keeps it there since
    /// 0.32) where the database has none of its own yet: `new.tags` (the
    /// tags of `options`), `new.ignore` (what [`Index::scan`] skips:
    /// `.mailbot` and the servers' bookkeeping files) and
    /// `maildir.synchronize_flags`. The notmuch CLI pointed at the
    /// database (see [`notmuch_config`]) then indexes and tags as
    /// mail-index does, and `notmuch new` passes over mailbot's state.
    /// Values already there, set by a user with `notmuch config set
    /// --database` or by an earlier run, are left alone.
    fn record_config(&self) -> Result<()> {
        let stored: HashSet<String> = self
            .db
            .config_list("")
            .map_err(|e| notmuch_error(ErrorKind::CannotCreate, self.db_name(), e))?
            .map(|(key, _)| key)
            .collect();
        let wanted = [
            (
                "new.tags",
                ConfigKey::NewTags,
                self.options.new_tags.join(";"),
            ),
            ("new.ignore", ConfigKey::NewIgnore, walk::notmuch_ignore()),
            (
                "maildir.synchronize_flags",
                ConfigKey::MaildirFlags,
                self.options.synchronize_flags.to_string(),
            ),
        ];
        for (key, config_key, value) in wanted {
            if stored.contains(key) {
                continue;
            }
            self.db.config_set(config_key, &value).map_err(|e| {
                notmuch_error(
                    ErrorKind::CannotCreate,
                    format!("{}: {key}", self.db_name()),
                    e,
                )
            })?;
        }
        Ok(())
    }

    /// Makes the database of `maildir` again from the maildir, for when it
    /// is damaged: the old `.notmuch` is moved to
    /// [`damaged_copy_path`] (replacing an older copy there), a new one
    /// is created and every message is indexed with the tags of its
    /// maildir flags (`unread`, `flagged`, `replied`, ...) but not
    /// `options.new_tags`, since none of them is new. Other tags of the
    /// old database are lost. Held by another writer, it is
    /// [`ErrorKind::Locked`] and nothing moves.
    pub fn rebuild(
        maildir: &Path,
        options: IndexOptions,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Index, ScanReport)> {
        for tag in &options.new_tags {
            check_tag(tag)?;
        }
        let root = mail_root(maildir)?;
        let old = database_path(&root);
        if old.exists() {
            check_write_lock(&root)?;
            let keep = damaged_copy_path(&root);
            if let Some(parent) = keep.parent() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(|e| Error::writing(parent, e))?;
            }
            match fs::remove_dir_all(&keep) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(Error::writing(&keep, e));
                }
                _ => {}
            }
            fs::rename(&old, &keep).map_err(|e| Error::writing(&old, e))?;
            record::remove(&root);
        }
        let mut index = Index::open(&root, options)?;
        let tags = std::mem::take(&mut index.options.new_tags);
        let report = index.scan(progress);
        index.options.new_tags = tags;
        Ok((index, report?))
    }

    /// A damaged database can open without complaint and fail only when
    /// a message is read (a lost termlist table): one message is read
    /// now, so that the damage is reported at the start and by name.
    fn check_health(&self) -> Result<()> {
        let q = self.query("*")?;
        q.set_sort(Sort::Unsorted);
        let mut messages = q
            .search_messages()
            .map_err(|e| notmuch_error(ErrorKind::InputMissing, self.db_name(), e))?;
        let first = reading_message(
            &self.root,
            || Error::new(ErrorKind::BadInput, self.db_name(), "unreadable"),
            || messages.next(),
        )?;
        if let Some(message) = first {
            message_id(&self.root, &message)?;
            let root = &self.root;
            reading_message(
                root,
                || Error::new(ErrorKind::BadInput, self.db_name(), "unreadable"),
                || (message.thread_id().len(), message.tags().count()),
            )?;
        }
        Ok(())
    }

    /// Opens the database of `maildir` for reading only; a missing
    /// database is [`ErrorKind::InputMissing`] (exit 66). Readers never
    /// wait for a writer.
    pub fn open_read_only(maildir: &Path) -> Result<Index> {
        let root = mail_root(maildir)?;
        if !has_database(&root) {
            return Err(Error::new(
                ErrorKind::InputMissing,
                database_path(&root).display().to_string(),
                "no notmuch database here (mail-index new creates it)",
            ));
        }
        let db = open_database(&root, DatabaseMode::ReadOnly)?;
        let index = Index {
            db,
            root,
            options: IndexOptions::default(),
            writable: false,
            scanned: None,
        };
        index.check_health()?;
        Ok(index)
    }

    /// The mail root: the maildir as an absolute path with symlinks
    /// resolved, as the database records it.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The options new messages are tagged with.
    pub fn options(&self) -> &IndexOptions {
        &self.options
    }

    /// Indexes exactly these files, no scan. New messages get
    /// `options.new_tags` and, with `synchronize_flags`, their maildir
    /// flags as tags (no `S` → `unread`, `F` flagged, `R` replied, `D`
    /// draft, `P` passed). Relative paths are taken from the current
    /// directory. A file that fails is reported in the result and the rest
    /// go on; only a failure of the database itself is an `Err`.
    pub fn add(&mut self, paths: &[PathBuf]) -> Result<AddReport> {
        self.require_writable("add")?;
        let mut report = AddReport::default();
        for path in paths {
            let file = match self.checked_file(path) {
                Ok(f) => f,
                Err(e) => {
                    report.failed.push((path.clone(), e));
                    continue;
                }
            };
            let known = self
                .db
                .find_message_by_filename(&file)
                .map_err(|e| notmuch_error(ErrorKind::InputMissing, self.db_name(), e))?;
            if known.is_some() {
                report.already_indexed.push(path.clone());
                continue;
            }
            match self.index_file(&file) {
                Ok(Indexed::New) => report.added.push(path.clone()),
                Ok(Indexed::DuplicateId) => report.duplicate_id.push(path.clone()),
                Ok(Indexed::NotMail) => report.failed.push((
                    path.clone(),
                    Error::new(ErrorKind::BadInput, path.display().to_string(), NOT_MAIL),
                )),
                Err(e) if is_per_file(&e) => report.failed.push((path.clone(), e)),
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// Like `notmuch new`: indexes the files under the maildir that the
    /// database does not have and drops the ones that are gone. A rename
    /// is an add and a remove of the same Message-ID, so tags survive it;
    /// with `synchronize_flags` the tags follow the new file's flags.
    /// `.notmuch`, `.mailbot`, dot files and the `tmp/` of maildir folders
    /// are skipped. Folders whose mtime has not changed since the last
    /// scan of this database (recorded in `.mailbot/index-folders.json`
    /// when the index is closed) are not listed, so a scan with nothing
    /// new costs a `stat` per folder. `progress(done, total)` is called
    /// now and then while files are indexed or dropped.
    pub fn scan(&mut self, progress: &mut dyn FnMut(usize, usize)) -> Result<ScanReport> {
        self.require_writable("scan")?;
        let mut report = ScanReport::default();
        let started = SystemTime::now();
        let uuid = self.db.revision().uuid;
        let previous = record::load(&self.root, &uuid);
        let settled = started
            .checked_sub(walk::SETTLE)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let walked = walk::walk(&self.root, &previous, settled, &mut report.failed)?;
        report.folders_listed = walked.listed.len();
        report.folders_unchanged = walked.folders.len() - walked.listed.len();
        // With no record every folder was listed: one pass over the whole
        // database is cheaper than a query per folder.
        let known = if previous.is_empty() {
            self.indexed_files()?
        } else {
            self.files_in(&walked)?
        };
        let found: Vec<&PathBuf> = walked.listed.iter().flat_map(|(_, f)| f).collect();
        let on_disk: HashSet<&Path> = found.iter().map(|p| p.as_path()).collect();
        let new: Vec<&PathBuf> = found.into_iter().filter(|p| !known.contains(*p)).collect();
        // Known files of the folders listed (or gone) that are not there
        // any more. A file the walk did not list but which is still there
        // (in a folder that could not be read, or put in the index by
        // another tool from a place the walk skips) is never dropped.
        let mut gone: Vec<PathBuf> = known
            .into_iter()
            .filter(|p| p.starts_with(&self.root) && !on_disk.contains(p.as_path()))
            .filter(|p| matches!(fs::symlink_metadata(p), Err(e) if e.kind() == io::ErrorKind::NotFound))
            .collect();
        gone.sort();
        let total = new.len() + gone.len();
        let mut done = 0;
        progress(done, total);
        let mut duplicates: usize = 0;
        for path in new {
            match self.index_file(path) {
                Ok(Indexed::New) => report.added += 1,
                Ok(Indexed::DuplicateId) => duplicates += 1,
                Ok(Indexed::NotMail) => report.not_mail.push(path.clone()),
                Err(e) if is_per_file(&e) => report.failed.push((path.clone(), e.to_string())),
                Err(e) => return Err(e),
            }
            done += 1;
            if done % PROGRESS_EVERY == 0 {
                progress(done, total);
            }
        }
        for path in &gone {
            match self.remove_file(path)? {
                Removed::LastFile => report.removed += 1,
                Removed::OneOfSeveral => report.renamed += 1,
                Removed::NotIndexed => {}
            }
            done += 1;
            if done % PROGRESS_EVERY == 0 {
                progress(done, total);
            }
        }
        report.duplicate_id = duplicates.saturating_sub(report.renamed);
        progress(done, total);
        // A folder with a file that failed is listed again next time.
        let mut folders = walked.folders;
        for (path, _) in &report.failed {
            for dir in [Some(path.as_path()), path.parent()].into_iter().flatten() {
                if let Ok(rel) = dir.strip_prefix(&self.root)
                    && let Some(f) = rel.to_str().and_then(|r| folders.get_mut(r))
                {
                    f.mtime = None;
                }
            }
        }
        self.scanned = Some((uuid, folders));
        Ok(report)
    }

    /// The indexed files of the folders `walked` listed (those directly
    /// in each) and of the folders it found gone (everything below them),
    /// by notmuch's `path:` queries.
    fn files_in(&self, walked: &walk::Walk) -> Result<HashSet<PathBuf>> {
        let mut files = HashSet::new();
        let quoted = |dir: &Path| -> Option<String> {
            let rel = dir.strip_prefix(&self.root).ok()?.to_str()?;
            Some(format!("\"{}\"", rel.replace('"', "\"\"")))
        };
        for (dir, _) in &walked.listed {
            let Some(rel) = quoted(dir) else { continue };
            for file in self.files_matching(&format!("path:{rel}"))? {
                if file.parent() == Some(dir.as_path()) {
                    files.insert(file);
                }
            }
        }
        for dir in &walked.vanished {
            let Some(rel) = quoted(dir) else { continue };
            let below = format!("\"{}/**\"", &rel[1..rel.len() - 1]);
            for file in self.files_matching(&format!("path:{rel} or path:{below}"))? {
                if file.starts_with(dir) {
                    files.insert(file);
                }
            }
        }
        Ok(files)
    }

    /// Every file of every message matching `query`.
    fn files_matching(&self, query: &str) -> Result<Vec<PathBuf>> {
        let q = self.query(query)?;
        q.set_sort(Sort::Unsorted);
        let messages = q
            .search_messages()
            .map_err(|e| notmuch_error(ErrorKind::InputMissing, self.db_name(), e))?;
        let mut files = Vec::new();
        for message in messages {
            match filenames(&self.root, &message) {
                Ok(names) => files.extend(names),
                Err(e) if is_damaged(&e) => return Err(e),
                Err(_) => {}
            }
        }
        Ok(files)
    }

    /// The messages matching a notmuch query, newest first.
    pub fn search(&self, query: &str) -> Result<Vec<Hit>> {
        let q = self.query(query)?;
        q.set_sort(Sort::NewestFirst);
        let messages = q
            .search_messages()
            .map_err(|e| notmuch_error(ErrorKind::Usage, format!("query {query:?}"), e))?;
        messages.map(|m| hit(&self.root, &m)).collect()
    }

    /// How many messages match a notmuch query.
    pub fn count(&self, query: &str) -> Result<u64> {
        let q = self.query(query)?;
        q.count_messages()
            .map(u64::from)
            .map_err(|e| notmuch_error(ErrorKind::Usage, format!("query {query:?}"), e))
    }

    /// Applies tag changes, in order, to every message matching `query`,
    /// and returns how many messages matched. With `synchronize_flags`,
    /// each message's files are renamed so their flags match the tags (as
    /// `notmuch tag` does with `maildir.synchronize_flags`): `+flagged`
    /// gives `F`, `-unread` gives `S`, and a message in `new/` moves to
    /// `cur/` once it has a flag.
    pub fn tag(&mut self, query: &str, changes: &[TagChange]) -> Result<usize> {
        self.require_writable("tag")?;
        for change in changes {
            check_tag(change.tag())?;
        }
        let q = self.query(query)?;
        q.set_sort(Sort::Unsorted);
        let messages = q
            .search_messages()
            .map_err(|e| notmuch_error(ErrorKind::Usage, format!("query {query:?}"), e))?;
        let mut count = 0;
        for message in messages {
            let id = message_id(&self.root, &message)?;
            let what = || format!("id:{id}");
            let _atomic = AtomicOperation::new(&self.db)
                .map_err(|e| notmuch_error(ErrorKind::CannotCreate, self.db_name(), e))?;
            message
                .freeze()
                .map_err(|e| notmuch_error(ErrorKind::CannotCreate, what(), e))?;
            for change in changes {
                let done = match change {
                    TagChange::Add(t) => message.add_tag(t),
                    TagChange::Remove(t) => message.remove_tag(t),
                };
                done.map_err(|e| notmuch_error(ErrorKind::CannotCreate, what(), e))?;
            }
            message
                .thaw()
                .map_err(|e| notmuch_error(ErrorKind::CannotCreate, what(), e))?;
            if self.options.synchronize_flags {
                message
                    .tags_to_maildir_flags()
                    .map_err(|e| notmuch_error(ErrorKind::CannotCreate, what(), e))?;
            }
            count += 1;
        }
        Ok(count)
    }

    /// Writes everything to disk and closes the database, letting other
    /// writers in. Dropping the index does the same but cannot report a
    /// failure.
    pub fn close(self) -> Result<()> {
        self.db
            .close()
            .map_err(|e| notmuch_error(ErrorKind::CannotCreate, self.db_name(), e))?;
        // Only what the database has committed may be recorded as seen.
        if let Some((uuid, folders)) = &self.scanned {
            record::save(&self.root, uuid, folders)?;
        }
        Ok(())
    }

    fn db_name(&self) -> String {
        database_path(&self.root).display().to_string()
    }

    fn require_writable(&self, what: &str) -> Result<()> {
        if self.writable {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Usage,
            self.db_name(),
            format!("opened read-only; {what} needs Index::open"),
        ))
    }

    fn query(&self, query: &str) -> Result<notmuch::Query> {
        if query.contains('\0') {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("query {query:?}"),
                "contains a NUL character",
            ));
        }
        self.db
            .create_query(query)
            .map_err(|e| notmuch_error(ErrorKind::Usage, format!("query {query:?}"), e))
    }

    /// The path a file is indexed under: absolute, its folder with
    /// symlinks resolved (so files inside the maildir are recorded
    /// relative to the mail root, as notmuch new records them), UTF-8,
    /// and an existing regular file.
    fn checked_file(&self, path: &Path) -> Result<PathBuf> {
        if path.to_str().is_none() {
            return Err(Error::new(
                ErrorKind::BadInput,
                path.display().to_string(),
                walk::NOT_UTF8,
            ));
        }
        let meta = fs::metadata(path).map_err(|e| Error::reading(path, e))?;
        if !meta.is_file() {
            return Err(Error::new(
                ErrorKind::BadInput,
                path.display().to_string(),
                "not a file",
            ));
        }
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| Error::reading(Path::new("."), e))?
                .join(path)
        };
        let (Some(parent), Some(name)) = (absolute.parent(), absolute.file_name()) else {
            return Err(Error::new(
                ErrorKind::BadInput,
                path.display().to_string(),
                "not a file",
            ));
        };
        let file = fs::canonicalize(parent)
            .map_err(|e| Error::reading(parent, e))?
            .join(name);
        if file.to_str().is_none() {
            return Err(Error::new(
                ErrorKind::BadInput,
                file.display().to_string(),
                walk::NOT_UTF8,
            ));
        }
        Ok(file)
    }

    /// Indexes one file the database does not have, in its own atomic
    /// section (as notmuch new does), and tags it. The path must be
    /// UTF-8.
    fn index_file(&self, file: &Path) -> Result<Indexed> {
        let _atomic = AtomicOperation::new(&self.db)
            .map_err(|e| notmuch_error(ErrorKind::CannotCreate, self.db_name(), e))?;
        let message = match without_glib_noise(|| self.db.index_file(file, None)) {
            Ok(m) => m,
            Err(notmuch::Error::NotmuchError(Status::FileNotEmail)) => return Ok(Indexed::NotMail),
            Err(e) => {
                return Err(notmuch_error(
                    ErrorKind::BadInput,
                    file.display().to_string(),
                    e,
                ));
            }
        };
        // The crate turns DUPLICATE_MESSAGE_ID into success: a message
        // with more than this one file was already there.
        let duplicate = message.count_files() > 1;
        let what = || file.display().to_string();
        message
            .freeze()
            .map_err(|e| notmuch_error(ErrorKind::CannotCreate, what(), e))?;
        if self.options.synchronize_flags {
            message
                .maildir_flags_to_tags()
                .map_err(|e| notmuch_error(ErrorKind::CannotCreate, what(), e))?;
        }
        if !duplicate {
            for tag in &self.options.new_tags {
                // As notmuch new: a message already seen is not unread.
                if tag == "unread" && has_seen_flag(file) {
                    continue;
                }
                message
                    .add_tag(tag)
                    .map_err(|e| notmuch_error(ErrorKind::CannotCreate, what(), e))?;
            }
        }
        message
            .thaw()
            .map_err(|e| notmuch_error(ErrorKind::CannotCreate, what(), e))?;
        Ok(if duplicate {
            Indexed::DuplicateId
        } else {
            Indexed::New
        })
    }

    /// Drops one file name from the database; the message goes with it
    /// when it was its last file, else its tags follow the flags of the
    /// files left.
    fn remove_file(&self, file: &Path) -> Result<Removed> {
        let what = || file.display().to_string();
        let found = self
            .db
            .find_message_by_filename(&file)
            .map_err(|e| notmuch_error(ErrorKind::InputMissing, what(), e))?;
        let Some(message) = found else {
            return Ok(Removed::NotIndexed);
        };
        let id = message_id(&self.root, &message)?;
        drop(message);
        let _atomic = AtomicOperation::new(&self.db)
            .map_err(|e| notmuch_error(ErrorKind::CannotCreate, self.db_name(), e))?;
        self.db
            .remove_message(file)
            .map_err(|e| notmuch_error(ErrorKind::CannotCreate, what(), e))?;
        match self
            .db
            .find_message(&id)
            .map_err(|e| notmuch_error(ErrorKind::CannotCreate, what(), e))?
        {
            // A message others refer to stays as a ghost, which has no
            // files (libnotmuch counts one empty name for it).
            Some(left) if !left.get_flag(MessageFlag::Ghost) => {
                if self.options.synchronize_flags {
                    left.maildir_flags_to_tags()
                        .map_err(|e| notmuch_error(ErrorKind::CannotCreate, what(), e))?;
                }
                Ok(Removed::OneOfSeveral)
            }
            _ => Ok(Removed::LastFile),
        }
    }

    /// Every file name the database holds.
    fn indexed_files(&self) -> Result<HashSet<PathBuf>> {
        let mut files = HashSet::new();
        if self.count("*")? == 0 {
            return Ok(files);
        }
        let q = self.query("*")?;
        q.set_sort(Sort::Unsorted);
        let messages = q
            .search_messages()
            .map_err(|e| notmuch_error(ErrorKind::InputMissing, self.db_name(), e))?;
        for message in messages {
            // A message with a file name that is not UTF-8 (put there by
            // another tool) cannot be read through the crate; its files
            // are then found again by the walk and skipped there.
            match filenames(&self.root, &message) {
                Ok(names) => files.extend(names),
                Err(e) if is_damaged(&e) => return Err(e),
                Err(_) => {}
            }
        }
        Ok(files)
    }
}

/// Lookups and removals by file, for callers that move files themselves
/// (mail-bot's `move`).
impl Index {
    /// The Message-ID notmuch knows `path` by (its own `notmuch-sha1-...`
    /// for a message without one); `None` when the file is not indexed.
    pub fn message_id_of_file(&self, path: &Path) -> Result<Option<String>> {
        let file = self.checked_file(path)?;
        let found = self
            .db
            .find_message_by_filename(&file)
            .map_err(|e| notmuch_error(ErrorKind::InputMissing, file.display().to_string(), e))?;
        found.map(|m| message_id(&self.root, &m)).transpose()
    }

    /// Drops file names that are gone from disk (moved away or deleted);
    /// a message keeps its tags while it has another file. Returns how
    /// many names were indexed.
    pub fn forget(&mut self, paths: &[PathBuf]) -> Result<usize> {
        self.require_writable("forget")?;
        let mut forgotten = 0;
        for path in paths {
            let Some(text) = path.to_str() else {
                return Err(Error::new(
                    ErrorKind::BadInput,
                    path.display().to_string(),
                    walk::NOT_UTF8,
                ));
            };
            let file = match (path.parent().map(fs::canonicalize), path.file_name()) {
                (Some(Ok(parent)), Some(name)) => parent.join(name),
                _ => PathBuf::from(text),
            };
            if !matches!(self.remove_file(&file)?, Removed::NotIndexed) {
                forgotten += 1;
            }
        }
        Ok(forgotten)
    }
}

enum Indexed {
    New,
    DuplicateId,
    NotMail,
}

const NOT_MAIL: &str = "not a mail message (libnotmuch found no header fields)";

/// Runs `f` (a libnotmuch call) with stderr going through a pipe, then
/// passes every line on to the real stderr except GLib's assertion noise
/// (`(process:N): gmime-CRITICAL **: ...` and the blank line before it),
/// which goes to the debug log. libnotmuch prints such lines for some
/// malformed messages (`notmuch new` prints them too), and they would
/// break the silence a cron job relies on. Lines other threads write
/// meanwhile are passed on, a little later. One call at a time in the
/// process; when the pipe cannot be set up, `f` simply runs.
fn without_glib_noise<T>(f: impl FnOnce() -> T) -> T {
    let _one = STDERR_SWAP.lock();
    filtering_stderr(f)
}

/// Held while fd 2 is swapped, so that no two swaps interleave.
static STDERR_SWAP: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// [`without_glib_noise`] for a caller that holds [`STDERR_SWAP`].
fn filtering_stderr<T>(f: impl FnOnce() -> T) -> T {
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    let setup = || -> io::Result<_> {
        let saved = rustix::io::dup(io::stderr().as_fd())?;
        let (reader, writer) = rustix::pipe::pipe()?;
        rustix::stdio::dup2_stderr(&writer)?;
        Ok((saved, reader))
    };
    let Ok((saved, reader)) = setup() else {
        return f();
    };
    let outcome = panic::catch_unwind(AssertUnwindSafe(f));
    // Restoring fd 2 closes the last write end we hold: the pipe ends
    // once whatever was written to it is read.
    let restored = rustix::stdio::dup2_stderr(&saved);
    let mut captured = Vec::new();
    if restored.is_ok() {
        let _ = fs::File::from(reader).read_to_end(&mut captured);
    }
    let text = String::from_utf8_lossy(&captured);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let is_noise = |line: &str| {
        line.starts_with("(process:")
            && (line.contains("-CRITICAL **") || line.contains("-WARNING **"))
    };
    let mut pass_on = String::new();
    for (i, line) in lines.iter().enumerate() {
        if is_noise(line) {
            tracing::debug!("libnotmuch: {}", line.trim_end());
            continue;
        }
        if line.trim().is_empty() && lines.get(i + 1).is_some_and(|next| is_noise(next)) {
            continue;
        }
        pass_on.push_str(line);
    }
    if !pass_on.is_empty() {
        let _ = io::stderr().lock().write_all(pass_on.as_bytes());
    }
    match outcome {
        Ok(value) => value,
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// True for the failure [`Index::add`] reports for a file libnotmuch
/// does not take for mail (`notmuch new` skips such files with a note).
pub fn is_not_mail(err: &Error) -> bool {
    err.kind() == ErrorKind::BadInput && err.detail() == NOT_MAIL
}

enum Removed {
    LastFile,
    OneOfSeveral,
    NotIndexed,
}

/// Failures that concern one file and let the others go on.
fn is_per_file(err: &Error) -> bool {
    matches!(err.kind(), ErrorKind::BadInput | ErrorKind::InputMissing) && !is_damaged(err)
}

fn hit(root: &Path, message: &Message) -> Result<Hit> {
    let files = filenames(root, message)?;
    let header = |name: &str| {
        message
            .header(name)
            .ok()
            .flatten()
            .map(|h| h.into_owned())
            .unwrap_or_default()
    };
    let not_utf8 = || {
        Error::new(
            ErrorKind::BadInput,
            database_path(root).display().to_string(),
            "a message's data is not UTF-8",
        )
    };
    reading_message(root, not_utf8, || Hit {
        message_id: message.id().into_owned(),
        thread_id: message.thread_id().into_owned(),
        files,
        tags: message.tags().collect(),
        date: message.date(),
        from: header("from"),
        subject: header("subject"),
    })
}

thread_local! {
    /// Set while a call into the crate that may panic runs under
    /// `catch_unwind` (see [`guarded`]).
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Why a call into the crate panicked.
enum Panicked {
    /// A file name that is not UTF-8 (`to_str().unwrap()` in the crate).
    NotUtf8,
    /// Anything else: in practice a NULL that libnotmuch hands back when
    /// it cannot read the database (an `assert!(!is_null())` in the crate).
    Other(String),
}

/// Runs `f`, a call into the crate that may panic, and turns a panic into
/// [`Panicked`]. The crate asserts on every pointer libnotmuch returns and
/// unwraps every string as UTF-8, so a damaged database or a file name in
/// another encoding would otherwise end the process.
fn guarded<T>(f: impl FnOnce() -> T) -> std::result::Result<T, Panicked> {
    CATCHING.with(|c| c.set(true));
    let outcome = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(false));
    outcome.map_err(|payload| {
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        if text.contains("Utf8Error") {
            Panicked::NotUtf8
        } else {
            Panicked::Other(text)
        }
    })
}

/// [`guarded`] for reading a message: a panic is a damaged database
/// (`not_utf8` names the error for a file name in another encoding).
fn reading_message<T>(
    root: &Path,
    not_utf8: impl FnOnce() -> Error,
    f: impl FnOnce() -> T,
) -> Result<T> {
    guarded(f).map_err(|why| match why {
        Panicked::NotUtf8 => not_utf8(),
        Panicked::Other(text) => damaged(
            database_path(root).display().to_string(),
            &format!("libnotmuch returned no data ({text})"),
        ),
    })
}

/// A message's id, read under [`guarded`].
fn message_id(root: &Path, message: &Message) -> Result<String> {
    let not_utf8 = || {
        Error::new(
            ErrorKind::BadInput,
            database_path(root).display().to_string(),
            "a Message-ID is not UTF-8",
        )
    };
    reading_message(root, not_utf8, || message.id().into_owned())
}

/// The file names of a message. The crate panics on one that is not
/// UTF-8; that panic is caught and becomes an error naming the message.
fn filenames(root: &Path, message: &Message) -> Result<Vec<PathBuf>> {
    reading_message(
        root,
        || {
            Error::new(
                ErrorKind::BadInput,
                format!("id:{}", message.id()),
                "a file name of this message is not UTF-8; the notmuch crate cannot read it \
                 (rename the file and run mail-index new)",
            )
        },
        || message.filenames().collect(),
    )
}

/// Keeps the panics this module catches (file names that are not UTF-8,
/// read through the crate) off stderr; every other panic is printed as
/// before. For binaries, once at start.
pub fn install_panic_filter() {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !CATCHING.with(Cell::get) {
            previous(info);
        }
    }));
}

/// Whether the file's name carries the maildir `S` (seen) flag, read as
/// libnotmuch reads it: after `:2,`.
fn has_seen_flag(file: &Path) -> bool {
    file.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.rsplit_once(":2,"))
        .is_some_and(|(_, flags)| flags.contains('S'))
}

fn check_tag(tag: &str) -> Result<()> {
    // libnotmuch refuses tags over 200 bytes; the crate panics on a NUL.
    let problem = if tag.is_empty() {
        Some("is empty")
    } else if tag.contains('\0') {
        Some("contains a NUL character")
    } else if tag.len() > 200 {
        Some("is longer than 200 bytes")
    } else {
        None
    };
    match problem {
        Some(p) => Err(Error::new(ErrorKind::Usage, format!("tag {tag:?}"), p)),
        None => Ok(()),
    }
}

/// The maildir as the mail root: an existing folder, absolute, symlinks
/// resolved, UTF-8.
fn mail_root(maildir: &Path) -> Result<PathBuf> {
    let not_utf8 = |p: &Path| {
        Error::new(
            ErrorKind::BadInput,
            p.display().to_string(),
            "maildir path is not UTF-8; libnotmuch through the notmuch crate cannot take it",
        )
    };
    if maildir.to_str().is_none() {
        return Err(not_utf8(maildir));
    }
    let meta = fs::metadata(maildir).map_err(|e| Error::reading(maildir, e))?;
    if !meta.is_dir() {
        return Err(Error::new(
            ErrorKind::InputMissing,
            maildir.display().to_string(),
            "not a folder",
        ));
    }
    let root = fs::canonicalize(maildir).map_err(|e| Error::reading(maildir, e))?;
    if root.to_str().is_none() {
        return Err(not_utf8(&root));
    }
    Ok(root)
}

/// Fails with `Locked` when another writer holds the database's lock.
///
/// libnotmuch opens with Xapian's `DB_RETRY_LOCK`, which waits for the
/// lock as long as it takes: a cron run would hang behind a mail reader
/// that keeps the database open, and a second open in the same process
/// would wait for itself. Xapian's lock is an fcntl (OFD) lock on
/// `xapian/flintlock`, which a plain fcntl lock conflicts with, so trying
/// one for a moment tells whether the database is free. Another writer
/// can still come in between; then libnotmuch waits for it to finish.
fn check_write_lock(root: &Path) -> Result<()> {
    let lock = database_path(root).join("xapian/flintlock");
    let file = match fs::OpenOptions::new().read(true).write(true).open(&lock) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::reading(&lock, e)),
    };
    match rustix::fs::fcntl_lock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {
            rustix::fs::fcntl_lock(&file, rustix::fs::FlockOperation::NonBlockingUnlock).map_err(
                |e| {
                    Error::io(
                        ErrorKind::CannotCreate,
                        lock.display().to_string(),
                        e.into(),
                    )
                },
            )?;
            Ok(())
        }
        Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::ACCESS => {
            Err(Error::new(
                ErrorKind::Locked,
                database_path(root).display().to_string(),
                "another process is writing the index (mail-index, notmuch new or tag, a mail reader); retry later",
            ))
        }
        Err(e) => Err(Error::io(
            ErrorKind::CannotCreate,
            lock.display().to_string(),
            e.into(),
        )),
    }
}

fn has_database(root: &Path) -> bool {
    database_path(root).join("xapian").is_dir()
}

/// Opens an existing database with no notmuch configuration file, so the
/// user's `~/.notmuch-config` and `NOTMUCH_*` variables change nothing.
fn open_database(root: &Path, mode: DatabaseMode) -> Result<Database> {
    Database::open_with_config(Some(root), mode, Some(""), None).map_err(|e| {
        let kind = match mode {
            DatabaseMode::ReadOnly => ErrorKind::InputMissing,
            DatabaseMode::ReadWrite => ErrorKind::CannotCreate,
        };
        notmuch_error(kind, database_path(root).display().to_string(), e)
    })
}

/// Xapian's words for a write lock someone else holds ("Unable to get
/// write lock on ...: already locked"). Not any text with "lock" in it:
/// a truncated table says "EOF reading block 0".
fn is_lock_message(text: &str) -> bool {
    text.contains("write lock") || text.contains("already locked")
}

/// A Xapian failure that says the database itself is broken rather than
/// out of reach: anything but a lock, a permission or a full disk.
fn is_damage_message(text: &str) -> bool {
    let elsewhere = [
        "ermission denied",
        "No space left",
        "quota exceeded",
        "Too many open files",
        "Cannot allocate memory",
    ];
    !is_lock_message(text) && !elsewhere.iter().any(|e| text.contains(e))
}

/// How a damaged-database error's detail begins (see [`is_damaged`]).
const DAMAGED: &str = "the notmuch database is damaged";

/// A damaged database (truncated or missing Xapian tables, a corrupt
/// block): bad data (exit 65), with the way out in the message.
fn damaged(object: String, why: &str) -> Error {
    Error::new(
        ErrorKind::BadInput,
        object,
        format!(
            "{DAMAGED} ({why}); `mail-index rebuild` makes it again from the maildir, \
             with tags from the maildir flags"
        ),
    )
}

/// Whether `err` says the notmuch database is damaged (truncated or
/// missing tables): nothing a retry mends; `mail-index rebuild` does.
pub fn is_damaged(err: &Error) -> bool {
    err.kind() == ErrorKind::BadInput && err.detail().starts_with(DAMAGED)
}

/// A libnotmuch failure as the library's error: a write lock held by
/// someone else is `Locked`, a missing database `InputMissing`, a bad
/// query `Usage`; other failures get `fallback`.
fn notmuch_error(fallback: ErrorKind, object: String, err: notmuch::Error) -> Error {
    let (status, message) = match &err {
        notmuch::Error::NotmuchError(s) => (Some(*s), None),
        notmuch::Error::NotmuchVerboseError(s, m) => (Some(*s), Some(m.trim().to_string())),
        notmuch::Error::IoError(e) => {
            return Error::io(fallback, object, io::Error::new(e.kind(), e.to_string()));
        }
        notmuch::Error::UnspecifiedError => (None, None),
    };
    let message = message.filter(|m| !m.is_empty() && m != "[no info]");
    let text = message
        .clone()
        .or_else(|| status.map(|s| s.to_string()))
        .unwrap_or_else(|| "libnotmuch failed".to_string());
    let kind = match status {
        Some(Status::XapianException) if is_lock_message(&text) => ErrorKind::Locked,
        Some(Status::XapianException) if is_damage_message(&text) => {
            return damaged(object, &text.replace('\n', " "));
        }
        Some(Status::NoDatabase) => ErrorKind::InputMissing,
        Some(Status::BadQuerySyntax) => ErrorKind::Usage,
        Some(Status::ReadOnlyDatabase) => ErrorKind::Usage,
        Some(Status::UpgradeRequired) => ErrorKind::Config,
        Some(Status::OutOfMemory) => ErrorKind::Temporary,
        Some(Status::FileNotEmail) => ErrorKind::BadInput,
        _ => fallback,
    };
    let text = match kind {
        ErrorKind::Locked => format!("{text} (another process is writing the index; retry later)"),
        _ => text,
    };
    Error::new(kind, object, text.replace('\n', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GLib's noise is dropped and every other line reaches stderr, in
    /// order, whoever wrote it while the call ran.
    #[test]
    fn glib_noise_is_dropped_and_other_stderr_lines_pass() {
        use std::io::Read;
        use std::os::fd::AsFd;
        let _one = STDERR_SWAP.lock();
        let mut file = tempfile::tempfile().unwrap();
        let real = rustix::io::dup(io::stderr().as_fd()).unwrap();
        rustix::stdio::dup2_stderr(&file).unwrap();
        let value = filtering_stderr(|| {
            let raw = |text: &str| rustix::io::write(io::stderr(), text.as_bytes()).unwrap();
            raw("first line\n");
            raw("\n(process:42): gmime-CRITICAL **: 10:00:00.000: assertion failed\n");
            raw("\n");
            raw("(process:42): GLib-WARNING **: 10:00:00.001: also noise\n");
            raw("last line, no newline");
            7
        });
        rustix::stdio::dup2_stderr(&real).unwrap();
        assert_eq!(value, 7);
        let mut seen = String::new();
        use std::io::Seek;
        file.rewind().unwrap();
        file.read_to_string(&mut seen).unwrap();
        assert_eq!(seen, "first line\nlast line, no newline");
    }

    #[test]
    fn tag_changes_parse() {
        let cases = [
            ("+inbox", Some(TagChange::Add("inbox".into()))),
            ("-unread", Some(TagChange::Remove("unread".into()))),
            ("+", None),
            ("-", None),
            ("inbox", None),
            ("", None),
            ("+a b", Some(TagChange::Add("a b".into()))),
            ("+ü", Some(TagChange::Add("ü".into()))),
            ("ü", None),
        ];
        for (arg, want) in cases {
            assert_eq!(TagChange::parse(arg), want, "{arg:?}");
        }
    }

    #[test]
    fn seen_flag_is_read_after_2_comma() {
        let cases = [
            ("/m/cur/1.M1P1.h:2,S", true),
            ("/m/cur/1.M1P1.h:2,FRS", true),
            ("/m/cur/1.M1P1.h:2,F", false),
            ("/m/new/1.M1P1.h", false),
            ("/m/cur/S", false),
        ];
        for (path, seen) in cases {
            assert_eq!(has_seen_flag(Path::new(path)), seen, "{path}");
        }
    }

    #[test]
    fn bad_tags_are_usage_errors() {
        for tag in ["", "a\0b", &"x".repeat(201)] {
            assert_eq!(check_tag(tag).unwrap_err().kind(), ErrorKind::Usage);
        }
        check_tag("attachment").unwrap();
    }

    #[test]
    fn lock_failures_are_locked() {
        let err = notmuch_error(
            ErrorKind::CannotCreate,
            "/m/.notmuch".into(),
            notmuch::Error::NotmuchVerboseError(
                Status::XapianException,
                "A Xapian exception occurred opening database: Unable to get write lock on /m/.notmuch/xapian: already locked\n".into(),
            ),
        );
        assert_eq!(err.kind(), ErrorKind::Locked);
        assert!(
            err.to_string()
                .starts_with("/m/.notmuch: A Xapian exception")
        );
        assert!(!err.to_string().contains('\n'));
    }
}
